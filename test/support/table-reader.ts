/**
 * A table reader for the table-metrics worker (src/ipvs/table-reader.ts's contract) that serves a
 * fixture table from memory, for host tests without IPVS, as the kernel's reply messages
 * (./ipvs-replies.ts): everything after the socket reads (decoding, worker thread, text, HTTP) is the
 * daemon's code. Files make its behaviour visible and steerable across threads:
 * `log` gets one line per read (`<threadId> <isMainThread>`); while `failFile` exists a read fails
 * as a netlink request would; while `crashFile` exists a read ends the worker thread (exit code 3);
 * while `hangFile` exists a read waits until the reader is closed (a dump the kernel never ends).
 * `socket`: the reader holds a real generic netlink socket (netlink@0.3.0, as the kernel reader
 * does) from open to close, so a test sees what the worker's ending does with one open.
 */
import { createRequire } from 'node:module';
import { appendFileSync, existsSync } from 'node:fs';
import { isMainThread, threadId } from 'node:worker_threads';
import { DataplaneError, makeDest, makeService, type IpvsStats, type IpvsTable } from '../../src/ipvs/model.js';
import type { TableReader } from '../../src/ipvs/table-reader.js';
import { feedSink, tableReplies } from './ipvs-replies.js';

export interface FixtureReaderOptions {
  /** Virtual servers "vs0".."vsN-1" (see fixtureTable)… */
  readonly n: number;
  /** …of `d` real servers each. */
  readonly d: number;
  /** The first service gets one more real server, 198.51.100.99:80, that the configuration does not name. */
  readonly extraDest?: boolean;
  /** The first real server's byte counters (a bigint as decimal text). */
  readonly bytes?: string;
  readonly log?: string;
  readonly failFile?: string;
  readonly crashFile?: string;
  readonly hangFile?: string;
  readonly socket?: boolean;
  /** Each read's counters differ (read k, from 0: every connection counter + k × 1,000,000), so texts of two reads never match. */
  readonly vary?: boolean;
}

const baseStats = (k: number, bytes = BigInt(100 * k)): IpvsStats => ({ conns: k, inpkts: 2 * k, outpkts: 3 * k, inbytes: bytes, outbytes: bytes + 1n, cps: 0, inpps: 0, outpps: 0, inbps: 0, outbps: 0 });

/** The services of vsYaml(n, d) as the kernel would hold them, with made-up counters and weight 0 for each first real server. */
export function fixtureTable(o: FixtureReaderOptions, k = 0): IpvsTable {
  const stats = (x: number, bytes?: bigint) => ({ ...baseStats(x, bytes), conns: x + k * 1_000_000 });
  return Array.from({ length: o.n }, (_, i) => ({
    service: { ...makeService({ protocol: 'tcp', addr: `192.0.2.${1 + (i >> 6)}`, port: 1000 + (i & 63) }), stats: stats(i + 1) },
    dests: [
      ...Array.from({ length: o.d }, (_, j) => ({
        ...makeDest({ addr: `198.51.100.${1 + j}`, port: 80, weight: j === 0 ? 0 : j + 1 }),
        active_conns: j,
        inact_conns: 2 * j,
        stats: i === 0 && j === 0 && o.bytes ? stats(10 * i + j, BigInt(o.bytes)) : stats(10 * i + j),
      })),
      ...(i === 0 && o.extraDest ? [{ ...makeDest({ addr: '198.51.100.99', port: 80 }), stats: stats(1) }] : []),
    ],
  }));
}

/** The configuration (YAML) declaring the services of fixtureTable: real server j has weight j + 1. */
export function vsYaml(n: number, d: number): string {
  const vss = Array.from({ length: n }, (_, i) => `  - name: vs${i}
    address: 192.0.2.${1 + (i >> 6)}
    port: ${1000 + (i & 63)}
    real_servers: [${Array.from({ length: d }, (_, j) => `{ address: 198.51.100.${1 + j}, port: 80, weight: ${j + 1} }`).join(', ')}]`);
  return `virtual_servers:\n${vss.join('\n')}\n`;
}

/** Reads so far in this thread (the worker opens a reader per read). */
let reads = 0;

export async function openTableReader(o: FixtureReaderOptions): Promise<TableReader> {
  const sock = o.socket ? openGenericSocket() : undefined;
  let closed!: () => void;
  const closing = new Promise<void>((resolve) => (closed = resolve));
  return {
    read: async (sink) => {
      if (o.log) appendFileSync(o.log, `${threadId} ${isMainThread}\n`);
      if (o.crashFile && existsSync(o.crashFile)) process.exit(3);
      if (o.failFile && existsSync(o.failFile)) throw new DataplaneError('ETIMEDOUT', 'no answer from the kernel to request 7');
      if (o.hangFile && existsSync(o.hangFile)) {
        await closing;
        throw new DataplaneError('EBADF', 'netlink dataplane closed');
      }
      feedSink(tableReplies(fixtureTable(o, o.vary ? reads++ : 0)), sink);
    },
    close: async () => {
      sock?.close();
      closed();
    },
  };
}

function openGenericSocket(): { close(): void } {
  const nl = createRequire(import.meta.url)('netlink/dist/raw.js') as { RawNetlinkSocket: new (proto: number, o?: object) => { on(ev: string, f: () => void): void; close(): void } };
  const s = new nl.RawNetlinkSocket(16, { messagePeeking: false, msgBufferSize: 64 * 1024 });
  s.on('message', () => {});
  return s;
}
