/**
 * The table worker thread (src/sync/table-worker.ts) answers a resync from its latest complete
 * read within about one slice, whatever it is doing: a read of a large table is read, parsed and
 * diffed a page at a time, and the worker's loop runs between slices. Real worker thread, against
 * a file in /proc/net/ip_vs_conn's format. Asserted by the order of events, never by durations.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WorkerTableSource, type PollResult } from '../../src/sync/source.js';
import { decodeMessage } from '../../src/sync/codec.js';
import { DATA_STAMP_LEN } from '../../src/sync/wire.js';

const HEAD = 'Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData\n';
/** Connection i: client 198.51.100.x:port, distinct for i < 2^24. */
const line = (i: number, state = 'ESTABLISHED') =>
  `TCP C633${(i >>> 16).toString(16).toUpperCase().padStart(4, '0')} ${(1024 + (i & 0xffff) % 60000).toString(16).toUpperCase().padStart(4, '0')} C0000264 0050 C000020B 0050 ${state.padEnd(11)} 898\n`;
const table = (n: number, from = 0) => HEAD + Array.from({ length: n }, (_, i) => line(from + i)).join('');
const records = (r: PollResult) => r.payloads.reduce((n, p) => n + p[DATA_STAMP_LEN + 4]!, 0);

function source() {
  const dir = mkdtempSync(join(tmpdir(), 'lvsd-table-worker-'));
  const file = join(dir, 'ip_vs_conn');
  writeFileSync(file, HEAD);
  const events: string[] = [];
  const src = new WorkerTableSource(
    { paths: [file], syncid: 42, maxMessage: 1380, pollMs: 50, services: [] },
    async (r) => void events.push(`poll ${r.records}`),
    (e) => events.push(`error ${e.message}`),
  );
  return { src, events, setTable: (t: string) => writeFileSync(file, t), close: async () => (await src.close(), rmSync(dir, { recursive: true, force: true })) };
}

test('resyncs asked while a 50,000-line table is read and parsed are answered from the previous read, again and again, before that read ends', async () => {
  const s = source();
  s.setTable(table(10));
  assert.equal((await s.src.pollNow()).records, 10, 'the first read: 10 entries');
  s.setTable(table(50_000, 100));
  // The poll is posted first: the worker starts that read before it sees the first request. Each
  // request is asked once the previous one is answered, until the read ends: the worker answers
  // between slices of its read, parse and diff, not only once they are done (the read() calls of
  // a file take a slice or two; its parse and diff many more).
  let ended = false;
  const polled = s.src.pollNow().then((r) => {
    ended = true;
    s.events.push(`pollNow ${r.records}`);
    return r;
  });
  const during: PollResult[] = [];
  for (let i = 0; i < 100_000 && !ended; i++) {
    const r = await s.src.full();
    s.src.answered(); // as the engine does once the answer is sent (the worker holds its period reads until then)
    if (!ended) during.push(r);
  }
  await polled;
  assert.deepEqual(s.events, ['poll 10', 'poll 50000', 'pollNow 50000']);
  assert.ok(during.length >= 5, `answered ${during.length} requests in a row while the read was under way`);
  for (const r of during) assert.equal(r.records, 10, 'each from the latest complete read (10 entries)');
  assert.equal(records(during[0]!), 10, 'its payloads hold those 10 records');
  assert.equal((await s.src.full()).records, 50_000, 'once that read ended, the answer is the new table');
  s.src.answered();
  await s.close();
});

test('a read under way when the peer names lost frames (forget) sends their connections again with the next read', async () => {
  const s = source();
  s.setTable(table(20_000));
  const first = await s.src.pollNow();
  assert.equal(first.records, 20_000);
  // The first frame's connections, then a second read of the same table with the forget asked while it runs.
  const lostFrame = first.payloads[0]!;
  const lost = decodeMessage(lostFrame.subarray(DATA_STAMP_LEN));
  assert.ok(lost.ok);
  const second = s.src.pollNow();
  s.src.forget([lostFrame]);
  const r2 = await second;
  const r3 = await s.src.pollNow();
  // Whether the forget reached the second read before or after it passed those entries, they go
  // again exactly once: with the second read, or else with the third.
  assert.equal(r2.records + r3.records, lost.message.conns.length, `the lost frame's ${lost.message.conns.length} connections, once (read 2: ${r2.records}, read 3: ${r3.records})`);
  assert.equal((await s.src.pollNow()).records, 0, 'then nothing');
  await s.close();
});

test('while an answer is being sent (full() until answered()) the period reads wait; answered() lets them go on at once', async (t) => {
  const s = source();
  t.after(() => (s.src.setActive(false), s.close()));
  s.setTable(table(10));
  s.src.setActive(true);
  const reads = () => s.events.filter((e) => e.startsWith('poll ')).length;
  const until = async (what: string, ok: () => boolean) => {
    for (let i = 0; i < 200 && !ok(); i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(ok(), what);
  };
  await until('the first period read', () => s.events.includes('poll 10'));
  assert.equal((await s.src.full()).records, 10, 'the answer: the 10 entries read');
  const held = reads();
  s.setTable(table(20));
  await new Promise((r) => setTimeout(r, 2000)); // ~40 read periods of 50 ms
  // A read posted just before the answer may still reach onChanges after it (one at most); none starts while the answer is out.
  assert.ok(reads() <= held + 1, `no period read while the answer is held (${s.events.join(', ')})`);
  assert.ok(!s.events.slice(held).includes('poll 10'), 'the 10 new entries not read yet');
  s.src.answered();
  const at = s.events.length;
  await until(`the held reads go on and send the 10 new entries (${s.events.slice(at).join(', ')})`, () => s.events.slice(at).includes('poll 10'));
});
