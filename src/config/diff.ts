import type { ClusterConfig } from './model.js';

export interface KeyedDiff {
  readonly added: readonly string[];
  readonly removed: readonly string[];
  readonly changed: readonly string[];
}

/** What changed between two configs, keyed by VRRP instance name and virtual server key. */
export interface ConfigDiff {
  readonly global: boolean;
  readonly vrrp_instances: KeyedDiff;
  readonly vrrp_scripts: KeyedDiff;
  readonly vrrp_sync_groups: KeyedDiff;
  readonly virtual_servers: KeyedDiff;
  readonly sync: boolean;
  readonly empty: boolean;
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

function keyed<T>(prev: readonly T[], next: readonly T[], key: (t: T) => string): KeyedDiff {
  const p = new Map(prev.map((x) => [key(x), x]));
  const n = new Map(next.map((x) => [key(x), x]));
  const added: string[] = [];
  const removed: string[] = [];
  const changed: string[] = [];
  for (const [k, v] of n) {
    if (!p.has(k)) added.push(k);
    else if (!same(p.get(k), v)) changed.push(k);
  }
  for (const k of p.keys()) if (!n.has(k)) removed.push(k);
  return { added, removed, changed };
}

export function diffConfig(prev: ClusterConfig, next: ClusterConfig): ConfigDiff {
  const d = {
    global: !same(prev.global, next.global),
    vrrp_instances: keyed(prev.vrrp_instances, next.vrrp_instances, (i) => i.name),
    vrrp_scripts: keyed(prev.vrrp_scripts, next.vrrp_scripts, (s) => s.name),
    vrrp_sync_groups: keyed(prev.vrrp_sync_groups, next.vrrp_sync_groups, (g) => g.name),
    virtual_servers: keyed(prev.virtual_servers, next.virtual_servers, (v) => v.key),
    sync: !same(prev.sync, next.sync),
  };
  const emptyK = (k: KeyedDiff) => !k.added.length && !k.removed.length && !k.changed.length;
  return {
    ...d,
    empty: !d.global && !d.sync && emptyK(d.vrrp_instances) && emptyK(d.vrrp_scripts) && emptyK(d.vrrp_sync_groups) && emptyK(d.virtual_servers),
  };
}
