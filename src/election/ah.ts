/**
 * VRRPv2 "IP Authentication Header" authentication (RFC 2338 §5.3.6.3, auth type 2), as keepalived
 * speaks it: the advert is an IPv4 packet of protocol 51 whose AH (RFC 2402 §2) carries the VRRP
 * message; the VRRP auth type is 2 and its 8 bytes of auth data stay zero.
 *
 *  IPv4 header (20 bytes, protocol 51, TOS 0xc0, TTL 255, built here: the ICV covers it)
 *  AH: 0 next header = 112 (VRRP) | 1 payload len = 4 (RFC 2402 §2.2: 32-bit words minus 2)
 *      2-3 reserved = 0 | 4-7 SPI = the sender's IPv4 source address | 8-11 sequence number
 *      12-23 ICV: HMAC-MD5-96 (RFC 2403: the first 12 bytes of HMAC-MD5, RFC 2104)
 *  VRRPv2 message (codec.ts, its own checksum as usual)
 *
 * The ICV is computed over the IP header with its mutable fields zeroed (RFC 2402 §3.3.3.1.1.1: TOS,
 * flags + fragment offset, header checksum; TTL too, but keepalived zeroes the TTL only for unicast
 * instances and keeps 255 in the computation for multicast — done the same here, or no ICV would
 * match), the AH with the ICV zeroed, and the VRRP message. The key is the password zero-padded to 8
 * bytes (keepalived's auth_data). The IP identification is immutable, hence covered: the sender
 * fixes it (a zero id would be replaced by the kernel after the ICV was computed).
 *
 * Anti-replay, as keepalived (vrrp.c vrrp_in_chk_ipsecah / vrrp_update_pkt): one counter per
 * instance for both directions. Each advert sent carries the counter plus one; a received advert
 * whose ICV and SPI verify is accepted only with a sequence number above the counter, which then
 * takes that value. So a router that takes over continues above the numbers it heard, and a
 * replayed advert is dropped.
 *
 * Pure: no socket, no clock. decodeAhPacket never throws (counted drops, like decodeAdvert).
 */
import { createHmac } from 'node:crypto';
import {
  VRRP_PROTOCOL,
  VRRP_TTL,
  decodeAdvert,
  decodeIpv4Packet,
  encodeAdvert,
  sameBytes,
  type Advert,
  type DecodeExpect,
  type DropReason,
  type Ipv4Header,
} from './codec.js';

/** IP protocol number of the Authentication Header (RFC 2402 §2). */
export const AH_PROTOCOL = 51;
const IP_HEADER_LEN = 20;
/** AH with a 96-bit ICV: 12 fixed bytes + 12 ICV bytes. */
export const AH_LEN = 24;
const AH_PAYLOAD_LEN = AH_LEN / 4 - 2;
const ICV_OFFSET = 12;
const ICV_LEN = 12;
/** DSCP CS6, as the socket option sets it for plain adverts (transport.ts). */
const TOS_CS6 = 0xc0;
const MAX_SEQ = 0xffffffff;

/** The per-instance counter of both directions (see the file comment). Kept across reloads in place. */
export class AhSequence {
  private n = 0;

  /** The last number sent or accepted. */
  get value(): number {
    return this.n;
  }

  /**
   * The number for the next advert sent. At 2^32 - 1 it stays there (the peer then drops our adverts
   * as replays and takes over); at one advert a second that is 136 years away, as keepalived notes.
   */
  next(): number {
    if (this.n < MAX_SEQ) this.n++;
    return this.n;
  }

  /** A verified advert's number: true (and taken) when above the counter, false for a replay. */
  accept(seq: number): boolean {
    if (seq <= this.n) return false;
    this.n = seq;
    return true;
  }
}

export interface AhEncodeContext {
  readonly srcAddr: Uint8Array;
  readonly dstAddr: Uint8Array;
  /** The password's 8-byte key (codec authKey). */
  readonly key: Uint8Array;
  readonly seq: number;
  /** IP identification, 1..65535 (covered by the ICV, so it must not be left to the kernel). */
  readonly ipId: number;
  /** Unicast instance: the TTL is left out of the ICV (keepalived); multicast: included. */
  readonly unicast: boolean;
}

