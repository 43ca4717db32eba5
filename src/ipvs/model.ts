/**
 * The IPVS table as lvsd sees it: services and their destinations, mirroring the kernel's
 * generic-netlink attributes (include/uapi/linux/ip_vs.h) closely enough that a dump parses back
 * into the same values we send. Also the Dataplane role (who can read and change such a table).
 */
import { parseIp } from '../core/address.js';
import { LvsdError } from '../core/errors.js';

export type IpvsProtocol = 'tcp' | 'udp' | 'sctp';
/** IP_VS_CONN_F_* forwarding methods: MASQ 0, LOCALNODE 1, TUNNEL 2, DROUTE 3, BYPASS 4. */
export type FwdMethod = 'nat' | 'local' | 'tun' | 'dr' | 'bypass';
/** IP_VS_CONN_F_TUNNEL_TYPE_*: IPIP 0, GUE 1, GRE 2. */
export type TunType = 'ipip' | 'gue' | 'gre';

/** IP_VS_SVC_F_* (ip_vs.h). HASHED (0x2) is kernel-internal and never part of the model. */
export const SVC_F_PERSISTENT = 0x1;
export const SVC_F_HASHED = 0x2;
export const SVC_F_ONEPACKET = 0x4;
export const SVC_F_SCHED1 = 0x8;
export const SVC_F_SCHED2 = 0x10;
export const SVC_F_SCHED3 = 0x20;
/** Bits of a service's flags the model carries (what ipvsadm/lvsd can set). */
export const SVC_F_USER_MASK = SVC_F_PERSISTENT | SVC_F_ONEPACKET | SVC_F_SCHED1 | SVC_F_SCHED2 | SVC_F_SCHED3;

/** IP_VS_TUNNEL_ENCAP_FLAG_*: NOCSUM 0, CSUM 1, REMCSUM 2. */
export const TUN_F_CSUM = 0x1;
export const TUN_F_REMCSUM = 0x2;

export interface IpvsStats {
  readonly conns: number;
  readonly inpkts: number;
  readonly outpkts: number;
  readonly inbytes: bigint;
  readonly outbytes: bigint;
  readonly cps: number;
  readonly inpps: number;
  readonly outpps: number;
  readonly inbps: number;
  readonly outbps: number;
}

/** What identifies a service: (family, fwmark) for fwmark services, else (family, protocol, addr, port). */
export interface IpvsServiceId {
  readonly family: 4 | 6;
  readonly protocol: IpvsProtocol;
  /** Canonical text; "0.0.0.0" / "::" for fwmark services. */
  readonly addr: string;
  readonly port: number;
  /** 0 = not a fwmark service. */
  readonly fwmark: number;
}

export interface IpvsService extends IpvsServiceId {
  readonly scheduler: string;
  /** SVC_F_* bits within SVC_F_USER_MASK. */
  readonly flags: number;
  /** Persistence timeout, seconds (meaningful with SVC_F_PERSISTENT). */
  readonly timeout: number;
  /**
   * Persistence granularity exactly as the kernel keeps it: IPv4 = the mask as a 32-bit number
   * (0xffffffff = per client address), IPv6 = a prefix length (128 = per client address).
   */
  readonly netmask: number;
  /** Persistence engine ("sip"), "" when none. */
  readonly pe_name: string;
  readonly stats?: IpvsStats;
}

export interface IpvsDest {
  readonly addr: string;
  readonly port: number;
  /** Family of the destination address (may differ from the service's for tun, kernel ≥ 4.x). */
  readonly family: 4 | 6;
  readonly fwd: FwdMethod;
  readonly weight: number;
  readonly u_threshold: number;
  readonly l_threshold: number;
  readonly tun_type: TunType;
  /** GUE destination port (0 when not GUE). */
  readonly tun_port: number;
  /** TUN_F_* bits. */
  readonly tun_flags: number;
  readonly active_conns?: number;
  readonly inact_conns?: number;
  readonly persist_conns?: number;
  readonly stats?: IpvsStats;
}

export interface IpvsInfo {
  /** IP_VS_VERSION_CODE, e.g. 0x010201 = 1.2.1. */
  readonly version: number;
  readonly connTabSize: number;
}

export interface IpvsTimeouts {
  readonly tcp: number;
  readonly tcp_fin: number;
  readonly udp: number;
}

