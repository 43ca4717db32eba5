import { accessSync, constants as fsConstants, statSync } from 'node:fs';
import { lookupUser, scriptSecurityProblem } from '../core/scripts.js';
import { hostname } from 'node:os';
import { isAbsolute, resolve, dirname } from 'node:path';
import type { z } from 'zod';
import { errorMessage } from '../core/errors.js';
import { clusterConfig, CHECK_TYPES, healthCheck } from './schema.js';
import { buildModel, type ClusterConfig } from './model.js';
import { parseWithPositions, YamlSyntaxError, type Located, type SourceMap } from './positions.js';
import { semanticChecks } from './semantic.js';
import { ConfigReadError, readConfigText } from './read.js';
import { loadKeys } from './keys.js';

export * from './errors.js';
import { ConfigError, MAX_ERRORS_SHOWN, type Diagnostic } from './errors.js';

export interface LoadedConfig {
  readonly file: string;
  readonly config: ClusterConfig;
  readonly warnings: readonly Diagnostic[];
  /** Raw text, kept so a reload can tell "unchanged". */
  readonly text: string;
}

export function pathToString(path: ReadonlyArray<PropertyKey>): string {
  let s = '';
  for (const seg of path) {
    if (typeof seg === 'number') s += `[${seg}]`;
    else s += s ? `.${String(seg)}` : String(seg);
  }
  return s;
}

import { suggest } from '../core/suggest.js';

// ------------------------------------------------------------ schema walking (for known keys)

type AnySchema = z.ZodType & { _zod: { def: Record<string, unknown> & { type: string } } };

/** The object-schema keys valid at a data path, resolving arrays, optionals, defaults and unions. */
export function knownKeysAt(root: z.ZodType, data: unknown, path: ReadonlyArray<PropertyKey>): string[] {
  let s = root as AnySchema;
  let d: unknown = data;
  const unwrap = (x: AnySchema, v: unknown): AnySchema => {
    for (let i = 0; i < 20; i++) {
      const def = x._zod.def;
      if (def.type === 'optional' || def.type === 'default' || def.type === 'prefault' || def.type === 'nullable' || def.type === 'readonly' || def.type === 'catch') x = def.innerType as AnySchema;
      else if (def.type === 'pipe') x = def.in as AnySchema;
      else if (def.type === 'lazy') x = (def.getter as () => AnySchema)();
      else if (def.type === 'union') {
        const opts = def.options as AnySchema[];
        const disc = (def as { discriminator?: string }).discriminator;
        const objs = opts.map((o) => unwrap(o, v)).filter((o) => o._zod.def.type === 'object');
        if (disc && v && typeof v === 'object') {
          const want = (v as Record<string, unknown>)[disc];
          const hit = objs.find((o) => {
            const lit = ((o._zod.def.shape as Record<string, AnySchema>)[disc]?._zod.def as { values?: unknown[] } | undefined)?.values;
            return lit?.includes(want);
          });
          if (hit) return hit;
        }
        if (v && typeof v === 'object' && !Array.isArray(v) && objs.length) return objs[0]!;
        const arr = opts.map((o) => unwrap(o, v)).find((o) => o._zod.def.type === 'array');
        if (Array.isArray(v) && arr) return arr;
        return objs[0] ?? x;
      } else return x;
    }
    return x;
  };
  s = unwrap(s, d);
  for (const seg of path) {
    const def = s._zod.def;
    if (def.type === 'object') {
      s = (def.shape as Record<string, AnySchema>)[String(seg)] ?? s;
    } else if (def.type === 'array') {
      s = def.element as AnySchema;
    } else if (def.type === 'record') {
      s = def.valueType as AnySchema;
    }
    d = d && typeof d === 'object' ? (d as Record<string, unknown>)[seg as string] : undefined;
    s = unwrap(s, d);
  }
  return s._zod.def.type === 'object' ? Object.keys(s._zod.def.shape as object) : [];
}

