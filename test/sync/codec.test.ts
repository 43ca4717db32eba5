/**
 * The IPVS sync v1 codec against messages the lab kernel's master daemon sent (test/fixtures/sync/,
 * recorded by test/lab/support/sync-capture.ts; table.txt is the director's `ipvsadm -Lnc` at the
 * time), plus properties over generated records: encode∘decode is the identity, decode∘encode is
 * byte-equal, splitting respects the size budget, and every malformed buffer is a typed error.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import {
  ConnFlags,
  decodeMessage,
  encodeMessage,
  encodeMessages,
  encodeRecord,
  messageRecords,
  packRecords,
  joinMessages,
  messageLength,
  IPVS_OPT_F_PARAM,
  MESSAGE_HEADER_LEN,
  SyncDecodeError,
  recordFlags,
  recordAt,
  recordKey,
  recordLength,
  recordProtocol,
  recordState,
  recordTimeout,
  type SyncConn,
  type SyncMessage,
} from '../../src/sync/codec.js';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'test', 'fixtures', 'sync');
const captured = readdirSync(fixtures)
  .filter((f) => /^kernel-master-\d+\.bin$/.test(f))
  .sort()
  .map((f) => ({ name: f, bytes: readFileSync(join(fixtures, f)) }));

const ip4 = (s: string) => Uint8Array.from(s.split('.').map(Number));
const hex = (u: Uint8Array) => Buffer.from(u).toString('hex');

function decoded(b: Uint8Array): SyncMessage {
  const r = decodeMessage(b);
  if (!r.ok) assert.fail(`${r.error.code}: ${r.error.message}`);
  return r.message;
}

test('messages captured from the kernel master daemon decode and re-encode byte-equal', () => {
  assert.ok(captured.length >= 2, 'fixtures present');
  for (const { name, bytes } of captured) {
    const m = decoded(bytes);
    assert.equal(m.syncid, 7, name);
    assert.ok(m.conns.length > 0, name);
    assert.deepEqual(encodeMessage(m), bytes, `${name} re-encodes byte-equal`);
  }
});

test('captured records hold what ipvsadm -Lnc showed on the director (table.txt)', () => {
  const all = captured.flatMap((c) => decoded(c.bytes).conns);
  const client = hex(ip4('192.0.2.50'));
  // Plain TCP through a DR service: forwarding DROUTE, ESTABLISHED (1), 900 s timeout.
  const tcp = all.find((c) => c.family === 4 && c.protocol === 6 && c.vport === 80 && c.state === 1 && !(c.flags & ConnFlags.TEMPLATE));
  assert.ok(tcp);
  assert.equal(hex(tcp.caddr), client);
  assert.equal(hex(tcp.vaddr), hex(ip4('192.0.2.100')));
  assert.equal(hex(tcp.daddr), hex(ip4('192.0.2.11')));
  assert.equal(tcp.flags & ConnFlags.FWD_MASK, ConnFlags.DROUTE);
  assert.equal(tcp.timeout, 900);
  // Persistence template of the -p 60 service: TEMPLATE flag, client port 0, the persistence timeout.
  const tpl = all.find((c) => c.flags & ConnFlags.TEMPLATE);
  assert.ok(tpl);
  assert.equal(tpl.cport, 0);
  assert.equal(tpl.vport, 81);
  assert.equal(tpl.timeout, 60);
  // The fwmark service's connection carries the mark.
  assert.ok(all.some((c) => c.fwmark === 5 && c.vport === 82 && hex(c.vaddr) === hex(ip4('192.0.2.101'))));
  // IPv6: a 72-byte record.
  const v6 = all.find((c) => c.family === 6);
  assert.ok(v6);
  assert.equal(hex(v6.caddr), '20010db8000000000000000000000050');
  // UDP (protocol 17) with the UDP timeout (300 s).
  assert.ok(all.some((c) => c.protocol === 17 && c.vport === 53 && c.timeout === 300));
  // The closing half: FIN_WAIT (4) with its 120 s timeout, sent at once as a state change.
  assert.ok(all.some((c) => c.state === 4 && c.timeout === 120));
});

// ---- generators ------------------------------------------------------------------------------------

const seqInfo = fc.record({ initSeq: fc.nat({ max: 0xffffffff }), delta: fc.nat({ max: 0xffffffff }), previousDelta: fc.nat({ max: 0xffffffff }) });
const u16 = fc.nat({ max: 0xffff });
const u32 = fc.nat({ max: 0xffffffff });

const conn: fc.Arbitrary<SyncConn> = fc.constantFrom<4 | 6>(4, 6).chain((family) => {
  const addr = fc.uint8Array({ minLength: family === 4 ? 4 : 16, maxLength: family === 4 ? 4 : 16 });
  return fc
    .record(
      {
        protocol: fc.nat({ max: 255 }),
        flags: u32,
        state: u16,
        cport: u16,
        vport: u16,
        dport: u16,
        fwmark: u32,
        timeout: u32,
        caddr: addr,
        vaddr: addr,
        daddr: addr,
        seq: fc.record({ in: seqInfo, out: seqInfo }),
        pe: fc.record({ data: fc.uint8Array({ minLength: 1, maxLength: 64 }), name: fc.option(fc.string({ minLength: 1, maxLength: 16, unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz') }), { nil: undefined }) }),
        extra: fc.array(fc.record({ type: fc.integer({ min: 0, max: 255 }).map((t) => t | IPVS_OPT_F_PARAM), data: fc.uint8Array({ minLength: 1, maxLength: 40 }) }), { maxLength: 2 }),
      },
      { requiredKeys: ['protocol', 'flags', 'state', 'cport', 'vport', 'dport', 'fwmark', 'timeout', 'caddr', 'vaddr', 'daddr'] },
    )
    .map(({ pe, extra, ...c }) => ({
      family,
      ...c,
      ...(pe ? { peData: pe.data, ...(pe.name !== undefined ? { peName: pe.name } : {}) } : {}),
      ...(extra && extra.length ? { extra: extra.map((o) => ({ type: o.type, data: o.data })) } : {}),
    }));
});

const message = fc.record({ syncid: fc.nat({ max: 255 }), conns: fc.array(conn, { maxLength: 12 }) });

/** fast-check builds records without a prototype; compare structure only. */
const plain = <T>(x: T): T => structuredClone(x);
/** Where each record of an accepted message starts. */
function starts(b: Uint8Array): number[] {
  const spans: number[] = [];
  assert.ok(messageRecords(b, spans));
  return spans.filter((_, i) => i % 2 === 0);
}

