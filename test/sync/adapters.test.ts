/**
 * The hand-over's pacing reads the kernel backup daemon's socket in /proc/net/udp (pure parse; the
 * real daemon is exercised by test/lab/sync-lvsd.test.ts and bench/sync.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backupDaemonQueue } from '../../src/sync/adapters.js';

// Shape of /proc/net/udp (net/ipv4/udp.c udp4_format_sock), Linux 6.1: the daemon's socket bound to 224.0.0.81:8848.
const UDP = `   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  104: 0100007F:A1B2 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4242 2 0000000000000000 0
  233: 00000000:2290 00000000:0000 07 00000000:00001200 00:00000000 00000000     0        0 4243 2 0000000000000000 9
  233: 510000E0:2290 00000000:0000 07 00000000:0000A800 00:00000000 00000000     0        0 4244 2 0000000000000000 17
`;

test('finds the backup daemon socket (224.0.0.81:8848, host order) and reads its queue and drops', () => {
  assert.deepEqual(backupDaemonQueue(UDP, 8848, true), { queued: 0xa800, drops: 17 });
  assert.equal(backupDaemonQueue(UDP.replace('510000E0', 'E0000051'), 8848, false)?.drops, 17, 'big-endian hosts print it the other way');
});

test('the socket at the port asked for: a daemon at another port is not it', () => {
  assert.equal(backupDaemonQueue(UDP, 8850, true), undefined);
  assert.deepEqual(backupDaemonQueue(UDP.replace('510000E0:2290', '510000E0:2292'), 8850, true), { queued: 0xa800, drops: 17 });
});

test('no daemon socket, or garbage: undefined, never a throw', () => {
  assert.equal(backupDaemonQueue(UDP.split('\n').slice(0, 3).join('\n'), 8848, true), undefined);
  assert.equal(backupDaemonQueue('', 8848, true), undefined);
  assert.equal(backupDaemonQueue('  1: 510000E0:2290 x y zz', 8848, true), undefined);
});
