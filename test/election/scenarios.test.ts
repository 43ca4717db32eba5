/**
 * One runner for every state-machine scenario in test/election/scenarios/*.json.
 *
 * File shape (single instance):
 *   { "name", "rule" (RFC / keepalived reference), "instance": {InstanceParams, defaults below},
 *     "steps": [ { "at": ms, "event": VrrpEvent, "expect": Expect } ] }
 * Sync group variant:
 *   { "group": {"name", "members"}, "instances": {name: params}, "steps": [{ "at", "instance", "event", "expect" }] }
 * Expect (all optional):
 *   state | states {member: state} | effects: ordered subsequence of partial effects (group: each
 *   with "instance") | exactEffects: true = same length too | absent: partial effects that must not
 *   occur | priority | masterAdverIntervalMs | master (partial) | faults | timers (partial deadlines)
 *   | groupTransition.
 * A `reconfigure` event's `params` are partial: merged over the defaults and the scenario's instance.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { createInstance, step, type Effect, type InstanceParams, type InstanceState, type VrrpEvent } from '../../src/election/machine.js';
import { groupStep, type Members, type SyncGroupDef } from '../../src/election/syncgroup.js';

const dir = new URL('../../../test/election/scenarios/', import.meta.url);

const DEFAULTS: InstanceParams = {
  name: 'VI_1',
  version: 3,
  vrid: 1,
  priority: 100,
  advertIntervalMs: 1000,
  preempt: true,
  preemptDelayMs: 0,
  primaryAddress: '192.0.2.1',
};

interface Expect {
  state?: string;
  states?: Record<string, string>;
  effects?: Array<Record<string, unknown>>;
  exactEffects?: boolean;
  absent?: Array<Record<string, unknown>>;
  priority?: number;
  masterAdverIntervalMs?: number;
  master?: Record<string, unknown> | null;
  faults?: string[];
  timers?: Record<string, number | null>;
  groupTransition?: Record<string, unknown> | null;
}
interface Step {
  at: number;
  instance?: string;
  event: VrrpEvent;
  expect?: Expect;
  note?: string;
}
interface Scenario {
  name: string;
  rule: string;
  instance?: Partial<InstanceParams>;
  group?: SyncGroupDef;
  instances?: Record<string, Partial<InstanceParams>>;
  steps: Step[];
}

/** Partial deep match: every key in `want` equals the value in `got` (numbers within 1e-6). */
function matches(got: unknown, want: unknown): boolean {
  if (typeof want === 'number' && typeof got === 'number') return Math.abs(got - want) < 1e-6;
  if (want === null || typeof want !== 'object') return got === want;
  if (Array.isArray(want)) return Array.isArray(got) && got.length === want.length && want.every((w, i) => matches(got[i], w));
  if (got === null || typeof got !== 'object') return false;
  return Object.entries(want as Record<string, unknown>).every(([k, v]) => matches((got as Record<string, unknown>)[k], v));
}

/** `want` is an ordered subsequence of `got` under partial matching. */
function subsequence(got: readonly unknown[], want: readonly unknown[]): boolean {
  let i = 0;
  for (const g of got) if (i < want.length && matches(g, want[i])) i++;
  return i === want.length;
}

function checkInstance(where: string, s: InstanceState, ex: Expect) {
  if (ex.state !== undefined) assert.equal(s.state, ex.state, `${where}: state`);
  if (ex.priority !== undefined) assert.equal(s.priority, ex.priority, `${where}: priority`);
  if (ex.masterAdverIntervalMs !== undefined) assert.equal(s.masterAdverIntervalMs, ex.masterAdverIntervalMs, `${where}: Master_Adver_Interval`);
  if (ex.master === null) assert.equal(s.master, undefined, `${where}: no master expected`);
  else if (ex.master !== undefined) assert.ok(matches(s.master, ex.master), `${where}: master ${JSON.stringify(s.master)} !~ ${JSON.stringify(ex.master)}`);
  if (ex.faults !== undefined) assert.deepEqual([...s.faults], ex.faults, `${where}: faults`);
  if (ex.timers !== undefined) {
    for (const [k, v] of Object.entries(ex.timers)) {
      const got = (s.timers as Record<string, number | undefined>)[k];
      if (v === null) assert.equal(got, undefined, `${where}: timer ${k} should not be armed`);
      else assert.ok(got !== undefined && Math.abs(got - v) < 1e-6, `${where}: timer ${k} deadline ${got} != ${v}`);
    }
  }
}

