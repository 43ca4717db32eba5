/**
 * VIP ownership: add/remove virtual addresses with rtnetlink (netlink@0.3.0), keep them present
 * while master (someone running `ip addr del` gets undone, as keepalived does), and remove leftovers
 * from a crashed previous run when starting as non-master.
 *
 * Idempotence: RTM_NEWADDR with NLM_F_CREATE|NLM_F_EXCL answers EEXIST when the address is already
 * there, RTM_DELADDR answers EADDRNOTAVAIL when it is not — both mean "already in the wanted state".
 *
 * Watching: the library's high-level 'message' event loses the message type (NEWADDR vs DELADDR look
 * alike), so address notifications are only used as a trigger to re-read the interface's addresses;
 * a slow poll backs that up in case a notification is lost (netlink multicast may drop on overrun).
 */
import { createRtNetlink, type RtNetlinkSocket } from 'netlink';
import type { Logger } from '../core/log.js';
import type { Clock, TimerHandle } from '../core/clock.js';
import { parseIp } from '../core/address.js';
import { errorMessage, LvsdError } from '../core/errors.js';
import type { VirtualAddress } from '../config/model.js';
import { constants as osConstants } from 'node:os';
import { ifIndex, loadAfPacket, type AfPacketAddon } from './announce.js';

const NLM_F_EXCL = 0x200;
/** rtnetlink message types and address attributes (include/uapi/linux/rtnetlink.h, if_addr.h). */
const RTM_NEWADDR = 20;
const RTM_DELADDR = 21;
const NETLINK_ROUTE = 0;
const { EEXIST, EADDRNOTAVAIL, ENODEV } = osConstants.errno;
const IFA_ADDRESS = 1;
const IFA_LOCAL = 2;
const IFA_LABEL = 3;
const IFA_F_NODAD = 0x02;
const NLM_F_CREATE = 0x400;
const AF_INET = 2;
const AF_INET6 = 10;
/** rtnetlink scope values (include/uapi/linux/rtnetlink.h rt_scope_t). */
const SCOPES: Record<VirtualAddress['scope'], number> = { global: 0, site: 200, link: 253, host: 254 };

export interface IfAddr {
  readonly family: 4 | 6;
  readonly prefixLen: number;
  readonly scope: number;
  readonly index: number;
  readonly address: Uint8Array;
  readonly label?: string;
  /** IPv6: skip duplicate address detection (a VIP must be usable at once). */
  readonly nodad?: boolean;
}

/**
 * The body of an RTM_NEWADDR/RTM_DELADDR message (after the nlmsghdr): struct ifaddrmsg
 * {family u8, prefixlen u8, flags u8, scope u8, index u32} then IFA_ADDRESS, IFA_LOCAL (IPv4: the
 * local address is what the kernel matches) and IFA_LABEL, each attribute 4-byte aligned
 * (include/uapi/linux/if_addr.h, netlink.h NLA_ALIGN).
 */
export function encodeIfAddr(a: IfAddr): Buffer {
  const alen = a.address.length;
  const attr = (n: number) => 4 + ((n + 3) & ~3);
  const label = a.label !== undefined ? Buffer.from(`${a.label}\0`) : undefined;
  const size = 8 + attr(alen) * (a.family === 4 ? 2 : 1) + (label ? attr(label.length) : 0);
  const b = Buffer.alloc(size);
  b[0] = a.family === 4 ? AF_INET : AF_INET6;
  b[1] = a.prefixLen;
  b[2] = a.nodad ? IFA_F_NODAD : 0;
  b[3] = a.scope;
  b.writeUInt32LE(a.index, 4);
  let o = 8;
  const put = (type: number, data: Uint8Array) => {
    b.writeUInt16LE(4 + data.length, o);
    b.writeUInt16LE(type, o + 2);
    b.set(data, o + 4);
    o += attr(data.length);
  };
  put(IFA_ADDRESS, a.address);
  if (a.family === 4) put(IFA_LOCAL, a.address);
  if (label) put(IFA_LABEL, label);
  return b;
}

