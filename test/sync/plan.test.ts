import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planSync, wantedDaemons, type DaemonSpec } from '../../src/sync/plan.js';
import { streamDaemon } from '../../src/sync/subsystem.js';

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

test('the kernel stream daemon: on lo, maxlen 1, at sync.stream_port; by default next to sync.port; none at 0', () => {
  const at = (s: { port: number; stream_port?: number }) => streamDaemon({ sync_id: 42, ...s })?.mcast_port;
  assert.deepEqual(streamDaemon({ sync_id: 42, port: 8848 }), { state: 'master', mcast_ifn: 'lo', syncid: 42, maxlen: 1, mcast_group: '224.0.0.81', mcast_port: 8849, mcast_ttl: 1 });
  assert.equal(at({ port: 8849 }), 8850);
  assert.equal(at({ port: 8848, stream_port: 9100 }), 9100);
  assert.equal(streamDaemon({ sync_id: 42, port: 8848, stream_port: 0 }), undefined);
});