/** RFC 1071 checksum of an IPv4 header (the kernel recomputes it with IP_HDRINCL; filled so the bytes are the wire's). */
function ipHeaderChecksum(h: Uint8Array): number {
  let s = 0;
  for (let i = 0; i < h.length; i += 2) s += (h[i]! << 8) | h[i + 1]!;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

/** HMAC-MD5-96 over `pkt` (IP header of `ihl` bytes, AH, VRRP) with the mutable fields and the ICV taken as zero. */
function icv(pkt: Uint8Array, ihl: number, key: Uint8Array, unicast: boolean): Uint8Array {
  const head = Uint8Array.from(pkt.subarray(0, ihl + AH_LEN));
  head[1] = 0; // TOS
  head[6] = 0; // flags, fragment offset
  head[7] = 0;
  if (unicast) head[8] = 0; // TTL
  head[10] = 0; // header checksum
  head[11] = 0;
  head.fill(0, ihl + ICV_OFFSET, ihl + ICV_OFFSET + ICV_LEN);
  return createHmac('md5', key).update(head).update(pkt.subarray(ihl + AH_LEN)).digest().subarray(0, ICV_LEN);
}

/**
 * The whole IPv4 packet of an AH-authenticated VRRPv2 advert, to send on a raw socket with
 * IP_HDRINCL. Throws VrrpEncodeError (encodeAdvert) on out-of-range fields.
 */
export function encodeAhPacket(a: Advert, c: AhEncodeContext): Uint8Array {
  const vrrp = encodeAdvert(a, { srcAddr: c.srcAddr, dstAddr: c.dstAddr, auth: { type: 'ah', key: c.key } });
  const pkt = new Uint8Array(IP_HEADER_LEN + AH_LEN + vrrp.length);
  const v = new DataView(pkt.buffer);
  pkt[0] = 0x45; // version 4, IHL 5
  pkt[1] = TOS_CS6;
  v.setUint16(2, pkt.length);
  v.setUint16(4, c.ipId & 0xffff || 1);
  pkt[8] = VRRP_TTL;
  pkt[9] = AH_PROTOCOL;
  pkt.set(c.srcAddr, 12);
  pkt.set(c.dstAddr, 16);
  v.setUint16(10, ipHeaderChecksum(pkt.subarray(0, IP_HEADER_LEN)));
  const ah = IP_HEADER_LEN;
  pkt[ah] = VRRP_PROTOCOL;
  pkt[ah + 1] = AH_PAYLOAD_LEN;
  pkt.set(c.srcAddr, ah + 4); // SPI: the source address (keepalived; no SA negotiation on a multicast link)
  v.setUint32(ah + 8, c.seq >>> 0);
  pkt.set(vrrp, ah + AH_LEN);
  pkt.set(icv(pkt, IP_HEADER_LEN, c.key, c.unicast), ah + ICV_OFFSET);
  return pkt;
}

export interface AhExpect extends DecodeExpect {
  readonly auth: { readonly type: 'ah'; readonly key: Uint8Array };
  /** The receiving instance is unicast: TTL left out of the ICV (see the file comment). */
  readonly unicast: boolean;
}

export type AhDecodeResult =
  | { readonly ok: true; readonly advert: Advert; readonly header: Ipv4Header; /** for AhSequence.accept */ readonly seq: number }
  | { readonly ok: false; readonly reason: DropReason; readonly header?: Ipv4Header };

/**
 * An AH-authenticated advert as a raw IPv4 socket of protocol 51 delivers it (IPv4 header first).
 * Order: IP header, TTL, AH framing, ICV, SPI, then the VRRP message (decodeAdvert). The sequence
 * number is returned, not judged: the caller holds the counter (AhSequence), checked after its own
 * source checks so only a packet it would act on advances it.
 */
export function decodeAhPacket(buf: Uint8Array, expect: AhExpect): AhDecodeResult {
  try {
    const ip = decodeIpv4Packet(buf, AH_PROTOCOL);
    if (!ip.ok) return ip;
    const { header } = ip;
    const fail = (reason: DropReason): AhDecodeResult => ({ ok: false, reason, header });
    // RFC 5798 §7.1, checked as for plain adverts (transport.ts), unicast too.
    if (header.ttl !== VRRP_TTL) return fail('bad_ttl');
    const p = ip.payload;
    if (p.length < AH_LEN) return fail('too_short');
    // Another protocol under AH is not an advert (keepalived ignores it); a longer ICV is not HMAC-MD5-96.
    if (p[0] !== VRRP_PROTOCOL) return fail('bad_protocol');
    if (p[1] !== AH_PAYLOAD_LEN) return fail('bad_length');
    const pkt = buf.subarray(0, header.totalLength);
    if (!sameBytes(pkt, icv(pkt, header.ihl, expect.auth.key, expect.unicast), header.ihl + ICV_OFFSET, ICV_LEN)) return fail('auth_failed');
    if (!sameBytes(p, header.src, 4, 4)) return fail('auth_failed');
    const seq = new DataView(p.buffer, p.byteOffset, p.byteLength).getUint32(8);
    const r = decodeAdvert(p.subarray(AH_LEN), { family: 4, srcAddr: header.src, dstAddr: header.dst, expect });
    return r.ok ? { ok: true, advert: r.advert, header, seq } : fail(r.reason);
  } catch {
    return { ok: false, reason: 'decode_error' };
  }
}
