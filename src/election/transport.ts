/**
 * VRRP transport: raw IP sockets, protocol 112, one per instance bound to its interface
 * (SO_BINDTODEVICE: raw sockets report no arrival interface, so the binding is what tells us where a
 * packet came from). Multicast to 224.0.0.18 / ff02::12 (RFC 5798 §5.1.1.2, §5.1.2.2) or unicast to
 * configured peers. Sent with TTL / hop limit 255 and DSCP CS6 (keepalived does the same); received
 * packets must carry TTL 255 (RFC 5798 §7.1) and pass the codec; everything else is dropped with
 * a reason the runtime counts.
 *
 * Both families use the project's addon (rawip.ts): recvmsg() with the kernel's receive timestamp,
 * so each advert carries its age (the runtime starts the Master_Down_Timer from the arrival, not
 * from when the process got to it), and a synchronous `poll()` that feeds waiting adverts before a
 * master_down deadline is acted on. IPv4 datagrams come with their IPv4 header (the TTL check reads
 * it); IPv6 raw sockets never deliver the IPv6 header, so the hop limit comes from IPV6_RECVHOPLIMIT
 * and the destination from IPV6_RECVPKTINFO (RFC 5798 §5.1.2.3, §7.1), and the checksum is verified
 * against the real destination. The kernel also computes and verifies the IPv6 checksum
 * (IPV6_CHECKSUM, RFC 3542 §3.1). (@neuralegion/raw-socket, used before, reads with recvfrom(): no
 * control data, no timestamps, no synchronous read.)
 */
import { networkInterfaces } from 'node:os';
import { isIPv4 } from 'node:net';
import type { Logger } from '../core/log.js';
import { ifIndex } from './announce.js';
import { RawIpSocket, type RawDatagram } from './rawip.js';
import { parseIp, compareIp, bytesToIp } from '../core/address.js';
import { LvsdError, errorMessage } from '../core/errors.js';
import {
  VRRP_GROUP_V4,
  VRRP_GROUP_V6,
  VRRP_PROTOCOL,
  VRRP_TTL,
  decodeAdvert,
  decodeIpv4Vrrp,
  encodeAdvert,
  type Advert,
  type DropReason,
  type V2Auth,
  type VrrpVersion,
} from './codec.js';
import { AH_PROTOCOL, AhSequence, decodeAhPacket, encodeAhPacket } from './ah.js';

export interface ReceivedAdvert {
  readonly advert: Advert;
  /** Source address text and bytes (the tie-break in RFC 5798 §6.4.3 compares these). */
  readonly src: string;
  readonly srcBytes: Uint8Array;
  /**
   * How long before delivery (the handler's call) the kernel received it, ms — the time our own
   * receive path took included (absent or 0 when unknown).
   */
  readonly ageMs?: number;
}

export interface TransportHandlers {
  onAdvert(r: ReceivedAdvert): void;
  /** `count`: several datagrams dropped for the same reason (the addon's early rejections), default 1. */
  onDrop(reason: DropReason, src?: string, count?: number): void;
}

/** Role the runtime drives; RawVrrpTransport is the mechanism, tests use a fake. */
export interface VrrpTransport {
  /** Our primary address on the interface: advert source and tie-break value. */
  readonly localAddress: Uint8Array;
  start(h: TransportHandlers): void;
  send(a: Advert): void;
  /** Everything send() does but the sending (compiles the send path ahead of a first takeover). */
  rehearse?(a: Advert): void;
  /** Feed the adverts waiting in the socket now, synchronously (absent: only the loop reads). */
  poll?(): void;
  /** Why the transport cannot receive or send adverts now (undefined: it can); absent: never known. */
  problem?(): TransportProblem | undefined;
  close(): void;
}

/** A transport that cannot do its job: why, and whether a new socket would cure it. */
export interface TransportProblem {
  readonly reason: string;
  /** Reopening (a new socket on the interface as it is now) is the cure: the runtime does it at its next link poll. */
  readonly reopen: boolean;
}

