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

let reader: TableReader | undefined;
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
  const t0 = performance.now();
  let table;
  try {
    reader ??= await open();
    table = await reader.read();
  } catch (e) {
    // Start the next read on fresh sockets: whatever state this failure left them in is not its problem.
    const r = reader;
    reader = undefined;
    await r?.close().catch(() => undefined);
    const code = (e as { errno?: string }).errno ?? (e as { code?: string }).code ?? 'EIO';
    post({ ev: 'failed', id, code: String(code), message: errorMessage(e) });
    return;
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
  }
});
