/**
 * The sync engine's staleness accounting (issue 18 item 8), with two engines joined by an in-memory
 * channel, each reading its table through the real table worker thread from a file of
 * /proc/net/ip_vs_conn's format (the real kernel path is proven in test/lab/sync-lvsd.test.ts and
 * measured by bench/sync.ts): the sender stamps each DATA frame with the wall-clock time of the table read that
 * showed its records, the receiver observes one staleness value per record once it has handed them to
 * its kernel; full-resync records are not fresh sightings and are not observed; a sender clock ahead
 * of ours counts as 0, not as a negative age.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { silentLogger } from '../../src/core/log.js';
import { SyncEngine } from '../../src/sync/engine.js';
import { WorkerTableSource, type PollResult, type TableSource } from '../../src/sync/source.js';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeMessage, encodeMessage, encodeMessages } from '../../src/sync/codec.js';
import { FrameType, DATA_STAMP_LEN, ReplayGuard, type Frame } from '../../src/sync/wire.js';
import { encodeDataMissing } from '../../src/sync/resend.js';

const HEAD = 'Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData\n';
const line = (cport: number) => `TCP C0000232 ${cport.toString(16).toUpperCase().padStart(4, '0')} C0000264 0050 C000020B 0050 ESTABLISHED     898\n`;

/** A channel between two engines in one process: each frame, numbered per side, straight to `deliver`. */
const directChannel = (side: 'a' | 'b', seqs: { a: bigint; b: bigint }, deliver: (f: Frame) => void) => ({
  send: async (type: FrameType, payload: Buffer) => {
    const s = ++seqs[side];
    deliver({ type, payload, node: side === 'a' ? 1 : 2, epoch: 1n, seq: s, keyId: 0 });
    return s;
  },
  receiveWindow: 24,
  node: side === 'a' ? 1 : 2,
  epoch: 1n,
  get lastSeq() {
    return seqs[side];
  },
});

function pair() {
  const wall = { a: 1_700_000_000_000, b: 1_700_000_000_000 };
  const dir = mkdtempSync(join(tmpdir(), 'lvsd-engine-'));
  const file = join(dir, 'ip_vs_conn');
  writeFileSync(file, HEAD);
  const injected: Buffer[] = [];
  const frames: Frame[] = [];
  const log = silentLogger;
  const seqs = { a: 0n, b: 0n };
  const mk = (side: 'a' | 'b', deliver: (f: Frame) => void) =>
    new SyncEngine({
      log,
      registry: new Registry(),
      openSource: (onChanges, onError, onStreamState, onBacklog) => new WorkerTableSource({ paths: [file], syncid: 42, maxMessage: 1380, pollMs: 50, services: [] }, onChanges, onError, onStreamState, onBacklog),
      channel: directChannel(side, seqs, deliver),
      inject: async (m) => void injected.push(m),
      now: () => wall[side],
      wallNow: () => wall[side],
      syncid: 42,
    });
  const hooks: { toB?: (f: Frame) => void; toA?: (f: Frame) => void } = {};
  const b = mk('b', (f) => hooks.toA?.(f));
  const a = mk('a', (f) => {
    frames.push(f);
    hooks.toB?.(f);
  });
  const close = async () => {
    await a.close();
    await b.close();
    rmSync(dir, { recursive: true, force: true });
  };
  return { a, b, wall, frames, injected, close, hooks, setTable: (t: string) => writeFileSync(file, t), removeTable: async () => rmSync(file) };
}

/** a's DATA frames reach b as they are sent; b's frames reach a only if `reports`. */
function pairLinked(p: ReturnType<typeof pair>, reports: boolean) {
  const link = { progress: 0 };
  p.hooks.toB = (f) => {
    if (f.type === FrameType.DATA || f.type === FrameType.RESYNC_DATA) void p.b.onFrame(f);
  };
  p.hooks.toA = (f) => {
    if (!reports) return;
    if (f.type === FrameType.RESYNC_PROGRESS) link.progress++;
    void p.a.onFrame(f);
  };
  return link;
}

