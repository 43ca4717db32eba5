/**
 * The advert backstop (afpacket.c bs*, subsystem.ts nativeBackstop) on real namespaces and raw
 * sockets: while the sender's event loop is blocked, its threads keep the Master's adverts on the
 * wire at ~1.5 intervals; disarmed, nothing goes out; after the lease (2 s without a kick) they stop.
 * A listener in another namespace stamps every advert it reads (its own loop is never blocked).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Topology, isRoot } from '../../src/lab/netns.js';

const here = dirname(fileURLToPath(import.meta.url));
const listener = join(here, 'support', 'transport-cli.js');
const sender = join(here, 'support', 'backstop-cli.js');
const skip = !isRoot() && 'needs root (network namespaces)';

interface Heard { readonly at: number; readonly src: string }

/** Blocks the sender's loop `stallMs` after 300 ms; returns the stall window, its count and what b heard from a. */
async function run(intervalMs: number, stallMs: number, mode: 'armed' | 'disarmed'): Promise<{ start: number; end: number; backstopSent: number; heard: Heard[] }> {
  const topo = new Topology();
  try {
    const a = await topo.member('a', ['192.0.2.1/24']);
    const b = await topo.member('b', ['192.0.2.2/24']);
    const l = b.start([process.execPath, listener, 'eth0', '4', '3', '9', '1', String(intervalMs), String(stallMs + 900), 'stamp']);
    const s = a.start([process.execPath, sender, 'eth0', String(intervalMs), String(stallMs), mode]);
    await Promise.all([l.exited, s.exited]);
    const r = JSON.parse(s.output().trim().split('\n').at(-1)!) as { start: number; end: number; backstopSent: number };
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
  // JavaScript sent nothing during the stall: every advert in it is the backstop's.
  assert.ok(during.length >= 8, `expected ~13 backstop adverts in a 300 ms stall at 20 ms, heard ${during.length}`);
  const times = [r.start, ...during.map((h) => h.at)];
  const gaps = times.slice(1).map((t, i) => t - times[i]!);
  // 1.5 intervals to the first, one interval after that; 15 ms of scheduling slack on a loaded machine.
  assert.ok(Math.max(...gaps) <= 1.5 * iv + 15, `largest gap ${Math.max(...gaps)} ms (gaps ${gaps.join(',')})`);
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
  assert.equal(r.backstopSent, 0);
});

test('backstop: stops standing in once the loop has not kicked for the 2 s lease', { skip }, async () => {
  const r = await run(20, 2600, 'armed');
  const early = r.heard.filter((h) => h.at > r.start && h.at < r.start + 1900);
  const late = r.heard.filter((h) => h.at > r.start + 2100 && h.at <= r.end);
  assert.ok(early.length >= 50, `adverts in the first 1.9 s of the stall: ${early.length}`);
  assert.equal(late.length, 0, `adverts after the lease: ${late.length}`);
});
