/**
 * Notify scripts: keepalived's arguments, serialised per instance, never blocking the loop, killed
 * after their timeout. Real processes (sh, sleep).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { Notifier, notifyJobs, type NotifyResult } from '../../src/election/notify.js';
import { silentLogger } from '../../src/core/log.js';

test('notifyJobs: state script as written, then `any` with INSTANCE NAME STATE PRIORITY', () => {
  const jobs = notifyJobs({ master: ['/bin/m', 'x'], any: ['/bin/n'], timeout: 5 }, 'INSTANCE', 'VI_1', 'MASTER', 150);
  assert.deepEqual(jobs, [
    { argv: ['/bin/m', 'x'], timeoutMs: 5000 },
    { argv: ['/bin/n', 'INSTANCE', 'VI_1', 'MASTER', '150'], timeoutMs: 5000 },
  ]);
  assert.deepEqual(notifyJobs({ master: ['/bin/m'], timeout: 5 }, 'GROUP', 'G', 'BACKUP', 0), []);
  assert.deepEqual(notifyJobs(undefined, 'INSTANCE', 'VI_1', 'FAULT', 1), []);
});

test('scripts run in order per instance, without blocking, and are killed after the timeout', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lvsd-notify-'));
  try {
    const log = join(dir, 'log');
    const done: NotifyResult[] = [];
    const n = new Notifier(silentLogger, (_k, r) => done.push(r));
    n.enqueue('instance:VI_1', [
      { argv: ['sh', '-c', `sleep 0.3; echo first >> ${log}`], timeoutMs: 5000 },
      { argv: ['sh', '-c', `echo second >> ${log}`], timeoutMs: 5000 },
    ]);
    n.enqueue('instance:VI_2', [{ argv: ['sleep', '10'], timeoutMs: 200 }]);
    // Returns before any script ran to the end (order, not a clock): nothing reported, nothing written.
    assert.equal(done.length, 0, 'enqueue returns at once');
    assert.equal(existsSync(log), false, 'enqueue returns at once');
    await n.drain(5000);
    assert.deepEqual(readFileSync(log, 'utf8').trim().split('\n'), ['first', 'second']);
    const killed = done.find((r) => r.argv[0] === 'sleep')!;
    assert.equal(killed.timedOut, true);
    assert.equal(killed.signal, 'SIGTERM');
    // A missing program is a failed result, not a crash.
    n.enqueue('instance:VI_3', [{ argv: ['/nonexistent/lvsd-notify'], timeoutMs: 1000 }]);
    await n.drain(2000);
    assert.ok(done.at(-1)!.error);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
