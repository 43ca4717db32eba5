/**
 * The driver of bench/sync-pair.ts, run as the command of guest c of a three-guest lab (labPair):
 * directors a (192.0.2.2) and b (192.0.2.3) are guests of their own running the lab agent; c holds
 * the client (192.0.2.50) and two DR real servers (192.0.2.11, .12: no VIP on lo, they drop the
 * flows), macvlans of c's eth0 in namespaces, and keeps 192.0.2.60 to call the agents.
 *
 *   node sync-pair-driver.js CONFIG_A CONFIG_B PHASES [PROF_DIR] [--trace] [--poll-wait=K | --no-poller] [--resync=N]
 *     PHASES: RATE:SECONDS[,RATE:SECONDS...]; a phase "iRATE:SECONDS" injects the flows into a's
 *     kernel instead (sync-load.js inject-flows in a's guest, through its backup daemon on lo: the
 *     lvsd channel only; a's clock, corrected by its offset; the injector takes a's CPU: the client's
 *     flows reach 5,000/s since the batched generator, 2026-12-05)
 *     PHASES may be empty ('') with --resync.
 *   --resync=N (channel lvsd): after the phases, the full resync of N entries to a returning b
 *     (sync-pair-resync.ts: the hand-over alone in b first, as the reference).
 *
 * Starts `lvsd run` in a and b, waits for a to be master and b's backup daemon, then per phase:
 * b's table poller (table-poller.js, in b's guest, b's clock), the UDP flow generator
 * (sync-load.js flows, in c's client namespace, c's clock), and CPU counters read in a and b before
 * and after (lvsd's utime+stime, the kernel's ipvs-* threads, the guest's busy time). Send → visible
 * in b = b's time − (c's time + offset), the offset of b's clock from c's measured with /time round
 * trips before and after the phases (bounded by half the quickest round trip). Prints "RESULT " and
 * one JSON line, or "FAIL " and the reason (exit 1).
 * a's lvsd CPU is also split into user and system time and by thread (/proc/PID/task/TID/stat:
 * the main thread, and the others by name and id: the table worker is a thread of its own). With
 * PROF_DIR (a folder both guests can write), a's and b's lvsd run under `node --cpu-prof` (profiles in
 * PROF_DIR/a and PROF_DIR/b) and are stopped with SIGTERM after the phases, so they and their worker
 * threads write their profiles (b's: where b's guest, the bound at 5,000/s, spends lvsd's share).
 *
 * The headline (with --trace) is "send → handed to b's kernel": per sampled flow, the first datagram
 * carrying its record to b's kernel backup daemon, dated by b's kernel on arrival (sync-trace.ts
 * "inject": channel kernel, the master daemon's message from a; channel lvsd, b's lvsd's hand-over on
 * lo), p50/p95 over every sampled flow that has the stamp (the count says how many). b's poller's
 * "visible" is kept as a confirmation; it reads /proc/net/ip_vs_conn, whose cost grows as n² with
 * the table, so it pauses K× its last read's CPU time (--poll-wait=K, default 9: ~10-15 % of b's
 * guest as measured), reports its own CPU and longest gap between reads, and can be left out (--no-poller: the phase then ends SETTLE_S after
 * the last send). CPU is also read IDLE_S before the phase (lvsd's idle rate) and once the phase
 * settled (the traces and poller ended): lvsd's CPU seconds in a and b over the whole phase, the
 * channel's work after the last send included.
 */
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { Topology } from '../../src/lab/netns.js';
import { agent, clockOffset } from '../../src/lab/pair-agent.js';
import { lvsdBin } from '../../test/support/proc.js';
import { cpu, exec, rcvbufErrors, runIn, until, type Cpu } from './pair-remote.js';
import { resyncPhase } from './sync-pair-resync.js';

const VIP = '192.0.2.100';
const A = '192.0.2.2';
const B = '192.0.2.3';
const UDP_PORT = 5353;
/** a's kernel stream port (channel lvsd): sync.stream_port's default beside sync.port 19691. */
const STREAM_PORT = 8849;
const WATCH = join(dirname(fileURLToPath(import.meta.url)), 'udp-watch.js');
const here = dirname(fileURLToPath(import.meta.url));
const LOAD = join(here, 'sync-load.js');
const POLLER = join(here, 'table-poller.js');
const TRACE = join(here, 'sync-trace.js');
/** lvsd's sync port: sync.port's default (bench/sync-pair.ts's configs set none). */
const SYNC_PORT = 8848;
/** IP_VS_SYNC_PORT: the kernel's default daemon port, if `ipvsadm -L --daemon` prints none. */
const KERNEL_DAEMON_PORT = 8848;
/** Without b's poller: how long after the last send a phase waits before it ends its traces. */
const SETTLE_S = 15;
/** The quiet interval before each phase over which lvsd's idle CPU is measured. */
const IDLE_S = 4;
const t0 = Date.now();
const say = (m: string) => process.stdout.write(`[c +${Math.round((Date.now() - t0) / 1000)}s] ${m}\n`);

