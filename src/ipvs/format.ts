/**
 * `ipvsadm -Ln` compatible text (Debian ipvsadm 1.31, print_service_entry / list_all), so that
 * `diff <(ipvsadm -Ln) <(lvsd ipvs show)` is empty. Sorting mirrors libipvs's ipvs_cmp_services /
 * ipvs_cmp_dests, including their 32-bit signed wrap-around of unsigned differences.
 */
import { parseIp } from '../core/address.js';
import {
  SVC_F_ONEPACKET, SVC_F_PERSISTENT, SVC_F_SCHED1, SVC_F_SCHED2, SVC_F_SCHED3, FAMILY_AF, PROTO_NUM,
  type IpvsDest, type IpvsInfo, type IpvsService, type IpvsTableEntry,
} from './model.js';

const FWD_NAME: Record<IpvsDest['fwd'], string> = { nat: 'Masq', local: 'Local', tun: 'Tunnel', dr: 'Route', bypass: 'Bypass' };
const PROTO_NAME: Record<IpvsService['protocol'], string> = { tcp: 'TCP', udp: 'UDP', sctp: 'SCTP' };

/** C's `int r = (u32)a - (u32)b`. */
const diff32 = (a: number, b: number): number => ((a >>> 0) - (b >>> 0)) | 0;

function words(addr: string): number[] {
  const b = parseIp(addr)?.bytes ?? new Uint8Array(4);
  const w: number[] = [];
  for (let i = 0; i < b.length; i += 4) w.push(((b[i]! << 24) | (b[i + 1]! << 16) | (b[i + 2]! << 8) | b[i + 3]!) >>> 0);
  return w;
}

function cmpAddr(af6: boolean, a: string, b: string): number {
  const wa = words(a);
  const wb = words(b);
  if (!af6) return diff32(wa[0] ?? 0, wb[0] ?? 0);
  let r = 0;
  for (let i = 0; r === 0 && i < 4; i++) r = diff32(wa[i] ?? 0, wb[i] ?? 0);
  return r;
}

export function compareServices(a: IpvsService, b: IpvsService): number {
  let r = diff32(a.fwmark, b.fwmark);
  if (r) return r;
  r = FAMILY_AF[a.family] - FAMILY_AF[b.family];
  if (r) return r;
  r = (a.fwmark ? 0 : PROTO_NUM[a.protocol]) - (b.fwmark ? 0 : PROTO_NUM[b.protocol]);
  if (r) return r;
  r = cmpAddr(a.family === 6, a.addr, b.addr);
  if (r) return r;
  return a.port - b.port;
}

export function compareDests(a: IpvsDest, b: IpvsDest): number {
  const r = cmpAddr(a.family === 6, a.addr, b.addr);
  if (r) return r;
  return a.port - b.port;
}

function schedFlags(s: IpvsService): string {
  const names = s.scheduler === 'sh' ? ['sh-fallback', 'sh-port', 'flag-3'] : s.scheduler === 'mh' ? ['mh-fallback', 'mh-port', 'flag-3'] : ['flag-1', 'flag-2', 'flag-3'];
  const out: string[] = [];
  [SVC_F_SCHED1, SVC_F_SCHED2, SVC_F_SCHED3].forEach((bit, i) => {
    if (s.flags & bit) out.push(names[i]!);
  });
  return out.join(',');
}

function ipv4Mask(n: number): string {
  return [24, 16, 8, 0].map((s) => (n >>> s) & 0xff).join('.');
}

function addrPort(family: 4 | 6, addr: string, port: number): string {
  return family === 6 ? `[${addr}]:${port}` : `${addr}:${port}`;
}

export function formatServiceLine(s: IpvsService): string {
  let name: string;
  if (s.fwmark) name = s.family === 6 ? `FWM  ${s.fwmark} IPv6` : `FWM  ${s.fwmark}`;
  else {
    name = `${PROTO_NAME[s.protocol]}  ${addrPort(s.family, s.addr, s.port)}`;
    if (s.family !== 6) name = name.slice(0, 33);
  }
  let line = `${name} ${s.scheduler}`;
  if (s.flags & (SVC_F_SCHED1 | SVC_F_SCHED2 | SVC_F_SCHED3)) line += ` (${schedFlags(s)})`;
  if (s.flags & SVC_F_PERSISTENT) {
    line += ` persistent ${s.timeout}`;
    if (s.family === 4 && s.netmask >>> 0 !== 0xffffffff) line += ` mask ${ipv4Mask(s.netmask)}`;
    if (s.family === 6 && s.netmask !== 128) line += ` mask ${s.netmask}`;
    if (s.pe_name) line += ` pe ${s.pe_name}`;
  }
  if (s.flags & SVC_F_ONEPACKET) line += ' ops';
  return line;
}

export function formatDestLine(s: IpvsService, d: IpvsDest): string {
  let name = addrPort(d.family, d.addr, d.port);
  if (s.family !== 6) name = name.slice(0, 28);
  return `  -> ${name.padEnd(28)} ${FWD_NAME[d.fwd].padEnd(7)} ${String(d.weight).padEnd(6)} ${String(d.active_conns ?? 0).padEnd(10)} ${String(d.inact_conns ?? 0).padEnd(10)}`;
}

export function formatIpvsadmList(info: IpvsInfo, table: readonly IpvsTableEntry[]): string {
  const v = info.version;
  const lines = [
    `IP Virtual Server version ${(v >> 16) & 0xff}.${(v >> 8) & 0xff}.${v & 0xff} (size=${info.connTabSize})`,
    'Prot LocalAddress:Port Scheduler Flags',
    '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn',
  ];
  for (const e of [...table].sort((a, b) => compareServices(a.service, b.service))) {
    lines.push(formatServiceLine(e.service));
    for (const d of [...e.dests].sort(compareDests)) lines.push(formatDestLine(e.service, d));
  }
  return lines.join('\n') + '\n';
}
