/**
 * VRRPv2 AH authentication (RFC 2338 §5.3.6.3, src/election/ah.ts) against keepalived's own bytes:
 * the whole IPv4 packets of test/fixtures/vrrp/ah/keepalived-v2-auth-ah.json (captured from
 * keepalived 2.2.7 with `auth_type AH`) decode with the password and fail with another one; what
 * lvsd encodes for the same advert, IP id and sequence number is the captured packet byte for byte.
 * The ICV is also recomputed here independently (HMAC-MD5 over the packet with the mutable fields
 * zeroed), to forge a packet whose ICV verifies but whose SPI is not its source.
 * fast-check: encode → decode round trip; any byte of the covered region changed → rejected, a
 * mutable field changed → still accepted; any bytes → a declared reason, never a throw.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { AhSequence, decodeAhPacket, encodeAhPacket, AH_LEN, type AhExpect } from '../../src/election/ah.js';
import { authKey, decodeIpv4Vrrp, fromHex, toHex, DROP_REASONS, type Advert } from '../../src/election/codec.js';
import { parseIp } from '../../src/core/address.js';

interface Packet {
  name: string;
  src: string;
  dst: string;
  seq: number;
  ipId: number;
  ipPacket: string;
  expect: { version: 2; vrid: number; priority: number; intervalMs: number; addresses: string[] };
}
const fixture = JSON.parse(readFileSync(new URL('../../../test/fixtures/vrrp/ah/keepalived-v2-auth-ah.json', import.meta.url), 'utf8')) as { password: string; packets: Packet[] };
const ip = (s: string) => parseIp(s)!.bytes;

const expectOf = (p: Packet, password: string, unicast = false): AhExpect => ({
  vrid: p.expect.vrid,
  version: 2,
  addrCount: p.expect.addresses.length,
  v2IntervalMs: p.expect.intervalMs,
  auth: { type: 'ah', key: authKey(password) },
  unicast,
});

/** The ICV computed independently of ah.ts (RFC 2402 §3.3.3: mutable fields and ICV zero; keepalived keeps the TTL for multicast). */
function independentIcv(pkt: Uint8Array, password: string): Buffer {
  const m = Buffer.from(pkt);
  m[1] = 0;
  m.fill(0, 6, 8);
  m.fill(0, 10, 12);
  m.fill(0, 32, 44);
  return createHmac('md5', Buffer.from(authKey(password))).update(m).digest().subarray(0, 12);
}

test('the fixture holds keepalived AH adverts: protocol 51, AH next header 112, SPI = source, ICV as RFC 2402 computes it', () => {
  assert.ok(fixture.packets.length >= 2 && fixture.packets.some((p) => p.expect.priority === 0));
  for (const p of fixture.packets) {
    const b = fromHex(p.ipPacket);
    assert.equal(b[9], 51);
    assert.equal(b[20], 112);
    assert.equal(toHex(b.subarray(24, 28)), toHex(ip(p.src)));
    assert.equal(toHex(independentIcv(b, fixture.password)), toHex(b.subarray(32, 44)));
  }
});

for (const p of fixture.packets) {
  test(`keepalived AH advert "${p.name}": decodes with the password, lvsd's encoding is byte-identical, wrong password is auth_failed`, () => {
    const bytes = fromHex(p.ipPacket);
    const r = decodeAhPacket(bytes, expectOf(p, fixture.password));
    assert.ok(r.ok, r.ok ? '' : r.reason);
    assert.equal(r.seq, p.seq);
    assert.equal(r.advert.priority, p.expect.priority);
    assert.deepEqual(r.advert.addresses.map((a) => parseIp(Buffer.from(a).join('.'))!.text), p.expect.addresses);
    const mine = encodeAhPacket(r.advert, { srcAddr: ip(p.src), dstAddr: ip(p.dst), key: authKey(fixture.password), seq: p.seq, ipId: p.ipId, unicast: false });
    assert.equal(toHex(mine), p.ipPacket);
    assert.deepEqual(decodeAhPacket(bytes, expectOf(p, 's3creT')), { ok: false, reason: 'auth_failed', header: r.header });
    // An instance without AH (raw socket of protocol 112) never takes it.
    assert.equal((decodeIpv4Vrrp(bytes) as { reason?: string }).reason, 'bad_protocol');
    // The unicast ICV leaves the TTL out: a multicast capture does not verify as unicast.
    assert.equal((decodeAhPacket(bytes, expectOf(p, fixture.password, true)) as { reason?: string }).reason, 'auth_failed');
  });
}

test('SPI other than the source is auth_failed even with a valid ICV; another protocol under AH is bad_protocol', () => {
  const p = fixture.packets[0]!;
  const b = Buffer.from(fromHex(p.ipPacket));
  b[27]! ^= 1; // SPI
  independentIcv(b, fixture.password).copy(b, 32);
  assert.equal((decodeAhPacket(b, expectOf(p, fixture.password)) as { reason?: string }).reason, 'auth_failed');
  const c = Buffer.from(fromHex(p.ipPacket));
  c[20] = 6;
  assert.equal((decodeAhPacket(c, expectOf(p, fixture.password)) as { reason?: string }).reason, 'bad_protocol');
  assert.equal((decodeAhPacket(c.subarray(0, 20 + AH_LEN - 1), expectOf(p, fixture.password)) as { reason?: string }).reason, 'bad_ip_header');
});

