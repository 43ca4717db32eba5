/**
 * Pure VRRP parts (no I/O): the runtime (transport, VIP ownership, GARP, notify) consumes these.
 *
 * Codec (./codec.ts) — RFC 3768 (v2) / RFC 5798 (v3):
 *  - `encodeAdvert(advert, {srcAddr, dstAddr})` → VRRP payload bytes (the kernel adds the IP header).
 *    srcAddr/dstAddr are the IP header addresses (needed for the v3 pseudo-header checksum).
 *  - `decodeAdvert(buf, {family, srcAddr, dstAddr, ttl?, expect?})` → `{ok:true, advert}` or
 *    `{ok:false, reason: DropReason}`; never throws. Count drops by `reason` (DROP_REASONS lists all).
 *  - `decodeIpv4Vrrp(buf, expect?)` for raw IPv4 sockets (IP header first): IP parse + TTL 255 check +
 *    decodeAdvert. IPv6 raw sockets do not deliver the header: call decodeAdvert with family 6 and the
 *    hop limit from ancillary data if available.
 *  - `Advert.intervalMs` is milliseconds on both versions (v2 wire = s, v3 wire = cs).
 */
export * from './codec.js';
