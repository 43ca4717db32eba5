/**
 * VRRP advertisement codec, pure TypeScript.
 *
 * Wire layouts (all multi-byte fields network order):
 *
 *  VRRPv2, RFC 3768 §5.1 (IPv4 only)          VRRPv3, RFC 5798 §5.1 (IPv4 and IPv6)
 *  0: version(4)=2 | type(4)=1                0: version(4)=3 | type(4)=1
 *  1: virtual router id                       1: virtual router id
 *  2: priority                                2: priority
 *  3: count IP addrs                          3: count IPvX addrs
 *  4: auth type (0 = none, RFC 3768 §5.3.6)   4-5: rsvd(4) | max advert interval(12), centiseconds
 *  5: advert interval, seconds
 *  6-7: checksum                              6-7: checksum
 *  8..: N x 4-byte addresses                  8..: N x 4- or 16-byte addresses
 *  then 8 bytes authentication data
 *
 * v2 authentication: RFC 3768 removed it (auth type 0, data zero), but keepalived still speaks RFC
 * 2338's: type 1 "Simple Text Password" (§5.3.6.2: the password, zero-padded to 8 bytes, in the
 * authentication data; the receiver "MUST ... compare" it) and type 2 "IP Authentication Header"
 * (§5.3.6.3: the IP packet carries an AH, RFC 2402, in front of VRRP; the VRRP auth data stays zero,
 * see ah.ts). An instance configured with one accepts only adverts of that type (keepalived drops a
 * type mismatch too), so a password never goes unchecked.
 *
 * Checksums are the Internet checksum (RFC 1071). v2 covers the VRRP message only (RFC 3768 §5.3.8);
 * v3 also covers the IPv4/IPv6 pseudo-header (RFC 5798 §5.2.8: "...the 16-bit one's complement of
 * the one's complement sum of the entire VRRP message starting with the version field and a
 * 'pseudo-header' as defined in Section 8.1 of RFC 2460" — for IPv4 the RFC 768 pseudo-header).
 *
 * The codec handles only the VRRP payload: the kernel builds the IP header on send. Raw IPv4 sockets
 * deliver the IP header on receive, so `decodeIpv4Packet` parses it (TTL check, RFC 5798 §7.1).
 *
 * decode* never throw: every rejection comes back as a `DropReason` the runtime counts.
 */

/** VRRP is IP protocol 112 (RFC 5798 §5.1.1.4). */
export const VRRP_PROTOCOL = 112;
/** Multicast groups (RFC 5798 §5.1.1.2 / §5.1.2.2). */
export const VRRP_GROUP_V4 = '224.0.0.18';
export const VRRP_GROUP_V6 = 'ff02::12';
/** TTL / hop limit sent and required on receive (RFC 5798 §5.1.1.3, §7.1). */
export const VRRP_TTL = 255;
/** Packet type 1 = ADVERTISEMENT, the only one defined (RFC 5798 §5.2.2). */
export const VRRP_TYPE_ADVERT = 1;
/** v2 authentication data length, always carried (RFC 3768 §5.3.10). */
const V2_AUTH_LEN = 8;
const HEADER_LEN = 8;

export type VrrpVersion = 2 | 3;

/** A decoded (or to-be-encoded) advertisement. */
export interface Advert {
  readonly version: VrrpVersion;
  /** Virtual router id, 1..255 (RFC 5798 §5.2.3). */
  readonly vrid: number;
  /** 0 = master is stopping (§5.2.4), 255 = address owner. */
  readonly priority: number;
  /**
   * Advertisement interval in milliseconds. On the wire: v2 whole seconds (8 bits, RFC 3768 §5.3.7),
   * v3 centiseconds (12 bits, RFC 5798 §5.2.7). Encoding rounds to the wire unit.
   */
  readonly intervalMs: number;
  /** IPvX addresses carried (4 or 16 bytes each, all of the packet's family). */
  readonly addresses: readonly Uint8Array[];
}

