/**
 * The imperative shell around the pure VRRP machine (machine.ts, syncgroup.ts, priority.ts): real
 * timers from the injected Clock, the transport, VIP ownership, GARP/NA, notify scripts, tracking,
 * metrics and logs. One ElectionRuntime holds every instance of a daemon; sync-group members are
 * stepped together through `groupStep`.
 *
 * Timing rule ("a late timer must not fake a master-down"): Node runs expired timers *before* it
 * polls sockets in a loop turn, so after a stall the master_down callback would run while the
 * master's adverts sit unread in the socket. The runtime therefore never acts on a master_down
 * expiry before reading the sockets: the expiry first polls every transport synchronously (the
 * addon's recvmsg until EAGAIN), so waiting adverts are fed first; with a transport that cannot do
 * that, the expiry is deferred to the check phase (setImmediate), after the poll phase of the same
 * turn, and there, the machine's late guard re-checks once when the expiry itself was late. After
 * a synchronous read the expiry says so (`socketsRead`) and the guard does not apply: nothing can be
 * waiting, and the adverts that were are dated by their kernel receive time. (Measured: with the
 * guard applied anyway, a wake-up 3+ ms late on a loaded 2-core machine cost ~5 ms more outage in
 * 1 of 5 takeovers at 0.01 s adverts.)
 */
