/**
 * Network-namespace toolkit for real-network tests, on the host and inside the UML lab guest.
 *
 * A `Topology` owns everything it creates: namespaces (named `<prefix><short>`), bridges (kept in a
 * dedicated "switch" namespace so the host's root namespace is never touched), veth pairs (created
 * directly inside their namespaces, so no interface ever appears in the root namespace, and deleting a
 * namespace deletes its end of the pair), and the processes spawned into namespaces (tracked and
 * killed by PID, never by name). `destroy()` removes all of it, is idempotent, and also runs
 * synchronously when the process exits or gets SIGINT/SIGTERM, so an interrupted test leaves nothing
 * behind.
 *
 * Everything goes through iproute2 (`ip -n NS ...`, `ip netns exec NS ...`): the same binary works on
 * the host and in the guest (whose root file system is the host's), and `ip netns exec` execs the
 * command after setns(2), so the PID we hold is the program itself.
 */
import { spawn, execFileSync, type ChildProcess, type StdioOptions } from 'node:child_process';
import { readdirSync, readlinkSync, statSync } from 'node:fs';
import { LvsdError } from '../core/errors.js';

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  /** Kill the command (SIGKILL, by PID) after this long; default 30 s. */
  timeoutMs?: number;
  /** Written to the command's stdin. */
  input?: string;
  /** Throw (code LAB_EXEC) when the exit status is not 0; default true. */
  check?: boolean;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export interface SpawnOptions {
  /** Default ['ignore', 'pipe', 'pipe']. */
  stdio?: StdioOptions;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/** A process started by Netns.start(): its stdout and stderr are collected (interleaved). */
export interface Running {
  readonly child: ChildProcess;
  output(): string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Linux limits interface names to IFNAMSIZ-1 = 15 characters. */
export const IFNAMSIZ_MAX = 15;

/** Run a program (no shell) and collect its output; never rejects unless `check` and status != 0. */
export function run(cmd: string, argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const check = opts.check ?? true;
  return new Promise((resolve, reject) => {
    let child: ChildProcess;
    try {
      child = spawn(cmd, argv, {
        stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
        env: opts.env ?? process.env,
        ...(opts.cwd ? { cwd: opts.cwd } : {}),
      });
    } catch (e) {
      reject(new LvsdError('LAB_EXEC', `cannot start ${cmd}: ${String(e)}`, { cause: e }));
      return;
    }
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on('data', (d: Buffer) => out.push(d));
    child.stderr!.on('data', (d: Buffer) => err.push(d));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      if (child.pid) killPid(child.pid, 'SIGKILL');
    }, timeoutMs);
    if (opts.input !== undefined) {
      child.stdin!.on('error', () => undefined); // EPIPE when the command does not read its input
      child.stdin!.end(opts.input);
    }
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new LvsdError('LAB_EXEC', `cannot run ${cmd}: ${e.message}`, { cause: e }));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const r: ExecResult = {
        code: code ?? (signal ? 128 + signalNumber(signal) : 1),
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      };
      if (timedOut) r.stderr += `\n(killed after ${timeoutMs} ms)`;
      if (check && r.code !== 0) {
        const shown = [cmd, ...argv].join(' ');
        reject(new LvsdError('LAB_EXEC', `"${shown}" exited with ${r.code}${timedOut ? ' (timed out)' : ''}: ${r.stderr.trim() || r.stdout.trim()}`));
        return;
      }
      resolve(r);
    });
  });
}

function signalNumber(sig: NodeJS.Signals): number {
  const n: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15, SIGABRT: 6, SIGSEGV: 11, SIGPIPE: 13 };
  return n[sig] ?? 0;
}

function killPid(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    /* already gone */
  }
}

function alive(c: ChildProcess): boolean {
  return c.exitCode === null && c.signalCode === null && c.pid !== undefined;
}

/** One network namespace of a Topology. */
export class Netns {
  /** Processes spawned into this namespace (killed by PID on destroy). */
  readonly procs: ChildProcess[] = [];
  /**
   * lo is brought up lazily, together with the first ip command (or before the first exec/spawn):
   * every `ip` process costs ~0.3 s inside the UML guest (exec and dynamic linking are slow there).
   */
  private loPending = true;

