/**
 * The lab's multi-guest parts that need no guest: the link's kernel argument and boot-time `ip`
 * lines (what a bad MAC, socket path or address does), and labPair's own usage errors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ipBatch, labPair, linkArg } from '../../src/lab/uml.js';

test('linkArg: eth0 on the switch socket through the daemon transport; bad input is a clear error', () => {
  assert.equal(linkArg({ socket: '/var/tmp/lvsd-pair-x/switch.ctl', mac: '02:00:00:00:00:01', addrs: ['192.0.2.2/24'] }), 'eth0=daemon,02:00:00:00:00:01,unix,/var/tmp/lvsd-pair-x/switch.ctl');
  assert.throws(() => linkArg({ socket: '/tmp/s.ctl', mac: '01:00:5e:00:00:12', addrs: [] }), /bad MAC/);
  assert.throws(() => linkArg({ socket: '/tmp/a,b.ctl', mac: '02:00:00:00:00:01', addrs: [] }), /bad switch socket path/);
  assert.throws(() => linkArg({ socket: '/tmp/s.ctl', mac: '02:00:00:00:00:01', addrs: ['192.0.2.2; reboot'] }), /bad address/);
});

test('ipBatch: lo only without a link; eth0 up with its addresses (IPv6 without DAD) with one', () => {
  assert.equal(ipBatch(undefined), 'link set lo up\n');
  assert.equal(
    ipBatch({ socket: '/s', mac: '02:00:00:00:00:01', addrs: ['192.0.2.2/24', '2001:db8::2/64'] }),
    'link set lo up\nlink set eth0 up\naddr add 192.0.2.2/24 dev eth0\naddr add 2001:db8::2/64 dev eth0 nodad\n',
  );
});

test('labPair: usage errors before anything boots', async () => {
  const g = (name: string) => ({ name, argv: ['true'], addrs: [] });
  await assert.rejects(labPair([g('a')]), /2 to 8 guests/);
  await assert.rejects(labPair([g('a'), g('a')]), /distinct words/);
  await assert.rejects(labPair([g('a'), g('b')], { primary: 'c' }), /primary guest "c"/);
});
