/**
 * lvsd's health checker vs keepalived's checker (Debian keepalived 2.2.7, `keepalived -C`) on the same
 * loopback real servers in the same run. keepalived's checker needs IPVS, so this runs inside the UML
 * lab, where the kernel has IPVS:
 *   bin/lvsd lab exec --timeout 720 -- node dist/bench/health-keepalived.js --servers 5000
 * The guest has one CPU, so the two checkers run one after the other, never at the same time, each
 * against the same listener farm (one process, lean accept path). For each checker:
 *   1. steady window (--seconds): CPU of the checking process (/proc/PID/stat), checks per second
 *      actually done (connections the farm accepted) against the schedule (servers / interval), CPU
 *      per check, guest CPU idle; any server reported down is a false positive (lvsd: a "down" event;
 *      keepalived: a "Removing service" log line);
 *   2. --kills listeners (a different set per checker) are closed 137 ms apart; detection = the
 *      checker reports the server down − the close (lvsd: event stamped in the worker; keepalived: its
 *      log line stamped when read here).
 * Then prints the ratio lvsd / keepalived of CPU per check (> 1: lvsd spends more). With --rounds R
 * the two alternate R times in the same guest and medians are printed: the guest's CPU accounting
 * includes time the host takes away from the UML process, so single windows are noisy on a shared
 * machine.
 * When the schedule is more than the guest CPU can do, checks/s falls below it for the saturated
 * checker; CPU per check then stays comparable, CPU % does not (both are printed).
 * Open files: the guest's limit is 1024/4096 (kernel defaults, nothing raises it), and Node cannot
 * raise a hard limit; the farm needs one descriptor per listener, so farm and worker are started
 * under `prlimit --nofile` (we are root in the guest). keepalived raises its own limit.
 * Every wait is bounded; --budget (s, default 570) bounds the whole run; children are killed by PID.
 * Usage: node dist/bench/health-keepalived.js [--servers 5000] [--seconds 60] [--interval 1]
 *        [--kills 20] [--rounds 1] [--concurrency 1000] [--budget 570] [--net-farm] [--only lvsd|keepalived] [--json]
 *        [--worker-node-args "--cpu-prof --cpu-prof-dir=DIR"] [--worker PATH/health-worker.js]
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { endpointOf } from './health-farm.js';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const opt = (n: string, d: number) => (args.indexOf(`--${n}`) >= 0 ? Number(args[args.indexOf(`--${n}`) + 1]) : d);
const strOpt = (n: string) => (args.indexOf(`--${n}`) >= 0 ? args[args.indexOf(`--${n}`) + 1] : undefined);
const N = opt('servers', 5000);
const SECONDS = opt('seconds', 60);
const INTERVAL = opt('interval', 1);
const KILLS = Math.min(opt('kills', 20), Math.floor(N / 2));
const BUDGET_S = opt('budget', 570);
const ONLY = strOpt('only');
const ROUNDS = Math.max(1, opt('rounds', 1));
/** lvsd's maxConcurrent (the daemon's default is 1000). */
const CONCURRENCY = opt('concurrency', 1000);
/** Extra node options for the lvsd worker, e.g. "--cpu-prof --cpu-prof-dir=/var/tmp/prof" (with lab exec --rw). */
/** Another build's health-worker.js (A/B comparisons of lvsd versions in one guest). */
const WORKER = strOpt('worker') ?? join(here, 'health-worker.js');
const WORKER_NODE_ARGS = (strOpt('worker-node-args') ?? '').split(/\s+/).filter(Boolean);
const PER = 100;
const BASE = 30000;
const TICK = 100; // USER_HZ
const NOFILE = N + 4096;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const t00 = Date.now();
const log = (m: string) => process.stderr.write(`[${((Date.now() - t00) / 1000).toFixed(1)} s] ${m}\n`);

