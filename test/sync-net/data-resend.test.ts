/**
 * Lost ordinary DATA frames (a poll's changes) over real UDP sockets (loopback) through a relay that
 * drops chosen DATA frames on their first pass, the last frame of a burst among them: the receiver
 * names the gaps (DATA_MISSING), the sender's table worker sends those frames' connections again
 * with its next read, and every connection arrives. A burst's last frame is revealed by the
 * sender's DATA_TAIL. Two engines with their real channels and table workers (reading a file in
 * /proc/net/ip_vs_conn's format); the kernel hand-over is a list here.
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

const ENTRIES = 500; // 14 DATA frames of 38 records (the last one 6)
const HEAD = 'Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData\n';
const line = (i: number) => `TCP C0000232 ${(10000 + i).toString(16).toUpperCase().padStart(4, '0')} C0000264 0050 C000020B 0050 ESTABLISHED     898\n`;
/** DATA frames dropped on their first pass, by the table index of their first record: two inside the first read, its last frame, and (second step) a read's only frame. */
const DROP = [76, 190, 494, 500];
const key = makeKey(Buffer.from('a shared sync key for the data resend test'));

test('lost DATA frames through a dropping relay: every connection of a dropped frame arrives, a dropped last frame too', { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lvsd-dataresend-'));
  const file = join(dir, 'ip_vs_conn');
  writeFileSync(file, HEAD + Array.from({ length: ENTRIES }, (_, i) => line(i)).join(''));
  const seen = new Map<number, number>(); // first record's index → passes of a DATA frame starting with it
  const dropped: number[] = [];
  let tails = 0;
  const pair = await RelayPair.open(file, key, (m) => {
    if (m[5] === FrameType.DATA_TAIL) tails++;
    if (m[5] === FrameType.DATA) {
      const r = decodeMessage(m.subarray(FRAME_HEADER_LEN + DATA_STAMP_LEN, m.length - MAC_LEN));
      const first = r.ok ? r.message.conns[0]!.cport - 10000 : -1;
      const n = (seen.get(first) ?? 0) + 1;
      seen.set(first, n);
      if (n === 1 && DROP.includes(first)) {
        dropped.push(first);
        return false;
      }
    }
    return true;
  });
  const { injected, lost } = pair;
  const held = () => {
    const ports = new Set<number>();
    for (const m of injected) {
      const r = decodeMessage(m);
      if (r.ok) for (const c of r.message.conns) ports.add(c.cport);
    }
    return ports.size;
  };
  const until = async (what: string, ok: () => boolean) => {
    for (let i = 0; i < 300 && !ok(); i++) await new Promise((r) => setTimeout(r, 100));
    assert.ok(ok(), what);
  };
  const total = async (c: { get(): Promise<{ values: Array<{ value: number }> }> }) => (await c.get()).values[0]?.value ?? 0;
  try {
    const a = await pair.director('a');
    const b = await pair.director('b');
    // A starts as a director does: it asks for the table (b is passive: no answer), so b has heard
    // from it before its DATA frames; then it becomes active and its first read sends everything.
    await a.eng.requestResync();
    await new Promise((r) => setTimeout(r, 200));
    a.eng.setActive(true, 'test');
    await until(`b holds the first read's ${ENTRIES} connections (${held()})`, () => held() === ENTRIES);
    assert.deepEqual(dropped, DROP.slice(0, 3), 'two frames inside the burst and its last one were dropped');
    assert.equal(await total(a.eng.m.dataLost), 3, 'the sender held the 3 lost frames');
    assert.equal(await total(a.eng.m.dataResent), 38 + 38 + 6, 'and had their connections sent again');

    // A later read whose only frame is lost: nothing but the DATA_TAIL after it shows the loss.
    appendFileSync(file, [ENTRIES, ENTRIES + 1, ENTRIES + 2].map(line).join(''));
    await until(`b holds the 3 new connections (${held()})`, () => held() === ENTRIES + 3);
    assert.deepEqual(dropped, DROP, 'the second read\'s only frame was dropped');
    assert.equal(await total(a.eng.m.dataLost), 4);
    assert.equal(await total(a.eng.m.dataResent), 38 + 38 + 6 + 3);
    assert.ok(tails >= 1, 'a DATA_TAIL ended the burst (a is quiet otherwise: nothing else showed the loss)');
    assert.equal(await total(a.eng.m.dataUnavailable), 0);
    assert.ok(lost.n >= DROP.length, `b counted the gaps lost (${lost.n})`);
    assert.ok((await total(b.eng.m.dataAsked)) >= DROP.length, 'b named them');
    const refused = (await b.eng.m.drops.get()).values.filter((v) => v.labels.reason === 'replay' || v.labels.reason === 'bad_mac' || v.labels.reason === 'bad_records');
    assert.deepEqual(refused, [], 'nothing refused');
  } finally {
    await pair.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
