/**
 * Read the kernel's table, plan, apply — never flush. Keeps a copy of the table as last applied so
 * that a health change (one destination's weight) is planned against that copy in O(changed
 * services) instead of re-reading a table of 10,000 services; the periodic drift check re-reads the
 * kernel and repairs (and counts) whatever changed behind lvsd's back.
 */
import type { Logger } from '../core/log.js';
import { silentLogger } from '../core/log.js';
import { execute, type ExecReport } from './executor.js';
import { MemoryDataplane } from './memory.js';
import type { IpvsMetrics } from './metrics.js';
import { formatOp, plan, type PlanOptions } from './plan.js';
import { serviceKey, type Dataplane, type IpvsOp, type IpvsTable, type IpvsTableEntry } from './model.js';

export type ReconcileReason = 'start' | 'reload' | 'health' | 'drift' | 'apply';

export interface ReconcileResult {
  readonly reason: ReconcileReason;
  readonly ops: readonly IpvsOp[];
  readonly exec: ExecReport;
  readonly durationMs: number;
  /** Wall-clock ms when it finished. */
  readonly at: number;
}

export interface ReconcilerOptions {
  readonly logger?: Logger;
  readonly metrics?: IpvsMetrics;
  readonly now?: () => number;
  readonly wallNow?: () => number;
}

export class Reconciler {
  /** The kernel table as of the last full read plus what was applied since. */
  private cache: MemoryDataplane | undefined;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly wallNow: () => number;
  /** Keys of services lvsd manages (for the gauges). */
  private managedKeys = new Set<string>();
  private readonly perKey = new Map<string, number>();
  private svcCount = 0;
  private destCount = 0;

  constructor(readonly dp: Dataplane, private readonly opts: ReconcilerOptions = {}) {
    this.log = opts.logger ?? silentLogger;
    this.now = opts.now ?? (() => performance.now());
    this.wallNow = opts.wallNow ?? (() => Date.now());
  }

  /** Full pass: dump the kernel table, plan against it, apply. */
  async full(desired: IpvsTable, planOpts: PlanOptions, reason: ReconcileReason): Promise<ReconcileResult> {
    const t0 = this.now();
    const actual = await this.dp.dump();
    return this.fromSnapshot(actual, desired, planOpts, reason, undefined, t0);
  }

  /** Read the kernel table (may run while incremental passes apply changes: see fromSnapshot). */
  read(): Promise<IpvsTable> {
    return this.dp.dump();
  }

  /**
   * Plan and apply against a table read earlier. Services in `stale` were changed by incremental
   * passes while the snapshot was being read: for those the copy of the applied table is trusted
   * instead of the snapshot, so a slow drift check never undoes a fresh health change.
   */
  async fromSnapshot(snapshot: IpvsTable, desired: IpvsTable, planOpts: PlanOptions, reason: ReconcileReason, stale?: ReadonlySet<string>, t0 = this.now()): Promise<ReconcileResult> {
    let actual = snapshot;
    if (stale?.size && this.cache) {
      const cache = this.cache;
      const merged = snapshot.filter((e) => !stale.has(serviceKey(e.service)));
      for (const k of stale) {
        const e = cache.entryOf(k);
        if (e) merged.push(e);
      }
      actual = merged;
    }
    this.cache = new MemoryDataplane(actual);
    const ops = plan(desired, actual, planOpts);
    // A partial pass (`only`) must not redefine which services are managed (gauges).
    return this.finish(reason, ops, t0, planOpts.only ? undefined : desired);
  }

  /** Incremental pass for a few services (health changes), against the cached table. */
  async incremental(entries: readonly IpvsTableEntry[], keys: ReadonlySet<string>, planOpts: PlanOptions): Promise<ReconcileResult> {
    if (!this.cache) return this.full(entries, { ...planOpts, only: keys }, 'health');
    const t0 = this.now();
    const actual: IpvsTableEntry[] = [];
    for (const k of keys) {
      const e = this.cache.entryOf(k);
      if (e) actual.push(e);
    }
    const ops = plan(entries, actual, { ...planOpts, only: keys });
    return this.finish('health', ops, t0);
  }

  private async finish(reason: ReconcileReason, ops: IpvsOp[], t0: number, desired?: IpvsTable): Promise<ReconcileResult> {
    let exec: ExecReport;
    try {
      exec = await execute(this.dp, ops, this.now);
    } catch (e) {
      // The transport itself failed (socket closed, ...): the cache can no longer be trusted.
      this.cache = undefined;
      throw e;
    }
    const m = this.opts.metrics;
    let cacheStale = false;
    for (const r of exec.reports) {
      m?.ops.inc({ op: r.op.op, result: r.result });
      if (r.result === 'error') {
        cacheStale = true;
        this.log.error({ op: formatOp(r.op), errno: r.errno, err: r.message, reason }, 'IPVS operation failed');
        continue;
      }
      try {
        this.cache?.applySync(r.op);
      } catch {
        cacheStale = true;
      }
    }
    if (cacheStale) this.cache = undefined; // next pass re-reads the kernel
    if (reason === 'drift' && ops.length) {
      m?.driftRepairs.inc(ops.length);
      this.log.warn({ repairs: ops.length, ops: ops.slice(0, 20).map(formatOp) }, 'IPVS table drifted from the desired one; repaired');
    }
    if (desired) {
      const prev = [...this.perKey.keys()];
      this.managedKeys = new Set(desired.map((e) => serviceKey(e.service)));
      this.updateGauges([...prev, ...this.managedKeys]);
    } else {
      this.updateGauges(new Set(ops.map((o) => serviceKey(o.service))));
    }
    const durationMs = this.now() - t0;
    m?.reconcileDuration.observe({ reason }, durationMs / 1000);
    if (ops.length) this.log.info({ reason, ops: ops.length, failed: exec.failed.length, ms: Math.round(durationMs * 10) / 10 }, 'IPVS table reconciled');
    return { reason, ops, exec, durationMs, at: this.wallNow() };
  }

  /** Recount the given keys (all managed keys after a full pass) and publish the gauges. */
  private updateGauges(keys: Iterable<string>): void {
    if (!this.cache) return;
    for (const k of keys) {
      const before = this.perKey.get(k);
      if (before) { this.svcCount--; this.destCount -= before; this.perKey.delete(k); }
      if (!this.managedKeys.has(k)) continue;
      const e = this.cache.entryOf(k);
      if (!e) continue;
      this.perKey.set(k, e.dests.length);
      this.svcCount++;
      this.destCount += e.dests.length;
    }
    this.opts.metrics?.services.set(this.svcCount);
    this.opts.metrics?.destinations.set(this.destCount);
  }

  /** A service as lvsd believes the kernel has it (undefined before the first full pass or after an error). */
  entry(key: string): IpvsTableEntry | undefined {
    return this.cache?.entryOf(key);
  }

  /** Managed services / destinations present, as of the last pass. */
  counts(): { services: number; dests: number } {
    return { services: this.svcCount, dests: this.destCount };
  }
}
