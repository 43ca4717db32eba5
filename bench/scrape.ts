/**
 * Scrape cost of the per virtual / real server metrics (issue 20).
 *   lab (real kernel):  bin/lvsd lab exec --mem 2048M -- node dist/bench/scrape.js [--sockets=1,4] [--no-peer] [--trace-turns[=MS]] [SERVICES] [DESTS] [SCRAPES]
 *   host (our share):   node dist/bench/scrape.js --host [--no-peer] [--trace-turns[=MS]] [SERVICES] [DESTS] [SCRAPES]
 * With SERVICES × DESTS (default 10,000 × 10), GET /metrics is served by lvsd's own ApiServer on
 * loopback with the table metrics the daemon registers (src/ipvs/table-metrics.ts: kernel read and
 * text in a worker thread) and read by curl (another process, as Prometheus is), SCRAPES times
 * (default 2) for each netlink socket count of --sockets (default: the daemon's). Per scrape: the
 * wall time, the worker's read time (lvsd_ipvs_table_read_seconds: kernel dumps + text), the longest
 * event-loop stall of the main thread while it ran (the largest gap of a 5 ms interval, and
 * monitorEventLoopDelay's max), and the most time the main thread's loop was busy between two ticks
 * (withLoopWatch) — on a loaded machine a gap also holds time the thread was not running at all, so
 * the idle loop's own largest gap over 2 s is printed too (the noise floor of the same run).
 * Peers, in the same run: in the lab, `ipvsadm -Ln --stats --exact` + `ipvsadm -Ln` (what an
 * operator without lvsd runs for the same figures), from a table restored with `ipvsadm -R`; on the
 * host (no IPVS there: the worker decodes the kernel's replies for the table with lvsd's decoder,
 * bench/support/big-table-reader.ts), the same series through prom-client gauges (what the table
 * metrics were before they got their own exposition), once, after lvsd's scrapes. Before the scrapes
 * the worker is primed as the daemon's start does. The main thread's own CPU time (schedstat) is
 * printed too: on a loaded host it separates lvsd holding the loop from waiting for a CPU.
 * On the host each scrape is followed by the same scrape with the body discarded (curl > /dev/null:
 * the reader's own share of the 2 cores made smaller).
 * --no-peer leaves the peer out (diagnosis runs). --trace-turns[=MS] also prints every tick that held over MS
 * (default 20) ms of main-thread CPU with what ran in it: worker messages, HTTP writes, garbage collections.
 * Goals: a scrape under 1 s, no stall over 20 ms.
 * Nothing leaves the guest or loopback.
 */
import { execFileSync, spawn, spawnSync, type ChildProcessByStdio } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import type { Readable, Writable } from 'node:stream';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance as perf } from 'node:perf_hooks';
import { Counter, Gauge, Registry } from 'prom-client';
import { silentLogger } from '../src/core/log.js';
import type { IpvsTable } from '../src/ipvs/model.js';
import { destKey, serviceKey } from '../src/ipvs/model.js';
import { primeTableMetrics, registerTableMetrics, stopTableMetrics } from '../src/ipvs/table-metrics.js';
import { DEFAULT_TABLE_SOCKETS, kernelTableReader, type TableReaderSpec } from '../src/ipvs/table-reader.js';
import { SystemClock } from '../src/core/clock.js';
import { ApiServer } from '../src/metrics/http.js';
import { bigConfig, bigTable, restoreText } from './support/big-table.js';
import { TurnTrace } from './support/turn-trace.js';

const r1 = (x: number) => Math.round(x * 10) / 10;
const r2 = (x: number) => Math.round(x * 100) / 100;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Watch { ms: number; cpuMs: number; maxGapMs: number; histMaxMs: number; maxBusyMs: number; mainCpuMs: number; maxMainCpuMs: number; mainUserMs: number; mainSysMs: number }