/** [utime, stime, minor faults] of a process (proc(5): fields 14, 15, 10). */
function procStat(pid: number): [number, number, number] {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return [Number(f[11]), Number(f[12]), Number(f[7])];
}
function cpuTicks(pid: number): number {
  const [u, s] = procStat(pid);
  return u + s;
}
/** Whole-machine [busy, total] jiffies from /proc/stat (the guest has one CPU). */
function machineTicks(): [number, number] {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  return [total - f[3]! - (f[4] ?? 0), total];
}
function pct(xs: number[], p: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}
/** Kernel counters that tell a dropped SYN from a slow checker: softnet backlog drops, listen queue overflows, retransmitted segments. */
function kernelDrops(): { softnet_dropped: number; listen_overflows: number; listen_drops: number; retrans_segs: number; syn_retrans: number } {
  const softnet = readFileSync('/proc/net/softnet_stat', 'utf8').trim().split('\n').reduce((a, l) => a + parseInt(l.trim().split(/\s+/)[1] ?? '0', 16), 0);
  const table = (file: string, prefix: string) => {
    const ls = readFileSync(file, 'utf8').split('\n').filter((l) => l.startsWith(prefix));
    const names = (ls[0] ?? '').split(/\s+/).slice(1);
    const vals = (ls[1] ?? '').split(/\s+/).slice(1).map(Number);
    return (n: string) => vals[names.indexOf(n)] ?? NaN;
  };
  const ext = table('/proc/net/netstat', 'TcpExt:');
  const tcp = table('/proc/net/snmp', 'Tcp:');
  return { softnet_dropped: softnet, listen_overflows: ext('ListenOverflows'), listen_drops: ext('ListenDrops'), retrans_segs: tcp('RetransSegs'), syn_retrans: ext('TCPSynRetrans') };
}
function dropsSince(k0: ReturnType<typeof kernelDrops>) {
  const k1 = kernelDrops();
  return Object.fromEntries(Object.entries(k1).map(([k, v]) => [k, v - k0[k as keyof typeof k0]])) as ReturnType<typeof kernelDrops>;
}

