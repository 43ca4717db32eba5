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
 *   inject  a sync v1 message to DAEMON_PORT, the port of this guest's kernel backup daemon (b:
 *           lvsd's hand-over to it on lo; the daemon installs it as it reads it). The driver reads
 *           the port from the kernel (`ipvsadm -L --daemon`), so the trace follows lvsd wherever
 *           it puts that daemon; the hand-overs are joined datagrams of up to 32 KB
 *           (LoopbackInjector), read whole since the addon's raw read takes 64 KiB (rawsock.c
 *           RX_BUF; at 4,096 bytes they came truncated and 31 of 364 were dated)
 *
 *   node sync-trace.js CLIENT VIP STREAM_PORT SYNC_PORT MAX_SECONDS BASE COUNT SAMPLE DAEMON_PORT
 *
 * Only the sampled flows are dated: client ports BASE, BASE+SAMPLE, ... below BASE+COUNT (the
 * generator's samples, sync-load.js flows), so the output stays ~500 flows at any rate (at 5,000/s
 * for 4 s, every flow's stamps made b's line ~1.4 MB, past the lab agent's 1 MiB output tail: the
 * driver could not parse it and timed out). Every flow's records are counted, in 250 ms bins, per
 * kind: the rate at which each step passed records. The raw socket's own drops (/proc/net/raw,
 * its receive buffer full while this process was not scheduled) are printed: a flow missing a
 * step may be missing from this trace, not from the path. The socket is opened with a 16 MiB
 * receive buffer: the addon sets none, so net.core.rmem_default is raised for the moment of its
 * creation and put back at once (a raw socket takes the default then: sock_init_data); with the
 * default 208 KiB, a's trace dropped 10,070 of the stream's ~10,700 datagrams at 5,000/s (the
 * master daemon sent about one record a datagram; a's guest was 82 % busy). The stamps are the
 * kernel's, so reading late costs nothing as long as the buffer holds: at the end, what still
 * waits in the socket is read (rawpoll) before the line is printed (in a busy guest this process
 * may not run for seconds, and a timer that fires first would otherwise leave it unread). "ready"
 * on stderr once the socket is open: node's start in a busy guest takes seconds, and the driver
 * waits for it before starting the phase. It ends at SIGTERM (the driver's, once b's poller is
 * done) or after SECONDS at most: a fixed length from its own start cut b's trace 4.9 s into a
 * phase whose frames reached b until 10 s (b's trace was ready ~7 s before a's, 11:00 run).
 *
 * A raw IPv4 UDP socket receives a copy of every UDP datagram delivered locally (raw(7)); the
 * client's own datagrams to the VIP are taken by IPVS before local delivery and are not seen.
 * With channel kernel, b's "inject" is the kernel master daemon's message reaching b's backup
 * daemon's port from the segment (the same step: the record handed to the installing daemon).
 * Wall time = the receive stamp (CLOCK_MONOTONIC) moved by this process's Date.now() − monotonic().
 * Prints one JSON line at SIGTERM or after SECONDS.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { decodeMessage } from '../../src/sync/codec.js';
import { loadAfPacket } from '../../src/election/announce.js';
import { FRAME_HEADER_LEN, FRAME_MAGIC, FrameType, MAC_LEN, DATA_STAMP_LEN } from '../../src/sync/wire.js';

const [client, vip, streamPortS, syncPortS, secondsS, baseS, countS, sampleS, daemonPortS] = process.argv.slice(2);
const streamPort = Number(streamPortS);
const syncPort = Number(syncPortS);
const daemonPort = Number(daemonPortS);
const seconds = Number(secondsS);
const [base, count, sample] = [baseS, countS, sampleS].map(Number) as [number, number, number];
if (!client || !vip || !(streamPort > 0) || !(syncPort > 0) || !(daemonPort > 0 && daemonPort < 65536) || !(seconds > 0 && seconds <= 600) || !(base > 0 && count > 0 && sample > 0 && base + count <= 65536)) {
  process.stderr.write('usage: sync-trace.js CLIENT VIP STREAM_PORT SYNC_PORT MAX_SECONDS (≤ 600) BASE COUNT SAMPLE DAEMON_PORT\n');
  process.exit(2);
}
const sampled = (p: number) => p >= base && p < base + count && (p - base) % sample === 0;
const ip = (s: string) => Buffer.from(s.split('.').map(Number));
const C = ip(client);
const V = ip(vip);
const addon = loadAfPacket();
const RMEM_DEFAULT = '/proc/sys/net/core/rmem_default';
const TRACE_RCVBUF = 16 * 1024 * 1024;
const stream: Record<number, number> = {};
const frame: Record<number, [number, number]> = {};
const inject: Record<number, number> = {};
let datagrams = 0;
/** Datagrams the raw read cut short (larger than the addon's read size): skipped, counted. */
let truncatedN = 0;
const t0 = Date.now();
const BIN_MS = 250;
/** Records of the client's flows (all, not only the sampled) per kind, per 250 ms since start. */
const bins: Record<'stream' | 'frame' | 'inject', number[]> = { stream: [], frame: [], inject: [] };
const r2 = (x: number) => Math.round(x * 100) / 100;

function records(kind: keyof typeof bins, wall: number, msg: Uint8Array, each: (cport: number) => void): void {
  const r = decodeMessage(msg);
  if (!r.ok) return;
  const bin = Math.max(0, Math.floor((wall - t0) / BIN_MS));
  for (const c of r.message.conns) {
    if (!Buffer.from(c.caddr).equals(C) || !Buffer.from(c.vaddr).equals(V)) continue;
    bins[kind][bin] = (bins[kind][bin] ?? 0) + 1;
    if (sampled(c.cport)) each(c.cport);
  }
}

/** This process's raw UDP sockets' drops (/proc/net/raw: local "port" 0011 is the protocol; last field). */
function rawDrops(): number {
  let n = 0;
  try {
    for (const line of readFileSync('/proc/net/raw', 'latin1').split('\n')) {
      const f = line.trim().split(/\s+/);
      if (f[1]?.endsWith(':0011')) n += Number(f[f.length - 1]) || 0;
    }
  } catch {
    /* no /proc/net/raw */
  }
  return n;
}

const open = () => addon.rawopen(4, 17, (err, payload, _src, _dst, _hops, _ifindex, truncated, rxMonoMs) => {
  if (err || !payload) return;
  if (truncated) {
    truncatedN++;
    return;
  }
  const wall = r2(rxMonoMs !== undefined && rxMonoMs >= 0 ? Date.now() - (addon.monotonic() - rxMonoMs) : Date.now());
  const ihl = (payload[0]! & 0x0f) * 4;
  if (payload.length < ihl + 8) return;
  const dport = payload.readUInt16BE(ihl + 2);
  const body = payload.subarray(ihl + 8);
  datagrams++;
  // lvsd's frames and the hand-over to the backup daemon may share a port (eth0 and lo; both 8848
  // until the lo daemon had a port of its own): a frame starts with its magic, a sync v1 message
  // with a zero byte.
  const isFrame = body.length > FRAME_HEADER_LEN + DATA_STAMP_LEN + MAC_LEN && body.readUInt32BE(0) === FRAME_MAGIC;
  if (dport === streamPort) records('stream', wall, body, (p) => (stream[p] ??= wall));
  else if (dport === daemonPort && !isFrame) records('inject', wall, body, (p) => (inject[p] ??= wall));
  else if (dport === syncPort && isFrame && body[5] === FrameType.DATA) {
    const sight = Number(body.readBigUInt64BE(FRAME_HEADER_LEN));
    records('frame', wall, body.subarray(FRAME_HEADER_LEN + DATA_STAMP_LEN, body.length - MAC_LEN), (p) => (frame[p] ??= [wall, sight]));
  }
});
let rmemWas: string | undefined;
try {
  rmemWas = readFileSync(RMEM_DEFAULT, 'latin1').trim();
  writeFileSync(RMEM_DEFAULT, String(TRACE_RCVBUF));
} catch {
  rmemWas = undefined; // not root, or no /proc/sys: the default buffer
}
let fd: number;
try {
  fd = open();
} finally {
  if (rmemWas !== undefined) writeFileSync(RMEM_DEFAULT, rmemWas);
}
process.stderr.write('ready\n');
let done = false;
function finish(): void {
  if (done) return;
  done = true;
  // What waits in the socket: 64 datagrams a call (the addon's RX_BATCH), 32,000 at most (more
  // than 16 MiB of the stream's datagrams).
  let late = 0;
  for (let i = 0; i < 500; i++) {
    const n = addon.rawpoll(fd);
    late += n;
    if (n <= 0) break;
  }
  const drops = rawDrops();
  addon.rawclose(fd);
  const dense = (xs: number[]) => Array.from({ length: xs.length }, (_, i) => xs[i] ?? 0);
  process.stdout.write(JSON.stringify({ datagrams, truncated: truncatedN, late, drops, t0, binMs: BIN_MS, bins: { stream: dense(bins.stream), frame: dense(bins.frame), inject: dense(bins.inject) }, stream, frame, inject }) + '\n');
  process.exit(0);
}
process.on('SIGTERM', finish);
setTimeout(finish, seconds * 1000);
