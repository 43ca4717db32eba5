/**
 * keepalived vrrp_sync_group, pure: "a bundle of VRRP instances to get synchronized together so
 * that transition of one instance will be reflected to others group members" (keepalived.conf(5)).
 *
 * Rules (keepalived 2.x "Syncing instances to MASTER/BACKUP/FAULT state"):
 *  - A member that becomes MASTER by itself (master-down timeout, preempt, owner start) pulls the
 *    other Backup members to MASTER (`sync` event, as if their Master_Down_Timer fired).
 *  - A Master member that steps down to BACKUP (a better master appeared) pulls the other Master
 *    members down to BACKUP.
 *  - A member that gets a fault of its own puts every other member in FAULT too (fault reason
 *    `sync:<group>`), so the whole group leaves Master together and the peer's group takes over.
 *  - When no member has a fault of its own any more, the `sync:<group>` faults are cleared and the
 *    members re-enter BACKUP (then elect as usual, and move together again).
 * Transitions forced by the group are not propagated again (no cascades, no loops).
 */
import { step, type Effect, type InstanceState, type VrrpEvent, type VrrpState } from './machine.js';

export interface SyncGroupDef {
  readonly name: string;
  readonly members: readonly string[];
}

export type Members = Readonly<Record<string, InstanceState>>;

export interface MemberEffect {
  readonly instance: string;
  readonly effect: Effect;
}

export interface GroupStepResult {
  readonly states: Members;
  /** Effects of every member touched, in execution order, tagged with the member name. */
  readonly effects: readonly MemberEffect[];
  /** The group's aggregate state changed (for the group's own notify scripts). */
  readonly groupTransition?: { readonly from: VrrpState; readonly to: VrrpState };
}

export const syncFaultReason = (group: string) => `sync:${group}`;

/** Aggregate state: FAULT if any member is, MASTER if all are, INIT if all are, else BACKUP. */
export function groupState(g: SyncGroupDef, states: Members): VrrpState {
  const ss = g.members.map((m) => states[m]?.state ?? 'INIT');
  if (ss.includes('FAULT')) return 'FAULT';
  if (ss.every((s) => s === 'MASTER')) return 'MASTER';
  if (ss.every((s) => s === 'INIT')) return 'INIT';
  return 'BACKUP';
}

const ownFaults = (g: SyncGroupDef, s: InstanceState) => s.faults.filter((r) => r !== syncFaultReason(g.name));

/**
 * Apply an event to one member and propagate to the others. Members missing from `states` are
 * skipped; an event for a non-member is applied alone.
 */
export function groupStep(g: SyncGroupDef, states: Members, target: string, event: VrrpEvent, now: number): GroupStepResult {
  const cur = states[target];
  if (!cur) return { states, effects: [] };
  const before = groupState(g, states);
  const next: Record<string, InstanceState> = { ...states };
  const effects: MemberEffect[] = [];
  const apply = (m: string, ev: VrrpEvent) => {
    const s = next[m];
    if (!s) return;
    const r = step(s, ev, now);
    next[m] = r.state;
    for (const e of r.effects) effects.push({ instance: m, effect: e });
  };
  apply(target, event);
  if (!g.members.includes(target)) return { states: next, effects };
  const others = g.members.filter((m) => m !== target);
  const reason = syncFaultReason(g.name);
  const own = effects.filter((e) => e.instance === target).map((e) => e.effect);

  if (event.type === 'fault' && event.reason !== reason) {
    for (const m of others) apply(m, { type: 'fault', reason });
  } else if (event.type === 'fault_cleared' && event.reason !== reason) {
    const anyOwn = g.members.some((m) => next[m] && ownFaults(g, next[m]!).length > 0);
    if (!anyOwn) for (const m of g.members) if (next[m]?.faults.includes(reason)) apply(m, { type: 'fault_cleared', reason });
  }
  for (const e of own) {
    if (e.type !== 'become') continue;
    if (e.to === 'MASTER') {
      for (const m of others) if (next[m]?.state === 'BACKUP') apply(m, { type: 'sync', to: 'MASTER', group: g.name, member: target });
    } else if (e.to === 'BACKUP' && e.from === 'MASTER') {
      for (const m of others) if (next[m]?.state === 'MASTER') apply(m, { type: 'sync', to: 'BACKUP', group: g.name, member: target });
    }
  }
  const after = groupState(g, next);
  return { states: next, effects, ...(after !== before ? { groupTransition: { from: before, to: after } } : {}) };
}
