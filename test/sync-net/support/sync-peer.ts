/**
 * A sync channel endpoint for namespace tests (run with node in a namespace). Argument: JSON
 * { node, keys: [hex...], port, local?, peers: [{address, port}], send, everyMs, runMs }.
 * Sends `send` DATA frames (each a one-record kernel sync message), prints "ready" once bound, then,
 * after runMs, one JSON line { received: [seq...], drops: {reason: n} } and exits.
 * handover: n — also hand n one-record messages to lo as the director does (LoopbackInjector, to
 * 224.0.0.81:handoverPort), with a stand-in for the kernel's backup daemon joined to the group on lo
 * at that port (it counts what reaches it: `handedOver`).
 * goFile: the timers (startDelayMs, runMs) start once this file exists, not at "ready": a test that
 * starts two peers at once creates it when both are bound, so neither sends before the other can
 * receive (a node start in a namespace can take over a second on a loaded host).
 */
import { SyncChannel } from '../../../src/sync/channel.js';
import { encodeMessage } from '../../../src/sync/codec.js';
import { FrameType } from '../../../src/sync/wire.js';
import { makeKey } from '../../../src/config/keys.js';
import { LoopbackInjector, enableLoopbackMulticast } from '../../../src/sync/adapters.js';
import dgram from 'node:dgram';
import { existsSync } from 'node:fs';

const o = JSON.parse(process.argv[2]!) as { node: number; keys: string[]; port: number; local?: string; peers: { address: string; port: number }[]; send: number; everyMs: number; runMs: number; startDelayMs?: number; handover?: number; handoverPort?: number; goFile?: string };
const received: string[] = [];
const drops: Record<string, number> = {};
let handedOver = 0;
let inj: LoopbackInjector | undefined;
if (o.handover) {
  await enableLoopbackMulticast();
  const standIn = dgram.createSocket({ type: 'udp4', reuseAddr: true });
  await new Promise<void>((r) => standIn.bind(o.handoverPort!, () => r()));
  standIn.addMembership('224.0.0.81', '127.0.0.1');
  standIn.on('message', (_m, ri) => {
    if (ri.address === '127.0.0.1') handedOver++;
  });
  inj = await LoopbackInjector.open(o.handoverPort!);
}
const ch = await SyncChannel.open({
  node: o.node,
  keys: o.keys.map((h) => makeKey(Buffer.from(h, 'hex'))),
  port: o.port,
  ...(o.local ? { localAddress: o.local } : {}),
  peers: o.peers,
  epoch: BigInt(Date.now()),
  onFrame: (f) => received.push(`${f.node}:${f.seq}`),
  onDrop: (r) => (drops[r] = (drops[r] ?? 0) + 1),
});
console.log('ready');
if (o.goFile) for (let i = 0; i < 1500 && !existsSync(o.goFile); i++) await new Promise((r) => setTimeout(r, 20));
const rec = (i: number) => ({ family: 4 as const, protocol: 6, flags: 3, state: 1, cport: 10000 + i, vport: 80, dport: 80, fwmark: 0, timeout: 0, caddr: Uint8Array.from([192, 0, 2, 50]), vaddr: Uint8Array.from([192, 0, 2, 100]), daddr: Uint8Array.from([192, 0, 2, 11]) });
setTimeout(async () => {
  for (let i = 0; i < (o.handover ?? 0); i++) await inj!.send(encodeMessage({ syncid: 1, conns: [rec(i)] }));
  for (let i = 0; i < o.send; i++) {
    await ch.send(FrameType.DATA, encodeMessage({ syncid: 1, conns: [rec(i)] }));
    await new Promise((r) => setTimeout(r, o.everyMs));
  }
}, o.startDelayMs ?? 500);
setTimeout(async () => {
  console.log(JSON.stringify({ received, drops, handedOver }));
  await ch.close();
  process.exit(0);
}, o.runMs);
