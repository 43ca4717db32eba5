/**
 * Logs for machines and people (issue 20), on the real daemon: JSON lines with string levels, `host`
 * and `router_id` on every line (child loggers too), trace..info on stdout and warn..fatal on stderr;
 * under journald (JOURNAL_STREAM names the stream) each line carries its syslog priority prefix;
 * `--log-format pretty` prints one readable line per event; a bad format is a usage error.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, fstatSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor, lvsdBin } from '../support/proc.js';

/**
 * A config that makes the daemon log at info (start) and at error (no IPVS on this host, or a health
 * check failing). Its API port is 0: nothing in this test talks to it.
 */
function config(dir: string): string {
  return `global:
  router_id: logger-test
  state_dir: ${dir}/state
  api: { listen: 127.0.0.1:0 }
virtual_servers:
  - name: web
    address: 192.0.2.10
    port: 80
    forwarding: nat
    real_servers:
      - { address: 127.0.0.1, port: 1, checks: [{ type: tcp }] }
`;
}

/** Runs `lvsd run` with stdout and stderr in files until `until(stdout, stderr)` holds, then stops it. */
async function runDaemon(args: string[], until: (out: string, err: string) => boolean, env: NodeJS.ProcessEnv = process.env, journal = false): Promise<{ out: string; err: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'lvsd-log-'));
  const file = join(dir, 'lvsd.yaml');
  writeFileSync(file, config(dir));
  const outFd = openSync(join(dir, 'out'), 'w');
  const errFd = openSync(join(dir, 'err'), 'w');
  // Under systemd, JOURNAL_STREAM is "device:inode" of the stream connected to journald.
  const st = fstatSync(errFd);
  const e = journal ? { ...env, JOURNAL_STREAM: `${st.dev}:${st.ino}` } : env;
  const child = spawn(lvsdBin, ['run', '-c', file, ...args], { stdio: ['ignore', outFd, errFd], env: e });
  const read = () => ({ out: readFileSync(join(dir, 'out'), 'utf8'), err: readFileSync(join(dir, 'err'), 'utf8') });
  try {
    await waitFor(() => {
      const r = read();
      return until(r.out, r.err) || undefined;
    }, 'the expected log lines', 30_000, 100);
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    return read();
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    closeSync(outFd);
    closeSync(errFd);
    rmSync(dir, { recursive: true, force: true });
  }
}

const json = (s: string) => s.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);

test('JSON lines: string levels, host and router_id on every line, info on stdout, errors on stderr', async () => {
  const { out, err } = await runDaemon([], (o, e) => o.includes('"lvsd running"') && e.includes('"level":"error"'));
  const outLines = json(out);
  const errLines = json(err);
  assert.ok(outLines.length > 3 && errLines.length > 0);
  for (const l of outLines) assert.ok(['trace', 'debug', 'info'].includes(l.level as string), `stdout: ${JSON.stringify(l)}`);
  for (const l of errLines) assert.ok(['warn', 'error', 'fatal'].includes(l.level as string), `stderr: ${JSON.stringify(l)}`);
  for (const l of [...outLines, ...errLines]) assert.equal(l.host, hostname());
  // router_id is known once the configuration is loaded: every line from then on, children included.
  const first = outLines.findIndex((l) => l.router_id === 'logger-test');
  assert.ok(first >= 0, out);
  for (const l of [...outLines.slice(first), ...errLines]) assert.equal(l.router_id, 'logger-test', JSON.stringify(l));
  assert.ok(outLines.some((l) => l.subsystem === 'health' && l.router_id === 'logger-test'), 'a child logger line carries router_id');
  assert.ok(errLines.some((l) => l.subsystem === 'ipvs' || l.subsystem === 'health'), err);
});

test('under journald each line starts with its syslog priority (journalctl -p err finds errors)', async () => {
  const { err } = await runDaemon([], (_o, e) => e.includes('"level":"error"'), process.env, true);
  const lines = err.split('\n').filter(Boolean);
  assert.ok(lines.length > 0);
  for (const l of lines) assert.match(l, /^<[234]>\{/, l);
  const errLine = lines.find((l) => l.includes('"level":"error"'))!;
  assert.ok(errLine.startsWith('<3>'), errLine);
  assert.equal((JSON.parse(errLine.slice(3)) as { router_id: string }).router_id, 'logger-test', 'the JSON after the prefix is intact');
});

test('--log-format pretty prints one readable line per event; a bad format is a usage error', async () => {
  const { out, err } = await runDaemon(['--log-format', 'pretty'], (o, e) => /lvsd running/.test(o) && /ERROR/.test(e));
  const line = out.split('\n').find((l) => l.includes('lvsd running'))!;
  assert.match(line, /INFO/);
  assert.throws(() => JSON.parse(line));
  assert.match(err, /ERROR/);
  const bad = spawnSync(lvsdBin, ['run', '-c', '/dev/null', '--log-format', 'xml'], { encoding: 'utf8', timeout: 15_000 });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--log-format: "xml" is not one of json, pretty/);
});
