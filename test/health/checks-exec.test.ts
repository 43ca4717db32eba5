import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ExecChecker } from '../../src/health/checks/exec.js';
import { waitFor } from '../support/proc.js';

// Generous default deadline (spawning a shell on a loaded machine); the timeout test passes its own.
const T = (timeoutMs = 10_000) => ({ address: '192.0.2.10', port: 80, timeoutMs });
const sh = (script: string, dynamic_weight = false) => new ExecChecker({ command: ['/bin/sh', '-c', script], dynamic_weight, env: { EXTRA: 'x' } });

test('exec: exit 0 up, exit 1 down; target passed in the environment', async () => {
  assert.equal((await sh('[ "$LVSD_RS_ADDRESS:$LVSD_RS_PORT:$EXTRA" = "192.0.2.10:80:x" ]').run(T())).ok, true);
  const r = await sh('exit 1').run(T());
  assert.equal(r.reason, 'exit_code');
  assert.equal(r.detail, 'exit 1');
});

test('exec: dynamic_weight: exit 7 → up with weight 5; exit 1 still down; without the flag exit 7 is down', async () => {
  const r = await sh('exit 7', true).run(T());
  assert.equal(r.ok, true);
  assert.equal(r.weight, 5);
  assert.equal((await sh('exit 1', true).run(T())).ok, false);
  assert.equal((await sh('exit 7').run(T())).reason, 'exit_code');
});

test('exec: a hanging script and its children are killed at the timeout', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lvsd-exec-'));
  try {
    const pidFile = join(dir, 'child.pid');
    const r = await sh(`sleep 600 & echo $! > ${pidFile}; wait`).run(T(300));
    assert.equal(r.reason, 'killed_timeout');
    assert.ok(r.durationMs < 20_000, `${r.durationMs}`); // seconds-level: the script waits for a 600 s sleep
    const child = Number(readFileSync(pidFile, 'utf8'));
    const alive = () => { try { return !readFileSync(`/proc/${child}/stat`, 'utf8').includes(') Z '); } catch { return false; } };
    await waitFor(() => !alive(), 'the background child killed', 30_000, 20).catch(() => undefined);
    const survived = alive();
    if (survived) process.kill(child, 'SIGKILL');
    assert.equal(survived, false, 'background child survived');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('exec: missing program → spawn_error, no throw', async () => {
  const r = await new ExecChecker({ command: ['/nonexistent/check'], dynamic_weight: false, env: {} }).run(T());
  assert.equal(r.reason, 'spawn_error');
});
