/**
 * A migration step on real namespaces: one keepalived.conf for a pair (conditional lines pick each
 * director's priority), keepalived runs it on one director, lvsd runs what `lvsd import keepalived`
 * made of it on the other. The pair elects the higher priority, killing the master moves the VIP to
 * the other (and the client's ARP entry follows), and a restarted higher priority takes it back.
 * Both ways round: keepalived as the master, then lvsd.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { Topology, isRoot, type Netns, type Running } from '../../src/lab/netns.js';
import { lvsdBin, repoRoot, waitFor } from '../support/proc.js';
import { scratch, removeScratch, startLvsd } from './support/peers.js';

const skip = !isRoot() && 'needs root (network namespaces)';
const CONF = join(repoRoot, 'test', 'fixtures', 'keepalived', 'mixed-pair.conf');
const VIP = '192.0.2.42';
after(() => removeScratch());

/** The lvsd configuration the importer makes of the file for one director. */
function converted(configId: string): string {
  const out = join(scratch(), `lvsd-${configId}.yaml`);
  const r = spawnSync(lvsdBin, ['import', 'keepalived', CONF, '--config-id', configId, '-o', out], { encoding: 'utf8', timeout: 20000 });
  assert.equal(r.status, 0, `import must be complete: ${r.stderr}`);
  return readFileSync(out, 'utf8');
}

function startKeepalived(ns: Netns, configId: string): Running {
  const d = scratch();
  return ns.start(['keepalived', '-n', '-l', '-D', '-G', '-P', '-i', configId, '-f', CONF, '-p', join(d, 'k.pid'), '-r', join(d, 'v.pid')]);
}

async function pair(master: 'keepalived' | 'lvsd'): Promise<void> {
  const topo = new Topology();
  try {
    const a = await topo.member('a', ['192.0.2.1/24']);
    const b = await topo.member('b', ['192.0.2.2/24']);
    const cl = await topo.member('c', ['192.0.2.3/24']);
    // "a" has priority 150 in the file, "b" 100: the master-to-be runs as a.
    const run = (ns: Netns, id: 'a' | 'b', kind: 'keepalived' | 'lvsd') => (kind === 'keepalived' ? startKeepalived(ns, id) : startLvsd(ns, converted(id)).proc);
    const other = master === 'keepalived' ? 'lvsd' : 'keepalived';
    const pa = run(a, 'a', master);
    const pb = run(b, 'b', other);
    const has = async (ns: Netns) => (await ns.addrs()).includes(VIP);
    const diag = () => `\n--- a (${master}):\n${pa.output().slice(-3000)}\n--- b (${other}):\n${pb.output().slice(-3000)}`;
    // Generous: daemons start slowly on a loaded 2-core machine; effects are what is asserted.
    await waitFor(async () => (await has(a)) && !(await has(b)), `${master} (priority 150) to hold the VIP alone${diag()}`, 30000, 50);
    // And the other director up as BACKUP (it hears the master) before the master dies: on a loaded
    // machine a daemon can still be starting when the VIP is already on a.
    await waitFor(() => /Entering BACKUP STATE|"to":"BACKUP"/.test(pb.output()) || undefined, `${other} (priority 100) to be BACKUP${diag()}`, 60000, 50);
    await cl.poke(VIP);
    const macA = await a.mac();
    await waitFor(async () => (await cl.neigh(VIP)) === macA, 'the client to reach the VIP at a', 5000, 50);

    a.crash(); // the master director dies (every process in its namespace, at once)
    await pa.exited;
    await waitFor(() => has(b), `the VIP to move to ${other}${diag()}`, 15000, 20);
    const macB = await b.mac();
    await waitFor(async () => (await cl.neigh(VIP)) === macB, 'the client ARP entry to follow the new master (gratuitous ARP)', 5000, 20);

    // The old master returns (a crash leaves the VIP on its interface; a reboot would not).
    await a.exec(['ip', 'addr', 'del', `${VIP}/24`, 'dev', 'eth0'], { check: false });
    const pa2 = run(a, 'a', master);
    await waitFor(async () => (await has(a)) && !(await has(b)), `the restarted ${master} (150) to take the VIP back${diag()}\n--- a again:\n${pa2.output().slice(-3000)}`, 30000, 50);
    await waitFor(async () => (await cl.neigh(VIP)) === macA, 'the client ARP entry back to a', 5000, 20);
  } finally {
    await topo.destroy();
  }
}

test('mixed pair from one keepalived.conf: keepalived master, lvsd (converted) backup — elect, fail over, preempt back', { skip }, async () => {
  await pair('keepalived');
});

test('mixed pair from one keepalived.conf: lvsd (converted) master, keepalived backup — elect, fail over, preempt back', { skip }, async () => {
  await pair('lvsd');
});
