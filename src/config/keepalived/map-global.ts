/**
 * global_defs → lvsd's `global`, the instance defaults it carries (vrrp_version, vrrp_garp_*,
 * vrrp_lower_prio_no_advert, vrrp_higher_prio_send_advert, vrrp_strict) and `sync` (lvs_sync_daemon).
 */
import { isIPv4, isIPv6 } from 'node:net';
import type { KNode } from './parse.js';
import { MapContext, readBool, readNumber, statement } from './context.js';
import type { Obj, VrrpDefaults } from './map-vrrp.js';

export interface GlobalResult {
  readonly global: Obj;
  readonly defaults: VrrpDefaults;
  readonly sync?: { sync: Obj; instance?: string; node: KNode };
}

const EMAIL = ['notification_email', 'notification_email_from', 'smtp_server', 'smtp_connect_timeout', 'smtp_helo_name', 'smtp_alert', 'smtp_alert_vrrp', 'smtp_alert_checker', 'email_faults'];

export function mapGlobalDefs(ctx: MapContext, blocks: readonly KNode[]): GlobalResult {
  const global: Obj = {};
  const defaults: VrrpDefaults = { garp: {} };
  let sync: GlobalResult['sync'];
  const scope = 'global_defs';
  let nice: number | undefined;
  let strict = false;
  for (const node of blocks) {
    for (const c of node.children ?? []) {
      const a = c.args[0]?.text;
      switch (c.keyword) {
        case 'router_id':
          if (a) global.router_id = a.slice(0, 64);
          break;
        case 'vrrp_version': {
          const n = readNumber(ctx, c, scope, c.args[0], { int: true, min: 2, max: 3 }, global);
          if (n !== undefined) defaults.version = n;
          break;
        }
        case 'vrrp_garp_master_delay':
        case 'vrrp_garp_master_refresh': {
          const n = readNumber(ctx, c, scope, c.args[0], { min: 0 }, global);
          if (n !== undefined) defaults.garp[c.keyword.slice('vrrp_garp_'.length)] = n;
          break;
        }
        case 'vrrp_garp_master_repeat':
        case 'vrrp_garp_master_refresh_repeat': {
          const n = readNumber(ctx, c, scope, c.args[0], { int: true, min: 1, max: 100 }, global);
          if (n !== undefined) defaults.garp[c.keyword.slice('vrrp_garp_'.length)] = n;
          break;
        }
        case 'vrrp_garp_lower_prio_delay':
        case 'vrrp_garp_lower_prio_repeat': {
          const n = readNumber(ctx, c, scope, c.args[0], c.keyword.endsWith('repeat') ? { int: true, min: 0, max: 100 } : { min: 0 }, global);
          if (n !== undefined) defaults.garp[c.keyword.slice('vrrp_garp_'.length)] = n;
          break;
        }
        case 'vrrp_lower_prio_no_advert':
        case 'vrrp_higher_prio_send_advert': {
          const b = readBool(c.args[0]);
          if (b === undefined) ctx.unsupported(c, statement(c, scope), 'not a boolean; left out', global);
          else defaults[c.keyword === 'vrrp_lower_prio_no_advert' ? 'lower_prio_no_advert' : 'higher_prio_send_advert'] = b;
          break;
        }
        case 'vrrp_garp_interval':
        case 'vrrp_gna_interval': {
          const n = readNumber(ctx, c, scope, c.args[0], { min: 0, max: 1 }, global);
          if (n !== undefined) {
            if (defaults.garp.interval !== undefined && defaults.garp.interval !== n) ctx.note(c, statement(c, scope), 'lvsd has one gap for ARP and NA; the larger is used', global);
            defaults.garp.interval = Math.max(n, Number(defaults.garp.interval ?? 0));
          }
          break;
        }
        case 'vrrp_priority':
        case 'checker_priority': {
          const n = readNumber(ctx, c, scope, c.args[0], { int: true, min: -20, max: 19 }, global);
          if (n !== undefined) {
            if (nice !== undefined && nice !== n) ctx.note(c, statement(c, scope), 'lvsd is one process: the higher scheduling priority of the two is used', global, 'nice');
            nice = Math.min(n, nice ?? n);
          }
          break;
        }
        case 'vrrp_strict':
          defaults.accept = false;
          strict = true;
          ctx.unsupported(c, statement(c, scope), 'lvsd has no strict mode; its parts that change behaviour on the wire, accept: false and lower_prio_no_advert: true (unless set), are set on every instance', global);
          break;
        case 'lvs_sync_daemon': {
          if (sync) {
            ctx.unsupported(c, statement(c, scope), `lvsd has one sync daemon, as keepalived: the first (line ${sync.node.line}) is used`, global);
            break;
          }
          const r = mapSyncDaemon(ctx, c);
          if (r) sync = r;
          break;
        }
        case 'lvs_timeouts': {
          const t: Obj = {};
          for (let i = 0; i < c.args.length; i += 2) {
            const k = c.args[i]!.text;
            const key = k === 'tcp' ? 'tcp' : k === 'tcpfin' ? 'tcp_fin' : k === 'udp' ? 'udp' : undefined;
            const n = readNumber(ctx, c, scope, c.args[i + 1], { int: true, min: 0 }, global);
            if (!key) ctx.unsupported(c, statement(c, scope), `"${k}" is not tcp, tcpfin or udp; left out`, global);
            else if (n !== undefined) t[key] = n;
          }
          global.ipvs = { ...((global.ipvs as Obj) ?? {}), timeouts: t };
          break;
        }
        case 'lvs_flush':
          ctx.unsupported(c, statement(c, scope), 'lvsd never flushes the IPVS table; global.ipvs.exclusive: true makes it remove undeclared services (continuously, not only at start)', global);
          break;
        default:
          if (EMAIL.includes(c.keyword)) ctx.unsupported(c, statement(c, scope), 'lvsd sends no e-mail (use notify scripts or alert on its metrics)', global);
          else if (c.keyword === 'script_user') ctx.unsupported(c, statement(c, scope), 'lvsd runs every script as its own user (see deploy/lvsd.service)', global);
          else if (c.keyword === 'enable_script_security') ctx.unsupported(c, statement(c, scope), 'lvsd does not check script ownership; check-config checks that scripts exist and are executable', global);
          else if (c.keyword.startsWith('notify_fifo') || c.keyword.includes('_notify_fifo')) ctx.unsupported(c, statement(c, scope), 'lvsd has no notify FIFO (notify scripts and /status are its interfaces)', global);
          else ctx.unknown(c, scope, global);
      }
    }
  }
  if (nice !== undefined) global.nice = nice;
  // keepalived.conf(5): vrrp_lower_prio_no_advert "defaults to false, unless strict_mode".
  if (strict) defaults.lower_prio_no_advert ??= true;
  return sync ? { global, defaults, sync } : { global, defaults };
}

