/**
 * Checks across the whole file that a per-field schema cannot express. Each finding names the key
 * path it is about so the loader can turn it into file:line:column.
 */
import { isIPv6 } from 'node:net';
import { delimiter, join } from 'node:path';
import { existsSync } from 'node:fs';
import type { ClusterConfigParsed } from './schema.js';
import { virtualServerKey, vrrpStartOf, syncGroupStartsMaster, OWNER_PRIORITY, localSyncPorts } from './model.js';
import { parseIp, parsePrefix } from '../core/address.js';

export interface Finding {
  severity: 'error' | 'warning';
  path: Array<string | number>;
  message: string;
  pointAtKey?: boolean;
}

export interface SemanticEnv {
  checkFiles: boolean;
  resolveScript: (p: string) => string;
  fileStatus: (p: string) => 'ok' | 'missing' | 'not-executable' | 'not-file';
  /**
   * When lvsd runs as root: why a script is unsafe to run (writable by someone other than root,
   * src/core/scripts.ts scriptSecurityProblem), or undefined. Absent: no such check.
   */
  scriptSecurity?: (p: string) => string | undefined;
  /** Whether a script_user ("USER" or "USER:GROUP") exists on this machine; the problem if not. */
  userProblem?: (spec: string) => string | undefined;
}

const fam = (a: string): 4 | 6 => (isIPv6(a) ? 6 : 4);
const canon = (a: string): string => parsePrefix(a)?.text ?? a;
const addrOf = (v: string | { address: string }) => (typeof v === 'string' ? v : v.address).split('/')[0]!;