// ---- properties ------------------------------------------------------------------------------------

test('property: decode(encode(m)) = m, and encode(decode(b)) = b', () => {
  fc.assert(
    fc.property(message, (m) => {
      const b = encodeMessage(m);
      assert.equal(b.length, messageLength(m.conns));
      const d = decoded(b);
      assert.deepEqual(d, plain(m));
      assert.deepEqual(encodeMessage(d), b);
    }),
    { numRuns: 100 },
  );
});

test('property: encodeMessages splits within the byte budget and 255 records, keeping every record in order', () => {
  fc.assert(
    fc.property(fc.array(conn, { maxLength: 300 }), fc.integer({ min: 400, max: 9000 }), (conns, maxLen) => {
      const msgs = encodeMessages(3, conns, maxLen);
      const back: SyncConn[] = [];
      for (const b of msgs) {
        assert.ok(b.length <= maxLen, `${b.length} > ${maxLen}`);
        const m = decoded(b);
        assert.ok(m.conns.length >= 1 && m.conns.length <= 255);
        back.push(...m.conns);
      }
      assert.deepEqual(back, plain(conns));
    }),
    { numRuns: 25 },
  );
});

test('property: the messages are views of one buffer, each behind its own zeroed prefix, byte-equal to encodeMessage of its records', () => {
  fc.assert(
    fc.property(fc.array(conn, { minLength: 1, maxLength: 300 }), fc.integer({ min: 400, max: 9000 }), fc.integer({ min: 0, max: 16 }), (conns, maxLen, prefix) => {
      const views = encodeMessages(3, conns, maxLen, prefix);
      assert.ok(views.every((v) => v.buffer === views[0]!.buffer), 'one buffer: the table worker transfers it whole');
      let i = 0;
      for (const v of views) {
        assert.ok(v.subarray(0, prefix).every((x) => x === 0));
        const m = decoded(v.subarray(prefix));
        assert.deepEqual(v.subarray(prefix), encodeMessage({ syncid: 3, conns: conns.slice(i, i + m.conns.length) }));
        i += m.conns.length;
      }
      assert.equal(i, conns.length);
    }),
    { numRuns: 25 },
  );
});

test('property: joined messages are byte-equal to one message of all their records (the hand-over to the kernel joins waiting messages)', () => {
  fc.assert(
    fc.property(fc.array(conn, { maxLength: 100 }), fc.integer({ min: 400, max: 2000 }), (conns, maxLen) => {
      const parts = encodeMessages(7, conns, maxLen);
      if (!parts.length) return;
      assert.deepEqual(joinMessages(parts), encodeMessage({ syncid: 7, conns }));
    }),
    { numRuns: 50 },
  );
  assert.throws(() => joinMessages([encodeMessage({ syncid: 1, conns: [] }), ...encodeMessages(1, Array(256).fill(null).map(() => fc.sample(conn, 1)[0]!), 9000)]), RangeError, 'more than 255 records');
});

