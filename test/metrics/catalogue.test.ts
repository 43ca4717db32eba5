/**
 * docs/operations.md's metric catalogue is the registry the daemon really builds: the core metrics
 * plus every subsystem's, from the same factories `lvsd run` uses (constructed, not started: no
 * socket is opened). A metric added, renamed or relabelled without the docs fails here; run
 * `LVSD_UPDATE_DOCS=1 node --test dist/test/metrics/catalogue.test.js` to rewrite the table.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createCoreMetrics } from '../../src/metrics/registry.js';
import { catalogue, renderCatalogue, CATALOGUE_BEGIN, CATALOGUE_END } from '../../src/metrics/catalogue.js';
import { defaultSubsystems } from '../../src/daemon/subsystems.js';
import { silentLogger } from '../../src/core/log.js';
import { SystemClock } from '../../src/core/clock.js';
import { Bus } from '../../src/core/bus.js';
import { repoRoot } from '../support/proc.js';

test('docs/operations.md lists every lvsd metric the daemon registers, with its type and labels', async () => {
  const core = createCoreMetrics('test');
  const subs = defaultSubsystems().map((s) => s.factory({ logger: silentLogger, clock: new SystemClock(), registry: core.registry, bus: new Bus() }));
  assert.ok(subs.length >= 4);
  const docs = await catalogue(core.registry);
  assert.ok(docs.some((d) => d.name === 'lvsd_vrrp_state') && docs.some((d) => d.name === 'lvsd_ipvs_real_server_weight') && docs.some((d) => d.name === 'lvsd_health_real_server_up'));
  // Label names that Prometheus would rename on scrape (target labels) are not used.
  for (const d of docs) for (const l of d.labels) assert.ok(!['instance', 'job'].includes(l), `${d.name} has label ${l}`);
  // Units and kinds in names: counters end in _total, durations in _seconds.
  for (const d of docs) {
    if (d.type === 'counter') assert.match(d.name, /_total$/, `${d.name} is a counter`);
    if (/duration|latency|lag/.test(d.name)) assert.match(d.name, /_seconds(_total)?$/, `${d.name} states its unit`);
  }
  const file = join(repoRoot, 'docs', 'operations.md');
  const text = readFileSync(file, 'utf8');
  const a = text.indexOf(CATALOGUE_BEGIN);
  const b = text.indexOf(CATALOGUE_END);
  assert.ok(a >= 0 && b > a, 'docs/operations.md has the catalogue markers');
  const want = renderCatalogue(docs);
  const have = text.slice(a, b + CATALOGUE_END.length);
  if (process.env.LVSD_UPDATE_DOCS === '1' && have !== want) writeFileSync(file, text.slice(0, a) + want + text.slice(b + CATALOGUE_END.length));
  else assert.equal(have, want, 'docs/operations.md metric catalogue is stale: LVSD_UPDATE_DOCS=1 node --test dist/test/metrics/catalogue.test.js');
});
