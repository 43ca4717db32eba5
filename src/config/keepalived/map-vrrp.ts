/**
 * vrrp_script, vrrp_instance and vrrp_sync_group → lvsd's vrrp_scripts, vrrp_instances and
 * vrrp_sync_groups (the key table of docs/config.md is the mapping's source of truth).
 */
import { isIPv4, isIPv6 } from 'node:net';
import type { KNode, Word } from './parse.js';
import { MapContext, readBool, readCommand, readNumber, statement, type Anchor } from './context.js';

export type Obj = Record<string, unknown>;

/** global_defs settings that are defaults of every instance. */
export interface VrrpDefaults {
  version?: number;
  garp: Obj;
  accept?: boolean;
  /** vrrp_lower_prio_no_advert / vrrp_higher_prio_send_advert (global defaults of the instance keys). */
  lower_prio_no_advert?: boolean;
  higher_prio_send_advert?: boolean;
}

const NAME_RE = /^[A-Za-z0-9_.-]{1,64}$/;
const IFACE_RE = /^[^\s/:]{1,15}$/;

/** An lvsd name for a keepalived one (lvsd names are letters, digits, "_.-"). */
export function lvsdName(ctx: MapContext, w: Word | undefined, node: KNode, kind: string, at?: Anchor): string | undefined {
  if (!w) {
    ctx.unsupported(node, node.keyword, `${kind} without a name; left out`);
    return undefined;
  }
  if (NAME_RE.test(w.text)) return w.text;
  const n = w.text.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 64) || '_';
  ctx.note(node, `${node.keyword} ${w.text}`, `renamed "${n}" (lvsd names are letters, digits, "_", "." and "-")`, at);
  return n;
}

/** A notify/quorum script: the first word is the command, further words are keepalived's user and group. */
export function readScriptRef(ctx: MapContext, node: KNode, scope: string, at: Anchor, key: string): string | string[] | undefined {
  const [cmd, ...user] = node.args;
  if (!cmd || cmd.text === '') {
    ctx.unsupported(node, statement(node, scope), 'no script given; left out', at, key);
    return undefined;
  }
  if (user.length) ctx.unsupported(node, statement(node, scope), `runs as user ${user.map((u) => u.text).join(':')} in keepalived; lvsd runs every script as its own user`, at, key);
  return readCommand([cmd]);
}

export function mapVrrpScript(ctx: MapContext, node: KNode): Obj | undefined {
  const o: Obj = {};
  const name = lvsdName(ctx, node.args[0], node, 'vrrp_script', o);
  if (!name) return undefined;
  o.name = name;
  const scope = `vrrp_script ${node.args[0]!.text}`;
  for (const c of node.children ?? []) {
    switch (c.keyword) {
      case 'script':
        if (c.args.length) o.script = readCommand(c.args);
        break;
      case 'interval':
      case 'timeout': {
        const n = readNumber(ctx, c, scope, c.args[0], { min: 0.000001 }, o);
        if (n !== undefined) o[c.keyword] = n;
        break;
      }
      case 'rise':
      case 'fall': {
        const n = readNumber(ctx, c, scope, c.args[0], { int: true, min: 1 }, o);
        if (n !== undefined) o[c.keyword] = n;
        break;
      }
      case 'weight': {
        const n = readNumber(ctx, c, scope, c.args[0], { int: true, min: -253, max: 253 }, o);
        if (n !== undefined) o.weight = n;
        if (c.args[1]?.text === 'reverse') ctx.unsupported(c, statement(c, scope), 'reverse weights are not in lvsd; the weight is applied unreversed', o, 'weight');
        break;
      }
      default:
        ctx.unknown(c, scope, o);
    }
  }
  if (o.script === undefined) {
    ctx.unsupported(node, scope, 'no script (keepalived ignores the block); left out with the track_script entries that name it');
    return undefined;
  }
  return o;
}

