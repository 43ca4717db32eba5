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
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { ConnTableParser, forgotten, mergeStream, recordConnKey, sentRecords, TableDiff, toSyncConn, udpDrops, type ConnEntry, type SentState } from './conntable.js';
import { encodeRecord, messageRecords, packRecords } from './codec.js';
import { serviceLookup } from './lookup.js';
import { DATA_STAMP_LEN } from './wire.js';
import { STREAM_GROUP, type TableRequest, type TableEvent, type TableWorkerData } from './source.js';
import { BUSY_STREAM, nextDelay, pauseAfterStreamRead, READ_SHARE } from './read-pacing.js';
import { loadAfPacket, type KsHandle } from '../election/announce.js';

const cfg = workerData as TableWorkerData;
const port = parentPort!;
let lookup = serviceLookup({ virtual_servers: cfg.services });
/**
 * What the peer was told, connection by connection, with the connection as last read or streamed:
 * the diff's base and the resync answer's only source (full()). A complete read replaces it with
 * the connections that read showed (those gone from the table leave it) plus what the stream sent
 * meanwhile; the stream adds to it between reads. So an answer holds everything this director knows
 * and believes alive: the latest complete read and every stream record since, with no second copy
 * of the table (until h-resync a snapshot of the latest read with the stream's entries laid over it).
 */
let sent = new Map<string, SentState>();
let active = false;
let timer: NodeJS.Timeout | undefined;
/** The read in progress: reads never overlap (a poll asked meanwhile waits for it and reads again). */
let reading: Promise<void> | undefined;
/** Its diff, built as the read goes (forget() and a new active period reach into it). */
let diffing: TableDiff | undefined;
/** A read completed since this director became active: until then the sent-map is not the table, and an answer waits. */
let known = false;
/** When the latest read ended (Date.now()): the age of what an answer holds beyond the stream is logged with the resync. */
let knownAt = 0;
/** Resyncs asked before the first read completed: id and when asked. */
const fullWaiting: Array<[number, number]> = [];

/**
 * Posts an event; its payloads' buffers (encode(): one per event) are transferred, not copied: a
 * 100,000-entry resync answer's 2,635 payloads took 2.8 s to reach the main thread in the lab
 * guest as copies, with a 1.4 s stall of its event loop (bench/results/sync.md 2026-12-05 02:18).
 */
const post = (ev: TableEvent) => {
  const buffers = 'payloads' in ev ? [...new Set(ev.payloads.map((p) => p.buffer))] : [];
  port.postMessage(ev, buffers as ArrayBuffer[]);
};

/** Stream records received since the last read ended (all, sent or already known). */
let streamSinceRead = 0;

/**
 * The kernel stream: the kernel's master sync daemon, started on lo by the sync subsystem while
 * this director is active (channel lvsd), multicasts every connection at its 3rd packet and at
 * every state change (ip_vs_sync.c, ip_vs_sync_conn; sync_threshold 3); with sync_maxlen 1 each
 * buffer holds one record and the next record queues it at once (ip_vs_sync_buff_create: a buffer
 * of max(record + header, maxlen) bytes), so a record leaves within the master thread's 20 ms
 * wake-up (IPVS_SYNC_SEND_DELAY) of the next one; only the last before a pause waits for the 2 s
 * flush (IPVS_SYNC_FLUSH_TIME). The master's socket has IP_MULTICAST_LOOP off, but lo delivers
 * what is sent out of it: this socket, joined to the group on lo, receives every record (lab,
 * bench/sync-kstream.ts). Records are merged into the same sent-map as the reads (mergeStream), so a
 * connection goes to the peer once per state, by whichever source saw it first.
 */
let stream: KsHandle | undefined;
/** The subsystem's word that the master daemon runs (0: no stream, reads only). */
let streamPort = 0;
/** The socket is bound and joined: the reads may be spaced out. */
let streamUp = false;
/**
 * Stream records (each the kernel's record, copied out of its datagram) waiting to be merged and
 * sent together: the first arms STREAM_BATCH_MS; a frame's worth (STREAM_BATCH_RECORDS) or more
 * goes at the end of the socket's batch (onBatch), all of it in one post. One record per DATA
 * frame (the kernel sends one per datagram) cost the peer a frame, a MAC check and a hand-over to
 * its kernel per connection: at ~560 connections/s in the lab the peer fell seconds behind
 * (bench/results/sync.md, 22:17); the reads had batched ~30 records per frame.
 */
