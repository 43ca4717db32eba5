/**
 * The keepalived.conf reader and parser (pure parts, files in memory): words and positions,
 * blocks, errors with file:line:column, includes (glob, braces, relative paths, loops), conditional
 * lines and parameters.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { posix } from 'node:path';
import { tokenize, parseTree, readKeepalived, KeepalivedError, type KNode } from '../../src/config/keepalived/index.js';
import { memFiles } from '../support/memfiles.js';
import { expandBraces, glob } from '../../src/config/keepalived/glob.js';
import { readCommand, splitScript } from '../../src/config/keepalived/context.js';
import { readHex } from '../../src/config/keepalived/map-checks.js';
import { expandRange } from '../../src/config/keepalived/map-lvs.js';

const line = (text: string, n = 1) => ({ file: '/k.conf', line: n, text });
const words = (text: string) => tokenize(line(text)).map((t) => ('brace' in t ? t.brace : t.text));
const tree = (text: string) => parseTree(text.split('\n').map((t, i) => line(t, i + 1)));
const strip = (n: KNode): unknown => ({ k: n.keyword, a: n.args.map((w) => w.text), ...(n.children ? { c: n.children.map(strip) } : {}) });

test('words: quotes keep spaces and join adjacent text, escapes, comments with # and !, braces split', () => {
  assert.deepEqual(words('script "killall -0 sshd"   # cheaper than pidof'), ['script', 'killall -0 sshd']);
  assert.deepEqual(words(`a"b c"d 'e "f"' g`), ['ab cd', 'e "f"', 'g']);
  assert.deepEqual(words('x "tab\\there" "q\\"q" "\\x41\\101"'), ['x', 'tab\there', 'q"q', 'AA']);
  assert.deepEqual(words('weight 1 ! set weight'), ['weight', '1']);
  assert.deepEqual(words('url{path /}'), ['url', '{', 'path', '/', '}']);
  assert.deepEqual(words('name "{"'), ['name', '{']);
  const cols = tokenize(line('   delay_loop  6')).map((t) => t.column);
  assert.deepEqual(cols, [4, 16]);
});

test('blocks: nesting, one-line blocks, "{" on the next line, positions of keywords', () => {
  const t = tree('global_defs {\n  router_id a\n}\nvirtual_server 192.0.2.1 80\n{\n  real_server 192.0.2.2 80 { TCP_CHECK { connect_timeout 3 } }\n}');
  assert.deepEqual(t.map(strip), [
    { k: 'global_defs', a: [], c: [{ k: 'router_id', a: ['a'] }] },
    { k: 'virtual_server', a: ['192.0.2.1', '80'], c: [{ k: 'real_server', a: ['192.0.2.2', '80'], c: [{ k: 'TCP_CHECK', a: [], c: [{ k: 'connect_timeout', a: ['3'] }] }] }] },
  ]);
  const rs = t[1]!.children![0]!;
  assert.deepEqual([rs.file, rs.line, rs.column, rs.args[1]!.column], ['/k.conf', 6, 3, 25]);
});

test('syntax errors name file:line:column', () => {
  const err = (text: string) => {
    try {
      tree(text);
    } catch (e) {
      assert.ok(e instanceof KeepalivedError);
      return `${e.line}:${e.column} ${e.detail}`;
    }
    return 'no error';
  };
  assert.equal(err('a {\n  b {\n  }\n'), '1:1 block "a" is not closed (missing "}")');
  assert.equal(err('a {\n}\n  }'), '3:3 "}" without a block to close');
  assert.equal(err('{\n}'), '1:1 "{" without a keyword before it');
  assert.equal(err('script "abc'), '1:8 unterminated double quote');
});

test('includes: glob sorted, braces, relative to the including file, nested; others not matched', () => {
  const fs = memFiles({
    '/etc/k/keepalived.conf': 'global_defs {\n}\ninclude conf.d/*.conf\ninclude "svc/{b,a}.conf"\n',
    '/etc/k/conf.d/20-y.conf': 'y2\n',
    '/etc/k/conf.d/10-x.conf': 'x1\ninclude ../svc/c.conf\n',
    '/etc/k/conf.d/.hidden.conf': 'hidden\n',
    '/etc/k/conf.d/30-z.conf.off': 'off\n',
    '/etc/k/svc/a.conf': 'a\n',
    '/etc/k/svc/b.conf': 'b\n',
    '/etc/k/svc/c.conf': 'c\n',
  });
  const r = readKeepalived('/etc/k/keepalived.conf', fs, { configId: 'x' });
  assert.deepEqual(r.lines.filter((l) => l.text).map((l) => `${posix.basename(l.file)}:${l.line}:${l.text}`), [
    'keepalived.conf:1:global_defs {', 'keepalived.conf:2:}', '10-x.conf:1:x1', 'c.conf:1:c', '20-y.conf:1:y2', 'b.conf:1:b', 'a.conf:1:a',
  ]);
  assert.equal(r.files.length, 6);
});

test('includes: a pattern matching nothing is a note, an unreadable match and a loop are errors at the include line', () => {
  const r = readKeepalived('/a.conf', memFiles({ '/a.conf': 'include /none/*.conf\n' }), { configId: 'x' });
  assert.match(r.notes[0]!.message, /no file matches/);
  const loop = memFiles({ '/a.conf': 'x\ninclude b.conf\n', '/b.conf': 'include a.conf\n' });
  assert.throws(() => readKeepalived('/a.conf', loop, { configId: 'x' }), (e: KeepalivedError) => e.file === '/b.conf' && e.line === 1 && /include loop/.test(e.detail));
  const fs = memFiles({ '/a.conf': 'include b.conf\n', '/b.conf': '' });
  fs.read = (p) => {
    if (p === '/b.conf') throw Object.assign(new Error('EACCES'), { code: 'EACCES' });
    return 'include b.conf\n';
  };
  assert.throws(() => readKeepalived('/a.conf', fs, { configId: 'x' }), (e: KeepalivedError) => e.code === 'KEEPALIVED_IO' && e.line === 1 && /EACCES/.test(e.detail));
  assert.throws(() => readKeepalived('/missing.conf', fs, { configId: 'x' }), (e: KeepalivedError) => e.code === 'KEEPALIVED_IO');
});

test('conditional lines and parameters (single, multi-line, recursive, undefined kept, $X=@id)', () => {
  const text = [
    '@main $PRIO=240',
    '@^main $PRIO=100',
    '$BASE=10.2.${SUB}',
    '$SUB=7',
    'priority $PRIO',
    'address ${BASE}.1',
    'script "${UNDEF} $HOME/x"',
    '$IF_MAIN=@main',
    '$IF_MAIN router_id main',
    '$BLOCK= \\',
    'vrrp_instance VI_${N} { \\',
    '  @main state MASTER \\',
    '}',
    '$N=3',
    '$BLOCK',
  ].join('\n');
  const run = (id: string) => readKeepalived('/k.conf', memFiles({ '/k.conf': text }), { configId: id }).lines.map((l) => `${l.line}:${l.text.trim()}`);
  assert.deepEqual(run('main'), ['5:priority 240', '6:address 10.2.7.1', '7:script "${UNDEF} $HOME/x"', '9:router_id main', '15:vrrp_instance VI_3 {', '15:state MASTER', '15:}']);
  assert.deepEqual(run('other'), ['5:priority 100', '6:address 10.2.7.1', '7:script "${UNDEF} $HOME/x"', '15:vrrp_instance VI_3 {', '15:}']);
  const self = memFiles({ '/k.conf': '$A=x $A\n$A\n' });
  assert.throws(() => readKeepalived('/k.conf', self, { configId: 'x' }), /does not end/);
});

test('glob and brace expansion as glob(3)', () => {
  assert.deepEqual(expandBraces('a{b,c{d,e}}f'), ['abf', 'acdf', 'acef']);
  assert.deepEqual(expandBraces('x{}y'), ['x{}y']);
  const fs = memFiles({ '/d/a1': '', '/d/a2': '', '/d/b1': '', '/d/.a3': '' });
  assert.deepEqual(glob('/d/a?', fs.list, fs.exists), ['/d/a1', '/d/a2']);
  assert.deepEqual(glob('/d/[ab]1', fs.list, fs.exists), ['/d/a1', '/d/b1']);
  assert.deepEqual(glob('/d/[!a]*', fs.list, fs.exists), ['/d/b1']);
  assert.deepEqual(glob('/d/none', fs.list, fs.exists), []);
});

test('scripts split as keepalived runs them; hex payloads; address ranges', () => {
  assert.deepEqual(splitScript(`bash -c '</dev/tcp/127.0.0.1/80'`), ['bash', '-c', '</dev/tcp/127.0.0.1/80']);
  const w = (t: string) => ({ text: t, file: 'f', line: 1, column: 1, quoted: true });
  assert.equal(readCommand([w('/usr/local/bin/vrrp.sh  BACKUP   VI_1')]), '/usr/local/bin/vrrp.sh BACKUP VI_1');
  assert.deepEqual(readCommand([w(`/bin/x 'two words'`)]), ['/bin/x', 'two words']);
  assert.equal(readHex(['Ab12f', '3', '456', '546443123']), 'ab120f0345065464431203');
  assert.deepEqual(expandRange('192.0.2.1-3'), ['192.0.2.1', '192.0.2.2', '192.0.2.3']);
  assert.deepEqual(expandRange('192.0.2.255-192.0.3.1'), ['192.0.2.255', '192.0.3.0', '192.0.3.1']);
  assert.deepEqual(expandRange('192.0.2.8/31'), ['192.0.2.8', '192.0.2.9']);
  assert.deepEqual(expandRange('2001:db8::9-b'), ['2001:db8::9', '2001:db8::a', '2001:db8::b']);
  assert.match(String(expandRange('192.0.2.0/16')), /more than the 256/);
  assert.match(String(expandRange('nonsense')), /not an address/);
});
