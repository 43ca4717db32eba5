/**
 * The health subsystem against real loopback listeners: initial publication, a killed server is
 * published down after `fall` failed checks, comes back after `rise` successes (order and counts, no
 * clock: how fast is bench/health-*.ts's figure, docs/health.md),
 * reasons and {from,to,reason} logs, metrics, reload keeping state, quorum commands actually run.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { Bus, type BusEvents } from '../../src/core/bus.js';
import { SystemClock } from '../../src/core/clock.js';
import { RecordingLogger } from '../../src/core/log.js';
import { parseConfigText } from '../../src/config/load.js';
import { diffConfig } from '../../src/config/diff.js';
import { createHealthSubsystem } from '../../src/health/subsystem.js';
import { parsePrometheus, sampleValue } from '../support/prom.js';
import { waitFor } from '../support/proc.js';
import { closedPort, tcpServer } from './support/servers.js';

const load = (s: string) => parseConfigText(s, 'h.yaml', { checkFiles: false, hostname: 'h' }).config;

function harness() {
  const bus = new Bus();
  const registry = new Registry();
  const logger = new RecordingLogger();
  const rs: Array<BusEvents['health.rs'] & { t: number }> = [];
  const quorum: Array<BusEvents['health.quorum']> = [];
  bus.on('health.rs', (e) => rs.push({ ...e, t: performance.now() }));
  bus.on('health.quorum', (e) => quorum.push(e));
  return { bus, registry, logger, rs, quorum, deps: { bus, registry, logger, clock: new SystemClock() } };
}

test('health subsystem: initial states, kill → down after fall with reason, restart → up after rise, metrics, logs', async () => {
  const a = await tcpServer();
  let b = await tcpServer();
  const bPort = b.port;
  const dead = await closedPort();
  const h = harness();
  const cfg = load(`
virtual_servers:
  - address: 192.0.2.10
    port: 80
    name: web
    interval: 0.2
    timeout: 0.3
    fall: 2
    rise: 2
    retry_delay: 0.1
    real_servers:
      - { address: 127.0.0.1, port: ${a.port}, checks: [{ type: tcp }] }
      - { address: 127.0.0.1, port: ${bPort}, checks: [{ type: tcp }] }
      - { address: 127.0.0.1, port: ${dead}, alpha: true, checks: [{ type: tcp }] }
`);
  const sub = createHealthSubsystem(h.deps);
  // The check streaks of b when each of its transitions is published (the event is emitted after the
  // result that caused it is counted): down after `fall` failures, up after `rise` successes.
  const streaks: Array<{ up: boolean; ok: number; fail: number }> = [];
  h.bus.on('health.rs', (e) => {
    if (e.rs !== `127.0.0.1:${bPort}` || h.rs.length <= 3) return;
    const c = sub.status().virtual_servers[0]!.real_servers[1]!.checks[0]!;
    streaks.push({ up: e.up, ok: c.ok_streak, fail: c.fail_streak });
  });
  try {
    await sub.start(cfg);
    // Published synchronously at start: alpha → down, others up.
    assert.deepEqual(h.rs.map((e) => [e.rs, e.up]), [[`127.0.0.1:${a.port}`, true], [`127.0.0.1:${bPort}`, true], [`127.0.0.1:${dead}`, false]]);
    assert.deepEqual(h.quorum[0], { vs: 'tcp/192.0.2.10:80', name: 'web', up: true, healthyWeight: 2 });
    // Several checks of every server (not a fixed sleep: a loaded machine runs fewer per second).
    await waitFor(() => sub.status().checks_run >= 9, '9 checks run', 30_000);
    assert.equal(h.rs.length, 3, `no flapping of healthy servers: ${JSON.stringify(h.rs.slice(3))}`);

    const killedAt = performance.now();
    await b.close();
    const down = await waitFor(() => h.rs.find((e) => e.rs === `127.0.0.1:${bPort}` && !e.up), 'b down', 30_000, 10);
    // Order, not milliseconds: published after the kill, after `fall` (2) failed checks.
    assert.ok(down.t >= killedAt, 'b published down before it was killed');
    assert.deepEqual(streaks[0], { up: false, ok: 0, fail: 2 }, 'down after exactly fall = 2 failures');
    assert.match(down.reason, /check 0 \(tcp\) connect_refused/);
    assert.equal(down.inhibit, false);
    const q = h.quorum.at(-1)!;
    assert.equal(q.healthyWeight, 1);

    b = await tcpServer(undefined, '127.0.0.1', bPort);
    const upAgain = await waitFor(() => h.rs.find((e) => e.rs === `127.0.0.1:${bPort}` && e.up && e.t > down.t), 'b up', 30_000, 10);
    assert.match(upAgain.reason, /rise 2/);
    assert.deepEqual(streaks.map((s) => s.up), [false, true], 'one down, one up: no flapping');
    assert.deepEqual(streaks[1], { up: true, ok: 2, fail: 0 }, 'came back after exactly rise = 2 successful checks');

    const tr = h.logger.entries.find((e) => (e.obj as { to?: string; from?: string }).to === 'down' && (e.obj as { from?: string }).from === 'up');
    assert.ok(tr, 'a {from,to,reason} log entry');
    assert.deepEqual([(tr.obj as { from: string }).from, typeof (tr.obj as { reason: unknown }).reason], ['up', 'string']);

    const samples = parsePrometheus(await h.registry.metrics());
    // Labels join with the IPVS table metrics: the configured name, the service key, the real server.
    const vs = { virtual_server: 'web', service: 'tcp/192.0.2.10:80' };
    assert.equal(sampleValue(samples, 'lvsd_health_real_server_up', { ...vs, real_server: `127.0.0.1:${dead}` }), 0);
    assert.equal(sampleValue(samples, 'lvsd_health_real_server_up', { ...vs, real_server: `127.0.0.1:${a.port}` }), 1);
    assert.ok((sampleValue(samples, 'lvsd_health_check_failures_total', { kind: 'tcp', reason: 'connect_refused' }) ?? 0) >= 2);
    assert.equal(sampleValue(samples, 'lvsd_health_transitions_total', { ...vs, to: 'down' }), 1);
    assert.equal(sampleValue(samples, 'lvsd_health_transitions_total', { ...vs, to: 'up' }), 1);
    assert.equal(sampleValue(samples, 'lvsd_health_quorum_up', vs), 1);
    // The last check of each real server: its duration, and for the dead one the failure's reason and time.
    assert.ok((sampleValue(samples, 'lvsd_health_real_server_last_check_duration_seconds', { ...vs, real_server: `127.0.0.1:${a.port}` }) ?? -1) >= 0);
    const failedAt = sampleValue(samples, 'lvsd_health_real_server_last_failure_timestamp_seconds', { ...vs, real_server: `127.0.0.1:${dead}`, reason: 'connect_refused' });
    assert.ok(failedAt !== undefined && Math.abs(failedAt - Date.now() / 1000) < 60, `last failure time ${failedAt}`);
    assert.equal(sampleValue(samples, 'lvsd_health_real_server_last_failure_timestamp_seconds', { ...vs, real_server: `127.0.0.1:${a.port}`, reason: 'connect_refused' }), undefined, 'a healthy server has no failure series');
    assert.ok((sampleValue(samples, 'lvsd_health_check_duration_seconds_count', { kind: 'tcp' }) ?? 0) > 5);

    const st = sub.status();
    const deadSt = st.virtual_servers[0]!.real_servers[2]!;
    assert.equal(deadSt.up, false);
    assert.equal(deadSt.checks[0]!.last?.reason, 'connect_refused');

    // Checks keep running whatever the VRRP state (the backup must be ready at takeover).
    const before = sub.status().checks_run;
    h.bus.emit('vrrp.state', { instance: 'VI_1', from: 'MASTER', to: 'BACKUP', reason: 'test' });
    await waitFor(() => sub.status().checks_run > before + 3, 'checks after the VRRP state change', 30_000);
  } finally {
    await sub.stop();
    await a.close();
    await b.close();
  }
});

test('health subsystem: reload keeps unchanged servers\' state, adds/removes, quorum commands run', async () => {
  const a = await tcpServer();
  const dead = await closedPort();
  const dir = mkdtempSync(join(tmpdir(), 'lvsd-health-q-'));
  const h = harness();
  const yaml = (extra: string, quorum = 1) => `
virtual_servers:
  - address: 192.0.2.10
    port: 80
    interval: 0.1
    timeout: 0.3
    fall: 1
    rise: 1
    quorum: ${quorum}
    quorum_up: ["/bin/sh", "-c", "echo up >> ${dir}/q"]
    quorum_down: ["/bin/sh", "-c", "echo down >> ${dir}/q"]
    real_servers:
      - { address: 127.0.0.1, port: ${dead}, checks: [{ type: tcp }] }
${extra}`;
  const v1 = load(yaml(''));
  const sub = createHealthSubsystem(h.deps);
  try {
    await sub.start(v1);
    await waitFor(() => h.rs.find((e) => !e.up), 'dead server down', 30_000, 10);
    await waitFor(() => existsSync(join(dir, 'q')) && readFileSync(join(dir, 'q'), 'utf8') === 'down\n', 'quorum_down command ran', 30_000);

    // Add a healthy server: the dead one keeps its state (not reset to up), the new one is published up.
    const v2 = load(yaml(`      - { address: 127.0.0.1, port: ${a.port}, checks: [{ type: tcp }] }`));
    const n = h.rs.length;
    await sub.reload(v2, v1, diffConfig(v1, v2));
    const after = h.rs.slice(n);
    assert.deepEqual(after.slice(0, 2).map((e) => [e.rs, e.up]), [[`127.0.0.1:${dead}`, false], [`127.0.0.1:${a.port}`, true]]);
    await waitFor(() => readFileSync(join(dir, 'q'), 'utf8') === 'down\nup\n', 'quorum_up command ran', 30_000);
    // Checked (and failed) 3 more times since, counted rather than waited for with a fixed pause.
    const tcpCount = async (metric: string, suffix = '') => ((await h.registry.getSingleMetric(metric)!.get()).values as Array<{ metricName?: string; labels: Record<string, unknown>; value: number }>).filter((v) => v.labels.kind === 'tcp' && (v.metricName ?? metric) === metric + suffix).reduce((t, v) => t + v.value, 0);
    const failures = () => tcpCount('lvsd_health_check_failures_total');
    const f0 = await failures();
    await waitFor(async () => (await failures()) >= f0 + 3 || undefined, 'the dead server to be checked 3 more times', 30_000, 10);
    assert.ok(!h.rs.slice(n).some((e) => e.rs === `127.0.0.1:${dead}` && e.up), 'dead server never republished up');

    // Remove the dead server: its checks stop.
    const v3 = load(yaml('').replace(`port: ${dead}`, `port: ${a.port}`));
    await sub.reload(v3, v2, diffConfig(v2, v3));
    const st = sub.status();
    assert.deepEqual(st.virtual_servers[0]!.real_servers.map((r) => [r.key, r.up]), [[`127.0.0.1:${a.port}`, true]]);
    const failsBefore = JSON.stringify(await h.registry.getSingleMetricAsString('lvsd_health_check_failures_total'));
    // 4 checks of the remaining server completed (4 intervals): the removed one would have failed meanwhile.
    const checks = () => tcpCount('lvsd_health_check_duration_seconds', '_count');
    const c0 = await checks();
    await waitFor(async () => (await checks()) >= c0 + 4 || undefined, 'the remaining server to be checked 4 times', 30_000, 10);
    assert.equal(JSON.stringify(await h.registry.getSingleMetricAsString('lvsd_health_check_failures_total')), failsBefore, 'removed server still checked');

    // Remove the virtual server entirely.
    const v4 = load('virtual_servers: []');
    await sub.reload(v4, v3, diffConfig(v3, v4));
    assert.equal(sub.status().virtual_servers.length, 0);
    // A check in flight at the reload is aborted, and settles on its own turn (later on a loaded machine).
    await waitFor(() => sub.status().checks_in_flight + sub.status().checks_queued === 0, 'no checks left after removing the virtual server', 30_000, 10);
  } finally {
    await sub.stop();
    await a.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('health subsystem: inhibit_on_failure publishes weight 0 with inhibit; stop() ends all checks quickly', async () => {
  const dead = await closedPort();
  const h = harness();
  const cfg = load(`
virtual_servers:
  - address: 192.0.2.10
    port: 80
    interval: 0.1
    fall: 1
    inhibit_on_failure: true
    real_servers:
      - { address: 127.0.0.1, port: ${dead}, weight: 7, checks: [{ type: tcp }, { type: exec, command: ["/bin/sleep", "30"], timeout: 20 }] }
`);
  const sub = createHealthSubsystem(h.deps);
  await sub.start(cfg);
  const d = await waitFor(() => h.rs.find((e) => !e.up), 'inhibited', 30_000, 10);
  assert.deepEqual([d.weight, d.inhibit], [0, true]);
  const t0 = performance.now();
  await sub.stop();
  // Seconds-level: the exec check sleeps 30 s (timeout 20 s), so a stop that waited for it takes ≥ 20 s.
  assert.ok(performance.now() - t0 < 10_000, 'stop waited for a 30 s check');
});

test('health subsystem: start after stop checks again', async () => {
  const dead = await closedPort();
  const h = harness();
  const cfg = load(`
virtual_servers:
  - address: 192.0.2.10
    port: 80
    interval: 0.1
    fall: 1
    real_servers:
      - { address: 127.0.0.1, port: ${dead}, checks: [{ type: tcp }] }
`);
  const sub = createHealthSubsystem(h.deps);
  await sub.start(cfg);
  await waitFor(() => h.rs.find((e) => !e.up), 'down', 30_000, 10);
  await sub.stop();
  h.rs.length = 0;
  await sub.start(cfg);
  try {
    assert.equal(h.rs[0]?.up, true, 'initial state published again');
    await waitFor(() => h.rs.find((e) => !e.up), 'down after restart', 30_000, 10);
  } finally {
    await sub.stop();
  }
});
