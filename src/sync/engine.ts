/**
 * lvsd's own connection sync (sync.channel: lvsd). On the active director it reads the kernel's
 * connection table at a short period and sends new connections and state changes at once over the
 * authenticated channel; on every director it hands the records it receives to its own kernel,
 * through the kernel's backup sync daemon listening on `lo` at sync.handover_port (a version-1
 * message sent to 224.0.0.81 at that port via lo is installed like one from a master daemon:
 * verified on the lab kernel).
 * A director that (re)starts asks for the whole table (RESYNC_REQUEST); the active one answers with
 * every entry in numbered RESYNC_DATA frames, then RESYNC_END; the asker names the frames it lacks
 * (RESYNC_MISSING), the sender resends only those (resend.ts), and the asker acknowledges once it
 * holds them all. A lost ordinary DATA frame (a poll's changes) is named by the receiver from the gap in
 * the sender's sequence numbers (DATA_MISSING; a quiet sender's DATA_TAIL reveals a lost last frame);
 * the sender's table worker then sends those frames' connections again, in their current state.
 *
 * Everything that touches the outside (the /proc read, the channel, the kernel socket, timers) is
 * injected; the daemon wires the real ones (subsystem.ts).
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Logger } from '../core/log.js';
import { decodeMessage, encodeMessage, messageRecords, recordAt, recordKey, type SyncConn } from './codec.js';
import { PeerTable } from './peer-table.js';
import { FrameType, DATA_STAMP_LEN, FRAME_VERSION, type DropReason, type Frame, type SeqRange } from './wire.js';
import { decodeDataMissing, decodeMissing, encodeDataMissing, encodeMissing, indicesOf, missingRanges, MissingNames, SentRing, DATA_MISSING_RANGES_MAX, RESYNC_DATA_HEADER_LEN, type IndexRange, type SeqOwner } from './resend.js';
import type { PollResult, TableSource } from './source.js';
import { yieldToLoop } from '../core/clock.js';

export interface FrameSender {
  /**
   * Resolves with the frame's sequence number once it is handed to the socket. The number is
   * assigned at the call (lastSeq holds it right after): the send queue issues a slice of frames
   * back to back and waits for their hand-over together.
   */
  send(type: FrameType, payload: Buffer): Promise<bigint>;
  /** DATA frames this director's socket can hold: advertised to the sender (RESYNC_PROGRESS). */
  readonly receiveWindow: number;
  /** The sequence number of the last frame send() was called for (DATA_TAIL compares it with the last DATA frame's). */
  readonly lastSeq: bigint;
  /** This director's node id and the epoch of its run: whose sequence numbers a DATA_MISSING names. */
  readonly node: number;
  readonly epoch: bigint;
}

export interface EngineDeps {
  readonly log: Logger;
  readonly registry: Registry;
  /**
   * Opens the kernel-table source (a worker thread reading /proc/net/ip_vs_conn: source.ts); it
   * calls onChanges with the DATA payloads of every read, in order. Called once, when the source is
   * first needed (openReader after the start's resync, or a first activation before it), not at
   * construction: it reads the declared services then.
   */
  readonly openSource: (onChanges: (r: PollResult) => Promise<void>, onError: (e: Error) => void, onStreamState: (up: boolean, error?: string) => void, onBacklog: (records: number) => void) => TableSource;
  readonly channel: FrameSender;
  /** Sends one sync v1 message to the local kernel's backup daemon. */
  readonly inject: (message: Buffer) => Promise<void>;
  readonly now: () => number;
  /**
   * Wall clock (ms since the Unix epoch), compared with the sight time carried in DATA frames (the
   * table worker stamps them with Date.now()): the staleness histogram assumes NTP-synced directors.
   */
  readonly wallNow: () => number;
  /** syncid of the local kernel backup daemon (the message's syncid is rewritten to it). */
  readonly syncid: number;
}

export interface EngineMetrics {
  records: Counter<'direction'>;
  drops: Counter<'reason'>;
  resyncs: Counter<'role'>;
  resent: Counter;
  missingAsks: Counter;
  dataAsked: Counter;
  dataLost: Counter;
  dataResent: Counter;
  dataUnavailable: Counter;
  resyncSeconds: Histogram;
  peerConns: Gauge;
  polls: Histogram;
  staleness: Histogram;
  streamRecords: Counter<'outcome'>;
  streamUp: Gauge;
  sendStalls: Counter;
  backlog: Gauge;
  handoverResent: Counter;
  handoverLost: Counter;
}

