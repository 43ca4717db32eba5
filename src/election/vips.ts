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
import { linkInfo } from './announce.js';

const NLM_F_EXCL = 0x200;
const NLM_F_CREATE = 0x400;
const AF_INET = 2;
const AF_INET6 = 10;
/** rtnetlink scope values (include/uapi/linux/rtnetlink.h rt_scope_t). */
const SCOPES: Record<VirtualAddress['scope'], number> = { global: 0, site: 200, link: 253, host: 254 };

/** Role: the kernel's address table for the interfaces we own VIPs on. */
export interface AddressTable {
  add(ifname: string, v: VirtualAddress): Promise<'added' | 'present'>;
  remove(ifname: string, v: VirtualAddress): Promise<'removed' | 'absent'>;
  /** Canonical address texts on an interface. */
  list(ifname: string): Promise<Set<string>>;
  /** Calls fn on any address change notification; returns an unsubscribe function. */
  watch(fn: () => void): () => void;
  close(): void;
}

export class NetlinkAddressTable implements AddressTable {
  private sock: RtNetlinkSocket | undefined;
  private events: RtNetlinkSocket | undefined;
  private readonly watchers = new Set<() => void>();

  private rt(): RtNetlinkSocket {
    this.sock ??= createRtNetlink();
    return this.sock;
  }

  async add(ifname: string, v: VirtualAddress): Promise<'added' | 'present'> {
    const a = parseIp(v.address);
    if (!a) throw new LvsdError('VIP', `invalid address ${v.address}`);
    const index = linkInfo(ifname).index;
    const bytes = Buffer.from(a.bytes);
    try {
      await this.rt().newAddress(
        { family: a.family === 4 ? AF_INET : AF_INET6, prefixlen: v.prefixLen, scope: SCOPES[v.scope], index, ...(a.family === 6 ? { flags: { nodad: true } } : {}) },
        { address: bytes, ...(a.family === 4 ? { local: bytes } : {}), ...(v.label ? { label: v.label } : {}) },
        { flags: NLM_F_CREATE | NLM_F_EXCL, timeout: 2000 },
      );
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
      index = linkInfo(ifname).index;
    } catch {
      return 'absent'; // interface gone: so is the address
    }
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
    const index = linkInfo(ifname).index;
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
    if (!this.events) {
      const ev = createRtNetlink();
      ev.addMembership('IPV4_IFADDR');
      ev.addMembership('IPV6_IFADDR');
      ev.on('message', () => {
        for (const w of this.watchers) w();
      });
      this.events = ev;
    }
    this.watchers.add(fn);
    return () => this.watchers.delete(fn);
  }

  close(): void {
    try {
      this.sock?.socket.close();
    } catch {
      /* closed */
    }
    try {
      this.events?.socket.close();
    } catch {
      /* closed */
    }
    this.sock = undefined;
    this.events = undefined;
  }
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
  private unwatch: (() => void) | undefined;
  private poll: TimerHandle | undefined;
  private checking = false;
  private again = false;

  constructor(private readonly o: VipSetOptions) {}

  private dev(v: VirtualAddress): string {
    return v.device ?? this.o.ifname;
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

  /** Remove every VIP; also used at start to clear what a crashed previous run left. */
  async release(): Promise<number> {
    this.stopGuard();
    let removed = 0;
    await Promise.all(
      this.o.vips.map(async (v) => {
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
