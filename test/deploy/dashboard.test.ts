/**
 * deploy/grafana/dashboards/lvsd.json asks only for what lvsd exports. Every PromQL expression in
 * it (panel targets, template-variable queries, annotations) is read; every metric it names must be
 * in the registry the daemon builds (core metrics + every subsystem's factory, constructed, not
 * started — as test/metrics/catalogue.test.ts builds it — plus the sync channel's engine metrics), histogram series (_bucket/_sum/_count)
 * only on histograms; every label it matches on, groups by or prints in a legend must be one of
 * those metrics' labels (or Prometheus's target labels job/instance). Finally promtool, the real
 * PromQL parser (Debian's prometheus package), parses every expression as a recording rule.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import yaml from 'js-yaml';
import { createCoreMetrics } from '../../src/metrics/registry.js';
import { catalogue, type MetricDoc } from '../../src/metrics/catalogue.js';
import { defaultSubsystems } from '../../src/daemon/subsystems.js';
import { engineMetrics } from '../../src/sync/engine.js';
import { silentLogger } from '../../src/core/log.js';
import { SystemClock } from '../../src/core/clock.js';
import { Bus } from '../../src/core/bus.js';
import { repoRoot } from '../support/proc.js';

interface Target { refId: string; expr: string; legendFormat?: string; datasource?: { uid: string } }
interface Panel { id: number; type: string; title: string; targets?: Target[] }
interface Variable { name: string; query: string | { query: string } }
interface Dashboard { panels: Panel[]; templating: { list: Variable[] }; annotations?: { list: Array<{ name: string; expr?: string }> } }

/** Target labels Prometheus attaches to every series it scrapes. */
const TARGET_LABELS = ['job', 'instance'];
/** Series that are Prometheus's own, not lvsd's. */
const PROMETHEUS_SERIES = new Set(['up']);
const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'and', 'or', 'unless', 'offset', 'inf', 'nan']);

/** Grafana's variables replaced by values PromQL accepts ($job etc. only appear inside =~"..."). */
function substitute(expr: string): string {
  return expr.replace(/\$__(rate_)?interval|\$__range/g, '1m').replace(/\$\{?[a-z_]+\}?/g, '.*');
}

/** label_values(selector, label) is Grafana's, not PromQL: the selector is the expression. */
function variableExpr(v: Variable): { expr: string; label?: string } {
  const q = typeof v.query === 'string' ? v.query : v.query.query;
  const m = /^label_values\((.*),\s*([a-zA-Z_]+)\)$/.exec(q);
  assert.ok(m, `variable ${v.name}: a label_values(selector, label) query, got ${q}`);
  return { expr: m[1]!, label: m[2]! };
}

/** The balanced (...) group starting at s[i] === '('. */
function group(s: string, i: number): string {
  let depth = 0;
  for (let j = i; j < s.length; j++) {
    if (s[j] === '(') depth++;
    else if (s[j] === ')' && --depth === 0) return s.slice(i + 1, j);
  }
  throw new Error(`unbalanced parentheses in ${s}`);
}

interface Use { metrics: string[]; labels: Array<{ label: string; scope: string[] }> }

/** Metric names and label names an expression uses; each label with the metrics it must belong to. */
function uses(raw: string): Use {
  const expr = raw.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  const metricsIn = (s: string): string[] => {
    const bare = s.replace(/\{[^}]*\}/g, ' ').replace(/\[[^\]]*\]/g, ' ').replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' $1 ');
    const out: string[] = [];
    for (const m of bare.matchAll(/(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\(|\s+(?:by|without)\b)?/g)) {
      if (m[2] || KEYWORDS.has(m[1]!.toLowerCase())) continue; // a function call, an aggregation or a keyword
      out.push(m[1]!);
    }
    return out;
  };
  const metrics = metricsIn(expr);
  const labels: Use['labels'] = [];
  // Matchers inside a selector belong to that selector's metric.
  for (const m of expr.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)?\s*\{([^}]*)\}/g)) {
    assert.ok(m[1], `${raw}: a selector without a metric name`);
    for (const l of m[2]!.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)/g)) labels.push({ label: l[1]!, scope: [m[1]!] });
  }
  // by (...) / without (...) in prefix form: the labels belong to every metric aggregated.
  for (const m of expr.matchAll(/\b(by|without)\s*\(([^)]*)\)\s*(?=\()/g)) {
    const inner = group(expr, m.index + m[0].length);
    for (const l of m[2]!.split(',').map((x) => x.trim()).filter(Boolean)) labels.push({ label: l, scope: metricsIn(inner) });
  }
  assert.ok(!/\)\s*(by|without)\s*\(/.test(expr), `${raw}: write aggregations as "sum by (...) (...)"`);
  return { metrics, labels };
}

