import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TcpChecker } from '../../src/health/checks/tcp.js';
import { fastConnectAvailable } from '../../src/health/checks/tcp-fast.js';
import { blackholeListener, closedPort, tcpServer } from './support/servers.js';
import { waitFor } from '../support/proc.js';

// Generous default deadline: a loaded CI machine must not turn an answered check into a timeout; tests of
// the timeout path pass their own short one.
const T = (port: number, timeoutMs = 10_000) => ({ address: '127.0.0.1', port, timeoutMs });

// Both connect paths: the lean libuv-handle one (default) and the net.Socket fallback.
for (const fast of [true, false]) {
  const path = fast ? 'fast' : 'net.Socket';

  test(`tcp[${path}]: listening port is up; connection is closed with RST (server sees ECONNRESET)`, async () => {
    const errs: string[] = [];
    const srv = await tcpServer((s) => s.on('error', (e: NodeJS.ErrnoException) => errs.push(e.code ?? '')));
    try {
      const r = await new TcpChecker({ fast }).run(T(srv.port));
      assert.equal(r.ok, true);
      assert.ok(r.durationMs >= 0);
      await waitFor(() => errs.length > 0, 'the server sees the reset', 30_000, 10);
      assert.deepEqual(errs, ['ECONNRESET']);
    } finally {
      await srv.close();
    }
  });

  test(`tcp[${path}]: closed port → connect_refused`, async () => {
    const r = await new TcpChecker({ fast }).run(T(await closedPort()));
    assert.equal(r.ok, false);
    assert.equal(r.reason, 'connect_refused');
  });

  test(`tcp[${path}]: accept then close is still up (the handshake completed)`, async () => {
    const srv = await tcpServer((s) => s.end());
    try {
      assert.equal((await new TcpChecker({ fast }).run(T(srv.port))).ok, true);
    } finally {
      await srv.close();
    }
  });

  test(`tcp[${path}]: SYN dropped (full accept queue) → timeout within the deadline`, async () => {
    const bh = await blackholeListener();
    try {
      const r = await new TcpChecker({ fast }).run(T(bh.port, 300));
      assert.equal(r.ok, false);
      assert.equal(r.reason, 'timeout');
      // Not before the deadline; the upper bound is seconds-level (a hung check would never return).
      assert.ok(r.durationMs >= 290 && r.durationMs < 10_000, `took ${r.durationMs}`);
    } finally {
      await bh.close();
    }
  });

  test(`tcp[${path}]: connect_port / connect_address override and bind_address is the source`, async () => {
    let peer = '';
    const srv = await tcpServer((s) => (peer = s.remoteAddress ?? ''));
    try {
      const r = await new TcpChecker({ fast, connect_address: '127.0.0.1', connect_port: srv.port, bind_address: '127.0.0.9' }).run({ address: '127.0.0.2', port: 1, timeoutMs: 10_000 });
      assert.equal(r.ok, true, r.detail);
      await waitFor(() => peer !== '', 'the server sees the connection', 30_000, 10);
      assert.equal(peer, '127.0.0.9');
    } finally {
      await srv.close();
    }
  });

  test(`tcp[${path}]: an aborted check returns a result, not a throw`, async () => {
    const bh = await blackholeListener();
    try {
      const ac = new AbortController();
      const p = new TcpChecker({ fast }).run(T(bh.port, 60_000), ac.signal);
      setTimeout(() => ac.abort(), 50);
      const r = await p;
      assert.equal(r.reason, 'aborted');
    } finally {
      await bh.close();
    }
  });
}

test('the fast connect path is available on this Node (else the benchmark numbers do not apply)', () => assert.equal(fastConnectAvailable(), true));

test('an event-loop stall longer than the timeout does not turn an answered check into a timeout', async () => {
  const srv = await tcpServer();
  try {
    for (const fast of [true, false]) {
      const p = new TcpChecker({ fast }).run(T(srv.port, 30));
      const end = performance.now() + 150; // the connect completes in the kernel meanwhile
      while (performance.now() < end) { /* busy: the loop is stalled */ }
      const r = await p;
      assert.equal(r.ok, true, `${fast ? 'fast' : 'net.Socket'}: ${r.reason} ${r.detail}`);
    }
  } finally {
    await srv.close();
  }
});
