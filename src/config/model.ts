/**
 * The typed, read-only model every subsystem consumes. It is the schema's output with shorthands
 * expanded (string virtual addresses → objects, inherited check policy resolved, default ports).
 */
import { isIPv6 } from 'node:net';
import { resolve as resolvePath } from 'node:path';
import type {
  ClusterConfigParsed,
  HealthCheckConfig,
  SyncConfig,
} from './schema.js';

export type DeepReadonly<T> = T extends (infer U)[]
  ? ReadonlyArray<DeepReadonly<U>>
  : T extends object
    ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
    : T;

export type Protocol = 'tcp' | 'udp' | 'sctp';
export type Forwarding = 'nat' | 'dr' | 'tun';
export type Command = readonly string[];

export interface VirtualAddress {
  readonly address: string; // without prefix
  readonly prefixLen: number;
  readonly family: 4 | 6;
  readonly device?: string;
  readonly scope: 'global' | 'site' | 'link' | 'host';
  readonly label?: string;
}

export interface Notify {
  readonly master?: Command;
  readonly backup?: Command;
  readonly fault?: Command;
  readonly stop?: Command;
  readonly any?: Command;
  readonly timeout: number;
  /** global.script_user. */
  readonly script_user?: string;
}

export interface GarpConfig {
  readonly master_delay: number;
  readonly master_repeat: number;
  readonly master_refresh: number;
  readonly master_refresh_repeat: number;
  readonly interval: number;
  /** Burst size and second-burst delay of a Master's answer to a lower-priority master (default master_repeat / master_delay). */
  readonly lower_prio_repeat?: number;
  readonly lower_prio_delay?: number;
}

export interface VrrpInstanceConfig {
  readonly name: string;
  readonly interface: string;
  readonly virtual_router_id: number;
  readonly priority: number;
  readonly version: 2 | 3;
  readonly advert_interval: number;
  readonly initial_state: 'BACKUP' | 'MASTER';
  readonly preempt: boolean;
  readonly preempt_delay: number;
  readonly family: 4 | 6;
  readonly virtual_addresses: readonly VirtualAddress[];
  readonly virtual_addresses_excluded: readonly VirtualAddress[];
  readonly unicast_src?: string;
  readonly unicast_peers: readonly string[];
  /** Advert source allow-list (empty: any). */
  readonly peers: readonly string[];
  /** VRRPv2 authentication (RFC 2338 §5.3.6), keepalived's `authentication { }`. */
  readonly authentication?: { readonly type: 'PASS' | 'AH'; readonly password: string };
  readonly accept: boolean;
  readonly track_interfaces: ReadonlyArray<{ readonly name: string; readonly weight: number }>;
  readonly track_scripts: ReadonlyArray<{ readonly name: string; readonly weight?: number }>;
  readonly track_virtual_servers: ReadonlyArray<{ readonly name: string; readonly weight: number }>;
  readonly notify?: Notify;
  readonly garp: GarpConfig;
  readonly lower_prio_no_advert: boolean;
  readonly higher_prio_send_advert: boolean;
  readonly priority_zero_on_stop: boolean;
  readonly stop_handover: boolean;
  readonly accept_v2_adverts: boolean;
  readonly advert_backstop: boolean;
  readonly takeover_thread: boolean;
  /** Sync group this instance belongs to, if any. */
  readonly sync_group?: string;
}

export interface VrrpScriptConfig {
  readonly name: string;
  readonly script: Command;
  readonly interval: number;
  readonly timeout: number;
  readonly weight: number;
  readonly rise: number;
  readonly fall: number;
  /** Its own script_user, else global.script_user. */
  readonly script_user?: string;
}

export interface VrrpSyncGroupConfig {
  readonly name: string;
  readonly members: readonly string[];
  readonly notify?: Notify;
}

export interface CheckPolicy {
  readonly interval: number;
  readonly timeout: number;
  readonly rise: number;
  readonly fall: number;
  readonly retry_delay: number;
  readonly alpha: boolean;
  readonly inhibit_on_failure: boolean;
}