export interface IpvsDaemon {
  readonly state: 'master' | 'backup';
  readonly mcast_ifn: string;
  readonly syncid: number;
  readonly maxlen?: number;
  readonly mcast_group?: string;
  readonly mcast_port?: number;
  readonly mcast_ttl?: number;
}

/** One change to the table; the planner emits them and dataplanes apply them. */
export type IpvsOp =
  | { readonly op: 'add-service'; readonly service: IpvsService }
  | { readonly op: 'set-service'; readonly service: IpvsService }
  | { readonly op: 'del-service'; readonly service: IpvsServiceId }
  | { readonly op: 'add-dest'; readonly service: IpvsServiceId; readonly dest: IpvsDest }
  | { readonly op: 'set-dest'; readonly service: IpvsServiceId; readonly dest: IpvsDest }
  | { readonly op: 'del-dest'; readonly service: IpvsServiceId; readonly dest: Pick<IpvsDest, 'addr' | 'port' | 'family'> };

export type IpvsOpKind = IpvsOp['op'];

/** Result of one op as the dataplane saw it; errno is the kernel's name ("EEXIST", "ESRCH", ...). */
export interface OpOutcome {
  readonly ok: boolean;
  readonly errno?: string;
  readonly message?: string;
}

/**
 * The role: something holding an IPVS table. The kernel (NetlinkDataplane) and the in-memory fake
 * (MemoryDataplane) both satisfy one contract suite (test/ipvs/contract.ts).
 * Errors are thrown as DataplaneError with the kernel's errno name.
 */
export interface Dataplane {
  listServices(): Promise<IpvsService[]>;
  listDests(svc: IpvsServiceId): Promise<IpvsDest[]>;
  /** Whole table in one call (services with their destinations). */
  dump(): Promise<IpvsTable>;
  addService(s: IpvsService): Promise<void>;
  setService(s: IpvsService): Promise<void>;
  delService(s: IpvsServiceId): Promise<void>;
  addDest(s: IpvsServiceId, d: IpvsDest): Promise<void>;
  setDest(s: IpvsServiceId, d: IpvsDest): Promise<void>;
  delDest(s: IpvsServiceId, d: Pick<IpvsDest, 'addr' | 'port' | 'family'>): Promise<void>;
  /** Apply many ops, in order, as fast as the mechanism allows; one outcome per op, never throws per op. */
  submit(ops: readonly IpvsOp[]): Promise<OpOutcome[]>;
  getInfo(): Promise<IpvsInfo>;
  getTimeouts(): Promise<IpvsTimeouts>;
  setTimeouts(t: Partial<IpvsTimeouts>): Promise<void>;
  newDaemon(d: IpvsDaemon): Promise<void>;
  delDaemon(state: IpvsDaemon['state']): Promise<void>;
  getDaemons(): Promise<IpvsDaemon[]>;
  /** Remove every service (ipvsadm -C). lvsd itself never calls this on start. */
  flush(): Promise<void>;
  close(): Promise<void>;
}

export interface IpvsTableEntry {
  readonly service: IpvsService;
  readonly dests: readonly IpvsDest[];
}
export type IpvsTable = readonly IpvsTableEntry[];

export class DataplaneError extends LvsdError {
  constructor(readonly errno: string, message: string, options?: { cause?: unknown }) {
    super('NETLINK', message, options);
    this.name = 'DataplaneError';
  }
}

// ------------------------------------------------------------------ keys and helpers

export function endpoint(addr: string, port: number): string {
  return addr.includes(':') ? `[${addr}]:${port}` : `${addr}:${port}`;
}

/** Same spelling as the config's virtual server key: "tcp/192.0.2.10:80", "fwm/1/ipv4". */
export function serviceKey(s: IpvsServiceId): string {
  if (s.fwmark) return `fwm/${s.fwmark}/${s.family === 6 ? 'ipv6' : 'ipv4'}`;
  return `${s.protocol}/${endpoint(s.addr, s.port)}`;
}

export function destKey(d: Pick<IpvsDest, 'addr' | 'port'>): string {
  return endpoint(d.addr, d.port);
}

const canonCache = new Map<string, string>();
/** Canonical text of an address (cached: tables repeat the same addresses). */
export function canonicalAddr(a: string): string {
  const hit = canonCache.get(a);
  if (hit !== undefined) return hit;
  const p = parseIp(a);
  if (!p) throw new LvsdError('IPVS_INVALID', `not an IP address: ${a}`);
  if (canonCache.size > 65536) canonCache.clear();
  canonCache.set(a, p.text);
  return p.text;
}

