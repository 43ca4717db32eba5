/**
 * The kernel stream of channel lvsd on the real kernel (inside the lab guest): the active director
 * runs the kernel's master sync daemon on lo (sync_maxlen 1) and its table worker takes the records
 * as they come (src/sync/table-worker.ts), so a connection reaches the peer without waiting for a
 * read of /proc/net/ip_vs_conn. Two `lvsd run` directors, A master, B backup. A's table first holds
 * TABLE established entries (installed through its backup daemon on lo), so each of A's reads takes
 * about a second in the guest (O(n²) seq_file) and, with the stream up, the next comes ~4 reads'
 * time later: reads seconds apart. Real UDP flows from a client (3 datagrams each: the master daemon
 * sends a connection at its 3rd packet) reach B's kernel, and A's counters say the stream sent them
 * (lvsd_sync_stream_records_total{outcome="sent"}), not a read. Also: only A runs the master daemon
 * (B, passive, does not), and a datagram on the stream port that is not the kernel's (another
 * syncid) is a counted drop.
 * Then a burst of BURST one-record datagrams on the stream port, sent back to back (faster than
 * A's table worker takes them, as the master daemon sends at thousands of new connections a second
 * while the worker reads its table): none is lost (the kernel's drop count of A's stream socket
 * stays put) and every one is sent. Until the stream socket was drained with recvmmsg into a 16 MiB
 * buffer (native/afpacket ksopen), its buffer held ~550 such datagrams (net.core.rmem_max) and the
 * worker took at most 32 a loop turn: the kernel dropped 80 % of a 5,000/s stream
 * (bench/results/sync.md, 2026-12-05 04:47).
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
import { activeConns } from '../../bench/support/conn-count.js';
import { encodeMessages, ConnFlags } from '../../src/sync/codec.js';
import { udpDrops, udpSockets } from '../../src/sync/conntable.js';

const skip = process.env.LVSD_IN_LAB === '1' ? false : 'runs inside the lab guest (node scripts/test.mjs --only lab)';
const VIP = '192.0.2.100';
const KEY = 'hex:' + '5eed'.repeat(12);
const LOAD = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bench', 'support', 'sync-load.js');
const COUNT = 20;
const BASE = 30000;
const TABLE = 30_000;
/** sync.stream_port of both: not the default 8849, so the test also shows the key reaches the kernel. */
const STREAM_PORT = 8851;
/** One-record datagrams sent back to back to A's stream port: ~9 MiB of skb, 20 times what the old buffer held. */
const BURST = 12_000;

const config = (dir: string, name: string, prio: number, port: number) =>
  writeSyncDirectorConfig(dir, {
    name, prio, port, vip: VIP, channel: 'lvsd', syncId: 42, keyFile: `${dir}/sync.key`, streamPort: STREAM_PORT,
    virtualServers: [
      `{ address: ${VIP}, port: 5353, protocol: udp, scheduler: rr, forwarding: dr, real_servers: [{ address: 192.0.2.11 }] }`,
      `{ address: ${VIP}, port: 80, scheduler: rr, forwarding: dr, real_servers: [{ address: 192.0.2.11 }] }`,
    ],
  });

const until = <T>(fn: () => Promise<T | undefined>, what: string | (() => string), ms = 180_000) => untilDone(fn, what, ms, 1000);
const sh = async (ns: Netns, script: string) => (await ns.exec(['sh', '-c', script], { via: 'nsenter', check: false })).stdout;
/**
 * UDP connections to VIP:5353 in a namespace's kernel, as the kernel counts them per real server
 * (netlink, O(services)): `ipvsadm -Lnc` reads /proc/net/ip_vs_conn, seconds per call with the
 * large table here. Only the flows use that service.
 */
