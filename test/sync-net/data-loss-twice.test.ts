/**
 * Two losses in a row in the recovery of lost DATA frames, over real UDP sockets (loopback) through
 * the dropping relay (support/relay-pair.ts), two engines with their real channels and table workers:
 *
 * - a DATA frame inside a burst is lost AND the receiver's first DATA_MISSING naming it: the
 *   receiver names the gap again (0.5 s, 1.5 s), the sender answers, every connection arrives;
 * - the last DATA frame of a read is lost AND the DATA_TAIL after it: the sender's second DATA_TAIL
 *   a second later reveals the gap, every connection arrives.
 *
 * Before h-missing (2026-12-04) the first DATA_MISSING and the only DATA_TAIL were all there was:
 * both cases left the lost frame's connections unknown to the peer until they changed (checked:
 * each test fails with the repeat, resp. the second tail, disabled).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, appendFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeMessage } from '../../src/sync/codec.js';
import { FrameType, FRAME_HEADER_LEN, MAC_LEN, DATA_STAMP_LEN } from '../../src/sync/wire.js';
import { makeKey } from '../../src/config/keys.js';
import { RelayPair } from './support/relay-pair.js';

const HEAD = 'Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData\n';
const line = (i: number) => `TCP C0000232 ${(10000 + i).toString(16).toUpperCase().padStart(4, '0')} C0000264 0050 C000020B 0050 ESTABLISHED     898\n`;
const key = makeKey(Buffer.from('a shared sync key for the loss-twice test'));

/** The table index of a DATA frame's first record (-1: not a DATA frame). */
const firstOf = (m: Buffer) => {
  if (m[5] !== FrameType.DATA) return -1;
  const r = decodeMessage(m.subarray(FRAME_HEADER_LEN + DATA_STAMP_LEN, m.length - MAC_LEN));
  return r.ok ? r.message.conns[0]!.cport - 10000 : -1;
};
const total = async (c: { get(): Promise<{ values: Array<{ value: number }> }> }) => (await c.get()).values[0]?.value ?? 0;
/** Polls every 100 ms for at most 30 s (no duration is asserted: the recovery takes ~0.5–2 s). */
const until = async (what: () => string, ok: () => boolean) => {
  for (let i = 0; i < 300 && !ok(); i++) await new Promise((r) => setTimeout(r, 100));
  assert.ok(ok(), what());
};

async function setUp(entries: number, pass: (m: Buffer) => boolean, passBack: (m: Buffer) => boolean) {
  const dir = mkdtempSync(join(tmpdir(), 'lvsd-losstwice-'));
  const file = join(dir, 'ip_vs_conn');
  writeFileSync(file, HEAD + Array.from({ length: entries }, (_, i) => line(i)).join(''));
  const pair = await RelayPair.open(file, key, pass, passBack);
  const held = () => {
    const ports = new Set<number>();
    for (const m of pair.injected) {
      const r = decodeMessage(m);
      if (r.ok) for (const c of r.message.conns) ports.add(c.cport);
    }
    return ports.size;
  };
  const a = await pair.director('a');
  const b = await pair.director('b');
  // As a director starts: A asks for the table (b is passive: no answer), so b has heard from it
  // before its DATA frames; then A becomes active and its first read sends everything.
  await a.eng.requestResync();
  await new Promise((r) => setTimeout(r, 200));
  a.eng.setActive(true, 'test');
  const close = async () => {
    await pair.close();
    rmSync(dir, { recursive: true, force: true });
  };
  return { a, b, file, held, close, pair };
}

test('a lost DATA frame whose first DATA_MISSING is lost too: the gap is named again and every connection arrives', { timeout: 120_000 }, async () => {
  const ENTRIES = 200; // 6 DATA frames of 38 records (the last one 10)
  let dataDropped = 0;
  let missingSeen = 0;
  const s = await setUp(
    ENTRIES,
    (m) => {
      if (firstOf(m) === 76 && dataDropped === 0) return (dataDropped++, false); // the third frame, first pass
      return true;
    },
    (m) => (m[5] === FrameType.DATA_MISSING ? ++missingSeen > 1 : true), // B's first DATA_MISSING is lost
  );
  try {
    await until(() => `b holds the ${ENTRIES} connections (${s.held()}; DATA_MISSING frames from b: ${missingSeen})`, () => s.held() === ENTRIES);
    assert.equal(dataDropped, 1);
    assert.ok(missingSeen >= 2, `b named the gap again after its first DATA_MISSING was lost (${missingSeen} sent)`);
    assert.equal(await total(s.b.eng.m.dataAsked), 1, 'one sequence number named, counted once however often');
    assert.equal(await total(s.a.eng.m.dataLost), 1, 'a held the lost frame and answered once');
    assert.equal(await total(s.a.eng.m.dataResent), 38);
    // b's repeats keep coming for 1.5 s after the gap; a answered the first that arrived only.
    await until(() => `b's three DATA_MISSING frames (${missingSeen})`, () => missingSeen >= 3);
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(await total(s.a.eng.m.dataLost), 1, 'the later repeat took nothing more');
    assert.equal(await total(s.a.eng.m.dataUnavailable), 0);
  } finally {
    await s.close();
  }
});

test("a read's only DATA frame and the DATA_TAIL after it both lost: the second DATA_TAIL reveals the gap and the connections arrive", { timeout: 120_000 }, async () => {
  const ENTRIES = 40; // the first read: 2 DATA frames
  let dropping = false;
  let dataDropped = 0;
  let tailsDropped = 0;
  let tailsAfter = 0;
  const s = await setUp(
    ENTRIES,
    (m) => {
      if (!dropping) return true;
      if (firstOf(m) === ENTRIES && dataDropped === 0) return (dataDropped++, false);
      if (m[5] === FrameType.DATA_TAIL && dataDropped === 1) {
        tailsAfter++;
        if (tailsDropped === 0) return (tailsDropped++, false);
      }
      return true;
    },
    () => true,
  );
  try {
    await until(() => `b holds the first read's ${ENTRIES} connections (${s.held()})`, () => s.held() === ENTRIES);
    // Let the first read's tails go by: the losses below are the second read's.
    await new Promise((r) => setTimeout(r, 2000));
    dropping = true;
    appendFileSync(s.file, [ENTRIES, ENTRIES + 1, ENTRIES + 2].map(line).join(''));
    await until(() => `b holds the 3 new connections (${s.held()}; tails after the loss: ${tailsAfter})`, () => s.held() === ENTRIES + 3);
    assert.equal(dataDropped, 1, "the second read's only frame was lost");
    assert.equal(tailsDropped, 1, 'and the DATA_TAIL after it');
    assert.ok(tailsAfter >= 2, `a second DATA_TAIL followed (${tailsAfter})`);
    assert.equal(await total(s.a.eng.m.dataLost), 1);
    assert.equal(await total(s.a.eng.m.dataResent), 3);
    assert.equal(await total(s.a.eng.m.dataUnavailable), 0);
  } finally {
    await s.close();
  }
});
