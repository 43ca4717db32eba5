/**
 * The one way a takeover happens: the master_down deadline of a Backup, met on this thread or by
 * the native mechanisms that stand in for a held-up event loop, always ending in the machine's own
 * step for that expiry.
 *
 * - Warm-up (prepareTakeover, warmTakeover): what the first takeover would do cold is done ahead.
 * - The deadline (armMasterDown): the host timer wakes PRECISE_WAKE_MS early, the plan is decided by
 *   a dry step of the machine at the deadline (expiryTakesOver), and the data plane (VIPs, GARP/NA,
 *   first advert) goes out in one native call that sleeps to the deadline (the takeover call).
 * - The takeover thread (armThread, catchUpThread): loaded with the same plan and armed with each
 *   new deadline, it acts there when this loop is held up; its result is adopted like the call's.
 * - Adoption (quiet window, beginQuiet/endQuiet): after either acted, the machine's step for the
 *   expiry runs QUIET_MS later, and its add_vips / garp / send_advert effects only adopt what was
 *   done (runtime apply, Inst.fastDone).
 * Any wake that acts on nothing (an advert waiting, a late wake for the late guard) reads the
 * sockets first and steps the expiry normally (see runtime.ts, "a late timer must not fake a
 * master-down").
 */
import type { Clock, TimerHandle } from '../core/clock.js';
import { errorMessage } from '../core/errors.js';
import type { VrrpEvent, InstanceState } from './machine.js';
import { lateGraceAbove, step } from './machine.js';
import { Announcer } from './announce.js';
import type { ElectionMetrics } from './metrics.js';
import type { FastResult } from './io.js';
import { advertOf, announceTargets, type Inst } from './instance.js';

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
export const WARM_ROUNDS = 12;
const sleepCell = new Int32Array(new SharedArrayBuffer(4));
/** Block the thread for `ms` (futex wait; Atomics.wait is allowed on Node's main thread). */
function atomicsSleep(ms: number): void {
  Atomics.wait(sleepCell, 0, 0, ms);
}


/** What the takeover path needs from the runtime. */
export interface TakeoverHost {
  readonly clock: Clock;
  readonly metrics: ElectionMetrics;
  /** Blocks for a short time, ms, to meet the master_down deadline. */
  readonly sleepSync: (ms: number) => void;
  /** Runs fn after pending socket reads of this loop turn. */
  readonly defer: (fn: () => void) => void;
  state(name: string): InstanceState | undefined;
  /** Step the instance's machine (or its sync group) with `ev`, which happened at `at` (default now). */
  dispatch(name: string, ev: VrrpEvent, at?: number): void;
  /** Feed every instance's waiting adverts now; true when every transport could be polled. */
  pollTransports(): boolean;
  /** Count a VIP operation as pending until it settles. */
  track(inst: Inst, p: Promise<unknown>): Promise<void>;
}

export { atomicsSleep };

export class TakeoverPath {
  constructor(private readonly h: TakeoverHost) {}

