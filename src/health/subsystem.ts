/**
 * The health subsystem: runs every real server's checks on a Scheduler, feeds results through the
 * pure policy, and publishes the outcome on the bus:
 *   'health.rs'     {vs, rs, up, weight, inhibit, reason}  → the IPVS subsystem programs the kernel
 *   'health.quorum' {vs, name, up, healthyWeight}          → the election tracks it
 * The initial state of every real server is published at start (alpha → down, else up).
 * Checks run whatever the VRRP state is, so a backup director already knows the truth at takeover.
 */
import { runScript } from '../core/scripts.js';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Subsystem, SubsystemDeps } from '../core/subsystem.js';
import type { Logger } from '../core/log.js';
import { errorMessage } from '../core/errors.js';
import type { ClusterConfig, Command, HealthCheck, RealServerConfig, VirtualServerConfig } from '../config/model.js';
import type { ConfigDiff } from '../config/diff.js';
import { createChecker, type Checker, type CheckResult } from './checks/index.js';
import { Scheduler } from './scheduler.js';
import { aggregateOf, published, reloadVs, stepAggregate, stepRs, type Effect, type RsState, type VsAggregate, type VsState } from './policy.js';

export interface HealthSubsystemOptions {
  /** Checks in flight at most (default 1000). */
  readonly maxConcurrent?: number;
  /** Fraction by which each delay may be shortened at random (default 0.1). */
  readonly jitter?: number;
  /** First runs are spread uniformly over min(interval, staggerMaxMs) (default 5000 ms). */
  readonly staggerMaxMs?: number;
  readonly random?: () => number;
  /** Build a checker (tests may wrap the real ones). */
  readonly checkerFactory?: (c: HealthCheck) => Checker;
  /** Run a notify/quorum command (default: spawn without a shell, killed after commandTimeoutMs). */
  readonly runCommand?: (cmd: Command, ctx: CommandContext) => void;
  readonly commandTimeoutMs?: number;
}

/** A check's last result as /status shows it (snake_case, ISO time). */
export interface LastResult {
  readonly ok: boolean;
  readonly reason?: string;
  readonly detail?: string;
  readonly duration_seconds: number;
  readonly weight?: number;
  /** ISO time the check completed. */
  readonly at: string;
}

export interface HealthStatus {
  readonly checks_in_flight: number;
  readonly checks_queued: number;
  readonly checks_run: number;
  readonly virtual_servers: Array<{
    key: string;
    name: string;
    quorum: { up: boolean; healthy_weight: number; quorum: number; hysteresis: number };
    sorry_active: boolean;
    real_servers: Array<{
      key: string;
      up: boolean;
      weight: number;
      inhibit: boolean;
      reason: string;
      /** ISO time of the last up/down change (or of the start). */
      since: string;
      checks: Array<{ kind: string; up: boolean; ok_streak: number; fail_streak: number; last?: LastResult }>;
    }>;
  }>;
}

export interface HealthSubsystem extends Subsystem<ClusterConfig, ConfigDiff> {
  status(): HealthStatus;
}

interface VsRun {
  cfg: VirtualServerConfig;
  /** Mutable shell around the pure policy: per-server state and an incrementally kept aggregate. */
  rs: Map<string, RsState>;
  rsCfg: Map<string, RealServerConfig>;
  agg: VsAggregate;
  /** rs key → per-check checker */
  checkers: Map<string, Checker[]>;
  /** Last result per check and when it completed (Clock.now() ms; turned into wall time by status()). */
  last: Map<string, Array<{ r: CheckResult; mono: number } | undefined>>;
  since: Map<string, number>;
}

// The same label names as the IPVS table metrics (src/ipvs/table-metrics.ts), so series join:
// virtual_server = the configured name, service = protocol/address:port, real_server = address:port.
const VS_LABELS = ['virtual_server', 'service'] as const;
const RS_LABELS = ['virtual_server', 'service', 'real_server'] as const;
const vsLabels = (c: VirtualServerConfig) => ({ virtual_server: c.name, service: c.key });
const rsLabels = (c: VirtualServerConfig, rs: string) => ({ virtual_server: c.name, service: c.key, real_server: rs });

