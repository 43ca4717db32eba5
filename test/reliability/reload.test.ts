/**
 * Reloads in place (issue 17 item 1), on real processes in network namespaces: a MASTER `lvsd run`
 * (a) and a BACKUP peer (b: lvsd, or a real keepalived), a client (c) pinging the VIP every 10 ms
 * (a bounded count) while one key of a's VRRP instance is rewritten and a is sent SIGHUP. Each
 * reload must lose no ping and move neither director (transitions counted from lvsd's JSON log
 * lines `VRRP X -> Y` and keepalived's `Entering X STATE`), and its effect must be seen: the new
 * priority and interval on the wire (a listener in c), the new VIP on a's interface and answered,
 * the removed one gone, the new GARP refresh sent, the new notify command run, the tracked script
 * run at its new interval, the new unicast peer (d) hearing adverts. A change of VRID makes another
 * router: the instance is replaced make-before-break, and the peer takes the VIP once.
 * One topology per peer kind, the reloads in sequence.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, readFileSync, existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Topology, isRoot, type Netns, type Running } from '../../src/lab/netns.js';
import { waitFor, lvsdBin } from '../support/proc.js';
import { apiGet, scratch, removeScratch } from '../election-net/support/peers.js';

const here = dirname(fileURLToPath(import.meta.url));
const listenerCli = join(here, '..', 'election-net', 'support', 'transport-cli.js');
const skip = !isRoot() && 'needs root (network namespaces)';
after(() => removeScratch());

const VIP = '192.0.2.42';
const VIP2 = '192.0.2.43';
const A = '192.0.2.1';
const B = '192.0.2.2';
const C = '192.0.2.3';
const D = '192.0.2.4';

/** Everything of a's (or b's) instance a reload may change. */
interface Inst {
  priority: number;
  vrid: number;
  advert: number;
  preempt: boolean;
  vips: string[];
  peers?: string[];
  notify: string;
  garpRefresh: number;
  scriptInterval: number;
  takeoverThread: boolean;
}

function lvsdYaml(name: string, i: Inst, dir: string): string {
  return [
    'global:',
    `  router_id: ${name}`,
    '  api:',
    '    listen: 127.0.0.1:9650',
    'vrrp_scripts:',
    '  - name: chk',
    `    script: ["sh", "-c", "echo run >> ${dir}/script.log"]`,
    `    interval: ${i.scriptInterval}`,
    'vrrp_instances:',
    '  - name: VI_1',
    '    interface: eth0',
    `    virtual_router_id: ${i.vrid}`,
    `    priority: ${i.priority}`,
    '    version: 3',
    `    advert_interval: ${i.advert}`,
    `    preempt: ${i.preempt}`,
    `    takeover_thread: ${i.takeoverThread}`,
    '    virtual_addresses:',
    ...i.vips.map((v) => `      - ${v}/24`),
    ...(i.peers ? ['    unicast_peers:', ...i.peers.map((p) => `      - ${p}`)] : []),
    '    track_scripts: [chk]',
    '    notify:',
    `      stop: ["sh", "-c", "echo ${i.notify} >> ${dir}/notify.log"]`,
    '    garp:',
    '      master_repeat: 2',
    '      master_delay: 0',
    `      master_refresh: ${i.garpRefresh}`,
    '',
  ].join('\n');
}

function keepalivedConf(i: Inst): string {
  return [
    'global_defs {',
    '  router_id b',
    '}',
    'vrrp_instance VI_1 {',
    '  state BACKUP',
    '  interface eth0',
    `  virtual_router_id ${i.vrid}`,
    `  priority ${i.priority}`,
    '  version 3',
    `  advert_int ${i.advert}`,
    '  virtual_ipaddress {',
    ...i.vips.map((v) => `    ${v}/24`),
    '  }',
    '}',
    '',
  ].join('\n');
}

