/**
 * Health policy, pure: per check rise/fall counters, per real server "all checks must pass",
 * inhibit-on-failure, dynamic weight; per virtual server quorum with hysteresis and the sorry server.
 * `step(state, event) → {state, effects}`; the subsystem executes effects (bus, logs, commands).
 *
 * Semantics (keepalived has only the failure side; here both directions are counted):
 * - A check that is up goes down after `fall` consecutive failures; a down check comes up after
 *   `rise` consecutive successes. After a failure that has not yet brought the check down, the next
 *   run comes after `retry_delay` instead of `interval` (keepalived delay_before_retry).
 * - alpha: every check starts down (the server must prove itself); otherwise every check starts up.
 * - A real server is up when all of its checks are up (no checks = always up).
 * - Down with inhibit_on_failure: stays in the table with weight 0 (connections drain); otherwise removed.
 * - Quorum: healthy weight = sum of weights of up real servers. Up → down when it drops below
 *   `quorum`; down → up only when it reaches `quorum + hysteresis`. The initial state is
 *   healthyWeight ≥ quorum, and no command runs for it (only transitions run commands).
 * - Sorry server: active while no real server is up with a non-zero weight.
 */
import type { CheckPolicy, Command, VirtualServerConfig } from '../config/model.js';

export type UpDown = 'up' | 'down';

export interface CheckState {
  readonly up: boolean;
  readonly okStreak: number;
  readonly failStreak: number;
  /** Dynamic weight last reported by this check (exec dynamic_weight). */
  readonly weight?: number;
  readonly lastReason?: string;
  readonly lastDetail?: string;
}

export interface RsState {
  readonly up: boolean;
  /** Weight to program while up (configured, or the lowest dynamic weight reported by a check). */
  readonly weight: number;
  readonly reason: string;
  readonly checks: readonly CheckState[];
}

export interface VsState {
  readonly rs: Readonly<Record<string, RsState>>;
  readonly quorumUp: boolean;
  readonly healthyWeight: number;
  readonly sorryActive: boolean;
}

export interface CheckResultEvent {
  readonly type: 'result';
  readonly rs: string;
  readonly check: number;
  readonly ok: boolean;
  readonly reason?: string | undefined;
  readonly detail?: string | undefined;
  readonly weight?: number | undefined;
}

export type Effect =
  | { type: 'rs'; rs: string; from: UpDown; to: UpDown; up: boolean; weight: number; inhibit: boolean; reason: string }
  | { type: 'quorum'; from: UpDown; to: UpDown; up: boolean; healthyWeight: number }
  | { type: 'sorry'; active: boolean }
  | { type: 'exec'; what: 'notify_up' | 'notify_down' | 'quorum_up' | 'quorum_down'; rs?: string; command: Command };

export interface StepOutput {
  readonly state: VsState;
  readonly effects: Effect[];
  /** Milliseconds until this check should run again. */
  readonly nextDelayMs: number;
}

/** The slice of configuration the policy reads (VirtualServerConfig satisfies it). */
export type VsPolicyConfig = Pick<VirtualServerConfig, 'quorum' | 'hysteresis' | 'quorum_up' | 'quorum_down' | 'sorry_server'> & {
  readonly real_servers: ReadonlyArray<{
    readonly key: string;
    readonly weight: number;
    readonly policy: CheckPolicy;
    readonly checks: ReadonlyArray<{ readonly type: string }>;
    readonly notify_up?: Command;
    readonly notify_down?: Command;
  }>;
};
type RsCfg = VsPolicyConfig['real_servers'][number];

const ud = (b: boolean): UpDown => (b ? 'up' : 'down');

export function initCheck(policy: CheckPolicy): CheckState {
  return { up: !policy.alpha, okStreak: 0, failStreak: 0 };
}

