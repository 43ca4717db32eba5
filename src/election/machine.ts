/**
 * The VRRP state machine, pure: `step(state, event, now) → { state, effects }`.
 *
 * RFC 5798 §6.4 (VRRPv3) and RFC 3768 §6.4 (VRRPv2) define Initialize / Backup / Master; keepalived
 * adds Fault (tracked interface down, failing script, lost quorum) and the preempt_delay and sync
 * group extensions. Nothing here does I/O or reads a clock: time comes in as `now` (monotonic ms),
 * timers go out as effects, and the runtime executes the effects IN ORDER.
 *
 * Runtime contract
 *  - `{type:'timer', name, ms}` (re)arms the named timer, replacing a pending one of that name;
 *    `{type:'cancel', name}` cancels it. When it fires, feed `{type:'timer', name}` (optionally with
 *    `lateMs`, how late the host timer fired).
 *  - Feed received adverts (already decoded and validated by the codec, VRID filtered, own packets
 *    dropped) as `{type:'advert', from, priority, maxAdvertMs, ageMs?}`.
 *  - Before acting on a timer expiry, feed the adverts already waiting in the socket. `stepBatch`
 *    does the ordering for a batch collected in one loop turn: adverts before timer expiries.
 *  - The state remembers every armed deadline, so a stale timer event (cancelled, or re-armed later)
 *    is harmless: it is ignored or re-armed for the remainder.
 *
 * Late master-down guard (rule chosen for the "robust timing"): when a master_down expiry is
 * late by more than `lateToleranceMs` (max of the lateness the runtime reports and now − deadline)
 * and we were following a master, this process was held up across the deadline. Two things can then
 * make the silence false:
 *  - the master's adverts from the stall may be queued unread (unless the runtime read the sockets
 *    right before, `socketsRead`);
 *  - the master may have been held up by the same cause — one CPU shortage, one paused or throttled
 *    VM (measured on the session 5 machine: a C probe at SCHED_FIFO saw 100 ms freezes under load, and
 *    backup and master stalled together, the master's overdue advert arriving 0–4 ms after the
 *    backup's late takeover). On resume its overdue Adver_Timer sends at once, but it needs the CPU
 *    to do so.
 * So instead of taking over, the machine grants the master a grace: it re-arms master_down for
 * max(`recheckMs`, min(lateness, Master_Adver_Interval / 2)) — as long as we were late, at most half
 * an advert interval (the overdue advert came 0–4 ms after the wake at 0.01 s; an lvsd master's
 * backstop threads send it as soon as the CPU is back) — and emits `late_timer` (metrics/logs).
 * Adverts that arrive reset the timer as usual; if none does, the grace's expiry takes over. The
 * grace is given once per deadline (not to the grace's own expiry), so a master that really died
 * during a stall costs at most half an advert interval more, and only when this process was itself
 * late by more than the tolerance (measured on the failover bench: 3 of 50 takeovers at 0.01 s).
 */
import { parseIp, compareIp } from '../core/address.js';

export type VrrpState = 'INIT' | 'BACKUP' | 'MASTER' | 'FAULT';
export type TimerName = 'adver' | 'master_down' | 'preempt' | 'handover';
export type NotifyState = 'MASTER' | 'BACKUP' | 'FAULT' | 'STOP';

/** Static parameters of one instance (from the config model). */
export interface InstanceParams {
  readonly name: string;
  readonly version: 2 | 3;
  readonly vrid: number;
  /** Configured priority 1..255; 255 = address owner (RFC 5798 §5.2.4). */
  readonly priority: number;
  /** Configured Advertisement_Interval in ms (v2: whole seconds; v3: centiseconds). */
  readonly advertIntervalMs: number;
  /** Preempt_Mode (RFC 5798 §6.1), default true; false = keepalived `nopreempt`. */
  readonly preempt: boolean;
  /** keepalived preempt_delay in ms (0 = none). */
  readonly preemptDelayMs: number;
  /** Our primary address on the interface (the adverts' source): the equal-priority tie-break. */
  readonly primaryAddress: string;
  /** Send a priority-0 advert when leaving Master on shutdown (RFC 5798 §6.4.3), default true. */
  readonly priorityZeroOnStop?: boolean;
  /**
   * Make-before-break graceful stop (lvsd, not in the RFC or keepalived): a stopping master sends its
   * priority-0 advert but keeps the VIPs until another router's advert shows it has taken over (its
   * GARP has then moved the clients), or `handoverMs` passed. Default true; needs priorityZeroOnStop.
   */
  readonly stopHandover?: boolean;
  /** Upper bound of the handover wait, ms (default 2000: well inside global.shutdown_timeout's 5 s default). */
  readonly stopHandoverMaxMs?: number;
  /**
   * keepalived `state`: the state the instance wants at start. Only the address owner (255) that
   * wants MASTER goes Master at once; every other combination starts in Backup and waits
   * Master_Down_Interval (see enterFromInit). Default: MASTER for priority 255, else BACKUP.
   */
  readonly initialState?: 'MASTER' | 'BACKUP';
  /**
   * A Master answering a lower-priority master (masterRx): without an advert (keepalived
   * lower_prio_no_advert; default false: the advert is the answer that makes it yield), and with
   * or without a GARP burst (false: garp.lower_prio_repeat 0; default true).
   */
  readonly lowerPrioNoAdvert?: boolean;
  readonly lowerPrioGarp?: boolean;
  /** A Master sends one advert before stepping down for a higher priority (keepalived higher_prio_send_advert), default false. */
  readonly higherPrioSendAdvert?: boolean;
  /** Late master-down guard threshold, ms (default 3; a Node timer is ~1 ms late at p99 when idle). */
  readonly lateToleranceMs?: number;
  /** Least grace of the late guard, ms (default 2): enough for one poll phase to read the socket. */
  readonly recheckMs?: number;
}

