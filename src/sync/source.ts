/**
 * The connection-table source of channel lvsd, main-thread side: owns the worker thread
 * (table-worker.ts) that reads, parses, diffs and encodes the kernel's table, and turns its posts
 * into calls. The engine sees DATA payloads (sight stamp + sync v1 message) ready to seal and send.
 */
import { Worker } from 'node:worker_threads';
import type { DeclaredServices } from './lookup.js';
import { SYNC_GROUP_V4 } from './codec.js';

/** workerData of the table worker. */
export interface TableWorkerData {
  /** Files in the format of /proc/net/ip_vs_conn (tests give their own). */
  readonly paths: readonly string[];
  readonly syncid: number;
  /** Largest sync message per DATA payload. */
  readonly maxMessage: number;
  readonly pollMs: number;
  readonly services: DeclaredServices;
}

/**
 * The group the kernel stream (the master sync daemon on lo, table-worker.ts) is multicast to: the
 * kernel's own IPv4 sync group, as every daemon on lo (one value, one name: it was defined twice).
 */
export const STREAM_GROUP = SYNC_GROUP_V4;

/** main → worker */
export type TableRequest =
  | { op: 'active'; on: boolean }
  /**
   * The kernel's master sync daemon runs on lo sending to STREAM_GROUP:port (0: it does not): the
   * worker listens there while active and spaces its reads out while it does.
   */
  | { op: 'stream'; port: number }
  | { op: 'services'; services: DeclaredServices }
  /** One read now (graceful stop, tests), answered by a 'poll' event with this id. */
  | { op: 'poll'; id: number }
  /** The whole table from the latest complete read (a resync), answered by a 'full' event. at: Date.now() when asked. */
  | { op: 'full'; id: number; at: number }
  /**
   * DATA payloads the peer lost (DATA_MISSING): the worker forgets their connections in its
   * sent-map, so its next read sends their current state (no answer).
   */
  | { op: 'forget'; payloads: Uint8Array[] }
  /** The answer to a 'full' request has been sent: the reads held meanwhile go on. */
  | { op: 'answered' };

interface Answer {
  /** DATA payloads: 8-byte sight stamp (wall-clock ms of the read; 0 in a resync) + one sync v1 message. */
  payloads: Uint8Array[];
  records: number;
  readMs: number;
  /** Lines of the table that could not be parsed (counted, then skipped). */
  skipped: number;
  error?: string;
  /**
   * A 'full' answer only (logged with the resync, so a slow answer says where it waited): ms from
   * the request to the worker's answer, of which encoding it, and the age of the read it was made
   * from (end of that read → answer).
   */
  workerMs?: number;
  encodeMs?: number;
  snapshotAgeMs?: number;
}
/**
 * worker → main: a poll's changes (id: answer to a 'poll' request; none for the worker's own
 * period); the stream's changes (the records of one loop turn of the worker: `unchanged` records
 * the peer had been told already, `dropped` datagrams refused); the stream socket's state.
 */
export type TableEvent =
  | ({ ev: 'poll'; id: number | undefined; sight: number } & Answer)
  | ({ ev: 'stream'; id: undefined; sight: number; unchanged: number; dropped: number; overflow: number } & Answer)
  | ({ ev: 'full'; id: number } & Answer)
  | { ev: 'streamState'; up: boolean; error?: string };

export type PollResult = Answer & { payloads: Buffer[]; stream?: { unchanged: number; dropped: number; overflow: number } };

/** What the engine needs from the table source (WorkerTableSource is the mechanism). */
export interface TableSource {
  /** Active: read every poll interval and report changes through onChanges. */
  setActive(on: boolean): void;
  /** The kernel's master sync daemon runs on lo, sending to this port (0: not running). */
  setStream(port: number): void;
  setServices(services: DeclaredServices): void;
  /** One read now; resolves once onChanges has handled it. */
  pollNow(): Promise<PollResult>;
  /** The whole table, from the latest complete read (one read first if none completed yet). */
  full(): Promise<PollResult>;
  /** The connections of these DATA payloads go again with the next read, in their state then. */
  forget(payloads: readonly Buffer[]): void;
  /** The answer of full() has been sent (the table reads, held since it was asked, go on). */
  answered(): void;
  close(): Promise<void>;
}