import type { Registry } from 'prom-client';
import { Counter, Gauge } from 'prom-client';
import { readFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import type { Clock, TimerHandle } from '../core/clock.js';
import type { Logger } from '../core/log.js';
import type { Bus } from '../core/bus.js';
import { parseIp } from '../core/address.js';
import { errorMessage } from '../core/errors.js';
import type { VrrpInstanceConfig, VrrpScriptConfig, VrrpSyncGroupConfig, ClusterConfig } from '../config/model.js';
import type { Advert, DropReason } from './codec.js';
import { createInstance, currentMaster, lateGraceAbove, step, type Effect, type InstanceState, type TimerName, type VrrpEvent, type VrrpState } from './machine.js';
import { groupStep, groupState, type SyncGroupDef } from './syncgroup.js';
import { effectivePriority, initialScriptState, scriptResult, trackingEvents, type PriorityResult, type ScriptState, type Tracking } from './priority.js';
import type { VrrpTransport } from './transport.js';
import type { VipSet } from './vips.js';
import { Announcer, type AnnounceTarget } from './announce.js';
import { notifyJobs, type Notifier } from './notify.js';

// ------------------------------------------------------------------ metrics

export interface ElectionMetrics {
  readonly state: Gauge<'instance' | 'state'>;
  readonly transitions: Counter<'instance' | 'from' | 'to'>;
  readonly advertsSent: Counter<'instance'>;
  readonly advertsReceived: Counter<'instance'>;
  readonly advertsLate: Counter<'instance'>;
  readonly advertsBackstop: Counter<'instance'>;
  readonly takeoverThread: Counter<'instance'>;
  readonly dropped: Counter<'instance' | 'reason'>;
  readonly garpSent: Counter<'instance'>;
  readonly masterInfo: Gauge<'instance' | 'address'>;
  readonly lateTimers: Counter<'instance'>;
  readonly vipRestored: Counter<'instance'>;
}

function metric<T>(registry: Registry, name: string, make: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? make();
}

export function createElectionMetrics(registry: Registry): ElectionMetrics {
  const r = [registry];
  return {
    state: metric(registry, 'lvsd_vrrp_state', () => new Gauge({ name: 'lvsd_vrrp_state', help: 'VRRP instance state: 1 for the current state', labelNames: ['instance', 'state'] as const, registers: r })),
    transitions: metric(registry, 'lvsd_vrrp_transitions_total', () => new Counter({ name: 'lvsd_vrrp_transitions_total', help: 'VRRP state transitions', labelNames: ['instance', 'from', 'to'] as const, registers: r })),
    advertsSent: metric(registry, 'lvsd_vrrp_adverts_sent_total', () => new Counter({ name: 'lvsd_vrrp_adverts_sent_total', help: 'VRRP adverts sent', labelNames: ['instance'] as const, registers: r })),
    advertsLate: metric(registry, 'lvsd_vrrp_adverts_late_total', () => new Counter({ name: 'lvsd_vrrp_adverts_late_total', help: 'Adverts sent more than one advert interval after they were due (this process was held up: the backups saw that much more silence)', labelNames: ['instance'] as const, registers: r })),
    takeoverThread: metric(registry, 'lvsd_vrrp_takeover_thread_total', () => new Counter({ name: 'lvsd_vrrp_takeover_thread_total', help: 'Takeovers the takeover thread carried out at the master_down deadline while the event loop was held up past it', labelNames: ['instance'] as const, registers: r })),
    advertsBackstop: metric(registry, 'lvsd_vrrp_adverts_backstop_total', () => new Counter({ name: 'lvsd_vrrp_adverts_backstop_total', help: 'Adverts the backstop threads sent for a Master whose event loop was held up (or whose CPU was frozen) past 1.5 advert intervals', labelNames: ['instance'] as const, registers: r })),
    advertsReceived: metric(registry, 'lvsd_vrrp_adverts_received_total', () => new Counter({ name: 'lvsd_vrrp_adverts_received_total', help: 'Valid VRRP adverts received', labelNames: ['instance'] as const, registers: r })),
    dropped: metric(registry, 'lvsd_vrrp_packets_dropped_total', () => new Counter({ name: 'lvsd_vrrp_packets_dropped_total', help: 'VRRP packets dropped, by reason', labelNames: ['instance', 'reason'] as const, registers: r })),
    garpSent: metric(registry, 'lvsd_vrrp_garp_sent_total', () => new Counter({ name: 'lvsd_vrrp_garp_sent_total', help: 'Gratuitous ARPs / unsolicited NAs sent', labelNames: ['instance'] as const, registers: r })),
    masterInfo: metric(registry, 'lvsd_vrrp_master_info', () => new Gauge({ name: 'lvsd_vrrp_master_info', help: 'Address of the current master as seen by this instance (value 1)', labelNames: ['instance', 'address'] as const, registers: r })),
    lateTimers: metric(registry, 'lvsd_vrrp_late_timers_total', () => new Counter({ name: 'lvsd_vrrp_late_timers_total', help: 'master_down expiries that fired late, so the master was given a grace before taking over', labelNames: ['instance'] as const, registers: r })),
    vipRestored: metric(registry, 'lvsd_vrrp_vip_restored_total', () => new Counter({ name: 'lvsd_vrrp_vip_restored_total', help: 'VIPs re-added after being removed while master', labelNames: ['instance'] as const, registers: r })),
  };
}

const STATES: readonly VrrpState[] = ['INIT', 'BACKUP', 'MASTER', 'FAULT'];
const URGENT = new Set<Effect['type']>(['add_vips', 'garp']);
/**
 * Bookkeeping effects (log line, metrics, bus event, notify scripts) of a transition whose data
 * plane went out in the takeover call wait this long, in order with any that follow: the new
 * master's first milliseconds belong to the traffic the GARP just drew to it. Measured on the
 * 0.01 s failover bench (2 CPUs shared with the services and the client): the ~1-2 ms of JavaScript
 * those effects cost, run right after the call, delayed the new master's first answer by ~0.4 ms at
 * the median (GARP → its first ARP for the client: 3.87 → 3.17 ms with 10 ms; keepalived 2.6-3.0).
 */
const POSTPONE_MS = 10;
/**
 * Quiet window after a takeover call: the machine's step for that expiry — and any event for the
 * instance that arrives meanwhile, queued behind it in order — runs this long after the call (at
 * most 0.8 advert intervals; the Adver_Timer counts from the call, so the next advert is not
 * delayed). The call already did what ends the client's outage (VIPs, first GARP round, first
 * advert); the step's JavaScript (0.3-1.4 ms: timers, metrics, announce schedule, cold on a
 * process's first takeover) would otherwise run right when the services on this host answer the
 * clients the GARP drew. Measured on the 0.01 s failover bench (2 CPUs shared with the services):
 * A/B interleaved, GARP → the new master's first ARP for the client 3.18 ms without, 2.68 ms with a
 * 4 ms window (keepalived 2.49), 4.66 ms with 2 ms of busy JavaScript after the call instead; `perf
 * sched` then showed the cold echo service of slow trials still answering (up to ~3.5 ms after the
 * GARP) when a 4 ms window ended, hence 10 ms.
 */
const QUIET_MS = 10;
const BOOKKEEPING = new Set<Effect['type']>(['become', 'notify']);
/** How early the master_down host timer wakes to meet the deadline precisely (see armTimer). */
const PRECISE_WAKE_MS = 3;
const WAKE_OVERSHOOT_MS = 0.15;
/** The longest sleep the takeover call is asked for (its own limit is 10 ms). */
const MAX_CALL_WAIT_MS = PRECISE_WAKE_MS + 2;
/**
 * How often a Backup re-runs the takeover's JavaScript dry (warmTakeover). V8 drops the bytecode and
 * feedback of a function that has not run for a few major GCs (bytecode flushing), and a backup may
 * not take over for weeks: re-running keeps the first takeover from compiling lazily inside its 3 ms.
 */
const WARM_EVERY_MS = 10_000;
/** A warm-up is skipped when the master_down deadline is nearer than this (ms), and retried after WARM_RETRY_MS. */
const WARM_CLEAR_MS = 20;
const WARM_RETRY_MS = 7;
/** Dry runs per warm-up: V8 allocates feedback vectors after 8 calls (--invocation-count-for-feedback-allocation). */
const WARM_ROUNDS = 12;
/** Largest advert age (kernel receive stamp) credited to the Master_Down_Timer, ms (see onAdvert). */
const MAX_ADVERT_AGE_MS = 5;
const sleepCell = new Int32Array(new SharedArrayBuffer(4));
/** Block the thread for `ms` (futex wait; Atomics.wait is allowed on Node's main thread). */
function atomicsSleep(ms: number): void {
  Atomics.wait(sleepCell, 0, 0, ms);
}

// ------------------------------------------------------------------ adapters per instance

/** What the runtime needs per instance, built by the subsystem (real) or a test (fakes). */
export interface InstanceIo {
  readonly transport: VrrpTransport;
  readonly vips: VipSet;
  /**
   * Announcer plus what it needs; absent when GARP is unavailable (logged by the factory). `mac` is
   * the instance interface's; `macOf` gives the MAC of another interface a VIP is put on (`device`).
   */
  readonly announce?: { readonly announcer: Announcer; readonly ifname: string; readonly mac: Uint8Array; readonly macOf?: (ifname: string) => Uint8Array };
  /** The data-plane part of a takeover in one native call, when every mechanism supports it. */
  readonly fast?: FastTakeover;
  /** Sends the Master's advert when this process is held up (see AdvertBackstop); absent with fakes or when disabled. */
  readonly backstop?: AdvertBackstop;
  /** Carries out a takeover at the master_down deadline when this process is held up then (see TakeoverThread); absent with fakes or when disabled. */
  readonly thread?: TakeoverThread;
}

/**
 * Stands in for a held-up event loop at a Backup's master_down deadline: loaded with what the
 * takeover does (as FastTakeover.prepare) and armed with each new deadline, threads outside the
 * event loop (native, two CPUs, SCHED_FIFO when allowed: afpacket.c tk*) sleep to it and do it there,
 * unless a datagram is waiting in the instance's socket or being read from it by the event loop
 * (the loop then decides: it may be the master's advert), or they woke more than `lateLimitMs` past
 * it (a frozen machine: the late guard decides). The runtime collects the decision at its own wake
 * and adopts what was done, as after the takeover call.
 */
export interface TakeoverThread {
  /** What a takeover does (as FastTakeover.prepare; disarms); false when a mechanism is not ready. */
  load(targets: readonly AnnounceTarget[] | undefined, advert: Advert | undefined, rounds: number): boolean;
  /** Act `inMs` from now (nothing loaded: ignored); `lateLimitMs` < 0: no limit. */
  arm(inMs: number, lateLimitMs: number): void;
  /** It does not act after this returns. */
  disarm(): void;
  /** It acted on the current arm and wait() has not collected that yet. */
  fired(): boolean;
  /**
   * The current arm's decision, collected once, waiting up to `timeoutMs` (≤ 20) for it: what was done,
   * or pending (a datagram, or too late). Undefined when none was made by then (or nothing armed):
   * the arm is then cancelled.
   */
  wait(timeoutMs: number): FastResult | undefined;
  close(): void;
}

/**
 * Stands in for a held-up event loop while Master: once armed with the Master's advert it sends it
 * whenever no advert was sent for 1.5 advert intervals (two threads outside the event loop, on
 * two CPUs: see native/afpacket/afpacket.c). The runtime still sends every advert itself and kicks it
 * each time, and disarms it before anything that leaves Master takes effect.
 */
export interface AdvertBackstop {
  /** Arm (or re-arm with a new priority): false when the advert cannot be armed (not started, socket closed). */
  arm(a: Advert): boolean;
  /** An advert was just sent by the runtime; returns how many the backstop sent since the last kick. */
  kick(): number;
  /** No backstop advert goes out once this returns. */
  disarm(): void;
  close(): void;
}

/**
 * Prepares the one call that, at a master_down deadline the machine will act on, checks the VRRP
 * socket for a waiting advert and otherwise adds the VIPs, sends their announcements (`rounds`
 * rounds: the whole first burst when it has no spacing) and the new Master's first advert (see
 * armTimer). `run(waitMs, lateLimitMs)` first sleeps `waitMs` (≤ 10) in the call, to the deadline;
 * it then reports 'pending' (an advert may be waiting, or it woke more than `lateLimitMs` (≥ 0)
 * past that target: nothing done) or what it did, with how far past the target
 * it acted (`lateMs`).
 */
export interface FastTakeover {
  prepare(targets: readonly AnnounceTarget[] | undefined, advert: Advert | undefined, rounds: number): { run(waitMs?: number, lateLimitMs?: number): FastResult } | undefined;
}
export type FastResult =
  | { readonly pending: true; readonly lateMs?: number }
  | { readonly pending: false; readonly lateMs?: number; readonly vipsAdded: boolean; /** whole rounds of frames sent */ readonly rounds: number; readonly advertSent: boolean };

export interface RuntimeDeps {
  readonly clock: Clock;
  readonly logger: Logger;
  readonly bus: Bus;
  readonly metrics: ElectionMetrics;
  readonly notifier: Notifier;
  readonly makeIo: (cfg: VrrpInstanceConfig, log: Logger) => InstanceIo;
  /** Runs fn after pending socket reads of this loop turn (default setImmediate). */
  readonly defer?: (fn: () => void) => void;
  /** Blocks for a short time, ms, to meet the master_down deadline (default a futex wait). */
  readonly sleepSync?: (ms: number) => void;
  /** Link state of an interface (default: /sys/class/net/IF/operstate). */
  readonly linkUp?: (ifname: string) => boolean;
  /** Milliseconds between link-state polls (default 500). */
  readonly linkPollMs?: number;
}

interface Inst {
  cfg: VrrpInstanceConfig;
  io: InstanceIo;
  log: Logger;
  timers: Map<TimerName, TimerHandle>;
  vipChain: Promise<void>;
  tracking: Tracking;
  prio: PriorityResult;
  masterLabel?: string;
  started: boolean;
  /** VIP operations issued and not yet settled. */
  vipPending: number;
  /** add_vips of the current effect batch was issued synchronously (GARP may follow at once). */
  addedNow: boolean;
  /** Resolves a stop() waiting for the stop handover to end. */
  handoverEnded?: () => void;
  /** Announce targets (interfaces, MACs, VIPs) worked out at start; their frames are prebuilt. */
  targets?: AnnounceTarget[];
  /**
   * Set while the step of an expiry that went through the takeover call is applied: whether that call
   * added the VIPs, how many rounds of frames and whether the advert it sent (apply adopts them
   * instead of doing them again; `advert` is cleared once the step's send_advert is adopted).
   */
  fastDone?: { vips: boolean; rounds: number; advert: boolean; /** which did it (logged as dataplane) */ by: 'takeover_call' | 'takeover_thread' };
  /** The quiet window after a takeover call (QUIET_MS): the held step first, then the instance's events that arrived meanwhile. */
  quiet?: { readonly queue: Array<() => void>; readonly timer: TimerHandle };
  /** The priority the backstop is armed with (undefined: disarmed). */
  backstopPriority?: number;
  /** The backstop threw: not used again for this instance. */
  backstopFailed?: boolean;
  /** Monotonic receive time of the last accepted advert (for the takeover log's silence_ms). */
  lastHeard?: number;
  /** Late-advert warnings: when the last was logged, and how many were not logged since. */
  lateAdvertLog?: { at: number; suppressed: number };
  /** The last master_down expiry: how long the master had been silent and how late the timer woke. */
  lastExpiry?: { silenceMs: number; lateMs: number; wake?: { earlyMs: number; prepMs: number } };
  /** The periodic takeover warm-up (warmTakeover). */
  warmTimer?: TimerHandle;
  /**
   * The takeover thread's state: the advert priority its load was for (-1: none; undefined: not loaded
   * or to be reloaded), the master_down timer it is armed for, its deadline and that timer's wake.
   */
  thread?: { key?: number; armedFor?: TimerHandle; due?: number; wake?: () => void; /** armThread calls, to tell a step that re-armed */ arms: number };
  /** The takeover thread threw: not used again for this instance. */
  threadFailed?: boolean;
}

/** The advert's VIP bytes per instance config, parsed once (a master sends up to 100 adverts/s). */
const advertAddresses = new WeakMap<VrrpInstanceConfig, Uint8Array[]>();

function advertOf(c: VrrpInstanceConfig, priority: number): Advert {
  let addresses = advertAddresses.get(c);
  if (!addresses) advertAddresses.set(c, (addresses = c.virtual_addresses.map((v) => parseIp(v.address)!.bytes)));
  return { version: c.version, vrid: c.virtual_router_id, priority, intervalMs: Math.round(c.advert_interval * 1000), addresses };
}

/** Default link check: operstate up/unknown (loopback-like devices report unknown). */
export function sysfsLinkUp(ifname: string): boolean {
  try {
    const s = readFileSync(`/sys/class/net/${ifname}/operstate`, 'utf8').trim();
    return s === 'up' || s === 'unknown';
  } catch {
    return false;
  }
}

export class ElectionRuntime {
  private readonly insts = new Map<string, Inst>();
  /** Bookkeeping effects waiting after a takeover call (see POSTPONE_MS), in order. */
  private readonly postponed: Array<() => void> = [];
  private postponeTimer: TimerHandle | undefined;
  private states: Record<string, InstanceState> = {};
  private groups = new Map<string, SyncGroupDef & { notify?: VrrpSyncGroupConfig['notify'] }>();
  private readonly scripts = new Map<string, { cfg: VrrpScriptConfig; st: ScriptState; timer?: TimerHandle; running: boolean; stopped: boolean }>();
  private readonly quorum = new Map<string, boolean>();
  private linkTimer: TimerHandle | undefined;
  private readonly linkState = new Map<string, boolean>();
  private readonly defer: (fn: () => void) => void;
  private readonly sleepSync: (ms: number) => void;
  private readonly linkUp: (ifname: string) => boolean;

  constructor(private readonly d: RuntimeDeps) {
    this.defer = d.defer ?? ((fn) => void setImmediate(fn));
    this.sleepSync = d.sleepSync ?? atomicsSleep;
    this.linkUp = d.linkUp ?? sysfsLinkUp;
  }

  // ---------------------------------------------------------------- lifecycle

  /** Start the given instances of `cfg` (all when `names` is omitted). */
  async start(cfg: ClusterConfig, names?: readonly string[]): Promise<void> {
    this.groups = new Map(cfg.vrrp_sync_groups.map((g) => [g.name, { name: g.name, members: g.members, ...(g.notify ? { notify: g.notify } : {}) }]));
    const todo = cfg.vrrp_instances.filter((i) => !names || names.includes(i.name));
    for (const ic of todo) await this.startInstance(ic, cfg);
    this.syncScripts(cfg);
    if (!this.linkTimer) this.pollLinks();
  }

  private async startInstance(cfg: VrrpInstanceConfig, cluster: ClusterConfig): Promise<void> {
    const log = this.d.logger.child({ instance: cfg.name });
    const io = this.d.makeIo(cfg, log);
    const la = io.transport.localAddress;
    const primaryText = la.length === 4 ? Array.from(la).join('.') : bytesToV6(la);
    const inst: Inst = {
      cfg,
      io,
      log,
      timers: new Map(),
      vipChain: Promise.resolve(),
      tracking: { interfaces: [], scripts: [], virtualServers: [] },
      prio: { priority: cfg.priority, faults: [] },
      started: false,
      vipPending: 0,
      addedNow: false,
    };
    this.insts.set(cfg.name, inst);
    this.states[cfg.name] = createInstance(
      {
        name: cfg.name,
        version: cfg.version,
        vrid: cfg.virtual_router_id,
        priority: cfg.priority,
        advertIntervalMs: Math.round(cfg.advert_interval * 1000),
        preempt: cfg.preempt,
        preemptDelayMs: Math.round(cfg.preempt_delay * 1000),
        primaryAddress: primaryText,
        priorityZeroOnStop: cfg.priority_zero_on_stop,
        stopHandover: cfg.stop_handover,
        initialState: cfg.initial_state,
      },
      this.d.clock.now(),
    );
    for (const s of STATES) this.d.metrics.state.set({ instance: cfg.name, state: s }, s === 'INIT' ? 1 : 0);
    // Leftovers from a crashed previous run: we are not master yet, so the VIPs must not be here.
    const removed = await io.vips.release();
    this.prepareTakeover(inst);
    if (removed) log.warn({ removed }, 'removed VIPs left by a previous run');
    this.recomputeTracking(inst, cluster);
    io.transport.start({
      onAdvert: (r) => this.onAdvert(inst, r.advert, r.src, r.ageMs),
      onDrop: (reason, src) => this.onDrop(inst, reason, src),
    });
    inst.started = true;
    const warmMs = this.warmTakeover(inst);
    if (warmMs !== undefined) log.debug({ warm_ms: Math.round(warmMs * 100) / 100, rounds: WARM_ROUNDS }, 'takeover path warmed');
    this.dispatch(cfg.name, { type: 'startup' });
    log.info({ vrid: cfg.virtual_router_id, version: cfg.version, interface: cfg.interface, priority: cfg.priority, source: primaryText }, 'VRRP instance started');
  }

  /**
   * Do ahead of time what the first takeover would otherwise do cold: encode the VIP messages, open
   * the AF_PACKET socket, build the frames, encode our advert without sending it (warmTakeover, after the transport is
   * open, runs the machine's Backup→Master path dry). Measured: the first takeover spent 1-6 ms
   * in lazily compiled code before this; keepalived (C) has no such cost.
   */
  private prepareTakeover(inst: Inst): void {
    const c = inst.cfg;
    try {
      inst.io.vips.prepare();
      const a = inst.io.announce;
      // Every interface the VIPs are announced on (device), not only the instance's.
      if (a) {
        const targets = announceTargets(c, a, inst.log);
        a.announcer.prepareAll(targets);
        inst.targets = targets;
        Announcer.rehearse(targets, c.garp);
      }
      inst.io.transport.rehearse?.(advertOf(c, c.priority));
      // The machine's Backup→Master path: warmTakeover, once the transport is open.
    } catch (e) {
      inst.log.debug({ err: errorMessage(e) }, 'takeover preparation incomplete');
    }
  }

  /**
   * Run the JavaScript of a master_down wake dry, WARM_ROUNDS times, on throwaway Backup states: the
   * machine's steps, the dry expiry step (expiryTakesOver) and the takeover call's
   * prepare (encodes the advert, builds its arguments; run() is not called). Measured before this
   * (session 8, perf with --perf-basic-prof): a cold first takeover spent 2.5-5.8 ms of CPU in the
   * 25 ms before the deadline (LoadIC_NoFeedback, lazy compilation, the advert checksum), with 3 ms
   * to spare. Once after the transport is open (the takeover call needs its socket), then every
   * WARM_EVERY_MS while Backup, away from a master_down deadline. Returns how long it took (ms), or
   * undefined when it did not run.
   */
  private warmTakeover(inst: Inst): number | undefined {
    if (inst.warmTimer) this.d.clock.clearTimeout(inst.warmTimer);
    const s0 = this.states[inst.cfg.name];
    // Not within a master_down wake's reach (the machine's deadline): retry shortly instead.
    const deadline = s0?.timers.master_down;
    const near = deadline !== undefined && deadline - this.d.clock.now() < WARM_CLEAR_MS;
    inst.warmTimer = this.d.clock.setTimeout(() => this.warmTakeover(inst), near ? WARM_RETRY_MS : WARM_EVERY_MS);
    if (near || !s0 || (s0.state !== 'BACKUP' && s0.state !== 'INIT')) return undefined;
    const c = inst.cfg;
    const t0 = this.d.clock.now();
    try {
      const backup = s0.state === 'BACKUP' ? s0 : step(s0, { type: 'startup' }, t0).state;
      if (backup.state !== 'BACKUP') return undefined; // an address owner or initial_state MASTER
      const rounds = c.garp.interval > 0 ? 1 : c.garp.master_repeat;
      for (let i = 0; i < WARM_ROUNDS; i++) {
        const now = t0 + i;
        // An advert a Backup accepts (priority 255 ≥ ours), then its expiry on time.
        const seen = step(backup, { type: 'advert', from: '0.0.0.0', priority: 255, maxAdvertMs: backup.params.advertIntervalMs }, now).state;
        const due = seen.timers.master_down ?? now;
        const plan = this.expiryTakesOver(inst, due, seen);
        if (plan) inst.io.fast?.prepare(inst.targets, plan.advertPriority === undefined ? undefined : advertOf(c, plan.advertPriority), rounds);
        step(seen, { type: 'timer', name: 'master_down', lateMs: 0, socketsRead: true }, due);
      }
      // The takeover thread's load is redone at the next arm: an interface re-created meanwhile has
      // a new index, which its netlink payloads carry.
      if (inst.thread) inst.thread.key = undefined;
    } catch (e) {
      inst.log.debug({ err: errorMessage(e) }, 'takeover warm-up incomplete');
    }
    return this.d.clock.now() - t0;
  }

  /** Graceful stop of some instances (all when omitted): priority-0 advert if master, VIPs removed. */
  async stop(names?: readonly string[]): Promise<void> {
    // Held steps first (their bookkeeping joins the postponed queue), then that queue: nothing lost or reordered.
    for (const inst of this.insts.values()) this.endQuiet(inst);
    this.runPostponed();
    const todo = [...this.insts.values()].filter((i) => !names || names.includes(i.cfg.name));
    const handovers: Promise<void>[] = [];
    for (const inst of todo) {
      this.dispatch(inst.cfg.name, { type: 'shutdown' });
      const s = this.states[inst.cfg.name];
      if (s?.handover) {
        // Stopped but still holding the VIPs (stop_handover): no more GARP refreshes; keep the
        // transport open until a new master advertises or the machine's handover timer ends it.
        inst.io.announce?.announcer.stop();
        inst.log.info({ maxMs: (s.timers.handover ?? this.d.clock.now()) - this.d.clock.now() }, 'stop: keeping VIPs until the new master advertises');
        handovers.push(new Promise<void>((resolve) => (inst.handoverEnded = resolve)));
      }
    }
    await Promise.all(handovers);
    for (const inst of todo) {
      await inst.vipChain.catch(() => {});
      for (const t of inst.timers.values()) this.d.clock.clearTimeout(t);
      inst.timers.clear();
      if (inst.warmTimer) this.d.clock.clearTimeout(inst.warmTimer);
      delete inst.warmTimer;
      inst.io.announce?.announcer.stop();
      inst.io.vips.close();
      inst.io.backstop?.close();
      delete inst.backstopPriority;
      inst.io.thread?.close();
      delete inst.thread;
      inst.io.transport.close();
      inst.started = false;
      this.insts.delete(inst.cfg.name);
      delete this.states[inst.cfg.name];
      for (const s of STATES) this.d.metrics.state.remove({ instance: inst.cfg.name, state: s });
      if (inst.masterLabel) this.d.metrics.masterInfo.remove({ instance: inst.cfg.name, address: inst.masterLabel });
    }
    if (!names || this.insts.size === 0) {
      for (const s of this.scripts.values()) {
        s.stopped = true;
        if (s.timer) this.d.clock.clearTimeout(s.timer);
      }
      this.scripts.clear();
      if (this.linkTimer) this.d.clock.clearTimeout(this.linkTimer);
      this.linkTimer = undefined;
    }
  }

  names(): string[] {
    return [...this.insts.keys()];
  }

  // ---------------------------------------------------------------- input

  private onAdvert(inst: Inst, a: Advert, src: string, ageMs = 0): void {
    if (!inst.started) return;
    this.catchUpThread(inst);
    this.d.metrics.advertsReceived.inc({ instance: inst.cfg.name });
    // The age comes from the kernel's CLOCK_REALTIME receive stamp; a clock step between stamp and
    // read would make it wrong, so only ages up to MAX_ADVERT_AGE_MS are credited (enough for a
    // wake-up or a short busy spell; a larger one only costs the old, later deadline).
    const age = Math.min(Math.max(0, ageMs), MAX_ADVERT_AGE_MS);
    inst.lastHeard = this.d.clock.now() - age;
    this.dispatch(inst.cfg.name, { type: 'advert', from: src, priority: a.priority, maxAdvertMs: a.intervalMs, ageMs: age });
  }

  /**
   * Feed every instance's waiting adverts now (transports with a synchronous poll). True when all
   * transports could be polled, so nothing unread can be sitting in a socket; false sends the caller
   * to the check phase instead, after the loop's own poll.
   */
  private pollTransports(): boolean {
    let all = true;
    for (const i of this.insts.values()) {
      const t = i.io.transport;
      if (!t.poll) {
        all = false;
        continue;
      }
      try {
        t.poll();
      } catch (err) {
        all = false;
        i.log.warn({ err: errorMessage(err) }, 'reading waiting adverts failed');
      }
    }
    return all;
  }

  private onDrop(inst: Inst, reason: DropReason, src?: string): void {
    this.d.metrics.dropped.inc({ instance: inst.cfg.name, reason });
    inst.log.debug({ reason, src }, 'VRRP packet dropped');
  }

  /** Tracked virtual-server quorum (bus 'health.quorum'), by virtual server name. */
  setQuorum(vsName: string, up: boolean, cluster: ClusterConfig): void {
    if (this.quorum.get(vsName) === up) return;
    this.quorum.set(vsName, up);
    for (const inst of this.insts.values()) if (inst.cfg.track_virtual_servers.some((t) => t.name === vsName)) this.recomputeTracking(inst, cluster);
  }

  private cluster: ClusterConfig | undefined;
  setCluster(c: ClusterConfig): void {
    this.cluster = c;
  }

  private recomputeTracking(inst: Inst, cluster: ClusterConfig | undefined = this.cluster): void {
    const c = inst.cfg;
    const linkGood = (n: string) => this.linkState.get(n) ?? this.linkUp(n);
    const tracking: Tracking = {
      // The instance's own interface always counts (weight 0: down ⇒ FAULT), like keepalived.
      interfaces: [{ name: c.interface, weight: 0, good: linkGood(c.interface) }, ...c.track_interfaces.filter((t) => t.name !== c.interface).map((t) => ({ name: t.name, weight: t.weight, good: linkGood(t.name) }))],
      scripts: c.track_scripts.map((t) => {
        const sc = cluster?.vrrp_scripts.find((s) => s.name === t.name);
        return { name: t.name, weight: t.weight ?? sc?.weight ?? 0, good: this.scripts.get(t.name)?.st.good ?? true };
      }),
      virtualServers: c.track_virtual_servers.map((t) => ({ name: t.name, weight: t.weight, good: this.quorum.get(t.name) ?? true })),
    };
    inst.tracking = tracking;
    const next = effectivePriority(c.priority, tracking, { syncGroup: c.sync_group !== undefined });
    const evs = trackingEvents(inst.prio, next);
    inst.prio = next;
    for (const e of evs) {
      inst.log.info({ event: e }, 'tracking changed');
      this.dispatch(c.name, e);
    }
  }

  private pollLinks(): void {
    const names = new Set<string>();
    for (const i of this.insts.values()) {
      names.add(i.cfg.interface);
      for (const t of i.cfg.track_interfaces) names.add(t.name);
    }
    let changed = false;
    for (const n of names) {
      const up = this.linkUp(n);
      if (this.linkState.get(n) !== up) {
        if (this.linkState.has(n)) changed = true;
        this.linkState.set(n, up);
      }
    }
    if (changed) for (const i of this.insts.values()) this.recomputeTracking(i);
    this.linkTimer = this.d.clock.setTimeout(() => this.pollLinks(), this.d.linkPollMs ?? 500);
  }

  /** Start/stop vrrp_script runners to match the instances' references. */
  private syncScripts(cfg: ClusterConfig): void {
    this.cluster = cfg;
    const wanted = new Set<string>();
    for (const i of this.insts.values()) for (const t of i.cfg.track_scripts) wanted.add(t.name);
    for (const [name, s] of this.scripts) {
      if (!wanted.has(name)) {
        s.stopped = true;
        if (s.timer) this.d.clock.clearTimeout(s.timer);
        this.scripts.delete(name);
      }
    }
    for (const name of wanted) {
      if (this.scripts.has(name)) continue;
      const sc = cfg.vrrp_scripts.find((s) => s.name === name);
      if (!sc) continue;
      const entry: { cfg: VrrpScriptConfig; st: ScriptState; timer?: TimerHandle; running: boolean; stopped: boolean } = { cfg: sc, st: initialScriptState(), running: false, stopped: false };
      this.scripts.set(name, entry);
      const tick = () => {
        if (entry.stopped) return;
        if (!entry.running) {
          entry.running = true;
          void runScript(sc.script, sc.timeout * 1000).then((ok) => {
            entry.running = false;
            if (entry.stopped) return;
            const before = entry.st.good;
            entry.st = scriptResult(entry.st, ok, sc.rise, sc.fall);
            if (entry.st.good !== before) {
              this.d.logger.info({ script: name, good: entry.st.good }, 'vrrp_script state changed');
              for (const i of this.insts.values()) if (i.cfg.track_scripts.some((t) => t.name === name)) this.recomputeTracking(i);
            }
          });
        }
        entry.timer = this.d.clock.setTimeout(tick, sc.interval * 1000);
      };
      tick();
    }
  }

  // ---------------------------------------------------------------- stepping

  /** Step the instance's machine (or its sync group) with `ev`, which happened at `at` (default: now). */
  private dispatch(name: string, ev: VrrpEvent, at?: number): void {
    const inst = this.insts.get(name);
    if (!inst) return;
    this.catchUpThread(inst);
    const now = at ?? this.d.clock.now();
    if (inst.quiet) {
      inst.quiet.queue.push(() => this.dispatch(name, ev, now));
      return;
    }
    const gname = inst.cfg.sync_group;
    const g = gname ? this.groups.get(gname) : undefined;
    if (g) {
      const members: Record<string, InstanceState> = {};
      for (const m of g.members) if (this.states[m]) members[m] = this.states[m]!;
      const r = groupStep(g, members, name, ev, now);
      for (const [m, s] of Object.entries(r.states)) this.states[m] = s;
      this.applyAll(r.effects, now);
      const gt = r.groupTransition;
      if (gt) {
        this.bookkeeping(false, () => {
          this.d.logger.info({ group: g.name, from: gt.from, to: gt.to }, 'sync group transition');
          if (gt.to === 'MASTER' || gt.to === 'BACKUP' || gt.to === 'FAULT') this.d.notifier.enqueue(`group:${g.name}`, notifyJobs(g.notify, 'GROUP', g.name, gt.to, 0));
          else if (gt.to === 'INIT') this.d.notifier.enqueue(`group:${g.name}`, notifyJobs(g.notify, 'GROUP', g.name, 'STOP', 0));
        });
      }
      return;
    }
    const s = this.states[name];
    if (!s) return;
    const arms = inst.thread?.arms;
    const r = step(s, ev, now);
    this.states[name] = r.state;
    this.applyAll(r.effects.map((effect) => ({ instance: name, effect })), now);
    // A step that changed the state without re-arming master_down (a tracked priority change, say):
    // the takeover thread's plan was decided on the old state, so decide it again for the same deadline.
    const t = inst.thread;
    if (r.state !== s && t?.armedFor !== undefined && t.arms === arms && t.due !== undefined && t.wake) this.armThread(inst, t.due, t.armedFor, t.wake);
  }

  /**
   * Apply a step's effects, the data-plane ones first: adding the VIPs and announcing them is what
   * ends the client's outage, so it must not wait behind logging, metrics, the bus (whose listeners
   * run synchronously) or the advert. The relative order inside each class is the machine's.
   * Measured on the 0.01 s failover bench: become→GARP went from 0.5-1.2 ms to ~0.1 ms.
   */
  private applyAll(effects: ReadonlyArray<{ readonly instance: string; readonly effect: Effect }>, at: number): void {
    // An instance that is no longer Master: its backstop stops before any of the step's effects (a
    // priority-0 advert, a VIP removal) can be overtaken by one more Master advert from a thread.
    for (const x of effects) {
      const inst = this.insts.get(x.instance);
      if (inst?.backstopPriority !== undefined && this.states[x.instance]?.state !== 'MASTER') {
        inst.io.backstop?.disarm();
        delete inst.backstopPriority;
      }
    }
    for (const x of effects) if (URGENT.has(x.effect.type)) this.apply(x.instance, x.effect, { at });
    for (const x of effects) {
      if (URGENT.has(x.effect.type)) continue;
      if (!BOOKKEEPING.has(x.effect.type)) {
        this.apply(x.instance, x.effect, { at });
        continue;
      }
      const via = this.insts.get(x.instance)?.fastDone?.by;
      this.bookkeeping(via !== undefined, (when) => this.apply(x.instance, x.effect, when === undefined ? {} : { late: { ...(via ? { via } : {}), at: when } }));
    }
  }

  /**
   * Run bookkeeping now, or POSTPONE_MS later when `postpone` (after a takeover call) or when
   * something already waits — what follows waits behind it, so logs, bus and notify keep the
   * machine's order. `fn(at)`: when postponed, the wall time it was postponed at (the transition's).
   */
  private bookkeeping(postpone: boolean, fn: (at?: number) => void): void {
    if (!postpone && !this.postponed.length) return fn();
    const at = this.d.clock.wallNow();
    this.postponed.push(() => fn(at));
    this.postponeTimer ??= this.d.clock.setTimeout(() => this.runPostponed(), POSTPONE_MS);
  }

  /** Apply the postponed bookkeeping now (its timer, or before a stop so nothing is lost or reordered). */
  private runPostponed(): void {
    if (this.postponeTimer) this.d.clock.clearTimeout(this.postponeTimer);
    delete this.postponeTimer;
    for (const fn of this.postponed.splice(0)) fn();
  }

  /** Arm `name` to fire `ms` after `at` (the time of the event whose step asked for it; default now). */
  private armTimer(inst: Inst, name: TimerName, ms: number, at?: number): void {
    const old = inst.timers.get(name);
    if (old) this.d.clock.clearTimeout(old);
    const now = this.d.clock.now();
    const due = (at ?? now) + ms;
    const wait = Math.max(0, due - now);
    if (name !== 'master_down') {
      const h = this.d.clock.setTimeout(() => {
        if (inst.timers.get(name) !== h) return;
        inst.timers.delete(name);
        const lateMs = Math.max(0, this.d.clock.now() - due);
        if (name === 'adver' && lateMs > ms) this.lateAdvert(inst, lateMs);
        this.dispatch(inst.cfg.name, { type: 'timer', name, lateMs });
      }, wait);
      inst.timers.set(name, h);
      return;
    }
    // master_down: Node timers have 1 ms resolution and fire up to ~1 ms either side of the deadline
    // (measured on the 0.01 s bench: -0.4..+1.0 ms; with a 1.5 ms early wake, expiries of the 361 ms
    // timer at 0.1 s adverts still came ~0.5 ms late, hence 3 ms). The host timer wakes PRECISE_WAKE_MS
    // early and sleeps the rest in the kernel (Atomics.wait: a futex wait with µs resolution; the
    // daemon sets the thread's timer slack to 1 ns). A sleep, not a spin: a spinning process loses the
    // scheduler's wake-up preference and, measured next to a CPU hog, then took the VIP ~5 ms late
    // where keepalived (timerfd) did not. At the deadline the adverts waiting in the sockets are read
    // first, synchronously (the file header's rule), and an advert that re-armed the timer ends it;
    // a transport that cannot be read synchronously sends the expiry to the check phase instead.
    const wake = () => {
      const woke = this.d.clock.now();
      // Read now: when the takeover thread acted while the loop was held up, an advert read after it
      // may update lastHeard before the held expiry runs.
      const heard = inst.lastHeard;
      let prepMs = 0;
      // `at`: when the expiry was acted on (the takeover call's time when its step waited out the quiet window).
      const expire = (socketsRead: boolean, at?: number) => {
        if (inst.timers.get(name) !== h) return; // re-armed or cancelled meanwhile
        inst.timers.delete(name);
        const now = at ?? this.d.clock.now();
        inst.lastExpiry = { silenceMs: heard === undefined ? -1 : now - heard, lateMs: Math.max(0, now - due), wake: { earlyMs: due - woke, prepMs } };
        this.dispatch(inst.cfg.name, { type: 'timer', name, lateMs: inst.lastExpiry.lateMs, ...(socketsRead ? { socketsRead } : {}) }, now);
      };
      const adopt = (r: FastResult & { pending: false }, by: 'takeover_call' | 'takeover_thread') => {
        inst.fastDone = { vips: r.vipsAdded, rounds: r.rounds, advert: r.advertSent, by };
        this.beginQuiet(inst, () => {
          expire(true, due + (r.lateMs ?? 0));
          delete inst.fastDone;
          this.afterFastTakeover(inst);
        });
      };
      // The takeover thread armed for this deadline: its takeover (waited for up to the deadline plus
      // its late limit), or else the takeover call below, which decides again (a datagram that
      // stopped the thread has been read and stepped by now: it re-armed this timer if it was the
      // master's advert).
      const th = inst.thread?.armedFor === h ? inst.thread : undefined;
      if (th) {
        th.armedFor = undefined;
        const st = this.states[inst.cfg.name];
        const limit = (st && lateGraceAbove(st)) ?? 0;
        let r: FastResult | undefined;
        try {
          r = inst.io.thread!.wait(Math.min(20, Math.max(0, due - this.d.clock.now()) + limit + 2));
        } catch (err) {
          this.threadFailed(inst, err);
        }
        if (r && !r.pending) {
          // Counted when it mattered: this loop got to the deadline only after the thread had acted.
          if (woke > due) this.d.metrics.takeoverThread.inc({ instance: inst.cfg.name });
          adopt(r, 'takeover_thread');
          return;
        }
      }
      // Decided before the sleep (JavaScript on a just-woken turn is slow): the machine stepped dry
      // at the deadline itself, and the call acts at the deadline (it sleeps to it), so that
      // decision is the one the real step takes.
      const plan = inst.cfg.sync_group ? undefined : this.expiryTakesOver(inst, due);
      const garp = inst.cfg.garp;
      const fast = plan ? inst.io.fast?.prepare(inst.targets, plan.advertPriority === undefined ? undefined : advertOf(inst.cfg, plan.advertPriority), garp.interval > 0 ? 1 : garp.master_repeat) : undefined;
      // Logged with the takeover (wake_early_ms, prep_ms): how much of the early wake this JavaScript used.
      prepMs = this.d.clock.now() - woke;
      if (fast) {
        // Data plane first, in one native call that also sleeps to the deadline: a waiting advert
        // (poll) stops it; otherwise the VIPs are added and announced before the machine's own
        // step, whose add_vips / garp effects then only adopt what was done (apply). Saves the
        // JavaScript between those syscalls (0.3-0.5 ms of a just-woken turn on the 0.01 s failover
        // bench) and between the sleep and the first of them (~0.3 ms, perf, session 9). A wake late
        // enough for the late guard's grace is not a takeover (yet): the call returns `late` and
        // the machine decides.
        const st = this.states[inst.cfg.name];
        let t0 = this.d.clock.now();
        // A host timer that fired far too early (not seen): sleep here down to the call's limit.
        if (due - t0 > MAX_CALL_WAIT_MS) this.sleepSync(due - t0 - MAX_CALL_WAIT_MS);
        t0 = this.d.clock.now();
        let r: FastResult;
        try {
          r = fast.run(Math.min(due - t0, MAX_CALL_WAIT_MS), (st && lateGraceAbove(st)) ?? -1);
        } catch (err) {
          // Not expected (the arguments were built here): the expiry takes the normal path, at the
          // deadline (stepped before it, the machine would only re-arm for the remainder).
          inst.log.error({ err: errorMessage(err) }, 'takeover call failed');
          r = { pending: true };
          this.sleepToDeadline(due);
        }
        if (!r.pending) {
          adopt(r, 'takeover_call');
          return;
        }
      } else this.sleepToDeadline(due);
      if (this.pollTransports()) expire(true);
      else this.defer(() => expire(false));
    };
    const h = this.d.clock.setTimeout(wake, Math.max(0, wait - PRECISE_WAKE_MS));
    inst.timers.set(name, h);
    this.armThread(inst, due, h, wake);
  }

  /**
   * Arm the takeover thread for this master_down deadline when the machine, stepped dry at it, takes
   * over (a Backup not in a sync group), reloading it first when the takeover's advert priority
   * changed (or warmTakeover asked for a fresh load); disarm it otherwise. One dry step per advert
   * received: a few µs.
   */
  private armThread(inst: Inst, due: number, h: TimerHandle, wake: () => void): void {
    const tk = inst.io.thread;
    if (!tk || inst.threadFailed) return;
    const t = (inst.thread ??= { arms: 0 });
    t.arms++;
    try {
      const plan = inst.cfg.sync_group ? undefined : this.expiryTakesOver(inst, due);
      if (!plan) {
        if (t.armedFor !== undefined) tk.disarm();
        t.armedFor = undefined;
        return;
      }
      const key = plan.advertPriority ?? -1;
      if (t.key !== key) {
        const garp = inst.cfg.garp;
        t.key = tk.load(inst.targets, plan.advertPriority === undefined ? undefined : advertOf(inst.cfg, plan.advertPriority), garp.interval > 0 ? 1 : garp.master_repeat) ? key : undefined;
        if (t.key === undefined) {
          t.armedFor = undefined;
          return;
        }
      }
      const st = this.states[inst.cfg.name];
      tk.arm(due - this.d.clock.now(), (st && lateGraceAbove(st)) ?? -1);
      Object.assign(t, { armedFor: h, due, wake });
    } catch (err) {
      this.threadFailed(inst, err);
    }
  }

  /** The takeover thread threw: disarmed (best effort) and not used again for this instance; its takeovers go through the takeover call. */
  private threadFailed(inst: Inst, err: unknown): void {
    inst.threadFailed = true;
    if (inst.thread) inst.thread.armedFor = undefined;
    try {
      inst.io.thread?.disarm();
    } catch {
      // already logged below; nothing else to do
    }
    inst.log.error({ err: errorMessage(err) }, 'takeover thread unavailable');
  }

  /**
   * Before anything else reaches an instance whose takeover thread acted while this loop was held up
   * (its wake not run yet): that wake first, so the machine steps the expiry (at the thread's time)
   * before the event that came after it.
   */
  private catchUpThread(inst: Inst): void {
    const t = inst.thread;
    if (t?.armedFor === undefined || t.due === undefined || this.d.clock.now() < t.due) return;
    let fired = false;
    try {
      fired = inst.io.thread!.fired();
    } catch (err) {
      this.threadFailed(inst, err);
    }
    if (!fired) return;
    // Its host timer must not run the wake a second time (the expiry is held for the quiet window).
    this.d.clock.clearTimeout(t.armedFor);
    t.wake?.();
  }

  /** Sleep this thread (futex) to just before `due`, at most PRECISE_WAKE_MS + 1 ms. */
  private sleepToDeadline(due: number): void {
    // The futex wake itself comes a little after the requested time (measured): aim that much early.
    const rest = due - this.d.clock.now() - WAKE_OVERSHOOT_MS;
    if (rest > 0) this.sleepSync(Math.min(rest, PRECISE_WAKE_MS + 1));
  }

  /** Start the instance's quiet window (QUIET_MS) with `held` as the first thing to run at its end. */
  private beginQuiet(inst: Inst, held: () => void): void {
    const ms = Math.min(QUIET_MS, inst.cfg.advert_interval * 1000 * 0.8);
    inst.quiet = { queue: [held], timer: this.d.clock.setTimeout(() => this.endQuiet(inst), ms) };
  }

  /** End the quiet window now (its timer, or a stop): the held step, then the queued events, in order. */
  private endQuiet(inst: Inst): void {
    const q = inst.quiet;
    if (!q) return;
    this.d.clock.clearTimeout(q.timer);
    delete inst.quiet;
    for (const fn of q.queue) fn();
  }

  /** After a Master's advert: arm the backstop with it (once per priority) and restart its schedule. */
  private kickBackstop(inst: Inst, priority: number): void {
    const b = inst.io.backstop;
    if (!b || inst.backstopFailed || this.states[inst.cfg.name]?.state !== 'MASTER') return;
    // Arming after a takeover call waits with the bookkeeping (POSTPONE_MS after the step, which
    // itself waited out the quiet window): encoding and waking the threads would take the CPU right
    // when the new master's services answer the first clients. The new master's first ~20 ms (18 at
    // 0.01 s adverts) go without a stand-in; its own adverts are on time then.
    if (inst.backstopPriority === undefined && inst.fastDone !== undefined) {
      this.bookkeeping(true, () => this.kickBackstop(inst, priority));
      return;
    }
    let n: number;
    try {
      if (inst.backstopPriority !== priority) {
        if (!b.arm(advertOf(inst.cfg, priority))) return;
        inst.backstopPriority = priority;
      }
      n = b.kick();
    } catch (err) {
      // The runtime's own adverts go on; only the stand-in is lost (not retried: logged once).
      inst.backstopFailed = true;
      inst.log.error({ err: errorMessage(err) }, 'advert backstop unavailable');
      return;
    }
    if (n > 0) this.d.metrics.advertsBackstop.inc({ instance: inst.cfg.name }, n);
  }

  /**
   * A Master's advert goes out more than one interval late: the backups saw that much extra silence
   * (a false takeover when it passes their Master_Down_Interval). Counted; logged at most once a
   * second per instance, with how many were not logged.
   */
  private lateAdvert(inst: Inst, lateMs: number): void {
    this.d.metrics.advertsLate.inc({ instance: inst.cfg.name });
    const now = this.d.clock.now();
    const l = (inst.lateAdvertLog ??= { at: -Infinity, suppressed: 0 });
    if (now - l.at < 1000) {
      l.suppressed++;
      return;
    }
    inst.log.warn({ late_ms: Math.round(lateMs * 100) / 100, suppressed: l.suppressed }, 'advert sent late (this process was held up; backups may take over)');
    l.at = now;
    l.suppressed = 0;
  }

  /**
   * Would the master_down expiry at `due` make this instance Master with its VIPs? (A dry, pure
   * step.) If so, with the priority of the advert that step sends.
   */
  private expiryTakesOver(inst: Inst, due: number, s: InstanceState | undefined = this.states[inst.cfg.name]): { readonly advertPriority?: number } | undefined {
    if (!s || s.state !== 'BACKUP') return undefined;
    const r = step(s, { type: 'timer', name: 'master_down', lateMs: 0, socketsRead: true }, due);
    if (r.state.state !== 'MASTER' || !r.effects.some((e) => e.type === 'add_vips')) return undefined;
    const adv = r.effects.find((e) => e.type === 'send_advert');
    return adv?.type === 'send_advert' ? { advertPriority: adv.priority } : {};
  }

  /**
   * After a takeover call: if the machine's step did not make the instance Master (it cannot, as it
   * was stepped dry just before; kept as a guard), give the VIPs back rather than hold them as Backup.
   */
  private afterFastTakeover(inst: Inst): void {
    if (this.states[inst.cfg.name]?.state === 'MASTER') return;
    inst.log.error('takeover call and machine disagree: releasing the VIPs');
    inst.vipChain = this.track(inst, inst.vipChain.then(() => inst.io.vips.release().then(() => {})).catch(() => {}));
  }

  /**
   * `at`: the time of the event whose step produced `e` (timers count from it; default now).
   * `late`: a postponed bookkeeping effect — whether its transition went through the takeover call, and when it happened.
   */
  private apply(name: string, e: Effect, { at, late }: { readonly at?: number; readonly late?: { readonly via?: 'takeover_call' | 'takeover_thread'; readonly at: number } } = {}): void {
    const inst = this.insts.get(name);
    if (!inst) return;
    const c = inst.cfg;
    const m = this.d.metrics;
    switch (e.type) {
      case 'timer':
        this.armTimer(inst, e.name, e.ms, at);
        break;
      case 'cancel': {
        const h = inst.timers.get(e.name);
        if (h) this.d.clock.clearTimeout(h);
        inst.timers.delete(e.name);
        if (h !== undefined && inst.thread?.armedFor === h) {
          inst.thread.armedFor = undefined;
          try {
            inst.io.thread?.disarm();
          } catch (err) {
            this.threadFailed(inst, err);
          }
        }
        break;
      }
      case 'send_advert':
        // The takeover call sent this step's advert already (the dry step it was prepared from is this step).
        if (inst.fastDone?.advert) inst.fastDone.advert = false;
        else inst.io.transport.send(advertOf(c, e.priority));
        m.advertsSent.inc({ instance: name });
        this.kickBackstop(inst, e.priority);
        break;
      case 'become': {
        m.state.set({ instance: name, state: e.from }, 0);
        m.state.set({ instance: name, state: e.to }, 1);
        m.transitions.inc({ instance: name, from: e.from, to: e.to });
        // A takeover by timeout says how long the master had been silent and how late our timer woke:
        // what an operator needs to tell a dead master from a stalled one (or a stalled backup).
        const x = e.reason.startsWith('master_down') ? inst.lastExpiry : undefined;
        inst.log.info(
          {
            from: e.from, to: e.to, reason: e.reason,
            ...(x && x.silenceMs >= 0 ? { silence_ms: Math.round(x.silenceMs * 100) / 100, timer_late_ms: Math.round(x.lateMs * 100) / 100 } : {}),
            ...(x?.wake ? { wake_early_ms: Math.round(x.wake.earlyMs * 100) / 100, prep_ms: Math.round(x.wake.prepMs * 100) / 100 } : {}),
            ...(late?.via ? { dataplane: late.via } : {}), ...(late ? { at: new Date(late.at).toISOString() } : {}),
          },
          `VRRP ${e.from} -> ${e.to}`,
        );
        this.d.bus.emit('vrrp.state', { instance: name, from: e.from, to: e.to, reason: e.reason });
        break;
      }
      case 'add_vips': {
        // When nothing is pending, add now — synchronously through the addon (takeNow: the ACK is read
        // in the same call), else with take(), whose netlink sendmsg still applies RTM_NEWADDR before
        // it first yields — so the GARP that follows goes out in this same turn (failover latency).
        const add = () => inst.io.vips.take().catch((err: unknown) => inst.log.error({ err: errorMessage(err) }, 'adding VIPs failed'));
        if (inst.fastDone?.vips) {
          inst.io.vips.adopt();
          inst.addedNow = true;
          break;
        }
        if (inst.vipPending > 0) {
          inst.vipChain = this.track(inst, inst.vipChain.then(add));
          break;
        }
        if (!inst.io.vips.takeNow()) inst.vipChain = this.track(inst, add());
        inst.addedNow = true;
        break;
      }
      case 'remove_vips':
        inst.io.announce?.announcer.stop();
        inst.vipChain = this.track(inst, inst.vipChain.then(() => inst.io.vips.release().then(() => {})).catch((err) => inst.log.error({ err: errorMessage(err) }, 'removing VIPs failed')));
        break;
      case 'garp': {
        const a = inst.io.announce;
        if (!a) break;
        const targets = inst.targets ?? announceTargets(c, a, inst.log);
        const roundsSent = inst.addedNow ? (inst.fastDone?.rounds ?? 0) : 0;
        const announce = () => {
          if (this.states[name]?.state === 'MASTER') a.announcer.startAll(targets, c.garp, roundsSent);
        };
        if (inst.addedNow) {
          inst.addedNow = false;
          announce();
        } else {
          inst.vipChain = this.track(inst, inst.vipChain.then(announce));
        }
        break;
      }
      case 'notify':
        this.d.notifier.enqueue(`instance:${name}`, notifyJobs(c.notify, 'INSTANCE', name, e.state, this.states[name]?.priority ?? c.priority));
        break;
      case 'handover_done':
        inst.log.info({ reason: e.reason }, e.reason === 'new_master' ? 'stop handover: new master advertised, VIPs released' : 'stop handover ended, VIPs released');
        inst.handoverEnded?.();
        delete inst.handoverEnded;
        break;
      case 'late_timer':
        m.lateTimers.inc({ instance: name });
        inst.log.warn(
          { timer: e.name, late_ms: Math.round(e.lateMs * 100) / 100, grace_ms: Math.round(e.graceMs * 100) / 100, sockets_read: e.socketsRead },
          'timer fired late (this process was held up; the master may have been too): giving the master a grace before taking over',
        );
        break;
    }
    if (e.type === 'become' || e.type === 'timer') this.updateMasterInfo(inst);
  }

  /** Count a VIP operation as pending until it settles. */
  private track(inst: Inst, p: Promise<unknown>): Promise<void> {
    inst.vipPending++;
    return p.then(
      () => {
        inst.vipPending--;
      },
      () => {
        inst.vipPending--;
      },
    );
  }

  private updateMasterInfo(inst: Inst): void {
    const s = this.states[inst.cfg.name];
    const addr = s ? currentMaster(s) : undefined;
    if (addr === inst.masterLabel) return;
    if (inst.masterLabel) this.d.metrics.masterInfo.remove({ instance: inst.cfg.name, address: inst.masterLabel });
    if (addr) this.d.metrics.masterInfo.set({ instance: inst.cfg.name, address: addr }, 1);
    if (addr) inst.masterLabel = addr;
    else delete inst.masterLabel;
  }

  // ---------------------------------------------------------------- status

  state(name: string): InstanceState | undefined {
    return this.states[name];
  }

  status(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    const now = this.d.clock.now();
    const wall = this.d.clock.wallNow();
    for (const [name, inst] of this.insts) {
      const s = this.states[name];
      if (!s) continue;
      out[name] = {
        state: s.state,
        priority: s.priority,
        configured_priority: inst.cfg.priority,
        master: currentMaster(s) ?? null,
        since: new Date(wall - (now - s.since)).toISOString(),
        vrid: inst.cfg.virtual_router_id,
        version: inst.cfg.version,
        interface: inst.cfg.interface,
        advert_interval: s.masterAdverIntervalMs / 1000,
        faults: s.faults,
        ...(inst.cfg.sync_group ? { sync_group: inst.cfg.sync_group } : {}),
      };
    }
    return out;
  }

  groupStatus(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const g of this.groups.values()) out[g.name] = groupState(g, this.states);
    return out;
  }
}