const held = async (ns: Netns) => {
  for (const l of (await sh(ns, `ipvsadm -Ln -u ${VIP}:5353`)).split('\n')) {
    const f = l.trim().split(/\s+/);
    if (f[0] === '->' && f[1] === '192.0.2.11:5353') return (Number(f[4]) || 0) + (Number(f[5]) || 0);
  }
  return 0;
};
const sample = (text: string, series: string) => Number(new RegExp(`^${series.replace(/[{}"]/g, (c) => `\\${c}`)} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);

test('channel lvsd: the kernel stream brings connections to the peer while a large table is read seconds apart', { skip, timeout: 900_000 }, async (t) => {
  const topo = new Topology();
  const dir = mkdtempSync(join(tmpdir(), 'lvsd-kstream-'));
  writeFileSync(join(dir, 'sync.key'), KEY + '\n');
  const outputs: Array<[string, () => string]> = [];
  const dump = () => outputs.map(([n, o]) => `\n--- ${n} ---\n${o().slice(-2500)}`).join('');
  try {
    const cl = await topo.member('cl', ['192.0.2.50/24']);
    const a = await topo.member('a', ['192.0.2.2/24']);
    const b = await topo.member('b', ['192.0.2.3/24']);
    await topo.member('rs0', ['192.0.2.11/24']);
    const run = (ns: Netns, name: string, prio: number, port: number) => {
      const r = ns.start([lvsdBin, 'run', '-c', config(dir, name, prio, port)]);
      outputs.push([`${name} (${ns.name})`, () => r.output()]);
      return r;
    };
    run(a, 'a', 150, 19693);
    const rb = run(b, 'b', 100, 19694);
    const metricsA = () => sh(a, 'curl -s http://127.0.0.1:19693/metrics');
    await until(async () => ((await sh(a, 'ip -4 -o addr show dev eth0')).includes(`${VIP}/24`) ? true : undefined), () => `A to become master${dump()}`);
    await until(async () => (/peer table received|no active peer answered/.test(rb.output()) ? true : undefined), () => `B's start-up resync${dump()}`);
    await until(async () => (sample(await metricsA(), 'lvsd_sync_stream_up') === 1 ? true : undefined), () => `A's kernel stream up${dump()}`, 60_000);
    const daemonsA = await sh(a, 'ipvsadm -L --daemon');
    const daemonsB = await sh(b, 'ipvsadm -L --daemon');
    assert.match(daemonsA, new RegExp(String.raw`master sync daemon \(mcast=lo, syncid=42, maxlen=1, group=224\.0\.0\.81, port=${STREAM_PORT}\b`), daemonsA);
    assert.doesNotMatch(daemonsB, /master/, `B is passive: no stream daemon\n${daemonsB}`);

    // A datagram on the stream port that is not the kernel's: sent from A itself (a local source,
    // so only the syncid tells it apart), a v1 header of syncid 7 and no record.
    const bogus = `const s=require('dgram').createSocket('udp4');s.bind(0,'127.0.0.1',()=>{s.setMulticastInterface('127.0.0.1');s.setMulticastLoopback(true);s.send(Buffer.from([0,7,0,8,0,1,0,0]),${STREAM_PORT},'224.0.0.81',()=>s.close())})`;
    await a.exec([process.execPath, '-e', bogus], { via: 'nsenter' });

    // A large table: A's reads take about a second each and, with the stream up, come seconds apart.
    const inj = a.start([process.execPath, LOAD, 'inject', String(TABLE), '42']);
    outputs.push(['inject', () => inj.output()]);
    assert.equal((await inj.exited).code, 0, `inject${dump()}`);
    let inB = 0;
    await until(async () => {
      inB = await activeConns(b, `${VIP}:80`, '192.0.2.11:80');
      return inB >= TABLE ? true : undefined;
    }, () => `A's table of ${TABLE} in B's kernel (has ${inB})${dump()}`, 400_000);

    const m0 = await metricsA();
    const t0 = Date.now();
    const flows = cl.start([process.execPath, LOAD, 'flows', VIP, '5353', '10', String(COUNT), '1', String(BASE), '30']);
    outputs.push(['flows', () => flows.output()]);
    assert.equal((await flows.exited).code, 0, `flows${dump()}`);
    let last = 0;
    await until(async () => {
      last = await held(b);
      return last >= COUNT ? true : undefined;
    }, () => `all ${COUNT} flows in B's kernel (has ${last}, A has ...)${dump()}`, 60_000);
    const took = (Date.now() - t0) / 1000;
    const m1 = await metricsA();
    const streamSent = sample(m1, 'lvsd_sync_stream_records_total{outcome="sent"}') - sample(m0, 'lvsd_sync_stream_records_total{outcome="sent"}');
    const reads = sample(m1, 'lvsd_sync_table_read_seconds_count') - sample(m0, 'lvsd_sync_table_read_seconds_count');
    const drops = sample(m1, 'lvsd_sync_dropped_total{reason="stream"}');
    const readS = sample(m1, 'lvsd_sync_table_read_seconds_sum') / Math.max(1, sample(m1, 'lvsd_sync_table_read_seconds_count'));
    t.diagnostic(`${COUNT} flows in B's kernel ${took.toFixed(1)} s after the flows began (2 s of flows); A: stream sent ${streamSent}, table reads completed meanwhile ${reads} (a read's changes are posted at its end: with none, only the stream can have sent them; mean read ${readS.toFixed(2)} s), stream drops ${drops}`);
    // A read shows a flow first only if it passes the flow's place in the hash within the ~0.1 s
    // before the stream's record: most of the flows, in practice all but the last (it waits for the
    // master's 2 s flush), are the stream's. At least half, so a loaded guest cannot fail it.
    assert.ok(streamSent >= COUNT / 2, `the stream sent the flows (${streamSent} of ${COUNT})${dump()}`);
    assert.ok(drops >= 1, `the bogus datagram was counted as a drop${dump()}`);

    // A burst of one-record messages (syncid 42, from 127.0.0.1: a local source) as the master
    // daemon would send new UDP connections, sent out of lo (multicast loop off, as the kernel's
    // socket: lo delivers it once). They are not in A's table, so only the stream can send them.
    const file = join(dir, 'burst.bin');
    const v = Uint8Array.from([192, 0, 2, 100]);
    const d = Uint8Array.from([192, 0, 2, 11]);
    const msgs = encodeMessages(42, Array.from({ length: BURST }, (_, i) => ({
      family: 4 as const, protocol: 17, flags: ConnFlags.DROUTE | ConnFlags.NOOUTPUT | ConnFlags.INACTIVE, state: 0,
      cport: 1024 + (i % 50_000), vport: 5353, dport: 5353, fwmark: 0, timeout: 300, caddr: Uint8Array.from([198, 51, 100, 1 + Math.floor(i / 50_000)]), vaddr: v, daddr: d,
    })), 8 + 36);
    assert.equal(msgs.length, BURST);
    // UDP datagrams (8-byte header, checksum 0: none, RFC 768, then the message) through a raw
    // socket of the addon, all in sendmmsg calls: back to back, as fast as the guest makes them
    // (one dgram send() per datagram took ~10 s for 12,000 in the guest: slower than the worker).
    const dgrams = Buffer.alloc(BURST * 52);
    msgs.forEach((m, i) => {
      dgrams.writeUInt16BE(40000, i * 52);
      dgrams.writeUInt16BE(STREAM_PORT, i * 52 + 2);
      dgrams.writeUInt16BE(52, i * 52 + 4);
      m.copy(dgrams, i * 52 + 8);
    });
    writeFileSync(file, dgrams);
    const rawip = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'election', 'rawip.js');
    const sender = `import { RawIpSocket } from ${JSON.stringify(rawip)}; import { readFileSync } from 'node:fs';
const b = readFileSync(${JSON.stringify(file)}); const s = new RawIpSocket(4, 17, { onMessage() {}, onError() {} });
s.setOption(0, 32, Buffer.from([127, 0, 0, 1])); s.setInt(0, 34, 0); // IP_MULTICAST_IF lo, IP_MULTICAST_LOOP off
const t = performance.now(); let done = 0;
for (let k = 0; done < ${BURST} && k < 1000; k++) done += s.sendMany(Uint8Array.from([224, 0, 0, 81]), 0, b.subarray(done * 52), 52);
console.log(Math.round(performance.now() - t), done); s.close();`;
    const sockDrops = async () => udpDrops(await sh(a, 'cat /proc/net/udp'), '224.0.0.81', STREAM_PORT);
    // Datagrams the guest's kernel dropped from its per-CPU input backlog (/proc/net/softnet_stat,
    // second column; netdev_max_backlog, 1,000): lo queues every datagram there on its way in, and
    // a drop there is before any socket, not lvsd's. It is what cut CI 2026-12-05 16:35 and two lab
    // runs at 17:05 and 17:20 short (A sent 9,150, 10,217 and 11,498 of 12,000; those figures had no
    // backlog count yet): a fresh-clone CI on 12-05 at 22:50 saw 2,383 backlog drops, A's
    // guest UDP took 9,649 datagrams (Udp.InDatagrams) and A sent 9,617 + 2,383 = 12,000: every one
    // that reached the socket. A burst on lo into an idle guest loses none (30 lab runs, 12-05).
    const backlogDrops = async () => (await sh(a, 'cat /proc/net/softnet_stat')).trim().split('\n').reduce((t, l) => t + (parseInt(l.trim().split(/\s+/)[1] ?? '0', 16) || 0), 0);
    // The guest's IP and UDP counters (/proc/net/snmp): a datagram dropped between the backlog and
    // the socket (Ip InDiscards, Udp InErrors / NoPorts / MemErrors) shows here, not in sk_drops.
    const snmp = async () => {
      const lines = (await sh(a, 'cat /proc/net/snmp')).split('\n').map((l) => l.trim().split(/\s+/));
      const out: Record<string, number> = {};
      for (let i = 0; i + 1 < lines.length; i += 2) {
        const [head, vals] = [lines[i]!, lines[i + 1]!];
        if (head[0] !== vals[0] || !/^(Ip|Udp):$/.test(head[0] ?? '')) continue;
        head.slice(1).forEach((k, j) => (out[`${head[0]!.slice(0, -1)}.${k}`] = Number(vals[j + 1])));
      }
      return out;
    };
    const n0 = await snmp();
    const q0 = await backlogDrops();
    const k0 = await sockDrops();
    const m2 = await metricsA();
    const reads0 = sample(m2, 'lvsd_sync_table_read_seconds_count');
    const [sendMs, sentN] = (await a.exec([process.execPath, '--input-type=module', '-e', sender], { via: 'nsenter' })).stdout.trim().split(' ');
    assert.equal(Number(sentN), BURST, `the sender sent every datagram${dump()}`);
    const sent = () => sample(m3, 'lvsd_sync_stream_records_total{outcome="sent"}') - sample(m2, 'lvsd_sync_stream_records_total{outcome="sent"}');
    // Until all are sent, or the count stands still for STILL_S (records lost: a record the socket
    // took is sent or counted within a loop turn of A's worker; one read slice or GC is far
    // shorter), at most 180 s. The test is about loss, not speed: a loaded guest may take its time
    // (stop CI 2026-12-05 07:21 failed here with a 5 s stand-still rule, neither socket drops nor
    // overflow counted).
    const STILL_S = 20;
    let m3 = m2;
    const tb = Date.now();
    for (let still = 0, last = -1, end = Date.now() + 180_000; Date.now() < end && still < STILL_S; ) {
      await new Promise((r) => setTimeout(r, 1000));
      m3 = await metricsA();
      if (sent() >= BURST - ((await backlogDrops()) - q0)) break;
      still = sent() === last ? still + 1 : 0;
      last = sent();
    }
    const k1 = await sockDrops();
    // Bytes still queued in A's stream socket at the end (/proc/net/udp rx_queue), and how many
    // sockets are on the port: a count that stood still with datagrams unread, or with the socket
    // gone, shows here.
    const streamSocks = udpSockets(await sh(a, 'cat /proc/net/udp'), '224.0.0.81', STREAM_PORT);
    const unread = streamSocks.reduce((t, s) => t + s.unread, 0);
    const q1 = (await backlogDrops()) - q0;
    const n1 = await snmp();
    const counters = ['Ip.InDiscards', 'Ip.InHdrErrors', 'Udp.InDatagrams', 'Udp.InErrors', 'Udp.NoPorts', 'Udp.RcvbufErrors', 'Udp.MemErrors'].map((k) => `${k} +${(n1[k] ?? 0) - (n0[k] ?? 0)}`).join(', ');
    const overflow = sample(m3, 'lvsd_sync_dropped_total{reason="stream_overflow"}') - sample(m2, 'lvsd_sync_dropped_total{reason="stream_overflow"}');
    const readsDuring = sample(m3, 'lvsd_sync_table_read_seconds_count') - reads0;
    const known = sample(m3, 'lvsd_sync_stream_records_total{outcome="known"}') - sample(m2, 'lvsd_sync_stream_records_total{outcome="known"}');
    const streamDrops = sample(m3, 'lvsd_sync_dropped_total{reason="stream"}') - sample(m2, 'lvsd_sync_dropped_total{reason="stream"}');
    // The figures lead every message: a CI excerpt keeps a failure's first lines.
    // A's VRRP transitions during the burst: a director that leaves MASTER stops its stream (the
    // table worker closes the socket and drops what it holds: a passive director sends nothing).
    const transitions = (text: string) => [...text.matchAll(/^lvsd_vrrp_transitions_total\{[^}]*\} (\S+)$/gm)].reduce((t, m) => t + Number(m[1]), 0);
    const moved = transitions(m3) - transitions(m2);
    const figures = `burst: ${BURST} datagrams sent in ${sendMs} ms (sendmmsg); after ${((Date.now() - tb) / 1000).toFixed(0)} s A: stream sent ${sent()}, known ${known}, stream drops ${streamDrops}, socket drops ${k1 - k0}, stream_overflow ${overflow}, guest backlog drops ${q1}, bytes unread in A's stream socket ${unread} (sockets on the port: ${streamSocks.length}), table reads completed meanwhile ${readsDuring}, A's VRRP transitions meanwhile ${moved}; A's guest: ${counters}`;
    t.diagnostic(figures);
    // Both directors' sync series when not all were sent (a failure's cause is A's sending or B's
    // receiving: CI 2026-12-05 16:35 stood still at 9,150 of 12,000 with nothing counted on A's side).
    const syncSeries = async (ns: Netns, port: number) => (await sh(ns, `curl -s http://127.0.0.1:${port}/metrics`)).split('\n').filter((l) => l.startsWith('lvsd_sync_') && !l.includes('_bucket{')).join('\n');
    // And every line of either log about roles and the stream (the tail of the log may not reach back to the burst).
    const roleLines = (text: string) => text.split('\n').filter((l) => /VRRP |sync source|kernel stream|sync daemon changed|table worker/.test(l)).slice(-40).join('\n');
    const series = sent() + q1 >= BURST ? '' : `\n--- A sync series ---\n${await syncSeries(a, 19693)}\n--- B sync series ---\n${await syncSeries(b, 19694)}${outputs.filter(([n]) => /^[ab] /.test(n)).map(([n, o]) => `\n--- ${n}: roles and stream ---\n${roleLines(o())}`).join('')}`;
    assert.equal(k1 - k0, 0, `the kernel dropped none of the stream's datagrams for A's socket (${figures})${dump()}`);
    assert.equal(overflow, 0, `no stream_overflow counted (${figures})${dump()}`);
    // Every datagram that reached A's socket was sent once: all of them, less any the guest's
    // backlog dropped before the socket (those drops may be other traffic's too: at most, not exactly).
    assert.ok(sent() <= BURST && sent() >= BURST - q1, `every burst record that reached A's socket was sent once (${figures})${series}${dump()}`);
  } finally {
    await topo.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
});
