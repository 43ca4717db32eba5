/**
 * Directors on two segments (a "front" bridge br0 and a "back" bridge br1), two `lvsd run` daemons:
 *  - a VIP whose `device` is the other interface (eth1) is added there and announced from there
 *    with that interface's MAC: a client on the back segment learns the new master's eth1 MAC from
 *    the gratuitous ARP and the unsolicited NA, without sending anything;
 *  - a sync group with one instance per segment: both members become master together on the
 *    higher-priority director; taking the master's back link down faults its whole group and the
 *    peer takes over both; bringing the link back moves both back (preempt).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Topology, isRoot, type Netns } from '../../src/lab/netns.js';
import { waitFor } from '../support/proc.js';
import { startLvsd, apiGet, removeScratch } from './support/peers.js';

const skip = !isRoot() && 'needs root (network namespaces)';
after(() => removeScratch());

/** Two directors a, b with eth0 on br0 and eth1 on br1, a client c on br1. */
async function twoSegments(topo: Topology) {
  const a = await topo.member('a', ['192.0.2.1/24']);
  const b = await topo.member('b', ['192.0.2.2/24']);
  await topo.attach(a, 'eth1', 'br1', ['198.51.100.1/24', '2001:db8:1::1/64']);
  await topo.attach(b, 'eth1', 'br1', ['198.51.100.2/24', '2001:db8:1::2/64']);
  const c = await topo.member('c', ['198.51.100.3/24', '2001:db8:1::3/64'], { bridge: 'br1' });
  return { a, b, c };
}

const head = (name: string) => ['global:', `  router_id: ${name}`, '  api:', '    listen: 127.0.0.1:9650', 'vrrp_instances:'];

interface ElectionStatus {
  instances: Record<string, { state: string }>;
  sync_groups: Record<string, string>;
}
async function election(ns: Netns): Promise<ElectionStatus | undefined> {
  try {
    return (JSON.parse(await apiGet(ns, '/status')) as { subsystems: { election?: ElectionStatus } }).subsystems.election;
  } catch {
    return undefined; // not answering yet
  }
}

test('VIPs on another device (eth1) are announced there: a client on that segment learns the new MAC (GARP and NA)', { skip }, async () => {
  const topo = new Topology();
  try {
    const { a, b, c } = await twoSegments(topo);
    const V4 = '198.51.100.42';
    const V6 = '2001:db8:1::42';
    const yaml = (name: string, prio: number) =>
      [
        ...head(name),
        '  - name: VI_1',
        '    interface: eth0',
        '    virtual_router_id: 42',
        `    priority: ${prio}`,
        '    version: 3',
        '    advert_interval: 0.1',
        '    virtual_addresses:',
        '      - 192.0.2.42/24',
        `      - { address: ${V4}/24, device: eth1 }`,
        '    virtual_addresses_excluded:',
        `      - { address: ${V6}/64, device: eth1 }`,
        '    garp:',
        '      master_repeat: 3',
        '      master_delay: 1',
        '',
      ].join('\n');
    startLvsd(a, yaml('a', 150));
    startLvsd(b, yaml('b', 100));
    await waitFor(
      async () => {
        const [onA, onB] = [await a.addrs('eth1'), await b.addrs('eth1')];
        return onA.includes(V4) && onA.includes(V6) && !onB.includes(V4);
      },
      'a to hold the eth1 VIPs',
      30000,
      20,
    );
    assert.ok((await a.addrs()).includes('192.0.2.42'), 'the instance-interface VIP is on eth0');
    const macA = await a.mac('eth1');
    const macB = await b.mac('eth1');
    await c.poke(V4);
    await c.poke(V6);
    await waitFor(async () => (await c.neigh(V4)) === macA && (await c.neigh(V6)) === macA, "client entries for a's eth1", 3000, 20);

    // a crashes (frozen, killed, links down): b takes over; c only hears b's announcements on br1.
    a.crash();
    await a.ipBatch(['link set eth0 down', 'link set eth1 down']);
    await waitFor(async () => (await b.addrs('eth1')).includes(V4) && (await b.addrs('eth1')).includes(V6), 'b to take the eth1 VIPs', 5000, 5);
    await waitFor(async () => (await c.neigh(V4)) === macB, "client ARP entry to move to b's eth1 MAC (GARP on eth1)", 2500, 10);
    await waitFor(async () => (await c.neigh(V6)) === macB, "client ND entry to move to b's eth1 MAC (NA on eth1)", 2500, 10);
  } finally {
    await topo.destroy();
  }
});

