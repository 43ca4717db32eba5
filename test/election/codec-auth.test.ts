/**
 * VRRPv2 simple-password authentication (RFC 2338 §5.3.6.2) against keepalived's own bytes: the
 * captured adverts of test/fixtures/vrrp/keepalived-v2-auth-pass.json decode with the right password,
 * fail with `auth_failed` with another one, with `bad_auth` without authentication configured; what
 * lvsd encodes with the password is byte-identical to keepalived's advert.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { authKey, decodeAdvert, encodeAdvert, fromHex, toHex, type DecodeContext } from '../../src/election/codec.js';
import { parseIp } from '../../src/core/address.js';

interface Packet {
  name: string;
  src: string;
  dst: string;
  ttl: number;
  vrrp: string;
  expect: { version: 2; vrid: number; priority: number; intervalMs: number; addresses: string[] };
}
const fixture = JSON.parse(readFileSync(new URL('../../../test/fixtures/vrrp/keepalived-v2-auth-pass.json', import.meta.url), 'utf8')) as { password: string; packets: Packet[] };
const ip = (s: string) => parseIp(s)!.bytes;

function ctx(p: Packet, password?: string): DecodeContext {
  return {
    family: 4,
    srcAddr: ip(p.src),
    dstAddr: ip(p.dst),
    ttl: p.ttl,
    expect: { vrid: p.expect.vrid, version: 2, addrCount: p.expect.addresses.length, v2IntervalMs: p.expect.intervalMs, ...(password !== undefined ? { auth: { type: 'pass' as const, key: authKey(password) } } : {}) },
  };
}

for (const p of fixture.packets) {
  test(`keepalived PASS advert "${p.name}": right password decodes, wrong one is auth_failed, none is bad_auth`, () => {
    const bytes = fromHex(p.vrrp);
    const ok = decodeAdvert(bytes, ctx(p, fixture.password));
    assert.ok(ok.ok, ok.ok ? '' : ok.reason);
    assert.equal(ok.advert.priority, p.expect.priority);
    assert.deepEqual(decodeAdvert(bytes, ctx(p, 's3creT')), { ok: false, reason: 'auth_failed' });
    assert.deepEqual(decodeAdvert(bytes, ctx(p, `${fixture.password}x`)), { ok: false, reason: 'auth_failed' });
    assert.deepEqual(decodeAdvert(bytes, ctx(p)), { ok: false, reason: 'bad_auth' });
    // An AH instance does not take a PASS advert either (keepalived: authtype_mismatch).
    const ah = { ...ctx(p), expect: { ...ctx(p).expect, auth: { type: 'ah' as const, key: authKey(fixture.password) } } };
    assert.deepEqual(decodeAdvert(bytes, ah), { ok: false, reason: 'bad_auth' });
    // lvsd's advert with the same fields and password is keepalived's, byte for byte.
    const mine = encodeAdvert(ok.advert, { srcAddr: ip(p.src), dstAddr: ip(p.dst), auth: { type: 'pass', key: authKey(fixture.password) } });
    assert.equal(toHex(mine), p.vrrp);
  });
}

test('a PASS instance drops an unauthenticated advert (bad_auth), and a password is cut to 8 bytes like keepalived', () => {
  const p = fixture.packets[0]!;
  const plain = encodeAdvert({ version: 2, vrid: p.expect.vrid, priority: 100, intervalMs: 1000, addresses: [ip('192.0.2.50')] }, { srcAddr: ip(p.src), dstAddr: ip(p.dst) });
  assert.deepEqual(decodeAdvert(plain, ctx(p, fixture.password)), { ok: false, reason: 'bad_auth' });
  assert.equal(toHex(authKey('0123456789')), toHex(new TextEncoder().encode('01234567')));
  assert.equal(toHex(authKey('ab')), '6162000000000000');
});
