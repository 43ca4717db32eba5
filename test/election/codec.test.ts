import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import fc from 'fast-check';
import {
  encodeAdvert,
  decodeAdvert,
  decodeIpv4Packet,
  decodeIpv4Vrrp,
  vrrpChecksum,
  fromHex,
  toHex,
  DROP_REASONS,
  type Advert,
  type DecodeContext,
} from '../../src/election/codec.js';
import { parseIp } from '../../src/core/address.js';

const fixtureDir = new URL('../../../test/fixtures/vrrp/', import.meta.url);
interface FixturePacket {
  name: string;
  family: 4 | 6;
  src: string;
  dst: string;
  ttl: number;
  vrrp: string;
  ipPacket?: string;
  /** The capture must be rejected with this reason (e.g. keepalived's deprecated v2 auth). */
  rejectReason?: string;
  expect: { version: 2 | 3; vrid: number; priority: number; intervalMs: number; addresses: string[] };
}
const fixtures = readdirSync(fixtureDir)
  .filter((f) => f.startsWith('keepalived-') && f.endsWith('.json'))
  .map((f) => ({ file: f, data: JSON.parse(readFileSync(new URL(f, fixtureDir), 'utf8')) as { packets: FixturePacket[] } }));

const ip = (s: string) => parseIp(s)!.bytes;

test('fixtures cover keepalived v2, v3 IPv4 and v3 IPv6, including priority 0', () => {
  const kinds = new Set(fixtures.flatMap((f) => f.data.packets.filter((p) => !p.rejectReason).map((p) => `v${p.expect.version}/ipv${p.family}/${p.expect.priority === 0 ? 'stop' : 'run'}`)));
  for (const k of ['v2/ipv4/run', 'v2/ipv4/stop', 'v3/ipv4/run', 'v3/ipv4/stop', 'v3/ipv6/run', 'v3/ipv6/stop']) assert.ok(kinds.has(k), k);
});

for (const { file, data } of fixtures) {
  for (const p of data.packets.filter((x) => x.rejectReason)) {
    test(`keepalived capture ${file} / ${p.name}: rejected with ${p.rejectReason}`, () => {
      const r = decodeAdvert(fromHex(p.vrrp), { family: p.family, srcAddr: ip(p.src), dstAddr: ip(p.dst), ttl: p.ttl });
      assert.deepEqual(r, { ok: false, reason: p.rejectReason });
      if (p.ipPacket) assert.deepEqual(decodeIpv4Vrrp(fromHex(p.ipPacket)), { ok: false, reason: p.rejectReason, header: (decodeIpv4Packet(fromHex(p.ipPacket)) as { header: unknown }).header });
      // The checksum itself is valid (covers the auth data): only the auth type is the problem.
      const b = fromHex(p.vrrp);
      assert.equal(vrrpChecksum(b, 2), (b[6]! << 8) | b[7]!);
    });
  }
  for (const p of data.packets.filter((x) => !x.rejectReason)) {
    test(`keepalived capture ${file} / ${p.name}: decodes and re-encodes to identical bytes`, () => {
      const bytes = fromHex(p.vrrp);
      const ctx: DecodeContext = { family: p.family, srcAddr: ip(p.src), dstAddr: ip(p.dst), ttl: p.ttl, expect: { vrid: p.expect.vrid, version: p.expect.version, addrCount: p.expect.addresses.length, v2IntervalMs: p.expect.intervalMs } };
      const r = decodeAdvert(bytes, ctx);
      assert.ok(r.ok, `decode failed: ${r.ok ? '' : r.reason}`);
      assert.equal(r.advert.version, p.expect.version);
      assert.equal(r.advert.vrid, p.expect.vrid);
      assert.equal(r.advert.priority, p.expect.priority);
      assert.equal(r.advert.intervalMs, p.expect.intervalMs);
      assert.deepEqual(r.advert.addresses.map(toHex), p.expect.addresses.map((a) => toHex(ip(a))));
      const re = encodeAdvert(r.advert, { srcAddr: ip(p.src), dstAddr: ip(p.dst) });
      assert.equal(toHex(re), p.vrrp);
      // An advert built from the expected fields (not from the decode) gives the same bytes too.
      const built: Advert = { version: p.expect.version, vrid: p.expect.vrid, priority: p.expect.priority, intervalMs: p.expect.intervalMs, addresses: p.expect.addresses.map(ip) };
      assert.equal(toHex(encodeAdvert(built, { srcAddr: ip(p.src), dstAddr: ip(p.dst) })), p.vrrp);
      if (p.ipPacket) {
        const full = decodeIpv4Vrrp(fromHex(p.ipPacket), { vrid: p.expect.vrid });
        assert.ok(full.ok, full.ok ? '' : full.reason);
        assert.equal(full.header.ttl, 255);
        assert.equal(full.header.tos, 0xc0, 'keepalived sends DSCP CS6');
        assert.equal(full.advert.priority, p.expect.priority);
      }
    });
  }
}