export type HealthCheck = DeepReadonly<HealthCheckConfig>;

export interface TunnelConfig {
  readonly type: 'ipip' | 'gue' | 'gre';
  readonly port?: number;
  readonly checksum: 'none' | 'csum' | 'remcsum';
}

export interface RealServerConfig {
  /** "ADDRESS:PORT" (IPv6 bracketed), unique within its virtual server. */
  readonly key: string;
  readonly address: string;
  readonly family: 4 | 6;
  readonly port: number;
  readonly weight: number;
  readonly forwarding: Forwarding;
  readonly tunnel?: TunnelConfig;
  readonly upper_threshold: number;
  readonly lower_threshold: number;
  readonly checks: readonly HealthCheck[];
  readonly policy: CheckPolicy;
  readonly notify_up?: Command;
  readonly notify_down?: Command;
}

export interface SorryServerConfig {
  readonly address: string;
  readonly port: number;
  readonly forwarding: Forwarding;
  readonly weight: number;
  readonly inhibit: boolean;
}

export interface VirtualServerConfig {
  /** Stable identity: "tcp/192.0.2.10:80", "udp/[2001:db8::1]:53", "fwm/1/ipv4". */
  readonly key: string;
  readonly name: string;
  readonly family: 4 | 6;
  readonly address?: string;
  readonly port: number;
  readonly fwmark?: number;
  readonly protocol: Protocol;
  readonly scheduler: string;
  readonly scheduler_flags: readonly string[];
  readonly persistence?: { readonly timeout: number; readonly netmask?: string | number; readonly engine?: string };
  readonly one_packet: boolean;
  readonly forwarding: Forwarding;
  readonly tunnel?: TunnelConfig;
  readonly quorum: number;
  readonly hysteresis: number;
  readonly quorum_up?: Command;
  readonly quorum_down?: Command;
  readonly sorry_server?: SorryServerConfig;
  readonly real_servers: readonly RealServerConfig[];
}

export interface ClusterConfig {
  readonly global: DeepReadonly<ClusterConfigParsed['global']> & { readonly router_id: string };
  readonly vrrp_scripts: readonly VrrpScriptConfig[];
  readonly vrrp_instances: readonly VrrpInstanceConfig[];
  readonly vrrp_sync_groups: readonly VrrpSyncGroupConfig[];
  readonly virtual_servers: readonly VirtualServerConfig[];
  readonly sync?: SyncModel;
}

/**
 * keepalived 2.2.7 check policy defaults (keepalived.conf(5)): delay_loop 60, connect_timeout 5,
 * delay_before_retry 1, retry 1 — one retry after a failed check, so a server is down after 2
 * consecutive failures (fall 2).
 */
export const DEFAULT_POLICY: CheckPolicy = {
  interval: 60,
  timeout: 5,
  rise: 1,
  fall: 2,
  retry_delay: 1,
  alpha: false,
  inhibit_on_failure: false,
};

export function toCommand(c: string | readonly string[] | undefined): Command | undefined {
  if (c === undefined) return undefined;
  if (typeof c === 'string') return c.trim().split(/\s+/);
  return c;
}

function notifyOf(n: ClusterConfigParsed['vrrp_instances'][number]['notify'], user: string | undefined): Notify | undefined {
  if (!n) return undefined;
  const out: { -readonly [K in keyof Notify]: Notify[K] } = { timeout: n.timeout, ...(user ? { script_user: user } : {}) };
  for (const k of ['master', 'backup', 'fault', 'stop', 'any'] as const) {
    const c = toCommand(n[k]);
    if (c) out[k] = c;
  }
  return out;
}

function vaddr(v: string | { address: string; device?: string | undefined; scope: VirtualAddress['scope']; label?: string | undefined }): VirtualAddress {
  const o = typeof v === 'string' ? { address: v, scope: 'global' as const } : v;
  const [addr, plen] = o.address.split('/');
  const family = isIPv6(addr!) ? 6 : 4;
  const out: VirtualAddress = {
    address: addr!,
    prefixLen: plen !== undefined ? Number(plen) : family === 4 ? 32 : 128,
    family,
    scope: o.scope,
    ...('device' in o && o.device ? { device: o.device } : {}),
    ...('label' in o && o.label ? { label: o.label } : {}),
  };
  return out;
}

