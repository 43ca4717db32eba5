/**
 * The table-metrics worker's reader for host runs of bench/scrape.ts (no IPVS on the host): serves
 * bigTable(n, d) from memory, so the run measures lvsd's own share (worker, text, HTTP) alone.
 */
import { bigTable } from './big-table.js';
import type { TableReader } from '../../src/ipvs/table-reader.js';

export async function openTableReader(o: { n: number; d: number }): Promise<TableReader> {
  const table = bigTable(o.n, o.d);
  return { read: async () => table, close: async () => {} };
}
