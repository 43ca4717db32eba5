/**
 * The demo's cluster inside the lab guest: the DR topology of src/lab/topologies.ts with two
 * directors, three keep-alive HTTP real servers and a client, plus what the scenario drives —
 * an `lvsd run` daemon per director (whose JSON log lines it follows) and the client program.
 *
 *     client 192.0.2.50 ──┐
 *     director-a 192.0.2.1 (priority 150) ──┤ lan ├── rs1..rs3 192.0.2.11-13 (VIP on lo, DR)
 *     director-b 192.0.2.2 (priority 100) ──┘
 *
 * Direct routing shows the most with the fewest moving parts: one segment, the VIP moves between the
 * directors by VRRP (the client's ARP entry follows the gratuitous ARP), and the real servers answer
 * the client directly, so a connection survives a director change exactly when the new director's
 * kernel knows it (connection sync, here lvsd's own channel: sync.channel lvsd).
 */
import { writeFileSync, mkdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import type { ChildProcess } from 'node:child_process';
import { Topology, addrLine, type Netns } from '../netns.js';
import { buildDrLab, lvsdBin, type LvsLab } from '../topologies.js';

export const VIP = '192.0.2.100';
export const PORT = 80;
const VRID = 51;
const clientScript = join(dirname(fileURLToPath(import.meta.url)), 'client.js');

/** One parsed lvsd log line (pino JSON). */
export interface LogLine {
  time: number;
  msg: string;
  subsystem?: string;
  from?: string;
  to?: string;
  reason?: string;
  /** Health: ADDRESS:PORT of the real server. */
  real_server?: string;
  level?: string;
  [k: string]: unknown;
}

/** The lvsd configuration of one director (DR, HTTP checks, VRRP, connection sync). */
export function directorConfig(o: { label: string; priority: number; stateDir: string; realServers: readonly string[]; keyFile: string }): string {
  return `# lvsd demo: ${o.label}
global:
  router_id: ${o.label}
  state_dir: ${o.stateDir}
  api: { listen: 127.0.0.1:9650 }
vrrp_instances:
  - name: VI_WEB
    interface: eth0
    virtual_router_id: ${VRID}
    priority: ${o.priority}
    version: 3
    advert_interval: 1
    virtual_addresses: [${VIP}/24]
virtual_servers:
  - name: web
    address: ${VIP}
    port: ${PORT}
    scheduler: rr
    forwarding: dr
    # Checked every half second; two failed checks take a real server out, one success brings it back.
    interval: 0.5
    timeout: 1
    fall: 2
    rise: 1
    real_servers:
${o.realServers.map((a) => `      - address: ${a}\n        checks: [{ type: http, path: / }]`).join('\n')}
# lvsd's own sync channel (docs/sync.md): the active director sends every new connection at once,
# authenticated with the shared key; a returning director gets the whole table before its election.
sync:
  interface: eth0
  vrrp_instance: VI_WEB
  sync_id: ${VRID}
  channel: lvsd
  key_file: ${o.keyFile}
`;
}

/** A director: its namespace and the lvsd daemon running there. */
export class Director {
  proc: ChildProcess | undefined;
  readonly log: LogLine[] = [];
  private waiters: Array<() => void> = [];

  constructor(
    readonly label: string,
    public ns: Netns,
    readonly address: string,
    readonly priority: number,
    readonly configFile: string,
  ) {}

  /** `lvsd run` in the director's namespace; its log lines are kept for wait(). */
  start(): void {
    const p = this.ns.spawn([process.execPath, lvsdBin, 'run', '-c', this.configFile]);
    this.proc = p;
    p.on('exit', () => {
      for (const w of this.waiters.splice(0)) w();
    });
    const take = (line: string) => {
      try {
        const o = JSON.parse(line) as Omit<LogLine, 'time'> & { time: string | number };
        // lvsd logs ISO times (src/cli/run.ts); the guest has one clock, so they compare with Date.now().
        if (typeof o.msg === 'string') this.log.push({ ...o, time: typeof o.time === 'string' ? Date.parse(o.time) : o.time } as LogLine);
      } catch {
        this.log.push({ time: Date.now(), msg: line, level: 'error' });
      }
      for (const w of this.waiters.splice(0)) w();
    };
    createInterface({ input: p.stdout! }).on('line', take);
    createInterface({ input: p.stderr! }).on('line', take);
  }

  /** lvsd has exited (a crash of ours, or its own failure: see the last log lines). */
  get exited(): boolean {
    return this.proc !== undefined && (this.proc.exitCode !== null || this.proc.signalCode !== null);
  }

  /** The first log line from index `from` on that matches, or undefined after `ms` or once lvsd exited. */
  async wait(pred: (l: LogLine) => boolean, ms: number, from = 0): Promise<LogLine | undefined> {
    const end = Date.now() + ms;
    for (;;) {
      for (; from < this.log.length; from++) if (pred(this.log[from]!)) return this.log[from];
      if (Date.now() > end || this.exited) return undefined;
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 200);
      });
    }
  }

  /** `lvsd ipvs show` in this director's namespace (the kernel's table, ipvsadm -Ln format). */
  async ipvsShow(): Promise<string> {
    return (await this.ns.exec([process.execPath, lvsdBin, 'ipvs', 'show'], { timeoutMs: 60_000, via: 'nsenter' })).stdout.trimEnd();
  }

  /** Which of these client ports have an entry in this director's kernel connection table (ipvsadm -Lnc). */
  async knows(clientPorts: readonly number[]): Promise<Set<number>> {
    const seen = await this.entries();
    return new Set(clientPorts.filter((p) => seen.has(p)));
  }

  /** The kernel's entries for the client's connections to the VIP (ipvsadm -Lnc): client port → state and real server. */
  async entries(): Promise<Map<number, { state: string; dest: string }>> {
    const out = (await this.ns.exec(['ipvsadm', '-Lnc'], { via: 'nsenter' })).stdout;
    const m = new Map<number, { state: string; dest: string }>();
    for (const e of out.matchAll(/\s(\S+)\s+192\.0\.2\.50:(\d+)\s+192\.0\.2\.100:80\s+(\S+):\d+/g)) m.set(Number(e[2]), { state: e[1]!, dest: e[3]! });
    return m;
  }

  /** The real servers (addresses) of the VIP's virtual server in this director's kernel table now (ipvsadm -Ln). */
  async kernelRealServers(): Promise<string[]> {
    const out = (await this.ns.exec(['ipvsadm', '-Ln', '-t', `${VIP}:${PORT}`], { via: 'nsenter', check: false })).stdout;
    return [...out.matchAll(/->\s+(\d+\.\d+\.\d+\.\d+):\d+/g)].map((e) => e[1]!);
  }
}

