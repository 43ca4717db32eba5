/**
 * Recovery of lost ordinary DATA frames (pure parts): the DATA_MISSING codec (properties:
 * decode∘encode is the identity, any byte string decodes to a value or an error, never a throw),
 * joining ranges (cases as data), the sender's ring of recent DATA payloads (its bounds, what a
 * request takes from it, each number at most once, what it counts as no longer held) and the
 * receiver's schedule of DATA_MISSING frames (cases as data).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeDataMissing, encodeDataMissing, mergeRanges, MissingNames, SentRing, DATA_MISSING_RANGES_MAX } from '../../src/sync/resend.js';
import type { SeqRange } from '../../src/sync/wire.js';

const R = (first: number | bigint, last: number | bigint): SeqRange => ({ first: BigInt(first), last: BigInt(last) });
const U64_MAX = (1n << 64n) - 1n;
const seq = fc.bigInt({ min: 0n, max: U64_MAX });
const range = fc.tuple(seq, seq).map(([x, y]) => (x <= y ? R(x, y) : R(y, x)));

const owner = fc.tuple(fc.nat({ max: 0xffffffff }), fc.bigInt({ min: 0n, max: U64_MAX })).map(([node, epoch]) => ({ node, epoch }));
const O = { node: 7, epoch: 1_764_900_000_000n };

test('property: decode∘encode of DATA_MISSING is the identity (the owner node and epoch, u64 sequence numbers, up to the range limit)', () => {
  fc.assert(
    fc.property(owner, fc.array(range, { maxLength: DATA_MISSING_RANGES_MAX }), (o, ranges) => {
      const b = encodeDataMissing(o, ranges);
      assert.ok(b.length <= 1380, 'fits a frame');
      assert.deepEqual(decodeDataMissing(b), { ok: true, owner: o, ranges });
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
      const b = encodeDataMissing(O, ranges);
      assert.equal(decodeDataMissing(b.subarray(0, cut % b.length)).ok, false);
    }),
  );
});

test('DATA_MISSING: the owner leads the payload; a reversed range or too many ranges is refused', () => {
  const b = encodeDataMissing(O, [R(5, 5)]);
  assert.equal(b.toString('hex'), '00000007' + '0000019aec3cd100' + '0001' + '0000000000000005' + '0000000000000005', 'u32 node, u64 epoch, u16 n, then u64 first, u64 last');
  b.writeBigUInt64BE(4n, 22);
  assert.deepEqual(decodeDataMissing(b), { ok: false, why: 'range 0 is reversed (5..4)' });
  const many = Buffer.alloc(14 + 16 * (DATA_MISSING_RANGES_MAX + 1));
  many.writeUInt16BE(DATA_MISSING_RANGES_MAX + 1, 12);
  assert.equal(decodeDataMissing(many).ok, false);
  assert.throws(() => encodeDataMissing(O, Array.from({ length: DATA_MISSING_RANGES_MAX + 1 }, () => R(1, 1))), RangeError);
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

test('ring: bounded by frame count, oldest evicted first; a request takes the frames it holds, once; evicted DATA frames counted unavailable, once', () => {
  const ring = new SentRing(4, 1 << 20);
  for (let s = 1; s <= 6; s++) ring.add(BigInt(s * 2), payload(s)); // DATA frames 2, 4, ... 12 (odd numbers: other frames)
  assert.equal(ring.size, 4, 'frames 2 and 4 evicted');
  const r = ring.take([R(3, 7), R(12, 20)]);
  assert.deepEqual(r.payloads.map((p) => p[0]), [3, 6], 'frames 6 and 12 (3, 5 and 7 were no DATA frames; 13.. not sent yet)');
  assert.equal(r.unavailable, 1, 'frame 4 was evicted (3 was no DATA frame: not counted)');
  assert.deepEqual(ring.take([R(3, 7), R(12, 12)]), { payloads: [], unavailable: 0 }, 'asked again (a repeated DATA_MISSING): nothing taken, nothing counted');
  assert.deepEqual(ring.take([R(1, 2)]), { payloads: [], unavailable: 1 }, 'frame 2: evicted, named for the first time');
  assert.equal(ring.size, 2);
});

test('ring: bounded by bytes too; overlapping ranges count a number once', () => {
  const ring = new SentRing(1000, 100);
  for (let s = 1; s <= 12; s++) ring.add(BigInt(s), payload(s, 30));
  assert.equal(ring.size, 3, '3 × 30 bytes fit 100');
  assert.equal(ring.bytes, 90);
  const r = ring.take([R(1, 5), R(3, 9), R(1, 1)]);
  assert.deepEqual(r, { payloads: [], unavailable: 9 }, 'numbers 1..9, each once');
  assert.deepEqual(ring.take([R(1, 9)]), { payloads: [], unavailable: 0 }, 'and once only');
  assert.equal(ring.take([R(0, U64_MAX)]).payloads.length, 3, 'a huge range costs no more than the ring');
  assert.equal(ring.bytes, 0);
});

test('ring: below the evicted numbers it remembers, every named number counts (an upper bound: they may have been other frames)', () => {
  const ring = new SentRing(2, 1 << 20, 2);
  for (let s = 1; s <= 6; s++) ring.add(BigInt(s), payload(s));
  // held 5, 6; remembered evicted 3, 4; 1 and 2 forgotten.
  assert.deepEqual(ring.take([R(0, 10)]), { payloads: [payload(5), payload(6)], unavailable: 2 + 3 }, '3 and 4, and 0..2 below');
});

test('property: the ring keeps the newest frames within its bounds, takes exactly the held numbers asked for, counts evicted ones once (a model of it agrees)', () => {
  fc.assert(
    fc.property(fc.array(fc.nat({ max: 300 }), { maxLength: 60 }), fc.array(fc.array(fc.tuple(fc.nat({ max: 130 }), fc.nat({ max: 20 })), { maxLength: 4 }), { maxLength: 5 }), (sizes, asks) => {
      const ring = new SentRing(16, 1000, 24);
      let model: Array<{ s: bigint; n: number }> = [];
      let gone: bigint[] = [];
      let floor = 0n;
      sizes.forEach((n, i) => {
        const s = BigInt(2 * (i + 1));
        ring.add(s, payload(i % 256, n));
        model.push({ s, n });
        while (model.length > 16 || model.reduce((t, x) => t + x.n, 0) > 1000) gone.push(model.shift()!.s);
        while (gone.length > 24) floor = gone.shift()!;
        assert.ok(ring.size <= 16 && ring.bytes <= 1000);
      });
      assert.equal(ring.size, model.length);
      for (const ask of asks) {
        const ranges = ask.map(([a, len]) => R(a, a + len)); // any order, overlapping or not
        const inRanges = (s: bigint) => ranges.some((r) => r.first <= s && s <= r.last);
        const r = ring.take(ranges);
        assert.deepEqual(r.payloads.map((p) => p.length), model.filter((x) => inRanges(x.s)).map((x) => x.n));
        let unavailable = gone.filter(inRanges).length;
        for (let s = 0n; s <= floor; s++) if (inRanges(s)) unavailable++;
        assert.equal(r.unavailable, unavailable);
        model = model.filter((x) => !inRanges(x.s));
        gone = gone.filter((s) => !inRanges(s));
        assert.equal(ring.size, model.length, 'what was taken is gone');
      }
    }),
  );
});

/*
 * The receiver's schedule of DATA_MISSING frames, as data: gaps seen (`note`) and looks at the
 * clock (`take`), in time order; each look's expected ranges (empty: nothing due, no frame) and
 * numbers named for the first time.
 */
