import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../src/core/clock.js';
import { Scheduler } from '../../src/health/scheduler.js';

const tick = () => new Promise((r) => setImmediate(r));

/** Advance the manual clock 1 ms at a time, letting completions (promises) run in between. */
async function run(clock: ManualClock, ms: number) {
  for (let i = 0; i < ms; i++) {
    clock.advance(1);
    await tick();
  }
}

test('scheduler: a task gets the start time; without jitter every run starts exactly at completion + delay (heap order, 60 jobs)', async () => {
  const clock = new ManualClock();
  const s = new Scheduler(clock, { jitter: 0 });
  let seed = 7;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  const expected = new Map<string, number>();
  const errors: string[] = [];
  let runs = 0;
  for (let j = 0; j < 60; j++) {
    const id = `j${j}`;
    const first = Math.floor(rnd() * 300);
    expected.set(id, first);
    s.add(id, first, async (_signal, startedAt) => {
      runs++;
      if (startedAt !== clock.now()) errors.push(`${id}: startedAt ${startedAt} at ${clock.now()}`);
      if (clock.now() !== expected.get(id)) errors.push(`${id}: started at ${clock.now()}, due ${expected.get(id)}`);
      const delay = 50 + Math.floor(rnd() * 200);
      expected.set(id, clock.now() + delay);
      return delay;
    });
  }
  await run(clock, 1500);
  await s.stop();
  assert.deepEqual(errors, []);
  assert.ok(runs > 60 * 5, `only ${runs} runs`);
});

test('scheduler: runs due within batchMs start together, but never before the jitter window opens', async () => {
  const clock = new ManualClock();
  // random 0 → the drawn delay is the full delay; the window is [delay × 0.9, delay].
  const s = new Scheduler(clock, { jitter: 0.1, random: () => 0, batchMs: 10 });
  const starts: Record<string, number[]> = { a: [], b: [] };
  s.add('a', 0, async () => (starts.a!.push(clock.now()), 1000));
  s.add('b', 5, async () => (starts.b!.push(clock.now()), 1000));
  await run(clock, 1010);
  // a completes at 1 (run() advances before it lets promises settle): due 1001; b completes at 5: due 1005.
  assert.deepEqual(starts.a, [0, 1001]);
  assert.deepEqual(starts.b, [5, 1001], 'b (due 1005) started with a, inside its window [995, 1005]');
  await s.stop();

  const clock2 = new ManualClock();
  const s2 = new Scheduler(clock2, { jitter: 0, batchMs: 10 }); // no window: exact
  const st: Record<string, number[]> = { a: [], b: [] };
  s2.add('a', 0, async () => (st.a!.push(clock2.now()), 1000));
  s2.add('b', 5, async () => (st.b!.push(clock2.now()), 1000));
  await run(clock2, 1010);
  assert.deepEqual(st.b, [5, 1005]);
  await s2.stop();
});

test('scheduler: removed jobs leave the heap; stop() twice resolves both; no timer left', async () => {
  const clock = new ManualClock();
  const s = new Scheduler(clock, { jitter: 0 });
  let ran = 0;
  let release: (() => void) | undefined;
  for (let i = 0; i < 10; i++) s.add(`r${i}`, 100 + i, async () => (ran++, 1000));
  s.add('slow', 0, (signal) => new Promise<number>((r) => { release = () => r(1000); signal.addEventListener('abort', () => r(0)); }));
  for (let i = 0; i < 10; i++) s.remove(`r${i}`);
  await run(clock, 300);
  assert.equal(ran, 0);
  assert.equal(s.running, 1);
  const p1 = s.stop();
  const p2 = s.stop();
  await Promise.all([p1, p2]);
  assert.equal(s.running, 0);
  assert.equal(clock.pendingCount(), 0);
  release?.();
});

test('scheduler: batchQueued starts waiting runs once per loop turn, after the completions of that turn', async () => {
  const clock = new ManualClock();
  const s = new Scheduler(clock, { maxConcurrent: 2, jitter: 0, batchQueued: true });
  const order: string[] = [];
  const done: Array<() => void> = [];
  for (const id of ['a', 'b', 'c', 'd', 'e']) s.add(id, 10, () => new Promise<number>((r) => { order.push(id); done.push(() => r(1000)); }));
  clock.advance(10);
  assert.deepEqual(order, ['a', 'b']);
  done.shift()!();
  done.shift()!();
  for (let i = 0; i < 5; i++) await Promise.resolve(); // completions handled, pump not yet
  assert.deepEqual(order, ['a', 'b']);
  assert.equal(s.running, 0);
  await new Promise((r) => setImmediate(r));
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(order, ['a', 'b', 'c', 'd'], 'both free slots filled in one turn, FIFO');
  assert.equal(s.queued, 1);
  for (const f of done.splice(0)) f();
  await s.stop();
  assert.equal(clock.pendingCount(), 0);
});
