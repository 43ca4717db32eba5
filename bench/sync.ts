/**
 * Connection sync, kernel channel vs lvsd channel, in one run on the real kernel (issue 18):
 *   bin/lvsd lab exec --mem 2048M -- node dist/bench/sync.js [--low-rate 10] [--low-seconds 10]
 *     [--high-rate 5000] [--high-seconds 4] [--inject-rate 5000] [--inject-seconds 4]
 *     [--resync 10000,100000] [--know-seconds 300] [--modes kernel,lvsd] [--prefill N] [--json FILE]
 *
 * Per mode, fresh namespaces on one bridge: directors a (192.0.2.2, priority 150: master) and b
 * (192.0.2.3), both `lvsd run` with `sync.channel` = the mode, a client c (192.0.2.50) and two real
 * servers (DR; they drop what reaches them: no VIP on lo). bench/support/sync-load.ts in c opens new
 * UDP "connections" to the VIP (3 datagrams each, from a fresh source port: the kernel's master
 * daemon sends a UDP connection at its 3rd packet) at a steady rate; this process reads b's kernel
 * table (/proc/<pid of b's lvsd>/net/ip_vs_conn) in a loop and notes when each sampled flow appears.
 *  - visibility: sent (generator's wall clock) → in b's table (same guest clock), p50/p95/max, at
 *    the low and the high rate; the achieved rate is printed (the generator is paced, not assumed).
 *    The bench sees b's table only when it reads it, so each flow is bracketed: visible at most at
 *    the end of the first read that shows it, at least at the start of the read before (which did
 *    not); both bounds and their midpoint are printed with the bench's own read period. Its pause
 *    between reads grows with the read (≤ a third of the guest CPU): b's table costs O(n²) to read.
 *  - stages (lvsd mode, means over the phase, from the daemons' metrics): a's read period (a new
 *    connection waits half of it on average), a's read, a's read start → b's hand-over to its
 *    kernel (lvsd_sync_staleness_seconds), and the rest (b's kernel install, scheduling);
 *  - injected load (lvsd mode): the same UDP connections, installed into a's kernel through its
 *    backup daemon on lo (sync-load.js inject-flows) instead of by packets: one sendto per ~10
 *    connections instead of 3 per connection, so the generator no longer takes the guest's CPU
 *    from the directors it measures. For the channel the event is the same (a new entry in a's
 *    table); the kernel channel cannot be measured this way (its master daemon sends only from
 *    the packet path, ip_vs_in → ip_vs_sync_conn);
 *  - CPU: utime+stime of a's and b's lvsd (/proc/<pid>/stat) over each phase's window (generation
 *    start to 1 s after its end), as % of one core;
 *  - full resync (lvsd mode; the kernel channel has none), for each size of --resync in turn: b
 *    "dies" (its namespace is deleted: a dead host's entries would otherwise stay in the connection
 *    hash the guest's namespaces share and slow every read of a's table), that many established TCP
 *    entries are installed in a's kernel (through its backup daemon on lo), the bench waits until
 *    a's lvsd knows them (has sent them all: the fill goes to its kernel stream port too, as the
 *    kernel streams connections made by traffic; or a read begun after the fill has completed; at
 *    most --know-seconds, 300) and
 *    10 s more, then b comes back as a fresh host (new namespace, same address, empty table) and
 *    asks for the table at start: what an operator meets when a peer returns to a director that
 *    has held its table for a while. Figures: a's
 *    lvsd_sync_resync_duration_seconds (request → acknowledgement), b's request → RESYNC_END (its
 *    log), and b's start → every entry in b's kernel (counted by the kernel per real server, read
 *    over netlink every 100 ms by one process in b's namespace, sync-load.js count: no exec per
 *    sample; includes node's start) and b's request → every entry there, beside the
 *    reference of the same run: the time the same entries took to reach a's kernel fed straight to
 *    its backup daemon by a local process (the hand-over alone: LoopbackInjector, all queued at
 *    once, joined and paced; no channel, no wire; the kernel fed unpaced is faster still), and
 *    their ratio; the CPU from b's request to then of a's main thread, a's other threads (its table
 *    worker), b, the kernel's IPVS sync threads and the whole guest (busy, idle);
 *    b's frames lost, socket and daemon drops; the answer's stages from a's log line (request →
 *    ready: the worker, of it the encoding, the age of the read it came from; queued behind earlier
 *    sends; its frames) and b's "table received" → all in b's kernel; b's start step by step
 *    (its process created, from /proc/PID/stat; then its log lines: node's start and lvsd's modules
 *    loaded, the configuration loaded, each subsystem started, the request sent); every 5 s of the wait b's
 *    counter, the records b's lvsd had handed to its kernel and the bytes in its kernel daemon's
 *    socket (which of the two is behind), and ActiveConn + InActConn after the final table read;
 *    a's longest event-loop stall
 *    (lvsd_event_loop_lag_seconds{quantile="1"}) over 10 s of holding the table and over the
 *    resync, a's table-read time then, b's takeovers while a was filled and held, and the longest
 *    stall of a probe process of the guest's own (sync-load.ts probe) in the same windows.
 *  - --prefill N: before the phases, N established TCP entries are installed in a's kernel (through
 *    its backup daemon on lo) and the bench waits until b's kernel holds them: the phases then run
 *    beside a large table, whose reads take seconds (what the kernel stream of channel lvsd is for).
 * Every loop is bounded in count and time; nothing leaves the guest. The guest is one UML CPU that
 * the client, both daemons, both kernels' sync work and this poller share: read the figures as an
 * upper bound of what two real directors would show.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir, loadavg } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { Topology, pidsIn, run, type Netns, type Running } from '../src/lab/netns.js';
import { lvsdBin } from '../test/support/proc.js';
import { writeSyncDirectorConfig } from './support/sync-director.js';
import { activeConns, destConns, distinctInjected, guestConnSlab } from './support/conn-count.js';
import { backupDaemonQueue } from '../src/sync/adapters.js';
import { localSyncPorts } from '../src/config/model.js';
import { answerOf, logTime, sample, timeline } from './support/lvsd-output.js';

const VIP = '192.0.2.100';
/** The TCP service and real server of the injected entries (bench/support/sync-load.ts inject). */
const VS80 = `${VIP}:80`;
const RS80 = '192.0.2.11:80';
const UDP_PORT = 5353;
const KEY = 'hex:' + 'b0a7'.repeat(12);
const SYNCID = 42;
/** sync.stream_port's default: the resync fill is also sent there, as the kernel stream would send connections made by traffic. */
const STREAM_PORT = 8849;
const LOAD = join(dirname(fileURLToPath(import.meta.url)), 'support', 'sync-load.js');
const wall = () => performance.timeOrigin + performance.now();

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : dflt;
}
const num = (name: string, dflt: number, max: number) => Math.min(max, Math.max(0, Number(arg(name, String(dflt)))));

