#!/usr/bin/env node
// npm "install" script: builds the AF_PACKET addon (native/afpacket) with node-gyp where the package
// is installed. lvsd cannot send VRRP, GARP or NA without it, so a missing toolchain fails the
// install with the list of what is missing and the Debian packages that provide it, instead of
// node-gyp's own trace. `--check` only reports (exit 1 if something is missing) without building.
import { existsSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const addonDir = join(root, 'native', 'afpacket');

const onPath = (cmd) => (process.env.PATH ?? '').split(delimiter).some((d) => d && existsSync(join(d, cmd)));

/** Where node-gyp will take node_api.h from without downloading: --nodedir, or next to this node. */
function localHeaders() {
  const dirs = [process.env.npm_config_nodedir, join(dirname(process.execPath), '..')].filter(Boolean);
  return dirs.find((d) => existsSync(join(d, 'include', 'node', 'node_api.h')));
}

/** node-gyp: npm puts its bundled copy on PATH for lifecycle scripts and names it in npm_config_node_gyp. */
function nodeGyp() {
  const js = process.env.npm_config_node_gyp;
  if (js && existsSync(js)) return [process.execPath, js];
  if (onPath('node-gyp')) return ['node-gyp'];
  const bundled = join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  return existsSync(bundled) ? [process.execPath, bundled] : undefined;
}

function missingToolchain() {
  const missing = [];
  if (!onPath('python3')) missing.push('python3 (Debian: python3)');
  if (!onPath('make')) missing.push('make (Debian: make)');
  if (!onPath('cc') && !onPath('gcc')) missing.push('a C compiler, cc (Debian: gcc)');
  // node-gyp links the addon with the C++ driver even for C sources.
  if (!onPath('g++') && !onPath('c++')) missing.push('a C++ compiler for linking, g++ (Debian: g++)');
  if (!nodeGyp()) missing.push('node-gyp (Debian: npm, or `npm install -g node-gyp`)');
  return missing;
}

const missing = missingToolchain();
const headers = localHeaders();
if (missing.length) {
  process.stderr.write(
    `lvsd: cannot build the AF_PACKET addon (native/afpacket): missing ${missing.join(', ')}.\n` +
      `  Install them (Debian: apt-get install python3 make g++) and run the install again,\n` +
      `  or install the .deb, which ships the addon built (docs/install.md).\n`,
  );
  process.exit(1);
}
if (process.argv.includes('--check')) {
  process.stdout.write(`lvsd: toolchain complete; node headers ${headers ? `in ${headers}/include/node` : 'will be downloaded by node-gyp'}\n`);
  process.exit(0);
}
const gyp = nodeGyp();
const args = [...gyp.slice(1), 'rebuild', '--directory', addonDir, ...(headers ? [`--nodedir=${headers}`] : [])];
const r = spawnSync(gyp[0], args, { stdio: 'inherit' });
if (r.status !== 0) {
  process.stderr.write(
    `lvsd: node-gyp failed to build native/afpacket (exit ${r.status ?? r.signal}).\n` +
      (headers
        ? `  The toolchain is present; see node-gyp's messages above.\n`
        : `  No local Node.js headers (include/node/node_api.h next to ${process.execPath} or in npm_config_nodedir), and\n` +
          `  node-gyp could not download them: install the headers (Debian: libnode-dev; NodeSource nodejs ships them)\n` +
          `  or set npm_config_nodedir to a Node.js source/headers tree, then install again.\n`),
  );
  process.exit(1);
}
