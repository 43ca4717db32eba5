/**
 * Reading the kernel's connection table (/proc/net/ip_vs_conn, format of ip_vs_conn_seq_show in
 * Linux 6.1) and deciding what the peer must hear: the records built from it carry the flags the
 * kernel's own master daemon sent for the same connections (test/fixtures/sync: 0x83 ESTABLISHED DR,
 * 0x183 FIN_WAIT / UDP, 0x1183 template).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseConnTable, diffTable as diffWith, toSyncConn, connKey, recordConnKey, ConnTableParser, TableDiff, mergeStream, sentRecords, forgotten, type ConnEntry, type SentState } from '../../src/sync/conntable.js';
import { recordState } from '../../src/sync/codec.js';
import { decodeMessage, encodeRecord, messageRecords } from '../../src/sync/codec.js';
import { serviceLookup } from '../../src/sync/lookup.js';
import { parseConfigText } from '../../src/config/load.js';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'test', 'fixtures', 'sync');

// The connections of test/fixtures/sync/table.txt, as /proc/net/ip_vs_conn prints them.
const PROC = `Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData
TCP C0000232 B67C C0000264 0050 C000020B 0050 ESTABLISHED     898
TCP C0000232 0000 C0000264 0051 C000020B 0051 ASSURED          58
TCP C0000232 9692 C0000264 0051 C000020B 0051 FIN_WAIT        115
UDP C0000232 B1B8 C0000264 0035 C000020B 0035 UDP             298
TCP 2001:0db8:0000:0000:0000:0000:0000:0050 87D4 2001:0db8:0000:0000:0000:0000:0000:0100 0050 2001:0db8:0000:0000:0000:0000:0000:0011 0050 ESTABLISHED     898
TCP C0000232 EBA2 C0000265 0052 C000020B 0052 ESTABLISHED     898
garbage line
`;

const cfg = parseConfigText(
  `virtual_servers:
  - { address: 192.0.2.100, port: 80, forwarding: dr, real_servers: [{ address: 192.0.2.11 }] }
  - { address: 192.0.2.100, port: 81, forwarding: dr, persistence: { timeout: 60 }, real_servers: [{ address: 192.0.2.11 }] }
  - { address: 192.0.2.100, port: 53, protocol: udp, forwarding: dr, real_servers: [{ address: 192.0.2.11 }] }
  - { address: "2001:db8::100", port: 80, forwarding: dr, real_servers: [{ address: "2001:db8::11" }] }
  - { fwmark: 5, forwarding: dr, real_servers: [{ address: 192.0.2.11 }] }
`,
  'c.yaml',
  { hostname: 'test' },
).config;

test('parses IPv4 and IPv6 lines, templates by client port 0, and skips lines it cannot read', () => {
  const { entries, skipped } = parseConnTable(PROC);
  assert.equal(entries.length, 6);
  assert.equal(skipped, 1);
  const [est, tpl, fin, udp, v6, mark] = entries;
  assert.deepEqual([est!.protocol, est!.cport, est!.vport, est!.state, est!.expires], [6, 46716, 80, 1, 898]);
  assert.ok(tpl!.template);
  assert.equal(tpl!.state, 1, 'ASSURED');
  assert.equal(fin!.state, 4);
  assert.equal(udp!.protocol, 17);
  assert.equal(v6!.family, 6);
  assert.equal(Buffer.from(v6!.caddr).toString('hex'), '20010db8000000000000000000000050');
  assert.equal(mark!.vport, 82);
});

test('records carry the flags, fwmark and timeouts the kernel master daemon sent for the same connections', () => {
  const lookup = serviceLookup(cfg);
  const recs = parseConnTable(PROC).entries.map((e) => toSyncConn(e, lookup(e)));
  const kernel = ['01', '02'].flatMap((n) => {
    const r = decodeMessage(readFileSync(join(fixtures, `kernel-master-${n}.bin`)));
    assert.ok(r.ok);
    return r.ok ? r.message.conns : [];
  });
  const same = (a: { protocol: number; cport: number; vport: number; state: number; flags: number }) =>
    kernel.find((k) => k.protocol === a.protocol && k.cport === a.cport && k.vport === a.vport && k.state === a.state);
  for (const r of recs) {
    const k = same(r);
    assert.ok(k, `kernel sent ${r.protocol}/${r.cport}/${r.vport}/${r.state}`);
    assert.equal(r.flags, k.flags, `flags of ${r.cport}/${r.vport}`);
    assert.equal(r.fwmark, k.fwmark, 'fwmark from the fwmark service owning the real server');
    // Timeout 0 lets the receiving kernel use its per-state timeout; templates carry persistence.
    if (r.flags & 0x1000) assert.equal(r.timeout, 60);
    else assert.equal(r.timeout, 0);
  }
});

/** The record the table worker builds for a line (toSyncConn from the declared virtual servers). */
const lookupAll = serviceLookup(cfg);
const toRecord = (e: ConnEntry): Uint8Array => encodeRecord(toSyncConn(e, lookupAll(e)));
const diffTable = (prev: ReadonlyMap<string, SentState>, entries: readonly ConnEntry[], nowMs: number) => diffWith(prev, entries, nowMs, toRecord);
/** A kernel stream record of an entry: as the kernel's master daemon sends it (the state's full timeout). */
const kernelRec = (e: ConnEntry): Uint8Array => encodeRecord({ ...toSyncConn(e, lookupAll(e)), timeout: e.expires });
/** The connections (keys) of records. */
const keysOf = (recs: readonly Uint8Array[]) => recs.map((r) => recordConnKey(r, 0));
const keys = (entries: readonly ConnEntry[]) => entries.map(connKey);

