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
 * the read before. The read costs O(n²) in the kernel (seq_file prints a page of ~30-50 entries a
 * read(2), and each read(2) walks the hash from its start, ip_vs_conn_seq_start): at 5,000/s an
 * 18,000-entry table took tens of ms a read, and with a pause of 2× the read the poller was a third
 * of b's guest's CPU, which b's own sync receive needs. So the pause after a read is WAIT× the CPU
 * time the read took (this process's user + system time, the kernel's printing included; default
 * 9: the poller then takes at most ~1/(WAIT+1) of the guest's CPU, ≤ 10 %), at least 5 ms. CPU
 * time, not wall time: in a busy guest a read's wall time is mostly waiting for the CPU, and a pause
 * of 9× that left the poller blind for seconds (a 5,000/s run, 13:50: a read ending 3.2 s after the
 * record was handed to b's kernel, p50). Stops when every sampled flow was seen or after MAX_SECONDS; prints one JSON
 * line, with its own CPU time (user + system, the kernel's printing of the table included) and the
 * wall time it ran, so the driver can say what it took of the guest.
 *
 *   node table-poller.js BASE COUNT SAMPLE MAX_SECONDS [WAIT]
 */
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

const wall = () => performance.timeOrigin + performance.now();
const [base, count, sample, maxS, waitX = 9] = process.argv.slice(2).map(Number);
if (![base, count, sample, maxS, waitX].every((x) => Number.isFinite(x) && x! >= 0) || !(sample! > 0) || maxS! > 600 || waitX > 100) {
  process.stderr.write('usage: table-poller.js BASE COUNT SAMPLE MAX_SECONDS (≤ 600) [WAIT (≤ 100)]\n');
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
/** The longest time between two reads' starts: how blind the poller was at worst. */
let maxGapMs = 0;
const cpu0 = process.cpuUsage();
const began = performance.now();
while (nSeen < want.size && Date.now() < end) {
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const start = wall();
  const text = readFileSync('/proc/net/ip_vs_conn', 'latin1');
  const t = wall();
  if (!first) first = start;
  else maxGapMs = Math.max(maxGapMs, start - last);
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
  const c = process.cpuUsage(c0);
  await sleep(Math.max(5, (waitX * (c.user + c.system)) / 1000));
}
const cpu = process.cpuUsage(cpu0);
const ranMs = performance.now() - began;
process.stdout.write(JSON.stringify({ want: want.size, seen, reads, readMs: readMs / Math.max(1, reads), periodMs: reads > 1 ? (last - first) / (reads - 1) : NaN, table, maxGapMs: Math.round(maxGapMs), waitX, cpuMs: (cpu.user + cpu.system) / 1000, ranMs }) + '\n');
