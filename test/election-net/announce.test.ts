/**
 * Gratuitous ARP / unsolicited NA through the AF_PACKET addon, on real namespaces: a client's
 * neighbour entry for a VIP must move to the MAC of the namespace that announces it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Topology, isRoot } from '../../src/lab/netns.js';
import { waitFor } from '../support/proc.js';
import { buildGratuitousArp, buildUnsolicitedNa } from '../../src/election/announce.js';
import { parseIp } from '../../src/core/address.js';

const here = dirname(fileURLToPath(import.meta.url));
const cli = join(here, 'support', 'announce-cli.js');

test('GARP frame layout is an ARP request with sender = target = VIP', () => {
  const mac = Uint8Array.from([2, 0, 0, 0, 0, 1]);
  const f = buildGratuitousArp(mac, parseIp('192.0.2.50')!.bytes);
  assert.equal(f.length, 60);
  assert.deepEqual([...f.subarray(0, 6)], [255, 255, 255, 255, 255, 255]);
  assert.deepEqual([...f.subarray(12, 14)], [0x08, 0x06]);
  assert.deepEqual([...f.subarray(20, 22)], [0, 1]);
  assert.deepEqual([...f.subarray(28, 32)], [192, 0, 2, 50]);
  assert.deepEqual([...f.subarray(38, 42)], [192, 0, 2, 50]);
});

test('unsolicited NA has a valid ICMPv6 checksum and the override flag', () => {
  const mac = Uint8Array.from([2, 0, 0, 0, 0, 1]);
  const f = buildUnsolicitedNa(mac, parseIp('2001:db8::50')!.bytes);
  // Verify: the one's complement sum over pseudo-header + ICMPv6 message (checksum included) is 0xffff.
  let s = 0;
  const add = (b: Uint8Array) => { for (let i = 0; i < b.length; i += 2) s += (b[i]! << 8) | (b[i + 1] ?? 0); };
  add(f.subarray(22, 54));
  s += 32 + 58;
  add(f.subarray(54));
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  assert.equal(s, 0xffff);
  assert.equal(f[54], 136);
  assert.equal(f[21], 255);
  assert.equal(f[58]! & 0x20, 0x20);
});

test('a client neighbour entry follows the GARP / NA sender', { skip: !isRoot() && 'needs root (network namespaces)' }, async () => {
  const topo = new Topology();
  try {
    const a = await topo.member('a', ['192.0.2.1/24', '2001:db8::1/64']);
    const b = await topo.member('b', ['192.0.2.2/24', '2001:db8::2/64']);
    const c = await topo.member('c', ['192.0.2.3/24', '2001:db8::3/64']);
    await a.ipBatch(['addr add 192.0.2.50/24 dev eth0', 'addr add 2001:db8::50/64 dev eth0 nodad']);
    const macA = await a.mac();
    const macB = await b.mac();
    await c.poke('192.0.2.50');
    await c.poke('2001:db8::50');
    await waitFor(async () => (await c.neigh('192.0.2.50')) === macA, 'ARP entry for A', 3000, 20);
    await waitFor(async () => (await c.neigh('2001:db8::50')) === macA, 'ND entry for A', 3000, 20);
    await a.ipBatch(['addr del 192.0.2.50/24 dev eth0', 'addr del 2001:db8::50/64 dev eth0']);
    await b.ipBatch(['addr add 192.0.2.50/24 dev eth0', 'addr add 2001:db8::50/64 dev eth0 nodad']);
    const out = (await b.exec([process.execPath, cli, 'eth0', '2', '0.2', '192.0.2.50', '2001:db8::50'])).stdout;
    assert.match(out, /sent 8 failed 0/);
    await waitFor(async () => (await c.neigh('192.0.2.50')) === macB, 'ARP entry to move to B', 3000, 20);
    await waitFor(async () => (await c.neigh('2001:db8::50')) === macB, 'ND entry to move to B', 3000, 20);
  } finally {
    await topo.destroy();
  }
});
