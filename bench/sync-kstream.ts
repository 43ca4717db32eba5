/**
 * Issue 18: the kernel's master sync daemon as a stream of new connections, beside the /proc read,
 * in one run on the real kernel:
 *   bin/lvsd lab exec --mem 2048M -- node dist/bench/sync-kstream.js [--table 50000]
 *     [--low-rate 10] [--low-seconds 10] [--high-rate 1000] [--high-seconds 5] [--json FILE (a folder writable in the guest)]
 *
 * Namespaces on one bridge: the director a (192.0.2.2, VIP 192.0.2.100, UDP service :5353 and TCP
 * :80, DR to two real servers that drop what reaches them), a client c (192.0.2.50). In a: lo
 * multicast on; a kernel backup daemon on lo (port 8848, syncid 42: only to fill a's table, as
 * lvsd's channel keeps one there) and a kernel MASTER daemon on lo, group 224.0.0.81, port 8849,
 * sync_maxlen 1 (ip_vs_sync.c start_sync_thread clamps a master's maxlen to ≥ 1; ip_vs_sync_buff_create
 * makes a buffer of max(record + header, maxlen) bytes, so every buffer holds one record and the
 * next record queues it at once: only the last record before a pause waits for the 2 s flush).
 * bench/support/kstream-recv.ts in a joins the group on lo and notes when each UDP record arrives.
 * In the same moments this process reads a's /proc/net/ip_vs_conn the way lvsd's table worker
 * does (synchronous 64 KiB read() calls, each call's text searched as it comes, the pause after a
 * read = max(10 ms, 9 × read) capped at 50 ms − read, or = read when longer than 50 ms) and notes the
 * time of the read() call that first shows each flow.
 * Phases: (1) empty table, low rate; then a's table is filled to --table established TCP entries
 * (installed through the backup daemon), (2) low rate, (3) high rate. The load is
 * bench/support/sync-load.ts flows from c: new UDP "connections" of 3 datagrams each (the master
 * queues a connection at its 3rd packet, sync_threshold 3); a flow's time is its first datagram's
 * send (generator's wall clock, same guest clock). Figures per phase: time to the stream's record
 * and to the read's first sight, p50/p95/max over sampled flows, their ratio; CPU (% of one
 * core) over the phase of the receiver, of this process (the reader: user + system, the kernel's
 * seq_file work included) and of the kernel's ipvs-m thread. Bounded: every wait has a deadline.
 */
import { readdirSync, readFileSync, writeFileSync, openSync, readSync, closeSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { Topology, type Netns, type Running } from '../src/lab/netns.js';
import { activeConns } from './support/conn-count.js';

const VIP = '192.0.2.100';
const GROUP = '224.0.0.81';
const PORT = 8849;
const SYNCID = 42;
const HERE = dirname(fileURLToPath(import.meta.url));
const LOAD = join(HERE, 'support', 'sync-load.js');
const RECV = join(HERE, 'support', 'kstream-recv.js');
const wall = () => performance.timeOrigin + performance.now();

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : dflt;
}
const num = (name: string, dflt: number, max: number) => Math.min(max, Math.max(0, Number(arg(name, String(dflt)))));

const q = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)]! : NaN;
};
const stats = (xs: number[]) => ({ n: xs.length, p50: q(xs, 0.5), p95: q(xs, 0.95), max: xs.length ? Math.max(...xs) : NaN });
const r0 = (x: number) => (Number.isFinite(x) ? Math.round(x) : NaN);

function cpuSeconds(pid: number | string): number {
  const s = readFileSync(`/proc/${pid}/stat`, 'latin1');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}
/** CPU seconds of the kernel's IPVS master sync threads (ipvs-m:*). */
function masterThreadSeconds(): number {
  let sum = 0;
  for (const e of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(e)) continue;
    try {
      if (readFileSync(`/proc/${e}/comm`, 'latin1').startsWith('ipvs-m')) sum += cpuSeconds(e);
    } catch {
      /* gone */
    }
  }
  return sum;
}

