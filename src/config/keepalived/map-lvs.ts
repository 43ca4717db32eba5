/**
 * virtual_server (address/port, fwmark, or group), virtual_server_group, real_server and
 * sorry_server → lvsd's virtual_servers[]. A virtual_server_group becomes one lvsd virtual server per
 * address (ranges expanded) or fwmark, each with the same settings and real servers: that is what
 * keepalived puts in the kernel too (lvsd checks each copy's real servers on its own).
 */
import { isIPv4, isIPv6 } from 'node:net';
import type { KNode } from './parse.js';
import { MapContext, readBool, readNumber, statement, type Anchor } from './context.js';
import { lvsdName, readScriptRef, type Obj } from './map-vrrp.js';
import { mapChecker, readPolicy, UNSUPPORTED_CHECKERS, type KaPolicy, type MappedChecker } from './map-checks.js';
import { SCHEDULERS, SCHEDULER_FLAGS } from '../schema.js';

const IP = (s: string) => isIPv4(s) || isIPv6(s);
/** Most addresses one group range may expand to. */
export const MAX_RANGE = 256;

export interface GroupEntry {
  readonly address?: string;
  readonly port?: number;
  readonly fwmark?: number;
  readonly family?: 'ipv4' | 'ipv6';
}

/** The entries of a virtual_server_group, ranges expanded. */
export function mapServerGroup(ctx: MapContext, node: KNode): GroupEntry[] {
  const scope = `virtual_server_group ${node.args[0]?.text ?? ''}`;
  const out: GroupEntry[] = [];
  for (const e of node.children ?? []) {
    if (e.keyword === 'fwmark') {
      const n = readNumber(ctx, e, scope, e.args[0], { int: true, min: 1, max: 0xffffffff });
      const fam = e.args[1]?.text;
      if (n !== undefined) out.push({ fwmark: n, ...(fam === 'inet6' ? { family: 'ipv6' as const } : fam === 'inet' ? { family: 'ipv4' as const } : {}) });
      continue;
    }
    const addrs = expandRange(e.keyword);
    if (typeof addrs === 'string') {
      ctx.unsupported(e, statement(e, scope), `${addrs}; left out`);
      continue;
    }
    let port: number | undefined = 0;
    if (e.args[0]) port = readNumber(ctx, e, scope, e.args[0], { int: true, min: 0, max: 65535 });
    if (port === undefined) continue;
    for (const a of addrs) out.push({ address: a, port });
  }
  return out;
}

const v4ToInt = (s: string) => s.split('.').reduce((n, o) => n * 256 + Number(o), 0);
const intToV4 = (n: number) => [24, 16, 8, 0].map((b) => Math.floor(n / 2 ** b) % 256).join('.');

/** "192.0.2.1-10", "192.0.2.250-192.0.3.10", "192.0.2.8/29", "2001:db8::2-9" (last group, hex) → addresses, or why not. */
export function expandRange(s: string): string[] | string {
  if (IP(s)) return [s];
  let m = /^(\d+\.\d+\.\d+\.)(\d+)-(\d+)$/.exec(s);
  if (m && isIPv4(m[1]! + m[2]!)) return span(v4ToInt(m[1]! + m[2]!), v4ToInt(m[1]! + m[3]!), intToV4, s);
  m = /^([\d.]+)-([\d.]+)$/.exec(s);
  if (m && isIPv4(m[1]!) && isIPv4(m[2]!)) return span(v4ToInt(m[1]!), v4ToInt(m[2]!), intToV4, s);
  m = /^([\d.]+)\/(\d+)$/.exec(s);
  if (m && isIPv4(m[1]!) && Number(m[2]) <= 32) {
    const size = 2 ** (32 - Number(m[2]));
    const first = Math.floor(v4ToInt(m[1]!) / size) * size;
    return span(first, first + size - 1, intToV4, s);
  }
  m = /^(.*:)([0-9a-fA-F]{1,4})-([0-9a-fA-F]{1,4})$/.exec(s);
  if (m && isIPv6(m[1]! + m[2]!)) return span(parseInt(m[2]!, 16), parseInt(m[3]!, 16), (n) => m![1]! + n.toString(16), s);
  return `"${s}" is not an address or address range`;
}

