/**
 * The active director's connection table as the kernel shows it in /proc/net/ip_vs_conn (pure):
 * parse, diff against what was last sent, and turn entries into sync records.
 *
 * Line format (net/netfilter/ipvs/ip_vs_conn.c, ip_vs_conn_seq_show, Linux 6.1):
 *   "TCP C0000232 B67C C0000264 0050 C000020B 0050 ESTABLISHED     899"
 *   proto, client addr/port, virtual addr/port, destination addr/port (hex, network order as a
 *   number), state name, seconds to expiry, then optionally " PENAME PEDATA". IPv6 addresses are
 *   printed %pI6 (eight 4-digit groups). Flags, fwmark and the state's full timeout are not shown:
 *   the forwarding method and fwmark come from the declared virtual servers (the peer's kernel
 *   takes the forwarding method from its own bound real server anyway), a timeout of 0 makes the
 *   receiving kernel use its own per-state timeout, and a template (client port 0, state NONE or
 *   ASSURED) carries its service's persistence timeout.
 */
import { endianness } from 'node:os';
import { ConnFlags, recordFlags, recordState, recordTimeout, type SyncConn } from './codec.js';

export interface ConnEntry {
  readonly family: 4 | 6;
  readonly protocol: number;
  readonly caddr: Uint8Array;
  readonly cport: number;
  readonly vaddr: Uint8Array;
  readonly vport: number;
  readonly daddr: Uint8Array;
  readonly dport: number;
  /** State number for the protocol (template: 0 NONE, 1 ASSURED). */
  readonly state: number;
  readonly stateName: string;
  readonly template: boolean;
  /** Seconds until the entry expires on this director. */
  readonly expires: number;
}

const PROTO: Record<string, number> = { IP: 0, ICMP: 1, TCP: 6, UDP: 17, ICMPv6: 58, SCTP: 132 };
export const PROTO_NAME: Record<number, string> = { 0: 'IP', 1: 'ICMP', 6: 'TCP', 17: 'UDP', 58: 'ICMPv6', 132: 'SCTP' };

/** include/net/ip_vs.h state enums, in order; names as ip_vs_proto_*.c print them. */
export const TCP_STATES = ['NONE', 'ESTABLISHED', 'SYN_SENT', 'SYN_RECV', 'FIN_WAIT', 'TIME_WAIT', 'CLOSE', 'CLOSE_WAIT', 'LAST_ACK', 'LISTEN', 'SYNACK'];
export const SCTP_STATES = ['NONE', 'INIT1', 'INIT', 'COOKIE_SENT', 'COOKIE_REPLIED', 'COOKIE_WAIT', 'COOKIE_ECHOED', 'ESTABLISHED', 'SHUTDOWN_SENT', 'SHUTDOWN_RECEIVED', 'SHUTDOWN_ACK_SENT', 'REJECTED', 'CLOSED'];
export const TEMPLATE_STATES = ['NONE', 'ASSURED'];
const UDP_STATES = ['UDP'];

export function stateName(protocol: number, template: boolean, state: number): string {
  const t = template ? TEMPLATE_STATES : protocol === 6 ? TCP_STATES : protocol === 132 ? SCTP_STATES : protocol === 17 ? UDP_STATES : ['NONE'];
  return t[state] ?? `#${state}`;
}

const HEX8 = /^[0-9A-Fa-f]{8}$/;

function hexAddr(s: string): Uint8Array | undefined {
  if (s.includes(':')) {
    const h = s.replace(/:/g, '');
    return h.length === 32 && /^[0-9a-fA-F]+$/.test(h) ? Uint8Array.from(Buffer.from(h, 'hex')) : undefined;
  }
  if (!HEX8.test(s)) return undefined;
  // One allocation per IPv4 address: this runs three times per entry, every poll (100,000 entries
  // through Buffer.from + Uint8Array.from spent most of a poll in the garbage collector).
  const n = parseInt(s, 16);
  return Uint8Array.of(n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255);
}

