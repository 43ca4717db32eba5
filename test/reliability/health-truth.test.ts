/**
 * Truthful health (issue 17 item 8), real daemon on the host: /healthz is 503 and
 * lvsd_subsystem_up 0 for a subsystem that cannot do its job, with the reason in /status —
 *  - IPVS absent (this host has no ip_vs) with virtual servers configured: ipvs down ("NOT programmed");
 *  - connection sync configured without a controllable kernel sync daemon: sync down;
 *  - a VRRP instance added by a reload that cannot open its socket (no address on its interface):
 *    election down, naming the instance; removing it again brings election back up.
 * The same virtual-server config answers 200 in the UML lab, where IPVS is real
 * (test/lab/health-truth.test.ts). Without virtual servers IPVS is not needed: 200.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { start, waitFor, httpGet, lvsdBin, type Running } from '../support/proc.js';
import { parsePrometheus, sampleValue } from '../support/prom.js';
import { Topology, isRoot } from '../../src/lab/netns.js';
import { apiGet } from '../election-net/support/peers.js';

const dir = mkdtempSync(join(tmpdir(), 'lvsd-health-'));
const procs: Running[] = [];
after(() => {
  for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});
const hostHasIpvs = existsSync('/proc/net/ip_vs');

const VS = `virtual_servers:
  - address: 192.0.2.10
    port: 80
    real_servers:
      - address: 192.0.2.20
`;

async function daemon(name: string, body: string): Promise<{ base: string; d: Running }> {
  const port = 19100 + (process.pid % 500) + procs.length;
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, `global:\n  router_id: ${name}\n  api:\n    listen: 127.0.0.1:${port}\n${body}`);
  const d = start(lvsdBin, ['run', '-c', file, '--state-dir', join(dir, `state-${name}`)]);
  procs.push(d);
  const base = `http://127.0.0.1:${port}`;
  await waitFor(async () => (d.output().includes('"lvsd running"') && (await httpGet(`${base}/healthz`)) ? true : undefined), `${name} to run`, 30_000);
  return { base, d };
}

test('no IPVS on this host: virtual servers and sync configured → /healthz 503, lvsd_subsystem_up 0, the reasons in /status', { skip: hostHasIpvs && 'this host has IPVS' }, async () => {
  const { base, d } = await daemon('noipvs', `${VS}sync:\n  interface: lo\n  mode: master\n`);
  const h = await httpGet(`${base}/healthz`);
  assert.equal(h.status, 503);
  assert.match(h.body, /ipvs: IPVS is not available, 1 virtual servers are NOT programmed/);
  assert.match(h.body, /sync: the kernel sync daemons cannot be controlled/);
  const m = parsePrometheus((await httpGet(`${base}/metrics`)).body);
  assert.equal(sampleValue(m, 'lvsd_subsystem_up', { subsystem: 'ipvs' }), 0);
  assert.equal(sampleValue(m, 'lvsd_subsystem_up', { subsystem: 'sync' }), 0);
  assert.equal(sampleValue(m, 'lvsd_subsystem_up', { subsystem: 'health' }), 1);
  assert.equal(sampleValue(m, 'lvsd_subsystem_up', { subsystem: 'election' }), 1);
  const st = JSON.parse((await httpGet(`${base}/status`)).body) as { health: Record<string, { up: boolean; reason?: string }> };
  assert.equal(st.health.ipvs!.up, false);
  assert.match(st.health.ipvs!.reason!, /NOT programmed/);
  assert.equal(st.health.sync!.up, false);
  assert.deepEqual(st.health.health, { up: true });
  d.child.kill('SIGTERM');
  assert.equal((await d.exited).code, 0);
});

test('without virtual servers IPVS is not needed: /healthz 200, every subsystem up', async () => {
  const { base, d } = await daemon('novs', '');
  assert.equal((await httpGet(`${base}/healthz`)).status, 200);
  const m = parsePrometheus((await httpGet(`${base}/metrics`)).body);
  for (const s of ['ipvs', 'health', 'election', 'sync']) assert.equal(sampleValue(m, 'lvsd_subsystem_up', { subsystem: s }), 1, s);
  d.child.kill('SIGTERM');
  assert.equal((await d.exited).code, 0);
});

test('a VRRP instance that cannot open its socket after a reload: election down naming it; removed again: up', { skip: !isRoot() && 'needs root (network namespaces)' }, async () => {
  const topo = new Topology();
  try {
    const ns = await topo.member('a', ['192.0.2.1/24']);
    await topo.link(ns, 'eth1', await topo.bridge('br1'));
    const inst = (name: string, ifname: string, vrid: number, vip: string) =>
      `  - name: ${name}\n    interface: ${ifname}\n    virtual_router_id: ${vrid}\n    priority: 100\n    virtual_addresses:\n      - ${vip}\n`;
    const one = `global:\n  router_id: el\n  api:\n    listen: 127.0.0.1:9650\nvrrp_instances:\n${inst('VI_1', 'eth0', 61, '192.0.2.100/24')}`;
    const file = join(dir, 'el.yaml');
    writeFileSync(file, one);
    const d = ns.start([process.execPath, lvsdBin, 'run', '-c', file, '--state-dir', join(dir, 'state-el')]);
    const healthz = async () => (await ns.exec([process.execPath, '-e', "fetch('http://127.0.0.1:9650/healthz').then(async (r) => process.stdout.write(r.status + ' ' + (await r.text())))"], { check: false })).stdout;
    await waitFor(async () => ((await healthz()).startsWith('200') ? true : undefined), 'the daemon to be healthy', 30_000);

    // eth1 exists but has no IPv4 address: VI_2 has nothing to send adverts from.
    writeFileSync(file, one + inst('VI_2', 'eth1', 62, '198.51.100.100/24'));
    d.child.kill('SIGHUP');
    const bad = await waitFor(async () => {
      const h = await healthz();
      return h.startsWith('503') ? h : undefined;
    }, 'election to report VI_2', 30_000);
    assert.match(bad, /election: VRRP instances not running \(no socket\): VI_2/);
    const m = parsePrometheus(await apiGet(ns, '/metrics'));
    assert.equal(sampleValue(m, 'lvsd_subsystem_up', { subsystem: 'election' }), 0);
    const st = JSON.parse(await apiGet(ns, '/status')) as { health: Record<string, { up: boolean; reason?: string }> };
    assert.equal(st.health.election!.up, false);

    writeFileSync(file, one);
    d.child.kill('SIGHUP');
    await waitFor(async () => ((await healthz()).startsWith('200') ? true : undefined), 'election to be up again', 30_000);
    d.child.kill('SIGTERM');
    assert.equal((await d.exited).code, 0, d.output());
  } finally {
    await topo.destroy();
  }
});

/**
 * Election health at run time, two real lvsd directors on one link (a: 100, b: 150, both with the API
 * in their namespace). Each fault makes the director's /healthz 503 with the reason, and its peer
 * takes the VIP (the fault is real); when the cause goes away /healthz is 200 again and the director
 * takes part in the election again (it hears and is heard):
 *  - a's interface down (FAULT), then up;
 *  - b's adverts dropped by netfilter on the way out (every sendto fails: EPERM), then allowed;
 *  - a's interface deleted and created again (same name, another index: the old socket is bound
 *    to the old one), then a keeps BACKUP behind b — it hears b on its new socket.
 */
