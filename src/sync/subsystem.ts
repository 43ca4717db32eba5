/**
 * Connection sync: connection records <proto, CIP:CPort, VIP:VPort, RIP:RPort, flags, state> flow
 * from the active director to the other, so connections survive failover and failback.
 * - channel kernel: drives the kernel's IPVS sync daemons (IPVS_CMD_NEW_DAEMON / DEL_DAEMON).
 * - channel lvsd: lvsd's authenticated channel (engine.ts); the only kernel daemon is a backup
 *   daemon on lo through which received records are installed.
 * In mode auto it follows the VRRP instance named in sync.vrrp_instance (bus event 'vrrp.state'; the
 * state at start is read from the bus's last event, since the election may have become MASTER
 * before this subsystem subscribed).
 */
import { Gauge, Counter } from 'prom-client';
import type { Subsystem, SubsystemDeps } from '../core/subsystem.js';
import { errorMessage } from '../core/errors.js';
import type { ClusterConfig, ConfigDiff } from '../config/index.js';
import { planSync, wantedDaemons, type DaemonSpec, type SyncOp } from './plan.js';
import { SyncEngine, engineMetrics } from './engine.js';
import { SyncChannel, DEFAULT_FRAME_PAYLOAD } from './channel.js';
import { SYNC_GROUP_V4 } from './codec.js';
import type { HandOverEvents } from './adapters.js';
import { nodeIdOf } from './wire.js';
import { loadKeys, type SyncKey } from '../config/keys.js';
import { WorkerTableSource, STREAM_GROUP } from './source.js';
import { peerConnRow, sortRows } from './show.js';

/** The part of the IPVS dataplane the sync subsystem needs (NetlinkDataplane satisfies it). */
export interface SyncDaemonControl {
  newDaemon(d: DaemonSpec): Promise<void>;
  delDaemon(state: 'master' | 'backup'): Promise<void>;
  getDaemons(): Promise<DaemonSpec[]>;
  close(): Promise<void>;
}

/** The mechanisms of channel lvsd (src/sync/adapters.ts has the real ones). */
export interface LvsdSyncAdapters {
  /** The kernel's connection table files (/proc/net/ip_vs_conn), read by the table worker. */
  connTables: readonly string[];
  /** port: the hand-over's (the backup daemon on lo listens there); events: datagrams it dropped (its socket full), resent, lost. */
  openInjector: (port: number, events: HandOverEvents) => Promise<{ send(m: Buffer): Promise<void>; close(): Promise<void> }>;
  enableLoopbackMulticast: () => Promise<void>;
  interfaceIPv4: (name: string) => string | undefined;
  loadKeys?: (path: string) => SyncKey[];
}

export interface SyncSubsystemOptions {
  /** Opens the control; the daemon passes the netlink IPVS dataplane. Rejects when IPVS is absent. */
  open: () => Promise<SyncDaemonControl>;
  /** Needed for channel lvsd. */
  lvsd?: LvsdSyncAdapters;
}

/**
 * The kernel stream's master daemon (channel lvsd, active director; table-worker.ts): on lo, to
 * 224.0.0.81 at `sync.stream_port` (config/model.ts localSyncPorts), sync_maxlen 1 so that every
 * record leaves in its own buffer (ip_vs_sync.c clamps a master's maxlen to ≥ 1). Undefined when
 * stream_port is 0: no stream, the reads only.
 */
export function streamDaemon(s: { readonly sync_id: number; readonly stream_port: number }): DaemonSpec | undefined {
  return s.stream_port ? { state: 'master', mcast_ifn: 'lo', syncid: s.sync_id, maxlen: 1, mcast_group: STREAM_GROUP, mcast_port: s.stream_port, mcast_ttl: 1 } : undefined;
}

/**
 * The hand-over's backup daemon (channel lvsd, every role): on lo at 224.0.0.81:`sync.handover_port`,
 * where LoopbackInjector sends the peer's records. Not at sync.port (8848 by default): the channel
 * socket, bound to the wildcard address there, would receive every hand-over too.
 */
export function handoverDaemon(s: { readonly sync_id: number; readonly handover_port: number }): DaemonSpec {
  return { state: 'backup', mcast_ifn: 'lo', syncid: s.sync_id, mcast_group: SYNC_GROUP_V4, mcast_port: s.handover_port };
}

