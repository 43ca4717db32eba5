/**
 * Ready-made LVS topologies for real-kernel tests inside the lab guest (reuse them: health, IPVS,
 * sync tests). Built from namespaces with the toolkit in src/lab/netns.ts; TEST-NET addresses only.
 *
 * NAT (classic LVS-NAT, seeds 001/004): two segments.
 *     client 192.0.2.50 ──[fe]── 192.0.2.1 director 198.51.100.1 ──[be]── rsN 198.51.100.(10+N)
 *   VIP on the director's eth0; director forwards (ip_forward=1); real servers' default route is the
 *   director's backend address, so replies come back through it and are un-NATed.
 * DR and TUN (seeds 000/002): one segment [lan], 192.0.2.0/24.
 *     client 192.0.2.50, director 192.0.2.1 (+ VIP), rsN 192.0.2.(10+N)
 *   DR: the VIP sits on each real server's lo; TUN: on tunl0 (ipip), with rp_filter off because the
 *   decapsulated packet's source (the client) is not routed via tunl0. In both, arp_ignore=1 and
 *   arp_announce=2 so real servers never answer ARP for the VIP nor use it as ARP source (the "ARP
 *   problem"). The director does NOT forward (ip_forward=0): replies go from the real servers to the
 *   client directly, so a reply that arrives proves the direct path.
 * Every real server runs rs-server.js (HTTP; the reply names the server and the local address the
 * connection arrived on: its own address under NAT, the VIP under DR/TUN).
 */
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import type { ChildProcess } from 'node:child_process';
import { Topology, Netns, run, addrLine } from './netns.js';

export type LvsMode = 'nat' | 'dr' | 'tun';

const here = dirname(fileURLToPath(import.meta.url));
export const rsServerScript = join(here, 'rs-server.js');
export const burstClientScript = join(here, 'burst-client.js');
/** bin/lvsd of this checkout (dist/src/lab → repo root). */
export const lvsdBin = join(here, '..', '..', '..', 'bin', 'lvsd');

export interface LvsLabOptions {
  /** Number of real servers (1..20), default 2. */
  realServers?: number;
  /** Service port (real servers listen on the same port), default 80. */
  port?: number;
  /** Virtual IP, default 192.0.2.100. */
  vip?: string;
  /** Start rs-server on every real server, default true. */
  startServers?: boolean;
  /** Put the VIP on the director's eth0 (default true; VRRP tests may leave it to the election). */
  vipOnDirector?: boolean;
  /** DR/TUN only: number of directors (1 or 2, default 1); the second is 192.0.2.2, a VRRP pair's backup. */
  directors?: number;
  /** Real servers keep HTTP/1.1 connections open for more requests (rs-server --keep-alive); default false. */
  keepAlive?: boolean;
}

export interface RealServer {
  readonly name: string;
  readonly ns: Netns;
  /** The real server's own address (RIP). */
  readonly address: string;
  readonly port: number;
  /** Start rs-server (no-op when running); resolves once it listens. */
  start(): Promise<void>;
  /** SIGTERM by PID and wait for the exit. */
  stop(): Promise<void>;
  /** SIGKILL by PID (a crash); resolves when it is gone. */
  kill(): Promise<void>;
  readonly running: boolean;
  readonly pid: number | undefined;
}

export interface BurstResult {
  /** Replies per real-server name. */
  byServer: Record<string, number>;
  /** Local address each server saw the connection arrive on. */
  local: Record<string, string>;
  /** Remote address each server saw (the client's, in every mode: LVS keeps the client's source). */
  remote: Record<string, string>;
  errors: Record<string, number>;
  attempted: number;
  ms: number;
}

export interface VirtualServerSpec {
  scheduler?: string;
  /** Weight per real server, in order; default 1 each. */
  weights?: number[];
  protocol?: 'tcp' | 'udp';
}