test('v3 checksum covers the pseudo-header: the same payload fails with another source or destination', () => {
  const v3 = fixtures.flatMap((f) => f.data.packets).filter((p) => !p.rejectReason).find((p) => p.expect.version === 3 && p.family === 4)!;
  const bytes = fromHex(v3.vrrp);
  const ctx = { family: 4 as const, srcAddr: ip(v3.src), dstAddr: ip(v3.dst) };
  assert.ok(decodeAdvert(bytes, ctx).ok);
  assert.deepEqual(decodeAdvert(bytes, { ...ctx, srcAddr: ip('192.0.2.9') }), { ok: false, reason: 'bad_checksum' });
  assert.deepEqual(decodeAdvert(bytes, { ...ctx, dstAddr: ip('192.0.2.2') }), { ok: false, reason: 'bad_checksum' });
  // v2 checksum is over the VRRP message only (RFC 3768 §5.3.8): addresses do not matter.
  const v2 = fixtures.flatMap((f) => f.data.packets).filter((p) => !p.rejectReason).find((p) => p.expect.version === 2)!;
  assert.ok(decodeAdvert(fromHex(v2.vrrp), { family: 4, srcAddr: ip('198.51.100.7'), dstAddr: ip('198.51.100.8') }).ok);
  assert.equal(vrrpChecksum(fromHex(v2.vrrp), 2), (fromHex(v2.vrrp)[6]! << 8) | fromHex(v2.vrrp)[7]!);
});

// Hand-made packets for each rejection reason, starting from a valid v3 IPv4 advert.
const SRC4 = ip('192.0.2.1');
const DST4 = ip('224.0.0.18');
const base: Advert = { version: 3, vrid: 7, priority: 100, intervalMs: 100, addresses: [ip('192.0.2.50')] };
const ctx4: DecodeContext = { family: 4, srcAddr: SRC4, dstAddr: DST4, ttl: 255 };
/** Patch bytes, then fix the checksum so the check under test is the one that fires. */
function patched(a: Advert, patch: (b: Uint8Array) => Uint8Array | void, fixCk = true): Uint8Array {
  const b0 = encodeAdvert(a, { srcAddr: SRC4, dstAddr: DST4 });
  const b = patch(b0) ?? b0;
  if (fixCk && b.length >= 8) {
    b[6] = 0;
    b[7] = 0;
    const version = (b[0]! >> 4) === 2 ? 2 : 3;
    const ck = vrrpChecksum(b, version, SRC4, DST4);
    b[6] = ck >> 8;
    b[7] = ck & 0xff;
  }
  return b;
}
const reasonOf = (b: Uint8Array, c: DecodeContext = ctx4) => {
  const r = decodeAdvert(b, c);
  return r.ok ? 'ok' : r.reason;
};

test('each malformed packet is rejected with its own reason', () => {
  assert.equal(reasonOf(patched(base, () => {})), 'ok');
  assert.equal(reasonOf(new Uint8Array(7)), 'too_short');
  assert.equal(reasonOf(new Uint8Array(0)), 'too_short');
  assert.equal(reasonOf(patched(base, () => {}), { ...ctx4, ttl: 254 }), 'bad_ttl');
  assert.equal(reasonOf(patched(base, (b) => { b[0] = 0x41; })), 'bad_version');
  assert.equal(reasonOf(patched(base, (b) => { b[0] = 0x11; })), 'bad_version');
  assert.equal(reasonOf(patched(base, () => {}), { ...ctx4, expect: { version: 2 } }), 'bad_version');
  assert.equal(reasonOf(patched(base, (b) => { b[0] = 0x32; })), 'bad_type');
  assert.equal(reasonOf(patched(base, (b) => { b[3] = 2; })), 'bad_length', 'count says 2, one address present');
  assert.equal(reasonOf(patched(base, (b) => Uint8Array.from([...b, 0]))), 'bad_length', 'trailing byte');
  assert.equal(reasonOf(patched(base, (b) => { b[7] = b[7]! ^ 1; }, false)), 'bad_checksum');
  assert.equal(reasonOf(patched(base, (b) => { b[3] = 0; return b.slice(0, 8); })), 'no_addresses');
  assert.equal(reasonOf(patched(base, (b) => { b[1] = 0; })), 'bad_vrid');
  assert.equal(reasonOf(patched(base, () => {}), { ...ctx4, expect: { vrid: 8 } }), 'vrid_mismatch');
  assert.equal(reasonOf(patched(base, () => {}), { ...ctx4, expect: { addrCount: 2 } }), 'addr_count_mismatch');
  assert.equal(reasonOf(patched(base, (b) => { b[4] = 0; b[5] = 0; })), 'interval_zero');
  const v2: Advert = { ...base, version: 2, intervalMs: 1000 };
  assert.equal(reasonOf(patched(v2, () => {})), 'ok');
  assert.equal(reasonOf(patched(v2, (b) => { b[4] = 1; })), 'bad_auth', 'auth type 1 (simple text) is not accepted');
  assert.equal(reasonOf(patched(v2, () => {}), { ...ctx4, expect: { v2IntervalMs: 2000 } }), 'interval_mismatch');
  assert.equal(reasonOf(patched(v2, () => {}), { ...ctx4, family: 6, srcAddr: new Uint8Array(16), dstAddr: new Uint8Array(16) }), 'bad_version', 'no v2 over IPv6');
  // v3 reserved bits of the interval field are ignored on receive (RFC 5798 §5.2.6: MUST be ignored).
  const r = decodeAdvert(patched(base, (b) => { b[4]! |= 0xf0; }), ctx4);
  assert.ok(r.ok && r.advert.intervalMs === 100);
  // v2 auth data is ignored on receive (RFC 3768 §5.3.10) as long as the checksum is right.
  assert.equal(reasonOf(patched(v2, (b) => { b[b.length - 1] = 0x55; })), 'ok');
});

