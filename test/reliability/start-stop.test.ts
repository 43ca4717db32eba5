/**
 * Start, stop, single instance (issue 17 items 3 and 4), on the real daemon (`bin/lvsd run`):
 *  - SIGHUP from the moment `lvsd run` has installed its handlers and over and over during start:
 *    the daemon survives and applies one reload once started; READY=1 reaches the $NOTIFY_SOCKET the
 *    test provides, STOPPING=1 at stop;
 *  - SIGTERM during start: a clean exit (status 0), nothing left: no lock, no VIP, no process;
 *  - one daemon per director: a second one through a symlink, another path, a hard link or a copy of
 *    the file is refused naming the holder's PID; two directors in two namespaces share a state
 *    directory; a lock file naming a live, unrelated PID (a reused PID) does not block start-up.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync, readdirSync, symlinkSync, linkSync, mkdirSync, copyFileSync, readlinkSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { start, waitFor, httpGet, lvsdBin, type Running } from '../support/proc.js';
import { Topology, isRoot, pidsIn } from '../../src/lab/netns.js';
import { handlersInstalled, notifySocket, logMessages } from './support.js';

const dirs: string[] = [];
const procs: Running[] = [];
after(() => {
  for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function scratch(): string {
  const d = mkdtempSync(join(tmpdir(), 'lvsd-rel-'));
  dirs.push(d);
  return d;
}
const skipNs = !isRoot() && 'needs root (network namespaces)';

function yaml(routerId: string, listen: string, extra = ''): string {
  return `global:\n  router_id: ${routerId}\n  api:\n    listen: ${listen}\n${extra}`;
}
function vrrpYaml(routerId: string, priority: number): string {
  return yaml(
    routerId,
    '127.0.0.1:9650',
    `vrrp_instances:\n  - name: VI_1\n    interface: eth0\n    virtual_router_id: 51\n    priority: ${priority}\n    advert_interval: 1\n    virtual_addresses:\n      - 192.0.2.100/24\n`,
  );
}
async function status(port: number): Promise<{ router_id: string; last_reload: { result: string } | null }> {
  return JSON.parse((await httpGet(`http://127.0.0.1:${port}/status`)).body) as { router_id: string; last_reload: { result: string } | null };
}

test('SIGHUP from the first instant and during start: the daemon survives, reloads once started; READY=1 then STOPPING=1 on NOTIFY_SOCKET', async () => {
  const dir = scratch();
  const file = join(dir, 'lvsd.yaml');
  const port = 19000 + (process.pid % 1000);
  writeFileSync(file, yaml('before', `127.0.0.1:${port}`));
  const sock = await notifySocket(join(dir, 'notify.sock'));
  procs.push(sock.proc);
  const d = start(lvsdBin, ['run', '-c', file, '--state-dir', join(dir, 'state')], { env: { ...process.env, NOTIFY_SOCKET: join(dir, 'notify.sock') } });
  procs.push(d);
  const pid = d.child.pid!;

  await handlersInstalled(pid);
  process.kill(pid, 'SIGHUP'); // before `lvsd run` has even loaded its modules
  let sent = 1;
  let changed = false;
  // Keep signalling through the whole start (bounded); change the file once it has been read.
  while (!sock.messages().includes('READY=1') && sent < 2000 && d.child.exitCode === null) {
    if (!changed && logMessages(d.output()).includes('api listening')) {
      writeFileSync(file, yaml('after', `127.0.0.1:${port}`));
      changed = true;
    }
    process.kill(pid, 'SIGHUP');
    sent++;
    await new Promise((r) => setTimeout(r, 5));
  }
  if (!changed) {
    writeFileSync(file, yaml('after', `127.0.0.1:${port}`));
    process.kill(pid, 'SIGHUP');
  }
  assert.equal(d.child.exitCode, null, `the daemon survived ${sent} SIGHUPs during start:\n${d.output()}`);
  assert.deepEqual(sock.messages(), ['READY=1'], 'READY=1 once started');

  await waitFor(async () => ((await status(port)).router_id === 'after' ? true : undefined), 'the reload to apply the changed file');
  assert.equal((await status(port)).last_reload?.result, 'success');
  const msgs = logMessages(d.output());
  const queued = msgs.indexOf('reload requested during start: applied once started');
  const running = msgs.indexOf('lvsd running');
  const applied = msgs.indexOf('reloading configuration (requested during start)');
  assert.ok(queued >= 0 && queued < running && running < applied, `queued, then running, then the reload:\n${msgs.join('\n')}`);
  assert.equal(msgs.filter((m) => m === 'reload requested during start: applied once started').length, 1, 'SIGHUPs during start are coalesced into one reload');

  d.child.kill('SIGTERM');
  assert.equal((await d.exited).code, 0);
  await waitFor(() => (sock.messages().includes('STOPPING=1') ? true : undefined), 'STOPPING=1');
  assert.deepEqual(sock.messages(), ['READY=1', 'STOPPING=1']);
  assert.deepEqual(readdirSync(join(dir, 'state')), [], 'lock released and removed');
});

test('SIGTERM as soon as the handlers are installed: exit 0, nothing started is left', async () => {
  const dir = scratch();
  const file = join(dir, 'lvsd.yaml');
  writeFileSync(file, yaml('t', '127.0.0.1:0'));
  const sock = await notifySocket(join(dir, 'notify.sock'));
  procs.push(sock.proc);
  const d = start(lvsdBin, ['run', '-c', file, '--state-dir', join(dir, 'state')], { env: { ...process.env, NOTIFY_SOCKET: join(dir, 'notify.sock') } });
  procs.push(d);
  await handlersInstalled(d.child.pid!);
  d.child.kill('SIGTERM');
  assert.equal((await d.exited).code, 0, d.output());
  assert.ok(logMessages(d.output()).includes('stop requested during start'), d.output());
  assert.ok(!logMessages(d.output()).includes('lvsd running'));
  assert.deepEqual(sock.messages(), [], 'never reported ready');
  assert.ok(!existsSync(join(dir, 'state')) || readdirSync(join(dir, 'state')).length === 0, 'no lock left');
});

test('SIGTERM while the VRRP instance (address owner, MASTER at once) starts: exit 0, VIP removed, no process left', { skip: skipNs }, async () => {
  const topo = new Topology();
  try {
    const ns = await topo.member('a', ['192.0.2.1/24']);
    const dir = scratch();
    writeFileSync(join(dir, 'lvsd.yaml'), vrrpYaml('owner', 255));
    const d = ns.start([process.execPath, lvsdBin, 'run', '-c', join(dir, 'lvsd.yaml'), '--state-dir', join(dir, 'state')]);
    await waitFor(() => (logMessages(d.output()).includes('VRRP instance started') ? true : undefined), 'the VRRP instance to start', 30_000, 2);
    d.child.kill('SIGTERM');
    assert.equal((await d.exited).code, 0, d.output());
    assert.deepEqual((await ns.addrs('eth0')).filter((a) => a.startsWith('192.0.2.100')), [], 'VIP released');
    assert.deepEqual(pidsIn([ns.name]), [], 'no process left in the namespace');
    assert.ok(!existsSync(join(dir, 'state')) || readdirSync(join(dir, 'state')).length === 0, 'no lock left');
  } finally {
    await topo.destroy();
  }
});

test('one daemon per director: symlink, other path, hard link, copy refused naming the holder; a reused PID in the lock file does not block', async () => {
  const dir = scratch();
  const file = join(dir, 'lvsd.yaml');
  const state = join(dir, 'state');
  writeFileSync(file, yaml('one', '127.0.0.1:0'));
  // A lock file left with the PID of a live, unrelated process (ours): start-up must not care.
  mkdirSync(state);
  const netns = /\[(\d+)\]/.exec(readlinkSync('/proc/self/ns/net'))![1];
  writeFileSync(join(state, `lvsd-net${netns}.lock`), `${process.pid}\n`);
  const d = start(lvsdBin, ['run', '-c', file, '--state-dir', state]);
  procs.push(d);
  await waitFor(() => (logMessages(d.output()).includes('lvsd running') ? true : undefined), 'the first daemon', 30_000);

  mkdirSync(join(dir, 'sub'));
  symlinkSync(file, join(dir, 'link.yaml'));
  linkSync(file, join(dir, 'hard.yaml'));
  copyFileSync(file, join(dir, 'copy.yaml'));
  for (const other of [join(dir, 'link.yaml'), join(dir, 'sub', '..', '.', 'lvsd.yaml'), join(dir, 'hard.yaml'), join(dir, 'copy.yaml')]) {
    const r = spawnSync(lvsdBin, ['run', '-c', other, '--state-dir', state], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 75, `${other}: ${r.stderr}`);
    assert.match(r.stderr, new RegExp(`another lvsd \\(pid ${d.child.pid}\\) is already running for this director`), other);
  }
  assert.equal(d.child.exitCode, null, 'the first daemon keeps running');
  d.child.kill('SIGTERM');
  assert.equal((await d.exited).code, 0);
});

test('two directors in two namespaces may share a state directory; kill -9 leaves no lock behind', { skip: skipNs }, async () => {
  const topo = new Topology();
  try {
    const a = await topo.member('a', ['192.0.2.1/24']);
    const b = await topo.member('b', ['192.0.2.2/24']);
    const dir = scratch();
    const file = join(dir, 'lvsd.yaml');
    writeFileSync(file, yaml('shared', '127.0.0.1:9650'));
    const state = join(dir, 'state');
    const da = a.start([process.execPath, lvsdBin, 'run', '-c', file, '--state-dir', state]);
    const db = b.start([process.execPath, lvsdBin, 'run', '-c', file, '--state-dir', state]);
    for (const d of [da, db]) await waitFor(() => (logMessages(d.output()).includes('lvsd running') ? true : undefined), 'both daemons', 30_000);
    da.child.kill('SIGKILL');
    await da.exited;
    const again = a.start([process.execPath, lvsdBin, 'run', '-c', file, '--state-dir', state]);
    await waitFor(() => (logMessages(again.output()).includes('lvsd running') ? true : undefined), 'the restart after kill -9', 30_000);
    for (const d of [again, db]) {
      d.child.kill('SIGTERM');
      assert.equal((await d.exited).code, 0);
    }
  } finally {
    await topo.destroy();
  }
});

test('Daemon.cancelStart during a subsystem start: later subsystems never start, started ones stop in reverse, start rejects STOPPED', async () => {
  const { Daemon } = await import('../../src/daemon/daemon.js');
  const { silentLogger } = await import('../../src/core/log.js');
  const dir = scratch();
  const file = join(dir, 'lvsd.yaml');
  writeFileSync(file, yaml('cancel', '127.0.0.1:0'));
  const events: string[] = [];
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const sub = (name: string, startGate?: Promise<void>) => ({
    name,
    factory: () => ({
      name,
      start: async () => {
        events.push(`start ${name}`);
        if (startGate) await startGate;
      },
      reload: async () => undefined,
      stop: async () => void events.push(`stop ${name}`),
      status: () => ({}),
    }),
  });
  const daemon = new Daemon({ configFile: file, logger: silentLogger, version: 'test', stateDir: join(dir, 'state'), subsystems: [sub('one'), sub('two', gate), sub('three')] });
  const started = daemon.start();
  await waitFor(() => (events.includes('start two') ? true : undefined), 'subsystem two to be starting');
  daemon.cancelStart('SIGTERM');
  release();
  await assert.rejects(started, (e: Error & { code?: string }) => e.code === 'STOPPED');
  assert.deepEqual(events, ['start one', 'start two', 'stop two', 'stop one']);
  assert.deepEqual(readdirSync(join(dir, 'state')), [], 'lock released');
});
