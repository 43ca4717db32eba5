/**
 * Announcing a VIP move to the segment: gratuitous ARP (IPv4) and unsolicited neighbour
 * advertisements (IPv6), sent as whole Ethernet frames through the AF_PACKET addon
 * (native/afpacket). Frame builders are pure; `Announcer` schedules bursts with the injected Clock.
 *
 * Burst policy follows keepalived's knobs (config `garp`): `master_repeat` packets per VIP at once,
 * the same again `master_delay` seconds later, and optionally `master_refresh_repeat` packets every
 * `master_refresh` seconds while master; `interval` spaces packets inside a burst.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ManualClock, type Clock, type TimerHandle } from '../core/clock.js';
import { LvsdError, errorMessage } from '../core/errors.js';
import type { GarpConfig } from '../config/model.js';

const ETH_P_ARP = 0x0806;
const ETH_P_IPV6 = 0x86dd;
const BROADCAST = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
/** ff02::1 all-nodes (RFC 4291 §2.7.1) and its Ethernet mapping 33:33:00:00:00:01 (RFC 2464 §7). */
export const ALL_NODES = new Uint8Array([0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
const ALL_NODES_MAC = new Uint8Array([0x33, 0x33, 0, 0, 0, 1]);

function ethHeader(out: Uint8Array, dst: Uint8Array, src: Uint8Array, type: number): void {
  out.set(dst, 0);
  out.set(src, 6);
  out[12] = type >> 8;
  out[13] = type & 0xff;
}

/**
 * Gratuitous ARP as keepalived sends it (seen with tshark): an ARP *request* (RFC 5227 §3 / RFC 826)
 * with sender MAC/IP = own MAC / VIP, target MAC ff:ff:ff:ff:ff:ff, target IP = VIP, to the
 * Ethernet broadcast. Padded to the 60-byte Ethernet minimum (without FCS).
 */
export function buildGratuitousArp(mac: Uint8Array, vip: Uint8Array): Uint8Array {
  if (mac.length !== 6 || vip.length !== 4) throw new RangeError('GARP needs a 6-byte MAC and a 4-byte IPv4 address');
  const f = new Uint8Array(60);
  ethHeader(f, BROADCAST, mac, ETH_P_ARP);
  const a = 14;
  f[a + 0] = 0; f[a + 1] = 1; // hardware type Ethernet
  f[a + 2] = 0x08; f[a + 3] = 0x00; // protocol type IPv4
  f[a + 4] = 6; // hardware length
  f[a + 5] = 4; // protocol length
  f[a + 6] = 0; f[a + 7] = 1; // operation: request
  f.set(mac, a + 8); // sender hardware address
  f.set(vip, a + 14); // sender protocol address
  f.set(BROADCAST, a + 18); // target hardware address
  f.set(vip, a + 24); // target protocol address
  return f;
}

function sum16(s: number, b: Uint8Array, start: number, end: number): number {
  let i = start;
  for (; i + 1 < end; i += 2) s += (b[i]! << 8) | b[i + 1]!;
  if (i < end) s += b[i]! << 8;
  return s;
}

/**
 * Unsolicited neighbour advertisement (RFC 4861 §7.2.6): ICMPv6 type 136 from the VIP to ff02::1,
 * hop limit 255 (§7.1.2 receivers drop anything else), Override flag set so neighbours replace their
 * cache entry, Solicited flag clear, with a Target Link-Layer Address option (type 2).
 */
export function buildUnsolicitedNa(mac: Uint8Array, vip: Uint8Array, router = false): Uint8Array {
  if (mac.length !== 6 || vip.length !== 16) throw new RangeError('NA needs a 6-byte MAC and a 16-byte IPv6 address');
  const icmpLen = 24 + 8;
  const f = new Uint8Array(14 + 40 + icmpLen);
  ethHeader(f, ALL_NODES_MAC, mac, ETH_P_IPV6);
  const ip = 14;
  f[ip] = 0x60; // version 6, traffic class 0, flow label 0
  f[ip + 4] = icmpLen >> 8;
  f[ip + 5] = icmpLen & 0xff;
  f[ip + 6] = 58; // next header ICMPv6
  f[ip + 7] = 255; // hop limit
  f.set(vip, ip + 8);
  f.set(ALL_NODES, ip + 24);
  const ic = ip + 40;
  f[ic] = 136; // neighbour advertisement
  f[ic + 1] = 0;
  f[ic + 4] = (router ? 0x80 : 0) | 0x20; // R | S=0 | O=1
  f.set(vip, ic + 8); // target address
  f[ic + 24] = 2; // option: target link-layer address
  f[ic + 25] = 1; // length in units of 8 bytes
  f.set(mac, ic + 26);
  // Checksum over the IPv6 pseudo-header (RFC 8200 §8.1): src, dst, upper-layer length, next header.
  let s = sum16(0, f, ip + 8, ip + 40);
  s += icmpLen + 58;
  s = sum16(s, f, ic, ic + icmpLen);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  const ck = ~s & 0xffff;
  f[ic + 2] = ck >> 8;
  f[ic + 3] = ck & 0xff;
  return f;
}

/** Build the right announcement frame for an address (4 or 16 bytes). */
export function buildAnnouncement(mac: Uint8Array, vip: Uint8Array): Uint8Array {
  return vip.length === 4 ? buildGratuitousArp(mac, vip) : buildUnsolicitedNa(mac, vip);
}

// ------------------------------------------------------------------ the addon

export interface LinkInfo {
  readonly index: number;
  readonly mac: Uint8Array;
}

/**
 * Called per received raw IP datagram (err null), once per failed read (err set, rest absent), and on
 * an IPv4 VRRP socket once per read batch with the datagrams the addon rejected itself (payload null,
 * `src` then the counts by reason: bad_ttl, bad_checksum).
 */
export type RawRecvCallback = (
  err: (Error & { code?: string }) | null,
  payload?: Buffer | null,
  src?: Buffer | EarlyDrops,
  dst?: Buffer | null,
  hopLimit?: number,
  ifindex?: number,
  truncated?: boolean,
  /** When the kernel received it (SO_TIMESTAMPNS), on CLOCK_MONOTONIC in ms; -1 when unknown. */
  rxMonoMs?: number,
) => void;

/** Datagrams the addon rejected before JavaScript saw them, by reason (IPv4 VRRP sockets). */
export type EarlyDrops = Partial<Record<'bad_ttl' | 'bad_checksum', number>>;

export interface AfPacketAddon {
  open(ifindex: number): number;
  send(fd: number, ifindex: number, frame: Buffer): number;
  close(fd: number): void;
  /** CLOCK_MONOTONIC now, ms (the clock of a received datagram's rxMonoMs and of takeover's sleep). */
  monotonic(): number;
  ifinfo(name: string): { index: number; mac: Buffer };
  /** Interface index only, through a socket the addon keeps open (one ioctl). */
  ifindex(name: string): number;
  /** Raw IP socket (receive timestamps and packet info on; IPv6 also hop limit), polled on the event loop. */
  rawopen(family: 4 | 6, protocol: number, cb: RawRecvCallback): number;
  rawsend(fd: number, dst: Buffer, scopeId: number, payload: Buffer): number;
  /** sendmmsg(2) of buffer's back-to-back `size`-byte payloads to dst; the count sent (stops at EAGAIN). */
  rawsendmany(fd: number, dst: Buffer, scopeId: number, payloads: Buffer, size: number): number;
  /** Read what is waiting now through the socket's callback, synchronously; returns the count. */
  rawpoll(fd: number): number;
  rawclose(fd: number): void;
  /**
   * Address notifications (RTM_NEWADDR 20 / RTM_DELADDR 21, IPv4 and IPv6 groups) parsed in C:
   * cb(type, family, ifindex); cb(0, 0, 0) when notifications were lost. Close with rawclose(fd).
   */
  nlwatch(cb: (type: number, family: number, ifindex: number) => void): number;
  /**
   * What a takeover puts on the wire, in one call (see native/afpacket/takeover.c): after sleeping `waitMs` (≤ 10;
   * default 0), VIP adds, the frames `rounds` times with the adverts after the first round.
   * [-1, lateMs] (an advert may be waiting: nothing done), [-2, lateMs] (woke more than
   * `lateLimitMs` past the target: nothing done) or [0, lateMs, addResult..., framesSent, advertsSent].
   * The same steps as the takeover thread's (takeover.c takeover_act); a malformed argument is a TypeError.
   */
  takeover(pollFds: number[], nlFd: number, seq: number, payloads: Buffer[], frames: Array<[number, number, Buffer]>, rounds: number, adverts: Array<[number, Buffer, number, Buffer]>, waitMs?: number, lateLimitMs?: number): number[];
  /** Advert backstop (native/afpacket/backstop.c): threads started disarmed; returns its id. */
  bsopen(intervalMs: number, leaseMs: number): number;
  /** Arm with the Master's advert per destination ([fd, dst, scopeId, payload], one raw socket). */
  bsarm(id: number, adverts: Array<[number, Buffer, number, Buffer]>): void;
  /** Restart the schedule (an advert was just sent); returns the adverts the threads sent since the last kick. */
  bskick(id: number): number;
  bsdisarm(id: number): void;
  bsclose(id: number): void;
  /**
   * Takeover thread (takeover.c tk*): threads started idle, with their own rtnetlink socket; returns its id.
   * tkload takes what the takeover call does (its arguments less the netlink socket), copied;
   * tkarm(id, dueMonoMs, lateLimitMs) has it act at that CLOCK_MONOTONIC time unless a datagram
   * is waiting on a poll fd or being read from it (rx callback running), or it woke past the limit; tkwait collects the
   * decision (the takeover call's result, or [-3, 0]: none, and then the arm is cancelled).
   */
  tkopen(): number;
  tkload(id: number, pollFds: number[], payloads: Buffer[], frames: Array<[number, number, Buffer]>, rounds: number, adverts: Array<[number, Buffer, number, Buffer]>): void;
  tkarm(id: number, dueMonoMs: number, lateLimitMs: number): void;
  tkdisarm(id: number): void;
  tkfired(id: number): boolean;
  tkwait(id: number, timeoutMs: number): number[];
  tkclose(id: number): void;
  /** PR_SET_TIMERSLACK for the calling thread, ns. */
  timerslack(ns: number): void;
  setsockopt(fd: number, level: number, option: number, value: Buffer): void;
  /** Non-blocking netlink socket of a protocol (0 = NETLINK_ROUTE). Close with close(fd). */
  nlopen(protocol: number): number;
  /** Synchronous request: 0 = ACK, -errno = kernel error, 1 = no ACK queued yet. */
  nlrequest(fd: number, type: number, flags: number, seq: number, payload: Buffer): number;
  /**
   * The kernel stream's socket (src/sync/table-worker.ts): UDP bound to group:port, joined to the
   * group on the interface of `ifaddr`, receive buffer `rcvbuf` bytes (SO_RCVBUFFORCE), drained
   * with recvmmsg at each readiness event: cb(null, batch, count), the batch per datagram its IPv4
   * source (4 bytes), length (be16), flags (be16, 1: truncated) and payload; cb(error) on a
   * receive error. Throws when the socket cannot be opened. Close with ksclose(handle).
   */
  ksopen(group: string, port: number, ifaddr: string, rcvbuf: number, cb: (err: Error | null, batch?: Buffer, count?: number) => void): KsHandle;
  ksclose(handle: KsHandle): void;
}

/** An open kernel-stream socket of the addon (ksopen). */
export type KsHandle = { readonly __ks: unique symbol };

let addon: AfPacketAddon | undefined;

/** Load native/afpacket/build/Release/afpacket.node, searching up from this module (src/ or dist/src/). */
export function loadAfPacket(): AfPacketAddon {
  if (addon) return addon;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const p = join(dir, 'native', 'afpacket', 'build', 'Release', 'afpacket.node');
    if (existsSync(p)) {
      addon = createRequire(import.meta.url)(p) as AfPacketAddon;
      return addon;
    }
    dir = dirname(dir);
  }
  throw new LvsdError('AFPACKET_UNAVAILABLE', 'the AF_PACKET addon is not built: run `npm run build:native`');
}

/**
 * Index of an interface in this process's network namespace: one ioctl on the addon's kept socket
 * (afpacket.c ifindex). Every lookup that needs only the index uses it: linkInfo opens a socket and
 * reads the MAC too (four system calls), and the transports check their interface's index after
 * every link poll (a re-created interface has a new one).
 */
export function ifIndex(ifname: string): number {
  return loadAfPacket().ifindex(ifname);
}

/** Index and MAC of an interface in this process's network namespace. */
export function linkInfo(ifname: string): LinkInfo {
  const r = loadAfPacket().ifinfo(ifname);
  return { index: r.index, mac: new Uint8Array(r.mac) };
}

/** Role: puts one Ethernet frame on an interface. */
export interface FrameSender {
  send(ifname: string, frame: Uint8Array): void;
  /** Optional: open what send() needs ahead of time (takeover latency). */
  prepare?(ifname: string): void;
  close(): void;
}

/** FrameSender over AF_PACKET; one socket per interface, opened on first use. */
export class PacketSocketSender implements FrameSender {
  private readonly socks = new Map<string, { fd: number; index: number }>();
  private sock(ifname: string): { fd: number; index: number } {
    let s = this.socks.get(ifname);
    if (!s) {
      const a = loadAfPacket();
      const index = a.ifinfo(ifname).index;
      s = { fd: a.open(index), index };
      this.socks.set(ifname, s);
    }
    return s;
  }
  /**
   * The socket and interface index send() would use (opened now if needed), for the takeover call.
   * Checked against the interface as it is now: one created again under the same name has another
   * index, and a frame for the old one would fail in the takeover call.
   */
  socketFor(ifname: string): { fd: number; index: number } | undefined {
    try {
      const s = this.socks.get(ifname);
      if (s && loadAfPacket().ifinfo(ifname).index !== s.index) {
        loadAfPacket().close(s.fd);
        this.socks.delete(ifname);
      }
      return this.sock(ifname);
    } catch {
      return undefined;
    }
  }
  prepare(ifname: string): void {
    this.socketFor(ifname);
  }
  send(ifname: string, frame: Uint8Array): void {
    const a = loadAfPacket();
    const s = this.sock(ifname);
    try {
      a.send(s.fd, s.index, Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength));
    } catch (e) {
      // The interface may have been re-created (new index): reopen on the next send.
      a.close(s.fd);
      this.socks.delete(ifname);
      throw e;
    }
  }
  close(): void {
    const a = addon;
    for (const s of this.socks.values()) a?.close(s.fd);
    this.socks.clear();
  }
}

