/**
 * lvsd's own sync channel on the real kernel (inside the lab guest): two `lvsd run` directors with two
 * VRRP instances (an IPv4 and an IPv6 DR VIP; sync follows the IPv4 one), sync.channel lvsd with a
 * shared key. A client keeps many TCP connections open through the VIPs, in groups that stay idle
 * (no packet at all) until they are checked. One setup, several phases; the test proves, by effects
 * (a connection survives when a line sent on it is echoed by its real server), issue 18's cases:
 *  1. every connection opened through A appears in B's kernel table (records went A → B's kernel
 *     through B's backup daemon on lo, IPv6 ones as 72-byte records), and in `lvsd sync show` on B
 *     with the same ipvsadm -Lnc row;
 *  2. the shared key is rotated as docs/sync.md says (three reloads of both directors, the YAML
 *     unchanged) and connections opened after it reach B; then B's lvsd restarts (gracefully),
 *     reading the new key only, while A keeps serving; connections opened while it was down reach
 *     B only through the full resync at its start (so A signs with the new key), which also
 *     rebuilds `sync show`;
 *  3. failover: A's host dies (processes killed, link cut); busy, idle (no packet between open and
 *     failover: sent once, never again, as idle connections make no state change), IPv6 and
 *     opened-during-B's-restart connections still answer through B;
 *  4. connections opened through B while it is master;
 *  5. failback: A comes back as a fresh host (a new namespace with A's addresses: empty IPVS table),
 *     asks for B's table, preempts, and every connection (A's, idle ones never touched since they
 *     were opened through A, and B's) still answers through A.
 * Each case must keep ≥ 99 % of its connections (at these group sizes: all of them).
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
import { missingFromKernel } from './support/lnc.js';
import { connClient } from './support/conn-client.js';

const skip = process.env.LVSD_IN_LAB === '1' ? false : 'runs inside the lab guest (node scripts/test.mjs --only lab)';
const VIP = '192.0.2.100';
const VIP6 = '2001:db8::100';
const KEY = 'hex:' + 'c0ffee'.repeat(8);
/** The key rotated in before phase 2 (docs/sync.md, Keys): the restarted B knows only this one. */
const NEW_KEY = 'base64:' + Buffer.from('the rotated-in key of both directors').toString('base64');

function config(dir: string, name: string, prio: number, port: number): string {
  const file = join(dir, `${name}.yaml`);
  const vs = (address: string, reals: string[]) => `  - address: ${address}
    port: 80
    scheduler: rr
    forwarding: dr
    real_servers:
${reals.map((r) => `      - address: ${r}`).join('\n')}
`;
  writeFileSync(
    file,
    `global:
  router_id: ${name}
  state_dir: ${dir}/state-${name}
  api: { listen: 127.0.0.1:${port} }
  ipvs: { drift_check_interval: 0 }
vrrp_instances:
  - name: vi
    interface: eth0
    virtual_router_id: 51
    priority: ${prio}
    version: 3
    advert_interval: 0.5
    virtual_addresses: [${VIP}/24]
  - name: vi6
    interface: eth0
    virtual_router_id: 52
    priority: ${prio}
    version: 3
    advert_interval: 0.5
    virtual_addresses: [${VIP6}/64]
virtual_servers:
${vs(VIP, ['192.0.2.11', '192.0.2.12'])}${vs(VIP6, ['2001:db8::11', '2001:db8::12'])}sync:
  interface: eth0
  channel: lvsd
  key_file: ${dir}/sync.key
  sync_id: 42
  vrrp_instance: vi
`,
  );
  return file;
}

// Polls spawn processes (ip, ipvsadm, lvsd sync show), each costly in the guest: once a second, so
// they don't slow the daemons being waited for.
const until = <T>(fn: () => Promise<T | undefined>, what: string | (() => string), ms = 180000) => untilDone(fn, what, ms, 1000);

