/**
 * Watches this guest's kernel connection table for sampled UDP flows (bench/sync-pair.ts, run in
 * director b's guest through the lab agent): which flows from the client 192.0.2.50 to the VIP
 * 192.0.2.100 appear, and when, by this guest's wall clock.
 *
 *   node table-poller.js BASE COUNT SAMPLE MAX_SECONDS
 *
 * Flows are source ports BASE, BASE+SAMPLE, ... below BASE+COUNT (sync-load.js flows samples every
 * SAMPLE-th). The table is read from /proc/net/ip_vs_conn (what ipvsadm -Lnc prints) in a loop; a
 * flow is visible at most at the end of the first read that shows it and at least at the start of
 * the read before. The pause between reads is twice the read (≤ a third of this guest's CPU, which
 * b's own sync receive needs): the read costs O(n²) in the kernel (seq_file). Stops when every
 * sampled flow was seen or after MAX_SECONDS; prints one JSON line.
 */
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

const wall = () => performance.timeOrigin + performance.now();
const [base, count, sample, maxS] = process.argv.slice(2).map(Number);
if (![base, count, sample, maxS].every((x) => Number.isFinite(x) && x! >= 0) || !(sample! > 0) || maxS! > 600) {
  process.stderr.write('usage: table-poller.js BASE COUNT SAMPLE MAX_SECONDS (≤ 600)\n');
  process.exit(2);
}
const want = new Set<string>();
for (let i = 0; i < count!; i += sample!) want.add((base! + i).toString(16).toUpperCase().padStart(4, '0'));
const seen: Record<string, [number, number]> = {};
let nSeen = 0;
const re = /^UDP C0000232 ([0-9A-F]{4}) C0000264/gm;
const end = Date.now() + maxS! * 1000;
let reads = 0;
let readMs = 0;
let prev = 0;
let first = 0;
let last = 0;
let table = 0;
while (nSeen < want.size && Date.now() < end) {
  const t0 = performance.now();
  const start = wall();
  const text = readFileSync('/proc/net/ip_vs_conn', 'latin1');
  const t = wall();
  if (!first) first = start;
  last = start;
  reads++;
  readMs += performance.now() - t0;
  table = 0;
  for (const m of text.matchAll(re)) {
    table++;
    if (want.has(m[1]!) && !seen[m[1]!]) {
      seen[m[1]!] = [prev || start, t];
      nSeen++;
    }
  }
  prev = start;
  await sleep(Math.max(5, 2 * (performance.now() - t0)));
}
process.stdout.write(JSON.stringify({ want: want.size, seen, reads, readMs: readMs / Math.max(1, reads), periodMs: reads > 1 ? (last - first) / (reads - 1) : NaN, table }) + '\n');