test('every DropReason is a declared one', () => {
  const seen = new Set<string>();
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), fc.constantFrom(4 as const, 6 as const), (b, family) => {
      const alen = family === 4 ? 4 : 16;
      const r = decodeAdvert(b, { family, srcAddr: new Uint8Array(alen), dstAddr: new Uint8Array(alen) });
      if (!r.ok) seen.add(r.reason);
    }),
  );
  for (const s of seen) assert.ok((DROP_REASONS as readonly string[]).includes(s), s);
});

test('encode rejects values that cannot go on the wire', () => {
  const c = { srcAddr: SRC4, dstAddr: DST4 };
  assert.throws(() => encodeAdvert({ ...base, vrid: 0 }, c), /VRID/);
  assert.throws(() => encodeAdvert({ ...base, priority: 256 }, c), /priority/);
  assert.throws(() => encodeAdvert({ ...base, intervalMs: 41_000 }, c), /not representable/);
  assert.throws(() => encodeAdvert({ ...base, intervalMs: 4 }, c), /not representable/);
  assert.throws(() => encodeAdvert({ ...base, version: 2, intervalMs: 256_000 }, c), /not representable/);
  assert.throws(() => encodeAdvert({ ...base, addresses: [] }, c), /count/);
  assert.throws(() => encodeAdvert({ ...base, addresses: [new Uint8Array(16)] }, c), /address/);
  assert.throws(() => encodeAdvert({ ...base, version: 2, intervalMs: 1000 }, { srcAddr: new Uint8Array(16), dstAddr: new Uint8Array(16) }), /IPv4 only/);
});

test('decodeIpv4Packet parses the header and rejects what is not IPv4/112', () => {
  const payload = encodeAdvert(base, { srcAddr: SRC4, dstAddr: DST4 });
  const hdr = Uint8Array.from([0x45, 0xc0, 0, 20 + payload.length, 0, 1, 0, 0, 255, 112, 0, 0, ...SRC4, ...DST4]);
  const pkt = Uint8Array.from([...hdr, ...payload]);
  const r = decodeIpv4Packet(pkt);
  assert.ok(r.ok);
  assert.equal(r.header.ttl, 255);
  assert.equal(toHex(r.payload), toHex(payload));
  assert.equal(toHex(r.header.src), toHex(SRC4));
  // Options (IHL 6) are skipped.
  const withOpt = Uint8Array.from([0x46, 0xc0, 0, 24 + payload.length, 0, 1, 0, 0, 255, 112, 0, 0, ...SRC4, ...DST4, 1, 1, 1, 0, ...payload]);
  const o = decodeIpv4Packet(withOpt);
  assert.ok(o.ok && toHex(o.payload) === toHex(payload));
  // Ethernet padding beyond the IP total length is not part of the payload.
  const padded = decodeIpv4Packet(Uint8Array.from([...pkt, 0, 0, 0]));
  assert.ok(padded.ok && padded.payload.length === payload.length);
  const bad = (b: Uint8Array) => { const x = decodeIpv4Packet(b); return x.ok ? 'ok' : x.reason; };
  assert.equal(bad(pkt.slice(0, 19)), 'too_short');
  assert.equal(bad(Uint8Array.from([0x65, ...pkt.slice(1)])), 'bad_ip_header');
  assert.equal(bad(Uint8Array.from([0x44, ...pkt.slice(1)])), 'bad_ip_header');
  const longLen = pkt.slice(); longLen[3] = 200;
  assert.equal(bad(longLen), 'bad_ip_header');
  const udp = pkt.slice(); udp[9] = 17;
  assert.equal(bad(udp), 'bad_protocol');
  const ttl = pkt.slice(); ttl[8] = 64;
  const t = decodeIpv4Vrrp(ttl);
  assert.ok(!t.ok && t.reason === 'bad_ttl', 'a packet that crossed a router (TTL < 255) is dropped (RFC 5798 §7.1)');
});

