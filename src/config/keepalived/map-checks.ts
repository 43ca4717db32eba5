/**
 * keepalived's checkers (TCP_CHECK, HTTP_GET, SSL_GET, UDP_CHECK, DNS_CHECK, MISC_CHECK) → lvsd
 * `checks[]`. The retry/delay settings of a keepalived checker belong to the real server's check
 * policy in lvsd; they are returned for map-lvs.ts to place.
 */
import { isIPv4, isIPv6 } from 'node:net';
import type { KNode } from './parse.js';
import { MapContext, readBool, readCommand, readNumber, statement, type Anchor } from './context.js';
import type { Obj } from './map-vrrp.js';

/** Check-policy settings as keepalived spells them, at one level (virtual server, real server, checker). */
export interface KaPolicy {
  delay_loop?: number;
  retry?: number;
  delay_before_retry?: number;
  alpha?: boolean;
  connect_timeout?: number;
}

export interface MappedChecker {
  readonly type: string;
  readonly checks: Obj[];
  readonly policy: KaPolicy;
  readonly node: KNode;
}

/** Default virtualhost from the real or virtual server (keepalived's inheritance). */
export interface CheckDefaults {
  readonly virtualhost?: string;
}

export const CHECKERS = ['TCP_CHECK', 'HTTP_GET', 'SSL_GET', 'UDP_CHECK', 'DNS_CHECK', 'MISC_CHECK'];
export const UNSUPPORTED_CHECKERS: Record<string, string> = {
  SMTP_CHECK: 'lvsd has no SMTP check (a tcp check on the port is the nearest)',
  PING_CHECK: 'lvsd has no ICMP echo check',
  BFD_CHECK: 'lvsd has no BFD',
  FILE_CHECK: 'lvsd has no file check (an exec check reading the file is the nearest)',
};

/** Reads the policy keywords shared by every level; true when the keyword was one of them. */
export function readPolicy(ctx: MapContext, c: KNode, scope: string, p: KaPolicy, at: Anchor): boolean {
  switch (c.keyword) {
    case 'delay_loop':
    case 'delay_before_retry':
    case 'connect_timeout': {
      const n = readNumber(ctx, c, scope, c.args[0], { min: c.keyword === 'delay_before_retry' ? 0 : 0.001 }, at);
      if (n !== undefined) p[c.keyword] = n;
      return true;
    }
    case 'retry':
    case 'nb_get_retry': {
      const n = readNumber(ctx, c, scope, c.args[0], { int: true, min: 0, max: 99 }, at);
      if (n !== undefined) p.retry = n;
      return true;
    }
    case 'alpha': {
      const b = readBool(c.args[0]);
      if (b === undefined) ctx.unsupported(c, statement(c, scope), 'not a boolean; left out', at);
      else p.alpha = b;
      return true;
    }
    case 'warmup':
      ctx.unsupported(c, statement(c, scope), 'lvsd has no random start delay; checks start at once', at);
      return true;
    default:
      return false;
  }
}

const IP = (s: string) => isIPv4(s) || isIPv6(s);

