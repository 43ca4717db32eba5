/**
 * Election and failover on real namespaces: two directors (a, b) and a client (c) on a bridge.
 *  - lvsd with lvsd: the higher priority wins; hard kill and graceful stop move the VIP (graceful in
 *    Skew_Time thanks to the priority-0 advert); the restarted higher-priority one preempts back.
 *  - lvsd with a real keepalived, both roles, VRRPv2 (1 s) and VRRPv3 (0.1 s): the higher priority
 *    wins whoever runs it, killing it moves the VIP to the other, and the client's ARP entry for the
 *    VIP follows the new master's MAC (gratuitous ARP; no client traffic needed).
 *  - The same with VRRPv3 over IPv6 (link-local sources, ff02::12, unsolicited NA moves the client's
 *    neighbour entry).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { Topology, isRoot } from '../../src/lab/netns.js';
import { waitFor } from '../support/proc.js';
import { startPeer, stopPeer, removeScratch, apiGet, type PeerSpec } from './support/peers.js';

const skip = !isRoot() && 'needs root (network namespaces)';
const VIP4 = '192.0.2.42';
const VIP6 = '2001:db8::42';
after(() => removeScratch());

interface Case {
  hi: PeerSpec['kind'];
  lo: PeerSpec['kind'];
  version: 2 | 3;
  advert: number;
  how: 'kill' | 'stop';
  /** also restart the high one and check it preempts back */
  preemptBack?: boolean;
  family?: 4 | 6;
}

async function scenario(c: Case): Promise<{ takeoverMs: number }> {
  const topo = new Topology();
  try {
    const v6 = c.family === 6;
    const VIP = v6 ? VIP6 : VIP4;
    const plen = v6 ? 64 : 24;
    const net = v6 ? '2001:db8::' : '192.0.2.';
    const a = await topo.member('a', [`${net}1/${plen}`]);
    const b = await topo.member('b', [`${net}2/${plen}`]);
    const cl = await topo.member('c', [`${net}3/${plen}`]);
    const base = { version: c.version, advert: c.advert, vips: [`${VIP}/${plen}`], garpRepeat: 3, garpDelay: 1 } as const;
    const hiSpec: PeerSpec = { ...base, kind: c.hi, name: 'hi', priority: 150 };
    const loSpec: PeerSpec = { ...base, kind: c.lo, name: 'lo', priority: 100 };
    const pa = startPeer(a, hiSpec);
    startPeer(b, loSpec);
    const mdi = (3 + (256 - 100) / 256) * c.advert * 1000;
    // Generous: daemons start slowly on a loaded 2-core CI machine; timing claims are asserted below.
    const electMs = mdi * 2 + 20000;
    await waitFor(async () => (await a.addrs()).includes(VIP), `the higher priority (${c.hi}) to take the VIP`, electMs, 20);
    // Stable: the lower one holds no VIP a few adverts later (it may have been master briefly if it started first).
    await waitFor(async () => !(await b.addrs()).includes(VIP), 'the lower priority to release the VIP', electMs, 20);
    await sleep(3 * c.advert * 1000);
    assert.ok((await a.addrs()).includes(VIP) && !(await b.addrs()).includes(VIP), 'exactly the higher priority holds the VIP');
    const macA = await a.mac();
    const macB = await b.mac();
    await cl.poke(VIP);
    await waitFor(async () => (await cl.neigh(VIP)) === macA, 'client ARP entry for the first master', 3000, 20);

    const t0 = Date.now();
    await stopPeer(pa, c.how);
    await waitFor(async () => (await b.addrs()).includes(VIP), `the VIP to move to ${c.lo}`, mdi + 10000, 2);
    const takeoverMs = Date.now() - t0;
    await waitFor(async () => (await cl.neigh(VIP)) === macB, 'client ARP entry to follow the new master (GARP)', 2500, 10);
    if (c.how === 'stop') {
      await waitFor(async () => !(await a.addrs()).includes(VIP), 'graceful stop to remove the VIP', 3000, 10);
      if (c.hi === 'lvsd') {
        // Make-before-break (stop_handover): the VIP went only once the new master advertised.
        await waitFor(() => pa.proc.output().includes('stop handover: new master advertised'), 'the stopping lvsd to see the new master', 3000, 10);
      }
    }

    if (c.preemptBack) {
      if (c.how === 'kill') await a.exec(['ip', 'addr', 'del', `${VIP}/${plen}`, 'dev', 'eth0'], { check: false });
      startPeer(a, hiSpec);
      await waitFor(async () => (await a.addrs()).includes(VIP) && !(await b.addrs()).includes(VIP), 'the restarted higher priority to preempt', electMs, 20);
      await waitFor(async () => (await cl.neigh(VIP)) === macA, 'client ARP entry back to the first', 2500, 10);
    }
    return { takeoverMs };
  } finally {
    await topo.destroy();
  }
}