export function engineMetrics(registry: Registry): EngineMetrics {
  const get = <T>(name: string, make: () => T): T => (registry.getSingleMetric(name) as T | undefined) ?? make();
  return {
    records: get('lvsd_sync_records_total', () => new Counter({ name: 'lvsd_sync_records_total', help: 'Connection records sent to / received from the peer director, and installed into the local kernel.', labelNames: ['direction'], registers: [registry] })),
    drops: get('lvsd_sync_dropped_total', () => new Counter({ name: 'lvsd_sync_dropped_total', help: 'Sync datagrams dropped, by reason (malformed; version: a frame of another frame version, a peer running an lvsd release that speaks another; unknown_key, bad_mac, replay, stale_epoch, own, bad_records, inject_error; lost: frames missing from the peer\'s sequence, dropped on the way or by this director\'s full socket; kernel_queue: hand-over datagrams the local kernel backup daemon dropped, its socket full (resent: lvsd_sync_handover_resent_total, lvsd_sync_handover_lost_total); table_line: a line of the local /proc connection table that could not be parsed; stream: a datagram on the kernel stream port that is not a v1 message of the local master daemon: a source address not of this host, another syncid, malformed; stream_overflow: kernel stream records lost because the receive buffer of the stream socket was full, as the kernel counts them for it: the next table read is not spaced out and sends them).', labelNames: ['reason'], registers: [registry] })),
    resyncs: get('lvsd_sync_resyncs_total', () => new Counter({ name: 'lvsd_sync_resyncs_total', help: 'Full resyncs, as sender or receiver.', labelNames: ['role'], registers: [registry] })),
    resent: get('lvsd_sync_resync_resent_frames_total', () => new Counter({ name: 'lvsd_sync_resync_resent_frames_total', help: 'Frames of a full-resync answer resent because the peer named them missing (RESYNC_MISSING), on the sender.', registers: [registry] })),
    missingAsks: get('lvsd_sync_resync_missing_requests_total', () => new Counter({ name: 'lvsd_sync_resync_missing_requests_total', help: 'Requests for the missing frames of a full-resync answer (RESYNC_MISSING) sent by this director, the asker.', registers: [registry] })),
    dataAsked: get('lvsd_sync_data_missing_asked_total', () => new Counter({ name: 'lvsd_sync_data_missing_asked_total', help: "Sequence numbers of the peer's frames this director, the receiver, named missing (DATA_MISSING) after seeing a gap; of any frame type (only the sender knows which were DATA frames). Each counted once, though a gap is named in every DATA_MISSING for 1.5 s (at least three).", registers: [registry] })),
    dataLost: get('lvsd_sync_data_missing_frames_total', () => new Counter({ name: 'lvsd_sync_data_missing_frames_total', help: "This director's DATA frames the peer named missing (DATA_MISSING) and still held: their connections go again with the next table read, on the sender.", registers: [registry] })),
    dataResent: get('lvsd_sync_data_resent_connections_total', () => new Counter({ name: 'lvsd_sync_data_resent_connections_total', help: 'Records of DATA frames the peer lost whose connections the table worker was told to send again, in their state at its next read (a connection gone from the table by then is not sent), on the sender.', registers: [registry] })),
    dataUnavailable: get('lvsd_sync_data_resend_unavailable_total', () => new Counter({ name: 'lvsd_sync_data_resend_unavailable_total', help: 'DATA frames the peer named missing that this director no longer held (it keeps 1,024 frames, 2 MiB), each counted once: their connections are not sent again unless they change, on the sender. Numbers older than the last 4,096 evicted DATA frames are counted whatever they were (an upper bound there).', registers: [registry] })),
    resyncSeconds: get('lvsd_sync_resync_duration_seconds', () => new Histogram({ name: 'lvsd_sync_resync_duration_seconds', help: 'Time from a resync request to its acknowledgement (sender side).', buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10], registers: [registry] })),
    peerConns: get('lvsd_sync_peer_connections', () => new Gauge({ name: 'lvsd_sync_peer_connections', help: 'Connections known from the peer (distinct records received and not expired by their timeout).', registers: [registry] })),
    staleness: get('lvsd_sync_staleness_seconds', () => new Histogram({ name: 'lvsd_sync_staleness_seconds', help: "Per record received: time from the active director's table read or kernel stream record that first showed it (new connection, state change) to its hand-over to this director's kernel. Compares the two directors' wall clocks (NTP-synced assumed; a negative difference counts as 0). Full-resync records are not counted.", buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers: [registry] })),
    streamRecords: get('lvsd_sync_stream_records_total', () => new Counter({ name: 'lvsd_sync_stream_records_total', help: "Records of the kernel stream (the kernel's master sync daemon on lo, while this director is active) by outcome: sent (a new connection or a changed state or real server, sent to the peer at once) or known (the peer had been told that state already, by the stream or a table read).", labelNames: ['outcome'], registers: [registry] })),
    streamUp: get('lvsd_sync_stream_up', () => new Gauge({ name: 'lvsd_sync_stream_up', help: "1 while the kernel stream runs (the kernel's master sync daemon on lo and lvsd's socket on its port, active director, channel lvsd): new connections reach the peer without waiting for a table read, and the reads are spaced out. 0: the table reads only.", registers: [registry] })),
    sendStalls: get('lvsd_sync_send_stalls_total', () => new Counter({ name: 'lvsd_sync_send_stalls_total', help: "Times a full window of DATA frames went a second without the peer's progress report, on the sender: the older half of the window was written off and sending went on (after five in a row without any report, unpaced until the next report). Grows with a peer that reads its socket too slowly or whose reports are lost; the frames written off are not resent unless the peer names them missing.", registers: [registry] })),
    backlog: get('lvsd_sync_send_backlog_records', () => new Gauge({ name: 'lvsd_sync_send_backlog_records', help: "Connection records the table worker found (table reads and the kernel stream) that are not yet handed to the socket for the peer, on the active director: queued behind the send pacing or not yet taken by the event loop. Near 0 while the channel keeps up; grows while the peer paces this director or the sender falls behind.", registers: [registry] })),
    handoverResent: get('lvsd_sync_handover_resent_total', () => new Counter({ name: 'lvsd_sync_handover_resent_total', help: "Hand-over datagrams (the peer's records, to this director's kernel backup daemon on lo) sent again because the daemon's socket dropped some (lvsd_sync_dropped_total{reason=\"kernel_queue\"}): the datagrams not yet cleared by a look 100 ms after their send, one at a time into an empty socket.", registers: [registry] })),
    handoverLost: get('lvsd_sync_handover_lost_total', () => new Counter({ name: 'lvsd_sync_handover_lost_total', help: "Hand-over datagrams the kernel backup daemon dropped that the resend did not make good (still dropping after three resends in a row, or dropped as lvsd closed the channel): their records are missing from this director's kernel until the peer sends them again. Should stay 0.", registers: [registry] })),
    polls: get('lvsd_sync_table_read_seconds', () => new Histogram({ name: 'lvsd_sync_table_read_seconds', help: 'Time to read, parse, diff and encode the kernel connection table on the active director (in the table worker thread, off the event loop).', buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers: [registry] })),
  };
}

/**
 * The peer's records are expired (lvsd_sync_peer_connections, `sync show`) at most this often while
 * records arrive: a pass walks every record held, and one every 64 messages made a 100,000-record
 * resync O(n²) (41 passes over up to 100,000 records; bench/sync-resync-host.ts, h-resync).
 */
const PEER_EXPIRE_MS = 1000;

/** A full-resync answer the sender keeps for resends; `sent`: frames of it sent once so far. */
interface Answer {
  readonly id: number;
  readonly payloads: readonly Buffer[];
  readonly records: number;
  sent: number;
  /** When its first frame went out (after the sends queued before it): logged with the resync. */
  began?: number;
}

/** One frame of the send queue; paced (sendData) unless `paced` is false; `sent` runs once it is handed to the socket. */
type OutFrame =
  | { readonly type: FrameType.DATA | FrameType.RESYNC_DATA; readonly payload: Buffer; readonly paced?: true; readonly sent?: () => void }
  | { readonly type: FrameType.RESYNC_END; readonly payload: Buffer; readonly paced: false; readonly sent?: undefined };

/** A job of the send queue (SyncEngine.queue): `next` gives its frames one at a time, undefined at its end. */
interface SendJob {
  readonly urgent: boolean;
  readonly next: () => OutFrame | undefined;
  readonly resolve: () => void;
  readonly reject: (e: Error) => void;
}

/** Longest wait for a peer's full table that is still arriving (resyncFromPeer). */
export const RESYNC_WAIT_CAP_MS = 60_000;

