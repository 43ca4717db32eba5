/**
 * The table metrics' own exposition (src/ipvs/table-metrics.ts, src/metrics/exposition.ts): the
 * /metrics body lvsd's HTTP server streams is valid Prometheus text (promtool check metrics), holds
 * the table's values under the configured names, comes in whole-line chunks with a turn of the event
 * loop between them, reads the table once for concurrent scrapes, and obeys
 * global.api.table_metrics. Kernel values against ipvsadm: test/lab/table-metrics.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { Gauge, Registry } from 'prom-client';
import { silentLogger } from '../../src/core/log.js';
import { makeDest, makeService, type IpvsStats, type IpvsTable } from '../../src/ipvs/model.js';
import { registerTableMetrics, type TableMetricsSettings } from '../../src/ipvs/table-metrics.js';
import { scrape, scrapeText } from '../../src/metrics/exposition.js';
import { ApiServer } from '../../src/metrics/http.js';
import { parsePrometheus, sampleValue } from '../support/prom.js';
import { cfgOf } from '../support/ipvs.js';

const stats = (k: number, bytes = BigInt(100 * k)): IpvsStats => ({ conns: k, inpkts: 2 * k, outpkts: 3 * k, inbytes: bytes, outbytes: bytes + 1n, cps: 0, inpps: 0, outpps: 0, inbps: 0, outbps: 0 });

/** `n` virtual servers "vs0".."vsN-1" of `d` real servers each, declared and in the table. */
function fixture(n: number, d: number) {
  const vss = Array.from({ length: n }, (_, i) => `  - name: vs${i}
    address: 192.0.2.${1 + (i >> 6)}
    port: ${1000 + (i & 63)}
    real_servers: [${Array.from({ length: d }, (_, j) => `{ address: 198.51.100.${1 + j}, port: 80, weight: ${j + 1} }`).join(', ')}]`);
  const cfg = cfgOf(`virtual_servers:\n${vss.join('\n')}\n`);
  const table: IpvsTable = cfg.virtual_servers.map((v, i) => ({
    service: { ...makeService({ protocol: 'tcp', addr: v.address!, port: v.port }), stats: stats(i + 1) },
    dests: v.real_servers.map((r, j) => ({ ...makeDest({ addr: r.address, port: r.port, weight: j === 0 ? 0 : j + 1 }), active_conns: j, inact_conns: 2 * j, stats: stats(10 * i + j) })),
  }));
  return { cfg, table };
}

function harness(n: number, d: number, settings?: TableMetricsSettings) {
  const { cfg, table } = fixture(n, d);
  const registry = new Registry();
  let reads = 0;
  let clock = 0;
  registerTableMetrics(registry, {
    read: () => {
      reads++;
      return Promise.resolve(table);
    },
    declared: () => cfg.virtual_servers,
    settings: () => settings,
    now: () => clock,
  });
  return { registry, table, reads: () => reads, tick: (ms: number) => (clock += ms) };
}

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

test('GET /metrics streams the registry and the table metrics; promtool accepts the body', async () => {
  const h = harness(150, 4);
  new Gauge({ name: 'lvsd_other', help: 'a prom-client metric on the same registry', registers: [h.registry] }).set(7);
  const r = await httpScrape(h.registry);
  assert.equal(r.status, 200);
  assert.match(r.type ?? '', /^text\/plain; version=0\.0\.4/);
  const check = spawnSync('promtool', ['check', 'metrics'], { input: r.body, encoding: 'utf8' });
  assert.equal(check.status, 0, `promtool check metrics: ${check.stdout}${check.stderr}`);
  const m = parsePrometheus(r.body);
  assert.equal(sampleValue(m, 'lvsd_other'), 7);
  // 7 series per virtual server and 9 per real server, each once.
  const table = m.filter((s) => s.name.startsWith('lvsd_ipvs_'));
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
  // HEAD: the headers alone.
  const head = await httpScrape(h.registry, 'HEAD');
  assert.equal(head.status, 200);
  assert.equal(head.body, '');
});

