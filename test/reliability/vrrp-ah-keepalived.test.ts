/**
 * VRRPv2 AH authentication (RFC 2338 §5.3.6.3, src/election/ah.ts) against a real keepalived
 * (Debian 2.2.7, `authentication { auth_type AH auth_pass … }`), both ways, in namespaces:
 *  - lvsd master (150) / keepalived backup (100) and the reverse, same password: one master (the
 *    backup holds no VIP for several Master_Down_Intervals: it accepts the master's AH adverts), no
 *    authentication drop on either side, and the backup takes the VIP when the master is killed;
 *  - an intruder (a third keepalived, priority 200, another password) on the same segment: both
 *    directors drop its adverts (lvsd counts auth_failed, keepalived logs the bad HMAC) and neither
 *    moves — the master stays master, the backup stays backup (keepalived as master, and the intruder,
 *    with `vrrp_lower_prio_no_advert`: see the comment above those cases);
 *  - replayed adverts (right password, an old sequence number, priority 254) from a third host:
 *    lvsd counts them as auth_replay, keepalived logs them as already processed, nothing moves;
 *  - a reload in place that rebuilds lvsd's VRRP socket (takeover_thread toggled): the AH sequence
 *    number carries on above the numbers keepalived has seen, so keepalived keeps accepting the
 *    adverts (a counter restarted at 1 would be dropped as replays and keepalived would take over).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Topology, isRoot } from '../../src/lab/netns.js';
import { waitFor } from '../support/proc.js';
import { startPeer, stopPeer, startLvsd, lvsdYaml, removeScratch, type PeerSpec } from '../election-net/support/peers.js';
import { metrics, total, forge, advertsPass, VIP, A, B, X } from './support/attack.js';

const skip = !isRoot() && 'needs root (network namespaces)';
after(() => removeScratch());

const base = { version: 2, advert: 1, vips: [`${VIP}/24`], garpRepeat: 3, garpDelay: 1, authType: 'AH', password: 's3cret' } as const;
const electMs = 40_000;
const AUTH_DROPS = ['auth_failed', 'auth_replay', 'bad_auth', 'bad_protocol'];
const authDrops = async (ns: Parameters<typeof metrics>[0]) => {
  const m = await metrics(ns);
  return AUTH_DROPS.reduce((s, reason) => s + total(m, 'lvsd_vrrp_packets_dropped_total', { reason }), 0);
};
/** keepalived's log lines about AH (vrrp.c: "IPSEC-AH : invalid …", "… sequence number … already processed", "No AH header …"). */
const kaAuthErrors = (out: string) => out.split('\n').filter((l) => /IPSEC.*(invalid|already processed)|AH header|received a \d+ auth/i.test(l));
const kaEntering = (out: string) => (out.match(/Entering [A-Z]+ STATE/g) ?? []).length;
/** lvsd in `ns` answers its API and is in `state`. */
const lvsdIn = async (ns: Parameters<typeof metrics>[0], state: 'MASTER' | 'BACKUP') => total(await metrics(ns).catch(() => []), 'lvsd_vrrp_state', { state }) === 1;

