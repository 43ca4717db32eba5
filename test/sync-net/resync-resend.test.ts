/**
 * A full resync over real UDP sockets (loopback) through a lossy relay that drops a chosen set of
 * the answer's frames: every entry arrives, and only the dropped frames are resent (the relay sees
 * them twice, the sender counts them in lvsd_sync_resync_resent_frames_total), each resend a new
 * authenticated frame the receiver's replay guard accepts. Two engines with their real channels and
 * table workers (reading a file in /proc/net/ip_vs_conn's format); the kernel hand-over is a list
 * here (the real kernel path: test/lab/sync-resync-large.test.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeMessage } from '../../src/sync/codec.js';
import { FrameType, FRAME_HEADER_LEN } from '../../src/sync/wire.js';
import { makeKey } from '../../src/config/keys.js';
import { RelayPair } from './support/relay-pair.js';

const ENTRIES = 5000;
const HEAD = 'Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData\n';
const line = (i: number) =>
  `TCP CB0071${(i >> 8).toString(16).toUpperCase().padStart(2, '0')} ${(1024 + (i & 0xff)).toString(16).toUpperCase().padStart(4, '0')} C0000264 0050 C000020B 0050 ESTABLISHED     898\n`;
/** Frame indices of the answer the relay drops on their first pass (the answer has 132 frames). */
const DROP = [0, 1, 2, 17, 40, 41, 99, 131];
const key = makeKey(Buffer.from('a shared sync key for the resend test'));

test('a full resync through a relay that drops chosen frames: every entry arrives, only those frames are resent', { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lvsd-resend-'));
  const file = join(dir, 'ip_vs_conn');
  writeFileSync(file, HEAD + Array.from({ length: ENTRIES }, (_, i) => line(i)).join(''));
  const seen = new Map<number, number>(); // answer frame index → passes through the relay
  let dropped = 0;
  // A's first read (before B exists) may still wait in the relay's socket when B starts: passed on
  // from A's first answer to B's request (RESYNC_BEGIN) on.
  let answering = false;
  const pair = await RelayPair.open(file, key, (m) => {
    if (m[5] === FrameType.RESYNC_BEGIN) answering = true;
    if (!answering) return false;
    if (m[5] === FrameType.RESYNC_DATA) {
      const index = m.readUInt32BE(FRAME_HEADER_LEN + 4);
      const n = (seen.get(index) ?? 0) + 1;
      seen.set(index, n);
      if (n === 1 && DROP.includes(index)) {
        dropped++;
        return false;
      }
    }
    return true;
  });
  const { injected, lost } = pair;
  try {
    // A reads its table once before B exists (its first read's frames go nowhere), then B starts and asks.
    const a = await pair.director('a');
    a.eng.setActive(true, 'test');
    const sent = async () => (await a.eng.m.records.get()).values.find((v) => v.labels.direction === 'sent')?.value ?? 0;
    for (let i = 0; i < 600 && (await sent()) < ENTRIES; i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(await sent(), ENTRIES, "A's first read sent its table (to nobody)");
    const b = await pair.director('b');
    assert.equal(await b.eng.resyncFromPeer(3000), true, 'the table arrived');

    const frames = Math.max(...seen.keys()) + 1;
    assert.ok(frames > Math.max(...DROP), `the answer has ${frames} frames`);
    const twice = [...seen].filter(([, n]) => n > 1).map(([i]) => i).sort((x, y) => x - y);
    assert.deepEqual(twice, DROP, 'exactly the dropped frames passed the relay twice');
    assert.equal(dropped, DROP.length);
    const counter = async (c: { get(): Promise<{ values: Array<{ value: number }> }> }) => (await c.get()).values[0]?.value ?? 0;
    assert.equal(await counter(a.eng.m.resent), DROP.length, "the sender's resent-frames metric");
    assert.ok((await counter(b.eng.m.missingAsks)) >= 1, "the asker's requests for missing frames");
    assert.equal(lost.n, DROP.length, 'the receiver counted each dropped frame lost (a gap in the sequence)');
    const drops = (await b.eng.m.drops.get()).values.filter((v) => v.labels.reason === 'replay' || v.labels.reason === 'bad_mac');
    assert.deepEqual(drops, [], 'no resent frame was refused by the replay guard or the MAC check');
    const keys = new Set<string>();
    for (const m of injected) {
      const r = decodeMessage(m);
      assert.ok(r.ok);
      if (r.ok) for (const c of r.message.conns) keys.add(`${Buffer.from(c.caddr).toString('hex')}:${c.cport}`);
    }
    assert.equal(keys.size, ENTRIES, "every entry handed to B's kernel");
    const records = injected.reduce((n, m) => n + m[4]!, 0);
    assert.equal(records, ENTRIES, 'each once: no frame installed twice');
  } finally {
    await pair.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
