/**
 * Starting VRRP peers in a namespace: lvsd (`bin/lvsd run`) or keepalived (Debian package, VRRP
 * only, foreground), with the same settings, so tests and the benchmark can swap one for the other.
 */
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import type { Netns, Running } from '../../../src/lab/netns.js';
import { lvsdBin } from '../../support/proc.js';

export interface PeerSpec {
  readonly kind: 'lvsd' | 'keepalived';
  readonly name: string;
  readonly priority: number;
  /** Process scheduling priority: lvsd global.nice, keepalived vrrp_priority. */
  readonly nice?: number;
  readonly version: 2 | 3;
  /** seconds */
  readonly advert: number;
  readonly vrid?: number;
  readonly vips: readonly string[];
  /** GARP repeat per burst and delay (s) of the second burst. */
  readonly garpRepeat?: number;
  readonly garpDelay?: number;
  readonly iface?: string;
  /** VRRPv2 authentication with this password (lvsd authentication, keepalived authentication { }). */
  readonly password?: string;
  /** Its type (default PASS). */
  readonly authType?: 'PASS' | 'AH';
  /**
   * keepalived only: `vrrp_lower_prio_no_advert`. Besides not answering a lower-priority advert, it
   * is the only setting with which a keepalived MASTER keeps its advert timer when it receives a
   * packet: by default every packet of the VRID it reads, even one failing authentication, puts its
   * next advert a whole interval later (vrrp_scheduler.c vrrp_dispatcher_read; measured in
   * test/reliability/vrrp-ah-keepalived.test.ts, docs/reliability.md).
   */
  readonly lowerPrioNoAdvert?: boolean;
  /** lvsd only: takeover_thread (default true; toggling it rebuilds the instance's I/O at a reload). */
  readonly takeoverThread?: boolean;
  /** lvsd only: the instance's `peers` allow-list. */
  readonly peers?: readonly string[];
  /** lvsd only: more lines right after the instance's `garp:` block: 6-space indent continues `garp`, then 4-space for the instance. */
  readonly instanceLines?: readonly string[];
}

export interface Peer {
  readonly spec: PeerSpec;
  readonly ns: Netns;
  readonly proc: Running;
  readonly pid: number;
  cleanup(): void;
}

const dirs: string[] = [];
export function scratch(): string {
  const d = mkdtempSync(join(tmpdir(), 'lvsd-el-'));
  dirs.push(d);
  return d;
}
export function removeScratch(): void {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

export function lvsdYaml(s: PeerSpec): string {
  return [
    'global:',
    `  router_id: ${s.name}`,
    ...(s.nice !== undefined ? [`  nice: ${s.nice}`] : []),
    '  api:',
    '    listen: 127.0.0.1:9650',
    'vrrp_instances:',
    '  - name: VI_1',
    `    interface: ${s.iface ?? 'eth0'}`,
    `    virtual_router_id: ${s.vrid ?? 42}`,
    `    priority: ${s.priority}`,
    `    version: ${s.version}`,
    `    advert_interval: ${s.advert}`,
    '    virtual_addresses:',
    ...s.vips.map((v) => `      - ${v}`),
    '    garp:',
    `      master_repeat: ${s.garpRepeat ?? 5}`,
    `      master_delay: ${s.garpDelay ?? 5}`,
    ...(s.instanceLines ?? []),
    ...(s.password !== undefined ? ['    authentication:', `      type: ${s.authType ?? 'PASS'}`, `      password: "${s.password}"`] : []),
    ...(s.takeoverThread === false ? ['    takeover_thread: false'] : []),
    ...(s.peers ? [`    peers: [${s.peers.join(', ')}]`] : []),
    '',
  ].join('\n');
}

export function keepalivedConf(s: PeerSpec): string {
  return [
    'global_defs {',
    `  router_id ${s.name}`,
    ...(s.nice !== undefined ? [`  vrrp_priority ${s.nice}`] : []),
    `  vrrp_garp_master_repeat ${s.garpRepeat ?? 5}`,
    `  vrrp_garp_master_delay ${s.garpDelay ?? 5}`,
    ...(s.lowerPrioNoAdvert ? ['  vrrp_lower_prio_no_advert true'] : []),
    '}',
    'vrrp_instance VI_1 {',
    '  state BACKUP',
    `  interface ${s.iface ?? 'eth0'}`,
    `  virtual_router_id ${s.vrid ?? 42}`,
    `  priority ${s.priority}`,
    `  version ${s.version}`,
    `  advert_int ${s.advert}`,
    '  virtual_ipaddress {',
    ...s.vips.map((v) => `    ${v}`),
    '  }',
    ...(s.password !== undefined ? ['  authentication {', `    auth_type ${s.authType ?? 'PASS'}`, `    auth_pass ${s.password}`, '  }'] : []),
    '}',
    '',
  ].join('\n');
}

/** `lvsd run` in a namespace with a config the caller wrote (API on 127.0.0.1:9650 there if configured so). */
export function startLvsd(ns: Netns, yaml: string): { proc: Running; pid: number; dir: string } {
  const dir = scratch();
  const f = join(dir, 'lvsd.yaml');
  writeFileSync(f, yaml);
  const proc = ns.start([process.execPath, ...(process.env.BENCH_LVSD_NODE_ARGS ? process.env.BENCH_LVSD_NODE_ARGS.split(' ') : []), lvsdBin, 'run', '-c', f, '--state-dir', dir, '--log-level', 'info']);
  return { proc, pid: proc.child.pid!, dir };
}

/** GET a path of the lvsd API inside a namespace (127.0.0.1:9650, as lvsdYaml configures). */
export async function apiGet(ns: Netns, path: string): Promise<string> {
  return (await ns.exec([process.execPath, '-e', `fetch('http://127.0.0.1:9650${path}').then((r) => r.text()).then((t) => process.stdout.write(t))`])).stdout;
}

export function startPeer(ns: Netns, s: PeerSpec): Peer {
  if (s.kind === 'lvsd') {
    const { proc, pid, dir } = startLvsd(ns, lvsdYaml(s));
    return { spec: s, ns, proc, pid, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
  }
  const dir = scratch();
  const f = join(dir, 'keepalived.conf');
  writeFileSync(f, keepalivedConf(s));
  const proc = ns.start(['keepalived', '-n', '-l', '-D', '-G', '-P', '-f', f, '-p', join(dir, 'k.pid'), '-r', join(dir, 'v.pid')]);
  return { spec: s, ns, proc, pid: proc.child.pid!, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Stop a peer: 'kill' = SIGKILL (the host died), 'stop' = SIGTERM (graceful). Resolves on exit. */
export async function stopPeer(p: Peer, how: 'kill' | 'stop'): Promise<void> {
  if (how === 'kill') {
    // Every process in the namespace, frozen first: this is a host dying (see Netns.crash).
    p.ns.crash();
  } else {
    try {
      process.kill(p.pid, 'SIGTERM');
    } catch {
      /* gone */
    }
  }
  await Promise.race([p.proc.exited, new Promise((r) => setTimeout(r, 5000))]);
}