test('diff: new entries and state/real-server changes go out, unchanged idle ones do not, busy ones before the peer copy would expire', () => {
  const { entries } = parseConnTable(PROC);
  const first = diffTable(new Map(), entries, 1000);
  assert.equal(first.changed.length, 6);
  assert.deepEqual(first.changed.map((r) => Buffer.from(r)), entries.map((e) => Buffer.from(toRecord(e))), 'the records of toSyncConn');
  const again = diffTable(first.next, entries, 2000);
  assert.equal(again.changed.length, 0, 'nothing changed');
  const finished = entries.map((e) => (e.cport === 46716 ? { ...e, state: 4, stateName: 'FIN_WAIT', expires: 120 } : e));
  const fin = diffTable(again.next, finished, 3000);
  assert.deepEqual(keysOf(fin.changed), keys(finished.filter((e) => e.cport === 46716)));
  assert.equal(recordState(fin.changed[0]!, 0), 4);
  // 500 s later the busy connection still has ~898 s left here, the peer's copy ~398 s: resend.
  // (Entries that would have expired by then, and the one that changed state, are left out.)
  const later = entries.filter((e) => e.expires > 500 && e.cport !== 46716).map((e) => (e.cport === 60322 ? { ...e } : { ...e, expires: e.expires - 500 }));
  const busy = diffTable(fin.next, later, 503_000);
  assert.deepEqual(keysOf(busy.changed), keys(later.filter((e) => e.cport === 60322)));
  // Another real server: sent again.
  const moved = entries.map((e) => (e.cport === 60322 ? { ...e, daddr: Uint8Array.of(192, 0, 2, 12) } : e));
  assert.deepEqual(keysOf(diffTable(first.next, moved, 2000).changed), keys(moved.filter((e) => e.cport === 60322)));
  // Gone from the table: forgotten.
  assert.equal(diffTable(busy.next, [], 504_000).next.size, 0);
  assert.notEqual(connKey(entries[0]!), connKey(entries[2]!));
  assert.equal(new Set(keys(entries)).size, entries.length, 'one key per connection');
});

test('diff: a line repeated in one read (seq_file resumed at a shifted position) is one connection, sent once', () => {
  const { entries } = parseConnTable(PROC);
  const twice = [...entries, entries[0]!, entries[3]!];
  const d = diffTable(new Map(), twice, 1000);
  assert.equal(d.changed.length, entries.length, 'each connection sent once');
  assert.equal(sentRecords(d.next).length, entries.length, 'the resync answer (the sent-map) holds each once');
  assert.equal(d.repeated, 2);
});

test('parse in pieces: any split of the text into pushes gives the same entries and skipped lines as one parse', () => {
  const text = PROC + 'TCP ZZZZ garbage\n' + PROC.split('\n').slice(1).join('\n');
  const whole = parseConnTable(text);
  for (const size of [1, 7, 64, 1000]) {
    const p = new ConnTableParser();
    const entries = [];
    for (let i = 0; i < text.length; i += size) entries.push(...p.push(text.slice(i, i + size)));
    entries.push(...p.end());
    assert.deepEqual(entries, whole.entries, `pieces of ${size} characters`);
    assert.equal(p.skipped, whole.skipped);
  }
});

