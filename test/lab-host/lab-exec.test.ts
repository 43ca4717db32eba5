/**
 * `lvsd lab exec` seen from the host: exit status passed through, output streamed while the command
 * runs (stdout and stderr apart, no \r), environment whitelist, current directory, no network device
 * to the host, the timeout, and a clear error when the kernel is missing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { lvsdBin, repoRoot } from '../support/proc.js';
import { UML_KERNEL } from '../../src/lab/uml.js';

const skip = !existsSync(UML_KERNEL) ? `${UML_KERNEL} missing (apt-get install user-mode-linux)` : process.getuid?.() !== 0 ? 'needs root' : false;

interface Seen {
  code: number | null;
  out: string;
  err: string;
  /** ms after start at which each stdout chunk arrived, with its text */
  chunks: Array<[number, string]>;
  exitAt: number;
}

function lab(args: string[], env: NodeJS.ProcessEnv = process.env, onOut?: (text: string) => void): Promise<Seen> {
  const t0 = Date.now();
  const child = spawn(lvsdBin, ['lab', 'exec', ...args], { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const seen: Seen = { code: null, out: '', err: '', chunks: [], exitAt: 0 };
  child.stdout.on('data', (d: Buffer) => {
    seen.out += d.toString();
    seen.chunks.push([Date.now() - t0, d.toString()]);
    onOut?.(seen.out);
  });
  child.stderr.on('data', (d: Buffer) => (seen.err += d.toString()));
  return new Promise((resolve) =>
    child.on('close', (code) => {
      seen.code = code;
      seen.exitAt = Date.now() - t0;
      resolve(seen);
    }),
  );
}

test('exit status, streamed output, env whitelist, cwd, and only lo + fallback tunnels inside', { skip, timeout: 300_000 }, async () => {
  // Streamed = "first" reaches the host while the command still runs: the command waits (bounded,
  // 120 s) for a file the host writes only once it has read "first" (order, not a clock).
  const go = mkdtempSync(join('/var/tmp', 'lvsd-stream-test-'));
  const script = [
    'echo first',
    'echo to-stderr >&2',
    `i=0; while [ ! -e ${go}/go ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i+1)); done; [ -e ${go}/go ] && echo go-seen`,
    'echo "cwd=$(pwd)"',
    'echo "x=${LVSD_X:-unset} secret=${SECRET_Y:-unset} tmp=$TMPDIR lab=$LVSD_IN_LAB"',
    // Every device except lo must be the ipip fallback tunnel tunl0 (made by the ipip module, linked to nothing).
    'ip -o link show | grep -v -E "^[0-9]+: (lo|tunl0@NONE|ip6tnl0@NONE):" | sed "s/^/EXTRA /"',
    'ls /sys/class/net | tr "\\n" " "; echo',
    'exit 7',
  ].join('\n');
  const s = await lab(['--rw', go, '--', 'sh', '-c', script], { ...process.env, LVSD_X: 'passed', SECRET_Y: 'leak' }, (out) => {
    if (out.includes('first\n') && !existsSync(join(go, 'go'))) writeFileSync(join(go, 'go'), '');
  }).finally(() => rmSync(go, { recursive: true, force: true }));
  assert.equal(s.code, 7, s.err);
  assert.match(s.out, /^first\n/);
  assert.match(s.out, new RegExp(`cwd=${repoRoot}\\n`));
  assert.match(s.out, /x=passed secret=unset tmp=\/run\/tmp lab=1/);
  assert.doesNotMatch(s.out, /EXTRA/);
  assert.match(s.out, /^lo tunl0 $/m);
  assert.ok(!s.out.includes('\r'), 'no carriage returns');
  assert.match(s.err, /^to-stderr$/m);
  assert.ok(!s.out.includes('to-stderr'), 'stderr kept apart from stdout');
  // Streamed: the command saw the host's answer to "first", so "first" arrived before it ended.
  assert.match(s.out, /^go-seen$/m, 'the command ended without the host having read "first"');
  // Nothing left behind in /var/tmp.
  assert.deepEqual(readdirSync('/var/tmp').filter((n) => n.startsWith('lvsd-lab-') && !before.has(n)), []);
});

const before = new Set(existsSync('/var/tmp') ? readdirSync('/var/tmp') : []);

test('--rw mounts one host folder read-write; the rest stays read-only', { skip, timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join('/var/tmp', 'lvsd-rw-test-'));
  try {
    const s = await lab(['--rw', dir, '--', 'sh', '-c', `echo from-guest > ${dir}/out && ! touch ${repoRoot}/.lab-probe 2>/dev/null && echo ro-ok`]);
    assert.equal(s.code, 0, s.err);
    assert.match(s.out, /ro-ok/);
    assert.equal(readFileSync(join(dir, 'out'), 'utf8'), 'from-guest\n');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a reader that goes away (| head) does not crash lab exec; the status still comes back', { skip, timeout: 120_000 }, async () => {
  const child = spawn(lvsdBin, ['lab', 'exec', '--', 'sh', '-c', 'seq 1 50000; echo finished >&2; exit 3'], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  child.stdout.once('data', () => child.stdout.destroy());
  const code = await new Promise<number | null>((r) => child.on('close', (c) => r(c)));
  assert.equal(code, 3, err);
  assert.match(err, /finished/);
  assert.doesNotMatch(err, /EPIPE|Unhandled/);
});

test('--timeout kills the guest: exit 124', { skip, timeout: 60_000 }, async () => {
  const s = await lab(['--timeout', '8', '--', 'sleep', '60']);
  assert.equal(s.code, 124);
  assert.match(s.err, /killed after the 8 s timeout/);
  assert.ok(s.exitAt < 50_000, `took ${s.exitAt} ms`); // seconds-level: not the 60 s sleep (a loaded host boots slowly)
});

test('missing kernel: clear message, exit 69', async () => {
  const s = await lab(['--', 'true'], { ...process.env, LVSD_LAB_KERNEL: '/nonexistent/linux.uml', LVSD_LAB_INSTALL: '0' });
  assert.equal(s.code, 69);
  assert.match(s.err, /the lab needs Debian's user-mode-linux package/);
});

test('usage errors exit 2', async () => {
  assert.equal((await lab([])).code, 2);
  assert.equal((await lab(['--mem'])).code, 2);
  assert.equal((await lab(['--timeout', 'soon', '--', 'true'])).code, 2);
});
