/**
 * The real daemon as a process: /metrics over HTTP parsed like a scraper, SIGHUP with a broken file
 * (rejected, counted, still serving), SIGHUP with a valid change, the per-director lock, `lvsd status`,
 * and a bounded clean stop on SIGTERM.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync, existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { spawnSync } from 'node:child_process';
import { parsePrometheus, sampleValue } from '../support/prom.js';
import { start, waitFor, httpGet, lvsdBin } from '../support/proc.js';

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

function config(dir: string, port: number, extra = ''): string {
  return `# test config
global:
  router_id: test-director
  state_dir: ${dir}/state
  log_level: info
  api:
    listen: 127.0.0.1:${port}
${extra}`;
}

test('daemon serves metrics, survives a broken reload, applies a valid one, stops cleanly', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lvsd-daemon-'));
  const port = await freePort();
  const file = join(dir, 'lvsd.yaml');
  writeFileSync(file, config(dir, port));
  const d = start(lvsdBin, ['run', '-c', file]);
  t.after(() => {
    if (d.child.exitCode === null) d.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  const base = `http://127.0.0.1:${port}`;

  const m0 = await waitFor(async () => {
    const r = await httpGet(`${base}/metrics`);
    return r.status === 200 ? r : undefined;
  }, 'the daemon to serve /metrics', 60_000, 200);
  assert.match(m0.type, /text\/plain/);
  let samples = parsePrometheus(m0.body);
  assert.equal(sampleValue(samples, 'lvsd_build_info'), 1);
  assert.equal(sampleValue(samples, 'lvsd_config_reloads_total', { result: 'failure' }), 0);
  assert.ok(sampleValue(samples, 'process_cpu_user_seconds_total') !== undefined, 'process metrics are exported');
  const loadedAt = sampleValue(samples, 'lvsd_config_last_reload_success_timestamp_seconds')!;
  assert.ok(Math.abs(loadedAt - Date.now() / 1000) < 60);

  const h = await httpGet(`${base}/healthz`);
  assert.equal(h.status, 200);
  const st = JSON.parse((await httpGet(`${base}/status`)).body) as { router_id: string; lvsd: { phase: string } };
  assert.equal(st.router_id, 'test-director');
  assert.equal(st.lvsd.phase, 'running');

  // A second daemon with the same config is refused by the lock.
  const second = spawnSync(lvsdBin, ['run', '-c', file], { encoding: 'utf8', timeout: 15000 });
  assert.equal(second.status, 75, second.stderr);
  assert.match(second.stderr, /already running/);

  // Broken file + SIGHUP: rejected, counted, and the running config keeps serving.
  writeFileSync(file, config(dir, port, 'virtual_servers:\n  - address: 192.0.2.1\n    port: 80\n    weigth: 3\n'));
  d.child.kill('SIGHUP');
  const afterBad = await waitFor(async () => {
    const s = parsePrometheus((await httpGet(`${base}/metrics`)).body);
    return sampleValue(s, 'lvsd_config_reloads_total', { result: 'failure' }) === 1 ? s : undefined;
  }, 'the failed reload to be counted', 60_000, 200);
  assert.equal(sampleValue(afterBad, 'lvsd_config_reloads_total', { result: 'success' }), 0);
  assert.equal(sampleValue(afterBad, 'lvsd_config_last_reload_success_timestamp_seconds'), loadedAt, 'a failed reload does not move the success timestamp');
  const st2 = JSON.parse((await httpGet(`${base}/status`)).body) as { router_id: string; last_reload: { result: string; errors: string[] } };
  assert.equal(st2.router_id, 'test-director');
  assert.equal(st2.last_reload.result, 'failure');
  assert.match(st2.last_reload.errors[0]!, /lvsd\.yaml:11:5: error: virtual_servers\[0\]\.weigth: unknown key "weigth"/);
  assert.match(d.output(), /reload rejected/);

  // `lvsd status` (for people) reads the same endpoint; the broken file still names the port.
  const s = spawnSync(lvsdBin, ['status', '-c', file], { encoding: 'utf8', timeout: 15000 });
  assert.equal(s.status, 0, s.stderr);
  assert.match(s.stdout, /router test-director/);
  assert.match(s.stdout, /last reload: failure \d+s ago/);

  // A valid change is applied.
  writeFileSync(file, config(dir, port).replace('router_id: test-director', 'router_id: renamed'));
  d.child.kill('SIGHUP');
  await waitFor(async () => {
    const s2 = parsePrometheus((await httpGet(`${base}/metrics`)).body);
    return sampleValue(s2, 'lvsd_config_reloads_total', { result: 'success' }) === 1 ? true : undefined;
  }, 'the valid reload', 60_000, 200);
  const st3 = JSON.parse((await httpGet(`${base}/status`)).body) as { router_id: string };
  assert.equal(st3.router_id, 'renamed');

  // SIGTERM: clean stop, bounded, lock file removed.
  const t0 = Date.now();
  d.child.kill('SIGTERM');
  const ex = await d.exited;
  assert.equal(ex.code, 0, d.output());
  assert.ok(Date.now() - t0 < 6000, 'stops within shutdown_timeout');
  assert.deepEqual(readdirSync(join(dir, 'state')), [], 'lock file removed');
});

test('daemon refuses to start on an invalid config with file:line:column', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lvsd-daemon-'));
  try {
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'global:\n  api:\n    listen: nowhere\n');
    const r = spawnSync(lvsdBin, ['run', '-c', file, '--state-dir', join(dir, 'st')], { encoding: 'utf8', timeout: 15000 });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /bad\.yaml:3:13: error: global\.api\.listen: expected ADDRESS:PORT/);
    assert.ok(!existsSync(join(dir, 'st')) || readdirSync(join(dir, 'st')).length === 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the lock of a daemon killed with SIGKILL is free at once (the kernel released it)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lvsd-daemon-'));
  const port = await freePort();
  const file = join(dir, 'lvsd.yaml');
  writeFileSync(file, config(dir, port));
  const first = start(lvsdBin, ['run', '-c', file]);
  let second: ReturnType<typeof start> | undefined;
  // Cleanup registered before any wait: a wait that fails must not leave a daemon running.
  t.after(() => {
    for (const d of [first, second]) if (d && d.child.exitCode === null && d.child.signalCode === null) d.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  // Generous, bounded waits: a daemon start on a loaded 2-core machine can take many seconds.
  await waitFor(async () => ((await httpGet(`http://127.0.0.1:${port}/healthz`)).status === 200 ? true : undefined), 'first daemon', 60_000, 200);
  first.child.kill('SIGKILL');
  await first.exited;
  assert.equal(readdirSync(join(dir, 'state')).length, 1, 'SIGKILL leaves the lock file (unlocked)');
  second = start(lvsdBin, ['run', '-c', file]);
  await waitFor(async () => ((await httpGet(`http://127.0.0.1:${port}/healthz`)).status === 200 ? true : undefined), 'second daemon', 60_000, 200);
  second.child.kill('SIGINT');
  assert.equal((await second.exited).code, 0);
});

test('lvsd status says clearly when no daemon answers', () => {
  const r = spawnSync(lvsdBin, ['status', '--api', '127.0.0.1:1'], { encoding: 'utf8', timeout: 15000 });
  assert.equal(r.status, 3);
  assert.match(r.stderr, /no lvsd answering on 127\.0\.0\.1:1/);
});

test('global.nice sets the daemon process priority', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lvsd-daemon-'));
  const port = await freePort();
  const file = join(dir, 'lvsd.yaml');
  writeFileSync(file, config(dir, port).replace('  log_level: info\n', '  log_level: info\n  nice: 7\n'));
  const d = start(lvsdBin, ['run', '-c', file]);
  t.after(() => {
    if (d.child.exitCode === null) d.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  await waitFor(async () => ((await httpGet(`http://127.0.0.1:${port}/healthz`)).status === 200 ? true : undefined), 'daemon', 60_000, 200);
  const { readFileSync } = await import('node:fs');
  // /proc/PID/stat field 19 is the nice value (proc(5)); fields after the ")" start at 3.
  const stat = readFileSync(`/proc/${d.child.pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  assert.equal(Number(fields[19 - 3]), 7);
  d.child.kill('SIGTERM');
  assert.equal((await d.exited).code, 0);
});