/** An address line of virtual_ipaddress { }: ADDRESS[/PREFIX] [dev IF] [scope S] [label L] ... */
function mapVip(ctx: MapContext, line: KNode, scope: string, inst: Obj): Obj | string | undefined {
  const addr = line.keyword;
  const bare = addr.split('/')[0]!;
  if (!(isIPv4(bare) || isIPv6(bare))) {
    ctx.unsupported(line, statement(line, scope), `"${addr}" is not an address; left out`, inst);
    return undefined;
  }
  const v: Obj = { address: addr };
  const a = line.args;
  for (let i = 0; i < a.length; i++) {
    const k = a[i]!.text;
    const val = a[i + 1]?.text;
    if ((k === 'dev' || k === 'label' || k === 'scope') && val !== undefined) {
      i++;
      if (k === 'dev') v.device = val;
      else if (k === 'label') v.label = val;
      else if (['global', 'site', 'link', 'host'].includes(val)) v.scope = val;
      else ctx.unsupported(line, statement(line, scope), `scope ${val} is not one of global, site, link, host; left at global`, inst);
    } else {
      const takesValue = ['brd', 'broadcast', 'preferred_lft', 'use_vmac', 'track_group'].includes(k) && val !== undefined;
      ctx.unsupported(line, statement(line, scope), `address option "${k}${takesValue ? ' ' + val : ''}" is not in lvsd; the address is converted without it`, inst);
      if (takesValue) i++;
    }
  }
  return Object.keys(v).length === 1 ? addr : v;
}

export interface InstanceResult {
  readonly inst: Obj;
  /** lvs_sync_daemon_interface (the old way of naming the sync interface). */
  readonly syncInterface?: { iface: string; node: KNode };
}

