/**
 * VRRPv2 PASS authentication against a real keepalived (Debian 2.2.7, `authentication { auth_type PASS
 * auth_pass … }`), both ways, in namespaces:
 *  - lvsd master (150) / keepalived backup (100): keepalived accepts lvsd's adverts (it stays backup
 *    and holds no VIP while lvsd advertises), and takes the VIP when lvsd is killed;
 *  - keepalived master (150) / lvsd backup (100): lvsd accepts keepalived's adverts (stays backup,
 *    counts them as received, drops none for auth), and takes the VIP when keepalived is killed;
 *  - a wrong password: lvsd drops every keepalived advert as auth_failed (counted) and so becomes
 *    master beside it — the same as keepalived does with a wrong password.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Topology, isRoot } from '../../src/lab/netns.js';
import { waitFor } from '../support/proc.js';
import { startPeer, stopPeer, removeScratch, type PeerSpec } from '../election-net/support/peers.js';
import { metrics, total, advertsPass, VIP, A, B } from './support/attack.js';

const skip = !isRoot() && 'needs root (network namespaces)';
after(() => removeScratch());

const base = { version: 2, advert: 1, vips: [`${VIP}/24`], garpRepeat: 3, garpDelay: 1 } as const;
const electMs = 40_000;

for (const [hi, lo] of [['lvsd', 'keepalived'], ['keepalived', 'lvsd']] as const) {
  test(`PASS interop: ${hi} master (150) / ${lo} backup (100) with the same password; killing the master moves the VIP`, { skip, timeout: 120_000 }, async () => {
    const topo = new Topology();
    try {
      const a = await topo.member('a', [`${A}/24`]);
      const b = await topo.member('b', [`${B}/24`]);
      const pa = startPeer(a, { ...base, kind: hi, name: 'hi', priority: 150, password: 's3cret' } as PeerSpec);
      const pb = startPeer(b, { ...base, kind: lo, name: 'lo', priority: 100, password: 's3cret' } as PeerSpec);
      await waitFor(async () => (await a.addrs()).includes(VIP), `${hi} to take the VIP`, electMs, 100);
      await waitFor(async () => !(await b.addrs()).includes(VIP), `${lo} to hold no VIP`, electMs, 100);
      // lvsd answers its API in its role (a loaded machine may start it seconds after keepalived took the VIP).
      const role = hi === 'lvsd' ? 'MASTER' : 'BACKUP';
      await waitFor(async () => total(await metrics(hi === 'lvsd' ? a : b).catch(() => []), 'lvsd_vrrp_state', { state: role }) === 1, `lvsd up as ${role}`, electMs, 200);
      // Six adverts (≥ 5 s, more than the backup's Master_Down_Interval of 3.6 s) later the backup still holds none: it accepts them.
      await advertsPass(hi === 'lvsd' ? a : b, 6, hi === 'lvsd' ? 'sent' : 'received');
      assert.ok((await a.addrs()).includes(VIP) && !(await b.addrs()).includes(VIP), `only ${hi} holds the VIP: ${pb.proc.output().slice(-1500)}`);
      const lv = hi === 'lvsd' ? a : b;
      const m = await metrics(lv);
      assert.equal(total(m, 'lvsd_vrrp_packets_dropped_total', { reason: 'auth_failed' }) + total(m, 'lvsd_vrrp_packets_dropped_total', { reason: 'bad_auth' }), 0, 'lvsd dropped nothing for authentication');
      if (lo === 'lvsd') assert.ok(total(m, 'lvsd_vrrp_adverts_received_total') >= 4, "lvsd accepted keepalived's authenticated adverts");
      if (hi === 'keepalived') assert.ok(!/invalid passwd|auth/i.test(pa.proc.output()), `keepalived logged no authentication error: ${pa.proc.output().slice(-1500)}`);
      if (lo === 'keepalived') assert.ok(!/invalid passwd|auth/i.test(pb.proc.output()), `keepalived logged no authentication error: ${pb.proc.output().slice(-1500)}`);
      await stopPeer(pa, 'kill');
      await waitFor(async () => (await b.addrs()).includes(VIP), `${lo} to take the VIP once ${hi} is gone`, 20_000, 100);
    } finally {
      await topo.destroy();
    }
  });
}

test('PASS with a wrong password: lvsd drops keepalived adverts as auth_failed (counted) and becomes master beside it', { skip, timeout: 120_000 }, async () => {
  const topo = new Topology();
  try {
    const a = await topo.member('a', [`${A}/24`]);
    const b = await topo.member('b', [`${B}/24`]);
    startPeer(a, { ...base, kind: 'keepalived', name: 'ka', priority: 150, password: 'other' } as PeerSpec);
    await waitFor(async () => (await a.addrs()).includes(VIP), 'keepalived to take the VIP', electMs, 100);
    startPeer(b, { ...base, kind: 'lvsd', name: 'lv', priority: 100, password: 's3cret' } as PeerSpec);
    await waitFor(async () => total(await metrics(b).catch(() => []), 'lvsd_vrrp_packets_dropped_total', { reason: 'auth_failed' }) >= 3, 'lvsd to count auth_failed drops', electMs, 200);
    await waitFor(async () => (await b.addrs()).includes(VIP), 'lvsd to become master (it hears no valid advert)', electMs, 100);
    const m = await metrics(b);
    assert.equal(total(m, 'lvsd_vrrp_adverts_received_total'), 0, 'no keepalived advert accepted');
  } finally {
    await topo.destroy();
  }
});
