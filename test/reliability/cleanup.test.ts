/**
 * VIPs left by a daemon killed with SIGKILL (issue 17 item 4): removed when the daemon restarts,
 * before it can become master again, and by `lvsd cleanup -c FILE` (the unit's ExecStopPost), which
 * refuses to touch anything while a daemon holds the director's lock. Real daemon, real addresses
 * in a namespace.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor, lvsdBin } from '../support/proc.js';
import { Topology, isRoot, type Netns } from '../../src/lab/netns.js';
import { logMessages } from './support.js';

const skip = !isRoot() && 'needs root (network namespaces)';
const dir = mkdtempSync(join(tmpdir(), 'lvsd-cleanup-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function config(priority: number): string {
  return [
    'global:',
    '  router_id: cleanup',
    '  api:',
    '    listen: 127.0.0.1:9650',
    'vrrp_instances:',
    '  - name: VI_1',
    '    interface: eth0',
    '    virtual_router_id: 52',
    `    priority: ${priority}`,
    '    advert_interval: 1',
    '    virtual_addresses:',
    '      - 192.0.2.100/24',
    '      - 192.0.2.101/24',
    '',
  ].join('\n');
}
const vips = async (ns: Netns) => (await ns.addrs('eth0')).filter((a) => /^192\.0\.2\.10[01]$/.test(a)).sort();

test('kill -9 leaves the VIPs; lvsd cleanup refuses while a daemon runs, removes them once none does; a restart removes them before anything else', { skip }, async () => {
  const topo = new Topology();
  try {
    const ns = await topo.member('a', ['192.0.2.1/24']);
    const file = join(dir, 'lvsd.yaml');
    const state = join(dir, 'state');
    const run = () => ns.start([process.execPath, lvsdBin, 'run', '-c', file, '--state-dir', state]);
    const cleanup = () => ns.exec([process.execPath, lvsdBin, 'cleanup', '-c', file, '--state-dir', state], { check: false });
    writeFileSync(file, config(255));

    let d = run();
    await waitFor(async () => ((await vips(ns)).length === 2 ? true : undefined), 'the owner to take both VIPs', 30_000).catch((e) => {
      throw new Error(`${String(e)}\n${d.output()}`);
    });
    const busy = await cleanup();
    assert.equal(busy.code, 75, busy.stderr);
    assert.match(busy.stderr, new RegExp(`another lvsd \\(pid ${d.child.pid}\\) is already running.*nothing removed`));
    assert.equal((await vips(ns)).length, 2, 'cleanup touched nothing while the daemon runs');

    d.child.kill('SIGKILL');
    await d.exited;
    assert.deepEqual(await vips(ns), ['192.0.2.100', '192.0.2.101'], 'kill -9 leaves the VIPs');
    const done = await cleanup();
    assert.equal(done.code, 0, done.stderr);
    assert.match(done.stdout, /removed 192\.0\.2\.100\/24 on eth0 \(VI_1\)\nremoved 192\.0\.2\.101\/24 on eth0 \(VI_1\)\n/);
    assert.deepEqual(await vips(ns), [], 'cleanup removed them');
    const again = await cleanup();
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.stdout, '', 'nothing left to remove');

    // kill -9 again, then restart as a backup: the leftovers go before the instance can act.
    d = run();
    await waitFor(async () => ((await vips(ns)).length === 2 ? true : undefined), 'the owner to take both VIPs again', 30_000);
    d.child.kill('SIGKILL');
    await d.exited;
    writeFileSync(file, config(100));
    d = run();
    await waitFor(() => (logMessages(d.output()).includes('removed VIPs left by a previous run') ? true : undefined), 'the restart to remove the leftovers', 30_000);
    const line = d.output().split('\n').find((l) => l.includes('removed VIPs left by a previous run'))!;
    assert.equal((JSON.parse(line) as { removed: number }).removed, 2);
    await waitFor(() => (logMessages(d.output()).includes('VRRP instance started') ? true : undefined), 'the instance to start', 30_000);
    // The removal is a warning (stderr) and the start is info (stdout): order them by their log
    // times, not by which pipe was read first.
    const at = (msg: string) => {
      const l = d.output().split('\n').find((x) => x.includes(`"msg":"${msg}"`))!;
      return Date.parse((JSON.parse(l) as { time: string }).time);
    };
    assert.ok(at('removed VIPs left by a previous run') <= at('VRRP instance started'), 'removed before the instance started');
    d.child.kill('SIGTERM');
    assert.equal((await d.exited).code, 0);
    assert.deepEqual(await vips(ns), [], 'a clean stop leaves no VIP');
  } finally {
    await topo.destroy();
  }
});
