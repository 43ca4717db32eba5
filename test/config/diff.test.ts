import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfigText } from '../../src/config/load.js';
import { diffConfig } from '../../src/config/diff.js';

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