/** A director: its process, its config file, its log's transitions and applied reloads. */
class Director {
  constructor(
    readonly kind: 'lvsd' | 'keepalived',
    readonly ns: Netns,
    readonly proc: Running,
    readonly file: string,
    readonly dir: string,
  ) {}
  transitions(): string[] {
    const out = this.proc.output();
    if (this.kind === 'keepalived') return out.match(/Entering [A-Z]+ STATE/g) ?? [];
    return out.match(/"msg":"VRRP [A-Z]+ -> [A-Z]+"/g) ?? [];
  }
  /** The log lines around lvsd's transitions (with their reasons), for a failure's message. */
  why(): string {
    const lines = this.proc.output().split('\n');
    const at = lines.findIndex((l) => /"msg":"VRRP [A-Z]+ -> FAULT"/.test(l));
    return lines.slice(Math.max(0, at < 0 ? lines.length - 12 : at - 10), at < 0 ? undefined : at + 4).join('\n');
  }
  reloads(): number {
    const out = this.proc.output();
    return this.kind === 'keepalived' ? (out.match(/Reloading/g) ?? []).length : (out.match(/"msg":"reload applied"/g) ?? []).length;
  }
  /** Rewrite the config and SIGHUP; resolves once the reload was applied. */
  async reload(text: string): Promise<void> {
    const n = this.reloads();
    writeFileSync(this.file, text);
    process.kill(this.proc.child.pid!, 'SIGHUP');
    await waitFor(() => this.reloads() > n, `${this.kind} to apply the reload`, 20000, 20);
  }
}

/** `lvsd run` in `ns` with the config `yaml(dir)` (its scripts write into its own scratch dir). */
function startLvsdDirector(ns: Netns, name: string, i: Inst): Director {
  const dir = scratch();
  const file = join(dir, 'lvsd.yaml');
  writeFileSync(file, lvsdYaml(name, i, dir));
  const proc = ns.start([process.execPath, lvsdBin, 'run', '-c', file, '--state-dir', dir, '--log-level', 'info']);
  return new Director('lvsd', ns, proc, file, dir);
}

/**
 * Ping `addr` from `ns` every 10 ms (at most `max` times) until stop(): how many were sent and
 * lost. The reply to the last one sent may still be on its way at the stop: it is not counted.
 */
function pinger(ns: Netns, addr: string, max = 3000): { replied(): number; stop(): Promise<{ sent: number; lost: number }> } {
  const p = ns.start(['ping', '-n', '-i', '0.01', '-W', '1', '-c', String(max), addr]);
  return {
    /** The highest sequence number answered so far (0: none yet). */
    replied() {
      return Math.max(0, ...[...p.output().matchAll(/icmp_seq=(\d+) ttl=/g)].map((x) => Number(x[1])));
    },
    async stop() {
      try {
        process.kill(p.child.pid!, 'SIGINT');
      } catch {
        // already exited (max reached)
      }
      await p.exited;
      const out = p.output();
      const m = /(\d+) packets transmitted/.exec(out);
      if (!m) throw new Error(`ping output: ${out}`);
      const sent = Number(m[1]);
      const got = new Set([...out.matchAll(/icmp_seq=(\d+) ttl=/g)].map((x) => Number(x[1])));
      let lost = 0;
      for (let q = 1; q < sent; q++) if (!got.has(q)) lost++;
      return { sent: sent - 1, lost };
    },
  };
}

interface Heard {
  priority: number;
  intervalMs: number;
  src: string;
}
/** Adverts a listener printed (transport-cli lines with `advert`). */
function heard(l: Running): Heard[] {
  return l
    .output()
    .split('\n')
    .filter((x) => x.startsWith('{'))
    .map((x) => JSON.parse(x) as { advert?: { priority: number; intervalMs: number }; src?: string })
    .filter((x) => x.advert)
    .map((x) => ({ priority: x.advert!.priority, intervalMs: x.advert!.intervalMs, src: x.src! }));
}

/** lvsd_vrrp_garp_sent_total of a's instance. */
async function garpSent(ns: Netns): Promise<number> {
  const m = /lvsd_vrrp_garp_sent_total\{[^}]*"VI_1"[^}]*\} (\d+)/.exec(await apiGet(ns, '/metrics'));
  return m ? Number(m[1]) : 0;
}

interface Figures {
  key: string;
  sent: number;
  lost: number;
}