test('lvsd + lvsd, v3 0.1 s: hard kill moves the VIP, restart preempts back', { skip }, async () => {
  const r = await scenario({ hi: 'lvsd', lo: 'lvsd', version: 3, advert: 0.1, how: 'kill', preemptBack: true });
  // Master_Down_Interval for priority 100 is 361 ms; the bound leaves room for a loaded machine.
  // Seconds-level sanity only (the kill itself and `ip` polls are inside it on a loaded machine); the
  // failover figure is bench/failover.ts's (docs/election.md).
  assert.ok(r.takeoverMs < 10000, `takeover ${r.takeoverMs} ms`);
});

test('lvsd + lvsd, v3 0.5 s: graceful stop hands over in Skew_Time (priority-0 advert), VIP kept until the new master advertises', { skip }, async () => {
  await scenario({ hi: 'lvsd', lo: 'lvsd', version: 3, advert: 0.5, how: 'stop' });
  // In Skew_Time (305 ms), not Master_Down_Interval (1805 ms), shown by order rather than a clock:
  // the stopping lvsd holds the VIP for at most two intervals (1 s), and the scenario asserts that
  // it saw the new master advertise within that handover ('stop handover: new master advertised');
  // a backup waiting Master_Down_Interval would have come after the handover had timed out.
});

test('interop v3 0.1 s: lvsd (150) stops gracefully, keepalived (100) takes over; lvsd releases the VIP on its advert', { skip }, async () => {
  // keepalived took over inside lvsd's stop handover (asserted in scenario): in Skew_Time.
  await scenario({ hi: 'lvsd', lo: 'keepalived', version: 3, advert: 0.1, how: 'stop' });
});

for (const version of [3, 2] as const) {
  const advert = version === 3 ? 0.1 : 1;
  for (const [hi, lo] of [['lvsd', 'keepalived'], ['keepalived', 'lvsd']] as const) {
    test(`interop v${version} ${advert} s: ${hi} (150) vs ${lo} (100): higher wins, kill moves VIP and ARP`, { skip }, async () => {
      const r = await scenario({ hi, lo, version, advert, how: 'kill' });
      const mdi = (3 + 156 / 256) * advert * 1000;
      assert.ok(r.takeoverMs < mdi + 10000, `takeover ${r.takeoverMs} ms (Master_Down_Interval ${mdi} ms; seconds-level sanity)`);
    });
  }
}

for (const [hi, lo] of [['lvsd', 'keepalived'], ['keepalived', 'lvsd']] as const) {
  test(`interop IPv6 v3 0.1 s: ${hi} (150) vs ${lo} (100): higher wins, kill moves VIP and ND entry`, { skip }, async () => {
    const r = await scenario({ hi, lo, version: 3, advert: 0.1, how: 'kill', family: 6 });
    // Seconds-level sanity only (the kill itself and `ip` polls are inside it on a loaded machine); the
  // failover figure is bench/failover.ts's (docs/election.md).
  assert.ok(r.takeoverMs < 10000, `takeover ${r.takeoverMs} ms`);
  });
}