/** lvsd's table worker's pause after a read (src/sync/table-worker.ts nextDelay, poll_interval 50 ms). */
function nextDelay(readMs: number, pollMs = 50): number {
  const ceiling = readMs > pollMs ? readMs : pollMs - readMs;
  return Math.min(ceiling, Math.max(10, readMs * 9));
}

async function until<T>(fn: () => Promise<T | undefined>, what: string, ms: number, step = 200): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(step);
  }
}

const chunk = Buffer.allocUnsafe(64 * 1024);
/** Flows of the client 192.0.2.50 to the VIP's :5353 (hex as /proc prints them): source port. */
const FLOW = /^UDP +C0000232 ([0-9A-F]{4}) C0000264 14E9/gm;

interface Phase {
  name: string;
  table: number;
  rate: number;
  achieved: number;
  sampled: number;
  stream: ReturnType<typeof stats>;
  proc: ReturnType<typeof stats>;
  ratioP50: number;
  ratioP95: number;
  reads: number;
  readMs: number;
  windowS: number;
  cpuRecv: number;
  cpuReader: number;
  cpuMaster: number;
  datagrams: number;
  records: number;
  drops: number;
  perDatagram: Record<string, number>;
}

async function phase(name: string, cl: Netns, a: Netns, recv: Running, recvPid: number, rate: number, seconds: number, base: number, table: number): Promise<Phase> {
  const count = Math.round(rate * seconds);
  const sample = Math.max(1, Math.floor(count / 500));
  const want = new Set<number>();
  for (let i = 0; i < count; i += sample) want.add(base + i);
  const procAt = new Map<number, number>();
  const outAt0 = recv.output().length;
  const status0 = lastStatus(recv.output());
  const cpu0 = process.cpuUsage();
  const m0 = masterThreadSeconds();
  const t0 = wall();
  let reads = 0;
  let readMs = 0;
  let genDone = 0;
  const streamAt = () => {
    const m = new Map<number, number>();
    for (const l of recv.output().slice(outAt0).split('\n')) {
      const f = l.split(' ');
      if (f[0] === 'r' && want.has(Number(f[1]))) m.set(Number(f[1]), Number(f[2]));
    }
    return m;
  };
  const gen = cl.start([process.execPath, LOAD, 'flows', VIP, '5353', String(rate), String(count), String(sample), String(base), String(seconds + 5)]);
  let genOut: { rate?: number; samples?: Array<[number, number]> } = {};
  void gen.exited.then(() => {
    genDone = Date.now();
    genOut = JSON.parse(gen.output().trim().split('\n').pop() || '{}');
  });
  const deadline = Date.now() + (seconds + 90) * 1000;
  for (;;) {
    const start = performance.now();
    const fd = openSync(`/proc/${recvPid}/net/ip_vs_conn`, 'r');
    let carry = '';
    try {
      for (let pos = 0; ; ) {
        const n = readSync(fd, chunk, 0, chunk.length, pos);
        if (n === 0) break;
        pos += n;
        const t = wall();
        const text = carry + chunk.toString('latin1', 0, n);
        const cut = text.lastIndexOf('\n') + 1;
        carry = text.slice(cut);
        for (const m of text.slice(0, cut).matchAll(FLOW)) {
          const p = parseInt(m[1]!, 16);
          if (want.has(p) && !procAt.has(p)) procAt.set(p, t);
        }
      }
    } finally {
      closeSync(fd);
    }
    const ms = performance.now() - start;
    reads++;
    readMs += ms;
    const s = genDone ? streamAt() : undefined;
    if (genDone && s && procAt.size >= want.size && s.size >= want.size) break;
    if (genDone && Date.now() - genDone > 30_000) break;
    if (Date.now() > deadline) break;
    await sleep(nextDelay(ms));
  }
  const windowS = (wall() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const m1 = masterThreadSeconds();
  await sleep(1100); // one more status line of the receiver
  const status1 = lastStatus(recv.output());
  const sent = new Map(genOut.samples ?? []);
  const st = streamAt();
  const ds: number[] = [];
  const dp: number[] = [];
  for (const [p, at] of sent) {
    const a1 = st.get(p);
    if (a1 !== undefined) ds.push(a1 - at);
    const b1 = procAt.get(p);
    if (b1 !== undefined) dp.push(b1 - at);
  }
  const stream = stats(ds);
  const proc = stats(dp);
  const perDatagram: Record<string, number> = {};
  for (const [k, v] of Object.entries(status1.perDatagram ?? {})) perDatagram[k] = v - (status0.perDatagram?.[k] ?? 0);
  return {
    name,
    table,
    rate,
    achieved: Math.round(genOut.rate ?? 0),
    sampled: sent.size,
    stream,
    proc,
    ratioP50: proc.p50 / stream.p50,
    ratioP95: proc.p95 / stream.p95,
    reads,
    readMs: readMs / Math.max(1, reads),
    windowS,
    cpuRecv: ((status1.cpuUs - status0.cpuUs) / 1e6 / windowS) * 100,
    cpuReader: ((cpu.user + cpu.system) / 1e6 / windowS) * 100,
    cpuMaster: ((m1 - m0) / windowS) * 100,
    datagrams: status1.datagrams - status0.datagrams,
    records: status1.records - status0.records,
    drops: status1.drops - status0.drops,
    perDatagram,
  };
}

interface Status {
  cpuUs: number;
  datagrams: number;
  records: number;
  drops: number;
  perDatagram?: Record<string, number>;
}
function lastStatus(out: string): Status {
  const lines = out.split('\n').filter((l) => l.startsWith('{"at"'));
  return lines.length ? (JSON.parse(lines[lines.length - 1]!) as Status) : { cpuUs: 0, datagrams: 0, records: 0, drops: 0 };
}

async function main(): Promise<void> {
  if (!process.env.LVSD_IN_LAB) throw new Error('run inside the lab guest: bin/lvsd lab exec --mem 2048M -- node dist/bench/sync-kstream.js');
  const tableSize = num('table', 50_000, 200_000);
  const low = num('low-rate', 10, 100);
  const lowS = num('low-seconds', 10, 60);
  const high = num('high-rate', 1000, 5000);
  const highS = num('high-seconds', 5, 30);
  const started = new Date().toISOString();
  const load0 = loadavg();
  const topo = new Topology();
  const procs: Running[] = [];
  try {
    const cl = await topo.member('cl', ['192.0.2.50/24']);
    const a = await topo.member('a', ['192.0.2.2/24', `${VIP}/24`]);
    for (const [i, addr] of ['192.0.2.11', '192.0.2.12'].entries()) await topo.member(`rs${i}`, [`${addr}/24`]);
    const sh = async (argv: string[]) => {
      const r = await a.exec(argv, { via: 'nsenter', check: false });
      if (r.code !== 0) throw new Error(`${argv.join(' ')}: ${r.stderr.trim()}`);
      return r.stdout;
    };
    await sh(['ipvsadm', '-A', '-u', `${VIP}:5353`, '-s', 'rr']);
    for (const rs of ['192.0.2.11', '192.0.2.12']) await sh(['ipvsadm', '-a', '-u', `${VIP}:5353`, '-r', rs, '-g']);
    await sh(['ipvsadm', '-A', '-t', `${VIP}:80`, '-s', 'rr']);
    await sh(['ipvsadm', '-a', '-t', `${VIP}:80`, '-r', '192.0.2.11:80', '-g']);
    await sh(['ip', 'link', 'set', 'lo', 'multicast', 'on']);
    await sh(['ipvsadm', '--start-daemon', 'backup', '--mcast-interface', 'lo', '--syncid', String(SYNCID)]);
    await sh(['ipvsadm', '--start-daemon', 'master', '--mcast-interface', 'lo', '--syncid', String(SYNCID), '--sync-maxlen', '1', '--mcast-group', GROUP, '--mcast-port', String(PORT)]);
    const daemons = await sh(['ipvsadm', '-L', '--daemon']);
    process.stderr.write(daemons);
    const recv = a.start([process.execPath, RECV, GROUP, String(PORT), '900']);
    procs.push(recv);
    await until(async () => (recv.output().includes('{"at"') ? true : undefined), 'the receiver', 30_000);
    const recvPid = recv.child.pid!;
    // The receiver is the nsenter/ip child's process tree: find the node process in a's namespace by its argv.
    const nodePid = (() => {
      for (const e of readdirSync('/proc')) {
        if (!/^[0-9]+$/.test(e)) continue;
        try {
          if (readFileSync(`/proc/${e}/cmdline`, 'latin1').includes('kstream-recv')) return Number(e);
        } catch {
          /* gone */
        }
      }
      return recvPid;
    })();
    const phases: Phase[] = [];
    phases.push(await phase('empty table, low rate', cl, a, recv, nodePid, low, lowS, 2000, 0));
    const inj = a.start([process.execPath, LOAD, 'inject', String(tableSize), String(SYNCID)]);
    procs.push(inj);
    await Promise.race([inj.exited, sleep(150_000)]);
    const inA = await until(async () => {
      const n = await activeConns(a, `${VIP}:80`, '192.0.2.11:80');
      return n >= tableSize ? n : undefined;
    }, `${tableSize} entries in a's kernel`, 90_000, 500).catch(() => activeConns(a, `${VIP}:80`, '192.0.2.11:80'));
    process.stderr.write(`table filled: ${inA}\n`);
    phases.push(await phase(`${tableSize} entries, low rate`, cl, a, recv, nodePid, low, lowS, 5000, inA));
    phases.push(await phase(`${tableSize} entries, high rate`, cl, a, recv, nodePid, high, highS, 10000, inA));
    const load1 = loadavg();
    const out = { started, ended: new Date().toISOString(), hostLoadNote: 'guest loadavg below; host load from uptime outside', guestLoad: [load0, load1], daemons, phases };
    const f = (s: ReturnType<typeof stats>) => `${r0(s.p50)} / ${r0(s.p95)} / ${r0(s.max)} (${s.n})`;
    console.log(`started ${started}, guest load ${load0.map((x) => x.toFixed(2)).join(' ')} → ${load1.map((x) => x.toFixed(2)).join(' ')}`);
    console.log('| phase | rate (achieved) | stream: ms p50 / p95 / max (flows) | /proc read: ms p50 / p95 / max (flows) | ratio p50, p95 | read ms (reads) | CPU % receiver / reader / ipvs-m | datagrams, records, records per datagram, socket drops |');
    console.log('|---|---|---|---|---|---|---|---|');
    for (const p of phases)
      console.log(`| ${p.name} | ${p.rate} (${p.achieved}) | ${f(p.stream)} | ${f(p.proc)} | ${p.ratioP50.toFixed(1)}, ${p.ratioP95.toFixed(1)} | ${r0(p.readMs)} (${p.reads}) | ${p.cpuRecv.toFixed(1)} / ${p.cpuReader.toFixed(1)} / ${p.cpuMaster.toFixed(1)} | ${p.datagrams}, ${p.records}, ${JSON.stringify(p.perDatagram)}, ${p.drops} |`);
    const sources = new Set(recv.output().split('\n').filter((l) => l.startsWith('r ')).map((l) => l.split(' ')[3]));
    console.log(`stream datagrams came from: ${[...sources].join(', ')}`);
    const json = arg('json', '');
    if (json) writeFileSync(json, JSON.stringify(out, null, 2));
  } finally {
    for (const p of procs) if (p.child.exitCode === null) p.child.kill('SIGTERM');
    await topo.destroy();
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
