import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planSync, wantedDaemons, type DaemonSpec } from '../../src/sync/plan.js';
import { streamDaemon, handoverDaemon } from '../../src/sync/subsystem.js';
import { localSyncPorts } from '../../src/config/model.js';

const d = (state: 'master' | 'backup', extra: Partial<DaemonSpec> = {}): DaemonSpec => ({ state, mcast_ifn: 'eth1', syncid: 7, ...extra });

test('auto mode follows VRRP: master sends, every other state receives', () => {
  assert.deepEqual(wantedDaemons('auto', 'MASTER'), { master: true, backup: false });
  for (const s of ['BACKUP', 'FAULT', 'INIT', undefined]) assert.deepEqual(wantedDaemons('auto', s), { master: false, backup: true });
  assert.deepEqual(wantedDaemons('both', 'BACKUP'), { master: true, backup: true });
});

test('takeover swaps backup for master; equal daemons are left alone; changed ones restart', () => {
  // The new master starts sending before it stops receiving: no window without a daemon.
  assert.deepEqual(planSync([d('master')], [d('backup')]), [{ op: 'start', daemon: d('master') }, { op: 'stop', state: 'backup' }]);
  assert.deepEqual(planSync([d('backup')], [d('backup')]), []);
  assert.deepEqual(planSync([d('backup', { syncid: 8 })], [d('backup')]), [{ op: 'stop', state: 'backup' }, { op: 'start', daemon: d('backup', { syncid: 8 }) }]);
  assert.deepEqual(planSync([], [d('master'), d('backup')]), [{ op: 'stop', state: 'master' }, { op: 'stop', state: 'backup' }]);
});

test('the kernel stream daemon: on lo, maxlen 1, at sync.stream_port; none at 0', () => {
  assert.deepEqual(streamDaemon({ sync_id: 42, stream_port: 8849 }), { state: 'master', mcast_ifn: 'lo', syncid: 42, maxlen: 1, mcast_group: '224.0.0.81', mcast_port: 8849, mcast_ttl: 1 });
  assert.equal(streamDaemon({ sync_id: 42, stream_port: 0 }), undefined);
});

test('the hand-over daemon: a backup daemon on lo at sync.handover_port, restarted when that port changes', () => {
  const h = handoverDaemon({ sync_id: 42, handover_port: 8850 });
  assert.deepEqual(h, { state: 'backup', mcast_ifn: 'lo', syncid: 42, mcast_group: '224.0.0.81', mcast_port: 8850 });
  // A director upgraded from a version whose backup daemon on lo listened at 8848 moves it.
  const old: DaemonSpec = { state: 'backup', mcast_ifn: 'lo', syncid: 42 };
  assert.deepEqual(planSync([h], [old]), [{ op: 'stop', state: 'backup' }, { op: 'start', daemon: h }]);
  assert.deepEqual(planSync([h], [{ ...h }]), []);
});

test('the local ports of channel lvsd: stream next to sync.port, hand-over the next free one; all differ', () => {
  assert.deepEqual(localSyncPorts({ port: 8848 }), { stream: 8849, handover: 8850 });
  assert.deepEqual(localSyncPorts({ port: 8849 }), { stream: 8850, handover: 8851 });
  assert.deepEqual(localSyncPorts({ port: 8850 }), { stream: 8849, handover: 8851 });
  assert.deepEqual(localSyncPorts({ port: 8848, stream_port: 8850 }), { stream: 8850, handover: 8851 });
  assert.deepEqual(localSyncPorts({ port: 8848, stream_port: 0 }), { stream: 0, handover: 8850 }, 'no stream: the hand-over keeps its port');
  assert.deepEqual(localSyncPorts({ port: 8848, handover_port: 9000 }), { stream: 8849, handover: 9000 });
  for (let port = 8840; port < 8860; port++)
    for (const stream_port of [undefined, 0, 8849, 8850, 8851]) {
      const p = localSyncPorts({ port, stream_port });
      if (stream_port === port) continue; // check-config rejects it
      assert.ok(p.handover !== port && p.handover !== p.stream && (p.stream === 0 || p.stream !== port), JSON.stringify({ port, stream_port, p }));
    }
});