test('property: messageRecords accepts exactly what decodeMessage accepts (one walker), and its spans, record fields and recordAt are the decoded records', () => {
  fc.assert(
    fc.property(message, fc.array(fc.tuple(fc.nat(), fc.nat({ max: 255 })), { maxLength: 4 }), (m, flips) => {
      const b = Buffer.from(encodeMessage(m));
      for (const [at, v] of flips) b[at % b.length] = v;
      const d = decodeMessage(b);
      const spans: number[] = [];
      assert.equal(messageRecords(b, spans), d.ok);
      if (!d.ok) return;
      assert.equal(spans.length, 2 * d.message.conns.length);
      d.message.conns.forEach((c, i) => {
        const p = spans[2 * i]!;
        assert.equal(spans[2 * i + 1]! - p, recordLength(c), 'a span is the record, unpadded');
        assert.deepEqual([recordProtocol(b, p), recordFlags(b, p), recordState(b, p), recordTimeout(b, p)], [c.protocol, c.flags, c.state, c.timeout]);
        assert.deepEqual(plain(recordAt(b, p)), plain(c));
      });
    }),
    { numRuns: 150 },
  );
});

test('property: recordKey is the connection\'s identity (protocol, template flag, client and virtual endpoints), whatever else the record says', () => {
  const identity = (c: SyncConn) => JSON.stringify([c.family, c.protocol, (c.flags & ConnFlags.TEMPLATE) !== 0, hex(c.caddr), c.cport, hex(c.vaddr), c.vport]);
  fc.assert(
    fc.property(fc.array(conn, { minLength: 2, maxLength: 12 }), (conns) => {
      const b = encodeMessage({ syncid: 1, conns });
      const keys = starts(b).map((p) => recordKey(b, p));
      for (let i = 0; i < conns.length; i++)
        for (let j = 0; j < conns.length; j++) assert.equal(keys[i] === keys[j], identity(conns[i]!) === identity(conns[j]!), `records ${i}, ${j}`);
      // The same connection in another state, with another timeout, destination and options: the same key.
      const moved = conns.map((c) => ({ ...c, state: (c.state + 1) & 0xffff, timeout: 7, dport: (c.dport + 1) & 0xffff, daddr: c.daddr.map((x) => x ^ 1), flags: (c.flags ^ ConnFlags.NOOUTPUT) >>> 0, seq: undefined, peData: undefined, peName: undefined, extra: undefined }));
      const b2 = encodeMessage({ syncid: 2, conns: moved });
      assert.deepEqual(starts(b2).map((p) => recordKey(b2, p)), keys);
      // A template and its connection differ only by the flag: other keys.
      const b3 = encodeMessage({ syncid: 1, conns: conns.map((c) => ({ ...c, flags: (c.flags ^ ConnFlags.TEMPLATE) >>> 0 })) });
      starts(b3).forEach((p, i) => assert.notEqual(recordKey(b3, p), keys[i]));
    }),
    { numRuns: 100 },
  );
});

test('property: every mutated or truncated message is decoded or rejected with a typed error, never a throw', () => {
  fc.assert(
    fc.property(message, fc.array(fc.tuple(fc.nat(), fc.nat({ max: 255 })), { maxLength: 6 }), fc.nat(), (m, flips, cut) => {
      const b = Buffer.from(encodeMessage(m));
      for (const [at, v] of flips) b[at % b.length] = v;
      for (const buf of [b, b.subarray(0, cut % (b.length + 1))]) {
        const r = decodeMessage(buf);
        if (r.ok) assert.deepEqual(encodeMessage(r.message), Buffer.from(buf), 'anything accepted re-encodes byte-equal');
        else {
          assert.ok(r.error instanceof SyncDecodeError);
          assert.ok(r.error.offset >= 0 && r.error.offset <= buf.length);
        }
      }
    }),
    { numRuns: 150 },
  );
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 600 }), (b) => {
      const r = decodeMessage(b);
      if (!r.ok) assert.ok(r.error instanceof SyncDecodeError);
    }),
    { numRuns: 300 },
  );
});

