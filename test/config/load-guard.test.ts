/**
 * The loader refuses what is not a configuration file before reading it (FIFO, character devices,
 * directories, files over the size cap), stays linear with thousands of errors and shows the first
 * MAX_ERRORS_SHOWN with a count of the rest; the worker-thread path gives the same answers as the
 * in-process one, keeps the event loop turning, and turns a timeout or a dying worker into a
 * ConfigError. Real files, a real FIFO, real /dev/zero and /dev/urandom, the real executable.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { ConfigError, loadConfigFile, MAX_ERRORS_SHOWN, parseConfigText } from '../../src/config/load.js';
import { readConfigText } from '../../src/config/read.js';
import { loadConfigOffThread } from '../../src/config/offload.js';
import { lvsdBin, repoRoot } from '../support/proc.js';

const example = join(repoRoot, 'examples', 'vrrp-only.yaml');
const exampleText = readFileSync(example, 'utf8');

function withDir(fn: (dir: string) => Promise<void> | void): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lvsd-guard-'));
    try {
      await fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

/** `n` unknown top-level keys in front of a valid file: one error each. */
const unknownKeys = (n: number) => Array.from({ length: n }, (_, i) => `y_unknown_${i}: ${i}\n`).join('') + exampleText;

function ioError(f: () => unknown): ConfigError {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof ConfigError, `a ConfigError, got ${String(e)}`);
    return e;
  }
  assert.fail('expected a ConfigError');
}

test('a FIFO, /dev/zero, /dev/urandom through a symlink and a directory are refused by kind, without reading', withDir((dir) => {
  const fifo = join(dir, 'fifo.yaml');
  execFileSync('mkfifo', [fifo]); // nobody ever writes: a blocking open would wait forever
  const e1 = ioError(() => loadConfigFile(fifo));
  assert.equal(e1.code, 'CONFIG_IO');
  assert.equal(e1.message, `${fifo}:1:1: error: is a FIFO (named pipe), not a regular file: lvsd reads its configuration only from a regular file`);
  const zero = ioError(() => loadConfigFile('/dev/zero'));
  assert.match(zero.message, /^\/dev\/zero:1:1: error: is a character device, not a regular file/);
  const link = join(dir, 'random.yaml');
  symlinkSync('/dev/urandom', link);
  const rnd = ioError(() => loadConfigFile(link));
  assert.match(rnd.message, /error: is a character device \(the path leads to \/dev\/urandom\), not a regular file/);
  assert.match(ioError(() => loadConfigFile(dir)).message, /error: is a directory, not a regular file/);
}));

test('a file over the size cap is refused with its size and the cap; at the cap it is read', withDir((dir) => {
  const big = join(dir, 'big.yaml');
  const text = exampleText + `# ${'x'.repeat(2000)}\n`;
  writeFileSync(big, text);
  const size = Buffer.byteLength(text);
  const e = ioError(() => loadConfigFile(big, { maxBytes: size - 1, checkFiles: false }));
  assert.equal(e.code, 'CONFIG_IO');
  assert.match(e.message, new RegExp(`error: the file is ${size.toLocaleString('en-US')} bytes, larger than the limit of ${(size - 1).toLocaleString('en-US')} bytes$`));
  assert.equal(readConfigText(big, size), text);
  assert.equal(loadConfigFile(big, { maxBytes: size, checkFiles: false }).config.vrrp_instances.length, 1);
}));

test('10,000 unknown keys: the first 50 errors in file order, each positioned, the rest counted', () => {
  const n = 10_000;
  let err: ConfigError | undefined;
  try {
    parseConfigText(unknownKeys(n), 'many.yaml', { checkFiles: false, hostname: 'h' });
  } catch (e) {
    err = e as ConfigError;
  }
  assert.ok(err instanceof ConfigError);
  assert.equal(err.diagnostics.length, MAX_ERRORS_SHOWN);
  assert.equal(err.omitted, n - MAX_ERRORS_SHOWN);
  err.diagnostics.forEach((d, i) => {
    assert.equal(d.line, i + 1);
    assert.equal(d.column, 1);
    assert.equal(d.path, `y_unknown_${i}`);
    assert.match(d.message, new RegExp(`^unknown key "y_unknown_${i}"`));
  });
  assert.match(err.message, /\n… and 9,950 more errors$/);
});