export interface MasterInfo {
  readonly address: string;
  readonly priority: number;
  /** `now` of the last accepted advert from it. */
  readonly at: number;
}

/** Plain immutable state; JSON-serialisable (status endpoint can show it as is). */
export interface InstanceState {
  readonly params: InstanceParams;
  readonly state: VrrpState;
  /** Effective priority (base + tracking), 1..255. */
  readonly priority: number;
  /** Master_Adver_Interval, ms: the configured interval, or learned from the master (v3, §6.4.2). */
  readonly masterAdverIntervalMs: number;
  /** The master we follow in Backup (last accepted advert). */
  readonly master?: MasterInfo;
  /** Deadlines (`now` units) of the timers this machine has armed. */
  readonly timers: { readonly [K in TimerName]?: number };
  /** keepalived preempt_delay applies to "the advertisement timeout at startup": true until a master is followed or we become master. */
  readonly startupPhase: boolean;
  /** A lower-priority master was seen while Backup with preempt on (preempt_delay applies). */
  readonly lowerMasterSeen: boolean;
  /** Active fault reasons (tracking, sync group); non-empty ⇒ Fault once started. */
  readonly faults: readonly string[];
  /** The late guard already deferred the current master_down deadline once. */
  readonly rechecked: boolean;
  /** `now` of the last state change. */
  readonly since: number;
  /** Stopped (INIT) but still holding the VIPs until a new master shows up (stopHandover). */
  readonly handover?: boolean;
  /** `now` of the last answer (advert + GARP) to a lower-priority master while Master (rate limit, see masterRx). */
  readonly lowerReplyAt?: number;
}

export type VrrpEvent =
  | { readonly type: 'startup' }
  | { readonly type: 'shutdown' }
  | {
      readonly type: 'advert';
      /** Source address of the advert (IP header source), text. */
      readonly from: string;
      readonly priority: number;
      /** Advert interval carried in the packet, ms (codec's Advert.intervalMs). */
      readonly maxAdvertMs: number;
      /**
       * How long before `now` the advert was received (kernel receive timestamp), ms. The
       * Master_Down_Timer is reset "upon receipt" (RFC 5798 §6.4.2), so timers it arms run from
       * the arrival; the time a just-woken process took to read the packet is not added to them.
       */
      readonly ageMs?: number;
    }
  | {
      readonly type: 'timer';
      readonly name: TimerName;
      readonly lateMs?: number;
      /**
       * The runtime read the sockets just before this expiry (synchronously, to EAGAIN): no advert
       * is waiting unread. A late expiry still gets the late guard's grace (the master may have been
       * held up with us); the flag is carried into `late_timer` for the log.
       */
      readonly socketsRead?: boolean;
    }
  | { readonly type: 'fault'; readonly reason: string }
  | { readonly type: 'fault_cleared'; readonly reason: string }
  /** Tracking changed the effective priority (see priority.ts). */
  | { readonly type: 'priority'; readonly effective: number }
  /** A sync group member moved; this member follows (see syncgroup.ts). */
  | { readonly type: 'sync'; readonly to: 'MASTER' | 'BACKUP'; readonly group: string; readonly member: string }
  /**
   * A reload changed the instance's config, not which router it is (same name, VRID, version):
   * applied in place, the state kept (see onReconfigure). `announce`: the VIP set, or how or where
   * it is announced, changed (a Master takes the new set and announces it). A new base priority
   * comes as this event's params; the effective priority follows with a `priority` event.
   */
  | { readonly type: 'reconfigure'; readonly params: InstanceParams; readonly announce?: boolean };