for (const [hi, lo] of [['lvsd', 'keepalived'], ['keepalived', 'lvsd']] as const) {
  test(`AH interop: ${hi} master (150) / ${lo} backup (100), same password: one master, no authentication drop; killing the master moves the VIP`, { skip, timeout: 120_000 }, async () => {
    const topo = new Topology();
    try {
      const a = await topo.member('a', [`${A}/24`]);
      const b = await topo.member('b', [`${B}/24`]);
      const pa = startPeer(a, { ...base, kind: hi, name: 'hi', priority: 150 } as PeerSpec);
      const pb = startPeer(b, { ...base, kind: lo, name: 'lo', priority: 100 } as PeerSpec);
      await waitFor(async () => (await a.addrs()).includes(VIP), `${hi} to take the VIP`, electMs, 100);
      await waitFor(async () => !(await b.addrs()).includes(VIP), `${lo} to hold no VIP`, electMs, 100);
      await waitFor(() => lvsdIn(hi === 'lvsd' ? a : b, hi === 'lvsd' ? 'MASTER' : 'BACKUP'), 'lvsd up in its role', electMs, 200);
      // (Either may have been master for a moment at the start, before the other advertised.)
      const kaStates0 = kaEntering((hi === 'keepalived' ? pa : pb).proc.output());
      // Six adverts (≥ 5 s, more than the backup's Master_Down_Interval of 3.6 s) later the backup still holds none: it accepts them.
      await advertsPass(hi === 'lvsd' ? a : b, 6, hi === 'lvsd' ? 'sent' : 'received');
      assert.ok((await a.addrs()).includes(VIP) && !(await b.addrs()).includes(VIP), `only ${hi} holds the VIP: ${pb.proc.output().slice(-1500)}`);
      const lv = hi === 'lvsd' ? a : b;
      assert.equal(await authDrops(lv), 0, 'lvsd dropped nothing for authentication');
      if (lo === 'lvsd') assert.ok(total(await metrics(b), 'lvsd_vrrp_adverts_received_total') >= 4, "lvsd accepted keepalived's AH adverts");
      const ka = hi === 'keepalived' ? pa : pb;
      assert.deepEqual(kaAuthErrors(ka.proc.output()), [], 'keepalived logged no authentication error');
      assert.equal(kaEntering(ka.proc.output()), kaStates0, `keepalived did not move: ${ka.proc.output().slice(-1500)}`);
      await stopPeer(pa, 'kill');
      await waitFor(async () => (await b.addrs()).includes(VIP), `${lo} to take the VIP once ${hi} is gone`, 20_000, 100);
    } finally {
      await topo.destroy();
    }
  });
}

