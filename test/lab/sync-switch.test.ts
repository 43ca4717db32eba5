/**
 * Moving a running pair from sync.channel kernel to channel lvsd, one director at a time, by reload
 * (docs/migration.md, "From channel kernel to channel lvsd"), on the real kernel (inside the lab
 * guest). Two `lvsd run` directors, A master, B backup, both on channel kernel; a client keeps TCP
 * connections open through the VIP, idle between checks:
 *  1. connections opened on channel kernel (and used: the kernel sends one at its 3rd packet) reach
 *     B's kernel (the kernel's own daemons);
 *  2. B is switched (its YAML rewritten, SIGHUP): its kernel backup daemon on eth0 gives way to the
 *     hand-over's on lo; connections opened now (a mixed pair: A's kernel master daemon has no
 *     listener on B) reach B only later, through 3;
 *  3. A is switched: its first table read sends its whole table, so B's kernel holds every
 *     connection, the mixed period's too; A runs the kernel stream's master daemon on lo;
 *  4. connections opened after the switch reach B;
 *  5. failover (A's processes killed, its link cut): every connection still answers through B.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { Topology, type Netns } from '../../src/lab/netns.js';
import { lvsdBin } from '../support/proc.js';
import { ECHO_SERVER } from './support/echo.js';
import { until as untilDone } from './support/until.js';
import { connClient } from './support/conn-client.js';
import { writeSyncDirectorConfig } from '../../bench/support/sync-director.js';

const skip = process.env.LVSD_IN_LAB === '1' ? false : 'runs inside the lab guest (node scripts/test.mjs --only lab)';
const VIP = '192.0.2.100';

/** A director's YAML (bench/support/sync-director.ts): rewritten in place for the switch, then SIGHUP. */
const config = (dir: string, name: string, prio: number, port: number, channel: 'kernel' | 'lvsd') =>
  writeSyncDirectorConfig(dir, {
    name, prio, port, vip: VIP, channel, syncId: 42, ...(channel === 'lvsd' ? { keyFile: join(dir, 'sync.key') } : {}),
    virtualServers: [`{ address: ${VIP}, port: 80, scheduler: rr, forwarding: dr, real_servers: [{ address: 192.0.2.11 }, { address: 192.0.2.12 }] }`],
  });

const until = <T>(fn: () => Promise<T | undefined>, what: string | (() => string), ms = 180000) => untilDone(fn, what, ms, 1000);

