/**
 * Failover benchmark: the outage a client sees when the master director dies (hard kill) or stops
 * (graceful), for lvsd and for keepalived with the same settings, in the same run.
 *
 * Per trial, fresh namespaces: directors a (priority 150) and b (100) and a client c on a bridge.
 * Both directors serve a UDP echo on every address (so on the VIP when they hold it) that answers
 * with its name (warmed up over loopback at its start); the client sends a probe to the VIP every 1 ms and reports the gap between the last
 * answer from a and the first from b. Hard kill = every process in a's namespace is frozen (a crashed
 * host: no goodbye advert, no VIP removal; SIGKILL and link down follow once the client has been
 * answered by b, so their CPU cost stays out of the measured window); graceful = SIGTERM to the
 * daemon only. The hard kill is phase-locked: it comes right after an advert of a's, seen by a
 * sniffer in c (`--no-phase-lock` kills at a random point of the advert interval instead).
 *
 * With --wire, the client also captures (dumpcap) and each hard-kill trial reports the time on the
 * wire from a's last advert to b's first gratuitous ARP: the takeover itself, free of the probe's
 * 1 ms quantisation and of when a's last answer left. Printed as extra "wire" rows. --keep-pcap DIR
 * keeps those captures (with the probe's datagrams) for a look at the new master's reply path.
 * Processes are titled (echo-a, echo-b, probe; lvsd shows as node) for `perf sched timehist`.
 *
 * Usage: node dist/bench/failover.js [--trials N] [--rows v2-1,v3-0.1,v3-0.01] [--impls lvsd,keepalived] [--how kill,stop] [--settle-ms MS] [--no-phase-lock] [--wire] [--keep-pcap DIR] [--json FILE]
 * Needs root. Prints one line per row and implementation (p50/p99/max in ms) and the lvsd/keepalived
 * ratios; each lvsd kill trial's line also carries b's own account of the takeover from its log
 * (silence, timer_late, wake_early, prep in ms).
 * Diagnostics (environment): BENCH_DEBUG=1 prints b's log tail for trials slower than
 * BENCH_DEBUG_FACTOR (default 1.5) × Master_Down_Interval; BENCH_LVSD_NODE_ARGS adds node options to
 * every lvsd started (e.g. `--trace-gc`; NODE_OPTIONS refuses some).
 */
import { writeFileSync, readFileSync, existsSync, statSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { Topology, pidsIn } from '../src/lab/netns.js';
import { waitFor } from '../test/support/proc.js';
import { startPeer, removeScratch, type PeerSpec } from '../test/election-net/support/peers.js';

const VIP = '192.0.2.42';
const PORT = 7070;

interface Row {
  readonly key: string;
  readonly version: 2 | 3;
  readonly advert: number;
}
const ROWS: Row[] = [
  { key: 'v2-1', version: 2, advert: 1 },
  { key: 'v3-0.1', version: 3, advert: 0.1 },
  { key: 'v3-0.01', version: 3, advert: 0.01 },
];

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

// Echo service: answers every datagram with its name. Warmed up at start: it sends itself
// ECHO_WARM datagrams over loopback and answers them through the same handler (its own answers are
// dropped), so the first client datagram after a takeover meets a warm service, as in production.
// Cold, a new master's echo spent 3-6 ms of CPU on its first answer (perf sched, session 10), which
// under the bench's own CPU noise turned into 10-17 ms reply-path outliers for either implementation.
const ECHO_WARM = 300;
const echo = (name: string) =>
  `process.title='echo-${name}';const s=require('dgram').createSocket('udp4');const me=${JSON.stringify(name)};` +
  `s.on('message',(m,r)=>{if(r.address==='127.0.0.1'&&m.toString()===me)return;s.send(me,r.port,r.address);});` +
  `s.bind(${PORT},()=>{for(let i=0;i<${ECHO_WARM};i++)s.send('w',${PORT},'127.0.0.1');});`;
// Probe: one datagram per ms; prints "switch GAP_MS" when answers move from a to b, "first" on the first answer.
const probe = `process.title='probe';const s=require('dgram').createSocket('udp4');let lastA=0,sw=false,first=true;
s.on('message',(m)=>{const t=performance.now();const w=m.toString();if(first){first=false;process.stdout.write('first '+w+'\\n');}
if(w==='a')lastA=t;else if(w==='b'&&lastA>0&&!sw){sw=true;process.stdout.write('switch '+(t-lastA).toFixed(2)+'\\n');}});
s.bind(()=>{let n=0;const t=setInterval(()=>{s.send('p',${PORT},'${VIP}',()=>{});if(++n>600000)clearInterval(t);},1);});`;

// Phase lock for the hard kill: prints "adv SRC" for every VRRP packet seen on 224.0.0.18, so the
// master can be killed right after one of its adverts. Without it the kill lands anywhere in the
// advert interval and that phase (uniform over 1 s at v2-1) swamps the implementations' difference.
const sniffer = [
  'import socket, struct, sys',
  's = socket.socket(socket.AF_INET, socket.SOCK_RAW, 112)',
  // struct ip_mreqn on eth0 by index: the client has no route for 224.0.0.0/4 to pick one from.
  "s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, struct.pack('4s4si', socket.inet_aton('224.0.0.18'), socket.inet_aton('0.0.0.0'), socket.if_nametoindex('eth0')))",
  'while True:',
  '    p = s.recv(2048)',
  "    sys.stdout.write('adv ' + socket.inet_ntoa(p[12:16]) + '\\n'); sys.stdout.flush()",
].join('\n');

// Ctrl-C: the Topology's own handler removes the namespaces and processes; this one the scratch folders.
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    removeScratch();
    process.exit(130);
  });
}

