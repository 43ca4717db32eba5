/**
 * The Debian package, built by scripts/build-deb.sh from this tree and installed with the real
 * dpkg — but into a throw-away copy of this machine: a private mount namespace with an overlayfs
 * whose lower layer is / and whose upper layer is a tmpfs, entered with chroot. dpkg's database,
 * the lvsd user and /usr/bin/lvsd exist only in the tmpfs and vanish with the namespace, so the
 * maintainer scripts run for real (adduser, dpkg-statoverride) without touching the host; the
 * test checks the host afterwards. (`dpkg -x` would skip exactly those scripts.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { repoRoot } from '../support/proc.js';
import { inOverlay } from '../support/overlay.js';

const have = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const canRun = process.getuid?.() === 0 && ['dpkg-deb', 'unshare', 'chroot'].every(have);

/** Inside the namespace: install, use, remove and purge the package; one `key=value` per fact. */
const inside = (deb: string): string => `
set -u
dpkg -i ${deb} >/tmp/dpkg-i.log 2>&1; echo "install=$?"
echo "version=$(lvsd --version 2>&1)"
echo "user=$(getent passwd lvsd | cut -d: -f1,6,7)"
echo "conf=$(stat -c %U:%G:%a /etc/lvsd/lvsd.yaml)"
echo "unit=$(test -f /lib/systemd/system/lvsd.service && echo yes)"
echo "check_as_lvsd=$(runuser -u lvsd -- lvsd check-config -c /etc/lvsd/lvsd.yaml >/dev/null 2>&1; echo $?)"
echo "addon=$(runuser -u lvsd -- node -e 'import("/usr/lib/lvsd/dist/src/election/announce.js").then((m) => { m.loadAfPacket(); console.log("loaded"); })' 2>&1)"
dpkg -r lvsd >/dev/null 2>&1; echo "remove=$?"
echo "bin_after_remove=$(test -e /usr/bin/lvsd && echo present || echo gone)"
echo "conf_after_remove=$(test -e /etc/lvsd/lvsd.yaml && echo kept || echo gone)"
dpkg -P lvsd >/dev/null 2>&1; echo "purge=$?"
echo "conf_after_purge=$(test -e /etc/lvsd/lvsd.yaml && echo kept || echo gone)"
sed 's/^/dpkg-log: /' /tmp/dpkg-i.log
`;

test('build-deb.sh builds a .deb that installs, runs and purges (in an overlay of this machine)', { skip: canRun ? false : 'needs root, dpkg-deb, unshare and chroot' }, (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lvsd-deb-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const b = spawnSync('bash', [join(repoRoot, 'scripts', 'build-deb.sh'), dir], { encoding: 'utf8', cwd: repoRoot });
  assert.equal(b.status, 0, `build-deb.sh: ${b.stdout}${b.stderr}`);
  const version = (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
  const arch = spawnSync('dpkg', ['--print-architecture'], { encoding: 'utf8' }).stdout.trim();
  const deb = b.stdout.trim();
  assert.equal(deb, join(dir, `lvsd_${version}_${arch}.deb`));

  // Metadata: run-time dependencies only (none of the test tools setup.sh installs).
  const field = (f: string): string => spawnSync('dpkg-deb', ['-f', deb, f], { encoding: 'utf8' }).stdout.trim();
  const depends = field('Depends');
  assert.match(depends, /(^|, )nodejs \(>= 20\)(,|$)/);
  for (const devOnly of ['keepalived', 'tshark', 'user-mode-linux', 'g\\+\\+', 'make', 'python3', 'iproute2', 'ipvsadm'])
    assert.doesNotMatch(depends, new RegExp(`(^|, )${devOnly}\\b`), `Depends has ${devOnly}: ${depends}`);
  const conffiles = spawnSync('sh', ['-c', `dpkg-deb --ctrl-tarfile ${deb} | tar -xOf - ./conffiles`], { encoding: 'utf8' }).stdout;
  assert.equal(conffiles.trim(), '/etc/lvsd/lvsd.yaml');
  const files = spawnSync('dpkg-deb', ['-c', deb], { encoding: 'utf8' }).stdout.split('\n').map((l) => l.split(/\s+/)[5] ?? '');
  for (const want of ['./usr/lib/lvsd/bin/lvsd', './usr/lib/lvsd/dist/src/cli/main.js', './usr/lib/lvsd/native/afpacket/build/Release/afpacket.node',
    './usr/lib/lvsd/node_modules/netlink/package.json', './usr/bin/lvsd', './lib/systemd/system/lvsd.service', './etc/lvsd/lvsd.yaml'])
    assert.ok(files.includes(want), `${want} in the package`);
  for (const f of files) assert.doesNotMatch(f, /^\.\/usr\/lib\/lvsd\/((dist\/)?(test|bench)\/|node_modules\/(typescript|fast-check|@types\/js-yaml)\/)/, `shipped: ${f}`);

  // Install for real in the overlay; the upper layer is a tmpfs private to the namespace.
  const { out, facts: list } = inOverlay(dir, inside(deb), 120_000);
  const facts = new Map(list);
  const fact = (k: string): string | undefined => facts.get(k);
  assert.equal(fact('install'), '0', out);
  assert.equal(fact('version'), `lvsd ${version}`, out);
  assert.match(fact('user') ?? '', /^lvsd:\/var\/lib\/lvsd:\/usr\/sbin\/nologin$/, out);
  assert.equal(fact('conf'), 'root:lvsd:640', 'the config may hold VRRP passwords: group lvsd, not world-readable');
  assert.equal(fact('unit'), 'yes');
  assert.equal(fact('check_as_lvsd'), '0', 'the lvsd user reads its config');
  assert.equal(fact('addon'), 'loaded', out);
  assert.equal(fact('remove'), '0', out);
  assert.equal(fact('bin_after_remove'), 'gone');
  assert.equal(fact('conf_after_remove'), 'kept', 'a conffile survives remove');
  assert.equal(fact('purge'), '0', out);
  assert.equal(fact('conf_after_purge'), 'gone');

  // The host is untouched.
  assert.notEqual(spawnSync('getent', ['passwd', 'lvsd']).status, 0, 'no lvsd user on the host');
  assert.ok(!existsSync('/usr/bin/lvsd') && !existsSync('/etc/lvsd/lvsd.yaml'), 'no lvsd files on the host');
  assert.notEqual(spawnSync('dpkg-query', ['-W', 'lvsd']).status, 0, 'the host dpkg database does not know lvsd');
});