export type DropReason =
  /** shorter than the fixed 8-byte header (or than an IPv4 header for decodeIpv4Packet) */
  | 'too_short'
  /** version is not 2 or 3, v2 over IPv6, or not the version the instance expects */
  | 'bad_version'
  /** type is not ADVERTISEMENT (1) */
  | 'bad_type'
  /** TTL / hop limit is not 255 (RFC 5798 §7.1) */
  | 'bad_ttl'
  /** checksum does not verify */
  | 'bad_checksum'
  /** length disagrees with the address count (plus v2 auth data) */
  | 'bad_length'
  /** count of addresses is 0 (RFC 5798 §5.2.5: minimum 1) */
  | 'no_addresses'
  /** count of addresses differs from what the instance expects (RFC 3768 §7.1 / RFC 5798 §7.1 MAY) */
  | 'addr_count_mismatch'
  /** v2 authentication type is not the configured one (0 unless `authentication` is set; RFC 2338 §5.3.6) */
  | 'bad_auth'
  /** v2 authentication failed: wrong password (RFC 2338 §5.3.6.2), or AH ICV or SPI does not verify (§5.3.6.3, ah.ts) */
  | 'auth_failed'
  /** AH advert whose ICV verifies but whose sequence number is not above the instance's counter: a replay (RFC 2402 §3.4.3, ah.ts) */
  | 'auth_replay'
  /** VRID 0 is reserved */
  | 'bad_vrid'
  /** VRID is not the instance's */
  | 'vrid_mismatch'
  /** advert interval 0 */
  | 'interval_zero'
  /** v2 advert interval differs from the configured one (RFC 3768 §7.1 MUST discard) */
  | 'interval_mismatch'
  /** decodeIpv4Packet: not IPv4, bad IHL, or total length beyond the buffer */
  | 'bad_ip_header'
  /** decodeIpv4Packet: protocol is not 112 (51 for an AH instance), or an AH carries another protocol than VRRP */
  | 'bad_protocol'
  /** source address is ours / not link-local (IPv6 multicast) / not in the unicast peer list (reported by the transport, listed here so one counter covers all) */
  | 'bad_source'
  /** source address is not in the instance's `peers` allow-list (transport) */
  | 'not_peer'
  /** sent to one of our unicast addresses while the instance advertises by multicast (transport) */
  | 'unicast_dst'
  /** the decoder threw: a bug, never expected (the fuzz test, test/election/codec-fuzz.test.ts, requires 0) */
  | 'decode_error';

export const DROP_REASONS: readonly DropReason[] = [
  'too_short', 'bad_version', 'bad_type', 'bad_ttl', 'bad_checksum', 'bad_length', 'no_addresses',
  'addr_count_mismatch', 'bad_auth', 'bad_vrid', 'vrid_mismatch', 'interval_zero', 'interval_mismatch',
  'bad_ip_header', 'bad_protocol', 'bad_source', 'auth_failed', 'auth_replay', 'not_peer', 'unicast_dst', 'decode_error',
];

/** VRRPv2 authentication of an instance (RFC 2338 §5.3.6); the key is the password, zero-padded to 8 bytes. */
export interface V2Auth {
  readonly type: 'pass' | 'ah';
  readonly key: Uint8Array;
}

/** Auth Type field values (RFC 2338 §5.3.6). */
export const AUTH_TYPE = { none: 0, pass: 1, ah: 2 } as const;

/** The 8-byte key of a password: its UTF-8 bytes, truncated to 8 and zero-padded (keepalived does the same). */
export function authKey(password: string): Uint8Array {
  const out = new Uint8Array(V2_AUTH_LEN);
  out.set(new TextEncoder().encode(password).subarray(0, V2_AUTH_LEN));
  return out;
}

/** Compare two byte strings without an early exit (a password check must not leak the matching prefix by timing). */
export function sameBytes(a: Uint8Array, b: Uint8Array, aOff = 0, len = b.length): boolean {
  let d = 0;
  for (let i = 0; i < len; i++) d |= a[aOff + i]! ^ b[i]!;
  return d === 0;
}

export interface EncodeContext {
  /** IP source the kernel will put in the header (4 or 16 bytes): needed for the v3 pseudo-header. */
  readonly srcAddr: Uint8Array;
  /** IP destination (224.0.0.18, ff02::12 or a unicast peer). */
  readonly dstAddr: Uint8Array;
  /** VRRPv2 authentication to carry (auth type, and the password for `pass`). */
  readonly auth?: V2Auth;
}

export interface DecodeExpect {
  readonly vrid?: number;
  readonly version?: VrrpVersion;
  /** Number of addresses configured (RFC 3768 §7.1 / RFC 5798 §7.1 check; keepalived drops on mismatch). */
  readonly addrCount?: number;
  /** Configured v2 interval; a v2 advert with another interval is dropped (RFC 3768 §7.1). Ignored for v3. */
  readonly v2IntervalMs?: number;
  /** VRRPv2 authentication the instance uses; absent: auth type must be 0. */
  readonly auth?: V2Auth;
}