/** Time given to the echo services to start before the probe does (they are Node processes: ~50 ms). */
const ECHO_START_MS = 200;
let phaseLock = true;
let wire = false;
/** --keep-pcap DIR: keep each --wire capture there, with the probe's UDP too (for reply-path analysis). */
let keepPcap: string | undefined;
/** Steady state with the probe running before the kill/stop, ms (default max(300, 2 advert intervals)). */
let settleMs: number | undefined;

/**
 * From a capture on the client: a's last VRRP advert before b's first gratuitous ARP for the VIP, to
 * that ARP, in ms (kernel capture timestamps).
 */
async function wireGap(c: Awaited<ReturnType<Topology['member']>>, file: string, bMac: string): Promise<number | undefined> {
  const r = await c.exec(['tshark', '-r', file, '-T', 'fields', '-E', 'separator=,', '-e', 'frame.time_epoch', '-e', 'eth.src', '-e', 'ip.src', '-e', 'ip.proto', '-e', 'arp.src.proto_ipv4']);
  let lastAdv: number | undefined;
  for (const line of r.stdout.split('\n')) {
    const [t, mac, ipSrc, proto, arpIp] = line.split(',');
    if (!t) continue;
    if (ipSrc === '192.0.2.1' && proto === '112') lastAdv = Number(t);
    else if (arpIp === VIP && mac === bMac && lastAdv !== undefined) return (Number(t) - lastAdv) * 1000;
  }
  return undefined;
}