export function mapChecker(ctx: MapContext, node: KNode, rsScope: string, d: CheckDefaults, at: Anchor): MappedChecker | undefined {
  const type = node.keyword;
  const scope = `${rsScope} > ${type}`;
  if (!CHECKERS.includes(type)) return undefined;
  const base: Obj = { type: { TCP_CHECK: 'tcp', HTTP_GET: 'http', SSL_GET: 'https', UDP_CHECK: 'udp', DNS_CHECK: 'dns', MISC_CHECK: 'exec' }[type] };
  const policy: KaPolicy = {};
  const urls: Obj[] = [];
  let host = d.virtualhost;
  let sni = false;
  for (const c of node.children ?? []) {
    if (readPolicy(ctx, c, scope, policy, at)) {
      if (c.keyword === 'connect_timeout' && policy.connect_timeout !== undefined && type !== 'MISC_CHECK') base.timeout = policy.connect_timeout;
      continue;
    }
    const a = c.args[0]?.text;
    const bad = (why: string) => ctx.unsupported(c, statement(c, scope), why, at);
    if (type !== 'MISC_CHECK') {
      if (c.keyword === 'connect_ip' || c.keyword === 'bindto') {
        if (a && IP(a)) base[c.keyword === 'connect_ip' ? 'connect_address' : 'bind_address'] = a;
        else bad('not an address; left out');
        continue;
      }
      if (c.keyword === 'connect_port') {
        const n = readNumber(ctx, c, scope, c.args[0], { int: true, min: 1, max: 65535 }, at);
        if (n !== undefined) base.connect_port = n;
        continue;
      }
      if (['bind_if', 'bind_port', 'fwmark', 'log_all_failures'].includes(c.keyword)) {
        bad('not in lvsd; left out');
        continue;
      }
    }
    switch (`${type}:${c.keyword}`) {
      case 'HTTP_GET:url':
      case 'SSL_GET:url':
        urls.push(mapUrl(ctx, c, scope, at));
        break;
      case 'HTTP_GET:virtualhost':
      case 'SSL_GET:virtualhost':
        host = a;
        break;
      case 'SSL_GET:enable_sni':
        sni = true;
        break;
      case 'UDP_CHECK:payload':
        base.payload = 'hex:' + readHex(c.args.map((w) => w.text));
        break;
      case 'UDP_CHECK:require_reply':
        base.require_reply = true;
        if (c.args.length) {
          const words = c.args.map((w) => w.text);
          if (words.some((w) => /[Xx]/.test(w))) bad('"X" wildcards in the expected reply are not in lvsd; any reply is accepted');
          else base.expect = 'hex:' + readHex(words);
        }
        break;
      case 'DNS_CHECK:type': {
        const t = a?.toUpperCase();
        if (t && ['A', 'AAAA', 'NS', 'SOA', 'MX', 'TXT', 'CNAME', 'PTR', 'SRV'].includes(t)) base.qtype = t;
        else bad('query type not in lvsd; left at SOA');
        break;
      }
      case 'DNS_CHECK:name':
        if (a) base.name = a;
        break;
      case 'MISC_CHECK:misc_path':
        if (c.args.length) base.command = readCommand(c.args);
        break;
      case 'MISC_CHECK:misc_timeout': {
        const n = readNumber(ctx, c, scope, c.args[0], { min: 0.001 }, at);
        if (n !== undefined) base.timeout = n;
        break;
      }
      case 'MISC_CHECK:misc_dynamic':
        base.dynamic_weight = true;
        break;
      case 'MISC_CHECK:user':
        bad(`runs as user ${c.args.map((w) => w.text).join(':')} in keepalived; lvsd runs every script as its own user`);
        break;
      default:
        ctx.unknown(c, scope, at);
    }
  }
  if (type === 'MISC_CHECK' && base.command === undefined) {
    ctx.unsupported(node, scope, 'no misc_path; checker left out', at);
    return undefined;
  }
  let checks: Obj[] = [base];
  if (type === 'HTTP_GET' || type === 'SSL_GET') {
    if (urls.length === 0) ctx.note(node, scope, 'no url block: lvsd checks GET / for a 2xx status', at);
    else if (urls.length > 1) ctx.note(node, scope, `${urls.length} urls: one lvsd check each (the server is up while all pass, as in keepalived)`, at);
    checks = (urls.length ? urls : [{}]).map((u) => {
      const o: Obj = { ...base, ...u };
      if (o.host === undefined && host !== undefined) o.host = host;
      if (type === 'SSL_GET' && sni) {
        if (o.host !== undefined) o.tls = { sni: o.host };
        else ctx.unsupported(node, `${scope} > enable_sni`, 'no virtualhost to send as the server name; left out', at);
      }
      return o;
    });
  }
  return { type, checks, policy, node };
}

function mapUrl(ctx: MapContext, node: KNode, scope: string, at: Anchor): Obj {
  const u: Obj = {};
  const s = `${scope} > url`;
  for (const c of node.children ?? []) {
    const a = c.args[0]?.text;
    switch (c.keyword) {
      case 'path':
        if (a?.startsWith('/')) u.path = a;
        else if (a) u.path = '/' + a;
        break;
      case 'digest':
        if (a && /^[0-9a-fA-F]{32}$/.test(a)) u.digest = a.toLowerCase();
        else ctx.unsupported(c, statement(c, s), 'not an MD5 digest (32 hex digits); left out', at);
        break;
      case 'status_code': {
        const list: (number | string)[] = [];
        for (const w of c.args) {
          const m = /^([1-5]\d\d)(?:-([1-5]\d\d))?$/.exec(w.text);
          if (!m) ctx.unsupported(c, statement(c, s), `"${w.text}" is not a status code or range; left out`, at);
          else list.push(m[2] ? `${m[1]}-${m[2]}` : Number(m[1]));
        }
        if (list.length) u.status = list;
        break;
      }
      case 'virtualhost':
        if (a) u.host = a;
        break;
      case 'regex':
        if (a !== undefined) u.body_regex = a;
        ctx.note(c, statement(c, s), 'keepalived uses PCRE2, lvsd JavaScript regular expressions: check the pattern', at);
        break;
      default:
        ctx.unknown(c, s, at);
    }
  }
  return u;
}

/** keepalived's free hex format: pairs of hex digits per word, a lone last digit is 0X ("Ab12f 3" → ab120f03). */
export function readHex(words: readonly string[]): string {
  let out = '';
  for (const w of words) {
    const digits = w.replace(/^0x/i, '');
    for (let i = 0; i < digits.length; i += 2) out += digits.length - i === 1 ? '0' + digits[i] : digits.slice(i, i + 2);
  }
  return out.toLowerCase();
}