test('diff under way: a connection forgotten (the peer lost it) after the read passed it goes with the next read; forgetAll sends everything next', () => {
  const { entries } = parseConnTable(PROC);
  const first = diffTable(new Map(), entries, 1000);
  const d = new TableDiff(first.next, toRecord);
  d.add(entries[0]!, 2000);
  d.forget(connKey(entries[0]!));
  for (const e of entries.slice(1)) d.add(e, 2000);
  assert.equal(d.changed.length, 0, 'nothing changed in this read');
  assert.deepEqual(keysOf(diffTable(d.next, entries, 3000).changed), keys([entries[0]!]), 'the forgotten one goes with the next read');
  const all = new TableDiff(first.next, toRecord);
  all.add(entries[0]!, 2000);
  all.forgetAll();
  for (const e of entries.slice(1)) all.add(e, 2000);
  assert.equal(all.changed.length, entries.length - 1, 'entries after forgetAll go with this read');
  assert.deepEqual(keysOf(diffTable(all.next, entries, 3000).changed), keys([entries[0]!]), 'the one before it with the next read: every entry reaches the peer');
});

/** The kernel master daemon's datagrams of the fixtures (the same connections as PROC). */
const kernelDatagrams = () => ['01', '02'].map((n) => readFileSync(join(fixtures, `kernel-master-${n}.bin`)));

test('stream: a kernel master record has the key, real server and state of its /proc line, read from its bytes', () => {
  const lines = parseConnTable(PROC).entries;
  const recs: Uint8Array[] = [];
  const spans: number[] = [];
  for (const d of kernelDatagrams()) {
    assert.ok(messageRecords(d, spans), 'the kernel sends valid v1 messages');
    for (let i = 0; i < spans.length; i += 2) recs.push(d.subarray(spans[i]!, spans[i + 1]!));
  }
  for (const e of lines) {
    const r = recs.find((x) => recordConnKey(x, 0) === connKey(e) && recordState(x, 0) === e.state);
    assert.ok(r, `the kernel sent ${e.protocol}/${e.cport}/${e.vport} ${e.stateName}`);
    // Known already: the merge finds the read's state in the kernel's record (real server and state).
    const sent = diffTable(new Map(), [e], 1000).next;
    assert.deepEqual(mergeStream(sent, undefined, [r], 1100), { changed: [], unchanged: 1 }, `${e.cport}: same real server and state`);
    // The record this director builds for the line has the same key.
    assert.equal(recordConnKey(toRecord(e), 0), connKey(e));
  }
});

test('stream merge: a new or changed connection is sent once, whichever source sees it first; a repeat of the kernel is not', () => {
  const lines = parseConnTable(PROC).entries;
  const est = lines[0]!; // TCP ESTABLISHED
  const sent = diffTable(new Map(), lines.slice(1), 1000).next;
  // The stream sees the new connection first: its record is sent as it is; the next read does not send it again.
  const r = kernelRec(est);
  const m1 = mergeStream(sent, undefined, [r], 1100);
  assert.deepEqual(m1.changed, [r]);
  const m2 = mergeStream(sent, undefined, [kernelRec(est)], 1200);
  assert.deepEqual([m2.changed.length, m2.unchanged], [0, 1], 'the kernel resends at every 50th packet: known');
  const read = diffTable(sent, lines, 1300);
  assert.equal(read.changed.length, 0, 'the read finds nothing new');
  // A state change seen by the read first: the stream's record of the same state is known.
  const fin = { ...est, state: 4, stateName: 'FIN_WAIT', expires: 120 };
  const read2 = diffTable(read.next, [fin, ...lines.slice(1)], 1400);
  assert.deepEqual(keysOf(read2.changed), keys([fin]));
  assert.equal(mergeStream(read2.next, undefined, [kernelRec(fin)], 1500).changed.length, 0);
  // Another real server in the stream: sent.
  assert.equal(mergeStream(read2.next, undefined, [kernelRec({ ...fin, daddr: Uint8Array.of(192, 0, 2, 12) })], 1600).changed.length, 1);
});

