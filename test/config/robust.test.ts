/**
 * Bad input never crashes the loader: random edits of the examples (deleted, duplicated and
 * inserted characters, swapped lines, re-indented lines) either load or fail with a ConfigError
 * whose diagnostics all point inside the file. Bounded: a fixed number of runs per example.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { parseConfigText, ConfigError } from '../../src/config/load.js';
import { repoRoot } from '../support/proc.js';

const fromDir = (dir: string, runs: number) =>
  readdirSync(join(repoRoot, dir))
    .filter((n) => n.endsWith('.yaml'))
    .map((n) => ({ name: `${dir}/${n}`, text: readFileSync(join(repoRoot, dir, n), 'utf8'), runs }));
// The examples get many runs; the broken fixtures (already odd shapes) fewer each.
const examples = [...fromDir('examples', 300), ...fromDir('test/fixtures/config/invalid', 40)];

type Edit =
  | { kind: 'delete'; at: number; len: number }
  | { kind: 'insert'; at: number; s: string }
  | { kind: 'swap'; line: number }
  | { kind: 'indent'; line: number; by: number };

const edit = fc.oneof(
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 8 }) }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), s: fc.constantFrom(':', ' ', '- ', '\n', '\t', '[', '{', '"', "'", '&a ', '*a', '<<: ', '#', '0', '-1', 'x', '\r\n', '\ufeff', '?') }),
  fc.record({ kind: fc.constant('swap' as const), line: fc.nat() }),
  fc.record({ kind: fc.constant('indent' as const), line: fc.nat(), by: fc.integer({ min: -4, max: 4 }) }),
);

function apply(text: string, edits: Edit[]): string {
  for (const e of edits) {
    if (e.kind === 'delete') { const at = e.at % (text.length + 1); text = text.slice(0, at) + text.slice(at + e.len); }
    else if (e.kind === 'insert') { const at = e.at % (text.length + 1); text = text.slice(0, at) + e.s + text.slice(at); }
    else {
      const lines = text.split('\n');
      const i = e.line % lines.length;
      if (e.kind === 'swap' && i + 1 < lines.length) [lines[i], lines[i + 1]] = [lines[i + 1]!, lines[i]!];
      if (e.kind === 'indent') lines[i] = e.by >= 0 ? ' '.repeat(e.by) + lines[i]! : lines[i]!.replace(new RegExp(`^ {0,${-e.by}}`), '');
      text = lines.join('\n');
    }
  }
  return text;
}

for (const ex of examples) {
  test(`random edits of ${ex.name} give a positioned error or a valid config, never a crash`, () => {
    fc.assert(
      fc.property(fc.array(edit, { minLength: 1, maxLength: 4 }), (edits) => {
        const text = apply(ex.text, edits);
        // Never past the last line that has something on it.
        const lineCount = Math.max(1, text.replace(/[ \t\r\n]+$/, '').split(/\r\n|\r|\n/).length);
        try {
          parseConfigText(text, ex.name, { checkFiles: false, hostname: 'h' });
        } catch (e) {
          if (!(e instanceof ConfigError)) throw e;
          assert.ok(e.diagnostics.length > 0);
          for (const d of e.diagnostics) {
            assert.ok(d.line >= 1 && d.line <= lineCount, `line ${d.line} outside 1..${lineCount}: ${d.message}`);
            assert.ok(d.column >= 1, `column ${d.column}`);
            assert.ok(d.message.length > 0);
          }
        }
      }),
      { numRuns: ex.runs, seed: 20261123 },
    );
  });
}
