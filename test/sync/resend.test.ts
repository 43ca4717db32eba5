/**
 * Targeted resend of a full-resync answer (pure parts): which frame indices the asker names missing
 * (cases as data), the RESYNC_MISSING codec (properties: decode∘encode is the identity, any byte
 * string decodes to a value or an error, never a throw), and which frames the sender resends.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeMissing, encodeMissing, indicesOf, missingRanges, MISSING_RANGES_MAX, OPEN_END, type IndexRange } from '../../src/sync/resend.js';

const R = (first: number, last: number): IndexRange => ({ first, last });

const cases: Array<{ name: string; held: number[]; frames: number | undefined; max?: number; want: IndexRange[] }> = [
  { name: 'all held', held: [0, 1, 2, 3], frames: 4, want: [] },
  { name: 'empty answer', held: [], frames: 0, want: [] },
  { name: 'nothing held of 3', held: [], frames: 3, want: [R(0, 2)] },
  { name: 'holes inside and at both ends', held: [2, 3, 6, 8], frames: 11, want: [R(0, 1), R(4, 5), R(7, 7), R(9, 10)] },
  { name: 'order of arrival does not matter', held: [8, 3, 6, 2], frames: 11, want: [R(0, 1), R(4, 5), R(7, 7), R(9, 10)] },
  { name: 'RESYNC_END not seen: the tail is open', held: [0, 1, 3], frames: undefined, want: [R(2, 2), R(4, OPEN_END)] },
  { name: 'nothing held, end unknown', held: [], frames: undefined, want: [R(0, OPEN_END)] },
  { name: 'indices past the announced end are ignored', held: [0, 2, 7], frames: 3, want: [R(1, 1)] },
  { name: 'at most max ranges, lowest first', held: [1, 3, 5, 7], frames: 9, max: 2, want: [R(0, 0), R(2, 2)] },
];

for (const c of cases) {
  test(`missing ranges: ${c.name}`, () => {
    assert.deepEqual(missingRanges(c.held, c.frames, c.max), c.want);
  });
}

test('indices resent: the named ranges inside the answer, each once, open ranges cut at its end', () => {
  assert.deepEqual(indicesOf([R(1, 1), R(4, 5), R(9, OPEN_END)], 11), [1, 4, 5, 9, 10]);
  assert.deepEqual(indicesOf([R(4, 6), R(5, 8)], 7), [4, 5, 6], 'overlaps once, nothing past the end');
  assert.deepEqual(indicesOf([R(20, 30)], 7), [], 'a range past the end names nothing');
});

const range = fc.tuple(fc.nat({ max: 0xffffffff }), fc.nat({ max: 0xffffffff })).map(([x, y]) => R(Math.min(x, y), Math.max(x, y)));

test('property: decode∘encode of RESYNC_MISSING is the identity', () => {
  fc.assert(
    fc.property(fc.nat({ max: 0xffffffff }), fc.array(range, { maxLength: MISSING_RANGES_MAX }), (id, ranges) => {
      const r = decodeMissing(encodeMissing({ id, ranges }));
      assert.ok(r.ok);
      if (r.ok) assert.deepEqual(r.missing, { id, ranges });
    }),
  );
});

test('property: any byte string decodes to a request or an error value, never a throw; truncation is an error', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (b) => {
      const r = decodeMissing(b);
      if (r.ok) for (const x of r.missing.ranges) assert.ok(x.first <= x.last);
    }),
  );
  fc.assert(
    fc.property(fc.nat({ max: 0xffffffff }), fc.array(range, { minLength: 1, maxLength: 20 }), fc.nat(), (id, ranges, cut) => {
      const b = encodeMissing({ id, ranges });
      assert.equal(decodeMissing(b.subarray(0, cut % b.length)).ok, false);
    }),
  );
});

test('a reversed range or too many ranges is refused', () => {
  const b = encodeMissing({ id: 1, ranges: [R(5, 5)] });
  b.writeUInt32BE(4, 10);
  assert.deepEqual(decodeMissing(b), { ok: false, why: 'range 0 is reversed (5..4)' });
  const many = Buffer.alloc(6 + 8 * (MISSING_RANGES_MAX + 1));
  many.writeUInt16BE(MISSING_RANGES_MAX + 1, 4);
  assert.equal(decodeMissing(many).ok, false);
  assert.throws(() => encodeMissing({ id: 1, ranges: Array.from({ length: MISSING_RANGES_MAX + 1 }, () => R(0, 0)) }), RangeError);
});

test('property: the missing ranges and the held indices partition the answer', () => {
  fc.assert(
    fc.property(fc.nat({ max: 300 }).chain((n) => fc.tuple(fc.constant(n), fc.uniqueArray(fc.nat({ max: Math.max(0, n - 1) }), { maxLength: n }))), ([frames, held]) => {
      const missing = indicesOf(missingRanges(held, frames, Number.MAX_SAFE_INTEGER), frames);
      const all = [...missing, ...held.filter((i) => i < frames)].sort((x, y) => x - y);
      assert.deepEqual(all, Array.from({ length: frames }, (_, i) => i));
    }),
  );
});
