/**
 * What `lvsd run` loads on its main thread before it starts (issue 18: a restarted director spent
 * most of its start loading modules in the lab guest, where every file read goes through hostfs):
 * the configuration is loaded on a worker thread (src/config/offload.ts), so the main thread
 * loads neither the schema nor zod nor the YAML parser (the worker does, once); pino-pretty only
 * for the `pretty` log format. Observed with a real module resolve hook in a child node process,
 * which records every module resolved while `lvsd run`'s module is imported.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { repoRoot } from '../support/proc.js';

/**
 * URLs of every module resolved while importing `entry` (a module of dist/src) in a fresh node;
 * `evaluates` false: the entry is not meant to run there (the loader's worker outside a worker).
 */
function resolvedWhileImporting(entry: string, evaluates = true): string[] {
  const dir = mkdtempSync(join(tmpdir(), 'lvsd-modules-'));
  try {
    const log = join(dir, 'resolved.txt');
    writeFileSync(join(dir, 'hooks.mjs'), `import { appendFileSync } from 'node:fs';
let file;
export function initialize(d) { file = d.file; }
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  appendFileSync(file, r.url + '\\n');
  return r;
}
`);
    writeFileSync(
      join(dir, 'main.mjs'),
      `import { register } from 'node:module';
register(${JSON.stringify(pathToFileURL(join(dir, 'hooks.mjs')).href)}, { data: { file: ${JSON.stringify(log)} } });
await import(${JSON.stringify(pathToFileURL(join(repoRoot, 'dist', 'src', entry)).href)});
`,
    );
    try {
      execFileSync(process.execPath, [join(dir, 'main.mjs')], { stdio: 'ignore', timeout: 60_000 });
    } catch (e) {
      // Every module is resolved before any is evaluated: the list is whole even when evaluating fails.
      if (evaluates) throw e;
    }
    return readFileSync(log, 'utf8').split('\n').filter(Boolean);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test("lvsd run's main thread loads neither the config schema, zod, the YAML parser nor pino-pretty", () => {
  const urls = resolvedWhileImporting('cli/run.js');
  // The check sees the modules lvsd run does load (else it proves nothing).
  for (const want of ['/dist/src/daemon/daemon.js', '/dist/src/config/offload.js', '/node_modules/pino/', '/node_modules/prom-client/']) {
    assert.ok(urls.some((u) => u.includes(want)), `${want} not seen among ${urls.length} resolved modules`);
  }
  const unwanted = urls.filter((u) => /\/node_modules\/(zod|js-yaml|pino-pretty)\/|\/dist\/src\/config\/(schema|load|positions|semantic)\.js$/.test(u));
  assert.deepEqual(unwanted, []);
});

test('the configuration loader (its worker) still loads the schema and the YAML parser', () => {
  const urls = resolvedWhileImporting('config/worker.js', false);
  for (const want of ['/dist/src/config/schema.js', '/node_modules/zod/', '/node_modules/js-yaml/']) {
    assert.ok(urls.some((u) => u.includes(want)), `${want} not resolved by the loader`);
  }
});