export function mapVrrpInstance(ctx: MapContext, node: KNode, d: VrrpDefaults): InstanceResult | undefined {
  const inst: Obj = {};
  const name = lvsdName(ctx, node.args[0], node, 'vrrp_instance', inst);
  if (!name) return undefined;
  inst.name = name;
  const scope = `vrrp_instance ${node.args[0]!.text}`;
  const garp: Obj = { ...d.garp };
  let syncInterface: InstanceResult['syncInterface'];
  let authNode: KNode | undefined;
  const seenVips = new Set<string>();
  const vipList = (c: KNode, key: string) => {
    const list: unknown[] = [];
    for (const line of c.children ?? []) {
      const v = mapVip(ctx, line, `${scope} > ${c.keyword}`, inst);
      if (v === undefined) continue;
      const a = (typeof v === 'string' ? v : (v.address as string)).split('/')[0]!;
      if (seenVips.has(a)) {
        ctx.unsupported(line, statement(line, `${scope} > ${c.keyword}`), `${a} is listed twice in this instance; the repeat is left out`, inst, key);
        continue;
      }
      seenVips.add(a);
      list.push(v);
    }
    return list;
  };
  for (const c of node.children ?? []) {
    const k = c.keyword;
    const arg = c.args[0];
    switch (k) {
      case 'state': {
        const s = arg?.text.toUpperCase();
        if (s === 'MASTER' || s === 'BACKUP') inst.initial_state = s;
        else ctx.unsupported(c, statement(c, scope), 'state is MASTER or BACKUP; left out', inst);
        break;
      }
      case 'interface':
        if (arg && IFACE_RE.test(arg.text)) inst.interface = arg.text;
        else ctx.unsupported(c, statement(c, scope), 'not an interface name; left out', inst);
        break;
      case 'virtual_router_id': {
        const n = readNumber(ctx, c, scope, arg, { int: true, min: 1, max: 255 }, inst);
        if (n !== undefined) inst.virtual_router_id = n;
        break;
      }
      case 'priority': {
        const n = readNumber(ctx, c, scope, arg, { int: true, min: 1, max: 255 }, inst);
        if (n !== undefined) inst.priority = n;
        break;
      }
      case 'advert_int': {
        const n = readNumber(ctx, c, scope, arg, { min: 0.01, max: 255 }, inst);
        if (n !== undefined) inst.advert_interval = n;
        break;
      }
      case 'version': {
        const n = readNumber(ctx, c, scope, arg, { int: true, min: 2, max: 3 }, inst);
        if (n !== undefined) inst.version = n;
        break;
      }
      case 'nopreempt':
        inst.preempt = false;
        break;
      case 'preempt':
        break;
      case 'preempt_delay': {
        const n = readNumber(ctx, c, scope, arg, { min: 0, max: 1000 }, inst);
        if (n !== undefined) inst.preempt_delay = n;
        break;
      }
      case 'virtual_ipaddress':
        inst.virtual_addresses = vipList(c, 'virtual_addresses');
        break;
      case 'virtual_ipaddress_excluded':
        inst.virtual_addresses_excluded = vipList(c, 'virtual_addresses_excluded');
        break;
      case 'unicast_src_ip':
      case 'mcast_src_ip':
        if (arg && (isIPv4(arg.text) || isIPv6(arg.text))) inst.unicast_src = arg.text;
        else ctx.unsupported(c, statement(c, scope), 'not an address; left out', inst);
        break;
      case 'unicast_peer': {
        const peers: string[] = [];
        for (const p of c.children ?? []) {
          if (isIPv4(p.keyword) || isIPv6(p.keyword)) peers.push(p.keyword);
          else ctx.unsupported(p, statement(p, `${scope} > unicast_peer`), 'not an address; left out', inst, 'unicast_peers');
          if (p.args.length) ctx.unsupported(p, statement(p, `${scope} > unicast_peer`), 'min_ttl/max_ttl are not in lvsd (it checks TTL 255 as RFC 5798 says)', inst, 'unicast_peers');
        }
        inst.unicast_peers = peers;
        break;
      }
      case 'track_interface': {
        const list: unknown[] = [];
        for (const t of c.children ?? []) {
          const w = weightOf(ctx, t, `${scope} > track_interface`, inst, 'track_interfaces');
          if (!IFACE_RE.test(t.keyword)) ctx.unsupported(t, statement(t, `${scope} > track_interface`), 'not an interface name; left out', inst, 'track_interfaces');
          else list.push(w === undefined ? t.keyword : { name: t.keyword, weight: w });
        }
        inst.track_interfaces = list;
        break;
      }
      case 'track_script': {
        const list: unknown[] = [];
        for (const t of c.children ?? []) {
          const w = weightOf(ctx, t, `${scope} > track_script`, inst, 'track_scripts');
          list.push(w === undefined ? t.keyword : { name: t.keyword, weight: w });
        }
        inst.track_scripts = list;
        break;
      }
      case 'notify_master':
      case 'notify_backup':
      case 'notify_fault':
      case 'notify_stop':
      case 'notify':
        setNotify(ctx, c, scope, inst);
        break;
      case 'garp_master_delay':
      case 'garp_master_refresh': {
        const n = readNumber(ctx, c, scope, arg, { min: 0 }, inst);
        if (n !== undefined) garp[k.slice(5)] = n;
        break;
      }
      case 'garp_master_repeat':
      case 'garp_master_refresh_repeat': {
        const n = readNumber(ctx, c, scope, arg, { int: true, min: 1, max: 100 }, inst);
        if (n !== undefined) garp[k.slice(5)] = n;
        break;
      }
      case 'garp_lower_prio_delay':
      case 'garp_lower_prio_repeat': {
        const n = readNumber(ctx, c, scope, arg, k.endsWith('repeat') ? { int: true, min: 0, max: 100 } : { min: 0 }, inst);
        if (n !== undefined) garp[k.slice(5)] = n;
        break;
      }
      case 'lower_prio_no_advert':
      case 'higher_prio_send_advert': {
        const b = readBool(arg);
        if (b === undefined) ctx.unsupported(c, statement(c, scope), 'not a boolean; left out', inst);
        else inst[k] = b;
        break;
      }
      case 'accept':
        inst.accept = true;
        break;
      case 'no_accept':
        inst.accept = false;
        break;
      case 'authentication':
        authNode = c;
        break;
      case 'lvs_sync_daemon_interface':
        if (arg && IFACE_RE.test(arg.text)) syncInterface = { iface: arg.text, node: c };
        else ctx.unsupported(c, statement(c, scope), 'not an interface name; left out', inst);
        break;
      case 'native_ipv6':
        ctx.note(c, statement(c, scope), 'not needed: the addresses give the family', inst);
        break;
      default:
        ctx.unknown(c, scope, inst);
    }
  }
  if (d.version !== undefined && inst.version === undefined) inst.version = d.version;
  if (d.accept !== undefined && inst.accept === undefined) inst.accept = d.accept;
  if (d.lower_prio_no_advert !== undefined && inst.lower_prio_no_advert === undefined) inst.lower_prio_no_advert = d.lower_prio_no_advert;
  if (d.higher_prio_send_advert !== undefined && inst.higher_prio_send_advert === undefined) inst.higher_prio_send_advert = d.higher_prio_send_advert;
  if (Object.keys(garp).length) inst.garp = garp;
  const vips = (inst.virtual_addresses as unknown[] | undefined) ?? [];
  const v6 = vips.some((v) => isIPv6(String(typeof v === 'string' ? v : (v as Obj).address).split('/')[0]!));
  if (v6 && inst.version !== 3) {
    inst.version = 3;
    ctx.note(node, scope, 'IPv6 addresses: version 3, as keepalived uses for IPv6 instances', inst, 'version');
  }
  // After the version is settled: keepalived ignores authentication on a VRRPv3 instance.
  if (authNode) mapAuthentication(ctx, authNode, scope, inst);
  const adv = inst.advert_interval as number | undefined;
  if (adv !== undefined) {
    // VRRPv2 carries whole seconds, VRRPv3 centiseconds (RFC 3768 §5.3.7, RFC 5798 §5.2.7): keepalived
    // rounds what the field cannot hold, and so does the importer (lvsd refuses it).
    const v3 = inst.version === 3;
    const r = v3 ? Math.min(40.95, Math.max(0.01, Math.round(adv * 100) / 100)) : Math.min(255, Math.max(1, Math.round(adv)));
    if (r !== adv) {
      inst.advert_interval = r;
      ctx.note(node, `${scope} > advert_int ${adv}`, `VRRPv${v3 ? 3 : 2} adverts carry ${v3 ? 'centiseconds up to 40.95 s' : 'whole seconds'}: ${r} s is used`, inst, 'advert_interval');
    }
  }
  for (const [key, what] of [['interface', 'interface'], ['virtual_router_id', 'virtual_router_id'], ['virtual_addresses', 'virtual_ipaddress']] as const) {
    if (inst[key] === undefined || (Array.isArray(inst[key]) && (inst[key] as unknown[]).length === 0)) {
      ctx.unsupported(node, scope, `no ${what} (lvsd needs one); instance left out`);
      return undefined;
    }
  }
  return syncInterface ? { inst, syncInterface } : { inst };
}

