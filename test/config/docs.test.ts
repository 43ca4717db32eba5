/**
 * docs/config.md documents every key the schema accepts, nothing else, with the defaults the loader
 * really applies; docs/lvsd.schema.json is what `lvsd schema` prints today.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
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

/** A small JSON Schema (2020-12 subset) validator: just the keywords z.toJSONSchema emits here. */
function validate(schema: Record<string, unknown>, v: unknown, path = ''): string[] {
  const errs: string[] = [];
  const s = schema;
  const type = s.type as string | undefined;
  const isInt = (x: unknown) => typeof x === 'number' && Number.isInteger(x);
  if (type) {
    const ok =
      type === 'object' ? v !== null && typeof v === 'object' && !Array.isArray(v)
      : type === 'array' ? Array.isArray(v)
      : type === 'integer' ? isInt(v)
      : type === 'null' ? v === null
      : typeof v === type;
    if (!ok) return [`${path}: not ${type}`];
  }
  if (s.const !== undefined && v !== s.const) errs.push(`${path}: not ${JSON.stringify(s.const)}`);
  if (Array.isArray(s.enum) && !s.enum.includes(v)) errs.push(`${path}: not in enum`);
  if (typeof v === 'number') {
    if (typeof s.minimum === 'number' && v < s.minimum) errs.push(`${path}: < minimum`);
    if (typeof s.maximum === 'number' && v > s.maximum) errs.push(`${path}: > maximum`);
    if (typeof s.exclusiveMinimum === 'number' && v <= s.exclusiveMinimum) errs.push(`${path}: <= exclusiveMinimum`);
  }
  if (typeof v === 'string') {
    if (typeof s.minLength === 'number' && v.length < s.minLength) errs.push(`${path}: too short`);
    if (typeof s.maxLength === 'number' && v.length > s.maxLength) errs.push(`${path}: too long`);
    if (typeof s.pattern === 'string' && !new RegExp(s.pattern).test(v)) errs.push(`${path}: pattern`);
  }
  if (Array.isArray(v)) {
    if (typeof s.minItems === 'number' && v.length < s.minItems) errs.push(`${path}: minItems`);
    if (s.items) v.forEach((x, i) => errs.push(...validate(s.items as Record<string, unknown>, x, `${path}[${i}]`)));
  }
  if (v && typeof v === 'object' && !Array.isArray(v)) {
    const props = (s.properties ?? {}) as Record<string, Record<string, unknown>>;
    const pats = Object.entries((s.patternProperties ?? {}) as Record<string, Record<string, unknown>>);
    for (const r of (s.required as string[] | undefined) ?? []) if (!(r in v)) errs.push(`${path}.${r}: required`);
    for (const [k, x] of Object.entries(v)) {
      if (props[k]) errs.push(...validate(props[k]!, x, `${path}.${k}`));
      else if (pats.some(([p]) => new RegExp(p).test(k))) continue;
      else if (s.additionalProperties === false) errs.push(`${path}.${k}: additional property`);
      else if (s.additionalProperties && typeof s.additionalProperties === 'object') errs.push(...validate(s.additionalProperties as Record<string, unknown>, x, `${path}.${k}`));
    }
  }
  for (const alt of ['anyOf', 'oneOf'] as const) {
    const opts = s[alt] as Array<Record<string, unknown>> | undefined;
    if (!opts) continue;
    const passing = opts.filter((o) => validate(o, v, path).length === 0).length;
    if (alt === 'anyOf' ? passing === 0 : passing !== 1) errs.push(`${path}: ${alt} matched ${passing}`);
  }
  return errs;
}

test('the JSON Schema accepts every example and valid fixture, and rejects wrong keys, types and ranges', async () => {
  const { parseWithPositions } = await import('../../src/config/positions.js');
  const schema = JSON.parse(readFileSync(join(repoRoot, 'docs', 'lvsd.schema.json'), 'utf8')) as Record<string, unknown>;
  const load = (p: string) => parseWithPositions(readFileSync(p, 'utf8'), p).value;
  const dirs: Array<[string, boolean]> = [['examples', true], ['test/fixtures/config/valid', true]];
  for (const [dir, ok] of dirs) {
    for (const n of readdirSync(join(repoRoot, dir)).filter((x) => x.endsWith('.yaml'))) {
      assert.deepEqual(validate(schema, load(join(repoRoot, dir, n))), [], `${dir}/${n} ${ok}`);
    }
  }
  for (const n of ['unknown-near.yaml', 'unknown-far.yaml', 'type-wrong.yaml', 'range.yaml', 'missing-required.yaml', 'keepalived-01-lb-keys.yaml', 'keepalived-15-deep-check.yaml', 'check-options-of-other-type.yaml']) {
    assert.notDeepEqual(validate(schema, load(join(repoRoot, 'test', 'fixtures', 'config', 'invalid', n))), [], n);
  }
});
