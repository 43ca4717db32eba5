/**
 * `lvsd demo --vrrp`: a self-contained VRRP failover on one machine, without touching the host's real
 * interfaces. Network namespaces for two directors and a client on a bridge (the bridge lives in its
 * own namespace too), two `lvsd run` daemons with the VRRP-only example (temp copies: priorities
 * and router ids adapted, interface eth0 inside the namespaces), a UDP echo on each director standing
 * in for the proxy that listens on the VIP, and a client probing the VIP every 5 ms. The demo shows
 * who is master and that the client reaches the VIP, kills the master (SIGKILL: a crashed host), and
 * shows the takeover and its duration as seen by the backup and by the client. Everything it created
 * is removed at the end, also on Ctrl-C (src/lab/netns.ts hooks SIGINT/SIGTERM/exit).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import type { ChildProcess } from 'node:child_process';
import yaml from 'js-yaml';
import { Topology, type Netns } from '../netns.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');
const ECHO_PORT = 7070;

interface Director {
  readonly label: string;
  readonly ns: Netns;
  readonly addr: string;
  readonly priority: number;
  proc?: ChildProcess;
}

const t0 = Date.now();
const stamp = () => `${((Date.now() - t0) / 1000).toFixed(3).padStart(7)}s`;
const say = (s: string) => process.stdout.write(`${stamp()}  ${s}\n`);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until<T>(fn: () => Promise<T | undefined | false> | T | undefined | false, ms: number, every = 10): Promise<T | undefined> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    await sleep(every);
  }
  return undefined;
}

/** Tiny programs run inside the namespaces with `node -e` (no files to install). */
const echoServer = (name: string) =>
  `const s=require('dgram').createSocket('udp4');s.on('message',(m,r)=>s.send(${JSON.stringify(name)},r.port,r.address));s.bind(${ECHO_PORT});`;
const prober = (vip: string) =>
  `const s=require('dgram').createSocket('udp4');let n=0;s.on('message',(m)=>process.stdout.write(Date.now()+' '+m+'\\n'));` +
  `s.bind(()=>{const t=setInterval(()=>{s.send('p'+(n++),${ECHO_PORT},${JSON.stringify(vip)},()=>{});if(n>200000)clearInterval(t);},5);});`;