/**
 * Advert sends that fail in a row before the transport reports itself down: one may fail for a
 * passing reason (a full send buffer, a route being replaced); three in a row at any interval mean
 * the peers no longer hear this router.
 */
export const SEND_FAILURES_DOWN = 3;

export interface TransportOptions {
  readonly ifname: string;
  readonly family: 4 | 6;
  readonly version: VrrpVersion;
  readonly vrid: number;
  /** Addresses carried in adverts (drops with a different count, like keepalived). */
  readonly addrCount: number;
  /** Configured interval, checked for v2 (RFC 3768 §7.1). */
  readonly intervalMs: number;
  readonly unicastPeers?: readonly string[];
  readonly unicastSrc?: string;
  /**
   * Allow-list of advert sources (config `peers`): adverts from any other address are dropped as
   * `not_peer`, multicast ones too. Not part of VRRP; the RFCs trust every router on the link
   * (RFC 5798 §9), so a host that can send to the group can otherwise take the VIP.
   */
  readonly peers?: readonly string[];
  /** VRRPv2 authentication (RFC 2338 §5.3.6): carried in every advert, required of every received one. */
  readonly auth?: V2Auth;
  /**
   * With `auth` of type `ah`: the instance's sequence counter (ah.ts), owned by the caller so it
   * outlives this transport when a reload rebuilds it (a new counter would restart at 1 and the
   * peer would drop our adverts as replays). Default: a new one.
   */
  readonly ahSequence?: AhSequence;
  /** Addresses never taken as the interface's primary (the VIPs). */
  readonly exclude?: readonly string[];
  /** VRRPv3 over IPv4 only: accept v2 adverts too. */
  readonly acceptV2?: boolean;
  readonly logger: Logger;
}

// Linux socket option numbers (include/uapi/linux/in.h, in6.h, asm-generic/socket.h).
const SOL_SOCKET = 1;
const SO_RCVBUF = 8;
const SO_BINDTODEVICE = 25;
const SO_RCVBUFFORCE = 33;
/**
 * Receive buffer of a VRRP socket, bytes. The default (net.core.rmem_default, 208 KiB) holds a few
 * hundred small datagrams (each is charged its skb truesize, ~1 KiB on veth), i.e. ~10 ms of a
 * 24k pps flood: any event-loop pause longer than that overflowed it and the real master's adverts
 * were lost with the flood (measured: the backup took over for ~1 s). 4 MiB holds ~4000 datagrams.
 * The kernel doubles the value for its bookkeeping (socket(7)); memory is used only while queued.
 */
const RCVBUF_BYTES = 4 << 20;
const IPPROTO_IP = 0;
const IPPROTO_IPV6 = 41;
const IP_TOS = 1;
const IP_TTL = 2;
const IP_HDRINCL = 3;
const IP_MULTICAST_IF = 32;
const IP_MULTICAST_TTL = 33;
const IP_MULTICAST_LOOP = 34;
const IP_ADD_MEMBERSHIP = 35;
const IPV6_CHECKSUM = 7;
const IPV6_UNICAST_HOPS = 16;
const IPV6_MULTICAST_IF = 17;
const IPV6_MULTICAST_HOPS = 18;
const IPV6_MULTICAST_LOOP = 19;
const IPV6_ADD_MEMBERSHIP = 20;
const IPV6_TCLASS = 67;
/** DSCP CS6 (RFC 4594 network control) in the TOS / traffic class byte. */
const TOS_CS6 = 0xc0;
/** Per family: TTL / hop limit 255 (multicast and unicast), no multicast loop, DSCP CS6. */
const INT_OPTIONS: Record<4 | 6, ReadonlyArray<readonly [level: number, option: number, value: number]>> = {
  4: [
    [IPPROTO_IP, IP_MULTICAST_TTL, VRRP_TTL],
    [IPPROTO_IP, IP_TTL, VRRP_TTL],
    [IPPROTO_IP, IP_MULTICAST_LOOP, 0],
    [IPPROTO_IP, IP_TOS, TOS_CS6],
  ],
  6: [
    [IPPROTO_IPV6, IPV6_MULTICAST_HOPS, VRRP_TTL],
    [IPPROTO_IPV6, IPV6_UNICAST_HOPS, VRRP_TTL],
    [IPPROTO_IPV6, IPV6_MULTICAST_LOOP, 0],
    [IPPROTO_IPV6, IPV6_TCLASS, TOS_CS6],
    // The kernel computes the checksum at offset 6 on send and drops bad ones on receive.
    [IPPROTO_IPV6, IPV6_CHECKSUM, 6],
  ],
};

