/**
 * Cross-check of the encoder against an independent implementation: tshark's VRRP dissector.
 * Random adverts (v2, v3/IPv4 multicast and unicast, v3/IPv6) are written to a pcap file
 * (LINKTYPE_RAW, with real IPv4/IPv6 headers) and tshark must read back the same fields and call
 * every checksum good (it verifies the v3 pseudo-header checksum). One tshark run, ~1 s.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { encodeAdvert, VRRP_PROTOCOL, type Advert } from '../../src/election/codec.js';
import { bytesToIp } from '../../src/core/address.js';

const haveTshark = spawnSync('tshark', ['--version'], { stdio: 'ignore' }).status === 0;

function ipv4Header(src: Uint8Array, dst: Uint8Array, payloadLen: number, id: number): Uint8Array {
  const h = new Uint8Array(20);
  const len = 20 + payloadLen;
  h.set([0x45, 0xc0, len >> 8, len & 0xff, id >> 8, id & 0xff, 0, 0, 255, VRRP_PROTOCOL, 0, 0]);
  h.set(src, 12);
  h.set(dst, 16);
  let s = 0;
  for (let i = 0; i < 20; i += 2) s += (h[i]! << 8) | h[i + 1]!;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  const ck = ~s & 0xffff;
  h[10] = ck >> 8;
  h[11] = ck & 0xff;
  return h;
}

function ipv6Header(src: Uint8Array, dst: Uint8Array, payloadLen: number): Uint8Array {
  const h = new Uint8Array(40);
  // version 6, traffic class 0xc0 (CS6), flow label 0
  h.set([0x6c, 0x00, 0, 0, payloadLen >> 8, payloadLen & 0xff, VRRP_PROTOCOL, 255]);
  h.set(src, 8);
  h.set(dst, 24);
  return h;
}

function pcap(packets: Uint8Array[]): Uint8Array {
  const parts: Uint8Array[] = [];
  const g = Buffer.alloc(24);
  g.writeUInt32LE(0xa1b2c3d4, 0);
  g.writeUInt16LE(2, 4);
  g.writeUInt16LE(4, 6);
  g.writeUInt32LE(65535, 16);
  g.writeUInt32LE(101, 20); // LINKTYPE_RAW: packets start with the IP header (v4 or v6)
  parts.push(g);
  packets.forEach((p, i) => {
    const r = Buffer.alloc(16);
    r.writeUInt32LE(1_700_000_000 + i, 0);
    r.writeUInt32LE(p.length, 8);
    r.writeUInt32LE(p.length, 12);
    parts.push(r, p);
  });
  return Buffer.concat(parts);
}

interface Case { advert: Advert; src: Uint8Array; dst: Uint8Array; family: 4 | 6 }

const bytes = (n: number) => fc.uint8Array({ minLength: n, maxLength: n });
const caseArb: fc.Arbitrary<Case> = fc.oneof(
  fc.record({
    version: fc.constantFrom(2 as const, 3 as const),
    vrid: fc.integer({ min: 1, max: 255 }),
    priority: fc.integer({ min: 0, max: 255 }),
    units: fc.integer({ min: 1, max: 255 }),
    addresses: fc.array(bytes(4), { minLength: 1, maxLength: 6 }),
    src: fc.constantFrom('192.0.2.1', '198.51.100.7', '203.0.113.254'),
    dst: fc.constantFrom('224.0.0.18', '192.0.2.2'),
  }).map((r) => ({
    family: 4 as const,
    src: Uint8Array.from(r.src.split('.').map(Number)),
    dst: Uint8Array.from(r.dst.split('.').map(Number)),
    advert: { version: r.version, vrid: r.vrid, priority: r.priority, intervalMs: r.version === 2 ? r.units * 1000 : r.units * 10, addresses: r.addresses },
  })),
  fc.record({
    vrid: fc.integer({ min: 1, max: 255 }),
    priority: fc.integer({ min: 0, max: 255 }),
    units: fc.integer({ min: 1, max: 4095 }),
    addresses: fc.array(bytes(16), { minLength: 1, maxLength: 4 }),
    iid: bytes(8),
  }).map((r) => ({
    family: 6 as const,
    src: Uint8Array.from([0xfe, 0x80, 0, 0, 0, 0, 0, 0, ...r.iid]),
    dst: Uint8Array.from([0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x12]),
    advert: { version: 3 as const, vrid: r.vrid, priority: r.priority, intervalMs: r.units * 10, addresses: r.addresses },
  })),
);

test('tshark decodes our adverts to the same fields and finds every checksum good', { skip: haveTshark ? false : 'tshark not installed' }, () => {
  const cases = fc.sample(caseArb, { numRuns: 120, seed: 4242 });
  const pkts = cases.map((c, i) => {
    const v = encodeAdvert(c.advert, { srcAddr: c.src, dstAddr: c.dst });
    const h = c.family === 4 ? ipv4Header(c.src, c.dst, v.length, i) : ipv6Header(c.src, c.dst, v.length);
    return Uint8Array.from([...h, ...v]);
  });
  const dir = mkdtempSync(join(tmpdir(), 'lvsd-vrrp-'));
  try {
    const file = join(dir, 'adverts.pcap');
    writeFileSync(file, pcap(pkts));
    const fields = ['vrrp.version', 'vrrp.virt_rtr_id', 'vrrp.prio', 'vrrp.addr_count', 'vrrp.adver_int', 'vrrp.short_adver_int', 'vrrp.checksum.status', 'vrrp.ip_addr', 'vrrp.ipv6_addr'];
    const r = spawnSync('tshark', ['-n', '-r', file, '-o', 'vrrp.v3_checksum_as_in_v2:FALSE', '-T', 'fields', '-E', 'separator=|', '-E', 'aggregator=,', ...fields.flatMap((f) => ['-e', f])], { encoding: 'utf8', timeout: 60_000 });
    // Older tsharks may not know the preference: retry without it.
    const out = r.status === 0 ? r.stdout : spawnSync('tshark', ['-n', '-r', file, '-T', 'fields', '-E', 'separator=|', '-E', 'aggregator=,', ...fields.flatMap((f) => ['-e', f])], { encoding: 'utf8', timeout: 60_000 }).stdout;
    const lines = out.trim().split('\n');
    assert.equal(lines.length, cases.length, `tshark printed ${lines.length} lines for ${cases.length} packets`);
    lines.forEach((line, i) => {
      const c = cases[i]!;
      const [ver, vrid, prio, count, adv2, adv3, ck, a4, a6] = line.split('|');
      const where = `packet ${i} ${JSON.stringify({ ...c.advert, addresses: c.advert.addresses.length })}`;
      assert.equal(Number(ver), c.advert.version, where);
      assert.equal(Number(vrid), c.advert.vrid, where);
      assert.equal(Number(prio), c.advert.priority, where);
      assert.equal(Number(count), c.advert.addresses.length, where);
      if (c.advert.version === 2) assert.equal(Number(adv2), c.advert.intervalMs / 1000, where);
      else assert.equal(Number(adv3), c.advert.intervalMs / 10, where);
      assert.equal(ck, '1', `${where}: tshark says checksum status ${ck} (1 = good)`);
      const want = c.advert.addresses.map((a) => bytesToIp(a).text).join(',');
      assert.equal(c.family === 4 ? a4 : a6, want, where);
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