function metrics(reg: Registry) {
  return {
    rsUp: new Gauge({ name: 'lvsd_health_real_server_up', help: 'Real server health as published: 1 up, 0 down.', labelNames: RS_LABELS, registers: [reg] }),
    lastDuration: new Gauge({ name: 'lvsd_health_real_server_last_check_duration_seconds', help: 'Duration of the real server\'s last completed health check.', labelNames: RS_LABELS, registers: [reg] }),
    lastFailure: new Gauge({ name: 'lvsd_health_real_server_last_failure_timestamp_seconds', help: 'Unix time of the real server\'s last failed check, labelled with its reason (one series per real server: the latest reason).', labelNames: [...RS_LABELS, 'reason'], registers: [reg] }),
    duration: new Histogram({
      name: 'lvsd_health_check_duration_seconds',
      help: 'Duration of health checks by kind.',
      labelNames: ['kind'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [reg],
    }),
    failures: new Counter({ name: 'lvsd_health_check_failures_total', help: 'Failed health checks by kind and reason.', labelNames: ['kind', 'reason'], registers: [reg] }),
    transitions: new Counter({ name: 'lvsd_health_transitions_total', help: 'Real server up/down transitions by virtual server and new state.', labelNames: [...VS_LABELS, 'to'], registers: [reg] }),
    quorumUp: new Gauge({ name: 'lvsd_health_quorum_up', help: 'Virtual server quorum: 1 when healthy weight meets quorum.', labelNames: VS_LABELS, registers: [reg] }),
  };
}

/** Who a notify command runs for, as log fields. */
interface CommandContext {
  readonly what: string;
  readonly virtual_server: string;
  readonly service: string;
  readonly real_server?: string;
}

function defaultRunCommand(log: Logger, timeoutMs: number, user: () => string | undefined) {
  return (cmd: Command, ctx: CommandContext) => {
    void runScript({ argv: cmd, timeoutMs, user: user() }).then((r) => {
      if (r.error) log.warn({ ...ctx, command: cmd, err: r.error }, 'command failed to start');
      else if (r.timedOut) log.warn({ ...ctx, command: cmd }, 'command killed after timeout');
      else (r.code === 0 ? log.info.bind(log) : log.warn.bind(log))({ ...ctx, command: cmd, code: r.code, signal: r.signal }, 'command finished');
    });
  };
}

export function createHealthSubsystem(deps: SubsystemDeps, opts: HealthSubsystemOptions = {}): HealthSubsystem {
  const log = deps.logger;
  const m = metrics(deps.registry);
  const random = opts.random ?? Math.random;
  const newScheduler = () =>
    new Scheduler(deps.clock, {
      maxConcurrent: opts.maxConcurrent ?? 1000,
      // Measured in the lab at 5,000 servers / 1 s (more checks than one CPU can do): queued runs
      // started once per loop turn instead of one per completion: +20 % checks/s, −8 % CPU per check.
      batchQueued: true,
      jitter: opts.jitter ?? 0.1,
      random,
      onError: (id, e) => log.error({ job: id, err: errorMessage(e) }, 'health job failed'),
    });
  let sched = newScheduler();
  const makeChecker = opts.checkerFactory ?? createChecker;
  let scriptUser: string | undefined;
  const runCommand = opts.runCommand ?? defaultRunCommand(log, opts.commandTimeoutMs ?? 30000, () => scriptUser);
  const staggerMax = opts.staggerMaxMs ?? 5000;
  const vss = new Map<string, VsRun>();
  let stopped = false;

  const jobId = (vs: string, rs: string, i: number) => `${vs}|${rs}|${i}`;

  function publishRs(run: VsRun, rsKey: string): void {
    const rsCfg = run.rsCfg.get(rsKey);
    const s = run.rs.get(rsKey);
    if (!rsCfg || !s) return;
    const p = published(rsCfg, s);
    deps.bus.emit('health.rs', { vs: run.cfg.key, rs: rsKey, ...p, reason: s.reason });
    m.rsUp.set(rsLabels(run.cfg, rsKey), p.up ? 1 : 0);
  }

  function publishQuorum(run: VsRun): void {
    deps.bus.emit('health.quorum', { vs: run.cfg.key, name: run.cfg.name, up: run.agg.quorumUp, healthyWeight: run.agg.healthyWeight });
    m.quorumUp.set(vsLabels(run.cfg), run.agg.quorumUp ? 1 : 0);
  }

  function apply(run: VsRun, effects: Effect[]): void {
    const vs = run.cfg.key;
    const who = { virtual_server: run.cfg.name, service: vs };
    for (const e of effects) {
      switch (e.type) {
        case 'rs': {
          deps.bus.emit('health.rs', { vs, rs: e.rs, up: e.up, weight: e.weight, inhibit: e.inhibit, reason: e.reason });
          m.rsUp.set(rsLabels(run.cfg, e.rs), e.up ? 1 : 0);
          if (e.from !== e.to) {
            m.transitions.inc({ ...who, to: e.to });
            run.since.set(e.rs, deps.clock.wallNow());
            log.info({ ...who, real_server: e.rs, from: e.from, to: e.to, reason: e.reason, weight: e.weight, inhibit: e.inhibit }, `real server ${e.to}`);
          } else {
            log.info({ ...who, real_server: e.rs, weight: e.weight, reason: e.reason }, 'real server weight changed');
          }
          break;
        }
        case 'quorum':
          deps.bus.emit('health.quorum', { vs, name: run.cfg.name, up: e.up, healthyWeight: e.healthyWeight });
          m.quorumUp.set(who, e.up ? 1 : 0);
          if (e.from !== e.to) {
            log.info({ ...who, from: e.from, to: e.to, reason: `healthy weight ${e.healthyWeight}, quorum ${run.cfg.quorum}${run.cfg.hysteresis ? ` (+${run.cfg.hysteresis} hysteresis to regain)` : ''}` }, `quorum ${e.to}`);
          }
          break;
        case 'sorry':
          log.info({ ...who, sorry_server: run.cfg.sorry_server?.address, from: e.active ? 'inactive' : 'active', to: e.active ? 'active' : 'inactive', reason: e.active ? 'no real server up' : 'a real server is up' }, `sorry server ${e.active ? 'active' : 'inactive'}`);
          break;
        case 'exec':
          runCommand(e.command, { what: e.what, ...who, ...(e.rs ? { real_server: e.rs } : {}) });
          break;
      }
    }
  }

  /** Last check duration, and the last failure's time under its reason (one series per real server). */
  const lastReason = new Map<string, string>();
  function recordLast(run: VsRun, rsKey: string, r: CheckResult, startedAt: number): void {
    const labels = rsLabels(run.cfg, rsKey);
    m.lastDuration.set(labels, r.durationMs / 1000);
    if (r.ok) return;
    const id = `${run.cfg.key}|${rsKey}`;
    const reason = r.reason ?? 'error';
    const before = lastReason.get(id);
    if (before !== undefined && before !== reason) m.lastFailure.remove({ ...labels, reason: before });
    lastReason.set(id, reason);
    m.lastFailure.set({ ...labels, reason }, (deps.clock.wallNow() - deps.clock.now() + startedAt + r.durationMs) / 1000);
  }
  function forgetRs(run: VsRun, rsKey: string): void {
    const labels = rsLabels(run.cfg, rsKey);
    m.rsUp.remove(labels);
    m.lastDuration.remove(labels);
    const id = `${run.cfg.key}|${rsKey}`;
    const before = lastReason.get(id);
    if (before !== undefined) m.lastFailure.remove({ ...labels, reason: before });
    lastReason.delete(id);
  }

  function startJobs(run: VsRun, rsKey: string): void {
    const rsCfg = run.rsCfg.get(rsKey);
    if (!rsCfg) return;
    const checkers = rsCfg.checks.map((c) => makeChecker(c));
    run.checkers.set(rsKey, checkers);
    run.last.set(rsKey, checkers.map(() => undefined));
    const vsKey = run.cfg.key;
    checkers.forEach((checker, i) => {
      const check = rsCfg.checks[i]!;
      const intervalMs = rsCfg.policy.interval * 1000;
      const first = random() * Math.min(intervalMs, staggerMax);
      const timeoutMs = (check.timeout ?? rsCfg.policy.timeout) * 1000;
      const target = { address: rsCfg.address, port: rsCfg.port, timeoutMs };
      sched.add(jobId(vsKey, rsKey, i), first, async (signal, startedAt) => {
        const r = await checker.run(target, signal);
        return onResult(vsKey, rsKey, i, checker, r, startedAt);
      });
    });
  }

  function stopJobs(vsKey: string, rsKey: string, count: number): void {
    for (let i = 0; i < count; i++) sched.remove(jobId(vsKey, rsKey, i));
  }

  function onResult(vsKey: string, rsKey: string, i: number, checker: Checker, r: CheckResult, startedAt: number): number {
    const run = vss.get(vsKey);
    // A result for a server removed (or re-created) meanwhile is dropped.
    if (stopped || !run || run.checkers.get(rsKey)?.[i] !== checker || r.reason === 'aborted') return 60000;
    m.duration.observe({ kind: checker.kind }, r.durationMs / 1000);
    if (!r.ok) m.failures.inc({ kind: checker.kind, reason: r.reason ?? 'error' });
    recordLast(run, rsKey, r, startedAt);
    // No clock read per result: completion = the scheduler's start time + the check's duration.
    run.last.get(rsKey)![i] = { r, mono: startedAt + r.durationMs };
    const rsCfg = run.rsCfg.get(rsKey);
    const prev = run.rs.get(rsKey);
    if (!rsCfg || !prev) return 60000;
    const out = stepRs(rsCfg, prev, { type: 'result', rs: rsKey, check: i, ok: r.ok, reason: r.reason, detail: r.detail, weight: r.weight });
    run.rs.set(rsKey, out.state);
    const a = stepAggregate(run.cfg, run.agg, prev, out.state);
    run.agg = a.agg;
    if (!r.ok) log.debug({ virtual_server: run.cfg.name, service: vsKey, real_server: rsKey, check: i, kind: checker.kind, reason: r.reason, detail: r.detail }, 'check failed');
    apply(run, out.effects);
    apply(run, a.effects);
    return out.nextDelayMs;
  }

  function addVs(cfg: VirtualServerConfig): void {
    const out = reloadVs(cfg, undefined, undefined);
    const run: VsRun = {
      cfg,
      rs: new Map(Object.entries(out.state.rs)),
      rsCfg: new Map(cfg.real_servers.map((r) => [r.key, r])),
      agg: aggregateOf(cfg, out.state.rs, out.state.quorumUp),
      checkers: new Map(),
      last: new Map(),
      since: new Map(),
    };
    vss.set(cfg.key, run);
    const now = deps.clock.wallNow();
    for (const r of cfg.real_servers) {
      run.since.set(r.key, now);
      publishRs(run, r.key);
      const s = run.rs.get(r.key)!;
      log.info({ virtual_server: cfg.name, service: cfg.key, real_server: r.key, from: 'none', to: s.up ? 'up' : 'down', reason: s.reason }, 'real server initial state');
    }
    publishQuorum(run);
    for (const r of cfg.real_servers) startJobs(run, r.key);
  }

  function removeVs(key: string): void {
    const run = vss.get(key);
    if (!run) return;
    for (const [rs, cs] of run.checkers) {
      stopJobs(key, rs, cs.length);
      forgetRs(run, rs);
    }
    m.quorumUp.remove(vsLabels(run.cfg));
    vss.delete(key);
  }

  function changeVs(cfg: VirtualServerConfig): void {
    const run = vss.get(cfg.key);
    if (!run) return addVs(cfg);
    const prevState: VsState = { rs: Object.fromEntries(run.rs), quorumUp: run.agg.quorumUp, healthyWeight: run.agg.healthyWeight, sorryActive: run.agg.sorryActive };
    const out = reloadVs(cfg, run.cfg, prevState);
    for (const rs of [...out.removed, ...out.restart]) {
      const n = run.checkers.get(rs)?.length ?? 0;
      stopJobs(cfg.key, rs, n);
      run.checkers.delete(rs);
      run.last.delete(rs);
      if (out.removed.includes(rs)) {
        forgetRs(run, rs);
        run.since.delete(rs);
      }
    }
    if (run.cfg.name !== cfg.name) {
      // Renamed: the series under the old name go; the republish below brings them under the new one.
      for (const rs of run.rsCfg.keys()) forgetRs(run, rs);
      m.quorumUp.remove(vsLabels(run.cfg));
    }
    run.cfg = cfg;
    run.rs = new Map(Object.entries(out.state.rs));
    run.rsCfg = new Map(cfg.real_servers.map((r) => [r.key, r]));
    run.agg = aggregateOf(cfg, out.state.rs, out.state.quorumUp);
    // Republish every real server: idempotent for the consumer, and covers weight edits.
    for (const r of cfg.real_servers) {
      if (!run.since.has(r.key)) run.since.set(r.key, deps.clock.wallNow());
      publishRs(run, r.key);
    }
    apply(run, out.effects);
    for (const rs of out.restart) startJobs(run, rs);
    log.info({ virtual_server: cfg.name, service: cfg.key, restarted: out.restart.length, removed: out.removed.length }, 'virtual server reloaded');
  }

  return {
    name: 'health',
    async start(cfg) {
      scriptUser = cfg.global.script_user;
      if (stopped) sched = newScheduler(); // started again after a stop
      stopped = false;
      for (const vs of cfg.virtual_servers) addVs(vs);
      log.info({ virtual_servers: cfg.virtual_servers.length, checks: sched.size }, 'health checks started');
    },
    async reload(next, _prev, diff) {
      scriptUser = next.global.script_user;
      for (const k of diff.virtual_servers.removed) removeVs(k);
      const byKey = new Map(next.virtual_servers.map((v) => [v.key, v]));
      for (const k of diff.virtual_servers.added) {
        const v = byKey.get(k);
        if (v) addVs(v);
      }
      for (const k of diff.virtual_servers.changed) {
        const v = byKey.get(k);
        if (v) changeVs(v);
      }
    },
    async stop() {
      stopped = true;
      await sched.stop();
      vss.clear();
    },
    status(): HealthStatus {
      const wallMinusMono = deps.clock.wallNow() - deps.clock.now();
      const lastOf = (l: { r: CheckResult; mono: number } | undefined): LastResult | undefined =>
        l
          ? {
              ok: l.r.ok,
              ...(l.r.reason !== undefined ? { reason: l.r.reason } : {}),
              ...(l.r.detail !== undefined ? { detail: l.r.detail } : {}),
              duration_seconds: Math.round(l.r.durationMs) / 1000,
              ...(l.r.weight !== undefined ? { weight: l.r.weight } : {}),
              at: new Date(Math.round(l.mono + wallMinusMono)).toISOString(),
            }
          : undefined;
      return {
        checks_in_flight: sched.running,
        checks_queued: sched.queued,
        checks_run: sched.runs,
        virtual_servers: [...vss.values()].map((run) => ({
          key: run.cfg.key,
          name: run.cfg.name,
          quorum: { up: run.agg.quorumUp, healthy_weight: run.agg.healthyWeight, quorum: run.cfg.quorum, hysteresis: run.cfg.hysteresis },
          sorry_active: run.agg.sorryActive,
          real_servers: run.cfg.real_servers.map((r) => {
            const s = run.rs.get(r.key)!;
            const p = published(r, s);
            const last = run.last.get(r.key) ?? [];
            return {
              key: r.key,
              ...p,
              reason: s.reason,
              since: new Date(run.since.get(r.key) ?? 0).toISOString(),
              checks: s.checks.map((c, i) => {
                const l = lastOf(last[i]);
                return { kind: r.checks[i]?.type ?? '?', up: c.up, ok_streak: c.okStreak, fail_streak: c.failStreak, ...(l ? { last: l } : {}) };
              }),
            };
          }),
        })),
      };
    },
  };
}