const config = (dir: string, name: string, prio: number, port: number, channel: 'kernel' | 'lvsd') =>
  writeSyncDirectorConfig(dir, {
    name, prio, port, vip: VIP, channel, syncId: SYNCID,
    keyFile: channel === 'lvsd' ? `${dir}/sync.key` : undefined,
    virtualServers: [
      `{ address: ${VIP}, port: ${UDP_PORT}, protocol: udp, scheduler: rr, forwarding: dr, real_servers: [{ address: 192.0.2.11 }, { address: 192.0.2.12 }] }`,
      `{ address: ${VIP}, port: 80, scheduler: rr, forwarding: dr, real_servers: [{ address: 192.0.2.11 }, { address: 192.0.2.12 }] }`,
    ],
  });

/** Until fn() answers, at most ms (polled every step ms). */
async function until<T>(fn: () => Promise<T | undefined>, what: string, ms: number, step = 200): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(step);
  }
}

/** The lvsd process of a namespace (the daemon's node). */
function lvsdPid(ns: Netns): number {
  for (const pid of pidsIn([ns.name])) {
    try {
      // lvsd's own process (`lvsd run -c FILE`), not another whose arguments name a path with "lvsd" in it.
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0');
      if (argv.some((a) => a.endsWith('/lvsd')) && argv.includes('run')) return pid;
    } catch {
      /* gone */
    }
  }
  throw new Error(`no lvsd in ${ns.name}`);
}

/** utime + stime in seconds (USER_HZ 100). */
function cpuSeconds(pid: number): number {
  const s = readFileSync(`/proc/${pid}/stat`, 'latin1');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

/**
 * When a process was created, as wall-clock ms of this guest: its start time in /proc/PID/stat
 * (clock ticks since boot, USER_HZ 100) placed against /proc/uptime read now (both 10 ms steps).
 */
function execWall(pid: number): number {
  const s = readFileSync(`/proc/${pid}/stat`, 'latin1');
  const ticks = Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[19]);
  const up = Number(readFileSync('/proc/uptime', 'latin1').split(' ')[0]);
  return wall() - up * 1000 + ticks * 10;
}

/** utime + stime in seconds of a process's main thread (its tid is its pid) and of its other threads together (a daemon's table worker, V8's and libuv's helpers). */
function threadCpu(pid: number): { main: number; other: number } {
  let main = 0;
  let other = 0;
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    try {
      const s = readFileSync(`/proc/${pid}/task/${t}/stat`, 'latin1');
      const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
      const sec = (Number(f[11]) + Number(f[12])) / 100;
      if (Number(t) === pid) main = sec;
      else other += sec;
    } catch {
      /* gone */
    }
  }
  return { main, other };
}

/** The guest's CPU seconds so far (/proc/stat's first line, USER_HZ 100): busy (all but idle and iowait) and idle. */
function guestCpu(): { busy: number; idle: number } {
  const f = readFileSync('/proc/stat', 'latin1').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const idle = (f[3] ?? 0) + (f[4] ?? 0);
  return { busy: (f.reduce((x, y) => x + y, 0) - idle) / 100, idle: idle / 100 };
}

/** CPU seconds of the kernel's IPVS sync threads (ipvs-m:*, ipvs-b:*: kernel mode's sender and receivers, lvsd mode's lo receivers). */
function kthreadSeconds(): number {
  let sum = 0;
  for (const e of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(e)) continue;
    try {
      if (readFileSync(`/proc/${e}/comm`, 'latin1').startsWith('ipvs-')) sum += cpuSeconds(Number(e));
    } catch {
      /* gone */
    }
  }
  return sum;
}

const q = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)]! : NaN;
};
const r1 = (x: number) => Math.round(x * 10) / 10;

interface Visibility {
  rate: number;
  achieved: number;
  flows: number;
  samples: number;
  seen: number;
  /**
   * Visible in b's table between `lower` and `upper` after it was sent: upper = end of the bench's
   * first read of b's table that shows it, lower = start of the read before (which did not). The
   * bench's own read period is the width; mid is their midpoint.
   */
  upper: { p50: number; p95: number; max: number; mean: number };
  lower: { p50: number; p95: number; max: number; mean: number };
  mid: { p50: number; p95: number; mean: number };
  /** The bench's reads of b's table: mean duration and mean period (start to start). */
  pollMs: number;
  pollPeriodMs: number;
  /** Entries in a's / b's table at the end. */
  tableA: number;
  tableB: number;
  /** Seconds of the CPU window (generation start to 1 s after its end). */
  windowS: number;
  cpuA?: number;
  cpuB?: number;
  cpuKernel?: number;
}

const stats = (xs: number[]) => ({ p50: q(xs, 0.5), p95: q(xs, 0.95), max: Math.max(...xs), mean: xs.reduce((x, y) => x + y, 0) / Math.max(1, xs.length) });

/** The load of one phase: real UDP flows from the client, or the same connections injected into a's kernel. */
type Generator = { kind: 'flows'; ns: Netns } | { kind: 'inject'; ns: Netns };

/**
 * COUNT flows at RATE; b's table is read in a loop until every sampled flow is there or 15 s after
 * the generator finished. Each flow's visibility is bracketed by two consecutive reads (Visibility).
 */