export type Effect =
  | { readonly type: 'timer'; readonly name: TimerName; readonly ms: number }
  | { readonly type: 'cancel'; readonly name: TimerName }
  | { readonly type: 'send_advert'; readonly priority: number }
  | { readonly type: 'become'; readonly from: VrrpState; readonly to: VrrpState; readonly reason: string }
  | { readonly type: 'add_vips' }
  | { readonly type: 'remove_vips' }
  /** Announce the VIPs (gratuitous ARP / unsolicited NA), with the configured repeat schedule. */
  | { readonly type: 'garp'; readonly reason: string }
  /** A stop handover ended (the VIPs were just released): `new_master` or `timeout`. */
  | { readonly type: 'handover_done'; readonly reason: string }
  | { readonly type: 'notify'; readonly state: NotifyState }
  /**
   * While Master, an advert from another router that does not yield (lower priority, or equal with
   * a lower address): two masters for one VRID. `replied`: this one was answered (at most one per
   * advert interval); the runtime counts every one and logs the answered ones.
   */
  | { readonly type: 'split_brain'; readonly peer: string; readonly priority: number; readonly replied: boolean }
  /** A timer expiry arrived late and was deferred by the late guard (count it, log it). */
  | { readonly type: 'late_timer'; readonly name: TimerName; readonly lateMs: number; readonly graceMs: number; readonly socketsRead: boolean };

export interface StepResult {
  readonly state: InstanceState;
  readonly effects: readonly Effect[];
}

const DEFAULT_LATE_TOLERANCE_MS = 3;
const DEFAULT_RECHECK_MS = 2;
/** Host timers may fire marginally early (ms rounding); earlier than this is treated as stale. */
const EARLY_SLACK_MS = 1;
const OWNER = 255;

/**
 * Skew_Time, ms.
 * RFC 5798 §6.1 (v3): ((256 − Priority) × Master_Adver_Interval) / 256.
 * RFC 3768 §6.1 (v2): (256 − Priority) / 256 seconds.
 */
export function skewTimeMs(version: 2 | 3, priority: number, masterAdverIntervalMs: number): number {
  return version === 3 ? ((256 - priority) * masterAdverIntervalMs) / 256 : ((256 - priority) * 1000) / 256;
}

/** Master_Down_Interval = 3 × Master_Adver_Interval + Skew_Time (RFC 5798 §6.1, RFC 3768 §6.1). */
export function masterDownIntervalMs(version: 2 | 3, priority: number, masterAdverIntervalMs: number): number {
  return 3 * masterAdverIntervalMs + skewTimeMs(version, priority, masterAdverIntervalMs);
}

/** A new instance in Initialize. */
export function createInstance(params: InstanceParams, now = 0): InstanceState {
  return {
    params,
    state: 'INIT',
    priority: clampPriority(params.priority, params.priority),
    masterAdverIntervalMs: params.advertIntervalMs,
    timers: {},
    startupPhase: false,
    lowerMasterSeen: false,
    faults: [],
    rechecked: false,
    since: now,
  };
}

/** The master's address as far as this instance knows (ours when Master), for status and metrics. */
export function currentMaster(s: InstanceState): string | undefined {
  if (s.state === 'MASTER') return s.params.primaryAddress;
  if (s.state === 'BACKUP') return s.master?.address;
  return undefined;
}

function clampPriority(p: number, base: number): number {
  // Only the address owner advertises 255; tracking can never lift another instance to 255, and
  // 0 is reserved for "master stopping" (RFC 5798 §5.2.4; keepalived clamps to [1,254]).
  // keepalived: "if an instance has priority 255 configured, the priority cannot be reduced by
  // track_scripts, track_process etc" — the owner stays 255 (it can only be faulted).
  if (base === OWNER) return OWNER;
  if (!Number.isFinite(p)) return Math.min(254, Math.max(1, base));
  return Math.min(254, Math.max(1, Math.round(p)));
}

