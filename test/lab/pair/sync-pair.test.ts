/**
 * Connection sync between two real kernels: three lab guests (labPair), each its own UML kernel and
 * CPU, on one private segment (a uml_switch on a unix socket; no host network device). Directors a
 * and b run `lvsd run` with sync.channel lvsd in their guests' own root namespaces; guest c holds the
 * client and two DR real servers and drives the run (support/sync-driver.ts): connections opened
 * through a must appear in b's kernel (ipvsadm -Lnc in b's guest) and keep answering through b after
 * a's guest powers off at once.
 *
 * Runs on the host (it boots its own guests): scripts/test.mjs runs test/lab/pair/ beside the
 * one-guest lab suite.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { labPair } from '../../../src/lab/uml.js';
import { AGENT_PORT } from '../../../src/lab/pair-agent.js';
import { writeSyncDirectorConfig } from '../../../bench/support/sync-director.js';
import { repoRoot } from '../../support/proc.js';
import { pairSkip } from './support/skip.js';

const skip = pairSkip;

const VIP = '192.0.2.100';
const KEY = 'hex:' + 'c0ffee'.repeat(8);

test('channel lvsd across two kernels: connections opened through a appear in b\'s kernel and survive a\'s guest powering off', { skip, timeout: 900_000 }, async (t) => {
  const dir = mkdtempSync(join('/var/tmp', 'lvsd-pairtest-'));
  try {
    writeFileSync(join(dir, 'sync.key'), KEY + '\n');
    for (const [name, prio] of [['a', 150], ['b', 100]] as const) {
      // dir/a-19681.yaml, dir/b-19681.yaml: the driver starts lvsd with these.
      writeSyncDirectorConfig(dir, {
        name, prio, port: 19681, vip: VIP, channel: 'lvsd', syncId: 42, keyFile: join(dir, 'sync.key'),
        virtualServers: [`{ address: ${VIP}, port: 80, scheduler: rr, forwarding: dr, real_servers: [{ address: 192.0.2.11 }, { address: 192.0.2.12 }] }`],
      });
    }
    const out = { a: '', b: '', c: '' };
    const sink = (n: keyof typeof out) => {
      const s = new PassThrough();
      s.on('data', (d: Buffer) => (out[n] += d.toString()));
      return s;
    };
    const agentArgv = (addr: string) => [process.execPath, join(repoRoot, 'dist', 'src', 'lab', 'pair-agent.js'), addr, String(AGENT_PORT), '840'];
    const common = { cwd: repoRoot, rw: [dir], timeoutSec: 870, mem: '768M' };
    const res = await labPair([
      { name: 'a', addrs: ['192.0.2.2/24'], argv: agentArgv('192.0.2.2'), stdout: sink('a'), stderr: sink('a'), ...common },
      { name: 'b', addrs: ['192.0.2.3/24'], argv: agentArgv('192.0.2.3'), stdout: sink('b'), stderr: sink('b'), ...common },
      { name: 'c', addrs: ['192.0.2.60/24'], argv: [process.execPath, join(repoRoot, 'dist', 'test', 'lab', 'pair', 'support', 'sync-driver.js'), dir], stdout: sink('c'), stderr: sink('c'), ...common },
    ], { primary: 'c' });
    for (const l of out.c.trim().split('\n')) t.diagnostic(l);
    const all = () => Object.entries(out).map(([n, s]) => `--- guest ${n} (exit ${res[n]?.code}${res[n]?.error ? `: ${res[n]?.error}` : ''}) ---\n${s.slice(-4000)}`).join('\n');
    assert.equal(res.c!.code, 0, `the driver in guest c:\n${all()}`);
    assert.match(out.c, /b's kernel \(ipvsadm -Lnc in b's guest\) holds all 40 connections/);
    assert.match(out.c, /through b after a failed: 40\/40/);
    // a's guest powered off without reporting a status.
    assert.notEqual(res.a!.code, 0, all());
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
