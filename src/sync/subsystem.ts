/**
 * Connection sync: drives the kernel's IPVS sync daemons (IPVS_CMD_NEW_DAEMON / DEL_DAEMON) so
 * connection records <proto, CIP:CPort, VIP:VPort, RIP:RPort, flags, state> flow from the master
 * director to the backup, and connections survive failover. In mode auto it follows the VRRP
 * instance named in sync.vrrp_instance (bus event 'vrrp.state').
 */
import { Gauge, Counter } from 'prom-client';
import type { Subsystem, SubsystemDeps } from '../core/subsystem.js';
import { errorMessage } from '../core/errors.js';
import type { ClusterConfig, ConfigDiff } from '../config/index.js';
import { planSync, wantedDaemons, type DaemonSpec, type SyncOp } from './plan.js';

/** The part of the IPVS dataplane the sync subsystem needs (NetlinkDataplane satisfies it). */
export interface SyncDaemonControl {
  newDaemon(d: DaemonSpec): Promise<void>;
  delDaemon(state: 'master' | 'backup'): Promise<void>;
  getDaemons(): Promise<DaemonSpec[]>;
  close(): Promise<void>;
}

export interface SyncSubsystemOptions {
  /** Opens the control; the daemon passes the netlink IPVS dataplane. Rejects when IPVS is absent. */
  open: () => Promise<SyncDaemonControl>;
}

export function createSyncSubsystem(deps: SubsystemDeps, opts: SyncSubsystemOptions): Subsystem<ClusterConfig, ConfigDiff> {
  const log = deps.logger;
  const running = new Gauge({ name: 'lvsd_sync_daemon_running', help: 'Kernel IPVS sync daemon running (1) by role.', labelNames: ['state'], registers: [deps.registry] });
  const changes = new Counter({ name: 'lvsd_sync_daemon_changes_total', help: 'Sync daemon starts/stops by op and result.', labelNames: ['op', 'result'], registers: [deps.registry] });
  let cfg: ClusterConfig | undefined;
  let ctl: SyncDaemonControl | undefined;
  let available = true;
  let lastError: string | undefined;
  let vrrpState: string | undefined;
  let current: DaemonSpec[] = [];
  let chain: Promise<void> = Promise.resolve();
  let unsub: (() => void) | undefined;

  const wanted = (): DaemonSpec[] => {
    const s = cfg?.sync;
    if (!s) return [];
    const w = wantedDaemons(s.mode, vrrpState);
    const base = { mcast_ifn: s.interface, syncid: s.sync_id, mcast_group: s.group, mcast_port: s.port, mcast_ttl: s.ttl, ...(s.maxlen ? { maxlen: s.maxlen } : {}) };
    return [...(w.master ? [{ state: 'master' as const, ...base }] : []), ...(w.backup ? [{ state: 'backup' as const, ...base }] : [])];
  };

  const converge = (reason: string) => {
    chain = chain.then(async () => {
      if (!ctl) return;
      let ops: SyncOp[] = [];
      try {
        current = await ctl.getDaemons();
        ops = planSync(wanted(), current);
      } catch (e) {
        lastError = errorMessage(e);
        log.error({ err: lastError }, 'cannot read the kernel sync daemons');
        return;
      }
      for (const op of ops) {
        try {
          if (op.op === 'stop') await ctl.delDaemon(op.state);
          else await ctl.newDaemon(op.daemon);
          changes.inc({ op: op.op, result: 'ok' });
          log.info({ op: op.op, state: op.op === 'stop' ? op.state : op.daemon.state, reason }, 'sync daemon changed');
        } catch (e) {
          changes.inc({ op: op.op, result: 'error' });
          lastError = errorMessage(e);
          log.error({ op, err: lastError }, 'sync daemon change failed');
        }
      }
      try {
        current = await ctl.getDaemons();
      } catch {
        /* keep the last view */
      }
      running.set({ state: 'master' }, current.some((d) => d.state === 'master') ? 1 : 0);
      running.set({ state: 'backup' }, current.some((d) => d.state === 'backup') ? 1 : 0);
    });
    return chain;
  };

  return {
    name: 'sync',
    async start(c) {
      cfg = c;
      unsub = deps.bus.on('vrrp.state', (ev) => {
        const follow = cfg?.sync?.vrrp_instance ?? (cfg?.vrrp_instances.length === 1 ? cfg.vrrp_instances[0]!.name : undefined);
        if (ev.instance !== follow) return;
        vrrpState = ev.to;
        if (cfg?.sync?.mode === 'auto') void converge(`vrrp ${ev.instance} ${ev.from}->${ev.to}`);
      });
      if (!c.sync) return;
      try {
        ctl = await opts.open();
      } catch (e) {
        available = false;
        lastError = errorMessage(e);
        log.error({ err: lastError }, 'connection sync unavailable: the kernel sync daemon cannot be controlled');
        return;
      }
      await converge('start');
    },
    async reload(next, _prev, diff) {
      cfg = next;
      if (!diff.sync) return;
      if (next.sync && !ctl && available) {
        try {
          ctl = await opts.open();
        } catch (e) {
          available = false;
          lastError = errorMessage(e);
        }
      }
      await converge('reload');
    },
    async stop() {
      unsub?.();
      // Stopping lvsd leaves the kernel's connection table alone; the daemons go with us so a
      // stopped director no longer claims the sync channel.
      if (ctl && cfg?.sync) {
        const keep = cfg;
        cfg = { ...keep, sync: undefined } as ClusterConfig;
        await converge('stop');
        cfg = keep;
      }
      await chain;
      await ctl?.close();
      ctl = undefined;
    },
    status() {
      return {
        configured: Boolean(cfg?.sync),
        available,
        mode: cfg?.sync?.mode,
        following: cfg?.sync?.vrrp_instance,
        vrrp_state: vrrpState ?? null,
        daemons: current,
        ...(lastError ? { last_error: lastError } : {}),
      };
    },
  };
}