test('sync group on two segments: members master together, a link down on the master faults the group and the peer takes both, recovery moves both back', { skip }, async () => {
  const topo = new Topology();
  try {
    const { a, b } = await twoSegments(topo);
    const VA = '192.0.2.51';
    const VB = '198.51.100.52';
    const yaml = (name: string, prio: number) =>
      [
        ...head(name),
        ...[['VI_A', 'eth0', 51, `${VA}/24`], ['VI_B', 'eth1', 52, `${VB}/24`]].flatMap(([n, dev, vrid, vip]) => [
          `  - name: ${n}`,
          `    interface: ${dev}`,
          `    virtual_router_id: ${vrid}`,
          `    priority: ${prio}`,
          '    version: 3',
          '    advert_interval: 0.1',
          `    virtual_addresses: [${vip}]`,
        ]),
        'vrrp_sync_groups:',
        '  - name: G',
        '    members: [VI_A, VI_B]',
        '',
      ].join('\n');
    const holds = async (ns: Netns) => [(await ns.addrs('eth0')).includes(VA), (await ns.addrs('eth1')).includes(VB)];
    const group = async (ns: Netns) => (await election(ns))?.sync_groups.G;

    startLvsd(a, yaml('a', 150));
    startLvsd(b, yaml('b', 100));
    await waitFor(async () => (await group(a)) === 'MASTER' && (await group(b)) === 'BACKUP', 'a master and b backup for the group', 30000, 100);
    // The VIPs follow the states (added by the takeover, removed by b's release): waited for, not a fixed pause.
    await waitFor(async () => (await holds(a)).every(Boolean) && !(await holds(b)).some(Boolean), 'both VIPs on a, none on b', 30000, 100).catch(() => undefined);
    assert.deepEqual(await holds(a), [true, true], 'both members master on a');
    assert.deepEqual(await holds(b), [false, false]);
    assert.deepEqual(Object.values((await election(a))!.instances).map((i) => i.state), ['MASTER', 'MASTER']);

    // The master's back link goes down: VI_B faults (its own interface), the group pulls VI_A out
    // too (priority-0 advert on eth0), and b takes both although a still advertises nothing on eth1.
    const t0 = Date.now();
    await a.ipBatch(['link set eth1 down']);
    await waitFor(async () => (await holds(b)).every(Boolean), 'b to take both VIPs', 5000, 5);
    const takeoverMs = Date.now() - t0;
    await waitFor(async () => !(await holds(a))[0], 'a to release the front VIP', 3000, 10);
    const sa = (await election(a))!;
    assert.equal(sa.sync_groups.G, 'FAULT');
    assert.deepEqual([sa.instances.VI_A!.state, sa.instances.VI_B!.state], ['FAULT', 'FAULT']);
    await waitFor(async () => (await group(b)) === 'MASTER', 'b group MASTER', 3000, 50);
    // Link polling (0.5 s) + Skew_Time after the priority-0 advert; far below a hard-kill wait.
    assert.ok(takeoverMs < 10000, `takeover ${takeoverMs} ms (seconds-level sanity; the figure is bench/failover.ts's)`);

    // Recovery: the link comes back; a's members re-enter BACKUP, outrank b and preempt together.
    await a.ipBatch(['link set eth1 up']);
    await waitFor(async () => (await holds(a)).every(Boolean) && !(await holds(b)).some(Boolean), 'both VIPs back on a', 10000, 20);
    await waitFor(async () => (await group(a)) === 'MASTER' && (await group(b)) === 'BACKUP', 'groups back to a MASTER / b BACKUP', 5000, 100);
  } finally {
    await topo.destroy();
  }
});
