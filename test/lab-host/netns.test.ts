/**
 * The namespace toolkit on the host kernel: two namespaces on a bridge (in its own switch namespace)
 * reach each other; a spawned server is reachable; destroy() leaves no namespace and no process behind.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Topology, listNetns, isRoot } from '../../src/lab/netns.js';

const skip = isRoot() ? false : 'needs root (network namespaces)';

test('two namespaces on a bridge ping each other; destroy() removes everything', { skip, timeout: 60_000 }, async () => {
  const topo = new Topology();
  let pid: number | undefined;
  let grandchild = 0;
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
    // The bridge lives in the switch namespace, not in the host's root namespace.
    assert.deepEqual(topo.bridgeNs(br)?.short, 'sw');
    const rootLinks = (await (await import('../../src/lab/netns.js')).run('ip', ['-j', 'link', 'show'])).stdout;
    assert.ok(!rootLinks.includes(`"${topo.prefix}`), 'nothing of ours in the root namespace');

    // A veth straight between two namespaces, configured with one ip batch.
    await topo.link(a, 'eth1', b);
    await a.ipBatch(['addr add 198.51.100.1/24 dev eth1']);
    await b.ipBatch(['addr add 198.51.100.2/24 dev eth1', 'route add 203.0.113.0/24 via 198.51.100.1']);
    assert.match((await b.exec(['ping', '-c', '1', '-W', '2', '198.51.100.1'], { via: 'nsenter' })).stdout, /1 received/);
    assert.match((await b.ip('route', 'show', '203.0.113.0/24')).stdout, /via 198\.51\.100\.1 dev eth1/);
    await a.sysctls({ 'net.ipv4.ip_forward': '1', 'net.ipv4.conf.all.arp_ignore': '1' });
    assert.equal((await a.exec(['cat', '/proc/sys/net/ipv4/ip_forward'])).stdout.trim(), '1');
    assert.equal((await b.exec(['cat', '/proc/sys/net/ipv4/ip_forward'])).stdout.trim(), '0');

    const p4 = await a.exec(['ping', '-c', '1', '-W', '2', '192.0.2.2']);
    assert.match(p4.stdout, /1 received/);
    const p6 = await b.exec(['ping', '-6', '-c', '1', '-W', '2', '2001:db8::1']);
    assert.match(p6.stdout, /1 received/);
    // An address that nobody has: the ping fails and check:false reports the status.
    const miss = await a.exec(['ping', '-c', '1', '-W', '1', '192.0.2.99'], { check: false });
    assert.notEqual(miss.code, 0);
    await assert.rejects(a.exec(['false']), /exited with 1/);

    // A spawned server in b answers a client in a.
    const srv = b.spawn([process.execPath, '-e', "require('net').createServer(s=>s.end('hello from b')).listen(8080,'192.0.2.2',()=>console.log('up'))"]);
    pid = srv.pid;
    await new Promise<void>((resolve, reject) => {
      srv.stdout!.once('data', () => resolve());
      srv.once('exit', (c) => reject(new Error(`server exited ${c}`)));
    });
    const got = await a.exec([process.execPath, '-e', "require('net').connect(8080,'192.0.2.2').on('data',d=>process.stdout.write(d))"], { timeoutMs: 30_000 });
    assert.equal(got.stdout, 'hello from b');

    // A grandchild (not spawned by the toolkit itself) is found through its network namespace.
    const sh = a.spawn(['sh', '-c', 'sleep 300 & echo $!; wait']);
    grandchild = await new Promise<number>((resolve) => sh.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))));
    assert.ok(grandchild > 0);

    const names = (await listNetns()).filter((n) => n.startsWith(topo.prefix));
    assert.deepEqual(names.sort(), [`${topo.prefix}a`, `${topo.prefix}b`, `${topo.prefix}sw`]);
  } finally {
    await topo.destroy();
    await topo.destroy(); // idempotent
  }
  assert.deepEqual((await listNetns()).filter((n) => n.startsWith(topo.prefix)), []);
  assert.ok(pid);
  assert.throws(() => process.kill(pid!, 0), /ESRCH/, 'spawned server was killed');
  // Killed: gone, or a zombie waiting for whoever inherited it to reap it.
  const state = (() => {
    try {
      return readFileSync(`/proc/${grandchild}/stat`, 'utf8').split(') ')[1]?.[0];
    } catch {
      return 'gone';
    }
  })();
  assert.ok(state === 'gone' || state === 'Z', `grandchild state ${state}`);
});

test('bad names are refused with a clear error', { skip }, async () => {
  const topo = new Topology();
  try {
    await assert.rejects(topo.netns('no spaces'), /bad namespace name/);
    const a = await topo.netns('a');
    const br = await topo.bridge('br0');
    await assert.rejects(topo.link(a, 'a-very-long-interface-name', br), /bad interface name/);
    await assert.rejects(topo.link(a, 'eth0', 'nosuchbr'), /unknown bridge/);
  } finally {
    await topo.destroy();
  }
  assert.deepEqual((await listNetns()).filter((n) => n.startsWith(topo.prefix)), []);
});

test('a process killed by SIGTERM still removes its namespaces (exit hook)', { skip, timeout: 30_000 }, async () => {
  const { spawn } = await import('node:child_process');
  const { fileURLToPath } = await import('node:url');
  const mod = fileURLToPath(new URL('../../src/lab/netns.js', import.meta.url));
  const prefix = `lvx${process.pid % 10000}`;
  const script = `import(${JSON.stringify(mod)}).then(async ({Topology})=>{const t=new Topology(${JSON.stringify(prefix)});await t.netns('a');await t.netns('b');console.log('ready');setInterval(()=>{},1000)})`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once('data', () => resolve());
    child.once('exit', (c) => reject(new Error(`child exited ${c}`)));
  });
  assert.equal((await listNetns()).filter((n) => n.startsWith(prefix)).length, 2);
  const exited = new Promise<NodeJS.Signals | null>((r) => child.once('exit', (_c, s) => r(s)));
  child.kill('SIGTERM');
  assert.equal(await exited, 'SIGTERM');
  assert.deepEqual((await listNetns()).filter((n) => n.startsWith(prefix)), []);
});

test('a signal during destroy()\'s grace wait still removes the namespaces and kills what ignored SIGTERM', { skip, timeout: 30_000 }, async () => {
  const { spawn } = await import('node:child_process');
  const { fileURLToPath } = await import('node:url');
  const mod = fileURLToPath(new URL('../../src/lab/netns.js', import.meta.url));
  const prefix = `lvy${process.pid % 10000}`;
  // The namespace runs a process that ignores SIGTERM, so destroy() sits in its 1 s grace wait.
  const script = `import(${JSON.stringify(mod)}).then(async ({Topology})=>{const t=new Topology(${JSON.stringify(prefix)});const a=await t.netns('a');const p=a.start(['bash','-c','trap "" TERM; exec sleep 30']);await new Promise(r=>setTimeout(r,200));console.log('pid '+p.child.pid);void t.destroy();console.log('destroying');setInterval(()=>{},1000)})`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('destroying')) resolve();
    });
    child.once('exit', (c) => reject(new Error(`child exited ${c}`)));
  });
  const pid = Number(/pid (\d+)/.exec(out)![1]);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  await exited;
  assert.deepEqual((await listNetns()).filter((n) => n.startsWith(prefix)), [], 'namespaces removed');
  // Killed (a zombie until init reaps it counts as dead): state from /proc, gone or 'Z'; waited for
  // (bounded, 20 s: seconds-level, well short of its 30 s sleep, so waiting cannot pass by its end).
  const dead = () => {
    try {
      return / Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
    } catch {
      return true;
    }
  };
  for (let i = 0; i < 1000 && !dead(); i++) await new Promise((r) => setTimeout(r, 20));
  assert.ok(dead(), 'the SIGTERM-ignoring process was killed');
});
