/**
 * udpDrops (src/sync/conntable.ts): the kernel stream's lost records are the kernel's drop count of
 * lvsd's stream socket in /proc/net/udp. Proven on a real socket: a process bound to a loopback
 * port with a small receive buffer is stopped (SIGSTOP), datagrams are sent to it until its buffer
 * is full, and udpDrops must read the kernel's growing count for that address and port only.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { udpDrops, udpSockets } from '../../src/sync/conntable.js';

const HEADER = '   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops            ';

test('udpDrops sums the drops column of the lines bound to group:port, in host byte order', () => {
  const text = [
    HEADER,
    ' 1187: 510000E0:2291 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 41234 2 0000000000000000 17     ',
    ' 1187: 510000E0:2291 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 41235 2 0000000000000000 3      ',
    ' 1186: 510000E0:2290 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 41236 2 0000000000000000 99     ',
    ' 1187: 0100007F:2291 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 41237 2 0000000000000000 50     ',
    'garbage',
  ].join('\n');
  assert.equal(udpDrops(text, '224.0.0.81', 8849, true), 20);
  assert.equal(udpDrops(text, '224.0.0.81', 8848, true), 99);
  assert.equal(udpDrops(text, '127.0.0.1', 8849, true), 50);
  assert.equal(udpDrops(text, '224.0.0.81', 8850, true), 0);
  // A big-endian machine prints the address bytes in network order.
  assert.equal(udpDrops(text.replace('510000E0:2290', 'E0000051:2290'), '224.0.0.81', 8848, false), 99);
  // Each socket on the address and port, with the bytes unread in its receive queue (rx_queue, hex).
  assert.deepEqual(udpSockets(text.replace('00000000:00000000 00:00000000 00000000     0        0 41235', '00000000:00000A00 00:00000000 00000000     0        0 41235'), '224.0.0.81', 8849, true), [{ drops: 17, unread: 0 }, { drops: 3, unread: 2560 }]);
});

test('udpDrops reads the kernel\'s count of a real socket whose buffer is full', { timeout: 60_000 }, async () => {
  // The receiver: bound to 127.0.0.1 on a free port, the smallest buffer, then stopped by us.
  const child = spawn(process.execPath, ['-e', `const s = require('dgram').createSocket('udp4'); s.bind(0, '127.0.0.1', () => { s.setRecvBufferSize(1); console.log(s.address().port); });`], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const port = await new Promise<number>((res, rej) => {
      child.stdout!.once('data', (d: Buffer) => res(Number(String(d).trim())));
      child.once('exit', () => rej(new Error('receiver exited')));
    });
    const before = udpDrops(readFileSync('/proc/net/udp', 'latin1'), '127.0.0.1', port);
    process.kill(child.pid!, 'SIGSTOP');
    const tx = createSocket('udp4');
    const payload = Buffer.alloc(64);
    for (let i = 0; i < 2000; i++) await new Promise<void>((r) => tx.send(payload, port, '127.0.0.1', () => r()));
    tx.close();
    const after = udpDrops(readFileSync('/proc/net/udp', 'latin1'), '127.0.0.1', port);
    // A buffer of a few KiB holds a few dozen 64-byte datagrams at most: most of 2,000 are dropped.
    assert.ok(after - before > 1000, `drops for 127.0.0.1:${port}: ${before} -> ${after}`);
    // Another port of the same address: none of these drops.
    assert.equal(udpDrops(readFileSync('/proc/net/udp', 'latin1'), '127.0.0.1', port === 65535 ? port - 1 : port + 1), 0);
  } finally {
    process.kill(child.pid!, 'SIGKILL');
  }
});
