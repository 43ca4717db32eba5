/**
 * Small network-namespace lab for the election tests: a "switch" namespace holding a bridge, and
 * member namespaces each connected to it by a veth pair (eth0 inside the member). Nothing is created
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

  /** Create a member namespace with eth0 on the bridge, addresses given in CIDR form. */
  member(name: string, addrs: string[]): string {
    const ns = `${this.prefix}${name}`;
    run('ip', ['netns', 'add', ns]);
    this.members.push(ns);
    const peer = `p${this.n++}`;
    this.exec(this.sw, ['ip', 'link', 'add', peer, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    this.exec(this.sw, ['ip', 'link', 'set', peer, 'master', 'br0', 'up']);
    this.exec(ns, ['ip', 'link', 'set', 'lo', 'up']);
    // No duplicate address detection: the link-local address (VRRPv3 IPv6 source) is usable at once.
    this.exec(ns, ['sysctl', '-qw', 'net.ipv6.conf.eth0.accept_dad=0']);
    for (const a of addrs) this.exec(ns, ['ip', 'addr', 'add', a, 'dev', 'eth0', ...(a.includes(':') ? ['nodad'] : [])]);
    this.exec(ns, ['ip', 'link', 'set', 'eth0', 'up']);
    return ns;
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

  /** Addresses (without prefix) on eth0 of a namespace. */
  addrs(ns: string): string[] {
    const j = JSON.parse(this.tryExec(ns, ['ip', '-j', 'addr', 'show', 'dev', 'eth0']) || '[]') as Array<{ addr_info?: Array<{ local: string }> }>;
    return (j[0]?.addr_info ?? []).map((a) => a.local);
  }

  mac(ns: string): string {
    const j = JSON.parse(this.exec(ns, ['ip', '-j', 'link', 'show', 'dev', 'eth0'])) as Array<{ address: string }>;
    return j[0]!.address;
  }

  /** The client's neighbour entry for an address: MAC or undefined. */
  neigh(ns: string, addr: string): string | undefined {
    const j = JSON.parse(this.tryExec(ns, ['ip', '-j', 'neigh', 'show', 'to', addr, 'dev', 'eth0']) || '[]') as Array<{ lladdr?: string; state?: string[] }>;
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
