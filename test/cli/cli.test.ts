import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { lvsdBin } from '../support/proc.js';

const run = (...args: string[]) => spawnSync(lvsdBin, args, { encoding: 'utf8', timeout: 20000 });

test('--version and --help', () => {
  const v = run('--version');
  assert.equal(v.status, 0);
  assert.match(v.stdout, /^lvsd \d+\.\d+\.\d+\n$/);
  const h = run('--help');
  assert.equal(h.status, 0);
  for (const c of ['check-config', 'run', 'status', 'ipvs', 'lab', 'demo']) assert.match(h.stdout, new RegExp(`\\n  ${c} `));
});

test('every command has --help', () => {
  for (const c of ['check-config', 'run', 'status', 'ipvs', 'lab', 'demo']) {
    const r = run(c, '--help');
    assert.equal(r.status, 0, `${c} --help: ${r.stderr}`);
    assert.match(r.stdout, new RegExp(`Usage: lvsd ${c}`));
  }
});

test('unknown command and bad usage exit 2', () => {
  const r = run('frobnicate');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /unknown command "frobnicate"/);
  const r2 = run('check-config', 'stray-arg');
  assert.equal(r2.status, 2);
});