let pending: Uint8Array[] = [];
let pendingDrops = 0;
let flushTimer: NodeJS.Timeout | undefined;
const STREAM_BATCH_MS = 10;
/** IPv4 records (36 bytes) in one message of the channel's size (8-byte header). */
const STREAM_BATCH_RECORDS = Math.max(1, Math.floor((cfg.maxMessage - 8) / 36));

function flushStream(): void {
  if (flushTimer) clearTimeout(flushTimer);
  flushTimer = undefined;
  const entries = pending;
  const dropped = pendingDrops;
  streamSinceRead += entries.length;
  pending = [];
  pendingDrops = 0;
  if (!active) return;
  const sight = Date.now();
  // The sent-map's clock is performance.now(), as the reads' (TableDiff.add): a stream entry stamped
  // with Date.now() looked ~1.7e9 s fresher than any read, so its expiry was never refreshed.
  const m = mergeStream(sent, diffing, entries, performance.now());
  post({ ev: 'stream', id: undefined, sight, payloads: encode(m.changed, sight), records: m.changed.length, unchanged: m.unchanged, dropped, overflow: 0, readMs: 0, skipped: 0 });
}

/**
 * The kernel stream has no sequence numbers: a record is lost unseen when this socket's receive
 * buffer is full (this thread busy or not scheduled for seconds; before the addon's socket and its
 * 16 MiB, in a loaded lab guest one run of bench/sync.ts beside 30,000 entries lost 1,045 of 3,601
 * records, 2026-12-04 23:25, and 80 % were lost at 5,000/s, 2026-12-05 04:47). The kernel counts such drops per socket (/proc/net/udp, udpDrops); a count that grew
 * is reported (lvsd_sync_dropped_total{reason="stream_overflow"}) and the reads are not spaced out
 * then, so the records lost are sent by the next read as they were before the stream.
 */
let streamDropsSeen = 0;
function streamDropsNow(): number | undefined {
  try {
    return udpDrops(readFileSync('/proc/net/udp', 'latin1'), STREAM_GROUP, streamPort);
  } catch {
    return undefined;
  }
}
/**
 * Records the stream lost since the last look (0 without a stream), reported to the main thread.
 * At most one look per half OVERFLOW_LOOK_MS: with a small table a read ends every 10–20 ms, and
 * reading /proc/net/udp after each would cost more than the read; drops not looked at yet are
 * counted by the next look (the kernel's count only grows).
 */
let lookedAt = -Infinity;
function streamOverflow(): number {
  if (!streamUp || performance.now() - lookedAt < OVERFLOW_LOOK_MS / 2) return 0;
  lookedAt = performance.now();
  const n = streamDropsNow();
  if (n === undefined) return 0;
  const lost = Math.max(0, n - streamDropsSeen);
  streamDropsSeen = n;
  if (lost) post({ ev: 'stream', id: undefined, sight: Date.now(), payloads: [], records: 0, unchanged: 0, dropped: 0, overflow: lost, readMs: 0, skipped: 0 });
  return lost;
}
/** How often a spaced-out pause looks at the stream's drops: a lost record starts the read at once. */
const OVERFLOW_LOOK_MS = 1000;
/**
 * The peer lost DATA frames whose connections forget() took out of the sent-map: the read that
 * sends them again is not spaced out either (a pause is cut at its next look). A lab run beside
 * 30,000 entries (reads ~30 s apart, spaced 4×, host load 7) had 5,600 such connections wait
 * minutes for it (2026-12-05 01:19).
 */
let repairDue = false;
/** Whether the next read should come without the stream's spacing: records lost on either side. */
const readSoon = (): boolean => repairDue || streamOverflow() > 0;

