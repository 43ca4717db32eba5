/**
 * The full-resync phase of bench/sync-pair.ts (channel lvsd; the kernel channel has none), run by
 * its driver in guest c (sync-pair-driver.ts --resync=N): issue 18's "resync of 100,000 connections
 * ≤ 1 s" with each director in a guest of its own (its own kernel, its own host core: c is idle
 * meanwhile), where bench/sync.ts had both in one guest's one CPU. The method is bench/sync.ts's:
 *
 *  1. The reference, the hand-over alone: N established TCP entries fed into b's own kernel by a
 *     local process through b's kernel backup daemon on lo (sync-load.js inject: LoopbackInjector,
 *     all queued at once, joined and paced, as b's lvsd hands a resync over; no channel, no wire),
 *     into b's table as empty as the resync finds it. Timed from its first send to all N counted in
 *     b's kernel (b's clock at both ends). Their timeout is REF_TIMEOUT_S so they are gone before b
 *     returns (IPVS has no call that deletes connection entries; they stay until they expire).
 *  2. b dies: SIGTERM to its lvsd (which stops its kernel daemon and leaves its virtual servers:
 *     src/ipvs/subsystem.ts never flushes on stop), its end awaited.
 *  3. a's kernel is filled with N entries (sync-load.js inject in a, through a's backup daemon on lo,
 *     the one lvsd keeps there in either role; each message also to a's kernel stream port, as the
 *     master daemon streams connections made by traffic, so a's lvsd learns them as real ones); the
 *     phase waits until a's kernel holds them (ActiveConn over netlink, not the O(n²) table read)
 *     and a's lvsd knows them (sent them all, or completed two table reads after the fill), then 10 s
 *     (a holding a large table for a while, as a returning peer finds it).
 *  4. b's table checked empty of them (ActiveConn 0; the guest's ip_vs_conn slab given), b's counter
 *     started (sync-load.js count in b, netlink every 100 ms, its samples dated in b's clock), then b
 *     returns: `lvsd run` again, which asks a for its table at start.
 * Figures: b's start → its request (log; b's clock, its start from c's clock + the measured offset),
 * request → acknowledgement (a's lvsd_sync_resync_duration_seconds_sum delta), request → all N in b's
 * kernel (b's clock at both ends), b's "table received" → all in its kernel, a's answer stages (its
 * log), frames lost / resent / asked for, b's kernel daemon's drops, and CPU seconds of a's and b's
 * lvsd, the kernels' ipvs threads and each guest from b's start to its request (as seen) and from
 * then to all in b's kernel (as seen). Ratio: request → all in b's kernel over the reference.
 * Every wait is bounded.
 */
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { agent, clockOffset } from '../../src/lab/pair-agent.js';
import { lvsdBin } from '../../test/support/proc.js';
import { cpu, exec, rcvbufErrors, runIn, until, type Cpu } from './pair-remote.js';
import { parseDestConns } from './conn-count.js';
import { answerOf, logTime, sample, timeline } from './lvsd-output.js';

const LOAD = join(dirname(fileURLToPath(import.meta.url)), 'sync-load.js');
/** The injected entries' service and real server (sync-load.js inject). */
const VIP = '192.0.2.100';
const VS80 = `${VIP}:80`;
const RS = '192.0.2.11';
const SYNCID = 42;
/** a's kernel stream port (sync.stream_port's default). */
const STREAM_PORT = 8849;
/** The reference's entries live this long in b's kernel: past its count, gone before b returns. */
const REF_TIMEOUT_S = 30;
const wall = () => performance.timeOrigin + performance.now();

export interface ResyncCtx {
  A: string;
  B: string;
  cfgB: string;
  apiPort: number;
  entries: number;
  pidA: number;
  bgA: number;
  pidB: number;
  bgB: number;
  /** Put before `lvsd run` when b returns (node --cpu-prof …: the returning b's profile, its own folder). */
  profB: string[];
  say: (m: string) => void;
}

