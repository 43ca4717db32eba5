/**
 * The IPVS subsystem's behaviour (health → table, coalescing, drift repair, reload, metrics) with
 * the in-memory dataplane, plus its behaviour on this host's real kernel, which has no IPVS.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { diffConfig } from '../../src/config/diff.js';
import { MemoryDataplane } from '../../src/ipvs/memory.js';
import { makeDest, makeService, serviceKey } from '../../src/ipvs/model.js';
import { parsePrometheus, sampleValue } from '../support/prom.js';
import { webYaml, cfgOf, ipvsHarness } from '../support/ipvs.js';

const yaml = (weight2 = 2, extraVs = '') => webYaml({ routerId: 't', driftCheckInterval: 5, weight2, extraVs });
const extraVs = `  - name: dns
    address: 192.0.2.10
    port: 53
    protocol: udp
    scheduler: rr
    real_servers: [{ address: 198.51.100.3 }]
`;

const setup = (dp = new MemoryDataplane()) => ipvsHarness(dp);

const rows = async (dp: MemoryDataplane) => (await dp.dump()).map((e) => `${serviceKey(e.service)} ${e.service.scheduler}: ${e.dests.map((d) => `${d.addr}:${d.port}=${d.weight}`).join(' ')}`);

test('start converges without flushing and leaves foreign services alone', async () => {
  const foreign = makeService({ protocol: 'tcp', addr: '203.0.113.5', port: 22, scheduler: 'rr' });
  const web = makeService({ protocol: 'tcp', addr: '192.0.2.10', port: 80, scheduler: 'rr' });
  const dp = new MemoryDataplane([
    { service: foreign, dests: [makeDest({ addr: '203.0.113.6', port: 22 })] },
    { service: web, dests: [makeDest({ addr: '198.51.100.1', port: 80, weight: 1 }), makeDest({ addr: '198.51.100.9', port: 80 })] },
  ]);
  const { sub, registry } = setup(dp);
  await sub.start(cfgOf(yaml()));
  assert.deepEqual(await rows(dp), [
    'tcp/203.0.113.5:22 rr: 203.0.113.6:22=1',
    'tcp/192.0.2.10:80 wrr: 198.51.100.1:80=1 198.51.100.2:80=2',
  ]);
  assert.ok(!dp.calls.includes('flush'));
  assert.ok(!dp.calls.some((c) => c.startsWith('del-service')), 'the existing service is edited, not re-created');
  const st = sub.status();
  assert.equal(st.available, true);
  assert.equal(st.last_reconcile?.reason, 'start');
  assert.equal(st.last_reconcile?.ops, 3);
  const m = parsePrometheus(await registry.metrics());
  assert.equal(sampleValue(m, 'lvsd_ipvs_services'), 1);
  assert.equal(sampleValue(m, 'lvsd_ipvs_destinations'), 2);
  assert.equal(sampleValue(m, 'lvsd_ipvs_ops_total', { op: 'set-service', result: 'ok' }), 1);
  assert.equal(sampleValue(m, 'lvsd_ipvs_reconcile_duration_seconds_count', { reason: 'start' }), 1);
  await sub.stop();
});

test('health: down removes, inhibited down keeps weight 0, up restores; only SET/ADD/DEL of that dest', async () => {
  const { sub, bus, clock, dp } = setup();
  await sub.start(cfgOf(yaml()));
  const before = dp.calls.length;
  bus.emit('health.rs', { vs: 'tcp/192.0.2.10:80', rs: '198.51.100.1:80', up: false, weight: 1, inhibit: true, reason: 'connect refused' });
  bus.emit('health.rs', { vs: 'web', rs: '198.51.100.2:80', up: false, weight: 2, inhibit: false, reason: 'timeout' });
  clock.advance(1);
  await sub.settle();
  assert.deepEqual(await rows(dp), ['tcp/192.0.2.10:80 wrr: 198.51.100.1:80=0']);
  assert.deepEqual(dp.calls.slice(before), ['set-dest tcp/192.0.2.10:80 198.51.100.1:80', 'del-dest tcp/192.0.2.10:80 198.51.100.2:80']);
  assert.equal(sub.status().reconciles, 2, 'two events in one burst → one reconcile');
  bus.emit('health.rs', { vs: 'web', rs: '198.51.100.2:80', up: true, weight: 5, inhibit: false, reason: 'ok' });
  bus.emit('health.rs', { vs: 'web', rs: '198.51.100.1:80', up: true, weight: 1, inhibit: true, reason: 'ok' });
  await sub.settle();
  assert.deepEqual(await rows(dp), ['tcp/192.0.2.10:80 wrr: 198.51.100.1:80=1 198.51.100.2:80=5']);
  // An unchanged verdict does nothing.
  const n = dp.calls.length;
  bus.emit('health.rs', { vs: 'web', rs: '198.51.100.2:80', up: true, weight: 5, inhibit: false, reason: 'ok' });
  await sub.settle();
  assert.equal(dp.calls.length, n);
  await sub.stop();
});

test('drift: a hand-made change is repaired at the next check and counted', async () => {
  const { sub, clock, dp, registry } = setup();
  await sub.start(cfgOf(yaml()));
  const web = makeService({ protocol: 'tcp', addr: '192.0.2.10', port: 80 });
  dp.setDestSync(web, makeDest({ addr: '198.51.100.2', port: 80, weight: 9 }));
  dp.delDestSync(web, { addr: '198.51.100.1', port: 80 });
  clock.advance(4999);
  await sub.settle();
  assert.equal(sub.status().drift_repairs, 0);
  clock.advance(1);
  await new Promise((r) => setImmediate(r));
  await sub.settle();
  assert.deepEqual(await rows(dp), ['tcp/192.0.2.10:80 wrr: 198.51.100.2:80=2 198.51.100.1:80=1']);
  assert.equal(sub.status().drift_repairs, 2);
  assert.equal(sampleValue(parsePrometheus(await registry.metrics()), 'lvsd_ipvs_drift_repairs_total'), 2);
  await sub.stop();
});

test('reload adds and removes only what changed in the config', async () => {
  const { sub, dp } = setup();
  const a = cfgOf(yaml(2, extraVs));
  await sub.start(a);
  const b = cfgOf(yaml(4));
  const before = dp.calls.length;
  await sub.reload(b, a, diffConfig(a, b));
  assert.deepEqual(dp.calls.slice(before), ['set-dest tcp/192.0.2.10:80 198.51.100.2:80', 'del-service udp/192.0.2.10:53']);
  assert.deepEqual(await rows(dp), ['tcp/192.0.2.10:80 wrr: 198.51.100.1:80=1 198.51.100.2:80=4']);
  await sub.stop();
});

test('on a kernel without IPVS (this host) it reports available:false, logs one clear error, and keeps running', async () => {
  const { sub, logger } = ipvsHarness();
  await sub.start(cfgOf(yaml()));
  const st = sub.status();
  assert.equal(st.available, false);
  assert.match(st.error ?? '', /IPVS is not available in this kernel \(load ip_vs\)/);
  const errs = logger.entries.filter((e) => e.level === 'error');
  assert.equal(errs.length, 1);
  assert.match(errs[0]!.msg ?? '', /NOT programmed/);
  await sub.stop();
});

test('a slow drift check does not hold up health changes, and does not count them as drift', async () => {
  let release!: () => void;
  let gate: Promise<void> | undefined;
  class SlowDump extends MemoryDataplane {
    override async dump() {
      const snap = await super.dump();
      if (gate) await gate;
      return snap;
    }
  }
  const dp = new SlowDump();
  const { sub, clock, bus } = setup(dp);
  await sub.start(cfgOf(yaml()));
  gate = new Promise<void>((r) => (release = r));
  clock.advance(5000); // drift check starts reading: the snapshot says weight 2
  await new Promise((r) => setImmediate(r));
  bus.emit('health.rs', { vs: 'web', rs: '198.51.100.2:80', up: true, weight: 7, inhibit: false, reason: 'ok' });
  clock.advance(1);
  // Not settle(): it would also wait for the drift check, which is what is held up here.
  for (let i = 0; i < 50 && dp.entryOf('tcp/192.0.2.10:80')!.dests[1]!.weight !== 7; i++) await new Promise((r) => setImmediate(r));
  const e = dp.entryOf('tcp/192.0.2.10:80')!; // not dump(): that is what is held up
  assert.deepEqual(e.dests.map((d) => d.weight), [1, 7], 'applied while the drift check was still reading');
  gate = undefined;
  release();
  await new Promise((r) => setImmediate(r));
  await sub.settle();
  assert.equal(sub.status().last_reconcile?.reason, 'drift');
  assert.equal(sub.status().drift_repairs, 0, 'the stale snapshot of a service changed meanwhile is not drift');
  assert.deepEqual(await rows(dp), ['tcp/192.0.2.10:80 wrr: 198.51.100.1:80=1 198.51.100.2:80=7']);
  await sub.stop();
});