function checkEffects(where: string, got: readonly unknown[], ex: Expect) {
  const show = () => JSON.stringify(got);
  if (ex.effects) {
    assert.ok(subsequence(got, ex.effects), `${where}: effects ${show()} do not contain, in order, ${JSON.stringify(ex.effects)}`);
    if (ex.exactEffects) assert.equal(got.length, ex.effects.length, `${where}: exactly ${ex.effects.length} effects expected, got ${show()}`);
  }
  for (const a of ex.absent ?? []) assert.ok(!got.some((g) => matches(g, a)), `${where}: unexpected effect ${JSON.stringify(a)} in ${show()}`);
}

const files = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();

test('scenario files exist and are well-formed', () => {
  assert.ok(files.length >= 10, `only ${files.length} scenario files`);
  for (const f of files) {
    const sc = JSON.parse(readFileSync(new URL(f, dir), 'utf8')) as Scenario;
    assert.ok(sc.name && sc.rule, `${f}: name and rule required`);
    assert.ok(sc.steps.length > 0, `${f}: no steps`);
    assert.ok(sc.steps.some((s) => s.expect), `${f}: no expectations`);
    let last = -Infinity;
    for (const s of sc.steps) {
      assert.ok(s.at >= last, `${f}: steps must be in time order`);
      last = s.at;
    }
  }
});

for (const f of files) {
  const sc = JSON.parse(readFileSync(new URL(f, dir), 'utf8')) as Scenario;
  test(`scenario ${f}: ${sc.name} [${sc.rule}]`, () => {
    if (sc.group) {
      let states: Members = Object.fromEntries(
        Object.entries(sc.instances ?? {}).map(([n, p]) => [n, createInstance({ ...DEFAULTS, name: n, ...p }, 0)]),
      );
      sc.steps.forEach((st, i) => {
        const where = `${f} step ${i} (at ${st.at}, ${st.instance} ${JSON.stringify(st.event)})`;
        const r = groupStep(sc.group!, states, st.instance!, st.event, st.at);
        states = r.states;
        const ex = st.expect;
        if (!ex) return;
        for (const [m, want] of Object.entries(ex.states ?? {})) assert.equal(states[m]?.state, want, `${where}: ${m} state`);
        const flat = r.effects.map((e) => ({ instance: e.instance, ...e.effect }));
        checkEffects(where, flat, ex);
        if (ex.groupTransition === null) assert.equal(r.groupTransition, undefined, `${where}: no group transition expected`);
        else if (ex.groupTransition) assert.ok(matches(r.groupTransition, ex.groupTransition), `${where}: group transition ${JSON.stringify(r.groupTransition)}`);
        if (st.instance && (ex.faults || ex.state)) checkInstance(where, states[st.instance]!, { ...(ex.faults ? { faults: ex.faults } : {}) });
      });
      return;
    }
    let s = createInstance({ ...DEFAULTS, ...sc.instance }, 0);
    sc.steps.forEach((st, i) => {
      const where = `${f} step ${i} (at ${st.at}, ${JSON.stringify(st.event)})`;
      const ev: VrrpEvent = st.event.type === 'reconfigure' ? { ...st.event, params: { ...DEFAULTS, ...sc.instance, ...st.event.params } } : st.event;
      const r = step(s, ev, st.at);
      // The machine's state must stay plain data (the status endpoint serialises it as is).
      assert.deepEqual(JSON.parse(JSON.stringify(r.state)), r.state, `${where}: state is not plain JSON data`);
      s = r.state;
      if (!st.expect) return;
      checkInstance(where, s, st.expect);
      checkEffects(where, r.effects as readonly Effect[], st.expect);
    });
  });
}