test('10,000 virtual servers × 10 real servers from memory: every series once, with its value; promtool accepts the body', async () => {
  // The size of issue 20's scrape goal (the time it takes is bench/scrape.ts's business, not a test's).
  const n = 10_000;
  const d = 10;
  const h = harness(n, d);
  const body = (await httpScrape(h.registry)).body;
  const check = spawnSync('promtool', ['check', 'metrics'], { input: body, encoding: 'utf8', maxBuffer: 64 << 20 });
  assert.equal(check.status, 0, `promtool check metrics: ${check.stdout.slice(0, 2000)}${check.stderr.slice(0, 2000)}`);
  // Series per family, each label set once (families are contiguous, so one set per family).
  const perFamily = new Map<string, Set<string>>();
  for (const line of body.split('\n')) {
    if (!line.startsWith('lvsd_ipvs_')) continue;
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
  const h = harness(1, 1);
  const big = 2n ** 63n - 5n;
  (h.table[0]!.dests[0] as { stats: IpvsStats }).stats = stats(1, big);
  const text = await scrapeText(h.registry);
  assert.match(text, new RegExp(`lvsd_ipvs_real_server_bytes_total\\{[^}]*direction="in"\\} ${big}\\n`));
});

test('label values are escaped (backslash, double quote, line feed) and a real server added by hand has no configured weight', async () => {
  const { cfg, table } = fixture(1, 1);
  const odd = [{ ...cfg.virtual_servers[0]!, name: 'a"b\\c\nd' }];
  const registry = new Registry();
  const extra = { ...makeDest({ addr: '198.51.100.99', port: 80 }), stats: stats(1) };
  registerTableMetrics(registry, { read: async () => [{ ...table[0]!, dests: [...table[0]!.dests, extra] }], declared: () => odd, now: () => 0 });
  const text = await scrapeText(registry);
  const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  assert.equal(check.status, 0, `promtool check metrics: ${check.stdout}${check.stderr}`);
  const m = parsePrometheus(text);
  const vs = { virtual_server: 'a"b\\c\nd', service: 'tcp/192.0.2.1:1000' };
  assert.equal(sampleValue(m, 'lvsd_ipvs_virtual_server_connections_total', vs), 1);
  assert.equal(sampleValue(m, 'lvsd_ipvs_real_server_weight', { ...vs, real_server: '198.51.100.99:80' }), 1);
  assert.equal(sampleValue(m, 'lvsd_ipvs_real_server_configured_weight', { ...vs, real_server: '198.51.100.99:80' }), undefined);
  assert.equal(sampleValue(m, 'lvsd_ipvs_real_server_configured_weight', { ...vs, real_server: '198.51.100.1:80' }), 1);
});

test('the text comes in whole-line chunks with a turn of the event loop between two chunks', async () => {
  const h = harness(300, 10);
  let turns = 0;
  let chunks = 0;
  let turnsAtLast = -1;
  const tick = () => {
    turns++;
    if (timer) setImmediate(tick);
  };
  let timer = true;
  setImmediate(tick);
  try {
    for await (const c of scrape(h.registry)) {
      assert.equal(typeof c === 'string' ? c.at(-1) : String.fromCharCode(c.at(-1)!), '\n', 'a chunk ends at a line end');
      if (chunks > 0) assert.ok(turns > turnsAtLast, `the loop turned between chunk ${chunks} and the one before`);
      turnsAtLast = turns;
      chunks++;
    }
  } finally {
    timer = false;
  }
  assert.ok(chunks > 30, `${chunks} chunks for 300 × 10`);
});

test('scrapes within the cache time or while a read is running share one read; a later one reads again', async () => {
  const h = harness(3, 2);
  const [a, b] = await Promise.all([scrapeText(h.registry), scrapeText(h.registry)]);
  assert.equal(h.reads(), 1);
  assert.equal(a, b);
  h.tick(500);
  await scrapeText(h.registry);
  assert.equal(h.reads(), 1);
  h.tick(1000);
  await scrapeText(h.registry);
  assert.equal(h.reads(), 2);
});

test('global.api.table_metrics: disabled → no series and no read; over max_real_servers → per-virtual-server series only', async () => {
  const off = harness(3, 2, { enabled: false, max_real_servers: 100 });
  const t = parsePrometheus(await scrapeText(off.registry));
  assert.equal(t.filter((s) => s.name.startsWith('lvsd_ipvs_')).length, 0);
  assert.equal(off.reads(), 0);

  const capped = harness(3, 2, { enabled: true, max_real_servers: 5 });
  const text = await scrapeText(capped.registry);
  const m = parsePrometheus(text);
  assert.equal(m.filter((s) => s.name.startsWith('lvsd_ipvs_virtual_server_')).length, 3 * 7);
  assert.equal(m.filter((s) => s.name.startsWith('lvsd_ipvs_real_server_')).length, 0);
  assert.equal(spawnSync('promtool', ['check', 'metrics'], { input: text }).status, 0);

  const atCap = harness(3, 2, { enabled: true, max_real_servers: 6 });
  assert.equal(parsePrometheus(await scrapeText(atCap.registry)).filter((s) => s.name.startsWith('lvsd_ipvs_real_server_')).length, 3 * 2 * 9);
});

test('the configuration key: defaults, and a bad value named by its path', () => {
  const c = cfgOf('virtual_servers: []\n');
  assert.deepEqual(c.global.api.table_metrics, { enabled: true, max_real_servers: 100000 });
  assert.deepEqual(cfgOf('global: { api: { table_metrics: { enabled: false } } }\n').global.api.table_metrics, { enabled: false, max_real_servers: 100000 });
  assert.throws(() => cfgOf('global: { api: { table_metrics: { max_real_servers: -1 } } }\n'), /global\.api\.table_metrics\.max_real_servers/);
});