async function trial(row: Row, impl: PeerSpec['kind'], how: 'kill' | 'stop'): Promise<{ gap: number | undefined; wire?: number; note?: string | undefined }> {
  const topo = new Topology();
  try {
    const a = await topo.member('a', ['192.0.2.1/24']);
    const b = await topo.member('b', ['192.0.2.2/24']);
    const c = await topo.member('c', ['192.0.2.3/24']);
    const base = { kind: impl, version: row.version, advert: row.advert, vips: [`${VIP}/24`], garpRepeat: 5, garpDelay: 5 } as const;
    const pa = startPeer(a, { ...base, name: 'a', priority: 150 });
    const pb = startPeer(b, { ...base, name: 'b', priority: 100 });
    const mdiMs = (3 + 156 / 256) * row.advert * 1000;
    await waitFor(async () => (await a.addrs()).includes(VIP) && !(await b.addrs()).includes(VIP), 'a to be master', mdiMs * 2 + 30000, 20).catch(async (e: unknown) => {
      const tail = (o: string) => o.split('\n').slice(-12).join('\n');
      process.stderr.write(`a: ${(await a.addrs()).join(' ')}\n${tail(pa.proc.output())}\nb: ${(await b.addrs()).join(' ')}\n${tail(pb.proc.output())}\n`);
      throw e;
    });
    // The echo services start now, once the election has settled, not with the daemons: their age
    // and idle time at the kill must not depend on how long the implementation under test takes to
    // start and elect. Started with the daemons, b's echo had slept 1.4-1.6 s before its first
    // datagram in lvsd trials (a Node process starting) and 0.54-0.56 s in keepalived trials (perf
    // sched), and answered later after the longer sleep: at 0.01 s, GARP -> first answer 5.21 vs
    // 4.24 ms (medians of 50), with both waits made equal (settle 3 s) 4.64 vs 4.56 ms.
    a.start([process.execPath, '-e', echo('a')]);
    b.start([process.execPath, '-e', echo('b')]);
    await sleep(ECHO_START_MS);
    const pr = c.start([process.execPath, '-e', probe]);
    let gap: number | undefined;
    let first = false;
    createInterface({ input: pr.child.stdout! }).on('line', (l) => {
      if (l.startsWith('first a')) first = true;
      const m = /^switch ([\d.]+)/.exec(l);
      if (m) gap = Number(m[1]);
    });
    const sn = how === 'kill' && phaseLock ? c.start(['python3', '-u', '-c', sniffer]) : undefined;
    let onAdvertFromA: (() => void) | undefined;
    if (sn) createInterface({ input: sn.child.stdout! }).on('line', (l) => {
      if (l === 'adv 192.0.2.1') onAdvertFromA?.();
    });
    const pcap = join(tmpdir(), `${topo.prefix}-c.pcapng`);
    const cap = wire && how === 'kill' ? c.start(['dumpcap', '-q', '-i', 'eth0', '-f', keepPcap ? 'arp or ip proto 112 or udp' : 'arp or ip proto 112', '-w', pcap]) : undefined;
    if (cap) {
      await waitFor(() => existsSync(pcap) && statSync(pcap).size > 0, 'dumpcap to start', 5000, 10);
    }
    await waitFor(() => first, 'the client to reach a', 3000, 5);
    // Settle: a few adverts in steady state with the probe running.
    await sleep(settleMs ?? Math.max(300, row.advert * 2000));
    if (how === 'kill') {
      const pids = pidsIn([a.name]);
      // Bounded: without a sniffed advert within three intervals the kill goes ahead unlocked (said on stderr).
      if (sn) {
        const locked = await Promise.race([new Promise<boolean>((resolve) => (onAdvertFromA = () => resolve(true))), sleep(row.advert * 3000 + 500).then(() => false)]);
        if (!locked) process.stderr.write(`no advert from a seen by the sniffer: kill not phase-locked\n${sn.output().slice(-500)}\n`);
      }
      // Frozen now, torn down once the client has its answer: on a real pair the dead master's
      // teardown happens on another machine, here it would share the 2 CPUs with the backup inside
      // the measured window — and cost what the implementation under test costs to tear down
      // (perf sched, session 4: the killed lvsd's exit ran 22 ms and `ip link set down` ~15 ms on
      // the two CPUs right at b's deadline; b's lvsd waited 14 ms for a CPU and took over 9 ms late).
      a.freeze(pids);
      // The sniffer has done its job; left running it would wake on every advert of b's, right when
      // b takes over — and b's first advert comes before its GARP with keepalived but after it with
      // lvsd, so it would load the client's CPUs inside the measured window for one of them only.
      if (sn?.child.pid) process.kill(sn.child.pid, 'SIGKILL');
    } else {
      process.kill(pa.pid, 'SIGTERM');
    }
    await waitFor(() => gap !== undefined, 'the client to be answered by b', mdiMs + 5000, 2).catch(() => undefined);
    if (how === 'kill') {
      a.crash();
      await a.ipBatch(['link set eth0 down']);
    }
    if (process.env.BENCH_DEBUG && (gap === undefined || gap > mdiMs * Number(process.env.BENCH_DEBUG_FACTOR ?? 1.5))) {
      await sleep(200);
      process.stderr.write(`--- b's output (gap ${gap}):\n${pb.proc.output().split('\n').slice(-15).join('\n')}\n`);
    }
    let w: number | undefined;
    if (cap) {
      // libpcap hands packets over per buffer block, at the latest after its ~1 s timeout: wait for it.
      await sleep(1200);
      if (cap.child.pid) process.kill(cap.child.pid, 'SIGINT');
      await sleep(300);
      w = await wireGap(c, pcap, await b.mac());
      if (keepPcap) writeFileSync(join(keepPcap, `${row.key}-${impl}-${Date.now()}.pcapng`), readFileSync(pcap));
      rmSync(pcap, { force: true });
    }
    return { gap, ...(w !== undefined ? { wire: w } : {}), ...(impl === 'lvsd' ? { note: takeoverNote(pb.proc.output()) } : {}) };
  } finally {
    await topo.destroy();
  }
}

/**
 * b's own account of a timed-out takeover, from its log line: how late its timer acted, how early the
 * host timer woke and how long the JavaScript before the sleep took (runtime armTimer).
 */
