/** `lvsd status` for people: the summary of a /status document (pure rendering; the daemon test runs it for real). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderStatus, humanDuration, ago } from '../../src/cli/status-view.js';

const now = Date.parse('2026-12-03T18:00:00Z');
const doc = {
  lvsd: { version: '0.1.0', pid: 42, phase: 'running', uptime_seconds: 3725 },
  router_id: 'lb1',
  config: { file: '/etc/lvsd/lvsd.yaml' },
  last_reload: { at: '2026-12-03T17:59:30Z', result: 'failure', errors: ['/etc/lvsd/lvsd.yaml:4:5: error: x'] },
  subsystems: {
    election: {
      instances: { VI_1: { state: 'MASTER', priority: 120, configured_priority: 150, vrid: 51, interface: 'eth0', version: 3, advert_interval: 1, master: '192.0.2.1', since: '2026-12-03T17:57:00Z', faults: [] } },
      sync_groups: { G1: 'MASTER' },
    },
    health: {
      virtual_servers: [
        {
          key: 'tcp/192.0.2.100:80', name: 'web', quorum: { up: false, healthy_weight: 0, quorum: 1 }, sorry_active: true,
          real_servers: [
            { key: '198.51.100.11:80', up: false, weight: 0, reason: 'check 0 (tcp) connect_refused', since: '2026-12-03T17:59:50Z' },
            { key: '198.51.100.12:80', up: true, weight: 3, since: '2026-12-03T16:00:00Z' },
          ],
        },
      ],
    },
    ipvs: { available: true, services: [{ key: 'tcp/192.0.2.100:80', present: true, dests: [{ key: '198.51.100.12:80', weight: 3, active_conns: 7, inact_conns: 2 }] }] },
    sync: { configured: false },
    future: { answer: 42 },
  },
};

test('the summary names states, priorities, health, weights, connections and times for people', () => {
  const out = renderStatus(doc, now);
  assert.match(out, /^lvsd 0\.1\.0 \(pid 42\) running for 1h 2m — router lb1\n/);
  assert.match(out, /last reload: failure 30s ago\n  \/etc\/lvsd\/lvsd\.yaml:4:5: error: x/);
  assert.match(out, /VI_1\s+MASTER\s+priority 120 \(configured 150\)\s+vrid 51 on eth0, v3 every 1s\s+master 192\.0\.2\.1\s+since 3m ago/);
  assert.match(out, /sync group G1\s+MASTER/);
  assert.match(out, /web\s+tcp\/192\.0\.2\.100:80\s+QUORUM DOWN \(healthy weight 0 < 1\)\s+sorry server active\s+in kernel/);
  assert.match(out, /198\.51\.100\.11:80\s+DOWN\s+weight 0\s+since 10s ago\s+check 0 \(tcp\) connect_refused/);
  assert.match(out, /198\.51\.100\.12:80\s+UP\s+weight 3\s+conns 7 active, 2 inactive\s+since 2h ago/);
  assert.match(out, /Connection sync\n  not configured/);
  assert.match(out, /future\n  answer\s+42/, 'an unknown subsystem is shown as it is');
});

test('durations: the two largest units', () => {
  assert.equal(humanDuration(0), '0s');
  assert.equal(humanDuration(59.9), '59s');
  assert.equal(humanDuration(3600 * 50 + 61), '2d 2h');
  assert.equal(ago('not a time', now), '-');
});