/** a's lvsd over a phase, % of its guest's CPU: user, system, and per thread [user, system] (threads under 0.5 % left out). */
function split(c1: Cpu, c0: Cpu): { userPct: number; sysPct: number; threadsPct: Record<string, [number, number]> } {
  const w = (c1.at - c0.at) / 1000;
  const pct = (x: number) => Math.round((1000 * x) / w) / 10;
  const threadsPct: Record<string, [number, number]> = {};
  for (const [k, [u, s]] of Object.entries(c1.threads)) {
    const [u0, s0] = c0.threads[k] ?? [0, 0];
    if (pct(u - u0 + s - s0) >= 0.5) threadsPct[k] = [pct(u - u0), pct(s - s0)];
  }
  return { userPct: pct(c1.user - c0.user), sysPct: pct(c1.sys - c0.sys), threadsPct };
}

const q = (xs: number[], p: number) => {
  const s = [...xs].sort((x, y) => x - y);
  return s.length ? s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)]! : NaN;
};
const stats = (xs: number[]) => ({ p50: q(xs, 0.5), p95: q(xs, 0.95), max: xs.length ? Math.max(...xs) : NaN });

/**
 * a's table reads so far (lvsd_sync_table_read_seconds count and sum) and the stream's records
 * (lvsd_sync_stream_records_total, all results), from its /metrics on the API port: how often the
 * worker read, and how long, whatever the guest's CPU accounting under host load.
 */
