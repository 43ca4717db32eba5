/**
 * keepalived.conf → lvsd configuration: read (source.ts), parse (parse.ts), map (map-*.ts), emit
 * (emit.ts). The result says what could not be converted, each with its file:line.
 */
import { posix } from 'node:path';
import type { KNode } from './parse.js';
import { parseTree } from './parse.js';
import { readKeepalived, type ConfigFiles } from './source.js';
import { MapContext, type Item } from './context.js';
import { mapGlobalDefs } from './map-global.js';
import { mapSyncGroup, mapVrrpInstance, mapVrrpScript, type Obj, type SyncGroupResult } from './map-vrrp.js';
import { mapServerGroup, mapVirtualServer, type GroupEntry } from './map-lvs.js';
import { emitYaml } from './emit.js';

export interface ConvertOptions {
  /** keepalived's -i (conditional `@ID` lines). */
  readonly configId: string;
}

export interface Conversion {
  /** The lvsd configuration (input form: what the YAML holds). */
  readonly config: Obj;
  readonly yaml: string;
  /** Settings not converted and remarks, in file order. */
  readonly items: readonly Item[];
  /** The files read (the main one first, then includes). */
  readonly files: readonly string[];
  /** No `unsupported` item. */
  readonly complete: boolean;
}

const TOP_UNSUPPORTED: Record<string, string> = {
  static_ipaddress: 'lvsd manages no static addresses (configure them with the system\'s network set-up)',
  static_routes: 'lvsd manages no routes (configure them with the system\'s network set-up)',
  static_rules: 'lvsd manages no routing rules (configure them with the system\'s network set-up)',
  vrrp_track_process: 'lvsd has no process tracking (a vrrp_script running pidof is the nearest)',
  track_file: 'lvsd has no track files (a vrrp_script reading the file is the nearest)',
  vrrp_track_file: 'lvsd has no track files (a vrrp_script reading the file is the nearest)',
  bfd_instance: 'lvsd has no BFD',
  SSL: 'lvsd has no client certificates for https checks',
  linkbeat_interfaces: 'lvsd follows link state through netlink only',
  net_namespace: 'run lvsd itself in the namespace (ip netns exec)',
  garp_group: 'lvsd has no per-interface gratuitous ARP groups',
};

/** Map a parsed tree. */
export function convertTree(tree: readonly KNode[], ctx: MapContext): Obj {
  const g = mapGlobalDefs(ctx, tree.filter((n) => n.keyword === 'global_defs'));
  const scripts: Obj[] = [];
  const instances: Obj[] = [];
  const groupResults: SyncGroupResult[] = [];
  const servers: Obj[] = [];
  const vsGroups = new Map<string, { entries: GroupEntry[]; node: KNode }>();
  let sync: { sync: Obj; instance?: string; node: KNode } | undefined = g.sync;
  for (const n of tree) if (n.keyword === 'virtual_server_group' && n.args[0]) vsGroups.set(n.args[0].text, { entries: mapServerGroup(ctx, n), node: n });
  const usedGroups = new Set<string>();
  for (const n of tree) {
    switch (n.keyword) {
      case 'global_defs':
      case 'virtual_server_group':
        break;
      case 'vrrp_script': {
        const s = mapVrrpScript(ctx, n);
        if (s) scripts.push(s);
        break;
      }
      case 'vrrp_instance': {
        const r = mapVrrpInstance(ctx, n, g.defaults);
        if (!r) break;
        instances.push(r.inst);
        if (r.syncInterface) {
          if (sync) ctx.unsupported(r.syncInterface.node, `vrrp_instance ${r.inst.name} > lvs_sync_daemon_interface`, 'lvsd has one sync daemon; the first setting is used');
          else sync = { sync: { interface: r.syncInterface.iface }, instance: String(r.inst.name), node: r.syncInterface.node };
        }
        break;
      }
      case 'vrrp_sync_group': {
        const r = mapSyncGroup(ctx, n);
        if (r) groupResults.push(r);
        break;
      }
      case 'virtual_server':
        if (n.args[0]?.text === 'group' && n.args[1]) usedGroups.add(n.args[1].text);
        servers.push(...mapVirtualServer(ctx, n, vsGroups).servers);
        break;
      default:
        if (TOP_UNSUPPORTED[n.keyword]) ctx.unsupported(n, n.keyword, TOP_UNSUPPORTED[n.keyword]!);
        else ctx.unknown(n, '');
    }
  }
  for (const [name, grp] of vsGroups) if (!usedGroups.has(name)) ctx.note(grp.node, `virtual_server_group ${name}`, 'no virtual_server uses it; nothing to convert');

  // References across blocks, as keepalived resolves them (a missing name is dropped with a warning).
  const scriptNames = new Set(scripts.map((s) => s.name));
  const byName = new Map(instances.map((i) => [String(i.name), i]));
  const groups: Obj[] = [];
  const member = new Map<string, string>();
  for (const r of groupResults) {
    const gname = String(r.group.name);
    const members = ((r.group.members as string[] | undefined) ?? []).filter((m) => {
      const bad = !byName.has(m) ? 'no such vrrp_instance' : member.has(m) ? `already in sync group ${member.get(m)}` : undefined;
      if (bad) ctx.unsupported(memberOrigin(tree, gname, m), `vrrp_sync_group ${gname} > group > ${m}`, `${bad}; left out of the group`, r.group, 'members');
      else member.set(m, gname);
      return !bad;
    });
    if (members.length === 0) {
      ctx.unsupported(groupOrigin(tree, gname), `vrrp_sync_group ${gname}`, 'no member instance; group left out');
      continue;
    }
    r.group.members = members;
    for (const m of members) {
      const inst = byName.get(m)!;
      if (r.trackInterfaces.length) inst.track_interfaces = [...((inst.track_interfaces as unknown[]) ?? []), ...r.trackInterfaces];
      if (r.trackScripts.length) inst.track_scripts = [...((inst.track_scripts as unknown[]) ?? []), ...r.trackScripts];
    }
    groups.push(r.group);
  }
  for (const inst of instances) {
    const refs = inst.track_scripts as unknown[] | undefined;
    if (!refs) continue;
    inst.track_scripts = refs.filter((t) => {
      const name = typeof t === 'string' ? t : String((t as Obj).name);
      if (scriptNames.has(name)) return true;
      ctx.unsupported(trackOrigin(tree, String(inst.name), name), `vrrp_instance ${inst.name} > track_script > ${name}`, 'no such vrrp_script (or it was left out); not tracked', inst, 'track_scripts');
      return false;
    });
    if ((inst.track_scripts as unknown[]).length === 0) delete inst.track_scripts;
  }

  const out: Obj = {};
  if (Object.keys(g.global).length || ctx.comments.has(g.global) || ctx.keyComments.has(g.global)) out.global = g.global;
  if (scripts.length) out.vrrp_scripts = scripts;
  if (instances.length) out.vrrp_instances = instances;
  if (groups.length) out.vrrp_sync_groups = groups;
  if (servers.length) out.virtual_servers = servers;
  if (sync) {
    const s = sync.sync;
    if (sync.instance !== undefined) {
      const inst = byName.get(sync.instance);
      if (inst) {
        s.vrrp_instance = inst.name;
        // keepalived's sync id defaults to the instance's VRID (lvsd's to 0).
        if (s.sync_id === undefined) s.sync_id = inst.virtual_router_id;
      } else {
        ctx.unsupported(sync.node, `lvs_sync_daemon ${s.interface} ${sync.instance}`, 'no such vrrp_instance; sync runs as master and backup at once (mode both)', s);
        s.mode = 'both';
      }
    } else s.mode = 'both';
    out.sync = reorder(s, ['interface', 'mode', 'vrrp_instance', 'sync_id']);
    if (out.sync !== s) moveAll(ctx, s, out.sync as Obj);
  }
  return out;
}