/** The client program in the client namespace, one JSON command → one JSON reply. */
export class Client {
  private replies: unknown[] = [];
  private waiters: Array<() => void> = [];

  constructor(private readonly proc: ChildProcess) {
    createInterface({ input: proc.stdout! }).on('line', (l) => {
      try {
        this.replies.push(JSON.parse(l));
      } catch {
        return;
      }
      for (const w of this.waiters.splice(0)) w();
    });
  }

  static start(ns: Netns): Client {
    return new Client(ns.spawn([process.execPath, clientScript, VIP, String(PORT)], { stdio: ['pipe', 'pipe', 'inherit'] }));
  }

  async next<T>(ms = 60_000): Promise<T> {
    const end = Date.now() + ms;
    while (this.replies.length === 0) {
      if (Date.now() > end || this.proc.exitCode !== null) throw new Error('the demo client stopped answering');
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 200);
      });
    }
    return this.replies.shift() as T;
  }

  async ask<T>(cmd: Record<string, unknown>, ms = 60_000): Promise<T> {
    this.proc.stdin!.write(`${JSON.stringify(cmd)}\n`);
    return this.next<T>(ms);
  }
}

export interface DemoCluster {
  readonly topo: Topology;
  readonly lab: LvsLab;
  readonly a: Director;
  readonly b: Director;
  readonly client: Client;
  /** A fresh namespace for director-a after its crash: a rebooted host, with empty kernel tables. */
  reboot(d: Director): Promise<void>;
}

export async function buildCluster(topo: Topology, work: string): Promise<DemoCluster> {
  const lab = await buildDrLab(topo, { realServers: 3, directors: 2, vipOnDirector: false, keepAlive: true });
  const rips = lab.realServers.map((r) => r.address);
  // The sync channel's shared key: fresh for every demo, readable by root only.
  const keyFile = join(work, 'sync.key');
  writeFileSync(keyFile, `hex:${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
  const mk = (label: string, ns: Netns, address: string, priority: number) => {
    const dir = join(work, label);
    mkdirSync(dir, { recursive: true });
    const file = join(dir, 'lvsd.yaml');
    writeFileSync(file, directorConfig({ label, priority, stateDir: dir, realServers: rips, keyFile }));
    return new Director(label, ns, address, priority, file);
  };
  const a = mk('director-a', lab.directors[0]!, '192.0.2.1', 150);
  const b = mk('director-b', lab.directors[1]!, '192.0.2.2', 100);
  for (const d of [a, b]) await tuneDirector(d.ns);
  const client = Client.start(lab.client);
  await client.next(60_000);
  let boots = 0;
  return {
    topo,
    lab,
    a,
    b,
    client,
    async reboot(d) {
      const ns = await topo.netns(`${d.ns.short}r${++boots}`);
      await topo.link(ns, 'eth0', 'lan');
      await ns.ipBatch([addrLine('eth0', `${d.address}/24`)]);
      await tuneDirector(ns);
      d.ns = ns;
    },
  };
}

/**
 * A director's kernel settings. DR: the director never routes replies (ip_forward 0).
 * expire_nodest_conn=1: a connection whose real server was removed is dropped at its next packet
 * instead of black-holing the client until it times out, so the client's retried SYN is scheduled
 * to a live real server (Documentation/networking/ipvs-sysctl.rst).
 */
async function tuneDirector(ns: Netns): Promise<void> {
  await ns.sysctls({ 'net.ipv4.ip_forward': '0', 'net.ipv4.vs.expire_nodest_conn': '1' });
}
