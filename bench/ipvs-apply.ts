/**
 * IPVS programming benchmark, real kernel only:
 *   bin/lvsd lab exec --mem 2048M -- node dist/bench/ipvs-apply.js [SERVICES] [DESTS]
 * 1. SERVICES × DESTS (default 10,000 × 10) applied from an empty table by lvsd's reconciler
 *    (read table, plan, batched netlink) versus `ipvsadm -R` restoring the same table; ratio printed.
 *    lvsd runs in a child process so its peak RSS is its own.
 * 2. One weight change (a health event through the IPVS subsystem until the kernel acknowledged it)
 *    with 100, 1,000 and 10,000 services present; median / p95 / max of 51 changes. For contrast, the
 *    same change through a full reconcile (dump + plan + apply, what `lvsd ipvs apply` does).
 * Addresses are TEST-NET (192.0.2.0/24 VIPs, 198.51.100.0/24 real servers); nothing leaves the guest.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Registry } from 'prom-client';
import { Bus } from '../src/core/bus.js';
import { SystemClock } from '../src/core/clock.js';
import { silentLogger } from '../src/core/log.js';
import { NetlinkDataplane } from '../src/ipvs/netlink.js';
import { Reconciler } from '../src/ipvs/reconciler.js';
import { desiredFromConfig } from '../src/ipvs/desired.js';
import { createIpvsSubsystem } from '../src/ipvs/subsystem.js';
import { bigConfig, restoreText } from './support/big-table.js';

const ipvsadm = (...a: string[]) => execFileSync('ipvsadm', a, { encoding: 'utf8', maxBuffer: 256 << 20 });
function tableSize(): { services: number; dests: number } {
  const t = ipvsadm('-Ln');
  return { services: (t.match(/^TCP /gm) ?? []).length, dests: (t.match(/^ {2}-> \d/gm) ?? []).length };
}
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length - 1) * p))]!;
const r2 = (x: number) => Math.round(x * 100) / 100;

async function childApply(n: number, d: number): Promise<void> {
  const dp = await NetlinkDataplane.open();
  const desired = desiredFromConfig(bigConfig(n, d));
  const t0 = performance.now();
  const r = await new Reconciler(dp).full(desired, {}, 'apply');
  const ms = performance.now() - t0;
  await dp.close();
  process.stdout.write(JSON.stringify({ ms, ops: r.ops.length, failed: r.exec.failed.length, maxRssMB: process.resourceUsage().maxRSS / 1024 }) + '\n');
}

async function weightChange(n: number, d: number): Promise<{ n: number; medianMs: number; p95Ms: number; maxMs: number; fullReconcileMs: number }> {
  ipvsadm('-C');
  const cfg = bigConfig(n, d);
  const bus = new Bus();
  const sub = createIpvsSubsystem({ logger: silentLogger, clock: new SystemClock(), registry: new Registry(), bus }, { coalesceMs: 0 });
  await sub.start(cfg);
  const vs = cfg.virtual_servers[Math.floor(n / 2)]!;
  const rs = vs.real_servers[0]!;
  const times: number[] = [];
  for (let k = 0; k < 51; k++) {
    const t0 = performance.now();
    bus.emit('health.rs', { vs: vs.key, rs: rs.key, up: true, weight: 2 + (k % 2), inhibit: false, reason: 'bench' });
    await sub.settle();
    times.push(performance.now() - t0);
  }
  const line = ipvsadm('-Ln', '-t', `${vs.address}:${vs.port}`).split('\n').find((l) => l.includes(rs.key));
  if (!line || !/Masq\s+2\s/.test(line)) throw new Error(`weight change not visible in the kernel: ${line}`);
  await sub.stop();
  // The same change through a full reconcile (read the whole table, plan, apply).
  const dp = await NetlinkDataplane.open();
  const rec = new Reconciler(dp);
  const desired = desiredFromConfig(cfg);
  const t0 = performance.now();
  const full = await rec.full(desired, {}, 'apply');
  const fullReconcileMs = performance.now() - t0;
  if (full.ops.length !== 1) throw new Error(`full reconcile planned ${full.ops.length} ops, expected 1`);
  await dp.close();
  return { n, medianMs: r2(pct(times, 0.5)), p95Ms: r2(pct(times, 0.95)), maxMs: r2(Math.max(...times)), fullReconcileMs: r2(fullReconcileMs) };
}

async function main(): Promise<void> {
  const [a0, a1, a2] = process.argv.slice(2);
  if (a0 === '--child-apply') return childApply(Number(a1), Number(a2));
  if (!process.env.LVSD_IN_LAB) {
    process.stderr.write('run inside the lab: bin/lvsd lab exec --mem 2048M -- node dist/bench/ipvs-apply.js\n');
    process.exitCode = 69;
    return;
  }
  const n = Number(a0 ?? 10000);
  const d = Number(a1 ?? 10);
  execFileSync('ip', ['link', 'set', 'lo', 'up']);
  ipvsadm('-C');

  // 1. lvsd from empty (child process: its own RSS).
  const child = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--child-apply', String(n), String(d)], { encoding: 'utf8' });
  if (child.status !== 0) throw new Error(`lvsd apply child failed: ${child.stderr}`);
  const lv = JSON.parse(child.stdout) as { ms: number; ops: number; failed: number; maxRssMB: number };
  const lvSize = tableSize();
  ipvsadm('-C');

  // 2. ipvsadm -R of the same table.
  const dir = mkdtempSync(join(tmpdir(), 'ipvs-bench-'));
  const file = join(dir, 'rules');
  writeFileSync(file, restoreText(n, d));
  const t0 = performance.now();
  const rr = spawnSync('sh', ['-c', `ipvsadm -R < ${file}`], { encoding: 'utf8' });
  const ipvsadmMs = performance.now() - t0;
  if (rr.status !== 0) throw new Error(`ipvsadm -R failed: ${rr.stderr}`);
  const reSize = tableSize();
  ipvsadm('-C');
  rmSync(dir, { recursive: true, force: true });
  if (lvSize.services !== n || lvSize.dests !== n * d || reSize.services !== n || reSize.dests !== n * d) {
    throw new Error(`tables differ from ${n}×${d}: lvsd ${JSON.stringify(lvSize)}, ipvsadm ${JSON.stringify(reSize)}`);
  }

  // 3. One weight change at several table sizes.
  const changes = [];
  for (const size of [100, 1000, 10000].filter((x) => x <= n)) changes.push(await weightChange(size, d));
  ipvsadm('-C');

  const ratio = lv.ms / ipvsadmMs;
  const out = {
    loadavg: execFileSync('cat', ['/proc/loadavg'], { encoding: 'utf8' }).trim(),
    table: `${n} services × ${d} destinations`,
    lvsd: { ms: r2(lv.ms), ops: lv.ops, failed: lv.failed, peakRssMB: r2(lv.maxRssMB) },
    ipvsadmRestore: { ms: r2(ipvsadmMs) },
    ratio: r2(ratio),
    weightChange: changes,
  };
  process.stdout.write(`full apply from empty: lvsd ${r2(lv.ms)} ms (${lv.ops} ops, ${lv.failed} failed, peak RSS ${r2(lv.maxRssMB)} MB) vs ipvsadm -R ${r2(ipvsadmMs)} ms → ratio ${r2(ratio)} (goal ≤ 1.0)\n`);
  for (const c of changes) process.stdout.write(`one weight change with ${c.n} services: median ${c.medianMs} ms, p95 ${c.p95Ms} ms, max ${c.maxMs} ms (goal ≤ 5 ms); via full reconcile ${c.fullReconcileMs} ms\n`);
  process.stdout.write(JSON.stringify(out) + '\n');
}

await main();
