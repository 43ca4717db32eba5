/**
 * The Dockerfile without a container engine (the CI machine has only a docker client): a lint of
 * the rules the image must keep (multi-stage, pinned bases, no ADD of URLs, a non-root user, only
 * the runtime tree copied into the final stage), then the build stage's own steps replayed — its
 * COPYs from a clean context (git's files minus .dockerignore) and its RUNs as written — in a
 * private mount namespace over an overlayfs of this machine (a Debian 12 with Node 20, like the
 * node:20-bookworm base), so the steps cannot rot and the host is not touched.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { spawnSync } from 'node:child_process';
import { repoRoot } from '../support/proc.js';
import { inOverlay, shQuote } from '../support/overlay.js';
import { parseDockerfile, copyArgs, contextFiles, type Stage } from '../support/dockerfile.js';

const text = readFileSync(join(repoRoot, 'Dockerfile'), 'utf8');
const stages = parseDockerfile(text);
const sh = shQuote;

test('Dockerfile: multi-stage, pinned bases, no ADD of URLs, non-root final user, only capabilities NET_ADMIN and NET_RAW', () => {
  assert.ok(stages.length >= 2, 'a build stage and a runtime stage');
  const names = new Set(stages.map((s) => s.name).filter(Boolean));
  for (const s of stages) {
    if (names.has(s.from)) continue;
    // A full version tag (x.y.z…) or a digest; never latest or a bare major.
    assert.match(s.from, /^[\w./-]+(:[\w.-]*\d+\.\d+\.\d+[\w.-]*)?(@sha256:[0-9a-f]{64})?$/, `base ${s.from}`);
    assert.ok(/:\S*\d+\.\d+\.\d+/.test(s.from) || /@sha256:/.test(s.from), `base ${s.from} is pinned`);
  }
  for (const s of stages) for (const i of s.steps) {
    if (i.op === 'ADD') assert.ok(!copyArgs(i.args).srcs.some((p) => /^[a-z]+:\/\//i.test(p)), `line ${i.line}: ADD of a URL`);
  }
  const final = stages.at(-1)!;
  const users = final.steps.filter((i) => i.op === 'USER');
  assert.ok(users.length, 'the final stage sets USER');
  assert.doesNotMatch(users.at(-1)!.args, /^(root|0)(:|$)/, 'the final user is not root');
  const lastUser = final.steps.indexOf(users.at(-1)!);
  assert.ok(!final.steps.slice(lastUser).some((i) => i.op === 'RUN'), 'nothing runs as root after USER');
  // The runtime stage takes the built tree, not the sources or the toolchain.
  assert.ok(final.steps.some((i) => i.op === 'COPY' && copyArgs(i.args).flags.from === stages[0]!.name), 'COPY --from the build stage');
  assert.ok(!final.steps.some((i) => i.op === 'COPY' && !copyArgs(i.args).flags.from), 'no COPY from the context into the runtime image');
  for (const i of final.steps.filter((s) => s.op === 'RUN')) assert.doesNotMatch(i.args, /install[^&]*\b(g\+\+|gcc|make|python3)\b/, `line ${i.line}: a toolchain in the runtime image`);
  // The capabilities the header documents are the ones the file capabilities grant.
  const setcap = final.steps.map((i) => /setcap\s+(\S+)/.exec(i.args)?.[1]).find(Boolean);
  assert.equal(setcap, 'cap_net_admin,cap_net_raw+ep');
  assert.match(text, /--cap-drop ALL --cap-add NET_ADMIN --cap-add NET_RAW/);
  const entry = final.steps.find((i) => i.op === 'ENTRYPOINT');
  assert.deepEqual(JSON.parse(entry!.args), ['lvsd']);
});

/** The shell script that replays a stage: WORKDIR, ENV/ARG, COPY from ctx, RUN; one `step_LINE=rc` per RUN. */
function replay(stage: Stage, ctx: string): string {
  let wd = '/';
  const out = ['set -u', 'export HOME=/root'];
  for (const i of stage.steps) {
    if (i.op === 'WORKDIR') { wd = posix.resolve(wd, i.args); out.push(`mkdir -p ${sh(wd)}`); }
    else if (i.op === 'ENV' || i.op === 'ARG') { if (i.args.includes('=')) out.push(`export ${i.args}`); }
    else if (i.op === 'COPY') {
      const { flags, srcs, dest } = copyArgs(i.args);
      assert.ok(!flags.from, `line ${i.line}: COPY --from in a build stage is not replayed`);
      const to = posix.resolve(wd, dest);
      const intoDir = dest.endsWith('/') || srcs.length > 1;
      for (const src of srcs) {
        // Docker copies a directory's contents; a file into a directory keeps its name.
        out.push(`if [ -d ${sh(`${ctx}/${src}`)} ]; then mkdir -p ${sh(to)} && cp -a ${sh(`${ctx}/${src}`)}/. ${sh(to)}/; ` +
          `else mkdir -p ${sh(intoDir ? to : posix.dirname(to))} && cp -a ${sh(`${ctx}/${src}`)} ${sh(intoDir ? `${to}/` : to)}; fi || { echo "copy_${i.line}=failed"; exit 1; }`);
      }
    } else if (i.op === 'RUN') {
      out.push(`(cd ${sh(wd)} && sh -ec ${sh(i.args)}) >>/tmp/replay.log 2>&1; rc=$?; echo "step_${i.line}=$rc"; [ $rc = 0 ] || { tail -40 /tmp/replay.log; exit 1; }`);
      if (/\bnpm ci\b/.test(i.args)) out.push(`echo "addon_after_npm_ci=$(test -f ${sh(wd)}/native/afpacket/build/Release/afpacket.node && echo built || echo missing)"`);
    } else if (!['LABEL', 'EXPOSE', 'USER', 'ENTRYPOINT', 'CMD'].includes(i.op)) {
      assert.fail(`line ${i.line}: ${i.op} is not replayed by this test`);
    }
  }
  return out.join('\n');
}

