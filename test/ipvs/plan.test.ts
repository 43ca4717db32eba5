import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { plan, formatOp } from '../../src/ipvs/plan.js';
import { execute } from '../../src/ipvs/executor.js';
import { MemoryDataplane } from '../../src/ipvs/memory.js';
import {
  destConfig, makeDest, makeService, serviceConfig, serviceKey, SVC_F_PERSISTENT,
  type IpvsDest, type IpvsOp, type IpvsTable, type IpvsTableEntry,
} from '../../src/ipvs/model.js';

const svcA = makeService({ protocol: 'tcp', addr: '192.0.2.10', port: 80, scheduler: 'wrr' });
const svcB = makeService({ protocol: 'udp', addr: '2001:db8::1', port: 53, scheduler: 'rr' });
const foreign = makeService({ protocol: 'tcp', addr: '203.0.113.9', port: 22, scheduler: 'rr' });
const d1 = makeDest({ addr: '198.51.100.1', port: 80, weight: 1 });
const d2 = makeDest({ addr: '198.51.100.2', port: 80, weight: 2 });
const d6 = makeDest({ addr: '2001:db8::21', port: 53, fwd: 'dr', weight: 1 });

const lines = (ops: IpvsOp[]) => ops.map(formatOp);

test('from empty: each service before its destinations, in config order', () => {
  const ops = plan([{ service: svcA, dests: [d1, d2] }, { service: svcB, dests: [d6] }], []);
  assert.deepEqual(lines(ops), [
    'add-service tcp/192.0.2.10:80 scheduler=wrr',
    'add-service udp/[2001:db8::1]:53 scheduler=rr',
    'add-dest tcp/192.0.2.10:80 198.51.100.1:80 fwd=nat weight=1',
    'add-dest tcp/192.0.2.10:80 198.51.100.2:80 fwd=nat weight=2',
    'add-dest udp/[2001:db8::1]:53 [2001:db8::21]:53 fwd=dr weight=1',
  ]);
});

test('a weight change is one set-dest, never delete + add', () => {
  const ops = plan([{ service: svcA, dests: [d1, { ...d2, weight: 0 }] }], [{ service: svcA, dests: [d1, d2] }]);
  assert.deepEqual(lines(ops), ['set-dest tcp/192.0.2.10:80 198.51.100.2:80 fwd=nat weight=0']);
});

test('scheduler / persistence changes are set-service in place; fwd method and thresholds are set-dest', () => {
  const want: IpvsTable = [{ service: { ...svcA, scheduler: 'sh', flags: SVC_F_PERSISTENT, timeout: 60 }, dests: [{ ...d1, fwd: 'dr', u_threshold: 9, l_threshold: 1 }, d2] }];
  const ops = plan(want, [{ service: svcA, dests: [d1, d2] }]);
  assert.deepEqual(lines(ops), [
    'set-service tcp/192.0.2.10:80 scheduler=sh flags=0x1 timeout=60',
    'set-dest tcp/192.0.2.10:80 198.51.100.1:80 fwd=dr weight=1 thresholds=9/1',
  ]);
  assert.ok(!ops.some((o) => o.op.startsWith('del')));
});

test('destinations go before services on delete; undeclared services are left alone unless exclusive or managed', () => {
  const actual: IpvsTable = [{ service: svcA, dests: [d1, d2] }, { service: svcB, dests: [d6] }, { service: foreign, dests: [d1] }];
  const want: IpvsTable = [{ service: svcA, dests: [d1] }];
  assert.deepEqual(lines(plan(want, actual)), ['del-dest tcp/192.0.2.10:80 198.51.100.2:80']);
  assert.deepEqual(lines(plan(want, actual, { managed: new Set([serviceKey(svcB)]) })), [
    'del-dest tcp/192.0.2.10:80 198.51.100.2:80',
    'del-service udp/[2001:db8::1]:53',
  ]);
  assert.deepEqual(lines(plan(want, actual, { exclusive: true })), [
    'del-dest tcp/192.0.2.10:80 198.51.100.2:80',
    'del-service tcp/203.0.113.9:22',
    'del-service udp/[2001:db8::1]:53',
  ]);
});

test('`only` limits planning to the named services', () => {
  const actual: IpvsTable = [{ service: svcA, dests: [d1] }, { service: svcB, dests: [] }];
  const want: IpvsTable = [{ service: svcA, dests: [d1, d2] }, { service: svcB, dests: [d6] }];
  assert.deepEqual(lines(plan(want, actual, { only: new Set([serviceKey(svcB)]) })), ['add-dest udp/[2001:db8::1]:53 [2001:db8::21]:53 fwd=dr weight=1']);
});

