/**
 * False-failover check: an lvsd pair at VRRPv3 0.01 s adverts runs for a while, optionally with
 * CPU burners on the machine (busy loops in the backup's namespace, which compete for the same
 * cores), and we count master changes after the first election (any is a false failover), late
 * master_down timers the guard re-checked, and the backup's event-loop lag.
 *
 * With --probe, one freeze probe per CPU (pinned with taskset, SCHED_FIFO with chrt, a 1 ms futex
 * sleep loop, no network) records every wake more than 30 ms late: a freeze no process on that CPU
 * could have escaped (a paused or throttled vCPU, or the kernel), as against a stall of a daemon.
 * Each takeover is then listed with the freezes that overlapped its silence.
 *
 * Usage: node dist/bench/failover-stability.js [--seconds 600] [--burners 2] [--impls lvsd,keepalived] [--nice -20] [--probe]
 * Needs root.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { spawn, type ChildProcess } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { Topology } from '../src/lab/netns.js';
import { waitFor } from '../test/support/proc.js';
import { startPeer, removeScratch, type PeerSpec } from '../test/election-net/support/peers.js';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] ?? def : def;
}

const VIP = '192.0.2.42';

interface Freeze { readonly cpu: number; readonly start: number; readonly ms: number }

/** Freeze probes, one per CPU (see the header); bounded by `seconds`, killed by handle at the end. */
function startProbes(seconds: number): { freezes: Freeze[]; stop: () => void } {
  const freezes: Freeze[] = [];
  const procs: ChildProcess[] = [];
  const code = `const a=new Int32Array(new SharedArrayBuffer(4));const end=Date.now()+${seconds * 1000};let prev=performance.now();` +
    `while(Date.now()<end){Atomics.wait(a,0,0,1);const t=performance.now();const g=t-prev-1;prev=t;` +
    `if(g>30)process.stdout.write(JSON.stringify({start:Date.now()-g-1,ms:g})+'\\n');}`;
  for (let cpu = 0; cpu < availableParallelism(); cpu++) {
    const p = spawn('chrt', ['-f', '1', 'taskset', '-c', String(cpu), process.execPath, '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
    let buf = '';
    p.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        try {
          const f = JSON.parse(line) as { start: number; ms: number };
          freezes.push({ cpu, start: f.start, ms: f.ms });
        } catch { /* partial line */ }
      }
    });
    procs.push(p);
  }
  return { freezes, stop: () => procs.forEach((p) => p.kill('SIGKILL')) };
}

