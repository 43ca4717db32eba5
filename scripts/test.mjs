#!/usr/bin/env node
// Runs the whole test suite: every compiled test file under dist/test (host: unit tests, loopback
// servers, network namespaces), then the real-kernel suite (dist/test/lab) inside the UML lab, then
// the tests of several real kernels (dist/test/lab/pair: run on the host, each boots its own guests).
// Usage: node scripts/test.mjs [--only host|lab] [filter-substring]
import { readdirSync, statSync, existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
let only;
const oi = args.indexOf('--only');
if (oi >= 0) { only = args[oi + 1]; args.splice(oi, 2); }
const filter = args[0];

function walk(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? walk(p) : p.endsWith('.test.js') ? [p] : [];
  });
}
const all = walk(join(root, 'dist', 'test')).sort();
const pick = (xs) => (filter ? xs.filter((f) => f.includes(filter)) : xs);
const labDir = join(root, 'dist', 'test', 'lab') + '/';
const host = pick(all.filter((f) => !f.startsWith(labDir)));
const pairDir = labDir + 'pair/';
const lab = pick(all.filter((f) => f.startsWith(labDir) && !f.startsWith(pairDir)));
const pair = pick(all.filter((f) => f.startsWith(pairDir)));

let failed = false;
if (only !== 'lab' && host.length) {
  // 600 s a file: the whole-product demo takes ~85 s on a quiet machine and over 300 s on a loaded one.
  const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', '--test-timeout=600000', ...host], { stdio: 'inherit', cwd: root });
  if (r.status !== 0) failed = true;
}
if (only !== 'host' && lab.length) {
  // One guest boot for the whole real-kernel suite; `lvsd lab exec` exits with the command's status.
  // The guest lives at most an hour (lab exec's default is 30 min; the suite takes ~15 min quiet).
  // 600 s a file: the sync pair test starts lvsd four times, ~60 s each in the guest on a loaded machine.
  const r = spawnSync(join(root, 'bin', 'lvsd'), ['lab', 'exec', '--timeout', '3600', '--', process.execPath, '--test', '--test-concurrency=1', '--test-timeout=600000', ...lab], { stdio: 'inherit', cwd: root });
  if (r.status !== 0) failed = true;
}
if (only !== 'host' && pair.length) {
  const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', '--test-timeout=900000', ...pair], { stdio: 'inherit', cwd: root });
  if (r.status !== 0) failed = true;
}
process.exit(failed ? 1 : 0);