/**
 * Ticker period. 5 ms resolves the 20 ms goal; a 1 ms ticker (until the worker thread) woke the main
 * thread 1,000 times a second, and in the lab guest every wake-up while the worker runs is a thread
 * switch of the user-mode kernel, which slowed the very read it watched.
 */
const TICK_MS = 5;

/**
 * Runs `fn` while a TICK_MS interval records its largest gap and the most time the main thread's
 * event loop was busy between two ticks (performance.eventLoopUtilization: time outside the poll for
 * I/O, this thread only). A gap with little busy time is the thread not being scheduled (a loaded
 * machine), not lvsd holding the loop. process.cpuUsage() counts every thread, the worker's too.
 */
async function withLoopWatch<T>(fn: () => Promise<T>): Promise<Watch & { value: T }> {
  const h = monitorEventLoopDelay({ resolution: TICK_MS });
  let last = performance.now();
  let lastElu = perf.eventLoopUtilization();
  const main0 = mainThreadCpuMs();
  const times0 = mainThreadTimes();
  let lastCpu = main0;
  let maxGap = 0;
  let maxBusy = 0;
  let maxCpu = 0;
  const tick = () => {
    const now = performance.now();
    const elu = perf.eventLoopUtilization();
    const c = mainThreadCpuMs();
    maxGap = Math.max(maxGap, now - last);
    maxBusy = Math.max(maxBusy, elu.active - lastElu.active);
    maxCpu = Math.max(maxCpu, c - lastCpu);
    trace?.tick(last, now, c - lastCpu);
    last = now;
    lastElu = elu;
    lastCpu = c;
  };
  const timer = setInterval(tick, TICK_MS);
  h.enable();
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const value = await fn();
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  tick();
  clearInterval(timer);
  h.disable();
  const times = mainThreadTimes();
  return {
    value, ms, cpuMs: (cpu.user + cpu.system) / 1000, maxGapMs: maxGap, histMaxMs: h.max / 1e6, maxBusyMs: maxBusy, mainCpuMs: mainThreadCpuMs() - main0, maxMainCpuMs: maxCpu,
    mainUserMs: times[0] - times0[0], mainSysMs: times[1] - times0[1],
  };
}

/**
 * CPU time of the main thread alone (ms): the first field of /proc/thread-self/schedstat (ns on the
 * CPU, Documentation/scheduler/sched-stats.rst), read with one pread per call. Unlike the busy time
 * above it leaves out time the thread waited for a CPU: on a loaded host that is most of a gap.
 */
const schedstat = openSync('/proc/thread-self/schedstat', 'r');
/** --trace-turns: what ran in each tick (./support/turn-trace.ts); ticks over TRACE_OVER_MS of CPU are printed at the end. */
let trace: TurnTrace | undefined;
let traceOverMs = 20;
const statBuf = Buffer.alloc(128);
function mainThreadCpuMs(): number {
  const n = readSync(schedstat, statBuf, 0, statBuf.length, 0);
  return Number(statBuf.toString('latin1', 0, n).split(' ')[0]) / 1e6;
}

/**
 * utime and stime of the main thread alone over a scrape (ms; fields 14 and 15 of
 * /proc/thread-self/stat, in USER_HZ = 100 ticks), read before and after, not per tick: every read
 * of /proc is a trap in the lab guest, where the 5 ms ticker's reads alone cost the main thread
 * ~2 ms of CPU per tick (2026-12-04 16:25). In that guest the split says little: a thread doing
 * nothing but those reads shows 99% user time.
 */
const statFd = openSync('/proc/thread-self/stat', 'r');
const statBuf2 = Buffer.alloc(1024);
function mainThreadTimes(): [number, number] {
  const s = statBuf2.toString('latin1', 0, readSync(statFd, statBuf2, 0, statBuf2.length, 0));
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return [Number(f[11]) * 10, Number(f[12]) * 10];
}

