/**
 * A Dockerfile read into stages of instructions (continuation lines joined, comments dropped),
 * and the build context as Docker would send it (.dockerignore applied). There is no container
 * engine on the CI machine, so test/deploy/docker.test.ts lints these and replays a stage's
 * COPY/RUN steps itself.
 */
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

export interface Instruction { readonly op: string; readonly args: string; readonly line: number }
export interface Stage { readonly from: string; readonly name?: string; readonly steps: Instruction[] }

export function parseDockerfile(text: string): Stage[] {
  const stages: Stage[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const start = i + 1;
    let l = lines[i]!;
    if (/^\s*(#|$)/.test(l)) continue;
    while (/\\\s*$/.test(l) && i + 1 < lines.length) {
      i++;
      if (/^\s*#/.test(lines[i]!)) continue;
      l = l.replace(/\\\s*$/, ' ') + lines[i]!.trim();
    }
    const m = /^\s*(\w+)\s+(.*)$/.exec(l);
    if (!m) throw new Error(`Dockerfile line ${start}: cannot parse "${l}"`);
    const op = m[1]!.toUpperCase();
    const args = m[2]!.trim();
    if (op === 'FROM') {
      const f = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args);
      if (!f) throw new Error(`Dockerfile line ${start}: bad FROM "${args}"`);
      stages.push({ from: f[1]!, ...(f[2] ? { name: f[2] } : {}), steps: [] });
    } else if (op !== 'ARG' || stages.length) {
      if (!stages.length) throw new Error(`Dockerfile line ${start}: ${op} before FROM`);
      stages.at(-1)!.steps.push({ op, args, line: start });
    }
  }
  return stages;
}

/** COPY/ADD arguments: flags (--from=…, --chown=…), sources, destination. JSON form included. */
export function copyArgs(args: string): { flags: Record<string, string>; srcs: string[]; dest: string } {
  let words: string[];
  const flags: Record<string, string> = {};
  let rest = args;
  for (let f = /^--(\w+)=(\S+)\s+/.exec(rest); f; f = /^--(\w+)=(\S+)\s+/.exec(rest)) {
    flags[f[1]!] = f[2]!;
    rest = rest.slice(f[0].length);
  }
  if (rest.startsWith('[')) words = JSON.parse(rest) as string[];
  else words = rest.split(/\s+/);
  return { flags, srcs: words.slice(0, -1), dest: words.at(-1)! };
}

/** .dockerignore patterns as a predicate over context-relative paths (`*` within a segment, `**`). */
export function dockerIgnore(root: string): (path: string) => boolean {
  const file = join(root, '.dockerignore');
  const pats = existsSync(file) ? readFileSync(file, 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#')) : [];
  const res = pats.map((p) => new RegExp(`^${p.replace(/^\//, '').replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*\*/g, '\u0000').replace(/\*/g, '[^/]*').replace(/\u0000/g, '.*')}(/|$)`));
  return (path) => res.some((r) => r.test(path));
}

/** The files Docker would send as context: git's view of the tree (no build output), minus .dockerignore. */
export function contextFiles(root: string): string[] {
  const r = spawnSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: root, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`git ls-files: ${r.stderr}`);
  const ignored = dockerIgnore(root);
  return r.stdout.split('\0').filter((p) => p && !ignored(p) && existsSync(join(root, p)));
}