type Out = { stdout: string; stderr: string; code: number | null };
const output = (host: string, id: number) => agent<Out>(host, '/output', { id });
const metrics = (host: string, port: number) => exec(host, ['curl', '-s', '--max-time', '10', `http://127.0.0.1:${port}/metrics`]);
/** ActiveConn of the injected entries' real server in a guest's kernel (netlink, O(services)). */
const activeIn = async (host: string) => parseDestConns(await exec(host, ['ipvsadm', '-Ln', '-t', VS80]), `${RS}:80`).active;
/**
 * Connection entries in a guest's kernel, every service: the lines of its table, read only when the
 * injected service holds none (a read of 100,000 costs tens of seconds: O(n²)); NaN otherwise. (The
 * guest's /proc/slabinfo has no ip_vs_conn line to count instead: SLUB merged the cache.)
 */
const entriesIn = async (host: string, active: number) => (active === 0 ? (await exec(host, ['cat', '/proc/net/ip_vs_conn'])).split('\n').filter((l) => /^(TCP|UDP|SCTP) /.test(l)).length : NaN);

/** A kernel counter in a guest (sync-load.js count): started, its first sample awaited; its samples [guest wall ms, ActiveConn]. */
async function counter(host: string, seconds: number): Promise<{ samples: () => Promise<Array<[number, number]>>; stop: () => Promise<void> }> {
  const id = (await agent<{ id: number }>(host, '/spawn', { argv: [process.execPath, LOAD, 'count', VIP, '80', RS, String(seconds)] })).id;
  const samples = async () =>
    (await output(host, id)).stdout
      .split('\n')
      .filter((l) => l.startsWith('['))
      .map((l) => JSON.parse(l) as [number, number]);
  await until(async () => ((await samples()).length ? true : undefined), `the kernel counter in ${host}`, 30_000, 200);
  return { samples, stop: async () => void (await agent(host, '/signal', { id, signal: 'SIGTERM' })) };
}

/** The first sample's time at which the counter held at least n (the guest's clock), polled every step ms for at most ms; NaN if never. */
async function reached(c: Awaited<ReturnType<typeof counter>>, n: number, what: string, ms: number, step: number): Promise<number> {
  return until(async () => (await c.samples()).find(([, k]) => k >= n)?.[0], what, ms, step).catch(() => NaN);
}

/** CPU seconds between two readings: lvsd, the kernel's ipvs threads, the whole guest (busy), and the bench's own processes (the agent and its finished children). */
const spent = (c1: Cpu, c0: Cpu) => {
  const r2 = (x: number) => Math.round(x * 100) / 100;
  return { s: r2((c1.at - c0.at) / 1000), lvsd: r2(c1.lvsd - (Number.isFinite(c0.lvsd) ? c0.lvsd : 0)), kthreads: r2(c1.kthreads - c0.kthreads), busy: r2(c1.busy - c0.busy), bench: r2(c1.agent - c0.agent) };
};

/** CPU seconds by thread between two readings of one process (threads under 0.05 s left out). */
function byThread(c1: Cpu, c0: Cpu): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, [u, sy]] of Object.entries(c1.threads)) {
    const [u0, s0] = c0.threads[k] ?? [0, 0];
    const d = Math.round((u - u0 + sy - s0) * 100) / 100;
    if (d >= 0.05) out[k] = d;
  }
  return out;
}