function span(a: number, b: number, fmt: (n: number) => string, s: string): string[] | string {
  if (b < a) return `"${s}": the range ends before it starts`;
  if (b - a + 1 > MAX_RANGE) return `"${s}" holds ${b - a + 1} addresses, more than the ${MAX_RANGE} the importer expands`;
  return Array.from({ length: b - a + 1 }, (_, i) => fmt(a + i));
}

/** `lvs_method NAT|DR|TUN [type ipip|gue port N|gre] [nocsum|csum|remcsum]` → forwarding and tunnel. */
function readMethod(ctx: MapContext, c: KNode, scope: string, at: Anchor): { forwarding?: string; tunnel?: Obj } {
  const m = c.args[0]?.text.toUpperCase();
  if (m !== 'NAT' && m !== 'DR' && m !== 'TUN') {
    ctx.unsupported(c, statement(c, scope), 'forwarding method is NAT, DR or TUN; left out', at);
    return {};
  }
  const r: { forwarding: string; tunnel?: Obj } = { forwarding: m.toLowerCase() };
  const rest = c.args.slice(1).map((w) => w.text);
  if (m === 'TUN' && rest.length) {
    const t: Obj = {};
    for (let i = 0; i < rest.length; i++) {
      const w = rest[i]!;
      if (w === 'type' && rest[i + 1]) t.type = rest[++i];
      else if (w === 'port' && rest[i + 1]) t.port = Number(rest[++i]);
      else if (w === 'nocsum') t.checksum = 'none';
      else if (w === 'csum' || w === 'remcsum') t.checksum = w;
      else ctx.unsupported(c, statement(c, scope), `"${w}" is not understood; ignored`, at);
    }
    r.tunnel = t;
  }
  return r;
}

export interface VsResult {
  /** One lvsd virtual server, or one per group entry. */
  readonly servers: Obj[];
}

