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

test('check-config --source shows the offending line with a caret under the column', async () => {
  const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { tmpdir } = await import('node:os');
  const dir = mkdtempSync(join(tmpdir(), 'lvsd-cli-'));
  try {
    const f = join(dir, 'c.yaml');
    writeFileSync(f, 'virtual_servers:\n  - address: 192.0.2.1\n    port: 80\n    schedular: rr\n');
    const r = run('check-config', '-c', f, '--source');
    assert.equal(r.status, 1);
    assert.equal(r.stderr, `${f}:4:5: error: virtual_servers[0].schedular: unknown key "schedular"; did you mean "scheduler"?\n4 |     schedular: rr\n  |     ^\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
