/**
 * Config (src/config/model.ts) + real-server health → the IPVS table lvsd wants.
 *
 * Health semantics (bus event 'health.rs'): up → destination present with the published weight;
 * down with inhibit → present with weight 0 (existing connections keep flowing, no new ones);
 * down without inhibit → absent. A real server with no verdict yet counts as up with its configured
 * weight, unless its check policy says `alpha` (start down), like keepalived.
 * Sorry server: present when no real server is up (weight > 0); with `inhibit` it stays in the table
 * at weight 0 while real servers are up.
 */
import type { ClusterConfig, RealServerConfig, SorryServerConfig, TunnelConfig, VirtualServerConfig } from '../config/model.js';
import {
  defaultNetmask, destKey, makeDest, makeService, SVC_F_ONEPACKET, SVC_F_PERSISTENT, SVC_F_SCHED1, SVC_F_SCHED2, SVC_F_SCHED3,
  TUN_F_CSUM, TUN_F_REMCSUM, type IpvsDest, type IpvsService, type IpvsTable, type IpvsTableEntry,
} from './model.js';

export interface RsHealth {
  readonly up: boolean;
  /** Weight to program while up. */
  readonly weight: number;
  /** Keep the destination at weight 0 while down instead of removing it. */
  readonly inhibit: boolean;
}

/** Health lookup by virtual server key and real server key; undefined = no verdict yet. */
export type HealthView = (vsKey: string, rsKey: string) => RsHealth | undefined;

const FLAG_BITS: Record<string, number> = {
  'flag-1': SVC_F_SCHED1, 'sh-fallback': SVC_F_SCHED1, 'mh-fallback': SVC_F_SCHED1,
  'flag-2': SVC_F_SCHED2, 'sh-port': SVC_F_SCHED2, 'mh-port': SVC_F_SCHED2,
  'flag-3': SVC_F_SCHED3,
};

function prefixToMask(n: number): number {
  return n <= 0 ? 0 : n >= 32 ? 0xffffffff : (0xffffffff << (32 - n)) >>> 0;
}

function netmaskOf(vs: VirtualServerConfig): number {
  const nm = vs.persistence?.netmask;
  if (nm === undefined) return defaultNetmask(vs.family);
  if (typeof nm === 'number') return vs.family === 6 ? nm : prefixToMask(nm);
  // Dotted IPv4 mask.
  const p = nm.split('.').map(Number);
  return (((p[0]! << 24) | (p[1]! << 16) | (p[2]! << 8) | p[3]!) >>> 0);
}

export function serviceFromConfig(vs: VirtualServerConfig): IpvsService {
  let flags = 0;
  if (vs.persistence) flags |= SVC_F_PERSISTENT;
  if (vs.one_packet) flags |= SVC_F_ONEPACKET;
  for (const f of vs.scheduler_flags) flags |= FLAG_BITS[f] ?? 0;
  return makeService({
    family: vs.family,
    protocol: vs.protocol,
    ...(vs.address !== undefined ? { addr: vs.address } : {}),
    port: vs.port,
    fwmark: vs.fwmark ?? 0,
    scheduler: vs.scheduler,
    flags,
    timeout: vs.persistence?.timeout ?? 0,
    netmask: netmaskOf(vs),
    pe_name: vs.persistence?.engine ?? '',
  });
}

function tunnelFields(t: TunnelConfig | undefined): Pick<IpvsDest, 'tun_type' | 'tun_port' | 'tun_flags'> {
  if (!t) return { tun_type: 'ipip', tun_port: 0, tun_flags: 0 };
  return {
    tun_type: t.type,
    tun_port: t.type === 'gue' ? t.port ?? 0 : 0,
    tun_flags: t.checksum === 'csum' ? TUN_F_CSUM : t.checksum === 'remcsum' ? TUN_F_REMCSUM : 0,
  };
}

function destFromRs(rs: RealServerConfig, weight: number): IpvsDest {
  return makeDest({
    addr: rs.address,
    port: rs.port,
    fwd: rs.forwarding,
    weight,
    u_threshold: rs.upper_threshold,
    l_threshold: rs.lower_threshold,
    ...(rs.forwarding === 'tun' ? tunnelFields(rs.tunnel) : {}),
  });
}

function destFromSorry(vs: VirtualServerConfig, s: SorryServerConfig, weight: number): IpvsDest {
  return makeDest({ addr: s.address, port: s.port, fwd: s.forwarding, weight, ...(s.forwarding === 'tun' ? tunnelFields(vs.tunnel) : {}) });
}

/** Every real server healthy at its configured weight (what `lvsd ipvs apply` uses). */
export const allHealthy: HealthView = () => undefined;

export function entryFromConfig(vs: VirtualServerConfig, health: HealthView = allHealthy): IpvsTableEntry {
  const service = serviceFromConfig(vs);
  const dests: IpvsDest[] = [];
  const keys = new Set<string>();
  let anyUp = false;
  for (const rs of vs.real_servers) {
    const h = health(vs.key, rs.key);
    const up = h ? h.up : !rs.policy.alpha;
    const inhibit = h ? h.inhibit : rs.policy.inhibit_on_failure;
    const d = up ? destFromRs(rs, h ? h.weight : rs.weight) : inhibit ? destFromRs(rs, 0) : undefined;
    if (!d) continue;
    if (keys.has(destKey(d))) continue;
    keys.add(destKey(d));
    if (up && d.weight > 0) anyUp = true;
    dests.push(d);
  }
  const s = vs.sorry_server;
  if (s) {
    const d = !anyUp ? destFromSorry(vs, s, s.weight) : s.inhibit ? destFromSorry(vs, s, 0) : undefined;
    if (d && !keys.has(destKey(d))) dests.push(d);
  }
  return { service, dests };
}

/** The IPVS table a config asks for, given real-server health (default: every real server up). */
export function desiredFromConfig(config: Pick<ClusterConfig, 'virtual_servers'>, health: HealthView = allHealthy): IpvsTable {
  return config.virtual_servers.map((vs) => entryFromConfig(vs, health));
}