/** Fresh state of a real server; `startUp` overrides alpha (used when a reload changes its checks). */
export function initRs(cfg: RsCfg, startUp?: boolean): RsState {
  const up = startUp ?? !cfg.policy.alpha;
  const checks = cfg.checks.map(() => ({ ...initCheck(cfg.policy), up }));
  const allUp = checks.every((c) => c.up);
  return { up: allUp, weight: cfg.weight, checks, reason: allUp ? (cfg.checks.length ? 'initial state: up' : 'no checks') : 'initial state: down until proven up (alpha)' };
}

export function healthyWeightOf(cfg: VsPolicyConfig, rs: Readonly<Record<string, RsState>>): { weight: number; anyServing: boolean } {
  let weight = 0;
  let anyServing = false;
  for (const r of cfg.real_servers) {
    const s = rs[r.key];
    if (s?.up) {
      weight += s.weight;
      if (s.weight > 0) anyServing = true;
    }
  }
  return { weight, anyServing };
}

export function initVs(cfg: VsPolicyConfig, keep: Readonly<Record<string, RsState>> = {}): VsState {
  const rs: Record<string, RsState> = {};
  for (const r of cfg.real_servers) rs[r.key] = keep[r.key] ?? initRs(r);
  const h = healthyWeightOf(cfg, rs);
  return { rs, quorumUp: h.weight >= cfg.quorum, healthyWeight: h.weight, sorryActive: !h.anyServing };
}

/** Effective state of a real server as published: up, weight to program, inhibit. */
export function published(cfg: RsCfg, s: RsState): { up: boolean; weight: number; inhibit: boolean } {
  if (s.up) return { up: true, weight: s.weight, inhibit: false };
  return cfg.policy.inhibit_on_failure ? { up: false, weight: 0, inhibit: true } : { up: false, weight: 0, inhibit: false };
}

function stepCheck(c: CheckState, p: CheckPolicy, ev: CheckResultEvent): CheckState {
  const base = { lastReason: ev.ok ? undefined : ev.reason, lastDetail: ev.detail };
  const weight = ev.ok ? ev.weight : c.weight;
  if (ev.ok) {
    const okStreak = c.okStreak + 1;
    const up = c.up || okStreak >= p.rise;
    return { ...base, up, okStreak, failStreak: 0, ...(weight !== undefined ? { weight } : {}) };
  }
  const failStreak = c.failStreak + 1;
  const up = c.up && failStreak < p.fall;
  return { ...base, up, okStreak: 0, failStreak, ...(weight !== undefined ? { weight } : {}) };
}

function describeFailure(cfg: RsCfg, checks: readonly CheckState[]): string {
  const parts: string[] = [];
  checks.forEach((c, i) => {
    if (!c.up) parts.push(`check ${i} (${cfg.checks[i]?.type ?? '?'}) ${c.lastReason ?? 'not yet passed'}${c.lastDetail ? `: ${c.lastDetail}` : ''}${c.failStreak ? ` [${c.failStreak} failures]` : ''}`);
  });
  return parts.join('; ');
}

export interface RsStepOutput {
  readonly state: RsState;
  readonly effects: Effect[];
  readonly nextDelayMs: number;
}

/** One real server, one check result: O(number of its checks). */
export function stepRs(rsCfg: RsCfg, prev: RsState, ev: CheckResultEvent): RsStepOutput {
  const p = rsCfg.policy;
  if (ev.check < 0 || ev.check >= prev.checks.length) return { state: prev, effects: [], nextDelayMs: p.interval * 1000 };
  const newCheck = stepCheck(prev.checks[ev.check]!, p, ev);
  const checks = prev.checks.map((c, i) => (i === ev.check ? newCheck : c));
  const up = checks.every((c) => c.up);
  let dyn: number | undefined;
  for (const c of checks) if (c.weight !== undefined) dyn = dyn === undefined ? c.weight : Math.min(dyn, c.weight);
  const weight = dyn ?? rsCfg.weight;
  let reason = prev.reason;
  if (up !== prev.up) reason = up ? `all ${checks.length} checks passing (rise ${p.rise})` : describeFailure(rsCfg, checks);
  else if (!up && !ev.ok) reason = describeFailure(rsCfg, checks);
  const next: RsState = { up, weight, reason, checks };
  const effects: Effect[] = [];
  const before = published(rsCfg, prev);
  const after = published(rsCfg, next);
  if (before.up !== after.up || before.weight !== after.weight || before.inhibit !== after.inhibit) {
    const why = up !== prev.up ? reason : `weight ${prev.weight} → ${weight} (dynamic)`;
    effects.push({ type: 'rs', rs: rsCfg.key, from: ud(prev.up), to: ud(up), ...after, reason: why });
    if (up !== prev.up) {
      const cmd = up ? rsCfg.notify_up : rsCfg.notify_down;
      if (cmd) effects.push({ type: 'exec', what: up ? 'notify_up' : 'notify_down', rs: rsCfg.key, command: cmd });
    }
  }
  // Retry sooner only while a failing check is still counted up (its fall budget is not spent).
  const nextDelayMs = (!ev.ok && newCheck.up ? p.retry_delay : p.interval) * 1000;
  return { state: next, effects, nextDelayMs };
}