async function visibility(gen: Generator, a: Netns, b: Netns, rate: number, seconds: number, base: number): Promise<Visibility> {
  const count = Math.max(1, Math.round(rate * seconds));
  if (base + count > 65535) throw new Error(`source ports ${base}+${count} run past 65535`);
  const sample = Math.max(1, Math.floor(count / 500));
  const want = new Set<string>();
  for (let i = 0; i < count; i += sample) want.add((base + i).toString(16).toUpperCase().padStart(4, '0'));
  const seenAt = new Map<string, [number, number]>();
  const bPid = lvsdPid(b);
  const aPid = lvsdPid(a);
  const re = /^UDP C0000232 ([0-9A-F]{4}) C0000264/gm;
  let reads = 0;
  let readMs = 0;
  let genDone = 0;
  let stop = false;
  let first = 0;
  let lastStart = 0;
  let prevStart = 0;
  const poller = (async () => {
    while (!stop) {
      const t0 = performance.now();
      const start = wall();
      // Synchronous: this process has nothing else to do meanwhile, and it spares the thread-pool hops.
      const text = readFileSync(`/proc/${bPid}/net/ip_vs_conn`, 'latin1');
      const t = wall();
      if (!first) first = start;
      lastStart = start;
      reads++;
      readMs += performance.now() - t0;
      for (const m of text.matchAll(re)) if (want.has(m[1]!) && !seenAt.has(m[1]!)) seenAt.set(m[1]!, [prevStart || start, t]);
      prevStart = start;
      if (seenAt.size === want.size || (genDone && Date.now() - genDone > 15000)) return;
      // The guest has one CPU: this loop must not starve the daemons it measures. Reading b's table
      // costs O(n²) in the kernel (seq_file), so the pause grows with the read: this loop takes at most a third of the CPU.
      await sleep(Math.max(10, 2 * (performance.now() - t0)));
    }
  })();
  const cpu0 = { a: cpuSeconds(aPid), b: cpuSeconds(bPid), k: kthreadSeconds(), t: performance.now() };
  const argv =
    gen.kind === 'flows'
      ? [process.execPath, LOAD, 'flows', VIP, String(UDP_PORT), String(rate), String(count), String(sample), String(base), String(seconds)]
      : [process.execPath, LOAD, 'inject-flows', String(rate), String(count), String(SYNCID), String(sample), String(base), String(seconds)];
  const g = gen.ns.start(argv);
  const exit = await Promise.race([g.exited, sleep(150_000).then(() => ({ code: -1, signal: null }))]);
  if (exit.code !== 0) throw new Error(`load generator failed (${exit.code}): ${g.output().slice(-1500)}`);
  genDone = Date.now();
  await sleep(1000);
  const cpu1 = { a: cpuSeconds(aPid), b: cpuSeconds(bPid), k: kthreadSeconds(), t: performance.now() };
  await poller;
  stop = true;
  const res = JSON.parse(g.output().trim().split('\n').pop()!) as { sent: number; rate: number; samples: Array<[number, number]> };
  const up: number[] = [];
  const lo: number[] = [];
  const mid: number[] = [];
  for (const [sport, t] of res.samples) {
    const s = seenAt.get(sport.toString(16).toUpperCase().padStart(4, '0'));
    if (s === undefined) continue;
    up.push(s[1] - t);
    lo.push(Math.max(0, s[0] - t));
    mid.push((Math.max(0, s[0] - t) + (s[1] - t)) / 2);
  }
  const win = (cpu1.t - cpu0.t) / 1000;
  const m = stats(mid);
  return {
    rate,
    achieved: res.rate,
    flows: res.sent,
    samples: res.samples.length,
    seen: up.length,
    upper: stats(up),
    lower: stats(lo),
    mid: { p50: m.p50, p95: m.p95, mean: m.mean },
    pollMs: readMs / Math.max(1, reads),
    pollPeriodMs: reads > 1 ? (lastStart - first) / (reads - 1) : NaN,
    tableA: await tableCount(aPid, /^UDP /gm),
    tableB: await tableCount(bPid, /^UDP /gm),
    windowS: win,
    cpuA: (100 * (cpu1.a - cpu0.a)) / win,
    cpuB: (100 * (cpu1.b - cpu0.b)) / win,
    cpuKernel: (100 * (cpu1.k - cpu0.k)) / win,
  };
}

/** Entries of one protocol in a director's kernel table (the number the stages were measured at). */
async function tableCount(pid: number, re: RegExp): Promise<number> {
  const text = await readFile(`/proc/${pid}/net/ip_vs_conn`, 'latin1');
  return (text.match(re) ?? []).length;
}

async function scrape(ns: Netns, port: number): Promise<string> {
  return (await ns.exec(['curl', '-s', `http://127.0.0.1:${port}/metrics`], { via: 'nsenter', check: false })).stdout;
}
async function metric(ns: Netns, port: number, name: string): Promise<number> {
  return sample(await scrape(ns, port), name);
}

const LE = ['0.005', '0.01', '0.025', '0.05', '0.1', '0.25', '0.5', '1', '2.5', '5', '10', '+Inf'];
/** b's staleness histogram and a's table reads between two scrapes: mean, and the bucket holding the p95. */
function channelFigures(b0: string, b1: string, a0: string, a1: string, seconds: number) {
  const d = (t0: string, t1: string, s: string) => sample(t1, s) - sample(t0, s);
  const n = d(b0, b1, 'lvsd_sync_staleness_seconds_count');
  const le95 = LE.find((le) => d(b0, b1, `lvsd_sync_staleness_seconds_bucket{le="${le}"}`) >= 0.95 * n);
  const reads = d(a0, a1, 'lvsd_sync_table_read_seconds_count');
  return {
    records: n,
    stalenessMeanMs: (1000 * d(b0, b1, 'lvsd_sync_staleness_seconds_sum')) / n,
    stalenessP95LeS: le95 ?? 'n/a',
    tableReads: reads,
    tableReadMeanMs: (1000 * d(a0, a1, 'lvsd_sync_table_read_seconds_sum')) / reads,
    /** a's read period (start to start), mean over the phase: a new connection waits half of it on average for the read that shows it. */
    tablePeriodMs: (1000 * seconds) / reads,
    drops: d(b0, b1, 'lvsd_sync_dropped_total{reason="bad_mac"}') || 0,
  };
}

