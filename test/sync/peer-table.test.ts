/**
 * The peer's connections as the receiver keeps them (src/sync/peer-table.ts): against a model (a Map
 * by codec's recordKey of the latest record and its expiry), over random messages that repeat,
 * move and expire connections, with enough records to make the table grow and rehash.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ConnFlags, encodeMessage, messageRecords, recordAt, recordKey, type SyncConn } from '../../src/sync/codec.js';
import { PeerTable } from '../../src/sync/peer-table.js';
import { peerTimeoutSeconds } from '../../src/sync/show.js';

/** Few distinct identities (so records replace each other), any state, timeout and destination. */
const conn: fc.Arbitrary<SyncConn> = fc.constantFrom<4 | 6>(4, 6).chain((family) => {
  const alen = family === 4 ? 4 : 16;
  const addr = fc.nat({ max: 3 }).map((n) => Uint8Array.from({ length: alen }, (_, i) => (i === alen - 1 ? n : 0xc0)));
  return fc.record({
    family: fc.constant(family),
    protocol: fc.constantFrom(6, 17, 132),
    flags: fc.constantFrom(ConnFlags.DROUTE, ConnFlags.DROUTE | ConnFlags.TEMPLATE, ConnFlags.MASQ),
    state: fc.nat({ max: 12 }),
    cport: fc.nat({ max: 2 }),
    vport: fc.constantFrom(80, 443),
    dport: fc.nat({ max: 0xffff }),
    fwmark: fc.constant(0),
    timeout: fc.constantFrom(0, 0, 5, 60, 900),
    caddr: addr,
    vaddr: addr,
    daddr: addr,
  });
});

const step = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('add' as const), conns: fc.array(conn, { minLength: 1, maxLength: 40 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('expire' as const), conns: fc.constant([] as SyncConn[]) }) },
);

test('property: the table holds the latest record of each connection until its timeout, as a Map by recordKey would', () => {
  fc.assert(
    fc.property(fc.array(step, { maxLength: 80 }), (steps) => {
      const t = new PeerTable();
      const model = new Map<string, { conn: SyncConn; until: number }>();
      let now = 0;
      for (const s of steps) {
        now += 7_000; // 7 s a step: 5 s timeouts and 2 s defaults expire, others stay
        if (s.kind === 'expire') {
          t.expire(now);
          for (const [k, v] of model) if (v.until < now) model.delete(k);
        } else {
          const b = encodeMessage({ syncid: 1, conns: s.conns });
          const spans: number[] = [];
          assert.ok(messageRecords(b, spans));
          t.add(b, spans, now);
          for (let i = 0; i < spans.length; i += 2) model.set(recordKey(b, spans[i]!), { conn: s.conns[i / 2]!, until: now + peerTimeoutSeconds(s.conns[i / 2]!) * 1000 });
        }
        assert.equal(t.size, model.size);
        const got = new Map([...t.entries()].map((e) => [recordKey(e.msg, e.off), { conn: structuredClone(recordAt(e.msg, e.off)), until: e.until }]));
        assert.equal(got.size, model.size, 'one entry per connection');
        assert.deepEqual(got, new Map([...model].map(([k, v]) => [k, { conn: structuredClone(v.conn), until: v.until }])));
      }
    }),
    { numRuns: 150 },
  );
});

test('100,000 distinct connections: all held, then all expired, and held again', () => {
  const t = new PeerTable();
  const conns = (from: number, n: number): SyncConn[] =>
    Array.from({ length: n }, (_, i) => ({ family: 4, protocol: 6, flags: ConnFlags.DROUTE, state: 1, cport: (from + i) & 0xffff, vport: 80, dport: 80, fwmark: 0, timeout: 0, caddr: Uint8Array.from([198, 51, (from + i) >> 16, ((from + i) >> 8) & 0xff]), vaddr: Uint8Array.from([192, 0, 2, 100]), daddr: Uint8Array.from([192, 0, 2, 11]) }));
  const fill = (now: number) => {
    for (let i = 0; i < 100_000; i += 38) {
      const b = encodeMessage({ syncid: 1, conns: conns(i, Math.min(38, 100_000 - i)) });
      const spans: number[] = [];
      assert.ok(messageRecords(b, spans));
      t.add(b, spans, now);
    }
  };
  fill(0);
  assert.equal(t.size, 100_000);
  fill(1000); // the same connections again: replaced, not added
  assert.equal(t.size, 100_000);
  t.expire(1000 + 901_000); // ESTABLISHED: 900 s
  assert.equal(t.size, 0);
  fill(2_000_000);
  assert.equal(t.size, 100_000);
});
