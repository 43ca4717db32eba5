/**
 * Check deadlines without a timer per check. Checks with the same timeout that start in order also
 * expire in order, so each timeout value keeps a FIFO (doubly linked: a check that completes unlinks
 * itself in O(1)) and one timer for the head. Node reads the clock for every setTimeout, and a
 * Timeout object is allocated each time; at thousands of checks per second a list entry is cheaper
 * (inside the UML lab, where every clock read is a system call, ~20 µs per check).
 *
 * The timer is left armed when the head completes (it fires at most once per timeout, then re-arms
 * for the new head) and is unref'd: a check in flight keeps the loop alive with its own handle.
 *
 * Event-loop stall guard, as in withDeadline: the timer only schedules the expiry for the check
 * phase (setImmediate), after this iteration's poll phase, so an answer that already arrived during
 * a stall completes its check first instead of losing to a late timer; and only deadlines that had
 * passed when the timer fired expire then (see onImmediate).
 *
 * Abort: one 'abort' listener per AbortSignal (the scheduler has one signal per job, not per run),
 * with the deadlines using that signal in a Set behind it.
 */

/** Something with a deadline; `at` is in performance.now() ms. */
export abstract class Deadline {
  at = 0;
  /** @internal list links */
  prev: Deadline | undefined = undefined;
  next: Deadline | undefined = undefined;
  list: DeadlineList | undefined = undefined;
  signal: AbortSignal | undefined = undefined;
  /** The deadline passed (called once, after the entry has been removed). */
  abstract expire(): void;
  /** The signal given to track() was aborted (called once, after the entry has been removed). */
  abstract abort(): void;
}

class DeadlineList {
  private head: Deadline | undefined;
  private tail: Deadline | undefined;
  private timer: NodeJS.Timeout | undefined;
  private expiring = false;
  /** When the timer fired (timers phase): only deadlines that had passed by then may expire. */
  private cutoff = 0;
  private readonly onTimer = () => {
    this.timer = undefined;
    this.expiring = true;
    this.cutoff = performance.now();
    setImmediate(this.onImmediate);
  };
  private readonly onImmediate = () => {
    this.expiring = false;
    // Not `now`: a check started during this iteration's poll phase (from a completion callback)
    // has not been polled yet — its socket is added to epoll at the next poll — and after a long
    // poll phase its deadline may already be behind `now`. A per-check timer could not fire before
    // the next iteration either; the cutoff keeps that rule: one poll phase after the deadline.
    let d = this.head;
    while (d && d.at <= this.cutoff) {
      untrack(d);
      d.expire();
      d = this.head;
    }
    if (d) this.arm(d.at - performance.now());
  };
  constructor(private readonly timeoutMs: number) {}

  add(d: Deadline, now: number): void {
    d.at = now + this.timeoutMs;
    d.list = this;
    d.prev = this.tail;
    d.next = undefined;
    if (this.tail) this.tail.next = d;
    else this.head = d;
    this.tail = d;
    if (!this.timer && !this.expiring) this.arm(this.timeoutMs);
  }

  remove(d: Deadline): void {
    if (d.prev) d.prev.next = d.next;
    else this.head = d.next;
    if (d.next) d.next.prev = d.prev;
    else this.tail = d.prev;
    d.prev = d.next = d.list = undefined;
  }

  private arm(ms: number): void {
    this.timer = setTimeout(this.onTimer, Math.max(1, Math.ceil(ms)));
    this.timer.unref();
  }
}

const lists = new Map<number, DeadlineList>();
const bySignal = new WeakMap<AbortSignal, Set<Deadline>>();

function onAbort(this: AbortSignal): void {
  const set = bySignal.get(this);
  if (!set) return;
  for (const d of [...set]) {
    untrack(d);
    d.abort();
  }
}

/**
 * Start tracking `d`: `d.expire()` once `timeoutMs` have passed since `now` (performance.now()),
 * `d.abort()` when `signal` aborts, whichever comes first; untrack(d) when the check completes.
 * The caller checks `signal.aborted` before.
 */
export function track(d: Deadline, timeoutMs: number, now: number, signal: AbortSignal | undefined): void {
  let list = lists.get(timeoutMs);
  if (!list) lists.set(timeoutMs, (list = new DeadlineList(timeoutMs)));
  list.add(d, now);
  if (signal) {
    let set = bySignal.get(signal);
    if (!set) {
      bySignal.set(signal, (set = new Set()));
      signal.addEventListener('abort', onAbort, { once: true });
    }
    set.add(d);
    d.signal = signal;
  }
}

/** Stop tracking `d` (idempotent). */
export function untrack(d: Deadline): void {
  d.list?.remove(d);
  if (d.signal) {
    bySignal.get(d.signal)?.delete(d);
    d.signal = undefined;
  }
}