/** Role: the kernel's address table for the interfaces we own VIPs on. */
export interface AddressTable {
  add(ifname: string, v: VirtualAddress): Promise<'added' | 'present'>;
  /** Optional: do the per-address work of add() ahead of time (takeover latency). */
  prepare?(ifname: string, v: VirtualAddress): void;
  /**
   * Optional synchronous add: the kernel's answer before returning, or undefined when this table
   * cannot add synchronously (the caller then uses add()). Throws on a kernel error. `dry` runs
   * everything but the kernel call (a rehearsal that gets the code compiled ahead of a takeover).
   */
  addNow?(ifname: string, v: VirtualAddress, dry?: boolean): 'added' | 'present' | undefined;
  remove(ifname: string, v: VirtualAddress): Promise<'removed' | 'absent'>;
  /** Canonical address texts on an interface. */
  list(ifname: string): Promise<Set<string>>;
  /**
   * Calls fn when an address may have gone (a removal notification, or notifications were lost;
   * a table may also report other changes); returns an unsubscribe function.
   */
  watch(fn: () => void): () => void;
  close(): void;
}

export class NetlinkAddressTable implements AddressTable {
  private sock: RtNetlinkSocket | undefined;
  private eventsFd: number | undefined;
  private readonly watchers = new Set<() => void>();

  private rt(): RtNetlinkSocket {
    this.sock ??= createRtNetlink();
    return this.sock;
  }

  /**
   * RTM_NEWADDR payloads by interface index and address: a takeover sends a prebuilt message instead
   * of running the library's generic attribute encoder for the first time (cold JIT code cost
   * 2 ms on the takeover path, measured; the prebuilt send is ~0.1 ms).
   */
  private readonly payloads = new Map<string, Buffer>();

  private payload(index: number, v: VirtualAddress): Buffer {
    const key = `${index}|${v.address}/${v.prefixLen}|${v.scope}|${v.label ?? ''}`;
    let p = this.payloads.get(key);
    if (!p) {
      const a = parseIp(v.address);
      if (!a) throw new LvsdError('VIP', `invalid address ${v.address}`);
      p = encodeIfAddr({ family: a.family, prefixLen: v.prefixLen, scope: SCOPES[v.scope], index, address: a.bytes, ...(v.label ? { label: v.label } : {}), nodad: a.family === 6 });
      this.payloads.set(key, p);
    }
    return p;
  }

  /** Resolve and encode ahead of need, so the first add after a takeover is all hot. */
  prepare(ifname: string, v: VirtualAddress): void {
    this.rt();
    this.syncNl();
    this.openEvents();
    try {
      this.payload(ifIndex(ifname), v);
    } catch {
      /* interface not there yet: add() reports it when it matters */
    }
  }

  /** The addon's synchronous rtnetlink socket; null when the addon is unavailable (library path). */
  private nl: { readonly a: AfPacketAddon; readonly fd: number } | null | undefined;
  private nlSeq = 1;

  private syncNl(): { readonly a: AfPacketAddon; readonly fd: number } | null {
    if (this.nl === undefined) {
      try {
        const a = loadAfPacket();
        this.nl = typeof a.nlopen === 'function' ? { a, fd: a.nlopen(NETLINK_ROUTE) } : null;
      } catch {
        this.nl = null;
      }
    }
    return this.nl;
  }

  /** One synchronous request through the addon: the kernel's answer (0 / -errno), or undefined when none came. */
  private talk(type: number, payload: Buffer, flags: number): number | undefined {
    const nl = this.syncNl();
    if (!nl) return undefined;
    this.nlSeq = (this.nlSeq % 0x7fffffff) + 1;
    const r = nl.a.nlrequest(nl.fd, type, flags, this.nlSeq, payload);
    return r === 1 ? undefined : r;
  }

