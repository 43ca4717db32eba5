/** reloadVs (pure): what a reload keeps, restarts and recomputes. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { CheckPolicy } from '../../src/config/model.js';
import { initVs, reloadVs, step, type VsPolicyConfig } from '../../src/health/policy.js';

const P: CheckPolicy = { interval: 1, timeout: 1, rise: 1, fall: 1, retry_delay: 1, alpha: false, inhibit_on_failure: false };
const vs = (rs: Array<{ key: string; weight?: number; checks?: string[]; policy?: Partial<CheckPolicy> }>, q: Partial<VsPolicyConfig> = {}): VsPolicyConfig => ({
  quorum: 1,
  hysteresis: 0,
  ...q,
  real_servers: rs.map((r) => ({ key: r.key, weight: r.weight ?? 1, policy: { ...P, ...r.policy }, checks: (r.checks ?? ['tcp']).map((type) => ({ type })) })),
});

test('reload: unchanged keeps state; weight edit applies; changed checks restart from the current state; removed/added listed', () => {
  const v1 = vs([{ key: 'a' }, { key: 'b' }, { key: 'c' }]);
  let s = initVs(v1);
  s = step(v1, s, { type: 'result', rs: 'a', check: 0, ok: false, reason: 'timeout' }).state;
  s = step(v1, s, { type: 'result', rs: 'b', check: 0, ok: false, reason: 'timeout' }).state;
  assert.equal(s.healthyWeight, 1);
  const v2 = vs([{ key: 'a' }, { key: 'b', checks: ['tcp', 'http'] }, { key: 'c', weight: 5 }, { key: 'd', policy: { alpha: true } }]);
  const out = reloadVs(v2, v1, s);
  assert.deepEqual(out.restart, ['b', 'd']);
  assert.deepEqual(out.removed, []);
  assert.deepEqual(out.state.rs.a, s.rs.a, 'unchanged server keeps its state (counters, reason)');
  assert.equal(out.state.rs.b!.up, false, 'changed checks: still down, not reset to up');
  assert.deepEqual(out.state.rs.b!.checks.map((c) => c.up), [false, false]);
  assert.equal(out.state.rs.c!.weight, 5);
  assert.equal(out.state.rs.d!.up, false, 'new alpha server starts down');
  assert.equal(out.state.healthyWeight, 5);
  assert.deepEqual(out.effects, [{ type: 'quorum', from: 'up', to: 'up', up: true, healthyWeight: 5 }]);
  const v3 = vs([{ key: 'c', weight: 5 }]);
  assert.deepEqual(reloadVs(v3, v2, out.state).removed, ['a', 'b', 'd']);
});

test('reload: a quorum change that crosses the threshold runs the command; hysteresis applies to regaining', () => {
  const v1 = vs([{ key: 'a' }, { key: 'b' }], { quorum_up: ['up'], quorum_down: ['down'] });
  const s = initVs(v1);
  const v2 = { ...v1, quorum: 3 };
  const down = reloadVs(v2, v1, s);
  assert.deepEqual(down.effects.map((e) => (e.type === 'exec' ? e.command[0] : e.type)), ['quorum', 'down']);
  assert.equal(down.state.quorumUp, false);
  const v3 = { ...v1, quorum: 2, hysteresis: 1 };
  const still = reloadVs(v3, v2, down.state);
  assert.equal(still.state.quorumUp, false, 'weight 2 < quorum 2 + hysteresis 1');
  assert.deepEqual(still.effects, []);
});