/** Frames sent before the send queue lets timers and I/O run (a 100k table is ~2,700 frames). */
const RESYNC_SLICE = 8;
/** The receiver reports the last DATA frame it read every this many (RESYNC_PROGRESS). */
export const PROGRESS_EVERY = 8;
/**
 * DATA frames in flight at most until the peer advertises its window (sent, not yet reported
 * read). 64 overflowed a peer's default 208 KiB socket in the lab guest (a veth
 * datagram of a full frame takes ~4 KiB of it); 24 did not.
 */
const DEFAULT_WINDOW = 24;
/**
 * A full window without a report for this long: its older half is written off (lost on the way:
 * the receiver counts those as drops `lost`; or a slow peer) and sending goes on.
 */
const PROGRESS_STALL_MS = 1000;
/**
 * This many stalls in a row (no report at all meanwhile) turn pacing off: a director alone, or a
 * peer that stopped reporting, is sent to unpaced (nobody would drain the window), at the cost of
 * those stalls once. Its next report or resync request turns pacing on again. A slow peer that
 * still reports keeps the pacing: each stall only writes off half the window.
 */
const STALLS_TO_UNPACE = 5;
/**
 * Requests in a row that brought nothing new (a RESYNC_MISSING after which no missing frame
 * arrived, or a RESYNC_REQUEST nobody answered) before the asker gives up.
 */
const RESYNC_ATTEMPTS = 5;
/** Largest window honoured, whatever the peer advertises (channel.ts WINDOW_MAX). */
const WINDOW_CAP = 256;
/**
 * Recent DATA frames kept for DATA_MISSING (sender), by count and bytes. A gap is seen at the next
 * frame that arrives and named within 20 ms, so the ask comes back while the sender has sent at
 * most about a window more (WINDOW_CAP: the pacing keeps no more unreported in flight); 1,024
 * frames are four such windows, and the count binds first: a payload is at most ~1.4 KB (channel.ts
 * DEFAULT_FRAME_PAYLOAD), so ~1.4 MB; 2 MiB bounds larger ones. A repeat (the first ask lost) comes
 * 0.5 s or 1.5 s later: at 5,000 new connections a second, ~200 frames later. Unpaced (no peer
 * reports) nothing bounds what is sent meanwhile: older frames are counted unavailable.
 */
const RING_FRAMES = 1024;
const RING_BYTES = 2 * 1024 * 1024;
/**
 * Gaps pending a DATA_MISSING at most (4 frames' worth; each is named until 1.5 s after it was seen:
 * resend.ts DATA_MISSING_SENDS_MS); more are left counted as lost.
 */
const DATA_MISSING_PENDING_MAX = 4 * DATA_MISSING_RANGES_MAX;
/**
 * A burst of DATA frames is over when no DATA frame was sent for one to two of these; if nothing
 * else was sent since its last frame, a DATA_TAIL reveals that frame's number (a lost last frame
 * is then a gap the receiver names).
 */
const TAIL_MS = 200;
/**
 * The quiet period's second look, this long after the first: unless a DATA frame came meanwhile,
 * the burst's last DATA frame is followed by TAIL_FRAMES frames of any kind, DATA_TAIL filling in
 * (none when other frames were sent anyway). One DATA_TAIL only covered one loss: a lost last frame
 * whose DATA_TAIL was lost too stayed hidden until the sender's next frame, minutes on an idle
 * director. A second one, a second later (past the loss that took the first when it was a burst
 * of loss: the peer's socket full while it hands a large read to its kernel, a congested queue),
 * makes that two losses in a row. Not periodic: at most two per burst, then an idle director sends
 * nothing, so three losses in a row stay hidden until its next frame (counted `lost` then).
 */
const TAIL_AGAIN_MS = 1000;
const TAIL_FRAMES = 2;
/**
 * The clock of the DATA_MISSING schedule: the monotonic one setTimeout runs on (deps.now may be a
 * test's frozen clock for the staleness figures).
 */
const mono = (): number => performance.now();

export class SyncEngine {
  private active = false;
  /** Opened at first use (reader): a passive director reads no table. */
  private source: TableSource | undefined;
  private readFailing: string | undefined;
  private resyncId = 0;
  private readonly pendingResync = new Map<number, number>();
  /** Records received from the peer, for the peer-connections gauge and `sync show` (peer-table.ts). */
  private readonly fromPeer = new PeerTable();
  readonly m: EngineMetrics;
  private closed = false;
  /** A frame of another frame version was logged (drop): once per run, every one is counted. */
  private versionWarned = false;
  /** When the peer's records were last expired (deps.now). */
  private expiredAt = -Infinity;

  constructor(private readonly d: EngineDeps) {
    this.m = engineMetrics(d.registry);
  }

  /**
   * The table source, opened the first time it is needed: when this director first becomes active
   * (or is asked for a read). Not at construction: a restarted director is passive and asks for the
   * peer's table first, and the reader's thread (its start, ~1 s of the one CPU in the lab guest)
   * would only compete with that; on a real director it is tens of ms before the first read.
   */
  private get reader(): TableSource {
    if (!this.source) {
      this.source = this.d.openSource(
        (r) => this.onRead(r),
        (e) => this.d.log.error({ err: e.message }, 'connection table worker failed'),
        (up, error) => this.onStreamState(up, error),
        (records) => this.m.backlog.set(records),
      );
      if (this.streamPort) this.source.setStream(this.streamPort);
    }
    return this.source;
  }

  /**
   * Opens the table reader (a worker thread) while passive. The daemon calls it once its start's
   * resync request is out: the request does not wait for the thread's start (issue 18: a restarted
   * director's start), and a later BACKUP → MASTER step does not pay it either (a Worker's
   * construction is ~5–7 ms of the main thread on the host, in the tick that then adds the VIPs).
   */
  openReader(): void {
    if (!this.closed) this.reader.setActive(this.active);
  }

  /** Active: read the table and send changes. The first poll after becoming active sends everything. */
  setActive(active: boolean, reason: string): void {
    if (active === this.active || this.closed) return;
    this.d.log.info({ from: this.active ? 'active' : 'passive', to: active ? 'active' : 'passive', reason }, 'sync source');
    this.active = active;
    if (active) this.reader.setActive(true);
    else this.source?.setActive(false);
  }

  /** The kernel's master sync daemon on lo sends to this port (0: it does not run): see table-worker.ts. */
  private streamPort = 0;
  setStream(port: number): void {
    if (port === this.streamPort || this.closed) return;
    this.streamPort = port;
    this.source?.setStream(port);
  }

