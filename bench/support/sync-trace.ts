/**
 * Where a new connection's time goes between the directors (bench/sync-pair.ts --trace, channel
 * lvsd): run in a director's guest through the lab agent, it dates by the kernel's receive stamp
 * (SO_TIMESTAMPNS, the addon's raw socket) every UDP datagram delivered to this guest that carries
 * records of the client's flows to the VIP, and prints, per client port, the first time of each:
 *
 *   stream  a sync v1 message to STREAM_PORT (a: the kernel master daemon's record on lo, as lvsd's
 *           stream socket receives it)
 *   frame   an lvsd DATA frame to SYNC_PORT (sync.port, 8848 by default; b: the frame from a, as b's socket receives it), with
 *           the frame's sight stamp (a's wall clock: the start of the read that showed the
 *           connection, or when the stream's record was merged)
 *   inject  a sync v1 message to 8848 (b: lvsd's hand-over to its kernel's backup daemon on lo;
 *           the daemon installs it as it reads it)
 *
 *   node sync-trace.js CLIENT VIP STREAM_PORT SYNC_PORT SECONDS
 *
 * A raw IPv4 UDP socket receives a copy of every UDP datagram delivered locally (raw(7)); the
 * client's own datagrams to the VIP are taken by IPVS before local delivery and are not seen.
 * Wall time = the receive stamp (CLOCK_MONOTONIC) moved by this process's Date.now() − monotonic().
 * Prints one JSON line after SECONDS.
 */
import { decodeMessage } from '../../src/sync/codec.js';
import { loadAfPacket } from '../../src/election/announce.js';
import { FRAME_HEADER_LEN, FRAME_MAGIC, FrameType, MAC_LEN, DATA_STAMP_LEN } from '../../src/sync/wire.js';

const [client, vip, streamPortS, syncPortS, secondsS] = process.argv.slice(2);
const streamPort = Number(streamPortS);
const syncPort = Number(syncPortS);
const seconds = Number(secondsS);
if (!client || !vip || !(streamPort > 0) || !(syncPort > 0) || !(seconds > 0 && seconds <= 600)) {
  process.stderr.write('usage: sync-trace.js CLIENT VIP STREAM_PORT SYNC_PORT SECONDS (≤ 600)\n');
  process.exit(2);
}
const ip = (s: string) => Buffer.from(s.split('.').map(Number));
const C = ip(client);
const V = ip(vip);
const addon = loadAfPacket();
const stream: Record<number, number> = {};
const frame: Record<number, [number, number]> = {};
const inject: Record<number, number> = {};
let datagrams = 0;

function records(msg: Uint8Array, each: (cport: number) => void): void {
  const r = decodeMessage(msg);
  if (!r.ok) return;
  for (const c of r.message.conns) if (Buffer.from(c.caddr).equals(C) && Buffer.from(c.vaddr).equals(V)) each(c.cport);
}

const fd = addon.rawopen(4, 17, (err, payload, _src, _dst, _hops, _ifindex, truncated, rxMonoMs) => {
  if (err || !payload || truncated) return;
  const wall = rxMonoMs !== undefined && rxMonoMs >= 0 ? Date.now() - (addon.monotonic() - rxMonoMs) : Date.now();
  const ihl = (payload[0]! & 0x0f) * 4;
  if (payload.length < ihl + 8) return;
  const dport = payload.readUInt16BE(ihl + 2);
  const body = payload.subarray(ihl + 8);
  datagrams++;
  // lvsd's frames and the hand-over to the backup daemon share port 8848 by default (eth0 and lo):
  // a frame starts with its magic, a sync v1 message with a zero byte.
  const isFrame = body.length > FRAME_HEADER_LEN + DATA_STAMP_LEN + MAC_LEN && body.readUInt32BE(0) === FRAME_MAGIC;
  if (dport === streamPort) records(body, (p) => (stream[p] ??= wall));
  else if (dport === 8848 && !isFrame) records(body, (p) => (inject[p] ??= wall));
  else if (dport === syncPort && isFrame && body[5] === FrameType.DATA) {
    const sight = Number(body.readBigUInt64BE(FRAME_HEADER_LEN));
    records(body.subarray(FRAME_HEADER_LEN + DATA_STAMP_LEN, body.length - MAC_LEN), (p) => (frame[p] ??= [wall, sight]));
  }
});
setTimeout(() => {
  addon.rawclose(fd);
  process.stdout.write(JSON.stringify({ datagrams, stream, frame, inject }) + '\n');
  process.exit(0);
}, seconds * 1000);