  constructor(
    /** Full namespace name (what `ip netns list` shows). */
    readonly name: string,
    /** The short name given to Topology.netns(). */
    readonly short: string,
    opts: { loUp?: boolean } = {},
  ) {
    if (opts.loUp === false) this.loPending = false;
  }

  /** `ip netns exec NAME` (full semantics: own /sys view), or `nsenter --net` (faster, only the net ns). */
  private wrap(argv: readonly string[], via: 'ip' | 'nsenter' = 'ip'): string[] {
    return via === 'nsenter' ? ['nsenter', `--net=/run/netns/${this.name}`, '--', ...argv] : ['ip', 'netns', 'exec', this.name, ...argv];
  }

  private async ensureLo(): Promise<void> {
    if (!this.loPending) return;
    this.loPending = false;
    await run('ip', ['-n', this.name, 'link', 'set', 'lo', 'up']);
  }

  /**
   * Run a command inside the namespace. Throws (code LAB_EXEC) on status != 0 unless check: false.
   * `via: 'nsenter'` enters only the network namespace (cheaper in the guest; /sys still shows the
   * root namespace's devices); default is `ip netns exec`.
   */
  async exec(argv: readonly string[], opts: ExecOptions & { via?: 'ip' | 'nsenter' } = {}): Promise<ExecResult> {
    await this.ensureLo();
    const [cmd, ...rest] = this.wrap(argv, opts.via);
    return run(cmd!, rest, opts);
  }

  /** `ip -n NAME args...` (iproute2 global options like -j, -6, -s go first in args). */
  async ip(...args: string[]): Promise<ExecResult> {
    await this.ensureLo();
    return run('ip', ['-n', this.name, ...args]);
  }

  /**
   * Several ip commands in ONE process (`ip -n NAME -batch -`), e.g. ['addr add 192.0.2.1/24 dev eth0',
   * 'route add default via 192.0.2.254']. Stops at the first failing line (throws).
   */
  async ipBatch(lines: readonly string[]): Promise<ExecResult> {
    for (const l of lines) if (l.includes('\n')) throw new LvsdError('LAB_EXEC', `bad ip batch line "${l}"`);
    const all = this.loPending ? ['link set lo up', ...lines] : [...lines];
    this.loPending = false;
    return run('ip', ['-n', this.name, '-batch', '-'], { input: all.join('\n') + '\n' });
  }

  /** Start a long-running process in the namespace; it is tracked and killed by PID on destroy(). */
  spawn(argv: readonly string[], opts: SpawnOptions & { via?: 'ip' | 'nsenter' } = {}): ChildProcess {
    if (this.loPending) {
      this.loPending = false;
      execFileSync('ip', ['-n', this.name, 'link', 'set', 'lo', 'up'], { stdio: 'ignore' });
    }
    const [cmd, ...rest] = this.wrap(argv, opts.via);
    const child = spawn(cmd!, rest, {
      stdio: opts.stdio ?? ['ignore', 'pipe', 'pipe'],
      env: opts.env ?? process.env,
      ...(opts.cwd ? { cwd: opts.cwd } : {}),
    });
    child.on('error', () => undefined); // reported through exit; never an unhandled 'error'
    this.procs.push(child);
    return child;
  }

  /** spawn() with stdout and stderr collected for output(), and a promise of the exit. */
  start(argv: readonly string[], opts: Omit<SpawnOptions, 'stdio'> & { via?: 'ip' | 'nsenter' } = {}): Running {
    const child = this.spawn(argv, opts);
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
    return { child, output: () => out, exited };
  }

  /**
   * A host crash: every process in the namespace (ours or not) is frozen (SIGSTOP) before any is
   * killed (SIGKILL), so none can react to another's death (keepalived's VRRP child would send a
   * priority-0 advert when its parent dies). By PID.
   */
  crash(pids: readonly number[] = pidsIn([this.name])): void {
    this.freeze(pids);
    for (const pid of pids) killPid(pid, 'SIGKILL');
  }