function describeValue(v: unknown): string {
  if (v === null || v === undefined) return 'nothing';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v)}`;
  return `${typeof v} ${String(v)}`;
}

/** zod's type names in the words a YAML author uses. */
function expectedName(t: string): string {
  switch (t) {
    case 'number': return 'a number';
    case 'int': return 'a whole number';
    case 'string': return 'a string';
    case 'boolean': return 'true or false';
    case 'object': return 'a mapping (key: value lines)';
    case 'array': return 'a list';
    case 'record': return 'a mapping';
    default: return t;
  }
}

/** Extra advice when a value has the wrong type in a way people often get wrong. */
function typeAdvice(expected: string, got: unknown): string {
  if ((expected === 'number' || expected === 'int') && typeof got === 'string' && got.trim() !== '' && Number.isFinite(Number(got))) return '; write the number without quotes';
  if (expected === 'boolean' && typeof got === 'string' && /^(yes|no|on|off|y|n|true|false)$/i.test(got)) return `; YAML 1.2 booleans are true and false (without quotes)`;
  if (expected === 'int' && typeof got === 'number') return '';
  if (expected === 'array' && got !== null && typeof got !== 'object') return '; write a list as "- item" lines or [a, b]';
  if (expected === 'object' && Array.isArray(got)) return '; remove the "- " in front of the keys';
  if (expected === 'array' && got !== null && typeof got === 'object') {
    // A mapping whose values are mappings is keepalived's "block NAME { ... }" carried over.
    const dashKey = Object.keys(got).find((k) => /^-[^\s-]/.test(k));
    if (dashKey) return `; a list item needs a space after "-" (write "- ${dashKey.slice(1)}: ...")`;
    const named = Object.values(got).length > 0 && Object.values(got).every((v) => v !== null && typeof v === 'object' && !Array.isArray(v));
    return named ? '; write each entry as a "- " item (keepalived\'s "vrrp_instance VI_1 {" becomes "- name: VI_1")' : '; write each entry as a "- " item';
  }
  if ((expected === 'number' || expected === 'int') && typeof got === 'string' && /^\d+(\.\d+)?\s*(s|sec|secs|seconds|ms|m|min)$/i.test(got.trim())) return '; durations are plain numbers of seconds (write 1.5, not "1500ms" or "1.5s")';
  return '';
}

function valueAt(data: unknown, path: ReadonlyArray<PropertyKey>): { present: boolean; value: unknown } {
  let d = data;
  let present = true;
  for (const seg of path) {
    if (d && typeof d === 'object' && Object.prototype.hasOwnProperty.call(d, seg)) d = (d as Record<string, unknown>)[seg as string];
    else { d = undefined; present = false; }
  }
  return { present, value: d };
}

function issueMessage(issue: z.core.$ZodIssue, data: unknown): string {
  const { present, value: got } = valueAt(data, issue.path as PropertyKey[]);
  const last = issue.path[issue.path.length - 1];
  switch (issue.code) {
    case 'invalid_type': {
      const exp = issue.expected === 'int' && typeof got === 'number' ? 'a whole number' : expectedName(issue.expected);
      if (!present && typeof last === 'string') return `missing required key "${last}" (${exp})`;
      if (got === null || got === undefined) return `has no value; expected ${exp}`;
      let keys = '';
      if (issue.expected === 'object' && (got === null || typeof got !== 'object')) {
        // keepalived writes "persistence_timeout 300", "sorry_server IP PORT": show what goes inside.
        const known = knownKeysAt(clusterConfig, data, issue.path as PropertyKey[]);
        if (known.length) keys = `; write it as a mapping with ${known.length === 1 ? 'the key' : 'keys among'} ${known.join(', ')}`;
      }
      return `expected ${exp}, got ${describeValue(got)}${typeAdvice(issue.expected, got)}${keys}`;
    }
    case 'too_small': {
      const i = issue as z.core.$ZodIssueTooSmall;
      if (i.origin === 'array') return Number(i.minimum) === 1 ? 'must not be an empty list' : `needs at least ${String(i.minimum)} items`;
      if (i.origin === 'string') return Number(i.minimum) === 1 ? 'must not be empty' : `must not be shorter than ${String(i.minimum)} characters`;
      return `must be ${i.inclusive ? '>=' : '>'} ${String(i.minimum)}, got ${describeValue(got)}`;
    }
    case 'too_big': {
      const i = issue as z.core.$ZodIssueTooBig;
      if (i.origin === 'array') return `allows at most ${String(i.maximum)} item(s)`;
      if (i.origin === 'string') return `must not be longer than ${String(i.maximum)} character(s)`;
      return `must be ${i.inclusive ? '<=' : '<'} ${String(i.maximum)}, got ${describeValue(got)}`;
    }
    case 'invalid_value': {
      const values = issue.values as unknown[];
      const strs = values.filter((v): v is string => typeof v === 'string');
      const alias = typeof got === 'string' ? VALUE_ALIASES[got.toLowerCase()] : undefined;
      const s = alias && strs.includes(alias) ? alias : typeof got === 'string' ? suggest(got, strs) : undefined;
      const numLike = typeof got === 'string' && values.some((v) => typeof v === 'number' && String(v) === got.trim());
      return `expected ${values.length === 1 ? JSON.stringify(values[0]) : `one of ${values.map((v) => JSON.stringify(v)).join(', ')}`}, got ${describeValue(got)}${s ? `; did you mean "${s}"?` : numLike ? '; write the number without quotes' : ''}`;
    }
    case 'invalid_union': {
      const disc = (issue as { note?: string }).note;
      if (disc) {
        if (last === 'type') {
          if (!present) return `missing required key "type" (one of ${CHECK_TYPES.map((t) => JSON.stringify(t)).join(', ')})`;
          const alias = typeof got === 'string' ? VALUE_ALIASES[got.toLowerCase()] : undefined;
          const s = alias && (CHECK_TYPES as readonly string[]).includes(alias) ? alias : typeof got === 'string' ? suggest(got, CHECK_TYPES) : undefined;
          return `expected one of ${CHECK_TYPES.map((t) => JSON.stringify(t)).join(', ')}, got ${describeValue(got)}${s ? `; did you mean "${s}"?` : ''}`;
        }
        return `${disc}; got ${describeValue(got)}`;
      }
      if (!present && typeof last === 'string') return `missing required key "${last}"`;
      // Report the most specific branch message when there is one.
      const branches = (issue as z.core.$ZodIssueInvalidUnion).errors ?? [];
      const inner = branches.flat().find((e) => e.code !== 'invalid_type');
      if (inner) return `${inner.code === 'custom' ? inner.message : cleanZodMessage(inner.message)} (got ${describeValue(got)})`;
      const kinds = [...new Set(branches.flat().filter((e) => e.code === 'invalid_type').map((e) => expectedName((e as z.core.$ZodIssueInvalidType).expected)))];
      return `expected ${kinds.join(' or ') || 'another shape'}, got ${describeValue(got)}`;
    }
    case 'not_multiple_of':
      return `must be a multiple of ${String(issue.divisor)}, got ${describeValue(got)}`;
    case 'invalid_format':
      return `${cleanZodMessage(issue.message)}, got ${describeValue(got)}`;
    case 'custom': {
      // Rules across keys ("a fwmark service has no port") already say what is wrong; value rules
      // ("expected an IPv4 or IPv6 address") gain the value that was found.
      if (got === undefined || typeof got === 'object' || !issue.message.startsWith('expected')) return issue.message;
      // keepalived writes "192.0.2.1/24 dev eth0 label eth0:1" on one line; lvsd wants a mapping.
      const kv = typeof got === 'string' ? /^(\S+)((?:\s+(?:dev|label|scope)\s+\S+)+)\s*$/.exec(got) : null;
      if (kv) {
        const names: Record<string, string> = { dev: 'device', label: 'label', scope: 'scope' };
        const parts = [...kv[2]!.matchAll(/(dev|label|scope)\s+(\S+)/g)].map((m) => `${names[m[1]!]}: ${m[2]}`);
        return `${issue.message}, got ${describeValue(got)}; write it as { address: ${kv[1]}, ${parts.join(', ')} }`;
      }
      const hp = typeof got === 'string' ? /^\[?([0-9a-fA-F:.]+?)\]?:(\d{1,5})$/.exec(got) : null;
      if (hp && /address/.test(issue.message) && !/PORT/.test(issue.message)) return `${issue.message}, got ${describeValue(got)}; write the port separately: address: ${hp[1]} and port: ${hp[2]}`;
      return `${issue.message}, got ${describeValue(got)}`;
    }
    default:
      return cleanZodMessage(issue.message);
  }
}

/** zod's "Invalid string: must start with ..." → "must start with ...". */
function cleanZodMessage(m: string): string {
  return m.replace(/^Invalid (string|input|number): /, '');
}

// ------------------------------------------------------------ unknown keys: keepalived names, misplaced keys

/**
 * keepalived.conf names operators carry over, and what they are called here. A plain key name is
 * offered as "did you mean" when it is valid where the unknown key was found; anything else is
 * advice printed as is.
 */
export const KEEPALIVED_NAMES: Readonly<Record<string, string>> = {
  // top level blocks
  global_defs: 'global',
  vrrp_instance: 'vrrp_instances',
  vrrp_script: 'vrrp_scripts',
  vrrp_sync_group: 'vrrp_sync_groups',
  virtual_server: 'virtual_servers',
  virtual_server_group: 'lvsd has no virtual_server_group: declare one virtual_servers entry per address (or use fwmark)',
  lvs_sync_daemon: 'sync (interface, vrrp_instance, sync_id)',
  // vrrp_instance
  state: 'initial_state',
  advert_int: 'advert_interval',
  virtual_ipaddress: 'virtual_addresses',
  virtual_ipaddress_excluded: 'virtual_addresses_excluded',
  nopreempt: 'write "preempt: false" (keepalived\'s nopreempt)',
  unicast_src_ip: 'unicast_src',
  unicast_peer: 'unicast_peers',
  track_interface: 'track_interfaces',
  track_script: 'track_scripts',
  track_virtual_server: 'track_virtual_servers',
  vrrp_version: 'version',
  notify_master: 'write it as notify: { master: COMMAND }',
  notify_backup: 'write it as notify: { backup: COMMAND }',
  notify_fault: 'write it as notify: { fault: COMMAND }',
  notify_stop: 'write it as notify: { stop: COMMAND }',
  garp_master_delay: 'write it as garp: { master_delay: SECONDS }',
  garp_master_repeat: 'write it as garp: { master_repeat: N }',
  garp_master_refresh: 'write it as garp: { master_refresh: SECONDS }',
  garp_master_refresh_repeat: 'write it as garp: { master_refresh_repeat: N }',
  vrrp_garp_master_delay: 'write it as garp: { master_delay: SECONDS } in each vrrp instance',
  vrrp_garp_master_repeat: 'write it as garp: { master_repeat: N } in each vrrp instance',
  vrrp_garp_interval: 'write it as garp: { interval: SECONDS } in each vrrp instance',
  auth_type: 'write it as authentication: { type: PASS or AH, password: … }',
  auth_pass: 'write it as authentication: { type: PASS or AH, password: … }',
  smtp_alert: 'lvsd sends no mail; use notify scripts',
  mcast_src_ip: 'unicast_src (lvsd sends multicast from the interface address)',
  // vrrp_sync_group
  group: 'members',
  // virtual_server
  lvs_sched: 'scheduler',
  lvs_method: 'forwarding',
  ip_family: 'family',
  snmp_name: 'name',
  sorry_server_inhibit: 'write it as sorry_server: { inhibit: true }',
  sorry_server_lvs_method: 'write it as sorry_server: { forwarding: ... }',
  warmup: 'lvsd has no warmup: the first checks start at once',
  vrrp_strict: 'lvsd has no vrrp_strict: set accept: false and use version: 3 where needed',
  dont_track_primary: 'lvsd has no dont_track_primary: the instance interface is always tracked',
  lb_algo: 'scheduler',
  lb_kind: 'forwarding',
  delay_loop: 'interval',
  persistence_timeout: 'write it as persistence: { timeout: SECONDS }',
  persistence_granularity: 'write it as persistence: { netmask: MASK }',
  persistence_engine: 'write it as persistence: { engine: NAME }',
  ops: 'one_packet',
  real_server: 'real_servers',
  virtualhost: 'set host: on the http/https check',
  ha_suspend: 'lvsd has no ha_suspend: checks always run',
  omega: 'lvsd has no omega: quorum_down runs when quorum is lost',
  // real_server and checkers
  uthreshold: 'upper_threshold',
  lthreshold: 'lower_threshold',
  connect_timeout: 'timeout',
  nb_get_retry: 'use fall instead (keepalived retries N times before failing: fall = N + 1)',
  retry: 'use fall instead (keepalived retries N times before failing: fall = N + 1)',
  delay_before_retry: 'retry_delay',
  connect_ip: 'connect_address',
  bindto: 'bind_address',
  tcp_check: 'write it as checks: [{ type: tcp }]',
  http_get: 'write it as checks: [{ type: http, path: /, status: [200] }]',
  ssl_get: 'write it as checks: [{ type: https, path: / }]',
  misc_check: 'write it as checks: [{ type: exec, command: ... }]',
  dns_check: 'write it as checks: [{ type: dns, name: ..., qtype: ... }]',
  udp_check: 'write it as checks: [{ type: udp }]',
  url: 'path, status and digest are keys of the http/https check itself',
  status_code: 'status',
  misc_path: 'command',
  misc_timeout: 'timeout',
  misc_dynamic: 'dynamic_weight',
  type: 'type is a key of checks[] items',
};

/** keepalived (and ipvsadm) words for values, mapped to lvsd's. */
export const VALUE_ALIASES: Readonly<Record<string, string>> = {
  direct: 'dr', route: 'dr', gatewaying: 'dr', droute: 'dr',
  masq: 'nat', masquerading: 'nat', masquerade: 'nat',
  tunnel: 'tun', ipip: 'tun',
  http_get: 'http', ssl_get: 'https', tcp_check: 'tcp', misc_check: 'exec', dns_check: 'dns', udp_check: 'udp',
  smtp_check: 'tcp',
  // protocol is the transport: an HTTP or HTTPS service is tcp, DNS usually udp
  http: 'tcp', https: 'tcp', dns: 'udp',
  // keepalived/ipvsadm spell these out
  inet: 'ipv4', inet6: 'ipv6',
};

interface KeyPathEntry {
  /** "virtual_servers[].real_servers[].weight" */
  readonly path: string;
  readonly schema: z.ZodType;
}

let keyPathCache: KeyPathEntry[] | undefined;

/** Every key path the schema accepts, with list items written "[]" (union branches all included). */
export function schemaKeyPaths(root: z.ZodType = clusterConfig): KeyPathEntry[] {
  if (root === clusterConfig && keyPathCache) return keyPathCache;
  const out: KeyPathEntry[] = [];
  const seen = new Set<string>();
  const walk = (s: AnySchema, prefix: string, depth: number) => {
    if (depth > 30) return;
    const def = s._zod.def;
    switch (def.type) {
      case 'optional': case 'default': case 'prefault': case 'nullable': case 'readonly': case 'catch':
        return walk(def.innerType as AnySchema, prefix, depth + 1);
      case 'pipe':
        return walk(def.in as AnySchema, prefix, depth + 1);
      case 'array':
        return walk(def.element as AnySchema, `${prefix}[]`, depth + 1);
      case 'record':
        return walk(def.valueType as AnySchema, `${prefix}.*`, depth + 1);
      case 'union':
        for (const o of def.options as AnySchema[]) walk(o, prefix, depth + 1);
        return;
      case 'object':
        for (const [k, v] of Object.entries(def.shape as Record<string, AnySchema>)) {
          const p = prefix ? `${prefix}.${k}` : k;
          if (!seen.has(p)) { seen.add(p); out.push({ path: p, schema: v }); }
          walk(v, p, depth + 1);
        }
        return;
      default:
        return;
    }
  };
  walk(root as AnySchema, '', 0);
  if (root === clusterConfig) keyPathCache = out;
  return out;
}

let ownersCache: Map<string, string[]> | undefined;

/** Key name → the patterns of the mappings that accept it ("(top level)" for the root), built once. */
function ownersOfKey(): Map<string, string[]> {
  if (ownersCache) return ownersCache;
  ownersCache = new Map();
  for (const { path } of schemaKeyPaths()) {
    const dot = path.lastIndexOf('.');
    const key = path.slice(dot + 1);
    const owner = dot < 0 ? '(top level)' : path.slice(0, dot);
    ownersCache.set(key, [...(ownersCache.get(key) ?? []), owner]);
  }
  return ownersCache;
}

/** "virtual_servers[1].real_servers[0]" → "virtual_servers[].real_servers[]" */
const patternOf = (path: ReadonlyArray<PropertyKey>) => pathToString(path.map((s) => (typeof s === 'number' ? -1 : s))).replace(/\[-1\]/g, '[]');

/** Check types whose options include `key` (e.g. "tls" → ["https"]). */
function checkTypesWithKey(key: string): string[] {
  const opts = (healthCheck as unknown as { _zod: { def: { options: AnySchema[] } } })._zod.def.options;
  return opts
    .filter((o) => Object.prototype.hasOwnProperty.call(o._zod.def.shape as object, key))
    .map((o) => (((o._zod.def.shape as Record<string, AnySchema>).type!._zod.def as { values?: unknown[] }).values ?? [])[0])
    .filter((t): t is string => typeof t === 'string');
}

function unknownKeyHint(key: string, parent: ReadonlyArray<PropertyKey>, known: readonly string[], data?: unknown): string {
  const here0 = patternOf(parent);
  if (here0.endsWith('checks[]')) {
    const types = checkTypesWithKey(key);
    const cur = valueAt(data, [...parent, 'type']).value;
    if (types.length) return `; "${key}" is an option of ${types.join(', ')} checks, and this check is type ${JSON.stringify(cur)}`;
  }
  if (/^-[^\s-]/.test(key)) return '; a list item needs a space after "-" (write "- ' + key.slice(1) + ': ...")';
  const k = key.toLowerCase().replace(/-/g, '_');
  const alias = KEEPALIVED_NAMES[k];
  if (alias !== undefined) {
    if (known.includes(alias)) return `; did you mean "${alias}"? (keepalived's ${key})`;
    if (!/^[a-z_]+$/.test(alias)) return `; ${alias}`;
  }
  if (known.includes(k) && k !== key) return `; did you mean "${k}"?`;
  const s = suggest(key, known);
  if (s) return `; did you mean "${s}"?`;
  // A valid key one level off: usually an indentation mistake.
  const here = patternOf(parent);
  const elsewhere = (ownersOfKey().get(key) ?? [])
    .filter((p) => p !== (here || '(top level)'))
    .sort((a, b) => Number(!a.startsWith(here)) - Number(!b.startsWith(here)) || a.length - b.length);
  if (elsewhere.length) return `; "${key}" belongs in ${elsewhere.slice(0, 2).join(' or ')}${elsewhere.length > 2 ? ' (and others)' : ''}, not ${here || 'at the top level'}: check the indentation`;
  if (alias !== undefined) return `; keepalived's ${key} is "${alias}" in lvsd, which is not valid here`;
  const x = parent.length === 0 ? '; top-level keys starting with "x-" (e.g. x-defaults) are ignored and can hold YAML anchors' : '';
  return (known.length ? ` (known keys here: ${known.join(', ')})` : '') + x;
}