  /** A kernel answer to one of addRequests' payloads that leaves the VIP on its interface (added, or EEXIST). */
  static addAccepted(r: number): boolean {
    return r === 0 || r === -EEXIST;
  }

  /**
   * What addNow would send for these VIPs, for the runtime's single takeover call: the socket, the
   * first sequence number (reserved, one per payload) and the RTM_NEWADDR payloads.
   */
  addRequests(list: ReadonlyArray<{ readonly ifname: string; readonly v: VirtualAddress }>): { fd: number; seq: number; payloads: Buffer[] } | undefined {
    const nl = this.syncNl();
    if (!nl) return undefined;
    const payloads = list.map((x) => this.payload(nl.a.ifindex(x.ifname), x.v));
    const seq = (this.nlSeq % 0x7fffff00) + 1;
    this.nlSeq = seq + payloads.length;
    return { fd: nl.fd, seq, payloads };
  }

  addNow(ifname: string, v: VirtualAddress, dry = false): 'added' | 'present' | undefined {
    const nl = this.syncNl();
    if (!nl) return undefined;
    // The index is read every time (one ioctl): a re-created interface has a new one.
    const payload = this.payload(nl.a.ifindex(ifname), v);
    if (dry) return undefined;
    // Synchronous sendmsg + ACK in one addon call (tens of µs, no event-loop turn).
    const r = this.talk(RTM_NEWADDR, payload, NLM_F_CREATE | NLM_F_EXCL);
    if (r === 0) return 'added';
    if (r === -EEXIST) return 'present';
    if (r !== undefined) throw new LvsdError('NETLINK', `adding ${v.address}/${v.prefixLen} to ${ifname}: ${errnoText(-r)}`);
    return undefined;
  }

  async add(ifname: string, v: VirtualAddress): Promise<'added' | 'present'> {
    const now = this.addNow(ifname, v);
    if (now) return now;
    const payload = this.payload(ifIndex(ifname), v);
    try {
      // request() writes the message synchronously; the kernel applies RTM_NEWADDR inside sendmsg,
      // so the address is on the interface before this function first yields.
      await this.rt().socket.request(RTM_NEWADDR, payload, { flags: NLM_F_CREATE | NLM_F_EXCL, timeout: 2000 });
      return 'added';
    } catch (e) {
      if (/EEXIST/.test(errorMessage(e))) return 'present';
      throw new LvsdError('NETLINK', `adding ${v.address}/${v.prefixLen} to ${ifname}: ${errorMessage(e)}`, { cause: e });
    }
  }

  async remove(ifname: string, v: VirtualAddress): Promise<'removed' | 'absent'> {
    const a = parseIp(v.address);
    if (!a) throw new LvsdError('VIP', `invalid address ${v.address}`);
    let index: number;
    try {
      index = ifIndex(ifname);
    } catch {
      return 'absent'; // interface gone: so is the address
    }
    const r = this.talk(RTM_DELADDR, encodeIfAddr({ family: a.family, prefixLen: v.prefixLen, scope: 0, index, address: a.bytes }), 0);
    if (r === 0) return 'removed';
    if (r === -EADDRNOTAVAIL || r === -ENODEV) return 'absent';
    if (r !== undefined) throw new LvsdError('NETLINK', `removing ${v.address}/${v.prefixLen} from ${ifname}: ${errnoText(-r)}`);
    const bytes = Buffer.from(a.bytes);
    try {
      await this.rt().delAddress(
        { family: a.family === 4 ? AF_INET : AF_INET6, prefixlen: v.prefixLen, index },
        { address: bytes, ...(a.family === 4 ? { local: bytes } : {}) },
        { timeout: 2000 },
      );
      return 'removed';
    } catch (e) {
      if (/EADDRNOTAVAIL|ENODEV/.test(errorMessage(e))) return 'absent';
      throw new LvsdError('NETLINK', `removing ${v.address}/${v.prefixLen} from ${ifname}: ${errorMessage(e)}`, { cause: e });
    }
  }

