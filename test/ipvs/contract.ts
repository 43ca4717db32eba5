/**
 * One contract for every Dataplane: the in-memory fake (host, contract-memory.test.ts) and the
 * kernel through generic netlink (UML lab, test/lab/ipvs-contract.test.ts). If the fake answers
 * differently from the kernel, the lab run fails, so the fake stays honest.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DataplaneError, destConfig, makeDest, makeService, serviceConfig, serviceKey, SVC_F_ONEPACKET, SVC_F_PERSISTENT,
  SVC_F_SCHED1, SVC_F_SCHED2, TUN_F_CSUM, type Dataplane, type IpvsOp, type IpvsService,
} from '../../src/ipvs/model.js';

export interface ContractOptions {
  /** A dataplane over an empty table. */
  readonly open: () => Promise<Dataplane>;
  /** Sync-daemon tests need an interface name that exists ('lo'). */
  readonly daemonInterface?: string;
}

async function errnoOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof DataplaneError, `expected DataplaneError, got ${String(e)}`);
    return e.errno;
  }
  return 'no error';
}

const web = makeService({ protocol: 'tcp', addr: '192.0.2.10', port: 80, scheduler: 'wrr' });
const dns6 = makeService({ protocol: 'udp', addr: '2001:db8::53', port: 53, scheduler: 'rr' });
const fwm = makeService({ protocol: 'tcp', fwmark: 42, scheduler: 'lc' });
const fwm6 = makeService({ protocol: 'tcp', fwmark: 43, family: 6, scheduler: 'rr' });
const sticky = makeService({ protocol: 'tcp', addr: '192.0.2.11', port: 443, scheduler: 'wlc', flags: SVC_F_PERSISTENT, timeout: 600, netmask: 0xffffff00 });
const sticky6 = makeService({ protocol: 'tcp', addr: '2001:db8::11', port: 443, scheduler: 'wlc', flags: SVC_F_PERSISTENT, timeout: 60, netmask: 64 });
const hashed = makeService({ protocol: 'udp', addr: '192.0.2.12', port: 53, scheduler: 'sh', flags: SVC_F_SCHED1 | SVC_F_SCHED2 | SVC_F_ONEPACKET });
const sip = makeService({ protocol: 'udp', addr: '192.0.2.13', port: 5060, scheduler: 'rr', flags: SVC_F_PERSISTENT, timeout: 60, pe_name: 'sip' });
const all = [web, dns6, fwm, fwm6, sticky, sticky6, hashed, sip];

const nat = makeDest({ addr: '198.51.100.11', port: 8080, fwd: 'nat', weight: 3 });
const dr = makeDest({ addr: '198.51.100.12', port: 80, fwd: 'dr', weight: 0, u_threshold: 100, l_threshold: 50 });
const tun = makeDest({ addr: '198.51.100.13', port: 80, fwd: 'tun', weight: 2 });
const gue = makeDest({ addr: '198.51.100.14', port: 80, fwd: 'tun', weight: 1, tun_type: 'gue', tun_port: 6080, tun_flags: TUN_F_CSUM });

function byKey(list: IpvsService[]): Map<string, IpvsService> {
  return new Map(list.map((s) => [serviceKey(s), serviceConfig(s)]));
}

