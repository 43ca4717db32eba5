/**
 * Runs INSIDE the UML lab guest (scripts/test.mjs → `lvsd lab exec -- node --test dist/test/lab/...`).
 * Proves the guest is what the real-kernel tests rely on: IPVS and every scheduler loaded, ipvsadm
 * and the tools work, the "IPVS" generic-netlink family resolves from Node, devices in /dev work,
 * the root is read-only with a writable TMPDIR, and namespaces (toolkit) work inside.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, mkdtempSync, rmSync, openSync, readSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { Topology, run, listNetns } from '../../src/lab/netns.js';
import { REQUIRED_MODULES } from '../../src/lab/uml.js';

const inLab = process.env.LVSD_IN_LAB === '1';
const skip = inLab ? false : 'runs inside the lab guest (node scripts/test.mjs --only lab)';

test('IPVS, every scheduler, veth, ipip and bridge are loaded', { skip }, () => {
  const mods = new Set(readFileSync('/proc/modules', 'utf8').split('\n').map((l) => l.split(' ')[0]));
  for (const m of REQUIRED_MODULES) assert.ok(mods.has(m), `module ${m} loaded`);
  assert.match(readFileSync('/proc/net/ip_vs', 'utf8'), /IP Virtual Server version/);
});

test('ipvsadm programs the kernel table, including an on-demand module (ip_vs_pe_sip)', { skip }, async () => {
  const empty = await run('ipvsadm', ['-Ln']);
  assert.match(empty.stdout, /IP Virtual Server version \d+\.\d+\.\d+/);
  await run('ipvsadm', ['-A', '-t', '192.0.2.80:80', '-s', 'mh']);
  try {
    await run('ipvsadm', ['-a', '-t', '192.0.2.80:80', '-r', '198.51.100.2:80', '-m', '-w', '3']);
    const l = await run('ipvsadm', ['-Ln', '-t', '192.0.2.80:80']);
    assert.match(l.stdout, /TCP {2}192\.0\.2\.80:80 mh/);
    assert.match(l.stdout, /-> 198\.51\.100\.2:80 +Masq +3 /);
    // The persistence engine module is not loaded at boot: the kernel asks our modprobe wrapper.
    await run('ipvsadm', ['-E', '-t', '192.0.2.80:80', '-s', 'rr', '-p', '30', '--pe', 'sip']);
    assert.match((await run('ipvsadm', ['-Ln', '-t', '192.0.2.80:80'])).stdout, /persistent 30 pe sip/);
  } finally {
    await run('ipvsadm', ['-D', '-t', '192.0.2.80:80'], { check: false });
  }
  assert.doesNotMatch((await run('ipvsadm', ['-Ln'])).stdout, /192\.0\.2\.80/);
});

test('the IPVS generic-netlink family resolves from Node (netlink@0.3.0)', { skip }, async () => {
  const require = createRequire(import.meta.url);
  const nl = require('netlink') as typeof import('netlink');
  const sock = nl.createGenericNetlink();
  try {
    const [fam] = await sock.ctrlRequest(nl.genl.Commands.GET_FAMILY, { familyName: 'IPVS' }, { flags: 0 });
    assert.equal(fam?.familyName, 'IPVS');
    assert.ok((fam?.familyId ?? 0) >= 16, `family id ${fam?.familyId}`);
    assert.equal(fam?.version, 1);
  } finally {
    sock.socket.close();
  }
});

test('node, ip, keepalived and strace run; /dev devices work', { skip }, async () => {
  assert.match((await run('ip', ['-V'])).stdout, /iproute2/);
  const k = await run('keepalived', ['--version'], { check: false });
  assert.match(k.stdout + k.stderr, /Keepalived v\d/);
  const s = await run('strace', ['-f', '-e', 'trace=exit_group', 'true'], { check: false });
  assert.match(s.stderr, /exit_group\(0\)/);
  const fd = openSync('/dev/urandom', 'r');
  assert.equal(readSync(fd, Buffer.alloc(16)), 16);
  closeSync(fd);
  const rnd = await run(process.execPath, ['-e', "process.stdout.write(require('crypto').randomBytes(8).toString('hex'))"]);
  assert.match(rnd.stdout, /^[0-9a-f]{16}$/);
  writeFileSync('/dev/null', 'x');
});

test('root is read-only, TMPDIR is writable, no network device but lo', { skip }, async () => {
  assert.throws(() => writeFileSync(join(process.cwd(), '.lab-write-probe'), 'x'), /EROFS/);
  assert.equal(tmpdir(), '/run/tmp');
  const d = mkdtempSync(join(tmpdir(), 'probe-'));
  writeFileSync(join(d, 'f'), 'ok');
  assert.equal(readFileSync(join(d, 'f'), 'utf8'), 'ok');
  rmSync(d, { recursive: true });
  const links = JSON.parse((await run('ip', ['-j', 'link', 'show'])).stdout) as Array<{ ifname: string; link_type: string }>;
  // lo plus the fallback tunnel devices the ipip/ip6_tunnel modules create (no link to anything).
  const real = links.filter((l) => !['lo', 'tunl0', 'ip6tnl0'].includes(l.ifname));
  assert.deepEqual(real, []);
});

test('namespace toolkit: two namespaces on a bridge, IPv4 and IPv6, torn down', { skip, timeout: 60_000 }, async () => {
  const topo = new Topology();
  try {
    const a = await topo.netns('a');
    const b = await topo.netns('b');
    const br = await topo.bridge('br0');
    await topo.link(a, 'eth0', br);
    await topo.link(b, 'eth0', br);
    await a.addr('eth0', '192.0.2.1/24');
    await b.addr('eth0', '192.0.2.2/24');
    await a.addr('eth0', '2001:db8::1/64');
    await b.addr('eth0', '2001:db8::2/64');
    assert.match((await a.exec(['ping', '-c', '1', '-W', '2', '192.0.2.2'])).stdout, /1 received/);
    assert.match((await b.exec(['ping', '-6', '-c', '1', '-W', '2', '2001:db8::1'])).stdout, /1 received/);
  } finally {
    await topo.destroy();
  }
  assert.deepEqual((await listNetns()).filter((n) => n.startsWith(topo.prefix)), []);
});
