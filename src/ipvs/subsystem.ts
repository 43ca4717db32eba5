/**
 * The IPVS programmer inside `lvsd run`: keeps the kernel's table equal to the config's virtual
 * servers under the health state published on the bus ('health.rs').
 *  - start: read the kernel table and converge (never flush: established connections survive a
 *    restart of lvsd); reload: converge to the new config, removing services lvsd declared before;
 *  - health changes are coalesced and planned incrementally for the affected services only;
 *  - every global.ipvs.drift_check_interval seconds the kernel table is re-read and any drift
 *    (someone ran ipvsadm by hand) is repaired and counted;
 *  - stop leaves the table as it is (the peer director or the next lvsd takes over from there).
 * Without IPVS in the kernel (e.g. the CI host) it logs one clear error, reports available: false
 * and lets the rest of the daemon run.
 */
import type { ClusterConfig, VirtualServerConfig } from '../config/model.js';
import type { ConfigDiff } from '../config/diff.js';
import type { Subsystem, SubsystemDeps } from '../core/subsystem.js';
import type { TimerHandle } from '../core/clock.js';
import { errorMessage, isLvsdError } from '../core/errors.js';
import { entryFromConfig, type HealthView, type RsHealth } from './desired.js';
import { declaredRealServers, primeTableMetrics, registerTableMetrics, stopTableMetrics } from './table-metrics.js';
import { kernelTableReader } from './table-reader.js';
import { ipvsMetrics } from './metrics.js';
import { Reconciler, type ReconcileReason, type ReconcileResult } from './reconciler.js';
import { destKey, serviceKey, type Dataplane, type IpvsTable, type IpvsTableEntry } from './model.js';

export interface IpvsSubsystemOptions {
  /** Use this dataplane instead of opening the kernel's (tests: MemoryDataplane). */
  readonly dataplane?: Dataplane;
  /** Delay before a burst of health changes is applied, ms (default 1). */
  readonly coalesceMs?: number;
}

export interface IpvsStatus {
  readonly available: boolean | null;
  readonly error?: string;
  readonly services: ReadonlyArray<{
    readonly key: string;
    readonly name: string;
    readonly present: boolean;
    /** From the last table lvsd read (at start, after changes, at each drift check). */
    readonly dests: ReadonlyArray<{ readonly key: string; readonly fwd: string; readonly weight: number; readonly active_conns?: number; readonly inact_conns?: number }>;
  }>;
  readonly last_reconcile?: { readonly reason: ReconcileReason; readonly at: string; readonly ops: number; readonly failed: number; readonly duration_ms: number };
  readonly reconciles: number;
  readonly drift_repairs: number;
}

export interface IpvsSubsystem extends Subsystem<ClusterConfig, ConfigDiff> {
  /** Apply queued health changes now and wait until the table reflects them (tests, benchmarks). */
  settle(): Promise<void>;
  status(): IpvsStatus;
}