export function endpointKey(address: string, port: number): string {
  return isIPv6(address) ? `[${address}]:${port}` : `${address}:${port}`;
}

export function virtualServerKey(vs: { protocol: string; address?: string | undefined; port?: number | undefined; fwmark?: number | undefined; family?: string | undefined }): string {
  if (vs.fwmark !== undefined) return `fwm/${vs.fwmark}/${vs.family ?? 'ipv4'}`;
  return `${vs.protocol}/${endpointKey(vs.address!, vs.port ?? 0)}`;
}

type PolicyInput = Partial<Record<keyof CheckPolicy, number | boolean | undefined>>;
function policyOf(...layers: PolicyInput[]): CheckPolicy {
  const out: Record<string, unknown> = { ...DEFAULT_POLICY };
  for (const l of layers) for (const [k, v] of Object.entries(l)) if (v !== undefined && k in DEFAULT_POLICY) out[k] = v;
  return out as unknown as CheckPolicy;
}

/** keepalived's address-owner priority (RFC 5798 §5.2.4). */
export const OWNER_PRIORITY = 255;

/**
 * keepalived vrrp_complete_instance: "If no priority has been set, derive it from the initial state"
 * (MASTER → 255, else 100) and "If no initial state has been set, derive it from the priority"
 * (255 → MASTER, else BACKUP).
 */
export function vrrpStartOf(i: { priority?: number | undefined; initial_state?: 'BACKUP' | 'MASTER' | undefined }): { priority: number; initial_state: 'BACKUP' | 'MASTER' } {
  const priority = i.priority ?? (i.initial_state === 'MASTER' ? OWNER_PRIORITY : 100);
  return { priority, initial_state: i.initial_state ?? (priority === OWNER_PRIORITY ? 'MASTER' : 'BACKUP') };
}

/** sync with its local ports resolved (channel lvsd uses them; localSyncPorts). */
export type SyncModel = DeepReadonly<Omit<SyncConfig, 'stream_port' | 'handover_port'>> & {
  readonly stream_port: number;
  readonly handover_port: number;
  /**
   * Ids of the keys in key_file when the configuration was loaded (keys.ts makeKey: the first 4
   * bytes of the key's SHA-256, hex; the first signs), so that a reload sees a rotated key file as a
   * change of sync (config/diff.ts) although the YAML did not change. Absent when the files were
   * not read (check of a text for another machine).
   */
  readonly key_ids?: readonly string[];
};

/** What the loader read besides the YAML (load.ts), for the model. */
export interface ModelFiles {
  /** The directory relative paths in the file are taken from (the configuration file's). */
  readonly baseDir?: string;
  /** sync.key_file's key ids (SyncModel.key_ids). */
  readonly syncKeyIds?: readonly string[];
}

/**
 * The two ports channel lvsd uses on lo besides sync.port, which the channel socket binds on the
 * wildcard address (so it would receive any group datagram on lo at that port, IP_MULTICAST_ALL):
 * the kernel stream's (the master daemon on lo sends to 224.0.0.81 there; 0: none) and the
 * hand-over's (the backup daemon on lo listens there). All three differ, or one would receive
 * another's datagrams: the backup daemon would install the stream's own records back into this
 * director's table, the channel would read the hand-over. Defaults: stream 8849 (8850 when
 * sync.port is 8849), hand-over the lowest port from 8850 up that is neither of the others.
 */
export function localSyncPorts(s: { readonly port: number; readonly stream_port?: number | undefined; readonly handover_port?: number | undefined }): { stream: number; handover: number } {
  const stream = s.stream_port ?? (s.port === 8849 ? 8850 : 8849);
  let handover = s.handover_port ?? 8850;
  if (s.handover_port === undefined) while (handover === s.port || handover === stream) handover++;
  return { stream, handover };
}