/** Runs the VRRP-only demo with `example` (a VRRP-only lvsd config); needs root. Exit status as `lvsd demo`. */
export async function runVrrpDemo(example: string): Promise<number> {
  const doc = yaml.load(readFileSync(example, 'utf8')) as { global?: Record<string, unknown>; vrrp_instances?: Array<Record<string, unknown>> };
  const inst = doc.vrrp_instances?.[0];
  if (!inst) throw new Error(`${example} has no vrrp_instances`);
  const vipCidr = String((inst.virtual_addresses as unknown[])[0] as string);
  const vip = vipCidr.split('/')[0]!;
  const plen = vipCidr.split('/')[1] ?? '24';
  const base = vip.split('.').slice(0, 3).join('.');

  const work = mkdtempSync(join(tmpdir(), 'lvsd-demo-'));
  const cleanupWork = () => rmSync(work, { recursive: true, force: true });
  process.on('exit', cleanupWork);
  const topo = new Topology(`lvdemo${process.pid % 1000}`);
  // Ctrl-C: the Topology's own handler (registered first) has already torn the namespaces down.
  const onSig = (sig: NodeJS.Signals) => {
    cleanupWork();
    process.stdout.write(`\n${sig}: namespaces, processes and temp files removed\n`);
    process.exit(130);
  };
  process.once('SIGINT', onSig);
  process.once('SIGTERM', onSig);
  let ok = false;
  try {
    say(`lvsd demo: VRRP failover in network namespaces (prefix ${topo.prefix}; the host's interfaces are not touched)`);
    const br = await topo.bridge('br0');
    const mk = async (short: string, ip: string) => {
      const ns = await topo.netns(short);
      await topo.link(ns, 'eth0', br);
      await ns.addr('eth0', `${ip}/${plen}`);
      return ns;
    };
    const dirs: Director[] = [
      { label: 'director-a', ns: await mk('a', `${base}.1`), addr: `${base}.1`, priority: 150 },
      { label: 'director-b', ns: await mk('b', `${base}.2`), addr: `${base}.2`, priority: 100 },
    ];
    const client = await mk('c', `${base}.100`);
    say(`topology: client ${base}.100, director-a ${base}.1 (priority 150), director-b ${base}.2 (priority 100) on one bridge`);
    say(`VIP ${vipCidr}, VRRPv${String(inst.version ?? 2)} advert ${String(inst.advert_interval ?? 1)} s, from ${example}`);

    const macs = new Map<string, string>();
    for (const d of dirs) {
      const cfg = structuredClone(doc);
      cfg.global = { ...(cfg.global ?? {}), router_id: d.label, api: { listen: '127.0.0.1:9650' } };
      cfg.vrrp_instances = [{ ...inst, interface: 'eth0', priority: d.priority }];
      const file = join(work, `${d.label}.yaml`);
      writeFileSync(file, yaml.dump(cfg));
      const j = JSON.parse((await d.ns.ip('-j', 'link', 'show', 'dev', 'eth0')).stdout) as Array<{ address: string }>;
      macs.set(j[0]!.address, d.label);
      d.ns.spawn([process.execPath, '-e', echoServer(d.label)]);
      const p = d.ns.spawn([process.execPath, join(root, 'bin', 'lvsd'), 'run', '-c', file, '--state-dir', work]);
      d.proc = p;
      const narrate = (line: string) => {
        try {
          const o = JSON.parse(line) as { from?: string; to?: string; reason?: string; level?: string; msg?: string };
          if (o.from && o.to) say(`[${d.label}] ${o.from} -> ${o.to} (${o.reason})`);
          else if (o.level === 'error' || o.level === 'fatal') say(`[${d.label}] error: ${o.msg}`);
        } catch {
          /* not JSON */
        }
      };
      // Transitions are info (stdout); errors go to stderr.
      createInterface({ input: p.stdout! }).on('line', narrate);
      createInterface({ input: p.stderr! }).on('line', narrate);
      say(`[${d.label}] lvsd run -c ${file} (pid ${p.pid})`);
    }

    const holder = async () => {
      for (const d of dirs) if ((await d.ns.addrs('eth0')).includes(vip)) return d;
      return undefined;
    };
    const master = await until(holder, 15000, 20);
    if (!master) {
      say('no director took the VIP within 15 s');
      return 1;
    }
    await sleep(500);
    const m = (await holder()) ?? master;
    const backup = dirs.find((d) => d !== m)!;
    say(`${m.label} is MASTER and holds ${vip}; ${backup.label} is BACKUP`);

    // The client probes the VIP every 5 ms; each reply names the director that answered.
    const probe = client.spawn([process.execPath, '-e', prober(vip)]);
    const replies: Array<{ t: number; who: string }> = [];
    createInterface({ input: probe.stdout! }).on('line', (l) => {
      const [t, who] = l.split(' ');
      replies.push({ t: Number(t), who: who ?? '' });
    });
    const firstReply = await until(() => replies[0], 3000);
    if (!firstReply) {
      say(`the client gets no answer from ${vip}`);
      return 1;
    }
    const neigh = async () => {
      const r = await client.ip('-j', 'neigh', 'show', 'to', vip, 'dev', 'eth0');
      const n = (JSON.parse(r.stdout || '[]') as Array<{ lladdr?: string }>)[0]?.lladdr;
      return n ? `${n} (${macs.get(n) ?? '?'})` : 'none';
    };
    say(`client reaches ${vip}: answered by ${firstReply.who}; client ARP entry for ${vip}: ${await neigh()}`);
    await sleep(1000);

    const killAt = Date.now();
    say(`crashing ${m.label}: SIGKILL to its lvsd (pid ${m.proc!.pid}) and its echo service, link cut — no goodbye advert`);
    for (const p of m.ns.procs) if (p.pid && p.exitCode === null) process.kill(p.pid, 'SIGKILL');
    await m.ns.ip('link', 'set', 'eth0', 'down');
    const took = await until(async () => ((await backup.ns.addrs('eth0')).includes(vip) ? Date.now() : undefined), 10000, 2);
    if (!took) {
      say(`${backup.label} did not take over within 10 s`);
      return 1;
    }
    say(`${backup.label} holds ${vip} ${took - killAt} ms after the kill`);
    const served = await until(() => replies.find((r) => r.t > killAt && r.who === backup.label), 5000);
    if (!served) {
      say(`the client got no answer from ${backup.label}`);
      return 1;
    }
    const lastOld = [...replies].filter((r) => r.t <= served.t && r.who === m.label).pop();
    const gap = served.t - (lastOld?.t ?? killAt);
    say(`client traffic: no answer for ${gap} ms, then ${backup.label} answers (the outage as the client saw it)`);
    await sleep(300);
    say(`client ARP entry for ${vip}: ${await neigh()} — moved by ${backup.label}'s gratuitous ARP`);
    ok = true;
    return 0;
  } finally {
    say('cleaning up: stopping processes, deleting namespaces');
    await topo.destroy();
    cleanupWork();
    process.removeListener('exit', cleanupWork);
    process.removeListener('SIGINT', onSig);
    process.removeListener('SIGTERM', onSig);
    say(ok ? 'done.' : 'done (failed).');
  }
}
