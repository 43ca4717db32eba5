/**
 * Both ends of test/lab/pair/segment.test.ts, run as the commands of two lab guests:
 *
 *   node burst.js listen ADDR PORT
 *     Counts the burst's datagrams (payload "B") on ADDR:PORT, answers each probe ("P") with "R",
 *     prints `received N` at the sender's "D" (done) and exits; gives up after 240 s.
 *   node burst.js send DST PORT COUNT
 *     Probes DST:PORT every 200 ms until it answers (the listener is up and the neighbour resolved),
 *     then sends COUNT datagrams (8-byte UDP header + "B", source port PORT) through one raw socket
 *     in ONE sendmmsg(2) call (RawIpSocket.sendMany), then "D" after 1 s; prints `sent N`.
 */
import { createSocket } from 'node:dgram';
import { writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { RawIpSocket } from '../../../../src/election/rawip.js';
import { parseIp } from '../../../../src/core/address.js';

const [mode, a1, a2, a3] = process.argv.slice(2);
const port = Number(a2);
const give = setTimeout(() => {
  process.stdout.write('timed out\n');
  process.exit(3);
}, 240_000);

if (mode === 'listen') {
  // The guest's own kernel: a receive buffer that holds the whole burst even if this process is slow
  // to read (the test is about the segment, not this socket).
  writeFileSync('/proc/sys/net/core/rmem_max', '4194304');
  const s = createSocket({ type: 'udp4', recvBufferSize: 4 << 20 });
  let n = 0;
  s.on('message', (m, from) => {
    const k = m.toString();
    if (k === 'B') n++;
    else if (k === 'P') s.send('R', from.port, from.address);
    else if (k === 'D') {
      process.stdout.write(`received ${n}\n`);
      clearTimeout(give);
      s.close();
    }
  });
  s.bind(port, a1!);
} else if (mode === 'send') {
  const count = Number(a3);
  const s = createSocket('udp4');
  let ready = false;
  s.on('message', (m) => (ready ||= m.toString() === 'R'));
  await new Promise<void>((r) => s.bind(0, r));
  while (!ready) {
    s.send('P', port, a1!);
    await sleep(200);
  }
  const raw = new RawIpSocket(4, 17, { onMessage: () => undefined, onError: () => undefined });
  const size = 8 + 1;
  const buf = Buffer.alloc(count * size);
  for (let i = 0; i < count; i++) {
    buf.writeUInt16BE(port, i * size); // source port: any, the listener does not answer these
    buf.writeUInt16BE(port, i * size + 2);
    buf.writeUInt16BE(size, i * size + 4); // checksum 0: none (RFC 768)
    buf.write('B', i * size + 8);
  }
  const sent = raw.sendMany(parseIp(a1!)!.bytes, 0, buf, size);
  raw.close();
  process.stdout.write(`sent ${sent}\n`);
  await sleep(1000);
  s.send('D', port, a1!, () => {
    clearTimeout(give);
    s.close();
  });
} else {
  throw new Error('usage: burst.js listen ADDR PORT | send DST PORT COUNT');
}