/** This host's IPv4 addresses (as 32-bit numbers), refreshed at most once a second when a datagram comes from another. */
let localAddrs = new Set<number>();
let localAt = -Infinity;
const ipv4Number = (a: string): number => a.split('.').reduce((n, o) => n * 256 + Number(o), 0);
function isLocal(a: number): boolean {
  if (localAddrs.has(a)) return true;
  if (performance.now() - localAt < 1000) return false;
  localAt = performance.now();
  localAddrs = new Set([ipv4Number('127.0.0.1')]);
  for (const list of Object.values(networkInterfaces())) for (const i of list ?? []) if (i.family === 'IPv4') localAddrs.add(ipv4Number(i.address));
  return localAddrs.has(a);
}

/**
 * One datagram of the stream port. Only the local kernel's master daemon sends there. Its source
 * address is one of this host's, not 127.0.0.1: the master binds its socket to an address
 * inet_select_addr picks for lo with universe scope, i.e. one of another interface (lab: the
 * director's eth0 address). A datagram from the network cannot carry a local source address (a
 * martian, dropped by the kernel: fib_validate_source, accept_local 0). A datagram from another
 * source, of another syncid, or that is not a valid v1 message is counted as a drop (reason
 * "stream") and ignored.
 */
function onStream(buf: Buffer | undefined, from: number): void {
  if (!buf || !isLocal(from) || !messageRecords(buf, spans) || buf[1] !== (cfg.syncid & 0xff)) {
    pendingDrops++;
    return;
  }
  // Each record is forwarded as the kernel wrote it: the kernel's master daemon sends exactly the
  // v1 records the peer's kernel installs (ip_vs_sync_conn_v1: its flags without HASHED, the
  // state's full timeout, options), so lvsd keeps only its own copy (the sent-map's key and
  // record) and decodes and encodes nothing. Decoding into objects, merging them and encoding them
  // again took this thread's whole time at 5,000 records/s in the lab guest, 29 % of it in garbage
  // collection, and it fell ~10,000 records behind the stream (bench/results/sync.md, 2026-12-05
  // 04:57). A copy, not a view: a view would keep the whole batch alive as long as its connection.
  for (let i = 0; i < spans.length; i += 2) {
    const from = spans[i]!;
    const rec = new Uint8Array(spans[i + 1]! - from);
    for (let j = 0; j < rec.length; j++) rec[j] = buf[from + j]!;
    pending.push(rec);
  }
}
/** Record spans of the datagram at hand (messageRecords), one array for all. */
const spans: number[] = [];

/**
 * One batch of the stream socket (native/afpacket ksopen: every datagram waiting when this
 * thread's loop turned, read with recvmmsg): per datagram its IPv4 source (4 bytes), length
 * (be16), flags (be16, 1: truncated: counted as a drop) and payload.
 */
function onBatch(batch: Buffer): void {
  for (let off = 0; off + 8 <= batch.length; ) {
    const end = off + 8 + batch.readUInt16BE(off + 4);
    if (end > batch.length) break;
    onStream((batch[off + 7]! & 1) === 0 ? batch.subarray(off + 8, end) : undefined, batch.readUInt32BE(off));
    off = end;
  }
  if (pending.length >= STREAM_BATCH_RECORDS) flushStream();
  else if (pending.length || pendingDrops) flushTimer ??= setTimeout(flushStream, STREAM_BATCH_MS);
}

/**
 * Receive buffer of the stream socket, asked: the kernel doubles it (socket(7)), 16 MiB of skb
 * truesize, ~768 bytes per one-record datagram from lo: ~20,000 records, 4 s at 5,000 new
 * connections/s, for the stretches this thread spends in a read() of a large table or in a GC
 * between two turns of its loop. Set with SO_RCVBUFFORCE: SO_RCVBUF (Node's setRecvBufferSize) is
 * capped at net.core.rmem_max, 208 KiB by default, which held ~550 datagrams, 0.1 s at 5,000/s.
 */
const STREAM_RCVBUF = 8 * 1024 * 1024;