/** Mutable builder for one step: collects effects and the next state. */
class Tx {
  readonly effects: Effect[] = [];
  s: InstanceState;
  constructor(s: InstanceState, readonly now: number) {
    this.s = s;
  }
  set(patch: Partial<InstanceState>): void {
    this.s = { ...this.s, ...patch };
  }
  arm(name: TimerName, ms: number): void {
    const d = Math.max(0, ms);
    this.effects.push({ type: 'timer', name, ms: d });
    this.set({ timers: { ...this.s.timers, [name]: this.now + d } });
  }
  cancel(name: TimerName): void {
    if (this.s.timers[name] === undefined) return;
    this.effects.push({ type: 'cancel', name });
    const t = { ...this.s.timers };
    delete t[name];
    this.set({ timers: t });
  }
  become(to: VrrpState, reason: string): void {
    const from = this.s.state;
    this.effects.push({ type: 'become', from, to, reason });
    this.set({ state: to, since: this.now });
  }
  emit(e: Effect): void {
    this.effects.push(e);
  }
  mdi(): number {
    return masterDownIntervalMs(this.s.params.version, this.s.priority, this.s.masterAdverIntervalMs);
  }
  skew(): number {
    return skewTimeMs(this.s.params.version, this.s.priority, this.s.masterAdverIntervalMs);
  }
  result(): StepResult {
    return { state: this.s, effects: this.effects };
  }
}

/** Apply one event. Never throws; unknown or inapplicable events return the state unchanged. */
export function step(state: InstanceState, event: VrrpEvent, now: number): StepResult {
  const tx = new Tx(state, now);
  switch (event.type) {
    case 'startup':
      onStartup(tx);
      break;
    case 'shutdown':
      onShutdown(tx);
      break;
    case 'advert':
      onAdvert(tx, event);
      break;
    case 'timer':
      onTimer(tx, event.name, event.lateMs, event.socketsRead === true);
      break;
    case 'fault':
      onFault(tx, event.reason);
      break;
    case 'fault_cleared':
      onFaultCleared(tx, event.reason);
      break;
    case 'priority':
      onPriority(tx, event.effective);
      break;
    case 'sync':
      onSync(tx, event);
      break;
    case 'reconfigure':
      onReconfigure(tx, event);
      break;
    default:
      break;
  }
  return tx.result();
}

/**
 * Apply several events that became ready in the same loop turn. Timer expiries are moved after all
 * other events (stable order otherwise), so adverts that were waiting in the socket are seen before
 * a master_down expiry is acted on (issue: a late timer must not fake a master-down).
 */
export function stepBatch(state: InstanceState, events: readonly VrrpEvent[], now: number): StepResult {
  const ordered = [...events.filter((e) => e.type !== 'timer'), ...events.filter((e) => e.type === 'timer')];
  let s = state;
  const effects: Effect[] = [];
  for (const e of ordered) {
    const r = step(s, e, now);
    s = r.state;
    effects.push(...r.effects);
  }
  return { state: s, effects };
}

// --- transitions ------------------------------------------------------------------------------

/**
 * Become Master. RFC 5798 §6.4.1 (owner at startup) and §6.4.2 (Master_Down_Timer fires):
 * "Send an ADVERTISEMENT; broadcast a gratuitous ARP / unsolicited ND for each address;
 * set the Adver_Timer to Advertisement_Interval; transition to the Master state".
 * VIPs are added before announcing them (the runtime's GARP carries the VIP as sender address).
 */
function toMaster(tx: Tx, reason: string): void {
  tx.cancel('master_down');
  tx.cancel('preempt');
  tx.become('MASTER', reason);
  tx.emit({ type: 'send_advert', priority: tx.s.priority });
  tx.emit({ type: 'add_vips' });
  tx.emit({ type: 'garp', reason: 'became_master' });
  tx.arm('adver', tx.s.params.advertIntervalMs);
  const { master: _drop, lowerReplyAt: _last, ...rest } = tx.s;
  tx.s = { ...rest, startupPhase: false, lowerMasterSeen: false, rechecked: false };
  tx.emit({ type: 'notify', state: 'MASTER' });
}

/**
 * Become Backup with the Master_Down_Timer running. RFC 5798 §6.4.1 (startup, not owner):
 * "Set Master_Adver_Interval to Advertisement_Interval; set the Master_Down_Timer to
 * Master_Down_Interval; transition to the Backup state".
 */
function toBackup(tx: Tx, reason: string, downMs?: number): void {
  const wasMaster = tx.s.state === 'MASTER';
  tx.cancel('adver');
  if (wasMaster) tx.emit({ type: 'remove_vips' });
  tx.become('BACKUP', reason);
  tx.set({ rechecked: false });
  tx.arm('master_down', downMs ?? tx.mdi());
  tx.emit({ type: 'notify', state: 'BACKUP' });
}

function toFault(tx: Tx, reason: string): void {
  const st = tx.s.state;
  if (st === 'MASTER') {
    tx.cancel('adver');
    // keepalived sends a priority-0 advert when a master goes to FAULT so the backup takes over
    // after Skew_Time instead of Master_Down_Interval (the send may fail if the link is down).
    tx.emit({ type: 'send_advert', priority: 0 });
    tx.emit({ type: 'remove_vips' });
  }
  tx.cancel('master_down');
  tx.cancel('preempt');
  tx.become('FAULT', reason);
  const { master: _drop, ...rest } = tx.s;
  tx.s = { ...rest, startupPhase: false, lowerMasterSeen: false, rechecked: false };
  tx.emit({ type: 'notify', state: 'FAULT' });
}

