/**
 * Which kernel sync daemons should run (pure). The IPVS sync protocol has a master daemon that
 * multicasts connection records and a backup daemon that installs them (net/netfilter/ipvs/ip_vs_sync.c).
 * Mode auto follows a VRRP instance like keepalived's lvs_sync_daemon: the master director sends,
 * every other state receives, so at takeover the new master already holds the connections.
 */
import type { IpvsDaemon } from '../ipvs/model.js';

export type SyncMode = 'auto' | 'master' | 'backup' | 'both';

export interface WantedDaemons {
  readonly master: boolean;
  readonly backup: boolean;
}

export function wantedDaemons(mode: SyncMode, vrrpState: string | undefined): WantedDaemons {
  switch (mode) {
    case 'master':
      return { master: true, backup: false };
    case 'backup':
      return { master: false, backup: true };
    case 'both':
      return { master: true, backup: true };
    case 'auto':
      // Unknown/INIT/FAULT/BACKUP all receive: a director that is not master must not send.
      return { master: vrrpState === 'MASTER', backup: vrrpState !== 'MASTER' };
  }
}

/** A kernel sync daemon as the IPVS dataplane reads and writes it. */
export type DaemonSpec = IpvsDaemon;

export type SyncOp = { op: 'start'; daemon: DaemonSpec } | { op: 'stop'; state: 'master' | 'backup' };

const same = (a: DaemonSpec, b: DaemonSpec) =>
  a.mcast_ifn === b.mcast_ifn &&
  a.syncid === b.syncid &&
  (a.mcast_group ?? '224.0.0.81') === (b.mcast_group ?? '224.0.0.81') &&
  (a.mcast_port ?? 8848) === (b.mcast_port ?? 8848) &&
  (a.mcast_ttl ?? 1) === (b.mcast_ttl ?? 1) &&
  (a.maxlen === undefined || b.maxlen === undefined || a.maxlen === b.maxlen);

/** Ops turning the running daemons into the wanted ones; a daemon with other parameters is restarted. */
export function planSync(wanted: readonly DaemonSpec[], running: readonly DaemonSpec[]): SyncOp[] {
  const ops: SyncOp[] = [];
  for (const state of ['master', 'backup'] as const) {
    const w = wanted.find((d) => d.state === state);
    const r = running.find((d) => d.state === state);
    if (r && (!w || !same(w, r))) ops.push({ op: 'stop', state });
    if (w && (!r || !same(w, r))) ops.push({ op: 'start', daemon: w });
  }
  return ops;
}
