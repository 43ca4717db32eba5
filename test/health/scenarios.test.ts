/**
 * Runs every policy scenario in test/health/scenarios/*.json against the pure policy. A scenario
 * declares a virtual server (compact form), the expected initial state, then check results with the
 * exact list of effects each must produce (each listed effect is matched field by field; an omitted
 * "effects" means none), optionally the next delay and a partial state.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../support/proc.js';
import type { CheckPolicy } from '../../src/config/model.js';
import { initVs, step, type CheckResultEvent, type VsPolicyConfig, type VsState } from '../../src/health/policy.js';

interface Scenario {
  description: string;
  virtual_server?: { quorum?: number; hysteresis?: number; quorum_up?: string[]; quorum_down?: string[]; sorry_server?: boolean };
  policy?: Partial<CheckPolicy>;
  real_servers: Array<{ key: string; weight?: number; checks?: string[]; policy?: Partial<CheckPolicy>; notify_up?: string[]; notify_down?: string[] }>;
  initial?: Partial<Record<string, unknown>>;
  steps: Array<{ note?: string; result: Omit<CheckResultEvent, 'type'>; effects?: Array<Record<string, unknown>>; nextDelayMs?: number; state?: Record<string, unknown> }>;
}

const dir = join(repoRoot, 'test', 'health', 'scenarios');
/** Scenarios state what they rely on; this base (not the config defaults, which may change) fills the rest. */
const BASE_POLICY: CheckPolicy = { interval: 1, timeout: 1, rise: 1, fall: 1, retry_delay: 1, alpha: false, inhibit_on_failure: false };

function configOf(s: Scenario): VsPolicyConfig {
  const vs = s.virtual_server ?? {};
  return {
    quorum: vs.quorum ?? 1,
    hysteresis: vs.hysteresis ?? 0,
    ...(vs.quorum_up ? { quorum_up: vs.quorum_up } : {}),
    ...(vs.quorum_down ? { quorum_down: vs.quorum_down } : {}),
    ...(vs.sorry_server ? { sorry_server: { address: '192.0.2.200', port: 80, forwarding: 'nat' as const, weight: 1, inhibit: false } } : {}),
    real_servers: s.real_servers.map((r) => ({
      key: r.key,
      weight: r.weight ?? 1,
      policy: { ...BASE_POLICY, ...s.policy, ...r.policy },
      checks: (r.checks ?? ['tcp']).map((type) => ({ type })),
      ...(r.notify_up ? { notify_up: r.notify_up } : {}),
      ...(r.notify_down ? { notify_down: r.notify_down } : {}),
    })),
  };
}

/** Every key in `want` equals the same key in `got` (recursively for plain objects). */
function partialMatch(got: unknown, want: unknown, path: string): void {
  if (want && typeof want === 'object' && !Array.isArray(want)) {
    assert.ok(got && typeof got === 'object', `${path}: expected an object, got ${JSON.stringify(got)}`);
    for (const [k, v] of Object.entries(want)) partialMatch((got as Record<string, unknown>)[k], v, `${path}.${k}`);
  } else {
    assert.deepEqual(got, want, `${path}`);
  }
}

const files = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();
test('there are policy scenarios', () => assert.ok(files.length >= 6, `${files.length} scenario files`));

for (const f of files) {
  const sc = JSON.parse(readFileSync(join(dir, f), 'utf8')) as Scenario;
  test(`scenario ${f}: ${sc.description}`, () => {
    const cfg = configOf(sc);
    let state: VsState = initVs(cfg);
    if (sc.initial) partialMatch(state, sc.initial, 'initial');
    sc.steps.forEach((st, i) => {
      const where = `step ${i}${st.note ? ` (${st.note})` : ''}`;
      const out = step(cfg, state, { type: 'result', ...st.result });
      const want = st.effects ?? [];
      assert.equal(out.effects.length, want.length, `${where}: effects ${JSON.stringify(out.effects)}`);
      want.forEach((w, j) => partialMatch(out.effects[j], w, `${where} effect ${j}`));
      if (st.nextDelayMs !== undefined) assert.equal(out.nextDelayMs, st.nextDelayMs, `${where}: next delay`);
      if (st.state) partialMatch(out.state, st.state, `${where} state`);
      state = out.state;
    });
  });
}