function openStream(): void {
  if (stream || !streamPort || !active) return;
  try {
    const h = loadAfPacket().ksopen(STREAM_GROUP, streamPort, '127.0.0.1', STREAM_RCVBUF, (err, batch) => {
      if (stream !== h) return;
      if (err) {
        post({ ev: 'streamState', up: false, error: err.message });
        closeStream();
      } else if (batch) onBatch(batch);
    });
    stream = h;
  } catch (e) {
    post({ ev: 'streamState', up: false, error: (e as Error).message });
    return;
  }
  streamDropsSeen = streamDropsNow() ?? 0;
  streamUp = true;
  post({ ev: 'streamState', up: true });
}

function closeStream(): void {
  const sock = stream;
  stream = undefined;
  if (streamUp) post({ ev: 'streamState', up: false });
  streamUp = false;
  pending = [];
  if (flushTimer) clearTimeout(flushTimer);
  flushTimer = undefined;
  if (sock) loadAfPacket().ksclose(sock);
}

/**
 * Longest stretch of this thread's work on a read (read() calls, parsing and diffing their text)
 * before its loop runs: a resync asked meanwhile is answered from the sent-map within about this.
 */
const SLICE_MS = 10;
/**
 * While an answer to a resync is being sent (from full() until the main thread says 'answered'),
 * the table reads wait, at most this long: a read of a 100,000-entry table is O(n²) kernel time and
 * in the lab guest took 40.9 of the 102 CPU seconds of a resync it overlapped (bench/results/sync.md,
 * 2026-12-05 05:23). The kernel stream still brings new connections meanwhile; a read under way
 * pauses between slices, a period's read waits to start. Whoever asks full() says answered() when
 * its answer is sent (the engine, after RESYNC_END; a test's stand-in at once); the cap only covers
 * a main thread that never says it.
 */
const ANSWER_HOLD_MS = 30_000;
let holdTimer: NodeJS.Timeout | undefined;
/** The read under way was asked (pollNow: graceful stop, tests): it is not held. */
let pollAsked = false;
const holdWaiters: Array<() => void> = [];
function hold(): void {
  clearTimeout(holdTimer);
  holdTimer = setTimeout(release, ANSWER_HOLD_MS);
}
function release(): void {
  clearTimeout(holdTimer);
  holdTimer = undefined;
  for (const w of holdWaiters.splice(0)) w();
}
async function whileHeld(): Promise<void> {
  while (holdTimer) await new Promise<void>((r) => holdWaiters.push(r));
}
const chunk = Buffer.allocUnsafe(64 * 1024);

/**
 * One table file, by synchronous read() calls, each call's text handed to onText as it comes,
 * in slices of SLICE_MS. Synchronous, not fs.promises.readFile: in the lab guest each of
 * readFile's steps (open, fstat, read…, close) is a hop to libuv's thread pool and back, and those
 * hops, not the kernel's work, were most of a small table's read (bench/results/sync.md,
 * 2026-12-04). Sliced, and parsed and diffed per call (onText), because a large table takes
 * thousands of read() calls (seq_file returns a page per call) and their parse and diff seconds
 * more (~18 s for 100,000 entries in the guest when they were one step after the read), and this
 * thread must answer a resync from the sent-map meanwhile.
 * While the kernel stream brings records (BUSY_STREAM or more during a slice), a period's read
 * pauses 9× each slice's duration after it (READ_SHARE, as streamDelay spaces whole reads): at
 * 5,000 new connections/s one read of the growing table ran through the whole burst (10.7 s in a
 * loaded lab guest, bench/results/sync.md 2026-12-05 10:30) and the stream's records waited in its
 * socket 1.35 s (p50) for this thread (the 10:59 trace). A read asked (graceful stop) or one that
 * repairs losses (readSoon) does not pause.
 */
