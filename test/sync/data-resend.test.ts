/**
 * Recovery of lost ordinary DATA frames (pure parts): the DATA_MISSING codec (properties:
 * decode∘encode is the identity, any byte string decodes to a value or an error, never a throw),
 * joining ranges (cases as data) and the sender's ring of recent DATA payloads (its bounds, what a
 * request takes from it, what it counts as no longer held).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeDataMissing, encodeDataMissing, mergeRanges, SentRing, DATA_MISSING_RANGES_MAX } from '../../src/sync/resend.js';
import type { SeqRange } from '../../src/sync/wire.js';

const R = (first: number | bigint, last: number | bigint): SeqRange => ({ first: BigInt(first), last: BigInt(last) });
const U64_MAX = (1n << 64n) - 1n;
const seq = fc.bigInt({ min: 0n, max: U64_MAX });
const range = fc.tuple(seq, seq).map(([x, y]) => (x <= y ? R(x, y) : R(y, x)));

test('property: decode∘encode of DATA_MISSING is the identity (u64 sequence numbers, up to the range limit)', () => {
  fc.assert(
    fc.property(fc.array(range, { maxLength: DATA_MISSING_RANGES_MAX }), (ranges) => {
      const b = encodeDataMissing(ranges);
      assert.ok(b.length <= 1380, 'fits a frame');
      assert.deepEqual(decodeDataMissing(b), { ok: true, ranges });
    }),
  );
});

test('property: any byte string decodes to ranges or an error value, never a throw; truncation is an error', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 400 }), (b) => {
      const r = decodeDataMissing(b);
      if (r.ok) for (const x of r.ranges) assert.ok(x.first <= x.last);
    }),
  );
  fc.assert(
    fc.property(fc.array(range, { minLength: 1, maxLength: 20 }), fc.nat(), (ranges, cut) => {
      const b = encodeDataMissing(ranges);
      assert.equal(decodeDataMissing(b.subarray(0, cut % b.length)).ok, false);
    }),
  );
});

test('DATA_MISSING: a reversed range or too many ranges is refused', () => {
  const b = encodeDataMissing([R(5, 5)]);
  b.writeBigUInt64BE(4n, 10);
  assert.deepEqual(decodeDataMissing(b), { ok: false, why: 'range 0 is reversed (5..4)' });
  const many = Buffer.alloc(2 + 16 * (DATA_MISSING_RANGES_MAX + 1));
  many.writeUInt16BE(DATA_MISSING_RANGES_MAX + 1, 0);
  assert.equal(decodeDataMissing(many).ok, false);
  assert.throws(() => encodeDataMissing(Array.from({ length: DATA_MISSING_RANGES_MAX + 1 }, () => R(1, 1))), RangeError);
});

const merges: Array<{ name: string; in: SeqRange[]; want: SeqRange[] }> = [
  { name: 'none', in: [], want: [] },
  { name: 'disjoint, out of order', in: [R(9, 9), R(2, 3)], want: [R(2, 3), R(9, 9)] },
  { name: 'adjacent ones join', in: [R(2, 3), R(4, 6)], want: [R(2, 6)] },
  { name: 'overlapping and contained ones join', in: [R(5, 8), R(2, 6), R(3, 4)], want: [R(2, 8)] },
  { name: 'a gap of one stays', in: [R(2, 3), R(5, 6)], want: [R(2, 3), R(5, 6)] },
];
for (const c of merges) test(`merge ranges: ${c.name}`, () => assert.deepEqual(mergeRanges(c.in), c.want));

const payload = (n: number, bytes = 10) => Buffer.alloc(bytes, n);

test('ring: bounded by frame count, oldest evicted first; a request takes the frames it holds, once', () => {
  const ring = new SentRing(4, 1 << 20);
  for (let s = 1; s <= 6; s++) ring.add(BigInt(s * 2), payload(s)); // DATA frames 2, 4, ... 12 (odd numbers: other frames)
  assert.equal(ring.size, 4, 'frames 2 and 4 evicted');
  const r = ring.take([R(3, 7), R(12, 20)]);
  assert.deepEqual(r.payloads.map((p) => p[0]), [3, 6], 'frames 6 and 12 (3, 5 and 7 were no DATA frames; 13.. not sent yet)');
  assert.equal(r.unavailable, 2, 'numbers 3 and 4 are at or below the newest evicted frame (4): counted, whatever they were');
  assert.deepEqual(ring.take([R(6, 6), R(12, 12)]), { payloads: [], unavailable: 0 }, 'asked again: nothing left to take');
  assert.equal(ring.size, 2);
});

test('ring: bounded by bytes too; overlapping ranges count a number once', () => {
  const ring = new SentRing(1000, 100);
  for (let s = 1; s <= 12; s++) ring.add(BigInt(s), payload(s, 30));
  assert.equal(ring.size, 3, '3 × 30 bytes fit 100');
  assert.equal(ring.bytes, 90);
  const r = ring.take([R(1, 5), R(3, 9), R(1, 1)]);
  assert.deepEqual(r, { payloads: [], unavailable: 9 }, 'numbers 1..9, each once');
  assert.equal(ring.take([R(0, U64_MAX)]).payloads.length, 3, 'a huge range costs no more than the ring');
  assert.equal(ring.bytes, 0);
});

test('property: the ring keeps the newest frames within its bounds and takes exactly the held numbers asked for (a model of it agrees)', () => {
  fc.assert(
    fc.property(fc.array(fc.nat({ max: 300 }), { maxLength: 60 }), fc.array(fc.tuple(fc.nat({ max: 130 }), fc.nat({ max: 20 })), { maxLength: 5 }), (sizes, asks) => {
      const ring = new SentRing(16, 1000);
      let model: Array<{ s: bigint; n: number }> = [];
      let evicted = 0n;
      sizes.forEach((n, i) => {
        const s = BigInt(2 * (i + 1));
        ring.add(s, payload(i % 256, n));
        model.push({ s, n });
        while (model.length > 16 || model.reduce((t, x) => t + x.n, 0) > 1000) evicted = model.shift()!.s;
        assert.ok(ring.size <= 16 && ring.bytes <= 1000);
      });
      assert.equal(ring.size, model.length);
      const ranges = asks.map(([a, len]) => R(a, a + len));
      const inRanges = (s: bigint) => ranges.some((r) => r.first <= s && s <= r.last);
      const r = ring.take(ranges);
      assert.deepEqual(r.payloads.map((p) => p.length), model.filter((x) => inRanges(x.s)).map((x) => x.n));
      let unavailable = 0;
      for (let s = 0n; s <= evicted; s++) if (inRanges(s)) unavailable++;
      assert.equal(r.unavailable, unavailable);
      model = model.filter((x) => !inRanges(x.s));
      assert.equal(ring.size, model.length, 'what was taken is gone');
    }),
  );
});