test('executor settles races: EEXIST on add becomes set, missing on delete is done, other errors are reported', async () => {
  const dp = new MemoryDataplane([{ service: svcA, dests: [{ ...d1, weight: 5 }] }]);
  const ops: IpvsOp[] = [
    { op: 'add-service', service: { ...svcA, scheduler: 'rr' } }, // exists → set
    { op: 'add-dest', service: svcA, dest: d1 }, // exists (weight 5) → set to 1
    { op: 'set-dest', service: svcA, dest: d2 }, // missing → add
    { op: 'del-service', service: svcB }, // missing → done
    { op: 'add-dest', service: svcA, dest: { ...d6, fwd: 'nat' } }, // IPv6 NAT dest in an IPv4 service → EINVAL
  ];
  const r = await execute(dp, ops);
  assert.deepEqual(r.reports.map((x) => x.result), ['raced', 'raced', 'raced', 'raced', 'error']);
  assert.equal(r.failed.length, 1);
  assert.equal(r.failed[0]!.errno, 'EINVAL');
  const t = await dp.dump();
  assert.equal(t[0]!.service.scheduler, 'rr');
  assert.deepEqual(t[0]!.dests.map(destConfig), [d1, d2]);
});

// ---------------------------------------------------------------- property: plan ∘ apply = desired
const addrs4 = ['192.0.2.1', '192.0.2.2', '198.51.100.7'];
const arbDest = fc.record({
  addr: fc.constantFrom(...addrs4), port: fc.constantFrom(80, 8080), fwd: fc.constantFrom('nat' as const, 'dr' as const, 'tun' as const),
  weight: fc.integer({ min: 0, max: 5 }), u: fc.integer({ min: 0, max: 3 }), tun: fc.constantFrom('ipip' as const, 'gue' as const, 'gre' as const),
}).map((r) => makeDest({ addr: r.addr, port: r.port, fwd: r.fwd, weight: r.weight, u_threshold: r.u + 1, l_threshold: r.u, ...(r.fwd === 'tun' ? { tun_type: r.tun, tun_port: r.tun === 'gue' ? 6080 : 0 } : {}) }));
const arbEntry = fc.record({
  svc: fc.oneof(
    fc.record({ port: fc.constantFrom(80, 443), proto: fc.constantFrom('tcp' as const, 'udp' as const) }).map((r) => ({ protocol: r.proto, addr: '192.0.2.10', port: r.port })),
    fc.constantFrom(7, 8).map((m) => ({ protocol: 'tcp' as const, fwmark: m })),
  ),
  sched: fc.constantFrom('rr', 'wrr', 'sh'),
  persist: fc.boolean(),
  dests: fc.uniqueArray(arbDest, { selector: (d) => `${d.addr}:${d.port}`, maxLength: 4 }),
}).map((r): IpvsTableEntry => ({ service: makeService({ ...r.svc, scheduler: r.sched, flags: r.persist ? SVC_F_PERSISTENT : 0, timeout: r.persist ? 300 : 0 }), dests: r.dests }));
const arbTable = fc.uniqueArray(arbEntry, { selector: (e) => serviceKey(e.service), maxLength: 5 });

function normal(t: IpvsTable): Map<string, { service: unknown; dests: Map<string, IpvsDest> }> {
  return new Map(t.map((e) => [serviceKey(e.service), { service: serviceConfig(e.service), dests: new Map(e.dests.map((d) => [`${d.addr}:${d.port}`, destConfig(d)])) }]));
}

test('property: applying plan(desired, actual) to a table holding `actual` yields `desired`; a second plan is empty', async () => {
  await fc.assert(
    fc.asyncProperty(arbTable, arbTable, fc.boolean(), async (desired, actual, exclusive) => {
      const dp = new MemoryDataplane(actual);
      const ops = plan(desired, actual, { exclusive });
      const r = await execute(dp, ops);
      assert.deepEqual(r.failed, []);
      assert.deepEqual(r.reports.map((x) => x.result).filter((x) => x !== 'ok'), [], 'no races against a still table');
      const after = await dp.dump();
      const want = normal(desired);
      const got = normal(after);
      for (const [k, v] of want) assert.deepEqual(got.get(k), v, k);
      if (exclusive) assert.equal(got.size, want.size);
      else for (const [k, v] of normal(actual)) if (!want.has(k)) assert.deepEqual(got.get(k), v, `foreign ${k} untouched`);
      assert.deepEqual(plan(desired, after, { exclusive }), []);
      // Nothing that exists on both sides is ever deleted and re-added.
      const deleted = new Set(ops.filter((o) => o.op === 'del-service').map((o) => serviceKey(o.service)));
      for (const k of want.keys()) assert.ok(!deleted.has(k));
      const delDests = new Set<string>();
      for (const o of ops) if (o.op === 'del-dest') delDests.add(`${serviceKey(o.service)} ${o.dest.addr}:${o.dest.port}`);
      for (const o of ops) if (o.op === 'add-dest') assert.ok(!delDests.has(`${serviceKey(o.service)} ${o.dest.addr}:${o.dest.port}`));
    }),
    { numRuns: 300 },
  );
});
