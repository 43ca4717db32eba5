import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { effectivePriority, trackingEvents, initialScriptState, scriptResult, type Tracking } from '../../src/election/priority.js';
import { createInstance, step, type InstanceState, type VrrpEvent } from '../../src/election/machine.js';

const none: Tracking = { interfaces: [], scripts: [], virtualServers: [] };

test('weight 0: a bad object is a fault, a good one changes nothing', () => {
  assert.deepEqual(effectivePriority(100, { ...none, interfaces: [{ name: 'eth1', weight: 0, good: false }] }), { priority: 100, faults: ['interface:eth1'] });
  assert.deepEqual(effectivePriority(100, { ...none, interfaces: [{ name: 'eth1', weight: 0, good: true }] }), { priority: 100, faults: [] });
  assert.deepEqual(effectivePriority(100, { ...none, scripts: [{ name: 'chk', weight: 0, good: false }] }).faults, ['script:chk']);
  assert.deepEqual(effectivePriority(100, { ...none, virtualServers: [{ name: 'web', weight: 0, good: false }] }).faults, ['quorum:web']);
});

test('keepalived sign rule: positive weight while good, negative weight while bad', () => {
  // track_interface { eth1 weight 2 }  → +2 if UP ; { eth2 weight -2 } → -2 if DOWN
  assert.equal(effectivePriority(100, { ...none, interfaces: [{ name: 'eth1', weight: 2, good: true }] }).priority, 102);
  assert.equal(effectivePriority(100, { ...none, interfaces: [{ name: 'eth1', weight: 2, good: false }] }).priority, 100);
  assert.equal(effectivePriority(100, { ...none, interfaces: [{ name: 'eth2', weight: -2, good: false }] }).priority, 98);
  assert.equal(effectivePriority(100, { ...none, interfaces: [{ name: 'eth2', weight: -2, good: true }] }).priority, 100);
  const mixed: Tracking = {
    interfaces: [{ name: 'eth1', weight: 10, good: true }],
    scripts: [{ name: 'a', weight: -20, good: false }, { name: 'b', weight: 5, good: true }],
    virtualServers: [{ name: 'web', weight: -30, good: false }],
  };
  assert.deepEqual(effectivePriority(100, mixed), { priority: 65, faults: [] });
});

test('limits: [1,254]; the owner stays 255 and can only be faulted; sync-group members fault instead of weighting', () => {
  assert.equal(effectivePriority(250, { ...none, scripts: [{ name: 'a', weight: 50, good: true }] }).priority, 254);
  assert.equal(effectivePriority(10, { ...none, scripts: [{ name: 'a', weight: -50, good: false }] }).priority, 1);
  assert.deepEqual(effectivePriority(255, { ...none, scripts: [{ name: 'a', weight: -50, good: false }] }), { priority: 255, faults: ['script:a'] });
  assert.deepEqual(effectivePriority(255, { ...none, scripts: [{ name: 'a', weight: 50, good: true }] }), { priority: 255, faults: [] });
  assert.deepEqual(effectivePriority(100, { ...none, scripts: [{ name: 'a', weight: -50, good: false }] }, { syncGroup: true }), { priority: 100, faults: ['script:a'] });
});

test('property: effective priority is always within bounds', () => {
  const obj = fc.record({ name: fc.string({ maxLength: 5 }), weight: fc.integer({ min: -253, max: 253 }), good: fc.boolean() });
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 255 }), fc.array(obj, { maxLength: 5 }), fc.array(obj, { maxLength: 5 }), fc.array(obj, { maxLength: 5 }), (base, i, s, v) => {
      const r = effectivePriority(base, { interfaces: i, scripts: s, virtualServers: v });
      if (base === 255) assert.equal(r.priority, 255);
      else assert.ok(r.priority >= 1 && r.priority <= 254);
      const bad0 = [...i, ...s, ...v].filter((o) => o.weight === 0 && !o.good).length;
      assert.equal(r.faults.length, base === 255 ? [...i, ...s, ...v].filter((o) => !o.good).length : bad0);
    }),
  );
});

test('rise/fall counters', () => {
  let s = initialScriptState();
  assert.equal(s.good, true, 'scripts start good (keepalived default)');
  s = scriptResult(s, false, 2, 3);
  s = scriptResult(s, false, 2, 3);
  assert.equal(s.good, true, 'two failures < fall 3');
  s = scriptResult(s, true, 2, 3);
  s = scriptResult(s, false, 2, 3);
  s = scriptResult(s, false, 2, 3);
  assert.equal(s.good, true, 'a success resets the failure run');
  s = scriptResult(s, false, 2, 3);
  assert.equal(s.good, false, 'third consecutive failure');
  s = scriptResult(s, true, 2, 3);
  assert.equal(s.good, false, 'one success < rise 2');
  s = scriptResult(s, false, 2, 3);
  s = scriptResult(s, true, 2, 3);
  assert.equal(s.good, false, 'the failure reset the success run');
  s = scriptResult(s, true, 2, 3);
  assert.equal(s.good, true);
  assert.equal(initialScriptState(true).good, false, 'init_fail');
  assert.equal(scriptResult(initialScriptState(true), true, 1, 1).good, true);
});

test('trackingEvents drive the machine: weight-0 failure faults a master, recovery returns it to backup with the new priority', () => {
  let s: InstanceState = createInstance({ name: 'vi', version: 3, vrid: 1, priority: 100, advertIntervalMs: 1000, preempt: true, preemptDelayMs: 0, primaryAddress: '192.0.2.1' });
  s = step(s, { type: 'startup' }, 0).state;
  s = step(s, { type: 'timer', name: 'master_down' }, 3609.375).state;
  assert.equal(s.state, 'MASTER');
  const t0 = effectivePriority(100, { ...none, interfaces: [{ name: 'eth1', weight: 0, good: true }], scripts: [{ name: 'chk', weight: -20, good: true }] });
  const t1 = effectivePriority(100, { ...none, interfaces: [{ name: 'eth1', weight: 0, good: false }], scripts: [{ name: 'chk', weight: -20, good: false }] });
  const evs1 = trackingEvents(t0, t1);
  assert.deepEqual(evs1, [{ type: 'fault', reason: 'interface:eth1' }, { type: 'priority', effective: 80 }] as VrrpEvent[]);
  for (const e of evs1) s = step(s, e, 4000).state;
  assert.equal(s.state, 'FAULT');
  assert.equal(s.priority, 80);
  const t2 = effectivePriority(100, { ...none, interfaces: [{ name: 'eth1', weight: 0, good: true }], scripts: [{ name: 'chk', weight: -20, good: false }] });
  const evs2 = trackingEvents(t1, t2);
  assert.deepEqual(evs2, [{ type: 'fault_cleared', reason: 'interface:eth1' }]);
  const r = step(s, evs2[0]!, 5000);
  assert.equal(r.state.state, 'BACKUP');
  // Master_Down_Interval uses the reduced priority: 3000 + (256 - 80) x 1000 / 256 = 3687.5
  assert.ok(r.effects.some((e) => e.type === 'timer' && e.name === 'master_down' && e.ms === 3687.5));
  assert.deepEqual(trackingEvents(t2, t2), []);
});