// The takeover call (runtime armTimer → addon takeover): what the takeover puts on the wire goes out
// in one native call — the first GARP round, the new master's first advert, the rest of the burst —
// and JavaScript only adopts it: the client must see exactly `master_repeat` GARPs at once, the
// first already carrying the new master's MAC, exactly one advert among them (not a second one from
// the machine's own send_advert), the metrics must count what the call sent, and the log says which
// path it took.
const takeoverSniffer = [
  'import socket, struct, sys',
  's = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))',
  "s.bind(('eth0', 0))",
  // SO_TIMESTAMPNS: each frame's kernel receive time, so a sniffer held up by a loaded machine does
  // not squeeze the gaps the test compares (it only reads later, not at other stamps).
  's.setsockopt(socket.SOL_SOCKET, 35, 1)',
  // Bound: every frame from here on is captured (the test waits for this line, not a fixed pause).
  "sys.stdout.write('ready\\n'); sys.stdout.flush()",
  'while True:',
  '    f, anc, _fl, _a = s.recvmsg(2048, 64)',
  "    t = next((struct.unpack('qq', d[:16]) for (l, k, d) in anc if l == socket.SOL_SOCKET and k == 35), (0, 0))",
  '    ts = t[0] + t[1] / 1e9',
  "    if f[12:14] == b'\\x08\\x06' and f[28:32] == socket.inet_aton('192.0.2.42'): sys.stdout.write('garp %s %.6f\\n' % (f[6:12].hex(':'), ts)); sys.stdout.flush()",
  "    elif f[12:14] == b'\\x08\\x00' and f[23] == 112 and f[26:30] == socket.inet_aton('192.0.2.2'): sys.stdout.write('advert %s %.6f\\n' % (f[6:12].hex(':'), ts)); sys.stdout.flush()",
].join('\n');

const metricValue = (text: string, name: string) => Number(new RegExp(`^${name}\\{[^}]*\\} (\\d+)`, 'm').exec(text)?.[1] ?? NaN);