export interface AnnouncerOptions {
  readonly sender: FrameSender;
  readonly clock: Clock;
  /** Called once per frame sent (metrics); `ok` false when the send failed. */
  readonly onSent?: (ok: boolean, err?: string) => void;
}

/** VIPs to announce on one interface, with that interface's own MAC. */
export interface AnnounceTarget {
  readonly ifname: string;
  readonly mac: Uint8Array;
  readonly vips: readonly Uint8Array[];
}

/**
 * Runs the GARP/NA schedule for one instance while it is master. `start` / `startAll` (re)begin the
 * schedule (`startAll`: VIPs on several interfaces, each announced on its own interface with its own
 * MAC), `stop` cancels what is pending. All sends are synchronous non-blocking writes.
 */
export class Announcer {
  private timers: TimerHandle[] = [];
  private generation = 0;
  constructor(private readonly opts: AnnouncerOptions) {}

  start(ifname: string, mac: Uint8Array, vips: readonly Uint8Array[], garp: GarpConfig): void {
    this.startAll([{ ifname, mac, vips }], garp);
  }

  /**
   * Run startAll once against a sender that sends nothing and a clock that never fires, so V8 has
   * compiled the announce path before the first takeover needs it (lazy compilation cost ~1 ms there).
   */
  static rehearse(targets: readonly AnnounceTarget[], garp: GarpConfig): void {
    const dry = new Announcer({ sender: { send: () => {}, close: () => {} }, clock: new ManualClock(), onSent: () => {} });
    dry.startAll(targets, garp);
    dry.stop();
  }

