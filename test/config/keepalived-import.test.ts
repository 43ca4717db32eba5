/**
 * keepalived.conf → lvsd: every sample configuration keepalived ships (Debian's keepalived package,
 * read from /usr/share/doc/keepalived/samples at test time) converts, complete or with what is not
 * converted listed at the right file:line, and the result passes check-config. Hand-written
 * configurations modelled on real-world ones (test/fixtures/keepalived) convert to their reviewed
 * output (*.lvsd.yaml; LVSD_UPDATE_GOLDEN=1 rewrites them), and the mapping of keepalived's
 * defaults and references is checked on small inline files.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import yaml from 'js-yaml';
import { convertKeepalived, nodeFiles, type Conversion } from '../../src/config/keepalived/index.js';
import { parseConfigText } from '../../src/config/load.js';
import { repoRoot } from '../support/proc.js';
import { memFiles } from '../support/memfiles.js';

const SAMPLES = '/usr/share/doc/keepalived/samples';
const FIXTURES = join(repoRoot, 'test', 'fixtures', 'keepalived');

/** The converted YAML is valid lvsd configuration (scripts are not checked: they live on the director). */
function assertValid(c: Conversion, name: string) {
  parseConfigText(c.yaml, `${name}.lvsd.yaml`, { checkFiles: false, hostname: 'test' });
  // What the YAML says is what the converter built (the emitter loses nothing).
  assert.deepEqual(yaml.load(c.yaml) ?? {}, JSON.parse(JSON.stringify(c.config)), `${name}: YAML and model differ`);
}

