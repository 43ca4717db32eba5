/**
 * Strict command lines (issue 17, item 5): every command refuses an unknown option, a stray argument
 * and a value given to a flag with exit 2 and a message that names the option (with a did-you-mean
 * for a near miss), before it does anything. `lvsd ipvs apply --dryrun` once programmed the kernel.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { lvsdBin, repoRoot } from '../support/proc.js';
import { parseCommandLine, UsageError } from '../../src/cli/args.js';

const run = (...args: string[]) => spawnSync(lvsdBin, args, { encoding: 'utf8', timeout: 20000 });
const example = join(repoRoot, 'examples', 'nat-pair.yaml');

test('a misspelt option is a usage error with a did-you-mean, and nothing is done', () => {
  const r = run('ipvs', 'apply', '--dryrun', '-c', example);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /unknown option --dryrun; did you mean --dry-run\?/);
  // Nothing was planned or applied: the operations list is printed only after the kernel was asked.
  assert.equal(r.stdout, '');
});

test('every command refuses unknown options, stray arguments and values given to flags', () => {
  const cases: Array<[string[], RegExp]> = [
    [['check-config', '-c', example, '--frobnicate'], /unknown option --frobnicate/],
    [['check-config', '-c', example, 'extra'], /unexpected argument "extra"/],
    [['check-config', '-c', example, '--json=yes'], /--json takes no value/],
    [['check-config', '--config'], /--config \(-c\) needs a value/],
    [['run', '--confg', example], /unknown option --confg; did you mean --config\?/],
    [['run', '-c', example, 'now'], /unexpected argument "now"/],
    [['status', '--jsn'], /unknown option --jsn; did you mean --json\?/],
    [['ipvs', 'show', '--all'], /unknown option --all/],
    [['sync', 'show', '--jsn'], /unknown option --jsn; did you mean --json\?/],
    [['sync', 'show', 'extra'], /unexpected argument "extra"/],
    [['sync', 'list'], /unknown sync command "list"/],
    [['ipvs', 'show', 'extra'], /unexpected argument "extra"/],
    [['schema', '--out', 'x'], /unknown option --out; did you mean --output\?/],
    [['demo', '--exampel', example], /unknown option --exampel; did you mean --example\?/],
    [['lab', 'exec', '--tmes', 'true'], /unknown option --tmes; did you mean --times\?/],
    [['lab', 'exec'], /lab exec needs a command/],
  ];
  for (const [args, want] of cases) {
    const r = run(...args);
    assert.equal(r.status, 2, `${args.join(' ')}: status ${r.status}, stderr ${r.stderr}`);
    assert.match(r.stderr, want, args.join(' '));
    assert.match(r.stderr, /--help/, `${args.join(' ')}: points at --help`);
  }
});

test('an unknown command suggests the near one', () => {
  const r = run('chek-config');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /unknown command "chek-config"; did you mean "check-config"\?/);
});

test('options of a command with a command line of its own stop at -- or at the first word', () => {
  const spec = { mem: { type: 'string' }, times: { type: 'boolean' }, rw: { type: 'string', multiple: true } } as const;
  const a = parseCommandLine(['--mem', '512M', '--rw', '/a', '--rw=/b', 'ip', '-o', 'link'], spec, { tail: true });
  assert.deepEqual({ ...a.values }, { mem: '512M', rw: ['/a', '/b'] });
  assert.deepEqual(a.rest, ['ip', '-o', 'link']);
  const b = parseCommandLine(['--times', '--', '--not-ours', 'x'], spec, { tail: true });
  assert.deepEqual({ ...b.values }, { times: true });
  assert.deepEqual(b.rest, ['--not-ours', 'x']);
  assert.throws(() => parseCommandLine(['--bogus', 'ip'], spec, { tail: true }), (e: unknown) => e instanceof UsageError && /unknown option --bogus/.test(e.message));
  // Without a tail, "--" does not smuggle positionals past the count.
  assert.throws(() => parseCommandLine(['--', 'x'], spec), (e: unknown) => e instanceof UsageError && /unexpected argument "x"/.test(e.message));
});