function reorder(o: Obj, first: readonly string[]): Obj {
  const r: Obj = {};
  for (const k of first) if (k in o) r[k] = o[k];
  return Object.assign(r, o);
}

function moveAll(ctx: MapContext, from: object, to: object): void {
  const c = ctx.comments.get(from);
  if (c) ctx.comments.set(to, c);
  const k = ctx.keyComments.get(from);
  if (k) ctx.keyComments.set(to, k);
}

const groupOrigin = (tree: readonly KNode[], name: string) => tree.find((n) => n.keyword === 'vrrp_sync_group' && n.args[0]?.text === name) ?? tree[0]!;
const memberOrigin = (tree: readonly KNode[], group: string, member: string) =>
  groupOrigin(tree, group).children?.find((c) => c.keyword === 'group')?.children?.find((c) => c.keyword === member) ?? groupOrigin(tree, group);
/** The track_script entry naming a script (in the instance, or in its sync group). */
function trackOrigin(tree: readonly KNode[], inst: string, script: string): KNode {
  const blocks = tree.filter((n) => (n.keyword === 'vrrp_instance' && n.args[0]?.text === inst) || n.keyword === 'vrrp_sync_group');
  for (const b of blocks) {
    const t = b.children?.find((c) => c.keyword === 'track_script')?.children?.find((c) => c.keyword === script);
    if (t) return t;
  }
  return blocks[0] ?? tree[0]!;
}

/** Read FILE (absolute path) with its includes and convert it. Throws KeepalivedError for input that cannot be read or parsed. */
export function convertKeepalived(file: string, fs: ConfigFiles, opts: ConvertOptions): Conversion {
  const src = readKeepalived(file, fs, opts);
  const tree = parseTree(src.lines);
  const dir = posix.dirname(file);
  const display = (f: string) => (f === file ? posix.basename(f) : f.startsWith(dir + '/') ? f.slice(dir.length + 1) : f);
  const ctx = new MapContext(display);
  for (const n of src.notes) ctx.note(n, 'include', n.message);
  const config = convertTree(tree, ctx);
  const unsupported = ctx.items.filter((i) => i.kind === 'unsupported');
  const header = [
    `lvsd configuration converted from keepalived: ${display(file)}${src.files.length > 1 ? ` (with ${src.files.slice(1).map(display).join(', ')})` : ''}`,
    ...(src.conditional ? [`conditional lines (@ID) taken for config id "${opts.configId}"`] : []),
    unsupported.length
      ? `PARTIAL: ${unsupported.length} keepalived setting(s) not converted (each is also marked where it belongs):`
      : 'COMPLETE: every keepalived setting was converted.',
    ...unsupported.map((i) => `  ${display(i.file)}:${i.line}: ${i.what}`),
    ...(ctx.header.length ? ['', ...ctx.header] : []),
  ];
  const yaml = emitYaml(config, ctx, header);
  return { config, yaml, items: [...ctx.items].sort(byOrigin(src.files)), files: src.files, complete: unsupported.length === 0 };
}

function byOrigin(files: readonly string[]) {
  return (a: Item, b: Item) => files.indexOf(a.file) - files.indexOf(b.file) || a.line - b.line;
}