/** The configured initial state, or keepalived's default derived from the priority. */
export function initialStateOf(p: InstanceParams): 'MASTER' | 'BACKUP' {
  return p.initialState ?? (p.priority === OWNER ? 'MASTER' : 'BACKUP');
}

/**
 * RFC 5798 §6.4.1: on Startup, the owner (255) goes Master at once, others go Backup with the
 * Master_Down_Timer running. keepalived 2.2.7 adds `state` (vrrp_scheduler.c vrrp_init_state, and
 * observed: state MASTER + priority 150 took 3.49 s alone on a link, state BACKUP + priority 255
 * took 3.06 s, state MASTER + priority 255 took 0.06 s): only an owner that also wants MASTER skips
 * the wait. A non-owner declared MASTER waits the full Master_Down_Interval like any backup (its
 * only other effects, preempt forced on and no preempt_delay, are applied by the config model).
 * Priority 255 defaults to MASTER, so an owner configured without `initial_state` follows the RFC.
 */
function enterFromInit(tx: Tx, why: string): void {
  tx.set({ masterAdverIntervalMs: tx.s.params.advertIntervalMs, startupPhase: true, lowerMasterSeen: false });
  if (tx.s.faults.length > 0) {
    toFault(tx, `fault:${tx.s.faults[0]}`);
    return;
  }
  if (tx.s.priority === OWNER && initialStateOf(tx.s.params) === 'MASTER') toMaster(tx, `${why}_owner`);
  else toBackup(tx, why);
}

function onStartup(tx: Tx): void {
  if (tx.s.state !== 'INIT') return;
  // Restarted before a stop handover ended: never enter Backup still holding the VIPs.
  if (tx.s.handover) endHandover(tx, 'restart');
  enterFromInit(tx, 'startup');
}

/**
 * RFC 5798 §6.4.2 / §6.4.3 Shutdown: Backup cancels Master_Down_Timer; Master cancels Adver_Timer
 * and sends an ADVERTISEMENT with Priority = 0; both transition to Initialize.
 */
function onShutdown(tx: Tx): void {
  const st = tx.s.state;
  if (st === 'INIT') return;
  let handover = false;
  if (st === 'MASTER') {
    tx.cancel('adver');
    const zero = tx.s.params.priorityZeroOnStop !== false;
    if (zero) tx.emit({ type: 'send_advert', priority: 0 });
    // Make-before-break: the VIPs stay until a new master advertises (onAdvert, INIT branch) or the
    // handover timer ends the wait. Backups take over after their Skew_Time (< one Master_Adver_Interval),
    // so two intervals bound the wait with room for a slow peer; never more than 2 s, so a daemon
    // stop stays inside its shutdown budget (a stop that timed out would leave the VIPs behind).
    handover = zero && tx.s.params.stopHandover !== false;
    if (!handover) tx.emit({ type: 'remove_vips' });
  }
  tx.cancel('adver');
  tx.cancel('master_down');
  tx.cancel('preempt');
  tx.become('INIT', 'shutdown');
  const { master: _drop, ...rest } = tx.s;
  tx.s = { ...rest, startupPhase: false, lowerMasterSeen: false, rechecked: false, handover };
  if (handover) tx.arm('handover', Math.min(2 * tx.s.masterAdverIntervalMs, tx.s.params.stopHandoverMaxMs ?? 2000));
  tx.emit({ type: 'notify', state: 'STOP' });
}

/** End of a stop handover: the VIPs go now. */
function endHandover(tx: Tx, reason: string): void {
  tx.cancel('handover');
  tx.set({ handover: false });
  tx.emit({ type: 'remove_vips' });
  tx.emit({ type: 'handover_done', reason });
}

function onAdvert(tx: Tx, ev: Extract<VrrpEvent, { type: 'advert' }>): void {
  const from = parseIp(ev.from);
  const me = parseIp(tx.s.params.primaryAddress);
  if (!from || !me) return;
  if (!Number.isInteger(ev.priority) || ev.priority < 0 || ev.priority > 255) return;
  // Our own advert looped back (multicast loop, or a peer list containing us): not another router.
  if (compareIp(from.bytes, me.bytes) === 0) return;
  if (tx.s.state === 'BACKUP') backupRx(tx, ev, from.text);
  else if (tx.s.state === 'MASTER') masterRx(tx, ev, from.bytes, me.bytes, from.text);
  // A stopped master handing over: a router advertising with a non-zero priority is the new master.
  else if (tx.s.state === 'INIT' && tx.s.handover && ev.priority > 0) endHandover(tx, 'new_master');
  // Otherwise Initialize and Fault ignore adverts (RFC 5798 §6.4.1: only Startup leaves Initialize).
}

