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
import { readFileSync } from 'node:fs';
import { diffTable, parseConnTable, toSyncConn, connKey, destId, type ConnEntry, type SentState } from './conntable.js';
import { encodeMessages } from './codec.js';
import { serviceLookup, type DeclaredServices } from './lookup.js';
import { DATA_STAMP_LEN } from './wire.js';
import type { TableRequest, TableEvent, TableWorkerData } from './source.js';

const cfg = workerData as TableWorkerData;
const port = parentPort!;
let lookup = serviceLookup({ virtual_servers: cfg.services });
let sent = new Map<string, SentState>();
let active = false;
let timer: NodeJS.Timeout | undefined;

const post = (ev: TableEvent) => port.postMessage(ev);

/**
 * Pause before the next read. Normally poll_interval minus the read's own time (a read every
 * poll_interval). When a read takes longer than poll_interval (a huge table: 100,000 entries take
 * seconds in a loaded guest), the pause is as long as the read itself: reads never overlap (one
 * thread, one read at a time), no timer backlog builds (the next one is armed only after a read
 * ends) and this thread uses at most about half a core, whatever the table size. The delay of a new
 * connection then grows with the table (≈ 2 × the read time), which lvsd_sync_table_read_seconds shows.
 */
function nextDelay(readMs: number): number {
  return readMs > cfg.pollMs ? readMs : cfg.pollMs - readMs;
}

/** One read of every table file: entries, plus lines that could not be parsed (counted, never thrown). */
function read(): { entries: ConnEntry[]; skipped: number; readMs: number; sight: number } {
  const t0 = performance.now();
  // Taken before the read: an entry the read shows existed by its end, so this errs towards more staleness.
  const sight = Date.now();
  const entries: ConnEntry[] = [];
  let skipped = 0;
  for (const p of cfg.paths) {
    const r = parseConnTable(readFileSync(p, 'latin1'));
    for (const e of r.entries) entries.push(e);
    skipped += r.skipped;
  }
  return { entries, skipped, readMs: performance.now() - t0, sight };
}

function encode(entries: readonly ConnEntry[], sight: number): Uint8Array[] {
  if (!entries.length) return [];
  const stamp = Buffer.alloc(DATA_STAMP_LEN);
  stamp.writeBigUInt64BE(BigInt(Math.max(0, Math.floor(sight))));
  return encodeMessages(cfg.syncid, entries.map((e) => toSyncConn(e, lookup(e))), cfg.maxMessage).map((m) => Buffer.concat([stamp, m]));
}

function poll(id: number | undefined): void {
  try {
    const t0 = performance.now();
    const r = read();
    const { changed, next } = diffTable(sent, r.entries, performance.now());
    sent = next;
    const payloads = encode(changed, r.sight);
    const ms = performance.now() - t0;
    post({ ev: 'poll', id, sight: r.sight, payloads, records: changed.length, readMs: ms, skipped: r.skipped });
    if (active && id === undefined) arm(nextDelay(ms));
  } catch (e) {
    post({ ev: 'poll', id, sight: 0, payloads: [], records: 0, readMs: 0, skipped: 0, error: (e as Error).message });
    if (active && id === undefined) arm(cfg.pollMs);
  }
}

/** The whole table from one fresh read (a resync); what the peer now holds is that read. */
function full(id: number): void {
  try {
    const r = read();
    const now = performance.now();
    sent = new Map();
    for (const e of r.entries) sent.set(connKey(e), { dest: destId(e), state: e.state, at: now, expires: e.expires });
    // Sight 0: full-resync records are not fresh sightings (the receiver does not observe staleness for them).
    post({ ev: 'full', id, payloads: encode(r.entries, 0), records: r.entries.length, readMs: r.readMs, skipped: r.skipped });
  } catch (e) {
    post({ ev: 'full', id, payloads: [], records: 0, readMs: 0, skipped: 0, error: (e as Error).message });
  }
}

function arm(ms: number): void {
  if (timer) clearTimeout(timer);
  timer = setTimeout(() => {
    timer = undefined;
    if (active) poll(undefined);
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
      return poll(m.id);
    case 'full':
      return full(m.id);
  }
}

// Reads are synchronous in this thread: requests (and the timer's polls) run strictly one after the other.
port.on('message', handle);
