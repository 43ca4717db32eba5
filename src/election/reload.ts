/**
 * Reload of a running VRRP instance, decided purely from its old and new config: which keys make it
 * another router (replaced: stopped with its stop handover, then started), and for the rest, applied
 * in place (runtime `reconfigure`, machine `reconfigure` event), whether its I/O must be rebuilt and
 * whether a Master must take and announce its VIPs again.
 */
import { isDeepStrictEqual } from 'node:util';
import type { VrrpInstanceConfig } from '../config/model.js';
import type { InstanceParams } from './machine.js';

/** Keys that make the instance another router (RFC 5798 §5.2.3 VRID, §5.2.1 version; its link and family). */
export const IDENTITY_KEYS = ['virtual_router_id', 'interface', 'family', 'version', 'unicast_src'] as const;

/**
 * Keys the runtime applies without touching the instance's sockets: machine params, notify, GARP
 * schedule, tracking. Any other key (VIPs, unicast peers, the advert interval the transport checks,
 * takeover_thread, advert_backstop, accept_v2_adverts, sync_group, keys added later) rebuilds the
 * instance's I/O in place: a new socket is open before the old one closes, the VIPs held stay.
 */
const NO_IO_KEYS = new Set<string>(['name', 'priority', 'initial_state', 'preempt', 'preempt_delay', 'accept', 'track_interfaces', 'track_scripts', 'track_virtual_servers', 'notify', 'garp', 'lower_prio_no_advert', 'higher_prio_send_advert', 'priority_zero_on_stop', 'stop_handover']);

export type ReloadPlan =
  | { readonly kind: 'same' }
  | { readonly kind: 'replace'; readonly keys: readonly string[] }
  | { readonly kind: 'in_place'; readonly keys: readonly string[]; /** rebuild transport, VIP set, announcer, native mechanisms */ readonly io: boolean; /** a Master takes and announces its VIPs again */ readonly announce: boolean };

export function reloadPlan(prev: VrrpInstanceConfig, next: VrrpInstanceConfig): ReloadPlan {
  const keys = [...new Set([...Object.keys(prev), ...Object.keys(next)])].filter((k) => !isDeepStrictEqual((prev as unknown as Record<string, unknown>)[k], (next as unknown as Record<string, unknown>)[k]));
  if (keys.length === 0) return { kind: 'same' };
  if (keys.some((k) => (IDENTITY_KEYS as readonly string[]).includes(k))) return { kind: 'replace', keys };
  const io = keys.some((k) => !NO_IO_KEYS.has(k));
  // A new announcer (io) must restart the GARP refresh schedule; new GARP settings restart it too.
  return { kind: 'in_place', keys, io, announce: io || keys.includes('garp') };
}

/** The machine's params for an instance config; `primaryAddress` is the transport's source address. */
export function paramsOf(cfg: VrrpInstanceConfig, primaryAddress: string): InstanceParams {
  return {
    name: cfg.name,
    version: cfg.version,
    vrid: cfg.virtual_router_id,
    priority: cfg.priority,
    advertIntervalMs: Math.round(cfg.advert_interval * 1000),
    preempt: cfg.preempt,
    preemptDelayMs: Math.round(cfg.preempt_delay * 1000),
    primaryAddress,
    priorityZeroOnStop: cfg.priority_zero_on_stop,
    stopHandover: cfg.stop_handover,
    initialState: cfg.initial_state,
    lowerPrioNoAdvert: cfg.lower_prio_no_advert,
    lowerPrioGarp: (cfg.garp.lower_prio_repeat ?? cfg.garp.master_repeat) > 0,
    higherPrioSendAdvert: cfg.higher_prio_send_advert,
  };
}