/**
 * One reload of a (and of b after it, when `peerToo`) under the pinger: returns its figures after
 * asserting no loss and no transition on either director.
 */
async function reloadUnderPing(key: string, cl: Netns, a: Director, b: Director, aText: string, bText?: string): Promise<Figures> {
  const ta = a.transitions().length;
  const tb = b.transitions().length;
  const ping = pinger(cl, VIP);
  // The pinger is under way before the reload (the VIP answers) and goes on for 100 pings (~1 s) after it was applied.
  await pingsAnswered(ping, 20);
  // A VIP list change goes to both directors at once, as an operator's tooling would: the adverts
  // carry the list, and each drops the other's adverts while the two lists differ (keepalived
  // too), so both reloads must land within the backup's Master_Down_Interval.
  await Promise.all([a.reload(aText), ...(bText !== undefined ? [b.reload(bText)] : [])]);
  await pingsAnswered(ping, ping.replied() + 100);
  const r = await ping.stop();
  assert.deepEqual(a.transitions().slice(ta), [], `${key}: a moved\n${a.why()}`);
  assert.deepEqual(b.transitions().slice(tb), [], `${key}: b moved\n${b.why()}`);
  assert.equal(r.lost, 0, `${key}: ${r.lost} of ${r.sent} pings to the VIP lost`);
  return { key, ...r };
}

/**
 * Until the pinger's answers reach sequence number `seq` (20 s bound; on a timeout the caller's loss
 * count tells what happened): windows counted in pings, not a fixed pause.
 */
async function pingsAnswered(ping: ReturnType<typeof pinger>, seq: number): Promise<void> {
  await waitFor(() => ping.replied() >= seq || undefined, `ping ${seq} to be answered`, 20000, 20).catch(() => undefined);
}

async function settle(a: Director, b: Director): Promise<void> {
  // b follows a (it may have started first and been master briefly): a's last transition is to
  // MASTER, b's to BACKUP, and only a holds the VIP.
  await waitFor(
    async () =>
      /-> MASTER"|Entering MASTER/.test(a.transitions().at(-1) ?? '') &&
      /BACKUP/.test(b.transitions().at(-1) ?? '') &&
      (await a.ns.addrs()).includes(VIP) &&
      !(await b.ns.addrs()).includes(VIP),
    'a to be MASTER with the VIP and b BACKUP',
    30000,
    50,
  );
  assert.ok((await a.ns.addrs()).includes(VIP) && !(await b.ns.addrs()).includes(VIP), 'exactly a holds the VIP');
}

function report(title: string, figs: readonly Figures[]): void {
  // Figures for docs/reliability.md ("Reloads in place").
  process.stdout.write(`# ${title}: ${figs.map((f) => `${f.key} ${f.lost}/${f.sent}`).join(', ')}\n`);
}