test('channel lvsd: connections survive failover and failback: busy, idle, IPv6, opened on the backup while master, and across a restart of the backup\'s lvsd', { skip, timeout: 600_000 }, async (t) => {
  const topo = new Topology();
  const dir = mkdtempSync(join(tmpdir(), 'lvsd-synclvsd-'));
  writeFileSync(join(dir, 'sync.key'), KEY + '\n', { mode: 0o600 });
  try {
    const cl = await topo.member('cl', ['192.0.2.50/24', '2001:db8::50/64']);
    const da = await topo.member('da', ['192.0.2.2/24', '2001:db8::2/64']);
    const db = await topo.member('db', ['192.0.2.3/24', '2001:db8::3/64']);
    for (const [i, addr] of ['11', '12'].entries()) {
      const rs = await topo.member(`rs${i}`, [`192.0.2.${addr}/24`, `2001:db8::${addr}/64`]);
      await rs.sysctls({ 'net.ipv4.conf.all.arp_ignore': '1', 'net.ipv4.conf.all.arp_announce': '2' });
      await rs.addr('lo', `${VIP}/32`);
      await rs.addr('lo', `${VIP6}/128`);
      rs.spawn([process.execPath, '-e', ECHO_SERVER, `rs${i}`, '80']);
    }
    const logs: Record<string, () => string> = {};
    const runLvsd = (ns: Netns, name: string, prio: number, port: number) => {
      const r = ns.start([lvsdBin, 'run', '-c', config(dir, name, prio, port)]);
      const before = logs[name]?.() ?? '';
      logs[name] = () => before + r.output();
      return r;
    };
    /** Waits for a started daemon's "lvsd running" line (reads its output: spawns nothing). */
    const started = (r: { output(): string }, what: string) => untilDone(async () => (r.output().includes('"lvsd running"') ? true : undefined), () => `${what}'s lvsd to start${dump()}`, 180000, 300);
    const dump = () => Object.entries(logs).map(([n, l]) => `\n--- ${n} ---\n${l().slice(-20000)}`).join('');
    const vipOn = async (ns: Netns, vip = VIP) => ((await ns.exec(['ip', '-o', 'addr', 'show', 'dev', 'eth0'], { via: 'nsenter' })).stdout.includes(`${vip}/`) ? true : undefined);
    const lnc = async (ns: Netns) => (await ns.exec(['ipvsadm', '-Lnc'], { via: 'nsenter' })).stdout;
    /** Client connections (both families) in a director's kernel table / in its `lvsd sync show`. */
    const CLIENT_ROW = /(192\.0\.2\.50|\[2001:db8::50\]):\d+\s+(192\.0\.2\.100|\[2001:db8::100\]):80/g;
    const count = (text: string) => (text.match(CLIENT_ROW) ?? []).length;
    let lastShow = '';
    const syncShow = async (ns: Netns, port: number) => {
      const r = await ns.exec([lvsdBin, 'sync', 'show', '--api', `127.0.0.1:${port}`], { via: 'nsenter', check: false });
      lastShow = `exit ${r.code}: ${r.stdout.slice(-3000)}${r.stderr}`;
      return r.stdout;
    };
    const procA = runLvsd(da, 'a', 150, 19661);
    let procB = runLvsd(db, 'b', 100, 19662);
    await started(procA, 'A');
    await until(async () => ((await vipOn(da)) && (await vipOn(da, VIP6)) ? true : undefined), () => `A to become master of both instances${dump()}`);

    const client = connClient(cl);
    const open = async (group: string, n: number, host: string) => assert.equal(await client.open(group, n, host), n, `${group}: ${n} connections opened`);
    const kept: Record<string, string> = {};
    const t0 = Date.now();
    const mark = (what: string) => t.diagnostic(`${what} at ${Math.round((Date.now() - t0) / 1000)} s`);
    /** One line on every connection of the groups; ≥ 99 % must answer. */
    const survive = async (name: string, groups: string[], want: number) => {
      const r = await client.round(groups);
      kept[name] = `${r.ok}/${r.total}`;
      t.diagnostic(`${name}: ${r.ok} of ${r.total} connections kept`);
      assert.equal(r.total, want, name);
      assert.ok(r.ok! >= Math.ceil(0.99 * want), `${name}: ${JSON.stringify(r)}${dump()}`);
    };

    // 1. Through A: busy (traffic before the failover), idle (none until checked after the
    //    failover), late (none until after the failback), IPv6 (idle).
    await open('busy', 40, VIP);
    await open('idle', 40, VIP);
    await open('late', 20, VIP);
    await open('v6', 30, VIP6);
    await survive('busy through A', ['busy'], 40);
    const N = 130;
    await until(async () => (count(await lnc(db)) >= N ? true : undefined), () => `B's kernel to hold the ${N} connections${dump()}`, 60000);
    // `lvsd sync show` on B lists the same connections, each as B's `ipvsadm -Lnc` prints it.
    const show = await until(async () => {
      const text = await syncShow(db, 19662);
      return count(text) >= N ? text : undefined;
    }, () => `lvsd sync show on B to list the ${N} connections (last: ${lastShow})${dump()}`);
    const cmp = missingFromKernel(show, await lnc(db));
    assert.equal(cmp.shown.length, N, `sync show rows:\n${show}`);
    assert.equal(cmp.shown.filter((r) => r.includes('[2001:db8::50]')).length, 30, 'IPv6 connections in sync show');
    assert.deepEqual(cmp.missing, [], 'every row of lvsd sync show is in ipvsadm -Lnc on the same director');

    mark('rotation');
    // The key rotation as docs/sync.md gives it, each step a reload (SIGHUP) of both directors with
    // the YAML unchanged: the new key second, then first, then alone. Connections opened after it
    // reach B (A signs with the new key); phase 2's restart of B, which then reads the new key
    // only, proves A no longer signs with the old one.
    const reloaded = (name: string) => (logs[name]!().match(/sync keys reloaded/g) ?? []).length;
    for (const [step, text] of [[1, `${KEY}\n${NEW_KEY}\n`], [2, `${NEW_KEY}\n${KEY}\n`], [3, `${NEW_KEY}\n`]] as const) {
      writeFileSync(join(dir, 'sync.key'), text);
      procA.child.kill('SIGHUP');
      procB.child.kill('SIGHUP');
      await untilDone(async () => (reloaded('a') >= step && reloaded('b') >= step ? true : undefined), () => `both directors to reload their keys (rotation step ${step})${dump()}`, 120_000, 300);
    }
    // Both show the same key set, the rotated-in key alone (lvsd status: sync.key_ids).
    const keyIds = async (ns: Netns, port: number) => (JSON.parse((await ns.exec(['curl', '-s', `http://127.0.0.1:${port}/status`], { via: 'nsenter' })).stdout) as { subsystems: { sync: { key_ids?: string[] } } }).subsystems.sync.key_ids;
    const [idsA, idsB] = [await keyIds(da, 19661), await keyIds(db, 19662)];
    assert.equal(idsA?.length, 1, `A's key ids after the rotation: ${JSON.stringify(idsA)}`);
    assert.deepEqual(idsB, idsA, 'both directors hold the same key');
    const R = 10;
    await open('rot', R, VIP);
    await until(async () => (count(await lnc(db)) >= N + R ? true : undefined), () => `B's kernel to hold the ${R} connections opened after the rotation${dump()}`, 60000);

    mark('phase 2');
    // 2. B's lvsd restarts; connections opened meanwhile reach B only through the resync at its start.
    procB.child.kill('SIGTERM');
    const stopped = await procB.exited;
    assert.equal(stopped.code, 0, `B's lvsd stopped cleanly${dump()}`);
    await open('gap', 10, VIP);
    await open('gap6', 10, VIP6);
    procB = runLvsd(db, 'b', 100, 19662);
    await started(procB, 'the restarted B');
    const rebuilt = await until(async () => {
      const text = await syncShow(db, 19662);
      return count(text) >= N + R + 20 ? text : undefined;
    }, () => `the restarted B's sync show to list all ${N + R + 20} connections (its table rebuilt by the resync, signed with the rotated-in key; last: ${lastShow})${dump()}`);
    assert.equal(count(rebuilt), N + R + 20);
    assert.deepEqual(missingFromKernel(rebuilt, await lnc(db)).missing, [], 'after the restart, every row of sync show is in ipvsadm -Lnc');
    assert.ok(!(await vipOn(db)), 'A stayed master while B restarted');

    mark('phase 3');
    // 3. Failover: A's host dies and its link is cut.
    da.crash();
    await da.exec(['ip', 'link', 'set', 'eth0', 'down']);
    await until(async () => ((await vipOn(db)) && (await vipOn(db, VIP6)) ? true : undefined), () => `B to take both VIPs${dump()}`);
    await survive('failover: busy', ['busy'], 40);
    await survive('failover: idle', ['idle'], 40);
    await survive('failover: IPv6 (idle)', ['v6'], 30);
    await survive('failover: opened while B\'s lvsd restarted (idle)', ['gap', 'gap6'], 20);
    await survive('failover: opened after the key rotation (idle)', ['rot'], R);

    mark('phase 4');
    // 4. Connections opened through B while it is master.
    await open('onb', 10, VIP);
    await open('onb6', 10, VIP6);
    await survive('opened through B', ['onb', 'onb6'], 20);

    mark('phase 5');
    // 5. Failback: A returns as a fresh host (new namespace, same addresses, empty IPVS table).
    const da2 = await topo.member('da2', ['192.0.2.2/24', '2001:db8::2/64']);
    await started(runLvsd(da2, 'a2', 150, 19663), 'the returning A');
    await until(async () => ((await vipOn(da2)) && (await vipOn(da2, VIP6)) ? true : undefined), () => `A to take both VIPs back${dump()}`);
    await until(async () => ((await vipOn(db)) || (await vipOn(db, VIP6)) ? undefined : true), () => `B to release the VIPs${dump()}`);
    assert.ok(count(await lnc(da2)) >= N + R + 40, `the returning director holds every connection: ${count(await lnc(da2))}${dump()}`);
    await survive('failback: idle since opened through A', ['late'], 20);
    await survive('failback: opened through B', ['onb', 'onb6'], 20);
    await survive('failback: every connection', ['busy', 'idle', 'late', 'v6', 'rot', 'gap', 'gap6', 'onb', 'onb6'], N + R + 40);
    mark('end');
    t.diagnostic(`kept: ${JSON.stringify(kept)}`);
  } finally {
    await topo.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
});