/** Primary address of a family on an interface (kernel order: the first one is the primary), skipping VIPs. */
export function primaryAddress(ifname: string, family: 4 | 6, exclude: readonly string[] = []): string | undefined {
  const list = networkInterfaces()[ifname] ?? [];
  const skip = new Set(exclude.map((x) => parseIp(x)?.text ?? x));
  for (const a of list) {
    if ((family === 4) !== (a.family === 'IPv4')) continue;
    const t = parseIp(a.address)?.text;
    if (!t || skip.has(t)) continue;
    // For IPv6, adverts come from the link-local address (RFC 5798 §5.1.2.1).
    if (family === 6 && !t.startsWith('fe80:')) continue;
    return t;
  }
  return undefined;
}

export class RawVrrpTransport implements VrrpTransport {
  readonly localAddress: Uint8Array;
  private readonly local: string;
  private sock: RawIpSocket | undefined;
  private ifindex = 0;
  private handlers: TransportHandlers | undefined;
  private readonly peers: Set<string>;
  /** The `peers` allow-list (empty: any source). */
  private readonly allowed: Set<string>;
  /** Where adverts go: the group or each unicast peer (parsed once, not per advert). */
  private readonly dest: ReadonlyArray<{ readonly text: string; readonly bytes: Uint8Array }>;
  private readonly group: Uint8Array;
  private readonly log: Logger;
  readonly hopLimitChecked: boolean;
  /** The last receive error, until a datagram is read again (the receive loop is not working). */
  private recvError: string | undefined;
  /** Advert sends failed in a row, and the last error. */
  private sendFailures = 0;
  private sendError = '';
  /** AH authentication (ah.ts): adverts are whole IPv4 packets of protocol 51, sent with IP_HDRINCL. */
  private readonly ah: { readonly key: Uint8Array; readonly seq: AhSequence } | undefined;

  constructor(private readonly o: TransportOptions) {
    this.log = o.logger;
    const local = o.unicastSrc ?? primaryAddress(o.ifname, o.family, o.exclude);
    if (!local) throw new LvsdError('VRRP_NO_ADDRESS', `interface ${o.ifname} has no ${o.family === 4 ? 'IPv4' : 'IPv6 link-local'} address to send adverts from`);
    this.local = local;
    this.localAddress = parseIp(local)!.bytes;
    this.peers = new Set((o.unicastPeers ?? []).map((p) => parseIp(p)!.text));
    this.allowed = new Set((o.peers ?? []).map((p) => parseIp(p)!.text));
    this.group = parseIp(o.family === 4 ? VRRP_GROUP_V4 : VRRP_GROUP_V6)!.bytes;
    this.dest = this.peers.size
      ? [...this.peers].map((p) => ({ text: p, bytes: parseIp(p)!.bytes }))
      : [{ text: o.family === 4 ? VRRP_GROUP_V4 : `${VRRP_GROUP_V6}%${o.ifname}`, bytes: this.group }];
    // IPv4: TTL from the IP header; IPv6: hop limit from IPV6_HOPLIMIT ancillary data.
    this.hopLimitChecked = true;
    if (o.auth?.type === 'ah') {
      if (o.family !== 4) throw new LvsdError('VRRP_AH_FAMILY', 'AH authentication is VRRPv2, IPv4 only (RFC 2338)');
      this.ah = { key: o.auth.key, seq: o.ahSequence ?? new AhSequence() };
    }
  }

  start(h: TransportHandlers): void {
    this.handlers = h;
    this.open();
  }

