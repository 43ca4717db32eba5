/**
 * The table-metrics worker thread (node:worker_threads): reads the IPVS table straight into the
 * columns the text is written from, turns them into the Prometheus text of the per virtual / real
 * server series (./table-text.ts) and hands the text to the main thread in 64 kB slabs of shared
 * memory (named by index, never copied). The daemon's event loop only forwards those slabs to the
 * HTTP response: the 10,001 netlink dumps of a 10,000 × 10 table, their
 * parsing, the garbage they leave and 126 MB of formatting all happen on this thread's loop and heap
 * (a garbage-collector pause here does not pause VRRP).
 *
 * Messages in (TableWorkerRequest) and out (TableWorkerEvent) are the types in ./table-metrics.ts.
 * The main thread asks for one read at a time; reads are chained here as well.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { errorMessage } from '../core/errors.js';
import { CHUNK_BYTES, LabelText, TableColumns, writeTableText, type DeclaredService } from './table-text.js';
import type { TableReader } from './table-reader.js';
import type { TableChunk, TableWorkerData, TableWorkerEvent, TableWorkerRequest } from './table-metrics.js';

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
/** The read's values, reused by every read (./table-text.ts). */
const columns = new TableColumns();
let chain: Promise<void> = Promise.resolve();
/**
 * Chunk memory: slabs of CHUNK_BYTES in SharedArrayBuffers, each announced to the main thread once and
 * then only named by index. The main thread gives a read's slabs back ('recycle') once every scrape
 * of it has written them, and the next read's text reuses them. Transferring fresh buffers instead
 * left the main thread 126 MB (at 10,000 × 10) of new external memory per scrape, whose accounting
 * and freeing ran its garbage collector for 0.2–1.4 s at a time (bench/results/scrape.md): the
 * longest stalls left after the move to this thread. The slabs stay allocated: as many as the
 * largest text so far needed.
 */
const slabs: Buffer[] = [];
const freeSlabs: number[] = [];
const slabIndex = new WeakMap<ArrayBufferLike, number>();
/** Slabs made since the last post, to announce with it. */
let fresh: Array<[number, SharedArrayBuffer]> = [];
const alloc = (): Buffer => {
  let i = freeSlabs.pop();
  if (i === undefined) {
    i = slabs.length;
    const sab = new SharedArrayBuffer(CHUNK_BYTES);
    slabs.push(Buffer.from(sab));
    slabIndex.set(sab, i);
    fresh.push([i, sab]);
  }
  return slabs[i]!;
};

const post = (ev: TableWorkerEvent) => port.postMessage(ev);

async function open(): Promise<TableReader> {
  const m = (await import(cfg.reader.module)) as { openTableReader(o: unknown): Promise<TableReader> };
  return m.openTableReader(cfg.reader.options);
}

async function read(id: number, capped: boolean): Promise<void> {
  if (closing) return;
  const t0 = performance.now();
  let r: TableReader | undefined;
  try {
    // Fresh sockets per read (a few ms against the seconds a large table takes): nothing a failed
    // read left behind carries over, and none is open between reads.
    r = reading = await open();
    if (closing) throw new Error('the table-metrics worker is closing');
    columns.reset(labels);
    await r.read(columns);
  } catch (e) {
    const code = (e as { errno?: string }).errno ?? (e as { code?: string }).code ?? 'EIO';
    post({ ev: 'failed', id, code: String(code), message: errorMessage(e) });
    return;
  } finally {
    reading = undefined;
    await r?.close().catch(() => undefined);
  }
  const readMs = performance.now() - t0;
  let batch: TableChunk[] = [];
  const flush = () => {
    post({ ev: 'chunks', id, slabs: fresh, chunks: batch });
    fresh = [];
    batch = [];
  };
  writeTableText(columns, capped, (c) => {
    const slab = slabIndex.get(c.buffer);
    // A chunk outside the slabs (one line longer than CHUNK_BYTES: a label that long) goes as a copy.
    batch.push(slab === undefined ? { bytes: c } : { slab, length: c.length });
    if (batch.length >= CHUNKS_PER_POST) flush();
  }, alloc);
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
    case 'recycle':
      for (const i of m.slabs) freeSlabs.push(i);
      return;
    case 'close':
      // A running dump fails at once (its sockets close); then the port closes and the thread ends.
      closing = true;
      void reading?.close();
      chain = chain.then(() => port.close());
      return;
  }
});
