/**
 * lvsd's own connection sync (sync.channel: lvsd). On the active director it reads the kernel's
 * connection table at a short period and sends new connections and state changes at once over the
 * authenticated channel; on every director it hands the records it receives to its own kernel,
 * through the kernel's backup sync daemon listening on `lo` (a version-1 message sent to
 * 224.0.0.81:8848 via lo is installed like one from a master daemon: verified on the lab kernel).
 * A director that (re)starts asks for the whole table (RESYNC_REQUEST); the active one answers with
 * every entry, then RESYNC_END, which the asker acknowledges.
 *
 * Everything that touches the outside (the /proc read, the channel, the kernel socket, timers) is
 * injected; the daemon wires the real ones (subsystem.ts).
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Logger } from '../core/log.js';
import { decodeMessage, encodeMessages, type SyncConn } from './codec.js';
import { diffTable, parseConnTable, toSyncConn, connKey, destId, type ConnEntry, type SentState, type ServiceLookup } from './conntable.js';
import { FrameType, DATA_STAMP_LEN, type DropReason, type Frame } from './wire.js';
import { peerTimeoutSeconds } from './show.js';

export interface FrameSender {
  send(type: FrameType, payload: Buffer): Promise<void>;
}

export interface EngineDeps {
  readonly log: Logger;
  readonly registry: Registry;
  /** The kernel's table text (/proc/net/ip_vs_conn). */
  readonly readTable: () => Promise<string>;
  readonly channel: FrameSender;
  /** Sends one sync v1 message to the local kernel's backup daemon. */
  readonly inject: (message: Buffer) => Promise<void>;
  readonly lookup: ServiceLookup;
  readonly now: () => number;
  /**
   * Wall clock (ms since the Unix epoch) for the sight time carried in DATA frames: the staleness
   * histogram compares the sender's and the receiver's, so it assumes NTP-synced directors.
   */
  readonly wallNow: () => number;
  /** syncid of the local kernel backup daemon (the message's syncid is rewritten to it). */
  readonly syncid: number;
  /** Largest sync message per frame. */
  readonly maxMessage: number;
  readonly pollMs: number;
}

export interface EngineMetrics {
  records: Counter<'direction'>;
  drops: Counter<'reason'>;
  resyncs: Counter<'role'>;
  resyncSeconds: Histogram;
  peerConns: Gauge;
  polls: Histogram;
  staleness: Histogram;
}

export function engineMetrics(registry: Registry): EngineMetrics {
  const get = <T>(name: string, make: () => T): T => (registry.getSingleMetric(name) as T | undefined) ?? make();
  return {
    records: get('lvsd_sync_records_total', () => new Counter({ name: 'lvsd_sync_records_total', help: 'Connection records sent to / received from the peer director, and installed into the local kernel.', labelNames: ['direction'], registers: [registry] })),
    drops: get('lvsd_sync_dropped_total', () => new Counter({ name: 'lvsd_sync_dropped_total', help: 'Sync datagrams dropped, by reason (malformed, unknown_key, bad_mac, replay, stale_epoch, own, bad_records, inject_error).', labelNames: ['reason'], registers: [registry] })),
    resyncs: get('lvsd_sync_resyncs_total', () => new Counter({ name: 'lvsd_sync_resyncs_total', help: 'Full resyncs, as sender or receiver.', labelNames: ['role'], registers: [registry] })),
    resyncSeconds: get('lvsd_sync_resync_duration_seconds', () => new Histogram({ name: 'lvsd_sync_resync_duration_seconds', help: 'Time from a resync request to its acknowledgement (sender side).', buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10], registers: [registry] })),
    peerConns: get('lvsd_sync_peer_connections', () => new Gauge({ name: 'lvsd_sync_peer_connections', help: 'Connections known from the peer (distinct records received and not expired by their timeout).', registers: [registry] })),
    staleness: get('lvsd_sync_staleness_seconds', () => new Histogram({ name: 'lvsd_sync_staleness_seconds', help: "Per record received: time from the active director's table read that first showed it (new connection, state change) to its hand-over to this director's kernel. Compares the two directors' wall clocks (NTP-synced assumed; a negative difference counts as 0). Full-resync records are not counted.", buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers: [registry] })),
    polls: get('lvsd_sync_table_read_seconds', () => new Histogram({ name: 'lvsd_sync_table_read_seconds', help: 'Time to read and diff the kernel connection table on the active director.', buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1], registers: [registry] })),
  };
}

