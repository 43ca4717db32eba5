/**
 * A reload with a hostile or broken file cannot hurt the running daemon (issue 17 items 2 and 10).
 * A real MASTER (`lvsd run`, priority 150) and a real BACKUP (priority 100) in network namespaces on
 * one bridge; then SIGHUP to the master with its config path holding, in turn:
 *   (a) the issue's 45,000-line invalid file (6,400 errors),
 *   (b) a file over the 4 MiB size cap,
 *   (c) a FIFO nobody writes to (a blocking open would hang),
 *   (d) a symlink to /dev/urandom (reading it never ends).
 * Each reload is rejected and counted; the backup never leaves BACKUP, the master never leaves
 * MASTER and keeps the VIP; /healthz, polled from inside the master's namespace the whole time,
 * answers 200 while the 45k-line file is being validated (between the SIGHUP and the rejection in
 * the log), not only after. Then a valid file reloads. Effects and order only: no durations.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Topology, isRoot, type Running } from '../../src/lab/netns.js';
import { waitFor } from '../support/proc.js';
import { apiGet, lvsdYaml, removeScratch, startLvsd, type PeerSpec } from '../election-net/support/peers.js';
import { bigLvsdYaml, ISSUE_45K } from './support/big-config.js';

const skip = !isRoot() && 'needs root (network namespaces)';
after(() => removeScratch());

const VIP = '192.0.2.42';
const spec = (name: string, priority: number): PeerSpec => ({ kind: 'lvsd', name, priority, version: 3, advert: 1, vips: [`${VIP}/24`], garpRepeat: 1, garpDelay: 1 });

/** Inside the namespace: GET /healthz every 20 ms, one line per answer "<status> <epoch ms>"; bounded. */
const healthPoller = `
const end = Date.now() + 600000;
(async () => {
  while (Date.now() < end) {
    try {
      const r = await fetch('http://127.0.0.1:9650/healthz', { signal: AbortSignal.timeout(5000) });
      await r.text();
      process.stdout.write(r.status + ' ' + Date.now() + '\\n');
    } catch (e) {
      process.stdout.write('err ' + Date.now() + '\\n');
    }
    await new Promise((r) => setTimeout(r, 20));
  }
})();`;

const answers = (p: Running) => p.output().split('\n').filter(Boolean).map((l) => { const [s, t] = l.split(' '); return { status: s!, at: Number(t) }; });

/** Epoch ms of the log lines whose msg matches, in order (pino JSON lines with ISO time). */
function logTimes(out: string, msg: RegExp): number[] {
  const times: number[] = [];
  for (const line of out.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const j = JSON.parse(line) as { msg?: string; time?: string };
      if (j.msg && msg.test(j.msg) && j.time) times.push(Date.parse(j.time));
    } catch {
      /* not a log line */
    }
  }
  return times;
}