  async list(ifname: string): Promise<Set<string>> {
    const index = ifIndex(ifname);
    const msgs = await this.rt().getAddresses(undefined, undefined, { timeout: 2000 });
    const out = new Set<string>();
    for (const m of msgs) {
      if (m.data.index !== index) continue;
      const b = m.attrs.local ?? m.attrs.address;
      if (b && (b.length === 4 || b.length === 16)) {
        const p = parseIp(b.length === 4 ? Array.from(b).join('.') : formatV6(b));
        if (p) out.add(p.text);
      }
    }
    return out;
  }

  watch(fn: () => void): () => void {
    this.openEvents();
    this.watchers.add(fn);
    return () => this.watchers.delete(fn);
  }

  /**
   * The notification socket (also opened by prepare(): it must not cost time on the takeover path).
   * Address notifications are parsed in the addon, and watchers only hear of removals (RTM_DELADDR)
   * and of lost notifications: an added address needs no re-check, and at a takeover the kernel
   * announces our own VIP adds at the very moment clients start arriving — decoding those with the
   * JavaScript netlink library and listing the interface's addresses cost ~3 ms of CPU right then
   * (measured on the failover bench), competing with the director's own traffic.
   */
  private openEvents(): void {
    if (this.eventsFd !== undefined) return;
    const a = loadAfPacket();
    this.eventsFd = a.nlwatch((type) => {
      if (type === RTM_NEWADDR) return;
      for (const w of this.watchers) w();
    });
  }

  close(): void {
    if (this.nl) this.nl.a.close(this.nl.fd);
    this.nl = undefined;
    try {
      this.sock?.socket.close();
    } catch {
      /* closed */
    }
    if (this.eventsFd !== undefined) loadAfPacket().rawclose(this.eventsFd);
    this.sock = undefined;
    this.eventsFd = undefined;
  }
}

function errnoText(n: number): string {
  const name = Object.entries(osConstants.errno).find(([, v]) => v === n)?.[0];
  return name ? `${name} (errno ${n})` : `errno ${n}`;
}

function formatV6(b: Uint8Array): string {
  const g: string[] = [];
  for (let i = 0; i < 16; i += 2) g.push(((b[i]! << 8) | b[i + 1]!).toString(16));
  return g.join(':');
}

export interface VipSetOptions {
  readonly table: AddressTable;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Interface used for VIPs without their own `device`. */
  readonly ifname: string;
  readonly vips: readonly VirtualAddress[];
  /** Seconds between guard polls (notifications trigger earlier checks). */
  readonly pollSeconds?: number;
  /** Called when a VIP that had been removed behind our back was added again. */
  readonly onRestored?: (vip: string) => void;
}

/** The VIPs of one instance: take on master, guard while master, release otherwise. */
export class VipSet {
  private guarding = false;
  /** Bumped by takeNow/release: a guard start queued by takeNow is void after a release. */
  private takeGen = 0;
  private unwatch: (() => void) | undefined;
  private poll: TimerHandle | undefined;
  private checking = false;
  private again = false;

  constructor(private readonly o: VipSetOptions) {}

  private dev(v: VirtualAddress): string {
    return v.device ?? this.o.ifname;
  }

  /** Resolve and encode every VIP ahead of a takeover, and rehearse the synchronous add. */
  prepare(): void {
    for (const v of this.o.vips) this.o.table.prepare?.(this.dev(v), v);
    this.takeNow(true);
  }

  /** The VIPs with the interface each goes on (`device`, else the instance's). */
  placed(): Array<{ ifname: string; v: VirtualAddress }> {
    return this.o.vips.map((v) => ({ ifname: this.dev(v), v }));
  }

  /** The VIPs were added by the runtime's takeover call: guard them as takeNow would. */
  adopt(): void {
    this.guardSoon();
  }