async function registered(): Promise<Map<string, MetricDoc>> {
  const core = createCoreMetrics('test');
  const subs = defaultSubsystems().map((s) => s.factory({ logger: silentLogger, clock: new SystemClock(), registry: core.registry, bus: new Bus() }));
  assert.ok(subs.length >= 4);
  engineMetrics(core.registry); // the sync channel's, registered when `sync.channel: lvsd` starts
  return new Map((await catalogue(core.registry)).map((d) => [d.name, d]));
}

/** The lvsd metric a series name belongs to (histograms' _bucket/_sum/_count), or undefined. */
function metricOf(known: Map<string, MetricDoc>, series: string): { doc: MetricDoc; labels: string[] } | undefined {
  const direct = known.get(series);
  if (direct) return { doc: direct, labels: direct.labels.slice() };
  const m = /^(.*)_(bucket|sum|count)$/.exec(series);
  const base = m ? known.get(m[1]!) : undefined;
  if (!base || !['histogram', 'summary'].includes(base.type)) return undefined;
  return { doc: base, labels: [...base.labels, ...(m![2] === 'bucket' ? ['le'] : [])] };
}

test('the Grafana dashboard asks only for metrics and labels lvsd exports, in PromQL promtool parses', async () => {
  const dash = JSON.parse(readFileSync(join(repoRoot, 'deploy', 'grafana', 'dashboards', 'lvsd.json'), 'utf8')) as Dashboard;
  const known = await registered();
  const datasource = ((yaml.load(readFileSync(join(repoRoot, 'deploy', 'grafana', 'provisioning', 'datasources', 'prometheus.yaml'), 'utf8')) as { datasources: Array<{ uid: string }> }).datasources)[0]!.uid;

  const exprs: Array<{ where: string; expr: string; legend?: string; label?: string }> = [];
  const ids = new Set<number>();
  for (const p of dash.panels) {
    assert.ok(!ids.has(p.id), `panel id ${p.id} is unique`);
    ids.add(p.id);
    if (p.type === 'row') continue;
    assert.ok(p.targets?.length, `${p.title} has queries`);
    for (const t of p.targets) {
      assert.equal(t.datasource?.uid, datasource, `${p.title}: the provisioned datasource`);
      exprs.push({ where: `${p.title} ${t.refId}`, expr: t.expr, ...(t.legendFormat ? { legend: t.legendFormat } : {}) });
    }
  }
  const vars = new Set(dash.templating.list.map((v) => v.name));
  for (const v of ['job', 'instance']) assert.ok(vars.has(v), `template variable $${v}`);
  for (const v of dash.templating.list) exprs.push({ where: `variable ${v.name}`, ...variableExpr(v) });
  for (const a of dash.annotations?.list ?? []) if (a.expr) exprs.push({ where: `annotation ${a.name}`, expr: a.expr });

  const used = new Set<string>();
  for (const e of exprs) {
    for (const v of e.expr.matchAll(/\$([a-z_]+)/g)) if (!v[1]!.startsWith('_')) assert.ok(vars.has(v[1]!), `${e.where}: $${v[1]} is a template variable`);
    const u = uses(e.expr);
    const lvsd = u.metrics.filter((m) => !PROMETHEUS_SERIES.has(m));
    assert.ok(u.metrics.length > 0, `${e.where}: names a metric`);
    for (const m of lvsd) {
      assert.ok(metricOf(known, m), `${e.where}: ${m} is a metric lvsd exports`);
      used.add(metricOf(known, m)!.doc.name);
    }
    const labelsOf = (m: string): string[] => [...TARGET_LABELS, ...(PROMETHEUS_SERIES.has(m) ? [] : metricOf(known, m)!.labels)];
    for (const { label, scope } of u.labels) {
      for (const m of scope) assert.ok(labelsOf(m).includes(label), `${e.where}: ${m} has no label ${label} (it has ${labelsOf(m).join(', ')})`);
    }
    const all = new Set(u.metrics.flatMap(labelsOf));
    if (e.label) assert.ok(all.has(e.label), `${e.where}: label_values of ${e.label}, not a label of ${u.metrics.join(', ')}`);
    // A legend prints labels the result carries: those of its metrics, or the outer aggregation's.
    const outer = /^\s*\w+\s+by\s*\(([^)]*)\)/.exec(e.expr);
    const legendOk = outer ? new Set(outer[1]!.split(',').map((x) => x.trim())) : all;
    for (const l of (e.legend ?? '').matchAll(/\{\{\s*([a-zA-Z_]+)\s*\}\}/g)) assert.ok(legendOk.has(l[1]!) || all.has(l[1]!) && !outer, `${e.where}: legend {{${l[1]}}} is not a label of the result`);
  }
  // The operator's dashboard covers each area: VRRP, IPVS, health, config, sync, subsystems.
  for (const m of ['lvsd_vrrp_state', 'lvsd_vrrp_transitions_total', 'lvsd_vrrp_priority', 'lvsd_vrrp_configured_priority', 'lvsd_vrrp_script_status',
    'lvsd_vrrp_last_transition_timestamp_seconds', 'lvsd_health_real_server_up', 'lvsd_ipvs_real_server_weight', 'lvsd_ipvs_real_server_configured_weight',
    'lvsd_ipvs_virtual_server_connections_total', 'lvsd_ipvs_real_server_bytes_total', 'lvsd_health_check_failures_total', 'lvsd_config_reloads_total',
    'lvsd_subsystem_up', ...[...known.keys()].filter((k) => k.startsWith('lvsd_sync_'))]) assert.ok(used.has(m), `the dashboard shows ${m}`);

  // promtool parses each expression (as a recording rule; Grafana's variables substituted).
  const dir = mkdtempSync(join(tmpdir(), 'lvsd-dash-'));
  try {
    const file = join(dir, 'dashboard-rules.yml');
    writeFileSync(file, yaml.dump({ groups: [{ name: 'dashboard', rules: exprs.map((e, i) => ({ record: `lvsd_dashboard:expr_${i}`, expr: substitute(e.expr) })) }] }));
    const r = spawnSync('promtool', ['check', 'rules', file], { encoding: 'utf8' });
    assert.ok(!r.error, 'promtool is installed (Debian prometheus, scripts/setup.sh)');
    assert.equal(r.status, 0, `promtool check rules:\n${r.stdout}${r.stderr}`);
    assert.match(r.stdout, new RegExp(`SUCCESS: ${exprs.length} rules found`));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the expression reader finds metrics and labels, and rejects what is not lvsd', async () => {
  const u = uses('histogram_quantile(0.95, sum by (instance, le) (rate(lvsd_ipvs_reconcile_duration_seconds_bucket{job=~"$job", x="a{b}"}[$__rate_interval])))');
  assert.deepEqual(u.metrics, ['lvsd_ipvs_reconcile_duration_seconds_bucket']);
  assert.deepEqual(u.labels.map((l) => l.label).sort(), ['instance', 'job', 'le', 'x']);
  assert.deepEqual(uses('time() - lvsd_vrrp_last_transition_timestamp_seconds{a="1"} == 1').metrics, ['lvsd_vrrp_last_transition_timestamp_seconds']);
  assert.deepEqual(uses('2 * max by (vrrp_instance) (lvsd_vrrp_state{state="MASTER"}) + up').metrics, ['lvsd_vrrp_state', 'up']);
  const known = await registered();
  assert.ok(metricOf(known, 'lvsd_health_check_duration_seconds_bucket'));
  assert.equal(metricOf(known, 'lvsd_vrrp_state_count'), undefined, 'a gauge has no _count series');
  assert.equal(metricOf(known, 'lvsd_vrrp_master'), undefined);
  assert.deepEqual(metricOf(known, 'lvsd_health_check_duration_seconds_bucket')!.labels, ['kind', 'le']);
  assert.equal(substitute('rate(x{instance=~"$instance"}[$__rate_interval])'), 'rate(x{instance=~".*"}[1m])');
});
