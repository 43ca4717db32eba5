/**
 * Per virtual server and per real server figures, read from the kernel when Prometheus scrapes:
 * connections (active, inactive, total), packets and bytes in each direction, and weights (the
 * configured one and the one in the kernel, which health checks and inhibit_on_failure lower).
 * These are what node_exporter's IPVS collector shows for a director, labelled by lvsd's own names
 * (`virtual_server` = the configured name, `service` = protocol/address:port or fwm/N,
 * `real_server` = address:port) so they join with the health and VRRP metrics.
 *
 * The kernel read and the text are made in a worker thread (./table-worker.ts, ./table-text.ts):
 * at 10,000 services × 10 real servers that is 10,001 netlink dumps and 126 MB of text, seconds of
 * CPU in the lab guest, and on the event loop it stalled VRRP for up to 0.8 s (bench/results/scrape.md).
 * This thread only forwards the worker's finished 64 kB Buffers to the HTTP response (streamed, in
 * the order they come).
 *
 * One kernel read serves a whole scrape and every scrape that starts while it runs or within
 * `cacheMs` (default 1 s, less than any sensible scrape interval) after it ended, so two Prometheus
 * servers scraping at once share one; there is never more than one read at a time. Only services
 * lvsd declares are shown (a table it does not manage is not its business, as in plan()).
 *
 * A read that fails (a netlink error, the worker thread dying) is counted in
 * lvsd_ipvs_table_read_errors_total{reason}, reported to onError (the daemon logs it), and its scrape
 * says so: lvsd_ipvs_table_read_success 0 and no table series — never the previous read's values
 * presented as this one's. If the worker dies after part of the text went out, the response is cut
 * (the scraper records a failed scrape, not a short one). The next scrape starts a new worker.
 * The worker holds the process open only while a read is running (and holds no socket between
 * reads), and stopTableMetrics() ends it.
 *
 * `global.api.table_metrics` can switch all this off, or leave the per-real-server series out of a
 * table with more real servers than `max_real_servers` (a million series is more than most
 * Prometheus setups want from one target).
 */
import { Worker } from 'node:worker_threads';
import type { Registry } from 'prom-client';
import type { VirtualServerConfig } from '../config/model.js';
import type { MetricDoc } from '../metrics/catalogue.js';
import { yieldToLoop, type Clock, type TimerHandle } from '../core/clock.js';
import { LvsdError } from '../core/errors.js';
import { attachExposition, familyHeader } from '../metrics/exposition.js';
import { destKey } from './model.js';
import { TABLE_FAMILIES, type DeclaredService } from './table-text.js';
import type { TableReaderSpec } from './table-reader.js';

export interface TableMetricsSettings {
  /** false: no table series and no kernel read at scrape time. */
  readonly enabled: boolean;
  /** Above this many declared real servers, only the per-virtual-server series are written. */
  readonly max_real_servers: number;
}

export const DEFAULT_TABLE_METRICS: TableMetricsSettings = { enabled: true, max_real_servers: 100_000 };

export type TableReadFailure = 'kernel' | 'worker';

export interface TableMetricsSource {
  /** Where the worker reads the table (./table-reader.ts), or undefined when there is no dataplane (no IPVS, no services): no read, no series. */
  reader(): TableReaderSpec | undefined;
  /** The virtual servers of the running configuration. */
  declared(): readonly VirtualServerConfig[];
  /** global.api.table_metrics of the running configuration (default DEFAULT_TABLE_METRICS). */
  settings?(): TableMetricsSettings | undefined;
  /** now() for the cache; a timer lets go of a read's text once the cache time has passed. */
  readonly clock: Pick<Clock, 'now' | 'setTimeout' | 'clearTimeout'>;
  /** A failed read, already counted (the daemon logs it). */
  onError?(reason: TableReadFailure, message: string): void;
}