  private open(): void {
    const o = this.o;
    const index = ifIndex(o.ifname);
    this.ifindex = index;
    // An AH advert is IP protocol 51 (RFC 2402): the raw socket of that protocol receives it.
    const s = new RawIpSocket(o.family, this.ah ? AH_PROTOCOL : VRRP_PROTOCOL, {
      onMessage: (d) => {
        this.recvError = undefined;
        if (o.family === 4) this.receive4(d);
        else this.receive6(d);
      },
      onError: (err) => {
        // Logged when it starts (the addon reports once per readiness event: no flood).
        if (this.recvError === undefined) this.log.warn({ err: errorMessage(err), ifname: o.ifname }, 'VRRP receive error');
        this.recvError = errorMessage(err);
      },
      onEarlyDrops: (drops) => {
        this.recvError = undefined;
        for (const [reason, n] of Object.entries(drops)) if (n) this.handlers?.onDrop(reason as DropReason, undefined, n);
      },
    });
    try {
      s.setOption(SOL_SOCKET, SO_BINDTODEVICE, Buffer.from(`${o.ifname}\0`));
      if (o.family === 4) {
        const mreqn = Buffer.alloc(12); // struct ip_mreqn { multiaddr, address, ifindex }
        Buffer.from(this.group).copy(mreqn, 0);
        Buffer.from(this.localAddress).copy(mreqn, 4);
        mreqn.writeInt32LE(index, 8);
        if (!this.peers.size) s.setOption(IPPROTO_IP, IP_ADD_MEMBERSHIP, mreqn);
        // IP_MULTICAST_IF with an ip_mreqn also fixes the source address of multicast sends
        // (raw_sendmsg uses inet->mc_addr), so the v3 pseudo-header checksum we compute matches.
        s.setOption(IPPROTO_IP, IP_MULTICAST_IF, mreqn);
      } else {
        const mreq = Buffer.alloc(20); // struct ipv6_mreq { in6_addr, ifindex }
        Buffer.from(this.group).copy(mreq, 0);
        mreq.writeInt32LE(index, 16);
        if (!this.peers.size) s.setOption(IPPROTO_IPV6, IPV6_ADD_MEMBERSHIP, mreq);
        s.setInt(IPPROTO_IPV6, IPV6_MULTICAST_IF, index);
      }
      for (const [level, option, value] of INT_OPTIONS[o.family]) s.setInt(level, option, value);
      // The ICV covers the IP header (ah.ts): we build it, the kernel only fills the checksum (raw(7)).
      if (this.ah) s.setInt(IPPROTO_IP, IP_HDRINCL, 1);
      try {
        // SO_RCVBUFFORCE passes net.core.rmem_max but needs CAP_NET_ADMIN; a process with only
        // CAP_NET_RAW gets SO_RCVBUF, capped at rmem_max (socket(7)).
        s.setInt(SOL_SOCKET, SO_RCVBUFFORCE, RCVBUF_BYTES);
      } catch {
        s.setInt(SOL_SOCKET, SO_RCVBUF, RCVBUF_BYTES);
      }
    } catch (e) {
      s.close();
      throw new LvsdError('VRRP_SOCKET', `VRRP socket on ${o.ifname}: ${errorMessage(e)}`, { cause: e });
    }
    this.sock = s;
  }

  poll(): void {
    this.sock?.poll();
  }

  /**
   * The socket is bound to an interface index (SO_BINDTODEVICE) and joined the group there: an
   * interface deleted and created again under the same name is another index, which this socket
   * never hears from again — a new socket is needed. A receive error stands until a datagram is
   * read again; sends count from the last success.
   */
  problem(): TransportProblem | undefined {
    const ifname = this.o.ifname;
    if (!this.sock) return { reason: 'VRRP socket closed', reopen: false };
    let index: number | undefined;
    try {
      index = ifIndex(ifname);
    } catch {
      return { reason: `interface ${ifname} is gone`, reopen: false };
    }
    if (index !== this.ifindex) return { reason: `interface ${ifname} was created again (index ${this.ifindex} → ${index}): the VRRP socket is bound to the old one`, reopen: true };
    if (this.recvError !== undefined) return { reason: `VRRP receive error: ${this.recvError}`, reopen: true };
    if (this.sendFailures >= SEND_FAILURES_DOWN) return { reason: `${this.sendFailures} advert sends in a row failed: ${this.sendError}`, reopen: false };
    return undefined;
  }

