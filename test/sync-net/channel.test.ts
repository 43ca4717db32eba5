/**
 * The sync channel on real sockets in network namespaces: multicast on one segment with an attacker
 * replaying, forging and signing with a wrong key (every such datagram must be dropped and counted),
 * and unicast over IPv6 with two keys during a rotation.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { Topology, isRoot, type Running } from '../../src/lab/netns.js';
import { localSyncPorts } from '../../src/config/model.js';

const here = dirname(fileURLToPath(import.meta.url));
const peer = join(here, 'support', 'sync-peer.js');
const attacker = join(here, 'support', 'sync-attacker.js');
const skip = isRoot() ? false : 'needs root (network namespaces)';
const K1 = Buffer.from('the first shared sync key, 32 b!').toString('hex');
const K2 = Buffer.from('the second shared sync key, 32 b').toString('hex');
const KX = Buffer.from('the attacker key, also 32 bytes!').toString('hex');

async function ready(r: Running, what: string): Promise<void> {
  for (let i = 0; i < 300 && !r.output().includes('ready'); i++) await new Promise((res) => setTimeout(res, 50));
  assert.ok(r.output().includes('ready'), `${what} did not start: ${r.output()}`);
}
async function result(r: Running): Promise<{ received: string[]; drops: Record<string, number> }> {
  await r.exited;
  const line = r.output().trim().split('\n').at(-1)!;
  return JSON.parse(line);
}

test('multicast: genuine frames arrive once each; replayed, forged, wrong-key and garbage datagrams are all dropped and counted', { skip, timeout: 60_000 }, async () => {
  const topo = new Topology();
  try {
    const a = await topo.member('a', ['192.0.2.1/24']);
    const b = await topo.member('b', ['192.0.2.2/24']);
    const x = await topo.member('x', ['192.0.2.66/24']);
    const atk = x.start([process.execPath, attacker, JSON.stringify({ local: '192.0.2.66', port: 8848, wrongKey: KX, target: '224.0.0.81' })]);
    await ready(atk, 'attacker');
    const pb = b.start([process.execPath, peer, JSON.stringify({ node: 2, keys: [K1], port: 8848, local: '192.0.2.2', peers: [], send: 0, everyMs: 0, runMs: 5000 })]);
    await ready(pb, 'b');
    const pa = a.start([process.execPath, peer, JSON.stringify({ node: 1, keys: [K1], port: 8848, local: '192.0.2.1', peers: [], send: 20, everyMs: 20, runMs: 4000, startDelayMs: 200 })]);
    const ra = await result(pa);
    const rb = await result(pb);
    atk.child.kill('SIGTERM');
    await atk.exited;
    const sent = JSON.parse(atk.output().trim().split('\n').at(-1)!) as Record<string, number>;
    assert.deepEqual(rb.received, Array.from({ length: 20 }, (_, i) => `1:${i + 1}`), 'every genuine frame once, in order');
    assert.equal(sent.replay, 20, `the attacker overheard every frame: ${JSON.stringify(sent)}`);
    // 100 % rejected: every forged datagram is counted under its reason, none reached onFrame.
    assert.equal(rb.drops.replay, sent.replay);
    assert.equal(rb.drops.bad_mac, sent.forged! + sent.wrong_key!);
    assert.equal(rb.drops.unknown_key, sent.unknown_key);
    assert.equal(rb.drops.malformed, sent.garbage);
    assert.deepEqual(ra.received, [], 'the attacker\'s traffic reaches A too and is dropped there');
  } finally {
    await topo.destroy();
  }
});

test("the director's own hand-over to its kernel on lo, at its own port, never reaches its channel socket", { skip, timeout: 60_000 }, async () => {
  const topo = new Topology();
  try {
    const b = await topo.member('b', ['192.0.2.2/24']);
    const run = async (handoverPort: number) => {
      const p = b.start([process.execPath, peer, JSON.stringify({ node: 2, keys: [K1], port: 8848, local: '192.0.2.2', peers: [], send: 0, everyMs: 0, runMs: 2500, handover: 10, handoverPort })]);
      return result(p);
    };
    // The director's default (sync.handover_port, config/model.ts localSyncPorts).
    const own = await run(localSyncPorts({ port: 8848 }).handover);
    assert.equal((own as { handedOver?: number }).handedOver, 10, `the stand-in for the backup daemon got every message: ${JSON.stringify(own)}`);
    assert.deepEqual(own.drops, {}, `nothing reached the channel: ${JSON.stringify(own)}`);
    // At the channel's port (the kernel's default 8848, where lvsd's backup daemon on lo listened
    // before) the same datagrams reach the channel socket, bound to the wildcard address there, and
    // are counted: the test sees the collision the port of its own avoids.
    const shared = await run(8848);
    assert.equal((shared as { handedOver?: number }).handedOver, 10);
    assert.equal(shared.drops.malformed, 10, `the channel socket receives lo's hand-over: ${JSON.stringify(shared)}`);
  } finally {
    await topo.destroy();
  }
});

test('unicast over IPv6 during a key rotation: each side signs with its first key and accepts both', { skip, timeout: 60_000 }, async () => {
  const topo = new Topology();
  const goDir = mkdtempSync(join(tmpdir(), 'lvsd-sync-go-'));
  try {
    const a = await topo.member('a', ['2001:db8::1/64']);
    const b = await topo.member('b', ['2001:db8::2/64']);
    // Both send once both are bound (goFile): started together, one could otherwise send before the
    // other's socket exists, on a loaded host (its frames then lost, the test failed once so).
    const goFile = join(goDir, 'go');
    const pb = b.start([process.execPath, peer, JSON.stringify({ node: 2, keys: [K1, K2], port: 9848, local: '2001:db8::2', peers: [{ address: '2001:db8::1', port: 9848 }], send: 10, everyMs: 20, runMs: 4000, startDelayMs: 200, goFile })]);
    const pa = a.start([process.execPath, peer, JSON.stringify({ node: 1, keys: [K2, K1], port: 9848, local: '2001:db8::1', peers: [{ address: '2001:db8::2', port: 9848 }], send: 10, everyMs: 20, runMs: 4000, startDelayMs: 200, goFile })]);
    await ready(pa, 'a');
    await ready(pb, 'b');
    writeFileSync(goFile, '');
    const [ra, rb] = await Promise.all([result(pa), result(pb)]);
    assert.deepEqual(rb.received, Array.from({ length: 10 }, (_, i) => `1:${i + 1}`));
    assert.deepEqual(ra.received, Array.from({ length: 10 }, (_, i) => `2:${i + 1}`));
    assert.deepEqual(ra.drops, {});
    assert.deepEqual(rb.drops, {});
  } finally {
    rmSync(goDir, { recursive: true, force: true });
    await topo.destroy();
  }
});