/** Virtual-server aggregate: kept incrementally so a result costs O(1) whatever the server count. */
export interface VsAggregate {
  readonly quorumUp: boolean;
  readonly healthyWeight: number;
  /** Real servers up with a non-zero weight. */
  readonly serving: number;
  readonly sorryActive: boolean;
}

const contribution = (s: RsState) => ({ weight: s.up ? s.weight : 0, serving: s.up && s.weight > 0 ? 1 : 0 });

/** Apply one real server's change (prev → next) to the aggregate: quorum with hysteresis, sorry server. */
export function stepAggregate(cfg: Pick<VsPolicyConfig, 'quorum' | 'hysteresis' | 'quorum_up' | 'quorum_down' | 'sorry_server'>, agg: VsAggregate, prev: RsState, next: RsState): { agg: VsAggregate; effects: Effect[] } {
  const a = contribution(prev);
  const b = contribution(next);
  if (a.weight === b.weight && a.serving === b.serving) return { agg, effects: [] };
  const healthyWeight = agg.healthyWeight - a.weight + b.weight;
  const serving = agg.serving - a.serving + b.serving;
  const effects: Effect[] = [];
  let quorumUp = agg.quorumUp;
  if (quorumUp && healthyWeight < cfg.quorum) quorumUp = false;
  else if (!quorumUp && healthyWeight >= cfg.quorum + cfg.hysteresis) quorumUp = true;
  if (quorumUp !== agg.quorumUp || healthyWeight !== agg.healthyWeight) {
    effects.push({ type: 'quorum', from: ud(agg.quorumUp), to: ud(quorumUp), up: quorumUp, healthyWeight });
    if (quorumUp !== agg.quorumUp) {
      const cmd = quorumUp ? cfg.quorum_up : cfg.quorum_down;
      if (cmd) effects.push({ type: 'exec', what: quorumUp ? 'quorum_up' : 'quorum_down', command: cmd });
    }
  }
  const sorryActive = serving === 0;
  if (sorryActive !== agg.sorryActive && cfg.sorry_server) effects.push({ type: 'sorry', active: sorryActive });
  return { agg: { quorumUp, healthyWeight, serving, sorryActive }, effects };
}

export function aggregateOf(cfg: VsPolicyConfig, rs: Readonly<Record<string, RsState>>, quorumUp: boolean): VsAggregate {
  const h = healthyWeightOf(cfg, rs);
  let serving = 0;
  for (const r of cfg.real_servers) if (rs[r.key]?.up && rs[r.key]!.weight > 0) serving++;
  return { quorumUp, healthyWeight: h.weight, serving, sorryActive: serving === 0 };
}

