/**
 * The table worker's read pacing (src/sync/read-pacing.ts, pure): how long it waits after a read.
 * The worker's reads of the real kernel table are proven in the lab (test/lab/sync-kstream.test.ts);
 * these are the rules, with numbers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MIN_PAUSE_MS, nextDelay, pauseAfterStreamRead, READ_SHARE, streamDelay } from '../../src/sync/read-pacing.js';

const POLL = 50;

test('without the stream: a cheap read comes again at READ_SHARE of the thread, poll_interval bounds the period, a slow read waits its own duration', () => {
  assert.equal(nextDelay(0.3, POLL), MIN_PAUSE_MS, 'a tiny read: the shortest pause');
  assert.equal(nextDelay(4, POLL), 36, '4 ms of reading, 36 ms of pause: 10 %');
  assert.equal(nextDelay(20, POLL), 30, 'the period is poll_interval');
  assert.equal(nextDelay(200, POLL), 200, 'slower than poll_interval: as long again');
});

test('with the stream: a busy stream (or a slow read) spaces reads to READ_SHARE of the thread; a quiet one keeps the period', () => {
  assert.equal(streamDelay(100, POLL, 500), 900);
  assert.equal(streamDelay(100, POLL, 0), 900, 'slower than poll_interval');
  assert.equal(streamDelay(4, POLL, 1), nextDelay(4, POLL), 'one record: the stream holds its last one, the read is the fast path');
});

test('after a read that already paused for a busy stream, only its own work is spaced: the thread reads at READ_SHARE, not a tenth of it', () => {
  // A read of 100 ms of work in slices, each followed by 9× its work while the stream was busy:
  // 900 ms of pauses, 1,000 ms of wall time.
  const work = 100;
  const paused = work * (1 / READ_SHARE - 1);
  const after = pauseAfterStreamRead(work + paused, paused, POLL, 5000);
  assert.equal(after, MIN_PAUSE_MS, 'the read kept its share within itself: the next one comes at once');
  const share = work / (work + paused + after);
  assert.ok(share > 0.09 && share <= READ_SHARE, `reads take ~${READ_SHARE} of the thread (${share.toFixed(3)})`);
  // Before (9× the wall time, pauses included): ~1 %.
  assert.ok(work / (work + paused + streamDelay(work + paused, POLL, 5000)) < 0.011);
  // A read that made no pause (the stream went quiet during it) is spaced as before.
  assert.equal(pauseAfterStreamRead(100, 0, POLL, 5000), streamDelay(100, POLL, 5000));
  assert.equal(pauseAfterStreamRead(4, 0, POLL, 0), nextDelay(4, POLL));
});