function syncModel(s: SyncConfig, files: ModelFiles): SyncModel {
  const { stream, handover } = localSyncPorts(s);
  // key_file as an absolute path, relative ones from the configuration's directory (as scripts are
  // checked): the daemon reads it at start and at every reload, whatever its working directory.
  const keyFile = s.key_file !== undefined && files.baseDir ? { key_file: resolvePath(files.baseDir, s.key_file) } : {};
  return { ...s, ...keyFile, stream_port: stream, handover_port: handover, ...(files.syncKeyIds ? { key_ids: files.syncKeyIds } : {}) };
}

/**
 * keepalived (vrrp_sync.c, vrrp.c): a sync group starts MASTER only when every member is the address
 * owner wanting MASTER; otherwise every member that wanted MASTER is reset to BACKUP.
 */
export function syncGroupStartsMaster(members: ReadonlyArray<{ priority: number; initial_state: 'BACKUP' | 'MASTER' }>): boolean {
  return members.length > 0 && members.every((m) => m.priority === OWNER_PRIORITY && m.initial_state === 'MASTER');
}

export function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o as object)) deepFreeze(v);
  }
  return o;
}

/** Expand shorthands and resolve inheritance; the result is deeply frozen. */
export function buildModel(p: ClusterConfigParsed, hostname: string, files: ModelFiles = {}): ClusterConfig {
  const groupOf = new Map<string, string>();
  for (const g of p.vrrp_sync_groups) for (const m of g.members) groupOf.set(m, g.name);
  const starts = new Map(p.vrrp_instances.map((i) => [i.name, vrrpStartOf(i)]));
  const groupMaster = new Map(p.vrrp_sync_groups.map((g) => [g.name, syncGroupStartsMaster(g.members.flatMap((m) => starts.get(m) ?? []))]));
  const model: ClusterConfig = {
    global: { ...p.global, router_id: p.global.router_id ?? hostname },
    vrrp_scripts: p.vrrp_scripts.map((s) => ({
      name: s.name,
      script: toCommand(s.script)!,
      interval: s.interval,
      timeout: s.timeout ?? s.interval,
      weight: s.weight,
      rise: s.rise,
      fall: s.fall,
      ...((s.script_user ?? p.global.script_user) ? { script_user: (s.script_user ?? p.global.script_user)! } : {}),
    })),
    vrrp_instances: p.vrrp_instances.map((i) => {
      const vas = i.virtual_addresses.map(vaddr);
      const n = notifyOf(i.notify, p.global.script_user);
      const start = starts.get(i.name)!;
      const g = groupOf.get(i.name);
      // keepalived clears nopreempt for the owner and for state MASTER, and preempt_delay for
      // state MASTER (as declared, before a sync group resets the state), with a warning (semantic.ts).
      const wantsMaster = start.initial_state === 'MASTER';
      const initialState = g !== undefined && !groupMaster.get(g) ? 'BACKUP' : start.initial_state;
      return {
        name: i.name,
        interface: i.interface,
        virtual_router_id: i.virtual_router_id,
        priority: start.priority,
        version: i.version,
        advert_interval: i.advert_interval,
        initial_state: initialState,
        preempt: i.preempt || wantsMaster || start.priority === OWNER_PRIORITY,
        preempt_delay: wantsMaster ? 0 : i.preempt_delay,
        family: vas[0]!.family,
        virtual_addresses: vas,
        virtual_addresses_excluded: i.virtual_addresses_excluded.map(vaddr),
        ...(i.unicast_src ? { unicast_src: i.unicast_src } : {}),
        unicast_peers: i.unicast_peers,
        peers: i.peers,
        ...(i.authentication ? { authentication: i.authentication } : {}),
        accept: i.accept,
        track_interfaces: i.track_interfaces.map((t) => (typeof t === 'string' ? { name: t, weight: 0 } : t)),
        track_scripts: i.track_scripts.map((t) => (typeof t === 'string' ? { name: t } : t.weight === undefined ? { name: t.name } : { name: t.name, weight: t.weight })),
        track_virtual_servers: i.track_virtual_servers,
        ...(n ? { notify: n } : {}),
        garp: i.garp,
        lower_prio_no_advert: i.lower_prio_no_advert,
        higher_prio_send_advert: i.higher_prio_send_advert,
        priority_zero_on_stop: i.priority_zero_on_stop,
        stop_handover: i.stop_handover,
        accept_v2_adverts: i.accept_v2_adverts,
        advert_backstop: i.advert_backstop,
        takeover_thread: i.takeover_thread,
        ...(groupOf.has(i.name) ? { sync_group: groupOf.get(i.name)! } : {}),
      };
    }),
    vrrp_sync_groups: p.vrrp_sync_groups.map((g) => {
      const n = notifyOf(g.notify, p.global.script_user);
      return { name: g.name, members: g.members, ...(n ? { notify: n } : {}) };
    }),
    virtual_servers: p.virtual_servers.map((vs) => {
      const family: 4 | 6 = vs.address ? (isIPv6(vs.address) ? 6 : 4) : vs.family === 'ipv6' ? 6 : 4;
      const key = virtualServerKey({ ...vs, family: family === 6 ? 'ipv6' : 'ipv4' });
      const vsPort = vs.port ?? 0;
      const vsPolicy = {
        interval: vs.interval, timeout: vs.timeout, rise: vs.rise, fall: vs.fall,
        retry_delay: vs.retry_delay, alpha: vs.alpha, inhibit_on_failure: vs.inhibit_on_failure,
      };
      const out: VirtualServerConfig = {
        key,
        name: vs.name ?? key,
        family,
        ...(vs.address ? { address: vs.address } : {}),
        port: vsPort,
        ...(vs.fwmark !== undefined ? { fwmark: vs.fwmark } : {}),
        protocol: vs.protocol,
        scheduler: vs.scheduler,
        scheduler_flags: vs.scheduler_flags,
        ...(vs.persistence ? { persistence: vs.persistence } : {}),
        one_packet: vs.one_packet,
        forwarding: vs.forwarding,
        ...(vs.tunnel ? { tunnel: vs.tunnel } : {}),
        quorum: vs.quorum,
        hysteresis: vs.hysteresis,
        ...(vs.quorum_up ? { quorum_up: toCommand(vs.quorum_up)! } : {}),
        ...(vs.quorum_down ? { quorum_down: toCommand(vs.quorum_down)! } : {}),
        ...(vs.sorry_server
          ? {
              sorry_server: {
                address: vs.sorry_server.address,
                port: vs.sorry_server.port ?? vsPort,
                forwarding: vs.sorry_server.forwarding ?? vs.forwarding,
                weight: vs.sorry_server.weight,
                inhibit: vs.sorry_server.inhibit,
              },
            }
          : {}),
        real_servers: vs.real_servers.map((rs) => {
          const port = rs.port ?? vsPort;
          const fwd = rs.forwarding ?? vs.forwarding;
          const tun = rs.tunnel ?? vs.tunnel;
          return {
            key: endpointKey(rs.address, port),
            address: rs.address,
            family: isIPv6(rs.address) ? 6 : 4,
            port,
            weight: rs.weight,
            forwarding: fwd,
            ...(fwd === 'tun' ? { tunnel: tun ?? { type: 'ipip', checksum: 'none' } } : {}),
            upper_threshold: rs.upper_threshold,
            lower_threshold: rs.lower_threshold,
            checks: rs.checks.map((c) => (c.type === 'exec' && !c.script_user && p.global.script_user ? { ...c, script_user: p.global.script_user } : c)),
            policy: policyOf(vsPolicy, rs),
            ...(rs.notify_up ? { notify_up: toCommand(rs.notify_up)! } : {}),
            ...(rs.notify_down ? { notify_down: toCommand(rs.notify_down)! } : {}),
          };
        }),
      };
      return out;
    }),
    ...(p.sync ? { sync: syncModel(p.sync, files) } : {}),
  };
  return deepFreeze(model);
}
