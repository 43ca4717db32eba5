/**
 * The alert rules shipped in deploy/prometheus (issue 20): `promtool check rules`, the rule unit tests
 * (`promtool test rules`), and a real Prometheus server scraping a real `lvsd run` in a network
 * namespace and evaluating the rules: a virtual server whose only real server is dead raises
 * LvsdVirtualServerNoHealthyRealServer, the MASTER director raises no VRRP alert, its series carry
 * `vrrp_instance` (not a label Prometheus renames), and stopping the daemon raises LvsdDown.
 * The server evaluates a copy of the rules with every `for:` set to 0s so the test waits for scrapes,
 * not for the production hold times (those are covered by the promtool unit tests).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Topology, isRoot } from '../../src/lab/netns.js';
import { lvsdBin, repoRoot } from '../support/proc.js';

const rulesDir = join(repoRoot, 'deploy', 'prometheus');
const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
// CI installs Debian's prometheus package (scripts/setup.sh): there the tools must be present.
const tools = has('promtool') && has('prometheus');
if (!tools && process.env.CI) throw new Error('promtool/prometheus missing: scripts/setup.sh installs the prometheus package');
const skipTools = !tools && 'promtool/prometheus not installed (scripts/setup.sh installs them)';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('promtool check rules and promtool test rules pass', { skip: skipTools }, () => {
  const check = spawnSync('promtool', ['check', 'rules', 'lvsd-rules.yml'], { cwd: rulesDir, encoding: 'utf8' });
  assert.equal(check.status, 0, check.stdout + check.stderr);
  assert.match(check.stdout, /SUCCESS: \d+ rules found/);
  const unit = spawnSync('promtool', ['test', 'rules', 'lvsd-rules.test.yml'], { cwd: rulesDir, encoding: 'utf8' });
  assert.equal(unit.status, 0, unit.stdout + unit.stderr);
  assert.match(unit.stdout, /SUCCESS/);
});

interface Alert { labels: Record<string, string>; state: string }

test('a Prometheus server scraping a real lvsd daemon evaluates the rules', { skip: skipTools || (!isRoot() && 'needs root (network namespaces)'), timeout: 180_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lvsd-prom-'));
  const topo = new Topology();
  try {
    const d = await topo.member('d', ['192.0.2.1/24']);
    const API = 9650;
    const PROM = 9090;
    writeFileSync(join(dir, 'lvsd.yaml'), `global:
  router_id: prom-test
  state_dir: ${dir}/state
  api: { listen: 127.0.0.1:${API} }
vrrp_instances:
  - name: VI_1
    interface: eth0
    virtual_router_id: 51
    priority: 150
    version: 3
    advert_interval: 0.1
    virtual_addresses: [192.0.2.100/24]
virtual_servers:
  - name: web
    address: 192.0.2.100
    port: 80
    scheduler: rr
    forwarding: nat
    interval: 0.5
    fall: 1
    real_servers:
      - { address: 127.0.0.1, port: 1, checks: [{ type: tcp, timeout: 0.5 }] }
`);
    // The shipped rules with the hold times removed (see the file comment).
    writeFileSync(join(dir, 'rules.yml'), readFileSync(join(rulesDir, 'lvsd-rules.yml'), 'utf8').replace(/^(\s+)for: \S+$/gm, '$1for: 0s'));
    writeFileSync(join(dir, 'prometheus.yml'), `global: { scrape_interval: 1s, evaluation_interval: 1s }
rule_files: [${dir}/rules.yml]
scrape_configs:
  - job_name: lvsd
    static_configs: [{ targets: ['127.0.0.1:${API}'] }]
`);
    const lvsd = d.start([process.execPath, lvsdBin, 'run', '-c', join(dir, 'lvsd.yaml')]);
    const prom = d.start(['prometheus', `--config.file=${dir}/prometheus.yml`, `--storage.tsdb.path=${dir}/tsdb`, `--web.listen-address=127.0.0.1:${PROM}`]);
    const api = async <T>(path: string): Promise<T | undefined> => {
      const r = await d.exec(['curl', '-sf', `http://127.0.0.1:${PROM}${path}`], { check: false });
      if (r.code !== 0) return undefined;
      return (JSON.parse(r.stdout) as { data: T }).data;
    };
    const alerts = async () => ((await api<{ alerts: Alert[] }>('/api/v1/alerts'))?.alerts ?? []).filter((a) => a.state === 'firing');
    const firing = async (name: string, ms: number, want = true): Promise<Alert[]> => {
      for (const end = Date.now() + ms; ; await sleep(500)) {
        const got = (await alerts()).filter((a) => a.labels.alertname === name);
        if ((got.length > 0) === want || Date.now() > end) return got;
      }
    };
    try {
      // The dead real server: the virtual server has no healthy one.
      const noReal = await firing('LvsdVirtualServerNoHealthyRealServer', 60_000);
      assert.equal(noReal.length, 1, `alerts: ${JSON.stringify(await alerts())}\nlvsd: ${lvsd.output().slice(-2000)}\nprometheus: ${prom.output().slice(-1500)}`);
      assert.equal(noReal[0]!.labels.virtual_server, 'web');
      assert.equal(noReal[0]!.labels.service, 'tcp/192.0.2.100:80');

      // The lone director is MASTER; the series keep the vrrp_instance label through the scrape.
      let master: Array<{ metric: Record<string, string>; value: [number, string] }> = [];
      for (let i = 0; i < 60 && !master.some((m) => m.value[1] === '1'); i++) {
        await sleep(500);
        master = (await api<{ result: typeof master }>(`/api/v1/query?query=${encodeURIComponent('lvsd_vrrp_state{state="MASTER"}')}`))?.result ?? [];
      }
      assert.deepEqual(master.map((m) => [m.metric.vrrp_instance, m.metric.instance, m.value[1]]), [['VI_1', `127.0.0.1:${API}`, '1']], `lvsd: ${lvsd.output().slice(-2000)}`);
      // Two rule evaluations that started after the MASTER series was seen (the server's own record of
      // its evaluations, not a fixed pause: on a loaded machine evaluations lag behind the interval).
      const seen = Date.now();
      const evaluations = new Map<string, Set<string>>(); // group name -> evaluation times after `seen`
      const twice = () => evaluations.size > 0 && [...evaluations.values()].every((e) => e.size >= 2);
      for (let i = 0; i < 120 && !twice(); i++) {
        const groups = (await api<{ groups: Array<{ name: string; lastEvaluation: string }> }>('/api/v1/rules'))?.groups ?? [];
        for (const g of groups) {
          const e = evaluations.get(g.name) ?? new Set<string>();
          if (Date.parse(g.lastEvaluation) > seen) e.add(g.lastEvaluation);
          evaluations.set(g.name, e);
        }
        if (!twice()) await sleep(250);
      }
      assert.ok(twice(), `the rules were not evaluated twice within 30 s of MASTER: ${JSON.stringify([...evaluations].map(([n, e]) => [n, [...e]]))}`);
      const names = (await alerts()).map((a) => a.labels.alertname);
      assert.ok(!names.includes('LvsdVrrpNoMaster') && !names.includes('LvsdVrrpTwoMasters') && !names.includes('LvsdDown'), `unexpected: ${names.join(', ')}`);

      // The daemon stops: its scrapes fail and LvsdDown fires.
      lvsd.child.kill('SIGTERM');
      await lvsd.exited;
      const down = await firing('LvsdDown', 60_000);
      assert.equal(down.length, 1, `alerts: ${JSON.stringify(await alerts())}`);
      assert.equal(down[0]!.labels.instance, `127.0.0.1:${API}`);
    } finally {
      if (lvsd.child.exitCode === null && lvsd.child.signalCode === null) lvsd.child.kill('SIGKILL');
      prom.child.kill('SIGTERM');
      await Promise.race([prom.exited, sleep(10_000)]);
      if (prom.child.exitCode === null && prom.child.signalCode === null) prom.child.kill('SIGKILL');
    }
  } finally {
    await topo.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
});