async function readSliced(path: string, onText: (text: string) => void): Promise<number> {
  const fd = openSync(path, 'r');
  /** ms this read paused for the stream (returned): the read's own share is already kept by them. */
  let paused = 0;
  try {
    let pos = 0;
    let slice = performance.now();
    let sliceRecords = streamSinceRead;
    for (;;) {
      const n = readSync(fd, chunk, 0, chunk.length, pos);
      if (n === 0) return paused;
      onText(chunk.toString('latin1', 0, n));
      pos += n;
      const spent = performance.now() - slice;
      if (spent > SLICE_MS) {
        // Records since the last check (its slice and pause): a batch of them comes per socket batch.
        const busy = streamUp && streamSinceRead - sliceRecords >= BUSY_STREAM;
        sliceRecords = streamSinceRead;
        await new Promise((r) => setImmediate(r));
        if (!pollAsked) {
          await whileHeld();
          if (busy && !readSoon()) {
            // Counted as asked, not timed: no clock read more (a trapped system call in UML), and a
            // late timer only makes the pause after the read a little longer.
            const ms = Math.min(OVERFLOW_LOOK_MS, spent * (1 / READ_SHARE - 1));
            await new Promise((r) => setTimeout(r, ms));
            paused += ms;
          }
        }
        slice = performance.now();
      }
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * One read of every table file, diffed with `sent` as it goes: the changes, the read's entries,
 * and lines that could not be parsed (counted, never thrown).
 */
async function read(diff: TableDiff): Promise<{ skipped: number; sight: number; paused: number }> {
  // Taken before the read: an entry the read shows existed by its end, so this errs towards more staleness.
  const sight = Date.now();
  // One clock reading per read, not per page: in the lab guest (UML) each is a trapped system
  // call, and expiry is compared in seconds.
  const now = performance.now();
  let skipped = 0;
  let paused = 0;
  for (const p of cfg.paths) {
    const parser = new ConnTableParser();
    const add = (entries: readonly ConnEntry[]) => {
      for (const e of entries) diff.add(e, now);
    };
    paused += await readSliced(p, (text) => add(parser.push(text)));
    add(parser.end());
    skipped += parser.skipped;
  }
  return { skipped, sight, paused };
}

/**
 * The record the peer is sent for a connection a read showed, with the flags, fwmark and timeout
 * the kernel's own master daemon would send (toSyncConn, from the declared virtual servers).
 */
const toRecord = (e: ConnEntry): Uint8Array => encodeRecord(toSyncConn(e, lookup(e)));

/**
 * DATA payloads (sight stamp + sync v1 message) of these records, packed as they are: views into
 * one buffer, which post() transfers to the main thread instead of copying it.
 */
function encode(recs: readonly Uint8Array[], sight: number): Uint8Array[] {
  if (!recs.length) return [];
  const stamp = BigInt(Math.max(0, Math.floor(sight)));
  const payloads = packRecords(cfg.syncid, recs, cfg.maxMessage, DATA_STAMP_LEN);
  if (stamp) for (const p of payloads) p.writeBigUInt64BE(stamp, 0);
  return payloads;
}

/** One read, diffed with what was sent; its changes posted. id: answer to a 'poll' request (none: the period's own). */
async function poll(id: number | undefined): Promise<void> {
  // A period's read waits for an answer being sent; a poll asked (graceful stop, tests) does not
  // (its slices still pause while one is held). Checked again after each wait: one read at a time.
  while (reading || (id === undefined && holdTimer)) await (reading ?? whileHeld());
  let done!: () => void;
  reading = new Promise((r) => (done = r));
  pollAsked = id !== undefined;
  try {
    const t0 = performance.now();
    // What forget() took out before this read, this read sends; later ones reach it through diffing.
    repairDue = false;
    const diff = (diffing = new TableDiff(sent, toRecord));
    const r = await read(diff);
    diff.finish();
    // The sent-map changes here, in one step, at the read's end (a read in progress leaves it as
    // it was, plus the stream's records; what the stream sent meanwhile stays: TableDiff.finish).
    sent = diff.next;
    known = true;
    knownAt = Date.now();
    const payloads = encode(diff.changed, r.sight);
    const ms = performance.now() - t0;
    post({ ev: 'poll', id, sight: r.sight, payloads, records: diff.changed.length, readMs: ms, skipped: r.skipped });
    // Records the stream lost during this read may lie behind its position, and frames the peer
    // lost meanwhile may hold connections it already showed: the next read is not spaced out.
    const records = streamSinceRead;
    streamSinceRead = 0;
    if (active && id === undefined) arm(streamUp && !readSoon() ? pauseAfterStreamRead(ms, r.paused, cfg.pollMs, records) : nextDelay(ms, cfg.pollMs));
  } catch (e) {
    post({ ev: 'poll', id, sight: 0, payloads: [], records: 0, readMs: 0, skipped: 0, error: (e as Error).message });
    if (active && id === undefined) arm(cfg.pollMs);
  } finally {
    reading = undefined;
    diffing = undefined;
    done();
    for (const [f, at] of fullWaiting.splice(0)) full(f, at);
  }
}

/**
 * The whole table as this director knows it (a resync): the sent-map, answered at once, even while
 * a read of a large table is under way (the latest complete read and the stream's records since;
 * whatever that read finds new goes out with its poll, after the answer). Before a read completed
 * in this active period, the answer waits for one.
 */
function full(id: number, at: number): void {
  if (!known) {
    fullWaiting.push([id, at]);
    if (!reading) void poll(undefined);
    return;
  }
  // Sight 0: full-resync records are not fresh sightings (the receiver does not observe staleness for them).
  const t0 = performance.now();
  const entries = sentRecords(sent);
  const payloads = encode(entries, 0);
  const encodeMs = Math.round(performance.now() - t0);
  const now = Date.now();
  hold();
  post({ ev: 'full', id, payloads, records: entries.length, readMs: 0, skipped: 0, workerMs: now - at, encodeMs, snapshotAgeMs: now - knownAt });
}

/**
 * The peer lost the DATA frames with these payloads (DATA_MISSING): their connections leave the
 * sent-map (marked: the answer to a resync still holds them), so the next read's diff sends them
 * as new, in their state then. A connection gone from the table meanwhile is not sent (nothing to tell: the peer's copy expires by its timeout).
 * A read in progress diffs against the same map (entries it has yet to show) and forgets those it
 * already showed in the map it builds.
 */
function forget(payloads: readonly Uint8Array[]): void {
  for (const p of payloads) {
    const m = p.subarray(DATA_STAMP_LEN);
    if (!messageRecords(m, spans)) continue;
    for (let i = 0; i < spans.length; i += 2) {
      const k = recordConnKey(m, spans[i]!);
      const s = sent.get(k);
      if (s) {
        sent.set(k, forgotten(s));
        repairDue = true;
      }
      diffing?.forget(k);
    }
  }
}

function arm(ms: number): void {
  if (timer) clearTimeout(timer);
  const due = performance.now() + ms;
  // A pause longer than OVERFLOW_LOOK_MS (a large table's, spaced out by the stream) is looked
  // through once a second: if records were lost meanwhile (readSoon), the read starts at once.
  const tick = (): void => {
    timer = undefined;
    if (!active) return;
    const left = due - performance.now();
    if (left > 1 && !readSoon()) timer = setTimeout(tick, Math.min(left, OVERFLOW_LOOK_MS));
    else void poll(undefined);
  };
  timer = setTimeout(tick, streamUp ? Math.min(ms, OVERFLOW_LOOK_MS) : ms);
}

function handle(m: TableRequest): void {
  switch (m.op) {
    case 'active':
      if (m.on === active) return;
      active = m.on;
      if (active) {
        // The first read after becoming active sends everything (the peer may know nothing); a
        // read under way still sends what it diffed against the old map, and its map is
        // forgotten so that the next read sends every entry.
        sent = new Map();
        known = false;
        diffing?.forgetAll();
        release(); // an answer of an earlier active period holds nothing now
        arm(0);
        openStream();
      } else {
        if (timer) clearTimeout(timer);
        timer = undefined;
        closeStream();
      }
      return;
    case 'stream':
      if (m.port === streamPort) return;
      closeStream();
      streamPort = m.port;
      openStream();
      return;
    case 'services':
      lookup = serviceLookup({ virtual_servers: m.services });
      return;
    case 'poll':
      return void poll(m.id);
    case 'full':
      return full(m.id, m.at);
    case 'forget':
      return forget(m.payloads);
    case 'answered':
      return release();
  }
}

port.on('message', handle);
