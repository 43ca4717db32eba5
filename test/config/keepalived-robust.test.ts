/**
 * Bad keepalived input never crashes the importer: random edits of the fixtures and of keepalived's
 * samples (deleted and inserted characters and words, swapped lines) either convert — to YAML that
 * says what the model holds and that the loader accepts or rejects with positioned errors — or fail
 * with a KeepalivedError whose position is inside the edited file. Bounded: a fixed number of runs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import yaml from 'js-yaml';
import { convertKeepalived, KeepalivedError } from '../../src/config/keepalived/index.js';
import { parseConfigText, ConfigError } from '../../src/config/load.js';
import { repoRoot } from '../support/proc.js';
import { memFiles } from '../support/memfiles.js';

const FIX = join(repoRoot, 'test', 'fixtures', 'keepalived');
const SAMPLES = '/usr/share/doc/keepalived/samples';
const inputs = [
  ...readdirSync(FIX).filter((n) => n.endsWith('.conf')).map((n) => join(FIX, n)),
  ...(existsSync(SAMPLES) ? readdirSync(SAMPLES).filter((n) => n.startsWith('keepalived.conf')).map((n) => join(SAMPLES, n)) : []),
].map((f) => ({ name: f.split('/').pop()!, text: readFileSync(f, 'utf8') }));

const pieces = ['{', '}', ' { ', '"', "'", '#', '!', '@a ', '@^a ', '$X=1\n', '${X}', '\\\n', '\n', ' ', '-1', '0', '99999999999', '1.5', 'x',
  'real_server 192.0.2.9 80 {', 'virtual_server group g {', 'TCP_CHECK {', 'weight', 'priority 300', 'lb_kind TUN type gue', 'include *.conf', 'state', 'url {', 'fwmark'];
const edit = fc.oneof(
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 12 }) }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), s: fc.constantFrom(...pieces) }),
  fc.record({ kind: fc.constant('swap' as const), at: fc.nat() }),
);

interface Edit { kind: string; at: number; len?: number; s?: string }
function apply(text: string, edits: readonly Edit[]): string {
  let t = text;
  for (const e of edits) {
    const at = t.length ? e.at % t.length : 0;
    if (e.kind === 'delete') t = t.slice(0, at) + t.slice(at + (e.len ?? 1));
    else if (e.kind === 'insert') t = t.slice(0, at) + e.s + t.slice(at);
    else {
      const lines = t.split('\n');
      const i = lines.length > 1 ? e.at % (lines.length - 1) : 0;
      [lines[i], lines[i + 1]] = [lines[i + 1] ?? '', lines[i] ?? ''];
      t = lines.join('\n');
    }
  }
  return t;
}

test('edited keepalived files convert or fail with a positioned KeepalivedError, never crash', () => {
  for (const input of inputs) {
    fc.assert(
      fc.property(fc.array(edit, { minLength: 1, maxLength: 6 }), (edits) => {
        const text = apply(input.text, edits);
        let conv;
        try {
          conv = convertKeepalived('/k/keepalived.conf', memFiles({ '/k/keepalived.conf': text }), { configId: 'a' });
        } catch (e) {
          assert.ok(e instanceof KeepalivedError, `${input.name}: ${String(e)}\n--- input:\n${text}`);
          assert.ok(e.line >= 1 && e.line <= text.split('\n').length, `${input.name}: error line ${e.line} inside the file`);
          return;
        }
        assert.deepEqual(yaml.load(conv.yaml) ?? {}, JSON.parse(JSON.stringify(conv.config)), `${input.name}: YAML and model agree\n--- input:\n${text}`);
        try {
          parseConfigText(conv.yaml, 'out.yaml', { checkFiles: false, hostname: 'test' });
        } catch (e) {
          assert.ok(e instanceof ConfigError, `${input.name}: loader ${String(e)}`);
        }
      }),
      { numRuns: 40, seed: 19 },
    );
  }
});
