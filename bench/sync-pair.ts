/**
 * New-connection sync latency across a REAL pair (issue 18): each director in its own UML guest
 * (its own kernel and CPU), the client and real servers in a third, on a private segment (labPair).
 * Kernel channel and lvsd channel in the same run, each on freshly booted guests. Runs on the host:
 *   flock -w 1200 /work/wt/lab.lock node dist/bench/sync-pair.js [--phases 10:10,1000:4,5000:4]
 *     [--inject i5000:4] [--modes kernel,lvsd] [--json FILE] [--cpu-prof DIR] [--trace]
 *     [--poll-wait K | --no-poller] [--trace=b] [--resync N] [--mem 1024M]
 * The headline (with --trace) is "send → handed to b's kernel", p50/p95 over the sampled flows: the
 * first datagram carrying the flow's record to b's kernel backup daemon, dated by b's kernel as it
 * arrives (mode kernel: a's master daemon's message on eth0; mode lvsd: b's lvsd's hand-over on lo;
 * the daemon's port as b's kernel reports it). b's table poller's "visible" confirms it; its reads of
 * /proc/net/ip_vs_conn cost O(n²) in the kernel and took a third of b's guest at 5,000/s, so it now
 * pauses K× its last read's CPU time (default 9: 11-15 % of b's guest measured) and prints its own CPU; --no-poller leaves
 * it out (the figures then have no "visible"). The CPU of each director's lvsd is given over the
 * send window (+1 s), until the phase settled, and idle (4 s before the phase). At the end, per
 * rate, both modes side by side and the channel's cost: lvsd's share of a core in a and in b until
 * the phase settled, mode lvsd minus mode kernel. (Not lvsd's CPU less its idle rate: a's idle rate
 * in mode lvsd is mostly its table reads, which pause while the kernel stream is busy, so during a
 * burst a's lvsd ran below its idle rate: 13:57 run.)
 * (--trace: in the client phases of either mode, each sampled flow's steps dated in a's and b's
 * guests, bench/support/sync-trace.ts: a's stream record, the frame's sight, b's receipt, b's
 * hand-over to its kernel (mode kernel: the kernel message's arrival at b), and how fast each
 * step passed all flows' records; b's kernel backup daemon's receive queue and (mode lvsd) b's
 * lvsd frame socket's every 50 ms; printed as "steps" and the queues per phase.)
 * (--trace=b: b's trace only, enough for the headline; a's trace and a's stream-socket watch are left
 * out: a's trace decodes every stream datagram in a's guest, as much work as a's lvsd does for them.)
 * (--cpu-prof: a's and b's lvsd of each mode run under `node --cpu-prof`, their profiles and their
 * worker threads' kept in DIR/MODE/a and DIR/MODE/b (with --resync the returning b in DIR/lvsd/b-return);
 * bench/support/cpu-prof-top.ts summarizes them.)
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
 * (--resync N, mode lvsd only (the kernel channel has none); --phases '' for it alone: after the
 * phases, issue 18's full resync with each director in a guest of its own (bench/sync.ts measures it
 * with both in one guest's one CPU): the hand-over alone into b's kernel first (the reference), then b
 * dies, a's kernel is filled with N entries that a's lvsd learns, and b returns and asks for the
 * table; printed as RESYNC: request → acknowledgement (a's metric), request → all N in b's kernel
 * (b's clock), the reference and their ratio, a's answer stages, losses, CPU. See
 * bench/support/sync-pair-resync.ts.)
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
  const common = { cwd: root, rw: profDir ? [dir, profDir] : [dir], timeoutSec: 870, mem };
  const t0 = Date.now();
  const res = await labPair([
    { name: 'a', addrs: ['192.0.2.2/24'], argv: agentArgv('192.0.2.2'), stdout: quiet(), stderr: quiet(), ...common },
    { name: 'b', addrs: ['192.0.2.3/24'], argv: agentArgv('192.0.2.3'), stdout: quiet(), stderr: quiet(), ...common },
    { name: 'c', addrs: ['192.0.2.60/24'], argv: [process.execPath, join(here, 'support', 'sync-pair-driver.js'), ca, cb, phases, ...(profDir ? [profDir] : []), ...(process.argv.includes('--trace=b') ? ['--trace=b'] : process.argv.includes('--trace') ? ['--trace'] : []), ...driverPoll, ...(mode === 'lvsd' && resync ? [`--resync=${resync}`] : [])], stdout: sink, stderr: sink, ...common },
  ], { primary: 'c' });
  const line = out.split('\n').find((l) => l.startsWith('RESULT '));
  if (res.c!.code !== 0 || !line) throw new Error(`${mode}: the driver failed (${res.c!.code}): ${out.slice(-3000)}`);
  return { mode, totalS: Math.round((Date.now() - t0) / 1000), ...(JSON.parse(line.slice(7)) as Record<string, unknown>) };
}

type Spent = { s: number; lvsd: number; kthreads: number; busy: number; bench: number };
type Resync = {
  entries: number; inA: number; inB: number; receivedB: number;
  reference: { messages: number; sendS: number; daemonDrops: number; toKernelMs: number; cpuB: Spent };
  fill: { sendS: number; daemonDrops: number; knownAfterMs: number };
  before: { activeB: number; entriesB: number }; emptyB: { activeB: number; entriesB: number }; clockB: { offsetMs: number; rttMs: number };
  startToRequestMs: number; ackMs: number; endMs: number; reqToKernelMs: number; tableToKernelMs: number; startToKernelMs: number;
  answer: Record<string, number>; lostB: number; resentA: number; missingAsksB: number; kernelQueueDropsB: number; rcvbufErrorsB: number;
  cpu: { startA: Spent; startB: Spent; resyncA: Spent; resyncB: Spent };
  threads: { a: Record<string, number>; b: Record<string, number> };
  threadsAWhole: Record<string, number>;
  bStart: Array<[number, string]>; log: string[];
};

/** The resync's figures (bench/support/sync-pair-resync.ts), its ratio to the hand-over alone in the same run. */
function printResync(x: Resync): void {
  const c = (s: Spent) => `lvsd ${s.lvsd} s, ipvs threads ${s.kthreads} s, guest busy ${s.busy} s of ${s.s} s (bench ${s.bench} s)`;
  console.log(
    `RESYNC of ${x.inA} entries (each director in its own guest): request → acknowledgement ${x.ackMs} ms (a's metric); b's request → all in b's kernel ${x.reqToKernelMs} ms (b's clock; ${x.inB} there, b received ${x.receivedB} records); ` +
      `reference, the hand-over alone into b's kernel: first send → all there ${x.reference.toKernelMs} ms (sends ${Math.round(x.reference.sendS * 1000)} ms, ${x.reference.messages} messages joined into fewer datagrams, ${x.reference.daemonDrops} daemon drops); ratio ${(x.reqToKernelMs / x.reference.toKernelMs).toFixed(2)}`,
  );
  console.log(`  b's start → its request ${x.startToRequestMs} ms (clock b−c ${x.clockB.offsetMs.toFixed(1)} ± ${(x.clockB.rttMs / 2).toFixed(1)} ms); → all in its kernel ${x.startToKernelMs} ms; request → RESYNC_END ${x.endMs} ms (b's log); b's table received → all in its kernel ${x.tableToKernelMs} ms`);
  console.log(`  a's answer (its log): ${JSON.stringify(x.answer)}`);
  console.log(`  losses: frames lost at b ${x.lostB}, resent by a ${x.resentA} (b asked ${x.missingAsksB} times), b's kernel daemon drops ${x.kernelQueueDropsB}, b's UDP rcvbuf errors ${x.rcvbufErrorsB}`);
  console.log(`  CPU, b's start → request: a ${c(x.cpu.startA)}; b ${c(x.cpu.startB)}`);
  console.log(`  CPU, request → all in b's kernel (as the driver saw each, polling b every second): a ${c(x.cpu.resyncA)}; b ${c(x.cpu.resyncB)}; by thread (s) a ${JSON.stringify(x.threads.a)}, b ${JSON.stringify(x.threads.b)}`);
  console.log(`  a's lvsd by thread from before b's start to all in b's kernel (s): ${JSON.stringify(x.threadsAWhole)}`);
  console.log(`  CPU of the reference's whole run in b (the injector's node start included): ${c(x.reference.cpuB)}`);
  console.log(`  b before the reference: ActiveConn ${x.before.activeB}, entries ${x.before.entriesB}; before its return: ActiveConn ${x.emptyB.activeB}, entries ${x.emptyB.entriesB}; a's fill ${x.fill.sendS.toFixed(2)} s (${x.fill.daemonDrops} drops), known ${x.fill.knownAfterMs} ms after`);
  console.log(`  b's start (ms): ${x.bStart.map(([t, l]) => `+${t} ${l}`).join('; ')}`);
  for (const l of x.log) console.log(`    ${l}`);
}

