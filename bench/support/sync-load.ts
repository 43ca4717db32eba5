/**
 * Load for bench/sync.ts, run inside a namespace of the lab guest (never on the host):
 *
 *   node sync-load.js flows VIP PORT RATE COUNT SAMPLE SPORT_BASE SECONDS
 *     COUNT new UDP "connections" to VIP:PORT at RATE per second: flow i is three datagrams from
 *     source port SPORT_BASE + i, sent back to back through a raw IPv4 socket (the project's addon:
 *     one socket, any source port, no per-flow socket; the kernel routes them and resolves the
 *     next hop's MAC). Three, because the kernel's master sync daemon sends a UDP connection at its
 *     3rd packet (ip_vs_sync.c, sync_threshold 3): both channels then have something to send from
 *     the same moment. IPVS creates the entry at the first datagram. The flows due are sent in
 *     batches, one sendmmsg(2) each (at most 20 ms' worth, ≥ 5 ms apart): in a UML guest a system
 *     call costs a ptrace round trip on the host, and one sendto() per datagram capped the client
 *     guest at ~1,000-1,950 flows/s. Stops after SECONDS even if COUNT is not reached. Prints one
 *     JSON line at the end: sent, seconds, achieved rate, EAGAIN retries, the batches' sendmmsg
 *     durations (sendCallMs: the error bound of a sample's time), its own CPU time (cpuMs, user +
 *     system, so the kernel's sending work too), and the wall-clock send time (ms,
 *     sub-ms precision) of every SAMPLE-th flow (its batch's start plus its share of the call).
 *   node sync-load.js inject COUNT SYNCID [STREAM_PORT] [TIMEOUT]
 *     Installs COUNT established TCP connections (clients 203.0.113.0/24, VIP 192.0.2.100:80, real
 *     server 192.0.2.11:80, DR, timeout TIMEOUT s, default 900: a short one lets a reference fill
 *     expire before the table is needed empty) into this namespace's kernel by sending kernel sync
 *     v1 messages to its backup daemon on lo (src/sync/adapters.ts LoopbackInjector), all queued at
 *     once (joined, up to 255 records a datagram) and paced by the daemon's receive queue, as a
 *     resync's records are handed over. With STREAM_PORT,
 *     each message also goes to 224.0.0.81:STREAM_PORT out of lo, as the kernel's master daemon
 *     streams connections made by traffic (their 3rd packet): the active lvsd's kernel stream
 *     learns them as it would real ones (connections installed through the backup daemon are not
 *     streamed by the kernel). STREAM_PORT 0: none. Prints one JSON line: messages, seconds,
 *     daemonDrops, resent, lost (the hand-over's resends of what the daemon dropped, and what they
 *     did not make good), start (wall-clock ms of the first send: the guest's clock, for a counter's samples).
 *   node sync-load.js probe SECONDS
 *     A guest-wide stall probe: a 10 ms timer in its own process; prints one JSON line with every
 *     wake-up later than 100 ms (wall-clock ms of the wake, lateness ms). When the daemons' event
 *     loops and this probe are late at the same moments, the whole guest stalled, not one process.
 *   node sync-load.js inject-flows RATE COUNT SYNCID SAMPLE SPORT_BASE SECONDS
 *     New UDP connections at RATE per second made the cheap way: installed into this namespace's
 *     kernel (the active director's) through its backup daemon on lo, as `flows` would have them
 *     (client 192.0.2.50:SPORT_BASE+i → 192.0.2.100:5353, real server 192.0.2.11, DR, 300 s).
 *     Every ~2 ms one message carries the connections due by then, so at 5,000/s about 10 share a
 *     message where `flows` needs 15,000 sendto()s a second, more than the guest's one CPU can make
 *     beside the directors. What the channel sees is the same: a new entry in the active
 *     director's table. Prints the same JSON line as `flows` (the send time of each sampled
 *     connection is that of its message).
 *   node sync-load.js count VIP PORT RS SECONDS
 *     The kernel's ActiveConn of real server RS (port PORT) under TCP service VIP:PORT in this
 *     namespace, over generic netlink every 100 ms from this one process (the kernel counts bound
 *     connections per real server: bench/support/conn-count.ts). Prints one JSON line per change,
 *     [wall-clock ms of the sample, ActiveConn]; stops after SECONDS or at SIGTERM. Replaces a
 *     nsenter + ipvsadm run per sample (two execs every 100 ms on the guest's one CPU, beside the
 *     resync it measures).
 * Bounded: COUNT ≤ 200,000 and a 120 s deadline in the inject modes and flows, SECONDS ≤ 600 in the probe.
 */
