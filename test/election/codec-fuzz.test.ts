/**
 * VRRP codec fuzzing (issue 17 item 10): well over 100k generated inputs per run through the decoder
 * — the raw-socket IPv4 path (decodeIpv4Vrrp: IP header, TTL, VRRP) and the IPv6 payload path
 * (decodeAdvert) — with the checks an instance configures (VRID, version, address count, v2
 * interval, v2 password). Two generators:
 *  - fast-check: structured adverts (valid ones, then fields pushed out of range) and raw bytes;
 *  - mutation of real adverts: keepalived's captured packets (test/fixtures/vrrp) and lvsd's own,
 *    with bit flips, byte overwrites, truncation, extension, splices and length/count/IHL edits, the
 *    checksum recomputed for half of them so the checks after it are reached too.
 * Every input must give a typed result: ok with an advert, or a declared DropReason other than
 * `decode_error` (the decoder's catch-all): 0 exceptions. A hang fails the test by its timeout.
 * The per-reason tally is printed (a reason that never shows up means a generator misses a path).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import fc from 'fast-check';
import {
  authKey,
  decodeAdvert,
  decodeIpv4Vrrp,
  encodeAdvert,
  fromHex,
  vrrpChecksum,
  DROP_REASONS,
  type DecodeExpect,
  type DropReason,
} from '../../src/election/codec.js';
import { parseIp } from '../../src/core/address.js';

const fixtureDir = new URL('../../../test/fixtures/vrrp/', import.meta.url);
interface FixturePacket {
  family: 4 | 6;
  src: string;
  dst: string;
  vrrp: string;
  ipPacket?: string;
  expect: { version: 2 | 3; vrid: number; intervalMs: number; addresses: string[] };
}
const captured = readdirSync(fixtureDir)
  .filter((f) => f.startsWith('keepalived-') && f.endsWith('.json'))
  .flatMap((f) => (JSON.parse(readFileSync(new URL(f, fixtureDir), 'utf8')) as { packets: FixturePacket[] }).packets);
const ip = (s: string) => parseIp(s)!.bytes;

const tally = new Map<string, number>();
let total = 0;
const declared = new Set<string>(DROP_REASONS);

/** One input through the decoder: any exception fails the test with the input in hex. */
function check(run: () => { ok: boolean; reason?: DropReason }, input: Uint8Array): void {
  total++;
  let r: { ok: boolean; reason?: DropReason };
  try {
    r = run();
  } catch (e) {
    assert.fail(`decoder threw ${String(e)} on ${Buffer.from(input).toString('hex')}`);
  }
  const key = r.ok ? 'ok' : r.reason!;
  if (!r.ok) {
    assert.ok(declared.has(key), `undeclared reason ${key}`);
    assert.notEqual(key, 'decode_error', `decode_error (the catch-all) on ${Buffer.from(input).toString('hex')}`);
  }
  tally.set(key, (tally.get(key) ?? 0) + 1);
}

const EXPECTS: ReadonlyArray<DecodeExpect | undefined> = [
  undefined,
  { vrid: 55, version: 2, addrCount: 1, v2IntervalMs: 1000 },
  { vrid: 55, version: 2, addrCount: 1, v2IntervalMs: 1000, auth: { type: 'pass', key: authKey('s3cret') } },
  { vrid: 42, version: 3, addrCount: 2 },
  { vrid: 51, addrCount: 1 },
];

function decodeV4(pkt: Uint8Array, expect: DecodeExpect | undefined): void {
  check(() => decodeIpv4Vrrp(pkt, expect), pkt);
}
function decodeV6(payload: Uint8Array, src: Uint8Array, dst: Uint8Array, ttl: number, expect: DecodeExpect | undefined): void {
  check(() => decodeAdvert(payload, { family: 6, srcAddr: src, dstAddr: dst, ttl, ...(expect ? { expect } : {}) }), payload);
}

/** xorshift32: the mutation stream is the same on every run (a failure reproduces). */
function rng(seed: number) {
  let x = seed >>> 0 || 1;
  return (n: number) => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x % n;
  };
}

/** A 20-byte IPv4 header for a VRRP payload (TTL 255, proto 112), as a raw socket delivers it. */
function ipv4(payload: Uint8Array, src: Uint8Array, dst: Uint8Array): Uint8Array {
  const len = 20 + payload.length;
  return Uint8Array.from([0x45, 0xc0, len >> 8, len & 0xff, 0, 1, 0, 0, 255, 112, 0, 0, ...src, ...dst, ...payload]);
}

/** Recompute the VRRP checksum in place (payload starts at `off`), so later checks are reached. */
function fixChecksum(b: Uint8Array, off: number, src?: Uint8Array, dst?: Uint8Array): void {
  if (b.length < off + 8) return;
  const msg = b.subarray(off);
  const v = msg[0]! >> 4 === 2 ? 2 : 3;
  const ck = vrrpChecksum(msg, v, src, dst);
  msg[6] = ck >> 8;
  msg[7] = ck & 0xff;
}

