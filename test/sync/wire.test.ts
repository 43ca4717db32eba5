/**
 * The authenticated sync frame and the replay guard (pure): a frame opens only with a key it was
 * sealed with (either of two during rotation); any change to any byte is rejected; replays and
 * older epochs are refused, a newer epoch (restarted sender) starts a new window.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { FrameType, FRAME_VERSION, openFrame, ReplayGuard, REPLAY_WINDOW, sealFrame } from '../../src/sync/wire.js';
import { makeKey, parseKeys } from '../../src/config/keys.js';
import { isLvsdError } from '../../src/core/errors.js';

const k1 = makeKey(Buffer.from('first key of sixteen bytes or more'));
const k2 = makeKey(Buffer.from('second key, the rotated-in one'));
const k3 = makeKey(Buffer.from('a key nobody configured here'));
const frame = (payload = Buffer.from('records')) => ({ type: FrameType.DATA, node: 7, epoch: 1700000000000n, seq: 1n, payload });

test('a sealed frame opens with its key, and with a key set holding it (rotation)', () => {
  const b = sealFrame(k1, frame());
  for (const keys of [[k1], [k2, k1], [k1, k2]]) {
    const r = openFrame(keys, b);
    assert.ok(r.ok);
    if (r.ok) {
      assert.equal(r.frame.node, 7);
      assert.equal(r.frame.seq, 1n);
      assert.deepEqual(r.frame.payload, Buffer.from('records'));
    }
  }
  assert.deepEqual(openFrame([k2, k3], b), { ok: false, reason: 'unknown_key' });
  assert.deepEqual(openFrame([k1], Buffer.from('short')), { ok: false, reason: 'malformed' });
});

test('a frame of another frame version (a peer of another lvsd release) is dropped as "version", whatever its key', () => {
  const b = sealFrame(k1, frame());
  assert.equal(b[4], FRAME_VERSION);
  b[4] = FRAME_VERSION - 1;
  assert.deepEqual(openFrame([k1], b), { ok: false, reason: 'version' });
  assert.deepEqual(openFrame([k3], b), { ok: false, reason: 'version' });
  b.writeUInt32BE(0x4c565358, 0); // another magic: not a frame of ours at all
  assert.deepEqual(openFrame([k1], b), { ok: false, reason: 'malformed' });
});

test('a frame forged with a wrong key under the right key id is a MAC failure', () => {
  const forged = sealFrame({ id: k1.id, secret: k3.secret }, frame());
  assert.deepEqual(openFrame([k1], forged), { ok: false, reason: 'bad_mac' });
});

test('property: changing any byte of a sealed frame makes it rejected', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), fc.nat(), fc.integer({ min: 1, max: 255 }), (payload, at, x) => {
      const b = sealFrame(k1, frame(Buffer.from(payload)));
      const i = at % b.length;
      b[i] = b[i]! ^ x;
      assert.equal(openFrame([k1, k2], b).ok, false);
    }),
    { numRuns: 300 },
  );
});

test('replay guard: duplicates and old epochs are refused; a new epoch resets the window', () => {
  const g = new ReplayGuard();
  assert.equal(g.accept(1, 10n, 1n).verdict, 'fresh');
  assert.equal(g.accept(1, 10n, 3n).verdict, 'fresh');
  assert.equal(g.accept(1, 10n, 2n).verdict, 'fresh', 'reordered inside the window');
  assert.equal(g.accept(1, 10n, 2n).verdict, 'replay');
  assert.equal(g.accept(1, 10n, 3n).verdict, 'replay');
  assert.equal(g.accept(1, 9n, 100n).verdict, 'stale_epoch');
  assert.equal(g.accept(2, 9n, 1n).verdict, 'fresh', 'windows are per sender');
  assert.equal(g.accept(1, 10n, BigInt(REPLAY_WINDOW) + 10n).verdict, 'fresh');
  assert.equal(g.accept(1, 10n, 4n).verdict, 'replay', 'below the window');
  assert.equal(g.accept(1, 11n, 1n).verdict, 'fresh', 'restarted sender');
  assert.equal(g.accept(1, 10n, 5000n).verdict, 'stale_epoch');
  assert.equal(g.epochOf(1), 11n);
});

test('replay guard: a DATA frame that is the first heard of a run, numbered above 1, reveals the frames before it as lost (while few enough to be held still)', () => {
  const g = new ReplayGuard();
  assert.deepEqual(g.accept(1, 10n, 4n, true), { verdict: 'fresh', lost: { first: 1n, last: 3n } }, 'frames 1..3 of this run were lost');
  assert.deepEqual(g.accept(1, 10n, 2n, true), { verdict: 'fresh' }, 'one of them arrives late (reordered): accepted, no gap');
  assert.deepEqual(g.accept(1, 11n, 2n, true), { verdict: 'fresh', lost: { first: 1n, last: 1n } }, 'a restarted sender whose first frame was lost');
  assert.deepEqual(g.accept(2, 10n, 1n, true), { verdict: 'fresh' }, 'a run heard from its first frame: no gap');
  assert.deepEqual(g.accept(5, 10n, 40n, false), { verdict: 'fresh' }, 'first heard at another frame (a resync answer): no gap, the answer holds the table');
  const late = BigInt(REPLAY_WINDOW) + 2n;
  assert.deepEqual(g.accept(3, 10n, late, true), { verdict: 'fresh' }, 'a receiver that joined a long-running sender names nothing (its start-up resync brings the table)');
  assert.deepEqual(g.accept(4, 10n, late - 1n, true), { verdict: 'fresh', lost: { first: 1n, last: BigInt(REPLAY_WINDOW) } });
});

test('key files: one or two keys, hex/base64/raw, too short or too many refused with a code', () => {
  assert.equal(parseKeys('hex:' + 'ab'.repeat(16) + '\n').length, 1);
  assert.equal(parseKeys('# comment\nraw secret of enough length\nbase64:' + Buffer.alloc(32, 1).toString('base64')).length, 2);
  for (const bad of ['', 'short', 'a'.repeat(20) + '\n' + 'b'.repeat(20) + '\n' + 'c'.repeat(20)]) {
    assert.throws(() => parseKeys(bad), (e) => isLvsdError(e, 'SYNC_KEY'));
  }
});

test('replay guard: one call gives the verdict and the sequence numbers a fresh frame skipped (counted lost); a new epoch starts over', () => {
  const g = new ReplayGuard();
  assert.deepEqual(g.accept(7, 1n, 1n), { verdict: 'fresh' }, 'first frame from a node');
  assert.deepEqual(g.accept(7, 1n, 2n), { verdict: 'fresh' });
  assert.deepEqual(g.accept(7, 1n, 6n), { verdict: 'fresh', lost: { first: 3n, last: 5n } }, 'seq 3, 4, 5 missing');
  assert.deepEqual(g.accept(7, 1n, 4n), { verdict: 'fresh' }, 'a late one is no new gap');
  assert.deepEqual(g.accept(7, 1n, 4n), { verdict: 'replay' }, 'nor is its duplicate');
  assert.deepEqual(g.accept(7, 1n, 7n), { verdict: 'fresh' });
  assert.deepEqual(g.accept(7, 2n, 5n), { verdict: 'fresh' }, 'a restarted sender: no gap against its old run (its first frame is not DATA)');
  assert.deepEqual(g.accept(7, 1n, 9n), { verdict: 'stale_epoch' }, 'a stale epoch reveals no gap');
});