test('AhSequence: sends count up from 1, accepts only numbers above the last sent or accepted (replays dropped)', () => {
  const s = new AhSequence();
  assert.equal(s.next(), 1);
  assert.equal(s.next(), 2);
  assert.equal(s.accept(2), false);
  assert.equal(s.accept(10), true);
  assert.equal(s.accept(10), false);
  assert.equal(s.accept(9), false);
  assert.equal(s.next(), 11);
  assert.equal(s.accept(0xffffffff), true);
  assert.equal(s.next(), 0xffffffff);
});

const advertArb = fc.record({
  vrid: fc.integer({ min: 1, max: 255 }),
  priority: fc.integer({ min: 0, max: 255 }),
  intervalS: fc.integer({ min: 1, max: 255 }),
  addresses: fc.array(fc.uint8Array({ minLength: 4, maxLength: 4 }), { minLength: 1, maxLength: 8 }),
});
const caseArb = fc.record({
  a: advertArb,
  src: fc.uint8Array({ minLength: 4, maxLength: 4 }),
  dst: fc.uint8Array({ minLength: 4, maxLength: 4 }),
  password: fc.string({ minLength: 1, maxLength: 8 }),
  seq: fc.integer({ min: 0, max: 0xffffffff }),
  ipId: fc.integer({ min: 1, max: 0xffff }),
  unicast: fc.boolean(),
});

type Case = typeof caseArb extends fc.Arbitrary<infer T> ? T : never;
function build(c: Case): { pkt: Uint8Array; advert: Advert; expect: AhExpect } {
  const advert: Advert = { version: 2, vrid: c.a.vrid, priority: c.a.priority, intervalMs: c.a.intervalS * 1000, addresses: c.a.addresses };
  const pkt = encodeAhPacket(advert, { srcAddr: c.src, dstAddr: c.dst, key: authKey(c.password), seq: c.seq, ipId: c.ipId, unicast: c.unicast });
  const expect: AhExpect = { vrid: c.a.vrid, version: 2, addrCount: c.a.addresses.length, v2IntervalMs: c.a.intervalS * 1000, auth: { type: 'ah', key: authKey(c.password) }, unicast: c.unicast };
  return { pkt, advert, expect };
}

test('property: encode → decode gives the advert and the sequence number back', () => {
  fc.assert(
    fc.property(caseArb, (c) => {
      const { pkt, advert, expect } = build(c);
      const r = decodeAhPacket(pkt, expect);
      assert.ok(r.ok, r.ok ? '' : r.reason);
      assert.equal(r.seq, c.seq);
      assert.deepEqual({ ...r.advert, addresses: r.advert.addresses.map((x) => toHex(x)) }, { ...advert, addresses: advert.addresses.map((x) => toHex(x)) });
    }),
    { numRuns: 500 },
  );
});

/** IPv4 header bytes the ICV does not cover (RFC 2402 §3.3.3.1.1.1): TOS, flags/fragment offset, checksum. */
const MUTABLE = new Set([1, 6, 7, 10, 11]);

test('property: any byte changed in the covered region is rejected; a mutable header field changed is not', () => {
  fc.assert(
    fc.property(caseArb, fc.nat(), fc.integer({ min: 1, max: 255 }), (c, at, x) => {
      const { pkt, expect } = build(c);
      const i = at % pkt.length;
      const m = Uint8Array.from(pkt);
      m[i]! ^= x;
      const r = decodeAhPacket(m, expect);
      if (MUTABLE.has(i)) assert.ok(r.ok, `byte ${i} is mutable: ${r.ok ? '' : r.reason}`);
      else assert.equal(r.ok, false, `byte ${i} changed by ${x} was accepted`);
    }),
    { numRuns: 3000 },
  );
});

test('property: arbitrary and truncated packets give a declared reason, never a throw or decode_error', () => {
  const p = fixture.packets[0]!;
  const base = fromHex(p.ipPacket);
  const declared = new Set<string>(DROP_REASONS);
  const judge = (b: Uint8Array, e: AhExpect) => {
    const r = decodeAhPacket(b, e);
    if (!r.ok) {
      assert.ok(declared.has(r.reason), r.reason);
      assert.notEqual(r.reason, 'decode_error');
    }
  };
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 120 }), fc.boolean(), (b, prefix) => {
      // Half of them start like a real AH advert so the checks past the IP header are reached.
      const buf = prefix ? Uint8Array.from([...base.subarray(0, Math.min(base.length, b.length)), ...b.subarray(base.length)]) : b;
      judge(buf, expectOf(p, fixture.password));
    }),
    { numRuns: 5000 },
  );
  for (let n = 0; n <= base.length; n++) judge(base.subarray(0, n), expectOf(p, fixture.password));
});