export function mapVirtualServer(ctx: MapContext, node: KNode, groups: ReadonlyMap<string, { entries: GroupEntry[]; node: KNode }>): VsResult {
  const head = node.args.map((a) => a.text);
  const scope = `virtual_server ${head.join(' ')}`;
  const vs: Obj = {};
  let entries: GroupEntry[];
  if (head[0] === 'fwmark') {
    const n = readNumber(ctx, node, '', node.args[1], { int: true, min: 1, max: 0xffffffff });
    if (n === undefined) return { servers: [] };
    entries = [{ fwmark: n }];
  } else if (head[0] === 'group') {
    const g = groups.get(head[1] ?? '');
    if (!g) {
      ctx.unsupported(node, scope, `no virtual_server_group "${head[1] ?? ''}" (keepalived ignores it too); left out`);
      return { servers: [] };
    }
    entries = g.entries;
    if (entries.length === 0) {
      ctx.unsupported(node, scope, 'its group has no usable entry; left out');
      return { servers: [] };
    }
  } else if (head[0] && IP(head[0])) {
    const port = head[1] === undefined ? 0 : readNumber(ctx, node, '', node.args[1], { int: true, min: 0, max: 65535 });
    if (port === undefined) return { servers: [] };
    entries = [{ address: head[0], port }];
  } else {
    ctx.unsupported(node, scope, 'expected an address [port], fwmark N or group NAME; left out');
    return { servers: [] };
  }

  const vsP: KaPolicy = {};
  let virtualhost: string | undefined;
  const persistence: Obj = {};
  let hasPersistence = false;
  const sorry: Obj = {};
  const rsNodes: KNode[] = [];
  const flags: string[] = [];
  for (const c of node.children ?? []) {
    const a = c.args[0]?.text;
    if (readPolicy(ctx, c, scope, vsP, vs)) continue;
    switch (c.keyword) {
      case 'lb_algo':
      case 'lvs_sched': {
        const s = a?.toLowerCase();
        if (s && (SCHEDULERS as readonly string[]).includes(s)) vs.scheduler = s;
        else ctx.unsupported(c, statement(c, scope), `scheduler not in lvsd (${SCHEDULERS.join(' ')}); lvsd's default wlc is used`, vs);
        break;
      }
      case 'lb_kind':
      case 'lvs_method':
        Object.assign(vs, readMethod(ctx, c, scope, vs));
        break;
      case 'persistence_timeout': {
        const n = a === undefined ? 360 : readNumber(ctx, c, scope, c.args[0], { int: true, min: 1, max: 2147483 }, vs);
        if (n !== undefined) { persistence.timeout = n; hasPersistence = true; }
        break;
      }
      case 'persistence_granularity':
        if (a && isIPv4(a)) persistence.netmask = a;
        else if (a && /^\d+$/.test(a)) persistence.netmask = Number(a);
        else ctx.unsupported(c, statement(c, scope), 'not a netmask; left out', vs);
        break;
      case 'persistence_engine':
        if (a) persistence.engine = a;
        break;
      case 'protocol': {
        const p = a?.toLowerCase();
        if (p === 'tcp' || p === 'udp' || p === 'sctp') vs.protocol = p;
        else ctx.unsupported(c, statement(c, scope), 'protocol is TCP, UDP or SCTP; left at tcp', vs);
        break;
      }
      case 'ops':
        vs.one_packet = true;
        break;
      case 'virtualhost':
        virtualhost = a;
        break;
      case 'omega':
        ctx.unsupported(c, statement(c, scope), 'lvsd does not run quorum_down and notify_down scripts at shutdown', vs);
        break;
      case 'quorum':
      case 'hysteresis': {
        const n = readNumber(ctx, c, scope, c.args[0], { int: true, min: c.keyword === 'quorum' ? 1 : 0 }, vs);
        if (n !== undefined) vs[c.keyword] = n;
        break;
      }
      case 'quorum_up':
      case 'quorum_down': {
        const cmd = readScriptRef(ctx, c, scope, vs, c.keyword);
        if (cmd !== undefined) vs[c.keyword] = cmd;
        break;
      }
      case 'ip_family':
        if (a === 'inet' || a === 'inet6') vs.family = a === 'inet' ? 'ipv4' : 'ipv6';
        else ctx.unsupported(c, statement(c, scope), 'ip_family is inet or inet6; left out', vs);
        break;
      case 'sorry_server':
        if (a && IP(a)) {
          sorry.address = a;
          if (c.args[1]) {
            const p = readNumber(ctx, c, scope, c.args[1], { int: true, min: 0, max: 65535 }, vs);
            if (p !== undefined) sorry.port = p;
          }
        } else ctx.unsupported(c, statement(c, scope), 'not an address; left out', vs);
        break;
      case 'sorry_server_inhibit':
        sorry.inhibit = true;
        break;
      case 'sorry_server_lvs_method': {
        const m = readMethod(ctx, c, scope, vs);
        if (m.forwarding) sorry.forwarding = m.forwarding;
        if (m.tunnel) ctx.unsupported(c, statement(c, scope), 'lvsd has no tunnel settings of its own for the sorry server (it uses the service\'s)', vs);
        break;
      }
      case 'inhibit_on_failure': {
        const b = readBool(c.args[0]);
        if (b !== undefined) vs.inhibit_on_failure = b;
        break;
      }
      case 'snmp_name': {
        const n = lvsdName(ctx, c.args[0], c, 'snmp_name', vs);
        if (n && entries.length === 1) vs.name = n;
        else if (n) ctx.note(c, statement(c, scope), 'not used as the name: the group makes several virtual servers', vs);
        break;
      }
      case 'real_server':
        rsNodes.push(c);
        break;
      default:
        if ((SCHEDULER_FLAGS as readonly string[]).includes(c.keyword)) flags.push(c.keyword);
        else ctx.unknown(c, scope, vs);
    }
  }
  if (flags.length) vs.scheduler_flags = flags;
  if (hasPersistence) vs.persistence = persistence;
  else if (Object.keys(persistence).length) ctx.unsupported(node, scope, 'persistence_granularity/engine without persistence_timeout do nothing (in keepalived too); left out', vs);
  if (sorry.address !== undefined) vs.sorry_server = sorry;
  else if (Object.keys(sorry).length) ctx.unsupported(node, scope, 'sorry_server settings without a sorry_server; left out', vs);
  setPolicy(vs, vsP);
  if (vsP.connect_timeout !== undefined) vs.timeout = vsP.connect_timeout;

  const rs: Obj[] = [];
  const seen = new Set<string>();
  for (const r of rsNodes) {
    const o = mapRealServer(ctx, r, scope, vs, vsP, virtualhost);
    if (!o) continue;
    const key = `${o.address} ${o.port ?? ''}`;
    if (seen.has(key)) {
      ctx.unsupported(r, `${scope} > real_server ${r.args.map((w) => w.text).join(' ')}`, 'listed twice in this virtual server; the repeat is left out', vs, 'real_servers');
      continue;
    }
    seen.add(key);
    if (entries.length === 1 && entries[0]!.port !== undefined) keepServicePort(ctx, r, scope, vs, o, entries[0]!.port);
    rs.push(o);
  }
  vs.real_servers = rs;

  const servers = entries.map((e, i) => {
    const o: Obj = i === 0 ? vs : structuredClone(vs);
    // Key order in the output: the service's identity first.
    const id: Obj = {};
    if (o.name !== undefined) id.name = o.name;
    if (e.fwmark !== undefined) id.fwmark = e.fwmark;
    else { id.address = e.address; id.port = e.port; }
    if (e.family !== undefined && o.family === undefined) id.family = e.family;
    const out = Object.assign(id, o, id);
    // Comments were attached to `vs`; move them to the object emitted in its place.
    if (i === 0) moveComments(ctx, vs, out);
    else ctx.remark(out, `copy ${i + 1} of ${entries.length} from virtual_server_group ${head[1]} (${ctx.display(node.file)}:${node.line}); remarks on the conversion are at the first`);
    return out;
  });
  if (head[0] === 'group' && entries.length > 1) {
    const g = groups.get(head[1]!)!;
    ctx.note(g.node, `virtual_server_group ${head[1]}`, `lvsd has no groups: ${entries.length} virtual servers with the same settings`, servers[0]);
  }
  return { servers };
}

