/**
 * Script hygiene (issue 17 item 6), real processes:
 *  - a script that forks grandchildren (which ignore SIGTERM) and sleeps past its timeout: nothing
 *    of its process group survives, from the runner and from a real daemon's vrrp_script;
 *  - scripts still running when the daemon stops are killed with their children (no orphans);
 *  - a world-writable script (or one in a directory others can write) is a check-config error with
 *    file:line:column and key path when lvsd runs as root, and a reload with one is rejected;
 *  - script_user nobody: the script runs as uid 65534.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync, readFileSync, readdirSync, chmodSync, mkdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { runScript, killRunningScripts } from '../../src/core/scripts.js';
import { start, waitFor, lvsdBin, type Running } from '../support/proc.js';
import { Topology, isRoot } from '../../src/lab/netns.js';
import { logMessages } from './support.js';

const dir = mkdtempSync(join(tmpdir(), 'lvsd-scripts-'));
chmodSync(dir, 0o755);
const procs: Running[] = [];
after(() => {
  for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  killRunningScripts();
  rmSync(dir, { recursive: true, force: true });
});
const rootOnly = !isRoot() && 'needs root';

/** PIDs whose process group is `pgid` (field 5 of /proc/PID/stat). */
function groupMembers(pgid: number): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[2]) === pgid && fields[0] !== 'Z') out.push(Number(e));
    } catch {
      /* exited */
    }
  }
  return out;
}

// Two grandchildren that ignore SIGTERM, then the script itself sleeps past any timeout.
const FORKER = (pidFile: string) => `echo $$ >> ${pidFile}; trap '' TERM; (trap '' TERM; sleep 300) & (trap '' TERM; sleep 300) & sleep 300`;