/** One line of the table (not the header): its entry, or undefined if it cannot be read. */
function parseLine(l: string): ConnEntry | undefined {
  const f = l.split(/\s+/);
  const protocol = PROTO[f[0]!];
  const caddr = hexAddr(f[1] ?? '');
  const vaddr = hexAddr(f[3] ?? '');
  const daddr = hexAddr(f[5] ?? '');
  const name = f[7] ?? '';
  const expires = Number(f[8]);
  if (protocol === undefined || !caddr || !vaddr || !daddr || caddr.length !== vaddr.length || !Number.isFinite(expires)) return undefined;
  const cport = parseInt(f[2]!, 16);
  const template = cport === 0 && (name === 'ASSURED' || name === 'NONE');
  const table = template ? TEMPLATE_STATES : protocol === 6 ? TCP_STATES : protocol === 132 ? SCTP_STATES : protocol === 17 ? UDP_STATES : ['NONE'];
  const state = Math.max(0, table.indexOf(name));
  return { family: caddr.length === 16 ? 6 : 4, protocol, caddr, cport, vaddr, vport: parseInt(f[4]!, 16), daddr, dport: parseInt(f[6]!, 16), state, stateName: name, template, expires };
}

/**
 * Parses one table file's text in pieces as they are read (the table worker parses each read()
 * call's page as it comes, so that a large table's parse is sliced with its read): push() returns
 * the entries of the complete lines so far, end() those of a last line without a newline. The first
 * line is the header. Lines it cannot read are skipped and counted.
 */
export class ConnTableParser {
  private carry = '';
  private header = true;
  skipped = 0;

  push(text: string): ConnEntry[] {
    const lines = (this.carry + text).split('\n');
    this.carry = lines.pop()!;
    return this.lines(lines);
  }

  end(): ConnEntry[] {
    const last = this.carry;
    this.carry = '';
    return this.lines([last]);
  }

  private lines(lines: readonly string[]): ConnEntry[] {
    const entries: ConnEntry[] = [];
    for (const l of lines) {
      if (this.header) {
        this.header = false;
        continue;
      }
      if (!l) continue;
      const e = parseLine(l);
      if (e) entries.push(e);
      else this.skipped++;
    }
    return entries;
  }
}

/** Parses /proc/net/ip_vs_conn; lines it cannot read are skipped and counted. */
export function parseConnTable(text: string): { entries: ConnEntry[]; skipped: number } {
  const p = new ConnTableParser();
  const entries = p.push(text);
  for (const e of p.end()) entries.push(e);
  return { entries, skipped: p.skipped };
}

/**
 * Identity of a connection in the kernel's table (the tuple ip_vs_conn_in_get hashes), as a map key:
 * its bytes (protocol, template bit, client and virtual port, client and virtual address; a
 * template's real server too) as a latin1 string, built the same way from a parsed /proc line
 * (connKey) and from a sync v1 record's bytes (recordConnKey), so a kernel stream record and the read's
 * line of the same connection meet under one key without decoding the record. Templates of one
 * client and service differ by real server only when the service changed; their key holds daddr so
 * a re-pinned client is sent again. (Until h-fwd, 2026-12-05, a template string of decimal and hex
 * fields, built per record of the stream and of every read.)
 */
const keyBytes = Buffer.alloc(6 + 3 * 16);
function keyOf(n: number): string {
  return keyBytes.toString('latin1', 0, n);
}

export function connKey(e: Pick<ConnEntry, 'protocol' | 'caddr' | 'cport' | 'vaddr' | 'vport' | 'template' | 'daddr'>): string {
  const k = keyBytes;
  k[0] = e.protocol;
  k[1] = e.template ? 1 : 0;
  k[2] = e.cport >>> 8;
  k[3] = e.cport & 255;
  k[4] = e.vport >>> 8;
  k[5] = e.vport & 255;
  const alen = e.caddr.length;
  k.set(e.caddr, 6);
  k.set(e.vaddr, 6 + alen);
  if (!e.template) return keyOf(6 + 2 * alen);
  k.set(e.daddr, 6 + 2 * alen);
  return keyOf(6 + 3 * alen);
}

