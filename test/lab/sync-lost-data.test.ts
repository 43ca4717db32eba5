/**
 * Lost ordinary DATA frames are recovered over channel lvsd on the real kernel (inside the lab guest).
 * Two `lvsd run` directors, A master (priority 150), B backup. A's egress drops a share of its DATA
 * frames (sync frame type 1; RESYNC_DATA, control frames and VRRP pass): tc prio + u32 filter on
 * UDP 8848 and the frame's type byte, into netem loss. New UDP connections are installed in A's kernel
 * a few at a time for several seconds (bench/support/sync-load.js inject-flows), so A sends many small
 * bursts of DATA frames and loses some inside bursts and some as their last frame. Every connection
 * must reach B's kernel: before (h-dataresend) a lost frame's connections never reached it unless
 * they changed again. A's and B's metrics show the losses were named (DATA_MISSING) and answered.
 *
 * B's egress loses every other DATA_MISSING (sync frame type 9, the same u32 match; a tc gact
 * action dropping deterministically every 2nd): before h-missing a lost DATA_MISSING was not
 * repeated and its gap's connections never reached B. Deterministic rather than netem's random
 * loss: a gap is named in at least three consecutive DATA_MISSING frames, so every-other loss
 * cannot take them all, while a random loss of q takes all three with q³ per gap (with ~45 gaps a
 * run, a test that would fail now and then by design).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Topology, type Netns } from '../../src/lab/netns.js';
import { lvsdBin } from '../support/proc.js';
import { until as untilDone } from './support/until.js';
import { writeSyncDirectorConfig } from '../../bench/support/sync-director.js';

const skip = process.env.LVSD_IN_LAB === '1' ? false : 'runs inside the lab guest (node scripts/test.mjs --only lab)';
const VIP = '192.0.2.100';
const KEY = 'hex:' + 'da7a'.repeat(12);
const LOAD = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bench', 'support', 'sync-load.js');
/** Connections installed in A: 10 a second for 20 s. */
const RATE = 10;
const COUNT = 200;
const BASE = 20000;
/** Share of A's DATA frames dropped on the way. */
const LOSS = '30%';

const config = (dir: string, name: string, prio: number, port: number) =>
  writeSyncDirectorConfig(dir, {
    name, prio, port, vip: VIP, channel: 'lvsd', syncId: 42, keyFile: `${dir}/sync.key`,
    virtualServers: [`{ address: ${VIP}, port: 5353, protocol: udp, scheduler: rr, forwarding: dr, real_servers: [{ address: 192.0.2.11 }] }`],
  });

const until = <T>(fn: () => Promise<T | undefined>, what: string | (() => string), ms = 180_000) => untilDone(fn, what, ms, 1000);
const sh = async (ns: Netns, script: string) => (await ns.exec(['sh', '-c', script], { via: 'nsenter', check: false })).stdout;
/** The injected connections (client 192.0.2.50, ports BASE.., to VIP:5353) in a namespace's kernel table. */
const held = async (ns: Netns) => new Set((await sh(ns, 'ipvsadm -Lnc')).match(/192\.0\.2\.50:(\d+)\s+192\.0\.2\.100:5353/g) ?? []).size;
const metric = (text: string, name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);

