/**
 * The sync subsystem's start and reload with channel lvsd, on real loopback sockets (the channel)
 * and a real table worker reading a file; the kernel's sync daemons are an in-memory control (the
 * lab tests drive the real ones: test/lab/sync-*.test.ts).
 *
 * A reload that changes a sync parameter reopens the channel. A passive director then waits for the
 * active peer's table (bounded by resync_timeout) before the election's reload, which may raise its
 * priority; an active director has a passive peer, which never answers, so it must not wait: its
 * reload (and the election's after it) would stall for resync_timeout. No durations are asserted:
 * the active case uses resync_timeout 60 s and fails by the test's timeout if it waits.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Registry } from 'prom-client';
import { Bus } from '../../src/core/bus.js';
import { RecordingLogger } from '../../src/core/log.js';
import { SystemClock } from '../../src/core/clock.js';
import { parseConfigText, diffConfig, type ClusterConfig } from '../../src/config/index.js';
import { createSyncSubsystem, type SyncDaemonControl } from '../../src/sync/subsystem.js';
import type { DaemonSpec } from '../../src/sync/plan.js';

async function freeUdpPort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

function memoryControl(): SyncDaemonControl & { daemons: DaemonSpec[] } {
  const c = {
    daemons: [] as DaemonSpec[],
    newDaemon: async (d: DaemonSpec) => void c.daemons.push(d),
    delDaemon: async (state: 'master' | 'backup') => void (c.daemons = c.daemons.filter((d) => d.state !== state)),
    getDaemons: async () => [...c.daemons],
    close: async () => undefined,
  };
  return c;
}

async function setup(t: { after(fn: () => unknown): void }, resyncTimeout: number) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lvsd-sync-sub-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.writeFileSync(path.join(dir, 'sync.key'), `hex:${'ab'.repeat(32)}\n`, { mode: 0o600 });
  const table = path.join(dir, 'ip_vs_conn');
  fs.writeFileSync(table, 'Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData\n');
  const port = await freeUdpPort();
  // The peer is 127.0.0.2: loopback, nobody listens there, so no peer ever answers.
  const yaml = (poll: number) => `
vrrp_instances:
  - name: VI_1
    interface: lo
    virtual_router_id: 51
    virtual_addresses: [192.0.2.1/24]
sync:
  interface: lo
  channel: lvsd
  key_file: ${path.join(dir, 'sync.key')}
  peers: [127.0.0.2]
  port: ${port}
  stream_port: 0
  poll_interval: ${poll}
  resync_timeout: ${resyncTimeout}
`;
  const load = (poll: number): ClusterConfig => parseConfigText(yaml(poll), path.join(dir, 'lvsd.yaml')).config;
  const log = new RecordingLogger();
  const bus = new Bus();
  const ctl = memoryControl();
  const injected: Buffer[] = [];
  const sub = createSyncSubsystem(
    { logger: log, clock: new SystemClock(), registry: new Registry(), bus },
    {
      open: async () => ctl,
      lvsd: {
        connTables: [table],
        openInjector: async () => ({ send: async (m: Buffer) => void injected.push(m), close: async () => undefined }),
        enableLoopbackMulticast: async () => undefined,
        interfaceIPv4: () => '127.0.0.1',
      },
    },
  );
  const msgs = () => log.entries.map((e) => e.msg ?? (typeof e.obj === 'string' ? e.obj : ''));
  return { sub, bus, load, msgs, ctl };
}

test('an active director reloads a changed sync parameter without waiting for a peer table', { timeout: 30_000 }, async (t) => {
  const { sub, bus, load, msgs } = await setup(t, 60);
  // The election is MASTER already (read at start from the bus's last event).
  bus.emit('vrrp.state', { instance: 'VI_1', from: 'BACKUP', to: 'MASTER', reason: 'test' });
  const first = load(50);
  await sub.start(first);
  t.after(() => sub.stop());
  const second = load(80);
  const diff = diffConfig(first, second);
  assert.equal(diff.sync, true);
  await sub.reload(second, first, diff);
  assert.equal(msgs().filter((m) => m === 'active director: no peer table to wait for').length, 2, msgs().join('\n'));
  assert.ok(!msgs().includes('no active peer answered the resync request'));
  const st = sub.status() as { active?: boolean; last_error?: string };
  assert.equal(st.active, true);
  assert.equal(st.last_error, undefined);
});

test('a passive director waits (bounded) for the peer table at start and at a reload that reopens the channel', { timeout: 30_000 }, async (t) => {
  const { sub, load, msgs } = await setup(t, 1);
  const first = load(50);
  await sub.start(first);
  t.after(() => sub.stop());
  assert.deepEqual(msgs().filter((m) => m === 'no active peer answered the resync request').length, 1, msgs().join('\n'));
  const second = load(80);
  await sub.reload(second, first, diffConfig(first, second));
  // The reload returned after its own bounded wait, not before it.
  assert.deepEqual(msgs().filter((m) => m === 'no active peer answered the resync request').length, 2, msgs().join('\n'));
  assert.ok(!msgs().includes('active director: no peer table to wait for'));
  assert.equal((sub.status() as { active?: boolean }).active, false);
});
