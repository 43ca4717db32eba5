/**
 * sync.key_file's mode (docs/sync.md, Keys): the owner's alone (600), or, owned by root, also its
 * group's to read (640 root:lvsd — the group is root's choice); anything more is a warning at
 * sync.key_file. The file's owner is set here (the suite runs as root in CI); without root the
 * owner cases that need chown are skipped.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { parseConfigText } from '../../src/config/load.js';

const root = process.getuid?.() === 0;

function warningsFor(mode: number, uid?: number): string[] {
  const dir = mkdtempSync(join(tmpdir(), 'lvsd-key-mode-'));
  try {
    const key = join(dir, 'sync.key');
    writeFileSync(key, `hex:${'cd'.repeat(32)}\n`);
    chmodSync(key, mode);
    if (uid !== undefined) chownSync(key, uid, 0);
    const yaml = `vrrp_instances:\n  - name: A\n    interface: eth0\n    virtual_router_id: 1\n    virtual_addresses: [192.0.2.1/24]\nsync:\n  interface: eth0\n  channel: lvsd\n  key_file: sync.key\n`;
    return parseConfigText(yaml, join(dir, 'lvsd.yaml'), { checkFiles: true, hostname: 'test' }).warnings.map((w) => `${w.path}: ${w.message}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('a key file only its owner may read loads without a warning', () => {
  assert.deepEqual(warningsFor(0o600), []);
  assert.deepEqual(warningsFor(0o400), []);
});

test('a key file others may read or write is a warning at sync.key_file', () => {
  for (const mode of [0o644, 0o604, 0o660, 0o620, 0o602]) {
    const w = warningsFor(mode);
    assert.equal(w.length, 1, mode.toString(8));
    assert.match(w[0]!, new RegExp(`^sync.key_file: sync key file .* \\(mode 0${mode.toString(8)}\\): chmod 600 `));
  }
});

test('owned by root, a key file its group may read (640 root:lvsd) loads without a warning', { skip: !root && 'needs root to own the file as root' }, () => {
  assert.deepEqual(warningsFor(0o640, 0), []);
  assert.deepEqual(warningsFor(0o440, 0), []);
  // Group write is still more than reading.
  assert.equal(warningsFor(0o660, 0).length, 1);
});

test('owned by another user, a key file its group may read is a warning', { skip: !root && 'needs root to chown' }, () => {
  const w = warningsFor(0o640, 1);
  assert.equal(w.length, 1);
  assert.match(w[0]!, /\(mode 0640\): chmod 600 .*\(owned by the user lvsd runs as\), or 640 owned by root with lvsd's group$/);
});