test('reload in place, lvsd MASTER + lvsd BACKUP (unicast): each single key applied with 0 lost pings and 0 transitions; a VRID change is replaced make-before-break', { skip, timeout: 240_000 }, async () => {
  const topo = new Topology();
  try {
    const an = await topo.member('a', [`${A}/24`]);
    const bn = await topo.member('b', [`${B}/24`]);
    const cl = await topo.member('c', [`${C}/24`]);
    const dn = await topo.member('d', [`${D}/24`]);
    let ai: Inst = { priority: 150, vrid: 42, advert: 1, preempt: true, vips: [VIP], peers: [B, C], notify: 'stop-v1', garpRefresh: 0, scriptInterval: 5, takeoverThread: true };
    let bi: Inst = { ...ai, priority: 100, peers: [A] };
    const a = startLvsdDirector(an, 'a', ai);
    const b = startLvsdDirector(bn, 'b', bi);
    const bYaml = (i: Inst) => lvsdYaml('b', i, b.dir);
    await settle(a, b);
    // Listeners for a's adverts: c (a unicast peer from the start), d (made one by a reload).
    const lc = cl.start([process.execPath, listenerCli, 'eth0', '4', '3', '42', '1', '1000', '200000', `peers=${A}`]);
    const ld = dn.start([process.execPath, listenerCli, 'eth0', '4', '3', '42', '1', '1000', '200000', `peers=${A}`]);
    await waitFor(() => heard(lc).length > 0, 'the listener in c to hear a', 20000, 50);
    const figs: Figures[] = [];
    const step = async (key: string, next: Inst, peer?: Inst) => {
      figs.push(await reloadUnderPing(key, cl, a, b, lvsdYaml('a', next, a.dir), peer && bYaml(peer)));
      ai = next;
      if (peer) bi = peer;
    };

    // Priority: re-advertised at once; the listener hears it (a's next advert would be up to 1 s later).
    await step('priority', { ...ai, priority: 160 });
    await waitFor(() => heard(lc).some((h) => h.priority === 160), 'priority 160 on the wire', 5000, 20);
    // Add a VIP (both directors: the adverts carry the VIP list): on a, answered, announced.
    await step('add VIP', { ...ai, vips: [VIP, VIP2] }, { ...bi, vips: [VIP, VIP2] });
    assert.ok((await an.addrs()).includes(VIP2) && !(await bn.addrs()).includes(VIP2), 'the new VIP is on a only');
    await waitFor(async () => (await cl.exec(['ping', '-n', '-c', '1', '-W', '1', VIP2], { check: false })).code === 0, 'the new VIP to answer', 5000, 100);
    // Remove a VIP: only it goes.
    await step('remove VIP', { ...ai, vips: [VIP] }, { ...bi, vips: [VIP] });
    assert.ok(!(await an.addrs()).includes(VIP2) && (await an.addrs()).includes(VIP), 'the removed VIP went, the other stayed');
    // Advert interval: the next adverts carry 500 ms.
    await step('advert_interval', { ...ai, advert: 0.5 });
    await waitFor(() => heard(lc).some((h) => h.intervalMs === 500 && h.priority === 160), 'adverts at 0.5 s on the wire', 5000, 20);
    // Preempt: nothing on the wire; the instance says it applied the key in place.
    await step('preempt', { ...ai, preempt: false });
    assert.match(a.proc.output(), /"keys":\["preempt"\].*"msg":"VRRP instance reconfigured in place"/);
    // Notify: the new command is the one run at the stop that ends this test's VRID change.
    await step('notify', { ...ai, notify: 'stop-v2' });
    // GARP settings: a refresh every 0.5 s starts (no transition announced it).
    const g0 = await garpSent(an);
    await step('garp', { ...ai, garpRefresh: 0.5 });
    await waitFor(async () => (await garpSent(an)) >= g0 + 4, 'GARP refreshes from the new master_refresh', 10000, 100);
    // Tracked vrrp_script interval 5 s → 0.2 s: its state is kept (no FAULT, no priority change) and it runs at the new pace.
    const runs = () => (existsSync(join(a.dir, 'script.log')) ? readFileSync(join(a.dir, 'script.log'), 'utf8').split('\n').length - 1 : 0);
    const r0 = runs();
    await step('vrrp_script interval', { ...ai, scriptInterval: 0.2 });
    await waitFor(() => runs() >= r0 + 5, 'the tracked script to run at its new interval', 8000, 50);
    // takeover_thread (a tuning key that rebuilds the instance's I/O): in place.
    await step('takeover_thread', { ...ai, takeoverThread: false });
    // Unicast peers: d becomes a peer and starts hearing a.
    const d0 = heard(ld).length;
    assert.equal(d0, 0, 'd hears nothing before it is a peer');
    await step('unicast_peers', { ...ai, peers: [B, C, D] });
    await waitFor(() => heard(ld).length > 0, 'the new unicast peer to hear adverts', 5000, 20);
    report('lvsd + lvsd', figs);

    // VRID change: another router. a's old instance stops with its handover (the VIP stays until b
    // advertises), b takes the VIP once; a's new instance (VRID 43, another VIP) is alone and master.
    const ta = a.transitions().length;
    const tb = b.transitions().length;
    const ping = pinger(cl, VIP);
    await pingsAnswered(ping, 20);
    await a.reload(lvsdYaml('a', { ...ai, vrid: 43, vips: ['192.0.2.50'] }, a.dir));
    await pingsAnswered(ping, ping.replied() + 100);
    const r = await ping.stop();
    await waitFor(async () => (await an.addrs()).includes('192.0.2.50'), "a's new instance to take its VIP", 20000, 50);
    assert.ok((await bn.addrs()).includes(VIP) && !(await an.addrs()).includes(VIP), 'b holds the old VIP, a released it');
    assert.deepEqual(b.transitions().slice(tb), ['"msg":"VRRP BACKUP -> MASTER"'], 'b took over once');
    assert.equal(a.transitions().slice(ta)[0], '"msg":"VRRP MASTER -> INIT"', "a's old instance stopped");
    assert.match(a.proc.output(), /stop handover: new master advertised, VIPs released/);
    assert.equal(readFileSync(join(a.dir, 'notify.log'), 'utf8'), 'stop-v2\n', 'the reloaded notify command ran');
    // Make-before-break: the VIP was held until b advertised; a few pings may meet the ARP change.
    assert.ok(r.lost <= 50, `VRID change: ${r.lost} of ${r.sent} pings lost`);
    process.stdout.write(`# VRID change (replaced): ${r.lost}/${r.sent} pings lost, b 1 transition\n`);
  } finally {
    await topo.destroy();
  }
});