export interface LvsLab {
  readonly mode: LvsMode;
  readonly topo: Topology;
  readonly client: Netns;
  readonly clientAddress: string;
  readonly director: Netns;
  /** Every director (DR/TUN with `directors: 2`: [192.0.2.1, 192.0.2.2]); directors[0] is `director`. */
  readonly directors: Netns[];
  /** Director's address on the client side (eth0). */
  readonly directorAddress: string;
  /** NAT only: the director's backend address (eth1), the real servers' gateway. */
  readonly directorBackendAddress: string | undefined;
  readonly vip: string;
  readonly port: number;
  readonly realServers: RealServer[];
  /** Run ipvsadm in the director's namespace; returns stdout. */
  ipvsadm(...args: string[]): Promise<string>;
  /** An lvsd YAML config with this lab's virtual server (all real servers, this mode's forwarding). */
  configYaml(spec?: VirtualServerSpec): string;
  /** `lvsd ipvs apply -c FILE` inside the director with that YAML; returns the printed operations. */
  apply(yaml: string): Promise<string>;
  /** COUNT separate TCP connections from the client to VIP:port (bounded in count and time). */
  burst(count: number, opts?: { concurrency?: number; deadlineMs?: number }): Promise<BurstResult>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function exited(c: ChildProcess): boolean {
  return c.exitCode !== null || c.signalCode !== null;
}

function makeRealServer(ns: Netns, name: string, address: string, port: number, keepAlive = false): RealServer {
  let child: ChildProcess | undefined;
  const running = () => child !== undefined && !exited(child);
  const waitExit = (c: ChildProcess, ms: number) =>
    exited(c) ? Promise.resolve() : Promise.race([new Promise<void>((r) => c.once('exit', () => r())), sleep(ms)]);
  return {
    name,
    ns,
    address,
    port,
    get running() {
      return running();
    },
    get pid() {
      return running() ? child?.pid : undefined;
    },
    async start() {
      if (running()) return;
      const c = ns.spawn([process.execPath, rsServerScript, name, String(port), ...(keepAlive ? ['--keep-alive'] : [])]);
      child = c;
      let err = '';
      c.stderr!.on('data', (d: Buffer) => (err += d.toString()));
      await new Promise<void>((resolve, reject) => {
        // 60 s: a node start in the guest takes ~1 s on a quiet machine and 20 s or more on a loaded one.
        const timer = setTimeout(() => reject(new Error(`${name}: rs-server did not start within 60 s ${err}`)), 60_000);
        let out = '';
        c.stdout!.on('data', (d: Buffer) => {
          out += d.toString();
          if (out.includes('listening')) {
            clearTimeout(timer);
            resolve();
          }
        });
        c.once('exit', (code) => {
          clearTimeout(timer);
          reject(new Error(`${name}: rs-server exited with ${code}: ${err}`));
        });
      });
    },
    async stop() {
      if (!child || exited(child)) return;
      process.kill(child.pid!, 'SIGTERM');
      await waitExit(child, 5000);
      if (!exited(child)) process.kill(child.pid!, 'SIGKILL');
      await waitExit(child, 5000);
    },
    async kill() {
      if (!child || exited(child)) return;
      process.kill(child.pid!, 'SIGKILL');
      await waitExit(child, 5000);
    },
  };
}

function checkOptions(o: LvsLabOptions): Required<LvsLabOptions> {
  const n = o.realServers ?? 2;
  if (!Number.isInteger(n) || n < 1 || n > 20) throw new Error(`realServers must be 1..20, got ${n}`);
  const d = o.directors ?? 1;
  if (d !== 1 && d !== 2) throw new Error(`directors must be 1 or 2, got ${d}`);
  return { realServers: n, port: o.port ?? 80, vip: o.vip ?? '192.0.2.100', startServers: o.startServers ?? true, vipOnDirector: o.vipOnDirector ?? true, directors: d, keepAlive: o.keepAlive ?? false };
}

function finish(
  mode: LvsMode,
  topo: Topology,
  parts: { client: Netns; director: Netns; directors?: Netns[]; clientAddress: string; directorAddress: string; directorBackendAddress?: string; vip: string; port: number; realServers: RealServer[] },
): LvsLab {
  const lab: LvsLab = {
    mode,
    topo,
    client: parts.client,
    clientAddress: parts.clientAddress,
    director: parts.director,
    directors: parts.directors ?? [parts.director],
    directorAddress: parts.directorAddress,
    directorBackendAddress: parts.directorBackendAddress,
    vip: parts.vip,
    port: parts.port,
    realServers: parts.realServers,
    async ipvsadm(...args) {
      return (await parts.director.exec(['ipvsadm', ...args])).stdout;
    },
    configYaml(spec = {}) {
      const weights = spec.weights ?? parts.realServers.map(() => 1);
      const lines = [
        'global:',
        `  router_id: ${topo.prefix}`,
        'virtual_servers:',
        `  - name: lab-${mode}`,
        `    address: ${parts.vip}`,
        `    port: ${parts.port}`,
        `    protocol: ${spec.protocol ?? 'tcp'}`,
        `    scheduler: ${spec.scheduler ?? 'wrr'}`,
        `    forwarding: ${mode}`,
        '    real_servers:',
        ...parts.realServers.flatMap((rs, i) => [`      - address: ${rs.address}`, `        weight: ${weights[i] ?? 1}`]),
      ];
      return lines.join('\n') + '\n';
    },
    async apply(yaml) {
      const dir = mkdtempSync(join(tmpdir(), 'lvsd-apply-'));
      const file = join(dir, 'lvsd.yaml');
      writeFileSync(file, yaml);
      return (await parts.director.exec([process.execPath, lvsdBin, 'ipvs', 'apply', '-c', file], { timeoutMs: 60_000 })).stdout;
    },
    async burst(count, opts = {}) {
      const deadline = opts.deadlineMs ?? 60_000;
      const r = await parts.client.exec(
        [process.execPath, burstClientScript, parts.vip, String(parts.port), String(count), String(opts.concurrency ?? 8), String(deadline)],
        { timeoutMs: deadline + 15_000 },
      );
      return JSON.parse(r.stdout) as BurstResult;
    },
  };
  return lab;
}

async function startAll(rss: RealServer[]): Promise<void> {
  // Sequential: each node start costs ~0.7 s of the guest's single CPU anyway.
  for (const rs of rss) await rs.start();
}

/** LVS-NAT: client and director on [fe] 192.0.2.0/24, director and real servers on [be] 198.51.100.0/24. */
export async function buildNatLab(topo: Topology, options: LvsLabOptions = {}): Promise<LvsLab> {
  const o = checkOptions(options);
  if (o.directors !== 1) throw new Error('the NAT topology has one director');
  const rsNames = Array.from({ length: o.realServers }, (_, i) => `rs${i + 1}`);
  // Few processes: every `ip` run costs ~0.3 s in the guest, so namespaces are made in one go and
  // each namespace is configured with one ip batch.
  const [, client, director, ...rsNs] = await topo.netnsMany(['sw', 'cli', 'dir', ...rsNames]);
  const fe = await topo.bridge('fe');
  const be = await topo.bridge('be');
  await topo.link(client!, 'eth0', fe);
  await topo.link(director!, 'eth0', fe);
  await topo.link(director!, 'eth1', be);
  await client!.ipBatch([addrLine('eth0', '192.0.2.50/24')]);
  await director!.ipBatch([
    addrLine('eth0', '192.0.2.1/24'),
    ...(o.vipOnDirector ? [addrLine('eth0', `${o.vip}/32`)] : []),
    addrLine('eth1', '198.51.100.1/24'),
  ]);
  await director!.sysctls({ 'net.ipv4.ip_forward': '1' });
  const realServers: RealServer[] = [];
  for (const [i, ns] of rsNs.entries()) {
    await topo.link(ns, 'eth0', be);
    const rip = `198.51.100.${11 + i}`;
    await ns.ipBatch([addrLine('eth0', `${rip}/24`), 'route add default via 198.51.100.1']);
    realServers.push(makeRealServer(ns, ns.short, rip, o.port, o.keepAlive));
  }
  if (o.startServers) await startAll(realServers);
  return finish('nat', topo, { client: client!, director: director!, clientAddress: '192.0.2.50', directorAddress: '192.0.2.1', directorBackendAddress: '198.51.100.1', vip: o.vip, port: o.port, realServers });
}

async function buildFlat(mode: 'dr' | 'tun', topo: Topology, options: LvsLabOptions): Promise<LvsLab> {
  const o = checkOptions(options);
  const rsNames = Array.from({ length: o.realServers }, (_, i) => `rs${i + 1}`);
  const dirNames = o.directors === 2 ? ['dir', 'dir2'] : ['dir'];
  const [, client, ...rest] = await topo.netnsMany(['sw', 'cli', ...dirNames, ...rsNames]);
  const directors = rest.slice(0, dirNames.length);
  const rsNs = rest.slice(dirNames.length);
  const director = directors[0];
  const lan = await topo.bridge('lan');
  await topo.link(client!, 'eth0', lan);
  await client!.ipBatch([addrLine('eth0', '192.0.2.50/24')]);
  for (const [i, d] of directors.entries()) {
    await topo.link(d, 'eth0', lan);
    await d.ipBatch([addrLine('eth0', `192.0.2.${i + 1}/24`), ...(o.vipOnDirector && i === 0 ? [addrLine('eth0', `${o.vip}/32`)] : [])]);
    // Replies must not (and cannot) pass through the director.
    await d.sysctls({ 'net.ipv4.ip_forward': '0' });
  }
  const realServers: RealServer[] = [];
  for (const [i, ns] of rsNs.entries()) {
    await topo.link(ns, 'eth0', lan);
    const rip = `192.0.2.${11 + i}`;
    // The ARP problem (seeds 002): never answer ARP for the VIP (arp_ignore=1: only for addresses on
    // the receiving interface) and never use it as the source of our own ARP requests (arp_announce=2).
    // The kernel uses max(all, dev) for both, so "all" is enough.
    const sys: Record<string, string> = { 'net.ipv4.conf.all.arp_ignore': '1', 'net.ipv4.conf.all.arp_announce': '2' };
    if (mode === 'dr') {
      await ns.ipBatch([addrLine('eth0', `${rip}/24`), addrLine('lo', `${o.vip}/32`)]);
    } else {
      // tunl0 is the ipip fallback device, present in every namespace once ipip is loaded.
      await ns.ipBatch([addrLine('eth0', `${rip}/24`), 'link set tunl0 up', addrLine('tunl0', `${o.vip}/32`)]);
      // rp_filter uses max(all, dev): both must be 0, or decapsulated packets from the client are dropped.
      Object.assign(sys, { 'net.ipv4.conf.all.rp_filter': '0', 'net.ipv4.conf.tunl0.rp_filter': '0', 'net.ipv4.conf.eth0.rp_filter': '0' });
    }
    await ns.sysctls(sys);
    realServers.push(makeRealServer(ns, ns.short, rip, o.port, o.keepAlive));
  }
  if (o.startServers) await startAll(realServers);
  return finish(mode, topo, { client: client!, director: director!, directors, clientAddress: '192.0.2.50', directorAddress: '192.0.2.1', vip: o.vip, port: o.port, realServers });
}

/** LVS-DR: one segment; VIP on the real servers' lo with arp_ignore=1/arp_announce=2. */
export function buildDrLab(topo: Topology, options: LvsLabOptions = {}): Promise<LvsLab> {
  return buildFlat('dr', topo, options);
}

/** LVS-TUN (ipip): one segment; VIP on the real servers' tunl0, rp_filter off. */
export function buildTunLab(topo: Topology, options: LvsLabOptions = {}): Promise<LvsLab> {
  return buildFlat('tun', topo, options);
}

/** Builder by mode. */
export function buildLvsLab(mode: LvsMode, topo: Topology, options: LvsLabOptions = {}): Promise<LvsLab> {
  return mode === 'nat' ? buildNatLab(topo, options) : buildFlat(mode, topo, options);
}

/** ipvsadm -Ln lines of the real servers of VIP:port: address → { method, weight }. */
export function parseIpvsadmDests(text: string, vip: string, port: number): Map<string, { method: string; weight: number }> {
  const out = new Map<string, { method: string; weight: number }>();
  let inService = false;
  for (const line of text.split('\n')) {
    if (/^(TCP|UDP|SCTP|FWM) /.test(line)) inService = line.split(/\s+/)[1] === `${vip}:${port}`;
    const m = /^\s+->\s+(\S+):(\d+)\s+(\S+)\s+(\d+)/.exec(line);
    if (inService && m) out.set(m[1]!, { method: m[3]!, weight: Number(m[4]) });
  }
  return out;
}

/** Run a command in the director; exported for tests that want raw access. */
export { run };
