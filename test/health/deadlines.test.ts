import { test } from 'node:test';
import net from 'node:net';
import assert from 'node:assert/strict';
import { Deadline, track, untrack } from '../../src/health/checks/deadlines.js';
import { TcpChecker } from '../../src/health/checks/tcp.js';
import { blackholeListener, tcpServer } from './support/servers.js';
import { waitFor } from '../support/proc.js';

/** Records when (performance.now()) it expired or was aborted. */
class Probe extends Deadline {
  expiredAt = NaN;
  abortedAt = NaN;
  constructor(readonly name: string, readonly log: string[]) {
    super();
  }
  expire(): void {
    this.expiredAt = performance.now();
    this.log.push(`expire ${this.name}`);
  }
  abort(): void {
    this.abortedAt = performance.now();
    this.log.push(`abort ${this.name}`);
  }
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('deadlines: each entry expires at its own deadline, in order, never early; untracked ones never', async () => {
  const log: string[] = [];
  const a = new Probe('a', log);
  const b = new Probe('b', log);
  const c = new Probe('c', log);
  const t0 = performance.now();
  track(a, 120, t0, undefined);
  await sleep(40);
  const tb = performance.now();
  track(b, 120, tb, undefined);
  track(c, 120, tb, undefined);
  untrack(a); // completed: the list's timer still fires for it, and must not expire b early
  // Wait for the effect (a fixed sleep can end first on a loaded machine); a, due earlier, would be first.
  await waitFor(() => log.length >= 2, 'b and c expired', 30_000, 10);
  assert.deepEqual(log, ['expire b', 'expire c']);
  assert.ok(b.expiredAt - tb >= 120, `b expired ${b.expiredAt - tb} ms after it started: early`);
  assert.ok(Number.isNaN(a.expiredAt));
});

test('deadlines: different timeouts are independent lists', async () => {
  const log: string[] = [];
  const t0 = performance.now();
  const slow = new Probe('slow', log);
  const fast = new Probe('fast', log);
  track(slow, 200, t0, undefined);
  track(fast, 50, t0, undefined);
  await waitFor(() => log.length >= 2, 'both expired', 30_000, 10);
  // Order, not lateness: fast (tracked second, due first) is not held behind slow's list.
  assert.deepEqual(log, ['expire fast', 'expire slow']);
  assert.ok(fast.expiredAt - t0 >= 50, `fast after ${fast.expiredAt - t0} ms: early`);
  assert.ok(slow.expiredAt - t0 >= 200, `slow after ${slow.expiredAt - t0} ms`);
});

test('deadlines: an abort reaches every entry of that signal and only those, once', async () => {
  const log: string[] = [];
  const ac1 = new AbortController();
  const ac2 = new AbortController();
  const now = performance.now();
  const x = new Probe('x', log);
  const y = new Probe('y', log);
  const z = new Probe('z', log);
  track(x, 5000, now, ac1.signal);
  track(y, 5000, now, ac1.signal);
  track(z, 5000, now, ac2.signal);
  ac1.abort();
  ac1.abort();
  assert.deepEqual(log.sort(), ['abort x', 'abort y']);
  untrack(z);
  ac2.abort();
  assert.deepEqual(log.sort(), ['abort x', 'abort y']);
});

test('deadlines: an event-loop stall past the deadline lets an arrived answer win (tcp fast path, many checks)', async () => {
  const srv = await tcpServer();
  try {
    const c = new TcpChecker({ fast: true });
    const ps = Array.from({ length: 20 }, () => c.run({ address: '127.0.0.1', port: srv.port, timeoutMs: 30 }));
    const end = performance.now() + 150;
    while (performance.now() < end) { /* stalled loop: the connects complete in the kernel meanwhile */ }
    const rs = await Promise.all(ps);
    assert.deepEqual(rs.filter((r) => !r.ok).map((r) => r.reason), []);
  } finally {
    await srv.close();
  }
});

test('deadlines: tcp fast path, checks started apart time out each after its own timeout', async () => {
  const bh = await blackholeListener();
  try {
    const c = new TcpChecker({ fast: true });
    const first = c.run({ address: '127.0.0.1', port: bh.port, timeoutMs: 200 });
    await sleep(100);
    const second = c.run({ address: '127.0.0.1', port: bh.port, timeoutMs: 200 });
    const [r1, r2] = await Promise.all([first, second]);
    for (const r of [r1, r2]) {
      assert.equal(r.reason, 'timeout');
      assert.ok(r.durationMs >= 199 && r.durationMs < 10_000, `took ${r.durationMs} ms`); // never early; seconds-level above
    }
  } finally {
    await bh.close();
  }
});

test('deadlines: a check started in a long poll phase is not expired by the sweep of that same iteration', async () => {
  // Seen at 5,000 checks/s in the lab under a profiler: checks started from completion callbacks
  // late in a > 1 s poll phase were swept as timeouts before their sockets were ever polled.
  const bh = await blackholeListener();
  const srv = await tcpServer();
  try {
    const c = new TcpChecker({ fast: true });
    const T = 53; // a timeout no other test uses: a list of its own
    const a = c.run({ address: '127.0.0.1', port: bh.port, timeoutMs: T }); // arms the list's timer
    let x: ReturnType<TcpChecker['run']> | undefined;
    const started = new Promise<void>((resolve) => {
      // Due in the same timers phase as the list's timer (both are late after the stall below).
      setTimeout(() => {
        const sock = net.connect(srv.port, '127.0.0.1', () => {
          // Poll phase of the iteration whose check phase sweeps the list.
          x = c.run({ address: '127.0.0.1', port: srv.port, timeoutMs: T });
          const end = performance.now() + 2 * T;
          while (performance.now() < end) { /* long poll phase */ }
          sock.destroy();
          resolve();
        });
        sock.on('error', () => {});
      }, T + 2);
    });
    const end = performance.now() + T + 20;
    while (performance.now() < end) { /* both timers become due */ }
    await started;
    assert.equal((await a).reason, 'timeout');
    const rx = await x!;
    assert.equal(rx.ok, true, `${rx.reason} ${rx.detail}`);
  } finally {
    await srv.close();
    await bh.close();
  }
});