/** Input-backlog drops of the guest (netdev_max_backlog; /proc/net/softnet_stat's second column, hex, per CPU). */
function softnetDrops(): number {
  return readFileSync('/proc/net/softnet_stat', 'latin1').split('\n').filter(Boolean).reduce((n, l) => n + parseInt(l.split(' ')[1]!, 16), 0);
}

/** UDP receive-buffer overflows in a namespace (datagrams the kernel dropped: /proc/PID/net/snmp). */
function rcvbufErrors(pid: number): number {
  const lines = readFileSync(`/proc/${pid}/net/snmp`, 'latin1').split('\n').filter((l) => l.startsWith('Udp:'));
  const head = lines[0]!.split(/\s+/);
  return Number(lines[1]!.split(/\s+/)[head.indexOf('RcvbufErrors')]);
}

interface Resync {
  entries: number;
  inA: number;
  /** Messages a's kernel daemon dropped while the bench filled its table, and how long filling it took (the kernel's install fed directly from a local process: the reference for the resync). */
  injectDrops: number;
  injectMs: number;
  /** One read of a's table while the injected records were being installed, and one after: injected lines and distinct ones (small sizes only: each read is O(n²)). */
  repeatsDuring?: { lines: number; distinct: number };
  repeatsAfter?: { lines: number; distinct: number };
  /** b's takeovers before it died; the guest probe's longest stall while a was filled and held the table. */
  bTakeovers: number;
  /** ms from the fill's end (every entry in a's kernel) to the end of a's first read begun after it (a knows its table); NaN: not within --know-seconds. */
  knownAfterMs: number;
  probeMaxFillMs: number;
  probeMaxResyncMs: number;
  lostB: number;
  /** Frames of the answer a resent because b named them missing, and b's requests for them. */
  resentA: number;
  missingAsksB: number;
  /** Distinct injected entries in b's table at the end (one read). */
  distinctB: number;
  /** Over the wait, every 5 s: [ms since b's start, b's ActiveConn, records b's lvsd handed to its kernel, bytes queued at b's kernel daemon]; after the table read: active and inactive. */
  inBSeries: Array<[number, number, number, number]>;
  afterB: { ms: number; active: number; inactive: number };
  /** b's start: its process created (ms after the bench started it), its log lines to the table's arrival ([ms since the bench started it, line]). */
  bStart: { execMs: number; lines: Array<[number, string]> };
  /** CPU seconds from b's start to the bench seeing b's request (ms after b's start): b's process, a's, the guest's busy and idle. */
  startCpu?: { ms: number; b: number; a: number; busy: number; idle: number };
  /** b's request (its log line "asked the peer for its table", ms after the bench started b) → all in b's kernel (ms). */
  requestMs: number;
  reqToKernelMs: number;
  /**
   * CPU seconds from the bench seeing b's request to all in b's kernel (the resync itself): a's
   * main thread and its other threads (the table worker), b's process, the kernel's IPVS sync
   * threads, the guest's busy and idle: what bounds the answer's pace in the guest's one CPU.
   */
  resyncCpu?: { s: number; aMain: number; aOther: number; b: number; kthreads: number; busy: number; idle: number };
  /** b's log "peer table received" → all in b's kernel (the counter): b's install tail. */
  bTableToKernelMs: number;
  /** a's answer (its log line): request → ready in a's main thread, of it the worker (encode included), the snapshot's age; waiting behind earlier sends; its own frames. */
  answer: { readyMs: number; workerMs: number; encodeMs: number; snapshotAgeMs: number; queuedMs: number; sendMs: number };
  /** a's table worker over 10 s holding the table: reads and their mean (read + parse + diff + encode). */
  aReads: number;
  aReadMeanMs: number;
  /** a's longest event-loop stall (lvsd_event_loop_lag_seconds{quantile="1"}) over those 10 s, and from then to the resync's acknowledgement. */
  aLagMaxSteadyMs: number;
  aLagMaxResyncMs: number;
  kernelQueueDropsB: number;
  /** Packets the guest's input backlogs dropped during the resync (/proc/net/softnet_stat, all CPUs and namespaces: lo included). */
  backlogDrops: number;
  ackMs: number;
  endMs: number;
  kernelMs: number;
  inB: number;
  rcvbufErrorsB: number;
  receivedB: number;
  log: string[];
}