async function readsOf(host: string, apiPort: number): Promise<{ reads: number; readS: number; streamRecords: number; streamOverflow: number }> {
  const text = await exec(host, ['curl', '-s', '--max-time', '10', `http://127.0.0.1:${apiPort}/metrics`]);
  const sum = (re: RegExp) => text.split('\n').filter((l) => re.test(l)).reduce((t, l) => t + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
  return {
    reads: sum(/^lvsd_sync_table_read_seconds_count /),
    readS: sum(/^lvsd_sync_table_read_seconds_sum /),
    streamRecords: sum(/^lvsd_sync_stream_records_total[ {]/),
    streamOverflow: sum(/^lvsd_sync_dropped_total\{reason="stream_overflow"\} /),
  };
}

/**
 * Where the kernel stream's records can be lost in a's guest, as its kernel counts: UDP datagrams
 * out (the master sync daemon's sends; lvsd's channel frames to b are a few per cent of them) and
 * in, InErrors and RcvbufErrors (/proc/net/snmp: a full receive buffer); lo's transmitted packets
 * (the master daemon's datagrams leave by lo; little else does); drops of the netdev backlog
 * (/proc/net/softnet_stat, second column: lo's packets are queued there on their way in); the
 * kernel's log lines of IPVS (ip_vs_send_async errors, buffer allocation failures). The master
 * daemon's own queue (ip_vs_sync.c sb_queue_tail: a buffer past sync_qlen_max is freed unsent) has
 * no counter: flows that reached a minus lo's packets bounds it.
 */
async function kernelSide(host: string): Promise<{ udp: Record<string, number>; loTx: number; backlogDrops: number; ipvsLog: number; qlenMax: number }> {
  const text = await exec(host, ['sh', '-c', 'cat /proc/net/snmp; echo =; cat /sys/class/net/lo/statistics/tx_packets; echo =; cat /proc/net/softnet_stat; echo =; cat /proc/sys/net/ipv4/vs/sync_qlen_max; echo =; dmesg | grep -c IPVS; true']);
  const [snmp, lo, softnet, qlen, log] = text.split('\n=\n');
  const u = (snmp ?? '').split('\n').filter((l) => l.startsWith('Udp:'));
  const names = u[0]?.split(/\s+/) ?? [];
  const vals = u[1]?.split(/\s+/) ?? [];
  const udp: Record<string, number> = {};
  for (const k of ['InDatagrams', 'OutDatagrams', 'InErrors', 'RcvbufErrors']) udp[k] = Number(vals[names.indexOf(k)]);
  const backlogDrops = (softnet ?? '').trim().split('\n').reduce((t, l) => t + (parseInt(l.trim().split(/\s+/)[1] ?? '0', 16) || 0), 0);
  return { udp, loTx: Number(lo), backlogDrops, ipvsLog: Number(log), qlenMax: Number(qlen) };
}

/** Frames the guest's eth0 received (its counter since boot). */
async function eth0Rx(host: string): Promise<number> {
  return Number((await exec(host, ['cat', '/sys/class/net/eth0/statistics/rx_packets'])).trim());
}

/** a's UDP virtual server's counters: connections and datagrams in (ipvsadm --exact: no K/M rounding). */
async function vsStats(host: string): Promise<{ conns: number; inPkts: number }> {
  const line = (await exec(host, ['ipvsadm', '-Ln', '--stats', '--exact', '-u', `${VIP}:${UDP_PORT}`])).split('\n').find((l) => l.startsWith('UDP'));
  const f = line?.trim().split(/\s+/) ?? [];
  return { conns: Number(f[2]), inPkts: Number(f[3]) };
}

/**
 * This guest's (c's) busy CPU seconds (/proc/stat, USER_HZ 100): the generator's cost; and its eth0's
 * tx_dropped: UML's daemon transport drops a frame the switch's socket cannot take (EAGAIN), and
 * counts it there.
 */
function guestBusy(): { busy: number; txDropped: number; at: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const txDropped = Number(readFileSync('/sys/class/net/eth0/statistics/tx_dropped', 'utf8'));
  return { busy: (f.reduce((x, y) => x + y, 0) - (f[3] ?? 0) - (f[4] ?? 0)) / 100, txDropped, at: Date.now() };
}


type Bins = { stream: number[]; frame: number[]; inject: number[] };
type Trace = { datagrams: number; truncated?: number; late: number; drops: number; t0: number; binMs: number; bins: Bins; stream: Record<string, number>; frame: Record<string, [number, number]>; inject: Record<string, number> };
/** a's trace when only b's ran (--trace=b): no stamps, so a's steps are NaN and a's rates absent. */
const NO_TRACE: Trace = { datagrams: 0, late: 0, drops: 0, t0: 0, binMs: 250, bins: { stream: [], frame: [], inject: [] }, stream: {}, frame: {}, inject: {} };

/**
 * How fast each step passed the records of all the client's flows (sync-trace.ts's 250 ms bins, in
 * the guest's clock moved to c's by its offset): per kind, the records, the busiest second's rate
 * (4 bins), when the first and the last passed (s after the phase's first send) and the series in
 * records/s per bin from the first send.
 */
function ratesOf(t: Trace, off: number, send0: number) {
  const out: Record<string, { records: number; peakPerS: number; firstS: number; lastS: number; perS: number[] }> = {};
  for (const k of ['stream', 'frame', 'inject'] as const) {
    const xs = t.bins[k] ?? [];
    const records = xs.reduce((x, y) => x + y, 0);
    if (!records) continue;
    const at = (i: number) => (t.t0 - off + i * t.binMs - send0) / 1000;
    let peak = 0;
    for (let i = 0; i + 4 <= xs.length; i++) peak = Math.max(peak, xs.slice(i, i + 4).reduce((x, y) => x + y, 0));
    const first = xs.findIndex((x) => x > 0);
    const last = xs.length - 1 - [...xs].reverse().findIndex((x) => x > 0);
    const skip = Math.max(0, Math.floor((send0 - (t.t0 - off)) / t.binMs));
    out[k] = { records, peakPerS: peak || Math.round((records * 1000) / t.binMs), firstS: Math.round(at(first) * 100) / 100, lastS: Math.round(at(last + 1) * 100) / 100, perS: xs.slice(skip).map((x) => Math.round((x * 1000) / t.binMs)) };
  }
  return out;
}

/**
 * Each sampled flow's steps, ms after the client's send (c's clock; a's and b's times moved by their
 * measured offsets from c): the kernel stream's record reaching lvsd's socket in a; the frame's
 * sight (a's read start, or the stream record's merge); the frame reaching b; the record handed to
 * b's kernel backup daemon (channel lvsd: lvsd's hand-over on lo; channel kernel: a's kernel master
 * daemon's message reaching b); b's table read before and the one that showed it (table-poller),
 * and their midpoint. `by` is the source that brought the flow to the frame: 'stream' when its
 * record reached a's socket before the frame's sight, else 'read'. Every sampled flow is in, seen by
 * b's poller or not (or with no poller): each step's figures are over the flows that have its stamp,
 * its n how many. Flows sorted slowest first (by the hand-over to b's kernel, else b's upper
 * bound). Steps a flow has no stamp for (no frame with channel kernel, a datagram the trace's socket
 * dropped, a flow the poller did not see) are NaN and left out of that step's figures.
 */
function stepsOf(samples: Array<[number, number]>, seenB: Record<string, [number, number]>, ta: Trace, tb: Trace, offA: number, offB: number) {
  const flows: Array<{ port: number; by: string; stream: number; sight: number; frameB: number; inject: number; lower: number; upper: number; mid: number }> = [];
  const r1 = (x: number) => Math.round(x * 10) / 10;
  for (const [port, t] of samples) {
    const seen = seenB[port.toString(16).toUpperCase().padStart(4, '0')] ?? [NaN, NaN];
    const f = tb.frame[port];
    const stream = ta.stream[port] === undefined ? NaN : ta.stream[port]! - offA - t;
    const sight = f ? f[1] - offA - t : NaN;
    flows.push({ port, by: !f ? '' : ta === NO_TRACE ? 'untraced' : stream <= sight ? 'stream' : 'read', stream: r1(stream), sight: r1(sight), frameB: r1(f ? f[0] - offB - t : NaN), inject: r1((tb.inject[port] ?? NaN) - offB - t), lower: r1(seen[0] - offB - t), upper: r1(seen[1] - offB - t), mid: r1((seen[0] + seen[1]) / 2 - offB - t) });
  }
  const slow = (f: { inject: number; upper: number }) => (Number.isFinite(f.inject) ? f.inject : Number.isFinite(f.upper) ? f.upper : -Infinity);
  flows.sort((x, y) => slow(y) - slow(x));
  const st = (k: 'stream' | 'sight' | 'frameB' | 'inject' | 'lower' | 'upper' | 'mid') => {
    const xs = flows.map((f) => f[k]).filter((x) => Number.isFinite(x));
    return { ...stats(xs), n: xs.length };
  };
  const gap = (a: 'stream' | 'sight' | 'frameB' | 'inject', b: 'sight' | 'frameB' | 'inject' | 'upper' | 'mid') => {
    const xs = flows.map((f) => f[b] - f[a]).filter((x) => Number.isFinite(x)).map(r1);
    return { ...stats(xs), n: xs.length };
  };
  const send0 = samples.length ? samples[0]![1] : 0;
  return {
    n: flows.length, byStream: flows.filter((f) => f.by === 'stream').length,
    fromSend: { stream: st('stream'), sight: st('sight'), frameB: st('frameB'), inject: st('inject'), lower: st('lower'), upper: st('upper'), mid: st('mid') },
    between: { streamToSight: gap('stream', 'sight'), sightToFrameB: gap('sight', 'frameB'), frameBToInject: gap('frameB', 'inject'), injectToUpper: gap('inject', 'upper'), injectToMid: gap('inject', 'mid') },
    datagrams: [ta.datagrams, tb.datagrams],
    // The trace sockets' own drops (a datagram lost there is a step missing from this trace only).
    traceDrops: [ta.drops, tb.drops],
    // Datagrams still in the trace sockets at the end (read then: the process had not run meanwhile).
    traceLate: [ta.late, tb.late],
    // Datagrams the traces' raw reads cut short (larger than the addon's read size), not dated.
    traceTruncated: [ta.truncated ?? NaN, tb.truncated ?? NaN],
    // Records of every flow per step and how fast they passed (a: stream; b: frames, hand-over).
    rates: { a: ratesOf(ta, offA, send0), b: ratesOf(tb, offB, send0) },
    // Sampled flows that reached each step at all.
    reached: { stream: samples.filter(([p]) => ta.stream[p] !== undefined).length, frameB: samples.filter(([p]) => tb.frame[p] !== undefined).length, inject: samples.filter(([p]) => tb.inject[p] !== undefined).length, seenB: samples.filter(([p]) => seenB[p.toString(16).toUpperCase().padStart(4, '0')]).length },
    flows,
  };
}

async function main(cfgA: string, cfgB: string, phases: Array<[boolean, number, number]>, profDir: string | undefined, apiPort: number): Promise<unknown> {
  const topo = new Topology();
  try {
    const cl = await topo.macvlanMember('cl', '192.0.2.50/24');
    await topo.macvlanMember('rs0', '192.0.2.11/24');
    await topo.macvlanMember('rs1', '192.0.2.12/24');
    for (const h of [A, B]) await until(async () => ((await agent(h, '/ping', {}, undefined, 5000)) ? true : undefined), `the agent on ${h}`, 240_000);
    const pid: Record<string, number> = {};
    const bgId: Record<string, number> = {};
    for (const [h, c] of [[A, cfgA], [B, cfgB]] as const) {
      // Profiled: node's own flags (Node 20 refuses --cpu-prof in NODE_OPTIONS); worker threads inherit them.
      const prof = profDir ? [process.execPath, '--cpu-prof', `--cpu-prof-dir=${join(profDir, h === A ? 'a' : 'b')}`] : [];
      const r = await agent<{ pid: number; id: number }>(h, '/spawn', { argv: [...prof, lvsdBin, 'run', '-c', c] });
      [pid[h], bgId[h]] = [r.pid, r.id];
    }
    await until(async () => ((await exec(A, ['ip', '-o', '-4', 'addr', 'show', 'dev', 'eth0'])).includes(`${VIP}/`) ? true : undefined), 'a to become master', 240_000);
    const daemonLine = await until(async () => (await exec(B, ['ipvsadm', '-L', '--daemon'])).split('\n').find((l) => l.includes('backup')), "b's backup sync daemon", 240_000);
    // The port b's kernel backup daemon listens on, as its kernel reports it (channel lvsd: where
    // b's lvsd hands records over on lo, whatever port lvsd gives that daemon; channel kernel: the
    // group's port on eth0): what the trace dates as "handed to b's kernel".
    const daemonPort = Number(/port=([0-9]+)/.exec(daemonLine)?.[1] ?? KERNEL_DAEMON_PORT);
    await until(async () => ((await exec(A, ['ipvsadm', '-Ln'])).includes(`${VIP}:${UDP_PORT}`) ? true : undefined), "a's virtual servers", 60_000);
    await sleep(4000); // b's start (resync wait, election start) settles
    say(`a is master, b runs its backup daemon: ${daemonLine.trim()}`);
    const skewBefore = await clockOffset(B);
    const skewA = await clockOffset(A);
    say(`clock of b − clock of c: ${skewBefore.offsetMs.toFixed(2)} ms ± ${(skewBefore.rttMs / 2).toFixed(2)}; of a: ${skewA.offsetMs.toFixed(2)} ± ${(skewA.rttMs / 2).toFixed(2)}`);
    const out: unknown[] = [];
    let base = 2000;
    for (const [inject, rate, seconds] of phases) {
      const count = Math.max(1, Math.round(rate * seconds));
      if (base + count > 65535) throw new Error(`source ports ${base}+${count} run past 65535`);
      const sample = Math.max(1, Math.floor(count / 500));
      // --trace (client flows, either channel): each sampled flow's steps dated in a's and b's guests
      // (sync-trace.ts), and b's kernel backup daemon's receive queue every 50 ms (udp-watch.ts: the
      // socket it installs from, bound to 224.0.0.81:daemonPort on lo with channel lvsd, on eth0 with kernel).
      const tracing = trace && !inject;
      // --trace=b: b's trace only (the headline's stamps) and none of a's watches: a's trace decodes
      // every stream datagram in a's guest, as much work as a's lvsd does for them (the bench's
      // processes took 41 % of a's guest at 5,000/s, a's lvsd 37 %, 17:07 run).
      const tracedHosts = traceBOnly ? [B] : [A, B];
      const traces = tracing ? await Promise.all(tracedHosts.map(async (h) => (await agent<{ id: number }>(h, '/spawn', { argv: [process.execPath, TRACE, '192.0.2.50', VIP, String(STREAM_PORT), String(SYNC_PORT), String(seconds + 120), String(base), String(count), String(sample), String(daemonPort)] })).id)) : [];
      // Each trace says "ready" once its socket is open (node's start in a busy guest takes seconds).
      const tStart = Date.now();
      for (const [i, id] of traces.entries()) {
        const h = tracedHosts[i]!;
        await until(async () => ((await agent<{ stderr: string; code: number | null }>(h, '/output', { id })).stderr.includes('ready') ? true : undefined), `the trace in ${h} to start`, 60_000, 200);
      }
      if (tracing) say(`traces started in ${((Date.now() - tStart) / 1000).toFixed(1)} s`);
      // lvsd's CPU in a and b while nothing is sent (IDLE_S, before the poller starts).
      const [aI, bI] = [await cpu(A, pid[A]!), await cpu(B, pid[B]!)];
      await sleep(IDLE_S * 1000);
      // b's poller after the traces' start (which took up to ~25 s in a busy guest): its MAX_SECONDS runs from its own start.
      const poller = pollWait === undefined ? undefined : (await agent<{ id: number }>(B, '/spawn', { argv: [process.execPath, POLLER, String(base), String(count), String(sample), String(seconds + 25), String(pollWait)] })).id;
      const [a0, b0] = [await cpu(A, pid[A]!), await cpu(B, pid[B]!)];
      const m0 = await readsOf(A, apiPort);
      const k0 = await kernelSide(A);
      const daemonWatch = tracing ? (await agent<{ id: number }>(B, '/spawn', { argv: [process.execPath, WATCH, '224.0.0.81', String(daemonPort), '50', String(seconds + 8)] })).id : undefined;
      // Channel lvsd: b's lvsd's own frame socket (the wildcard address, sync.port), whose queue is
      // the frames that reached b's kernel and wait for b's lvsd to read them.
      const frameWatch = tracing && lvsdMode ? (await agent<{ id: number }>(B, '/spawn', { argv: [process.execPath, WATCH, '0.0.0.0', String(SYNC_PORT), '50', String(seconds + 8)] })).id : undefined;
      // Channel lvsd: the stream socket's queue in a's guest, sampled every 50 ms over the phase.
      const watch = lvsdMode && !traceBOnly ? (await agent<{ id: number }>(A, '/spawn', { argv: [process.execPath, WATCH, '224.0.0.81', String(STREAM_PORT), '50', String(seconds + 2)] })).id : undefined;
      const rcv0 = await rcvbufErrors(B);
      const [rxA0, rxB0] = [await eth0Rx(A), await eth0Rx(B)];
      const [va0, c0] = [await vsStats(A), guestBusy()];
      let genOut: string;
      if (inject) {
        genOut = await runIn(A, [process.execPath, LOAD, 'inject-flows', String(rate), String(count), '42', String(sample), String(base), String(seconds)], 150_000);
      } else {
        const g = cl.start([process.execPath, LOAD, 'flows', VIP, String(UDP_PORT), String(rate), String(count), String(sample), String(base), String(seconds)]);
        const exit = await Promise.race([g.exited, sleep(150_000).then(() => ({ code: -1 }))]);
        if (exit.code !== 0) throw new Error(`load generator failed (${exit.code}): ${g.output().slice(-1500)}`);
        genOut = g.output();
      }
      const c1 = guestBusy();
      await sleep(1000);
      const [a1, b1] = [await cpu(A, pid[A]!), await cpu(B, pid[B]!)];
      const m1 = await readsOf(A, apiPort);
      const k1 = await kernelSide(A);
      const va1 = await vsStats(A);
      // Frames each director's eth0 took in over the phase: b should see the sync frames and the
      // election's adverts only, not the client's flows (the segment is a learning switch).
      const rx = { a: (await eth0Rx(A)) - rxA0, b: (await eth0Rx(B)) - rxB0 };
      const watched = watch === undefined ? undefined : await until(async () => {
        const o = await agent<{ stdout: string; stderr: string; code: number | null }>(A, '/output', { id: watch });
        if (o.code === null) return undefined;
        return o.code === 0 ? (JSON.parse(o.stdout.trim()) as Record<string, unknown>) : { error: o.stderr.slice(-300) };
      }, "a's stream watch", 60_000, 500);
      type Polled = { want: number; seen: Record<string, [number, number]>; reads: number; readMs: number; periodMs: number; table: number; maxGapMs?: number; waitX?: number; cpuMs?: number; ranMs?: number };
      const polled: Polled | undefined = poller === undefined ? undefined : await until(async () => {
        const o = await agent<{ stdout: string; stderr: string; code: number | null }>(B, '/output', { id: poller });
        if (o.code === null) return undefined;
        if (o.code !== 0) throw new Error(`poller: ${o.stderr}`);
        return JSON.parse(o.stdout.trim()) as Polled;
      }, "b's poller", 60_000, 500);
      if (poller === undefined) await sleep(Math.max(0, c1.at + SETTLE_S * 1000 - Date.now()));
      // The traces end now (SIGTERM: each reads what waits in its socket and prints): every
      // sampled flow b's poller saw has passed every step it will (without the poller: SETTLE_S
      // after the last send).
      for (const [i, id] of traces.entries()) await agent(tracedHosts[i]!, '/signal', { id, signal: 'SIGTERM' });
      // The phase settled: lvsd's CPU over all of it, the channel's work after the last send included.
      const [a2, b2] = [await cpu(A, pid[A]!), await cpu(B, pid[B]!)];
      const rcvbufB = (await rcvbufErrors(B)) - rcv0;
      // b's sync counters (records received, drops by reason) after the phase: where records stopped.
      // a's table read durations (lvsd_sync_table_read_seconds buckets, since a started).
      const readHistA = tracing ? (await exec(A, ['curl', '-s', '--max-time', '10', `http://127.0.0.1:${apiPort}/metrics`])).split('\n').filter((l) => /^lvsd_sync_table_read_seconds_bucket/.test(l)).map((l) => l.replace(/^.*le="([^"]+)"\} /, '$1 ')) : undefined;
      const metricsB = tracing ? (await exec(B, ['curl', '-s', '--max-time', '10', `http://127.0.0.1:${apiPort}/metrics`])).split('\n').filter((l) => /^lvsd_sync_(records|dropped|frames|data_missing|resync)/.test(l)) : undefined;
      // until() retries whatever throws: a trace that failed or printed what does not parse is
      // returned as an error and thrown after, not waited for until the timeout.
      const traced = await Promise.all(traces.map(async (id, i) => {
        const h = tracedHosts[i]!;
        const o = await until(async () => {
          const x = await agent<{ stdout: string; stderr: string; code: number | null }>(h, '/output', { id });
          return x.code === null ? undefined : x;
        }, `the trace in ${h}`, 60_000, 500);
        if (o.code !== 0) throw new Error(`trace in ${h}: exit ${o.code}: ${o.stderr.slice(-500)}`);
        try {
          return JSON.parse(o.stdout.trim()) as Trace;
        } catch (e) {
          throw new Error(`trace in ${h}: ${o.stdout.length} characters that do not parse (${(e as Error).message})`);
        }
      }));
      const daemonQueueB = daemonWatch === undefined ? undefined : await until(async () => {
        const o = await agent<{ stdout: string; stderr: string; code: number | null }>(B, '/output', { id: daemonWatch });
        if (o.code === null) return undefined;
        return o.code === 0 ? (JSON.parse(o.stdout.trim()) as Record<string, unknown>) : { error: o.stderr.slice(-300) };
      }, "b's daemon queue watch", 60_000, 500);
      const frameQueueB = frameWatch === undefined ? undefined : await until(async () => {
        const o = await agent<{ stdout: string; stderr: string; code: number | null }>(B, '/output', { id: frameWatch });
        if (o.code === null) return undefined;
        return o.code === 0 ? (JSON.parse(o.stdout.trim()) as Record<string, unknown>) : { error: o.stderr.slice(-300) };
      }, "b's frame socket watch", 60_000, 500);
      // The sampled flows in a's own table (one read, after b's poller finished).
      const inA = Object.keys((JSON.parse((await runIn(A, [process.execPath, POLLER, String(base), String(count), String(sample), '1'], 60_000)).trim()) as { seen: object }).seen).length;
      const gen = JSON.parse(genOut.trim().split('\n').pop()!) as { sent: number; seconds: number; rate: number; eagain?: number; sendCallMs?: object; cpuMs?: number; samples: Array<[number, number]> };
      // What reached a: its UDP virtual server's new connections and datagrams over the phase
      // (counted by IPVS itself), against what the client sent (3 datagrams a flow).
      const reachedA = { flows: va1.conns - va0.conns, datagrams: va1.inPkts - va0.inPkts, flowsPerS: Math.round((va1.conns - va0.conns) / gen.seconds) };
      const generator = { eagain: gen.eagain, sendCallMs: gen.sendCallMs, cpuPct: gen.cpuMs === undefined ? undefined : Math.round((1000 * gen.cpuMs) / (gen.seconds * 1000)) / 10, guestCPct: Math.round((1000 * 1000 * (c1.busy - c0.busy)) / (c1.at - c0.at)) / 10, txDroppedC: c1.txDropped - c0.txDropped };
      // Sent by c's clock: c's samples as they are; a's (injected) minus a's offset from c.
      const off = skewBefore.offsetMs - (inject ? skewA.offsetMs : 0);
      const up: number[] = [];
      const lo: number[] = [];
      for (const [sport, t] of gen.samples) {
        const s = polled?.seen[sport.toString(16).toUpperCase().padStart(4, '0')];
        if (!s) continue;
        up.push(s[1] - off - t);
        lo.push(Math.max(0, s[0] - off - t));
      }
      const steps = traced.length ? stepsOf(gen.samples, polled?.seen ?? {}, traced.length === 2 ? traced[0]! : NO_TRACE, traced[traced.length - 1]!, skewA.offsetMs, skewBefore.offsetMs) : undefined;
      const win = (a1.at - a0.at) / 1000;
      const pct = (x1: number, x0: number, w: number) => Math.round((1000 * (x1 - x0)) / w) / 10;
      const winB = (b1.at - b0.at) / 1000;
      // The headline: send → the record handed to b's kernel (its backup daemon's port, dated on
      // arrival by b's kernel), over every sampled flow that has the stamp.
      const handed = steps && { ...steps.fromSend.inject, of: gen.samples.length };
      // b's poller: its CPU over its run, % of the guest's one CPU (its reads' kernel time included).
      const pollerB = polled && { waitX: polled.waitX, reads: polled.reads, readMs: Math.round(polled.readMs * 10) / 10, periodMs: Math.round(polled.periodMs * 10) / 10, maxGapMs: polled.maxGapMs, table: polled.table, cpuPct: polled.cpuMs !== undefined && polled.ranMs ? Math.round((1000 * polled.cpuMs) / polled.ranMs) / 10 : NaN };
      const r2 = (x: number) => Math.round(x * 100) / 100;
      // CPU seconds until the phase settled (a0/b0 → a2/b2: the send, the channel's work after it, the
      // poller's or SETTLE_S's wait), and that span's wall seconds.
      // lvsd's idle rate (aI → a0, bI → b0; % of a core).
      const idle = { lvsdA: pct(a0.lvsd, aI.lvsd, (a0.at - aI.at) / 1000), lvsdB: pct(b0.lvsd, bI.lvsd, (b0.at - bI.at) / 1000) };
      const settledCpuS = { wallS: r2((a2.at - a0.at) / 1000), idlePct: idle, lvsdA: r2(a2.lvsd - a0.lvsd), lvsdB: r2(b2.lvsd - b0.lvsd), kthreadsA: r2(a2.kthreads - a0.kthreads), kthreadsB: r2(b2.kthreads - b0.kthreads), guestA: r2(a2.busy - a0.busy), guestB: r2(b2.busy - b0.busy), benchB: r2(b2.agent - b0.agent) };
      const r = {
        kind: inject ? 'injected into a' : 'client flows', rate, seconds, achieved: Math.round(gen.rate), flows: gen.sent, reachedA, eth0Rx: rx, generator, samples: gen.samples.length, seen: up.length, inA, rcvbufErrorsB: rcvbufB,
        handedMs: handed, pollerB,
        upperMs: stats(up), lowerMs: stats(lo), midMs: stats(up.map((u, i) => (u + lo[i]!) / 2)),
        settledCpuS,
        steps, daemonQueueB, frameQueueB, metricsB, readHistA,
        pollReadMs: polled?.readMs ?? NaN, pollPeriodMs: polled?.periodMs ?? NaN, tableB: polled?.table ?? NaN,
        windowS: win,
        lvsdA: split(a1, a0),
        // a's table reads over the window: per second, and the share of the window spent reading.
        readsA: { perS: Math.round((10 * (m1.reads - m0.reads)) / win) / 10, sharePct: Math.round((1000 * (m1.readS - m0.readS)) / win) / 10, streamRecords: m1.streamRecords - m0.streamRecords },
        // Where the stream's records went in a's guest (see kernelSide): flows that reached a, the
        // datagrams its lo sent (≈ the master daemon's), the UDP MIB's deltas, lvsd's own count of
        // the stream socket's overflow, and the socket's queue as sampled (udp-watch.ts).
        streamA: {
          flows: va1.conns - va0.conns,
          loTx: k1.loTx - k0.loTx,
          udp: Object.fromEntries(Object.keys(k1.udp).map((k) => [k, k1.udp[k]! - k0.udp[k]!])),
          backlogDrops: k1.backlogDrops - k0.backlogDrops,
          ipvsLog: k1.ipvsLog - k0.ipvsLog,
          qlenMax: k1.qlenMax,
          overflow: m1.streamOverflow - m0.streamOverflow,
          socket: watched,
        },
        cpuPct: { lvsdA: pct(a1.lvsd, a0.lvsd, win), lvsdB: pct(b1.lvsd, b0.lvsd, (b1.at - b0.at) / 1000), kthreadsA: pct(a1.kthreads, a0.kthreads, win), kthreadsB: pct(b1.kthreads, b0.kthreads, (b1.at - b0.at) / 1000), guestA: pct(a1.busy, a0.busy, win), guestAUserSysIrq: a1.parts.map((x, i) => pct(x, a0.parts[i]!, win)), benchA: pct(a1.agent, a0.agent, win), guestB: pct(b1.busy, b0.busy, winB), benchB: pct(b1.agent, b0.agent, winB) },
      };
      if (steps) say(`steps: ${JSON.stringify({ ...steps, flows: undefined })}`);
      // The series stay in the RESULT line.
      if (daemonQueueB) say(`b's backup daemon queue: ${JSON.stringify({ ...daemonQueueB, series: undefined })}`);
      if (frameQueueB) say(`b's lvsd frame socket: ${JSON.stringify({ ...frameQueueB, series: undefined })}`);
      if (steps) say(`slowest: ${JSON.stringify(steps.flows.slice(0, 8))}`);
      say(`stream in a: ${JSON.stringify({ ...r.streamA, socket: watched ? { ...watched, series: undefined } : undefined })}`);
      say(`phase ${inject ? 'injected ' : ''}${rate}/s: achieved ${r.achieved}/s (reached a ${reachedA.flowsPerS}/s: ${reachedA.flows} flows, ${reachedA.datagrams} datagrams; ${JSON.stringify(generator)}), seen ${r.seen}/${r.samples} (in a ${inA}), b rcvbuf errors ${rcvbufB}, eth0 frames in a ${rx.a} b ${rx.b}, upper p50/p95 ${r.upperMs.p50.toFixed(1)}/${r.upperMs.p95.toFixed(1)} ms, cpu ${JSON.stringify(r.cpuPct)}; a's lvsd ${JSON.stringify(r.lvsdA)}; a's reads ${JSON.stringify(r.readsA)}`);
      out.push(r);
      base += count + 1000;
      await sleep(2000);
    }
    // --resync=N (channel lvsd): b dies, a is filled with N entries, b returns and asks for the table
    // (sync-pair-resync.ts); b's lvsd is a new process after it.
    let resync: Record<string, unknown> | undefined;
    if (resyncN) {
      // Profiled (PROF_DIR): the returning b in PROF_DIR/b-return (the first b's profile is written in PROF_DIR/b as it stops).
      const profB = profDir ? [process.execPath, '--cpu-prof', `--cpu-prof-dir=${join(profDir, 'b-return')}`] : [];
      const r = await resyncPhase({ A, B, cfgB, apiPort, entries: resyncN, pidA: pid[A]!, bgA: bgId[A]!, pidB: pid[B]!, bgB: bgId[B]!, profB, say });
      [pid[B], bgId[B], resync] = [r.pidB, r.bgB, r.result];
      say(`resync: ${JSON.stringify({ ...r.result, log: undefined, bStart: undefined })}`);
    }
    const skewAfter = await clockOffset(B);
    if (profDir) {
      // SIGTERM, and its end awaited: node writes the profiles as it (and each worker) exits.
      for (const h of [A, B]) {
        await agent(h, '/signal', { id: bgId[h], signal: 'SIGTERM' });
        await until(async () => ((await agent<{ code: number | null }>(h, '/output', { id: bgId[h] })).code !== null ? true : undefined), `${h}'s lvsd to stop`, 30_000, 500);
      }
    }
    await agent(A, '/exit').catch(() => undefined);
    await agent(B, '/exit').catch(() => undefined);
    return { skewBefore, skewAfter, skewA, phases: out, ...(resync ? { resync } : {}) };
  } finally {
    await topo.destroy();
  }
}

const trace = process.argv.includes('--trace') || process.argv.includes('--trace=b');
const traceBOnly = process.argv.includes('--trace=b');
const waitArg = process.argv.find((x) => x.startsWith('--poll-wait='));
/** b's poller's pause, × its last read (undefined: no poller). */
const pollWait = process.argv.includes('--no-poller') ? undefined : waitArg ? Number(waitArg.slice(12)) : 9;
if (pollWait !== undefined && !(pollWait >= 0 && pollWait <= 100)) throw new Error(`--poll-wait=K: 0 to 100, not "${waitArg}"`);
const [cfgA, cfgB, spec, profDir] = process.argv.slice(2).filter((x) => !x.startsWith('--'));
const resyncArg = process.argv.find((x) => x.startsWith('--resync='));
/** --resync=N: the full-resync phase after the others, N entries (0: none). */
const resyncN = resyncArg ? Number(resyncArg.slice(9)) : 0;
if (!(Number.isInteger(resyncN) && resyncN >= 0 && resyncN <= 200_000)) throw new Error(`--resync=N: 0 to 200,000, not "${resyncArg}"`);
// The directors' API port (bench/sync-pair.ts writes both configs with it).
const lvsdMode = /channel: lvsd/.test(readFileSync(cfgA!, 'utf8'));
const apiPort = Number(/listen: [0-9.]+:([0-9]+)/.exec(readFileSync(cfgA!, 'utf8'))?.[1]);
const phases = (spec ?? '').split(',').filter(Boolean).map((p): [boolean, number, number] => {
  const [r, sec] = p.replace(/^i/, '').split(':').map(Number);
  return [p.startsWith('i'), r!, sec!];
});
if (resyncN && !lvsdMode) throw new Error('--resync: channel lvsd only (the kernel channel has no resync)');
main(cfgA!, cfgB!, phases, profDir || undefined, apiPort).then(
  (r) => {
    process.stdout.write(`RESULT ${JSON.stringify(r)}\n`);
    process.exit(0);
  },
  (e: unknown) => {
    process.stdout.write(`FAIL ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  },
);
