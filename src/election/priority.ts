/**
 * Effective priority from tracking, pure (keepalived semantics, keepalived.conf(5) 2.2.7):
 *
 *  - Each tracked object (interface link, vrrp_script, virtual-server quorum) is "good" or "bad".
 *  - weight 0:  bad ⇒ the instance goes to FAULT (one fault reason per object).
 *  - weight > 0: added to the priority while the object is GOOD ("a success will add +weight").
 *  - weight < 0: added (i.e. subtracted) while the object is BAD ("a negative weight will be
 *    subtracted from the initial priority in case of failure").
 *  - The result is limited to [1, 254]; the address owner (255) keeps 255 and its tracking can
 *    only fault it ("if an instance has priority 255 configured, the priority cannot be reduced by
 *    track_scripts ... and likewise track_scripts etc cannot increase the priority to 255").
 *  - Sync group members: "any track scripts/files configured against member VRRP instances will
 *    have their tracking weights automatically set to zero" — so a bad object faults the member.
 *
 * The same sign rule is applied to track_interface and to the virtual-server quorum tracking.
 *
 * vrrp_script rise/fall: `scriptResult` turns exit statuses into good/bad with keepalived's
 * counters (rise consecutive successes to become good, fall consecutive failures to become bad;
 * initially good unless `init_fail`).
 */
import type { VrrpEvent } from './machine.js';

export interface TrackedObject {
  readonly name: string;
  readonly weight: number;
  /** interface link up / script OK / quorum up */
  readonly good: boolean;
}

export interface Tracking {
  readonly interfaces: readonly TrackedObject[];
  readonly scripts: readonly TrackedObject[];
  readonly virtualServers: readonly TrackedObject[];
}

export interface PriorityResult {
  /** Effective priority, 1..254 (255 only for the owner). */
  readonly priority: number;
  /** Fault reasons, e.g. "interface:eth1", "script:chk_haproxy", "quorum:web"; empty = no fault. */
  readonly faults: readonly string[];
}

export interface PriorityOptions {
  /** The instance is in a sync group: weights are forced to 0 (keepalived). */
  readonly syncGroup?: boolean;
}

const OWNER = 255;

export function effectivePriority(base: number, t: Tracking, opts: PriorityOptions = {}): PriorityResult {
  const faults: string[] = [];
  let delta = 0;
  const visit = (kind: string, objs: readonly TrackedObject[]) => {
    for (const o of objs) {
      const w = opts.syncGroup || base === OWNER ? 0 : Math.trunc(o.weight);
      if (w === 0) {
        if (!o.good) faults.push(`${kind}:${o.name}`);
      } else if (w > 0 ? o.good : !o.good) {
        delta += w;
      }
    }
  };
  visit('interface', t.interfaces);
  visit('script', t.scripts);
  visit('quorum', t.virtualServers);
  if (base === OWNER) return { priority: OWNER, faults };
  return { priority: Math.min(254, Math.max(1, base + delta)), faults };
}

/**
 * Events that move the machine from one tracking result to the next: fault / fault_cleared per
 * reason, then the new priority. Feed them in order to `step`.
 */
export function trackingEvents(prev: PriorityResult, next: PriorityResult): VrrpEvent[] {
  const out: VrrpEvent[] = [];
  for (const r of next.faults) if (!prev.faults.includes(r)) out.push({ type: 'fault', reason: r });
  if (next.priority !== prev.priority) out.push({ type: 'priority', effective: next.priority });
  for (const r of prev.faults) if (!next.faults.includes(r)) out.push({ type: 'fault_cleared', reason: r });
  return out;
}

export interface ScriptState {
  readonly good: boolean;
  /** consecutive successes / failures so far */
  readonly successes: number;
  readonly failures: number;
}

/** Initial state: good unless keepalived's `init_fail` ("assume script initially is in failed state"). */
export function initialScriptState(initFail = false): ScriptState {
  return { good: !initFail, successes: 0, failures: 0 };
}

/**
 * Record one script run. `rise` consecutive successes make a bad script good, `fall` consecutive
 * failures make a good one bad (keepalived vrrp_script rise/fall; both ≥ 1). A timeout is a failure.
 */
export function scriptResult(s: ScriptState, success: boolean, rise: number, fall: number): ScriptState {
  const r = Math.max(1, Math.trunc(rise));
  const f = Math.max(1, Math.trunc(fall));
  if (success) {
    const successes = s.successes + 1;
    return { good: s.good || successes >= r, successes, failures: 0 };
  }
  const failures = s.failures + 1;
  return { good: s.good && failures < f, successes: 0, failures };
}
