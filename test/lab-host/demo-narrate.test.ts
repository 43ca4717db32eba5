/**
 * The demo's host-side words (pure): event lines from the guest round-trip, other lines are left
 * alone, and the summary table says what was measured — including losses — in the rows the
 * end-to-end test (demo.test.ts) reads.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decode, encode, MARK, type DemoSummary } from '../../src/lab/demo/events.js';
import { narrate, summaryTable } from '../../src/lab/demo/narrate.js';

const summary: DemoSummary = {
  spread: { requests: 30, failed: 0, byServer: { rs2: 10, rs1: 10, rs3: 10 } },
  realServer: { name: 'rs2', requests: 120, failed: 1, failedInFlight: 1, slowestMs: 3100, removedAfterMs: 1460 },
  // At the failover 6 synced connections on rs2 ended: director-b's own checks had taken rs2 out.
  // At the failback the 15 that ended were not synced.
  failover: { from: 'director-a', to: 'director-b', timedFrom: 'the crash', held: 24, kept: 18, errors: { ECONNRESET: 6 }, endedByServer: { rs2: 6 }, endedUnsynced: 0, takenOut: ['rs2'], longestWaitMs: 3900, syncedBefore: 24, vipMovedAfterMs: 3400 },
  failback: { from: 'director-b', to: 'director-a', timedFrom: 'its election started', held: 18, kept: 3, errors: { ECONNRESET: 15 }, endedByServer: {}, endedUnsynced: 15, takenOut: [], longestWaitMs: 300, syncedBefore: 3, vipMovedAfterMs: 3600 },
  syncMode: 'kernel',
  after: { requests: 15, failed: 0 },
};

test('event lines round-trip; any other guest line is not an event', () => {
  const line = encode({ ev: 'say', text: 'hello', t: 12 });
  assert.ok(line.startsWith(MARK));
  assert.deepEqual(decode(line), { ev: 'say', text: 'hello', t: 12 });
  assert.equal(decode('lvsd lab: something'), undefined);
  assert.equal(decode(`${MARK}{not json`), undefined);
  assert.equal(decode(`${MARK}{"t":1}`), undefined);
});

test('narration: steps stand out, command output is indented under its title', () => {
  assert.deepEqual(narrate({ ev: 'step', title: '1. Spread', t: 0 }, 1500), ['', '   1.5s  == 1. Spread ==']);
  assert.deepEqual(narrate({ ev: 'show', title: 'table', text: 'a\nb', t: 0 }, 0), ['   0.0s  table:', '           | a', '           | b']);
});

test('the summary table states every figure, losses and unseen events included', () => {
  const text = summaryTable(summary, 61_000).join('\n');
  assert.match(text, /^Summary \(connection sync: kernel mode; 61\.0 s in all/);
  const row = (label: string) => text.split('\n').find((l) => l.startsWith(`  ${label}`)) ?? '';
  assert.match(text.split('\n')[1]!, /^ {2}event\s+requests failed\s+longest wait\s+long-lived connections kept\s+time$/);
  assert.match(row('requests spread'), /^ {2}requests spread\s+0 of 30 \(rs1 10, rs2 10, rs3 10\)\s+-\s+-\s+-$/);
  // The request in flight on the dying server is shown apart from the requests sent after its death.
  assert.match(row('rs2 dies and returns'), /\s0 of 120 \(\+1 in flight on rs2 at its death\)\s+3\.1 s\s+-\s+out of the table in 1\.5 s, back in not seen$/);
  // Ended connections by cause and by real server, and the real servers the new master's own checks took out.
  assert.match(row('director-a crashes'), /\s-\s+3\.9 s\s+18 of 24 \(24 synced; 6 ended: ECONNRESET 6; synced ones by server: rs2 6; not synced: 0; rs2 taken out by director-b's own checks\)\s+VIP on director-b 3\.4 s after the crash$/);
  assert.match(row('director-a returns'), /\s3 of 18 \(3 synced; 15 ended: ECONNRESET 15; synced ones by server: none; not synced: 15\)\s+VIP on director-a 3\.6 s after its election started$/);
  assert.match(row('after the failback'), /^ {2}after the failback\s+0 of 15\s/);
});