  /**
   * Do ahead of time what the first takeover would otherwise do cold: encode the VIP messages, open
   * the AF_PACKET socket, build the frames, encode our advert without sending it (warmTakeover, after the transport is
   * open, runs the machine's Backup→Master path dry). Measured: the first takeover spent 1-6 ms
   * in lazily compiled code before this; keepalived (C) has no such cost.
   */
  prepareTakeover(inst: Inst): void {
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
  warmTakeover(inst: Inst): number | undefined {
    if (inst.warmTimer) this.h.clock.clearTimeout(inst.warmTimer);
    const s0 = this.h.state(inst.cfg.name);
    // Not within a master_down wake's reach (the machine's deadline): retry shortly instead.
    const deadline = s0?.timers.master_down;
    const near = deadline !== undefined && deadline - this.h.clock.now() < WARM_CLEAR_MS;
    inst.warmTimer = this.h.clock.setTimeout(() => this.warmTakeover(inst), near ? WARM_RETRY_MS : WARM_EVERY_MS);
    if (near || !s0 || (s0.state !== 'BACKUP' && s0.state !== 'INIT')) return undefined;
    const c = inst.cfg;
    const t0 = this.h.clock.now();
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
    return this.h.clock.now() - t0;
  }


  /** Arm the master_down expiry of `inst` at `due` (`wait` ms from now). */
  armMasterDown(inst: Inst, due: number, wait: number): void {
    const name = 'master_down' as const;
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
      const woke = this.h.clock.now();
      // Read now: when the takeover thread acted while the loop was held up, an advert read after it
      // may update lastHeard before the held expiry runs.
      const heard = inst.lastHeard;
      let prepMs = 0;
      // `at`: when the expiry was acted on (the takeover call's time when its step waited out the quiet window).
      const expire = (socketsRead: boolean, at?: number) => {
        if (inst.timers.get(name) !== h) return; // re-armed or cancelled meanwhile
        inst.timers.delete(name);
        const now = at ?? this.h.clock.now();
        inst.lastExpiry = { silenceMs: heard === undefined ? -1 : now - heard, lateMs: Math.max(0, now - due), wake: { earlyMs: due - woke, prepMs } };
        this.h.dispatch(inst.cfg.name, { type: 'timer', name, lateMs: inst.lastExpiry.lateMs, ...(socketsRead ? { socketsRead } : {}) }, now);
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
        const st = this.h.state(inst.cfg.name);
        const limit = (st && lateGraceAbove(st)) ?? 0;
        let r: FastResult | undefined;
        try {
          r = inst.io.thread!.wait(Math.min(20, Math.max(0, due - this.h.clock.now()) + limit + 2));
        } catch (err) {
          this.threadFailed(inst, err);
        }
        if (r && !r.pending) {
          // Counted when it mattered: this loop got to the deadline only after the thread had acted.
          if (woke > due) this.h.metrics.takeoverThread.inc({ vrrp_instance: inst.cfg.name });
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
      prepMs = this.h.clock.now() - woke;
      if (fast) {
        // Data plane first, in one native call that also sleeps to the deadline: a waiting advert
        // (poll) stops it; otherwise the VIPs are added and announced before the machine's own
        // step, whose add_vips / garp effects then only adopt what was done (apply). Saves the
        // JavaScript between those syscalls (0.3-0.5 ms of a just-woken turn on the 0.01 s failover
        // bench) and between the sleep and the first of them (~0.3 ms, perf, session 9). A wake late
        // enough for the late guard's grace is not a takeover (yet): the call returns `late` and
        // the machine decides.
        const st = this.h.state(inst.cfg.name);
        let t0 = this.h.clock.now();
        // A host timer that fired far too early (not seen): sleep here down to the call's limit.
        if (due - t0 > MAX_CALL_WAIT_MS) this.h.sleepSync(due - t0 - MAX_CALL_WAIT_MS);
        t0 = this.h.clock.now();
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
      if (this.h.pollTransports()) expire(true);
      else this.h.defer(() => expire(false));
    };
    const h = this.h.clock.setTimeout(wake, Math.max(0, wait - PRECISE_WAKE_MS));
    inst.timers.set(name, h);
    this.armThread(inst, due, h, wake);
  }

  /**
   * Arm the takeover thread for this master_down deadline when the machine, stepped dry at it, takes
   * over (a Backup not in a sync group), reloading it first when the takeover's advert priority
   * changed (or warmTakeover asked for a fresh load); disarm it otherwise. One dry step per advert
   * received: a few µs.
   */
  armThread(inst: Inst, due: number, h: TimerHandle, wake: () => void): void {
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
      const st = this.h.state(inst.cfg.name);
      tk.arm(due - this.h.clock.now(), (st && lateGraceAbove(st)) ?? -1);
      Object.assign(t, { armedFor: h, due, wake });
    } catch (err) {
      this.threadFailed(inst, err);
    }
  }

  /** The takeover thread threw: disarmed (best effort) and not used again for this instance; its takeovers go through the takeover call. */
  threadFailed(inst: Inst, err: unknown): void {
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
  catchUpThread(inst: Inst): void {
    const t = inst.thread;
    if (t?.armedFor === undefined || t.due === undefined || this.h.clock.now() < t.due) return;
    let fired = false;
    try {
      fired = inst.io.thread!.fired();
    } catch (err) {
      this.threadFailed(inst, err);
    }
    if (!fired) return;
    // Its host timer must not run the wake a second time (the expiry is held for the quiet window).
    this.h.clock.clearTimeout(t.armedFor);
    t.wake?.();
  }

  /** Sleep this thread (futex) to just before `due`, at most PRECISE_WAKE_MS + 1 ms. */
  private sleepToDeadline(due: number): void {
    // The futex wake itself comes a little after the requested time (measured): aim that much early.
    const rest = due - this.h.clock.now() - WAKE_OVERSHOOT_MS;
    if (rest > 0) this.h.sleepSync(Math.min(rest, PRECISE_WAKE_MS + 1));
  }

  /** Start the instance's quiet window (QUIET_MS) with `held` as the first thing to run at its end. */
  private beginQuiet(inst: Inst, held: () => void): void {
    const ms = Math.min(QUIET_MS, inst.cfg.advert_interval * 1000 * 0.8);
    inst.quiet = { queue: [held], timer: this.h.clock.setTimeout(() => this.endQuiet(inst), ms) };
  }

  /** End the quiet window now (its timer, or a stop): the held step, then the queued events, in order. */
  endQuiet(inst: Inst): void {
    const q = inst.quiet;
    if (!q) return;
    this.h.clock.clearTimeout(q.timer);
    delete inst.quiet;
    for (const fn of q.queue) fn();
  }

  /**
   * Would the master_down expiry at `due` make this instance Master with its VIPs? (A dry, pure
   * step.) If so, with the priority of the advert that step sends.
   */
  expiryTakesOver(inst: Inst, due: number, s: InstanceState | undefined = this.h.state(inst.cfg.name)): { readonly advertPriority?: number } | undefined {
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
  afterFastTakeover(inst: Inst): void {
    if (this.h.state(inst.cfg.name)?.state === 'MASTER') return;
    inst.log.error('takeover call and machine disagree: releasing the VIPs');
    inst.vipChain = this.h.track(inst, inst.vipChain.then(() => inst.io.vips.release().then(() => {})).catch(() => {}));
  }
}
