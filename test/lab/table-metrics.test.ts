/**
 * Real kernel (UML lab, NAT): the per virtual server / real server metrics of a running `lvsd run`
 * equal what the reference tool prints for the same table — `ipvsadm -Ln --stats --exact` for
 * connections, packets and bytes, `ipvsadm -Ln` for weights and active/inactive connections —
 * after real client traffic (issue 20: the node_exporter IPVS collector's series, by lvsd's names).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Topology } from '../../src/lab/netns.js';
import { buildNatLab, lvsdBin } from './support/topologies.js';
import { lines } from './support/echo.js';

const skip = process.env.LVSD_IN_LAB === '1' ? false : 'runs inside the lab guest (node scripts/test.mjs --only lab)';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `name{labels} value` lines of one metric family, keyed by their label text. */
function series(text: string, name: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const l of text.split('\n')) {
    const m = new RegExp(`^${name}\\{([^}]*)\\} (\\S+)$`).exec(l);
    if (m) out.set(m[1]!, Number(m[2]));
  }
  return out;
}
const pick = (s: Map<string, number>, ...parts: string[]) => [...s.entries()].find(([k]) => parts.every((p) => k.includes(p)))?.[1];

test('table metrics equal ipvsadm --stats and -Ln after real traffic', { skip, timeout: 240_000 }, async () => {
  const topo = new Topology();
  try {
    const lab = await buildNatLab(topo, { realServers: 2, port: 8080 });
    const [rs1, rs2] = lab.realServers as [typeof lab.realServers[0], typeof lab.realServers[0]];
    const dir = mkdtempSync(join(tmpdir(), 'lvsd-tm-'));
    const cfgFile = join(dir, 'lvsd.yaml');
    writeFileSync(cfgFile, `global:
  router_id: ${topo.prefix}
virtual_servers:
  - name: web
    address: ${lab.vip}
    port: ${lab.port}
    scheduler: wrr
    forwarding: nat
    real_servers:
      - { address: ${rs1.address}, weight: 1 }
      - { address: ${rs2.address}, weight: 3 }
`);
    const daemon = lab.director.spawn([process.execPath, lvsdBin, 'run', '-c', cfgFile, '--state-dir', dir, '--listen', '127.0.0.1:9650']);
    const log = lines(daemon);
    const scrape = async () => (await lab.director.exec([process.execPath, '-e', "fetch('http://127.0.0.1:9650/metrics').then(r=>r.text()).then(t=>process.stdout.write(t))"], { timeoutMs: 30_000 })).stdout;
    try {
      let text = '';
      // Bounded in count, generous in time: a daemon start in the guest on a loaded host can take > 60 s.
      for (let i = 0; i < 360 && !/lvsd_ipvs_real_server_weight\{/.test(text); i++) {
        await sleep(500);
        text = await scrape().catch(() => '');
      }
      assert.match(text, /lvsd_ipvs_real_server_weight\{/, `no table metrics; daemon log: ${log.all.slice(-5).join('\n')}`);

      const burst = await lab.burst(80, { concurrency: 8 });
      assert.deepEqual(burst.errors, {});
      // The kernel folds per-CPU counters into its totals on the 2 s estimator tick: wait until
      // ipvsadm shows all 80 connections, then until two readings a tick apart agree (a fixed wait
      // could end before the tick on a loaded machine); the scrape between them sees the same figures.
      const svc = `${lab.vip}:${lab.port}`;
      let stats = '';
      for (let i = 0; i < 200 && !new RegExp(`TCP\\s+${svc.replace(/\./g, '\\.')}\\s+80\\s`).test(stats); i++) {
        await sleep(300);
        stats = await lab.ipvsadm('-Ln', '--stats', '--exact', '-t', svc);
      }
      for (let i = 0; i < 30; i++) {
        await sleep(2500);
        const s1 = await lab.ipvsadm('-Ln', '--stats', '--exact', '-t', svc);
        text = await scrape();
        stats = await lab.ipvsadm('-Ln', '--stats', '--exact', '-t', svc);
        if (s1 === stats) break;
      }
      const list = await lab.ipvsadm('-Ln', '-t', svc);

      // ipvsadm --stats: "TCP  VIP:PORT  Conns InPkts OutPkts InBytes OutBytes", then "-> RIP:PORT ..." rows.
      const row = (re: RegExp) => { const m = re.exec(stats); assert.ok(m, `${re} in\n${stats}`); return m!.slice(1).map(Number); };
      const esc = (s: string) => s.replace(/\./g, '\\.');
      const [conns, inp, outp, inb, outb] = row(new RegExp(`TCP\\s+${esc(svc)}\\s+(\\d+)\\s+(\\d+)\\s+(\\d+)\\s+(\\d+)\\s+(\\d+)`));
      const vsLabel = 'virtual_server="web"';
      assert.equal(pick(series(text, 'lvsd_ipvs_virtual_server_connections_total'), vsLabel), conns);
      assert.equal(conns, 80);
      const pk = series(text, 'lvsd_ipvs_virtual_server_packets_total');
      assert.equal(pick(pk, vsLabel, 'direction="in"'), inp);
      assert.equal(pick(pk, vsLabel, 'direction="out"'), outp);
      const by = series(text, 'lvsd_ipvs_virtual_server_bytes_total');
      assert.equal(pick(by, vsLabel, 'direction="in"'), inb);
      assert.equal(pick(by, vsLabel, 'direction="out"'), outb);

      // Per real server: stats rows, then weights and ActiveConn/InActConn from ipvsadm -Ln.
      for (const [rs, weight] of [[rs1, 1], [rs2, 3]] as const) {
        const ep = `${rs.address}:${lab.port}`;
        const rsLabel = `real_server="${ep}"`;
        const [c, ip, op, ib, ob] = row(new RegExp(`->\\s+${esc(ep)}\\s+(\\d+)\\s+(\\d+)\\s+(\\d+)\\s+(\\d+)\\s+(\\d+)`));
        assert.equal(pick(series(text, 'lvsd_ipvs_real_server_connections_total'), rsLabel), c, ep);
        assert.equal(burst.byServer[rs.name], c, `${ep}: connections the client saw answered by it`);
        const rp = series(text, 'lvsd_ipvs_real_server_packets_total');
        assert.equal(pick(rp, rsLabel, 'direction="in"'), ip);
        assert.equal(pick(rp, rsLabel, 'direction="out"'), op);
        const rb = series(text, 'lvsd_ipvs_real_server_bytes_total');
        assert.equal(pick(rb, rsLabel, 'direction="in"'), ib);
        assert.equal(pick(rb, rsLabel, 'direction="out"'), ob);
        const m = new RegExp(`->\\s+${esc(ep)}\\s+Masq\\s+(\\d+)\\s+(\\d+)\\s+(\\d+)`).exec(list);
        assert.ok(m, `${ep} in\n${list}`);
        assert.equal(pick(series(text, 'lvsd_ipvs_real_server_weight'), rsLabel), Number(m![1]));
        assert.equal(pick(series(text, 'lvsd_ipvs_real_server_configured_weight'), rsLabel), weight);
        assert.equal(pick(series(text, 'lvsd_ipvs_real_server_active_connections'), rsLabel), Number(m![2]));
        assert.equal(pick(series(text, 'lvsd_ipvs_real_server_inactive_connections'), rsLabel), Number(m![3]));
      }
    } finally {
      if (daemon.exitCode === null) process.kill(daemon.pid!, 'SIGTERM');
    }
  } finally {
    await topo.destroy();
  }
});
