/**
 * `lvsd import keepalived`: exit status 0 complete, 3 partial, 1 unreadable or invalid input, 2 usage
 * error; -o writes the file, and what it writes passes `lvsd check-config`.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { lvsdBin, repoRoot } from '../support/proc.js';

const run = (...args: string[]) => spawnSync(lvsdBin, args, { encoding: 'utf8', timeout: 20000 });
const dir = mkdtempSync(join(tmpdir(), 'lvsd-import-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const fixture = (n: string) => join(repoRoot, 'test', 'fixtures', 'keepalived', n);

test('complete conversion: exit 0, YAML on stdout, -o writes a file check-config accepts', () => {
  const r = run('import', 'keepalived', fixture('dr-unicast-pair.conf'));
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^# COMPLETE/m);
  assert.match(r.stderr, /complete — every setting/);
  const out = join(dir, 'out.yaml');
  const w = run('import', 'keepalived', fixture('dr-unicast-pair.conf'), '-o', out, '--quiet');
  assert.equal(w.status, 0);
  assert.equal(w.stdout, '');
  assert.equal(w.stderr, '');
  assert.equal(readFileSync(out, 'utf8'), r.stdout);
  const chk = run('check-config', '-c', out, '--no-file-checks');
  assert.equal(chk.status, 0, chk.stderr);
});

test('partial conversion: exit 3, each setting not converted listed on stderr with file:line', () => {
  const r = run('import', 'keepalived', fixture('galera-group.conf'));
  assert.equal(r.status, 3, r.stderr);
  assert.match(r.stderr, /galera-group\.conf:56: not converted: .*SMTP_CHECK: lvsd has no SMTP check/);
  assert.match(r.stderr, /partial — 4 setting\(s\)/);
  assert.match(r.stdout, /# NOT CONVERTED galera-group\.conf:56:/);
});

test('conditional lines follow --config-id', () => {
  const a = run('import', 'keepalived', fixture('templated.conf'), '--config-id', 'lb1');
  const b = run('import', 'keepalived', fixture('templated.conf'), '--config-id', 'lb2');
  assert.equal(a.status, 0, a.stderr);
  assert.match(a.stdout, /router_id: lb1/);
  assert.match(a.stdout, /priority: 200/);
  assert.match(b.stdout, /router_id: lb2/);
  assert.match(b.stdout, /priority: 100/);
});

test('unreadable or invalid input: exit 1 with file:line:column', () => {
  const missing = run('import', 'keepalived', join(dir, 'nope.conf'));
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /nope\.conf: cannot read \(ENOENT\)/);
  const bad = join(dir, 'bad.conf');
  writeFileSync(bad, 'global_defs {\n  router_id x\n\nvrrp_instance VI_1 {\n}\n');
  const r = run('import', 'keepalived', bad);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /bad\.conf:1:1: block "global_defs" is not closed/);
  assert.equal(r.stdout, '');
  // Valid keepalived syntax whose content lvsd rejects as a whole (the same VRID twice on one interface).
  const dup = join(dir, 'dup.conf');
  writeFileSync(dup, 'vrrp_instance A {\n interface eth0\n virtual_router_id 5\n virtual_ipaddress { 192.0.2.1 }\n}\nvrrp_instance B {\n interface eth0\n virtual_router_id 5\n virtual_ipaddress { 192.0.2.2 }\n}\n');
  const d = run('import', 'keepalived', dup);
  assert.equal(d.status, 1);
  assert.match(d.stderr, /not valid/);
  assert.match(d.stderr, /virtual_router_id/);
});

test('usage errors: exit 2', () => {
  for (const args of [['import'], ['import', 'haproxy', 'x'], ['import', 'keepalived'], ['import', 'keepalived', 'a', 'b'], ['import', 'keepalived', 'a', '--bogus']]) {
    const r = run(...args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
  }
  const h = run('import', '--help');
  assert.equal(h.status, 0);
  assert.match(h.stdout, /Exit status: 0 every setting converted; 3/);
});