test('reload in place, lvsd MASTER + keepalived BACKUP: priority, interval, VIP added and removed with 0 lost pings and 0 transitions', { skip, timeout: 180_000 }, async () => {
  const topo = new Topology();
  try {
    const an = await topo.member('a', [`${A}/24`]);
    const bn = await topo.member('b', [`${B}/24`]);
    const cl = await topo.member('c', [`${C}/24`]);
    let ai: Inst = { priority: 150, vrid: 42, advert: 1, preempt: true, vips: [VIP], notify: 'stop-v1', garpRefresh: 0, scriptInterval: 5, takeoverThread: true };
    const bi: Inst = { ...ai, priority: 100 };
    const a = startLvsdDirector(an, 'a', ai);
    const kdir = scratch();
    const kfile = join(kdir, 'keepalived.conf');
    writeFileSync(kfile, keepalivedConf(bi));
    const kproc = bn.start(['keepalived', '-n', '-l', '-D', '-P', '-f', kfile, '-p', join(kdir, 'k.pid'), '-r', join(kdir, 'v.pid')]);
    const b = new Director('keepalived', bn, kproc, kfile, kdir);
    await settle(a, b);
    const lc = cl.start([process.execPath, listenerCli, 'eth0', '4', '3', '42', '1', '1000', '200000']);
    await waitFor(() => heard(lc).length > 0, 'the listener in c to hear a', 20000, 50);
    const figs: Figures[] = [];
    const step = async (key: string, next: Inst, peerVips?: string[]) => {
      figs.push(await reloadUnderPing(key, cl, a, b, lvsdYaml('a', next, a.dir), peerVips && keepalivedConf({ ...bi, vips: peerVips })));
      ai = next;
    };
    await step('priority', { ...ai, priority: 160 });
    await waitFor(() => heard(lc).some((h) => h.priority === 160), 'priority 160 on the wire', 5000, 20);
    await step('add VIP', { ...ai, vips: [VIP, VIP2] }, [VIP, VIP2]);
    assert.ok((await an.addrs()).includes(VIP2) && !(await bn.addrs()).includes(VIP2), 'the new VIP is on a only');
    await waitFor(async () => (await cl.exec(['ping', '-n', '-c', '1', '-W', '1', VIP2], { check: false })).code === 0, 'the new VIP to answer', 5000, 100);
    await step('remove VIP', { ...ai, vips: [VIP] }, [VIP]);
    assert.ok(!(await an.addrs()).includes(VIP2), 'the removed VIP went');
    await step('advert_interval', { ...ai, advert: 0.5 });
    await waitFor(() => heard(lc).some((h) => h.intervalMs === 500), 'adverts at 0.5 s on the wire', 5000, 20);
    report('lvsd + keepalived', figs);
  } finally {
    await topo.destroy();
  }
});
