import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfigFile } from '../../src/config/load.js';
import { desiredFromConfig, type RsHealth } from '../../src/ipvs/desired.js';
import { formatIpvsadmList } from '../../src/ipvs/format.js';
import { SVC_F_PERSISTENT, SVC_F_SCHED2, SVC_F_ONEPACKET } from '../../src/ipvs/model.js';
import { repoRoot } from '../support/proc.js';
import { EXPECTED_TABLES } from './examples.js';

const HEADER = 'IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n';
const load = (name: string) => loadConfigFile(join(repoRoot, 'examples', `${name}.yaml`), { checkFiles: false }).config;

test('every example config has an expected table', () => {
  const names = readdirSync(join(repoRoot, 'examples')).filter((f) => f.endsWith('.yaml')).map((f) => f.replace(/\.yaml$/, ''));
  assert.ok(names.length >= 4);
  for (const n of names) assert.ok(n in EXPECTED_TABLES, `no expected table for examples/${n}.yaml`);
});

for (const [name, expected] of Object.entries(EXPECTED_TABLES)) {
  test(`examples/${name}.yaml maps to the expected IPVS table (all real servers healthy)`, () => {
    const table = desiredFromConfig(load(name));
    assert.equal(formatIpvsadmList({ version: 0x010201, connTabSize: 4096 }, table), HEADER + expected);
  });
}

test('service attributes: persistence, scheduler flags, one-packet, thresholds, tunnel', () => {
  const nat = desiredFromConfig(load('nat-pair'))[0]!;
  assert.equal(nat.service.flags, SVC_F_PERSISTENT);
  assert.equal(nat.service.timeout, 300);
  assert.equal(nat.service.netmask, 0xffffffff);
  const dr = desiredFromConfig(load('dr-cluster'));
  assert.equal(dr[1]!.service.flags, SVC_F_SCHED2 | SVC_F_ONEPACKET);
  assert.equal(dr[0]!.dests[0]!.u_threshold, 5000);
  assert.equal(dr[0]!.dests[0]!.l_threshold, 4000);
  const tun = desiredFromConfig(load('tun-cluster'))[0]!;
  assert.ok(tun.dests.every((d) => d.fwd === 'tun' && d.tun_type === 'ipip'));
});

test('health: down removes, inhibit keeps at weight 0, published weight is used, sorry server when none is up', () => {
  const cfg = load('nat-pair');
  const vs = cfg.virtual_servers[0]!;
  const h = new Map<string, RsHealth>([
    ['198.51.100.11:3128', { up: false, weight: 1, inhibit: false }],
    ['198.51.100.12:3128', { up: false, weight: 2, inhibit: true }],
    ['198.51.100.13:3128', { up: true, weight: 7, inhibit: false }],
  ]);
  const view = (v: string, rs: string) => (v === vs.key ? h.get(rs) : undefined);
  let e = desiredFromConfig(cfg, view)[0]!;
  assert.deepEqual(e.dests.map((d) => `${d.addr}:${d.port}=${d.weight}`), ['198.51.100.12:3128=0', '198.51.100.13:3128=7']);
  h.set('198.51.100.13:3128', { up: false, weight: 2, inhibit: false });
  e = desiredFromConfig(cfg, view)[0]!;
  assert.deepEqual(e.dests.map((d) => `${d.addr}:${d.port}=${d.weight}`), ['198.51.100.12:3128=0', '198.51.100.99:8080=1']);
  assert.equal(e.dests[1]!.fwd, 'nat');
});