/** The advert's age (see the event), never negative. */
function advertAge(ev: Extract<VrrpEvent, { type: 'advert' }>): number {
  return ev.ageMs !== undefined && ev.ageMs > 0 ? ev.ageMs : 0;
}

/** Master_Adver_Interval learning: v3 only (RFC 5798 §6.4.2); v2 intervals must match (RFC 3768 §7.1). */
function learnInterval(tx: Tx, maxAdvertMs: number): void {
  if (tx.s.params.version === 3 && Number.isFinite(maxAdvertMs) && maxAdvertMs > 0) {
    tx.set({ masterAdverIntervalMs: maxAdvertMs });
  }
}

/** RFC 5798 §6.4.2, Backup receives an ADVERTISEMENT. */
function backupRx(tx: Tx, ev: Extract<VrrpEvent, { type: 'advert' }>, fromText: string): void {
  const p = tx.s.params;
  const age = advertAge(ev);
  if (ev.priority === 0) {
    // "If the Priority in the ADVERTISEMENT is zero, then: Set the Master_Down_Timer to Skew_Time".
    // The stopping master is no longer one we follow.
    const { master: _drop, ...rest } = tx.s;
    tx.s = { ...rest, rechecked: false, lowerMasterSeen: false };
    tx.arm('master_down', tx.skew() - age);
    return;
  }
  if (!p.preempt || ev.priority >= tx.s.priority) {
    // "If Preempt_Mode is False, or if the Priority in the ADVERTISEMENT is greater than or equal
    // to the local Priority: Set Master_Adver_Interval to Adver Interval contained in the
    // ADVERTISEMENT; Recompute the Skew_Time; Recompute the Master_Down_Interval; Reset the
    // Master_Down_Timer to Master_Down_Interval".
    learnInterval(tx, ev.maxAdvertMs);
    const legit = ev.priority >= tx.s.priority;
    tx.set({
      master: { address: fromText, priority: ev.priority, at: tx.now - age },
      rechecked: false,
      // A master we rightly follow ends the "startup" and "lower master" conditions of preempt_delay.
      ...(legit ? { startupPhase: false, lowerMasterSeen: false } : {}),
    });
    if (legit) tx.cancel('preempt');
    tx.arm('master_down', tx.mdi() - age);
    return;
  }
  // "Otherwise: Discard the ADVERTISEMENT" — a lower-priority master while we may preempt: the
  // Master_Down_Timer keeps running and we take over when it fires. keepalived's preempt_delay then
  // adds its delay ("after getting the advertisement timeout ... when seeing a lower priority master").
  if (!tx.s.lowerMasterSeen) tx.set({ lowerMasterSeen: true });
}