import { RawIpSocket } from '../../src/election/rawip.js';
import { LoopbackInjector } from '../../src/sync/adapters.js';
import { localSyncPorts } from '../../src/config/model.js';
import { SYNC_PORT } from '../../src/sync/codec.js';

/** The hand-over port of a director with the default sync ports (its backup daemon on lo listens there). */
const HANDOVER_PORT = localSyncPorts({ port: SYNC_PORT }).handover;
import { encodeMessages, ConnFlags, type SyncConn } from '../../src/sync/codec.js';
import { DEFAULT_FRAME_PAYLOAD } from '../../src/sync/channel.js';
import { parseIp } from '../../src/core/address.js';
import { setTimeout as sleep } from 'node:timers/promises';
import dgram from 'node:dgram';
import { NetlinkDataplane } from '../../src/ipvs/netlink.js';

const DEADLINE_MS = 120_000;
/** flows: the shortest pause between two batches (5,000 flows/s: batches of ~25 flows, 75 datagrams). */
const GAP_MS = 5;
const wall = () => performance.timeOrigin + performance.now();

async function flows(vip: string, port: number, rate: number, count: number, sample: number, base: number, seconds: number): Promise<void> {
  const sock = new RawIpSocket(4, 17, { onMessage: () => undefined, onError: () => undefined });
  const dst = parseIp(vip)!.bytes;
  const SIZE = 8 + 4; // UDP header + the flow's index
  // Never more than 20 ms' worth in one batch: a generator that fell behind does not catch up in a
  // burst (the achieved rate is what it reports), and the segment's queues see ~100 datagrams at once.
  const most = Math.max(1, Math.ceil(rate / 50));
  const buf = Buffer.alloc(most * 3 * SIZE);
  for (let k = 0; k < most * 3; k++) {
    buf.writeUInt16BE(port, k * SIZE + 2);
    buf.writeUInt16BE(SIZE, k * SIZE + 4); // checksum 0: none (allowed for UDP over IPv4, RFC 768)
  }
  const samples: Array<[number, number]> = [];
  const callMs: number[] = [];
  let again = 0;
  let i = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  // Ends at COUNT or after SECONDS, whichever comes first: a slow guest reports the rate it managed.
  const limit = Math.min(DEADLINE_MS, seconds * 1000);
  while (i < count && performance.now() - t0 < limit) {
    const n = Math.min(count, Math.floor(((performance.now() - t0) * rate) / 1000) + 1, i + most) - i;
    if (n <= 0) {
      await sleep(Math.max(GAP_MS, t0 + (i * 1000) / rate - performance.now()));
      continue;
    }
    for (let f = 0; f < n; f++) {
      for (let k = 0; k < 3; k++) {
        buf.writeUInt16BE((base + i + f) & 0xffff, (f * 3 + k) * SIZE);
        buf.writeUInt32BE(i + f, (f * 3 + k) * SIZE + 8);
      }
    }
    // One sendmmsg(2) for the batch (a few if the socket's buffer fills: EAGAIN or ENOBUFS, then 1 ms pause).
    const w0 = wall();
    let done = 0;
    for (let tries = 0; done < n * 3; tries++) {
      try {
        done += sock.sendMany(dst, 0, buf.subarray(done * SIZE, n * 3 * SIZE), SIZE);
      } catch (e) {
        // ENOBUFS: the first datagram found no room (the neighbour's queue while the VIP's MAC is
        // being resolved, or the device's): retried like EAGAIN. Seen at the first batch of a run
        // (2026-12-06), which it ended.
        if ((e as { code?: string }).code !== 'E105') throw e;
      }
      if (done === n * 3) break;
      if (tries > 100) throw new Error(`sendmmsg: the socket took ${done} of ${n * 3} datagrams in 100 tries`);
      again++;
      await sleep(1);
    }
    const w1 = wall();
    callMs.push(w1 - w0);
    // A flow's first datagram was handed to the kernel (and, the path being synchronous down to
    // the guest's network device, sent) between w0 and w1: its time is placed by its position in
    // the batch; the error is at most the batch's duration (reported as sendCallMs).
    for (let f = 0; f < n; f++) if ((i + f) % sample === 0) samples.push([base + i + f, w0 + ((w1 - w0) * f) / n]);
    i += n;
    // At least GAP_MS between batches: in UML every wake-up costs system calls that are ptrace round
    // trips (a 1 ms loop took 74 % of the client guest's CPU at 10 flows/s); the rate comes from the
    // batch size, not from this sleep.
    await sleep(Math.max(GAP_MS, t0 + (i * 1000) / rate - performance.now()));
  }
  const took = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  sock.close();
  const q = (p: number) => [...callMs].sort((x, y) => x - y)[Math.min(callMs.length - 1, Math.ceil(p * callMs.length) - 1)] ?? NaN;
  const sendCallMs = { calls: callMs.length, p50: q(0.5), p95: q(0.95), max: Math.max(...callMs) };
  process.stdout.write(JSON.stringify({ sent: i, seconds: took, rate: i / took, eagain: again, sendCallMs, cpuMs: (cpu.user + cpu.system) / 1000, samples }) + '\n');
}