test('a timed-out script is killed with its whole process group, grandchildren that ignore SIGTERM included', async () => {
  const pidFile = join(dir, 'runner.pids');
  const run = runScript({ argv: ['sh', '-c', FORKER(pidFile)], timeoutMs: 1500 });
  const pgid = await waitFor(() => (existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8').trim()) : undefined), 'the script to start');
  await waitFor(() => (groupMembers(pgid).length >= 4 ? true : undefined), 'the script, its subshells and sleeps to run in one group');
  const r = await run;
  assert.equal(r.timedOut, true);
  assert.equal(r.pid, pgid, 'the script leads its own process group');
  await waitFor(() => (groupMembers(pgid).length === 0 ? true : undefined), 'no member of the group to be left', 10_000);
});

test('a script that exits at once but leaves a child behind: the child dies at daemon stop (killRunningScripts)', async () => {
  const r = await runScript({ argv: ['sh', '-c', 'sleep 600 & exit 0'], timeoutMs: 30_000 });
  assert.equal(r.code, 0);
  assert.equal(r.timedOut, false);
  assert.ok(r.pid !== undefined);
  assert.ok(groupMembers(r.pid!).length >= 1, 'its background sleep is still running (left alone while lvsd runs)');
  assert.ok(killRunningScripts() >= 1, 'the group is still listed');
  await waitFor(() => (groupMembers(r.pid!).length === 0 ? true : undefined), 'the background child to be killed', 30_000);
});

test('script_user nobody: the script runs as uid 65534', { skip: rootOnly }, async () => {
  const out = join(dir, 'shared');
  mkdirSync(out, { mode: 0o1777 });
  chmodSync(out, 0o1777);
  const r = await runScript({ argv: ['sh', '-c', `id -u > ${out}/uid; id -g > ${out}/gid`], timeoutMs: 10_000, user: 'nobody' });
  assert.equal(r.code, 0, r.error);
  assert.equal(readFileSync(join(out, 'uid'), 'utf8').trim(), '65534');
  const unknown = await runScript({ argv: ['true'], timeoutMs: 1000, user: 'no-such-user-lvsd' });
  assert.match(unknown.error ?? '', /no user "no-such-user-lvsd"/);
});

test('check-config refuses a world-writable script and one in a directory others can write, naming file:line:column and the key', { skip: rootOnly }, () => {
  const open = join(dir, 'open');
  mkdirSync(open);
  const ww = join(open, 'ww.sh');
  writeFileSync(ww, '#!/bin/sh\nexit 0\n');
  chmodSync(ww, 0o777);
  const gw = join(dir, 'groupdir');
  mkdirSync(gw);
  chmodSync(gw, 0o775);
  spawnSync('chgrp', ['nogroup', gw]);
  const safeInUnsafeDir = join(gw, 'ok.sh');
  writeFileSync(safeInUnsafeDir, '#!/bin/sh\nexit 0\n');
  chmodSync(safeInUnsafeDir, 0o755);
  const file = join(dir, 'unsafe.yaml');
  writeFileSync(file, ['vrrp_scripts:', '  - name: chk', `    script: ${ww}`, '  - name: chk2', `    script: ${safeInUnsafeDir}`, ''].join('\n'));
  const r = spawnSync(lvsdBin, ['check-config', '-c', file], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 1, r.stdout + r.stderr);
  assert.match(r.stderr, new RegExp(`unsafe\\.yaml:3:13: error: vrrp_scripts\\[0\\]\\.script: script ${ww} is not safe to run as root: .*writable by everyone`));
  assert.match(r.stderr, new RegExp(`unsafe\\.yaml:5:13: error: vrrp_scripts\\[1\\]\\.script: script ${safeInUnsafeDir} is not safe to run as root: directory ${gw} is writable by group`));
  chmodSync(ww, 0o755);
  chmodSync(gw, 0o755);
  const ok = spawnSync(lvsdBin, ['check-config', '-c', file, '--quiet'], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(ok.status, 0, ok.stderr);
});

test('real daemon: a timed-out vrrp_script leaves no process; a running notify script dies with the daemon; script_user nobody; an unsafe script is refused at reload', { skip: !isRoot() && 'needs root (network namespaces)' }, async () => {
  const topo = new Topology();
  try {
    const ns = await topo.member('a', ['192.0.2.1/24']);
    const shared = join(dir, 'daemon');
    mkdirSync(shared, { mode: 0o1777 });
    chmodSync(shared, 0o1777);
    const trackPids = join(shared, 'track.pids');
    const notifyPids = join(shared, 'notify.pids');
    const yaml = (extraScript = '') =>
      [
        'global:',
        '  router_id: scripts',
        '  api:',
        '    listen: 127.0.0.1:9650',
        'vrrp_scripts:',
        '  - name: slow',
        `    script: ["sh", "-c", "${FORKER(trackPids).replace(/"/g, '\\"')}"]`,
        '    interval: 1',
        '    timeout: 1',
        '  - name: who',
        `    script: ["sh", "-c", "id -u > ${shared}/who"]`,
        '    script_user: nobody',
        extraScript,
        'vrrp_instances:',
        '  - name: VI_1',
        '    interface: eth0',
        '    virtual_router_id: 71',
        '    priority: 255',
        '    track_scripts: [slow, who]',
        '    virtual_addresses: [192.0.2.100/24]',
        '    notify:',
        `      master: ["sh", "-c", "${FORKER(notifyPids).replace(/"/g, '\\"')}"]`,
        '      timeout: 600',
        '',
      ].join('\n');
    const file = join(dir, 'daemon.yaml');
    writeFileSync(file, yaml());
    const d = ns.start([process.execPath, lvsdBin, 'run', '-c', file, '--state-dir', join(dir, 'state')]);
    procs.push(d);
    const pgids = (f: string) => (existsSync(f) ? readFileSync(f, 'utf8').trim().split('\n').map(Number) : []);
    // Three runs of the slow script, each timed out after 1 s.
    await waitFor(() => (pgids(trackPids).length >= 3 ? true : undefined), 'three runs of the tracking script', 30_000);
    const early = pgids(trackPids).slice(0, 2);
    await waitFor(() => (early.every((g) => groupMembers(g).length === 0) ? true : undefined), 'the timed-out runs to leave nothing', 10_000);
    // The shell creates the file before `id` writes to it: wait for a whole line, not the file.
    const who = await waitFor(() => (existsSync(join(shared, 'who')) && readFileSync(join(shared, 'who'), 'utf8').endsWith('\n') ? readFileSync(join(shared, 'who'), 'utf8') : undefined), 'the script_user script', 30_000);
    assert.equal(who.trim(), '65534');

    // The master notify script (timeout 600 s) and its children are running...
    const notifyGroup = await waitFor(() => pgids(notifyPids)[0], 'the master notify script', 30_000);
    await waitFor(() => (groupMembers(notifyGroup).length >= 4 ? true : undefined), 'the notify script with its children');

    // ...a reload with a world-writable script is rejected, the daemon keeps running...
    const ww = join(dir, 'ww-reload.sh');
    writeFileSync(ww, '#!/bin/sh\nexit 0\n');
    chmodSync(ww, 0o777);
    writeFileSync(file, yaml(`  - name: unsafe\n    script: ${ww}`));
    d.child.kill('SIGHUP');
    await waitFor(() => (logMessages(d.output()).includes('reload rejected: the new configuration is invalid; still serving the previous one') ? true : undefined), 'the reload to be rejected', 30_000);
    assert.match(d.output(), /vrrp_scripts\[2\]\.script: script \S+ww-reload\.sh is not safe to run as root/);

    // ...and stopping the daemon takes the notify script's whole group with it.
    d.child.kill('SIGTERM');
    assert.equal((await d.exited).code, 0, d.output());
    assert.deepEqual(groupMembers(notifyGroup), [], 'no orphan of the notify script');
    for (const g of pgids(trackPids)) await waitFor(() => (groupMembers(g).length === 0 ? true : undefined), `tracking run ${g} to be gone`, 10_000);
  } finally {
    await topo.destroy();
  }
});
