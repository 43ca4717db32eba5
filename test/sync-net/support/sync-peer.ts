/**
 * A sync channel endpoint for namespace tests (run with node in a namespace). Argument: JSON
 * { node, keys: [hex...], port, local?, peers: [{address, port}], send, everyMs, runMs }.
 * Sends `send` DATA frames (each a one-record kernel sync message), prints "ready" once bound, then,
 * after runMs, one JSON line { received: [seq...], drops: {reason: n} } and exits.
 */
import { SyncChannel } from '../../../src/sync/channel.js';
import { encodeMessage } from '../../../src/sync/codec.js';
import { FrameType, makeKey } from '../../../src/sync/wire.js';

const o = JSON.parse(process.argv[2]!) as { node: number; keys: string[]; port: number; local?: string; peers: { address: string; port: number }[]; send: number; everyMs: number; runMs: number; startDelayMs?: number };
const received: string[] = [];
const drops: Record<string, number> = {};
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
const rec = (i: number) => ({ family: 4 as const, protocol: 6, flags: 3, state: 1, cport: 10000 + i, vport: 80, dport: 80, fwmark: 0, timeout: 0, caddr: Uint8Array.from([192, 0, 2, 50]), vaddr: Uint8Array.from([192, 0, 2, 100]), daddr: Uint8Array.from([192, 0, 2, 11]) });
setTimeout(async () => {
  for (let i = 0; i < o.send; i++) {
    await ch.send(FrameType.DATA, encodeMessage({ syncid: 1, conns: [rec(i)] }));
    await new Promise((r) => setTimeout(r, o.everyMs));
  }
}, o.startDelayMs ?? 500);
setTimeout(async () => {
  console.log(JSON.stringify({ received, drops }));
  await ch.close();
  process.exit(0);
}, o.runMs);