/** lvs_sync_daemon IFACE [INSTANCE] [id N] [maxlen N] [port N] [ttl N] [group IP]. */
function mapSyncDaemon(ctx: MapContext, c: KNode): GlobalResult['sync'] {
  const scope = 'global_defs';
  const [iface, ...rest] = c.args;
  if (!iface) {
    ctx.unsupported(c, statement(c, scope), 'no interface; left out');
    return undefined;
  }
  const sync: Obj = { interface: iface.text };
  let instance: string | undefined;
  for (let i = 0; i < rest.length; i++) {
    const k = rest[i]!.text;
    const lim: Record<string, [number, number, string]> = { id: [0, 255, 'sync_id'], maxlen: [256, 65507, 'maxlen'], port: [1, 65535, 'port'], ttl: [1, 255, 'ttl'] };
    if (lim[k]) {
      const [min, max, key] = lim[k]!;
      const n = readNumber(ctx, c, scope, rest[++i], { int: true, min, max }, sync);
      if (n !== undefined) sync[key] = n;
    } else if (k === 'group') {
      const g = rest[++i]?.text;
      if (g && (isIPv4(g) || isIPv6(g))) sync.group = g;
      else ctx.unsupported(c, statement(c, scope), 'group is not an address; left out', sync);
    } else if (i === 0) instance = k;
    else ctx.unsupported(c, statement(c, scope), `"${k}" is not understood; ignored`, sync);
  }
  return instance ? { sync, instance, node: c } : { sync, node: c };
}
