/**
 * A stand-in for the kernel's backup sync daemon that falls behind: bound to 224.0.0.81:PORT on lo
 * (as ip_vs_sync.c make_receive_sock binds it, so LoopbackInjector finds its line in
 * /proc/net/udp), a small receive buffer, and BLOCK_MS of blocked thread per datagram read. Its
 * socket drops what does not fit, counted by the kernel like the daemon's. Prints "ready", then on
 * SIGTERM one JSON line: { datagrams, distinct } (distinct connections of every record it read).
 * argv: { port, rcvbuf, blockMs }.
 */
import dgram from 'node:dgram';
import { decodeMessage } from '../../../src/sync/codec.js';

const o = JSON.parse(process.argv[2]!) as { port: number; rcvbuf: number; blockMs: number };
const seen = new Set<string>();
let datagrams = 0;
const block = new Int32Array(new SharedArrayBuffer(4));
const sock = dgram.createSocket({ type: 'udp4', recvBufferSize: o.rcvbuf });
sock.on('message', (m) => {
  datagrams++;
  const r = decodeMessage(m);
  if (r.ok) for (const c of r.message.conns) seen.add(`${c.protocol} ${c.caddr.join('.')}:${c.cport}`);
  Atomics.wait(block, 0, 0, o.blockMs); // the daemon's thread, busy elsewhere
});
sock.bind(o.port, '224.0.0.81', () => {
  sock.addMembership('224.0.0.81', '127.0.0.1');
  process.stdout.write('ready\n');
});
process.on('SIGTERM', () => {
  process.stdout.write(JSON.stringify({ datagrams, distinct: seen.size }) + '\n');
  process.exit(0);
});