/**
 * DR and TUN cannot change the destination port (the packet reaches the real server unchanged); the
 * kernel uses the service's port whatever keepalived was told. lvsd refuses the contradiction, so the
 * real server takes the service port and its checks keep probing the port keepalived probed.
 */
function keepServicePort(ctx: MapContext, node: KNode, scope: string, vs: Obj, rs: Obj, vport: number): void {
  const fwd = rs.forwarding ?? vs.forwarding;
  if ((fwd !== 'dr' && fwd !== 'tun') || rs.port === undefined || rs.port === vport) return;
  for (const c of (rs.checks as Obj[] | undefined) ?? []) if (c.type !== 'exec' && c.connect_port === undefined && Number(rs.port) > 0) c.connect_port = rs.port;
  ctx.note(node, `${scope} > real_server ${node.args.map((w) => w.text).join(' ')}`, `${String(fwd).toUpperCase()} cannot remap ports: the service port ${vport} is used (as the kernel does); checks still probe port ${rs.port}`, rs, 'address');
  delete rs.port;
}

function moveComments(ctx: MapContext, from: Anchor, to: Anchor): void {
  if (from === to) return;
  const c = ctx.comments.get(from);
  if (c) ctx.comments.set(to, c);
  const k = ctx.keyComments.get(from);
  if (k) ctx.keyComments.set(to, k);
}

/** keepalived policy values given at one level → lvsd keys at the same level. */
function setPolicy(o: Obj, p: KaPolicy): void {
  if (p.delay_loop !== undefined) o.interval = p.delay_loop;
  if (p.retry !== undefined) o.fall = p.retry + 1;
  if (p.delay_before_retry !== undefined) o.retry_delay = p.delay_before_retry;
  if (p.alpha !== undefined) o.alpha = p.alpha;
}

const LVSD_DEFAULT = { interval: 60, fall: 2, retry_delay: 1, alpha: false } as const;

/** keepalived's effective policy for one checker: its own setting, the real server's, the virtual server's, the type's default. */
function effective(c: MappedChecker, rsP: KaPolicy, vsP: KaPolicy): { interval: number; fall: number; retry_delay: number; alpha: boolean } {
  const pick = <K extends keyof KaPolicy>(k: K) => c.policy[k] ?? rsP[k] ?? vsP[k];
  const interval = pick('delay_loop') ?? 60;
  const retry = pick('retry') ?? (c.type === 'DNS_CHECK' ? 3 : c.type === 'MISC_CHECK' ? 0 : 1);
  const retryDelay = pick('delay_before_retry') ?? (c.type === 'HTTP_GET' || c.type === 'SSL_GET' ? 3 : c.type === 'DNS_CHECK' ? interval : 1);
  return { interval, fall: retry + 1, retry_delay: retryDelay, alpha: pick('alpha') ?? false };
}