/**
 * The processes the bench runs while it measures (curl and awk for a scrape, ipvsadm for the peer)
 * are started by one shell, itself started once before the table metrics exist. Spawning them from
 * this process forked it at every scrape: after a fork every page of the process is copy-on-write,
 * so the worker's next text paid a page fault per 4 kB of its 126 MB of chunk memory (its text CPU
 * 0.84 s instead of 0.28 s on the host, 2026-12-04 16:06) — a cost of the bench, not of a scrape
 * by Prometheus, which forks nothing in lvsd.
 */
class Runner {
  private readonly sh: ChildProcessByStdio<Writable, Readable, null>;
  private buf = '';
  private waiting: Array<(line: string) => void> = [];
  constructor() {
    const awk = '/^lvsd_ipvs_(virtual|real)_server_/ { n++ } /^lvsd_ipvs_table_read_seconds / { s = $2 } /^lvsd_ipvs_table_read_success / { ok = $2 } END { print n + 0, s + 0, ok + 0 }';
    // One request per line: `scrape URL` → `scrape RC BYTES SERIES SECONDS OK`; `peer` → `peer US US BYTES BYTES`
    // (ipvsadm -Ln --stats --exact, then ipvsadm -Ln, timed in the shell with $EPOCHREALTIME).
    const script = `
      err=$(mktemp); trap 'rm -f "$err"' EXIT
      us() { local t=\${EPOCHREALTIME/./}; echo $((10#$t)); }
      while read -r op arg; do
        case $op in
          scrape) r=$(set -o pipefail; curl -sS --fail -w '%{stderr}%{size_download}\n' "$arg" 2>"$err" | LC_ALL=C awk "$AWK"); rc=$?
                  echo "scrape $rc $(tail -n 1 "$err" | tr -dc 0-9) $r" ;;
          discard) r=$(curl -sS --fail -o /dev/null -w '%{size_download}' "$arg" 2>"$err"); rc=$?
                  echo "discard $rc $r" ;;
          peer) t0=$(us); a=$(ipvsadm -Ln --stats --exact | wc -c); t1=$(us); b=$(ipvsadm -Ln | wc -c); t2=$(us)
                echo "peer $((t1 - t0)) $((t2 - t1)) $a $b" ;;
        esac
      done`;
    this.sh = spawn('bash', ['-c', script], { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, AWK: awk } });
    this.sh.stdout.on('data', (b: Buffer) => {
      this.buf += b.toString();
      for (let i; (i = this.buf.indexOf('\n')) >= 0;) {
        const line = this.buf.slice(0, i);
        this.buf = this.buf.slice(i + 1);
        this.waiting.shift()?.(line);
      }
    });
  }
  private ask(req: string): Promise<string[]> {
    return new Promise((resolve) => {
      this.waiting.push((l) => resolve(l.trim().split(/\s+/)));
      this.sh.stdin.write(`${req}\n`);
    });
  }
  /**
   * GET /metrics with curl, its output read by awk: table series are counted and the worker's read
   * time (lvsd_ipvs_table_read_seconds, at the end of the body) picked out there, so the figures are
   * the server's alone.
   */
  async scrape(url: string): Promise<{ bytes: number; series: number; readMs: number }> {
    const [, rc, bytes, series, seconds, ok] = (await this.ask(`scrape ${url}`)).map(Number);
    if (rc !== 0 || !Number.isFinite(bytes) || ok !== 1) throw new Error(`curl | awk exited ${rc} (read success ${ok})`);
    return { bytes: bytes!, series: series!, readMs: seconds! * 1000 };
  }
  /**
   * GET /metrics with curl writing the body to /dev/null: the reader's share of the 2 cores is then
   * curl's receive alone (no pipe, no awk: ~0.3-0.5 s of CPU for 126 MB on this host, 2026-12-04
   * 19:08), so the time is closer to what serving the scrape costs lvsd.
   */
  async discard(url: string): Promise<{ bytes: number }> {
    const [, rc, bytes] = (await this.ask(`discard ${url}`)).map(Number);
    if (rc !== 0 || !Number.isFinite(bytes)) throw new Error(`curl -o /dev/null exited ${rc}`);
    return { bytes: bytes! };
  }
  /** `ipvsadm -Ln --stats --exact` + `ipvsadm -Ln` (the lab's peer): time and output size. */
  async peer(): Promise<{ ms: number; bytes: number }> {
    const [, a, b, x, y] = (await this.ask('peer')).map(Number);
    return { ms: (a! + b!) / 1000, bytes: x! + y! };
  }
  close(): void {
    this.sh.stdin.end();
  }
}