export class SyncEngine {
  private sent = new Map<string, SentState>();
  private active = false;
  private timer: NodeJS.Timeout | undefined;
  private polling: Promise<void> | undefined;
  private resyncId = 0;
  private readonly pendingResync = new Map<number, number>();
  /** Records received from the peer: key → expiry (ms), for the peer-connections gauge and `sync show`. */
  private readonly fromPeer = new Map<string, { conn: SyncConn; until: number }>();
  readonly m: EngineMetrics;
  private closed = false;
  private installs = 0;

  constructor(private readonly d: EngineDeps) {
    this.m = engineMetrics(d.registry);
  }

  /** Active: read the table and send changes. The first poll after becoming active sends everything. */
  setActive(active: boolean, reason: string): void {
    if (active === this.active || this.closed) return;
    this.d.log.info({ from: this.active ? 'active' : 'passive', to: active ? 'active' : 'passive', reason }, 'sync source');
    this.active = active;
    if (active) {
      this.sent = new Map();
      this.schedule(0);
    } else if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
  }

  get isActive(): boolean {
    return this.active;
  }

  private schedule(ms: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.polling = this.poll().then(() => undefined).finally(() => {
        this.polling = undefined;
        if (this.active && !this.closed) this.schedule(this.d.pollMs);
      });
    }, ms);
  }

  /** One read of the table; sends what changed. Resolves after the frames are handed to the socket. */
  async poll(): Promise<number> {
    const t0 = this.d.now();
    // Taken before the read: an entry the read shows existed by its end, so this errs towards more staleness.
    const sight = this.d.wallNow();
    let entries: ConnEntry[];
    try {
      entries = parseConnTable(await this.d.readTable()).entries;
    } catch (e) {
      this.d.log.warn({ err: (e as Error).message }, 'cannot read the connection table');
      return 0;
    }
    const { changed, next } = diffTable(this.sent, entries, this.d.now());
    this.sent = next;
    this.m.polls.observe((this.d.now() - t0) / 1000);
    if (changed.length) await this.sendEntries(changed, sight);
    return changed.length;
  }

  /** `sight`: wall-clock ms of the table read that showed them; 0 for a full resync (not fresh sightings). */
  private async sendEntries(entries: readonly ConnEntry[], sight: number): Promise<void> {
    const conns = entries.map((e) => toSyncConn(e, this.d.lookup(e)));
    const stamp = Buffer.alloc(DATA_STAMP_LEN);
    stamp.writeBigUInt64BE(BigInt(Math.max(0, Math.floor(sight))));
    for (const msg of encodeMessages(this.d.syncid, conns, this.d.maxMessage)) await this.d.channel.send(FrameType.DATA, Buffer.concat([stamp, msg]));
    this.m.records.inc({ direction: 'sent' }, conns.length);
  }

  /** Ask the active peer for its whole table (at start, and when the peer is seen to restart). */
  async requestResync(): Promise<void> {
    await this.d.channel.send(FrameType.RESYNC_REQUEST, Buffer.alloc(0));
  }

  /** Sends the whole table, then RESYNC_END; resolves with the resync id (acknowledged later). */
  async sendFullTable(): Promise<number> {
    const id = ++this.resyncId;
    this.pendingResync.set(id, this.d.now());
    const entries = parseConnTable(await this.d.readTable()).entries;
    const now = this.d.now();
    for (const e of entries) this.sent.set(connKey(e), { dest: destId(e), state: e.state, at: now, expires: e.expires });
    if (entries.length) await this.sendEntries(entries, 0);
    const end = Buffer.alloc(8);
    end.writeUInt32BE(id, 0);
    end.writeUInt32BE(entries.length, 4);
    await this.d.channel.send(FrameType.RESYNC_END, end);
    this.m.resyncs.inc({ role: 'sender' });
    this.d.log.info({ id, records: entries.length }, 'full table sent to the peer');
    return id;
  }

  private readonly ackWaiters = new Map<number, () => void>();
  private readonly resyncEnded: Array<() => void> = [];

  /**
   * Asks for the active peer's whole table and waits until it has arrived (RESYNC_END), at most
   * timeoutMs (no active peer: nobody answers). Resolves true when the table arrived.
   */
  async resyncFromPeer(timeoutMs: number): Promise<boolean> {
    const done = new Promise<boolean>((resolve) => {
      const t = setTimeout(() => resolve(false), timeoutMs);
      this.resyncEnded.push(() => {
        clearTimeout(t);
        resolve(true);
      });
    });
    await this.requestResync();
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

  /** A verified frame from the peer. */
  async onFrame(f: Frame): Promise<void> {
    switch (f.type) {
      case FrameType.DATA:
        return this.install(f.payload);
      case FrameType.RESYNC_REQUEST:
        if (this.active) await this.sendFullTable();
        return;
      case FrameType.RESYNC_END: {
        if (f.payload.length < 8) return this.drop('bad_records');
        this.resyncEnded.splice(0).forEach((w) => w());
        const ack = Buffer.alloc(4);
        ack.writeUInt32BE(f.payload.readUInt32BE(0), 0);
        this.m.resyncs.inc({ role: 'receiver' });
        await this.d.channel.send(FrameType.RESYNC_ACK, ack);
        return;
      }
      case FrameType.RESYNC_ACK: {
        if (f.payload.length < 4) return this.drop('bad_records');
        const id = f.payload.readUInt32BE(0);
        const t0 = this.pendingResync.get(id);
        if (t0 === undefined) return;
        this.pendingResync.delete(id);
        this.m.resyncSeconds.observe((this.d.now() - t0) / 1000);
        this.ackWaiters.get(id)?.();
        this.ackWaiters.delete(id);
        return;
      }
    }
  }

  drop(reason: DropReason | 'bad_records' | 'inject_error'): void {
    this.m.drops.inc({ reason });
  }

  private async install(data: Buffer): Promise<void> {
    if (data.length < DATA_STAMP_LEN) return this.drop('bad_records');
    const sight = Number(data.readBigUInt64BE(0));
    const payload = data.subarray(DATA_STAMP_LEN);
    const r = decodeMessage(payload);
    if (!r.ok) return this.drop('bad_records');
    const msg = Buffer.from(payload);
    msg[1] = this.d.syncid; // the local backup daemon ignores other sync ids
    try {
      await this.d.inject(msg);
    } catch {
      return this.drop('inject_error');
    }
    const now = this.d.now();
    for (const c of r.message.conns) {
      const k = `${c.protocol}|${Buffer.from(c.caddr).toString('hex')}|${c.cport}|${Buffer.from(c.vaddr).toString('hex')}|${c.vport}|${c.flags & 0x1000 ? 't' : ''}`;
      this.fromPeer.set(k, { conn: c, until: now + peerTimeoutSeconds(c) * 1000 });
    }
    if (sight > 0) this.observeStaleness(sight, r.message.conns.length);
    if (++this.installs % 64 === 0) this.expirePeer(now);
    this.m.peerConns.set(this.fromPeer.size);
    this.m.records.inc({ direction: 'received' }, r.message.conns.length);
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
    for (const [k, v] of this.fromPeer) if (v.until < now) this.fromPeer.delete(k);
  }

  /** Records last received from the peer and not yet expired, with their expiry in ms (for `lvsd sync show`). */
  peerTable(): Array<{ conn: SyncConn; until: number }> {
    this.expirePeer(this.d.now());
    this.m.peerConns.set(this.fromPeer.size);
    return [...this.fromPeer.values()];
  }

  async close(): Promise<void> {
    this.closed = true;
    this.active = false;
    if (this.timer) clearTimeout(this.timer);
    await this.polling;
  }

  /** Sends whatever changed since the last poll (graceful stop: nothing opened just before is lost). */
  async flush(): Promise<void> {
    await this.polling;
    if (this.active) await this.poll();
  }
}