function ipvsDests(): number {
  if (!existsSync('/proc/net/ip_vs')) return -1;
  return readFileSync('/proc/net/ip_vs', 'utf8').split('\n').filter((l) => l.includes('->') && !l.includes('RemoteAddress')).length;
}
const havePrlimit = (() => {
  try {
    execFileSync('prlimit', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

type Kid = ReturnType<typeof child>;
const kids: ChildProcess[] = [];

function child(name: string, cmd: string, argv: string[], nofile = 0) {
  const [bin, av] = nofile && havePrlimit ? ['prlimit', [`--nofile=${nofile}:${nofile}`, '--', cmd, ...argv]] : [cmd, argv];
  const c: ChildProcess = spawn(bin, av, { stdio: ['pipe', 'pipe', 'pipe'] });
  kids.push(c);
  const lines: string[] = [];
  const err: string[] = [];
  const listeners: Array<(l: string, at: number) => void> = [];
  const onLine = (l: string) => {
    lines.push(l);
    const at = Date.now();
    for (const f of listeners) f(l, at);
  };
  createInterface({ input: c.stdout! }).on('line', onLine);
  createInterface({ input: c.stderr! }).on('line', (l) => {
    err.push(l);
    if (err.length > 200) err.shift();
    onLine(l);
  });
  c.stdin!.on('error', () => {});
  return {
    name,
    c,
    lines,
    err,
    on(f: (l: string, at: number) => void) {
      listeners.push(f);
    },
    send: (l: string) => c.stdin!.write(l + '\n'),
    async wait(pred: (l: string) => boolean, ms: number, what: string, from = 0): Promise<string> {
      const end = Date.now() + ms;
      for (;;) {
        for (let i = from; i < lines.length; i++) if (pred(lines[i]!)) return lines[i]!;
        if (c.exitCode !== null || c.signalCode !== null) throw new Error(`${name} exited (${c.exitCode ?? c.signalCode}) before ${what}: ${err.slice(-5).join(' | ')}`);
        if (Date.now() > end) throw new Error(`${name}: no ${what} within ${ms} ms: ${err.slice(-5).join(' | ')}`);
        await sleep(50);
      }
    },
  };
}

async function accepted(farm: Kid): Promise<number> {
  const n = farm.lines.length;
  farm.send('stats');
  const l = await farm.wait((x) => x.startsWith('accepted '), 20_000, 'stats', n);
  return Number(l.split(' ')[1]);
}

interface Window {
  seconds: number;
  cpu_percent: number;
  checks_per_second: number;
  scheduled_per_second: number;
  achieved_of_schedule: number;
  cpu_per_check_us: number;
  user_per_check_us: number;
  sys_per_check_us: number;
  minor_faults_per_check: number;
  farm_cpu_percent: number;
  guest_busy_percent: number;
  kernel: ReturnType<typeof kernelDrops>;
}

async function steady(farm: Kid, pid: number, scheduled: number): Promise<Window> {
  const a0 = await accepted(farm);
  const p0 = procStat(pid);
  const f0 = cpuTicks(farm.c.pid!);
  const m0 = machineTicks();
  const k0 = kernelDrops();
  const t0 = performance.now();
  await sleep(SECONDS * 1000);
  const p1 = procStat(pid);
  const f1 = cpuTicks(farm.c.pid!);
  const m1 = machineTicks();
  const kernel = dropsSince(k0);
  const secs = (performance.now() - t0) / 1000;
  const rate = ((await accepted(farm)) - a0) / secs;
  const cpu = (p1[0] + p1[1] - p0[0] - p0[1]) / TICK / secs;
  const checks = rate * secs;
  return {
    seconds: +secs.toFixed(1),
    cpu_percent: +(cpu * 100).toFixed(1),
    checks_per_second: Math.round(rate),
    scheduled_per_second: Math.round(scheduled),
    achieved_of_schedule: +(rate / scheduled).toFixed(2),
    cpu_per_check_us: +((cpu / rate) * 1e6).toFixed(1),
    user_per_check_us: +((((p1[0] - p0[0]) / TICK) / checks) * 1e6).toFixed(1),
    sys_per_check_us: +((((p1[1] - p0[1]) / TICK) / checks) * 1e6).toFixed(1),
    minor_faults_per_check: +((p1[2] - p0[2]) / checks).toFixed(3),
    farm_cpu_percent: +(((f1 - f0) / TICK / secs) * 100).toFixed(1),
    guest_busy_percent: +(((m1[0] - m0[0]) / (m1[1] - m0[1])) * 100).toFixed(1),
    kernel,
  };
}

/** Close `victims` one by one; `downAt(i)` is when the checker reported i down (undefined: not yet). */
async function killPhase(farm: Kid, victims: number[], downAt: (i: number) => number | undefined) {
  const killedAt = new Map<number, number>();
  farm.on((l) => {
    const m = /^killed (\d+) (\d+)/.exec(l);
    if (m) killedAt.set(Number(m[1]), Number(m[2]));
  });
  for (const v of victims) {
    farm.send(`kill ${v}`);
    await sleep(137); // not a divisor of the interval: kills land at every phase of the check cycle
  }
  const deadline = Date.now() + (2 * INTERVAL + 1 + 15) * 1000;
  while (Date.now() < deadline && victims.some((v) => downAt(v) === undefined)) await sleep(100);
  const det: number[] = [];
  for (const v of victims) {
    const d = downAt(v);
    const k = killedAt.get(v);
    if (d !== undefined && k !== undefined) det.push(d - k);
  }
  return { kills: victims.length, detected: det.length, p50_ms: pct(det, 50), p99_ms: pct(det, 99), max_ms: det.length ? Math.max(...det) : NaN, samples_ms: det };
}

/** Listen again on the killed servers, so the next checker gets the whole set. */
async function revive(farm: Kid, victims: number[]) {
  const n = farm.lines.length;
  for (const v of victims) farm.send(`revive ${v}`);
  for (const v of victims) await farm.wait((l) => l.startsWith(`revived ${v} `), 20_000, `revive ${v}`, n);
}

function victimsFrom(phase: number): number[] {
  // Spread over the whole set, a different set in each phase.
  const step = Math.floor(N / KILLS);
  return Array.from({ length: KILLS }, (_, k) => (k * step + phase * 7 + 3) % N);
}

async function runLvsd(farm: Kid, phase: number) {
  const t = Date.now();
  const worker = child('lvsd worker', process.execPath, [...WORKER_NODE_ARGS, WORKER, ...[N, PER, BASE, INTERVAL, 1, 1, 1, CONCURRENCY].map(String)], NOFILE);
  await worker.wait((l) => l.startsWith('started'), 180_000, 'start');
  log(`lvsd: health subsystem started in ${Date.now() - t} ms (config of ${N} servers parsed in the worker)`);
  const status = async () => {
    const n = worker.lines.length;
    worker.send('status');
    const l = await worker.wait((x) => x.startsWith('status '), 20_000, 'status', n);
    return JSON.parse(l.slice(7)) as { inFlight: number; queued: number; run: number; rss: number; lagP99Ms: number; lagMaxMs: number };
  };
  const downs = new Map<number, number>();
  let falseDowns = 0;
  const sample: string[] = [];
  let killing = false;
  const victims = victimsFrom(phase);
  worker.on((l) => {
    const m = /^rs (\d+) (up|down) (\d+) (\S*)/.exec(l);
    if (!m || m[2] !== 'down') return;
    const i = Number(m[1]);
    if (killing && victims.includes(i)) {
      if (!downs.has(i)) downs.set(i, Number(m[3]));
    } else {
      falseDowns++;
      if (sample.length < 5) sample.push(`${i}:${m[4]}`);
    }
  });
  await sleep(Math.max(5000, INTERVAL * 1000 + 2000)); // first runs are staggered over min(interval, 5 s)
  const s0 = await status();
  const w = await steady(farm, worker.c.pid!, N / (INTERVAL * 0.95)); // jitter shortens delays by 5 % on average
  const s1 = await status();
  log(`lvsd steady: ${JSON.stringify(w)}; false downs ${falseDowns} ${sample.join(" ")}`);
  killing = true;
  const det = await killPhase(farm, victims, (i) => downs.get(i));
  log(`lvsd kills: ${JSON.stringify(det)}`);
  worker.send('quit');
  for (let i = 0; i < 50 && worker.c.exitCode === null; i++) await sleep(100);
  if (worker.c.exitCode === null) worker.c.kill('SIGKILL');
  await revive(farm, victims);
  return {
    ...w,
    checks_run_per_second: Math.round((s1.run - s0.run) / w.seconds),
    queued_at_end: s1.queued,
    in_flight_at_end: s1.inFlight,
    event_loop_lag_p99_ms: +s1.lagP99Ms.toFixed(1),
    rss_mb: Math.round(s1.rss / 1048576),
    false_downs: falseDowns,
    false_down_sample: sample,
    detection: det,
  };
}

async function runKeepalived(farm: Kid, phase: number) {
  const dir = mkdtempSync(join(tmpdir(), 'lvsd-kabench-'));
  try {
    const conf = join(dir, 'keepalived.conf');
    const rs: string[] = [];
    for (let i = 0; i < N; i++) {
      const e = endpointOf(i, PER, BASE);
      rs.push(`  real_server ${e.host} ${e.port} {\n    weight 1\n    TCP_CHECK {\n      connect_timeout 1\n      retry 0\n    }\n  }`);
    }
    writeFileSync(conf, `global_defs {\n  router_id bench\n}\nvirtual_server 192.0.2.100 80 {\n  delay_loop ${INTERVAL}\n  lb_algo rr\n  lb_kind NAT\n  protocol TCP\n${rs.join('\n')}\n}\n`);
    execFileSync('ipvsadm', ['-C']);
    const t = Date.now();
    const ka = child('keepalived', 'keepalived', ['-n', '-l', '-G', '-R', '-C', '-f', conf, '-p', join(dir, 'k.pid'), '-c', join(dir, 'c.pid')]);
    const byEndpoint = new Map<string, number>();
    for (let i = 0; i < N; i++) {
      const e = endpointOf(i, PER, BASE);
      byEndpoint.set(`${e.host}:${e.port}`, i);
    }
    const downs = new Map<number, number>();
    let falseDowns = 0;
    const sample: string[] = [];
    let killing = false;
    const victims = victimsFrom(phase);
    ka.on((l, at) => {
      // "Removing service [127.0.1.3]:tcp:30017 to VS [192.0.2.100]:tcp:80"
      const m = /Removing service \[([0-9.]+)\]:(?:tcp:)?(\d+)/.exec(l);
      if (!m) return;
      const i = byEndpoint.get(`${m[1]}:${m[2]}`);
      if (i === undefined) return;
      if (killing && victims.includes(i)) {
        if (!downs.has(i)) downs.set(i, at);
      } else {
        falseDowns++;
        if (sample.length < 5) sample.push(l.slice(0, 120));
      }
    });
    let checkerPid = 0;
    for (let i = 0; i < 600 && !checkerPid; i++) {
      if (ka.c.exitCode !== null) throw new Error(`keepalived exited ${ka.c.exitCode}: ${ka.err.slice(-5).join(' | ')}`);
      try {
        checkerPid = Number(readFileSync(join(dir, 'c.pid'), 'utf8').trim());
      } catch {
        await sleep(100);
      }
    }
    if (!checkerPid) throw new Error('keepalived: no checker pid within 60 s');
    // Wait until the checker has programmed every destination (initial state: all up).
    let dests = 0;
    for (let i = 0; i < 240 && (dests = ipvsDests()) < N; i++) await sleep(500);
    log(`keepalived: checker pid ${checkerPid}, ${dests} destinations in IPVS after ${Date.now() - t} ms`);
    await sleep(Math.max(5000, INTERVAL * 1000 + 2000));
    const w = await steady(farm, checkerPid, N / INTERVAL);
    const destsAfter = ipvsDests();
    log(`keepalived steady: ${JSON.stringify(w)}; false downs ${falseDowns}; destinations ${destsAfter}`);
    killing = true;
    const det = await killPhase(farm, victims, (i) => downs.get(i));
    log(`keepalived kills: ${JSON.stringify(det)}`);
    for (const pid of [ka.c.pid!, checkerPid]) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    execFileSync('ipvsadm', ['-C']);
    await revive(farm, victims);
    return { ...w, destinations_in_ipvs: destsAfter, false_downs: falseDowns, false_down_sample: sample, detection: det };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main() {
  if (!existsSync('/proc/net/ip_vs')) {
    process.stderr.write('IPVS is not available here: run inside the lab (bin/lvsd lab exec -- node dist/bench/health-keepalived.js)\n');
    process.exit(69);
  }
  const budget = setTimeout(() => {
    log(`budget of ${BUDGET_S} s exceeded: giving up`);
    for (const k of kids) if (k.exitCode === null) k.kill('SIGKILL');
    process.exit(124);
  }, BUDGET_S * 1000);
  budget.unref();
  const limits = /Max open files\s+(\d+)\s+(\d+)/.exec(readFileSync('/proc/self/limits', 'utf8'));
  log(`${N} servers, interval ${INTERVAL} s, window ${SECONDS} s, ${KILLS} kills; open files here ${limits?.[1]}/${limits?.[2]}, farm and worker get ${havePrlimit ? NOFILE : 'the same (no prlimit)'}; somaxconn ${readFileSync('/proc/sys/net/core/somaxconn', 'utf8').trim()}; ${readFileSync('/proc/meminfo', 'utf8').split('\n')[0]}`);
  try {
    const farm = child('farm', process.execPath, [join(here, 'health-farm.js'), String(N), String(PER), String(BASE), args.includes('--net-farm') ? 'net' : 'lean'], NOFILE);
    await farm.wait((l) => l === 'ready', 120_000, 'ready');
    log(`farm: ${farm.lines.find((l) => l.startsWith('listening'))}`);
    type L = Awaited<ReturnType<typeof runLvsd>>;
    type K = Awaited<ReturnType<typeof runKeepalived>>;
    const lv: L[] = [];
    const ka: K[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      if (ONLY !== 'keepalived') lv.push(await runLvsd(farm, 2 * round));
      if (ONLY !== 'lvsd') ka.push(await runKeepalived(farm, 2 * round + 1));
      log(`round ${round + 1} of ${ROUNDS} done`);
    }
    farm.send('quit');
    const med = (xs: number[]) => pct(xs, 50);
    type Runs = Array<Window & { false_downs: number; detection: { samples_ms: number[]; kills: number } }>;
    const summary = (runs: Runs) => {
      if (!runs.length) return undefined;
      const det = runs.flatMap((r) => r.detection.samples_ms);
      return {
        rounds: runs.length,
        checks_per_second: med(runs.map((r) => r.checks_per_second)),
        scheduled_per_second: runs[0]!.scheduled_per_second,
        cpu_percent: med(runs.map((r) => r.cpu_percent)),
        cpu_per_check_us: med(runs.map((r) => r.cpu_per_check_us)),
        cpu_per_check_us_each: runs.map((r) => r.cpu_per_check_us),
        user_per_check_us: med(runs.map((r) => r.user_per_check_us)),
        sys_per_check_us: med(runs.map((r) => r.sys_per_check_us)),
        minor_faults_per_check: med(runs.map((r) => r.minor_faults_per_check)),
        farm_cpu_percent: med(runs.map((r) => r.farm_cpu_percent)),
        guest_busy_percent: med(runs.map((r) => r.guest_busy_percent)),
        kernel_drops: runs.reduce((a, r) => a + r.kernel.softnet_dropped + r.kernel.listen_overflows + r.kernel.listen_drops + r.kernel.syn_retrans, 0),
        false_downs: runs.reduce((a, r) => a + r.false_downs, 0),
        kills: runs.reduce((a, r) => a + r.detection.kills, 0),
        detected: det.length,
        detection_p50_ms: pct(det, 50),
        detection_p99_ms: pct(det, 99),
        detection_max_ms: det.length ? Math.max(...det) : NaN,
      };
    };
    const ratios = lv.length && ka.length ? lv.map((l, i) => +(l.cpu_per_check_us / ka[i]!.cpu_per_check_us).toFixed(2)) : [];
    const r = {
      date: new Date().toISOString(),
      servers: N,
      interval_s: INTERVAL,
      timeout_s: 1,
      window_s: SECONDS,
      rounds: ROUNDS,
      lvsd: summary(lv),
      keepalived: summary(ka),
      ratio_cpu_per_check_lvsd_over_keepalived_each: ratios,
      ratio_cpu_per_check_lvsd_over_keepalived: ratios.length ? med(ratios) : undefined,
      runs: { lvsd: lv.map(({ detection, ...x }) => ({ ...x, detection: { ...detection, samples_ms: undefined } })), keepalived: ka.map(({ detection, ...x }) => ({ ...x, detection: { ...detection, samples_ms: undefined } })) },
    };
    if (args.includes('--json')) process.stdout.write(JSON.stringify(r) + '\n');
    else {
      const row = (name: string, w: NonNullable<ReturnType<typeof summary>>) =>
        `  ${name.padEnd(11)} ${String(w.checks_per_second).padStart(6)}/s of ${w.scheduled_per_second}/s scheduled (${Math.round((w.checks_per_second / w.scheduled_per_second) * 100)} %), CPU ${w.cpu_percent} %, ${w.cpu_per_check_us} µs/check (rounds: ${w.cpu_per_check_us_each.join(', ')}); farm ${w.farm_cpu_percent} %, guest busy ${w.guest_busy_percent} %, kernel drops ${w.kernel_drops}; false downs ${w.false_downs}; detection p50 ${w.detection_p50_ms} ms p99 ${w.detection_p99_ms} ms max ${w.detection_max_ms} ms (${w.detected}/${w.kills})`;
      process.stdout.write(
        [
          `health-keepalived: ${N} servers, interval ${INTERVAL} s, timeout 1 s, fall 1 / retry 0, ${SECONDS} s window each, ${ROUNDS} round(s) alternating in the same guest (medians)`,
          ...(r.lvsd ? [row('lvsd', r.lvsd)] : []),
          ...(r.keepalived ? [row('keepalived', r.keepalived)] : []),
          ...(r.ratio_cpu_per_check_lvsd_over_keepalived !== undefined ? [`  CPU per check, lvsd / keepalived: ${r.ratio_cpu_per_check_lvsd_over_keepalived} (rounds: ${ratios.join(', ')})`] : []),
          JSON.stringify(r),
          '',
        ].join('\n'),
      );
    }
  } finally {
    for (const k of kids) if (k.exitCode === null) k.kill('SIGKILL');
  }
}
main().catch((e) => {
  log(`failed: ${(e as Error).message}`);
  for (const k of kids) if (k.exitCode === null) k.kill('SIGKILL');
  process.exit(1);
});
