/**
 * The hand-over to the local kernel (src/sync/adapters.ts LoopbackInjector) joins messages that
 * wait into one datagram of up to 255 records, and the real kernel's backup daemon on lo installs
 * every record of such a datagram (it reads up to lo's MTU less the headers, not 1,500 bytes):
 * 3,000 connections handed over in one burst of 1,380-byte messages (a frame's size, ~38 records
 * each) reach the kernel in fewer datagrams than messages, all 3,000 counted by the kernel per
 * real server, and the daemon drops nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Topology } from '../../src/lab/netns.js';
import { until } from './support/until.js';
import { activeConns } from '../../bench/support/conn-count.js';

const skip = process.env.LVSD_IN_LAB === '1' ? false : 'runs inside the lab guest (node scripts/test.mjs --only lab)';
const DIST = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'sync');
const N = 3000;

/** Run in the namespace: N established TCP records to 192.0.2.100:80 via 192.0.2.11, handed over at once. */
const burst = `
const { LoopbackInjector } = await import(${JSON.stringify(join(DIST, 'adapters.js'))});
const { encodeMessages, ConnFlags } = await import(${JSON.stringify(join(DIST, 'codec.js'))});
const conns = [];
for (let i = 0; i < ${N}; i++) conns.push({ family: 4, protocol: 6, flags: ConnFlags.DROUTE | ConnFlags.NOOUTPUT, state: 1, cport: 1024 + i, vport: 80, dport: 80, fwmark: 0, timeout: 900, caddr: Uint8Array.of(203, 0, 113, 7), vaddr: Uint8Array.of(192, 0, 2, 100), daddr: Uint8Array.of(192, 0, 2, 11) });
const msgs = encodeMessages(42, conns, 1380);
let drops = 0;
const inj = await LoopbackInjector.open(8848, (n) => (drops += n));
await Promise.all(msgs.map((m) => inj.send(m)));
await new Promise((r) => setTimeout(r, 500));
await inj.close();
console.log(JSON.stringify({ messages: msgs.length, sent: inj.sent, drops }));
`;

test('messages waiting for the hand-over go to the kernel joined, up to 255 records a datagram, and the kernel installs every record', { skip, timeout: 300_000 }, async () => {
  const topo = new Topology();
  try {
    const d = await topo.member('d', ['192.0.2.2/24']);
    const sh = (script: string) => d.exec(['sh', '-c', script], { via: 'nsenter' });
    await sh('ip link set lo multicast on && ipvsadm -A -t 192.0.2.100:80 -s rr && ipvsadm -a -t 192.0.2.100:80 -r 192.0.2.11:80 -g && ipvsadm --start-daemon backup --mcast-interface lo --syncid 42');
    const r = await d.exec([process.execPath, '--input-type=module', '-e', burst], { via: 'nsenter' });
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { messages: number; sent: { messages: number; datagrams: number }; drops: number };
    assert.equal(out.sent.messages, out.messages, 'every message handed over');
    assert.ok(out.sent.datagrams < out.messages, `joined: ${out.messages} messages in ${out.sent.datagrams} datagrams`);
    const n = await until(async () => ((await activeConns(d, '192.0.2.100:80', '192.0.2.11:80')) >= N ? N : undefined), 'every record in the kernel', 60_000, 500).catch(async () => activeConns(d, '192.0.2.100:80', '192.0.2.11:80'));
    assert.equal(n, N, `${n} of ${N} records installed (${out.sent.datagrams} datagrams for ${out.messages} messages)`);
    assert.equal(out.drops, 0, "the backup daemon's socket dropped nothing");
  } finally {
    await topo.destroy();
  }
});
