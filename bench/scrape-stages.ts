/**
 * The table metrics' two stages in one thread, without HTTP or a worker (issue 20): the read of a
 * SERVICES × DESTS table's kernel replies into TableColumns (lvsd's decoder; the replies are the
 * ones Linux 6.1 sends, encoded once, test/support/ipvs-replies.ts) and writeTableText into reused
 * 64 kB chunks, READS times; the CPU time (this process has no other busy thread) and wall time of
 * each stage. What a worker thread spends per scrape on the host, before the main thread's writes.
 *   node dist/bench/scrape-stages.js [SERVICES] [DESTS] [READS]
 */
import { bigConfig, bigTable } from './support/big-table.js';
import { feedSink, tableReplies } from '../test/support/ipvs-replies.js';
import { CHUNK_BYTES, LabelText, TableColumns, writeTableText, type DeclaredService } from '../src/ipvs/table-text.js';
import { readFileSync } from 'node:fs';

const [n, d, reads] = [Number(process.argv[2] ?? 10000), Number(process.argv[3] ?? 10), Number(process.argv[4] ?? 10)];
const declared: DeclaredService[] = bigConfig(n, d).virtual_servers.map((v) => ({ key: v.key, name: v.name, rs: v.real_servers.map((r) => r.key), weights: v.real_servers.map((r) => r.weight) }));
const replies = tableReplies(bigTable(n, d));
const labels = new LabelText(declared);
const cols = new TableColumns();
const pool: Buffer[] = [];
let used = 0;
const alloc = () => pool[used++] ?? (pool.push(Buffer.allocUnsafeSlow(CHUNK_BYTES)), pool[used - 1]!);
const cpu = () => {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1000;
};
const r0 = (x: number) => Math.round(x);
const rows: Array<{ readCpu: number; readMs: number; textCpu: number; textMs: number; bytes: number }> = [];
for (let i = 0; i < reads; i++) {
  used = 0;
  const c0 = cpu();
  const t0 = performance.now();
  cols.reset(labels);
  feedSink(replies, cols);
  const c1 = cpu();
  const t1 = performance.now();
  let bytes = 0;
  writeTableText(cols, false, (c) => (bytes += c.length), alloc);
  rows.push({ readCpu: c1 - c0, readMs: t1 - t0, textCpu: cpu() - c1, textMs: performance.now() - t1, bytes });
}
const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
for (const [i, r] of rows.entries()) process.stdout.write(`read ${i + 1}: read ${r0(r.readCpu)} ms CPU (${r0(r.readMs)} ms wall), text ${r0(r.textCpu)} ms CPU (${r0(r.textMs)} ms wall), ${(r.bytes / 1e6).toFixed(1)} MB\n`);
const steady = rows.slice(2);
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;
process.stdout.write(`reads 3-${reads}: read CPU min ${r0(Math.min(...steady.map((r) => r.readCpu)))} / median ${r0(med(steady.map((r) => r.readCpu)))} ms, text CPU min ${r0(Math.min(...steady.map((r) => r.textCpu)))} / median ${r0(med(steady.map((r) => r.textCpu)))} ms; load ${load}\n`);
