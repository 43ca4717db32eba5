/**
 * Fuzzing the configuration loader (issue 17 item 10): at least 100,000 generated inputs per run,
 * fed to the in-process loader (the function the worker thread runs; the worker path itself is in
 * load-guard.test.ts). Every input must give a valid model or a ConfigError whose errors are
 * positioned inside the text with a message — never another exception (a crash) and never an input
 * that takes seconds (a hang; the per-input bound is in seconds, generous for a loaded machine).
 * Three sources:
 *   - YAML-ish text: lines assembled from the schema's own key names, YAML punctuation
 *     (indicators, anchors, aliases, merge keys, flow brackets, quotes, tags) and odd values;
 *   - valid files (examples/, test/fixtures/config/valid) mutated: bytes deleted, inserted,
 *     duplicated, lines swapped, re-indented or repeated;
 *   - random bytes, decoded as the loader decodes a file (UTF-8).
 * Seeds are fixed so a failure reproduces; FUZZ_SEED=N runs other inputs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { parseConfigText, ConfigError, schemaKeyPaths } from '../../src/config/load.js';
import { repoRoot } from '../support/proc.js';

const SEED = Number(process.env.FUZZ_SEED ?? 20261203);
/** An input taking this long is a hang (typical inputs take well under a millisecond). */
const HANG_MS = 5000;

let inputs = 0;
let valid = 0;
let slowest = 0;

/** The loader's contract for one input; throws (fails the property) on a crash or a bad diagnostic. */
function check(text: string): void {
  inputs++;
  const t0 = performance.now();
  try {
    parseConfigText(text, 'fuzz.yaml', { checkFiles: false, hostname: 'h' });
    valid++;
  } catch (e) {
    if (!(e instanceof ConfigError)) throw new Error(`crash: ${e instanceof Error ? e.stack : String(e)}\ninput: ${JSON.stringify(text.slice(0, 400))}`);
    const errors = e.diagnostics.filter((d) => d.severity === 'error');
    assert.ok(errors.length > 0, 'a rejection names at least one error');
    // Lines as the loader counts them (LF, CRLF, lone CR), after a leading byte order mark.
    const lines = text.replace(/^\uFEFF/, '').split(/\r\n|\r|\n/).length;
    for (const d of e.diagnostics) {
      assert.equal(d.file, 'fuzz.yaml');
      assert.ok(Number.isInteger(d.line) && d.line >= 1 && d.line <= lines, `line ${d.line} outside 1..${lines}: ${d.message}`);
      assert.ok(Number.isInteger(d.column) && d.column >= 1, `column ${d.column}`);
      assert.ok(d.message.length > 0);
    }
  } finally {
    const ms = performance.now() - t0;
    slowest = Math.max(slowest, ms);
    assert.ok(ms < HANG_MS, `an input took ${Math.round(ms)} ms: ${JSON.stringify(text.slice(0, 400))}`);
  }
}

// ---------------------------------------------------------------- YAML-ish text from the schema's words
const keyNames = [...new Set(schemaKeyPaths().map((e) => e.path.split('.').pop()!.replace(/\[\]$/, '')))];
const key = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...keyNames) },
  { weight: 1, arbitrary: fc.constantFrom('x-defaults', '<<', '? x', '"quoted key"', "'k'", '-name', 'vrrp_instance', 'lb_algo', '') },
  { weight: 1, arbitrary: fc.string({ maxLength: 8 }) },
);
const scalar = fc.oneof(
  fc.constantFrom('192.0.2.1', '192.0.2.1/24', '2001:db8::1', '[::1]:9650', 'eth0', 'tcp', 'udp', 'dr', 'nat', 'tun', 'wrr', 'MASTER', 'BACKUP', 'true', 'false', 'yes', 'null', '~', '0', '-1', '255', '256', '0.1', '1e3', '.inf', '0x10', '"unterminated', "'x'", '"a\\u0000b"', '!!str 5', '!!binary aGk=', '&a 1', '*a', '*nope', '[]', '{}', '[1, 2', '{a: 1', '|', '>-', '@', '`', '%YAML 1.2', '---', '...', '#c'),
  fc.integer({ min: -70000, max: 70000 }).map(String),
  fc.string({ maxLength: 12 }),
);
const line = fc.tuple(fc.nat({ max: 12 }), fc.boolean(), key, fc.oneof(scalar, fc.constant(''), fc.tuple(key, scalar).map(([k, v]) => `{ ${k}: ${v} }`), fc.array(scalar, { maxLength: 3 }).map((a) => `[${a.join(', ')}]`)))
  .map(([indent, dash, k, v]) => `${' '.repeat(indent)}${dash ? '- ' : ''}${k}${k === '' ? '' : ':'}${v === '' ? '' : ` ${v}`}`);
