/**
 * The announcer's schedule (pure: a recording sender and ManualClock): bursts, their spacing, the
 * delayed burst, the refresh, stop(), and `roundsSent` — rounds of the first burst the runtime's
 * takeover call already sent, which are counted but not sent again.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../src/core/clock.js';
import { Announcer, type AnnounceTarget } from '../../src/election/announce.js';
import type { GarpConfig } from '../../src/config/model.js';

const MAC = new Uint8Array([2, 0, 0, 0, 0, 2]);
const targets: AnnounceTarget[] = [
  { ifname: 'eth0', mac: MAC, vips: [new Uint8Array([192, 0, 2, 42]), new Uint8Array([192, 0, 2, 43])] },
  { ifname: 'eth1', mac: MAC, vips: [new Uint8Array([198, 51, 100, 7])] },
];
const garp = (o: Partial<GarpConfig> = {}): GarpConfig => ({ master_delay: 5, master_repeat: 5, master_refresh: 0, master_refresh_repeat: 1, interval: 0, ...o });

function harness() {
  const clock = new ManualClock();
  const sent: Array<{ at: number; ifname: string }> = [];
  let counted = 0;
  const a = new Announcer({ sender: { send: (ifname) => void sent.push({ at: clock.now(), ifname }), close: () => {} }, clock, onSent: (ok) => void (ok && counted++) });
  return { clock, sent, a, counted: () => counted };
}

test('a burst without spacing goes out at once, the delayed burst after master_delay', () => {
  const h = harness();
  h.a.startAll(targets, garp());
  assert.equal(h.sent.length, 15, '5 rounds × 3 VIPs now');
  assert.deepEqual(h.sent.slice(0, 3).map((s) => s.ifname), ['eth0', 'eth0', 'eth1'], 'each VIP on its own interface');
  h.clock.advance(4999);
  assert.equal(h.sent.length, 15);
  h.clock.advance(1);
  assert.equal(h.sent.length, 30);
  h.clock.advance(60_000);
  assert.equal(h.sent.length, 30, 'no refresh configured');
  assert.equal(h.counted(), 30);
});

test('roundsSent: the rounds the takeover call sent are counted, not sent again', () => {
  for (const done of [0, 1, 3, 5, 7]) {
    const h = harness();
    h.a.startAll(targets, garp(), done);
    assert.equal(h.sent.length, 3 * Math.max(0, 5 - done), `roundsSent ${done}: sent now`);
    assert.equal(h.counted(), 15, `roundsSent ${done}: counted (never more than the burst)`);
    h.clock.advance(5000);
    assert.equal(h.sent.length, 3 * Math.max(0, 5 - done) + 15, 'the delayed burst is whole');
  }
});

test('with spacing, later rounds are timed from the first; a round already sent is skipped', () => {
  const h = harness();
  h.a.startAll(targets, garp({ master_repeat: 3, interval: 0.5, master_delay: 0 }), 1);
  assert.equal(h.sent.length, 0);
  h.clock.advance(500);
  assert.equal(h.sent.length, 3);
  h.clock.advance(500);
  assert.equal(h.sent.length, 6);
  h.clock.advance(10_000);
  assert.equal(h.sent.length, 6, 'no delayed burst (master_delay 0)');
  assert.equal(h.counted(), 9);
});

test('refresh repeats every master_refresh; stop() cancels everything pending', () => {
  const h = harness();
  h.a.startAll(targets, garp({ master_repeat: 1, master_delay: 0, master_refresh: 2, master_refresh_repeat: 2 }));
  assert.equal(h.sent.length, 3);
  h.clock.advance(2000);
  assert.equal(h.sent.length, 9);
  h.clock.advance(2000);
  assert.equal(h.sent.length, 15);
  h.a.stop();
  h.clock.advance(10_000);
  assert.equal(h.sent.length, 15);
});
