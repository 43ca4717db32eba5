/** Time source injected into everything that schedules; tests use ManualClock. */
export interface Clock {
  /** Monotonic milliseconds (not wall time). */
  now(): number;
  /** Wall-clock milliseconds since the epoch (for timestamps shown to people). */
  wallNow(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(h: TimerHandle): void;
}

export interface TimerHandle {
  readonly id: number;
}

export class SystemClock implements Clock {
  private readonly timers = new Map<number, NodeJS.Timeout>();
  private next = 1;
  now(): number {
    return performance.now();
  }
  wallNow(): number {
    return Date.now();
  }
  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = this.next++;
    const t = setTimeout(() => {
      this.timers.delete(id);
      fn();
    }, Math.max(0, ms));
    this.timers.set(id, t);
    return { id };
  }
  clearTimeout(h: TimerHandle): void {
    const t = this.timers.get(h.id);
    if (t) {
      clearTimeout(t);
      this.timers.delete(h.id);
    }
  }
}

/** Deterministic clock for tests: time moves only when advance() is called. */
export class ManualClock implements Clock {
  private t: number;
  private next = 1;
  private readonly pending = new Map<number, { at: number; fn: () => void }>();
  constructor(start = 0, private readonly wallOffset = 1_700_000_000_000) {
    this.t = start;
  }
  now(): number {
    return this.t;
  }
  wallNow(): number {
    return this.wallOffset + this.t;
  }
  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = this.next++;
    this.pending.set(id, { at: this.t + Math.max(0, ms), fn });
    return { id };
  }
  clearTimeout(h: TimerHandle): void {
    this.pending.delete(h.id);
  }
  /** Advance time, firing due timers in order of their deadlines. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let bestId = -1;
      let best: { at: number; fn: () => void } | undefined;
      for (const [id, p] of this.pending) {
        if (p.at <= end && (!best || p.at < best.at || (p.at === best.at && id < bestId))) {
          best = p;
          bestId = id;
        }
      }
      if (!best) break;
      this.pending.delete(bestId);
      this.t = Math.max(this.t, best.at);
      best.fn();
    }
    this.t = Math.max(this.t, end);
  }
  /**
   * A blocking sleep of the calling code (e.g. a futex wait): time moves on, no timer fires during it.
   * Inside advance() the later timers then fire at the time the sleep ended, if that is past theirs.
   */
  sleep(ms: number): void {
    this.t += Math.max(0, ms);
  }
  pendingCount(): number {
    return this.pending.size;
  }
}

/**
 * Lets timers and I/O run before the next slice of a long job (setImmediate: the check phase, after
 * this turn's poll), so a large scrape or dump never holds the event loop for long.
 */
export function yieldToLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
