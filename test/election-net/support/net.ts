/**
 * Small network-namespace lab for the election tests: a "switch" namespace holding a bridge (br0;
 * `segment()` adds more), and member namespaces each connected to it by a veth pair (eth0 inside
 * the member; `attach()` adds further interfaces on other segments). Nothing is created
 * in the host's own namespace except the namespaces themselves; names carry a per-process prefix so
 * parallel runs never collide; destroy() kills what it spawned (by PID) and deletes the namespaces.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';

export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

function run(cmd: string, args: string[], input?: string): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], ...(input !== undefined ? { input } : {}) });
}

export interface Spawned {
  readonly child: ChildProcess;
  output(): string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export class NetLab {
  readonly prefix: string;
  readonly sw: string;
  private readonly members: string[] = [];
  private readonly procs: ChildProcess[] = [];
  private n = 0;

  constructor(tag = 'e') {
    this.prefix = `lv${process.pid % 100000}${tag}`;
    this.sw = `${this.prefix}sw`;
    run('ip', ['netns', 'add', this.sw]);
    this.exec(this.sw, ['ip', 'link', 'add', 'br0', 'type', 'bridge', 'forward_delay', '0']);
    this.exec(this.sw, ['ip', 'link', 'set', 'br0', 'up']);
  }

  /** Another segment: a bridge of that name in the switch namespace. */
  segment(bridge: string): void {
    this.exec(this.sw, ['ip', 'link', 'add', bridge, 'type', 'bridge', 'forward_delay', '0']);
    this.exec(this.sw, ['ip', 'link', 'set', bridge, 'up']);
  }

  /** Create a member namespace with eth0 on a bridge (default br0), addresses given in CIDR form. */
  member(name: string, addrs: string[], bridge = 'br0'): string {
    const ns = `${this.prefix}${name}`;
    run('ip', ['netns', 'add', ns]);
    this.members.push(ns);
    this.exec(ns, ['ip', 'link', 'set', 'lo', 'up']);
    this.attach(ns, 'eth0', bridge, addrs);
    return ns;
  }

  /** One more interface `ifname` in a member namespace, on the segment `bridge`. */
  attach(ns: string, ifname: string, bridge: string, addrs: string[]): void {
    const peer = `p${this.n++}`;
    this.exec(this.sw, ['ip', 'link', 'add', peer, 'type', 'veth', 'peer', 'name', ifname, 'netns', ns]);
    this.exec(this.sw, ['ip', 'link', 'set', peer, 'master', bridge, 'up']);
    // No duplicate address detection: the link-local address (VRRPv3 IPv6 source) is usable at once.
    this.exec(ns, ['sysctl', '-qw', `net.ipv6.conf.${ifname}.accept_dad=0`]);
    for (const a of addrs) this.exec(ns, ['ip', 'addr', 'add', a, 'dev', ifname, ...(a.includes(':') ? ['nodad'] : [])]);
    this.exec(ns, ['ip', 'link', 'set', ifname, 'up']);
  }

  exec(ns: string, argv: string[], input?: string): string {
    return run('ip', ['netns', 'exec', ns, ...argv], input);
  }

  /** exec, returning '' instead of throwing. */
  tryExec(ns: string, argv: string[]): string {
    try {
      return this.exec(ns, argv);
    } catch {
      return '';
    }
  }

  spawn(ns: string, argv: string[], env?: NodeJS.ProcessEnv): Spawned {
    const child = spawn('ip', ['netns', 'exec', ns, ...argv], { stdio: ['ignore', 'pipe', 'pipe'], env: env ?? process.env });
    this.procs.push(child);
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.exitCode !== null ? resolve({ code: child.exitCode, signal: null }) : child.on('exit', (code, signal) => resolve({ code, signal })),
    );
    return { child, output: () => out, exited };
  }

  /** Addresses (without prefix) on an interface (default eth0) of a namespace. */
  addrs(ns: string, dev = 'eth0'): string[] {
    const j = JSON.parse(this.tryExec(ns, ['ip', '-j', 'addr', 'show', 'dev', dev]) || '[]') as Array<{ addr_info?: Array<{ local: string }> }>;
    return (j[0]?.addr_info ?? []).map((a) => a.local);
  }

  mac(ns: string, dev = 'eth0'): string {
    const j = JSON.parse(this.exec(ns, ['ip', '-j', 'link', 'show', 'dev', dev])) as Array<{ address: string }>;
    return j[0]!.address;
  }

  /** The client's neighbour entry for an address: MAC or undefined. */
  neigh(ns: string, addr: string, dev = 'eth0'): string | undefined {
    const j = JSON.parse(this.tryExec(ns, ['ip', '-j', 'neigh', 'show', 'to', addr, 'dev', dev]) || '[]') as Array<{ lladdr?: string; state?: string[] }>;
    return j[0]?.lladdr;
  }

  /**
   * A host crash: freeze every process in the namespace (SIGSTOP) before killing them all, so no
   * child can react to its parent's death (keepalived's VRRP child would send a priority-0 advert).
   */
  crash(ns: string): void {
    const pids = this.pids(ns);
    for (const sig of ['SIGSTOP', 'SIGKILL'] as const) {
      for (const pid of pids) {
        try {
          process.kill(pid, sig);
        } catch {
          /* gone */
        }
      }
    }
  }

  /** PIDs of the processes in a namespace. */
  pids(ns: string): number[] {
    try {
      return run('ip', ['netns', 'pids', ns]).split(/\s+/).filter(Boolean).map(Number);
    } catch {
      return [];
    }
  }

  /** Make `ns` resolve `addr` (one UDP datagram to the discard port), for neighbour-table tests. */
  poke(ns: string, addr: string): void {
    const fam = addr.includes(':') ? 'udp6' : 'udp4';
    this.exec(ns, [process.execPath, '-e', `const s=require('dgram').createSocket('${fam}');s.send('x',9,'${addr}',()=>setTimeout(()=>s.close(),200))`]);
  }

  async destroy(): Promise<void> {
    for (const p of this.procs) {
      if (p.exitCode === null && p.signalCode === null && p.pid) {
        try {
          process.kill(p.pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    }
    // `ip netns exec` execs the command, so the PID above is the program itself; give the kernel a moment.
    await new Promise((r) => setTimeout(r, 50));
    for (const ns of [...this.members, this.sw]) {
      try {
        // Kill anything left inside (children of what we spawned), by PID, then delete.
        const pids = run('ip', ['netns', 'pids', ns]).split(/\s+/).filter(Boolean);
        for (const pid of pids) {
          try {
            process.kill(Number(pid), 'SIGKILL');
          } catch {
            /* gone */
          }
        }
        run('ip', ['netns', 'del', ns]);
      } catch {
        /* already gone */
      }
    }
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function until<T>(fn: () => T | undefined | null | false, what: string, timeoutMs = 10000, everyMs = 20): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined && v !== null && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}
