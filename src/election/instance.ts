/**
 * The runtime's record of one running VRRP instance (Inst): its config, adapters, host timers and
 * the bookkeeping the takeover path keeps; with what is derived from the config alone (the advert,
 * the announcement targets).
 */
import type { TimerHandle } from '../core/clock.js';
import type { Logger } from '../core/log.js';
import { parseIp } from '../core/address.js';
import { errorMessage } from '../core/errors.js';
import type { VrrpInstanceConfig } from '../config/model.js';
import type { Advert } from './codec.js';
import type { TimerName } from './machine.js';
import type { PriorityResult, Tracking } from './priority.js';
import type { AnnounceTarget } from './announce.js';
import type { InstanceIo } from './io.js';

export interface Inst {
  cfg: VrrpInstanceConfig;
  io: InstanceIo;
  log: Logger;
  timers: Map<TimerName, TimerHandle>;
  vipChain: Promise<void>;
  tracking: Tracking;
  prio: PriorityResult;
  masterLabel?: string;
  started: boolean;
  /** VIP operations issued and not yet settled. */
  vipPending: number;
  /** add_vips of the current effect batch was issued synchronously (GARP may follow at once). */
  addedNow: boolean;
  /** Resolves a stop() waiting for the stop handover to end. */
  handoverEnded?: () => void;
  /** Announce targets (interfaces, MACs, VIPs) worked out at start; their frames are prebuilt. */
  targets?: AnnounceTarget[];
  /**
   * Set while the step of an expiry that went through the takeover call is applied: whether that call
   * added the VIPs, how many rounds of frames and whether the advert it sent (apply adopts them
   * instead of doing them again; `advert` is cleared once the step's send_advert is adopted).
   */
  fastDone?: { vips: boolean; rounds: number; advert: boolean; /** which did it (logged as dataplane) */ by: 'takeover_call' | 'takeover_thread' };
  /** The quiet window after a takeover call (QUIET_MS): the held step first, then the instance's events that arrived meanwhile. */
  quiet?: { readonly queue: Array<() => void>; readonly timer: TimerHandle };
  /** The priority the backstop is armed with (undefined: disarmed). */
  backstopPriority?: number;
  /** The backstop threw: not used again for this instance. */
  backstopFailed?: boolean;
  /** Monotonic receive time of the last accepted advert (for the takeover log's silence_ms). */
  lastHeard?: number;
  /** Split-brain adverts seen and not logged since the last warning (only answered ones are logged). */
  splitBrainUnlogged?: number;
  /** Late-advert warnings: when the last was logged, and how many were not logged since. */
  lateAdvertLog?: { at: number; suppressed: number };
  /** The last master_down expiry: how long the master had been silent and how late the timer woke. */
  lastExpiry?: { silenceMs: number; lateMs: number; wake?: { earlyMs: number; prepMs: number } };
  /** The periodic takeover warm-up (warmTakeover). */
  warmTimer?: TimerHandle;
  /**
   * The takeover thread's state: the advert priority its load was for (-1: none; undefined: not loaded
   * or to be reloaded), the master_down timer it is armed for, its deadline and that timer's wake.
   */
  thread?: { key?: number; armedFor?: TimerHandle; due?: number; wake?: () => void; /** armThread calls, to tell a step that re-armed */ arms: number };
  /** The takeover thread threw: not used again for this instance. */
  threadFailed?: boolean;
  /** The last error reopening the VRRP socket (repairTransports; logged when it changes). */
  repairError?: string;
}

/** The advert's VIP bytes per instance config, parsed once (a master sends up to 100 adverts/s). */
const advertAddresses = new WeakMap<VrrpInstanceConfig, Uint8Array[]>();

export function advertOf(c: VrrpInstanceConfig, priority: number): Advert {
  let addresses = advertAddresses.get(c);
  if (!addresses) advertAddresses.set(c, (addresses = c.virtual_addresses.map((v) => parseIp(v.address)!.bytes)));
  return { version: c.version, vrid: c.virtual_router_id, priority, intervalMs: Math.round(c.advert_interval * 1000), addresses };
}

/**
 * The instance's VIPs grouped by the interface they are put on (`device`, default the instance
 * interface), each with that interface's MAC: a VIP on another segment is announced there, from
 * that interface, or that segment's neighbours would keep the old master's MAC.
 */
export function announceTargets(c: VrrpInstanceConfig, a: NonNullable<InstanceIo['announce']>, log: Logger): AnnounceTarget[] {
  // The instance interface first: its announcement is the one on the failover's critical path.
  const byDev = new Map<string, Uint8Array[]>([[a.ifname, []]]);
  for (const v of [...c.virtual_addresses, ...c.virtual_addresses_excluded]) {
    const dev = v.device ?? a.ifname;
    const list = byDev.get(dev) ?? [];
    list.push(parseIp(v.address)!.bytes);
    byDev.set(dev, list);
  }
  const out: AnnounceTarget[] = [];
  for (const [ifname, vips] of byDev) {
    if (vips.length === 0) continue;
    if (ifname === a.ifname) {
      out.push({ ifname, mac: a.mac, vips });
      continue;
    }
    try {
      if (!a.macOf) throw new Error('no MAC lookup');
      const mac = a.macOf(ifname);
      // No link-layer address (loopback, tunnels): nothing to announce there.
      if (mac.length === 6 && mac.some((x) => x !== 0)) out.push({ ifname, mac, vips });
    } catch (e) {
      log.warn({ ifname, err: errorMessage(e) }, 'cannot announce VIPs on this interface');
    }
  }
  return out;
}

export function bytesToV6(b: Uint8Array): string {
  const g: string[] = [];
  for (let i = 0; i < 16; i += 2) g.push(((b[i]! << 8) | b[i + 1]!).toString(16));
  return parseIp(g.join(':'))!.text;
}
