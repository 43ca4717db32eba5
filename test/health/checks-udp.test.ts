import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UdpChecker } from '../../src/health/checks/udp.js';
import { closedUdpPort, udpServer } from './support/servers.js';

// Generous default deadline: a loaded CI machine must not turn an answered check into a timeout; tests of
// the timeout path pass their own short one.
const T = (port: number, timeoutMs = 10_000) => ({ address: '127.0.0.1', port, timeoutMs });
const base = { payload: 'ping', icmp_unreachable_down: true, require_reply: false };

test('udp: expected reply (text and hex) → up; payload reaches the server', async () => {
  const srv = await udpServer((m) => (m.toString() === 'ping' ? Buffer.from('pong 42') : undefined));
  try {
    assert.equal((await new UdpChecker({ ...base, expect: 'pong' }).run(T(srv.port))).ok, true);
    assert.equal((await new UdpChecker({ ...base, expect: 'hex:706f6e67' }).run(T(srv.port))).ok, true);
    assert.equal(srv.received[0]?.toString(), 'ping');
  } finally {
    await srv.close();
  }
});

test('udp: wrong reply → udp_mismatch', async () => {
  const srv = await udpServer(() => Buffer.from('ERR'));
  try {
    const r = await new UdpChecker({ ...base, expect: 'pong' }).run(T(srv.port));
    assert.equal(r.reason, 'udp_mismatch');
  } finally {
    await srv.close();
  }
});

test('udp: closed port → ICMP port unreachable → udp_unreachable, fast', async () => {
  const r = await new UdpChecker({ ...base }).run(T(await closedUdpPort(), 60_000));
  assert.equal(r.ok, false);
  // "Fast" = on the ICMP error, not at the deadline (which would say udp_no_reply / up): seconds-level.
  assert.equal(r.reason, 'udp_unreachable');
  assert.ok(r.durationMs < 30_000, `took ${r.durationMs}`);
});

test('udp: icmp_unreachable_down off → a closed port is "silence" (up without require_reply)', async () => {
  const r = await new UdpChecker({ ...base, icmp_unreachable_down: false }).run(T(await closedUdpPort(), 200));
  assert.equal(r.ok, true, r.detail);
});

test('udp: silent server → up without require_reply, udp_no_reply with it', async () => {
  const srv = await udpServer(() => undefined);
  try {
    assert.equal((await new UdpChecker({ ...base }).run(T(srv.port, 200))).ok, true);
    const r = await new UdpChecker({ ...base, require_reply: true }).run(T(srv.port, 200));
    assert.equal(r.reason, 'udp_no_reply');
  } finally {
    await srv.close();
  }
});

test('udp: reply slower than the timeout → udp_no_reply; bad hex → error result', async () => {
  const srv = await udpServer(() => undefined);
  try {
    const r = await new UdpChecker({ ...base, expect: 'pong' }).run(T(srv.port, 150));
    assert.equal(r.reason, 'udp_no_reply');
    assert.equal((await new UdpChecker({ ...base, payload: 'hex:zz' }).run(T(srv.port))).reason, 'error');
  } finally {
    await srv.close();
  }
});