test('a running pair moves from channel kernel to channel lvsd one director at a time by reload, and every connection survives the failover after', { skip, timeout: 600_000 }, async (t) => {
  const topo = new Topology();
  const dir = mkdtempSync(join(tmpdir(), 'lvsd-syncswitch-'));
  writeFileSync(join(dir, 'sync.key'), `hex:${'5a'.repeat(32)}\n`, { mode: 0o600 });
  try {
    const cl = await topo.member('cl', ['192.0.2.50/24']);
    const da = await topo.member('da', ['192.0.2.2/24']);
    const db = await topo.member('db', ['192.0.2.3/24']);
    for (const [i, addr] of ['11', '12'].entries()) {
      const rs = await topo.member(`rs${i}`, [`192.0.2.${addr}/24`]);
      await rs.sysctls({ 'net.ipv4.conf.all.arp_ignore': '1', 'net.ipv4.conf.all.arp_announce': '2' });
      await rs.addr('lo', `${VIP}/32`);
      rs.spawn([process.execPath, '-e', ECHO_SERVER, `rs${i}`, '80']);
    }
    const logs: Record<string, () => string> = {};
    const dump = () => Object.entries(logs).map(([n, l]) => `\n--- ${n} ---\n${l().slice(-15000)}`).join('');
    const run = (ns: Netns, name: string, prio: number, port: number) => {
      const r = ns.start([lvsdBin, 'run', '-c', config(dir, name, prio, port, 'kernel')]);
      logs[name] = () => r.output();
      return r;
    };
    const sh = async (ns: Netns, argv: string[]) => (await ns.exec(argv, { via: 'nsenter', check: false })).stdout;
    const clientRows = async (ns: Netns) => (await sh(ns, ['ipvsadm', '-Lnc'])).match(/192\.0\.2\.50:\d+\s+192\.0\.2\.100:80/g)?.length ?? 0;
    const holds = (ns: Netns, n: number, what: string) => until(async () => ((await clientRows(ns)) >= n ? true : undefined), () => `${what}: ${n} client connections in the kernel (has some fewer)${dump()}`, 90_000);
    const reloads = (name: string) => (logs[name]!().match(/reload applied/g) ?? []).length;
    const switchTo = async (r: { child: { kill(s: NodeJS.Signals): boolean } }, ns: Netns, name: string, prio: number, port: number) => {
      const before = reloads(name);
      config(dir, name, prio, port, 'lvsd');
      r.child.kill('SIGHUP');
      await untilDone(async () => (reloads(name) > before ? true : undefined), () => `${name}'s reload to channel lvsd${dump()}`, 120_000, 300);
      return sh(ns, ['ipvsadm', '-L', '--daemon']);
    };

    const procA = run(da, 'a', 150, 19671);
    const procB = run(db, 'b', 100, 19672);
    await until(async () => ((await sh(da, ['ip', '-o', 'addr', 'show', 'dev', 'eth0'])).includes(`${VIP}/`) ? true : undefined), () => `A to become master${dump()}`);
    await until(async () => (/backup sync daemon \(mcast=eth0/.test(await sh(db, ['ipvsadm', '-L', '--daemon'])) ? true : undefined), () => `B's kernel backup daemon on eth0${dump()}`);

    const client = connClient(cl);
    const open = async (group: string, n: number) => assert.equal(await client.open(group, n, VIP), n, `${group}: ${n} connections opened`);
    const survive = async (name: string, groups: string[], want: number) => {
      const r = await client.round(groups);
      t.diagnostic(`${name}: ${r.ok} of ${r.total} connections kept`);
      assert.equal(r.total, want, name);
      assert.ok(r.ok >= Math.ceil(0.99 * want), `${name}: ${JSON.stringify(r)}${dump()}`);
    };

    // 1. Channel kernel. A line on each: the kernel's master daemon sends a connection at its 3rd
    //    packet (sync_threshold), and an idle one has had two (issue 18: the kernel channel's gap).
    await open('kernel', 20);
    await survive('through A, on channel kernel', ['kernel'], 20);
    await holds(db, 20, 'B, on channel kernel');

    // 2. B switches first: the hand-over's backup daemon on lo replaces the one on eth0.
    const daemonsB = await switchTo(procB, db, 'b', 100, 19672);
    assert.match(daemonsB, /backup sync daemon \(mcast=lo/, `B's hand-over daemon on lo after its switch\n${daemonsB}${dump()}`);
    assert.doesNotMatch(daemonsB, /mcast=eth0/, `no kernel daemon of B's left on eth0\n${daemonsB}`);
    await open('mixed', 10);

    // 3. A switches: its first read sends the whole table (the mixed period's connections too).
    const daemonsA = await switchTo(procA, da, 'a', 150, 19671);
    await until(async () => (/master sync daemon \(mcast=lo/.test(await sh(da, ['ipvsadm', '-L', '--daemon'])) ? true : undefined), () => `A's kernel stream on lo after its switch (right after the reload: ${daemonsA})${dump()}`);
    assert.doesNotMatch(await sh(da, ['ipvsadm', '-L', '--daemon']), /mcast=eth0/, "no kernel daemon of A's left on eth0");
    await holds(db, 30, 'B, once A switched');

    // 4. Channel lvsd.
    await open('lvsd', 10);
    await holds(db, 40, 'B, on channel lvsd');
    const sent = /^lvsd_sync_records_total\{direction="sent"\} (\d+)/m.exec(await sh(da, ['curl', '-s', 'http://127.0.0.1:19671/metrics']))?.[1];
    assert.ok(Number(sent) >= 30, `A's lvsd sent the connections over channel lvsd (records sent: ${sent})`);

    // 5. Failover.
    da.crash();
    await da.exec(['ip', 'link', 'set', 'eth0', 'down']);
    await until(async () => ((await sh(db, ['ip', '-o', 'addr', 'show', 'dev', 'eth0'])).includes(`${VIP}/`) ? true : undefined), () => `B to take the VIP${dump()}`);
    await survive('failover: opened on channel kernel', ['kernel'], 20);
    await survive('failover: opened with B switched and A not yet', ['mixed'], 10);
    await survive('failover: opened on channel lvsd', ['lvsd'], 10);
  } finally {
    await topo.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
});
