/**
 * Benchmark: loading a configuration, lvsd against keepalived's own check on the equivalent file,
 * in the same run (issue 17 item 2). Files (test/reliability/support/big-config.ts writes both forms
 * from one description):
 *   - 10k / 20k / 40k unknown keys in the VRRP instance (the error path; linear, not quadratic);
 *   - the issue's 45,000-line file with a misspelt key in each of its 6,400 real servers;
 *   - the same 45,000-line file without the typos (valid).
 * Measured for each:
 *   - lvsd's loader in process (read + parse + validate + diagnostics: what the worker thread does),
 *     median of RUNS after one warm-up;
 *   - `lvsd check-config -c FILE` and `keepalived -t -f FILE` as processes (start-up included),
 *     median of RUNS, and their ratio;
 *   - for the 45k-line invalid file: the longest gap between ticks of a 10 ms timer while it loads
 *     on the worker thread, against the gap when the same load runs on the loop.
 * Prints a table; writes bench/results/config-load.json. Run: node dist/bench/config-load.js [RUNS]
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir, cpus, loadavg } from 'node:os';
import { loadConfigFile, ConfigError } from '../src/config/load.js';
import { loadConfigOffThread } from '../src/config/offload.js';
import { bigKeepalivedConf, bigLvsdYaml, ISSUE_45K, type BigSpec } from '../test/reliability/support/big-config.js';
import { lvsdBin, repoRoot } from '../test/support/proc.js';

const RUNS = Number(process.argv[2] ?? 5);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function timeProcess(cmd: string, args: string[]): { ms: number; status: number | null } {
  const t0 = performance.now();
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], maxBuffer: 64 * 1024 * 1024 });
  return { ms: performance.now() - t0, status: r.status };
}

function loaderMs(file: string): { ms: number; cpuMs: number; errors: number } {
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  let errors = 0;
  try {
    loadConfigFile(file, { checkFiles: false });
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    errors = e.diagnostics.filter((d) => d.severity === 'error').length + e.omitted;
  }
  const c = process.cpuUsage(c0);
  return { ms: performance.now() - t0, cpuMs: (c.user + c.system) / 1000, errors };
}

/** Longest gap (ms) between ticks of a 10 ms timer on this loop while `load` runs (a stall). */
async function stallMs(load: () => Promise<unknown>): Promise<number> {
  let last = performance.now();
  let max = 0;
  const t = setInterval(() => {
    const now = performance.now();
    max = Math.max(max, now - last);
    last = now;
  }, 10);
  await load().catch(() => undefined);
  // A synchronous load holds the timer back; let it fire once more so that gap is counted.
  await new Promise((r) => setTimeout(r, 30));
  clearInterval(t);
  return max;
}

interface Row {
  name: string;
  lines: number;
  bytes: number;
  errors: number;
  loader_ms: number;
  loader_cpu_ms: number;
  lvsd_check_ms: number;
  keepalived_check_ms: number;
  keepalived_status: number | null;
  ratio: number;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'lvsd-bench-cfg-'));
  const cases: Array<[string, BigSpec]> = [
    ['10k unknown keys', { services: 0, realServers: 0, typo: false, unknownKeys: 10_000 }],
    ['20k unknown keys', { services: 0, realServers: 0, typo: false, unknownKeys: 20_000 }],
    ['40k unknown keys', { services: 0, realServers: 0, typo: false, unknownKeys: 40_000 }],
    ['45k lines, 6,400 typos', ISSUE_45K],
    ['45k lines, valid', { ...ISSUE_45K, typo: false }],
  ];
  const rows: Row[] = [];
  let stall: { worker_ms: number; loop_ms: number; idle_ms: number } | undefined;
  try {
    for (const [name, spec] of cases) {
      const y = join(dir, 'lvsd.yaml');
      const k = join(dir, 'keepalived.conf');
      const yaml = bigLvsdYaml(spec);
      writeFileSync(y, yaml);
      writeFileSync(k, bigKeepalivedConf(spec));
      loaderMs(y); // warm-up: JIT and the schema's caches
      const loads = Array.from({ length: RUNS }, () => loaderMs(y));
      const lv: number[] = [];
      const ka: number[] = [];
      let kStatus: number | null = null;
      for (let i = 0; i < RUNS; i++) {
        // Interleaved so a burst of load on the machine hits both alike.
        lv.push(timeProcess(process.execPath, [lvsdBin, 'check-config', '-c', y, '--no-file-checks', '--quiet']).ms);
        const kr = timeProcess('keepalived', ['-t', '-f', k]);
        ka.push(kr.ms);
        kStatus = kr.status;
      }
      const row: Row = {
        name,
        lines: yaml.split('\n').length - 1,
        bytes: Buffer.byteLength(yaml),
        errors: loads[0]!.errors,
        loader_ms: Math.round(median(loads.map((l) => l.ms))),
        loader_cpu_ms: Math.round(median(loads.map((l) => l.cpuMs))),
        lvsd_check_ms: Math.round(median(lv)),
        keepalived_check_ms: Math.round(median(ka)),
        keepalived_status: kStatus,
        ratio: Math.round((median(lv) / median(ka)) * 10) / 10,
      };
      rows.push(row);
      process.stdout.write(`${name.padEnd(24)} ${String(row.lines).padStart(6)} lines ${String(row.errors).padStart(6)} errors | loader ${String(row.loader_ms).padStart(5)} ms (cpu ${String(row.loader_cpu_ms).padStart(5)}) | check-config ${String(row.lvsd_check_ms).padStart(5)} ms vs keepalived -t ${String(row.keepalived_check_ms).padStart(4)} ms (exit ${kStatus}) = ${row.ratio}x\n`);
      if (spec === ISSUE_45K) {
        const worker = median(await seq(RUNS, () => stallMs(() => loadConfigOffThread(y, { checkFiles: false }))));
        const loop = median(await seq(RUNS, () => stallMs(async () => loadConfigFile(y, { checkFiles: false }))));
        // The same timer with nothing loading, for as long: what the machine's load alone does to it.
        const idle = median(await seq(RUNS, () => stallMs(() => new Promise((r) => setTimeout(r, Math.max(500, row.loader_ms))))));
        stall = { worker_ms: Math.round(worker), loop_ms: Math.round(loop), idle_ms: Math.round(idle) };
        process.stdout.write(`  longest 10 ms-timer gap while loading it: on the worker ${stall.worker_ms} ms, on the loop ${stall.loop_ms} ms (idle, same machine: ${stall.idle_ms} ms)\n`);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const out = { bench: 'config-load', at: new Date().toISOString(), runs: RUNS, node: process.version, cpus: cpus().length, loadavg: loadavg().map((x) => Math.round(x * 10) / 10), keepalived: 'Keepalived v2.2.7 (Debian)', rows, stall };
  mkdirSync(join(repoRoot, 'bench', 'results'), { recursive: true });
  writeFileSync(join(repoRoot, 'bench', 'results', 'config-load.json'), JSON.stringify(out, null, 2) + '\n');
  process.stdout.write(`load average ${out.loadavg.join(' ')}; written to bench/results/config-load.json\n`);
}

async function seq<T>(n: number, f: () => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < n; i++) out.push(await f());
  return out;
}

await main();