test('the worker path gives the in-process answers: a valid model (frozen), and the same diagnostics', withDir(async (dir) => {
  const local = loadConfigFile(example, { checkFiles: false, hostname: 'h' });
  const remote = await loadConfigOffThread(example, { checkFiles: false, hostname: 'h' });
  assert.deepEqual(remote.config, local.config);
  assert.ok(Object.isFrozen(remote.config.vrrp_instances[0]));
  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, unknownKeys(200));
  const a = ioError(() => loadConfigFile(bad, { checkFiles: false }));
  const b = await loadConfigOffThread(bad, { checkFiles: false }).then(() => assert.fail('invalid'), (e: unknown) => e as ConfigError);
  assert.ok(b instanceof ConfigError);
  assert.equal(b.code, 'CONFIG_SCHEMA');
  assert.deepEqual(b.diagnostics, a.diagnostics);
  assert.equal(b.omitted, 150);
  const fifo = join(dir, 'fifo.yaml');
  execFileSync('mkfifo', [fifo]);
  const f = await loadConfigOffThread(fifo).then(() => assert.fail('a FIFO'), (e: unknown) => e as ConfigError);
  assert.equal(f.code, 'CONFIG_IO');
  assert.match(f.message, /is a FIFO/);
}));

/** A valid file of about `mib` MiB: virtual servers of 20 real servers each (~1,700 bytes a service). */
function bigConfig(mib: number): string {
  const out = ['global: { router_id: big }', 'virtual_servers:'];
  for (let v = 0; v < Math.ceil((mib * 1024 * 1024) / 1700); v++) {
    out.push(`  - address: 192.0.2.${1 + (v % 250)}`, `    port: ${1 + Math.floor(v / 250)}`, '    protocol: tcp', '    real_servers:');
    for (let r = 0; r < 20; r++) out.push(`      - { address: 198.51.100.${1 + r}, port: 80, weight: 1, checks: [{ type: tcp }] }`);
  }
  return out.join('\n') + '\n';
}

test('a load past its deadline is stopped and rejected while the event loop keeps turning', withDir(async (dir) => {
  const big = join(dir, 'big.yaml');
  writeFileSync(big, bigConfig(1));
  let ticks = 0;
  const timer = setInterval(() => ticks++, 1);
  try {
    // 1 ms: the worker cannot even load its modules by then, so the deadline always comes first.
    const e = await loadConfigOffThread(big, { timeoutMs: 1 }).then(() => assert.fail('the deadline comes first'), (x: unknown) => x as ConfigError);
    assert.ok(e instanceof ConfigError);
    assert.equal(e.code, 'CONFIG_TIMEOUT');
    assert.match(e.message, /big\.yaml:1:1: error: loading the file took longer than 0.001 s and was stopped; nothing from it was applied$/);
    // The same file loads when given time, and timers fire while the worker parses it.
    ticks = 0;
    const ok = await loadConfigOffThread(big, { checkFiles: false });
    assert.ok(ok.config.virtual_servers.length > 500);
    assert.ok(ticks > 0, 'timers ran while the worker was busy');
  } finally {
    clearInterval(timer);
  }
}));

test('a worker that runs out of its heap is a ConfigError, not a dead process', withDir(async (dir) => {
  const big = join(dir, 'big.yaml');
  writeFileSync(big, bigConfig(4));
  const e = await loadConfigOffThread(big, { maxHeapMb: 16, checkFiles: false }).then(() => assert.fail('16 MB is too little'), (x: unknown) => x as ConfigError);
  assert.ok(e instanceof ConfigError);
  assert.equal(e.code, 'CONFIG_WORKER');
  assert.match(e.message, /the configuration loader stopped: it needed more than the 16 MB heap allowed for loading a configuration; nothing from the file was applied$/);
}));

test('lvsd check-config names a FIFO and a file with 10,000 errors prints 50 lines and the count', withDir((dir) => {
  const fifo = join(dir, 'fifo.yaml');
  execFileSync('mkfifo', [fifo]);
  const r = spawnSync(lvsdBin, ['check-config', '-c', fifo, '--source'], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /fifo\.yaml:1:1: error: is a FIFO \(named pipe\), not a regular file/);
  const many = join(dir, 'many.yaml');
  writeFileSync(many, unknownKeys(10_000));
  const m = spawnSync(lvsdBin, ['check-config', '-c', many], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(m.status, 1);
  const lines = m.stderr.trimEnd().split('\n');
  assert.equal(lines.length, MAX_ERRORS_SHOWN + 1);
  assert.match(lines[0]!, /many\.yaml:1:1: error: y_unknown_0: unknown key "y_unknown_0"/);
  assert.equal(lines.at(-1), '… and 9,950 more errors');
  const j = spawnSync(lvsdBin, ['check-config', '-c', many, '--json'], { encoding: 'utf8', timeout: 60_000 });
  const parsed = JSON.parse(j.stdout) as { valid: boolean; diagnostics: unknown[]; omitted_errors: number };
  assert.equal(parsed.diagnostics.length, MAX_ERRORS_SHOWN);
  assert.equal(parsed.omitted_errors, 9950);
}));