const asBuffers = (a: Answer): PollResult => ({ ...a, payloads: a.payloads.map((u) => Buffer.from(u.buffer, u.byteOffset, u.byteLength)) });

export class WorkerTableSource implements TableSource {
  private readonly worker: Worker;
  private next = 0;
  private readonly waiting = new Map<number, { resolve: (r: PollResult) => void; reject: (e: Error) => void }>();
  private closed = false;

  /** Records posted by the worker whose onChanges has not completed yet (onBacklog is told each change). */
  private backlog = 0;

  /** onChanges runs for every poll (periodic and pollNow), in order; its promise is awaited before pollNow resolves. */
  constructor(
    data: TableWorkerData,
    private readonly onChanges: (r: PollResult, sight: number) => Promise<void>,
    private readonly onError: (e: Error) => void,
    private readonly onStreamState: (up: boolean, error?: string) => void = () => undefined,
    private readonly onBacklog: (records: number) => void = () => undefined,
  ) {
    this.worker = new Worker(new URL('./table-worker.js', import.meta.url), { workerData: data });
    this.worker.unref();
    let chain: Promise<void> = Promise.resolve();
    this.worker.on('message', (ev: TableEvent) => {
      if (ev.ev === 'streamState') return this.onStreamState(ev.up, ev.error);
      const r = asBuffers(ev);
      if (ev.ev === 'stream') r.stream = { unchanged: ev.unchanged, dropped: ev.dropped, overflow: ev.overflow };
      const w = ev.id === undefined ? undefined : this.waiting.get(ev.id);
      if (ev.id !== undefined) this.waiting.delete(ev.id);
      // A resync's answer at once: the engine sends it ahead of the polls' frames it has queued
      // (engine.ts, queue). The polls are handled one after the other, so their frames leave in the
      // order the reads saw the table (an older read's frames never overtake a newer one's).
      if (ev.ev === 'full') {
        w?.resolve(r);
        return;
      }
      this.onBacklog((this.backlog += r.records));
      chain = chain
        .then(() => this.onChanges(r, ev.sight))
        .catch((e: Error) => this.onError(e))
        .finally(() => this.onBacklog((this.backlog -= r.records)));
      if (w) void chain.then(() => w.resolve(r));
    });
    this.worker.on('error', (e) => {
      this.onError(e);
      for (const w of this.waiting.values()) w.reject(e);
      this.waiting.clear();
    });
  }

  private ask(op: 'poll' | 'full'): Promise<PollResult> {
    if (this.closed) return Promise.reject(new Error('the table source is closed'));
    const id = ++this.next;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.worker.postMessage((op === 'full' ? { op, id, at: Date.now() } : { op, id }) satisfies TableRequest);
    });
  }

  setActive(on: boolean): void {
    if (!this.closed) this.worker.postMessage({ op: 'active', on } satisfies TableRequest);
  }

  setStream(port: number): void {
    if (!this.closed) this.worker.postMessage({ op: 'stream', port } satisfies TableRequest);
  }

  setServices(services: DeclaredServices): void {
    if (!this.closed) this.worker.postMessage({ op: 'services', services } satisfies TableRequest);
  }

  forget(payloads: readonly Buffer[]): void {
    if (!this.closed && payloads.length) this.worker.postMessage({ op: 'forget', payloads: [...payloads] } satisfies TableRequest);
  }

  answered(): void {
    if (!this.closed) this.worker.postMessage({ op: 'answered' } satisfies TableRequest);
  }

  pollNow(): Promise<PollResult> {
    return this.ask('poll');
  }

  full(): Promise<PollResult> {
    return this.ask('full');
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.worker.terminate();
    for (const w of this.waiting.values()) w.reject(new Error('the table source is closed'));
    this.waiting.clear();
  }
}
