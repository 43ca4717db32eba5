import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../src/core/clock.js';

test('ManualClock fires timers in deadline order, at their deadline', () => {
  const c = new ManualClock(0);
  const fired: Array<[string, number]> = [];
  c.setTimeout(() => fired.push(['b', c.now()]), 20);
  const a = c.setTimeout(() => fired.push(['a', c.now()]), 10);
  c.setTimeout(() => {
    fired.push(['c', c.now()]);
    c.setTimeout(() => fired.push(['d', c.now()]), 5);
  }, 15);
  c.clearTimeout(a);
  c.advance(30);
  assert.deepEqual(fired, [['c', 15], ['b', 20], ['d', 20]]);
  assert.equal(c.now(), 30);
  assert.equal(c.pendingCount(), 0);
});