const staleness = async (e: SyncEngine) => (await e.m.staleness.get()).values;
const count = async (e: SyncEngine) => (await staleness(e)).find((v) => v.metricName === 'lvsd_sync_staleness_seconds_count')?.value ?? 0;
const sum = async (e: SyncEngine) => (await staleness(e)).find((v) => v.metricName === 'lvsd_sync_staleness_seconds_sum')?.value ?? 0;

test('DATA frames carry the sight time; the receiver observes one staleness value per installed record', async () => {
  const p = pair();
  p.setTable(HEAD + line(1000) + line(1001) + line(1002));
  const before = Date.now();
  assert.equal(await p.a.poll(), 3);
  const after = Date.now();
  assert.equal(p.frames.length, 1);
  const f = p.frames[0]!;
  const sight = Number(f.payload.readBigUInt64BE(0));
  assert.ok(sight >= before && sight <= after, `sight time = the wall clock at the table read (${before} ≤ ${sight} ≤ ${after})`);
  const m = decodeMessage(f.payload.subarray(DATA_STAMP_LEN));
  assert.ok(m.ok && m.message.conns.length === 3, 'then the kernel sync message');
  p.wall.b = sight + 40; // the receiver hands them to its kernel 40 ms later
  await p.b.onFrame(f);
  assert.equal(p.injected.length, 1);
  assert.equal(p.injected[0]![1], 42, 'the kernel message (without the stamp) goes to the local backup daemon');
  assert.equal(await count(p.b), 3);
  assert.ok(Math.abs((await sum(p.b)) - 0.12) < 1e-9, `3 records × 40 ms: ${await sum(p.b)}`);
  assert.equal(await p.a.poll(), 0, 'nothing changed: nothing sent again');
  await p.close();
});

test('full-resync records are not observed; a sender clock ahead counts as 0; a DATA frame without its stamp is dropped', async () => {
  const p = pair();
  p.setTable(HEAD + line(2000) + line(2001));
  await p.a.sendFullTable(); // no read yet: the answer waits for the first one (whose changes go out as usual)
  const data = p.frames.filter((f) => f.type === FrameType.RESYNC_DATA);
  assert.equal(data.length, 1);
  assert.equal(data[0]!.payload.readUInt32BE(4), 0, 'resync frames carry their index, not a sight time');
  await p.b.onFrame(data[0]!);
  assert.equal(p.injected.length, 1, 'installed all the same');
  assert.equal(await count(p.b), 0);
  assert.equal(await p.a.poll(), 0, 'what the resync sent is not sent again by the next poll');

  p.frames.length = 0;
  p.setTable(HEAD + line(2000) + line(2001) + line(2002));
  assert.equal(await p.a.poll(), 1, 'only the new connection');
  const sight = Number(p.frames[0]!.payload.readBigUInt64BE(0));
  p.wall.b = sight - 5000; // the sender's clock runs 5 s ahead of the receiver's
  await p.b.onFrame(p.frames[0]!);
  assert.equal(await count(p.b), 1);
  assert.equal(await sum(p.b), 0);

  await p.b.onFrame({ ...p.frames[0]!, payload: Buffer.alloc(4) });
  const drops = (await p.b.m.drops.get()).values.find((v) => v.labels.reason === 'bad_records')?.value;
  assert.equal(drops, 1);
  await p.close();
});

test('lines of the table that cannot be parsed are counted drops; the rest is sent; the worker keeps running', async () => {
  const p = pair();
  p.setTable(HEAD + line(3000) + 'TCP ZZZZ garbage\n' + '\u0000\u0001\n' + line(3001));
  assert.equal(await p.a.poll(), 2);
  const drops = (await p.a.m.drops.get()).values.find((v) => v.labels.reason === 'table_line')?.value;
  assert.equal(drops, 2);
  p.setTable(HEAD + line(3000) + line(3001) + line(3002));
  assert.equal(await p.a.poll(), 1, 'the next read works');
  await p.close();
});

test('an unreadable table is logged and retried, not thrown', async () => {
  const p = pair();
  p.setTable(HEAD + line(4000));
  assert.equal(await p.a.poll(), 1);
  await p.removeTable();
  assert.equal(await p.a.poll(), 0);
  p.setTable(HEAD + line(4000) + line(4001));
  assert.equal(await p.a.poll(), 1);
  await p.close();
});

