import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfigText } from '../../src/config/load.js';
import { diffConfig } from '../../src/config/diff.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';

const base = `
vrrp_instances:
  - name: A
    interface: eth0
    virtual_router_id: 1
    virtual_addresses: [192.0.2.1/24]
  - name: B
    interface: eth0
    virtual_router_id: 2
    virtual_addresses: [192.0.2.2/24]
virtual_servers:
  - address: 192.0.2.1
    port: 80
    real_servers:
      - address: 192.0.2.11
      - address: 192.0.2.12
`;
const load = (s: string) => parseConfigText(s, 'x.yaml', { checkFiles: false, hostname: 'h' }).config;

test('diff names what changed by key', () => {
  const prev = load(base);
  const next = load(
    base
      .replace('virtual_router_id: 2', 'virtual_router_id: 3')
      .replace('      - address: 192.0.2.12\n', '      - address: 192.0.2.12\n        weight: 5\n') +
      `  - address: 192.0.2.2\n    port: 443\n`,
  );
  const d = diffConfig(prev, next);
  assert.equal(d.empty, false);
  assert.deepEqual(d.vrrp_instances, { added: [], removed: [], changed: ['B'] });
  assert.deepEqual(d.virtual_servers, { added: ['tcp/192.0.2.2:443'], removed: [], changed: ['tcp/192.0.2.1:80'] });
  assert.equal(d.global, false);
});

test('an identical file is an empty diff', () => {
  assert.equal(diffConfig(load(base), load(base)).empty, true);
});

test('the model is deeply frozen', () => {
  const c = load(base);
  assert.throws(() => {
    (c.virtual_servers[0]!.real_servers[0] as { weight: number }).weight = 9;
  }, TypeError);
});

test('a rotated sync key file is a change of sync although the YAML is the same; the key file is named absolutely, from the file\'s directory', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lvsd-keys-'));
  try {
    const keyFile = join(dir, 'sync.key');
    const yaml = `${base}sync:\n  interface: eth0\n  vrrp_instance: A\n  channel: lvsd\n  key_file: sync.key\n`;
    const loadIn = () => parseConfigText(yaml, join(dir, 'lvsd.yaml'), { checkFiles: true, hostname: 'h' }).config;
    writeFileSync(keyFile, `hex:${'11'.repeat(32)}\n`, { mode: 0o600 });
    const before = loadIn();
    assert.equal(before.sync?.key_file, keyFile);
    assert.equal(before.sync?.key_ids?.length, 1);
    assert.ok(diffConfig(before, loadIn()).empty, 'the same keys: nothing changed');
    // A rotation's first step: the new key as the second line.
    writeFileSync(keyFile, `hex:${'11'.repeat(32)}\nhex:${'22'.repeat(32)}\n`);
    const during = loadIn();
    assert.equal(during.sync?.key_ids?.length, 2);
    assert.equal(during.sync?.key_ids?.[0], before.sync?.key_ids?.[0], 'the first key still signs');
    const d = diffConfig(before, during);
    assert.equal(d.sync, true);
    assert.equal(d.empty, false);
    // Without the files read (a text checked for another machine), no key ids.
    assert.equal(load(yaml).sync?.key_ids, undefined);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