  /** The socket's descriptor, for the runtime's takeover call (a poll(2) for waiting adverts). */
  descriptor(): number | undefined {
    return this.sock?.descriptor;
  }

  private expect() {
    const o = this.o;
    return {
      vrid: o.vrid,
      ...(o.acceptV2 ? {} : { version: o.version }),
      addrCount: o.addrCount,
      v2IntervalMs: o.intervalMs,
      ...(o.auth ? { auth: o.auth } : {}),
    };
  }

  /** IPv6 datagram: hop limit (RFC 5798 §7.1 MUST be 255) and checksum against the real destination. */
  private receive6(d: RawDatagram): void {
    const h = this.handlers;
    if (!h) return;
    if (d.src.length !== 16) return h.onDrop('bad_source');
    const sp = bytesToIp(d.src);
    if (d.truncated) return h.onDrop('bad_length', sp.text);
    // RFC 5798 §5.1.2.1: multicast adverts come from the sender's link-local address (fe80::/10);
    // anything else on ff02::12 is not a VRRP router of this link. Unicast peers are matched by list.
    if (!this.peers.size && !(d.src[0] === 0xfe && (d.src[1]! & 0xc0) === 0x80)) return h.onDrop('bad_source', sp.text);
    // A multicast instance takes adverts sent to the group only: one sent to our own address is
    // not how a router of this link advertises (RFC 5798 §5.1.2.2) and would bypass the group.
    if (!this.peers.size && d.dst && compareIp(d.dst, this.group) !== 0) return h.onDrop('unicast_dst', sp.text);
    // No hop limit from the kernel means it cannot be verified: dropped like a wrong one.
    const dst = d.dst ?? (this.peers.size ? this.localAddress : this.group);
    const r = decodeAdvert(d.payload, { family: 6, srcAddr: sp.bytes, dstAddr: dst, ttl: d.hopLimit ?? -1, expect: this.expect() });
    if (!r.ok) {
      if (r.reason !== 'vrid_mismatch') h.onDrop(r.reason, sp.text);
      return;
    }
    this.accept(r.advert, sp.bytes, sp.text, d.receivedAt);
  }

  /** `receivedAt`: the kernel's receive time on performance.now()'s clock (see RawDatagram). */
  private accept(advert: Advert, srcBytes: Uint8Array, srcText: string, receivedAt: number, ahSeq?: number): void {
    const h = this.handlers;
    if (!h) return;
    if (compareIp(srcBytes, this.localAddress) === 0) return; // our own (multicast loop is off; unicast to self)
    if (this.peers.size && !this.peers.has(srcText)) return h.onDrop('bad_source', srcText);
    if (this.allowed.size && !this.allowed.has(srcText)) return h.onDrop('not_peer', srcText);
    // Last, so only an advert acted on moves the anti-replay counter (ah.ts).
    if (ahSeq !== undefined && !this.ah?.seq.accept(ahSeq)) return h.onDrop('auth_replay', srcText);
    // Measured here, at delivery, so the decode and checks above (cold code after a long idle) do
    // not push the Master_Down deadline later than the kernel's receive time says.
    h.onAdvert({ advert, src: srcText, srcBytes, ageMs: performance.now() - receivedAt });
  }