export function createIpvsSubsystem(deps: SubsystemDeps, opts: IpvsSubsystemOptions = {}): IpvsSubsystem {
  const log = deps.logger;
  const metrics = ipvsMetrics(deps.registry);
  // Per virtual/real server figures from the kernel, read at scrape time in a worker thread with its
  // own netlink sockets (one read per scrape). Only when this subsystem has the kernel's dataplane:
  // a test's MemoryDataplane lives on this thread, where the worker cannot read it.
  registerTableMetrics(deps.registry, {
    reader: () => (dp && !opts.dataplane ? kernelTableReader() : undefined),
    declared: () => cfg?.virtual_servers ?? [],
    settings: () => cfg?.global.api.table_metrics,
    clock: deps.clock,
    onError: (reason, message) => log.error({ reason, err: message }, 'the IPVS table metrics could not be read: this scrape has no per virtual/real server series'),
  });
  const coalesceMs = opts.coalesceMs ?? 1;
  let cfg: ClusterConfig | undefined;
  let dp: Dataplane | undefined;
  let reconciler: Reconciler | undefined;
  let available: boolean | null = null;
  let lastError: string | undefined;
  let last: ReconcileResult | undefined;
  let reconciles = 0;
  let driftRepairs = 0;
  /** vs key → rs key → last published health. */
  const health = new Map<string, Map<string, RsHealth>>();
  /** Keys of services lvsd declared at some point (removed from the config → lvsd deletes them). */
  const managed = new Set<string>();
  const vsByKey = new Map<string, VirtualServerConfig>();
  const vsKeyByName = new Map<string, string>();
  let pendingFull: ReconcileReason | undefined;
  let dirty = new Set<string>();
  /** A drift check's table, read while health changes kept flowing; `touched` = changed meanwhile. */
  let pendingDrift: { actual: IpvsTable; touched: Set<string> } | undefined;
  /** Services changed by incremental passes, per drift check currently reading the kernel. */
  const watchers = new Set<Set<string>>();
  let driftBusy = false;
  let driftInFlight: Promise<void> | undefined;
  let loop: Promise<void> | undefined;
  let kickTimer: TimerHandle | undefined;
  let driftTimer: TimerHandle | undefined;
  let stopped = false;

  const view: HealthView = (vs, rs) => health.get(vs)?.get(rs);

  function index(c: ClusterConfig): void {
    vsByKey.clear();
    vsKeyByName.clear();
    for (const vs of c.virtual_servers) {
      vsByKey.set(vs.key, vs);
      vsKeyByName.set(vs.name, vs.key);
    }
  }

  function desired(): IpvsTableEntry[] {
    return cfg ? cfg.virtual_servers.map((vs) => entryFromConfig(vs, view)) : [];
  }

  function planOpts() {
    return { exclusive: cfg?.global.ipvs.exclusive ?? false, managed };
  }

  /** Services lvsd declared before and just deleted are no longer its business. */
  function forgetRemoved(r: ReconcileResult): void {
    const declared = new Set(cfg?.virtual_servers.map((v) => v.key));
    for (const k of [...managed]) if (!declared.has(k) && !r.exec.failed.some((f) => serviceKey(f.op.service) === k)) managed.delete(k);
  }

  async function runOnce(): Promise<void> {
    if (!reconciler) return;
    let r: ReconcileResult;
    if (pendingFull) {
      const reason = pendingFull;
      pendingFull = undefined;
      pendingDrift = undefined; // a full pass supersedes a drift check's older snapshot
      dirty.clear();
      r = await reconciler.full(desired(), planOpts(), reason);
      forgetRemoved(r);
    } else if (dirty.size) {
      // Health first: a drift check waiting with its snapshot must not delay a real server change.
      const keys = dirty;
      dirty = new Set();
      for (const w of watchers) for (const k of keys) w.add(k);
      const entries = [...keys].flatMap((k) => {
        const vs = vsByKey.get(k);
        return vs ? [entryFromConfig(vs, view)] : [];
      });
      r = await reconciler.incremental(entries, keys, planOpts());
    } else if (pendingDrift) {
      const { actual, touched } = pendingDrift;
      pendingDrift = undefined;
      r = await reconciler.fromSnapshot(actual, desired(), planOpts(), 'drift', touched);
      forgetRemoved(r);
      driftRepairs += r.ops.length;
    } else return;
    last = r;
    reconciles++;
  }

  function drain(): Promise<void> {
    if (loop) return loop;
    loop = (async () => {
      // Yield first so that `loop` is assigned before the finally below can clear it.
      await null;
      try {
        while (!stopped && (pendingFull || dirty.size || pendingDrift)) {
          try {
            await runOnce();
            lastError = undefined;
          } catch (e) {
            lastError = errorMessage(e);
            log.error({ err: lastError }, 'IPVS reconcile failed; the next drift check retries');
            break;
          }
        }
      } finally {
        loop = undefined;
      }
    })();
    return loop;
  }

  function kick(): void {
    if (kickTimer || !reconciler) return;
    kickTimer = deps.clock.setTimeout(() => {
      kickTimer = undefined;
      void drain();
    }, coalesceMs);
  }

  function scheduleDrift(): void {
    if (driftTimer) deps.clock.clearTimeout(driftTimer);
    driftTimer = undefined;
    const every = cfg?.global.ipvs.drift_check_interval ?? 0;
    if (!every || stopped || !reconciler) return;
    driftTimer = deps.clock.setTimeout(() => {
      driftTimer = undefined;
      driftInFlight = driftCheck().finally(() => {
        driftInFlight = undefined;
        scheduleDrift();
      });
    }, every * 1000);
  }

  /**
   * Read the kernel table without holding up health changes (on a big table in a slow kernel the
   * read takes seconds), then plan and apply against it in the serialized loop.
   */
  async function driftCheck(): Promise<void> {
    if (!reconciler || driftBusy || stopped) return;
    driftBusy = true;
    const touched = new Set<string>();
    watchers.add(touched);
    try {
      const actual = await reconciler.read();
      if (!pendingFull && !stopped) {
        pendingDrift = { actual, touched };
        await drain();
      }
    } catch (e) {
      lastError = errorMessage(e);
      log.error({ err: lastError }, 'IPVS drift check could not read the kernel table');
    } finally {
      watchers.delete(touched);
      driftBusy = false;
    }
  }

  const unsubscribe = deps.bus.on('health.rs', (ev) => {
    const key = vsByKey.has(ev.vs) ? ev.vs : vsKeyByName.get(ev.vs);
    if (!key) {
      log.debug({ vs: ev.vs }, 'health for an unknown virtual server ignored');
      return;
    }
    let m = health.get(key);
    if (!m) health.set(key, (m = new Map()));
    const prev = m.get(ev.rs);
    const next: RsHealth = { up: ev.up, weight: ev.weight, inhibit: ev.inhibit };
    if (prev && prev.up === next.up && prev.weight === next.weight && prev.inhibit === next.inhibit) return;
    m.set(ev.rs, next);
    log.info({ instance: key, rs: ev.rs, from: prev ? (prev.up ? 'up' : 'down') : 'unknown', to: ev.up ? 'up' : 'down', weight: ev.weight, reason: ev.reason }, 'real server state changed');
    dirty.add(key);
    kick();
  });

  async function applyTimeouts(): Promise<void> {
    const t = cfg?.global.ipvs.timeouts;
    if (!dp || !t || !(t.tcp || t.tcp_fin || t.udp)) return;
    try {
      await dp.setTimeouts({ ...(t.tcp ? { tcp: t.tcp } : {}), ...(t.tcp_fin ? { tcp_fin: t.tcp_fin } : {}), ...(t.udp ? { udp: t.udp } : {}) });
    } catch (e) {
      log.error({ err: errorMessage(e) }, 'setting IPVS timeouts failed');
    }
  }

  async function ensureDataplane(): Promise<boolean> {
    if (dp) return true;
    if (!cfg || (cfg.virtual_servers.length === 0 && !cfg.global.ipvs.exclusive)) return false;
    try {
      if (opts.dataplane) dp = opts.dataplane;
      else {
        const { NetlinkDataplane } = await import('./netlink.js');
        dp = await NetlinkDataplane.open();
      }
    } catch (e) {
      available = false;
      lastError = errorMessage(e);
      if (isLvsdError(e, 'IPVS_UNAVAILABLE')) log.error({ err: lastError, virtual_servers: cfg.virtual_servers.length }, 'IPVS is not available: virtual servers are NOT programmed (load the ip_vs module); the rest of lvsd keeps running');
      else log.error({ err: lastError }, 'cannot open the IPVS dataplane; virtual servers are NOT programmed');
      return false;
    }
    available = true;
    reconciler = new Reconciler(dp, { logger: log, metrics, now: () => deps.clock.now(), wallNow: () => deps.clock.wallNow() });
    return true;
  }

  /** Says once per configuration that the per-real-server table series are left out, and why. */
  function warnTableCap(c: ClusterConfig): void {
    const t = c.global.api.table_metrics;
    const n = declaredRealServers(c.virtual_servers);
    if (t.enabled && n > t.max_real_servers) {
      log.warn({ real_servers: n, max_real_servers: t.max_real_servers }, 'per-real-server table metrics are left out: more real servers than global.api.table_metrics.max_real_servers');
    }
  }

  return {
    name: 'ipvs',
    async start(c) {
      cfg = c;
      index(c);
      warnTableCap(c);
      for (const vs of c.virtual_servers) managed.add(vs.key);
      if (!(await ensureDataplane())) return;
      await applyTimeouts();
      pendingFull = 'start';
      await drain();
      scheduleDrift();
      // The table-metrics worker gets the virtual servers' names now, not at the first scrape.
      void primeTableMetrics(deps.registry);
    },
    async reload(next, prev, diff) {
      cfg = next;
      index(next);
      warnTableCap(next);
      for (const vs of prev.virtual_servers) managed.add(vs.key);
      for (const vs of next.virtual_servers) managed.add(vs.key);
      // Health of real servers that left the config is forgotten.
      for (const [k, m] of health) {
        const vs = vsByKey.get(k);
        if (!vs) { health.delete(k); continue; }
        const keys = new Set(vs.real_servers.map((r) => r.key));
        for (const rs of [...m.keys()]) if (!keys.has(rs)) m.delete(rs);
      }
      if (!(await ensureDataplane())) return;
      void primeTableMetrics(deps.registry); // the new names, before the next scrape needs them
      const ipvsGlobalChanged = JSON.stringify(prev.global.ipvs) !== JSON.stringify(next.global.ipvs);
      const vsd = diff.virtual_servers;
      if (!ipvsGlobalChanged && !vsd.added.length && !vsd.removed.length && !vsd.changed.length) return;
      if (ipvsGlobalChanged) await applyTimeouts();
      pendingFull = 'reload';
      await drain();
      scheduleDrift();
    },
    async stop() {
      stopped = true;
      unsubscribe();
      if (kickTimer) deps.clock.clearTimeout(kickTimer);
      if (driftTimer) deps.clock.clearTimeout(driftTimer);
      kickTimer = driftTimer = undefined;
      if (loop) await loop.catch(() => {});
      if (driftInFlight) await driftInFlight.catch(() => {});
      // Never flush or delete on stop: connections keep flowing while the peer takes over.
      if (dp && !opts.dataplane) await dp.close();
      await stopTableMetrics(deps.registry);
    },
    async settle() {
      if (kickTimer) { deps.clock.clearTimeout(kickTimer); kickTimer = undefined; }
      await drain();
      // A drift check that is still reading the kernel counts as queued work.
      if (driftInFlight) await driftInFlight;
      await drain();
    },
    health() {
      const needed = !!cfg && (cfg.virtual_servers.length > 0 || cfg.global.ipvs.exclusive);
      if (needed && !dp) return { up: false, reason: `IPVS is not available, ${cfg!.virtual_servers.length} virtual servers are NOT programmed: ${lastError ?? 'no dataplane'}` };
      if (dp && lastError) return { up: false, reason: `the kernel table cannot be read or updated: ${lastError}` };
      const failed = last?.exec.failed ?? [];
      if (failed.length) return { up: false, reason: `${failed.length} of ${last!.ops.length} table operations failed in the last update (${failed[0]!.op.op}: ${failed[0]!.message ?? failed[0]!.errno ?? 'error'})` };
      return { up: true };
    },
    status(): IpvsStatus {
      const services = (cfg?.virtual_servers ?? []).map((vs) => {
        const e = reconciler?.entry(vs.key);
        return {
          key: vs.key,
          name: vs.name,
          present: !!e,
          dests: (e?.dests ?? []).map((d) => ({
            key: destKey(d),
            fwd: d.fwd,
            weight: d.weight,
            ...(d.active_conns !== undefined ? { active_conns: d.active_conns } : {}),
            ...(d.inact_conns !== undefined ? { inact_conns: d.inact_conns } : {}),
          })),
        };
      });
      return {
        available,
        ...(lastError ? { error: lastError } : {}),
        services,
        ...(last
          ? { last_reconcile: { reason: last.reason, at: new Date(last.at).toISOString(), ops: last.ops.length, failed: last.exec.failed.length, duration_ms: Math.round(last.durationMs * 100) / 100 } }
          : {}),
        reconciles,
        drift_repairs: driftRepairs,
      };
    },
  };
}
