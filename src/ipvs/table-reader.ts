/**
 * How the table-metrics worker (./table-worker.ts) reads the table: a module exporting
 * `openTableReader(options)`, named by URL because a worker thread cannot be handed an object. The
 * daemon's is this module (the kernel through generic netlink); tests and the host benchmark name
 * their own (the kernel's reply messages for a table held in memory), and everything after the
 * replies — their decoding included — is the same code.
 */
import { NetlinkDataplane, type DumpSink } from './netlink.js';

export interface TableReader {
  /** One read of the table into `sink`, as NetlinkDataplane.dumpInto does: the services, then each one's destination replies. */
  read(sink: DumpSink): Promise<void>;
  close(): Promise<void>;
}

/** A module exporting `openTableReader(options): Promise<TableReader>`, and the options it gets (structured-cloneable). */
export interface TableReaderSpec {
  readonly module: string;
  readonly options?: unknown;
}

/**
 * Netlink sockets the worker reads the table through: the destination dumps are shared out over
 * them (NetlinkDataplane.dumpInto). One: in the lab at 10,000 × 10, four sockets made the read no
 * faster (229 s against 140–171 s with one, ipvsadm 127–203 s in the same run; bench/results/scrape.md).
 */
export const DEFAULT_TABLE_SOCKETS = 1;

export interface KernelReaderOptions {
  readonly sockets?: number;
}

/** The kernel's table through `sockets` netlink sockets. */
export function kernelTableReader(opts: KernelReaderOptions = {}): TableReaderSpec {
  return { module: import.meta.url, options: opts };
}

export async function openTableReader(opts: KernelReaderOptions = {}): Promise<TableReader> {
  const n = Math.max(1, Math.min(16, Math.floor(opts.sockets ?? DEFAULT_TABLE_SOCKETS)));
  const dps: NetlinkDataplane[] = [];
  try {
    for (let i = 0; i < n; i++) dps.push(await NetlinkDataplane.open());
  } catch (e) {
    await Promise.all(dps.map((d) => d.close()));
    throw e;
  }
  return {
    read: (sink) => NetlinkDataplane.dumpInto(dps, sink),
    close: async () => {
      await Promise.all(dps.map((d) => d.close()));
    },
  };
}