/** workerData of ./table-worker.ts. */
export interface TableWorkerData {
  readonly reader: TableReaderSpec;
}
/** main → worker: the declared services (in slices; `last` completes the list), and a read of the table. */
export type TableWorkerRequest =
  | { op: 'declared'; first: boolean; last: boolean; services: DeclaredService[] }
  | { op: 'read'; id: number; capped: boolean }
  /** The slabs of a read no scrape writes any more, given back for the next read's text. */
  | { op: 'recycle'; slabs: number[] }
  /** Close the running read's sockets and end the thread (never terminate() it: table-worker.ts says why). */
  | { op: 'close' };
/** worker → main: the read's text in order, then done (or failed, before any text). */
export type TableWorkerEvent =
  | { ev: 'chunks'; id: number; slabs: Array<[number, SharedArrayBuffer]>; chunks: TableChunk[] }
  | { ev: 'done'; id: number; readMs: number; totalMs: number }
  | { ev: 'failed'; id: number; code: string; message: string };

/** A chunk of text: the first `length` bytes of a slab shared with the worker (table-worker.ts), or a copy. */
export type TableChunk = { slab: number; length: number } | { bytes: Uint8Array };

/** The number of declared real servers (sorry servers included): what max_real_servers caps. */
export function declaredRealServers(declared: readonly VirtualServerConfig[]): number {
  let n = 0;
  for (const v of declared) n += v.real_servers.length + (v.sorry_server ? 1 : 0);
  return n;
}

function declaredService(v: VirtualServerConfig): DeclaredService {
  const rs = v.real_servers.map((r) => r.key);
  const weights = v.real_servers.map((r) => r.weight);
  if (v.sorry_server) {
    rs.push(destKey({ addr: v.sorry_server.address, port: v.sorry_server.port }));
    weights.push(v.sorry_server.weight);
  }
  return { key: v.key, name: v.name, rs, weights };
}

/**
 * Declared services per message to the worker: cloning 500 took 2–14 ms on the loaded host (load 5),
 * several times that in the lab guest; 100 keep a slice to a few ms there.
 */
const DECLARED_SLICE = 100;

const STATUS_FAMILIES: readonly MetricDoc[] = [
  { name: 'lvsd_ipvs_table_read_success', type: 'gauge', labels: [], help: "1 when this scrape's per virtual/real server series come from a complete read of the kernel table, 0 when that read failed (the series are left out; lvsd_ipvs_table_read_errors_total says why)" },
  { name: 'lvsd_ipvs_table_read_seconds', type: 'gauge', labels: [], help: "Time the read this scrape's table series come from took: the kernel dumps and the text, in the table-metrics worker thread" },
  { name: 'lvsd_ipvs_table_read_errors_total', type: 'counter', labels: ['reason'], help: 'Failed reads of the kernel table for the table metrics, by reason (kernel: a netlink request failed or timed out; worker: the worker thread stopped)' },
];

/** One read: its text as it arrives from the worker, then how it ended. Shared by every scrape it serves. */
class Read {
  readonly chunks: Buffer[] = [];
  ended = false;
  /** stopped: lvsd stopped the worker (not counted). */
  failed: { reason: TableReadFailure | 'stopped'; message: string } | undefined;
  seconds = 0;
  /** Scrapes writing this read's text now. */
  users = 0;
  /** No new scrape will be served from it (cache time over, or a newer read). */
  released = false;
  private waiters: Array<() => void> = [];

  /** Slabs (table-worker.ts) the chunks lie in, given back to `worker` when no scrape writes them any more. */
  readonly slabs: number[] = [];
  worker: Worker | undefined;