/** RFC 5798 §6.4.3, Master receives an ADVERTISEMENT. */
function masterRx(tx: Tx, ev: Extract<VrrpEvent, { type: 'advert' }>, from: Uint8Array, me: Uint8Array, fromText: string): void {
  if (ev.priority === 0) {
    // "If the Priority in the ADVERTISEMENT is zero, then: Send an ADVERTISEMENT; Reset the
    // Adver_Timer to Advertisement_Interval".
    tx.emit({ type: 'send_advert', priority: tx.s.priority });
    tx.arm('adver', tx.s.params.advertIntervalMs);
    return;
  }
  const higher = ev.priority > tx.s.priority;
  // "...or if the Priority in the ADVERTISEMENT is equal to the local Priority and the primary IPvX
  // Address of the sender is greater than the local primary IPvX Address (based on an unsigned
  // integer comparison of the IPvX addresses in network byte order)".
  const tieLost = ev.priority === tx.s.priority && compareIp(from, me) > 0;
  if (higher || tieLost) {
    // "Cancel Adver_Timer; Set Master_Adver_Interval to Adver Interval contained in the
    // ADVERTISEMENT; Recompute the Skew_Time; Recompute the Master_Down_Interval; Set
    // Master_Down_Timer to Master_Down_Interval; Transition to the Backup state".
    // keepalived higher_prio_send_advert: one advert of ours first, so the other master knows this
    // router is there should it step down itself (it ignores it: ours is lower).
    if (higher && tx.s.params.higherPrioSendAdvert) tx.emit({ type: 'send_advert', priority: tx.s.priority });
    learnInterval(tx, ev.maxAdvertMs);
    const age = advertAge(ev);
    tx.set({ master: { address: fromText, priority: ev.priority, at: tx.now - age } });
    toBackup(tx, higher ? 'higher_priority_advert' : 'equal_priority_higher_address', tx.mdi() - age);
    return;
  }
  // "Otherwise (i.e., the ADVERTISEMENT has a lower priority...): Discard". keepalived additionally
  // answers a lower-priority master at once ("forcing new election") and refreshes ARP caches, which
  // ends a split brain within one round trip instead of one Master_Down_Interval.
  // Rate limit (lvsd): at most one answer per Advertisement_Interval. Unlimited, every forged
  // lower-priority advert made one advert and a GARP burst (5k pps in → 3.6k adverts + 18k GARPs
  // out in 5 s); a real lower-priority master needs one answer to yield, and if it missed it,
  // the next one an interval later. keepalived's knobs, mapped: lower_prio_no_advert (no advert in
  // the answer; the RFC's "discard") and garp_lower_prio_repeat 0 (no GARP in it); the burst's size
  // and second burst (garp_lower_prio_repeat / _delay) are the runtime's GARP schedule.
  const interval = tx.s.params.advertIntervalMs;
  const last = tx.s.lowerReplyAt;
  const advert = !tx.s.params.lowerPrioNoAdvert;
  const garp = tx.s.params.lowerPrioGarp ?? true;
  const replied = last === undefined || tx.now - last >= interval;
  tx.emit({ type: 'split_brain', peer: fromText, priority: ev.priority, replied });
  if (!replied) return;
  tx.set({ lowerReplyAt: tx.now });
  if (advert) tx.emit({ type: 'send_advert', priority: tx.s.priority });
  if (garp) tx.emit({ type: 'garp', reason: 'lower_priority_master' });
  if (advert) tx.arm('adver', interval);
}

/**
 * The late guard's grace for a master_down expiry `lateMs` late in state `s` (file header), or
 * undefined when the expiry is acted on at once. Exported for the runtime, which must not start a
 * takeover call for an expiry the machine will defer.
 */
export function lateGrace(s: InstanceState, lateMs: number): number | undefined {
  const p = s.params;
  const limit = lateGraceAbove(s);
  if (limit === undefined || lateMs <= limit) return undefined;
  // Adverts from the stall may be queued, or the master stalled with us and is about to send: grant
  // it the time we lost, up to half an advert interval.
  return Math.max(p.recheckMs ?? DEFAULT_RECHECK_MS, Math.min(lateMs, s.masterAdverIntervalMs / 2));
}

/** How late a master_down expiry may be in state `s` and still be acted on at once (lateGrace); undefined: any lateness. */
export function lateGraceAbove(s: InstanceState): number | undefined {
  return s.rechecked || s.master === undefined ? undefined : (s.params.lateToleranceMs ?? DEFAULT_LATE_TOLERANCE_MS);
}

function onTimer(tx: Tx, name: TimerName, lateMs: number | undefined, socketsRead: boolean): void {
  const deadline = tx.s.timers[name];
  // Not armed (cancelled, or never armed by this machine): a stale host timer. Ignore.
  if (deadline === undefined) return;
  // Armed again for later than now (an advert reset it after the host timer was queued): re-arm for
  // the remainder rather than act early.
  if (tx.now < deadline - EARLY_SLACK_MS) {
    tx.arm(name, deadline - tx.now);
    return;
  }
  const t = { ...tx.s.timers };
  delete t[name];
  tx.set({ timers: t });
  const late = Math.max(lateMs ?? 0, tx.now - deadline);
  const st = tx.s.state;
  if (name === 'handover') {
    if (tx.s.handover) endHandover(tx, 'timeout');
    return;
  }
  if (name === 'adver') {
    // RFC 5798 §6.4.3: "If the Adver_Timer fires: Send an ADVERTISEMENT; Reset the Adver_Timer".
    if (st !== 'MASTER') return;
    tx.emit({ type: 'send_advert', priority: tx.s.priority });
    tx.arm('adver', tx.s.params.advertIntervalMs);
    return;
  }
  if (st !== 'BACKUP') return;
  if (name === 'master_down') {
    const grace = lateGrace(tx.s, late);
    if (grace !== undefined) {
      tx.emit({ type: 'late_timer', name, lateMs: late, graceMs: grace, socketsRead });
      tx.set({ rechecked: true });
      tx.arm('master_down', grace);
      return;
    }
    const p = tx.s.params;
    // keepalived preempt_delay: "Seconds of delay until preemption after getting the advertisement
    // timeout at startup or when seeing a lower priority master" (keepalived.conf(5), 2.2.7).
    // Not with nopreempt, and only once per wait (the preempt timer is then running).
    if (p.preempt && p.preemptDelayMs > 0 && (tx.s.startupPhase || tx.s.lowerMasterSeen) && tx.s.timers.preempt === undefined) {
      tx.arm('preempt', p.preemptDelayMs);
      return;
    }
    // RFC 5798 §6.4.2: "If the Master_Down_Timer fires: ... transition to the Master state".
    toMaster(tx, tx.s.rechecked ? 'master_down_timeout_after_recheck' : 'master_down_timeout');
    return;
  }
  if (name === 'preempt') toMaster(tx, 'preempt_delay_expired');
}