/** "NAME [weight W [reverse]]" of a track list: the weight, if given. */
/**
 * VRRPv2 authentication (RFC 2338 §5.3.6): `auth_type PASS` or `AH` with `auth_pass` maps to lvsd's
 * `authentication: {type: PASS | AH, password}`, which speaks both as keepalived does (AH:
 * src/election/ah.ts); keepalived uses the first 8 characters of the password (the field's size,
 * also the AH key). keepalived ignores authentication on a VRRPv3 instance, so the importer leaves
 * it out there too.
 */
function mapAuthentication(ctx: MapContext, c: KNode, scope: string, inst: Obj): void {
  const where = statement(c, scope);
  if (inst.version === 3) {
    ctx.note(c, where, 'VRRPv3 has no authentication (RFC 5798): keepalived ignores it on a version 3 instance; left out', inst);
    return;
  }
  let type: string | undefined;
  let pass: string | undefined;
  for (const x of c.children ?? []) {
    const v = x.args[0]?.text;
    if (x.keyword === 'auth_type') type = v?.toUpperCase();
    else if (x.keyword === 'auth_pass') pass = v;
    else ctx.unknown(x, `${scope} > authentication`, inst);
  }
  if ((type !== 'PASS' && type !== 'AH') || !pass) {
    ctx.unsupported(c, where, 'needs auth_type PASS or AH and an auth_pass; left out', inst, 'authentication');
    return;
  }
  if (pass.length > 8) ctx.note(c, where, `auth_pass is longer than 8 characters: keepalived and lvsd use the first 8 ("${pass.slice(0, 8)}")`, inst, 'authentication');
  inst.authentication = { type, password: pass.slice(0, 8) };
}

