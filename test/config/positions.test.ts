/**
 * SourceMap.find on the YAML shapes whose positions js-yaml's event stream makes hard to recover:
 * list items in both styles, keys without values, explicit keys, compact pairs in flow lists,
 * anchors/aliases and merge keys, missing keys, comments and CRLF.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseWithPositions, YamlSyntaxError } from '../../src/config/positions.js';

const at = (text: string, path: Array<string | number>, opts: { key?: boolean } = {}) => {
  const l = parseWithPositions(text, 't.yaml').map.find(path, opts);
  return `${l.line}:${l.column}${l.found === false ? ' missing' : ''}${l.via ? ` via *${l.via.alias}@${l.via.line}:${l.via.column}` : ''}`;
};

test('block mappings and lists: values and keys', () => {
  const t = 'a:\n  b: 1\n  c:\n    - x\n    - y: 2\n      z: 3\n';
  assert.equal(at(t, ['a', 'b']), '2:6');
  assert.equal(at(t, ['a', 'b'], { key: true }), '2:3');
  assert.equal(at(t, ['a', 'c', 0]), '4:7');
  assert.equal(at(t, ['a', 'c', 1]), '5:7');
  assert.equal(at(t, ['a', 'c', 1, 'z']), '6:10');
  assert.equal(at(t, ['a']), '2:3');
  assert.equal(at(t, []), '1:1');
});

test('flow collections, also inside block lists (js-yaml wraps those items twice)', () => {
  const t = 'l:\n  - eth1\n  - {name: eth2, weight: 300}\n  - [p, q]\nm: {a: 1, b: [x, {c: 2}]}\n';
  assert.equal(at(t, ['l', 1, 'weight']), '3:26');
  assert.equal(at(t, ['l', 1, 'name']), '3:12');
  assert.equal(at(t, ['l', 2, 1]), '4:9');
  assert.equal(at(t, ['m', 'b', 1, 'c']), '5:22');
});

test('a key with nothing after the colon points at the key, not at the next line', () => {
  const t = 'a:\n  weight:\n  next: 1\nb: {x: , y: 2}\nc:\n';
  assert.equal(at(t, ['a', 'weight']), '2:3');
  assert.equal(at(t, ['b', 'x']), '4:5');
  assert.equal(at(t, ['c']), '5:1');
});

test('keys without a value in flow mappings and explicit keys keep the pairing right', () => {
  const t = 'a: {x, b: 1}\n? k\n? [i]\n: 3\ng: 2\n';
  assert.equal(at(t, ['a', 'b']), '1:11');
  assert.equal(at(t, ['a', 'x']), '1:5');
  assert.equal(at(t, ['g']), '5:4');
});

test('compact pairs in a flow list are one item each', () => {
  const t = 'l: [d: 1, e, f: 2]\n';
  assert.equal(at(t, ['l', 0, 'd']), '1:8');
  assert.equal(at(t, ['l', 1]), '1:11');
  assert.equal(at(t, ['l', 2, 'f']), '1:17');
});

test('a missing key points at the key owning the mapping, or at a list item', () => {
  const t = 'sync:\n  mode: auto\nl:\n  - name: a\n';
  assert.equal(at(t, ['sync', 'interface']), '1:1 missing');
  assert.equal(at(t, ['l', 0, 'interface']), '4:5 missing');
  assert.equal(at(t, ['l', 3]), '3:1 missing');
  assert.equal(at(t, ['nope', 'deeper']), '1:1 missing');
});

test('aliases and merge keys lead to the anchored text and say where it was used', () => {
  const t = [
    'x-rs: &rs', //                1
    '  weight: -5', //             2
    '  checks: [{type: tcp}]', //  3
    'x-vip: &vip 192.0.2.1', //    4
    'vs:', //                      5
    '  - address: *vip', //        6
    '    <<: *rs', //              7
    '    port: 80', //             8
    '  - <<: [*rs]', //            9
    '    weight: 3', //            10
    '',
  ].join('\n');
  assert.equal(at(t, ['vs', 0, 'address']), '4:13 via *vip@6:14');
  assert.equal(at(t, ['vs', 0, 'weight']), '2:11 via *rs@7:9');
  assert.equal(at(t, ['vs', 0, 'checks', 0, 'type']), '3:19 via *rs@7:9');
  assert.equal(at(t, ['vs', 0, 'port']), '8:11');
  assert.equal(at(t, ['vs', 1, 'weight']), '10:13', 'an explicit key beats the merged one');
  assert.equal(at(t, ['vs', 1, 'checks']), '3:11 via *rs@9:10');
  const v = parseWithPositions(t, 't.yaml').value as { vs: Array<Record<string, unknown>> };
  assert.equal(v.vs[0]!.weight, -5, 'merge keys are applied');
  assert.equal(v.vs[1]!.weight, 3);
});

test('comments, anchors and tags in front of a value are skipped', () => {
  const t = 'a: # note\n  # more\n  &x 5\nb: !!str 80\n';
  assert.equal(at(t, ['a']), '3:6');
  assert.equal(at(t, ['b']), '4:10');
});

test('CRLF and a byte order mark do not move columns', () => {
  const t = 'a:\r\n  b: 1\r\n  c: [x, y]\r\n';
  assert.equal(at(t, ['a', 'c', 1]), '3:10');
  assert.equal(at('\ufeff' + t, ['a', 'c', 1]), '3:10');
  assert.equal(at('\ufeffa: 1\n', ['a']), '1:4');
});

test('syntax errors come back as YamlSyntaxError with a 0-based position and a reason for people', () => {
  const cases: Array<[string, number, number, RegExp]> = [
    ['a: 1\nb: 2\na: 3\n', 2, 0, /duplicate key "a" \(first set at line 1\)/],
    ['a:\n  - b: 1\n    c: 2\n    c: 3\n', 3, 4, /duplicate key "c" \(first set at line 3\)/],
    ['"q": 1\n"q": 2\n', 1, 0, /duplicate key "q" \(first set at line 1\)/],
    ['a: [1, 2\nb: 3\n', 0, 3, /"\[" is not closed before line 2/],
    ['a: {x: 1\n', 0, 3, /"\{" is never closed/],
    ['a:\n\tb: 1\n', 1, 0, /tab character/],
    ['a:\n  b: 1\n  c 2\n  d: 3\n', 2, 2, /no ":" followed by a space \(got "c 2"\)/],
    ['listen: [::1]:9650\n', 0, 13, /quote it, e.g. "\[::1\]:9650"/],
    ['a: *nope\n', 0, 8, /unidentified alias "nope"/],
    ['a:\n  b: "abc\n  c: 1\n', 1, 5, /the " that starts this string is never closed/],
    ["a:\n  - b: 'abc\n\n", 1, 7, /the ' that starts this string is never closed/],
    ['a: 1\nb: |\n  x\n c: 2\n\n\n', 3, 1, /./],
    ['a:\n  - name: "x\n    b: 1\n    c: 2\n', 1, 10, /the " that starts this string is never closed/],
    ['l:\n  -name: x\n   b: 1\n', 1, 2, /a list item needs a space after "-"/],
    ['a: 1\n---\nb: 2\n', 1, 0, /more than one YAML document/],
    ['---\na: 1\n', -1, -1, /^$/],
    ['a: x\u0002y\n', 0, 4, /control character \(U\+0002\)/],
  ];
  for (const [text, line, column, re] of cases) {
    if (line < 0) {
      assert.doesNotThrow(() => parseWithPositions(text, 't.yaml'), 'a single document may start with ---');
      continue;
    }
    assert.throws(() => parseWithPositions(text, 't.yaml'), (e: unknown) => {
      assert.ok(e instanceof YamlSyntaxError, String(e));
      assert.match(e.reason, re, text);
      assert.deepEqual([e.line, e.column], [line, column], `${JSON.stringify(text)}: ${e.reason}`);
      return true;
    });
  }
});

test('multi-line strings (literal, folded, quoted) point at their first line', () => {
  const t = 'a:\n  b: |\n    line1\n    line2\n  c: >-\n    folded\n  d: "multi\n    line"\n  e:\n    - |\n      x\n';
  assert.equal(at(t, ['a', 'b']), '2:6');
  assert.equal(at(t, ['a', 'c']), '5:6');
  assert.equal(at(t, ['a', 'd']), '7:6');
  assert.equal(at(t, ['a', 'e', 0]), '10:7');
});

test('empty list items keep the indices of the items after them', () => {
  const t = 'a:\n  - x\n  -\n  - - 1\n    -\n    - 3\n  -   # c\n  - y\n';
  assert.equal(at(t, ['a', 1]), '3:3');
  assert.equal(at(t, ['a', 2, 0]), '4:7');
  assert.equal(at(t, ['a', 2, 1]), '5:5');
  assert.equal(at(t, ['a', 2, 2]), '6:7');
  assert.equal(at(t, ['a', 3]), '7:3');
  assert.equal(at(t, ['a', 4]), '8:5');
  assert.equal(at('a: 1\n?\n', ['null'], { key: true }), '2:1', 'an empty explicit key');
});

test('a lone CR is a line break; a byte order mark inside the file is an error at its place', () => {
  assert.equal(at('a: 1\rb:\r  c: 2\r', ['b', 'c']), '3:6');
  assert.throws(() => parseWithPositions('a: 1\n\ufeffb: 2\n', 't.yaml'), (e: unknown) => e instanceof YamlSyntaxError && e.line === 1 && e.column === 0 && /byte order mark/.test(e.reason));
});
