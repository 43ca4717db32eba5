/**
 * Hands n established TCP records (203.0.113.x clients, 1,380-byte messages: a frame's size) to
 * the daemon on lo at PORT the way the director does (LoopbackInjector, all queued at once), waits
 * until the injector is idle (its last look and any resend done), and prints one JSON line:
 * { sent: { messages, datagrams, resent }, dropped, resent, lost } (the events it reported).
 * closeAfterMs: close the injector that long after queueing instead, and print how the queued
 * sends settled: { messages, fulfilled, rejected } (a send never settled would leave them short).
 * argv: { port, n, closeAfterMs? }.
 */
import { LoopbackInjector, enableLoopbackMulticast } from '../../../src/sync/adapters.js';
import { encodeMessages, ConnFlags, type SyncConn } from '../../../src/sync/codec.js';

const o = JSON.parse(process.argv[2]!) as { port: number; n: number; closeAfterMs?: number };
await enableLoopbackMulticast();
const conns: SyncConn[] = [];
for (let i = 0; i < o.n; i++) {
  conns.push({ family: 4, protocol: 6, flags: ConnFlags.DROUTE | ConnFlags.NOOUTPUT, state: 1, cport: 1024 + (i % 60000), caddr: Uint8Array.of(203, 0, 113, 7 + Math.floor(i / 60000)), vport: 80, dport: 80, fwmark: 0, timeout: 900, vaddr: Uint8Array.of(192, 0, 2, 100), daddr: Uint8Array.of(192, 0, 2, 11) });
}
const ev = { dropped: 0, resent: 0, lost: 0 };
const inj = await LoopbackInjector.open(o.port, { dropped: (k) => (ev.dropped += k), resent: (k) => (ev.resent += k), lost: (k) => (ev.lost += k) });
const sends = encodeMessages(42, conns, 1380).map((m) => inj.send(m));
if (o.closeAfterMs !== undefined) {
  await new Promise((r) => setTimeout(r, o.closeAfterMs));
  await inj.close();
  const guard = new Promise<'hung'>((r) => setTimeout(() => r('hung'), 10_000).unref());
  const settled = await Promise.race([Promise.allSettled(sends), guard]);
  const got = settled === 'hung' ? [] : settled;
  process.stdout.write(JSON.stringify({ messages: sends.length, fulfilled: got.filter((x) => x.status === 'fulfilled').length, rejected: got.filter((x) => x.status === 'rejected').length }) + '\n');
  process.exit(0);
}
await Promise.all(sends);
await inj.whenIdle();
await inj.close();
process.stdout.write(JSON.stringify({ sent: inj.sent, ...ev }) + '\n');
