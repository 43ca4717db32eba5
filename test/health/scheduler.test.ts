import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../src/core/clock.js';
import { Scheduler } from '../../src/health/scheduler.js';

/** A task that finishes when the test resolves it. */
function controllable() {
  const pending: Array<(n: number) => void> = [];
  let started = 0;
  let aborted = 0;
  const task = (signal: AbortSignal) =>
    new Promise<number>((res) => {
      started++;
      signal.addEventListener('abort', () => {
        aborted++;
        res(0);
      });
      pending.push(res);
    });
  return { task, pending, get started() { return started; }, get aborted() { return aborted; } };
}
const tick = () => new Promise((r) => setImmediate(r));

test('scheduler: concurrency bounded; queued runs start as slots free, FIFO', async () => {
  const clock = new ManualClock();
  const s = new Scheduler(clock, { maxConcurrent: 2, jitter: 0 });
  const order: string[] = [];
  const done: Array<() => void> = [];
  for (const id of ['a', 'b', 'c', 'd']) s.add(id, 10, () => new Promise<number>((r) => { order.push(id); done.push(() => r(1000)); }));
  clock.advance(10);
  assert.deepEqual(order, ['a', 'b']);
  assert.equal(s.running, 2);
  assert.equal(s.queued, 2);
  done.shift()!();
  await tick();
  assert.deepEqual(order, ['a', 'b', 'c']);
  done.shift()!();
  done.shift()!();
  await tick();
  assert.deepEqual(order, ['a', 'b', 'c', 'd']);
  assert.equal(s.running, 1);
  done.shift()!();
  await s.stop();
});

test('scheduler: next run after the returned delay, shortened by at most the jitter, never lengthened', async () => {
  const clock = new ManualClock();
  let r = 0.999;
  const s = new Scheduler(clock, { jitter: 0.2, random: () => r });
  const runs: number[] = [];
  s.add('x', 0, async () => {
    runs.push(clock.now());
    return 1000;
  });
  clock.advance(0);
  await tick();
  clock.advance(799);
  await tick();
  assert.equal(runs.length, 1, 'ran before interval × (1 − jitter)');
  r = 0; // the delay after the second run is drawn with random 0 → the full interval
  clock.advance(2);
  await tick();
  assert.equal(runs.length, 2);
  clock.advance(999);
  await tick();
  assert.equal(runs.length, 2, 'ran before the full interval with random 0');
  clock.advance(1);
  await tick();
  assert.equal(runs.length, 3);
  await s.stop();
});

test('scheduler: remove aborts an in-flight run and it is not rescheduled; stop aborts all', async () => {
  const clock = new ManualClock();
  const c = controllable();
  const s = new Scheduler(clock, { jitter: 0 });
  s.add('a', 0, c.task);
  s.add('b', 0, c.task);
  clock.advance(0);
  assert.equal(c.started, 2);
  s.remove('a');
  await tick();
  assert.equal(c.aborted, 1);
  clock.advance(10_000);
  await tick();
  assert.equal(c.started, 2);
  await s.stop();
  assert.equal(c.aborted, 2);
  assert.equal(clock.pendingCount(), 0);
});

test('scheduler: a throwing task is reported and keeps its job alive', async () => {
  const clock = new ManualClock();
  const errs: string[] = [];
  const s = new Scheduler(clock, { jitter: 0, onError: (id) => errs.push(id) });
  let n = 0;
  s.add('t', 0, async () => {
    n++;
    throw new Error('boom');
  });
  clock.advance(0);
  await tick();
  clock.advance(1000);
  await tick();
  assert.equal(n, 2);
  assert.deepEqual(errs, ['t', 't']);
  await s.stop();
});