/**
 * connKey of the connection of the sync v1 record at off of b (a valid record: messageRecords). Not
 * codec's recordKey (the peer's table, keyed without a template's real server): this one must meet
 * the key of the same connection's /proc line.
 */
export function recordConnKey(b: Uint8Array, off: number): string {
  const k = keyBytes;
  const template = (recordFlags(b, off) & ConnFlags.TEMPLATE) !== 0;
  const alen = b[off] === 1 ? 16 : 4;
  k[0] = b[off + 1]!;
  k[1] = template ? 1 : 0;
  k[2] = b[off + 10]!;
  k[3] = b[off + 11]!;
  k[4] = b[off + 12]!;
  k[5] = b[off + 13]!;
  const n = 6 + (template ? 3 : 2) * alen;
  for (let i = 6, j = off + 24; i < n; i++, j++) k[i] = b[j]!;
  return keyOf(n);
}

/** Whether a record (as sent) tells the entry's state and real server (dport at 14, daddr after caddr and vaddr). */
function recordMatches(rec: Uint8Array, e: Pick<ConnEntry, 'state' | 'dport' | 'daddr'>): boolean {
  if (recordState(rec, 0) !== e.state || ((rec[14]! << 8) | rec[15]!) !== e.dport) return false;
  const a = e.daddr;
  const at = 24 + 2 * a.length;
  if (rec.length < at + a.length) return false;
  for (let i = 0; i < a.length; i++) if (rec[at + i] !== a[i]) return false;
  return true;
}