/** Each item points at a line of its file holding the statement it names, and the YAML marks it. */
function assertItemsPlaced(c: Conversion, name: string) {
  for (const i of c.items.filter((x) => x.kind === 'unsupported')) {
    assert.ok(c.files.includes(i.file), `${name}: ${i.file} is one of the files read`);
    const text = readFileSync(i.file, 'utf8').split('\n')[i.line - 1] ?? '';
    const last = i.what.split(' > ').at(-1)!.split(' ')[0]!;
    assert.ok(text.includes(last), `${name}: line ${i.line} ("${text.trim()}") holds "${last}" (${i.what})`);
    assert.ok(c.yaml.includes(`:${i.line}: ${i.what}`), `${name}: the YAML lists ${i.what}`);
  }
  assert.match(c.yaml, c.complete ? /^# COMPLETE/m : /^# PARTIAL: \d+ keepalived setting/m);
}

const samples = existsSync(SAMPLES) ? readdirSync(SAMPLES).filter((n) => n.startsWith('keepalived.conf')).sort() : [];
test('every keepalived sample converts and passes check-config', { skip: samples.length === 0 && `no ${SAMPLES} (Debian package keepalived)` }, (t) => {
  const summary: string[] = [];
  for (const n of samples) {
    const c = convertKeepalived(join(SAMPLES, n), nodeFiles, { configId: 'lvsd-test' });
    assertValid(c, n);
    assertItemsPlaced(c, n);
    const count = c.items.filter((i) => i.kind === 'unsupported').length;
    summary.push(`${n}: ${c.complete ? 'complete' : `partial (${count} not converted)`}`);
  }
  const complete = summary.filter((s) => s.endsWith('complete')).length;
  t.diagnostic(`${samples.length} samples: ${complete} complete, ${samples.length - complete} partial`);
  for (const s of summary) t.diagnostic(s);
  assert.ok(samples.length >= 20, `keepalived ships ${samples.length} samples`);
});

function fixtures(): string[] {
  const top = readdirSync(FIXTURES).filter((n) => n.endsWith('.conf')).map((n) => join(FIXTURES, n));
  return [...top, join(FIXTURES, 'include-tree', 'keepalived.conf')].sort();
}
const configIdOf = (file: string) => /^# config-id: (\S+)/m.exec(readFileSync(file, 'utf8'))?.[1] ?? 'lvsd-test';

for (const f of fixtures()) {
  const name = f.slice(FIXTURES.length + 1);
  test(`fixture ${name} converts to its reviewed lvsd configuration`, () => {
    const c = convertKeepalived(f, nodeFiles, { configId: configIdOf(f) });
    assertValid(c, name);
    assertItemsPlaced(c, name);
    const golden = f.replace(/\.conf$/, '.lvsd.yaml');
    if (process.env.LVSD_UPDATE_GOLDEN === '1') writeFileSync(golden, c.yaml);
    assert.equal(c.yaml, readFileSync(golden, 'utf8'));
  });
}

const convert = (text: string, extra: Record<string, string> = {}, configId = 'x') => convertKeepalived('/k/keepalived.conf', memFiles({ '/k/keepalived.conf': text, ...extra }), { configId });
const vs = (c: Conversion, i = 0) => (c.config.virtual_servers as Record<string, unknown>[])[i]!;
const rs = (c: Conversion, i = 0, j = 0) => (vs(c, i).real_servers as Record<string, unknown>[])[j]!;

test("keepalived's per-checker defaults land on the real server where lvsd's differ", () => {
  const c = convert(`
virtual_server 192.0.2.1 80 {
  real_server 192.0.2.11 80 { HTTP_GET { url { path /h } } }
  real_server 192.0.2.12 80 { MISC_CHECK { misc_path /bin/true } }
  real_server 192.0.2.13 80 { DNS_CHECK { } }
  real_server 192.0.2.14 80 { retry 4
    TCP_CHECK { delay_before_retry 0.5 } }
}
virtual_server 192.0.2.2 80 { retry 2
  delay_before_retry 3
  real_server 192.0.2.21 80 { HTTP_GET { url { path / } } } }
`);
  assert.equal(rs(c, 0, 0).retry_delay, 3, 'HTTP_GET delay_before_retry defaults to 3');
  assert.equal(rs(c, 0, 1).fall, 1, 'MISC_CHECK retry defaults to 0');
  assert.deepEqual([rs(c, 0, 2).fall, rs(c, 0, 2).retry_delay], [4, 60], 'DNS_CHECK: retry 3, delay_before_retry = delay_loop');
  assert.deepEqual([rs(c, 0, 3).fall, rs(c, 0, 3).retry_delay], [5, 0.5], 'real server and checker settings');
  assert.deepEqual([vs(c, 1).fall, vs(c, 1).retry_delay, rs(c, 1, 0).fall, rs(c, 1, 0).retry_delay], [3, 3, undefined, undefined], 'virtual server settings inherited as in keepalived');
  assert.ok(c.complete);
});

test('persistence, IPv6 instances, duplicate addresses, dangling references, authentication', () => {
  const c = convert(`
vrrp_script s1 { script /bin/true }
vrrp_instance V6 { interface eth0
  virtual_router_id 9
  virtual_ipaddress { 2001:db8::1/64
    2001:db8::1/64 label x }
  track_script { s1
    missing }
  authentication { auth_type PASS
    auth_pass x }
}
vrrp_sync_group G { group { V6
  nope } }
virtual_server 192.0.2.1 0 { persistence_timeout
  lb_kind TUN type gue port 6080 csum }
`);
  const inst = (c.config.vrrp_instances as Record<string, unknown>[])[0]!;
  assert.equal(inst.version, 3);
  assert.deepEqual(inst.virtual_addresses, ['2001:db8::1/64']);
  assert.deepEqual(inst.track_scripts, ['s1']);
  assert.deepEqual((c.config.vrrp_sync_groups as Record<string, unknown>[])[0]!.members, ['V6']);
  assert.deepEqual(vs(c).persistence, { timeout: 360 });
  assert.deepEqual([vs(c).forwarding, vs(c).tunnel], ['tun', { type: 'gue', port: 6080, checksum: 'csum' }]);
  const what = c.items.filter((i) => i.kind === 'unsupported').map((i) => `${i.line} ${i.what}`);
  assert.deepEqual(what, [
    '6 vrrp_instance V6 > virtual_ipaddress > 2001:db8::1/64 label x',
    '8 vrrp_instance V6 > track_script > missing',
    '13 vrrp_sync_group G > group > nope',
  ]);
  // keepalived ignores authentication on a VRRPv3 instance: a note, and left out.
  assert.equal(inst.authentication, undefined);
  assert.ok(c.items.some((i) => i.kind === 'note' && i.line === 9 && /VRRPv3 has no authentication/.test(i.message)));
  parseConfigText(c.yaml, 'x.yaml', { checkFiles: false, hostname: 'test' });
});

test('VRRPv2 authentication: PASS and AH convert (first 8 characters, as keepalived); another type or no auth_pass is listed', () => {
  const inst = (text: string) => {
    const c = convert(`vrrp_instance V { interface eth0\n virtual_router_id 9\n virtual_ipaddress { 192.0.2.5 }\n authentication { ${text} }\n}\n`);
    parseConfigText(c.yaml, 'x.yaml', { checkFiles: false, hostname: 'test' });
    return { inst: (c.config.vrrp_instances as Record<string, unknown>[])[0]!, items: c.items.map((i) => `${i.kind} ${i.message}`) };
  };
  assert.deepEqual(inst('auth_type PASS\n auth_pass s3cret').inst.authentication, { type: 'PASS', password: 's3cret' });
  const long = inst('auth_type PASS\n auth_pass 0123456789');
  assert.deepEqual(long.inst.authentication, { type: 'PASS', password: '01234567' });
  assert.ok(long.items.some((i) => /^note auth_pass is longer than 8/.test(i)), long.items.join('\n'));
  assert.deepEqual(inst('auth_type ah\n auth_pass x').inst.authentication, { type: 'AH', password: 'x' });
  assert.deepEqual(inst('auth_type AH\n auth_pass 0123456789').inst.authentication, { type: 'AH', password: '01234567' });
  for (const bad of ['auth_type AH', 'auth_type MD5\n auth_pass x']) {
    const b = inst(bad);
    assert.equal(b.inst.authentication, undefined);
    assert.ok(b.items.some((i) => /^unsupported needs auth_type PASS or AH and an auth_pass/.test(i)), b.items.join('\n'));
  }
});

test('conditional configuration picks the director: one file, two converted configurations', () => {
  const text = '$P=50\n@a $P=150\nvrrp_instance VI_1 {\n interface eth0\n virtual_router_id 1\n priority $P\n virtual_ipaddress { 192.0.2.5 }\n}\n';
  const prio = (id: string) => (convert(text, {}, id).config.vrrp_instances as Record<string, unknown>[])[0]!.priority;
  assert.deepEqual([prio('a'), prio('b')], [150, 50]);
});

test('DR/TUN real servers keep the service port (checks still probe the one keepalived probed); a repeated real server is listed', () => {
  const c = convert(`
virtual_server 192.0.2.1 80 { lb_kind DR
  real_server 192.0.2.11 8080 { TCP_CHECK { } }
  real_server 192.0.2.12 8080 { TCP_CHECK { connect_port 81 } }
  real_server 192.0.2.12 8080 { TCP_CHECK { } } }
`);
  assert.deepEqual(vs(c).real_servers, [
    { address: '192.0.2.11', checks: [{ type: 'tcp', connect_port: 8080 }] },
    { address: '192.0.2.12', checks: [{ type: 'tcp', connect_port: 81 }] },
  ]);
  assert.deepEqual(c.items.filter((i) => i.kind === 'unsupported').map((i) => i.line), [5]);
  assert.equal(c.items.filter((i) => i.kind === 'note').length, 2);
  parseConfigText(c.yaml, 'x.yaml', { checkFiles: false, hostname: 'test' });
});

test('lvs_sync_daemon: the first one counts (as keepalived); without an instance it runs both ways', () => {
  const c = convert('global_defs {\n lvs_sync_daemon bond0 id 7\n lvs_sync_daemon bond0 VI_2\n}\n');
  assert.deepEqual(c.config.sync, { interface: 'bond0', mode: 'both', sync_id: 7 });
  assert.deepEqual(c.items.map((i) => `${i.kind} ${i.line}`), ['unsupported 3']);
});

test('advert intervals the VRRP version cannot carry are rounded as keepalived does, with a note', () => {
  const c = convert('vrrp_instance A {\n interface eth0\n virtual_router_id 1\n advert_int 0.5\n virtual_ipaddress { 192.0.2.1 }\n}\nvrrp_instance B {\n interface eth0\n version 3\n virtual_router_id 2\n advert_int 0.125\n virtual_ipaddress { 192.0.2.2 }\n}\n');
  assert.deepEqual((c.config.vrrp_instances as Record<string, unknown>[]).map((i) => i.advert_interval), [1, 0.13]);
  assert.deepEqual(c.items.map((i) => i.kind), ['note', 'note']);
  assert.ok(c.complete);
  parseConfigText(c.yaml, 'x.yaml', { checkFiles: false, hostname: 'test' });
});

test('answers to lower- and higher-priority masters: vrrp_lower_prio_no_advert, vrrp_higher_prio_send_advert, garp_lower_prio_* map to the instance (global defaults, instance overrides; vrrp_strict implies no advert)', () => {
  const conv = (global: string, inst: string) => {
    const c = convert(`global_defs {\n${global}\n}\nvrrp_instance V { interface eth0\n virtual_router_id 9\n virtual_ipaddress { 192.0.2.5 }\n${inst}\n}\n`);
    parseConfigText(c.yaml, 'x.yaml', { checkFiles: false, hostname: 'test' });
    const i = (c.config.vrrp_instances as Record<string, unknown>[])[0]!;
    return { i, garp: i.garp as Record<string, unknown> | undefined, items: c.items.filter((x) => x.kind === 'unsupported').map((x) => x.what) };
  };
  const g = conv(' vrrp_lower_prio_no_advert\n vrrp_higher_prio_send_advert true\n vrrp_garp_lower_prio_repeat 2\n vrrp_garp_lower_prio_delay 10', '');
  assert.deepEqual([g.i.lower_prio_no_advert, g.i.higher_prio_send_advert, g.garp?.lower_prio_repeat, g.garp?.lower_prio_delay], [true, true, 2, 10]);
  assert.deepEqual(g.items, []);
  const o = conv(' vrrp_lower_prio_no_advert\n vrrp_garp_lower_prio_repeat 2', ' lower_prio_no_advert false\n garp_lower_prio_repeat 0\n garp_lower_prio_delay 0\n higher_prio_send_advert');
  assert.deepEqual([o.i.lower_prio_no_advert, o.i.higher_prio_send_advert, o.garp?.lower_prio_repeat, o.garp?.lower_prio_delay], [false, true, 0, 0]);
  assert.deepEqual(o.items, []);
  assert.equal(conv(' vrrp_strict', '').i.lower_prio_no_advert, true);
  assert.equal(conv(' vrrp_strict', ' lower_prio_no_advert off').i.lower_prio_no_advert, false);
  assert.equal(conv('', '').i.lower_prio_no_advert, undefined, 'unset: lvsd default (answer with an advert), as keepalived');
  assert.deepEqual(conv('', ' higher_prio_send_advert maybe').items, ['vrrp_instance V > higher_prio_send_advert maybe']);
});