  /** IPv4 datagram, IPv4 header first: the codec checks TTL, addresses and the payload. */
  private receive4(d: RawDatagram): void {
    const h = this.handlers;
    if (!h) return;
    if (d.truncated) return h.onDrop('bad_length', bytesToIp(d.src).text);
    const r = this.ah ? decodeAhPacket(d.payload, { ...this.expect(), auth: { type: 'ah', key: this.ah.key }, unicast: this.peers.size > 0 }) : decodeIpv4Vrrp(d.payload, this.expect());
    if (!r.ok) {
      // Adverts of other virtual routers on the same link are not ours to count.
      if (r.reason !== 'vrid_mismatch') h.onDrop(r.reason, bytesToIp(r.header ? r.header.src : d.src).text);
      return;
    }
    // RFC 3768 §5.2.2 / RFC 5798 §5.1.1.2: a multicast instance's adverts go to 224.0.0.18 (see receive6).
    if (!this.peers.size && compareIp(r.header.dst, this.group) !== 0) return h.onDrop('unicast_dst', bytesToIp(r.header.src).text);
    this.accept(r.advert, r.header.src, bytesToIp(r.header.src).text, d.receivedAt, 'seq' in r ? r.seq : undefined);
  }

  rehearse(a: Advert): void {
    if (this.ah) this.payloads(a, this.ah.seq.value);
    else this.encode(a);
  }

  /**
   * The datagrams send(a) would send, encoded (for the runtime's takeover call, which sends them
   * natively); undefined when the socket is closed or the advert cannot be encoded, and always with
   * AH: each AH advert carries the next sequence number, so a prebuilt one replayed later by a
   * native mechanism would be dropped by the peer as a replay — those mechanisms leave the advert to
   * send() (the takeover call then adds the VIPs and announces, and the runtime sends the advert).
   */
  encode(a: Advert): { readonly fd: number; readonly datagrams: ReadonlyArray<{ readonly dst: Uint8Array; readonly scopeId: number; readonly payload: Uint8Array }> } | undefined {
    const fd = this.sock?.descriptor;
    if (fd === undefined || this.ah) return undefined;
    try {
      return { fd, datagrams: this.dest.map((d) => ({ dst: d.bytes, scopeId: this.ifindex, payload: encodeAdvert(a, this.encodeContext(d.bytes)) })) };
    } catch {
      return undefined;
    }
  }

  private encodeContext(dst: Uint8Array) {
    return { srcAddr: this.localAddress, dstAddr: dst, ...(this.o.auth ? { auth: this.o.auth } : {}) };
  }

  /** The datagram per destination; with AH one sequence number for all (keepalived does the same). */
  private payloads(a: Advert, seq: number): Uint8Array[] {
    const ah = this.ah;
    if (!ah) return this.dest.map((d) => encodeAdvert(a, this.encodeContext(d.bytes)));
    return this.dest.map((d) => encodeAhPacket(a, { srcAddr: this.localAddress, dstAddr: d.bytes, key: ah.key, seq, ipId: seq, unicast: this.peers.size > 0 }));
  }

  send(a: Advert): void {
    let payloads: Uint8Array[];
    try {
      payloads = this.payloads(a, this.ah ? this.ah.seq.next() : 0);
    } catch (e) {
      this.log.error({ err: errorMessage(e) }, 'cannot encode advert');
      return;
    }
    let failed = false;
    for (const [i, d] of this.dest.entries()) {
      const payload = payloads[i]!;
      try {
        // Synchronous sendto(); the scope (our interface) matters for ff02::12 / link-local peers only.
        this.sock?.send(d.bytes, this.ifindex, payload);
      } catch (e) {
        failed = true;
        this.sendError = errorMessage(e);
        // Logged when failing starts and when it reaches the health limit, not at every advert.
        if (this.sendFailures === 0 || this.sendFailures === SEND_FAILURES_DOWN - 1) this.log.warn({ err: this.sendError, to: d.text, in_a_row: this.sendFailures + 1 }, 'advert send failed');
      }
    }
    if (!failed && this.sendFailures > 0) this.log.info({ failed_before: this.sendFailures }, 'advert sends work again');
    this.sendFailures = failed ? this.sendFailures + 1 : 0;
  }

  close(): void {
    this.handlers = undefined;
    this.sock?.close();
    this.sock = undefined;
  }
}

/** True when the text is an IPv4 address (helper for callers choosing a family). */
export const isV4 = (s: string) => isIPv4(s);