export interface DecodeContext {
  readonly family: 4 | 6;
  readonly srcAddr: Uint8Array;
  readonly dstAddr: Uint8Array;
  /** TTL / hop limit of the received packet when known; must be 255. */
  readonly ttl?: number;
  readonly expect?: DecodeExpect;
}

export type DecodeResult =
  | { readonly ok: true; readonly advert: Advert }
  | { readonly ok: false; readonly reason: DropReason };

/** Encoding errors are programming/config errors (out-of-range fields), not wire input. */
export class VrrpEncodeError extends Error {
  readonly code = 'VRRP_ENCODE';
  constructor(message: string) {
    super(message);
    this.name = 'VrrpEncodeError';
  }
}

/** RFC 1071 one's complement sum of 16-bit words (odd byte padded with zero), not yet complemented. */
function onesSum(sum: number, b: Uint8Array, start = 0, end = b.length): number {
  let i = start;
  for (; i + 1 < end; i += 2) sum += (b[i]! << 8) | b[i + 1]!;
  if (i < end) sum += b[i]! << 8;
  // Fold carries; the loop bound keeps this cheap for any input size we handle (< 64 KiB).
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

/** Pseudo-header sum for v3 (RFC 768 for IPv4, RFC 2460 §8.1 for IPv6), upper-layer length = VRRP length. */
function pseudoSum(src: Uint8Array, dst: Uint8Array, len: number): number {
  let s = onesSum(0, src);
  s = onesSum(s, dst);
  if (src.length === 4) {
    // zero(8) | protocol(8) | length(16)
    s += VRRP_PROTOCOL + len;
  } else {
    // length(32) | zero(24) | next header(8)
    s += (len >>> 16) + (len & 0xffff) + VRRP_PROTOCOL;
  }
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

/**
 * Checksum of a VRRP message whose checksum field (bytes 6-7) is treated as zero.
 * Exported for tests and for tools that want to show the expected value.
 */
export function vrrpChecksum(msg: Uint8Array, version: VrrpVersion, srcAddr?: Uint8Array, dstAddr?: Uint8Array): number {
  let s = onesSum(0, msg, 0, 6);
  s = onesSum(s, msg, 8, msg.length);
  if (version === 3 && srcAddr && dstAddr) {
    s += pseudoSum(srcAddr, dstAddr, msg.length);
    while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  }
  return ~s & 0xffff;
}

/** Wire interval units for a version: v2 seconds, v3 centiseconds. */
export function intervalToWire(version: VrrpVersion, ms: number): number {
  return version === 2 ? Math.round(ms / 1000) : Math.round(ms / 10);
}

export function intervalFromWire(version: VrrpVersion, units: number): number {
  return version === 2 ? units * 1000 : units * 10;
}

/** Encode the VRRP payload (no IP header). Throws VrrpEncodeError on out-of-range fields. */
export function encodeAdvert(a: Advert, ctx: EncodeContext): Uint8Array {
  const alen = ctx.srcAddr.length;
  if (alen !== 4 && alen !== 16) throw new VrrpEncodeError(`source address must be 4 or 16 bytes, got ${alen}`);
  if (ctx.dstAddr.length !== alen) throw new VrrpEncodeError('source and destination address families differ');
  if (a.version !== 2 && a.version !== 3) throw new VrrpEncodeError(`unsupported VRRP version ${String(a.version)}`);
  if (a.version === 2 && alen !== 4) throw new VrrpEncodeError('VRRPv2 is IPv4 only (RFC 3768)');
  if (!Number.isInteger(a.vrid) || a.vrid < 1 || a.vrid > 255) throw new VrrpEncodeError(`VRID must be 1..255, got ${a.vrid}`);
  if (!Number.isInteger(a.priority) || a.priority < 0 || a.priority > 255) throw new VrrpEncodeError(`priority must be 0..255, got ${a.priority}`);
  if (a.addresses.length < 1 || a.addresses.length > 255) throw new VrrpEncodeError(`address count must be 1..255, got ${a.addresses.length}`);
  const units = intervalToWire(a.version, a.intervalMs);
  const maxUnits = a.version === 2 ? 0xff : 0xfff;
  if (!(units >= 1 && units <= maxUnits)) {
    throw new VrrpEncodeError(`advert interval ${a.intervalMs} ms is not representable in VRRPv${a.version} (1..${maxUnits} ${a.version === 2 ? 's' : 'cs'})`);
  }
  const len = HEADER_LEN + a.addresses.length * alen + (a.version === 2 ? V2_AUTH_LEN : 0);
  const out = new Uint8Array(len);
  out[0] = (a.version << 4) | VRRP_TYPE_ADVERT;
  out[1] = a.vrid;
  out[2] = a.priority;
  out[3] = a.addresses.length;
  if (a.version === 2) {
    out[4] = ctx.auth ? AUTH_TYPE[ctx.auth.type] : AUTH_TYPE.none;
    out[5] = units;
  } else {
    out[4] = (units >> 8) & 0x0f; // upper 4 bits reserved, zero (RFC 5798 §5.2.6)
    out[5] = units & 0xff;
  }
  let off = HEADER_LEN;
  for (const addr of a.addresses) {
    if (addr.length !== alen) throw new VrrpEncodeError(`address of ${addr.length} bytes in an IPv${alen === 4 ? 4 : 6} advert`);
    out.set(addr, off);
    off += alen;
  }
  // v2 auth data: the password for type 1 (RFC 2338 §5.3.6.2), otherwise 8 zero bytes.
  if (a.version === 2 && ctx.auth?.type === 'pass') out.set(ctx.auth.key.subarray(0, V2_AUTH_LEN), off);
  const ck = vrrpChecksum(out, a.version, ctx.srcAddr, ctx.dstAddr);
  out[6] = ck >> 8;
  out[7] = ck & 0xff;
  return out;
}

const fail = (reason: DropReason): DecodeResult => ({ ok: false, reason });

/**
 * Validate and decode a VRRP payload. The order of checks fixes which reason is reported when
 * several apply: IP-level (TTL), framing (length, version, type), integrity (checksum), then
 * semantics (counts, auth, VRID, interval) — so random corruption is reported as what it is.
 */
export function decodeAdvert(buf: Uint8Array, ctx: DecodeContext): DecodeResult {
  try {
    return decodeUnsafe(buf, ctx);
  } catch {
    // Unreachable by construction (only bounds-checked reads); kept so a future bug is a counted
    // drop, not a crash. Its own reason, so the fuzz test can tell it from a real rejection.
    return fail('decode_error');
  }
}

function decodeUnsafe(buf: Uint8Array, ctx: DecodeContext): DecodeResult {
  const family = ctx.family;
  const alen = family === 4 ? 4 : 16;
  // RFC 5798 §7.1: "MUST verify that the IPvX TTL/Hop Limit is 255".
  if (ctx.ttl !== undefined && ctx.ttl !== VRRP_TTL) return fail('bad_ttl');
  if (buf.length < HEADER_LEN) return fail('too_short');
  const b0 = buf[0]!;
  const version = b0 >> 4;
  // RFC 5798 §7.1: "MUST verify that the VRRP version ... is 3"; v2 is IPv4 only (RFC 3768).
  if (version !== 2 && version !== 3) return fail('bad_version');
  if (version === 2 && family !== 4) return fail('bad_version');
  if (ctx.expect?.version !== undefined && ctx.expect.version !== version) return fail('bad_version');
  if ((b0 & 0x0f) !== VRRP_TYPE_ADVERT) return fail('bad_type');
  const count = buf[3]!;
  // RFC 3768 §7.1 / RFC 5798 §7.1: "MUST verify that the received packet contains the complete VRRP
  // packet (including fixed fields, and IPvX address(es))". We require the exact length: raw sockets
  // hand us the IP payload exactly (IP total length), so trailing bytes mean a malformed packet.
  const want = HEADER_LEN + count * alen + (version === 2 ? V2_AUTH_LEN : 0);
  if (buf.length !== want) return fail('bad_length');
  const v = version as VrrpVersion;
  const ck = (buf[6]! << 8) | buf[7]!;
  if (vrrpChecksum(buf, v, ctx.srcAddr, ctx.dstAddr) !== ck) return fail('bad_checksum');
  if (count === 0) return fail('no_addresses');
  if (version === 2) {
    // RFC 2338 §7.1: "MUST perform authentication specified by Auth Type"; a type other than the
    // configured one is dropped (keepalived counts it as authtype_mismatch).
    const auth = ctx.expect?.auth;
    if (buf[4]! !== (auth ? AUTH_TYPE[auth.type] : AUTH_TYPE.none)) return fail('bad_auth');
    if (auth?.type === 'pass' && !sameBytes(buf, auth.key, want - V2_AUTH_LEN, V2_AUTH_LEN)) return fail('auth_failed');
  }
  const vrid = buf[1]!;
  if (vrid === 0) return fail('bad_vrid');
  if (ctx.expect?.vrid !== undefined && ctx.expect.vrid !== vrid) return fail('vrid_mismatch');
  if (ctx.expect?.addrCount !== undefined && ctx.expect.addrCount !== count) return fail('addr_count_mismatch');
  const units = version === 2 ? buf[5]! : ((buf[4]! & 0x0f) << 8) | buf[5]!;
  if (units === 0) return fail('interval_zero');
  const intervalMs = intervalFromWire(v, units);
  // RFC 3768 §7.1: v2 "MUST verify that the Adver Interval in the packet is the same as the locally
  // configured for this virtual router"; v3 learns the interval instead (RFC 5798 §6.4.2).
  if (version === 2 && ctx.expect?.v2IntervalMs !== undefined && intervalToWire(2, ctx.expect.v2IntervalMs) !== units) {
    return fail('interval_mismatch');
  }
  const addresses: Uint8Array[] = [];
  for (let i = 0; i < count; i++) addresses.push(buf.slice(HEADER_LEN + i * alen, HEADER_LEN + (i + 1) * alen));
  return { ok: true, advert: { version: v, vrid, priority: buf[2]!, intervalMs, addresses } };
}

export interface Ipv4Header {
  readonly ihl: number;
  readonly tos: number;
  readonly totalLength: number;
  readonly ttl: number;
  readonly protocol: number;
  readonly src: Uint8Array;
  readonly dst: Uint8Array;
}

export type Ipv4Result =
  | { readonly ok: true; readonly header: Ipv4Header; readonly payload: Uint8Array }
  | { readonly ok: false; readonly reason: DropReason };

/**
 * Parse the IPv4 header a raw socket delivers in front of the payload (Linux keeps the header as on
 * the wire, total length in network order). Does not verify the header checksum: the kernel did.
 * `want`: the protocol expected, VRRP (112) or, for AH-authenticated adverts, AH (51, ah.ts).
 */
export function decodeIpv4Packet(buf: Uint8Array, want: number = VRRP_PROTOCOL): Ipv4Result {
  if (buf.length < 20) return { ok: false, reason: 'too_short' };
  const b0 = buf[0]!;
  const ihl = (b0 & 0x0f) * 4;
  if (b0 >> 4 !== 4 || ihl < 20 || ihl > buf.length) return { ok: false, reason: 'bad_ip_header' };
  const totalLength = (buf[2]! << 8) | buf[3]!;
  if (totalLength < ihl || totalLength > buf.length) return { ok: false, reason: 'bad_ip_header' };
  const protocol = buf[9]!;
  if (protocol !== want) return { ok: false, reason: 'bad_protocol' };
  return {
    ok: true,
    header: { ihl, tos: buf[1]!, totalLength, ttl: buf[8]!, protocol, src: buf.slice(12, 16), dst: buf.slice(16, 20) },
    payload: buf.subarray(ihl, totalLength),
  };
}

/** Raw IPv4 socket datagram → advert: IP header parse, TTL check, then decodeAdvert. */
export function decodeIpv4Vrrp(
  buf: Uint8Array,
  expect?: DecodeExpect,
): { ok: true; advert: Advert; header: Ipv4Header } | { ok: false; reason: DropReason; header?: Ipv4Header } {
  const ip = decodeIpv4Packet(buf);
  if (!ip.ok) return ip;
  const r = decodeAdvert(ip.payload, { family: 4, srcAddr: ip.header.src, dstAddr: ip.header.dst, ttl: ip.header.ttl, ...(expect ? { expect } : {}) });
  return r.ok ? { ok: true, advert: r.advert, header: ip.header } : { ok: false, reason: r.reason, header: ip.header };
}

/** Hex helpers for fixtures and logs. */
export function toHex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

export function fromHex(s: string): Uint8Array {
  const clean = s.replace(/[^0-9a-fA-F]/g, '');
  const out = new Uint8Array(clean.length >> 1);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.slice(i * 2, i * 2 + 2), 16);
  return out;
}
