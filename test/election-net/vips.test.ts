/**
 * VIP ownership through rtnetlink on a real namespace: take adds the addresses, an address removed
 * behind our back is added again (notification-driven, well before the slow poll), release removes
 * them, and releasing addresses that are not there is not an error.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Topology, isRoot } from '../../src/lab/netns.js';
import { waitFor } from '../support/proc.js';

const here = dirname(fileURLToPath(import.meta.url));
const cli = join(here, 'support', 'vips-cli.js');

test('VipSet takes, guards and releases VIPs', { skip: !isRoot() && 'needs root (network namespaces)' }, async () => {
  const topo = new Topology();
  try {
    const a = await topo.member('a', ['192.0.2.1/24', '2001:db8::1/64']);
    const child = a.spawn([process.execPath, cli, 'eth0', '192.0.2.50/24', '192.0.2.51/32', '2001:db8::50/64'], { stdio: ['pipe', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise((r) => child.on('exit', r));
    await waitFor(() => out.includes('taken'), 'take', 30_000, 20);
    const addrs = await a.addrs();
    for (const x of ['192.0.2.50', '192.0.2.51', '2001:db8::50']) assert.ok(addrs.includes(x), `${x} in ${addrs.join(' ')}`);
    await a.ipBatch(['addr del 192.0.2.51/32 dev eth0']);
    // The cli's poll is an hour: a restore within the wait came from the address notification.
    await waitFor(() => out.includes('restored 192.0.2.51'), 'the guard to restore the VIP (by notification)', 60_000, 20);
    assert.ok((await a.addrs()).includes('192.0.2.51'));
    child.stdin!.write('release\n');
    await waitFor(() => /released (\d)/.test(out), 'release', 30_000, 20);
    assert.match(out, /released 3/);
    await exited;
    assert.deepEqual((await a.addrs()).filter((x) => !x.startsWith('fe80')), ['192.0.2.1', '2001:db8::1']);
    // Releasing again (addresses absent) succeeds and removes nothing.
    // This time through the asynchronous take() (the first run used the synchronous takeNow()).
    const again = a.spawn([process.execPath, cli, 'eth0', '192.0.2.60/24', 'async'], { stdio: ['pipe', 'pipe', 'inherit'] });
    let out2 = '';
    again.stdout!.on('data', (d: Buffer) => (out2 += d.toString()));
    await waitFor(() => out2.includes('taken'), 'take', 30_000, 20);
    await a.ipBatch(['addr del 192.0.2.60/24 dev eth0']);
    again.stdin!.write('release\n');
    await waitFor(() => /released (\d)/.test(out2), 'release', 30_000, 20);
    // Either the guard re-added it before release (then 1) or release found it absent (0): never an error.
    assert.match(out2, /released [01]/);
  } finally {
    await topo.destroy();
  }
});