  push(cs: readonly TableChunk[], slabs: readonly Buffer[]): void {
    for (const c of cs) {
      if ('bytes' in c) {
        this.chunks.push(Buffer.from(c.bytes.buffer, c.bytes.byteOffset, c.bytes.byteLength));
      } else {
        this.chunks.push(slabs[c.slab]!.subarray(0, c.length));
        this.slabs.push(c.slab);
      }
    }
    this.wake();
  }
  end(seconds: number, failed?: Read['failed']): void {
    if (this.ended) return;
    this.ended = true;
    this.seconds = seconds;
    this.failed = failed;
    this.wake();
  }
  /** Resolves once there are more than `n` chunks, or the read ended. */
  more(n: number): Promise<void> {
    if (this.chunks.length > n || this.ended) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }
  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }
}

/** The worker thread and the one read it runs at a time. */
class TableWorker {
  private worker: Worker | undefined;
  private specKey = '';
  /** The declared list the worker has or is being sent (by identity: the running configuration's)… */
  private sent: readonly VirtualServerConfig[] | undefined;
  /** …and the sending of it (resolved once posted whole). */
  private sending: Promise<void> = Promise.resolve();
  private running: { id: number; read: Read; t0: number } | undefined;
  private next = 0;

  constructor(private readonly onEnd: (r: Read) => void) {}

  /** The worker for `spec` (a new one if there is none or the reader changed). */
  private async ensure(spec: TableReaderSpec): Promise<Worker> {
    const key = JSON.stringify(spec);
    if (this.worker && key !== this.specKey) await this.stop();
    return this.worker ?? this.spawn(spec, key);
  }

  /**
   * Sends `declared` to the worker `w` unless it has that list already (or is being sent it). Sends
   * never interleave: a list is sent whole, in slices with a turn of the loop between them (10,000
   * services are ~110,000 strings to clone), after any list still being sent. Resolves once it is all
   * posted, or the worker is gone.
   */
  private declare(w: Worker, declared: readonly VirtualServerConfig[]): Promise<void> {
    if (declared === this.sent) return this.sending;
    this.sent = declared;
    this.sending = this.sending.then(async () => {
      for (let i = 0; i < declared.length || i === 0; i += DECLARED_SLICE) {
        if (i > 0) await yieldToLoop();
        if (this.worker !== w) return; // it died or was stopped meanwhile
        const services = declared.slice(i, i + DECLARED_SLICE).map(declaredService);
        w.postMessage({ op: 'declared', first: i === 0, last: i + DECLARED_SLICE >= declared.length, services } satisfies TableWorkerRequest);
      }
    });
    return this.sending;
  }

  /**
   * Starts the worker and sends it `declared` now (lvsd's start and each reload), so that the first
   * scrape after them does neither: at 10,000 services these were that scrape's longest stall of the
   * event loop (608 ms in the lab guest; bench/results/scrape.md).
   */
  async prime(spec: TableReaderSpec, declared: readonly VirtualServerConfig[]): Promise<void> {
    await this.declare(await this.ensure(spec), declared);
  }

  /** Starts `read` in the worker, after the declared services if they changed. */
  async start(read: Read, spec: TableReaderSpec, declared: readonly VirtualServerConfig[], capped: boolean): Promise<void> {
    const w = await this.ensure(spec);
    const id = ++this.next;
    this.running = { id, read, t0: performance.now() };
    read.worker = w;
    w.ref(); // a scrape is waiting for this read: the process stays up until it ends
    await this.declare(w, declared);
    if (this.worker !== w) return; // it died meanwhile (the read already ended as failed)
    w.postMessage({ op: 'read', id, capped } satisfies TableWorkerRequest);
  }