export async function resyncPhase(x: ResyncCtx): Promise<{ result: Record<string, unknown>; pidB: number; bgB: number }> {
  const { A, B, entries: n, say } = x;
  // 1. The reference: the hand-over alone, into b's kernel, while b's lvsd (and its daemon on lo) runs.
  const activeB0 = await activeIn(B);
  const before = { activeB: activeB0, entriesB: await entriesIn(B, activeB0) };
  const refCount = await counter(B, 120);
  const refCpu0 = await cpu(B, x.pidB);
  const ref = JSON.parse((await runIn(B, [process.execPath, LOAD, 'inject', String(n), String(SYNCID), '0', String(REF_TIMEOUT_S)], 150_000)).trim().split('\n').pop()!) as { messages: number; seconds: number; daemonDrops: number; start: number };
  const refAt = await reached(refCount, n, `the reference's ${n} entries in b's kernel`, 60_000, 500);
  const refCpu1 = await cpu(B, x.pidB);
  await refCount.stop();
  // Its CPU window is the injector's whole run (node's start, ~6 s in a guest, included).
  const reference = { messages: ref.messages, sendS: ref.seconds, daemonDrops: ref.daemonDrops, toKernelMs: refAt - ref.start, cpuB: spent(refCpu1, refCpu0) };
  say(`resync: reference (hand-over alone) in b: ${JSON.stringify(reference)}`);

  // 2. b dies.
  await agent(B, '/signal', { id: x.bgB, signal: 'SIGTERM' });
  await until(async () => ((await output(B, x.bgB)).code !== null ? true : undefined), "b's lvsd to stop", 30_000, 500);

  // 3. a's kernel filled, a's lvsd knows it, then holds it 10 s.
  const sentBefore = sample(await metrics(A, x.apiPort), 'lvsd_sync_records_total{direction="sent"}') || 0;
  const fill = JSON.parse((await runIn(A, [process.execPath, LOAD, 'inject', String(n), String(SYNCID), String(STREAM_PORT)], 150_000)).trim().split('\n').pop()!) as { seconds: number; daemonDrops: number };
  const inA = await until(async () => {
    const k = await activeIn(A);
    return k >= n ? k : undefined;
  }, `${n} entries in a's kernel`, 90_000, 1000).catch(() => activeIn(A));
  const tFilled = Date.now();
  const reads0 = sample(await metrics(A, x.apiPort), 'lvsd_sync_table_read_seconds_count') || 0;
  const knownAfterMs = await until(async () => {
    const t = await metrics(A, x.apiPort);
    const ok = sample(t, 'lvsd_sync_records_total{direction="sent"}') - sentBefore >= inA || sample(t, 'lvsd_sync_table_read_seconds_count') - reads0 >= 2;
    return ok ? Date.now() - tFilled : undefined;
  }, `a's lvsd to know its ${inA} entries`, 300_000, 1000).catch(() => NaN);
  say(`resync: a holds ${inA} entries (fill ${fill.seconds.toFixed(2)} s, ${fill.daemonDrops} daemon drops), known ${knownAfterMs} ms after`);
  await sleep(10_000);

  // 4. b's table without them (the reference's expired), b's counter, b returns.
  const activeB = await until(async () => ((await activeIn(B)) === 0 ? 0 : undefined), "the reference's entries to expire in b", 120_000, 2000).catch(() => activeIn(B));
  const emptyB = { activeB, entriesB: await entriesIn(B, activeB) };
  const count = await counter(B, 300);
  const off = await clockOffset(B);
  const m0 = await metrics(A, x.apiPort);
  const sum0 = sample(m0, 'lvsd_sync_resync_duration_seconds_sum') || 0;
  const [a0, b0] = [await cpu(A, x.pidA), await cpu(B, -1)];
  const rcv0 = await rcvbufErrors(B);
  const tStartC = wall();
  const spawned = await agent<{ id: number; pid: number }>(B, '/spawn', { argv: [...x.profB, lvsdBin, 'run', '-c', x.cfgB] });
  // b's start in b's clock: c's time of the spawn call moved by the offset (± half the quickest round trip).
  const t0B = tStartC + off.offsetMs;
  const logB = async () => {
    const o = await output(B, spawned.id);
    return o.stdout + o.stderr;
  };
  // Polled every 250 ms: each poll is work in b's guest (an HTTP exchange, UML's system calls are
  // ptrace round trips), beside b's start it measures.
  await until(async () => (/asked the peer for its table/.test(await logB()) ? true : undefined), "b's resync request", 120_000, 250);
  // Both readings at once: one exec in each guest, each ~0.5 s in a loaded guest; read one after the
  // other, the window began ~1 s after b's request, past most of a's answer's encoding.
  const [aReq, bReq] = await Promise.all([cpu(A, x.pidA), cpu(B, spawned.pid)]);
  // Polled every second (the first run's 250 ms polls took ~1 s of b's guest CPU over a 4.4 s
  // resync): the figure is the counter's own sample time; the poll only ends the CPU window.
  const kernelAt = await reached(count, inA, `${inA} entries in b's kernel`, 120_000, 1000);
  const [aEnd, bEnd] = await Promise.all([cpu(A, x.pidA), cpu(B, spawned.pid)]);
  await count.stop();
  await until(async () => (/peer table received|no active peer answered/.test(await logB()) ? true : undefined), "b's resync log", 15_000, 500).catch(() => undefined);
  const aText = await until(async () => {
    const t = await metrics(A, x.apiPort);
    return sample(t, 'lvsd_sync_resync_duration_seconds_sum') > sum0 ? t : undefined;
  }, "a's resync acknowledgement", 15_000, 500).catch(() => metrics(A, x.apiPort));
  const bText = await metrics(B, x.apiPort);
  const bLog = await logB();
  const aOut = await output(A, x.bgA);
  const requestAt = logTime(bLog, /asked the peer for its table/);
  const tableAt = logTime(bLog, /peer table received|no active peer answered/);
  const samples = await count.samples();
  const result = {
    entries: n,
    inA,
    before,
    reference,
    fill: { sendS: fill.seconds, daemonDrops: fill.daemonDrops, knownAfterMs },
    emptyB,
    clockB: off,
    startToRequestMs: Math.round(requestAt - t0B),
    ackMs: Math.round((sample(aText, 'lvsd_sync_resync_duration_seconds_sum') - sum0) * 1000),
    endMs: Number(/"received":true,"ms":(\d+)/.exec(bLog)?.[1] ?? NaN),
    reqToKernelMs: Math.round(kernelAt - requestAt),
    tableToKernelMs: Math.round(kernelAt - tableAt),
    startToKernelMs: Math.round(kernelAt - t0B),
    inB: samples.at(-1)?.[1] ?? 0,
    answer: answerOf(aOut.stdout + aOut.stderr),
    lostB: sample(bText, 'lvsd_sync_dropped_total{reason="lost"}') || 0,
    resentA: (sample(aText, 'lvsd_sync_resync_resent_frames_total') || 0) - (sample(m0, 'lvsd_sync_resync_resent_frames_total') || 0),
    missingAsksB: sample(bText, 'lvsd_sync_resync_missing_requests_total') || 0,
    receivedB: sample(bText, 'lvsd_sync_records_total{direction="received"}'),
    kernelQueueDropsB: sample(bText, 'lvsd_sync_dropped_total{reason="kernel_queue"}') || 0,
    rcvbufErrorsB: (await rcvbufErrors(B)) - rcv0,
    // CPU seconds: b's start → its request as seen (b's lvsd: all it used so far), request → all in b's kernel as seen.
    cpu: { startA: spent(aReq, a0), startB: spent(bReq, b0), resyncA: spent(aEnd, aReq), resyncB: spent(bEnd, bReq) },
    // Over the resync, by thread (s, user + system; ≥ 0.05 s): a's main thread and its table worker, b's.
    threads: { a: byThread(aEnd, aReq), b: byThread(bEnd, bReq) },
    // a's threads from before b's start to the end: its table worker's answer (encode) whole, and its reads meanwhile.
    threadsAWhole: byThread(aEnd, a0),
    bStart: timeline(bLog, t0B, /peer table received|no active peer answered/),
    log: [...bLog.split('\n'), ...(aOut.stdout + aOut.stderr).split('\n').slice(-400)].filter((l) => /resync|peer table|no active peer|full table|unpaced/.test(l)).map((l) => l.slice(0, 300)),
  };
  return { result, pidB: spawned.pid, bgB: spawned.id };
}
