/**
 * The table-metrics worker thread (node:worker_threads): reads the IPVS table, turns it into the
 * Prometheus text of the per virtual / real server series (./table-text.ts) and hands the text to
 * the main thread in 64 kB Buffers, transferred (not copied). The daemon's event loop only forwards
 * those Buffers to the HTTP response: the 10,001 netlink dumps of a 10,000 × 10 table, their
 * parsing, the garbage they leave and 126 MB of formatting all happen on this thread's loop and heap
 * (a garbage-collector pause here does not pause VRRP).
 *
 * Messages in (TableWorkerRequest) and out (TableWorkerEvent) are the types in ./table-metrics.ts.
 * The main thread asks for one read at a time; reads are chained here as well.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { errorMessage } from '../core/errors.js';
import { LabelText, writeTableText, type DeclaredService } from './table-text.js';
import type { TableReader } from './table-reader.js';
import type { TableWorkerData, TableWorkerEvent, TableWorkerRequest } from './table-metrics.js';

const cfg = workerData as TableWorkerData;
const port = parentPort!;
/** Chunks per message: fewer wake-ups of the main thread (each is a few syscalls, costly in the lab guest). */
const CHUNKS_PER_POST = 16;

/**
 * The reader (its netlink sockets) exists only while a read runs. netlink@0.3.0's addon crashes the
 * whole process (SIGSEGV, seen on Node 20) when a worker thread ends with one of its sockets open —
 * by terminate(), or by the process exiting — so an idle worker holds none, and 'close' closes a
 * running read's sockets before the thread ends by itself.
 */
let reading: TableReader | undefined;
let closing = false;
/** The declared services being received (they come in slices) and the label text of the latest complete list. */
let receiving: DeclaredService[] = [];
let labels = new LabelText([]);
let chain: Promise<void> = Promise.resolve();

const post = (ev: TableWorkerEvent, transfer: ArrayBuffer[] = []) => port.postMessage(ev, transfer);

async function open(): Promise<TableReader> {
  const m = (await import(cfg.reader.module)) as { openTableReader(o: unknown): Promise<TableReader> };
  return m.openTableReader(cfg.reader.options);
}

async function read(id: number, capped: boolean): Promise<void> {
  if (closing) return;
  const t0 = performance.now();
  let table;
  let r: TableReader | undefined;
  try {
    // Fresh sockets per read (a few ms against the seconds a large table takes): nothing a failed
    // read left behind carries over, and none is open between reads.
    r = reading = await open();
    if (closing) throw new Error('the table-metrics worker is closing');
    table = await r.read();
  } catch (e) {
    const code = (e as { errno?: string }).errno ?? (e as { code?: string }).code ?? 'EIO';
    post({ ev: 'failed', id, code: String(code), message: errorMessage(e) });
    return;
  } finally {
    reading = undefined;
    await r?.close().catch(() => undefined);
  }
  const readMs = performance.now() - t0;
  let batch: Buffer[] = [];
  const flush = () => {
    post({ ev: 'chunks', id, chunks: batch }, batch.map((b) => b.buffer as ArrayBuffer));
    batch = [];
  };
  writeTableText(labels.rows(table), capped, (c) => {
    batch.push(c);
    if (batch.length >= CHUNKS_PER_POST) flush();
  });
  if (batch.length) flush();
  post({ ev: 'done', id, readMs, totalMs: performance.now() - t0 });
}

port.on('message', (m: TableWorkerRequest) => {
  switch (m.op) {
    case 'declared':
      if (m.first) receiving = [];
      for (const s of m.services) receiving.push(s);
      if (m.last) {
        labels = new LabelText(receiving);
        receiving = [];
      }
      return;
    case 'read':
      chain = chain.then(() => read(m.id, m.capped));
      return;
    case 'close':
      // A running dump fails at once (its sockets close); then the port closes and the thread ends.
      closing = true;
      void reading?.close();
      chain = chain.then(() => port.close());
      return;
  }
});
