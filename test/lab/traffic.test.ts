/**
 * Real traffic through IPVS in the lab guest: a client namespace opens TCP connections to the VIP
 * through a director namespace to real-server namespaces. The virtual server is programmed with
 * `lvsd ipvs apply -c FILE` (the product) and checked with `ipvsadm -Ln` (the reference tool).
 *  - NAT, wrr 1:2: 300 connections split within ±10 % of 1:2; real servers see their own address.
 *  - DR: real servers carry the VIP on lo and answer the client directly (director does not forward).
 *  - TUN: real servers decapsulate on tunl0 carrying the VIP and answer directly.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Topology } from '../../src/lab/netns.js';
import { buildLvsLab, parseIpvsadmDests, type LvsLab, type LvsMode } from './support/topologies.js';

const skip = process.env.LVSD_IN_LAB === '1' ? false : 'runs inside the lab guest (node scripts/test.mjs --only lab)';

async function withLab(mode: LvsMode, n: number, body: (lab: LvsLab) => Promise<void>): Promise<void> {
  const topo = new Topology();
  try {
    await body(await buildLvsLab(mode, topo, { realServers: n }));
  } finally {
    await topo.destroy();
  }
}

test('NAT, wrr 1:2: 300 connections split within ±10 % of 1:2', { skip, timeout: 180_000 }, async () => {
  await withLab('nat', 2, async (lab) => {
    const ops = await lab.apply(lab.configYaml({ scheduler: 'wrr', weights: [1, 2] }));
    assert.match(ops, /192\.0\.2\.100:80/);
    const dests = parseIpvsadmDests(await lab.ipvsadm('-Ln'), lab.vip, lab.port);
    assert.deepEqual(Object.fromEntries(dests), {
      '198.51.100.11': { method: 'Masq', weight: 1 },
      '198.51.100.12': { method: 'Masq', weight: 2 },
    });
    const r = await lab.burst(300, { concurrency: 8 });
    assert.deepEqual(r.errors, {});
    const a = r.byServer.rs1 ?? 0;
    const b = r.byServer.rs2 ?? 0;
    assert.equal(a + b, 300);
    // Expected 100 : 200; ±10 % of each share.
    assert.ok(a >= 90 && a <= 110, `rs1 got ${a}`);
    assert.ok(b >= 180 && b <= 220, `rs2 got ${b}`);
    // NAT: the real server saw the connection on its own address, from the client's address.
    assert.equal(r.local.rs1, '198.51.100.11');
    assert.equal(r.local.rs2, '198.51.100.12');
    assert.equal(r.remote.rs1, lab.clientAddress);
    // The director's table counted the connections (ipvsadm's own view). The kernel folds per-CPU
    // counters into the totals on its 2 s estimator tick: wait for it (bounded in count; 30 s and more on a loaded machine).
    const re = new RegExp(`TCP\\s+${lab.vip.replace(/\./g, '\\.')}:80\\s+300\\s`);
    let stats = '';
    for (let i = 0; i < 150 && !re.test(stats); i++) {
      if (i) await new Promise((r) => setTimeout(r, 200));
      stats = await lab.ipvsadm('-Ln', '--stats', '-t', `${lab.vip}:${lab.port}`);
    }
    assert.match(stats, re);

    // Helpers for health tests: a real server that dies stops answering; the other keeps serving.
    // (rr alternates: half the connections go to the dead server and are refused by its kernel.)
    await lab.apply(lab.configYaml({ scheduler: 'rr' }));
    const rs1 = lab.realServers[0]!;
    assert.ok(rs1.running && rs1.pid);
    await rs1.kill();
    assert.equal(rs1.running, false);
    // rr alternates, but not exactly per burst: a client port reused while IPVS still holds a
    // connection entry for it goes to that entry's server (conn_reuse_mode), which moved a 5:5
    // split to 6:4 in one CI run. So: about half each way, and every connection accounted for.
    const down = await lab.burst(10, { concurrency: 1, deadlineMs: 20_000 });
    const served = down.byServer.rs2 ?? 0;
    const refused = down.errors.ECONNREFUSED ?? 0;
    assert.equal(down.byServer.rs1, undefined, 'the dead server answered nothing');
    assert.equal(served + refused, 10, JSON.stringify(down));
    assert.ok(served >= 4 && refused >= 4, JSON.stringify(down));
    await rs1.start();
    const again = await lab.burst(10, { concurrency: 1 });
    assert.deepEqual(again.errors, {});
    assert.ok((again.byServer.rs1 ?? 0) >= 4 && (again.byServer.rs2 ?? 0) >= 4, JSON.stringify(again.byServer));
  });
});

for (const mode of ['dr', 'tun'] as const) {
  test(`${mode.toUpperCase()}: real servers carry the VIP and answer the client directly`, { skip, timeout: 180_000 }, async () => {
    await withLab(mode, 2, async (lab) => {
      await lab.apply(lab.configYaml({ scheduler: 'rr' }));
      const dests = parseIpvsadmDests(await lab.ipvsadm('-Ln'), lab.vip, lab.port);
      const method = mode === 'dr' ? 'Route' : 'Tunnel';
      assert.deepEqual(Object.fromEntries(dests), {
        '192.0.2.11': { method, weight: 1 },
        '192.0.2.12': { method, weight: 1 },
      });
      assert.equal((await lab.director.exec(['sysctl', '-n', 'net.ipv4.ip_forward'])).stdout.trim(), '0');
      const packets = async (ns: typeof lab.client, dir: 'rx' | 'tx') =>
        (JSON.parse((await ns.ip('-j', '-s', 'link', 'show', 'eth0')).stdout)[0].stats64[dir].packets as number);
      const [cliTx0, dirRx0] = [await packets(lab.client, 'tx'), await packets(lab.director, 'rx')];
      const r = await lab.burst(40, { concurrency: 4 });
      const [cliTx1, dirRx1] = [await packets(lab.client, 'tx'), await packets(lab.director, 'rx')];
      assert.deepEqual(r.errors, {});
      assert.equal(r.byServer.rs1, 20);
      assert.equal(r.byServer.rs2, 20);
      // Each real server accepted the connection on the VIP itself (not NATed) from the client.
      for (const rs of ['rs1', 'rs2']) {
        assert.equal(r.local[rs], lab.vip, `${rs} local address`);
        assert.equal(r.remote[rs], lab.clientAddress, `${rs} remote address`);
      }
      // The client resolved the VIP to the director's MAC (real servers kept quiet about the VIP)...
      const dirMac = JSON.parse((await lab.director.ip('-j', 'link', 'show', 'eth0')).stdout)[0].address as string;
      const neigh = JSON.parse((await lab.client.ip('-j', 'neigh', 'show', lab.vip)).stdout) as Array<{ lladdr?: string }>;
      assert.equal(neigh[0]?.lladdr, dirMac);
      // ...and the replies bypassed the director: it received no more packets than the client sent
      // (20 spare for ARP and IPv6 link-up chatter), although the real servers sent ~160 replies back.
      const sent = cliTx1 - cliTx0;
      assert.ok(sent >= 40 * 4, `client sent ${sent} packets`);
      assert.ok(dirRx1 - dirRx0 <= sent + 20, `director received ${dirRx1 - dirRx0} packets, client sent ${sent}`);
      if (mode === 'tun') {
        // The packets really arrived encapsulated: tunl0 received them.
        const st = JSON.parse((await lab.realServers[0]!.ns.ip('-j', '-s', 'link', 'show', 'tunl0')).stdout)[0].stats64.rx.packets as number;
        assert.ok(st >= 40, `rs1 tunl0 rx ${st}`);
      }
    });
  });
}