export function dataplaneContract(name: string, o: ContractOptions): void {
  const withDp = (title: string, fn: (dp: Dataplane) => Promise<void>) =>
    test(`${name}: ${title}`, async () => {
      const dp = await o.open();
      try {
        await fn(dp);
      } finally {
        await dp.close();
      }
    });

  withDp('starts empty and reports IPVS version 1.2.1', async (dp) => {
    assert.deepEqual(await dp.listServices(), []);
    const info = await dp.getInfo();
    assert.equal(info.version, 0x010201);
    assert.ok(info.connTabSize > 0);
  });

  withDp('services of every kind read back with the same attributes', async (dp) => {
    for (const s of all) await dp.addService(s);
    const got = byKey(await dp.listServices());
    assert.equal(got.size, all.length);
    for (const s of all) assert.deepEqual(got.get(serviceKey(s)), s, serviceKey(s));
  });

  withDp('adding an existing service is EEXIST; editing or deleting a missing one is ESRCH', async (dp) => {
    await dp.addService(web);
    assert.equal(await errnoOf(dp.addService(web)), 'EEXIST');
    assert.equal(await errnoOf(dp.setService(dns6)), 'ESRCH');
    assert.equal(await errnoOf(dp.delService(dns6)), 'ESRCH');
    assert.equal(await errnoOf(dp.addDest(dns6, makeDest({ addr: '2001:db8::21', port: 53 }))), 'ESRCH');
  });

  withDp('unknown scheduler or persistence engine is ENOENT', async (dp) => {
    assert.equal(await errnoOf(dp.addService({ ...web, scheduler: 'nosuch' })), 'ENOENT');
    assert.equal(await errnoOf(dp.addService({ ...sip, pe_name: 'nope' })), 'ENOENT');
    assert.deepEqual(await dp.listServices(), []);
  });

  withDp('set-service changes scheduler, persistence and flags in place and keeps destinations', async (dp) => {
    await dp.addService(web);
    await dp.addDest(web, nat);
    const edited = { ...web, scheduler: 'sh', flags: SVC_F_PERSISTENT | SVC_F_SCHED2, timeout: 30, netmask: 0xffff0000 };
    await dp.setService(edited);
    assert.deepEqual(byKey(await dp.listServices()).get(serviceKey(web)), edited);
    assert.deepEqual((await dp.listDests(web)).map(destConfig), [nat]);
  });

  withDp('destinations of every forwarding method read back the same', async (dp) => {
    await dp.addService(web);
    for (const d of [nat, dr, tun, gue]) await dp.addDest(web, d);
    const got = new Map((await dp.listDests(web)).map((d) => [d.addr, d]));
    for (const d of [nat, dr, tun, gue]) {
      const g = got.get(d.addr);
      assert.ok(g, d.addr);
      assert.deepEqual(destConfig(g), d);
      assert.equal(g.active_conns, 0);
      assert.equal(g.inact_conns, 0);
    }
    await dp.addService(dns6);
    const d6 = makeDest({ addr: '2001:db8::21', port: 53, fwd: 'dr', weight: 7 });
    await dp.addDest(dns6, d6);
    assert.deepEqual((await dp.listDests(dns6)).map(destConfig), [d6]);
    await dp.addService(fwm);
    const f = makeDest({ addr: '198.51.100.21', port: 0, fwd: 'dr', weight: 1 });
    await dp.addDest(fwm, f);
    assert.deepEqual((await dp.listDests(fwm)).map(destConfig), [f]);
  });

  withDp('destination errors: EEXIST, ENOENT, ERANGE, EINVAL like the kernel', async (dp) => {
    await dp.addService(web);
    await dp.addDest(web, nat);
    assert.equal(await errnoOf(dp.addDest(web, { ...nat, weight: 9 })), 'EEXIST');
    assert.equal(await errnoOf(dp.setDest(web, dr)), 'ENOENT');
    assert.equal(await errnoOf(dp.delDest(web, dr)), 'ENOENT');
    assert.equal(await errnoOf(dp.addDest(web, { ...dr, weight: -1 })), 'ERANGE');
    assert.equal(await errnoOf(dp.addDest(web, { ...dr, u_threshold: 10, l_threshold: 20 })), 'ERANGE');
    assert.equal(await errnoOf(dp.addDest(web, { ...gue, tun_port: 0 })), 'EINVAL');
    assert.deepEqual((await dp.listDests(web)).map(destConfig), [nat]);
  });

  withDp('set-dest changes weight, thresholds and even the forwarding method in place', async (dp) => {
    await dp.addService(web);
    await dp.addDest(web, nat);
    const changed = { ...nat, weight: 0, u_threshold: 10, l_threshold: 5 };
    await dp.setDest(web, changed);
    assert.deepEqual((await dp.listDests(web)).map(destConfig), [changed]);
    const asTun = { ...changed, fwd: 'tun' as const, tun_type: 'gue' as const, tun_port: 7000, tun_flags: 0 };
    await dp.setDest(web, asTun);
    assert.deepEqual((await dp.listDests(web)).map(destConfig), [asTun]);
  });

  withDp('deleting a service removes its destinations; deleting a dest leaves the others', async (dp) => {
    await dp.addService(web);
    await dp.addDest(web, nat);
    await dp.addDest(web, dr);
    await dp.delDest(web, nat);
    assert.deepEqual((await dp.listDests(web)).map((d) => d.addr), [dr.addr]);
    await dp.delService(web);
    assert.deepEqual(await dp.listServices(), []);
    await dp.addService(web);
    assert.deepEqual(await dp.listDests(web), []);
  });

  withDp('submit applies a batch in order and reports each failure without stopping', async (dp) => {
    const ops: IpvsOp[] = [];
    for (let i = 0; i < 60; i++) {
      const s = makeService({ protocol: 'tcp', addr: `192.0.2.${100 + (i % 50)}`, port: 1000 + i, scheduler: 'rr' });
      ops.push({ op: 'add-service', service: s });
      for (let j = 0; j < 3; j++) ops.push({ op: 'add-dest', service: s, dest: makeDest({ addr: `198.51.100.${10 + j}`, port: 80, weight: j }) });
    }
    ops.splice(5, 0, { op: 'add-service', service: (ops[0] as { service: IpvsService }).service }); // EEXIST
    ops.splice(9, 0, { op: 'del-dest', service: web, dest: nat }); // ESRCH (no such service)
    const out = await dp.submit(ops);
    assert.equal(out.length, ops.length);
    assert.deepEqual(out[5], { ok: false, errno: 'EEXIST', message: out[5]!.message });
    assert.equal(out[9]!.errno, 'ESRCH');
    assert.equal(out.filter((x) => !x.ok).length, 2);
    const table = await dp.dump();
    assert.equal(table.length, 60);
    assert.equal(table.reduce((n, e) => n + e.dests.length, 0), 180);
  });

  withDp('timeouts: set only what is given (0 = keep), read back', async (dp) => {
    const before = await dp.getTimeouts();
    await dp.setTimeouts({ tcp: 901, udp: 301 });
    assert.deepEqual(await dp.getTimeouts(), { tcp: 901, tcp_fin: before.tcp_fin, udp: 301 });
    await dp.setTimeouts(before);
  });

  if (o.daemonInterface) {
    const ifn = o.daemonInterface;
    withDp('sync daemon: start, list, duplicate EEXIST, stop, stop again ESRCH', async (dp) => {
      await dp.newDaemon({ state: 'master', mcast_ifn: ifn, syncid: 7 });
      const ds = await dp.getDaemons();
      assert.equal(ds.length, 1);
      assert.equal(ds[0]!.state, 'master');
      assert.equal(ds[0]!.mcast_ifn, ifn);
      assert.equal(ds[0]!.syncid, 7);
      assert.equal(await errnoOf(dp.newDaemon({ state: 'master', mcast_ifn: ifn, syncid: 7 })), 'EEXIST');
      await dp.delDaemon('master');
      assert.deepEqual(await dp.getDaemons(), []);
      assert.equal(await errnoOf(dp.delDaemon('master')), 'ESRCH');
    });
  }
}
