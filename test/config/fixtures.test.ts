/**
 * Every file under test/fixtures/config/{valid,invalid} is loaded and its diagnostics compared with
 * the `# expect:` lines at its end, exactly and in order:
 *
 *   # expect: LINE:COLUMN SEVERITY PATH = MESSAGE
 *
 * (PATH is "-" for the document root; the fixtures directory in messages is written <fixtures>;
 * keys/ holds the sync key files the lvsd-channel fixtures name.)
 * The expectations sit at the end so they do not move the lines they talk about. A valid fixture
 * without expectations must load with no diagnostic at all. Each file is also loaded with CRLF line
 * endings and with a UTF-8 byte order mark, which must not change a single position.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseConfigText, ConfigError, type Diagnostic } from '../../src/config/load.js';
import { repoRoot } from '../support/proc.js';

export const fixturesDir = join(repoRoot, 'test', 'fixtures', 'config');

// The sync key files the fixtures name (keys/): git keeps no mode but 644 or 755, and the loader
// warns about a key file others may read. The owner's only, but exposed.key (that warning's fixture).
for (const k of readdirSync(join(fixturesDir, 'keys'))) chmodSync(join(fixturesDir, 'keys', k), k === 'exposed.key' ? 0o644 : 0o600);

export function diagnose(text: string, file: string): { valid: boolean; diags: readonly Diagnostic[] } {
  try {
    const r = parseConfigText(text, file, { checkFiles: true, hostname: 'test' });
    return { valid: true, diags: r.warnings };
  } catch (e) {
    if (e instanceof ConfigError) return { valid: false, diags: e.diagnostics };
    throw e;
  }
}

export const render = (d: Diagnostic) =>
  `${d.line}:${d.column} ${d.severity} ${d.path || '-'} = ${d.message.split(fixturesDir).join('<fixtures>')}`;

function expectations(text: string): string[] {
  return [...text.matchAll(/^# expect: (.*?)\r?$/gm)].map((m) => m[1]!);
}

for (const kind of ['valid', 'invalid'] as const) {
  const dir = join(fixturesDir, kind);
  for (const name of readdirSync(dir).filter((n) => n.endsWith('.yaml')).sort()) {
    const file = join(dir, name);
    const text = readFileSync(file, 'utf8');
    const want = expectations(text);
    test(`${kind}/${name}`, () => {
      const r = diagnose(text, file);
      assert.equal(r.valid, kind === 'valid', `${name}: expected ${kind}, got:\n${r.diags.map(render).join('\n')}`);
      for (const d of r.diags) assert.equal(d.file, file);
      assert.deepEqual(r.diags.map(render), want);
      if (kind === 'invalid') assert.ok(want.some((w) => / error /.test(w)), 'an invalid fixture expects at least one error');
    });
    test(`${kind}/${name} with CRLF line endings and a byte order mark`, () => {
      const crlf = text.replace(/\r?\n/g, '\r\n');
      assert.deepEqual(diagnose(crlf, file).diags.map(render), want, 'CRLF');
      assert.deepEqual(diagnose('\ufeff' + text, file).diags.map(render), want, 'BOM');
    });
  }
}
