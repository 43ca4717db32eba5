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
import { ConnFlags, type SyncConn } from './codec.js';

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

/** An address as a short map-key string (IPv4: its 32-bit value; IPv6: hex), without a Buffer. */
function addrId(a: Uint8Array): string {
  return a.length === 4 ? String(((a[0]! << 24) | (a[1]! << 16) | (a[2]! << 8) | a[3]!) >>> 0) : Buffer.from(a).toString('hex');
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

/** Identity of a connection in the kernel's table (the tuple ip_vs_conn_in_get hashes). */
export function connKey(e: Pick<ConnEntry, 'protocol' | 'caddr' | 'cport' | 'vaddr' | 'vport' | 'template' | 'daddr'>): string {
  // Templates of one client and service differ by real server only when the service changed; keep
  // daddr in their key so a re-pinned client is sent again.
  return `${e.protocol}|${addrId(e.caddr)}|${e.cport}|${addrId(e.vaddr)}|${e.vport}${e.template ? `|t|${addrId(e.daddr)}` : ''}`;
}

/** The real server of an entry, as SentState.dest holds it. */
export function destId(e: Pick<ConnEntry, 'daddr' | 'dport'>): string {
  return `${addrId(e.daddr)}:${e.dport}`;
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
 * What the peer was last told about a connection, and the connection itself as then sent (a read
 * that finds it unchanged keeps this entry, so its `expires` is of that moment): the sent-map (table-worker.ts) is also what a resync is answered from (every
 * connection read or streamed and still in the table at the latest read), so one map, not a
 * second snapshot, holds what the peer should have.
 */
export interface SentState {
  readonly dest: string;
  readonly state: number;
  /** When it was sent (ms) and the expiry the entry had then (s). */
  readonly at: number;
  readonly expires: number;
  readonly entry: ConnEntry;
}

/**
 * The peer lost what it was told of this connection (DATA_MISSING): a state that matches no entry,
 * so the next read or stream record that shows it sends it again; the connection stays in the map
 * (a resync answer still holds it).
 */
export function forgotten(s: SentState): SentState {
  return { ...s, dest: '', state: -1 };
}

/**
 * Entries the peer must hear about now: new ones, a changed state or real server, and ones whose
 * expiry on this director has moved past what the peer holds by more than half their lifetime
 * (a busy connection: the kernel refreshes its timer on every packet, the peer's copy would run out
 * first). Idle connections are not resent: both copies age alike. Built entry by entry as a read
 * parses them (the table worker adds each page's entries as it comes); `next` is the new sent-map
 * (entries gone from the table are forgotten; a line the read showed twice is one key),
 * `repeated` how many lines repeated.
 */
export class TableDiff {
  readonly changed: ConnEntry[] = [];
  readonly next = new Map<string, SentState>();
  repeated = 0;
  /**
   * Entries the kernel stream sent while this read was under way (stream()): `passed` when the read
   * had already shown the connection (its entry in `next` is replaced), otherwise the read has not
   * shown it yet and decides by this state when it does.
   */
  private readonly streamed = new Map<string, { s: SentState; passed: boolean }>();

  constructor(private prev: ReadonlyMap<string, SentState>) {}

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
    const dest = destId(e);
    const st = this.streamed.get(k);
    // The stream told the peer after this read began: the read's line is newer and decides from there.
    if (st) this.streamed.delete(k);
    const p = st?.s ?? this.prev.get(k);
    const peerExpiry = p ? p.at / 1000 + p.expires : 0;
    const ourExpiry = nowMs / 1000 + e.expires;
    if (!p || p.dest !== dest || p.state !== e.state || ourExpiry - peerExpiry > Math.max(5, p.expires / 2)) {
      this.changed.push(e);
      this.next.set(k, { dest, state: e.state, at: nowMs, expires: e.expires, entry: e });
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
 * A record of the kernel's master sync daemon (the stream, table-worker.ts) as a table entry: the
 * same identity, real server and state the /proc line of that connection shows. `expires` is the
 * record's timeout: the kernel sends the state's full timeout (cp->timeout), which is what a /proc
 * line of a connection that just saw a packet shows.
 */
export function streamEntry(c: SyncConn): ConnEntry {
  const template = (c.flags & ConnFlags.TEMPLATE) !== 0;
  return {
    family: c.family,
    protocol: c.protocol,
    caddr: c.caddr,
    cport: c.cport,
    vaddr: c.vaddr,
    vport: c.vport,
    daddr: c.daddr,
    dport: c.dport,
    state: c.state,
    stateName: stateName(c.protocol, template, c.state),
    template,
    expires: c.timeout,
  };
}

/**
 * The stream's entries against what the peer was told (the sent-map and the read under way, if
 * any): those to send now, a new connection or a changed state or real server; the sent-map (and
 * the read) then hold them, so neither the next read nor a repeat of the kernel's record sends
 * them twice. An entry already told in the same state is left to the reads (its expiry refresh
 * included: the kernel resends a busy connection every 50th packet, the read's rule decides).
 */
export function mergeStream(sent: Map<string, SentState>, diff: TableDiff | undefined, entries: readonly ConnEntry[], nowMs: number): { changed: ConnEntry[]; unchanged: number } {
  const changed: ConnEntry[] = [];
  let unchanged = 0;
  for (const e of entries) {
    const k = connKey(e);
    const dest = destId(e);
    const p = diff ? diff.current(k) : sent.get(k);
    if (p && p.dest === dest && p.state === e.state) {
      unchanged++;
      continue;
    }
    const s: SentState = { dest, state: e.state, at: nowMs, expires: e.expires, entry: e };
    sent.set(k, s);
    diff?.stream(k, s);
    changed.push(e);
  }
  return { changed, unchanged };
}

/**
 * The connections of a sent-map (a resync answer): each one's entry as last read or streamed, once.
 */
export function sentEntries(sent: ReadonlyMap<string, SentState>): ConnEntry[] {
  const out: ConnEntry[] = [];
  for (const s of sent.values()) out.push(s.entry);
  return out;
}

/** TableDiff of a whole read at once. */
export function diffTable(prev: ReadonlyMap<string, SentState>, entries: readonly ConnEntry[], nowMs: number): { changed: ConnEntry[]; next: Map<string, SentState>; repeated: number } {
  const d = new TableDiff(prev);
  for (const e of entries) d.add(e, nowMs);
  return { changed: d.changed, next: d.next, repeated: d.repeated };
}

/**
 * Datagrams the kernel dropped for the IPv4 UDP sockets bound to group:port, summed: the last
 * column ("drops", sk_drops: counted when a socket's receive buffer is full) of their
 * /proc/net/udp lines (udp4_format_sock). The local address there is the address's 4 bytes printed
 * as one host-order hex word (on a little-endian machine 224.0.0.81 is 510000E0), the port in hex.
 */
export function udpDrops(text: string, group: string, port: number, littleEndian = endianness() === 'LE'): number {
  const b = group.split('.').map((x) => Number(x).toString(16).toUpperCase().padStart(2, '0'));
  const want = `${(littleEndian ? b.reverse() : b).join('')}:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  let drops = 0;
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 13 || f[1] !== want) continue;
    const n = Number(f[f.length - 1]);
    if (Number.isFinite(n)) drops += n;
  }
  return drops;
}
