/**
 * Health-check scale benchmark: N loopback real servers (default 5,000, TCP listeners on 127.0.1.x
 * in a separate "farm" process) checked every second by the lvsd health subsystem (in its own
 * process, so its CPU is measured alone from /proc/PID/stat).
 *   1. steady state, nothing fails, for --minutes (default 2; --long = 10): CPU of lvsd and false
 *      positives (any "down" is one; goal 0);
 *   2. --kills servers (default 50) are closed one by one; detection time = down event − close (p50/p99/max).
 * Usage: node dist/bench/health-scale.js [--servers N] [--minutes M | --long] [--kills K]
 *        [--interval S] [--timeout S] [--fall N] [--concurrency C] [--json]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const opt = (name: string, def: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const N = opt('servers', 5000);
const MINUTES = args.includes('--long') ? 10 : opt('minutes', 2);
const KILLS = Math.min(opt('kills', 50), N);
const INTERVAL = opt('interval', 1);
const TIMEOUT = opt('timeout', 1);
const FALL = opt('fall', 1);
const CONC = opt('concurrency', 1000);
const PER = 100;
const BASE = 30000;
const TICK = 100; // USER_HZ on Linux

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function cpuTicks(pid: number): number {
  // Fields after the ")" of the comm: state is field 3; utime 14, stime 15 (proc(5)).
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]);
}

function proc(script: string, argv: string[]) {
  const c: ChildProcess = spawn(process.execPath, [join(here, script), ...argv], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines: string[] = [];
  const listeners: Array<(l: string) => void> = [];
  createInterface({ input: c.stdout! }).on('line', (l) => {
    lines.push(l);
    for (const f of listeners) f(l);
  });
  return {
    c,
    lines,
    on(f: (l: string) => void) {
      listeners.push(f);
    },
    send(l: string) {
      c.stdin!.write(l + '\n');
    },
    async wait(pred: (l: string) => boolean, ms: number, what: string): Promise<string> {
      const end = Date.now() + ms;
      for (;;) {
        const hit = lines.find(pred);
        if (hit) return hit;
        if (Date.now() > end || c.exitCode !== null) throw new Error(`${script}: no ${what}`);
        await sleep(20);
      }
    },
  };
}

function pct(xs: number[], p: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

async function main() {
  const farm = proc('health-farm.js', [String(N), String(PER), String(BASE)]);
  const kids: ChildProcess[] = [farm.c];
  const cleanup = () => kids.forEach((k) => k.exitCode === null && k.kill('SIGKILL'));
  process.on('SIGINT', () => { cleanup(); process.exit(130); });
  process.on('SIGTERM', () => { cleanup(); process.exit(143); });
  try {
    await farm.wait((l) => l === 'ready', 120_000, 'ready');
    const worker = proc('health-worker.js', [N, PER, BASE, INTERVAL, TIMEOUT, FALL, 1, CONC].map(String));
    kids.push(worker.c);
    await worker.wait((l) => l.startsWith('started'), 120_000, 'start');
    const status = async () => {
      const n = worker.lines.length;
      worker.send('status');
      const l = await worker.wait((x) => worker.lines.indexOf(x) >= n && x.startsWith('status '), 10_000, 'status');
      return JSON.parse(l.slice(7)) as { inFlight: number; queued: number; run: number; rss: number };
    };
    await sleep(5000); // staggered start spreads first checks over one interval; settle
    const downs: Array<{ i: number; at: number; reason: string }> = [];
    worker.on((l) => {
      const m = /^rs (\d+) (up|down) (\d+) (\S*)/.exec(l);
      if (m && m[2] === 'down') downs.push({ i: Number(m[1]), at: Number(m[3]), reason: m[4]! });
    });
    const falseBefore = worker.lines.filter((l) => / down /.test(l)).length;

    // Phase 1: steady state.
    const s0 = await status();
    const c0 = cpuTicks(worker.c.pid!);
    const f0 = cpuTicks(farm.c.pid!);
    const t0 = performance.now();
    const windows: number[] = [];
    let last = c0;
    const end = t0 + MINUTES * 60_000;
    while (performance.now() < end) {
      const w0 = performance.now();
      await sleep(Math.min(10_000, end - performance.now()));
      const c = cpuTicks(worker.c.pid!);
      windows.push(((c - last) / TICK) / ((performance.now() - w0) / 1000));
      if (args.includes("--verbose")) process.stderr.write(`cpu ${(windows.at(-1)! * 100).toFixed(0)}% downs ${downs.length} worker exit ${worker.c.exitCode}\n`);
      last = c;
    }
    const secs = (performance.now() - t0) / 1000;
    const cpu = (cpuTicks(worker.c.pid!) - c0) / TICK / secs;
    const farmCpu = (cpuTicks(farm.c.pid!) - f0) / TICK / secs;
    const s1 = await status();
    const falsePositives = downs.length + falseBefore;
    const fpSample = downs.slice(0, 5).map((d) => `${d.i}:${d.reason}`);

    // Phase 2: kill servers one by one; detection = down event − close.
    const victims = new Set<number>();
    while (victims.size < KILLS) victims.add(Math.floor(Math.random() * N));
    const killedAt = new Map<number, number>();
    farm.on((l) => {
      const m = /^killed (\d+) (\d+)/.exec(l);
      if (m) killedAt.set(Number(m[1]), Number(m[2]));
    });
    downs.length = 0;
    for (const v of victims) {
      farm.send(`kill ${v}`);
      await sleep(137); // not a divisor of the interval: kills land at every phase of the check cycle
    }
    const deadline = Date.now() + (INTERVAL * (FALL + 1) + TIMEOUT + 5) * 1000;
    while (Date.now() < deadline && [...victims].some((v) => !downs.find((d) => d.i === v))) await sleep(100);
    const det: number[] = [];
    let missed = 0;
    for (const v of victims) {
      const d = downs.find((x) => x.i === v);
      const k = killedAt.get(v);
      if (d && k !== undefined) det.push(d.at - k);
      else missed++;
    }
    const wrongDowns = downs.filter((d) => !victims.has(d.i)).length;
    const s2 = await status();

    const r = {
      servers: N,
      interval_s: INTERVAL,
      timeout_s: TIMEOUT,
      fall: FALL,
      steady_minutes: +(secs / 60).toFixed(2),
      checks_per_second: +((s1.run - s0.run) / secs).toFixed(0),
      lvsd_cpu_percent_of_one_core: +(cpu * 100).toFixed(1),
      lvsd_cpu_percent_max_10s: +(Math.max(...windows) * 100).toFixed(1),
      farm_cpu_percent: +(farmCpu * 100).toFixed(1),
      lvsd_rss_mb: +(s2.rss / 1048576).toFixed(0),
      false_positives: falsePositives,
      false_positive_sample: fpSample,
      kills: KILLS,
      detection_ms: { p50: pct(det, 50), p99: pct(det, 99), max: Math.max(...det), min: Math.min(...det) },
      missed_detections: missed,
      other_servers_down_during_kills: wrongDowns,
      expected_worst_ms: (INTERVAL * FALL + TIMEOUT) * 1000,
    };
    if (args.includes('--json')) process.stdout.write(JSON.stringify(r) + '\n');
    else {
      process.stdout.write(
        [
          `health-scale: ${N} real servers, interval ${INTERVAL}s, timeout ${TIMEOUT}s, fall ${FALL}, concurrency ${CONC}`,
          `  steady ${r.steady_minutes} min: ${r.checks_per_second} checks/s, lvsd CPU ${r.lvsd_cpu_percent_of_one_core}% of one core (max 10 s window ${r.lvsd_cpu_percent_max_10s}%, goal ≤ 60%), RSS ${r.lvsd_rss_mb} MB; farm CPU ${r.farm_cpu_percent}%`,
          `  false positives: ${r.false_positives} (goal 0)${fpSample.length ? ' ' + fpSample.join(' ') : ''}`,
          `  detection of ${KILLS} killed servers: p50 ${r.detection_ms.p50} ms, p99 ${r.detection_ms.p99} ms, max ${r.detection_ms.max} ms (bound interval×fall+timeout = ${r.expected_worst_ms} ms); missed ${missed}; others down meanwhile ${wrongDowns}`,
          '',
        ].join('\n'),
      );
    }
    worker.send('quit');
    farm.send('quit');
    await sleep(500);
  } finally {
    cleanup();
  }
}
void main();