test('lvsd takeover through the one-call path: VIP added, GARP round, advert, rest of the burst at once; counted once', { skip }, async () => {
  const topo = new Topology();
  try {
    const a = await topo.member('a', ['192.0.2.1/24']);
    const b = await topo.member('b', ['192.0.2.2/24']);
    const cl = await topo.member('c', ['192.0.2.3/24']);
    // The delayed burst 60 s later: by construction outside the wait below, however loaded the host.
    const base = { kind: 'lvsd', version: 3, advert: 0.1, vips: [`${VIP4}/24`], garpRepeat: 3, garpDelay: 60 } as const;
    const pa = startPeer(a, { ...base, name: 'hi', priority: 150 });
    const pb = startPeer(b, { ...base, name: 'lo', priority: 100 });
    await waitFor(async () => (await a.addrs()).includes(VIP4) && !(await b.addrs()).includes(VIP4), 'a to be master', 30000, 20);
    const sn = cl.start(['python3', '-u', '-c', takeoverSniffer]);
    await waitFor(() => sn.output().includes('ready') || undefined, 'the sniffer to be bound', 30_000, 20);
    const before = await apiGet(b, '/metrics');
    await stopPeer(pa, 'kill');
    await waitFor(async () => (await b.addrs()).includes(VIP4), 'the VIP to move to b', 10000, 5);
    const macB = await b.mac();
    const fromB = () => sn.output().split('\n').filter((l) => l.startsWith('garp ') || l.startsWith('advert ')).map((l) => l.split(' ')).filter((g) => g[1] === macB);
    // The first burst is over once b's second advert was seen (the burst goes out before it: asserted below).
    await waitFor(() => (fromB().filter((g) => g[0] === 'advert').length >= 2 && fromB().filter((g) => g[0] === 'garp').length >= 3 ? true : undefined), "b's first burst and two adverts", 30_000, 20);
    const seen = fromB();
    const garps = seen.filter((g) => g[0] === 'garp');
    assert.equal(garps.length, 3, `GARPs from b in the first burst:\n${sn.output()}`);
    // The whole first burst went out before b's next advert (the 0.1 s Adver_Timer's): at once, not
    // spaced (order; how fast is bench/failover.ts's figure).
    const advertTimes = seen.filter((g) => g[0] === 'advert').map((g) => Number(g[2]));
    assert.ok(advertTimes.length >= 2 && Number(garps.at(-1)![2]) <= advertTimes[1]!, `the burst before the second advert:\n${sn.output()}`);
    // In the order the call sends them: round 1 (one VIP), the advert, rounds 2-3.
    assert.deepEqual(seen.slice(0, 4).map((g) => g[0]), ['garp', 'advert', 'garp', 'garp'], `b's first packets:\n${sn.output()}`);
    // The next advert is the 0.1 s timer's, not the machine's send_advert repeating the call's one
    // (which would follow within the ~10 ms quiet window). A lower bound on kernel receive stamps: a
    // loaded machine only makes the gap longer (the Adver_Timer cannot fire early).
    const adverts = seen.filter((g) => g[0] === 'advert').map((g) => Number(g[2]));
    assert.ok(adverts.length >= 2 && adverts[1]! - adverts[0]! > 0.08, `b's adverts after the takeover at ${adverts.map((t) => (t - adverts[0]!).toFixed(4)).join(', ')} s`);
    // Adverts counted vs seen on the wire around the scrape (which takes a few advert intervals),
    // by the sniffer's kernel receive stamps (CLOCK_REALTIME, as Date.now()), not by what it has
    // printed so far: on a loaded machine the sniffer's output lags the wire by several adverts.
    const advertStamps = () => sn.output().split('\n').filter((l) => l.startsWith(`advert ${macB} `)).map((l) => Number(l.split(' ')[2]));
    const t0 = Date.now() / 1000;
    const after = await apiGet(b, '/metrics');
    const t1 = Date.now() / 1000;
    // The upper bound allows the wire's lag: an advert counted before the scrape ended reaches the
    // sniffer's socket later (veth delivery runs in softirq, deferred to ksoftirqd on a loaded
    // machine): with two CPU burners beside the suite 2 counted adverts were stamped after t1
    // (counted 11, seen 2..9; CI 2026-12-05 06:12). LAG_S is 3 advert intervals: a counter off by a
    // factor (an advert counted twice, or a GARP counted as one) still fails.
    const LAG_S = 0.3;
    // Everything up to t1 + LAG_S is printed once an advert stamped later is (the sniffer prints in order).
    await waitFor(() => (advertStamps().some((t) => t > t1 + LAG_S) ? true : undefined), 'the sniffer to print an advert sent after the scrape', 30_000, 20);
    const seenBefore = advertStamps().filter((t) => t <= t0).length;
    const seenAfter = advertStamps().filter((t) => t <= t1 + LAG_S).length;
    assert.equal(metricValue(after, 'lvsd_vrrp_garp_sent_total') - (metricValue(before, 'lvsd_vrrp_garp_sent_total') || 0), 3, 'GARPs counted');
    const sent = metricValue(after, 'lvsd_vrrp_adverts_sent_total');
    assert.ok(sent >= seenBefore - 1 && sent <= seenAfter + 1, `adverts counted ${sent}, seen ${seenBefore}..${seenAfter}`);
    // Carried out by the takeover thread (the call's work, done by the threads at the deadline).
    await waitFor(() => /"dataplane":"takeover_thread"/.test(pb.proc.output()), `b to log the takeover thread's takeover:\n${pb.proc.output()}`, 30_000, 20);
    assert.match(pb.proc.output(), /"to":"MASTER"/);
  } finally {
    await topo.destroy();
  }
});