  /** The guard starts after the current synchronous job (a microtask): the GARP that follows is first. */
  private guardSoon(): void {
    const gen = ++this.takeGen;
    queueMicrotask(() => {
      if (gen === this.takeGen) this.startGuard();
    });
  }

  /**
   * Add every VIP synchronously when the table can (errors logged per address, like take()); false
   * when it cannot, and the caller uses take(). `dry`: rehearsal without kernel calls (see prepare).
   */
  takeNow(dry = false): boolean {
    const t = this.o.table;
    if (!t.addNow) return false;
    for (const v of this.o.vips) {
      try {
        if (t.addNow(this.dev(v), v, dry) === undefined && !dry) return false;
      } catch (e) {
        this.o.logger.error({ vip: v.address, err: errorMessage(e) }, 'cannot add VIP');
      }
    }
    if (!dry) this.guardSoon();
    return !dry;
  }

  /** Add every VIP (errors are logged per address; the rest still get added). */
  async take(): Promise<void> {
    await Promise.all(
      this.o.vips.map(async (v) => {
        try {
          await this.o.table.add(this.dev(v), v);
        } catch (e) {
          this.o.logger.error({ vip: v.address, err: errorMessage(e) }, 'cannot add VIP');
        }
      }),
    );
    this.startGuard();
  }

  /**
   * Remove every VIP; also used at start to clear what a crashed previous run left. `keep`: VIPs it
   * says true for stay (a reload in place removes only those no longer configured).
   */
  async release(keep?: (v: VirtualAddress, ifname: string) => boolean): Promise<number> {
    this.takeGen++;
    this.stopGuard();
    let removed = 0;
    await Promise.all(
      this.o.vips.filter((v) => !keep?.(v, this.dev(v))).map(async (v) => {
        try {
          if ((await this.o.table.remove(this.dev(v), v)) === 'removed') removed++;
        } catch (e) {
          this.o.logger.error({ vip: v.address, err: errorMessage(e) }, 'cannot remove VIP');
        }
      }),
    );
    return removed;
  }

  private startGuard(): void {
    if (this.guarding) return;
    this.guarding = true;
    this.unwatch = this.o.table.watch(() => void this.check());
    const every = (this.o.pollSeconds ?? 2) * 1000;
    const tick = () => {
      if (!this.guarding) return;
      void this.check();
      this.poll = this.o.clock.setTimeout(tick, every);
    };
    this.poll = this.o.clock.setTimeout(tick, every);
  }

  private stopGuard(): void {
    this.guarding = false;
    this.unwatch?.();
    this.unwatch = undefined;
    if (this.poll) this.o.clock.clearTimeout(this.poll);
    this.poll = undefined;
  }

  /** Re-add any VIP missing from its interface (serialised; a check requested meanwhile runs after). */
  async check(): Promise<void> {
    if (!this.guarding) return;
    if (this.checking) {
      this.again = true;
      return;
    }
    this.checking = true;
    try {
      do {
        this.again = false;
        const byDev = new Map<string, Set<string>>();
        for (const v of this.o.vips) {
          if (!this.guarding) return;
          const d = this.dev(v);
          let present = byDev.get(d);
          if (!present) {
            try {
              present = await this.o.table.list(d);
            } catch (e) {
              this.o.logger.warn({ ifname: d, err: errorMessage(e) }, 'cannot list addresses');
              continue;
            }
            byDev.set(d, present);
          }
          const text = parseIp(v.address)?.text ?? v.address;
          if (!present.has(text) && this.guarding) {
            try {
              if ((await this.o.table.add(d, v)) === 'added') {
                this.o.logger.warn({ vip: v.address, ifname: d }, 'VIP was removed while master; added it again');
                this.o.onRestored?.(v.address);
              }
            } catch (e) {
              this.o.logger.error({ vip: v.address, err: errorMessage(e) }, 'cannot re-add VIP');
            }
          }
        }
      } while (this.again && this.guarding);
    } finally {
      this.checking = false;
    }
  }

  close(): void {
    this.stopGuard();
  }
}
