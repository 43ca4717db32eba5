/**
 * New-connection sync latency across a REAL pair (issue 18): each director in its own UML guest
 * (its own kernel and CPU), the client and real servers in a third, on a private segment (labPair).
 * Kernel channel and lvsd channel in the same run, each on freshly booted guests. Runs on the host:
 *   flock -w 1200 /work/wt/lab.lock node dist/bench/sync-pair.js [--phases 10:10,1000:4,5000:4]
 *     [--inject i5000:4] [--modes kernel,lvsd] [--json FILE] [--cpu-prof DIR] [--trace]
 * (--trace: in the client phases of either mode, each sampled flow's steps dated in a's and b's
 * guests, bench/support/sync-trace.ts: a's stream record, the frame's sight, b's receipt, b's
 * hand-over to its kernel (mode kernel: the kernel message's arrival at b), and how fast each
 * step passed all flows' records; b's kernel backup daemon's receive queue and (mode lvsd) b's
 * lvsd frame socket's every 50 ms; printed as "steps" and the queues per phase.)
 * (--cpu-prof: a's lvsd of each mode runs under `node --cpu-prof`, its profiles and its worker
 * threads' kept in DIR/MODE; bench/support/cpu-prof-top.ts summarizes them.)
 * (--inject: phases of the lvsd mode only, the flows installed into a's kernel through its backup
 * daemon on lo instead of sent by the client: the kernel channel sends only from the packet path.)
 * Per phase: RATE new UDP flows/s for SECONDS from the client (3 datagrams each, a fresh source
 * port; the kernel master daemon sends a UDP connection at its 3rd packet; one sendmmsg per batch,
 * which reaches 5,000 flows/s in the client's guest; what reached a is counted by a's IPVS); b's guest reads its
 * kernel table and notes when each sampled flow appears (bench/support/table-poller.ts); the time
 * from send (c's clock) to visible in b (b's clock, corrected by the measured offset) is printed as
 * upper bound (end of the read that showed it), lower bound (start of the read before) and their
 * midpoint; CPU of each director's lvsd, its ipvs-* kernel threads and its whole guest over the
 * phase. See bench/support/sync-pair-driver.ts. The host has 2 cores for 3 guests and the uml_switch.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PassThrough } from 'node:stream';
import { labPair } from '../src/lab/uml.js';
import { AGENT_PORT } from '../src/lab/pair-agent.js';
import { writeSyncDirectorConfig } from './support/sync-director.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const VIP = '192.0.2.100';
const KEY = 'hex:' + 'b0a7'.repeat(12);

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : dflt;
}

async function runMode(mode: 'kernel' | 'lvsd', phases: string, dir: string, prof: string): Promise<Record<string, unknown>> {
  const cfg = (name: string, prio: number) =>
    writeSyncDirectorConfig(dir, {
      name: `${name}-${mode}`, prio, port: 19691, vip: VIP, channel: mode, syncId: 42,
      keyFile: mode === 'lvsd' ? join(dir, 'sync.key') : undefined,
      virtualServers: [
        `{ address: ${VIP}, port: 5353, protocol: udp, scheduler: rr, forwarding: dr, real_servers: [{ address: 192.0.2.11 }, { address: 192.0.2.12 }] }`,
        `{ address: ${VIP}, port: 80, scheduler: rr, forwarding: dr, real_servers: [{ address: 192.0.2.11 }, { address: 192.0.2.12 }] }`,
      ],
    });
  const [ca, cb] = [cfg('a', 150), cfg('b', 100)];
  let out = '';
  const sink = new PassThrough();
  sink.on('data', (d: Buffer) => {
    out += d.toString();
    process.stderr.write(d);
  });
  const quiet = () => new PassThrough().resume();
  const agentArgv = (addr: string) => [process.execPath, join(root, 'dist', 'src', 'lab', 'pair-agent.js'), addr, String(AGENT_PORT), '840'];
  const profDir = prof ? join(prof, mode) : '';
  if (profDir) mkdirSync(profDir, { recursive: true });
  const common = { cwd: root, rw: profDir ? [dir, profDir] : [dir], timeoutSec: 870, mem: '1024M' };
  const t0 = Date.now();
  const res = await labPair([
    { name: 'a', addrs: ['192.0.2.2/24'], argv: agentArgv('192.0.2.2'), stdout: quiet(), stderr: quiet(), ...common },
    { name: 'b', addrs: ['192.0.2.3/24'], argv: agentArgv('192.0.2.3'), stdout: quiet(), stderr: quiet(), ...common },
    { name: 'c', addrs: ['192.0.2.60/24'], argv: [process.execPath, join(here, 'support', 'sync-pair-driver.js'), ca, cb, phases, ...(profDir ? [profDir] : []), ...(process.argv.includes('--trace') ? ['--trace'] : [])], stdout: sink, stderr: sink, ...common },
  ], { primary: 'c' });
  const line = out.split('\n').find((l) => l.startsWith('RESULT '));
  if (res.c!.code !== 0 || !line) throw new Error(`${mode}: the driver failed (${res.c!.code}): ${out.slice(-3000)}`);
  return { mode, totalS: Math.round((Date.now() - t0) / 1000), ...(JSON.parse(line.slice(7)) as Record<string, unknown>) };
}

const modes = arg('modes', 'kernel,lvsd').split(',') as Array<'kernel' | 'lvsd'>;
const phases = arg('phases', '10:10,1000:4,5000:4');
const inject = arg('inject', '');
if (!/^[0-9]+:[0-9]+(,[0-9]+:[0-9]+)*$/.test(phases)) throw new Error(`--phases RATE:SECONDS,...: "${phases}"`);
if (inject && !/^i[0-9]+:[0-9]+(,i[0-9]+:[0-9]+)*$/.test(inject)) throw new Error(`--inject iRATE:SECONDS,...: "${inject}"`);
const dir = mkdtempSync(join('/var/tmp', 'lvsd-syncpair-'));
try {
  writeFileSync(join(dir, 'sync.key'), KEY + '\n');
  const start = { utc: new Date().toISOString(), load: loadavg().map((x) => x.toFixed(2)).join(' ') };
  const results = [];
  const prof = arg('cpu-prof', '') && resolve(arg('cpu-prof', ''));
  for (const m of modes) results.push(await runMode(m, m === 'lvsd' && inject ? `${phases},${inject}` : phases, dir, prof));
  const end = { utc: new Date().toISOString(), load: loadavg().map((x) => x.toFixed(2)).join(' ') };
  type Ph = { daemonQueueB?: Record<string, unknown>; frameQueueB?: Record<string, unknown>; steps?: { n: number; byStream: number; flows?: unknown } & Record<string, unknown>; lvsdA?: unknown; readsA?: unknown; streamA?: { socket?: Record<string, unknown> } & Record<string, unknown>; kind: string; inA: number; rcvbufErrorsB: number; rate: number; achieved: number; seen: number; samples: number; upperMs: { p50: number; p95: number; max: number }; lowerMs: { p50: number; p95: number }; midMs: { p50: number; p95: number }; pollPeriodMs: number; cpuPct: Record<string, number> };
  // No flow seen: the figures are NaN (null once through the driver's JSON).
  const f1 = (x: number | null) => (x === null || !Number.isFinite(x) ? 'n/a' : x.toFixed(1));
  console.log(`sync-pair: start ${start.utc} load ${start.load}; end ${end.utc} load ${end.load}`);
  for (const r of results as Array<{ mode: string; skewBefore: { offsetMs: number; rttMs: number }; skewAfter: { offsetMs: number; rttMs: number }; phases: Ph[] }>) {
    console.log(`${r.mode}: clock b−c ${r.skewBefore.offsetMs.toFixed(2)} ± ${(r.skewBefore.rttMs / 2).toFixed(2)} ms before, ${r.skewAfter.offsetMs.toFixed(2)} ± ${(r.skewAfter.rttMs / 2).toFixed(2)} after`);
    for (const p of r.phases) {
      console.log(`  ${p.kind} ${p.rate}/s (achieved ${p.achieved}): seen ${p.seen}/${p.samples} (in a's table ${p.inA}; b's UDP rcvbuf errors ${p.rcvbufErrorsB}); send→visible in b p50/p95 ms: upper ${f1(p.upperMs.p50)}/${f1(p.upperMs.p95)} (max ${f1(p.upperMs.max)}), lower ${f1(p.lowerMs.p50)}/${f1(p.lowerMs.p95)}, mid ${f1(p.midMs.p50)}/${f1(p.midMs.p95)}; b's read period ${f1(p.pollPeriodMs)} ms; CPU % ${JSON.stringify(p.cpuPct)}; a's lvsd user/sys and by thread % ${JSON.stringify(p.lvsdA)}; a's reads ${JSON.stringify(p.readsA)}; a's stream ${JSON.stringify(p.streamA && { ...p.streamA, socket: p.streamA.socket && { ...p.streamA.socket, series: undefined } })}`);
      if (p.steps) console.log(`    steps (ms after send; ${p.steps.byStream} of ${p.steps.n} by the stream): ${JSON.stringify({ ...p.steps, flows: undefined })}`);
      if (p.daemonQueueB) console.log(`    b's backup daemon queue (bytes; samples every 50 ms; rcvbuf: the first socket on the port): ${JSON.stringify({ ...p.daemonQueueB, series: undefined })}`);
      if (p.frameQueueB) console.log(`    b's lvsd frame socket queue (bytes): ${JSON.stringify({ ...p.frameQueueB, series: undefined })}`);
    }
  }
  const k = results.find((r) => r.mode === 'kernel') as { phases: Ph[] } | undefined;
  const l = results.find((r) => r.mode === 'lvsd') as { phases: Ph[] } | undefined;
  if (k && l) for (const [i, p] of l.phases.entries()) if (k.phases[i]) console.log(`  ratio lvsd/kernel at ${p.rate}/s: upper p95 ${(p.upperMs.p95 / k.phases[i]!.upperMs.p95).toFixed(2)}, mid p50 ${(p.midMs.p50 / k.phases[i]!.midMs.p50).toFixed(2)}`);
  const json = arg('json', '');
  if (json) writeFileSync(json, JSON.stringify({ start, end, phases, results }, null, 2));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
