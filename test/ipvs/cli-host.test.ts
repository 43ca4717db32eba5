/** `lvsd ipvs` on this host, whose kernel has no IPVS: a clear message and exit 69, never a stack trace. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { lvsdBin, repoRoot } from '../support/proc.js';

const run = (...args: string[]) => spawnSync(lvsdBin, args, { cwd: repoRoot, encoding: 'utf8' });

test('lvsd ipvs show without IPVS in the kernel: exit 69 with the reason', () => {
  const r = run('ipvs', 'show');
  assert.equal(r.status, 69, r.stderr);
  assert.equal(r.stderr, 'lvsd ipvs: IPVS is not available in this kernel (load ip_vs)\n');
});

test('lvsd ipvs apply: invalid config exits 1 with positioned diagnostics; usage errors exit 2', () => {
  const bad = run('ipvs', 'apply', '-c', join(repoRoot, 'package.json'));
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /package\.json:\d+:\d+: error/);
  assert.equal(run('ipvs').status, 2);
  assert.equal(run('ipvs', 'frobnicate').status, 2);
  const help = run('ipvs', '--help');
  assert.equal(help.status, 0);
  assert.match(help.stdout, /lvsd ipvs apply -c FILE \[--dry-run\]/);
});
