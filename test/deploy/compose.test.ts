/**
 * docker-compose.yml, validated by docker-compose itself (`config`, Debian's docker-compose 1.29,
 * installed by scripts/setup.sh; no engine needed), then read back: two directors built from the
 * Dockerfile with their own configurations — each passing `lvsd check-config` — that differ where
 * a pair must (router_id, priority) and agree where it must (VRID, VIP, real servers); real
 * servers at the addresses the configs check; Prometheus scraping both directors where they
 * listen; Grafana's dashboard asking only for metrics lvsd registers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';
import yaml from 'js-yaml';
import { repoRoot, lvsdBin } from '../support/proc.js';

interface Service {
  build?: { context: string; dockerfile: string };
  image?: string;
  cap_add?: string[];
  cap_drop?: string[];
  command?: string[] | string;
  volumes?: Array<{ source: string; target: string }>;
  networks?: Record<string, { ipv4_address?: string } | null>;
}
type Doc = Record<string, unknown>;

function composeConfig(): { services: Record<string, Service> } {
  const r = spawnSync('docker-compose', ['-f', join(repoRoot, 'docker-compose.yml'), 'config'], { cwd: repoRoot, encoding: 'utf8' });
  assert.ok(!r.error, 'docker-compose is installed (scripts/setup.sh installs the Debian package)');
  assert.equal(r.status, 0, `docker-compose config:\n${r.stderr}`);
  const doc = yaml.load(r.stdout) as { services: Record<string, Omit<Service, 'volumes'> & { volumes?: Array<string | { source: string; target: string }> }> };
  // docker-compose 1.29 prints short volume syntax (SOURCE:TARGET[:MODE]); compose v2 the long one.
  for (const s of Object.values(doc.services)) {
    s.volumes = s.volumes?.map((v) => (typeof v === 'string' ? { source: v.split(':')[0]!, target: v.split(':')[1]! } : v));
  }
  return doc as { services: Record<string, Service> };
}

/** Every metric name lvsd registers, read from the sources (the string literals naming them). */
function registeredMetrics(): Set<string> {
  const names = new Set<string>();
  const walk = (dir: string): void => {
    for (const n of readdirSync(dir)) {
      const p = join(dir, n);
      if (statSync(p).isDirectory()) walk(p);
      else if (p.endsWith('.ts')) for (const m of readFileSync(p, 'utf8').matchAll(/['"`](lvsd_[a-z0-9_]+)['"`]/g)) names.add(m[1]!);
    }
  };
  walk(join(repoRoot, 'src'));
  return names;
}

test('docker-compose.yml runs a real pair: own configs, real servers, client, Prometheus, Grafana', () => {
  const { services } = composeConfig();
  const directors = Object.entries(services).filter(([, s]) => s.volumes?.some((v) => v.target === '/etc/lvsd/lvsd.yaml'));
  assert.equal(directors.length, 2, 'two directors, each with its own /etc/lvsd/lvsd.yaml');
  const configs = directors.map(([name, s]) => {
    assert.equal(s.build?.dockerfile, 'Dockerfile', `${name} is built from the Dockerfile`);
    assert.equal(resolve(s.build!.context), repoRoot);
    assert.deepEqual(s.cap_drop, ['ALL'], `${name} drops every capability`);
    assert.deepEqual([...(s.cap_add ?? [])].sort(), ['NET_ADMIN', 'NET_RAW'], `${name} gets NET_ADMIN and NET_RAW only`);
    const file = s.volumes!.find((v) => v.target === '/etc/lvsd/lvsd.yaml')!.source;
    const check = spawnSync(process.execPath, [lvsdBin, 'check-config', '-c', file], { encoding: 'utf8' });
    assert.equal(check.status, 0, `${file} passes check-config:\n${check.stdout}${check.stderr}`);
    return { name, file, doc: yaml.load(readFileSync(file, 'utf8')) as Doc };
  });
  const g = (d: Doc, path: string): unknown => path.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], d);
  const [a, b] = configs as [typeof configs[0], typeof configs[0]];
  assert.notEqual(g(a.doc, 'global.router_id'), g(b.doc, 'global.router_id'), 'distinct router ids');
  const inst = (d: Doc): Doc => (d.vrrp_instances as Doc[])[0]!;
  assert.notEqual(inst(a.doc).priority, inst(b.doc).priority, 'distinct priorities');
  assert.equal(inst(a.doc).virtual_router_id, inst(b.doc).virtual_router_id, 'one virtual router');
  assert.deepEqual(inst(a.doc).virtual_addresses, inst(b.doc).virtual_addresses, 'one VIP');
  const vs = (d: Doc): Doc[] => (d.virtual_servers as Doc[]) ?? [];
  assert.ok(vs(a.doc).length > 0, 'an IPVS virtual server, not VRRP only');
  assert.deepEqual(vs(a.doc), vs(b.doc), 'the same virtual servers on both');
  assert.ok(a.doc.sync && b.doc.sync, 'connection sync on both');

  // Real servers: a service at every real-server address, carrying the VIP on lo (direct routing).
  const vip = String((inst(a.doc).virtual_addresses as string[])[0]).split('/')[0]!;
  const addrOf = (s: Service): string | undefined => Object.values(s.networks ?? {})[0]?.ipv4_address;
  const byAddr = new Map(Object.entries(services).map(([n, s]) => [addrOf(s), { n, s }]));
  for (const rs of vs(a.doc).flatMap((v) => v.real_servers as Doc[])) {
    const svc = byAddr.get(String(rs.address));
    assert.ok(svc, `a service at real server ${String(rs.address)}`);
    assert.match([svc.s.command].flat().join(' '), new RegExp(`ip addr add ${vip.replace(/\./g, '\\.')}/32 dev lo`), `${svc.n} holds the VIP on lo`);
  }
  assert.ok(Object.values(services).some((s) => [s.command].flat().join(' ').includes(`http://${vip}/`)), 'a client requests the VIP');

  // Prometheus scrapes each director where its configuration listens.
  const prom = services.prometheus!;
  const promFile = prom.volumes!.find((v) => v.target === '/etc/prometheus/prometheus.yml')!.source;
  const pc = spawnSync('promtool', ['check', 'config', promFile], { encoding: 'utf8' });
  assert.equal(pc.status, 0, `promtool check config (Debian prometheus, scripts/setup.sh): ${pc.error ?? ''}${pc.stdout}${pc.stderr}`);
  const targets = ((yaml.load(readFileSync(promFile, 'utf8')) as Doc).scrape_configs as Doc[])
    .flatMap((sc) => (sc.static_configs as Doc[]).flatMap((s) => s.targets as string[]));
  for (const c of configs) {
    const port = String(g(c.doc, 'global.api.listen')).split(':').at(-1);
    assert.match(String(g(c.doc, 'global.api.listen')), /^0\.0\.0\.0:/, `${c.name} listens beyond loopback`);
    assert.ok(targets.includes(`${c.name}:${port}`), `Prometheus scrapes ${c.name}:${port}`);
  }

  // Grafana: the provisioned datasource is the one the dashboard uses; its queries name real metrics.
  const graf = services.grafana!;
  const prov = graf.volumes!.find((v) => v.target === '/etc/grafana/provisioning')!.source;
  const dashDir = graf.volumes!.find((v) => v.target === '/var/lib/grafana/dashboards')!.source;
  const providers = (yaml.load(readFileSync(join(prov, 'dashboards', 'lvsd.yaml'), 'utf8')) as Doc).providers as Doc[];
  assert.equal(g(providers[0]!, 'options.path'), '/var/lib/grafana/dashboards');
  const uid = ((yaml.load(readFileSync(join(prov, 'datasources', 'prometheus.yaml'), 'utf8')) as Doc).datasources as Doc[])[0]!.uid;
  const dash = JSON.parse(readFileSync(join(dashDir, 'lvsd.json'), 'utf8')) as { panels: Array<{ title: string; targets?: Array<{ expr: string; datasource: { uid: string } }> }> };
  const known = registeredMetrics();
  assert.ok(dash.panels.length >= 4);
  for (const p of dash.panels) for (const t of p.targets ?? []) {
    assert.equal(t.datasource.uid, uid, `${p.title}: provisioned datasource`);
    const used = [...t.expr.matchAll(/\b(lvsd_[a-z0-9_]+?)(_bucket|_sum|_count)?\b/g)].map((m) => m[1]!);
    assert.ok(used.length || /^up\{/.test(t.expr), `${p.title} queries an lvsd metric (or Prometheus's up)`);
    for (const m of used) assert.ok(known.has(m), `${p.title}: ${m} is a metric lvsd registers`);
  }
});