export function createSyncSubsystem(deps: SubsystemDeps, opts: SyncSubsystemOptions): Subsystem<ClusterConfig, ConfigDiff> {
  const log = deps.logger;
  const running = new Gauge({ name: 'lvsd_sync_daemon_running', help: 'Kernel IPVS sync daemon running (1) by role.', labelNames: ['state'], registers: [deps.registry] });
  const changes = new Counter({ name: 'lvsd_sync_daemon_changes_total', help: 'Sync daemon starts/stops by op and result.', labelNames: ['op', 'result'], registers: [deps.registry] });
  // The channel's metrics exist from the start (the catalogue and dashboards see them), not only once a channel runs.
  engineMetrics(deps.registry);
  let cfg: ClusterConfig | undefined;
  let ctl: SyncDaemonControl | undefined;
  let available = true;
  let lastError: string | undefined;
  /** The last converge could not read or change the kernel's sync daemons (health: down). */
  let failing: string | undefined;
  let vrrpState: string | undefined;
  let current: DaemonSpec[] = [];
  let chain: Promise<void> = Promise.resolve();
  let unsub: (() => void) | undefined;
  let engine: SyncEngine | undefined;
  let channel: SyncChannel | undefined;
  let injector: { send(m: Buffer): Promise<void>; close(): Promise<void> } | undefined;

  const following = () => cfg?.sync?.vrrp_instance ?? (cfg?.vrrp_instances.length === 1 ? cfg.vrrp_instances[0]!.name : undefined);
  /** Whether this director is the one whose connections are sent (channel lvsd). */
  const activeWanted = () => {
    const s = cfg?.sync;
    if (!s) return false;
    return s.mode === 'master' || s.mode === 'both' || (s.mode === 'auto' && vrrpState === 'MASTER');
  };

  const wanted = (): DaemonSpec[] => {
    const s = cfg?.sync;
    if (!s) return [];
    // Channel lvsd: one backup daemon on lo, in every role; records arrive through it. On the
    // active director, once the channel runs (lo is multicast then), also a master daemon on lo:
    // the kernel stream of new connections (table-worker.ts), sent to lvsd's own port on lo only
    // (TTL 1, lo), never to the network.
    if (s.channel === 'lvsd') {
      const stream = engine && activeWanted() ? streamDaemon(s) : undefined;
      return [handoverDaemon(s), ...(stream ? [stream] : [])];
    }
    const w = wantedDaemons(s.mode, vrrpState);
    const base = { mcast_ifn: s.interface, syncid: s.sync_id, mcast_group: s.group, mcast_port: s.port, mcast_ttl: s.ttl, ...(s.maxlen ? { maxlen: s.maxlen } : {}) };
    return [...(w.master ? [{ state: 'master' as const, ...base }] : []), ...(w.backup ? [{ state: 'backup' as const, ...base }] : [])];
  };

  const converge = (reason: string) => {
    chain = chain.then(async () => {
      if (!ctl) return;
      failing = undefined;
      let ops: SyncOp[] = [];
      try {
        current = await ctl.getDaemons();
        ops = planSync(wanted(), current);
      } catch (e) {
        lastError = failing = errorMessage(e);
        log.error({ err: lastError }, 'cannot read the kernel sync daemons');
        return;
      }
      const lvsdChannel = cfg?.sync?.channel === 'lvsd';
      for (const op of ops) {
        const state = op.op === 'stop' ? op.state : op.daemon.state;
        try {
          if (op.op === 'stop') await ctl.delDaemon(op.state);
          else await ctl.newDaemon(op.daemon);
          changes.inc({ op: op.op, result: 'ok' });
          log.info({ op: op.op, state, reason }, 'sync daemon changed');
        } catch (e) {
          changes.inc({ op: op.op, result: 'error' });
          if (lvsdChannel && state === 'master') {
            // The kernel stream is a speed-up, not a need: without it the table reads send everything.
            log.warn({ op, err: errorMessage(e) }, 'kernel stream daemon change failed: new connections wait for the table reads');
            continue;
          }
          lastError = failing = errorMessage(e);
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
      if (lvsdChannel && cfg?.sync) {
        const want = streamDaemon(cfg.sync);
        engine?.setStream(want && current.some((d) => d.state === 'master' && d.mcast_ifn === 'lo' && d.mcast_port === want.mcast_port) ? want.mcast_port! : 0);
      }
    });
    return chain;
  };

  async function startLvsd(c: ClusterConfig): Promise<void> {
    const s = c.sync!;
    const a = opts.lvsd;
    if (!a) throw new Error('channel lvsd is not available in this build');
    const keys = readKeys(s.key_file!);
    await a.enableLoopbackMulticast();
    const m = engineMetrics(deps.registry);
    injector = await a.openInjector(s.handover_port, {
      dropped: (n) => m.drops.inc({ reason: 'kernel_queue' }, n),
      resent: (n) => m.handoverResent.inc(n),
      lost: (n) => m.handoverLost.inc(n),
    });
    const local = s.peers.length ? undefined : a.interfaceIPv4(s.interface);
    if (!s.peers.length && !local) throw new Error(`interface ${s.interface} has no IPv4 address for the sync multicast`);
    let eng: SyncEngine | undefined;
    channel = await SyncChannel.open({
      node: nodeIdOf(c.global.router_id),
      keys,
      port: s.port,
      ...(local ? { localAddress: local } : {}),
      peers: s.peers.map((address) => ({ address, port: s.port })),
      epoch: BigInt(Date.now()),
      onFrame: (f, _from, lost) => void eng?.onFrame(f, lost).catch((e) => log.warn({ err: errorMessage(e) }, 'sync frame handling failed')),
      onDrop: (r, n) => eng?.drop(r, n),
    });
    const ch = channel;
    const inj = injector;
    const data = {
      paths: a.connTables,
      syncid: s.sync_id,
      maxMessage: Math.min(s.maxlen ?? DEFAULT_FRAME_PAYLOAD, DEFAULT_FRAME_PAYLOAD),
      pollMs: s.poll_interval,
      services: c.virtual_servers,
    };
    eng = new SyncEngine({
      log,
      registry: deps.registry,
      // Opened after the start's resync (openReader below) or at an activation before it: the services are read then.
      openSource: (onChanges, onError, onStreamState, onBacklog) => new WorkerTableSource({ ...data, services: cfg?.virtual_servers ?? data.services }, onChanges, onError, onStreamState, onBacklog),
      channel: ch,
      inject: (m) => inj.send(m),
      now: () => deps.clock.now(),
      wallNow: () => deps.clock.wallNow(),
      syncid: s.sync_id,
    });
    engine = eng;
    relookup = () => eng?.setServices(cfg!.virtual_servers);
    eng.setActive(activeWanted(), 'start');
    if (eng.isActive && s.mode !== 'both') {
      // An active director (a reload that reopened the channel, or mode master) has a passive peer,
      // and only an active one answers a resync request: nothing to wait for. Its first read sends
      // the peer the whole table.
      log.info({ mode: s.mode }, 'active director: no peer table to wait for');
    } else {
      // A (re)started director asks for the whole table and waits for it (bounded) before start()
      // or reload() returns: the election starts (or reloads, perhaps with a higher priority) after
      // sync, so a returning director cannot take the VIPs (and reset the connections the peer
      // opened) before its kernel holds them.
      const t0 = deps.clock.now();
      const got = await eng.resyncFromPeer(s.resync_timeout * 1000);
      log.info({ received: got, ms: Math.round(deps.clock.now() - t0) }, got ? 'peer table received' : 'no active peer answered the resync request');
    }
    // Before the election starts, so that no failover's first tick starts the table worker.
    eng.openReader();
    // The kernel stream's master daemon, if this director is active already (modes master/both).
    void converge('stream');
  }
  let relookup: (() => void) | undefined;
  /** The key file's keys, at start and at a reload that changed them (the adapters' reader in tests). */
  const readKeys = (path: string): SyncKey[] => (opts.lvsd?.loadKeys ?? loadKeys)(path);
  /** Whether two sync sections differ in `key` at most. */
  const sameBut = (a: object, b: object, key: string) => JSON.stringify({ ...a, [key]: undefined }) === JSON.stringify({ ...b, [key]: undefined });

  async function stopLvsd(): Promise<void> {
    await engine?.close();
    await channel?.close();
    await injector?.close();
    engine = undefined;
    channel = undefined;
    injector = undefined;
  }

  return {
    name: 'sync',

    async start(c) {
      cfg = c;
      unsub = deps.bus.on('vrrp.state', (ev) => {
        if (ev.instance !== following()) return;
        vrrpState = ev.to;
        engine?.setActive(activeWanted(), `vrrp ${ev.instance} ${ev.from}->${ev.to}`);
        if (cfg?.sync?.mode === 'auto') void converge(`vrrp ${ev.instance} ${ev.from}->${ev.to}`);
      });
      // The election starts first and may already be MASTER (an address owner is at once): read
      // the state it last published instead of waiting for a change that will not come.
      const f = following();
      if (f) vrrpState = deps.bus.last('vrrp.state', f)?.to ?? vrrpState;
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
      if (c.sync.channel === 'lvsd') {
        // After converge: the backup daemon on lo must be listening before the peer's table comes.
        try {
          await startLvsd(c);
        } catch (e) {
          available = false;
          lastError = errorMessage(e);
          log.error({ err: lastError }, 'lvsd sync channel unavailable');
        }
      }
    },
    async reload(next, prev, diff) {
      cfg = next;
      relookup?.();
      if (!diff.sync) return;
      if (engine && channel && next.sync && prev.sync && sameBut(prev.sync, next.sync, 'key_ids')) {
        // Only the key file's keys changed (a rotation step, docs/sync.md Keys): the new set signs
        // and verifies from now on; the channel, its sequence and the peer's state stay. A file
        // that no longer loads (it was valid when the reload validated it) keeps the running keys.
        channel.setKeys(readKeys(next.sync.key_file!));
        log.info({ keys: next.sync.key_ids, was: prev.sync.key_ids }, 'sync keys reloaded');
        return;
      }
      if ((next.sync?.channel === 'lvsd') !== Boolean(engine) || (engine && next.sync)) {
        // The channel's parameters (keys, peers, port) are read at open: reopen on any sync change.
        await stopLvsd();
        if (next.sync?.channel === 'lvsd') {
          try {
            await startLvsd(next);
          } catch (e) {
            lastError = errorMessage(e);
            log.error({ err: lastError }, 'lvsd sync channel unavailable');
          }
        }
      }
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
      // Whatever the active director opened since the last read goes out before we leave.
      await engine?.flush().catch(() => undefined);
      await stopLvsd();
      // Stopping lvsd leaves the kernel's connection table alone; the daemons go with us so a
      // stopped director no longer claims the sync channel.
      if (ctl && cfg?.sync) {
        // The election stopped first and released the VIPs. A kernel master daemon sends a partly
        // filled buffer only once it is 2 s old (IPVS_SYNC_FLUSH_TIME, checked every second) and
        // discards it when stopped: keep it that long, so the newest connections reach the peer.
        if (cfg.sync.channel === 'kernel' && current.some((d) => d.state === 'master')) await new Promise((r) => setTimeout(r, 3000));
        const keep = cfg;
        cfg = { ...keep, sync: undefined } as ClusterConfig;
        await converge('stop');
        cfg = keep;
      }
      await chain;
      await ctl?.close();
      ctl = undefined;
    },
    health() {
      if (!cfg?.sync) return { up: true };
      if (!available || !ctl) return { up: false, reason: `the kernel sync daemons cannot be controlled: ${lastError ?? 'not opened'}` };
      if (failing) return { up: false, reason: `the last sync daemon change failed: ${failing}` };
      return { up: true };
    },
    status() {
      return {
        configured: Boolean(cfg?.sync),
        available,
        mode: cfg?.sync?.mode,
        following: cfg?.sync?.vrrp_instance,
        vrrp_state: vrrpState ?? null,
        daemons: current,
        channel: cfg?.sync?.channel,
        // Which keys sign (the first) and verify: both directors should show the same during a rotation.
        ...(cfg?.sync?.key_ids ? { key_ids: cfg.sync.key_ids } : {}),
        ...(engine ? { active: engine.isActive, peer_connections: engine.peerTable().length } : {}),
        ...(lastError ? { last_error: lastError } : {}),
      };
    },
    /** GET /status/sync (`lvsd sync show`): the connections learned from the peer; null when channel lvsd does not run. */
    detail() {
      const now = deps.clock.now();
      return {
        channel: cfg?.sync?.channel ?? null,
        active: engine?.isActive ?? null,
        connections: engine ? sortRows(engine.peerTable().map((p) => peerConnRow(p.conn, (p.until - now) / 1000))) : null,
      };
    },
  };
}