function mapRealServer(ctx: MapContext, node: KNode, vsScope: string, vs: Obj, vsP: KaPolicy, vsHost: string | undefined): Obj | undefined {
  const a = node.args[0]?.text;
  const scope = `${vsScope} > real_server ${node.args.map((w) => w.text).join(' ')}`;
  if (!a || !IP(a)) {
    ctx.unsupported(node, scope, 'not an address; left out', vs, 'real_servers');
    return undefined;
  }
  const rs: Obj = { address: a };
  if (node.args[1]) {
    const p = readNumber(ctx, node, vsScope, node.args[1], { int: true, min: 0, max: 65535 }, rs);
    if (p !== undefined) rs.port = p;
  }
  const rsP: KaPolicy = {};
  let host = vsHost;
  const checkers: MappedChecker[] = [];
  let lost = 0;
  for (const c of node.children ?? []) {
    if (readPolicy(ctx, c, scope, rsP, rs)) continue;
    const arg = c.args[0]?.text;
    switch (c.keyword) {
      case 'weight': {
        const n = readNumber(ctx, c, scope, c.args[0], { int: true, min: 0, max: 2147483647 }, rs);
        if (n !== undefined) rs.weight = n;
        break;
      }
      case 'lvs_method':
        Object.assign(rs, readMethod(ctx, c, scope, rs));
        break;
      case 'notify_up':
      case 'notify_down': {
        const cmd = readScriptRef(ctx, c, scope, rs, c.keyword);
        if (cmd !== undefined) rs[c.keyword] = cmd;
        break;
      }
      case 'uthreshold':
      case 'lthreshold': {
        const n = readNumber(ctx, c, scope, c.args[0], { int: true, min: 0 }, rs);
        if (n !== undefined) rs[c.keyword === 'uthreshold' ? 'upper_threshold' : 'lower_threshold'] = n;
        break;
      }
      case 'virtualhost':
        host = arg;
        break;
      case 'inhibit_on_failure': {
        const b = readBool(c.args[0]);
        if (b !== undefined) rs.inhibit_on_failure = b;
        break;
      }
      default: {
        const m = mapChecker(ctx, c, scope, host === undefined ? {} : { virtualhost: host }, rs);
        if (m) checkers.push(m);
        else if (UNSUPPORTED_CHECKERS[c.keyword]) {
          lost++;
          ctx.unsupported(c, statement(c, scope), UNSUPPORTED_CHECKERS[c.keyword]!, rs);
        } else ctx.unknown(c, scope, rs);
      }
    }
  }
  setPolicy(rs, rsP);
  if (rsP.connect_timeout !== undefined) rs.timeout = rsP.connect_timeout;
  if (checkers.length) {
    rs.checks = checkers.flatMap((c) => c.checks);
    // lvsd has one check policy per real server: keepalived's per-checker values (and its per-type
    // defaults: delay_before_retry 3 for HTTP_GET/SSL_GET, retry 3 for DNS_CHECK, 0 for MISC_CHECK)
    // are written where lvsd would otherwise apply another value.
    const first = effective(checkers[0]!, rsP, vsP);
    for (const k of Object.keys(LVSD_DEFAULT) as (keyof typeof LVSD_DEFAULT)[]) {
      const lvsd = rs[k] ?? vs[k] ?? LVSD_DEFAULT[k];
      if (lvsd !== first[k]) rs[k] = first[k];
    }
    for (const c of checkers.slice(1)) {
      const e = effective(c, rsP, vsP);
      for (const k of Object.keys(first) as (keyof typeof first)[]) {
        if (e[k] !== first[k]) ctx.unsupported(c.node, statement(c.node, scope), `lvsd has one ${k} per real server: ${first[k]} from the first checker is used, not ${e[k]}`, rs);
      }
    }
  } else if (lost) {
    ctx.unsupported(node, scope, 'none of its checkers is in lvsd: it is always up in lvsd', rs);
  }
  return rs;
}
