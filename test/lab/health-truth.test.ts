/**
 * Truthful health in the real kernel (UML lab): the configuration that makes /healthz 503 on a host
 * without IPVS (test/reliability/health-truth.test.ts) answers 200 here, with lvsd_subsystem_up 1 for
 * ipvs and the virtual server in the kernel's table. The daemon runs in a namespace of the guest.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Topology } from '../../src/lab/netns.js';
import { waitFor, lvsdBin } from '../support/proc.js';
import { parsePrometheus, sampleValue } from '../support/prom.js';
import { apiGet } from '../election-net/support/peers.js';

const skip = process.env.LVSD_IN_LAB === '1' ? false : 'runs inside the lab guest (node scripts/test.mjs --only lab)';

test('IPVS present: virtual servers programmed, /healthz 200, lvsd_subsystem_up{ipvs} 1', { skip }, async () => {
  const topo = new Topology();
  const dir = mkdtempSync(join(tmpdir(), 'lvsd-health-lab-'));
  try {
    const ns = await topo.netns('d');
    const file = join(dir, 'lvsd.yaml');
    writeFileSync(file, `global:\n  router_id: lab\n  api:\n    listen: 127.0.0.1:9650\nvirtual_servers:\n  - address: 192.0.2.10\n    port: 80\n    real_servers:\n      - address: 192.0.2.20\n`);
    const d = ns.start([process.execPath, lvsdBin, 'run', '-c', file, '--state-dir', join(dir, 'state')]);
    // The guest is slow (user-mode Linux on a shared machine): wait for the log line, not by polling.
    await waitFor(() => (d.output().includes('"lvsd running"') ? true : undefined), 'the daemon to run', 240_000, 200).catch((e) => {
      throw new Error(`${String(e)}\n${d.output()}`);
    });
    const h = (await ns.exec([process.execPath, '-e', "fetch('http://127.0.0.1:9650/healthz').then(async (r) => process.stdout.write(r.status + ' ' + (await r.text())))"], { timeoutMs: 120_000 })).stdout;
    assert.equal(h, '200 ok\n', d.output());
    const m = parsePrometheus(await apiGet(ns, '/metrics'));
    assert.equal(sampleValue(m, 'lvsd_subsystem_up', { subsystem: 'ipvs' }), 1);
    const st = JSON.parse(await apiGet(ns, '/status')) as { health: Record<string, { up: boolean }> };
    assert.deepEqual(st.health.ipvs, { up: true });
    const table = await ns.exec(['ipvsadm', '-Ln']);
    assert.match(table.stdout, /TCP\s+192\.0\.2\.10:80/);
    d.child.kill('SIGTERM');
    assert.equal((await d.exited).code, 0);
  } finally {
    await topo.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
});
