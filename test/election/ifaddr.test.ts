/**
 * encodeIfAddr (the prebuilt RTM_NEWADDR body lvsd sends at a takeover) against the netlink
 * package's generic encoder: same bytes for IPv4 with and without a label and for IPv6 (nodad).
 * The namespace tests (test/election-net/vips.test.ts, failover.test.ts) prove the kernel accepts it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { rt, AttrStream } from 'netlink';
import { encodeIfAddr } from '../../src/election/vips.js';

function library(family: 4 | 6, prefixlen: number, scope: number, index: number, address: Uint8Array, label?: string): Buffer {
  const out = new AttrStream();
  const b = Buffer.from(address);
  rt.formatAddressMessage(
    {
      kind: 'address',
      data: { family: family === 4 ? 2 : 10, prefixlen, scope, index, ...(family === 6 ? { flags: { nodad: true } } : {}) },
      attrs: { address: b, ...(family === 4 ? { local: b } : {}), ...(label ? { label } : {}) },
    },
    out,
  );
  return Buffer.concat(out.bufs);
}

/** Same bytes; ours also pads the last attribute to 4 bytes (NLA_ALIGN), which the library leaves to the header. */
function same(mine: Buffer, lib: Buffer): void {
  assert.deepEqual(mine.subarray(0, lib.length), lib);
  assert.ok(mine.length - lib.length < 4 && mine.subarray(lib.length).every((x) => x === 0), 'only zero padding added');
  assert.equal(mine.length % 4, 0);
}

test('encodeIfAddr matches the netlink package byte for byte up to padding (IPv4, IPv4 + label, IPv6 nodad)', () => {
  const v4 = Uint8Array.from([192, 0, 2, 42]);
  const v6 = Uint8Array.from([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x42]);
  same(encodeIfAddr({ family: 4, prefixLen: 24, scope: 0, index: 7, address: v4 }), library(4, 24, 0, 7, v4));
  same(encodeIfAddr({ family: 4, prefixLen: 32, scope: 253, index: 2, address: v4, label: 'eth0:vip' }), library(4, 32, 253, 2, v4, 'eth0:vip'));
  same(encodeIfAddr({ family: 6, prefixLen: 64, scope: 0, index: 3, address: v6, nodad: true }), library(6, 64, 0, 3, v6));
});

test('property: encodeIfAddr equals the library encoder for any address, prefix, scope, index and label', () => {
  fc.assert(
    fc.property(
      fc.boolean(),
      fc.uint8Array({ minLength: 16, maxLength: 16 }),
      fc.integer({ min: 0, max: 128 }),
      fc.constantFrom(0, 200, 253, 254),
      fc.integer({ min: 1, max: 2 ** 31 - 1 }),
      fc.option(fc.stringMatching(/^[a-z0-9:]{1,15}$/), { nil: undefined }),
      (v4, bytes, plen, scope, index, label) => {
        const address = v4 ? bytes.slice(0, 4) : bytes;
        const prefixLen = v4 ? plen % 33 : plen;
        const lab = v4 ? label : undefined;
        const mine = encodeIfAddr({ family: v4 ? 4 : 6, prefixLen, scope, index, address, ...(lab ? { label: lab } : {}), nodad: !v4 });
        same(mine, library(v4 ? 4 : 6, prefixLen, scope, index, address, lab));
      },
    ),
    { numRuns: 300 },
  );
});
