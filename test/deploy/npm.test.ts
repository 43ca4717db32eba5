/**
 * The npm package: what `npm pack` puts in the tarball (package.json "files"), and the install
 * script that builds the AF_PACKET addon on the target — with a clear error naming the missing
 * toolchain when it cannot. The successful install-time build runs in docker.test.ts (the
 * Dockerfile's `npm ci`).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { repoRoot } from '../support/proc.js';

const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as {
  private?: boolean; scripts: Record<string, string>; files: string[];
};

test('npm pack ships the built code, the addon sources and the install script, not tests or benches', () => {
  assert.notEqual(pkg.private, true, 'the package can be packed and published');
  assert.match(pkg.scripts.install ?? '', /install-native\.mjs/);
  assert.match(pkg.scripts.prepack ?? '', /tsc/, 'dist/ is built before packing');
  const r = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: repoRoot, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const files = (JSON.parse(r.stdout) as Array<{ files: Array<{ path: string }> }>)[0]!.files.map((f) => f.path);
  for (const want of ['bin/lvsd', 'dist/src/cli/main.js', 'dist/src/election/announce.js', 'native/afpacket/afpacket.c', 'native/afpacket/addon.h',
    'native/afpacket/binding.gyp', 'scripts/install-native.mjs', 'docs/config.md', 'deploy/lvsd.service', 'package.json'])
    assert.ok(files.includes(want), `${want} is packed`);
  // Every source the addon's build names (a new .c file must ship too).
  const gyp = JSON.parse(readFileSync(join(repoRoot, 'native', 'afpacket', 'binding.gyp'), 'utf8')) as { targets: Array<{ sources: string[] }> };
  for (const src of gyp.targets.flatMap((tg) => tg.sources)) assert.ok(files.includes(`native/afpacket/${src}`), `native/afpacket/${src} is packed`);
  for (const f of files) {
    assert.doesNotMatch(f, /^(dist\/)?(test|bench)\/|\.map$|^native\/afpacket\/build\//, `${f} is not packed`);
  }
});

test('the install script names each missing tool and fails; with the toolchain present it says so', () => {
  const script = join(repoRoot, 'scripts', 'install-native.mjs');
  // An empty PATH: no python3, make, compilers; npm_config_node_gyp unset so node-gyp is looked up too.
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: '/nonexistent' };
  delete env.npm_config_node_gyp;
  const bare = spawnSync(process.execPath, [script], { env, encoding: 'utf8' });
  assert.equal(bare.status, 1);
  for (const tool of ['python3', 'make', 'cc', 'g++']) assert.match(bare.stderr, new RegExp(`\\s${tool.replace(/\+/g, '\\+')}\\s`), `names ${tool}:\n${bare.stderr}`);
  assert.match(bare.stderr, /apt-get install python3 make g\+\+/);
  const ok = spawnSync(process.execPath, [script, '--check'], { encoding: 'utf8' });
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /toolchain complete/);
});