  private onStreamState(up: boolean, error?: string): void {
    this.m.streamUp.set(up ? 1 : 0);
    if (error) this.d.log.warn({ err: error }, 'kernel stream socket failed: new connections wait for the table reads');
    else this.d.log.info({ port: this.streamPort }, up ? 'kernel stream up' : 'kernel stream down');
  }

  /** The declared virtual servers changed (reload): forwarding, fwmark and persistence come from them. */
  setServices(services: Parameters<TableSource['setServices']>[0]): void {
    this.source?.setServices(services); // a source opened later is opened with the current ones (EngineDeps.openSource)
  }

  get isActive(): boolean {
    return this.active;
  }

  /** One read of the table now; resolves with the number of records sent, once their frames are handed to the socket. */
  async poll(): Promise<number> {
    return (await this.reader.pollNow()).records;
  }

  /** DATA frames sent and not yet reported read by the peer, oldest first (their sequence numbers). */
  private readonly inFlight: bigint[] = [];
  private peerWindow = DEFAULT_WINDOW;
  /** Stalls in a row without a report from the peer. */
  private stalls = 0;
  /** No peer reports: DATA frames go unpaced (and untracked) until one does. */
  private unpaced = false;
  private progressWaiter: (() => void) | undefined;

  /**
   * Issues one DATA frame, paced: while the peer is reporting and a window of frames is unreported,
   * waits for its next report. Every DATA frame goes through here (polls and resyncs alike), so the
   * first read after becoming active, which sends the whole table, is paced like a resync. Resolves
   * once the frame is issued, with its hand-over to the socket (the caller waits for a slice's
   * hand-overs together: pump).
   */
  private async sendData(payload: Buffer, type: FrameType.DATA | FrameType.RESYNC_DATA = FrameType.DATA): Promise<{ handed: Promise<bigint> }> {
    while (!this.unpaced && this.inFlight.length >= this.peerWindow) {
      const before = this.inFlight.length;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, PROGRESS_STALL_MS);
        this.progressWaiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.progressWaiter = undefined;
      if (this.inFlight.length < before) continue;
      this.m.sendStalls.inc();
      if (++this.stalls >= STALLS_TO_UNPACE) this.paceOff();
      else this.inFlight.splice(0, Math.ceil(before / 2));
    }
    const handed = this.d.channel.send(type, payload);
    const seq = this.d.channel.lastSeq; // assigned at the call (FrameSender.send)
    if (!this.unpaced) this.inFlight.push(seq);
    if (type === FrameType.DATA) {
      this.ring.add(seq, Buffer.from(payload)); // a copy: a view would keep the worker message's whole buffer
      this.lastDataSeq = seq;
      this.dataRecent = true;
      // A new burst during the quiet period's second look: its own first look comes TAIL_MS after it.
      if ((!this.tailTimer || this.tailStep > 0) && !this.closed) this.armTail(0);
    }
    return { handed };
  }

  /** Sender: recent DATA payloads by sequence number (DATA_MISSING). */
  private readonly ring = new SentRing(RING_FRAMES, RING_BYTES);
  private lastDataSeq = 0n;
  /** A DATA frame was sent since the tail timer last looked. */
  private dataRecent = false;
  private tailTimer: NodeJS.Timeout | undefined;
  /** Which look at the quiet period the tail timer is for: 0 (TAIL_MS) or 1 (TAIL_AGAIN_MS). */
  private tailStep = 0;
  private unavailableWarned = false;

  /**
   * Look `step` at a burst's quiet period: still sending, look again; else make sure step + 1 frames
   * (of at most TAIL_FRAMES) followed its last DATA frame, sending a DATA_TAIL if fewer did.
   */
  private armTail(step: number): void {
    clearTimeout(this.tailTimer);
    this.tailStep = step;
    this.tailTimer = setTimeout(() => {
      this.tailTimer = undefined;
      if (this.closed) return;
      if (this.dataRecent) {
        this.dataRecent = false; // still sending: look again
        return this.armTail(0);
      }
      if (this.d.channel.lastSeq - this.lastDataSeq < BigInt(step + 1)) void this.d.channel.send(FrameType.DATA_TAIL, Buffer.alloc(0)).catch(() => undefined);
      if (step + 1 < TAIL_FRAMES) this.armTail(step + 1);
    }, step === 0 ? TAIL_MS : TAIL_AGAIN_MS);
    this.tailTimer.unref?.();
  }

  /**
   * Receiver: each sender's gaps, named (DATA_MISSING) on a schedule (resend.ts MissingNames), by
   * node; a node's gaps of an earlier run are dropped when it starts a new one (its sequence starts
   * again and its new run holds none of those frames).
   */
  private readonly missingNames = new Map<number, { epoch: bigint; names: MissingNames }>();
  private missingTimer: NodeJS.Timeout | undefined;

  /**
   * Receiver: a gap in the sequence numbers of `owner` (the channel's replay guard saw it): name it.
   * Not while this director is active: the peer then sends no DATA frames (its lost frames were
   * control frames), and a peer that was active until now is superseded by this director's own
   * first read.
   */
  private noteLost(owner: SeqOwner, lost: SeqRange): void {
    if (this.closed || this.active) return;
    let m = this.missingNames.get(owner.node);
    if (!m || m.epoch !== owner.epoch) this.missingNames.set(owner.node, (m = { epoch: owner.epoch, names: new MissingNames(DATA_MISSING_PENDING_MAX) }));
    if (m.names.note(lost, mono())) this.armMissing();
  }

  private armMissing(): void {
    let due: number | undefined;
    for (const { names } of this.missingNames.values()) {
      const t = names.nextDue();
      if (t !== undefined && (due === undefined || t < due)) due = t;
    }
    clearTimeout(this.missingTimer);
    this.missingTimer = undefined;
    if (due === undefined || this.closed) return;
    this.missingTimer = setTimeout(() => this.sendMissing(), Math.max(0, Math.ceil(due - mono())));
    this.missingTimer.unref?.();
  }

  /** The pending gaps, when a send is due: every one, in as many DATA_MISSING frames as they need. */
  private sendMissing(): void {
    this.missingTimer = undefined;
    if (this.closed) return;
    if (this.active) return this.missingNames.clear(); // see noteLost
    const now = mono();
    for (const [node, { epoch, names }] of this.missingNames) {
      const { ranges, fresh } = names.take(now);
      this.m.dataAsked.inc(fresh); // each number once, however often it is named
      for (let i = 0; i < ranges.length; i += DATA_MISSING_RANGES_MAX) {
        void this.d.channel.send(FrameType.DATA_MISSING, encodeDataMissing({ node, epoch }, ranges.slice(i, i + DATA_MISSING_RANGES_MAX))).catch(() => undefined);
      }
      if (!names.size) this.missingNames.delete(node);
    }
    this.armMissing();
  }

  /** Sender: the peer names sequence numbers it lacks; the connections of those DATA frames go again with the next read. */
  private resendLost(ranges: readonly SeqRange[]): void {
    const { payloads, unavailable } = this.ring.take(ranges);
    if (unavailable) {
      this.m.dataUnavailable.inc(unavailable);
      if (!this.unavailableWarned) this.d.log.warn({ frames: unavailable }, 'the peer lost sync frames older than those kept for a resend: their connections reach it only when they change');
      this.unavailableWarned = true;
    }
    if (!payloads.length) return;
    let conns = 0;
    for (const p of payloads) conns += p.length > DATA_STAMP_LEN + 4 ? p[DATA_STAMP_LEN + 4]! : 0; // v1 header byte 4: record count
    this.m.dataLost.inc(payloads.length);
    this.m.dataResent.inc(conns);
    this.d.log.info({ frames: payloads.length, connections: conns }, 'the peer lost sync frames: their connections go again with the next read');
    this.source?.forget(payloads);
  }

  private paceOff(): void {
    if (!this.unpaced) this.d.log.info('the peer reports no progress: sync data goes unpaced until it does');
    this.unpaced = true;
    this.inFlight.length = 0;
  }

  /** The peer reported, or asked for the whole table (a new peer: what was in flight before is moot). */
  private peerAlive(fresh: boolean): void {
    this.stalls = 0;
    this.unpaced = false;
    if (fresh) this.inFlight.length = 0;
  }

  /** Every read of the worker (periodic or poll()), in order. */
  private async onRead(r: PollResult): Promise<void> {
    if (r.error) {
      if (this.readFailing !== r.error) this.d.log.warn({ err: r.error }, 'cannot read the connection table');
      this.readFailing = r.error;
      return;
    }
    if (r.stream) {
      if (r.stream.dropped) this.drop('stream', r.stream.dropped);
      if (r.stream.overflow) this.drop('stream_overflow', r.stream.overflow);
      if (r.stream.unchanged) this.m.streamRecords.inc({ outcome: 'known' }, r.stream.unchanged);
      if (r.records) this.m.streamRecords.inc({ outcome: 'sent' }, r.records);
    } else {
      if (this.readFailing) this.d.log.info('connection table readable again');
      this.readFailing = undefined;
      this.m.polls.observe(r.readMs / 1000);
    }
    if (r.skipped) this.m.drops.inc({ reason: 'table_line' }, r.skipped);
    if (this.closed) return;
    let i = 0;
    await this.enqueue(false, () => (i < r.payloads.length ? { type: FrameType.DATA, payload: r.payloads[i++]! } : undefined));
    if (r.records) this.m.records.inc({ direction: 'sent' }, r.records);
  }

  /**
   * The send queue of DATA and RESYNC_DATA frames (control frames go at once): jobs, each a series
   * of frames sent in its order, one frame at a time. A resync answer's job (`urgent`, and its
   * resends) goes before the frames every queued poll has left: the restarted peer waits for the
   * answer, and the polls queued before it are older than the read it was made from (the worker
   * answers from its latest complete read, and posts each read's changes before it can answer from
   * it), so they tell the peer nothing the answer lacks; they are still all sent, after it (a change
   * the answer's read saw is in both). A poll queued after an answer is newer than it and goes
   * after it, in order. The receiver keeps a poll's state over the answer's copy whichever comes
   * second (installAnswer: receipt.polled), so an older poll frame arriving after the answer is
   * corrected by the newer ones that follow it, never the other way round.
   */
  private readonly queue: SendJob[] = [];
  private pumping = false;

  /** Queues a job; resolves once its last frame is handed to the socket. */
  private enqueue(urgent: boolean, next: SendJob['next']): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ urgent, next, resolve, reject });
      void this.pump();
    });
  }

  /**
   * Sends the queue's frames, the first urgent job's first, until it is empty. One pump at a time.
   * The frames of a slice (RESYNC_SLICE) are issued back to back and their hand-overs to the socket
   * awaited together: awaiting each one's (a loop turn per frame: libuv completes a datagram's send
   * in its next turn) made the frames' pace the event loop's, ~1,100 frames/s on the dev host and
   * ~115 in the lab guest (bench/results/sync.md, h-resync), the bound of a full resync once its
   * answer was ready.
   */
  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    const issued: Array<Promise<unknown>> = [];
    const handOver = async () => {
      if (!issued.length) return;
      const all = Promise.all(issued);
      issued.length = 0;
      await all;
    };
    try {
      let sent = 0;
      for (;;) {
        const job = this.queue.find((j) => j.urgent) ?? this.queue[0];
        if (!job) return;
        let f: OutFrame | undefined;
        try {
          f = this.closed ? undefined : job.next();
          if (f) {
            if (f.paced === false) {
              await handOver(); // RESYNC_END after every frame of its answer
              await this.d.channel.send(f.type, f.payload);
            } else issued.push((await this.sendData(f.payload, f.type)).handed);
            f.sent?.();
          } else await handOver(); // a job resolves once its frames are handed to the socket
        } catch (e) {
          this.queue.splice(this.queue.indexOf(job), 1);
          job.reject(e as Error);
          continue;
        }
        if (!f) {
          this.queue.splice(this.queue.indexOf(job), 1);
          job.resolve();
          continue;
        }
        if (++sent % RESYNC_SLICE === 0) {
          await handOver();
          await yieldToLoop(); // adverts, checks and /healthz run between slices
        }
      }
    } finally {
      this.pumping = false;
      // Frames issued before a throw still go out; nothing waits for them.
      void Promise.all(issued).catch(() => undefined);
    }
  }

  /** Receiver: DATA frames read (a report every PROGRESS_EVERY). */
  private handed = 0;
  /**
   * Receiver: the answer being received (the newest one seen: its sender's epoch and resync id),
   * the frame indices held, its size once RESYNC_END told it, and whether a frame new to it
   * arrived since the last RESYNC_MISSING (progress).
   */
  private receipt:
    | {
        epoch: bigint;
        id: number;
        held: Set<number>;
        frames: number | undefined;
        records: number;
        fresh: boolean;
        acked: boolean;
        /** Connections a poll's DATA frame updated since this answer began: newer than the answer's copy. */
        polled: Set<string>;
      }
    | undefined;
  /** Receiver: requests in a row that brought nothing new (RESYNC_ATTEMPTS). */
  private resyncAttempts = 0;
  /**
   * Sender: the frames of the latest answer, kept until the asker acknowledges it or a new answer
   * replaces it, for resends. One answer at most: ~1.4 KB per 38 entries (the payloads the table
   * worker encoded), about 3.7 MB for 100,000 entries.
   */
  private answer: Answer | undefined;
  /** Receiver: the active peer announced its answer (RESYNC_BEGIN). Sender: an answer is being prepared. */
  private resyncBegun = false;
  private answerWaiting = false;

  /** Ask the active peer for its whole table (at start, and when the peer is seen to restart). */
  async requestResync(): Promise<void> {
    this.receipt = undefined;
    this.resyncBegun = false;
    await this.d.channel.send(FrameType.RESYNC_REQUEST, Buffer.alloc(0));
  }

  /** Sends the whole table, then RESYNC_END; resolves with the resync id (acknowledged later). */
  async sendFullTable(): Promise<number> {
    const id = ++this.resyncId;
    const asked = this.d.now();
    this.pendingResync.set(id, asked);
    // The worker's latest complete read (no extra read of a large table; table-worker.ts full()).
    let r: PollResult;
    try {
      r = await this.reader.full();
    } finally {
      this.answerWaiting = false;
    }
    const ready = this.d.now();
    if (r.error) this.d.log.warn({ err: r.error }, 'cannot read the connection table for a resync: sending an empty one');
    if (r.skipped) this.m.drops.inc({ reason: 'table_line' }, r.skipped);
    const answer: Answer = { id, payloads: r.payloads, records: r.records, sent: 0 };
    this.answer = answer;
    try {
      await this.sendAnswer(answer, r.payloads.map((_, i) => i), true);
    } finally {
      this.source?.answered(); // the worker held its reads meanwhile (table-worker.ts ANSWER_HOLD_MS)
    }
    this.m.records.inc({ direction: 'sent' }, r.records);
    this.m.resyncs.inc({ role: 'sender' });
    // Where an answer's time went: the worker (worker_ms; snapshot_age_ms: how old the read it was made from),
    // the hand-over to this thread (ready_ms includes worker_ms), the sends queued before it (queued_ms), its own frames (send_ms).
    const began = answer.began ?? ready;
    this.d.log.info(
      { id, records: r.records, frames: r.payloads.length, ready_ms: Math.round(ready - asked), worker_ms: r.workerMs, encode_ms: r.encodeMs, snapshot_age_ms: r.snapshotAgeMs, queued_ms: Math.round(began - ready), send_ms: Math.round(this.d.now() - began) },
      'full table sent to the peer',
    );
    return id;
  }

  /**
   * Queues frames `indices` of an answer as RESYNC_DATA (paced, ahead of the polls' frames: see
   * queue), then its RESYNC_END; resolves once they are sent. The worker's payload starts with an
   * 8-byte sight stamp (0 in a full read): a copy carries the answer id and the frame index in its
   * place.
   */
  private sendAnswer(a: Answer, indices: readonly number[], first = false): Promise<void> {
    let k = 0;
    return this.enqueue(true, () => {
      if (k > indices.length) return undefined;
      if (k === indices.length) {
        k++;
        const end = Buffer.alloc(12);
        end.writeUInt32BE(a.id, 0);
        end.writeUInt32BE(a.records, 4);
        end.writeUInt32BE(a.payloads.length, 8);
        return { type: FrameType.RESYNC_END, payload: end, paced: false };
      }
      if (first && k === 0) a.began = this.d.now();
      const i = indices[k++]!;
      const p = Buffer.from(a.payloads[i]!);
      p.writeUInt32BE(a.id, 0);
      p.writeUInt32BE(i, 4);
      return { type: FrameType.RESYNC_DATA, payload: p, sent: first ? () => (a.sent = i + 1) : undefined };
    });
  }

  /** A RESYNC_REQUEST, or a RESYNC_MISSING for an answer this director no longer holds: a whole new answer. */
  private async answerRequest(): Promise<void> {
    await this.d.channel.send(FrameType.RESYNC_BEGIN, Buffer.alloc(0));
    // A repeated request while an answer waits to start is served by that answer.
    if (this.answerWaiting) return;
    this.answerWaiting = true;
    await this.sendFullTable();
  }

  private readonly ackWaiters = new Map<number, () => void>();
  private readonly resyncEnded: Array<() => void> = [];

  /** Called for every full-resync record message received (the table is still arriving). */
  private resyncProgress: (() => void) | undefined;

  /**
   * Asks for the active peer's whole table and waits until it has arrived (RESYNC_END). timeoutMs
   * counts silence, not the whole transfer: the wait ends false when timeoutMs pass without a frame
   * of the answer (no active peer: nobody answers; or it stopped mid-way), each resync message
   * restarts it, so a large table that is still arriving is not given up on; RESYNC_WAIT_CAP_MS
   * bounds the whole wait. Resolves true when the table arrived.
   */
  async resyncFromPeer(timeoutMs: number): Promise<boolean> {
    const done = new Promise<boolean>((resolve) => {
      let t: NodeJS.Timeout | undefined;
      const finish = (ok: boolean) => {
        clearTimeout(t);
        clearTimeout(cap);
        if (this.resyncProgress === progress) this.resyncProgress = undefined;
        resolve(ok);
      };
      // One timer, refreshed per resync message (a resync of 100,000 is ~2,600 of them): a
      // clearTimeout and a new Timeout each time took 1.1 s of b's 12.6 s busy in the profiled
      // lab resync (bench/results/sync.md, 2026-12-06 run 8).
      const progress = () => {
        if (t) {
          t.refresh();
          return;
        }
        t = setTimeout(() => {
          // An answer was announced or part of it came, then silence: ask for what is missing (its
          // frames after the last one held, too: RESYNC_END may be lost), or, if no frame of it
          // came at all, for the table again. Bounded: RESYNC_ATTEMPTS requests that bring nothing.
          if ((this.resyncBegun || this.receipt) && this.resyncAttempts < RESYNC_ATTEMPTS) {
            progress();
            if (this.receipt) {
              void this.askMissing('resync stopped arriving').catch(() => undefined);
            } else {
              this.resyncAttempts++;
              this.d.log.warn({ attempt: this.resyncAttempts + 1 }, 'resync announced but no frame of it arrived: asking again');
              void this.requestResync().catch(() => undefined);
            }
            return;
          }
          finish(false);
        }, timeoutMs);
      };
      const cap = setTimeout(() => finish(false), Math.max(timeoutMs, RESYNC_WAIT_CAP_MS));
      progress();
      this.resyncProgress = progress;
      this.resyncEnded.push(() => finish(true));
    });
    this.resyncAttempts = 0;
    await this.requestResync();
    this.d.log.info('asked the peer for its table');
    return done;
  }

  /** Resolves when the peer acknowledges resync `id`, or false after timeoutMs. */
  awaitAck(id: number, timeoutMs: number): Promise<boolean> {
    if (!this.pendingResync.has(id)) return Promise.resolve(true);
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.ackWaiters.delete(id);
        resolve(false);
      }, timeoutMs);
      this.ackWaiters.set(id, () => {
        clearTimeout(t);
        resolve(true);
      });
    });
  }

  /** A verified frame from the peer; `lost`: the peer's sequence numbers it skipped (the channel's replay guard). */
  async onFrame(f: Frame, lost?: SeqRange): Promise<void> {
    if (lost) this.noteLost(f, lost);
    switch (f.type) {
      case FrameType.DATA:
        return this.install(f);
      case FrameType.RESYNC_DATA:
        return this.installAnswer(f);
      case FrameType.RESYNC_REQUEST:
        this.peerAlive(true); // a peer that asks reports its progress: pace the answer
        if (!this.active) return;
        return this.answerRequest();
      case FrameType.RESYNC_MISSING: {
        const r = decodeMissing(f.payload);
        if (!r.ok) return this.drop('bad_records');
        this.peerAlive(false);
        if (!this.active) return;
        const a = this.answer;
        if (!a || a.id !== r.missing.id) return this.answerRequest();
        // Only frames already sent once: the rest of an answer still being sent (the asker's silence
        // was the sender's stall, and it named an open tail) comes in order anyway.
        const indices = indicesOf(r.missing.ranges, a.sent);
        this.m.resent.inc(indices.length);
        this.d.log.info({ id: a.id, frames: indices.length, ranges: r.missing.ranges.length }, 'resending the frames of a resync the peer lacks');
        return this.sendAnswer(a, indices);
      }
      case FrameType.DATA_MISSING: {
        const r = decodeDataMissing(f.payload);
        if (!r.ok) return this.drop('bad_records');
        // Passive: the director that is active now sends its whole table at its first read anyway.
        // Another director's numbers, or those of this director's previous run: not its frames.
        if (this.active && r.owner.node === this.d.channel.node && r.owner.epoch === this.d.channel.epoch) this.resendLost(r.ranges);
        return;
      }
      case FrameType.DATA_TAIL:
        return; // its sequence number was all it carried (the channel saw any gap before it)
      case FrameType.RESYNC_BEGIN:
        this.resyncBegun = true;
        // The peer is alive and preparing the answer (it answers every repeated request so): that
        // request brought something, so the count of requests that brought nothing starts over.
        // Preparing a large table's answer can outlast RESYNC_ATTEMPTS silences (100,000 entries in
        // the lab: 36 s, while the table worker finished parsing a read; bench/results/sync.md
        // 16:23 run); RESYNC_WAIT_CAP_MS still bounds the whole wait.
        this.resyncAttempts = 0;
        this.resyncProgress?.();
        return;
      case FrameType.RESYNC_END: {
        if (f.payload.length < 12) return this.drop('bad_records');
        const id = f.payload.readUInt32BE(0);
        const rc = this.receiptFor(f.epoch, id);
        if (!rc) return; // the end of an older answer than the one being received
        rc.frames = f.payload.readUInt32BE(8);
        this.resyncProgress?.();
        if (rc.held.size < rc.frames) {
          // Frames lost on the way (counted as drops `lost`): ask for those only, a bounded number
          // of times in a row without progress, rather than start the election without them.
          if (this.resyncAttempts < RESYNC_ATTEMPTS) await this.askMissing('resync arrived incomplete');
          return;
        }
        const ack = Buffer.alloc(4);
        ack.writeUInt32BE(id, 0);
        if (!rc.acked) {
          rc.acked = true;
          this.m.resyncs.inc({ role: 'receiver' });
          this.d.log.info({ id, records: rc.records, frames: rc.frames }, 'resync complete');
        }
        await this.d.channel.send(FrameType.RESYNC_ACK, ack);
        this.resyncEnded.splice(0).forEach((w) => w());
        return;
      }
      case FrameType.RESYNC_PROGRESS: {
        if (f.payload.length < 12) return this.drop('bad_records');
        const seq = f.payload.readBigUInt64BE(0);
        this.peerWindow = Math.max(PROGRESS_EVERY * 2, Math.min(WINDOW_CAP, f.payload.readUInt32BE(8)));
        this.peerAlive(false);
        while (this.inFlight.length && this.inFlight[0]! <= seq) this.inFlight.shift();
        this.progressWaiter?.();
        return;
      }
      case FrameType.RESYNC_ACK: {
        if (f.payload.length < 4) return this.drop('bad_records');
        const id = f.payload.readUInt32BE(0);
        const t0 = this.pendingResync.get(id);
        if (t0 === undefined) return;
        this.pendingResync.delete(id);
        if (this.answer?.id === id) this.answer = undefined; // the asker holds it all: no resend will be asked for
        this.m.resyncSeconds.observe((this.d.now() - t0) / 1000);
        this.ackWaiters.get(id)?.();
        this.ackWaiters.delete(id);
        return;
      }
    }
  }

  drop(reason: DropReason | 'bad_records' | 'inject_error' | 'stream' | 'stream_overflow', count = 1): void {
    this.m.drops.inc({ reason }, count);
    if (reason === 'version' && !this.versionWarned) {
      this.versionWarned = true;
      this.d.log.warn({ frameVersion: FRAME_VERSION }, 'sync frames of another frame version arrive and are dropped: is the peer running another lvsd release? Both directors need releases of the same frame version for sync (the first such datagram is logged; all are counted as reason "version")');
    }
  }

  private async install(f: Frame): Promise<void> {
    const data = f.payload;
    if (data.length < DATA_STAMP_LEN) return this.drop('bad_records');
    const sight = Number(data.readBigUInt64BE(0));
    const payload = data.subarray(DATA_STAMP_LEN);
    const spans: number[] = [];
    if (!messageRecords(payload, spans)) return this.drop('bad_records');
    this.reportArrived(f.seq);
    await this.handOver(payload, spans, sight);
  }

  /**
   * The answer being received for a frame of resync `id` from the peer's run `epoch`: a newer one
   * (a new answer, or a restarted sender) replaces the current one; undefined for an older one.
   */
  private receiptFor(epoch: bigint, id: number): NonNullable<SyncEngine['receipt']> | undefined {
    const rc = this.receipt;
    if (rc && (epoch < rc.epoch || (epoch === rc.epoch && id < rc.id))) return undefined;
    if (rc && rc.epoch === epoch && rc.id === id) return rc;
    this.receipt = { epoch, id, held: new Set(), frames: undefined, records: 0, fresh: true, acked: false, polled: new Set() };
    return this.receipt;
  }

  /** A frame of a full-resync answer: installed once per index (a resend of one already held is skipped). */
  private async installAnswer(f: Frame): Promise<void> {
    const data = f.payload;
    if (data.length < RESYNC_DATA_HEADER_LEN) return this.drop('bad_records');
    const payload = data.subarray(RESYNC_DATA_HEADER_LEN);
    let spans: number[] = [];
    if (!messageRecords(payload, spans)) return this.drop('bad_records');
    this.reportArrived(f.seq);
    this.resyncProgress?.(); // the table is still arriving
    const rc = this.receiptFor(f.epoch, data.readUInt32BE(0));
    const index = data.readUInt32BE(4);
    let msg: Buffer = payload;
    if (rc) {
      if (rc.held.has(index)) return;
      rc.held.add(index);
      rc.records += spans.length / 2;
      rc.fresh = true;
      // A resent frame carries the state of the answer's read; a poll since may have sent a newer
      // one (a state change, a closed connection): the answer's copy must not overwrite it.
      if (rc.polled.size) {
        const keep: boolean[] = [];
        for (let i = 0; i < spans.length; i += 2) keep.push(!rc.polled.has(recordKey(payload, spans[i]!)));
        if (keep.includes(false)) {
          if (!keep.includes(true)) return;
          const d = decodeMessage(payload);
          if (!d.ok) return this.drop('bad_records');
          msg = encodeMessage({ syncid: payload[1]!, conns: d.message.conns.filter((_, i) => keep[i]) });
          spans = [];
          if (!messageRecords(msg, spans)) return this.drop('bad_records');
        }
      }
    }
    await this.handOver(msg, spans, 0);
  }

  /** Names the frames of the current answer this director lacks (RESYNC_MISSING). */
  private async askMissing(why: string): Promise<void> {
    const rc = this.receipt;
    if (!rc) return;
    // A request after which nothing new arrived counts towards giving up; progress starts over.
    if (rc.fresh) this.resyncAttempts = 0;
    else this.resyncAttempts++;
    rc.fresh = false;
    const ranges: IndexRange[] = missingRanges(rc.held, rc.frames);
    this.m.missingAsks.inc();
    this.d.log.warn({ id: rc.id, held: rc.held.size, frames: rc.frames, ranges: ranges.length, attempt: this.resyncAttempts + 1 }, `${why}: asking for the missing frames`);
    await this.d.channel.send(FrameType.RESYNC_MISSING, encodeMissing({ id: rc.id, ranges }));
  }

  /**
   * Hands one sync message to the local kernel and keeps its records (these spans: messageRecords)
   * for the gauge and `sync show`: the message's bytes, keyed and timed from them, no record decoded.
   */
  private async handOver(payload: Buffer, spans: readonly number[], sight: number): Promise<void> {
    const msg = Buffer.from(payload);
    msg[1] = this.d.syncid; // the local backup daemon ignores other sync ids
    try {
      await this.d.inject(msg);
    } catch {
      return this.drop('inject_error');
    }
    const now = this.d.now();
    const records = spans.length / 2;
    const rc = sight > 0 && this.receipt && !this.receipt.acked ? this.receipt : undefined;
    if (rc) for (let i = 0; i < spans.length; i += 2) rc.polled.add(recordKey(msg, spans[i]!));
    this.fromPeer.add(msg, spans, now);
    if (sight > 0) this.observeStaleness(sight, records);
    if (now - this.expiredAt >= PEER_EXPIRE_MS) this.expirePeer(now);
    this.m.peerConns.set(this.fromPeer.size);
    this.m.records.inc({ direction: 'received' }, records);
  }

  /**
   * Flow control, receiver side: every PROGRESS_EVERY DATA frames read from the socket, tell the
   * sender the last one's sequence and our window. At arrival, not after the hand-over to the
   * kernel: reports sent after the hand-over came as slowly as the kernel backup daemon drained in
   * a loaded lab guest (~1 s apart), the sender's stalls turned its pacing off and the rest of the
   * resync overflowed the socket. The hand-over queue (LoopbackInjector, 20,000 messages) absorbs
   * the difference; the window protects the socket.
   */
  private reportArrived(seq: bigint): void {
    if (++this.handed % PROGRESS_EVERY !== 0) return;
    const p = Buffer.alloc(12);
    p.writeBigUInt64BE(seq, 0);
    p.writeUInt32BE(this.d.channel.receiveWindow, 8);
    void this.d.channel.send(FrameType.RESYNC_PROGRESS, p).catch(() => undefined);
  }

  private skewWarned = false;

  /** One observation per record (the histogram counts connections, not frames). */
  private observeStaleness(sight: number, records: number): void {
    const ms = this.d.wallNow() - sight;
    if (ms < -1000 && !this.skewWarned) {
      this.skewWarned = true;
      this.d.log.warn({ ahead_ms: -ms }, "the peer's clock is ahead of ours: sync staleness is under-reported (are both directors NTP-synced?)");
    }
    const s = Math.max(0, ms) / 1000;
    for (let i = 0; i < records; i++) this.m.staleness.observe(s);
  }

  private expirePeer(now: number): void {
    this.expiredAt = now;
    this.fromPeer.expire(now);
  }

  /** Records last received from the peer and not yet expired, with their expiry in ms (for `lvsd sync show`). */
  peerTable(): Array<{ conn: SyncConn; until: number }> {
    this.expirePeer(this.d.now());
    this.m.peerConns.set(this.fromPeer.size);
    const out: Array<{ conn: SyncConn; until: number }> = [];
    for (const r of this.fromPeer.entries()) out.push({ conn: recordAt(r.msg, r.off), until: r.until });
    return out;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.active = false;
    clearTimeout(this.tailTimer);
    clearTimeout(this.missingTimer);
    await this.source?.close();
    this.m.streamUp.set(0);
  }

  /** Sends whatever changed since the last poll (graceful stop: nothing opened just before is lost). */
  async flush(): Promise<void> {
    if (this.active && !this.closed) await this.poll();
  }
}
