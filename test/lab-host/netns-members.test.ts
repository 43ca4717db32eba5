/**
 * The segment helpers of the namespace toolkit (what the election tests and failover benches build
 * on): member()/attach() put namespaces on bridges made on first use, with IPv6 DAD off; mac, addrs,
 * neigh after poke; start() collects output; crash() freezes and kills every process of a namespace.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Topology, listNetns, isRoot, pidsIn } from '../../src/lab/netns.js';
import { waitFor } from '../support/proc.js';

const skip = isRoot() ? false : 'needs root (network namespaces)';

test('member/attach on two segments; mac, addrs, neigh; start output; crash kills the whole namespace', { skip, timeout: 60_000 }, async () => {
  const topo = new Topology();
  try {
    const a = await topo.member('a', ['192.0.2.1/24', '2001:db8::1/64']);
    const b = await topo.member('b', ['192.0.2.2/24']);
    await topo.attach(a, 'eth1', 'br1', ['198.51.100.1/24']);
    const c = await topo.member('c', ['198.51.100.3/24'], { bridge: 'br1' });
    assert.equal(topo.bridgeNs('br0')?.short, 'sw');
    assert.equal(topo.bridgeNs('br1')?.short, 'sw');
    assert.deepEqual((await a.addrs()).filter((x) => !x.startsWith('fe80:')), ['192.0.2.1', '2001:db8::1']);
    assert.deepEqual(await a.addrs('eth1').then((xs) => xs.filter((x) => !x.startsWith('fe80:'))), ['198.51.100.1']);
    assert.deepEqual(await a.addrs('nothere'), []);
    // DAD off: the link-local address is usable at once (not tentative).
    const v6 = (await a.ip('-6', 'addr', 'show', 'dev', 'eth0')).stdout;
    assert.match(v6, /fe80::/);
    assert.doesNotMatch(v6, /tentative/);

    // The client on br1 learns a's eth1 MAC, not its eth0 one; b (br0 only) cannot reach it.
    const macEth1 = await a.mac('eth1');
    assert.match(macEth1, /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
    assert.notEqual(macEth1, await a.mac());
    assert.equal(await c.neigh('198.51.100.1'), undefined);
    await c.poke('198.51.100.1');
    await waitFor(async () => (await c.neigh('198.51.100.1')) === macEth1, "c's entry for a's eth1", 3000, 20);
    const macEth0 = await a.mac();
    await b.poke('192.0.2.1');
    await waitFor(async () => (await b.neigh('192.0.2.1')) === macEth0, "b's entry for a's eth0", 3000, 20);

    // start(): stdout and stderr collected, exit reported.
    const r = a.start(['sh', '-c', 'echo out; echo err >&2; exit 3']);
    assert.deepEqual(await r.exited, { code: 3, signal: null });
    assert.match(r.output(), /out/);
    assert.match(r.output(), /err/);

    // crash(): the spawned process and its child (not ours) are gone; other namespaces untouched.
    const p = a.start(['sh', '-c', 'sleep 60 & echo child $!; wait']);
    const other = b.start(['sleep', '60']);
    await waitFor(() => /child \d+/.test(p.output()), 'the child to start', 3000, 20);
    assert.equal(pidsIn([a.name]).length, 2);
    a.crash();
    assert.equal((await p.exited).signal, 'SIGKILL');
    await waitFor(() => pidsIn([a.name]).length === 0, 'every process of a to be gone', 3000, 20);
    assert.equal(other.child.exitCode, null, 'b untouched');
  } finally {
    await topo.destroy();
  }
  const left = (await listNetns()).filter((n) => n.startsWith(topo.prefix));
  assert.deepEqual(left, []);
});
