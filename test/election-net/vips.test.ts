/**
 * VIP ownership through rtnetlink on a real namespace: take adds the addresses, an address removed
 * behind our back is added again (notification-driven, well before the slow poll), release removes
 * them, and releasing addresses that are not there is not an error.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NetLab, isRoot, until } from './support/net.js';

const here = dirname(fileURLToPath(import.meta.url));
const cli = join(here, 'support', 'vips-cli.js');

test('VipSet takes, guards and releases VIPs', { skip: !isRoot() && 'needs root (network namespaces)' }, async () => {
  const lab = new NetLab('v');
  try {
    const a = lab.member('a', ['192.0.2.1/24', '2001:db8::1/64']);
    const child = spawn('ip', ['netns', 'exec', a, process.execPath, cli, 'eth0', '192.0.2.50/24', '192.0.2.51/32', '2001:db8::50/64'], { stdio: ['pipe', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise((r) => child.on('exit', r));
    await until(() => out.includes('taken'), 'take', 5000);
    const addrs = lab.addrs(a);
    for (const x of ['192.0.2.50', '192.0.2.51', '2001:db8::50']) assert.ok(addrs.includes(x), `${x} in ${addrs.join(' ')}`);
    const t0 = Date.now();
    lab.exec(a, ['ip', 'addr', 'del', '192.0.2.51/32', 'dev', 'eth0']);
    await until(() => out.includes('restored 192.0.2.51'), 'the guard to restore the VIP', 3000);
    assert.ok(Date.now() - t0 < 3000, 'restored by notification, before the 5 s poll');
    assert.ok(lab.addrs(a).includes('192.0.2.51'));
    child.stdin.write('release\n');
    await until(() => /released (\d)/.exec(out), 'release', 5000);
    assert.match(out, /released 3/);
    await exited;
    assert.deepEqual(lab.addrs(a).filter((x) => !x.startsWith('fe80')), ['192.0.2.1', '2001:db8::1']);
    // Releasing again (addresses absent) succeeds and removes nothing.
    const again = spawn('ip', ['netns', 'exec', a, process.execPath, cli, 'eth0', '192.0.2.60/24'], { stdio: ['pipe', 'pipe', 'inherit'] });
    let out2 = '';
    again.stdout.on('data', (d: Buffer) => (out2 += d.toString()));
    await until(() => out2.includes('taken'), 'take', 5000);
    lab.exec(a, ['ip', 'addr', 'del', '192.0.2.60/24', 'dev', 'eth0']);
    again.stdin.write('release\n');
    await until(() => /released (\d)/.exec(out2), 'release', 5000);
    // Either the guard re-added it before release (then 1) or release found it absent (0): never an error.
    assert.match(out2, /released [01]/);
  } finally {
    await lab.destroy();
  }
});