async function runMode(mode: 'kernel' | 'lvsd', o: { low: number; lowS: number; high: number; highS: number; inject: number; injectS: number; resync: number[]; prefill: number; knowS: number }) {
  const topo = new Topology();
  const dir = mkdtempSync(join(tmpdir(), `lvsd-syncbench-${mode}-`));
  writeFileSync(join(dir, 'sync.key'), KEY + '\n');
  const runs: Array<[string, Running]> = [];
  try {
    const cl = await topo.member('cl', ['192.0.2.50/24']);
    const a = await topo.member('a', ['192.0.2.2/24']);
    const b = await topo.member('b', ['192.0.2.3/24']);
    for (const [i, addr] of ['192.0.2.11', '192.0.2.12'].entries()) await topo.member(`rs${i}`, [`${addr}/24`]);
    const start = (ns: Netns, name: string, prio: number, port: number) => {
      const r = ns.start([lvsdBin, 'run', '-c', config(dir, name, prio, port, mode)]);
      runs.push([name, r]);
      return r;
    };
    const aRun = start(a, 'a', 150, 19671);
    let victimRun = start(b, 'b', 100, 19672);
    const sh = (ns: Netns, argv: string[]) => ns.exec(argv, { via: 'nsenter', check: false });
    await until(async () => ((await sh(a, ['ip', '-4', '-o', 'addr', 'show', 'dev', 'eth0'])).stdout.includes(`${VIP}/24`) ? true : undefined), 'a to become master', 120_000, 500);
    // b's sync is up once its backup daemon runs (kernel: on eth0; lvsd: on lo, after its resync request).
    await until(async () => ((await sh(b, ['ipvsadm', '-L', '--daemon'])).stdout.includes('backup') ? true : undefined), "b's backup sync daemon", 120_000, 500);
    await until(async () => ((await sh(a, ['ipvsadm', '-Ln'])).stdout.includes(`${VIP}:${UDP_PORT}`) ? true : undefined), "a's virtual servers", 60_000, 500);
    await sleep(4000); // b's start (resync wait, election start) settles
    if (o.prefill > 0) {
      const inj = a.start([process.execPath, LOAD, 'inject', String(o.prefill), String(SYNCID)]);
      await Promise.race([inj.exited, sleep(150_000)]);
      // b gets them from a (channel lvsd: a's reads; kernel: never, they came through a's backup daemon).
      const inB = await until(async () => ((await activeConns(mode === 'lvsd' ? b : a, VS80, RS80)) >= o.prefill ? true : undefined), `${o.prefill} prefilled entries`, 300_000, 1000).then(() => true, () => false);
      console.error(`prefilled ${o.prefill} entries in a (${mode === 'lvsd' ? (inB ? 'all in b' : 'NOT all in b') : inB ? 'held' : 'not all held'})`);
    }
    const phase = async (gen: Generator, rate: number, seconds: number, base: number) => {
      const [a0, b0] = mode === 'lvsd' ? [await scrape(a, 19671), await scrape(b, 19672)] : ['', ''];
      const t0 = performance.now();
      const e0 = rcvbufErrors(lvsdPid(b));
      const v = await visibility(gen, a, b, rate, seconds, base);
      const rcvbuf = rcvbufErrors(lvsdPid(b)) - e0;
      const a1 = mode === 'lvsd' ? await scrape(a, 19671) : '';
      const s = (performance.now() - t0) / 1000;
      return { ...v, rcvbufErrorsB: rcvbuf, ...(mode === 'lvsd' ? { channel: channelFigures(b0, await scrape(b, 19672), a0, a1, s) } : {}) };
    };
    const low = await phase({ kind: 'flows', ns: cl }, o.low, o.lowS, 2000);
    const high = await phase({ kind: 'flows', ns: cl }, o.high, o.highS, 10000);
    // lvsd mode only: the kernel channel sends a connection from the packet path (ip_vs_in →
    // ip_vs_sync_conn), never one installed through a's backup daemon.
    const injected = mode === 'lvsd' && o.inject > 0 ? await phase({ kind: 'inject', ns: a }, o.inject, o.injectS, 40000) : undefined;
    const resyncs: Resync[] = [];
    let victim = b;
    for (const [k, size] of (mode === 'lvsd' ? o.resync : []).entries()) {
      // The victim dies first (a crashed or rebooting host) and returns as a fresh one once a has
      // filled and knows its table (an operator's case: the peer comes back to a director that has
      // held its connections for a while). Dead before the fill, not after it: in the guest a live
      // peer's copy of the table sits in the one connection hash all namespaces share, which
      // doubles the cost of every read of a's table (O(n²) per read, bench/results/sync.md) and
      // would have to be flushed before b returns; two real directors have two hashes.
      const bTakeovers = (victimRun.output().match(/"to":"MASTER"/g) ?? []).length;
      const aEntries0 = await tableCount(lvsdPid(a), /^[A-Z]+ /gm);
      victim.crash();
      await sh(victim, ['ip', 'link', 'set', 'eth0', 'down']);
      // A dead host's table is gone; in the guest its entries would stay in the one connection hash
      // all namespaces share and slow every read of a's table: delete its namespace, wait for the flush.
      await run('ip', ['netns', 'del', victim.name], { check: false });
      await until(async () => {
        const n = guestConnSlab(await readFile('/proc/slabinfo', 'latin1').catch(() => ''));
        return n === undefined || n <= aEntries0 + 2000 ? true : undefined;
      }, "the dead director's entries to be flushed", 90_000, 500).catch(() => undefined);
      // Stalls of the whole guest (a probe process of its own) while a is filled, holds and resyncs.
      const probe = a.start([process.execPath, LOAD, 'probe', '600']);
      const sentBefore = sample(await scrape(a, 19671), 'lvsd_sync_records_total{direction="sent"}') || 0;
      const tFill = wall();
      const inj = a.start([process.execPath, LOAD, 'inject', String(size), String(SYNCID), String(STREAM_PORT)]);
      // (b) of the issue: lines of a table read while it changes (small sizes: each read is O(n²)).
      const repeatsDuring = size <= 20_000 ? await until(async () => ((await activeConns(a, VS80, RS80)) > size / 4 ? true : undefined), 'filling', 60_000, 100).then(() => distinctInjected(a)).catch(() => undefined) : undefined;
      await Promise.race([inj.exited, sleep(150_000)]);
      const injected = JSON.parse(inj.output().trim().split('\n').pop() || '{}') as { daemonDrops?: number; seconds?: number };
      // Counted by the kernel per real server (netlink), not by reading the O(n²) table.
      const inA = await until(async () => {
        const n = await activeConns(a, VS80, RS80);
        return n >= size ? n : undefined;
      }, `${size} entries in a's kernel`, 90_000, 500).catch(async () => activeConns(a, VS80, RS80));
      const tFilled = wall();
      const repeatsAfter = size <= 20_000 ? await distinctInjected(a) : undefined;
      // a knows its table once its lvsd has sent every entry: the fill goes to a's kernel stream
      // port too (sync-load.js inject STREAM_PORT), as the kernel streams connections made by
      // traffic, so a learns them as it would real ones; or once a read begun after the fill has
      // completed (lvsd_sync_table_read_seconds counts completed reads: the second to complete
      // after the fill began after it), should the stream have lost records.
      const reads0 = sample(await scrape(a, 19671), 'lvsd_sync_table_read_seconds_count') || 0;
      const knownAfter = await until(async () => {
        const t = await scrape(a, 19671);
        const ok = sample(t, 'lvsd_sync_records_total{direction="sent"}') - sentBefore >= inA || sample(t, 'lvsd_sync_table_read_seconds_count') - reads0 >= 2;
        return ok ? Math.round(wall() - tFilled) : undefined;
      }, `a's lvsd to know its ${inA} entries`, o.knowS * 1000, 1000).catch(() => NaN);
      // a holds the large table and reads it in its table worker: a's event loop over 10 s of that.
      const aSteady0 = await scrape(a, 19671);
      await sleep(10_000);
      const aSteady1 = await scrape(a, 19671);
      const tHeld = wall();
      const sum0 = sample(aSteady1, 'lvsd_sync_resync_duration_seconds_sum');
      const backlog0 = softnetDrops();
      const fresh = await topo.member(`b${k + 2}`, ['192.0.2.3/24']);
      // b's kernel counter, sampled over netlink every 100 ms by one process in b's namespace
      // (sync-load.js count), started and ready before b: an exec of nsenter + ipvsadm per sample
      // took the guest's one CPU from the resync it measured.
      const counter = fresh.start([process.execPath, LOAD, 'count', VIP, '80', RS80.split(':')[0]!, '300']);
      const counts = (): Array<[number, number]> =>
        counter
          .output()
          .split('\n')
          .filter((l) => l.startsWith('['))
          .map((l) => JSON.parse(l) as [number, number]);
      await until(async () => (counts().length ? true : undefined), "b's kernel counter", 30_000, 200);
      const apiPort = 19673 + k;
      const aPid = lvsdPid(a);
      const cpuAt0 = { a: cpuSeconds(aPid), guest: guestCpu() };
      const t0 = wall();
      const rb = start(fresh, 'b', 100, apiPort);
      victim = fresh;
      victimRun = rb;
      const bPid = await until(async () => {
        try {
          return lvsdPid(fresh);
        } catch {
          return undefined;
        }
      }, "b's lvsd", 30_000, 100);
      const bExecMs = Math.round(execWall(rb.child.pid!) - t0);
      let inB = 0;
      // Every 5 s of the wait: ms since b's start, b's kernel counter (ActiveConn), the records b's
      // lvsd handed to its kernel (lvsd_sync_records_total received: counted once sent to lo) and
      // the bytes waiting in b's kernel backup daemon's socket: which of the two is behind.
      const inBSeries: Array<[number, number, number, number]> = [];
      // Where the guest's one CPU went from b's start to its request: b's own (all its threads), a's, all.
      let startCpu: Resync['startCpu'];
      let cpuAtReq: { t: number; a: { main: number; other: number }; b: number; k: number; g: { busy: number; idle: number } } | undefined;
      const kernelMs = await until(async () => {
        if (!startCpu) {
          // Until b asks, its table cannot fill: its log is watched, its kernel not counted. Each
          // count is an ipvsadm run (nsenter + ipvsadm: two execs on the guest's one CPU) every
          // 100 ms; in the 19:58 run 5.9 of the 18.2 CPU seconds of b's start went neither to b nor
          // to a, these counts among them.
          if (!/asked the peer for its table/.test(rb.output())) return undefined;
          const g = guestCpu();
          startCpu = { ms: Math.round(wall() - t0), b: cpuSeconds(bPid), a: cpuSeconds(aPid) - cpuAt0.a, busy: g.busy - cpuAt0.guest.busy, idle: g.idle - cpuAt0.guest.idle };
          cpuAtReq = { t: wall(), a: threadCpu(aPid), b: cpuSeconds(bPid), k: kthreadSeconds(), g };
        }
        const series = counts();
        inB = series.at(-1)?.[1] ?? 0;
        const last = inBSeries[inBSeries.length - 1];
        if (!last || wall() - t0 - last[0] >= 5000) {
          const handed = sample(await scrape(fresh, apiPort), 'lvsd_sync_records_total{direction="received"}');
          const queued = backupDaemonQueue(readFileSync(`/proc/${bPid}/net/udp`, 'latin1'), localSyncPorts({ port: 8848 }).handover)?.queued ?? NaN;
          inBSeries.push([Math.round(wall() - t0), inB, handed, queued]);
        }
        // The sample's own time (the counter's), not this poll's.
        const reached = series.find(([, n]) => n >= inA);
        return reached ? reached[0] - t0 : undefined;
      }, `${inA} entries in b's kernel`, 120_000, 100).catch(() => NaN);
      counter.child.kill('SIGTERM');
      const tResynced = wall();
      let resyncCpu: Resync['resyncCpu'];
      if (cpuAtReq && Number.isFinite(kernelMs)) {
        const a1 = threadCpu(aPid);
        const g1 = guestCpu();
        resyncCpu = { s: (tResynced - cpuAtReq.t) / 1000, aMain: a1.main - cpuAtReq.a.main, aOther: a1.other - cpuAtReq.a.other, b: cpuSeconds(bPid) - cpuAtReq.b, kthreads: kthreadSeconds() - cpuAtReq.k, busy: g1.busy - cpuAtReq.g.busy, idle: g1.idle - cpuAtReq.g.idle };
      }
      await until(async () => (/peer table received|no active peer answered/.test(rb.output()) ? true : undefined), "b's resync log", 15_000, 200).catch(() => undefined);
      const endMs = Number(/"received":true,"ms":(\d+)/.exec(rb.output())?.[1] ?? NaN);
      const aText = await until(async () => {
        const t = await scrape(a, 19671);
        return sample(t, 'lvsd_sync_resync_duration_seconds_sum') > sum0 ? t : undefined;
      }, "a's resync acknowledgement", 15_000, 500).catch(async () => scrape(a, 19671));
      const bText = await scrape(fresh, apiPort);
      const distinctB = size <= 20_000 ? (await distinctInjected(fresh)).distinct : NaN;
      // The counter again after that read (which takes seconds): did it still move (the wait ended
      // early), or do entries of the table sit outside ActiveConn (InActConn, or bound to no real server)?
      const afterB = { ms: Math.round(wall() - t0), ...(await destConns(fresh, VS80, RS80)) };
      // Stages from the logs (pino "time", the guest's one clock): b's table complete → all in b's kernel.
      const bTableAt = logTime(rb.output(), /peer table received|no active peer answered/);
      const requestMs = Math.round(logTime(rb.output(), /asked the peer for its table/) - t0);
      probe.child.kill('SIGTERM');
      await Promise.race([probe.exited, sleep(5000)]);
      const late = (JSON.parse(probe.output().trim().split('\n').pop() || '{"late":[]}') as { late: Array<[number, number]> }).late;
      const maxIn = (from: number, to: number) => Math.max(0, ...late.filter(([t]) => t >= from && t <= to).map(([, l]) => l));
      const d = (t0: string, t1: string, series: string) => sample(t1, series) - sample(t0, series);
      resyncs.push({
        entries: size,
        inA,
        injectDrops: injected.daemonDrops ?? NaN,
        injectMs: (injected.seconds ?? NaN) * 1000,
        ...(repeatsDuring ? { repeatsDuring } : {}),
        ...(repeatsAfter ? { repeatsAfter } : {}),
        bTakeovers,
        knownAfterMs: knownAfter,
        probeMaxFillMs: maxIn(tFill, tHeld),
        probeMaxResyncMs: maxIn(t0, tResynced),
        aReadMeanMs: (1000 * d(aSteady0, aSteady1, 'lvsd_sync_table_read_seconds_sum')) / d(aSteady0, aSteady1, 'lvsd_sync_table_read_seconds_count'),
        aReads: d(aSteady0, aSteady1, 'lvsd_sync_table_read_seconds_count'),
        aLagMaxSteadyMs: 1000 * sample(aSteady1, 'lvsd_event_loop_lag_seconds{quantile="1"}'),
        aLagMaxResyncMs: 1000 * sample(aText, 'lvsd_event_loop_lag_seconds{quantile="1"}'),
        ackMs: (sample(aText, 'lvsd_sync_resync_duration_seconds_sum') - sum0) * 1000,
        endMs,
        kernelMs,
        inB,
        distinctB,
        inBSeries,
        afterB,
        startCpu,
        bStart: { execMs: bExecMs, lines: timeline(rb.output(), t0, /peer table received|no active peer answered/) },
        bTableToKernelMs: Number.isFinite(kernelMs) ? t0 + kernelMs - bTableAt : NaN,
        requestMs,
        reqToKernelMs: kernelMs - requestMs,
        ...(resyncCpu ? { resyncCpu } : {}),
        answer: answerOf(aRun.output()),
        rcvbufErrorsB: rcvbufErrors(bPid),
        lostB: sample(bText, 'lvsd_sync_dropped_total{reason="lost"}') || 0,
        resentA: sample(aText, 'lvsd_sync_resync_resent_frames_total') || 0,
        missingAsksB: sample(bText, 'lvsd_sync_resync_missing_requests_total') || 0,
        receivedB: sample(bText, 'lvsd_sync_records_total{direction="received"}'),
        kernelQueueDropsB: sample(bText, 'lvsd_sync_dropped_total{reason="kernel_queue"}') || 0,
        backlogDrops: softnetDrops() - backlog0,
        log: [...rb.output().split('\n'), ...aRun.output().split('\n').slice(-400)].filter((l) => /resync|peer table|no active peer|full table|unpaced/.test(l)).map((l) => l.slice(0, 300)),
      });
    }
    return { low, high, injected, resyncs };
  } catch (e) {
    for (const [n, r] of runs) process.stderr.write(`--- ${mode} ${n} ---\n${r.output().slice(-3000)}\n`);
    throw e;
  } finally {
    await topo.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  if (!process.env.LVSD_IN_LAB) {
    process.stderr.write('run inside the lab: bin/lvsd lab exec --mem 2048M -- node dist/bench/sync.js\n');
    process.exitCode = 69;
    return;
  }
  const o = { low: num('low-rate', 10, 1000), lowS: num('low-seconds', 10, 60), high: num('high-rate', 5000, 20000), highS: num('high-seconds', 4, 10), inject: num('inject-rate', 5000, 20000), injectS: num('inject-seconds', 4, 5), prefill: num('prefill', 0, 200_000), knowS: num('know-seconds', 300, 600), resync: arg('resync', '10000,100000').split(',').filter(Boolean).map((x) => Math.min(200_000, Math.max(0, Number(x)))).filter((x) => x > 0) };
  const modes = arg('modes', 'kernel,lvsd').split(',') as Array<'kernel' | 'lvsd'>;
  const t0 = Date.now();
  const out: Record<string, Awaited<ReturnType<typeof runMode>>> = {};
  for (const m of modes) {
    out[m] = await runMode(m, o);
    process.stdout.write(`${m}: ${JSON.stringify(out[m])}\n`);
  }
  type Phase = Visibility & { rcvbufErrorsB: number; channel?: ReturnType<typeof channelFigures> };
  const ms = (x: { p50: number; p95: number; max?: number }) => `${r1(x.p50)} / ${r1(x.p95)}${x.max === undefined ? '' : ` / ${r1(x.max)}`}`;
  const row = (name: string, v: Phase) =>
    `${name.padEnd(7)} ${String(v.rate).padStart(5)}/s achieved ${r1(v.achieved)}/s, ${v.flows} flows, ${v.seen}/${v.samples} sampled seen; visible in b's table after (p50 / p95 / max, ms): at most ${ms(v.upper)}, at least ${ms(v.lower)}, midpoint ${ms(v.mid)} (mean ${r1(v.mid.mean)})\n` +
    `        bench's reads of b's table: ${r1(v.pollMs)} ms each, one every ${r1(v.pollPeriodMs)} ms; tables at the end: a ${v.tableA}, b ${v.tableB} UDP entries; b's UDP rcvbuf drops ${v.rcvbufErrorsB}` +
    (v.channel
      ? `\n        stages (means): a's read period ${r1(v.channel.tablePeriodMs)} ms (half of it waited on average), a's read+parse+diff+encode ${r1(v.channel.tableReadMeanMs)} ms (${v.channel.tableReads} reads), a's read start → b's hand-over (staleness) ${r1(v.channel.stalenessMeanMs)} ms (p95 ≤ ${v.channel.stalenessP95LeS} s, ${v.channel.records} records); ` +
        `rest (b's kernel install + scheduling) ≈ ${r1(v.mid.mean - v.channel.tablePeriodMs / 2 - v.channel.stalenessMeanMs)} ms`
      : '');
  process.stdout.write(`\nguest load average ${loadavg().map(r1).join(' ')}, ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
  const cpu = (m: string, v: Phase, what: string) =>
    `${m.padEnd(7)} CPU at ${what} (${r1(v.windowS)} s window): a (sender) ${r1(v.cpuA!)} % of a core, b (receiver) ${r1(v.cpuB!)} %, kernel sync threads ${r1(v.cpuKernel!)} %\n`;
  for (const [m, r] of Object.entries(out)) {
    process.stdout.write(`${row(m, r.low)}\n${row(m, r.high)}\n`);
    process.stdout.write(cpu(m, r.high, `${r1(r.high.achieved)}/s of client flows`));
    if (r.injected) process.stdout.write(`${row(`${m} inj`, r.injected)}\n${cpu(m, r.injected, `${r1(r.injected.achieved)}/s injected into a's kernel`)}`);
    for (const x of r.resyncs)
      process.stdout.write(
        `${m.padEnd(7)} resync of ${x.inA} entries: request→ack ${r1(x.ackMs)} ms (a's metric), request→RESYNC_END ${x.endMs} ms (b's log), b start→all in b's kernel ${r1(x.kernelMs)} ms (${x.inB} there, ${x.distinctB} distinct in its table; b received ${x.receivedB} records, frames lost ${x.lostB}, resent ${x.resentA} (b asked ${x.missingAsksB} times), UDP rcvbuf drops in b ${x.rcvbufErrorsB}, b's kernel daemon drops ${x.kernelQueueDropsB}, guest input-backlog drops ${x.backlogDrops})\n` +
          `        stages: a's answer ready ${x.answer.readyMs} ms after the request (worker ${x.answer.workerMs} ms of which encode ${x.answer.encodeMs} ms, from a read ${x.answer.snapshotAgeMs} ms old), waited ${x.answer.queuedMs} ms behind earlier sends, its frames ${x.answer.sendMs} ms; b's table complete → all in b's kernel ${r1(x.bTableToKernelMs)} ms\n` +
          `        b during the wait (ms since b's start: ActiveConn / records handed to its kernel / bytes in its daemon's socket): ${x.inBSeries.map(([t, n, h, qd]) => `${t}: ${n}/${h}/${qd}`).join(', ')}; after the table read (${x.afterB.ms} ms): ActiveConn ${x.afterB.active}, InActConn ${x.afterB.inactive}\n` +
          `        b's start (ms since the bench started it): process created +${x.bStart.execMs}; ${x.bStart.lines.map(([t, l]) => `+${t} ${l}`).join('; ')}\n` +
          (x.startCpu ? `        CPU from b's start to its request (seen at +${x.startCpu.ms} ms): b ${r1(x.startCpu.b)} s, a ${r1(x.startCpu.a)} s, the guest busy ${r1(x.startCpu.busy)} s, idle ${r1(x.startCpu.idle)} s\n` : '') +
          `        reference: the same entries fed straight into a's kernel daemon by a local process took ${r1(x.injectMs)} ms (${x.injectDrops} daemon drops); b's request (+${x.requestMs} ms) → all in b's kernel ${r1(x.reqToKernelMs)} ms, ratio to the reference ${(x.reqToKernelMs / x.injectMs).toFixed(2)}; ratio b start→all / that ${(x.kernelMs / x.injectMs).toFixed(2)}\n` +
          (x.resyncCpu ? `        CPU from b's request to all in b's kernel (${r1(x.resyncCpu.s)} s): a's main thread ${r1(x.resyncCpu.aMain)} s, a's other threads (table worker) ${r1(x.resyncCpu.aOther)} s, b ${r1(x.resyncCpu.b)} s, kernel IPVS sync threads ${r1(x.resyncCpu.kthreads)} s; the guest busy ${r1(x.resyncCpu.busy)} s, idle ${r1(x.resyncCpu.idle)} s\n` : '') +
          `        a holding them: ${x.aReads} table reads in 10 s, mean ${r1(x.aReadMeanMs)} ms; a's longest event-loop stall ${r1(x.aLagMaxSteadyMs)} ms then, ${r1(x.aLagMaxResyncMs)} ms during the resync\n` +
          `        a knew its table (sent every entry, or completed a read begun after the fill) ${r1(x.knownAfterMs)} ms after the fill ended; b took over ${x.bTakeovers} time(s) before it died; guest probe's longest stall while a was filled and held ${x.probeMaxFillMs} ms, during the resync ${x.probeMaxResyncMs} ms\n` +
          (x.repeatsDuring ? `        a's table read while filling: ${x.repeatsDuring.lines} injected lines, ${x.repeatsDuring.distinct} distinct; after: ${x.repeatsAfter?.lines} lines, ${x.repeatsAfter?.distinct} distinct\n` : '') +
          `${x.log.map((l) => `        ${l}`).join('\n')}\n`,
      );
  }
  if (out.kernel && out.lvsd) {
    const k = out.kernel;
    const l = out.lvsd;
    process.stdout.write(
      `ratios lvsd/kernel (upper bounds): p95 at ${o.low}/s ${(l.low.upper.p95 / k.low.upper.p95).toFixed(3)}, p95 at the high rate ${(l.high.upper.p95 / k.high.upper.p95).toFixed(3)} (achieved lvsd ${r1(l.high.achieved)}/s, kernel ${r1(k.high.achieved)}/s), sender CPU ${(l.high.cpuA! / k.high.cpuA!).toFixed(2)}\n`,
    );
  }
  const json = arg('json', '');
  if (json) writeFileSync(json, JSON.stringify({ options: o, load: loadavg(), results: out }, null, 2));
}

await main();