test('the kernel acceptance rules: record version bits, size field, header, options', () => {
  const c: SyncConn = { family: 4, protocol: 6, flags: ConnFlags.DROUTE, state: 1, cport: 40000, vport: 80, dport: 80, fwmark: 0, timeout: 0, caddr: ip4('192.0.2.50'), vaddr: ip4('192.0.2.100'), daddr: ip4('192.0.2.11') };
  const good = encodeMessage({ syncid: 1, conns: [c] });
  assert.equal(good.length, MESSAGE_HEADER_LEN + 36);
  assert.equal(good.readUInt16BE(MESSAGE_HEADER_LEN + 2), 36, 'ver_size: version 0, size 36');
  const bad = (mut: (b: Buffer) => void, code: string) => {
    const b = Buffer.from(good);
    mut(b);
    const r = decodeMessage(b);
    assert.equal(r.ok, false);
    if (!r.ok) assert.equal(r.error.code, code);
  };
  bad((b) => b.writeUInt16BE(0x1000 | 36, MESSAGE_HEADER_LEN + 2), 'RECORD_VERSION'); // the kernel: "Unknown version 1"
  bad((b) => b.writeUInt16BE(43, 2), 'SIZE_MISMATCH');
  bad((b) => (b[5] = 0), 'NOT_V1');
  bad((b) => (b[0] = 1), 'NOT_V1');
  bad((b) => (b[MESSAGE_HEADER_LEN] = 2), 'RECORD_TYPE');
  bad((b) => (b[4] = 2), 'TRUNCATED_RECORD');
  bad((b) => b.writeUInt16BE(30, MESSAGE_HEADER_LEN + 2), 'RECORD_LENGTH');
  assert.equal(decodeMessage(good.subarray(0, 5)).ok, false);
  // A mandatory option the codec does not know (type 5 without the 0x40 bit) is refused, as the kernel does.
  const withOpt = Buffer.concat([good, Buffer.from([5, 2, 0xaa, 0xbb])]);
  withOpt.writeUInt16BE(withOpt.length, 2);
  withOpt.writeUInt16BE(40, MESSAGE_HEADER_LEN + 2);
  const r = decodeMessage(withOpt);
  assert.equal(r.ok, false);
  if (!r.ok) assert.equal(r.error.code, 'UNKNOWN_MANDATORY_OPTION');
  // Sequence option with persistence data and engine name: lengths as the kernel computes them.
  const full: SyncConn = { ...c, flags: c.flags | ConnFlags.IN_SEQ, seq: { in: { initSeq: 1, delta: 2, previousDelta: 3 }, out: { initSeq: 4, delta: 5, previousDelta: 6 } }, peData: Uint8Array.from([1, 2, 3]), peName: 'sip' };
  const two = encodeMessage({ syncid: 1, conns: [full, c] });
  assert.equal(two.readUInt16BE(MESSAGE_HEADER_LEN + 2), 36 + 26 + 5 + 5);
  assert.equal(two.length, MESSAGE_HEADER_LEN + 72 + 36, 'the second record starts at the next 4-byte boundary');
  assert.deepEqual(decoded(two).conns, [full, c]);
});

test('property: messageRecords finds the records of every message encodeMessage writes, as packRecords packs them', () => {
  fc.assert(
    fc.property(fc.array(conn, { minLength: 0, maxLength: 20 }), (conns) => {
      const b = encodeMessage({ syncid: 9, conns });
      const spans: number[] = [];
      assert.ok(messageRecords(b, spans));
      assert.equal(spans.length, 2 * conns.length);
      const recs = conns.map(encodeRecord);
      for (let i = 0; i < conns.length; i++) assert.deepEqual(Buffer.from(b.subarray(spans[2 * i]!, spans[2 * i + 1]!)), Buffer.from(recs[i]!));
      assert.deepEqual(packRecords(9, recs, 0xffff).map((m) => Buffer.from(m)), conns.length ? [b] : []);
    }),
    { numRuns: 200 },
  );
});

test('messageRecords refuses what is not a v1 message by its framing', () => {
  const c = fc.sample(conn, 1)[0]!;
  const good = encodeMessage({ syncid: 1, conns: [c, c] });
  const spans: number[] = [];
  const bad = (f: (b: Buffer) => Buffer, why: string) => {
    const b = f(Buffer.from(good));
    assert.equal(messageRecords(b, spans), false, why);
    assert.equal(decodeMessage(b).ok, false, `${why}: decodeMessage refuses it too`);
  };
  bad((b) => b.subarray(0, 7), 'shorter than the header');
  bad((b) => b.subarray(0, b.length - 1), 'size field not the datagram length');
  bad((b) => ((b[5] = 2), b), 'version 2');
  bad((b) => ((b[4] = 3), b), 'more records than the datagram holds');
  bad((b) => ((b[8] = 7), b), 'unknown record type');
  bad((b) => ((b[10] = 0x10), b), 'record version 1');
  bad((b) => Buffer.concat([b.subarray(0, 2), Buffer.from([(b.length + 4) >> 8, (b.length + 4) & 255]), b.subarray(4), Buffer.alloc(4)]), 'bytes after the last record');
});