/**
 * An idle process doing the same tick as withLoopWatch (bench/support/tick-control.ts), started
 * before the table metrics exist (a small fork): its record over a scrape is the floor the main
 * thread's figures are read against, at the same moment on the same machine.
 */
class Control {
  private readonly p: ChildProcessByStdio<Writable, Readable, null>;
  private waiting: Array<(line: string) => void> = [];
  private buf = '';
  constructor(tickMs: number) {
    this.p = spawn(process.execPath, [new URL('./support/tick-control.js', import.meta.url).pathname, String(tickMs)], { stdio: ['pipe', 'pipe', 'inherit'] });
    this.p.stdout.on('data', (b: Buffer) => {
      this.buf += b.toString();
      for (let i; (i = this.buf.indexOf('\n')) >= 0;) {
        const line = this.buf.slice(0, i);
        this.buf = this.buf.slice(i + 1);
        this.waiting.shift()?.(line);
      }
    });
  }
  async reset(): Promise<void> {
    this.p.stdin.write('reset\n');
  }
  report(): Promise<{ maxGapMs: number; maxCpuMs: number }> {
    return new Promise((resolve) => {
      this.waiting.push((l) => {
        const [g, c] = l.trim().split(' ').map(Number);
        resolve({ maxGapMs: g!, maxCpuMs: c! });
      });
      this.p.stdin.write('report\n');
    });
  }
  close(): void {
    this.p.stdin.end();
  }
}

const loadavg = () => readFileSync('/proc/loadavg', 'utf8').trim();

/** The same series through prom-client (the host run's peer): label objects, one registry. */
async function promClientScrape(table: IpvsTable, names: Map<string, string>): Promise<{ ms: number; bytes: number }> {
  const reg = new Registry();
  const VS = ['virtual_server', 'service'];
  const RS = [...VS, 'real_server'];
  const g = (name: string, labelNames: string[]) => new Gauge({ name, help: name, labelNames, registers: [reg] });
  const c = (name: string, labelNames: string[]) => new Counter({ name, help: name, labelNames, registers: [reg] });
  const t0 = performance.now();
  const vsConns = c('vs_connections_total', VS);
  const vsPkts = c('vs_packets_total', [...VS, 'direction']);
  const vsBytes = c('vs_bytes_total', [...VS, 'direction']);
  const vsAct = g('vs_active', VS);
  const vsInact = g('vs_inactive', VS);
  const rsAct = g('rs_active', RS);
  const rsInact = g('rs_inactive', RS);
  const rsConns = c('rs_connections_total', RS);
  const rsPkts = c('rs_packets_total', [...RS, 'direction']);
  const rsBytes = c('rs_bytes_total', [...RS, 'direction']);
  const rsW = g('rs_weight', RS);
  const rsCw = g('rs_configured_weight', RS);
  for (const e of table) {
    const key = serviceKey(e.service);
    const vs = { virtual_server: names.get(key)!, service: key };
    const s = e.service.stats!;
    vsConns.inc(vs, s.conns);
    vsPkts.inc({ ...vs, direction: 'in' }, s.inpkts);
    vsPkts.inc({ ...vs, direction: 'out' }, s.outpkts);
    vsBytes.inc({ ...vs, direction: 'in' }, Number(s.inbytes));
    vsBytes.inc({ ...vs, direction: 'out' }, Number(s.outbytes));
    vsAct.set(vs, e.dests.reduce((a, d) => a + (d.active_conns ?? 0), 0));
    vsInact.set(vs, e.dests.reduce((a, d) => a + (d.inact_conns ?? 0), 0));
    for (const d of e.dests) {
      const rs = { ...vs, real_server: destKey(d) };
      const ds = d.stats!;
      rsAct.set(rs, d.active_conns ?? 0);
      rsInact.set(rs, d.inact_conns ?? 0);
      rsConns.inc(rs, ds.conns);
      rsPkts.inc({ ...rs, direction: 'in' }, ds.inpkts);
      rsPkts.inc({ ...rs, direction: 'out' }, ds.outpkts);
      rsBytes.inc({ ...rs, direction: 'in' }, Number(ds.inbytes));
      rsBytes.inc({ ...rs, direction: 'out' }, Number(ds.outbytes));
      rsW.set(rs, d.weight);
      rsCw.set(rs, d.weight);
    }
  }
  const text = await reg.metrics();
  return { ms: performance.now() - t0, bytes: Buffer.byteLength(text) };
}