const yamlish = fc.tuple(fc.array(line, { minLength: 1, maxLength: 16 }), fc.constantFrom('\n', '\r\n', '\r')).map(([ls, eol]) => ls.join(eol));

// ---------------------------------------------------------------- mutated valid files
const fromDir = (dir: string) => readdirSync(join(repoRoot, dir)).filter((n) => n.endsWith('.yaml')).map((n) => readFileSync(join(repoRoot, dir, n), 'utf8'));
const seeds = [...fromDir('examples'), ...fromDir('test/fixtures/config/valid')];

type Edit = { kind: 'delete' | 'dup'; at: number; len: number } | { kind: 'insert'; at: number; s: string } | { kind: 'swap' | 'repeat'; line: number } | { kind: 'indent'; line: number; by: number };
const edit: fc.Arbitrary<Edit> = fc.oneof(
  fc.record({ kind: fc.constantFrom('delete' as const, 'dup' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 16 }) }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), s: fc.oneof(fc.constantFrom(':', ': ', ' ', '- ', '\n', '\r', '\t', '[', ']', '{', '}', ',', '"', "'", '&a ', '*a', '<<: *a', '#', '!', '|', '>', '?', '%', '@', '\ufeff', '\u0000', '\u2028', '\ud800', '0', '-1', '1e309'), fc.string({ maxLength: 6 })) }),
  fc.record({ kind: fc.constantFrom('swap' as const, 'repeat' as const), line: fc.nat() }),
  fc.record({ kind: fc.constant('indent' as const), line: fc.nat(), by: fc.integer({ min: -6, max: 6 }) }),
);
function apply(text: string, edits: readonly Edit[]): string {
  for (const e of edits) {
    if (e.kind === 'delete' || e.kind === 'dup') {
      const at = e.at % (text.length + 1);
      text = e.kind === 'delete' ? text.slice(0, at) + text.slice(at + e.len) : text.slice(0, at + e.len) + text.slice(at, at + e.len) + text.slice(at + e.len);
    } else if (e.kind === 'insert') {
      const at = e.at % (text.length + 1);
      text = text.slice(0, at) + e.s + text.slice(at);
    } else {
      const lines = text.split('\n');
      const i = (e as { line: number }).line % lines.length;
      if (e.kind === 'swap' && i + 1 < lines.length) [lines[i], lines[i + 1]] = [lines[i + 1]!, lines[i]!];
      if (e.kind === 'repeat') lines.splice(i, 0, lines[i]!);
      if (e.kind === 'indent') lines[i] = e.by >= 0 ? ' '.repeat(e.by) + lines[i]! : lines[i]!.replace(new RegExp(`^ {0,${-e.by}}`), '');
      text = lines.join('\n');
    }
  }
  return text;
}
const mutated = fc.tuple(fc.constantFrom(...seeds), fc.array(edit, { minLength: 1, maxLength: 6 })).map(([t, es]) => apply(t, es));

// ---------------------------------------------------------------- random bytes
const bytes = fc.uint8Array({ maxLength: 256 }).map((b) => Buffer.from(b).toString('utf8'));

const RUNS = { yamlish: 45_000, mutated: 25_000, bytes: 30_000 } as const;

test(`the config loader on ${Object.values(RUNS).reduce((a, b) => a + b, 0).toLocaleString('en-US')} generated inputs: a model or positioned errors, never a crash or a hang`, () => {
  fc.assert(fc.property(yamlish, check), { numRuns: RUNS.yamlish, seed: SEED });
  fc.assert(fc.property(mutated, check), { numRuns: RUNS.mutated, seed: SEED + 1 });
  fc.assert(fc.property(bytes, check), { numRuns: RUNS.bytes, seed: SEED + 2 });
  assert.ok(inputs >= 100_000, `${inputs} inputs`);
  // Some inputs must get through to a model, or the generators only test the parser's first line.
  assert.ok(valid > 0, 'some generated inputs are valid configurations');
  process.stdout.write(`# loader fuzz: ${inputs} inputs, ${valid} valid, slowest ${Math.round(slowest)} ms\n`);
});