  /**
   * Stop every process of the namespace (SIGSTOP, by PID) without killing it: from outside, a host
   * that crashed — it sends nothing more — but without the CPU its teardown costs (exiting a node
   * process is ~20 ms of kernel time), for when that cost would land in a measurement. crash() later.
   */
  freeze(pids: readonly number[] = pidsIn([this.name])): void {
    for (const pid of pids) killPid(pid, 'SIGSTOP');
  }

  /** Add an address (CIDR) to a device; IPv6 addresses skip duplicate-address detection. */
  async addr(dev: string, cidr: string): Promise<void> {
    await this.ipBatch([addrLine(dev, cidr)]);
  }

  async up(dev: string): Promise<void> {
    await this.ipBatch([`link set ${dev} up`]);
  }

  /** `ip route add SPEC` (or `ip -6 route add` when the spec holds an IPv6 address), e.g. "default via 192.0.2.1". */
  async route(spec: string): Promise<void> {
    await this.ipBatch([routeLine(spec)]);
  }

  /** Set a sysctl inside the namespace, e.g. sysctl('net.ipv4.ip_forward', '1'). */
  async sysctl(key: string, value: string): Promise<void> {
    await this.sysctls({ [key]: value });
  }

  /**
   * Set several sysctls in one process. /proc/sys/net is resolved in the writer's network namespace,
   * so entering only the net namespace (nsenter) is enough.
   */
  async sysctls(kv: Record<string, string>): Promise<void> {
    const args: string[] = [];
    for (const [k, v] of Object.entries(kv)) {
      if (!/^[A-Za-z0-9_.\/-]+$/.test(k) || /[\s]/.test(v)) throw new LvsdError('LAB_EXEC', `bad sysctl ${k}=${v}`);
      args.push(`${k}=${v}`);
    }
    if (args.length) await this.exec(['sysctl', '-q', '-w', ...args], { via: 'nsenter' });
  }

  /** Addresses (without prefix length) on a device; [] when there is no such device. */
  async addrs(dev = 'eth0'): Promise<string[]> {
    await this.ensureLo();
    const r = await run('ip', ['-n', this.name, '-j', 'addr', 'show', 'dev', dev], { check: false });
    if (r.code !== 0) return [];
    const j = JSON.parse(r.stdout || '[]') as Array<{ addr_info?: Array<{ local: string }> }>;
    return (j[0]?.addr_info ?? []).map((a) => a.local);
  }

  /** A device's MAC address. */
  async mac(dev = 'eth0'): Promise<string> {
    const r = await this.ip('-j', 'link', 'show', 'dev', dev);
    return (JSON.parse(r.stdout) as Array<{ address: string }>)[0]!.address;
  }

  /** The link-layer address of this namespace's neighbour entry for `addr` on `dev`, if any. */
  async neigh(addr: string, dev = 'eth0'): Promise<string | undefined> {
    await this.ensureLo();
    const r = await run('ip', ['-n', this.name, '-j', 'neigh', 'show', 'to', addr, 'dev', dev], { check: false });
    if (r.code !== 0) return undefined;
    return (JSON.parse(r.stdout || '[]') as Array<{ lladdr?: string }>)[0]?.lladdr;
  }

  /** Make the namespace resolve `addr` (one UDP datagram to the discard port), for neighbour-table tests. */
  async poke(addr: string): Promise<void> {
    const fam = addr.includes(':') ? 'udp6' : 'udp4';
    await this.exec([process.execPath, '-e', `const s=require('dgram').createSocket('${fam}');s.send('x',9,'${addr}',()=>setTimeout(()=>s.close(),200))`]);
  }

  /** Names of the network devices in the namespace. */
  async links(): Promise<string[]> {
    const r = await this.ip('-j', 'link', 'show');
    return (JSON.parse(r.stdout || '[]') as Array<{ ifname: string }>).map((l) => l.ifname);
  }
}

