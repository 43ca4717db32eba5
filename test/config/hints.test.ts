/**
 * The pieces behind the messages: every scalar of every example and valid fixture is located exactly
 * at its text; the keepalived name/value tables point at keys and values that exist; suggestions
 * catch near misses and leave far misses alone.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseWithPositions } from '../../src/config/positions.js';
import { KEEPALIVED_NAMES, VALUE_ALIASES, schemaKeyPaths, knownKeysAt } from '../../src/config/load.js';
import { suggest, editDistance } from '../../src/core/suggest.js';
import { clusterConfig } from '../../src/config/schema.js';
import { repoRoot } from '../support/proc.js';

const files = [
  ...readdirSync(join(repoRoot, 'examples')).filter((n) => n.endsWith('.yaml')).map((n) => join(repoRoot, 'examples', n)),
  ...readdirSync(join(repoRoot, 'test', 'fixtures', 'config', 'valid')).filter((n) => n.endsWith('.yaml')).map((n) => join(repoRoot, 'test', 'fixtures', 'config', 'valid', n)),
];

test('every scalar value of the examples and valid fixtures is located at its own text', () => {
  let checked = 0;
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    const { value, map } = parseWithPositions(text, file);
    const walk = (v: unknown, path: Array<string | number>) => {
      if (Array.isArray(v)) return v.forEach((x, i) => walk(x, [...path, i]));
      if (v && typeof v === 'object') return Object.entries(v).forEach(([k, x]) => walk(x, [...path, k]));
      const at = map.find(path);
      assert.equal(at.found, true, `${file}: ${path.join('.')} not found`);
      const src = text.slice(at.offset);
      const s = String(v);
      assert.ok(src.startsWith(s) || src.startsWith(JSON.stringify(s)) || src.startsWith(`'${s}'`), `${file}:${at.line}:${at.column} ${path.join('.')} = ${s}, text there: ${JSON.stringify(src.slice(0, 30))}`);
      // The key of a mapping value is on the same line, before it (block or flow style).
      const last = path[path.length - 1];
      if (typeof last === 'string' && !at.via) {
        const k = map.find(path, { key: true });
        assert.equal(text.slice(k.offset, k.offset + last.length), last, `${path.join('.')} key`);
        assert.ok(k.offset < at.offset, `${path.join('.')} key before value`);
      }
      checked++;
    };
    walk(value, []);
  }
  assert.ok(checked > 150, `${checked} scalars checked`);
});

test('keepalived name hints point at keys the schema has', () => {
  const keys = new Set(schemaKeyPaths().map((e) => e.path.split('.').pop()!.replace(/\[\]$/, '')));
  for (const [kname, hint] of Object.entries(KEEPALIVED_NAMES)) {
    if (/^[a-z_]+$/.test(hint)) assert.ok(keys.has(hint), `${kname} → ${hint} is not a key`);
    else assert.ok(hint.length > 10, `${kname}: advice text`);
  }
});

test('keepalived value aliases point at values the schema accepts', () => {
  const text = JSON.stringify(readFileSync(join(repoRoot, 'docs', 'lvsd.schema.json'), 'utf8'));
  for (const [from, to] of Object.entries(VALUE_ALIASES)) assert.ok(text.includes(`\\"${to}\\"`), `${from} → ${to}`);
});

test('suggestions: near misses, case and dashes yes; far misses no', () => {
  assert.equal(suggest('priorty', ['priority', 'preempt']), 'priority');
  assert.equal(suggest('virtual_router', ['virtual_router_id', 'version']), 'virtual_router_id');
  assert.equal(suggest('advert-interval', ['advert_interval']), 'advert_interval');
  assert.equal(suggest('master', ['BACKUP', 'MASTER']), 'MASTER');
  assert.equal(suggest('frobnicate', ['interface', 'priority', 'name']), undefined);
  assert.equal(suggest('colour', ['name', 'address', 'port']), undefined);
  assert.equal(editDistance('kitten', 'sitting'), 3);
});

test('knownKeysAt follows lists, unions and the check type', () => {
  const data = { virtual_servers: [{ real_servers: [{ checks: [{ type: 'dns' }] }] }], vrrp_instances: [{ virtual_addresses: [{ address: 'x' }] }] };
  assert.ok(knownKeysAt(clusterConfig, data, ['virtual_servers', 0, 'real_servers', 0, 'checks', 0]).includes('qtype'));
  assert.ok(!knownKeysAt(clusterConfig, data, ['virtual_servers', 0, 'real_servers', 0, 'checks', 0]).includes('path'));
  assert.deepEqual(knownKeysAt(clusterConfig, data, ['vrrp_instances', 0, 'virtual_addresses', 0]), ['address', 'device', 'scope', 'label']);
});

test('a wrong value put in place of any scalar of the examples is reported at that line and column, with its key path', async () => {
  const { parseConfigText, ConfigError } = await import('../../src/config/load.js');
  let mutated = 0;
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    const { value, map } = parseWithPositions(text, file);
    const leaves: Array<{ path: Array<string | number>; v: unknown }> = [];
    const walk = (v: unknown, path: Array<string | number>) => {
      if (Array.isArray(v)) return v.forEach((x, i) => walk(x, [...path, i]));
      if (v && typeof v === 'object') return Object.entries(v).forEach(([k, x]) => walk(x, [...path, k]));
      leaves.push({ path, v });
    };
    walk(value, []);
    for (const { path, v } of leaves) {
      if (typeof path[0] === 'string' && path[0].startsWith('x-')) continue; // ignored by the loader
      const at = map.find(path);
      if (at.via) continue; // shared through an alias: one text, several paths
      const s = String(v);
      const src = text.slice(at.offset);
      const len = src.startsWith(s) ? s.length : src.startsWith(JSON.stringify(s)) || src.startsWith(`'${s}'`) ? s.length + 2 : -1;
      assert.ok(len >= 0, `${path.join('.')}`);
      const broken = text.slice(0, at.offset) + '{zz: 1}' + text.slice(at.offset + len);
      let diags: ReadonlyArray<{ line: number; column: number; path: string }> = [];
      try {
        parseConfigText(broken, file, { checkFiles: false, hostname: 'h' });
      } catch (e) {
        assert.ok(e instanceof ConfigError, String(e));
        diags = e.diagnostics;
      }
      const want = path.reduce<string>((acc, seg) => (typeof seg === 'number' ? `${acc}[${seg}]` : acc ? `${acc}.${seg}` : seg), '');
      const hit = diags.find((d) => d.path === want || d.path.startsWith(`${want}.`) || d.path.startsWith(`${want}[`));
      assert.ok(hit, `${file}: ${want} = {zz: 1} not reported; got ${JSON.stringify(diags)}`);
      assert.equal(hit.line, at.line, `${file}: ${want}: ${JSON.stringify(hit)}`);
      assert.ok(hit.column >= at.column && hit.column <= at.column + 1, `${file}: ${want}: column ${hit.column}, value at ${at.column}`);
      mutated++;
    }
  }
  assert.ok(mutated > 150, `${mutated} values replaced`);
});