/** Whether two records of one connection tell the same state and real server. */
function sameState(a: Uint8Array, b: Uint8Array): boolean {
  const alen = a[0] === 1 ? 16 : 4;
  if (b[0] !== a[0]) return false;
  for (let i = 8; i < 10; i++) if (a[i] !== b[i]) return false;
  for (let i = 14; i < 16; i++) if (a[i] !== b[i]) return false;
  for (let i = 24 + 2 * alen; i < 24 + 3 * alen; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** What the declared virtual servers tell about a service: forwarding, fwmark, persistence timeout. */
export interface ServiceFacts {
  readonly forwarding: 'nat' | 'dr' | 'tun';
  readonly fwmark: number;
  readonly persistence: number;
}
export type ServiceLookup = (e: ConnEntry) => ServiceFacts | undefined;

const FWD = { nat: ConnFlags.MASQ, dr: ConnFlags.DROUTE, tun: ConnFlags.TUNNEL } as const;

/** A sync record for an entry, with the flags the kernel's own master daemon would send. */
export function toSyncConn(e: ConnEntry, facts: ServiceFacts | undefined): SyncConn {
  const fwd = FWD[facts?.forwarding ?? 'nat'];
  let flags: number = fwd;
  if (fwd !== ConnFlags.MASQ) flags |= ConnFlags.NOOUTPUT;
  // Active connections are ESTABLISHED TCP/SCTP ones; the kernel marks everything else inactive.
  const established = (e.protocol === 6 && e.state === 1) || (e.protocol === 132 && e.state === 7);
  if (e.template || !established) flags |= ConnFlags.INACTIVE;
  if (e.template) flags |= ConnFlags.TEMPLATE;
  return {
    family: e.family,
    protocol: e.protocol,
    flags,
    state: e.state,
    cport: e.cport,
    vport: e.vport,
    dport: e.dport,
    fwmark: facts?.fwmark ?? 0,
    timeout: e.template ? facts?.persistence || Math.max(1, e.expires) : 0,
    caddr: e.caddr,
    vaddr: e.vaddr,
    daddr: e.daddr,
  };
}

/**
 * What the peer was last told about a connection: the record as sent (its own bytes: the one built
 * from a read's line, or the kernel stream's own record), when, and the expiry the connection had
 * then (s). A read that finds the connection unchanged keeps this state. The sent-map
 * (table-worker.ts) is also what a resync is answered from (every connection read or streamed and
 * still in the table at the latest read): its records are packed as they are, so one map, not a
 * second snapshot, holds what the peer should have, and an answer re-encodes nothing. `lost`: the
 * peer lost it (forgotten()).
 */
export interface SentState {
  readonly rec: Uint8Array;
  readonly at: number;
  readonly expires: number;
  readonly lost: boolean;
}

/**
 * The peer lost what it was told of this connection (DATA_MISSING): a state that matches no entry,
 * so the next read or stream record that shows it sends it again; the connection stays in the map
 * (a resync answer still holds it).
 */
export function forgotten(s: SentState): SentState {
  return { rec: s.rec, at: s.at, expires: s.expires, lost: true };
}

/**
 * Entries the peer must hear about now: new ones, a changed state or real server, and ones whose
 * expiry on this director has moved past what the peer holds by more than half their lifetime
 * (a busy connection: the kernel refreshes its timer on every packet, the peer's copy would run out
 * first). Idle connections are not resent: both copies age alike. Built entry by entry as a read
 * parses them (the table worker adds each page's entries as it comes); `changed` holds the records
 * to send (built by `toRecord`, the caller's: the flags and timeouts come from its virtual servers),
 * `next` is the new sent-map (entries gone from the table are forgotten; a line the read showed
 * twice is one key), `repeated` how many lines repeated.
 */
export class TableDiff {
  readonly changed: Uint8Array[] = [];
  readonly next = new Map<string, SentState>();
  repeated = 0;
  /**
   * Entries the kernel stream sent while this read was under way (stream()): `passed` when the read
   * had already shown the connection (its entry in `next` is replaced), otherwise the read has not
   * shown it yet and decides by this state when it does.
   */
  private readonly streamed = new Map<string, { s: SentState; passed: boolean }>();

  constructor(
    private prev: ReadonlyMap<string, SentState>,
    private readonly toRecord: (e: ConnEntry) => Uint8Array,
  ) {}

  add(e: ConnEntry, nowMs: number): void {
    const k = connKey(e);
    // The same connection twice in one read: seq_file resumes each read() call at an entry
    // *position* (ip_vs_conn_seq_start walks the hash to the n-th entry), so entries inserted
    // before that position while the table is read shift it back and lines repeat (deleted ones
    // make lines skip). Counted once.
    if (this.next.has(k)) {
      this.repeated++;
      return;
    }
    const st = this.streamed.get(k);
    // The stream told the peer after this read began: the read's line is newer and decides from there.
    if (st) this.streamed.delete(k);
    const p = st?.s ?? this.prev.get(k);
    const peerExpiry = p ? p.at / 1000 + p.expires : 0;
    const ourExpiry = nowMs / 1000 + e.expires;
    if (!p || p.lost || !recordMatches(p.rec, e) || ourExpiry - peerExpiry > Math.max(5, p.expires / 2)) {
      const rec = this.toRecord(e);
      this.changed.push(rec);
      this.next.set(k, { rec, at: nowMs, expires: e.expires, lost: false });
    } else this.next.set(k, p);
  }
  /**
   * While the read is under way, the peer lost what it was told of connection k (the caller marks
   * it in the map this diff started from too, for the entries still to come): one this read
   * already showed goes again with the next read, whatever this one decided.
   */
  forget(k: string): void {
    const n = this.next.get(k);
    if (n) this.next.set(k, forgotten(n));
    this.streamed.delete(k);
  }

  /** The same for every connection (the peer may know nothing: a new active period). */
  forgetAll(): void {
    this.prev = new Map();
    for (const [k, n] of this.next) this.next.set(k, forgotten(n));
    this.streamed.clear();
  }

  /** What the peer was told of connection k, as far as this read knows (the stream's news first). */
  current(k: string): SentState | undefined {
    return this.streamed.get(k)?.s ?? this.next.get(k) ?? this.prev.get(k);
  }

  /** The kernel stream sent s (key k) while this read was under way (mergeStream). */
  stream(k: string, s: SentState): void {
    const passed = this.next.has(k);
    if (passed) this.next.set(k, s);
    this.streamed.set(k, { s, passed });
  }

  /**
   * At the read's end: what the stream sent meanwhile and the read had not shown stays in the
   * sent-map (a connection the stream showed after the read had passed its place in the hash), so
   * the next read does not send it again and a resync answer holds what the peer was told.
   */
  finish(): void {
    for (const [k, v] of this.streamed) if (!v.passed) this.next.set(k, v.s);
    this.streamed.clear();
  }
}

/**
 * The kernel stream's records (the kernel master sync daemon's, table-worker.ts; each its own
 * bytes) against what the peer was told (the sent-map and the read under way, if any): those to
 * send now, a new connection or a changed state or real server, as they are; the sent-map (and the
 * read) then hold them, so neither the next read nor a repeat of the kernel's record sends them
 * twice. An entry already told in the same state is left to the reads (its expiry refresh
 * included: the kernel resends a busy connection every 50th packet, the read's rule decides). The
 * record's timeout is the state's full timeout (cp->timeout, ip_vs_sync_conn_v1), which is what a
 * /proc line of a connection that just saw a packet shows: the expiry the read's rule compares.
 */
export function mergeStream(sent: Map<string, SentState>, diff: TableDiff | undefined, recs: readonly Uint8Array[], nowMs: number): { changed: Uint8Array[]; unchanged: number } {
  const changed: Uint8Array[] = [];
  let unchanged = 0;
  for (const rec of recs) {
    const k = recordConnKey(rec, 0);
    const p = diff ? diff.current(k) : sent.get(k);
    if (p && !p.lost && sameState(p.rec, rec)) {
      unchanged++;
      continue;
    }
    const s: SentState = { rec, at: nowMs, expires: recordTimeout(rec, 0), lost: false };
    sent.set(k, s);
    diff?.stream(k, s);
    changed.push(rec);
  }
  return { changed, unchanged };
}

/**
 * The connections of a sent-map (a resync answer): each one's record as last sent, once.
 */
export function sentRecords(sent: ReadonlyMap<string, SentState>): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const s of sent.values()) out.push(s.rec);
  return out;
}