// keepalived 2.2.7 as MASTER puts its next advert a whole interval later at every packet of the VRID
// it reads, even one that fails authentication (vrrp_scheduler.c vrrp_dispatcher_read re-arms the
// instance timer after each packet unless `vrrp_lower_prio_no_advert` is set). Measured here without
// that setting: the wrong-key intruder, a keepalived MASTER itself, sent 4 adverts in 40 s beside
// lvsd's 40 (each of lvsd's re-armed its timer, so lvsd counted < 4 auth_failed), and the real
// keepalived master fell silent for 3.0 s and more while the intruder advertised — past lvsd's
// Master_Down_Interval (3.6 s) lvsd rightly took over. Neither is lvsd's AH path: the captures show
// lvsd's adverts every 1.00 s, keepalived's sequence numbers undisturbed, and every advert on the wire
// counted by lvsd. So the intruder and a keepalived master run with `vrrp_lower_prio_no_advert`: the
// intruder then attacks at a steady 1/s, and the master keeps advertising through it.
for (const [hi, lo] of [['lvsd', 'keepalived'], ['keepalived', 'lvsd']] as const) {
  test(`AH with a wrong password: an intruder's priority-200 adverts are dropped by both directors (${hi} master, ${lo} backup), counted, and nothing moves`, { skip, timeout: 120_000 }, async () => {
    const topo = new Topology();
    try {
      const a = await topo.member('a', [`${A}/24`]);
      const b = await topo.member('b', [`${B}/24`]);
      const x = await topo.member('x', [`${X}/24`]);
      const pa = startPeer(a, { ...base, kind: hi, name: 'hi', priority: 150, lowerPrioNoAdvert: hi === 'keepalived' } as PeerSpec);
      const pb = startPeer(b, { ...base, kind: lo, name: 'lo', priority: 100 } as PeerSpec);
      await waitFor(async () => (await a.addrs()).includes(VIP), `${hi} to take the VIP`, electMs, 100);
      await waitFor(async () => !(await b.addrs()).includes(VIP), `${lo} to hold no VIP`, electMs, 100);
      const lv = hi === 'lvsd' ? a : b;
      const ka = hi === 'keepalived' ? pa : pb;
      await waitFor(() => lvsdIn(lv, hi === 'lvsd' ? 'MASTER' : 'BACKUP'), 'lvsd up in its role', electMs, 200);
      const m0 = await metrics(lv);
      const kaStates0 = kaEntering(ka.proc.output());
      // Another VIP on the intruder, so its own address does not muddle the segment; what it attacks
      // with is its adverts: the same VRID at priority 200, keyed with another password.
      const px = startPeer(x, { ...base, kind: 'keepalived', name: 'x', priority: 200, password: 'other', vips: ['192.0.2.43/24'], lowerPrioNoAdvert: true } as PeerSpec);
      const drops = async () => JSON.stringify((await metrics(lv).catch(() => [])).filter((s) => s.name === 'lvsd_vrrp_packets_dropped_total'));
      await waitFor(async () => total(await metrics(lv), 'lvsd_vrrp_packets_dropped_total', { reason: 'auth_failed' }) >= 4, 'lvsd to count ≥ 4 auth_failed drops', electMs, 200).catch(async (e: Error) => {
        throw new Error(`${e.message}\nlvsd drops:\n${await drops()}\nintruder:\n${px.proc.output().slice(-1500)}`);
      });
      await waitFor(() => kaAuthErrors(ka.proc.output()).some((l) => /invalid.*HMAC/i.test(l)), 'keepalived to drop the intruder (bad HMAC)', electMs, 200);
      assert.ok(/Entering MASTER STATE/.test(px.proc.output()), 'the intruder advertised as master (it hears no valid advert either)');
      const m1 = await metrics(lv);
      const grew = (name: string, labels: Record<string, string> = {}) => total(m1, name, labels) - total(m0, name, labels);
      assert.equal(grew('lvsd_vrrp_transitions_total'), 0, `lvsd did not move: drops ${await drops()}\nkeepalived: ${ka.proc.output().slice(-1500)}\nlvsd: ${(hi === 'lvsd' ? pa : pb).proc.output().slice(-1500)}`);
      // As backup, lvsd went on accepting the master's adverts through the attack (they were not lost among the intruder's).
      if (lo === 'lvsd') assert.ok(grew('lvsd_vrrp_adverts_received_total') >= 4, `lvsd accepted keepalived's adverts meanwhile: ${grew('lvsd_vrrp_adverts_received_total')}`);
      assert.equal(grew('lvsd_vrrp_packets_dropped_total', { reason: 'auth_replay' }), 0, 'the intruder disturbed no sequence number: no replay drop');
      assert.equal(kaEntering(ka.proc.output()), kaStates0, `keepalived did not move: ${ka.proc.output().slice(-2000)}`);
      assert.ok((await a.addrs()).includes(VIP) && !(await b.addrs()).includes(VIP), `${hi} still holds the VIP, ${lo} none`);
    } finally {
      await topo.destroy();
    }
  });
}