async function inject(count: number, syncid: number, streamPort: number, timeout: number): Promise<void> {
  const conns: SyncConn[] = [];
  const v = parseIp('192.0.2.100')!.bytes;
  const d = parseIp('192.0.2.11')!.bytes;
  for (let i = 0; i < count; i++) {
    const caddr = Uint8Array.from([203, 0, 113, 1 + (i % 250)]);
    conns.push({ family: 4, protocol: 6, flags: ConnFlags.DROUTE | ConnFlags.NOOUTPUT, state: 1, cport: 1024 + Math.floor(i / 250), vport: 80, dport: 80, fwmark: 0, timeout, caddr, vaddr: v, daddr: d });
  }
  const msgs = encodeMessages(syncid, conns, DEFAULT_FRAME_PAYLOAD);
  let drops = 0;
  // The injector paces itself by the daemon's receive queue (the daemon drains it in its own thread).
  let lost = 0;
  const inj = await LoopbackInjector.open(HANDOVER_PORT, { dropped: (n) => (drops += n), lost: (n) => (lost += n) });
  let stream: dgram.Socket | undefined;
  if (streamPort) {
    const sock = dgram.createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
    sock.setMulticastInterface('127.0.0.1');
    sock.setMulticastLoopback(true);
    sock.setMulticastTTL(1);
    stream = sock;
  }
  const start = wall();
  const t0 = performance.now();
  // All queued at once, as a resync's frames reach b's hand-over: joined (255 records a datagram)
  // and paced by the daemon's queue. One awaited send per message (before 2026-12-06) made this
  // reference ~2,600 datagrams of 38 records, one event-loop turn each: the loop's time in the
  // guest, not the kernel's (which installs 100,000 in well under a second fed unpaced).
  await Promise.all(
    msgs.map(async (m) => {
      await inj.send(m);
      if (stream) await new Promise<void>((r) => stream.send(m, streamPort, '224.0.0.81', () => r()));
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  // The hand-over's last look and any resend of what the daemon dropped (as lvsd's own would).
  await inj.whenIdle();
  await inj.close();
  stream?.close();
  process.stdout.write(JSON.stringify({ messages: msgs.length, seconds, daemonDrops: drops, resent: inj.sent.resent, lost, start: Math.round(start) }) + '\n');
}

async function probe(seconds: number): Promise<void> {
  const late: Array<[number, number]> = [];
  const end = performance.now() + seconds * 1000;
  let stop = false;
  process.on('SIGTERM', () => (stop = true));
  while (!stop && performance.now() < end) {
    const t = performance.now();
    await sleep(10);
    const l = performance.now() - t - 10;
    if (l > 100) late.push([Math.round(wall()), Math.round(l)]);
  }
  process.stdout.write(JSON.stringify({ late }) + '\n');
}

async function injectFlows(rate: number, count: number, syncid: number, sample: number, base: number, seconds: number): Promise<void> {
  const v = parseIp('192.0.2.100')!.bytes;
  const c = parseIp('192.0.2.50')!.bytes;
  const d = parseIp('192.0.2.11')!.bytes;
  let drops = 0;
  const inj = await LoopbackInjector.open(HANDOVER_PORT, { dropped: (n) => (drops += n) });
  const samples: Array<[number, number]> = [];
  let i = 0;
  const t0 = performance.now();
  const limit = Math.min(DEADLINE_MS, seconds * 1000);
  while (i < count && performance.now() - t0 < limit) {
    // What is due now, never more than 50 ms' worth at once (a late wake-up of this loop in the
    // guest does not cap the rate as flows()' 10 ms would: a message costs one sendto, not 30).
    const due = Math.min(count, Math.floor(((performance.now() - t0) * rate) / 1000) + 1, i + Math.ceil(rate / 20));
    const conns: SyncConn[] = [];
    const at = wall();
    for (; i < due; i++) {
      conns.push({ family: 4, protocol: 17, flags: ConnFlags.DROUTE | ConnFlags.NOOUTPUT | ConnFlags.INACTIVE, state: 0, cport: base + i, vport: 5353, dport: 5353, fwmark: 0, timeout: 300, caddr: c, vaddr: v, daddr: d });
      if (i % sample === 0) samples.push([base + i, at]);
    }
    for (const m of encodeMessages(syncid, conns, DEFAULT_FRAME_PAYLOAD)) await inj.send(m);
    await sleep(2);
  }
  const took = (performance.now() - t0) / 1000;
  await inj.close();
  process.stdout.write(JSON.stringify({ sent: i, seconds: took, rate: i / took, daemonDrops: drops, samples }) + '\n');
}

async function count(vip: string, port: number, rs: string, seconds: number): Promise<void> {
  const dp = await NetlinkDataplane.open();
  const end = performance.now() + seconds * 1000;
  let stop = false;
  process.on('SIGTERM', () => (stop = true));
  let last = -1;
  while (!stop && performance.now() < end) {
    const at = wall();
    let n = 0;
    try {
      n = (await dp.listDests({ family: 4, protocol: 'tcp', addr: vip, port, fwmark: 0 })).find((d) => d.addr === rs && d.port === port)?.active_conns ?? 0;
    } catch {
      /* no such service yet */
    }
    if (n !== last) process.stdout.write(JSON.stringify([Math.round(at), n]) + '\n');
    last = n;
    await sleep(100);
  }
  await dp.close();
}

const [mode, ...a] = process.argv.slice(2);
const n = (s: string | undefined, max: number) => {
  const x = Number(s);
  if (!Number.isFinite(x) || x < 0 || x > max) throw new Error(`bad number ${s}`);
  return x;
};
if (mode === 'flows') await flows(a[0]!, n(a[1], 65535), n(a[2], 100_000), n(a[3], 200_000), Math.max(1, n(a[4], 200_000)), n(a[5], 65535), n(a[6], 120));
else if (mode === 'inject') await inject(n(a[0], 200_000), n(a[1], 255), n(a[2] ?? '0', 65535), Math.max(1, n(a[3] ?? '900', 86_400)));
else if (mode === 'probe') await probe(n(a[0], 600));
else if (mode === 'inject-flows') await injectFlows(n(a[0], 100_000), n(a[1], 60_000), n(a[2], 255), Math.max(1, n(a[3], 60_000)), n(a[4], 65535), n(a[5], 120));
else if (mode === 'count') await count(a[0]!, n(a[1], 65535), a[2]!, n(a[3], 600));
else throw new Error('usage: sync-load.js count VIP PORT RS SECONDS | flows VIP PORT RATE COUNT SAMPLE SPORT_BASE SECONDS | inject COUNT SYNCID [STREAM_PORT] [TIMEOUT] | inject-flows RATE COUNT SYNCID SAMPLE SPORT_BASE SECONDS | probe SECONDS');
