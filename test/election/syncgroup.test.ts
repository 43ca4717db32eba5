import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createInstance, type InstanceParams, type VrrpEvent, type TimerName } from '../../src/election/machine.js';
import { groupStep, groupState, type Members, type SyncGroupDef } from '../../src/election/syncgroup.js';

const G: SyncGroupDef = { name: 'G', members: ['a', 'b', 'c'] };
const p = (name: string, vrid: number, primaryAddress: string): InstanceParams => ({
  name, version: 3, vrid, priority: 100, advertIntervalMs: 100, preempt: true, preemptDelayMs: 0, primaryAddress,
});
const fresh = (): Members => ({
  a: createInstance(p('a', 1, '192.0.2.1'), 0),
  b: createInstance(p('b', 2, '198.51.100.1'), 0),
  c: createInstance(p('c', 3, '203.0.113.1'), 0),
});

// External events only: `sync` events and `sync:G` faults are the group's own business.
const ev: fc.Arbitrary<VrrpEvent> = fc.oneof(
  fc.constant({ type: 'timer', name: 'master_down' } as const),
  fc.constant({ type: 'timer', name: 'master_down' } as const),
  fc.constant({ type: 'startup' } as const),
  fc.constant({ type: 'shutdown' } as const),
  fc.record({ type: fc.constant('advert' as const), from: fc.constantFrom('192.0.2.9', '198.51.100.9', '203.0.113.9'), priority: fc.integer({ min: 0, max: 255 }), maxAdvertMs: fc.constant(100) }),
  fc.record({ type: fc.constant('timer' as const), name: fc.constantFrom<TimerName>('adver', 'master_down', 'preempt') }),
  fc.record({ type: fc.constant('fault' as const), reason: fc.constantFrom('interface:eth1', 'script:chk') }),
  fc.record({ type: fc.constant('fault_cleared' as const), reason: fc.constantFrom('interface:eth1', 'script:chk') }),
  fc.record({ type: fc.constant('priority' as const), effective: fc.integer({ min: 1, max: 254 }) }),
);

test('property: a sync group never has a MASTER member while another is in FAULT, and a member going MASTER brings every Backup member along', () => {
  let reachedMaster = 0;
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.constantFrom('a', 'b', 'c'), ev, fc.integer({ min: 0, max: 500 })), { maxLength: 80 }), (steps) => {
      let states = fresh();
      let now = 0;
      for (const m of G.members) states = groupStep(G, states, m, { type: 'startup' }, 0).states;
      for (const [m, e, dt] of steps) {
        now += dt;
        const before = states[m]!.state;
        const r = groupStep(G, states, m, e, now);
        states = r.states;
        const ss = G.members.map((x) => states[x]!.state);
        assert.ok(!(ss.includes('FAULT') && ss.includes('MASTER')), `FAULT and MASTER together after ${m} ${JSON.stringify(e)}: ${ss}`);
        if (before !== 'MASTER' && states[m]!.state === 'MASTER') {
          reachedMaster++;
          assert.ok(!ss.includes('BACKUP'), `member ${m} became MASTER but others stay BACKUP: ${ss}`);
        }
        if (before === 'MASTER' && states[m]!.state === 'BACKUP') {
          assert.ok(!ss.includes('MASTER'), `member ${m} stepped down but others stay MASTER: ${ss}`);
        }
        // VIP effects per member alternate correctly is covered by machine.test; here: only members of G are touched.
        for (const fx of r.effects) assert.ok(G.members.includes(fx.instance));
        assert.equal(groupState(G, states), ss.includes('FAULT') ? 'FAULT' : ss.every((s) => s === 'MASTER') ? 'MASTER' : ss.every((s) => s === 'INIT') ? 'INIT' : 'BACKUP');
      }
    }),
    { numRuns: 400 },
  );
  assert.ok(reachedMaster > 100, `the random runs reached MASTER only ${reachedMaster} times`);
});

test('a member started while the group is faulted starts in FAULT; it follows the group out of FAULT', () => {
  let s = fresh();
  s = groupStep(G, s, 'a', { type: 'startup' }, 0).states;
  s = groupStep(G, s, 'b', { type: 'startup' }, 0).states;
  s = groupStep(G, s, 'a', { type: 'fault', reason: 'interface:eth1' }, 10).states;
  assert.deepEqual(s.c!.faults, ['sync:G'], 'the not-yet-started member holds the group fault');
  s = groupStep(G, s, 'c', { type: 'startup' }, 20).states;
  assert.equal(s.c!.state, 'FAULT');
  const r = groupStep(G, s, 'a', { type: 'fault_cleared', reason: 'interface:eth1' }, 30);
  assert.deepEqual(G.members.map((m) => r.states[m]!.state), ['BACKUP', 'BACKUP', 'BACKUP']);
  assert.deepEqual(r.groupTransition, { from: 'FAULT', to: 'BACKUP' });
});

test('events for an instance outside the group touch only that instance', () => {
  const s: Members = { ...fresh(), x: createInstance(p('x', 9, '192.0.2.77'), 0) };
  const r = groupStep(G, s, 'x', { type: 'fault', reason: 'script:chk' }, 0);
  assert.deepEqual(r.states.a, s.a);
  assert.deepEqual(r.states.x!.faults, ['script:chk']);
  assert.deepEqual(groupStep(G, s, 'nobody', { type: 'startup' }, 0).states, s);
});