/**
 * The instance's VIPs grouped by the interface they are put on (`device`, default the instance
 * interface), each with that interface's MAC: a VIP on another segment is announced there, from
 * that interface, or that segment's neighbours would keep the old master's MAC.
 */
export function announceTargets(c: VrrpInstanceConfig, a: NonNullable<InstanceIo['announce']>, log: Logger): AnnounceTarget[] {
  // The instance interface first: its announcement is the one on the failover's critical path.
  const byDev = new Map<string, Uint8Array[]>([[a.ifname, []]]);
  for (const v of [...c.virtual_addresses, ...c.virtual_addresses_excluded]) {
    const dev = v.device ?? a.ifname;
    const list = byDev.get(dev) ?? [];
    list.push(parseIp(v.address)!.bytes);
    byDev.set(dev, list);
  }
  const out: AnnounceTarget[] = [];
  for (const [ifname, vips] of byDev) {
    if (vips.length === 0) continue;
    if (ifname === a.ifname) {
      out.push({ ifname, mac: a.mac, vips });
      continue;
    }
    try {
      if (!a.macOf) throw new Error('no MAC lookup');
      const mac = a.macOf(ifname);
      // No link-layer address (loopback, tunnels): nothing to announce there.
      if (mac.length === 6 && mac.some((x) => x !== 0)) out.push({ ifname, mac, vips });
    } catch (e) {
      log.warn({ ifname, err: errorMessage(e) }, 'cannot announce VIPs on this interface');
    }
  }
  return out;
}

function bytesToV6(b: Uint8Array): string {
  const g: string[] = [];
  for (let i = 0; i < 16; i += 2) g.push(((b[i]! << 8) | b[i + 1]!).toString(16));
  return parseIp(g.join(':'))!.text;
}

/** Run a tracking script: success = exit 0 before the timeout (keepalived vrrp_script). */
function runScript(argv: readonly string[], timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const [cmd, ...args] = argv;
    if (!cmd) return resolve(false);
    const child = spawn(cmd, args, { stdio: 'ignore' });
    const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    t.unref();
    child.on('error', () => {
      clearTimeout(t);
      resolve(false);
    });
    child.on('exit', (code) => {
      clearTimeout(t);
      resolve(code === 0);
    });
  });
}