function mutate(seedBytes: Uint8Array, r: (n: number) => number): Uint8Array {
  let b: Uint8Array = seedBytes.slice();
  const ops = 1 + r(4);
  for (let k = 0; k < ops; k++) {
    switch (r(8)) {
      case 0: // bit flip
        if (b.length) b[r(b.length)]! ^= 1 << r(8);
        break;
      case 1: // byte overwrite with an interesting value
        if (b.length) b[r(b.length)] = [0, 1, 2, 3, 0x7f, 0x80, 0xfe, 0xff, r(256)][r(9)]!;
        break;
      case 2: // truncate
        b = b.slice(0, r(b.length + 1));
        break;
      case 3: { // extend with random bytes
        const extra = Uint8Array.from({ length: 1 + r(40) }, () => r(256));
        b = Uint8Array.from([...b, ...extra]);
        break;
      }
      case 4: { // splice: duplicate a chunk somewhere else
        if (b.length < 2) break;
        const from = r(b.length);
        const chunk = b.slice(from, from + 1 + r(16));
        const at = r(b.length);
        b = Uint8Array.from([...b.slice(0, at), ...chunk, ...b.slice(at)]);
        break;
      }
      case 5: // VRRP address count (at its offset in an IPv4 packet or a bare payload)
        if (b.length > 23) b[23] = r(256);
        else if (b.length > 3) b[3] = r(256);
        break;
      case 6: // IPv4 total length / IHL
        if (b.length > 3) {
          if (r(2)) b[3] = r(256);
          else b[0] = (b[0]! & 0xf0) | r(16);
        }
        break;
      default: // auth type / interval bytes
        if (b.length > 25) b[24 + r(2)] = r(256);
        break;
    }
  }
  return b;
}

test('fuzz: ≥ 100k generated inputs through the VRRP decoder, 0 exceptions, every rejection a declared reason', { timeout: 180_000 }, () => {
  // 1. Mutations of real adverts: keepalived's captures and lvsd's own (v2 with a password, v3 IPv4/IPv6).
  const r = rng(0x1717);
  const SRC4 = ip('192.0.2.1');
  const GRP4 = ip('224.0.0.18');
  const own = [
    ipv4(encodeAdvert({ version: 2, vrid: 55, priority: 100, intervalMs: 1000, addresses: [ip('192.0.2.50')] }, { srcAddr: SRC4, dstAddr: GRP4, auth: { type: 'pass', key: authKey('s3cret') } }), SRC4, GRP4),
    ipv4(encodeAdvert({ version: 3, vrid: 42, priority: 150, intervalMs: 100, addresses: [ip('192.0.2.42'), ip('192.0.2.43')] }, { srcAddr: SRC4, dstAddr: GRP4 }), SRC4, GRP4),
  ];
  const seeds4 = [...captured.filter((p) => p.ipPacket).map((p) => fromHex(p.ipPacket!)), ...own];
  const seeds6 = captured.filter((p) => p.family === 6).map((p) => ({ payload: fromHex(p.vrrp), src: ip(p.src), dst: ip(p.dst) }));
  assert.ok(seeds4.length >= 4 && seeds6.length >= 1, 'fixtures hold IPv4 and IPv6 captures');
  for (let i = 0; i < 60_000; i++) {
    const m = mutate(seeds4[r(seeds4.length)]!, r);
    if (r(2) && m.length > 20) fixChecksum(m, Math.max(20, (m[0]! & 0x0f) * 4), m.length >= 20 ? m.subarray(12, 16) : undefined, m.length >= 20 ? m.subarray(16, 20) : undefined);
    decodeV4(m, EXPECTS[r(EXPECTS.length)]);
  }
  for (let i = 0; i < 20_000; i++) {
    const s = seeds6[r(seeds6.length)]!;
    const m = mutate(s.payload, r);
    if (r(2)) fixChecksum(m, 0, s.src, s.dst);
    decodeV6(m, s.src, s.dst, r(8) ? 255 : r(256), EXPECTS[r(EXPECTS.length)]);
  }

  // 2. fast-check: structured adverts with fields anywhere in their byte range, and raw bytes.
  const addr4 = fc.uint8Array({ minLength: 4, maxLength: 4 });
  const header = fc.record({
    vt: fc.oneof(fc.constantFrom(0x21, 0x31), fc.integer({ min: 0, max: 255 })),
    vrid: fc.integer({ min: 0, max: 255 }),
    prio: fc.integer({ min: 0, max: 255 }),
    count: fc.oneof(fc.integer({ min: 0, max: 4 }), fc.integer({ min: 0, max: 255 })),
    b4: fc.integer({ min: 0, max: 255 }),
    b5: fc.integer({ min: 0, max: 255 }),
    body: fc.uint8Array({ maxLength: 80 }),
    ttl: fc.constantFrom(255, 255, 255, 1, 64, 0),
    fix: fc.boolean(),
    expect: fc.constantFrom(...EXPECTS),
    src: addr4,
  });
  fc.assert(
    fc.property(header, (h) => {
      const payload = Uint8Array.from([h.vt, h.vrid, h.prio, h.count, h.b4, h.b5, 0, 0, ...h.body]);
      const pkt = ipv4(payload, h.src, GRP4);
      pkt[8] = h.ttl;
      if (h.fix) fixChecksum(pkt, 20, h.src, GRP4);
      decodeV4(pkt, h.expect);
    }),
    { numRuns: 25_000, seed: 17 },
  );
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), fc.constantFrom(...EXPECTS), (b, expect) => {
      decodeV4(b, expect);
      decodeV6(b, new Uint8Array(16), new Uint8Array(16), 255, expect);
    }),
    { numRuns: 10_000, seed: 18 },
  );

  const summary = Object.fromEntries([...tally.entries()].sort((a, b) => b[1] - a[1]));
  console.log(`codec fuzz: ${total} inputs, 0 exceptions; outcomes ${JSON.stringify(summary)}`);
  assert.ok(total >= 100_000, `only ${total} inputs`);
  // The generators reach the deep checks, not only the framing ones.
  for (const reason of ['ok', 'bad_checksum', 'bad_length', 'bad_auth', 'auth_failed', 'addr_count_mismatch', 'interval_mismatch', 'bad_ttl', 'bad_ip_header', 'vrid_mismatch']) {
    assert.ok((tally.get(reason) ?? 0) > 0, `no input reached ${reason}: ${JSON.stringify(summary)}`);
  }
});