test('a resync still arriving is not given up on: resync_timeout counts silence between its messages', async () => {
  const p = pair();
  p.setTable(HEAD + line(5000) + line(5001));
  await p.a.sendFullTable();
  const [data, end] = [p.frames.find((f) => f.type === FrameType.RESYNC_DATA)!, p.frames.find((f) => f.type === FrameType.RESYNC_END)!];
  let settled: boolean | undefined;
  const waiting = p.b.resyncFromPeer(3000).then((ok) => (settled = ok));
  // Sixteen resync messages, 250 ms apart: 4 s in all, more than the 3 s timeout, never 3 s of silence
  // (a loaded machine may stretch a 250 ms pause a lot, not by 2.75 s).
  for (let i = 0; i < 16; i++) {
    await new Promise((r) => setTimeout(r, 250));
    await p.b.onFrame(data);
    assert.equal(settled, undefined, `still waiting after message ${i + 1}`);
  }
  await p.b.onFrame(end);
  assert.equal(await waiting, true, 'the table arrived');

  // Silence: given up on.
  assert.equal(await p.b.resyncFromPeer(200), false);
  await p.close();
});

test('an answer still being prepared is waited for: every RESYNC_BEGIN starts the count of unanswered requests over', async () => {
  const p = pair();
  p.setTable(HEAD + line(5000) + line(5001));
  await p.a.sendFullTable();
  const [data, end] = [p.frames.find((f) => f.type === FrameType.RESYNC_DATA)!, p.frames.find((f) => f.type === FrameType.RESYNC_END)!];
  // a's table worker is busy (a large read being parsed): each request b sends is answered with
  // RESYNC_BEGIN only, no frame of the answer yet.
  let requests = 0;
  p.hooks.toA = (f) => {
    if (f.type !== FrameType.RESYNC_REQUEST) return;
    requests++;
    void p.b.onFrame({ type: FrameType.RESYNC_BEGIN, payload: Buffer.alloc(0), node: 1, epoch: 1n, seq: BigInt(1000 + requests), keyId: 0 });
  };
  let settled: boolean | undefined;
  const waiting = p.b.resyncFromPeer(100).then((ok) => (settled = ok));
  // More silences than the five requests in a row that bring nothing (RESYNC_ATTEMPTS): still waiting.
  for (let i = 0; i < 600 && requests < 9 && settled === undefined; i++) await new Promise((r) => setTimeout(r, 50));
  assert.equal(settled, undefined, `still waiting after ${requests} requests, each answered by RESYNC_BEGIN`);
  assert.ok(requests >= 9, `b asked again at each silence (${requests} requests)`);
  await p.b.onFrame(data);
  await p.b.onFrame(end);
  assert.equal(await waiting, true, 'the answer, once ready, is received');
  await p.close();
});