  private built: { readonly targets: readonly AnnounceTarget[]; readonly frames: ReadonlyArray<{ ifname: string; frame: Uint8Array }> } | undefined;

  /** One frame per VIP (its first announcement), built once per targets array. */
  framesFor(targets: readonly AnnounceTarget[]): ReadonlyArray<{ ifname: string; frame: Uint8Array }> {
    if (this.built?.targets === targets) return this.built.frames;
    const frames = targets.flatMap((t) => t.vips.map((v) => ({ ifname: t.ifname, frame: buildAnnouncement(t.mac, v) })));
    this.built = { targets, frames };
    return frames;
  }

  /** Build (and keep) the frames for these targets now; startAll with the same array reuses them. */
  prepareAll(targets: readonly AnnounceTarget[]): void {
    for (const t of targets) this.opts.sender.prepare?.(t.ifname);
    this.framesFor(targets);
  }

  /**
   * `roundsSent`: that many rounds of the first burst already went out (the runtime's takeover
   * call); they are counted (onSent) and not sent again.
   */
  startAll(targets: readonly AnnounceTarget[], garp: GarpConfig, roundsSent = 0): void {
    this.stop();
    const gen = ++this.generation;
    const frames = this.framesFor(targets);
    const done = Math.min(roundsSent, garp.master_repeat);
    for (let i = 0; i < done * frames.length; i++) this.opts.onSent?.(true);
    const burst = (count: number, skip = 0) => this.burst(gen, frames, count, garp.interval * 1000, skip);
    burst(garp.master_repeat, done);
    if (garp.master_delay > 0) this.later(gen, garp.master_delay * 1000, () => burst(garp.master_repeat));
    if (garp.master_refresh > 0) {
      const every = garp.master_refresh * 1000;
      const tick = () => {
        burst(garp.master_refresh_repeat);
        this.later(gen, every, tick);
      };
      this.later(gen, every, tick);
    }
  }

  stop(): void {
    this.generation++;
    for (const t of this.timers) this.opts.clock.clearTimeout(t);
    this.timers = [];
  }

  private later(gen: number, ms: number, fn: () => void): void {
    const h = this.opts.clock.setTimeout(() => {
      this.timers = this.timers.filter((x) => x !== h);
      if (gen === this.generation) fn();
    }, ms);
    this.timers.push(h);
  }

  /** `count` rounds of the frames, `spacingMs` apart (0: back to back), the first `skip` left out. */
  private burst(gen: number, frames: ReadonlyArray<{ readonly ifname: string; readonly frame: Uint8Array }>, count: number, spacingMs: number, skip = 0): void {
    const one = () => {
      for (const f of frames) {
        try {
          this.opts.sender.send(f.ifname, f.frame);
          this.opts.onSent?.(true);
        } catch (e) {
          this.opts.onSent?.(false, errorMessage(e));
        }
      }
    };
    for (let i = skip; i < count; i++) {
      if (spacingMs <= 0 || i === 0) one();
      else this.later(gen, i * spacingMs, one);
    }
  }
}