const canRun = process.getuid?.() === 0 && ['unshare', 'chroot', 'git'].every((c) => spawnSync('sh', ['-c', `command -v ${c}`]).status === 0);

test('the build stage\'s steps run from a clean context and produce a runnable lvsd tree', { skip: canRun ? false : 'needs root, unshare, chroot and git' }, (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lvsd-docker-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const ctx = join(dir, 'ctx');
  const files = contextFiles(repoRoot);
  assert.ok(!files.some((f) => /^(node_modules|dist)\/|\/build\//.test(f)), 'the context holds no build output');
  const cp = spawnSync('sh', ['-c', `mkdir -p ${sh(ctx)} && tar -C ${sh(repoRoot)} --null -T - -cf - | tar -C ${sh(ctx)} -xf -`], { input: files.join('\0') + '\0' });
  assert.equal(cp.status, 0, String(cp.stderr));

  const build = stages[0]!;
  const final = stages.at(-1)!;
  // What the runtime stage copies from the build stage must exist once the build stage ran.
  const copied = final.steps.filter((i) => i.op === 'COPY' && copyArgs(i.args).flags.from === build.name).flatMap((i) => copyArgs(i.args).srcs);
  const script = `${replay(build, ctx)}
for p in ${copied.map(sh).join(' ')}; do echo "copied_exists=$(test -e "$p" && echo yes || echo "no:$p")"; done
echo "version=$(/out/root/usr/lib/lvsd/bin/lvsd --version 2>&1)"`;
  const { out, status, facts } = inOverlay(dir, script, 540_000);
  const runs = build.steps.filter((i) => i.op === 'RUN');
  assert.equal(facts.filter(([k, v]) => k.startsWith('step_') && v === '0').length, runs.length, `every RUN succeeded:\n${out}`);
  assert.ok(facts.some(([k, v]) => k === 'addon_after_npm_ci' && v === 'built'), `npm ci built the addon (the install script):\n${out}`);
  const version = (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
  assert.ok(facts.some(([k, v]) => k === 'version' && v === `lvsd ${version}`), out);
  for (const [k, v] of facts) if (k === 'copied_exists') assert.equal(v, 'yes', out);
  assert.equal(status, 0, out);
});
