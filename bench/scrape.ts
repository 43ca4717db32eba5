/**
 * Scrape cost of the per virtual / real server metrics (issue 20), real kernel only:
 *   bin/lvsd lab exec --mem 2048M -- node dist/bench/scrape.js [SERVICES] [DESTS] [SCRAPES]
 * With SERVICES × DESTS (default 10,000 × 10) in the kernel (restored with `ipvsadm -R`), lvsd's
 * table metrics (src/ipvs/table-metrics.ts, the collectors the daemon registers, reading through
 * NetlinkDataplane) are scraped SCRAPES times (default 3) with `registry.metrics()`; for each we
 * record the wall time, the netlink dump's share of it, and the longest event-loop block while it
 * ran (a 1 ms interval's largest gap, and monitorEventLoopDelay's max). The real peer, in the same
 * run, is what an operator without lvsd runs for the same information: `ipvsadm -Ln --stats --exact`
 * (connections, packets, bytes) plus `ipvsadm -Ln` (weights, active/inactive connections).
 * Goals: a scrape under 1 s, no event-loop block over 20 ms. Nothing leaves the guest.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Registry } from 'prom-client';
import { NetlinkDataplane } from '../src/ipvs/netlink.js';
import { registerTableMetrics } from '../src/ipvs/table-metrics.js';
import { bigConfig, restoreText } from './support/big-table.js';

const r1 = (x: number) => Math.round(x * 10) / 10;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;

/** Runs `fn` while a 1 ms interval records its largest gap (the longest the loop was blocked). */
async function withLoopWatch<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number; maxGapMs: number; histMaxMs: number }> {
  const h = monitorEventLoopDelay({ resolution: 1 });
  let last = performance.now();
  let maxGap = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    maxGap = Math.max(maxGap, now - last);
    last = now;
  }, 1);
  h.enable();
  const t0 = performance.now();
  const value = await fn();
  const ms = performance.now() - t0;
  const tail = performance.now();
  maxGap = Math.max(maxGap, tail - last);
  clearInterval(timer);
  h.disable();
  return { value, ms, maxGapMs: maxGap, histMaxMs: h.max / 1e6 };
}

function timed(cmd: string, args: string[]): { ms: number; bytes: number } {
  const t0 = performance.now();
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 512 << 20 });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}`);
  return { ms, bytes: Buffer.byteLength(r.stdout) };
}

async function main(): Promise<void> {
  if (!process.env.LVSD_IN_LAB) {
    process.stderr.write('run inside the lab: bin/lvsd lab exec --mem 2048M -- node dist/bench/scrape.js\n');
    process.exitCode = 69;
    return;
  }
  const [a0, a1, a2] = process.argv.slice(2);
  const n = Number(a0 ?? 10000);
  const d = Number(a1 ?? 10);
  const scrapes = Math.min(20, Math.max(1, Number(a2 ?? 3)));
  execFileSync('ip', ['link', 'set', 'lo', 'up']);
  execFileSync('ipvsadm', ['-C']);
  const dir = mkdtempSync(join(tmpdir(), 'scrape-bench-'));
  const file = join(dir, 'rules');
  writeFileSync(file, restoreText(n, d));
  const rr = spawnSync('sh', ['-c', `ipvsadm -R < ${file}`], { encoding: 'utf8' });
  rmSync(dir, { recursive: true, force: true });
  if (rr.status !== 0) throw new Error(`ipvsadm -R failed: ${rr.stderr}`);

  const cfg = bigConfig(n, d);
  const dp = await NetlinkDataplane.open();
  const registry = new Registry();
  let dumpMs = 0;
  // The source's clock moves 10 s per scrape, so each scrape below reads the kernel once afresh
  // (as one scrape per interval does) and its collectors share that one dump (the 1 s cache).
  let clock = 0;
  registerTableMetrics(registry, {
    read: () => {
      const t0 = performance.now();
      return dp.dump().then((t) => { dumpMs = performance.now() - t0; return t; });
    },
    declared: () => cfg.virtual_servers,
    now: () => clock,
  });

  const lv: Array<{ ms: number; dumpMs: number; maxGapMs: number; histMaxMs: number; series: number; bytes: number }> = [];
  const peer: Array<{ ms: number; bytes: number }> = [];
  for (let i = 0; i < scrapes; i++) {
    clock += 10_000;
    const s = await withLoopWatch(() => registry.metrics());
    const series = s.value.split('\n').filter((l) => l.startsWith('lvsd_')).length;
    lv.push({ ms: s.ms, dumpMs, maxGapMs: s.maxGapMs, histMaxMs: s.histMaxMs, series, bytes: Buffer.byteLength(s.value) });
    const st = timed('ipvsadm', ['-Ln', '--stats', '--exact']);
    const ls = timed('ipvsadm', ['-Ln']);
    peer.push({ ms: st.ms + ls.ms, bytes: st.bytes + ls.bytes });
    process.stdout.write(`scrape ${i + 1}: lvsd ${r1(s.ms)} ms (dump ${r1(dumpMs)} ms, ${series} series, ${(lv[i]!.bytes / 1e6).toFixed(1)} MB), longest loop block ${r1(s.maxGapMs)} ms (histogram max ${r1(s.histMaxMs)} ms); ipvsadm --stats + -Ln ${r1(st.ms + ls.ms)} ms\n`);
  }
  await dp.close();
  execFileSync('ipvsadm', ['-C']);
  const expectSeries = n * 7 + n * d * 9; // 7 series per service, 9 per real server (see table-metrics.ts)
  if (lv.some((x) => x.series !== expectSeries)) throw new Error(`expected ${expectSeries} series per scrape, got ${lv.map((x) => x.series).join(', ')}`);

  const out = {
    loadavg: execFileSync('cat', ['/proc/loadavg'], { encoding: 'utf8' }).trim(),
    table: `${n} services × ${d} destinations`,
    scrapes,
    lvsd: { medianMs: r1(median(lv.map((x) => x.ms))), maxMs: r1(Math.max(...lv.map((x) => x.ms))), medianDumpMs: r1(median(lv.map((x) => x.dumpMs))), maxLoopBlockMs: r1(Math.max(...lv.map((x) => x.maxGapMs))), series: lv[0]!.series, bytes: lv[0]!.bytes },
    ipvsadm: { medianMs: r1(median(peer.map((x) => x.ms))), bytes: peer[0]!.bytes },
    ratio: r1(median(lv.map((x) => x.ms)) / median(peer.map((x) => x.ms))),
  };
  process.stdout.write(`lvsd scrape median ${out.lvsd.medianMs} ms (goal < 1000), longest loop block ${out.lvsd.maxLoopBlockMs} ms (goal ≤ 20) vs ipvsadm ${out.ipvsadm.medianMs} ms → ratio ${out.ratio}\n`);
  process.stdout.write(JSON.stringify(out) + '\n');
}

await main();
