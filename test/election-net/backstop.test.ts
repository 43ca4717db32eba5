/**
 * The advert backstop (backstop.c bs*, subsystem.ts nativeBackstop) on real namespaces and raw
 * sockets: while the sender's event loop is blocked, its threads keep the Master's adverts on the
 * wire at ~1.5 intervals; disarmed, nothing goes out; after the lease (2 s without a kick) they stop.
 * A listener in another namespace stamps every advert it reads (its own loop is never blocked).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Topology, isRoot } from '../../src/lab/netns.js';
import { waitFor } from '../support/proc.js';

const here = dirname(fileURLToPath(import.meta.url));
const listener = join(here, 'support', 'transport-cli.js');
const sender = join(here, 'support', 'backstop-cli.js');
const skip = !isRoot() && 'needs root (network namespaces)';

interface Heard { readonly at: number; readonly src: string }

/** Blocks the sender's loop `stallMs` after 300 ms; returns the stall window, its count and what b heard from a. */
async function run(intervalMs: number, stallMs: number, mode: 'armed' | 'disarmed'): Promise<{ start: number; end: number; backstopSent: number; beforeDisarm: number; heard: Heard[] }> {
  const topo = new Topology();
  try {
    const a = await topo.member('a', ['192.0.2.1/24']);
    const b = await topo.member('b', ['192.0.2.2/24']);
    const l = b.start([process.execPath, listener, 'eth0', '4', '3', '9', '1', String(intervalMs), String(stallMs + 20000), 'stamp']);
    // The listener's socket is open before the sender starts (a loaded machine starts node slowly).
    await waitFor(() => l.output().includes('"ready":true'), 'the listener to be ready', 20000, 20);
    const s = a.start([process.execPath, sender, 'eth0', String(intervalMs), String(stallMs), mode]);
    await s.exited;
    l.child.kill('SIGTERM');
    await l.exited;
    const r = JSON.parse(s.output().trim().split('\n').at(-1)!) as { start: number; end: number; backstopSent: number; beforeDisarm: number };
    const heard = l
      .output()
      .split('\n')
      .filter(Boolean)
      .map((x) => JSON.parse(x) as { at?: number; src?: string; advert?: unknown })
      .filter((x) => x.advert && x.src === '192.0.2.1' && x.at !== undefined)
      .map((x) => ({ at: x.at!, src: x.src! }));
    return { ...r, heard };
  } finally {
    await topo.destroy();
  }
}

test('backstop: adverts go on while the event loop is blocked (one every ~1.5 intervals), counted', { skip }, async () => {
  const iv = 20;
  const r = await run(iv, 300, 'armed');
  const during = r.heard.filter((h) => h.at > r.start && h.at <= r.end);
  // JavaScript sent nothing during the stall: every advert in it is the backstop's. Effects, not
  // milliseconds: it stood in (~13 adverts in a 300 ms stall at 20 ms, one every interval after
  // 1.5 intervals of silence, on a quiet machine; fewer when the CPUs are shared with other work).
  assert.ok(during.length >= 2, `backstop adverts heard in a 300 ms stall at ${iv} ms: ${during.length}`);
  assert.ok(r.backstopSent >= during.length, `backstop reported ${r.backstopSent}, the listener heard ${during.length} in the stall`);
  // Control: without the backstop the same stall would leave a 300 ms silence (the listener heard
  // JavaScript's adverts before the stall, so it was listening).
  assert.ok(r.heard.some((h) => h.at < r.start), 'adverts before the stall');
});

test('backstop: disarmed (left Master), nothing goes out during the stall', { skip }, async () => {
  const r = await run(20, 300, 'disarmed');
  assert.ok(r.heard.some((h) => h.at < r.start), 'adverts before the stall');
  const during = r.heard.filter((h) => h.at > r.start + 5 && h.at <= r.end);
  assert.equal(during.length, 0, `heard ${during.length} adverts after disarm`);
  assert.equal(r.backstopSent, r.beforeDisarm, 'the backstop sent nothing after the disarm');
});

test('backstop: stops standing in once the loop has not kicked for the 2 s lease', { skip }, async () => {
  // A second of margin after the lease for the listener's own read delays (its stamps are when it
  // read, not when the frame came); counts, not rates.
  const r = await run(20, 3500, 'armed');
  const early = r.heard.filter((h) => h.at > r.start && h.at < r.start + 1900);
  const late = r.heard.filter((h) => h.at > r.start + 3000 && h.at <= r.end);
  assert.ok(early.length >= 2, `adverts in the first 1.9 s of the stall: ${early.length}`);
  assert.equal(late.length, 0, `adverts after the lease: ${late.length}`);
});