test('AH replays: adverts with the right password but an old sequence number are dropped by both directors (auth_replay on lvsd), nothing moves', { skip, timeout: 120_000 }, async () => {
  const topo = new Topology();
  try {
    const a = await topo.member('a', [`${A}/24`]);
    const b = await topo.member('b', [`${B}/24`]);
    const x = await topo.member('x', [`${X}/24`]);
    startPeer(a, { ...base, kind: 'lvsd', name: 'hi', priority: 150 } as PeerSpec);
    const ka = startPeer(b, { ...base, kind: 'keepalived', name: 'lo', priority: 100 } as PeerSpec);
    await waitFor(async () => (await a.addrs()).includes(VIP), 'lvsd to take the VIP', electMs, 100);
    await waitFor(() => lvsdIn(a, 'MASTER'), 'lvsd up as master', electMs, 200);
    // A few adverts, so both counters are above the replayed number.
    await advertsPass(a, 3, 'sent');
    const m0 = await metrics(a);
    const states0 = kaEntering(ka.proc.output());
    const sent = await forge(x, { class: 'advert', version: 2, priority: 254, intervalMs: 1000, pps: 1, count: 4, maxMs: 10_000, password: base.password, ah: { seq: 1 } });
    assert.equal(sent.sent, 4);
    await waitFor(async () => total(await metrics(a), 'lvsd_vrrp_packets_dropped_total', { reason: 'auth_replay' }) >= 4, 'lvsd to count 4 auth_replay drops', 20_000, 200);
    await waitFor(() => (ka.proc.output().match(/sequence number 1 already processed/g) ?? []).length >= 4, 'keepalived to drop the 4 replays', 20_000, 200);
    const m1 = await metrics(a);
    assert.equal(total(m1, 'lvsd_vrrp_transitions_total') - total(m0, 'lvsd_vrrp_transitions_total'), 0, 'lvsd did not move');
    assert.equal(total(m1, 'lvsd_vrrp_packets_dropped_total', { reason: 'auth_failed' }), 0, 'a replay is not an ICV failure: the password is right');
    assert.equal(kaEntering(ka.proc.output()), states0, 'keepalived did not move');
    assert.ok((await a.addrs()).includes(VIP) && !(await b.addrs()).includes(VIP), 'lvsd still holds the VIP, keepalived none');
  } finally {
    await topo.destroy();
  }
});

test('AH across a reload in place that rebuilds the VRRP socket: the sequence number carries on, keepalived (backup) keeps accepting, nothing moves', { skip, timeout: 120_000 }, async () => {
  const topo = new Topology();
  try {
    const a = await topo.member('a', [`${A}/24`]);
    const b = await topo.member('b', [`${B}/24`]);
    const spec = { ...base, kind: 'lvsd', name: 'hi', priority: 150 } as PeerSpec;
    const lv = startLvsd(a, lvsdYaml(spec));
    const ka = startPeer(b, { ...base, kind: 'keepalived', name: 'lo', priority: 100 } as PeerSpec);
    await waitFor(async () => (await a.addrs()).includes(VIP), 'lvsd to take the VIP', electMs, 100);
    await waitFor(async () => !(await b.addrs()).includes(VIP), 'keepalived to hold no VIP', electMs, 100);
    await waitFor(() => lvsdIn(a, 'MASTER'), 'lvsd up as master', electMs, 200);
    // A few adverts, so keepalived's counter is well above 1.
    await advertsPass(a, 4, 'sent');
    const states0 = kaEntering(ka.proc.output());
    const applied = () => (lv.proc.output().match(/"msg":"reload applied"/g) ?? []).length;
    const n = applied();
    writeFileSync(join(lv.dir, 'lvsd.yaml'), lvsdYaml({ ...spec, takeoverThread: false }));
    process.kill(lv.pid, 'SIGHUP');
    await waitFor(() => applied() > n, 'lvsd to apply the reload', 30_000, 50);
    assert.match(lv.proc.output(), /"in_place":\["VI_1"\]/, 'the instance was reconfigured in place');
    // Six adverts after the reload (≥ 5 s, longer than keepalived's Master_Down_Interval): had it dropped them, it would have taken over.
    await advertsPass(a, 6, 'sent');
    assert.deepEqual(kaAuthErrors(ka.proc.output()), [], 'keepalived dropped no advert (no "already processed" replay)');
    assert.equal(kaEntering(ka.proc.output()), states0, `keepalived stayed BACKUP: ${ka.proc.output().slice(-1500)}`);
    assert.ok((await a.addrs()).includes(VIP) && !(await b.addrs()).includes(VIP), 'lvsd still holds the VIP, keepalived none');
    assert.equal(total(await metrics(a), 'lvsd_vrrp_transitions_total', { from: 'MASTER' }), 0, 'lvsd never left MASTER');
  } finally {
    await topo.destroy();
  }
});
