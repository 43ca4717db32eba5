/**
 * The active director's connection-table reader, in a worker thread (node:worker_threads): reads
 * /proc/net/ip_vs_conn, parses, diffs with what was last sent and encodes the changes as sync v1
 * messages, so the daemon's event loop (VRRP adverts, checks, /healthz) never waits on a large table.
 * At 100,000 entries one read + parse costs seconds of CPU in the lab guest; here it costs only this
 * thread's time. The main thread (source.ts) seals and sends what this thread posts.
 *
 * Messages in (TableRequest) and out (TableEvent) are documented on the types in source.ts. Every
 * read is made in this thread's own loop, one at a time: there is never more than one read in
 * flight, so a slow read cannot pile up reads behind it (see nextDelay for the period).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { readFile } from 'node:fs/promises';
import { diffTable, parseConnTable, toSyncConn, type ConnEntry, type SentState } from './conntable.js';
import { encodeMessages } from './codec.js';
import { serviceLookup } from './lookup.js';
import { DATA_STAMP_LEN } from './wire.js';
import type { TableRequest, TableEvent, TableWorkerData } from './source.js';

const cfg = workerData as TableWorkerData;
const port = parentPort!;
let lookup = serviceLookup({ virtual_servers: cfg.services });
let sent = new Map<string, SentState>();
let active = false;
let timer: NodeJS.Timeout | undefined;
/** The read in progress: reads never overlap (a poll asked meanwhile waits for it and reads again). */
let reading: Promise<void> | undefined;
/** The latest complete read's entries: a resync is answered from it at once, not from a new read. */
let snapshot: ConnEntry[] | undefined;
/** Resyncs asked before the first read completed. */
const fullWaiting: number[] = [];

const post = (ev: TableEvent) => port.postMessage(ev);

/**
 * Pause before the next read. Normally poll_interval minus the read's own time (a read every
 * poll_interval). When a read takes longer than poll_interval, the pause is as long as the read
 * itself: reads never overlap (one at a time), no timer backlog builds (the next one is armed only
 * after a read ends) and this thread keeps at most about half a core busy, whatever the table size.
 * The size matters: the kernel prints /proc/net/ip_vs_conn through seq_file a page (~50 entries)
 * per read() call, and every call walks the connection hash from its first bucket to the resume
 * position (ip_vs_conn_seq_start → ip_vs_conn_array), so a full read costs O(n²) kernel time:
 * seconds at 100,000 entries, during which a new connection waits (lvsd_sync_table_read_seconds).
 */
function nextDelay(readMs: number): number {
  return readMs > cfg.pollMs ? readMs : cfg.pollMs - readMs;
}

/** One read of every table file: entries, plus lines that could not be parsed (counted, never thrown). */
async function read(): Promise<{ entries: ConnEntry[]; skipped: number; sight: number }> {
  // Taken before the read: an entry the read shows existed by its end, so this errs towards more staleness.
  const sight = Date.now();
  const entries: ConnEntry[] = [];
  let skipped = 0;
  for (const p of cfg.paths) {
    // Asynchronous (libuv's pool): this thread's loop stays free to answer a resync from the snapshot meanwhile.
    const r = parseConnTable(await readFile(p, 'latin1'));
    for (const e of r.entries) entries.push(e);
    skipped += r.skipped;
  }
  return { entries, skipped, sight };
}

function encode(entries: readonly ConnEntry[], sight: number): Uint8Array[] {
  if (!entries.length) return [];
  const stamp = Buffer.alloc(DATA_STAMP_LEN);
  stamp.writeBigUInt64BE(BigInt(Math.max(0, Math.floor(sight))));
  return encodeMessages(cfg.syncid, entries.map((e) => toSyncConn(e, lookup(e))), cfg.maxMessage).map((m) => Buffer.concat([stamp, m]));
}

/** One read, diffed with what was sent; its changes posted. id: answer to a 'poll' request (none: the period's own). */
async function poll(id: number | undefined): Promise<void> {
  while (reading) await reading;
  let done!: () => void;
  reading = new Promise((r) => (done = r));
  try {
    const t0 = performance.now();
    const r = await read();
    const { changed, next, unique } = diffTable(sent, r.entries, performance.now());
    sent = next;
    snapshot = unique;
    const payloads = encode(changed, r.sight);
    const ms = performance.now() - t0;
    post({ ev: 'poll', id, sight: r.sight, payloads, records: changed.length, readMs: ms, skipped: r.skipped });
    if (active && id === undefined) arm(nextDelay(ms));
  } catch (e) {
    post({ ev: 'poll', id, sight: 0, payloads: [], records: 0, readMs: 0, skipped: 0, error: (e as Error).message });
    if (active && id === undefined) arm(cfg.pollMs);
  } finally {
    reading = undefined;
    done();
    for (const f of fullWaiting.splice(0)) full(f);
  }
}

/**
 * The whole table from the latest read (a resync): answered at once, even while a read of a large
 * table is under way; the sent-map already holds every entry of that read, and whatever changed
 * since goes out with the next poll. Before any read completed, the answer waits for one.
 */
function full(id: number): void {
  if (!snapshot) {
    fullWaiting.push(id);
    if (!reading) void poll(undefined);
    return;
  }
  // Sight 0: full-resync records are not fresh sightings (the receiver does not observe staleness for them).
  post({ ev: 'full', id, payloads: encode(snapshot, 0), records: snapshot.length, readMs: 0, skipped: 0 });
}

function arm(ms: number): void {
  if (timer) clearTimeout(timer);
  timer = setTimeout(() => {
    timer = undefined;
    if (active) void poll(undefined);
  }, ms);
}

function handle(m: TableRequest): void {
  switch (m.op) {
    case 'active':
      if (m.on === active) return;
      active = m.on;
      if (active) {
        // The first read after becoming active sends everything (the peer may know nothing).
        sent = new Map();
        arm(0);
      } else if (timer) {
        clearTimeout(timer);
        timer = undefined;
      }
      return;
    case 'services':
      lookup = serviceLookup({ virtual_servers: m.services });
      return;
    case 'poll':
      return void poll(m.id);
    case 'full':
      return full(m.id);
  }
}

port.on('message', handle);
