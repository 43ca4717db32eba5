/**
 * docs/config.md documents every key the schema accepts, nothing else, with the defaults the loader
 * really applies; docs/lvsd.schema.json is what `lvsd schema` prints today.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import type { z } from 'zod';
import { schemaKeyPaths } from '../../src/config/load.js';
import { parseDocTables, renderJsonSchema } from '../../src/cli/schema.js';
import { lvsdBin, repoRoot } from '../support/proc.js';

const docsText = readFileSync(join(repoRoot, 'docs', 'config.md'), 'utf8');
const docs = parseDocTables(docsText);

type Def = { type: string; innerType?: z.ZodType; defaultValue?: unknown };
/** The zod default of a key (undefined when it has none or when it is an object prefault). */
function zodDefault(s: z.ZodType): { has: boolean; value?: unknown } {
  for (let i = 0; i < 10; i++) {
    const def = (s as unknown as { _zod: { def: Def } })._zod.def;
    if (def.type === 'default') {
      const v = typeof def.defaultValue === 'function' ? (def.defaultValue as () => unknown)() : def.defaultValue;
      return { has: true, value: v };
    }
    if (def.type === 'prefault') return { has: false };
    if (!def.innerType) break;
    s = def.innerType;
  }
  return { has: false };
}

const fmt = (v: unknown) => (typeof v === 'string' ? (v === '' ? '""' : v) : JSON.stringify(v));

test('every key path of the schema has a row in docs/config.md', () => {
  const paths = schemaKeyPaths().map((e) => e.path);
  assert.ok(paths.length > 150, `walked ${paths.length} key paths`);
  const missing = paths.filter((p) => !docs.has(p));
  assert.deepEqual(missing, [], `undocumented keys:\n${missing.join('\n')}`);
});

test('docs/config.md documents no key the schema does not have', () => {
  const paths = new Set(schemaKeyPaths().map((e) => e.path));
  const stale = [...docs.keys()].filter((p) => !paths.has(p) && !p.startsWith('x-'));
  assert.deepEqual(stale, []);
});

test('documented defaults are the defaults the schema applies, and every row is filled in', () => {
  const wrong: string[] = [];
  for (const { path, schema } of schemaKeyPaths()) {
    const row = docs.get(path)!;
    for (const [col, v] of Object.entries(row)) assert.ok(String(v).length > 0, `${path}: empty ${col}`);
    const d = zodDefault(schema);
    if (d.has && typeof d.value !== 'object') {
      if (!row.default.includes(`\`${fmt(d.value)}\``)) wrong.push(`${path}: documented "${row.default}", schema default ${fmt(d.value)}`);
    } else if (d.has && Array.isArray(d.value)) {
      if (!row.default.includes(`\`${JSON.stringify(d.value)}\``)) wrong.push(`${path}: documented "${row.default}", schema default ${JSON.stringify(d.value)}`);
    }
  }
  assert.deepEqual(wrong, []);
});

test('check policy defaults resolved by the model are the documented ones', async () => {
  const { DEFAULT_POLICY } = await import('../../src/config/model.js');
  for (const [k, v] of Object.entries(DEFAULT_POLICY)) {
    const row = docs.get(`virtual_servers[].${k}`);
    assert.ok(row, k);
    assert.ok(row.default.includes(`\`${fmt(v)}\``), `virtual_servers[].${k}: documented "${row.default}", model default ${fmt(v)}`);
  }
});

test('docs/lvsd.schema.json is up to date (regenerate with: bin/lvsd schema -o docs/lvsd.schema.json)', () => {
  const committed = readFileSync(join(repoRoot, 'docs', 'lvsd.schema.json'), 'utf8');
  assert.equal(committed, renderJsonSchema(docsText));
  const r = spawnSync(lvsdBin, ['schema'], { encoding: 'utf8', timeout: 20000 });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, committed);
});

test('the JSON Schema describes every key and accepts the keys of the examples', () => {
  const schema = JSON.parse(readFileSync(join(repoRoot, 'docs', 'lvsd.schema.json'), 'utf8')) as Record<string, unknown>;
  const undescribed: string[] = [];
  const seen = new Set<string>();
  const walk = (n: Record<string, unknown>, prefix: string) => {
    const props = n.properties as Record<string, Record<string, unknown>> | undefined;
    for (const [k, c] of Object.entries(props ?? {})) {
      const p = prefix ? `${prefix}.${k}` : k;
      seen.add(p);
      if (typeof c.description !== 'string' || !c.description) undescribed.push(p);
      walk(c, p);
    }
    if (n.items && typeof n.items === 'object') walk(n.items as Record<string, unknown>, `${prefix}[]`);
    for (const alt of ['anyOf', 'oneOf']) for (const a of (n[alt] as Array<Record<string, unknown>> | undefined) ?? []) walk(a, prefix);
  };
  walk(schema, '');
  assert.deepEqual(undescribed, []);
  assert.deepEqual(new Set(schemaKeyPaths().map((e) => e.path)), seen, 'JSON Schema and zod schema have the same key paths');
  assert.equal(schema.additionalProperties, false, 'unknown keys are flagged in the editor too');
  assert.deepEqual(schema.patternProperties, { '^x-': {} });
});
