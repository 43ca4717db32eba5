/**
 * deploy/lvsd.service, the hardened systemd unit: systemd's own analyser scores it (goal ≤ 3.0,
 * issue 19), the capabilities are exactly the three lvsd uses, and the commands it runs exist in
 * the CLI. systemd is not PID 1 here, so the sandbox itself is checked offline.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { repoRoot, lvsdBin } from '../support/proc.js';

const unitPath = join(repoRoot, 'deploy', 'lvsd.service');

/** The unit's [Service] keys, each with every value it is given (systemd keys may repeat). */
export function serviceKeys(text: string): Map<string, string[]> {
  const keys = new Map<string, string[]>();
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const s = /^\[(.+)\]$/.exec(line);
    if (s) { section = s[1]!; continue; }
    const eq = line.indexOf('=');
    if (section !== 'Service' || eq < 0) continue;
    const k = line.slice(0, eq).trim();
    keys.set(k, [...(keys.get(k) ?? []), line.slice(eq + 1).trim()]);
  }
  return keys;
}

const systemdAnalyze = ['/usr/bin/systemd-analyze', '/bin/systemd-analyze'].find((p) => existsSync(p));

test('systemd-analyze security scores the unit 3.0 or better', { skip: systemdAnalyze ? false : 'systemd-analyze is not installed' }, () => {
  const r = spawnSync(systemdAnalyze!, ['security', '--offline=true', '--no-pager', unitPath], { encoding: 'utf8' });
  const m = /Overall exposure level for lvsd\.service:\s*([0-9.]+)/.exec(r.stdout + r.stderr);
  assert.ok(m, `no score in systemd-analyze output:\n${r.stdout}${r.stderr}`);
  const score = Number(m[1]);
  assert.ok(score <= 3.0, `exposure ${score} > 3.0:\n${r.stdout}`);
});

test('the unit runs as lvsd with exactly CAP_NET_ADMIN, CAP_NET_RAW and CAP_SYS_NICE', () => {
  const k = serviceKeys(readFileSync(unitPath, 'utf8'));
  const one = (key: string): string => {
    const v = k.get(key);
    assert.ok(v && v.length === 1, `${key} set once (got ${JSON.stringify(v)})`);
    return v[0]!;
  };
  assert.equal(one('User'), 'lvsd');
  const caps = (s: string): string[] => s.split(/\s+/).sort();
  const want = ['CAP_NET_ADMIN', 'CAP_NET_RAW', 'CAP_SYS_NICE'];
  assert.deepEqual(caps(one('AmbientCapabilities')), want);
  assert.deepEqual(caps(one('CapabilityBoundingSet')), want);
  assert.deepEqual(one('RestrictAddressFamilies').split(/\s+/).sort(), ['AF_INET', 'AF_INET6', 'AF_NETLINK', 'AF_PACKET', 'AF_UNIX']);
  for (const [key, v] of [['ProtectSystem', 'strict'], ['ProtectHome', 'yes'], ['PrivateTmp', 'yes'], ['NoNewPrivileges', 'yes'],
    ['Restart', 'on-failure'], ['RuntimeDirectory', 'lvsd'], ['StateDirectory', 'lvsd']] as const) assert.equal(one(key), v, key);
  assert.ok(k.get('SystemCallFilter')?.length, 'SystemCallFilter is set');
  // Reload validates first: the check-config line comes before the signal.
  const reload = k.get('ExecReload') ?? [];
  assert.ok(reload.length >= 2 && /check-config/.test(reload[0]!) && !/check-config/.test(reload.at(-1)!), `ExecReload: ${reload.join(' | ')}`);
});

test('every lvsd command line in the unit is accepted by the CLI', () => {
  const k = serviceKeys(readFileSync(unitPath, 'utf8'));
  const lines = [...k.entries()].filter(([key]) => key.startsWith('Exec')).flatMap(([, v]) => v)
    .map((v) => v.replace(/^[-@:+!]+/, '').split(/\s+/)).filter((argv) => argv[0] === '/usr/bin/lvsd');
  assert.ok(lines.length >= 3, 'ExecStartPre, ExecStart and ExecReload call lvsd');
  for (const argv of lines) {
    const cmd = argv[1]!;
    // `lvsd CMD --help` exits 0 for a command the CLI knows.
    const r = spawnSync(process.execPath, [lvsdBin, cmd, '--help'], { encoding: 'utf8' });
    assert.equal(r.status, 0, `lvsd ${cmd} --help: ${r.stdout}${r.stderr}`);
  }
});