test('a full resync larger than the flow-control window arrives whole; without progress reports it still completes', async () => {
  const rows = Array.from({ length: 6000 }, (_, i) => line(10000 + i)).join('');
  for (const reports of [true, false]) {
    const p = pair();
    p.setTable(HEAD + rows);
    // Nobody hears the read: its records wait behind the pacing (five stalls of a second each), and
    // the backlog gauge shows them until they are handed to the socket.
    const backlog = async () => (await p.a.m.backlog.get()).values[0]?.value ?? 0;
    let done = false;
    const read = p.a.poll().then((n) => ((done = true), n));
    let most = 0;
    for (let i = 0; i < 200 && !done; i++) {
      most = Math.max(most, await backlog());
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(await read, 6000, 'a read: the resync is answered from it');
    assert.ok(most > 0 && most <= 6000, `the read's records were counted waiting (most ${most})`);
    assert.equal(await backlog(), 0, 'none waits once the read is sent');
    // b's frames (RESYNC_PROGRESS, RESYNC_ACK) go back to a, unless this peer reports nothing.
    const link = pairLinked(p, reports);
    // The read went to nobody (no reports): a full window without a report for a second is a stall
    // (lvsd_sync_send_stalls_total), and five in a row turn the pacing off.
    const stalls0 = (await p.a.m.sendStalls.get()).values[0]?.value ?? 0;
    assert.equal(stalls0, 5, 'the unanswered read stalled five times, then went unpaced');
    const got = p.b.resyncFromPeer(5000);
    await p.a.sendFullTable();
    for (const f of p.frames.filter((x) => x.type === FrameType.RESYNC_END)) await p.b.onFrame(f);
    assert.equal(await got, true);
    const installed = p.injected.reduce((n, m) => n + (decodeMessage(m).ok ? m[4]! : 0), 0);
    assert.equal(installed, 6000, `every record handed to b's kernel (progress reports: ${reports})`);
    // b keeps the records compactly (the message and an index) and decodes them for `sync show`.
    const shown = p.b.peerTable();
    assert.equal(shown.length, 6000, 'every record in b\'s peer table');
    assert.deepEqual(new Set(shown.map((r) => r.conn.cport)).size, 6000, 'each connection once, decoded from its message');
    assert.ok(shown.every((r) => r.conn.protocol === 6 && r.conn.state === 1 && r.until > 1_700_000_000_000), 'as sent: TCP, established, not expired');
    if (reports) assert.ok(link.progress > 6000 / 38 / 16 - 2, `b reported its progress (${link.progress} reports)`);
    // None in the resync: a reporting peer drains the window; a silent one is sent to unpaced.
    const stalls = ((await p.a.m.sendStalls.get()).values[0]?.value ?? 0) - stalls0;
    assert.equal(stalls, 0, `no stall in the resync (progress reports: ${reports})`);
    await p.close();
  }
});

test('every DATA frame is paced by the peer\'s reports: a large first read never has more than a window in flight', async () => {
  const rows = Array.from({ length: 6000 }, (_, i) => line(20000 + i)).join('');
  const p = pair();
  p.setTable(HEAD + rows);
  const sent: bigint[] = [];
  let reported = 0n;
  let most = 0;
  p.hooks.toB = (f) => {
    if (f.type !== FrameType.DATA) return;
    sent.push(f.seq);
    most = Math.max(most, sent.filter((s) => s > reported).length);
    void p.b.onFrame(f);
  };
  p.hooks.toA = (f) => {
    if (f.type === FrameType.RESYNC_PROGRESS) reported = f.payload.readBigUInt64BE(0);
    void p.a.onFrame(f);
  };
  await p.b.requestResync(); // a is not active: no answer, but a now knows a reporting peer
  assert.equal(await p.a.poll(), 6000);
  const installed = p.injected.reduce((n, m) => n + m[4]!, 0);
  assert.equal(installed, 6000, 'every record handed to b\'s kernel');
  assert.ok(most <= 24, `at most the window (24) in flight, saw ${most}`);
  assert.ok(reported > 0n, 'b reported the frames it handed over');
  await p.close();
});

test('a resync that lost frames on the way: only those frames are asked for and resent, and it arrives whole', async () => {
  const rows = Array.from({ length: 2000 }, (_, i) => line(30000 + i)).join('');
  const p = pair();
  p.setTable(HEAD + rows);
  p.a.setActive(true, 'test'); // the first read sends everything (not to b yet: no link)
  while (!p.frames.some((f) => f.type === FrameType.DATA)) await new Promise((r) => setTimeout(r, 10));
  // The first answer loses frames 1, 5, 6 and 7, and its RESYNC_END; the resend of 6 is lost too.
  const lose = new Map([[1, 1], [5, 1], [6, 2], [7, 1]]);
  let endsLost = 0;
  const sentIdx: number[] = [];
  p.hooks.toB = (f) => {
    if (f.type === FrameType.RESYNC_DATA) {
      const i = f.payload.readUInt32BE(4);
      sentIdx.push(i);
      const left = lose.get(i) ?? 0;
      if (left > 0) return void lose.set(i, left - 1);
    }
    if (f.type === FrameType.RESYNC_END && endsLost++ === 0) return;
    void p.b.onFrame(f);
  };
  p.hooks.toA = (f) => void p.a.onFrame(f);
  assert.equal(await p.b.resyncFromPeer(1000), true);
  const frames = Math.ceil(2000 / 38);
  assert.deepEqual(sentIdx.slice(0, frames), Array.from({ length: frames }, (_, i) => i), 'the answer, once');
  const resent = sentIdx.slice(frames);
  assert.deepEqual([...new Set(resent)].sort((x, y) => x - y), [1, 5, 6, 7], `only the lost frames were resent: ${resent}`);
  assert.equal(resent.filter((i) => i === 6).length, 2, 'frame 6, lost twice, was resent twice');
  const keys = new Set<number>();
  for (const m of p.injected) {
    const r = decodeMessage(m);
    if (r.ok) for (const c of r.message.conns) keys.add(c.cport);
  }
  assert.equal(keys.size, 2000, "every connection reached b's kernel");
  const value = async (c: { get(): Promise<{ values: Array<{ value: number; labels: Record<string, unknown> }> }> }, role?: string) =>
    (await c.get()).values.find((v) => role === undefined || v.labels.role === role)?.value ?? 0;
  assert.equal(await value(p.a.m.resyncs, 'sender'), 1, 'a answered once');
  assert.equal(await value(p.a.m.resent), resent.length);
  assert.ok((await value(p.b.m.missingAsks)) >= 2, 'b asked for the missing frames (after the silence, and after the resend lost frame 6 again)');
  await p.close();
});

test("a resent answer frame does not overwrite a newer state a poll sent meanwhile", async () => {
  const p = pair();
  const conn = (cport: number, state: number) => ({ family: 4 as const, protocol: 6, flags: 3, state, cport, vport: 80, dport: 80, fwmark: 0, timeout: 0, caddr: Uint8Array.from([192, 0, 2, 50]), vaddr: Uint8Array.from([192, 0, 2, 100]), daddr: Uint8Array.from([192, 0, 2, 11]) });
  let seq = 100n;
  const frame = (type: FrameType, payload: Buffer): Frame => ({ type, payload, node: 1, epoch: 1n, seq: ++seq, keyId: 0 });
  const answerFrame = (index: number, conns: ReturnType<typeof conn>[]) => {
    const h = Buffer.alloc(8);
    h.writeUInt32BE(7, 0);
    h.writeUInt32BE(index, 4);
    return frame(FrameType.RESYNC_DATA, Buffer.concat([h, encodeMessage({ syncid: 42, conns })]));
  };
  const end = Buffer.alloc(12);
  end.writeUInt32BE(7, 0);
  end.writeUInt32BE(3, 4);
  end.writeUInt32BE(2, 8);
  const toA: Frame[] = [];
  p.hooks.toA = (f) => void toA.push(f);
  const waiting = p.b.resyncFromPeer(3000);
  await p.b.onFrame(answerFrame(1, [conn(3, 1)])); // frame 0 (connections 1 and 2, SYN_RECV) is lost
  const stamp = Buffer.alloc(8);
  stamp.writeBigUInt64BE(BigInt(p.wall.b));
  await p.b.onFrame(frame(FrameType.DATA, Buffer.concat([stamp, encodeMessage({ syncid: 42, conns: [conn(1, 1)] })]))); // a poll: 1 is ESTABLISHED now
  await p.b.onFrame(frame(FrameType.RESYNC_END, end));
  const missing = toA.find((f) => f.type === FrameType.RESYNC_MISSING);
  assert.ok(missing, 'b named the missing frame');
  await p.b.onFrame(answerFrame(0, [conn(1, 3), conn(2, 3)])); // its resend: the answer's older copy of 1
  await p.b.onFrame(frame(FrameType.RESYNC_END, end));
  assert.equal(await waiting, true);
  const installed = p.injected.flatMap((m) => {
    const r = decodeMessage(m);
    return r.ok ? r.message.conns.map((c) => `${c.cport}:${c.state}`) : [];
  });
  assert.deepEqual(installed, ['3:1', '1:1', '2:3'], "the resend installed 2 but not the answer's older state of 1");
  assert.ok(toA.some((f) => f.type === FrameType.RESYNC_ACK), 'and b acknowledged the whole answer');
  await p.close();
});

/**
 * a's frames reach b through a replay guard like the channel's (it names the gaps), except the DATA
 * frames `lose` picks; b's frames reach a. a first asks for a resync (as a starting director does,
 * nobody answers: b is passive), so b has heard from a before a's DATA frames.
 */
async function lossyLink(p: ReturnType<typeof pair>, lose: (f: Frame) => boolean) {
  const guard = new ReplayGuard();
  const lostFrames: Frame[] = [];
  p.hooks.toB = (f) => {
    if (f.type === FrameType.DATA && lose(f)) return void lostFrames.push(f);
    const v = guard.accept(f.node, f.epoch, f.seq);
    if (v.verdict === 'fresh') void p.b.onFrame(f, v.lost);
  };
  p.hooks.toA = (f) => void p.a.onFrame(f);
  await p.a.requestResync();
  return lostFrames;
}

/** The states b's kernel was handed for a client port, in order. */
const statesAtB = (p: ReturnType<typeof pair>, cport: number) =>
  p.injected.flatMap((m) => {
    const r = decodeMessage(m);
    return r.ok ? r.message.conns.filter((c) => c.cport === cport).map((c) => c.state) : [];
  });
const until = async (what: string, ok: () => boolean) => {
  for (let i = 0; i < 1000 && !ok(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(ok(), what);
};
const total = async (c: { get(): Promise<{ values: Array<{ value: number }> }> }) => (await c.get()).values[0]?.value ?? 0;

test('a lost last DATA frame: DATA_TAIL reveals it, b names it, and its connection arrives afterwards in its current state', async () => {
  const p = pair();
  p.setTable(HEAD + line(1001));
  let n = 0;
  const lost = await lossyLink(p, () => n++ === 0);
  p.a.setActive(true, 'test');
  await until('the connection reached b', () => statesAtB(p, 1001).length > 0);
  assert.equal(lost.length, 1, "a's only DATA frame was lost");
  assert.deepEqual(statesAtB(p, 1001), [1], 'ESTABLISHED, once');
  assert.ok(p.frames.some((f) => f.type === FrameType.DATA_TAIL), 'a ended its burst with DATA_TAIL (nothing else would have shown the loss)');
  assert.equal(await total(p.b.m.dataAsked), 1, 'b named one sequence number');
  assert.equal(await total(p.a.m.dataLost), 1, 'a held that DATA frame');
  assert.equal(await total(p.a.m.dataResent), 1, 'and had its one connection sent again');
  assert.equal(await total(p.a.m.dataUnavailable), 0);
  await p.close();
});

test('b never heard from a (its start-up resync went unanswered) and a\'s first DATA frame is lost: the gap before a\'s first frame heard is named and the connection arrives', async () => {
  const p = pair();
  p.setTable(HEAD + line(1001));
  const guard = new ReplayGuard();
  let first = true;
  p.hooks.toB = (f) => {
    if (f.type === FrameType.DATA && first) return void (first = false);
    const v = guard.accept(f.node, f.epoch, f.seq, f.type === FrameType.DATA || f.type === FrameType.DATA_TAIL);
    if (v.verdict === 'fresh') void p.b.onFrame(f, v.lost);
  };
  p.hooks.toA = (f) => void p.a.onFrame(f);
  p.a.setActive(true, 'test');
  await until('the connection reached b', () => statesAtB(p, 1001).length > 0);
  assert.equal(await total(p.b.m.dataAsked), 1, 'b named sequence number 1');
  assert.equal(await total(p.a.m.dataLost), 1, 'a held that DATA frame');
  await p.close();
});

test('a DATA_MISSING naming another director\'s or an earlier run\'s sequence numbers: the active director resends nothing', async () => {
  const p = pair();
  p.setTable(HEAD + line(1001));
  p.a.setActive(true, 'test');
  await until('a sent its DATA frame', () => p.frames.some((f) => f.type === FrameType.DATA));
  const seq = p.frames.find((f) => f.type === FrameType.DATA)!.seq;
  let n = 100n;
  const missing = (node: number, epoch: bigint): Frame => ({ type: FrameType.DATA_MISSING, payload: encodeDataMissing({ node, epoch }, [{ first: seq, last: seq }]), node: 2, epoch: 1n, seq: ++n, keyId: 0 });
  await p.a.onFrame(missing(3, 1n)); // a third director's numbers (multicast, or after a failover to it)
  await p.a.onFrame(missing(1, 0n)); // a's previous run's (a DATA_MISSING repeated after a restarted)
  assert.equal(await total(p.a.m.dataLost), 0, 'not its frames: nothing taken from its ring');
  await p.a.onFrame(missing(1, 1n)); // a's own, this run
  assert.equal(await total(p.a.m.dataLost), 1, 'its own frame: taken');
  await p.close();
});

test('a lost DATA frame whose connection changed since: b ends with the newer state, never the lost older one', async () => {
  const p = pair();
  const synRecv = (cport: number) => line(cport).replace('ESTABLISHED', 'SYN_RECV   ');
  p.setTable(HEAD + synRecv(1002) + line(1003));
  let n = 0;
  const lost = await lossyLink(p, () => {
    if (n++ > 0) return false;
    p.setTable(HEAD + line(1002) + line(1003)); // 1002 is ESTABLISHED by the next read
    return true;
  });
  p.a.setActive(true, 'test');
  await until('the newer state reached b', () => statesAtB(p, 1002).includes(1) && statesAtB(p, 1003).length > 0);
  assert.equal(lost.length, 1);
  const first = decodeMessage(lost[0]!.payload.subarray(DATA_STAMP_LEN));
  assert.ok(first.ok && first.message.conns.some((c) => c.cport === 1002 && c.state === 3), 'the lost frame carried SYN_RECV');
  const states = statesAtB(p, 1002);
  assert.ok(!states.includes(3), `the lost SYN_RECV was never handed to b: ${states}`);
  assert.equal(states.at(-1), 1, 'b ends with ESTABLISHED');
  assert.deepEqual(statesAtB(p, 1003), [1], '1003 (unchanged, in the lost frame only) arrived with the resend');
  assert.equal(await total(p.a.m.dataLost), 1);
  assert.equal(await total(p.a.m.dataResent), 2, 'both connections of the lost frame');
  await p.close();
});

/**
 * Two engines joined in memory; a's table source is scripted (the test hands it polls and the
 * answer), so the order of a's send queue is what is observed. a's frames are held on the way
 * while `hold` is set (b reports nothing meanwhile: a's window fills and its poll waits).
 */
function scriptedPair() {
  let onChanges!: (r: PollResult) => Promise<void>;
  let answer!: (r: PollResult) => void;
  const wire: Frame[] = [];
  const held: Frame[] = [];
  const injected: Buffer[] = [];
  const link = { hold: true };
  const seqs = { a: 0n, b: 0n };
  const source = (side: 'a' | 'b') => (cb: (r: PollResult) => Promise<void>): TableSource => {
    if (side === 'a') onChanges = cb;
    return {
      setActive: () => undefined,
      setServices: () => undefined,
      setStream: () => undefined,
      pollNow: () => Promise.reject(new Error('scripted')),
      full: () => new Promise((r) => (answer = r)),
      forget: () => undefined,
      answered: () => undefined,
      close: async () => undefined,
    };
  };
  const mk = (side: 'a' | 'b', deliver: (f: Frame) => void) =>
    new SyncEngine({
      log: silentLogger,
      registry: new Registry(),
      openSource: source(side),
      channel: directChannel(side, seqs, deliver),
      inject: async (m) => void injected.push(m),
      now: () => Date.now(),
      wallNow: () => Date.now(),
      syncid: 42,
    });
  const b = mk('b', (f) => void a.onFrame(f));
  const a: SyncEngine = mk('a', (f) => {
    wire.push(f);
    if (link.hold) held.push(f);
    else void b.onFrame(f);
  });
  const release = () => {
    link.hold = false;
    for (const f of held.splice(0)) void b.onFrame(f);
  };
  return { a, b, wire, injected, release, poll: (r: PollResult) => onChanges(r), answer: (r: PollResult) => answer(r), close: async () => (await a.close(), await b.close()) };
}

/** A poll's or an answer's payloads: sight stamp + sync v1 messages of these (cport, state) connections. */
function payloadsOf(conns: ReadonlyArray<[number, number]>, sight: number): PollResult {
  const stamp = Buffer.alloc(DATA_STAMP_LEN);
  stamp.writeBigUInt64BE(BigInt(sight));
  const recs = conns.map(([cport, state]) => ({ family: 4 as const, protocol: 6, flags: state === 1 ? 0 : 0x100, state, cport, vport: 80, dport: 80, fwmark: 0, timeout: 0, caddr: Uint8Array.from([198, 51, 100, 7]), vaddr: Uint8Array.from([192, 0, 2, 100]), daddr: Uint8Array.from([192, 0, 2, 11]) }));
  const payloads = encodeMessages(42, recs, 1380).map((m) => Buffer.concat([stamp, m]));
  return { payloads, records: recs.length, readMs: 1, skipped: 0 };
}

test("a resync's answer goes ahead of the frames queued polls have left; those still all go, after it; b ends with a's current state, not the older one a queued poll carried", async () => {
  const p = scriptedPair();
  p.a.setActive(true, 'test');
  const EST = 1;
  const SYN_RECV = 3;
  // Read 1: 3,000 connections; the last one, 9999, is SYN_RECV. b reports nothing yet: a sends a
  // window of its frames and waits.
  const read1 = Array.from({ length: 3000 }, (_, i): [number, number] => [10_000 + i, EST]);
  read1[2999] = [9999, SYN_RECV];
  const poll1 = payloadsOf(read1, Date.now());
  const sent1 = p.poll(poll1);
  // Read 2: 9999 is ESTABLISHED now (queued behind read 1).
  const sent2 = p.poll(payloadsOf([[9999, EST]], Date.now()));
  await until('a sent its window of read 1', () => p.wire.filter((f) => f.type === FrameType.DATA).length >= 24);
  // b restarts and asks; a answers from read 2 (its latest complete read): 9999 ESTABLISHED.
  const got = p.b.resyncFromPeer(5000);
  await until('a announced its answer', () => p.wire.some((f) => f.type === FrameType.RESYNC_BEGIN));
  const asked = p.wire.length;
  const snapshot = read1.map(([c]): [number, number] => [c, EST]);
  p.answer({ ...payloadsOf(snapshot, 0), workerMs: 0, encodeMs: 0, snapshotAgeMs: 0 });
  p.release();
  assert.equal(await got, true, 'b received the whole answer');
  await sent1;
  await sent2;

  const after = p.wire.slice(asked).filter((f) => f.type === FrameType.DATA || f.type === FrameType.RESYNC_DATA || f.type === FrameType.RESYNC_END);
  const firstAnswer = after.findIndex((f) => f.type === FrameType.RESYNC_DATA);
  const end = after.findIndex((f) => f.type === FrameType.RESYNC_END);
  assert.ok(firstAnswer <= 1, `at most the one poll frame already taken went before the answer (${firstAnswer})`);
  assert.ok(after.slice(firstAnswer, end).every((f) => f.type === FrameType.RESYNC_DATA), 'no poll frame inside the answer');
  assert.equal(end - firstAnswer, p.wire.filter((f) => f.type === FrameType.RESYNC_DATA).length, 'the whole answer, once');
  const dataFrames = p.wire.filter((f) => f.type === FrameType.DATA).length;
  assert.equal(dataFrames, poll1.payloads.length + 1, "every poll frame was sent all the same (read 1's and read 2's)");
  assert.ok(after.slice(end).filter((f) => f.type === FrameType.DATA).length > 0, 'the rest of the polls after the answer');

  // b's kernel: the answer's ESTABLISHED, then read 1's older SYN_RECV (queued before the answer),
  // then read 2's ESTABLISHED: it ends with a's current state.
  const states = p.injected.flatMap((m) => {
    const r = decodeMessage(m);
    return r.ok ? r.message.conns.filter((c) => c.cport === 9999).map((c) => c.state) : [];
  });
  assert.deepEqual(states, [EST, SYN_RECV, EST], `9999 at b: ${states}`);
  await p.close();
});