  private spawn(spec: TableReaderSpec, key: string): Worker {
    const w = new Worker(new URL('./table-worker.js', import.meta.url), { workerData: { reader: spec } satisfies TableWorkerData });
    w.unref();
    this.worker = w;
    this.specKey = key;
    this.sent = undefined;
    this.sending = Promise.resolve();
    let why: string | undefined;
    /** This worker's slabs (table-worker.ts), as Buffers over the shared memory, by index. */
    const slabs: Buffer[] = [];
    w.on('message', (ev: TableWorkerEvent) => {
      if (ev.ev === 'chunks') for (const [i, sab] of ev.slabs) slabs[i] = Buffer.from(sab);
      const r = this.running;
      if (!r || ev.id !== r.id) return;
      if (ev.ev === 'chunks') return r.read.push(ev.chunks, slabs);
      this.running = undefined;
      w.unref();
      if (ev.ev === 'done') r.read.end(ev.totalMs / 1000);
      else r.read.end((performance.now() - r.t0) / 1000, { reason: 'kernel', message: `reading the IPVS table failed: ${ev.message} (${ev.code})` });
      this.onEnd(r.read);
    });
    w.on('error', (e) => (why = e.message));
    w.on('exit', (code) => {
      if (this.worker !== w) return; // stopped on purpose
      this.worker = undefined;
      this.sent = undefined;
      const r = this.running;
      this.running = undefined;
      if (!r) return;
      r.read.end((performance.now() - r.t0) / 1000, { reason: 'worker', message: `the table-metrics worker thread stopped (${why ?? `exit code ${code}`})` });
      this.onEnd(r.read);
    });
    return w;
  }

  /** Gives a read's slabs back to the worker that wrote them (a newer worker has slabs of its own). */
  recycle(r: Read): void {
    const slabs = r.slabs.splice(0);
    r.chunks.length = 0;
    if (this.worker && r.worker === this.worker && slabs.length) this.worker.postMessage({ op: 'recycle', slabs } satisfies TableWorkerRequest);
  }

  /**
   * Ends the worker and waits until its thread is gone; a read still running ends as failed (not
   * counted: lvsd is stopping or the reader changed).
   */
  async stop(): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    this.sent = undefined;
    const r = this.running;
    this.running = undefined;
    r?.read.end(0, { reason: 'stopped', message: 'the table-metrics worker was stopped' });
    if (!w) return;
    const gone = new Promise((resolve) => w.once('exit', resolve));
    w.ref(); // held until the thread has closed its sockets and ended
    w.postMessage({ op: 'close' } satisfies TableWorkerRequest);
    await gone;
  }
}

interface State {
  source: TableMetricsSource;
  worker: TableWorker;
  /** The latest read: shared while it runs and for cacheMs after it ended. */
  read: Read | undefined;
  endedAt: number;
  release: TimerHandle | undefined;
  errors: Record<TableReadFailure, number>;
  /** stopTableMetrics() ran: no new read (and no new worker) until the source is registered again. */
  stopped: boolean;
}
const registryState = new WeakMap<Registry, State>();

/** `name value` lines of the status families, after the read `r` ended. */
function statusText(st: State, r: Read): string {
  const [success, seconds, errors] = STATUS_FAMILIES as [MetricDoc, MetricDoc, MetricDoc];
  return (
    `${familyHeader(success)}${success.name} ${r.failed ? 0 : 1}\n` +
    `${familyHeader(seconds)}${seconds.name} ${r.seconds}\n` +
    `${familyHeader(errors)}${errors.name}{reason="kernel"} ${st.errors.kernel}\n${errors.name}{reason="worker"} ${st.errors.worker}\n`
  );
}

/**
 * Attaches the table metrics to `registry`'s scrape (once per registry; a later call only swaps the
 * source, so a restarted subsystem does not add them twice).
 */
