/**
 * The table metrics' own exposition (src/ipvs/table-metrics.ts, table-worker.ts, table-text.ts,
 * src/metrics/exposition.ts): the /metrics body lvsd's HTTP server streams is valid Prometheus text
 * (promtool check metrics), holds the table's values under the configured names, is read and written
 * in a worker thread, reads the table once for concurrent scrapes, obeys global.api.table_metrics,
 * reports a failed read or a dead worker as such (counted, no series, never the previous values), and
 * never keeps the process alive. The table comes from memory through test/support/table-reader.ts
 * (the worker's reader contract); kernel values against ipvsadm: test/lab/table-metrics.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { Gauge, Registry } from 'prom-client';
import { ManualClock } from '../../src/core/clock.js';
import { silentLogger } from '../../src/core/log.js';
import type { VirtualServerConfig } from '../../src/config/model.js';
import { primeTableMetrics, registerTableMetrics, stopTableMetrics, type TableMetricsSettings, type TableWorkerRequest } from '../../src/ipvs/table-metrics.js';
import { scrape, scrapeText } from '../../src/metrics/exposition.js';
import { ApiServer } from '../../src/metrics/http.js';
import { parsePrometheus, sampleValue } from '../support/prom.js';
import { cfgOf } from '../support/ipvs.js';
import { vsYaml, type FixtureReaderOptions } from '../support/table-reader.js';
import { feedSink, tableReplies } from '../support/ipvs-replies.js';
import { oddDeclared, oddTable } from '../support/odd-table.js';
import { repoRoot } from '../support/proc.js';
import { decodeServiceReply } from '../../src/ipvs/genl.js';
import { LabelText, TableColumns, writeTableText } from '../../src/ipvs/table-text.js';

const READER = new URL('../support/table-reader.js', import.meta.url).href;

interface HarnessOptions {
  readonly settings?: TableMetricsSettings;
  readonly reader?: Partial<FixtureReaderOptions>;
  readonly declared?: (vss: readonly VirtualServerConfig[]) => readonly VirtualServerConfig[];
}

/** `n` virtual servers "vs0".."vsN-1" of `d` real servers each, declared, read by the worker from memory. */
function harness(n: number, d: number, o: HarnessOptions = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'lvsd-tm-'));
  const log = join(dir, 'reads');
  const vss = cfgOf(vsYaml(n, d)).virtual_servers;
  let declared = o.declared ? o.declared(vss) : vss;
  const registry = new Registry();
  const clock = new ManualClock();
  const errors: string[] = [];
  registerTableMetrics(registry, {
    reader: () => ({ module: READER, options: { n, d, log, failFile: join(dir, 'fail'), crashFile: join(dir, 'crash'), ...o.reader } satisfies FixtureReaderOptions }),
    declared: () => declared,
    settings: () => o.settings,
    clock,
    onError: (reason, message) => errors.push(`${reason}: ${message}`),
  });
  const reads = () => (existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean) : []);
  return {
    registry,
    errors,
    reads,
    file: (name: string) => join(dir, name),
    /** A reload: the running configuration's virtual servers are now `vss`. */
    declare: (vss: readonly VirtualServerConfig[]) => (declared = vss),
    tick: (ms: number) => clock.advance(ms),
    close: async () => {
      await stopTableMetrics(registry);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
type Harness = ReturnType<typeof harness>;
const using = async (h: Harness, f: (h: Harness) => Promise<void>) => {
  try {
    await f(h);
  } finally {
    await h.close();
  }
};
const tableSeries = (text: string) => parsePrometheus(text).filter((s) => /^lvsd_ipvs_(virtual|real)_server_/.test(s.name));

async function httpScrape(registry: Registry, method = 'GET'): Promise<{ status: number; type: string | null; body: string }> {
  const api = new ApiServer({ registry, status: () => ({}), unhealthy: () => null }, silentLogger);
  await api.listen('127.0.0.1:0');
  try {
    const r = await fetch(`http://${api.address}/metrics`, { method });
    return { status: r.status, type: r.headers.get('content-type'), body: await r.text() };
  } finally {
    await api.close();
  }
}

test('GET /metrics streams the registry and the table metrics; promtool accepts the body', () => using(harness(150, 4), async (h) => {
  new Gauge({ name: 'lvsd_other', help: 'a prom-client metric on the same registry', registers: [h.registry] }).set(7);
  const r = await httpScrape(h.registry);
  assert.equal(r.status, 200);
  assert.match(r.type ?? '', /^text\/plain; version=0\.0\.4/);
  const check = spawnSync('promtool', ['check', 'metrics'], { input: r.body, encoding: 'utf8' });
  assert.equal(check.status, 0, `promtool check metrics: ${check.stdout}${check.stderr}`);
  const m = parsePrometheus(r.body);
  assert.equal(sampleValue(m, 'lvsd_other'), 7);
  // 7 series per virtual server and 9 per real server, each once.
  const table = tableSeries(r.body);
  assert.equal(table.length, 150 * 7 + 150 * 4 * 9);
  assert.equal(new Set(table.map((s) => `${s.name}${JSON.stringify(s.labels)}`)).size, table.length);
  // Every family's HELP and TYPE once, in front of its series.
  for (const name of new Set(table.map((s) => s.name))) {
    assert.equal(r.body.split(`\n# TYPE ${name} `).length, 2, name);
    assert.ok(r.body.indexOf(`# TYPE ${name} `) < r.body.indexOf(`\n${name}{`), name);
  }
  const vs = { virtual_server: 'vs149', service: 'tcp/192.0.2.3:1021' };
  const rs = { ...vs, real_server: '198.51.100.2:80' };
  assert.equal(sampleValue(m, 'lvsd_ipvs_virtual_server_connections_total', vs), 150);
  assert.equal(sampleValue(m, 'lvsd_ipvs_virtual_server_packets_total', { ...vs, direction: 'out' }), 450);
  assert.equal(sampleValue(m, 'lvsd_ipvs_virtual_server_active_connections', vs), 0 + 1 + 2 + 3);
  assert.equal(sampleValue(m, 'lvsd_ipvs_virtual_server_inactive_connections', vs), 2 * (0 + 1 + 2 + 3));
  assert.equal(sampleValue(m, 'lvsd_ipvs_real_server_connections_total', rs), 1491);
  assert.equal(sampleValue(m, 'lvsd_ipvs_real_server_bytes_total', { ...rs, direction: 'in' }), 149100);
  assert.equal(sampleValue(m, 'lvsd_ipvs_real_server_weight', rs), 2);
  assert.equal(sampleValue(m, 'lvsd_ipvs_real_server_weight', { ...vs, real_server: '198.51.100.1:80' }), 0);
  assert.equal(sampleValue(m, 'lvsd_ipvs_real_server_configured_weight', { ...vs, real_server: '198.51.100.1:80' }), 1);
  assert.equal(sampleValue(m, 'lvsd_ipvs_real_server_active_connections', rs), 1);
  // The read's own status: complete, no errors.
  assert.equal(sampleValue(m, 'lvsd_ipvs_table_read_success'), 1);
  assert.equal(sampleValue(m, 'lvsd_ipvs_table_read_errors_total', { reason: 'kernel' }), 0);
  assert.equal(sampleValue(m, 'lvsd_ipvs_table_read_errors_total', { reason: 'worker' }), 0);
  assert.ok(sampleValue(m, 'lvsd_ipvs_table_read_seconds')! >= 0);
  // HEAD: the headers alone.
  const head = await httpScrape(h.registry, 'HEAD');
  assert.equal(head.status, 200);
  assert.equal(head.body, '');
}));

test('10,000 virtual servers × 10 real servers from memory: every series once, with its value; promtool accepts the body', async () => {
  // The size of issue 20's scrape goal (the time it takes is bench/scrape.ts's business, not a test's).
  const n = 10_000;
  const d = 10;
  const h = harness(n, d);
  let body: string;
  try {
    body = (await httpScrape(h.registry)).body;
  } finally {
    await h.close();
  }
  const check = spawnSync('promtool', ['check', 'metrics'], { input: body, encoding: 'utf8', maxBuffer: 64 << 20 });
  assert.equal(check.status, 0, `promtool check metrics: ${check.stdout.slice(0, 2000)}${check.stderr.slice(0, 2000)}`);
  // Series per family, each label set once (families are contiguous, so one set per family).
  const perFamily = new Map<string, Set<string>>();
  for (const line of body.split('\n')) {
    if (!/^lvsd_ipvs_(virtual|real)_server_/.test(line)) continue;
    const brace = line.indexOf('{');
    const name = line.slice(0, brace);
    let set = perFamily.get(name);
    if (!set) perFamily.set(name, (set = new Set()));
    const series = line.slice(brace, line.lastIndexOf(' '));
    assert.ok(!set.has(series), `${name}${series} twice`);
    set.add(series);
  }
  const count = (name: string) => perFamily.get(name)?.size ?? 0;
  for (const f of ['connections_total', 'active_connections', 'inactive_connections']) assert.equal(count(`lvsd_ipvs_virtual_server_${f}`), n, f);
  for (const f of ['packets_total', 'bytes_total']) assert.equal(count(`lvsd_ipvs_virtual_server_${f}`), 2 * n, f);
  for (const f of ['active_connections', 'inactive_connections', 'connections_total', 'weight', 'configured_weight']) assert.equal(count(`lvsd_ipvs_real_server_${f}`), n * d, f);
  for (const f of ['packets_total', 'bytes_total']) assert.equal(count(`lvsd_ipvs_real_server_${f}`), 2 * n * d, f);
  // Values of the last service and one of its real servers (fixture: stats(i + 1), stats(10 * i + j)).
  const i = n - 1;
  const vs = `virtual_server="vs${i}",service="tcp/192.0.2.${1 + (i >> 6)}:${1000 + (i & 63)}"`;
  const rs = `${vs},real_server="198.51.100.4:80"`;
  const has = (line: string) => assert.ok(body.includes(`\n${line}\n`), line);
  has(`lvsd_ipvs_virtual_server_connections_total{${vs}} ${n}`);
  has(`lvsd_ipvs_virtual_server_packets_total{${vs},direction="out"} ${3 * n}`);
  has(`lvsd_ipvs_virtual_server_active_connections{${vs}} ${(d * (d - 1)) / 2}`);
  has(`lvsd_ipvs_real_server_bytes_total{${rs},direction="in"} ${100 * (10 * i + 3)}`);
  has(`lvsd_ipvs_real_server_bytes_total{${rs},direction="out"} ${100 * (10 * i + 3) + 1}`);
  has(`lvsd_ipvs_real_server_inactive_connections{${rs}} 6`);
  has(`lvsd_ipvs_real_server_weight{${rs}} 4`);
  has(`lvsd_ipvs_real_server_configured_weight{${rs}} 4`);
});

test('a 64-bit byte counter is written exactly, not rounded through a double', async () => {
  const big = 2n ** 63n - 5n;
  await using(harness(1, 1, { reader: { bytes: String(big) } }), async (h) => {
    const text = await scrapeText(h.registry);
    assert.match(text, new RegExp(`lvsd_ipvs_real_server_bytes_total\\{[^}]*direction="in"\\} ${big}\\n`));
  });
});

test('the text of a table with every case written apart is the golden text byte for byte, whatever order the real servers\' replies come in', () => {
  // test/fixtures/ipvs/table-text.prom was written by the text code before the read went straight
  // into columns (2026-12-04, 672b3e7): the same table must give the same bytes.
  const golden = readFileSync(join(repoRoot, 'test', 'fixtures', 'ipvs', 'table-text.prom'));
  const replies = tableReplies(oddTable());
  const text = (feed: (cols: TableColumns) => void, capped = false) => {
    const cols = new TableColumns();
    cols.reset(new LabelText(oddDeclared()));
    feed(cols);
    const out: Buffer[] = [];
    writeTableText(cols, capped, (c) => out.push(Buffer.from(c)));
    return Buffer.concat(out);
  };
  assert.equal(text((c) => feedSink(replies, c)).toString(), golden.toString());
  // With several netlink sockets the services' destination dumps end in no set order.
  const reversed = text((c) => {
    c.services(replies.services.map((p) => decodeServiceReply(p)));
    for (let i = replies.dests.length - 1; i >= 0; i--) c.destReplies(i, replies.dests[i]!);
  });
  assert.ok(reversed.equals(golden));
  // Capped: the same virtual server series, the real server families' headers alone.
  const capped = text((c) => feedSink(replies, c), true).toString();
  assert.equal(capped, golden.toString().split('\n').filter((l) => !l.startsWith('lvsd_ipvs_real_server_')).join('\n'));
  const check = spawnSync('promtool', ['check', 'metrics'], { input: golden, encoding: 'utf8' });
  assert.equal(check.status, 0, `promtool check metrics: ${check.stdout}${check.stderr}`);
});

test('label values are escaped (backslash, double quote, line feed) and a real server added by hand has no configured weight', async () => {
  const odd = (vss: readonly VirtualServerConfig[]) => [{ ...vss[0]!, name: 'a"b\\c\nd' }];
  await using(harness(1, 1, { reader: { extraDest: true }, declared: odd }), async (h) => {
    const text = await scrapeText(h.registry);
    const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    assert.equal(check.status, 0, `promtool check metrics: ${check.stdout}${check.stderr}`);
    const m = parsePrometheus(text);
    const vs = { virtual_server: 'a"b\\c\nd', service: 'tcp/192.0.2.1:1000' };
    assert.equal(sampleValue(m, 'lvsd_ipvs_virtual_server_connections_total', vs), 1);
    assert.equal(sampleValue(m, 'lvsd_ipvs_real_server_weight', { ...vs, real_server: '198.51.100.99:80' }), 1);
    assert.equal(sampleValue(m, 'lvsd_ipvs_real_server_configured_weight', { ...vs, real_server: '198.51.100.99:80' }), undefined);
    assert.equal(sampleValue(m, 'lvsd_ipvs_real_server_configured_weight', { ...vs, real_server: '198.51.100.1:80' }), 1);
  });
});

test('the table is read and its text written in a worker thread; the text comes in whole-line chunks', () => using(harness(300, 10), async (h) => {
  let chunks = 0;
  for await (const c of scrape(h.registry)) {
    assert.equal(typeof c === 'string' ? c.at(-1) : String.fromCharCode(c.at(-1)!), '\n', 'a chunk ends at a line end');
    chunks++;
  }
  assert.ok(chunks > 30, `${chunks} chunks for 300 × 10`);
  const reads = h.reads();
  assert.equal(reads.length, 1);
  assert.match(reads[0]!, /^[1-9]\d* false$/, 'read off the main thread');
}));

/** The ops of the messages this process posts to worker threads while `f` runs (what crosses to the table-metrics worker). */
async function postedOps(f: () => Promise<void>): Promise<string[]> {
  const ops: string[] = [];
  const post = Worker.prototype.postMessage;
  Worker.prototype.postMessage = function (this: Worker, m: TableWorkerRequest, ...rest: unknown[]) {
    ops.push(m.op === 'declared' ? `declared:${m.services.length}${m.last ? ':last' : ''}` : m.op);
    return (post as (...a: unknown[]) => void).call(this, m, ...rest);
  } as typeof post;
  try {
    await f();
  } finally {
    Worker.prototype.postMessage = post;
  }
  return ops;
}

test('primed at start and reload, the worker has the virtual servers before the first scrape, which then only asks for the read', () => using(harness(250, 2), async (h) => {
  // Start: the worker gets the 250 services (in slices), no read.
  const primed = await postedOps(() => primeTableMetrics(h.registry));
  assert.deepEqual(primed, ['declared:100', 'declared:100', 'declared:50:last']);
  assert.equal(h.reads().length, 0, 'priming reads nothing');
  // The first scrape sends the worker nothing but the read, and is labelled with the configured names.
  let text = '';
  const first = await postedOps(async () => { text = await scrapeText(h.registry); });
  assert.deepEqual(first.filter((op) => op !== 'recycle'), ['read']);
  assert.equal(sampleValue(parsePrometheus(text), 'lvsd_ipvs_real_server_weight', { virtual_server: 'vs249', service: 'tcp/192.0.2.4:1057', real_server: '198.51.100.2:80' }), 2);
  // A reload renames every service; a scrape started before the priming has posted the whole new list
  // gets its read after the last slice, and the new names throughout.
  h.declare(cfgOf(vsYaml(250, 2).replace(/name: vs/g, 'name: web')).virtual_servers);
  h.tick(1000);
  const reload = await postedOps(async () => {
    const p = primeTableMetrics(h.registry);
    text = await scrapeText(h.registry);
    await p;
  });
  assert.deepEqual(reload.filter((op) => op !== 'recycle'), ['declared:100', 'declared:100', 'declared:50:last', 'read']);
  const names = new Set(tableSeries(text).map((s) => s.labels.virtual_server));
  assert.equal(names.size, 250);
  assert.ok([...names].every((n) => n?.startsWith('web')), 'no series under a name of the previous configuration');
  // Priming again with the same configuration sends nothing.
  assert.deepEqual(await postedOps(() => primeTableMetrics(h.registry)), []);
}));

test('scrapes within the cache time or while a read is running share one read; a later one reads again', () => using(harness(3, 2), async (h) => {
  const [a, b] = await Promise.all([scrapeText(h.registry), scrapeText(h.registry)]);
  assert.equal(h.reads().length, 1);
  assert.equal(a, b);
  h.tick(500);
  await scrapeText(h.registry);
  assert.equal(h.reads().length, 1);
  h.tick(1000);
  await scrapeText(h.registry);
  assert.equal(h.reads().length, 2);
}));

test('successive and concurrent HTTP scrapes each get their own read\'s whole text, from reused chunk memory', () => using(harness(300, 10, { reader: { vary: true } }), async (h) => {
  const bodies: string[] = [];
  for (let i = 0; i < 3; i++) {
    const [x, y] = await Promise.all([httpScrape(h.registry), httpScrape(h.registry)]);
    bodies.push(x.body, y.body);
    h.tick(1000);
  }
  assert.equal(h.reads().length, 3, 'two concurrent scrapes share a read');
  // Read k's connection counters are the first read's + k × 1,000,000 (test/support/table-reader.ts): a body
  // holding another read's bytes would not be equal to it shifted. What this cannot show: a response still
  // being flushed when the next read reuses its memory (each pair here is read to its end before the next
  // read); that rule is ApiServer.metrics' wait for the response to finish, not reproduced by a test.
  const shift = (t: string, k: number) => t.replace(/\nlvsd_ipvs_table_read_seconds [^\n]+/, '').replace(/(connections_total\{[^}]*\}) (\d+)/g, (_m, l: string, v: string) => `${l} ${Number(v) - k * 1_000_000}`);
  const base = shift(bodies[0]!, 0);
  bodies.forEach((body, i) => assert.equal(shift(body, Math.floor(i / 2)), base, `body ${i}`));
  assert.equal(tableSeries(bodies[5]!).length, 300 * 7 + 300 * 10 * 9);
}));

test('a failed kernel read is counted and its scrape has no table series, not the previous read\'s; the next read recovers', () => using(harness(3, 2), async (h) => {
  const good = parsePrometheus(await scrapeText(h.registry));
  assert.equal(sampleValue(good, 'lvsd_ipvs_table_read_success'), 1);
  writeFileSync(h.file('fail'), '');
  h.tick(1000);
  const ok = await httpScrape(h.registry);
  assert.equal(ok.status, 200, 'the rest of /metrics is still served');
  const bad = parsePrometheus(ok.body);
  assert.equal(tableSeries(ok.body).length, 0);
  assert.equal(sampleValue(bad, 'lvsd_ipvs_table_read_success'), 0);
  assert.equal(sampleValue(bad, 'lvsd_ipvs_table_read_errors_total', { reason: 'kernel' }), 1);
  assert.equal(sampleValue(bad, 'lvsd_ipvs_table_read_errors_total', { reason: 'worker' }), 0);
  assert.deepEqual(h.errors.length, 1);
  assert.match(h.errors[0]!, /^kernel: reading the IPVS table failed: no answer from the kernel to request 7 \(ETIMEDOUT\)$/);
  rmSync(h.file('fail'));
  h.tick(1000);
  const again = await scrapeText(h.registry);
  assert.equal(tableSeries(again).length, 3 * 7 + 3 * 2 * 9);
  assert.equal(sampleValue(parsePrometheus(again), 'lvsd_ipvs_table_read_success'), 1);
  assert.equal(sampleValue(parsePrometheus(again), 'lvsd_ipvs_table_read_errors_total', { reason: 'kernel' }), 1);
  assert.equal(h.reads().length, 3);
}));

test('a worker thread that dies is counted, its scrape has no table series, and the next scrape starts a new worker', () => using(harness(3, 2), async (h) => {
  writeFileSync(h.file('crash'), '');
  const text = await scrapeText(h.registry);
  assert.equal(tableSeries(text).length, 0);
  const m = parsePrometheus(text);
  assert.equal(sampleValue(m, 'lvsd_ipvs_table_read_success'), 0);
  assert.equal(sampleValue(m, 'lvsd_ipvs_table_read_errors_total', { reason: 'worker' }), 1);
  assert.match(h.errors.join('\n'), /^worker: the table-metrics worker thread stopped \(exit code 3\)$/);
  rmSync(h.file('crash'));
  h.tick(1000);
  const again = await scrapeText(h.registry);
  assert.equal(tableSeries(again).length, 3 * 7 + 3 * 2 * 9);
  assert.equal(sampleValue(parsePrometheus(again), 'lvsd_ipvs_table_read_errors_total', { reason: 'worker' }), 1);
  const threads = new Set(h.reads().map((l) => l.split(' ')[0]));
  assert.equal(threads.size, 2, 'a new worker thread read the table');
}));

/** Runs `body` (module code; `registry` has table metrics over the fixture reader with `options`) in a node process of its own. */
function inOwnProcess(options: Partial<FixtureReaderOptions>, body: string): { status: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string } {
  const dir = mkdtempSync(join(tmpdir(), 'lvsd-tm-proc-'));
  try {
    const script = join(dir, 'main.mjs');
    const u = (rel: string) => JSON.stringify(new URL(rel, import.meta.url).href);
    writeFileSync(script, `
import { existsSync, readFileSync } from 'node:fs';
import { Registry } from ${JSON.stringify(pathToFileURL(createRequire(import.meta.url).resolve('prom-client')).href)};
import { registerTableMetrics, stopTableMetrics } from ${u('../../src/ipvs/table-metrics.js')};
import { scrapeText } from ${u('../../src/metrics/exposition.js')};
import { SystemClock } from ${u('../../src/core/clock.js')};
import { cfgOf } from ${u('../support/ipvs.js')};
import { vsYaml } from ${u('../support/table-reader.js')};
const dir = ${JSON.stringify(dir)};
const registry = new Registry();
const declared = cfgOf(vsYaml(20, 3)).virtual_servers;
const options = { n: 20, d: 3, log: dir + '/reads', hangFile: dir + '/hang', ...${JSON.stringify(options)} };
registerTableMetrics(registry, { reader: () => ({ module: ${JSON.stringify(READER)}, options }), declared: () => declared, clock: new SystemClock() }, { cacheMs: 0 });
const weights = (text) => text.split('\\n').filter((l) => l.startsWith('lvsd_ipvs_real_server_weight{')).length;
const reads = () => (existsSync(options.log) ? readFileSync(options.log, 'utf8').split('\\n').filter(Boolean).length : 0);
${body}
`);
    // Bounded: a process the worker kept alive is killed here, and the test fails.
    return spawnSync(process.execPath, [script], { encoding: 'utf8', timeout: 60_000 });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('the worker does not keep the process alive: a process that scraped once and does nothing more exits', () => {
  // With a real netlink socket per read: netlink@0.3.0 crashes a process that ends while a worker
  // holds one open (SIGSEGV), so the worker holds none between reads.
  const r = inOwnProcess({ socket: true }, `process.stdout.write(String(weights(await scrapeText(registry))));`);
  assert.equal(r.signal, null, 'the process ended by itself');
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, '60');
});

test('stopping the table metrics during a read ends the worker cleanly (its open netlink socket closed) and the scrape says the read failed', () => {
  const r = inOwnProcess({ socket: true }, `
const first = weights(await scrapeText(registry));
writeFileSync(dir + '/hang', '');
const second = scrapeText(registry);
// Wait for the effect: the worker has started the read that hangs.
for (let i = 0; i < 600 && reads() < 2; i++) await new Promise((r) => setTimeout(r, 50));
await stopTableMetrics(registry);
const text = await second;
const after = await scrapeText(registry);
process.stdout.write(JSON.stringify({ first, reads: reads(), second: weights(text), success: /\\nlvsd_ipvs_table_read_success 0\\n/.test(text), after: after.includes('lvsd_ipvs_') }));
`.replace("const first", "const { writeFileSync } = await import('node:fs');\nconst first"));
  assert.equal(r.signal, null, `the process ended by itself: ${r.stderr}`);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { first: 60, reads: 2, second: 0, success: true, after: false });
});

test('global.api.table_metrics: disabled → no series and no read; over max_real_servers → per-virtual-server series only', async () => {
  await using(harness(3, 2, { settings: { enabled: false, max_real_servers: 100 } }), async (off) => {
    const t = parsePrometheus(await scrapeText(off.registry));
    assert.equal(t.filter((s) => s.name.startsWith('lvsd_ipvs_')).length, 0);
    assert.equal(off.reads().length, 0);
  });
  await using(harness(3, 2, { settings: { enabled: true, max_real_servers: 5 } }), async (capped) => {
    const text = await scrapeText(capped.registry);
    const m = parsePrometheus(text);
    assert.equal(m.filter((s) => s.name.startsWith('lvsd_ipvs_virtual_server_')).length, 3 * 7);
    assert.equal(m.filter((s) => s.name.startsWith('lvsd_ipvs_real_server_')).length, 0);
    assert.equal(spawnSync('promtool', ['check', 'metrics'], { input: text }).status, 0);
  });
  await using(harness(3, 2, { settings: { enabled: true, max_real_servers: 6 } }), async (atCap) => {
    assert.equal(parsePrometheus(await scrapeText(atCap.registry)).filter((s) => s.name.startsWith('lvsd_ipvs_real_server_')).length, 3 * 2 * 9);
  });
});

test('the configuration key: defaults, and a bad value named by its path', () => {
  const c = cfgOf('virtual_servers: []\n');
  assert.deepEqual(c.global.api.table_metrics, { enabled: true, max_real_servers: 100000 });
  assert.deepEqual(cfgOf('global: { api: { table_metrics: { enabled: false } } }\n').global.api.table_metrics, { enabled: false, max_real_servers: 100000 });
  assert.throws(() => cfgOf('global: { api: { table_metrics: { max_real_servers: -1 } } }\n'), /global\.api\.table_metrics\.max_real_servers/);
});
