/**
 * The addon's takeover call (native/afpacket/takeover.c Takeover) on its own: the sleep to the deadline it starts
 * with (clock_nanosleep then a short spin), the late limit that leaves a late wake to the machine's
 * late guard, and the poll that stops it when a socket is readable. Nothing is added or sent here
 * (no payloads, frames or adverts): the one-call path with real VIPs, GARPs and adverts is proven in
 * failover.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, openSync } from 'node:fs';
import { loadAfPacket } from '../../src/election/announce.js';

const addon = loadAfPacket();
const ms = () => Number(process.hrtime.bigint()) / 1e6;

test('takeover call: sleeps waitMs to its target and acts there, not before (lateMs ≥ 0)', () => {
  for (const wait of [0.5, 2, 4]) {
    const t0 = ms();
    const r = addon.takeover([], -1, 1, [], [], 1, [], wait, -1);
    const took = ms() - t0;
    assert.equal(r[0], 0, 'acted');
    assert.deepEqual(r.slice(2), [0, 0], 'no frames or adverts to send');
    // Order, not precision: it acted at or after its target (how far after is bench/failover.ts's
    // figure, docs/election.md; a loaded CI machine wakes it late).
    assert.ok(r[1]! >= 0, `woke ${r[1]} ms before the target`);
    assert.ok(took >= wait, `returned after ${took.toFixed(3)} ms (asked ${wait})`);
  }
});

test('takeover call: a call already past its target by more than lateLimitMs does nothing (status -2) and says how late', () => {
  const r = addon.takeover([], -1, 1, [], [], 1, [], -5, 3);
  assert.equal(r[0], -2);
  assert.ok(r[1]! >= 5, `late ${r[1]}: at least as late as it was called`);
  assert.equal(r.length, 2);
  // Within the limit (or no limit): it acts, and reports the lateness.
  assert.equal(addon.takeover([], -1, 1, [], [], 1, [], -2, 3)[0], 0);
  assert.equal(addon.takeover([], -1, 1, [], [], 1, [], -50, -1)[0], 0);
});

test('takeover call: a readable socket (an advert may be waiting) stops it after the sleep (status -1)', () => {
  const fd = openSync('/dev/null', 'r'); // always readable for poll(2)
  try {
    const r = addon.takeover([fd], -1, 1, [], [], 1, [], 1, -1);
    assert.equal(r[0], -1);
    assert.equal(r.length, 2);
  } finally {
    closeSync(fd);
  }
});

test('takeover call: a wait over 10 ms or a non-number is a usage error, not a long block', () => {
  assert.throws(() => addon.takeover([], -1, 1, [], [], 1, [], 11, -1), TypeError);
  assert.throws(() => addon.takeover([], -1, 1, [], [], 1, [], Number.NaN, -1), TypeError);
  assert.throws(() => addon.takeover([], -1, 1, [], [], 1, [], 'x' as unknown as number, -1), TypeError);
});

test('takeover call: a malformed plan is a usage error before anything is done (the checks tkload makes: one parser)', () => {
  const bad: Array<[string, () => unknown]> = [
    ['a negative poll fd', () => addon.takeover([-1], -1, 1, [], [], 1, [], 0, -1)],
    ['rounds < 1', () => addon.takeover([], -1, 1, [], [], 0, [], 0, -1)],
    ['rounds > 64', () => addon.takeover([], -1, 1, [], [], 65, [], 0, -1)],
    ['a payload over 4096 bytes', () => addon.takeover([], -1, 1, [Buffer.alloc(4097)], [], 1, [], 0, -1)],
    ['a frame shorter than an Ethernet header', () => addon.takeover([], -1, 1, [], [[0, 1, Buffer.alloc(4)]], 1, [], 0, -1)],
    ['an advert fd that is not a raw VRRP socket', () => addon.takeover([], -1, 1, [], [], 1, [[0, Buffer.alloc(4), 0, Buffer.alloc(8)]], 0, -1)],
    ['too many poll fds', () => addon.takeover(new Array(65).fill(0), -1, 1, [], [], 1, [], 0, -1)],
  ];
  for (const [what, call] of bad) assert.throws(call, TypeError, what);
});
