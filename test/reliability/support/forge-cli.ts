/**
 * A hostile host on the link: sends forged VRRP packets from the namespace it runs in, bounded in
 * count and in time, and prints one JSON line {sent, seconds} at the end.
 * Usage: node forge-cli.js JSON, with JSON:
 *   ifname         interface (eth0)
 *   family         4 (default) or 6: VRRPv3 over IPv6 from the interface's link-local address to ff02::12
 *   class          'advert' (a well-formed advert: TTL 255, right checksum) | 'badsum' (the same with
 *                  its checksum broken)
 *   version, vrid, priority, intervalMs, vips   the advert's fields (vips: the addresses carried)
 *   to             destination: omitted = the multicast group 224.0.0.18; an address = sent unicast there
 *   password       VRRPv2 PASS authentication with this password (a wrong one, for the auth tests)
 *   ah             with password: AH authentication instead of PASS, every packet with AH sequence
 *                  number `ah.seq` (a replay of an old advert, with the right password)
 *   pps            packets per second (paced every millisecond)
 *   count          packets to send at most
 *   maxMs          time limit (the loop stops at whichever comes first)
 * It goes through lvsd's own transport (RawVrrpTransport): the packets are what a real router on
 * the link would send (DSCP CS6, TTL 255, the v3 pseudo-header checksum for the real destination).
 */
import { RawVrrpTransport } from '../../../src/election/transport.js';
import { authKey, encodeAdvert, type Advert } from '../../../src/election/codec.js';
import { parseIp } from '../../../src/core/address.js';
import { silentLogger } from '../../../src/core/log.js';
import type { AhSequence } from '../../../src/election/ah.js';
import { loadAfPacket } from '../../../src/election/announce.js';

interface Spec {
  ifname: string;
  family?: 4 | 6;
  class: 'advert' | 'badsum';
  version: 2 | 3;
  vrid: number;
  priority: number;
  intervalMs: number;
  vips: string[];
  to?: string;
  password?: string;
  ah?: { seq: number };
  pps: number;
  count: number;
  maxMs: number;
}
const spec = JSON.parse(process.argv[2]!) as Spec;
const auth = spec.password !== undefined ? { type: spec.ah ? ('ah' as const) : ('pass' as const), key: authKey(spec.password) } : undefined;
// A counter that never moves: every advert carries the same (old) sequence number.
const fixedSeq = spec.ah ? ({ value: spec.ah.seq, next: () => spec.ah!.seq, accept: () => false } as unknown as AhSequence) : undefined;
const t = new RawVrrpTransport({
  ifname: spec.ifname,
  family: spec.family ?? 4,
  version: spec.version,
  vrid: spec.vrid,
  addrCount: spec.vips.length,
  intervalMs: spec.intervalMs,
  ...(spec.to ? { unicastPeers: [spec.to] } : {}),
  ...(auth ? { auth } : {}),
  ...(fixedSeq ? { ahSequence: fixedSeq } : {}),
  logger: silentLogger,
});
// Opened for sending; what it receives (the directors' adverts) is ignored.
t.start({ onAdvert: () => {}, onDrop: () => {} });
const advert: Advert = { version: spec.version, vrid: spec.vrid, priority: spec.priority, intervalMs: spec.intervalMs, addresses: spec.vips.map((v) => parseIp(v)!.bytes) };

let send: () => void;
if (spec.class === 'advert') {
  send = () => t.send(advert);
} else {
  // The transport's socket, for a payload it would never send itself: a checksum off by one. Sent
  // through the addon with buffers made once (a flood is as fast as one sendto per packet allows).
  const inner = t as unknown as { ifindex: number; localAddress: Uint8Array };
  const fd = t.descriptor()!;
  const dst = parseIp(spec.to ?? '224.0.0.18')!.bytes;
  const bad = encodeAdvert(advert, { srcAddr: inner.localAddress, dstAddr: dst, ...(auth ? { auth } : {}) });
  bad[7] = (bad[7]! + 1) & 0xff;
  const addon = loadAfPacket();
  const dstBuf = Buffer.from(dst);
  const payload = Buffer.from(bad);
  send = () => {
    try {
      addon.rawsend(fd, dstBuf, inner.ifindex, payload);
    } catch {
      /* ENOBUFS under our own flood: the next tick tries again */
    }
  };
}

const start = performance.now();
let sent = 0;
const tick = () => {
  const elapsed = performance.now() - start;
  if (sent >= spec.count || elapsed >= spec.maxMs) {
    t.close();
    process.stdout.write(JSON.stringify({ sent, seconds: Math.round(elapsed) / 1000 }) + '\n');
    return;
  }
  const due = Math.min(spec.count, Math.floor((elapsed / 1000) * spec.pps) + 1);
  // At most 50 ms worth per tick, so the time limit holds when this process was held up.
  const stop = Math.min(due, sent + Math.ceil(spec.pps / 20));
  while (sent < stop) {
    send();
    sent++;
  }
  setTimeout(tick, 1);
};
tick();
