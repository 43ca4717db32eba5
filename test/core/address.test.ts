import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parseIp, parsePrefix, parseEndpoint, formatIpv6, compareIp, bytesToIp } from '../../src/core/address.js';

test('IPv4 and IPv6 parse to canonical text and bytes', () => {
  assert.deepEqual(Array.from(parseIp('192.0.2.1')!.bytes), [192, 0, 2, 1]);
  assert.equal(parseIp('2001:DB8:0:0:0:0:0:1')!.text, '2001:db8::1');
  assert.equal(parseIp('::ffff:192.0.2.1')!.text, '::ffff:c000:201');
  assert.equal(parseIp('2001:db8:0:1:0:0:0:1')!.text, '2001:db8:0:1::1', 'RFC 5952: the longest zero run is compressed');
  assert.equal(parseIp('192.0.2.256'), undefined);
  assert.equal(parseIp('not-an-ip'), undefined);
});

test('prefixes and endpoints', () => {
  assert.equal(parsePrefix('192.0.2.10/24')!.prefixLen, 24);
  assert.equal(parsePrefix('192.0.2.10')!.prefixLen, 32);
  assert.equal(parsePrefix('2001:db8::1')!.prefixLen, 128);
  assert.equal(parsePrefix('192.0.2.10/33'), undefined);
  assert.equal(parsePrefix('192.0.2.10/x'), undefined);
  assert.equal(parseEndpoint('127.0.0.1:9650')!.port, 9650);
  assert.equal(parseEndpoint('[::1]:9650')!.address.text, '::1');
  assert.equal(parseEndpoint('::1:9650'), undefined, 'IPv6 endpoints need brackets');
  assert.equal(parseEndpoint('127.0.0.1:70000'), undefined);
});

test('IPv6 formatting round-trips through bytes (property)', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), (b) => {
      const text = formatIpv6(b);
      assert.deepEqual(Array.from(parseIp(text)!.bytes), Array.from(b));
      assert.equal(bytesToIp(b).text, text);
    }),
  );
});

test('address comparison is unsigned big-endian (VRRP tie-break)', () => {
  assert.equal(compareIp(parseIp('192.0.2.2')!.bytes, parseIp('192.0.2.10')!.bytes), -1);
  assert.equal(compareIp(parseIp('198.51.100.1')!.bytes, parseIp('192.0.2.200')!.bytes), 1);
  assert.equal(compareIp(parseIp('2001:db8::1')!.bytes, parseIp('2001:db8::1')!.bytes), 0);
});