function findInPath(cmd: string): string | undefined {
  for (const dir of (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(delimiter)) if (dir && existsSync(join(dir, cmd))) return join(dir, cmd);
  return undefined;
}

export function semanticChecks(c: ClusterConfigParsed, env: SemanticEnv): Finding[] {
  const out: Finding[] = [];
  const err = (path: Finding['path'], message: string, pointAtKey = false) => out.push({ severity: 'error', path, message, pointAtKey });
  const warn = (path: Finding['path'], message: string, pointAtKey = false) => out.push({ severity: 'warning', path, message, pointAtKey });

  const checkCommand = (path: Finding['path'], cmd: string | string[] | undefined, what: string) => {
    if (!cmd || !env.checkFiles) return;
    const argv0 = (typeof cmd === 'string' ? cmd.trim().split(/\s+/) : cmd)[0]!;
    let p: string;
    if (!argv0.includes('/')) {
      const found = findInPath(argv0);
      if (!found) return void err(path, `${what} "${argv0}" is not found in PATH`);
      p = found;
    } else {
      p = env.resolveScript(argv0);
      const st = env.fileStatus(p);
      if (st === 'missing') return void err(path, `${what} ${p} does not exist`);
      if (st === 'not-file') return void err(path, `${what} ${p} is not a regular file`);
      if (st === 'not-executable') return void err(path, `${what} ${p} is not executable (chmod +x)`);
    }
    // keepalived script_security: lvsd runs as root, so a script someone else can change is theirs to run as root.
    const unsafe = env.scriptSecurity?.(p);
    if (unsafe) err(path, `${what} ${p} is not safe to run as root: ${unsafe}; make it and its directories writable by root only`);
  };
  const checkUser = (path: Finding['path'], spec: string | undefined) => {
    if (!spec || !env.checkFiles) return;
    const problem = env.userProblem?.(spec);
    if (problem) err(path, `script_user ${spec}: ${problem}`);
  };
  checkUser(['global', 'script_user'], c.global.script_user);
  const checkNotify = (base: Finding['path'], n: { [k: string]: unknown } | undefined) => {
    if (!n) return;
    for (const k of ['master', 'backup', 'fault', 'stop', 'any'] as const) checkCommand([...base, 'notify', k], n[k] as string | string[] | undefined, 'notify script');
  };

  // ---------------------------------------------------------------- VRRP
  const instByName = new Map<string, number>();
  // Name sets rather than a search per reference: a file with thousands of both stays linear.
  const scriptNames = new Set(c.vrrp_scripts.map((s) => s.name));
  const vsNamesForTracking = new Set(c.virtual_servers.map((vs) => vs.name ?? virtualServerKey(vs)));
  const vrids = new Map<string, number>();
  const vipOwner = new Map<string, { inst: number }>();
  c.vrrp_instances.forEach((inst, i) => {
    const p = ['vrrp_instances', i];
    if (instByName.has(inst.name)) err([...p, 'name'], `duplicate instance name "${inst.name}" (also vrrp_instances[${instByName.get(inst.name)}])`);
    else instByName.set(inst.name, i);

    const families = new Set(inst.virtual_addresses.map((v) => fam(addrOf(v))));
    if (families.size > 1) err([...p, 'virtual_addresses'], 'mixes IPv4 and IPv6 addresses; VRRP carries one family per instance: use two instances');
    const family = fam(addrOf(inst.virtual_addresses[0]!));
    const key = `${inst.interface}/${family}/${inst.virtual_router_id}`;
    if (vrids.has(key)) err([...p, 'virtual_router_id'], `virtual_router_id ${inst.virtual_router_id} is already used on ${inst.interface} by vrrp_instances[${vrids.get(key)}] (IPv${family})`);
    else vrids.set(key, i);

    // One address in two instances: whichever becomes master last takes it from the other.
    (['virtual_addresses', 'virtual_addresses_excluded'] as const).forEach((list) => {
      inst[list].forEach((v, j) => {
        const a = parsePrefix(addrOf(v))?.text ?? addrOf(v);
        const prev = vipOwner.get(a);
        if (prev && prev.inst === i) err([...p, list, j], `${a} is listed twice in this instance`);
        else if (prev) err([...p, list, j], `${a} is also a virtual address of vrrp_instances[${prev.inst}] (${c.vrrp_instances[prev.inst]!.name}): two instances would move it independently`);
        else if (!prev) vipOwner.set(a, { inst: i });
      });
    });

    if (inst.version === 2) {
      if (family === 6) err([...p, 'version'], 'VRRPv2 is IPv4 only (RFC 3768); use version: 3 for IPv6 addresses');
      if (!Number.isInteger(inst.advert_interval)) err([...p, 'advert_interval'], `VRRPv2 advertises whole seconds; ${inst.advert_interval} is not (use version: 3 for sub-second intervals)`);
    } else {
      const cs = Math.round(inst.advert_interval * 100);
      if (Math.abs(cs - inst.advert_interval * 100) > 1e-6) err([...p, 'advert_interval'], 'VRRPv3 advertises centiseconds: use at most two decimals');
      if (cs > 4095) err([...p, 'advert_interval'], 'VRRPv3 allows at most 40.95 s (12-bit centiseconds, RFC 5798 §5.2.7)');
    }
    if (inst.unicast_src && fam(inst.unicast_src) !== family) err([...p, 'unicast_src'], `unicast_src is IPv${fam(inst.unicast_src)} but the instance's addresses are IPv${family}`);
    inst.unicast_peers.forEach((peer, j) => {
      if (fam(peer) !== family) err([...p, 'unicast_peers', j], `peer ${peer} is IPv${fam(peer)} but the instance's addresses are IPv${family}`);
    });
    inst.peers.forEach((peer, j) => {
      if (fam(peer) !== family) err([...p, 'peers', j], `peer ${peer} is IPv${fam(peer)} but the instance's addresses are IPv${family}`);
      else if (family === 6 && !inst.unicast_peers.length && !/^fe[89ab]/i.test(peer)) err([...p, 'peers', j], `peer ${peer} is not link-local: IPv6 multicast adverts come from fe80::/10 addresses (RFC 5798 §5.1.2.1)`);
    });
    if (inst.authentication && inst.version !== 2) err([...p, 'authentication'], 'authentication exists only in VRRPv2 (RFC 2338 §5.3.6; VRRPv3 removed it): use version: 2, or peers to restrict the sources');
    const start = vrrpStartOf(inst);
    const wantsMaster = start.initial_state === 'MASTER';
    if (start.priority === OWNER_PRIORITY && !inst.preempt) warn([...p, 'preempt'], 'priority 255 is the address owner and always preempts; preempt: false has no effect');
    else if (wantsMaster && !inst.preempt) warn([...p, 'preempt'], 'initial_state MASTER always preempts (keepalived clears nopreempt with state MASTER); preempt: false has no effect');
    if (wantsMaster && inst.preempt_delay > 0) warn([...p, 'preempt_delay'], `preempt_delay has no effect with initial_state MASTER${inst.initial_state ? '' : ' (the default for priority 255)'} (keepalived clears it)`);
    else if (inst.preempt_delay > 0 && !inst.preempt) warn([...p, 'preempt_delay'], 'preempt_delay has no effect with preempt: false');
    if (start.priority === OWNER_PRIORITY && inst.initial_state === 'BACKUP') {
      warn([...p, 'initial_state'], 'the address owner (priority 255) with initial_state BACKUP waits Master_Down_Interval at start, as keepalived does; leave initial_state out to take over at once');
    }
    inst.track_scripts.forEach((t, j) => {
      const n = typeof t === 'string' ? t : t.name;
      if (!scriptNames.has(n)) err([...p, 'track_scripts', j], `no vrrp_scripts entry named "${n}"`);
    });
    inst.track_virtual_servers.forEach((t, j) => {
      if (!vsNamesForTracking.has(t.name)) err([...p, 'track_virtual_servers', j, 'name'], `no virtual server named "${t.name}"`);
    });
    checkNotify(p, inst.notify);
  });

  const seenScripts = new Set<string>();
  c.vrrp_scripts.forEach((s, i) => {
    if (seenScripts.has(s.name)) err(['vrrp_scripts', i, 'name'], `duplicate script name "${s.name}"`);
    seenScripts.add(s.name);
    checkCommand(['vrrp_scripts', i, 'script'], s.script, 'script');
    checkUser(['vrrp_scripts', i, 'script_user'], s.script_user);
    if (s.timeout !== undefined && s.timeout > s.interval) warn(['vrrp_scripts', i, 'timeout'], 'timeout is longer than interval: runs will overlap-skip');
  });

  const memberOf = new Map<string, string>();
  c.vrrp_sync_groups.forEach((g, i) => {
    g.members.forEach((m, j) => {
      if (!instByName.has(m)) err(['vrrp_sync_groups', i, 'members', j], `no vrrp_instances entry named "${m}"`);
      else if (memberOf.has(m)) err(['vrrp_sync_groups', i, 'members', j], `instance "${m}" is already in sync group "${memberOf.get(m)}"`);
      else memberOf.set(m, g.name);
    });
    checkNotify(['vrrp_sync_groups', i], g.notify);
    const members = g.members.flatMap((m) => {
      const idx = instByName.get(m);
      return idx === undefined ? [] : [{ idx, ...vrrpStartOf(c.vrrp_instances[idx]!) }];
    });
    if (!syncGroupStartsMaster(members)) {
      for (const m of members) {
        if (m.initial_state === 'MASTER') {
          warn(['vrrp_instances', m.idx, ...(c.vrrp_instances[m.idx]!.initial_state ? ['initial_state'] : [])], `sync group "${g.name}" starts as BACKUP unless every member is the address owner (priority 255) with initial_state MASTER (keepalived): this member waits Master_Down_Interval like the others`);
        }
      }
    }
  });

  // ---------------------------------------------------------------- virtual servers
  const vsKeys = new Map<string, number>();
  const vsNames = new Map<string, number>();
  const ownedVips = new Set<string>();
  for (const inst of c.vrrp_instances) for (const v of [...inst.virtual_addresses, ...inst.virtual_addresses_excluded]) ownedVips.add(parsePrefix(addrOf(v))?.text ?? addrOf(v));

  c.virtual_servers.forEach((vs, i) => {
    const p = ['virtual_servers', i];
    // Compare addresses in canonical form: 2001:DB8::1 and 2001:db8:0::1 are one service to the kernel.
    const key = virtualServerKey(vs.address ? { ...vs, address: canon(vs.address) } : vs);
    if (vsKeys.has(key)) err(p, `duplicate virtual service ${key} (also virtual_servers[${vsKeys.get(key)}])`);
    else vsKeys.set(key, i);
    const nm = vs.name ?? key;
    // An unnamed duplicate service is already reported above; only a repeated explicit name is news.
    if (vsNames.has(nm)) { if (vs.name !== undefined) err([...p, 'name'], `duplicate virtual server name "${nm}" (also virtual_servers[${vsNames.get(nm)}])`); }
    else vsNames.set(nm, i);

    const vsFam: 4 | 6 = vs.address ? fam(vs.address) : vs.family === 'ipv6' ? 6 : 4;
    if (vs.address && c.vrrp_instances.length > 0 && !ownedVips.has(parsePrefix(vs.address)?.text ?? vs.address)) {
      warn([...p, 'address'], `${vs.address} is not a virtual address of any vrrp instance: it will not move on failover`);
    }
    if (vs.persistence?.netmask !== undefined) {
      const nmv = vs.persistence.netmask;
      if (typeof nmv === 'string' && vsFam === 6) err([...p, 'persistence', 'netmask'], 'an IPv6 service takes a prefix length (1–128) as netmask');
      if (typeof nmv === 'number' && nmv > (vsFam === 4 ? 32 : 128)) err([...p, 'persistence', 'netmask'], `prefix length ${nmv} is too long for IPv${vsFam}`);
    }
    if (vs.one_packet && vs.protocol !== 'udp') warn([...p, 'one_packet'], 'one_packet only affects UDP services');
    if (vs.tunnel && vs.forwarding !== 'tun' && !vs.real_servers.some((r) => r.forwarding === 'tun')) warn([...p, 'tunnel'], 'tunnel settings are used only with forwarding: tun');
    for (const [j, f] of vs.scheduler_flags.entries()) {
      if ((f.startsWith('sh-') && vs.scheduler !== 'sh') || (f.startsWith('mh-') && vs.scheduler !== 'mh')) err([...p, 'scheduler_flags', j], `flag ${f} belongs to the ${f.slice(0, 2)} scheduler, not ${vs.scheduler}`);
    }
    checkCommand([...p, 'quorum_up'], vs.quorum_up, 'quorum_up command');
    checkCommand([...p, 'quorum_down'], vs.quorum_down, 'quorum_down command');
    const total = vs.real_servers.reduce((a, r) => a + r.weight, 0);
    if (vs.real_servers.length && total < vs.quorum) warn([...p, 'quorum'], `quorum ${vs.quorum} is more than the total weight ${total} of all real servers: the service can never be up`);

    const rsKeys = new Map<string, number>();
    vs.real_servers.forEach((rs, j) => {
      const rp = [...p, 'real_servers', j];
      const port = rs.port ?? vs.port ?? 0;
      const k = `${canon(rs.address)}:${port}`;
      if (rsKeys.has(k)) err(rp, `duplicate real server ${rs.address} port ${port} (also real_servers[${rsKeys.get(k)}])`);
      else rsKeys.set(k, j);
      const fwd = rs.forwarding ?? vs.forwarding;
      if ((fwd === 'dr' || fwd === 'tun') && rs.port !== undefined && vs.port !== undefined && rs.port !== vs.port && vs.port !== 0) {
        err([...rp, 'port'], `forwarding ${fwd} cannot remap ports: the real server receives the packet to port ${vs.port} unchanged (use nat, or port ${vs.port})`);
      }
      const rsFam = fam(rs.address);
      if (rsFam !== vsFam && fwd !== 'tun') {
        err([...rp, 'address'], `IPv${rsFam} real server behind an IPv${vsFam} service needs forwarding: tun (the kernel only mixes families for tunnels); ${fwd} cannot`);
      }
      if (rs.upper_threshold && rs.lower_threshold && rs.lower_threshold >= rs.upper_threshold) err([...rp, 'lower_threshold'], 'lower_threshold must be below upper_threshold');
      if (rs.tunnel && fwd !== 'tun') warn([...rp, 'tunnel'], 'tunnel settings are used only with forwarding: tun');
      const tun = rs.tunnel ?? vs.tunnel;
      if (fwd === 'tun' && tun?.type === 'gue' && tun.port === undefined) err([...rp, 'tunnel'], 'a gue tunnel needs tunnel.port');
      rs.checks.forEach((chk, k2) => {
        if (chk.type === 'exec') {
          checkCommand([...rp, 'checks', k2, 'command'], chk.command, 'check command');
          checkUser([...rp, 'checks', k2, 'script_user'], chk.script_user);
        }
        if (chk.type === 'http' || chk.type === 'https') {
          if (chk.body_regex !== undefined) {
            try { new RegExp(chk.body_regex); } catch (e) { err([...rp, 'checks', k2, 'body_regex'], `invalid regular expression: ${(e as Error).message.replace(/^Invalid regular expression: /, '')}`); }
          }
        }
        if (chk.type !== 'exec' && chk.bind_address && fam(chk.bind_address) !== fam(chk.connect_address ?? rs.address)) err([...rp, 'checks', k2, 'bind_address'], 'bind_address family differs from the address checked');
      });
      checkCommand([...rp, 'notify_up'], rs.notify_up, 'notify_up command');
      checkCommand([...rp, 'notify_down'], rs.notify_down, 'notify_down command');
    });
    if (vs.sorry_server) {
      const sf = vs.sorry_server.forwarding ?? vs.forwarding;
      if (fam(vs.sorry_server.address) !== vsFam && sf !== 'tun') err([...p, 'sorry_server', 'address'], `sorry server family differs from the service (IPv${vsFam})`);
      if ((sf === 'dr' || sf === 'tun') && vs.sorry_server.port !== undefined && vs.sorry_server.port !== vs.port) err([...p, 'sorry_server', 'port'], `forwarding ${sf} cannot remap ports: the sorry server receives the packet to port ${vs.port} unchanged (use nat, or port ${vs.port})`);
    }
  });

  // ---------------------------------------------------------------- sync
  if (c.sync) {
    if (c.sync.vrrp_instance && !instByName.has(c.sync.vrrp_instance)) err(['sync', 'vrrp_instance'], `no vrrp_instances entry named "${c.sync.vrrp_instance}"`);
    if (c.sync.mode === 'auto' && !c.sync.vrrp_instance && c.vrrp_instances.length !== 1) {
      err(['sync', 'mode'], 'mode auto follows a VRRP instance: set sync.vrrp_instance (or mode master/backup)');
    }
    // The kernel joins sync.group as a multicast group (IPVS_CMD_NEW_DAEMON answers EINVAL otherwise).
    const g = parseIp(c.sync.group);
    if (g && !(g.family === 4 ? g.bytes[0]! >= 224 && g.bytes[0]! <= 239 : g.bytes[0] === 0xff)) err(['sync', 'group'], `"${c.sync.group}" is not a multicast address (the kernel sync daemons need a group such as 224.0.0.81)`);
    if (c.sync.channel === 'lvsd' && !c.sync.key_file) err(['sync', 'channel'], 'channel lvsd authenticates every datagram: set sync.key_file');
    if (c.sync.channel === 'kernel' && c.sync.peers.length) err(['sync', 'peers'], 'peers are for channel lvsd (the kernel sync daemons only multicast)');
    const ports = localSyncPorts(c.sync);
    for (const k of ['stream_port', 'handover_port'] as const) {
      const v = c.sync[k];
      if (v === undefined) continue;
      if (c.sync.channel === 'kernel') err(['sync', k], `${k} is for channel lvsd (its ${k === 'stream_port' ? 'kernel stream' : 'hand-over to the kernel'} on lo)`);
      else if (v && v === c.sync.port) err(['sync', k], `the channel between the directors uses port ${v} (sync.port): give the ${k === 'stream_port' ? 'kernel stream' : 'hand-over'} another`);
    }
    if (c.sync.channel === 'lvsd' && ports.stream === ports.handover) {
      err(['sync', c.sync.handover_port !== undefined ? 'handover_port' : 'stream_port'], `the kernel stream and the hand-over both at port ${ports.stream} on lo: the backup daemon there would install this director's own records back into its table`);
    }
  }
  return out;
}