function weightOf(ctx: MapContext, t: KNode, scope: string, at: Anchor, key: string): number | undefined {
  let w: number | undefined;
  for (let i = 0; i < t.args.length; i++) {
    const a = t.args[i]!.text;
    if (a === 'weight') {
      w = readNumber(ctx, t, scope, t.args[++i], { int: true, min: -253, max: 253 }, at);
    } else if (a === 'reverse') {
      ctx.unsupported(t, statement(t, scope), 'reverse weights are not in lvsd; the weight is applied unreversed', at, key);
    } else if (a !== 'noreverse' && a !== 'no_reverse') {
      ctx.unsupported(t, statement(t, scope), `"${a}" is not understood; ignored`, at, key);
    }
  }
  return w;
}

function setNotify(ctx: MapContext, c: KNode, scope: string, owner: Obj): void {
  const notify = (owner.notify as Obj | undefined) ?? {};
  const key = c.keyword === 'notify' ? 'any' : c.keyword.slice('notify_'.length);
  const cmd = readScriptRef(ctx, c, scope, owner, 'notify');
  if (cmd === undefined) return;
  notify[key] = cmd;
  owner.notify = notify;
}

export interface SyncGroupResult {
  readonly group: Obj;
  /** Tracking declared on the group: applied to each member (keepalived applies it to all members). */
  readonly trackInterfaces: unknown[];
  readonly trackScripts: unknown[];
}

export function mapSyncGroup(ctx: MapContext, node: KNode): SyncGroupResult | undefined {
  const g: Obj = {};
  const name = lvsdName(ctx, node.args[0], node, 'vrrp_sync_group', g);
  if (!name) return undefined;
  g.name = name;
  const scope = `vrrp_sync_group ${node.args[0]!.text}`;
  const r = { group: g, trackInterfaces: [] as unknown[], trackScripts: [] as unknown[] };
  for (const c of node.children ?? []) {
    switch (c.keyword) {
      case 'group':
        g.members = (c.children ?? []).map((m) => m.keyword);
        break;
      case 'notify_master':
      case 'notify_backup':
      case 'notify_fault':
      case 'notify_stop':
      case 'notify':
        setNotify(ctx, c, scope, g);
        break;
      case 'track_interface':
        for (const t of c.children ?? []) {
          const w = weightOf(ctx, t, `${scope} > track_interface`, g, 'members');
          r.trackInterfaces.push(w === undefined ? t.keyword : { name: t.keyword, weight: w });
        }
        ctx.note(c, statement(c, scope), 'added to each member instance (same effect)', g, 'members');
        break;
      case 'track_script':
        for (const t of c.children ?? []) {
          const w = weightOf(ctx, t, `${scope} > track_script`, g, 'members');
          r.trackScripts.push(w === undefined ? t.keyword : { name: t.keyword, weight: w });
        }
        ctx.note(c, statement(c, scope), 'added to each member instance (same effect)', g, 'members');
        break;
      default:
        ctx.unsupported(c, statement(c, scope), c.children === undefined && /^[A-Za-z0-9_.-]+$/.test(c.keyword) && !c.args.length
          ? 'not a sync group keyword (keepalived ignores it too): members go in a group { } block'
          : 'no lvsd equivalent; left out', g);
    }
  }
  return r;
}

export { readBool };