test('stream merge during a read: before the read reaches the connection, after it passed it, and a new one it never shows', () => {
  const lines = parseConnTable(PROC).entries;
  const sent = new Map<string, SentState>(diffTable(new Map(), lines, 1000).next);
  const est = lines[0]!;
  const fin = { ...est, state: 4, stateName: 'FIN_WAIT', expires: 120 };
  const udp = lines[3]!;
  const fresh = { ...udp, cport: 4242 };
  const d = new TableDiff(sent, toRecord);
  // The read shows the first two lines (still ESTABLISHED), then the stream says FIN_WAIT of the
  // first (passed), and tells a UDP connection the read has not reached, and a new one.
  d.add(lines[0]!, 2000);
  d.add(lines[1]!, 2000);
  const udpChanged = { ...udp, daddr: Uint8Array.of(192, 0, 2, 12) };
  const m = mergeStream(sent, d, [fin, udpChanged, fresh].map(kernelRec), 2100);
  assert.equal(m.changed.length, 3);
  // The read's line of the UDP connection, older than the stream's: what the peer was told was
  // the stream's real server, so the read sends the line's (a change again, by this read's word).
  for (const e of lines.slice(2)) d.add(e, 2200);
  d.finish();
  assert.equal(d.changed.length, 1, "the read's line of the UDP connection differs from the stream's");
  assert.equal(recordState(d.next.get(connKey(est))!.rec, 0), 4, 'the sent-map keeps the stream state of a passed connection');
  assert.ok(d.next.has(connKey(fresh)), 'and a connection the read never showed');
  const answer = sentRecords(d.next);
  assert.equal(recordState(answer.find((r) => recordConnKey(r, 0) === connKey(est))!, 0), 4, 'the answer holds the stream state');
  assert.ok(answer.some((r) => recordConnKey(r, 0) === connKey(fresh)));
  assert.equal(answer.length, lines.length + 1);
  // The next read of the same table sends nothing of what the stream sent.
  assert.equal(diffTable(d.next, [fin, ...lines.slice(1), fresh], 3000).changed.length, 0);
  // A connection the peer lost after the stream sent it goes again with the next read.
  const d2 = new TableDiff(d.next, toRecord);
  const other = { ...udp, cport: 4343 };
  mergeStream(d.next, d2, [kernelRec(other)], 3100);
  d2.forget(connKey(other));
  d2.finish();
  assert.ok(!d2.next.has(connKey(other)), 'forgotten: not kept as sent');
  assert.equal(mergeStream(d2.next, undefined, [kernelRec(other)], 3200).changed.length, 1, 'the stream sends it again');
});

test('answer: the sent-map holds the latest read with the stream since (replaced or added), and keeps a connection the peer lost', () => {
  const lines = parseConnTable(PROC).entries;
  const sent = new Map<string, SentState>(diffTable(new Map(), lines, 1000).next);
  const fin = { ...lines[0]!, state: 4, stateName: 'FIN_WAIT', expires: 120 };
  const fresh = { ...lines[3]!, cport: 4242 };
  const [finRec, freshRec] = [kernelRec(fin), kernelRec(fresh)];
  mergeStream(sent, undefined, [finRec, freshRec], 1100);
  const out = sentRecords(sent);
  assert.equal(out.length, lines.length + 1);
  assert.equal(out.find((r) => recordConnKey(r, 0) === connKey(fin)), finRec, "the stream's record as the kernel sent it");
  assert.ok(out.includes(freshRec));
  // The peer lost the frame of lines[1] (DATA_MISSING): still in the answer, sent again by the next read.
  const k = connKey(lines[1]!);
  sent.set(k, forgotten(sent.get(k)!));
  assert.equal(sentRecords(sent).length, lines.length + 1);
  assert.deepEqual(keysOf(diffWith(sent, [fin, ...lines.slice(1), fresh], 1200, toRecord).changed), keys([lines[1]!]));
});

test('keys: connKey of a line and recordConnKey of its record agree (IPv4, IPv6, templates with their real server)', () => {
  const lines = parseConnTable(PROC).entries;
  for (const e of lines) {
    assert.equal(recordConnKey(toRecord(e), 0), connKey(e));
    assert.equal(recordConnKey(kernelRec(e), 0), connKey(e));
  }
  const tpl = lines.find((e) => e.template)!;
  assert.notEqual(connKey(tpl), connKey({ ...tpl, daddr: Uint8Array.of(192, 0, 2, 12) }), 'a template re-pinned to another real server is another key');
  const est = lines[0]!;
  assert.equal(connKey(est), connKey({ ...est, daddr: Uint8Array.of(192, 0, 2, 12) }), 'a connection is one key whatever its real server');
  // A record inside a message (at an offset) keys the same.
  const both = Buffer.concat([Buffer.alloc(8), toRecord(lines[4]!)]);
  assert.equal(recordConnKey(both, 8), connKey(lines[4]!));
});