export function registerTableMetrics(registry: Registry, source: TableMetricsSource, opts: { cacheMs?: number } = {}): void {
  const cacheMs = opts.cacheMs ?? 1000;
  const known = registryState.get(registry);
  if (known) {
    known.source = source;
    known.stopped = false;
    return;
  }
  const st: State = {
    source,
    read: undefined,
    endedAt: -Infinity,
    release: undefined,
    errors: { kernel: 0, worker: 0 },
    stopped: false,
    worker: new TableWorker((r) => ended(r)),
  };
  registryState.set(registry, st);

  /** A read ended: counted if it failed, and its text let go of after cacheMs. */
  function ended(r: Read): void {
    const clock = st.source.clock;
    st.endedAt = clock.now();
    const f = r.failed;
    if (f && f.reason !== 'stopped') {
      st.errors[f.reason]++;
      st.source.onError?.(f.reason, f.message);
    }
    // Let go of the text (126 MB at 10,000 × 10) once no new scrape may share it; scrapes still
    // writing it hold their own reference.
    if (st.release) clock.clearTimeout(st.release);
    st.release = clock.setTimeout(() => {
      st.release = undefined;
      if (st.read === r) st.read = undefined;
      release(r);
    }, cacheMs);
  }

  /**
   * No new scrape takes `r`: once the scrapes writing it are done (their responses flushed: see
   * src/metrics/exposition.ts, chunks are borrowed until the iterator is finished), its memory goes
   * back to the worker, not to this thread's garbage collector.
   */
  function release(r: Read): void {
    r.released = true;
    if (r.users > 0 || !r.ended || !r.chunks.length) return;
    st.worker.recycle(r);
  }

  /** The read this scrape is served from: the running one, a fresh one (within cacheMs), or a new one. */
  const current = (settings: TableMetricsSettings): Read | undefined => {
    const r = st.read;
    if (r && (!r.ended || st.source.clock.now() - st.endedAt < cacheMs)) return r;
    if (st.stopped) return undefined;
    const spec = st.source.reader();
    if (!spec) return undefined;
    const declared = st.source.declared();
    const capped = declaredRealServers(declared) > settings.max_real_servers;
    if (r) release(r);
    const read = (st.read = new Read());
    void st.worker.start(read, spec, declared, capped).catch((e: Error) => {
      // Spawning failed (e.g. the worker file is missing): counted like a worker that died.
      if (read.ended) return;
      read.end(0, { reason: 'worker', message: `the table-metrics worker could not be started: ${e.message}` });
      ended(read);
    });
    return read;
  };

  attachExposition(registry, {
    families: [...TABLE_FAMILIES, ...STATUS_FAMILIES],
    async *chunks() {
      const settings = st.source.settings?.() ?? DEFAULT_TABLE_METRICS;
      if (!settings.enabled) return;
      const r = current(settings);
      if (!r) return;
      let i = 0;
      r.users++;
      try {
        for (;;) {
          await r.more(i);
          if (r.failed) break;
          while (i < r.chunks.length) yield r.chunks[i++]!;
          if (r.ended) break;
        }
        // Part of the text already went out: cut the response rather than end it looking complete.
        if (r.failed && i > 0) throw new LvsdError('INTERNAL', r.failed.message);
        yield statusText(st, r);
      } finally {
        r.users--;
        if (r.released) release(r);
      }
    },
  });
}

/**
 * Starts the table-metrics worker of `registry` and sends it the running configuration's virtual
 * servers (the IPVS subsystem's start and reload), when the table metrics are on and there is a
 * table to read; the next scrape then finds both done. The idle worker holds no socket and does not
 * keep the process alive. Never rejects: a worker that cannot start is the next scrape's failure.
 */
export async function primeTableMetrics(registry: Registry): Promise<void> {
  const st = registryState.get(registry);
  if (!st || st.stopped) return;
  if (!(st.source.settings?.() ?? DEFAULT_TABLE_METRICS).enabled) return;
  const spec = st.source.reader();
  if (!spec) return;
  await st.worker.prime(spec, st.source.declared()).catch(() => undefined);
}

/**
 * Ends the table-metrics worker of `registry` (the IPVS subsystem's stop) and waits until its thread
 * is gone; scrapes until the next registerTableMetrics() read nothing (no series).
 */
export async function stopTableMetrics(registry: Registry): Promise<void> {
  const st = registryState.get(registry);
  if (!st) return;
  st.stopped = true;
  if (st.read && !st.read.ended) st.read = undefined;
  await st.worker.stop();
}