function onFault(tx: Tx, reason: string): void {
  if (!tx.s.faults.includes(reason)) tx.set({ faults: [...tx.s.faults, reason] });
  if (tx.s.state === 'BACKUP' || tx.s.state === 'MASTER') toFault(tx, `fault:${reason}`);
}

function onFaultCleared(tx: Tx, reason: string): void {
  if (!tx.s.faults.includes(reason)) return;
  tx.set({ faults: tx.s.faults.filter((r) => r !== reason) });
  // Leaving Fault is a fresh start (keepalived re-enters Backup; the owner goes straight to Master).
  if (tx.s.state === 'FAULT' && tx.s.faults.length === 0) enterFromInit(tx, 'fault_cleared');
}

function onPriority(tx: Tx, effective: number): void {
  const p = clampPriority(effective, tx.s.params.priority);
  if (p === tx.s.priority) return;
  tx.set({ priority: p });
  // A master tells the others at once, so a backup that now outranks it can preempt (or a master
  // that gained priority stops a pending preemption) without waiting for the next Adver_Timer.
  if (tx.s.state === 'MASTER') {
    tx.emit({ type: 'send_advert', priority: p });
    tx.arm('adver', tx.s.params.advertIntervalMs);
  }
  // A backup's Skew_Time depends on its priority: it takes effect at the next accepted advert
  // (RFC 5798 §6.4.2 "Recompute the Skew_Time").
}

/**
 * keepalived sync groups: members move together. MASTER: a Backup member goes Master as if its
 * Master_Down_Timer fired. BACKUP: a Master member steps down and waits Master_Down_Interval.
 * (Fault propagation uses fault/fault_cleared events with a `sync:` reason, see syncgroup.ts.)
 */
function onSync(tx: Tx, ev: Extract<VrrpEvent, { type: 'sync' }>): void {
  const reason = `sync_group:${ev.group}:${ev.member}`;
  if (ev.to === 'MASTER' && tx.s.state === 'BACKUP') toMaster(tx, reason);
  else if (ev.to === 'BACKUP' && tx.s.state === 'MASTER') toBackup(tx, reason);
}

/**
 * A reload in place (lvsd; keepalived also keeps an instance's state across a reload): the new
 * params replace the old, nothing leaves Master or Backup.
 *  - Master: a new advert interval, or a changed VIP set (the adverts carry it), is advertised at
 *    once and the Adver_Timer restarts with the new interval; a changed VIP set is taken and
 *    announced (add_vips takes the whole set: the ones held already are left as they are).
 *  - Backup: Master_Adver_Interval follows the new interval unless it is learnt from the master we
 *    follow (v3, RFC 5798 §6.4.2); the running Master_Down_Timer is kept (an advert re-arms it with
 *    the new Skew_Time). A pending preempt_delay wait ends when preempt is turned off.
 *  - Initialize / Fault: only the params change; they apply at the next start.
 * VRID or version changes make another router: the runtime replaces such an instance (not here).
 */
function onReconfigure(tx: Tx, ev: Extract<VrrpEvent, { type: 'reconfigure' }>): void {
  const old = tx.s.params;
  const p = ev.params;
  if (p.vrid !== old.vrid || p.version !== old.version) return;
  tx.set({ params: p });
  const intervalChanged = p.advertIntervalMs !== old.advertIntervalMs;
  const st = tx.s.state;
  if (intervalChanged && (st !== 'BACKUP' || tx.s.master === undefined || p.version === 2)) tx.set({ masterAdverIntervalMs: p.advertIntervalMs });
  if (st === 'MASTER') {
    if (ev.announce) {
      tx.emit({ type: 'add_vips' });
      tx.emit({ type: 'garp', reason: 'reconfigured' });
    }
    if (intervalChanged || ev.announce) {
      tx.emit({ type: 'send_advert', priority: tx.s.priority });
      tx.arm('adver', p.advertIntervalMs);
    }
    return;
  }
  if (st === 'BACKUP' && !p.preempt && tx.s.timers.preempt !== undefined) tx.cancel('preempt');
}