// --- properties ---

const addr4 = fc.uint8Array({ minLength: 4, maxLength: 4 });
const addr16 = fc.uint8Array({ minLength: 16, maxLength: 16 });
const advertArb = fc.oneof(
  fc.record({
    family: fc.constant(4 as const),
    version: fc.constantFrom(2 as const, 3 as const),
    vrid: fc.integer({ min: 1, max: 255 }),
    priority: fc.integer({ min: 0, max: 255 }),
    units: fc.integer({ min: 1, max: 255 }),
    addresses: fc.array(addr4, { minLength: 1, maxLength: 20 }),
    src: addr4,
    dst: addr4,
  }),
  fc.record({
    family: fc.constant(6 as const),
    version: fc.constant(3 as const),
    vrid: fc.integer({ min: 1, max: 255 }),
    priority: fc.integer({ min: 0, max: 255 }),
    units: fc.integer({ min: 1, max: 4095 }),
    addresses: fc.array(addr16, { minLength: 1, maxLength: 10 }),
    src: addr16,
    dst: addr16,
  }),
).map((r) => ({
  ...r,
  advert: { version: r.version, vrid: r.vrid, priority: r.priority, intervalMs: r.version === 2 ? r.units * 1000 : r.units * 10, addresses: r.addresses } as Advert,
}));

test('property: encode → decode is the identity', () => {
  fc.assert(
    fc.property(advertArb, (r) => {
      const bytes = encodeAdvert(r.advert, { srcAddr: r.src, dstAddr: r.dst });
      const d = decodeAdvert(bytes, { family: r.family, srcAddr: r.src, dstAddr: r.dst, ttl: 255, expect: { vrid: r.vrid, version: r.version, addrCount: r.addresses.length } });
      assert.ok(d.ok, d.ok ? '' : d.reason);
      assert.equal(d.advert.version, r.advert.version);
      assert.equal(d.advert.vrid, r.advert.vrid);
      assert.equal(d.advert.priority, r.advert.priority);
      assert.equal(d.advert.intervalMs, r.advert.intervalMs);
      assert.deepEqual(d.advert.addresses.map(toHex), r.addresses.map(toHex));
      assert.equal(toHex(encodeAdvert(d.advert, { srcAddr: r.src, dstAddr: r.dst })), toHex(bytes));
    }),
    { numRuns: 500 },
  );
});

test('property: random bytes never throw, in decodeAdvert or decodeIpv4Vrrp', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 600 }), fc.constantFrom(4 as const, 6 as const), fc.option(fc.integer({ min: 0, max: 255 })), (b, family, ttl) => {
      const alen = family === 4 ? 4 : 16;
      const r = decodeAdvert(b, { family, srcAddr: new Uint8Array(alen), dstAddr: new Uint8Array(alen), ...(ttl === null ? {} : { ttl }) });
      assert.equal(typeof r.ok, 'boolean');
      const r2 = decodeIpv4Vrrp(b);
      assert.equal(typeof r2.ok, 'boolean');
    }),
    { numRuns: 2000 },
  );
  // Random bytes that at least look like a VRRP header exercise the deeper checks.
  fc.assert(
    fc.property(fc.constantFrom(0x21, 0x31), fc.uint8Array({ minLength: 7, maxLength: 120 }), (b0, rest) => {
      const r = decodeAdvert(Uint8Array.from([b0, ...rest]), { family: 4, srcAddr: SRC4, dstAddr: DST4 });
      assert.equal(typeof r.ok, 'boolean');
    }),
    { numRuns: 2000 },
  );
});

test('property: any single bit flip of a valid advert is rejected with a reason', () => {
  fc.assert(
    fc.property(advertArb, fc.nat(), (r, pick) => {
      const bytes = encodeAdvert(r.advert, { srcAddr: r.src, dstAddr: r.dst });
      const bit = pick % (bytes.length * 8);
      const flipped = bytes.slice();
      flipped[bit >> 3]! ^= 1 << (bit & 7);
      const d = decodeAdvert(flipped, { family: r.family, srcAddr: r.src, dstAddr: r.dst, ttl: 255 });
      // v3 reserved bits (byte 4, high nibble) are ignored on receive but still covered by the checksum.
      assert.equal(d.ok, false, `bit ${bit} flipped and still accepted`);
      assert.ok((DROP_REASONS as readonly string[]).includes(d.ok ? '' : d.reason));
    }),
    { numRuns: 1000 },
  );
});