function viaNote(at: Located): string {
  return at.via ? ` (the value comes through *${at.via.alias} at line ${at.via.line})` : '';
}

/** keepalived.conf's "block NAME {" syntax is not YAML; say so instead of a puzzling parse error. */
function keepalivedHint(text: string): string {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const kl = /^[ \t]*(global_defs|vrrp_instance|vrrp_script|vrrp_sync_group|virtual_server|virtual_server_group)\b[^\n:]*\{/m.exec(text);
  return kl ? `; this looks like keepalived.conf syntax ("${kl[1]} ... {"), but lvsd reads YAML: see docs/config.md, "Coming from keepalived"` : '';
}

function syntaxDiagnostic(e: unknown, file: string, text: string): Diagnostic {
  if (e instanceof YamlSyntaxError) {
    const hint = keepalivedHint(text);
    return { severity: 'error', file, line: e.line + 1, column: e.column + 1, path: '', message: `YAML syntax: ${e.reason}${hint}` };
  }
  // js-yaml reads nested collections recursively: thousands of "[" or "- " levels exhaust the stack.
  if (e instanceof RangeError) return { severity: 'error', file, line: 1, column: 1, path: '', message: 'YAML: lists or mappings are nested too deeply to read (thousands of levels; a configuration needs fewer than ten)' };
  return { severity: 'error', file, line: 1, column: 1, path: '', message: `YAML: ${String(e)}` };
}

interface Pending {
  readonly at: Located;
  readonly path: ReadonlyArray<PropertyKey>;
  readonly message: () => string;
}

/**
 * Order findings by position and word only the first `limit`: positions are cheap (one map lookup
 * per path segment), the advice in a message (did-you-mean, misplaced keys) is not, so a file with
 * 10,000 mistakes costs 10,000 lookups and 50 messages.
 */
function firstShown(pending: Pending[], file: string, limit: number): { diagnostics: Diagnostic[]; omitted: number } {
  pending.sort((a, b) => a.at.line - b.at.line || a.at.column - b.at.column);
  const diagnostics = pending.slice(0, limit).map((p): Diagnostic => ({ severity: 'error', file, line: p.at.line, column: p.at.column, path: pathToString(p.path), message: p.message() }));
  return { diagnostics, omitted: pending.length - diagnostics.length };
}

export function schemaDiagnostics(issues: readonly z.core.$ZodIssue[], data: unknown, map: SourceMap, file: string, limit = MAX_ERRORS_SHOWN): { diagnostics: Diagnostic[]; omitted: number } {
  const pending: Pending[] = [];
  for (const issue of issues) {
    const path = issue.path as PropertyKey[];
    if (issue.code === 'unrecognized_keys') {
      let known: string[] | undefined;
      for (const k of issue.keys) {
        const at = map.find([...(path as Array<string | number>), k], { key: true });
        pending.push({ at, path: [...path, k], message: () => `unknown key "${k}"${unknownKeyHint(k, path, (known ??= knownKeysAt(clusterConfig, data, path)), data)}${viaNote(at)}` });
      }
      continue;
    }
    const at = map.find(path as Array<string | number>);
    pending.push({ at, path, message: () => issueMessage(issue, data) + viaNote(at) });
  }
  return firstShown(pending, file, limit);
}

export interface ValidateOptions {
  /** Skip filesystem checks of scripts (used when validating text that is not on this machine). */
  checkFiles?: boolean;
  hostname?: string;
}

export interface LoadOptions extends ValidateOptions {
  /** Size cap of the file in bytes (default DEFAULT_MAX_CONFIG_BYTES, 4 MiB). */
  maxBytes?: number;
}

/** Validate YAML text; returns the model and warnings or throws ConfigError. */
export function parseConfigText(text: string, file: string, opts: ValidateOptions = {}): LoadedConfig {
  let parsed: { value: unknown; map: SourceMap };
  try {
    parsed = parseWithPositions(text, file);
  } catch (e) {
    throw new ConfigError([syntaxDiagnostic(e, file, text)], 'CONFIG_SYNTAX');
  }
  if (parsed.value === undefined || parsed.value === null) {
    throw new ConfigError([{ severity: 'error', file, line: 1, column: 1, path: '', message: 'the file has no configuration (it is empty or only comments)' }], 'CONFIG_SCHEMA');
  }
  const root = parsed.value;
  if (typeof root !== 'object' || Array.isArray(root)) {
    const at = parsed.map.find([]);
    const hint = Array.isArray(root) ? '; remove the "- " in front of the top-level keys' : keepalivedHint(text);
    throw new ConfigError([{ severity: 'error', file, line: at.line, column: at.column, path: '', message: `the document must be a mapping of top-level keys (global, vrrp_instances, virtual_servers, ...), got ${describeValue(root)}${hint}` }], 'CONFIG_SCHEMA');
  }
  // Top-level keys starting with "x-" are ignored: a place for YAML anchors shared by several entries
  // (the convention of docker compose's extension fields).
  const data = Object.fromEntries(Object.entries(root).filter(([k]) => !k.startsWith('x-')));
  const r = clusterConfig.safeParse(data);
  if (!r.success) {
    const { diagnostics, omitted } = schemaDiagnostics(r.error.issues, data, parsed.map, file);
    throw new ConfigError(diagnostics, 'CONFIG_SCHEMA', omitted);
  }
  const baseDir = dirname(resolve(file));
  const findings = semanticChecks(r.data, {
    checkFiles: opts.checkFiles ?? true,
    resolveScript: (p) => (isAbsolute(p) ? p : resolve(baseDir, p)),
    fileStatus,
    ...(process.geteuid?.() === 0 ? { scriptSecurity: scriptSecurityProblem } : {}),
    userProblem,
  });
  // channel lvsd's key file: read now, so that a missing or bad file is an error of the file being
  // loaded (check-config, a reload keeping the running keys) and not a sync channel that fails to
  // open at start; its key ids go into the model, so a rotated file is a change a reload applies.
  const keyFile = r.data.sync?.channel === 'lvsd' && r.data.sync.key_file !== undefined ? resolve(baseDir, r.data.sync.key_file) : undefined;
  const keys = keyFile !== undefined && (opts.checkFiles ?? true) ? probeSyncKeys(keyFile) : undefined;
  if (keys?.problem) findings.push({ severity: 'error', path: ['sync', 'key_file'], message: keys.problem });
  if (keys?.exposed) findings.push({ severity: 'warning', path: ['sync', 'key_file'], message: keys.exposed });
  const located = findings.map((f) => ({ f, at: parsed.map.find(f.path, { key: f.pointAtKey ?? false }) }));
  const warnings = located
    .filter(({ f }) => f.severity === 'warning')
    .map(({ f, at }): Diagnostic => ({ severity: 'warning', file, line: at.line, column: at.column, path: pathToString(f.path), message: f.message + viaNote(at) }));
  const errors = located.filter(({ f }) => f.severity === 'error');
  if (errors.length) {
    const shown = firstShown(errors.map(({ f, at }) => ({ at, path: f.path, message: () => f.message + viaNote(at) })), file, MAX_ERRORS_SHOWN);
    const diagnostics = [...shown.diagnostics, ...warnings].sort((a, b) => a.line - b.line || a.column - b.column);
    throw new ConfigError(diagnostics, 'CONFIG_SEMANTIC', shown.omitted);
  }
  return { file, text, config: buildModel(r.data, opts.hostname ?? hostname(), { baseDir, ...(keys?.ids ? { syncKeyIds: keys.ids } : {}) }), warnings: warnings.sort((a, b) => a.line - b.line || a.column - b.column) };
}

/** sync.key_file: its key ids, or why it cannot be used; and whether others than its owner may read it. */
function probeSyncKeys(path: string): { ids?: string[]; problem?: string; exposed?: string } {
  let ids: string[];
  try {
    ids = loadKeys(path).map((k) => k.id.toString(16).padStart(8, '0'));
  } catch (e) {
    return { problem: errorMessage(e) };
  }
  try {
    const st = statSync(path);
    const mode = st.mode & 0o777;
    // Whoever reads the key can sign connection records the peer installs (docs/sync.md, Keys).
    // The owner's alone, or, owned by root, also its group's to read (0640 root:lvsd: the group is
    // root's choice), the rule PostgreSQL applies to its TLS key file.
    const allowed = st.uid === 0 ? 0o040 : 0;
    if (mode & 0o077 & ~allowed) return { ids, exposed: `sync key file ${path} is readable or writable by others than its owner (mode ${mode.toString(8).padStart(4, '0')}): chmod 600 ${path} (owned by the user lvsd runs as), or 640 owned by root with lvsd's group` };
  } catch {
    /* read a moment ago: a stat that fails now is the next load's error */
  }
  return { ids };
}

function userProblem(spec: string): string | undefined {
  try {
    lookupUser(spec);
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}

function fileStatus(p: string): 'ok' | 'missing' | 'not-executable' | 'not-file' {
  try {
    const st = statSync(p);
    if (!st.isFile()) return 'not-file';
    accessSync(p, fsConstants.X_OK);
    return 'ok';
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : 'not-executable';
  }
}

/** Read (regular files only, bounded by opts.maxBytes) and validate; throws ConfigError. */
export function loadConfigFile(file: string, opts: LoadOptions = {}): LoadedConfig {
  let text: string;
  try {
    text = readConfigText(file, opts.maxBytes);
  } catch (e) {
    const message = e instanceof ConfigReadError ? e.message : `cannot read the file (${errorMessage(e)})`;
    throw new ConfigError([{ severity: 'error', file, line: 1, column: 1, path: '', message }], 'CONFIG_IO', 0, { cause: e });
  }
  return parseConfigText(text, file, opts);
}
