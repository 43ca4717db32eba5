/**
 * Real kernel, real traffic (UML lab, NAT topology from test/lab/support/topologies.ts): an open
 * TCP connection through the director survives `lvsd ipvs apply` of a weight change — including
 * weight 0 (drain) — because lvsd edits the destination in place (IPVS_CMD_SET_DEST). The same
 * connection is then shown to die when its destination is deleted, so the test can fail.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Topology } from '../../src/lab/netns.js';
import { buildNatLab, parseIpvsadmDests } from './support/topologies.js';
import { ECHO_SERVER, echoClient, lines } from './support/echo.js';

const PORT = 9000;

test('a weight change (and drain to 0) keeps an open TCP connection; deleting its destination kills it', { timeout: 600_000 }, async () => {
  const topo = new Topology();
  try {
    const lab = await buildNatLab(topo, { realServers: 2, port: PORT, startServers: false });
    for (const rs of lab.realServers) {
      const out = lines(rs.ns.spawn([process.execPath, '-e', ECHO_SERVER, rs.name, String(PORT)]));
      await out.wait((l) => l === 'listening', 60_000, `${rs.name} listening`);
    }
    const ops = await lab.apply(lab.configYaml({ scheduler: 'wrr', weights: [1, 1] }));
    assert.equal(ops.trim().split('\n').length, 3, ops);

    // One connection, "ping N" every 100 ms, at most 600 (60 s).
    const client = lines(lab.client.spawn([process.execPath, '-e', echoClient(600), lab.vip, String(PORT)]));
    const first = await client.wait((l) => / ping \d+$/.test(l), 60_000, 'first echo');
    const server = first.split(' ')[0]!;
    const other = server === 'rs1' ? 'rs2' : 'rs1';
    const idx = server === 'rs1' ? 0 : 1;
    const echoesAfter = async (what: string) => {
      const n = client.all.length;
      await client.wait((l) => / ping \d+$/.test(l), 60_000, what, n);
      return client.all.slice(n);
    };

    // Weight up on the other server, then drain ours to 0: one SET each, connection untouched.
    const w1 = await lab.apply(lab.configYaml({ scheduler: 'wrr', weights: idx === 0 ? [1, 5] : [5, 1] }));
    assert.deepEqual(w1.trim().split('\n'), [`set-dest tcp/${lab.vip}:${PORT} 198.51.100.${12 - idx}:${PORT} fwd=nat weight=5`]);
    const w0 = await lab.apply(lab.configYaml({ scheduler: 'wrr', weights: idx === 0 ? [0, 5] : [5, 0] }));
    assert.deepEqual(w0.trim().split('\n'), [`set-dest tcp/${lab.vip}:${PORT} 198.51.100.${11 + idx}:${PORT} fwd=nat weight=0`]);
    assert.equal(parseIpvsadmDests(await lab.ipvsadm('-Ln'), lab.vip, PORT).get(`198.51.100.${11 + idx}`)?.weight, 0);
    const after = await echoesAfter('echoes after the weight changes');
    assert.ok(after.every((l) => l.startsWith(`${server} ping`)), `same server, same connection: ${after.join(' | ')}`);
    assert.ok(!client.all.some((l) => l === 'closed' || l.startsWith('error')), client.all.filter((l) => !l.includes('ping')).join(' | '));
    assert.ok(!client.all.some((l) => l.startsWith(other)));

    // Control: removing the destination (what delete+add would do) breaks the connection.
    await lab.ipvsadm('-d', '-t', `${lab.vip}:${PORT}`, '-r', `198.51.100.${11 + idx}:${PORT}`);
    await lab.director.sysctl('net.ipv4.vs.expire_nodest_conn', '1');
    await client.wait((l) => l === 'closed' || l.startsWith('error') || l.startsWith(`${other} ping`), 30_000, 'the connection to die once its destination is gone');
  } finally {
    await topo.destroy();
  }
});