test('channel lvsd: DATA frames lost on the way are named and their connections sent again; every connection reaches the peer', { skip, timeout: 600_000 }, async (t) => {
  const topo = new Topology();
  const dir = mkdtempSync(join(tmpdir(), 'lvsd-lost-data-'));
  writeFileSync(join(dir, 'sync.key'), KEY + '\n');
  const outputs: Array<[string, () => string]> = [];
  const dump = () => outputs.map(([n, o]) => `\n--- ${n} ---\n${o().slice(-2500)}`).join('');
  try {
    const a = await topo.member('a', ['192.0.2.2/24']);
    const b = await topo.member('b', ['192.0.2.3/24']);
    const run = (ns: Netns, name: string, prio: number, port: number) => {
      const r = ns.start([lvsdBin, 'run', '-c', config(dir, name, prio, port)]);
      outputs.push([`${name} (${ns.name})`, () => r.output()]);
      return r;
    };
    run(a, 'a', 150, 19691);
    const rb = run(b, 'b', 100, 19692);
    const vipOn = async (ns: Netns) => (await sh(ns, 'ip -4 -o addr show dev eth0')).includes(`${VIP}/24`);
    await until(async () => ((await vipOn(a)) ? true : undefined), () => `A to become master${dump()}`);
    await until(async () => (/peer table received|no active peer answered/.test(rb.output()) ? true : undefined), () => `B's start-up resync${dump()}`);

    // A's DATA frames (IPv4 20 + UDP 8 bytes, then the frame: its type is byte 5) to port 8848 go
    // to band 4, which loses LOSS of them; everything else to band 1 (priomap all 0).
    const modprobe = process.env.LVSD_LAB_MODPROBE ?? 'modprobe';
    const tc = await a.exec(['sh', '-c', [
      `${modprobe} sch_prio; ${modprobe} sch_netem; ${modprobe} cls_u32; true`,
      'tc qdisc add dev eth0 root handle 1: prio bands 4 priomap 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0',
      `tc qdisc add dev eth0 parent 1:4 handle 40: netem loss ${LOSS}`,
      'tc filter add dev eth0 parent 1: protocol ip prio 1 u32 match ip protocol 17 0xff match ip dport 8848 0xffff match u8 1 0xff at 33 flowid 1:4',
    ].join(' && ')], { via: 'nsenter', check: false });
    assert.equal(tc.code, 0, `tc: ${tc.stdout}${tc.stderr}`);
    // B's DATA_MISSING frames (type 9) to A's port 8848: every 2nd dropped.
    const tcB = await b.exec(['sh', '-c', [
      `${modprobe} sch_prio; ${modprobe} cls_u32; ${modprobe} act_gact; true`,
      'tc qdisc add dev eth0 root handle 1: prio',
      'tc filter add dev eth0 parent 1: protocol ip prio 1 u32 match ip protocol 17 0xff match ip dport 8848 0xffff match u8 9 0xff at 33 action gact pass random determ drop 2',
    ].join(' && ')], { via: 'nsenter', check: false });
    assert.equal(tcB.code, 0, `tc on B: ${tcB.stdout}${tcB.stderr}`);

    const inj = a.start([process.execPath, LOAD, 'inject-flows', String(RATE), String(COUNT), '42', String(COUNT), String(BASE), '60']);
    outputs.push(['inject-flows', () => inj.output()]);
    assert.equal((await inj.exited).code, 0, `inject-flows${dump()}`);
    const inA = await until(async () => ((await held(a)) >= COUNT ? held(a) : undefined), () => `${COUNT} connections in A's kernel${dump()}`, 60_000);
    assert.equal(inA, COUNT);
    /** The links' drop counters and both daemons' loss and resend counters. */
    const figuresNow = async () => {
      const stats = await sh(a, 'tc -s qdisc show dev eth0');
      const netemDrops = Number(/qdisc netem 40:[\s\S]*?dropped (\d+)/.exec(stats)?.[1] ?? 0);
      // The gact action's own counters: "Sent N bytes P pkt (dropped D, ...)".
      const statsB = await sh(b, 'tc -s filter show dev eth0 parent 1:');
      const missingDropped = Number(/gact[\s\S]*?dropped (\d+)/.exec(statsB)?.[1] ?? 0);
      const ma = await sh(a, 'curl -s http://127.0.0.1:19691/metrics');
      const mb = await sh(b, 'curl -s http://127.0.0.1:19692/metrics');
      const figures = {
        netemDrops,
        missingDropped,
        lostAtB: Number(/^lvsd_sync_dropped_total\{reason="lost"\} (\S+)$/m.exec(mb)?.[1] ?? 0),
        kernelQueueAtB: Number(/^lvsd_sync_dropped_total\{reason="kernel_queue"\} (\S+)$/m.exec(mb)?.[1] ?? 0),
        injectErrorAtB: Number(/^lvsd_sync_dropped_total\{reason="inject_error"\} (\S+)$/m.exec(mb)?.[1] ?? 0),
        askedByB: metric(mb, 'lvsd_sync_data_missing_asked_total'),
        heldByA: metric(ma, 'lvsd_sync_data_missing_frames_total'),
        resentByA: metric(ma, 'lvsd_sync_data_resent_connections_total'),
        unavailableAtA: metric(ma, 'lvsd_sync_data_resend_unavailable_total'),
        sentByA: Number(/^lvsd_sync_records_total\{direction="sent"\} (\S+)$/m.exec(ma)?.[1] ?? 0),
      };
      return figures;
    };
    let last = 0;
    try {
      await until(async () => {
        last = await held(b);
        return last >= COUNT ? true : undefined;
      }, () => `all ${COUNT} connections in B's kernel (has ${last})`, 60_000);
    } catch (e) {
      // What a failure needs to be explained: the counters of both sides and which ports B lacks
      // (and whether A still holds them), not only the daemons' logs.
      const ports = async (ns: Netns) => new Set([...(await sh(ns, 'ipvsadm -Lnc')).matchAll(/192\.0\.2\.50:(\d+)\s+192\.0\.2\.100:5353/g)].map((m) => m[1]));
      const [pa, pb] = [await ports(a), await ports(b)];
      const lacking = [...pa].filter((p) => !pb.has(p));
      throw new Error(`${(e as Error).message}; B lacks ports ${lacking.join(',')} (A holds ${pa.size}); ${JSON.stringify(await figuresNow())}${dump()}`);
    }

    const figures = await figuresNow();
    t.diagnostic(`every one of ${COUNT} connections in B's kernel; ${JSON.stringify(figures)}`);
    assert.ok(figures.netemDrops > 0, `the link dropped DATA frames: ${JSON.stringify(figures)}`);
    assert.ok(figures.missingDropped > 0, `B's link dropped DATA_MISSING frames: ${JSON.stringify(figures)}`);
    assert.ok(figures.heldByA > 0 && figures.resentByA > 0, `A answered B's DATA_MISSING: ${JSON.stringify(figures)}`);
    assert.equal(figures.unavailableAtA, 0);
  } finally {
    await topo.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
});