/** The idle loop's largest 1 ms-interval gap over `ms`: what the machine's load alone costs. */
async function noiseFloor(ms: number): Promise<number> {
  return (await withLoopWatch(() => sleep(ms))).maxGapMs;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  let host = false;
  let noPeer = false;
  let sockets = [DEFAULT_TABLE_SOCKETS];
  while (args[0]?.startsWith('--')) {
    const [flag, value] = args.shift()!.split('=') as [string, string | undefined];
    if (flag === '--host') host = true;
    else if (flag === '--no-peer') noPeer = true;
    else if (flag === '--trace-turns') {
      traceOverMs = Number(value ?? 20);
      trace = new TurnTrace(mainThreadCpuMs);
    } else if (flag === '--sockets') sockets = (value ?? args.shift()!).split(',').map(Number).filter((k) => k >= 1 && k <= 16);
    else throw new Error(`unknown option ${flag}`);
  }
  if (!host && !process.env.LVSD_IN_LAB) {
    process.stderr.write('run inside the lab: bin/lvsd lab exec --mem 2048M -- node dist/bench/scrape.js (or --host for our share alone)\n');
    process.exitCode = 69;
    return;
  }
  const [a0, a1, a2] = args;
  const n = Number(a0 ?? 10000);
  const d = Number(a1 ?? 10);
  const scrapes = Math.min(10, Math.max(1, Number(a2 ?? 2)));
  const runner = new Runner();
  const control = new Control(TICK_MS);
  const cfg = bigConfig(n, d);

  let readers: Array<{ what: string; spec: TableReaderSpec }>;
  let close = async () => {};
  if (host) {
    readers = [{ what: 'table in memory', spec: { module: new URL('./support/big-table-reader.js', import.meta.url).href, options: { n, d } } }];
  } else {
    execFileSync('ip', ['link', 'set', 'lo', 'up']);
    execFileSync('ipvsadm', ['-C']);
    const dir = mkdtempSync(join(tmpdir(), 'scrape-bench-'));
    const file = join(dir, 'rules');
    writeFileSync(file, restoreText(n, d));
    const rr = spawnSync('sh', ['-c', `ipvsadm -R < ${file}`], { encoding: 'utf8' });
    rmSync(dir, { recursive: true, force: true });
    if (rr.status !== 0) throw new Error(`ipvsadm -R failed: ${rr.stderr}`);
    readers = sockets.map((k) => ({ what: `${k} netlink socket${k > 1 ? 's' : ''}`, spec: kernelTableReader({ sockets: k }) }));
    close = async () => {
      execFileSync('ipvsadm', ['-C']);
    };
  }

  const registry = new Registry();
  let reader = readers[0]!;
  // cacheMs 0: every scrape reads the table afresh (one read per scrape interval, as in the daemon).
  registerTableMetrics(registry, { reader: () => reader.spec, declared: () => cfg.virtual_servers, clock: new SystemClock() }, { cacheMs: 0 });
  const api = new ApiServer({ registry, status: () => ({}), unhealthy: () => null }, silentLogger);
  await api.listen('127.0.0.1:0');
  const url = `http://${api.address}/metrics`;
  // As the daemon's start does (src/ipvs/subsystem.ts): the worker started and sent the declared
  // services before any scrape. Watched like a scrape: it runs on the same loop.
  trace?.mark('priming');
  const prime = await withLoopWatch(() => primeTableMetrics(registry));
  process.stdout.write(`priming (worker start + ${n} declared services): ${r1(prime.ms)} ms, main loop busy at most ${r1(prime.maxBusyMs)} ms between two ${TICK_MS} ms ticks (longest gap ${r1(prime.maxGapMs)} ms; main thread CPU ${r1(prime.mainCpuMs)} ms, at most ${r1(prime.maxMainCpuMs)} ms between two ticks); load ${loadavg()}\n`);

  type Row = Watch & { reader: string; readMs: number; series: number; bytes: number; floorMs: number; loadavg: string; peerMs?: number; discard?: Watch; ctl: { maxGapMs: number; maxCpuMs: number } };
  const lv: Row[] = [];
  const peer: Array<{ ms: number; bytes: number }> = [];
  for (const r of readers) {
    reader = r;
    for (let i = 0; i < scrapes; i++) {
      trace?.mark('idle loop before a scrape');
      const floorMs = await noiseFloor(2000);
      await control.reset();
      trace?.mark(`scrape ${i + 1}`);
      const s = await withLoopWatch(() => runner.scrape(url));
      const ctl = await control.report();
      const load = loadavg();
      const p = host || noPeer ? undefined : await runner.peer();
      if (p) peer.push(p);
      // On the host, the same scrape once more with the body discarded (curl > /dev/null).
      trace?.mark(`scrape ${i + 1} again`);
      const x = host ? await withLoopWatch(() => runner.discard(url)) : undefined;
      // (The rest of the body — the read's time, process metrics — differs by a few bytes between two scrapes.)
      if (x && Math.abs(x.value.bytes - s.value.bytes) > 4096) throw new Error(`discarded scrape: ${x.value.bytes} bytes, counted scrape ${s.value.bytes}`);
      lv.push({ ...s, reader: r.what, readMs: s.value.readMs, series: s.value.series, bytes: s.value.bytes, floorMs, loadavg: load, ctl, ...(p ? { peerMs: p.ms } : {}), ...(x ? { discard: x } : {}) });
      process.stdout.write(`${r.what}, scrape ${i + 1}: lvsd ${r1(s.ms)} ms, process CPU ${r1(s.cpuMs)} ms, both threads (worker's read + text ${r1(s.value.readMs)} ms; ${s.value.series} series, ${(s.value.bytes / 1e6).toFixed(1)} MB), longest loop stall ${r1(s.maxGapMs)} ms (histogram max ${r1(s.histMaxMs)} ms, main loop busy at most ${r1(s.maxBusyMs)} ms between two ${TICK_MS} ms ticks; idle loop's longest gap just before ${r1(floorMs)} ms; main thread CPU ${r1(s.mainCpuMs)} ms (user ${s.mainUserMs}, system ${s.mainSysMs}), at most ${r1(s.maxMainCpuMs)} ms between two ticks; idle control process at the same time: at most ${ctl.maxCpuMs} ms CPU between two ticks, longest gap ${ctl.maxGapMs} ms)${p ? `; ${host ? 'prom-client, same series' : 'ipvsadm --stats + -Ln'} ${r1(p.ms)} ms` : ''}; load ${load}\n`);
      if (x) process.stdout.write(`${r.what}, scrape ${i + 1} again, body to /dev/null: lvsd ${r1(x.ms)} ms, process CPU ${r1(x.cpuMs)} ms, main thread CPU ${r1(x.mainCpuMs)} ms, at most ${r1(x.maxMainCpuMs)} ms between two ticks (main loop busy at most ${r1(x.maxBusyMs)} ms); load ${loadavg()}\n`);
    }
  }
  if (trace) process.stdout.write(trace.report(traceOverMs));
  await api.close();
  await stopTableMetrics(registry);
  await close();
  closeSync(schedstat);
  closeSync(statFd);
  runner.close();
  control.close();
  if (host && !noPeer) {
    // The peer after lvsd's scrapes: its ~1,000,000 label objects left the main thread a heap whose
    // collection stalled the next scrape's loop by 0.2 s when it ran between them.
    const load = loadavg();
    const p = await promClientScrape(bigTable(n, d), new Map(cfg.virtual_servers.map((v) => [v.key, v.name])));
    peer.push(p);
    process.stdout.write(`prom-client, same series: ${r1(p.ms)} ms; load ${load}\n`);
  }
  const expectSeries = n * 7 + n * d * 9; // 7 series per service, 9 per real server (see table-text.ts)
  if (lv.some((x) => x.series !== expectSeries)) throw new Error(`expected ${expectSeries} series per scrape, got ${lv.map((x) => x.series).join(', ')}`);

  const peerMedian = peer.length ? median(peer.map((x) => x.ms)) : NaN;
  for (const r of readers) {
    const rows = lv.filter((x) => x.reader === r.what);
    const out = {
      where: host ? 'host (table in memory)' : 'lab (UML kernel)',
      reader: r.what,
      table: `${n} services × ${d} destinations`,
      scrapes,
      loadavg: rows.map((x) => x.loadavg),
      priming: { ms: r1(prime.ms), maxLoopBusyBetweenTicksMs: r1(prime.maxBusyMs), maxMainThreadCpuBetweenTicksMs: r1(prime.maxMainCpuMs) },
      lvsd: {
        ms: rows.map((x) => r1(x.ms)), ...(host ? { discardedMs: rows.map((x) => r1(x.discard!.ms)), discardedMaxMainThreadCpuBetweenTicksMs: r1(Math.max(...rows.map((x) => x.discard!.maxMainCpuMs))) } : {}), readMs: rows.map((x) => r1(x.readMs)), processCpuMs: rows.map((x) => r1(x.cpuMs)),
        maxLoopStallMs: r1(Math.max(...rows.map((x) => x.maxGapMs))), maxLoopBusyBetweenTicksMs: r1(Math.max(...rows.map((x) => x.maxBusyMs))), mainThreadCpuMs: rows.map((x) => r1(x.mainCpuMs)), mainThreadUserMs: rows.map((x) => x.mainUserMs), mainThreadSysMs: rows.map((x) => x.mainSysMs), maxMainThreadCpuBetweenTicksMs: r1(Math.max(...rows.map((x) => x.maxMainCpuMs))), controlMaxCpuBetweenTicksMs: rows.map((x) => x.ctl.maxCpuMs), controlMaxGapMs: rows.map((x) => x.ctl.maxGapMs), idleLoopMaxGapMs: r1(Math.max(...rows.map((x) => x.floorMs))),
        series: rows[0]!.series, bytes: rows[0]!.bytes,
      },
      peer: { what: host ? 'prom-client' : 'ipvsadm -Ln --stats --exact + -Ln', ms: host ? [r1(peerMedian)] : rows.map((x) => r1(x.peerMs!)) },
      ratio: r2(median(rows.map((x) => x.ms)) / (host ? peerMedian : median(rows.map((x) => x.peerMs!)))),
    };
    process.stdout.write(`${r.what}: lvsd scrape median ${r1(median(rows.map((x) => x.ms)))} ms (goal < 1000), longest loop stall ${out.lvsd.maxLoopStallMs} ms (goal ≤ 20; idle loop ${out.lvsd.idleLoopMaxGapMs} ms)${noPeer ? '' : ` vs ${out.peer.what} → ratio ${out.ratio}`}\n`);
    process.stdout.write(JSON.stringify(out) + '\n');
  }
}

await main();