test('election down while an interface is down or gone, or adverts cannot be sent; up again when the cause goes away', { skip: !isRoot() && 'needs root (network namespaces)', timeout: 240_000 }, async () => {
  const { startPeer } = await import('../election-net/support/peers.js');
  const { metrics, total, VIP, A, B } = await import('./support/attack.js');
  const topo = new Topology();
  try {
    const a = await topo.member('a', [`${A}/24`]);
    const b = await topo.member('b', [`${B}/24`]);
    const spec = { kind: 'lvsd', version: 3, advert: 1, vips: [`${VIP}/24`] } as const;
    startPeer(a, { ...spec, name: 'a', priority: 100 });
    startPeer(b, { ...spec, name: 'b', priority: 150 });
    const healthz = async (ns: typeof a) => (await ns.exec([process.execPath, '-e', "fetch('http://127.0.0.1:9650/healthz').then(async (r) => process.stdout.write(r.status + ' ' + (await r.text())))"], { check: false })).stdout;
    const state = async (ns: typeof a, s: string) => total(await metrics(ns).catch(() => []), 'lvsd_vrrp_state', { state: s }) === 1;
    const until = (what: string, f: () => Promise<boolean>) => waitFor(async () => ((await f().catch(() => false)) ? true : undefined), what, 60_000, 200);
    const healthy = async (ns: typeof a) => (await healthz(ns)).startsWith('200');
    const down = async (ns: typeof a, reason: RegExp) => {
      const h = await waitFor(async () => {
        const t = await healthz(ns);
        return t.startsWith('503') && reason.test(t) ? t : undefined;
      }, `${ns.short}: /healthz 503 ${reason}`, 60_000, 200);
      const m = parsePrometheus(await apiGet(ns, '/metrics'));
      assert.equal(sampleValue(m, 'lvsd_subsystem_up', { subsystem: 'election' }), 0);
      const st = JSON.parse(await apiGet(ns, '/status')) as { health: Record<string, { up: boolean; reason?: string }> };
      assert.equal(st.health.election!.up, false);
      assert.match(st.health.election!.reason!, reason);
      return h;
    };
    const settled = async () => {
      await until('b master, a backup, both healthy', async () => (await state(b, 'MASTER')) && (await state(a, 'BACKUP')) && (await healthy(a)) && (await healthy(b)));
      const m = parsePrometheus(await apiGet(a, '/metrics'));
      assert.equal(sampleValue(m, 'lvsd_subsystem_up', { subsystem: 'election' }), 1);
    };
    await settled();

    // 1. a's interface down: FAULT, 503; up: BACKUP behind b, 200.
    await a.ip('link', 'set', 'eth0', 'down');
    await down(a, /VI_1: interface eth0 is down or gone \(FAULT\)/);
    assert.equal(await state(a, 'FAULT'), true);
    await a.ip('link', 'set', 'eth0', 'up');
    await settled();

    // 2. b cannot send adverts (netfilter drops them on output: sendto fails with EPERM): 503 with
    //    the error, and a takes the VIP (b's adverts no longer arrive); allowed again: 200, b preempts back.
    await b.exec(['nft', '-f', '-'], { input: 'table inet lvsdtest {\n  chain out {\n    type filter hook output priority 0;\n    meta l4proto 112 drop\n  }\n}\n' });
    await down(b, /VI_1: \d+ advert sends in a row failed: .*(EPERM|not permitted)/i);
    await until('a to take over while b cannot send', () => state(a, 'MASTER'));
    await b.exec(['nft', 'delete', 'table', 'inet', 'lvsdtest']);
    await settled();

    // 3. a's interface deleted: 503; created again (same name and address, another index): a's
    //    socket is reopened on it, 200, and a hears b there (it stays BACKUP, its received count grows).
    await a.ip('link', 'del', 'eth0');
    await down(a, /interface eth0 is (down or gone|gone)/);
    await topo.attach(a, 'eth0', 'br0', [`${A}/24`]);
    await settled();
    const heard = total(await metrics(a), 'lvsd_vrrp_adverts_received_total');
    await until('a to hear b on the new interface', async () => total(await metrics(a), 'lvsd_vrrp_adverts_received_total') > heard + 2);
    assert.equal(await state(a, 'BACKUP'), true);
    assert.equal(await state(b, 'MASTER'), true);
  } finally {
    await topo.destroy();
  }
});