/** The whole virtual server, one check result (what the scenario files drive). */
export function step(cfg: VsPolicyConfig, state: VsState, ev: CheckResultEvent): StepOutput {
  const rsCfg = cfg.real_servers.find((r) => r.key === ev.rs);
  const prev = state.rs[ev.rs];
  if (!rsCfg || !prev) {
    // A result for something no longer configured (a reload raced an in-flight check): ignore it.
    return { state, effects: [], nextDelayMs: 1000 };
  }
  const r = stepRs(rsCfg, prev, ev);
  if (r.state === prev) return { state, effects: [], nextDelayMs: r.nextDelayMs };
  const serving = cfg.real_servers.reduce((n, x) => n + (state.rs[x.key]?.up && state.rs[x.key]!.weight > 0 ? 1 : 0), 0);
  const a = stepAggregate(cfg, { quorumUp: state.quorumUp, healthyWeight: state.healthyWeight, serving, sorryActive: state.sorryActive }, prev, r.state);
  return {
    state: { rs: { ...state.rs, [ev.rs]: r.state }, quorumUp: a.agg.quorumUp, healthyWeight: a.agg.healthyWeight, sorryActive: a.agg.sorryActive },
    effects: [...r.effects, ...a.effects],
    nextDelayMs: r.nextDelayMs,
  };
}

export interface ReloadOutput {
  readonly state: VsState;
  readonly effects: Effect[];
  /** Real servers whose check jobs must be (re)created: new ones, and ones whose checks or policy changed. */
  readonly restart: readonly string[];
  /** Real servers that are gone (their jobs stop). */
  readonly removed: readonly string[];
}

/**
 * A virtual server after a reload. Unchanged real servers keep their state (no re-check, no flap);
 * a real server whose checks or policy changed restarts its counters from its current up/down state;
 * a weight change is applied at once (unless a dynamic weight is in force); new ones start as at
 * boot. Quorum keeps its previous state and follows the same thresholds; a transition runs its command.
 */
export function reloadVs(next: VsPolicyConfig, prevCfg: VsPolicyConfig | undefined, prev: VsState | undefined): ReloadOutput {
  const rs: Record<string, RsState> = {};
  const restart: string[] = [];
  const prevByKey = new Map((prevCfg?.real_servers ?? []).map((r) => [r.key, r]));
  for (const r of next.real_servers) {
    const old = prev?.rs[r.key];
    const oldCfg = prevByKey.get(r.key);
    if (!old || !oldCfg) {
      rs[r.key] = initRs(r);
      restart.push(r.key);
    } else if (JSON.stringify(oldCfg.checks) !== JSON.stringify(r.checks) || JSON.stringify(oldCfg.policy) !== JSON.stringify(r.policy)) {
      rs[r.key] = { ...initRs(r, old.up), reason: old.reason };
      restart.push(r.key);
    } else {
      const dyn = old.checks.map((c) => c.weight).filter((w): w is number => w !== undefined);
      rs[r.key] = { ...old, weight: dyn.length ? Math.min(...dyn) : r.weight };
    }
  }
  const removed = [...prevByKey.keys()].filter((k) => !rs[k]);
  const h = healthyWeightOf(next, rs);
  const wasUp = prev ? prev.quorumUp : h.weight >= next.quorum;
  let quorumUp = wasUp;
  if (quorumUp && h.weight < next.quorum) quorumUp = false;
  else if (!quorumUp && h.weight >= next.quorum + next.hysteresis) quorumUp = true;
  const effects: Effect[] = [];
  if (!prev || quorumUp !== prev.quorumUp || h.weight !== prev.healthyWeight) {
    effects.push({ type: 'quorum', from: ud(wasUp), to: ud(quorumUp), up: quorumUp, healthyWeight: h.weight });
    if (prev && quorumUp !== prev.quorumUp) {
      const cmd = quorumUp ? next.quorum_up : next.quorum_down;
      if (cmd) effects.push({ type: 'exec', what: quorumUp ? 'quorum_up' : 'quorum_down', command: cmd });
    }
  }
  const sorryActive = !h.anyServing;
  if (prev && sorryActive !== prev.sorryActive && next.sorry_server) effects.push({ type: 'sorry', active: sorryActive });
  return { state: { rs, quorumUp, healthyWeight: h.weight, sorryActive }, effects, restart, removed };
}