/** TableDiff of a whole read at once. */
export function diffTable(prev: ReadonlyMap<string, SentState>, entries: readonly ConnEntry[], nowMs: number, toRecord: (e: ConnEntry) => Uint8Array): { changed: Uint8Array[]; next: Map<string, SentState>; repeated: number } {
  const d = new TableDiff(prev, toRecord);
  for (const e of entries) d.add(e, nowMs);
  return { changed: d.changed, next: d.next, repeated: d.repeated };
}

/**
 * The IPv4 UDP sockets bound to group:port in /proc/net/udp (udp4_format_sock), one entry each:
 * `drops`, the last column (sk_drops: counted when the socket's receive buffer is full), and
 * `unread`, the bytes waiting in its receive queue (rx_queue, hex). The local address there is the
 * address's 4 bytes printed as one host-order hex word (on a little-endian machine 224.0.0.81 is
 * 510000E0), the port in hex.
 */
export function udpSockets(text: string, group: string, port: number, littleEndian = endianness() === 'LE'): Array<{ drops: number; unread: number }> {
  const b = group.split('.').map((x) => Number(x).toString(16).toUpperCase().padStart(2, '0'));
  const want = `${(littleEndian ? b.reverse() : b).join('')}:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  const out: Array<{ drops: number; unread: number }> = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 13 || f[1] !== want) continue;
    const drops = Number(f[f.length - 1]);
    out.push({ drops: Number.isFinite(drops) ? drops : 0, unread: parseInt(f[4]?.split(':')[1] ?? '', 16) || 0 });
  }
  return out;
}

/** Datagrams the kernel dropped for the IPv4 UDP sockets bound to group:port, summed (udpSockets). */
export function udpDrops(text: string, group: string, port: number, littleEndian = endianness() === 'LE'): number {
  return udpSockets(text, group, port, littleEndian).reduce((t, s) => t + s.drops, 0);
}