async function run(kind: PeerSpec['kind'], seconds: number, burners: number, nice: number | undefined, probe: boolean): Promise<string> {
  const probes = probe ? startProbes(seconds + 60) : undefined;
  const topo = new Topology();
  try {
    const a = await topo.member('a', ['192.0.2.1/24']);
    const b = await topo.member('b', ['192.0.2.2/24']);
    const base = { kind, version: 3, advert: 0.01, vips: [`${VIP}/24`], ...(nice !== undefined ? { nice } : {}) } as const;
    const pa = startPeer(a, { ...base, name: 'a', priority: 150 });
    const pb = startPeer(b, { ...base, name: 'b', priority: 100 });
    await waitFor(async () => (await a.addrs()).includes(VIP) && !(await b.addrs()).includes(VIP), 'a master', 30000, 20);
    await sleep(500);
    // Bounded busy loops (each ends by itself after `seconds`).
    for (let i = 0; i < burners; i++) b.start([process.execPath, '-e', `const e=Date.now()+${seconds * 1000};let x=0;while(Date.now()<e){x+=Math.sqrt(x+1);}`]);
    const before = pb.proc.output();
    const beforeA = pa.proc.output();
    let flaps = 0;
    const end = Date.now() + seconds * 1000;
    let wasB = false;
    while (Date.now() < end) {
      const isB = (await b.addrs()).includes(VIP);
      if (isB && !wasB) flaps++;
      wasB = isB;
      await sleep(5);
    }
    const log = pb.proc.output().slice(before.length);
    const toMaster = kind === 'lvsd' ? (log.match(/"to":"MASTER"/g) ?? []).length : (log.match(/Entering MASTER STATE/g) ?? []).length;
    const late = (log.match(/timer fired late/g) ?? []).length;
    // The master's late-advert warnings (at most one a second is logged; the metric counts all).
    const lateAdverts = (pa.proc.output().slice(beforeA.length).match(/advert sent late/g) ?? []).length;
    let lag = '';
    if (kind === 'lvsd') {
      // Both daemons' event-loop lag: a master stalled past the backup's Master_Down_Interval sends nothing.
      for (const [who, ns] of [['a', a], ['b', b]] as const) {
        const r = await ns.exec(['node', '-e', "fetch('http://127.0.0.1:9650/metrics').then(r=>r.text()).then(t=>process.stdout.write(t))"], { check: false });
        const m = r.code === 0 ? r.stdout : '';
        const q = (k: string) => m.match(new RegExp(`lvsd_event_loop_lag_seconds\\{quantile="${k}"\\} ([0-9.e-]+)`))?.[1];
        const ms = (v: string | undefined) => (v === undefined ? '?' : (Number(v) * 1000).toFixed(1));
        const bs = m.match(/lvsd_vrrp_adverts_backstop_total\{[^}]*\} (\d+)/)?.[1] ?? '0';
        lag += ` ${who}: loop lag p99 ${ms(q('0.99'))} ms max ${ms(q('1'))} ms, backstop adverts ${bs};`;
      }
    }
    // Each transition after the first election, with its reason (lvsd logs {from,to,reason}; keepalived
    // its state lines): the evidence for what made the backup take over.
    const pick = (who: string, text: string): string[] =>
      text.split('\n').filter((l) => /"to":"(MASTER|BACKUP)"|Entering (MASTER|BACKUP) STATE|forcing a new MASTER election|timer fired late/.test(l)).map((l) => `  ${who}: ${l.slice(0, 300)}`);
    const transitions = [...pick('a', pa.proc.output().slice(beforeA.length)), ...pick('b', log)];
    if (probes) {
      // Takeovers against the freezes the probes saw during the master's silence before each.
      for (let i = 0; i < transitions.length; i++) {
        const m = transitions[i]!.match(/"silence_ms":([0-9.]+).*"at":"([^"]+)"/);
        if (!m) continue;
        const end = Date.parse(m[2]!);
        const begin = end - Number(m[1]);
        const hit = probes.freezes.filter((f) => f.start < end && f.start + f.ms > begin);
        transitions[i] += `\n     freezes overlapping the silence: ${hit.length ? hit.map((f) => `cpu${f.cpu} ${f.ms.toFixed(1)} ms from ${new Date(f.start).toISOString().slice(11, 23)}`).join(', ') : 'none'}`;
      }
      const big = probes.freezes.filter((f) => f.ms > 30);
      transitions.push(`  probes: ${big.length} CPU freezes > 30 ms in the run (max ${Math.max(0, ...big.map((f) => f.ms)).toFixed(1)} ms)`);
    }
    return `${kind.padEnd(10)} ${seconds}s burners=${burners} nice=${nice ?? '-'}: backup->master transitions ${toMaster}, VIP appeared on backup ${flaps}x, late-timer graces ${late}, master late-advert warnings ${lateAdverts} ${lag}${transitions.length > 0 ? '\n' + transitions.join('\n') : ''}`;
  } finally {
    probes?.stop();
    await topo.destroy();
  }
}

const seconds = Number(arg('seconds', '600'));
const burners = Number(arg('burners', '2'));
// --nice N: both daemons at scheduling priority N (lvsd global.nice, keepalived vrrp_priority).
const niceArg = arg('nice', '');
const nice = niceArg === '' ? undefined : Number(niceArg);
if (process.getuid?.() !== 0) {
  process.stderr.write('needs root\n');
  process.exit(77);
}
for (const kind of arg('impls', 'lvsd,keepalived').split(',') as Array<PeerSpec['kind']>) {
  process.stdout.write((await run(kind, seconds, burners, nice, process.argv.includes('--probe'))) + '\n');
}
removeScratch();