type Step = { at: number; note: SeqRange } | { at: number; take: SeqRange[]; fresh?: number };
const schedules: Array<{ name: string; steps: Step[]; after?: number | undefined }> = [
  {
    name: 'one gap: named at 20 ms, 0.5 s and 1.5 s, then no more',
    steps: [
      { at: 0, note: R(5, 6) },
      { at: 19, take: [] },
      { at: 20, take: [R(5, 6)], fresh: 2 },
      { at: 499, take: [] },
      { at: 500, take: [R(5, 6)], fresh: 0 },
      { at: 1500, take: [R(5, 6)], fresh: 0 },
      { at: 5000, take: [] },
    ],
    after: undefined,
  },
  {
    name: 'gaps seen together go in one frame; a later gap is named with the pending ones in every frame until each one\'s 1.5 s',
    steps: [
      { at: 0, note: R(5, 5) },
      { at: 10, note: R(8, 9) },
      { at: 20, take: [R(5, 5), R(8, 9)], fresh: 3 },
      { at: 30, take: [] },
      { at: 600, note: R(20, 20) },
      { at: 620, take: [R(5, 5), R(8, 9), R(20, 20)], fresh: 1 },
      { at: 1120, take: [R(5, 5), R(8, 9), R(20, 20)], fresh: 0 },
      // The first two gaps' second copies came late (at 620, not 500/510): their third comes a second after.
      { at: 1500, take: [] },
      { at: 1620, take: [R(5, 5), R(8, 9), R(20, 20)] },
      { at: 1630, take: [] },
      { at: 2120, take: [R(20, 20)] },
      { at: 9000, take: [] },
    ],
  },
  {
    name: 'a late look (a loaded event loop) still names the gap three times, spaced as scheduled from the late copy',
    steps: [
      { at: 0, note: R(1, 1) },
      { at: 2000, take: [R(1, 1)], fresh: 1 },
      { at: 2001, take: [] },
      { at: 2479, take: [] },
      { at: 2480, take: [R(1, 1)], fresh: 0 },
      { at: 3479, take: [] },
      { at: 3480, take: [R(1, 1)], fresh: 0 },
      { at: 9000, take: [] },
    ],
    after: undefined,
  },
  {
    name: 'adjacent gaps are merged into one range',
    steps: [
      { at: 0, note: R(3, 4) },
      { at: 1, note: R(5, 7) },
      { at: 21, take: [R(3, 7)], fresh: 5 },
    ],
    after: 501,
  },
];
for (const c of schedules) {
  test(`DATA_MISSING schedule: ${c.name}`, () => {
    const m = new MissingNames(10);
    for (const s of c.steps) {
      if ('note' in s) assert.ok(m.note(s.note, s.at));
      else {
        const r = m.take(s.at);
        assert.deepEqual(r.ranges, s.take, `at ${s.at}`);
        if (s.fresh !== undefined) assert.equal(r.fresh, s.fresh, `fresh at ${s.at}`);
      }
    }
    if ('after' in c) assert.equal(m.nextDue(), c.after);
  });
}

test('DATA_MISSING schedule: at most `max` gaps pending; the next due time is the earliest', () => {
  const m = new MissingNames(2);
  assert.equal(m.nextDue(), undefined);
  assert.ok(m.note(R(1, 1), 100));
  assert.ok(m.note(R(3, 3), 50));
  assert.equal(m.note(R(5, 5), 60), false, 'a third is refused (it stays counted as lost)');
  assert.equal(m.nextDue(), 70);
  assert.equal(m.size, 2);
});