test('SIGHUP with a 45k-line invalid file, an oversized file, a FIFO and /dev/urandom: rejected and counted, no transition, VIP kept, /healthz answers during the reload; a valid reload then applies', { skip, timeout: 600_000 }, async () => {
  const topo = new Topology();
  let poller: Running | undefined;
  try {
    const a = await topo.member('a', ['192.0.2.1/24']);
    const b = await topo.member('b', ['192.0.2.2/24']);
    const master = startLvsd(a, lvsdYaml(spec('master', 150)));
    const backup = startLvsd(b, lvsdYaml(spec('backup', 100)));
    const cfg = join(master.dir, 'lvsd.yaml');
    await waitFor(async () => (await a.addrs()).includes(VIP), 'the master to take the VIP', 60_000, 50);
    await waitFor(() => /VRRP INIT -> BACKUP|"to":"BACKUP"/.test(backup.proc.output()), 'the backup to be BACKUP', 60_000, 50);
    await waitFor(async () => !(await b.addrs()).includes(VIP), 'the backup to hold no VIP', 60_000, 50);
    poller = a.start([process.execPath, '-e', healthPoller]);
    await waitFor(() => answers(poller!).some((x) => x.status === '200'), '/healthz to answer', 30_000, 20);
    const masterTransitions = () => (master.proc.output().match(/VRRP \w+ -> /g) ?? []).length;
    const backupTransitions = () => (backup.proc.output().match(/VRRP \w+ -> /g) ?? []).length;
    const m0 = masterTransitions();
    const b0 = backupTransitions();

    const rejected = () => logTimes(master.proc.output(), /^reload rejected/);
    const loading = () => logTimes(master.proc.output(), /^reload: loading the configuration/);
    const reloadWith = async (what: string, put: () => void): Promise<{ loadingAt: number; rejectedAt: number }> => {
      rmSync(cfg, { force: true });
      put();
      const before = rejected().length;
      process.kill(master.pid, 'SIGHUP');
      await waitFor(() => rejected().length > before || undefined, `the reload with ${what} to be rejected`, 300_000, 20);
      return { loadingAt: loading()[before]!, rejectedAt: rejected()[before]! };
    };

    // (a) the 45,000-line file of the issue: validated on a worker thread. The poller asks one
    // request at a time, so if the daemon's loop were busy validating, at most the one answer already
    // in flight could arrive inside the window; two or more prove it answered while validating.
    const big = await reloadWith('the 45k-line invalid file', () => writeFileSync(cfg, bigLvsdYaml(ISSUE_45K)));
    const during = answers(poller).filter((x) => x.at > big.loadingAt && x.at < big.rejectedAt);
    assert.ok(during.length >= 2, `/healthz answered while the file was validated (${during.length} answers between the start of the load and the rejection)`);
    assert.ok(during.every((x) => x.status === '200'), `/healthz stayed 200 during the reload: ${JSON.stringify(during.filter((x) => x.status !== '200'))}`);
    assert.match(master.proc.output(), /wieght: unknown key \\"wieght\\"; did you mean \\"weight\\"\?/);
    assert.match(master.proc.output(), /… and 6,3\d\d more errors/);

    // (b) over the size cap
    await reloadWith('a 5 MiB file', () => writeFileSync(cfg, lvsdYaml(spec('master', 150)) + `# ${'x'.repeat(5 * 1024 * 1024)}\n`));
    assert.match(master.proc.output(), /the file is 5,24\d,\d{3} bytes, larger than the limit of 4,194,304 bytes/);
    // (c) a FIFO nobody writes to
    await reloadWith('a FIFO', () => execFileSync('mkfifo', [cfg]));
    assert.match(master.proc.output(), /is a FIFO \(named pipe\), not a regular file/);
    // (d) /dev/urandom through a symlink
    await reloadWith('a symlink to /dev/urandom', () => symlinkSync('/dev/urandom', cfg));
    assert.match(master.proc.output(), /is a character device \(the path leads to \/dev\/urandom\), not a regular file/);

    assert.equal(masterTransitions(), m0, 'the master never left MASTER');
    assert.equal(backupTransitions(), b0, 'the backup never left BACKUP');
    assert.ok((await a.addrs()).includes(VIP), 'the VIP stayed on the master');
    assert.ok(!(await b.addrs()).includes(VIP), 'the backup never took the VIP');
    const all = answers(poller);
    assert.ok(all.every((x) => x.status === '200'), `every /healthz answer was 200: ${JSON.stringify(all.filter((x) => x.status !== '200').slice(0, 5))}`);
    assert.ok(all.some((x) => x.at > rejected().at(-1)!), '/healthz still answers after the last rejection');

    const metrics = await apiGet(a, '/metrics');
    assert.match(metrics, /^lvsd_config_reloads_total\{result="failure"\} 4$/m);
    assert.match(metrics, /^lvsd_config_reloads_total\{result="success"\} 0$/m);

    // A valid file still reloads (a global change: no instance restarts).
    rmSync(cfg, { force: true });
    writeFileSync(cfg, lvsdYaml(spec('master', 150)).replace('global:\n', 'global:\n  log_level: warn\n'));
    process.kill(master.pid, 'SIGHUP');
    await waitFor(async () => /^lvsd_config_reloads_total\{result="success"\} 1$/m.test(await apiGet(a, '/metrics')) || undefined, 'the valid reload to be counted', 120_000, 200);
    const status = JSON.parse(await apiGet(a, '/status')) as { last_reload: { result: string } };
    assert.equal(status.last_reload.result, 'success');
    assert.equal(backupTransitions(), b0, 'the backup never left BACKUP');
    assert.ok((await a.addrs()).includes(VIP), 'the VIP is still on the master');
  } finally {
    if (poller?.child.pid) {
      try {
        process.kill(poller.child.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    await topo.destroy();
  }
});
