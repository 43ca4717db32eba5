/**
 * The table-metrics worker's reader for host runs of bench/scrape.ts (no IPVS on the host). The
 * kernel's answers to the 1 + N dumps of bigTable(n, d) — IPVS_CMD_NEW_SERVICE / NEW_DEST message
 * payloads with the attributes Linux 6.1 puts in them (test/support/ipvs-replies.ts) — are encoded
 * once per worker thread, and every read hands them to the worker's sink as
 * NetlinkDataplane.dumpInto does (lvsd decodes them). So a host run measures everything lvsd does
 * for a scrape except the kernel's dumps and the socket reads.
 */
import { bigTable } from './big-table.js';
import { feedSink, tableReplies, type TableReplies } from '../../test/support/ipvs-replies.js';
import type { TableReader } from '../../src/ipvs/table-reader.js';

/** The encoded replies of this thread, by table size (made on the first open: not a read's cost). */
const encoded = new Map<string, TableReplies>();

export async function openTableReader(o: { n: number; d: number }): Promise<TableReader> {
  const key = `${o.n}x${o.d}`;
  let enc = encoded.get(key);
  if (!enc) encoded.set(key, (enc = tableReplies(bigTable(o.n, o.d))));
  const replies = enc;
  return {
    read: async (sink) => feedSink(replies, sink),
    close: async () => {},
  };
}