function takeoverNote(out: string): string | undefined {
  for (const line of out.split('\n').reverse()) {
    if (!line.includes('BACKUP -> MASTER')) continue;
    try {
      const j = JSON.parse(line) as Record<string, unknown>;
      const f = (k: string) => (typeof j[k] === 'number' ? `${k.replace(/_ms$/, '')} ${j[k] as number}` : undefined);
      return [f('silence_ms'), f('timer_late_ms'), f('wake_early_ms'), f('prep_ms')].filter(Boolean).join(', ') || undefined;
    } catch {
      return undefined;
    }
  }
  return undefined;
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

function usageError(msg: string): never {
  process.stderr.write(`bench/failover: ${msg}\n`);
  process.exit(2);
}

async function mainBench(): Promise<void> {
  if (process.getuid?.() !== 0) {
    process.stderr.write('bench/failover needs root (network namespaces)\n');
    process.exit(77);
  }
  const trials = Number(arg('trials') ?? 5);
  phaseLock = !process.argv.includes('--no-phase-lock');
  keepPcap = arg('keep-pcap');
  // Created now: a missing folder failed every trial at its end (the capture could not be kept).
  if (keepPcap) mkdirSync(keepPcap, { recursive: true });
  const settle = arg('settle-ms');
  if (settle !== undefined) settleMs = Number(settle);
  if (settleMs !== undefined && !(settleMs >= 0)) usageError(`--settle-ms: not a number of milliseconds: ${settle}`);
  wire = process.argv.includes('--wire') || keepPcap !== undefined;
  const rowKeys = (arg('rows') ?? ROWS.map((r) => r.key).join(',')).split(',');
  const impls = (arg('impls') ?? 'lvsd,keepalived').split(',') as Array<PeerSpec['kind']>;
  const hows = (arg('how') ?? 'kill,stop').split(',');
  for (const h of hows) if (h !== 'kill' && h !== 'stop') usageError(`--how: "${h}" is neither kill nor stop`);
  const results: Array<{ row: string; impl: string; how: string; gaps: number[]; failed: number }> = [];
  for (const row of ROWS.filter((r) => rowKeys.includes(r.key))) {
    for (const how of hows as Array<'kill' | 'stop'>) {
      const gaps: Record<string, number[]> = {};
      const wires: Record<string, number[]> = {};
      const failed: Record<string, number> = {};
      for (let i = 0; i < trials; i++) {
        // Interleave the implementations so drift in machine load hits both alike.
        for (const impl of impls) {
          const t = await trial(row, impl, how).catch((e: unknown) => {
            process.stderr.write(`trial failed: ${String(e)}\n`);
            return undefined;
          });
          const g = t?.gap;
          if (g === undefined) failed[impl] = (failed[impl] ?? 0) + 1;
          else (gaps[impl] ??= []).push(g);
          if (t?.wire !== undefined) (wires[impl] ??= []).push(t.wire);
          process.stderr.write(`${row.key} ${how} ${impl} #${i + 1}: ${g === undefined ? 'no switch seen' : `${g.toFixed(1)} ms`}${t?.wire !== undefined ? ` (wire ${t.wire.toFixed(2)} ms)` : ''}${t?.note ? ` [${t.note}]` : ''}\n`);
        }
      }
      for (const impl of impls) results.push({ row: row.key, impl, how, gaps: gaps[impl] ?? [], failed: failed[impl] ?? 0 });
      for (const impl of impls) if (wires[impl]?.length) results.push({ row: row.key, impl, how: 'wire', gaps: wires[impl], failed: 0 });
    }
  }
  removeScratch();
  const lines = ['row       how   impl        n  fail   p50 ms   p99 ms   max ms'];
  for (const r of results) {
    const f = (x: number) => x.toFixed(r.how === 'wire' ? 2 : 1).padStart(8);
    lines.push(
      `${r.row.padEnd(9)} ${r.how.padEnd(5)} ${r.impl.padEnd(10)} ${String(r.gaps.length).padStart(2)} ${String(r.failed).padStart(5)} ` +
        (r.gaps.length ? `${f(pct(r.gaps, 50))} ${f(pct(r.gaps, 99))} ${f(Math.max(...r.gaps))}` : '       -        -        -'),
    );
  }
  lines.push('', 'ratio lvsd/keepalived (≤ 1.0 means lvsd fails over at least as fast)');
  for (const row of rowKeys) {
    for (const how of ['kill', 'stop', 'wire']) {
      const l = results.find((r) => r.row === row && r.how === how && r.impl === 'lvsd');
      const k = results.find((r) => r.row === row && r.how === how && r.impl === 'keepalived');
      if (!l?.gaps.length || !k?.gaps.length) continue;
      // Four decimals: at 1 s adverts a 2 ms difference is 0.0005, which two would print as 1.00.
      lines.push(`${row.padEnd(9)} ${how.padEnd(5)} p50 ${(pct(l.gaps, 50) / pct(k.gaps, 50)).toFixed(4)}  p99 ${(pct(l.gaps, 99) / pct(k.gaps, 99)).toFixed(4)}`);
    }
  }
  process.stdout.write(lines.join('\n') + '\n');
  const out = arg('json');
  if (out) writeFileSync(out, JSON.stringify({ trials, results }, null, 2));
}

await mainBench();