/** ip-batch line adding an address (IPv6 without duplicate-address detection). */
export function addrLine(dev: string, cidr: string): string {
  return `addr add ${cidr} dev ${dev}${cidr.includes(':') ? ' nodad' : ''}`;
}

/** ip-batch line adding a route. */
export function routeLine(spec: string): string {
  // Batch lines take no global options (-6): the family comes from the addresses; "default" alone
  // would mean IPv4, so an IPv6 default is spelled ::/0.
  const words = spec.trim().split(/\s+/);
  if (words[0] === 'default' && words.some((w) => w.includes(':'))) words[0] = '::/0';
  return `route add ${words.join(' ')}`;
}

const live = new Set<Topology>();
let hooked = false;
let counter = 0;

function onExit(): void {
  for (const t of [...live]) t.destroySync();
}
function onSignal(sig: NodeJS.Signals): void {
  onExit();
  process.removeListener(sig, onSignal);
  // Someone else also handles this signal: let them decide; otherwise die of it as we would have.
  if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
}
function hook(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', onExit);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}
function unhookIfIdle(): void {
  if (!hooked || live.size > 0) return;
  hooked = false;
  process.removeListener('exit', onExit);
  process.removeListener('SIGINT', onSignal);
  process.removeListener('SIGTERM', onSignal);
}

/** A set of namespaces, bridges and links that is torn down as a whole. */
export class Topology {
  readonly prefix: string;
  private readonly spaces = new Map<string, Netns>();
  /** bridge device name → the namespace that holds it */
  private readonly bridges = new Map<string, Netns>();
  private portN = 0;
  /** "<ns name>/<ifname>" of veth ends made so far */
  private readonly ports = new Set<string>();
  private destroyed = false;
  /** Teardown finished (namespaces deleted, hooks released). */
  private gone = false;

  /**
   * @param prefix namespace-name prefix; default `lv<pid mod 10000><n>` (n counts Topologies in this
   * process), unique among concurrently running test processes.
   */
  constructor(prefix?: string) {
    this.prefix = prefix ?? `lv${process.pid % 10000}${(counter++).toString(36)}`;
    if (!/^[A-Za-z0-9_-]{1,40}$/.test(this.prefix)) throw new LvsdError('LAB_EXEC', `bad namespace prefix "${this.prefix}"`);
    live.add(this);
    hook();
  }

  /** Namespaces created so far. */
  get namespaces(): Netns[] {
    return [...this.spaces.values()];
  }

  /** Create a namespace `<prefix><name>`; lo comes up with its first ip command or exec (see Netns). */
  async netns(name: string): Promise<Netns> {
    return (await this.netnsMany([name]))[0]!;
  }

  /** Create several namespaces with one `ip` process. */
  async netnsMany(names: readonly string[]): Promise<Netns[]> {
    if (this.destroyed) throw new LvsdError('LAB_EXEC', 'topology already destroyed');
    const fresh: string[] = [];
    for (const name of names) {
      if (!/^[A-Za-z0-9_-]{1,20}$/.test(name)) throw new LvsdError('LAB_EXEC', `bad namespace name "${name}"`);
      if (!this.spaces.has(name) && !fresh.includes(name)) fresh.push(name);
    }
    if (fresh.length) {
      const r = await run('ip', ['-batch', '-'], { input: fresh.map((n) => `netns add ${this.prefix}${n}\n`).join(''), check: false });
      // Track whatever was created, even when a later line failed, so destroy() removes it.
      const present = new Set(await listNetns());
      for (const n of fresh) if (present.has(`${this.prefix}${n}`)) this.spaces.set(n, new Netns(`${this.prefix}${n}`, n));
      if (r.code !== 0) throw new LvsdError('LAB_EXEC', `creating namespaces ${fresh.join(', ')} failed: ${r.stderr.trim()}`);
    }
    return names.map((n) => this.spaces.get(n)!);
  }

  /**
   * Create a bridge (forward delay 0, so ports forward at once) and return its device name. Without
   * `inNs` it goes into this topology's switch namespace `<prefix>sw`, never into the root namespace.
   */
  async bridge(name: string, inNs?: Netns): Promise<string> {
    if (name.length > IFNAMSIZ_MAX || !/^[A-Za-z0-9_-]+$/.test(name)) throw new LvsdError('LAB_EXEC', `bad bridge name "${name}" (<= ${IFNAMSIZ_MAX} chars)`);
    if (this.bridges.has(name)) throw new LvsdError('LAB_EXEC', `bridge "${name}" exists already in this topology`);
    const ns = inNs ?? (await this.netns('sw'));
    await ns.ipBatch([`link add ${name} type bridge forward_delay 0`, `link set ${name} up`]);
    this.bridges.set(name, ns);
    return name;
  }

  /**
   * A namespace `name` on a segment: interface `ifname` (default eth0) on `bridge` (default br0),
   * with `addrs` (CIDR), as attach() makes it.
   */
  async member(name: string, addrs: readonly string[], opts: { bridge?: string; ifname?: string } = {}): Promise<Netns> {
    const ns = await this.netns(name);
    await this.attach(ns, opts.ifname ?? 'eth0', opts.bridge ?? 'br0', addrs);
    return ns;
  }

  /**
   * A namespace `name` whose eth0 is a macvlan (bridge mode) of this host's interface `parent`, with
   * `addr` (CIDR): it sits on the parent's segment beside the host's own address. A guest of a lab
   * pair keeps its eth0 address this way to reach the other guests (moving eth0 itself into a
   * namespace would take the address with it).
   */
  async macvlanMember(name: string, addr: string, parent = 'eth0'): Promise<Netns> {
    const ns = await this.netns(name);
    await run('ip', ['link', 'add', `mv-${name}`, 'link', parent, 'type', 'macvlan', 'mode', 'bridge']);
    await run('ip', ['link', 'set', `mv-${name}`, 'netns', ns.name, 'name', 'eth0']);
    await ns.ipBatch(['link set eth0 up', `addr add ${addr} dev eth0`]);
    return ns;
  }

  /**
   * Interface `ifname` of `ns` on the segment `bridge` (a bridge in the switch namespace, made on
   * first use), with `addrs` (CIDR) on it. IPv6 duplicate-address detection is off for it (set as the
   * namespace's default before the interface arrives), so its link-local address is usable at once.
   */
  async attach(ns: Netns, ifname: string, bridge: string, addrs: readonly string[]): Promise<void> {
    if (!this.bridges.has(bridge)) await this.bridge(bridge);
    await ns.sysctl('net.ipv6.conf.default.accept_dad', '0');
    await this.link(ns, ifname, bridge);
    if (addrs.length) await ns.ipBatch(addrs.map((a) => addrLine(ifname, a)));
  }

  /** The namespace that holds a bridge made by bridge(). */
  bridgeNs(bridge: string): Netns | undefined {
    return this.bridges.get(bridge);
  }

  /**
   * A veth pair: `aIf` in `a`, and either `bIf` in namespace `b`, or (b = a bridge name) a port on
   * that bridge (named `<a.short>-<aIf>` when that fits). Both ends are up. One `ip` process: the pair
   * is made in the peer's namespace, and the `a` end is moved, renamed and set up in one step, so no
   * interface ever appears in the root namespace.
   */
  async link(a: Netns, aIf: string, b: Netns | string, bIf?: string): Promise<void> {
    checkIf(aIf);
    let peerNs: Netns;
    let peerIf: string;
    let bridge: string | undefined;
    if (typeof b === 'string') {
      const brNs = this.bridges.get(b);
      if (!brNs) throw new LvsdError('LAB_EXEC', `unknown bridge "${b}" (create it with bridge())`);
      peerNs = brNs;
      bridge = b;
      // Port names only need to be unique inside the switch namespace.
      const readable = `${a.short}-${aIf}`;
      peerIf = bIf ?? (readable.length <= IFNAMSIZ_MAX && !this.ports.has(`${brNs.name}/${readable}`) ? readable : `p${this.portN++}`);
    } else {
      peerNs = b;
      peerIf = bIf ?? aIf;
    }
    checkIf(peerIf);
    if (peerNs === a) throw new LvsdError('LAB_EXEC', `both ends of the veth would be in ${a.name}`);
    const tmp = `lvt${this.portN++}`;
    await peerNs.ipBatch([
      `link add ${peerIf} type veth peer name ${tmp}`,
      `link set ${peerIf} ${bridge ? `master ${bridge} ` : ''}up`,
      `link set ${tmp} netns ${a.name} name ${aIf} up`,
    ]);
    this.ports.add(`${peerNs.name}/${peerIf}`);
  }

  /** Kill every spawned process (by PID), delete every namespace. Idempotent. */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    const procs = this.namespaces.flatMap((n) => n.procs).filter(alive);
    for (const p of procs) killPid(p.pid!, 'SIGTERM');
    // Up to 1 s for a clean exit, then SIGKILL.
    const deadline = Date.now() + 1000;
    while (procs.some(alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    if (this.gone) return; // a signal's synchronous teardown finished it meanwhile
    this.teardown();
    // One ip process for all deletions (each costs ~0.3 s in the guest).
    const names = this.namespaces.reverse().map((n) => n.name);
    if (names.length) await run('ip', ['-force', '-batch', '-'], { input: names.map((n) => `netns del ${n}\n`).join(''), check: false });
    this.forget();
  }

  /**
   * Synchronous teardown for process-exit and signal hooks. It also runs when an async destroy() has
   * begun but not finished (e.g. a signal during its 1 s grace wait): only a finished one skips it.
   */
  destroySync(): void {
    if (this.gone) return;
    this.destroyed = true;
    this.teardown();
    const names = this.namespaces.reverse().map((n) => n.name);
    try {
      if (names.length) execFileSync('ip', ['-force', '-batch', '-'], { input: names.map((n) => `netns del ${n}\n`).join(''), stdio: ['pipe', 'ignore', 'ignore'] });
    } catch {
      /* gone */
    }
    this.forget();
  }

  /** SIGKILL what we spawned and every other process still inside our namespaces (by PID). */
  private teardown(): void {
    for (const ns of this.namespaces) for (const p of ns.procs) if (alive(p)) killPid(p.pid!, 'SIGKILL');
    for (const pid of pidsIn(this.namespaces.map((n) => n.name))) killPid(pid, 'SIGKILL');
  }

  private forget(): void {
    this.gone = true;
    this.spaces.clear();
    this.bridges.clear();
    live.delete(this);
    unhookIfIdle();
  }
}

/**
 * PIDs of processes whose network namespace is one of the named ones (what `ip netns pids` does,
 * for many namespaces at once and without a process): compare /proc/PID/ns/net with the inode of
 * /run/netns/NAME.
 */
export function pidsIn(names: readonly string[]): number[] {
  const inodes = new Set<string>();
  for (const n of names) {
    try {
      inodes.add(`net:[${statSync(`/run/netns/${n}`).ino}]`);
    } catch {
      /* not there */
    }
  }
  if (inodes.size === 0) return [];
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(e) || Number(e) === process.pid) continue;
    try {
      if (inodes.has(readlinkSync(`/proc/${e}/ns/net`))) out.push(Number(e));
    } catch {
      /* exited, or not ours to read */
    }
  }
  return out;
}

function checkIf(n: string): void {
  if (n.length === 0 || n.length > IFNAMSIZ_MAX || !/^[A-Za-z0-9_.-]+$/.test(n)) {
    throw new LvsdError('LAB_EXEC', `bad interface name "${n}" (1..${IFNAMSIZ_MAX} chars of [A-Za-z0-9_.-])`);
  }
}

/** Namespace names currently present (`ip netns list`). */
export async function listNetns(): Promise<string[]> {
  const r = await run('ip', ['netns', 'list'], { check: false });
  return r.stdout
    .split('\n')
    .map((l) => l.split(/\s+/)[0] ?? '')
    .filter(Boolean);
}

export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}