const modes = arg('modes', 'kernel,lvsd').split(',') as Array<'kernel' | 'lvsd'>;
const pollWait = arg('poll-wait', '');
if (pollWait && !/^[0-9]+$/.test(pollWait)) throw new Error(`--poll-wait K (an integer): "${pollWait}"`);
const driverPoll = process.argv.includes('--no-poller') ? ['--no-poller'] : pollWait ? [`--poll-wait=${pollWait}`] : [];
const phases = arg('phases', '10:10,1000:4,5000:4');
const inject = arg('inject', '');
const resync = arg('resync', '');
const mem = arg('mem', '1024M');
if (resync && !(/^[0-9]+$/.test(resync) && Number(resync) > 0 && Number(resync) <= 200_000)) throw new Error(`--resync N (1 to 200,000): "${resync}"`);
if (resync && !modes.includes('lvsd')) throw new Error('--resync: mode lvsd only (the kernel channel has no resync)');
if (!/^[0-9]+[MG]$/.test(mem)) throw new Error(`--mem SIZE (e.g. 1024M): "${mem}"`);
// No client phase at all: with --resync only (the resync alone).
if (!(phases === '' && resync) && !/^[0-9]+:[0-9]+(,[0-9]+:[0-9]+)*$/.test(phases)) throw new Error(`--phases RATE:SECONDS,... ('' with --resync only): "${phases}"`);
if (inject && !/^i[0-9]+:[0-9]+(,i[0-9]+:[0-9]+)*$/.test(inject)) throw new Error(`--inject iRATE:SECONDS,...: "${inject}"`);
const dir = mkdtempSync(join('/var/tmp', 'lvsd-syncpair-'));
try {
  writeFileSync(join(dir, 'sync.key'), KEY + '\n');
  const start = { utc: new Date().toISOString(), load: loadavg().map((x) => x.toFixed(2)).join(' ') };
  const results = [];
  const prof = arg('cpu-prof', '') && resolve(arg('cpu-prof', ''));
  for (const m of modes) results.push(await runMode(m, m === 'lvsd' && inject ? [phases, inject].filter(Boolean).join(',') : phases, dir, prof));
  const end = { utc: new Date().toISOString(), load: loadavg().map((x) => x.toFixed(2)).join(' ') };
  type St = { p50: number; p95: number; max: number; n: number; of?: number };
  type Ph = { handedMs?: St; pollerB?: { waitX?: number; reads: number; readMs: number; periodMs: number; maxGapMs?: number; table: number; cpuPct: number }; settledCpuS?: { wallS: number; idlePct: { lvsdA: number; lvsdB: number }; lvsdA: number; lvsdB: number }; daemonQueueB?: Record<string, unknown>; frameQueueB?: Record<string, unknown>; steps?: { n: number; byStream: number; flows?: unknown } & Record<string, unknown>; lvsdA?: unknown; readsA?: unknown; streamA?: { socket?: Record<string, unknown> } & Record<string, unknown>; kind: string; seconds: number; inA: number; rcvbufErrorsB: number; rate: number; achieved: number; seen: number; samples: number; upperMs: { p50: number; p95: number; max: number }; lowerMs: { p50: number; p95: number }; midMs: { p50: number; p95: number }; pollPeriodMs: number; cpuPct: Record<string, number> };
  // No flow seen: the figures are NaN (null once through the driver's JSON).
  const f1 = (x: number | null) => (x === null || !Number.isFinite(x) ? 'n/a' : x.toFixed(1));
  console.log(`sync-pair: start ${start.utc} load ${start.load}; end ${end.utc} load ${end.load}`);
  for (const r of results as Array<{ mode: string; skewBefore: { offsetMs: number; rttMs: number }; skewAfter: { offsetMs: number; rttMs: number }; phases: Ph[] }>) {
    console.log(`${r.mode}: clock b−c ${r.skewBefore.offsetMs.toFixed(2)} ± ${(r.skewBefore.rttMs / 2).toFixed(2)} ms before, ${r.skewAfter.offsetMs.toFixed(2)} ± ${(r.skewAfter.rttMs / 2).toFixed(2)} after`);
    for (const p of r.phases) {
      if (p.handedMs) console.log(`  ${p.rate}/s HEADLINE send → handed to b's kernel p50/p95 ${f1(p.handedMs.p50)}/${f1(p.handedMs.p95)} ms (max ${f1(p.handedMs.max)}; ${p.handedMs.n} of ${p.handedMs.of} sampled flows); b's poller ${p.pollerB ? JSON.stringify(p.pollerB) : 'off'}; CPU s until settled ${JSON.stringify(p.settledCpuS)}`);
      console.log(`  ${p.kind} ${p.rate}/s (achieved ${p.achieved}): seen ${p.seen}/${p.samples} (in a's table ${p.inA}; b's UDP rcvbuf errors ${p.rcvbufErrorsB}); send→visible in b p50/p95 ms: upper ${f1(p.upperMs.p50)}/${f1(p.upperMs.p95)} (max ${f1(p.upperMs.max)}), lower ${f1(p.lowerMs.p50)}/${f1(p.lowerMs.p95)}, mid ${f1(p.midMs.p50)}/${f1(p.midMs.p95)}; b's read period ${f1(p.pollPeriodMs)} ms; CPU % ${JSON.stringify(p.cpuPct)}; a's lvsd user/sys and by thread % ${JSON.stringify(p.lvsdA)}; a's reads ${JSON.stringify(p.readsA)}; a's stream ${JSON.stringify(p.streamA && { ...p.streamA, socket: p.streamA.socket && { ...p.streamA.socket, series: undefined } })}`);
      if (p.steps) console.log(`    steps (ms after send; ${p.steps.byStream} of ${p.steps.n} by the stream): ${JSON.stringify({ ...p.steps, flows: undefined })}`);
      if (p.daemonQueueB) console.log(`    b's backup daemon queue (bytes; samples every 50 ms; rcvbuf: the first socket on the port): ${JSON.stringify({ ...p.daemonQueueB, series: undefined })}`);
      if (p.frameQueueB) console.log(`    b's lvsd frame socket queue (bytes): ${JSON.stringify({ ...p.frameQueueB, series: undefined })}`);
    }
  }
  for (const r of results as Array<{ mode: string; resync?: Resync }>) if (r.resync) printResync(r.resync);
  const k = results.find((r) => r.mode === 'kernel') as { phases: Ph[] } | undefined;
  const l = results.find((r) => r.mode === 'lvsd') as { phases: Ph[] } | undefined;
  if (k && l) for (const [i, p] of l.phases.entries()) if (k.phases[i]) console.log(`  ratio lvsd/kernel at ${p.rate}/s: upper p95 ${(p.upperMs.p95 / k.phases[i]!.upperMs.p95).toFixed(2)}, mid p50 ${(p.midMs.p50 / k.phases[i]!.midMs.p50).toFixed(2)}`);
  // Side by side, per rate: the headline, the poller's confirmation, b's guest with and without the
  // poller's share, and lvsd's CPU (send window; until settled); the channel's cost is mode lvsd's
  // lvsd (a + b) minus mode kernel's, CPU seconds until settled (mode kernel's scaled to the same
  // wall time) over the send's seconds: the share of one core that sustaining the rate takes.
  if (k && l) {
    console.log('SUMMARY (p50/p95 ms after the send; CPU % of one guest core)');
    for (const [i, pl] of l.phases.entries()) {
      const pk = k.phases[i];
      if (!pk) continue;
      const h = (p: Ph) => (p.handedMs ? `${f1(p.handedMs.p50)}/${f1(p.handedMs.p95)} (${p.handedMs.n}/${p.handedMs.of})` : 'n/a');
      const v = (p: Ph) => `${f1(p.upperMs.p50)}/${f1(p.upperMs.p95)} (mid ${f1(p.midMs.p50)}/${f1(p.midMs.p95)}; ${p.seen}/${p.samples})`;
      const g = (p: Ph) => `${f1(p.cpuPct.guestB ?? NaN)}${p.pollerB ? ` (poller ${f1(p.pollerB.cpuPct)}, without ${f1((p.cpuPct.guestB ?? NaN) - p.pollerB.cpuPct)})` : ' (no poller)'}`;
      const c = (p: Ph) => `a ${f1(p.cpuPct.lvsdA ?? NaN)} b ${f1(p.cpuPct.lvsdB ?? NaN)}`;
      const sc = (p: Ph) => (p.settledCpuS ? `a ${p.settledCpuS.lvsdA} s b ${p.settledCpuS.lvsdB} s in ${p.settledCpuS.wallS} s (idle a ${f1(p.settledCpuS.idlePct.lvsdA)} % b ${f1(p.settledCpuS.idlePct.lvsdB)} %)` : 'n/a');
      console.log(`  ${pl.rate}/s            kernel | lvsd`);
      console.log(`    handed to b's kernel ${h(pk)} | ${h(pl)}`);
      console.log(`    visible in b (upper) ${v(pk)} | ${v(pl)}`);
      console.log(`    b's guest busy       ${g(pk)} | ${g(pl)}`);
      console.log(`    a's guest busy       ${f1(pk.cpuPct.guestA ?? NaN)} | ${f1(pl.cpuPct.guestA ?? NaN)}`);
      console.log(`    lvsd, send window    ${c(pk)} | ${c(pl)}`);
      console.log(`    lvsd, until settled  ${sc(pk)} | ${sc(pl)}`);
      if (pk.settledCpuS && pl.settledCpuS) {
        // lvsd's rate over the phase until settled, mode lvsd minus mode kernel: the channel's cost
        // while it carries the rate (its idle part included: a's reads of the small table).
        const rate = (p: Ph, k: 'lvsdA' | 'lvsdB') => (100 * p.settledCpuS![k]) / p.settledCpuS!.wallS;
        const [dA, dB] = [rate(pl, 'lvsdA') - rate(pk, 'lvsdA'), rate(pl, 'lvsdB') - rate(pk, 'lvsdB')];
        console.log(`    channel's cost (lvsd − kernel, % of a core until settled) a ${f1(dA)} + b ${f1(dB)} = ${f1(dA + dB)} (kernel a ${f1(rate(pk, 'lvsdA'))} b ${f1(rate(pk, 'lvsdB'))}; lvsd a ${f1(rate(pl, 'lvsdA'))} b ${f1(rate(pl, 'lvsdB'))}); idle: a ${f1(pl.settledCpuS.idlePct.lvsdA - pk.settledCpuS.idlePct.lvsdA)}, b ${f1(pl.settledCpuS.idlePct.lvsdB - pk.settledCpuS.idlePct.lvsdB)}; send window: a ${f1((pl.cpuPct.lvsdA ?? NaN) - (pk.cpuPct.lvsdA ?? NaN))}, b ${f1((pl.cpuPct.lvsdB ?? NaN) - (pk.cpuPct.lvsdB ?? NaN))}`);
      }
    }
  }
  const json = arg('json', '');
  if (json) writeFileSync(json, JSON.stringify({ start, end, phases, results }, null, 2));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