export function serviceId(s: IpvsServiceId): IpvsServiceId {
  return { family: s.family, protocol: s.protocol, addr: s.addr, port: s.port, fwmark: s.fwmark };
}

/** Service without stats, for comparisons and output. */
export function serviceConfig(s: IpvsService): IpvsService {
  return {
    family: s.family, protocol: s.protocol, addr: s.addr, port: s.port, fwmark: s.fwmark,
    scheduler: s.scheduler, flags: s.flags & SVC_F_USER_MASK, timeout: s.timeout, netmask: s.netmask, pe_name: s.pe_name,
  };
}

export function destConfig(d: IpvsDest): IpvsDest {
  return {
    addr: d.addr, port: d.port, family: d.family, fwd: d.fwd, weight: d.weight,
    u_threshold: d.u_threshold, l_threshold: d.l_threshold,
    tun_type: d.tun_type, tun_port: d.tun_port, tun_flags: d.tun_flags,
  };
}

/** Service attributes the kernel can change in place (IPVS_CMD_SET_SERVICE). */
export function serviceAttrsEqual(a: IpvsService, b: IpvsService): boolean {
  return a.scheduler === b.scheduler && (a.flags & SVC_F_USER_MASK) === (b.flags & SVC_F_USER_MASK) &&
    a.timeout === b.timeout && a.netmask === b.netmask && a.pe_name === b.pe_name;
}

/**
 * Destination attributes compared by the planner. The tunnel fields only matter for tun
 * forwarding: the kernel keeps whatever was last sent but ignores them otherwise.
 */
export function destAttrsEqual(a: IpvsDest, b: IpvsDest): boolean {
  if (a.fwd !== b.fwd || a.weight !== b.weight || a.u_threshold !== b.u_threshold || a.l_threshold !== b.l_threshold) return false;
  if (a.fwd === 'tun') return a.tun_type === b.tun_type && a.tun_port === b.tun_port && a.tun_flags === b.tun_flags;
  return true;
}

export const FAMILY_AF: Record<4 | 6, number> = { 4: 2, 6: 10 };
export const PROTO_NUM: Record<IpvsProtocol, number> = { tcp: 6, udp: 17, sctp: 132 };
export const FWD_NUM: Record<FwdMethod, number> = { nat: 0, local: 1, tun: 2, dr: 3, bypass: 4 };
export const TUN_NUM: Record<TunType, number> = { ipip: 0, gue: 1, gre: 2 };

/** Default persistence granularity (one client address) per family. */
export function defaultNetmask(family: 4 | 6): number {
  return family === 6 ? 128 : 0xffffffff;
}

/** Dest defaults the way ipvsadm fills them. */
export function makeDest(p: Partial<IpvsDest> & Pick<IpvsDest, 'addr' | 'port'>): IpvsDest {
  const addr = canonicalAddr(p.addr);
  return {
    addr,
    port: p.port,
    family: p.family ?? (addr.includes(':') ? 6 : 4),
    fwd: p.fwd ?? 'nat',
    weight: p.weight ?? 1,
    u_threshold: p.u_threshold ?? 0,
    l_threshold: p.l_threshold ?? 0,
    tun_type: p.tun_type ?? 'ipip',
    tun_port: p.tun_port ?? 0,
    tun_flags: p.tun_flags ?? 0,
  };
}

export function makeService(p: Partial<IpvsService> & Pick<IpvsService, 'protocol'>): IpvsService {
  const fwmark = p.fwmark ?? 0;
  const family = p.family ?? (p.addr && p.addr.includes(':') ? 6 : 4);
  const addr = fwmark ? (family === 6 ? '::' : '0.0.0.0') : canonicalAddr(p.addr ?? (family === 6 ? '::' : '0.0.0.0'));
  return {
    family,
    // The kernel stores TCP for every fwmark service (ip_vs_genl_parse_service) and never reports it.
    protocol: fwmark ? 'tcp' : p.protocol,
    addr,
    port: fwmark ? 0 : p.port ?? 0,
    fwmark,
    scheduler: p.scheduler ?? 'wlc',
    flags: (p.flags ?? 0) & SVC_F_USER_MASK,
    timeout: p.timeout ?? 0,
    netmask: p.netmask ?? defaultNetmask(family),
    pe_name: p.pe_name ?? '',
  };
}
