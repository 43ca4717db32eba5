/**
 * Real kernel (UML lab): `lvsd ipvs apply` programs every example config exactly as expected,
 * `lvsd ipvs show` prints what `ipvsadm -Ln` prints, an edit produces only the needed operations,
 * foreign services survive, and the daemon's subsystem follows health and repairs hand-made drift.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lvsdBin, repoRoot } from '../support/proc.js';
import { parsePrometheus, sampleValue } from '../support/prom.js';
import { webYaml, cfgOf, ipvsHarness } from '../support/ipvs.js';
import { EXPECTED_TABLES } from '../ipvs/examples.js';

const ipvsadm = (...a: string[]) => execFileSync('ipvsadm', a, { encoding: 'utf8' });
const lvsd = (...a: string[]) => spawnSync(lvsdBin, a, { cwd: repoRoot, encoding: 'utf8' });
const body = (ln: string) => ln.split('\n').slice(3).join('\n');
const dir = mkdtempSync(join(tmpdir(), 'lvsd-ipvs-'));

before(() => {
  execFileSync('ip', ['link', 'set', 'lo', 'up']);
});

for (const [name, expected] of Object.entries(EXPECTED_TABLES)) {
  test(`examples/${name}.yaml: apply, then ipvsadm -Ln = lvsd ipvs show = expected; idempotent (checked on nat-pair)`, () => {
    ipvsadm('-C');
    const r = lvsd('ipvs', 'apply', '-c', `examples/${name}.yaml`);
    assert.equal(r.status, 0, r.stderr);
    const services = (expected.match(/^\S/gm) ?? []).length;
    const dests = (expected.match(/^ {2}->/gm) ?? []).length;
    assert.equal(r.stdout.split('\n').filter(Boolean).length, services + dests, r.stdout);
    const kernel = ipvsadm('-Ln');
    const ours = lvsd('ipvs', 'show');
    assert.equal(ours.status, 0, ours.stderr);
    assert.equal(ours.stdout, kernel);
    assert.equal(body(kernel), expected);
    if (name === 'nat-pair') {
      // CLI start-up is slow in the guest: the idempotence check runs for one example only.
      const again = lvsd('ipvs', 'apply', '-c', `examples/${name}.yaml`);
      assert.equal(again.status, 0);
      assert.equal(again.stdout, '');
    }
  });
}

test('a config edit applies only the needed operations, in place; foreign services survive unless exclusive', () => {
  ipvsadm('-C');
  ipvsadm('-A', '-t', '203.0.113.50:22', '-s', 'rr');
  ipvsadm('-a', '-t', '203.0.113.50:22', '-r', '203.0.113.51:22', '-g');
  assert.equal(lvsd('ipvs', 'apply', '-c', 'examples/nat-pair.yaml').status, 0);
  const edited = readFileSync(join(repoRoot, 'examples', 'nat-pair.yaml'), 'utf8')
    .replace('scheduler: wrr', 'scheduler: wlc')
    .replace(/(- address: 198\.51\.100\.12\n\s+port: 3128\n\s+weight:) 2/, '$1 5')
    .replace('- address: 198.51.100.13', '- address: 198.51.100.14');
  const file = join(dir, 'nat-edit.yaml');
  writeFileSync(file, edited);
  const dry = lvsd('ipvs', 'apply', '-c', file, '--dry-run');
  assert.equal(dry.status, 0, dry.stderr);
  const expectedOps = [
    'set-service tcp/192.0.2.100:8080 scheduler=wlc flags=0x1 timeout=300',
    'add-dest tcp/192.0.2.100:8080 198.51.100.14:3128 fwd=nat weight=2',
    'set-dest tcp/192.0.2.100:8080 198.51.100.12:3128 fwd=nat weight=5',
    'del-dest tcp/192.0.2.100:8080 198.51.100.13:3128',
  ];
  assert.deepEqual(dry.stdout.trim().split('\n'), expectedOps);
  assert.match(ipvsadm('-Ln'), /198\.51\.100\.13:3128/, 'dry run changed nothing');
  const r = lvsd('ipvs', 'apply', '-c', file);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(r.stdout.trim().split('\n'), expectedOps);
  const after = ipvsadm('-Ln');
  assert.match(after, /TCP {2}192\.0\.2\.100:8080 wlc persistent 300/);
  assert.match(after, /198\.51\.100\.12:3128 +Masq +5 /);
  assert.doesNotMatch(after, /198\.51\.100\.13/);
  assert.match(after, /TCP {2}203\.0\.113\.50:22 rr/, 'a service lvsd does not declare is left alone');
  const ex = lvsd('ipvs', 'apply', '-c', file, '--exclusive');
  assert.equal(ex.stdout, 'del-service tcp/203.0.113.50:22\n');
  assert.doesNotMatch(ipvsadm('-Ln'), /203\.0\.113\.50/);
});

test('lvsd ipvs show --json carries the table with counters', () => {
  ipvsadm('-C');
  assert.equal(lvsd('ipvs', 'apply', '-c', 'examples/dr-cluster.yaml').status, 0);
  const j = JSON.parse(lvsd('ipvs', 'show', '--json').stdout) as { info: { version: number }; services: Array<{ scheduler: string; dests: Array<{ u_threshold: number; stats?: { conns: number } }> }> };
  assert.equal(j.info.version, 0x010201);
  assert.equal(j.services.length, 2);
  const web = j.services.find((s) => s.scheduler === 'wlc')!;
  assert.equal(web.dests.find((d) => d.u_threshold === 5000)?.stats?.conns, 0);
});

test('the daemon subsystem on the kernel: health changes and a hand-made drift (ipvsadm -d / -e) are repaired and counted', async () => {
  ipvsadm('-C');
  const { sub, clock, bus, registry } = ipvsHarness();
  await sub.start(cfgOf(webYaml({ routerId: 'lab', driftCheckInterval: 3 }), 'lab.yaml'));
  try {
    assert.equal(sub.status().available, true);
    const line = (a: string) => ipvsadm('-Ln').split('\n').find((l) => l.includes(a));
    assert.match(line('198.51.100.2:80') ?? '', /Masq +2 /);
    bus.emit('health.rs', { vs: 'web', rs: '198.51.100.1:80', up: false, weight: 1, inhibit: true, reason: 'lab' });
    bus.emit('health.rs', { vs: 'web', rs: '198.51.100.2:80', up: true, weight: 7, inhibit: false, reason: 'lab' });
    await sub.settle();
    assert.match(line('198.51.100.1:80') ?? '', /Masq +0 /);
    assert.match(line('198.51.100.2:80') ?? '', /Masq +7 /);
    // Someone edits the table by hand.
    ipvsadm('-d', '-t', '192.0.2.10:80', '-r', '198.51.100.1:80');
    ipvsadm('-e', '-t', '192.0.2.10:80', '-r', '198.51.100.2:80', '-m', '-w', '9');
    ipvsadm('-E', '-t', '192.0.2.10:80', '-s', 'rr');
    clock.advance(3000);
    await new Promise((r) => setImmediate(r));
    await sub.settle();
    assert.equal(sub.status().drift_repairs, 3);
    assert.equal(sampleValue(parsePrometheus(await registry.metrics()), 'lvsd_ipvs_drift_repairs_total'), 3);
    assert.match(ipvsadm('-Ln'), /TCP {2}192\.0\.2\.10:80 wrr\n {2}-> 198\.51\.100\.1:80 +Masq +0 .*\n {2}-> 198\.51\.100\.2:80 +Masq +7 /);
    // Nothing left to repair.
    clock.advance(3000);
    await new Promise((r) => setImmediate(r));
    await sub.settle();
    assert.equal(sub.status().drift_repairs, 3);
  } finally {
    await sub.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
