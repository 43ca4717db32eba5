/**
 * Runs periodic jobs on an injected Clock with bounded concurrency.
 * - Each job's next run is scheduled when its previous run completes (no overlap of one job with
 *   itself), after the delay the job returns (interval, or retry_delay after a failure).
 * - Jitter only shortens a delay (by up to `jitter` × delay), so servers checked at the same interval
 *   drift apart instead of synchronising, while detection is never later than the configured interval.
 * - At most `maxConcurrent` runs are in flight; runs beyond that wait in FIFO order. Waiting time
 *   is not part of a check's timeout (the timeout starts when the check starts).
 *
 * Cost per run (it matters at thousands of checks per second): one Clock timer for the whole
 * scheduler, not one per job. Jobs wait in a min-heap by due time; when the timer fires, every job
 * that is due is started, and so is every job due within the next `batchMs` whose jitter window
 * allows it to start now (a run never starts before `delay × (1 − jitter)` after the previous
 * completion, nor after `delay`). One clock read per run (at its completion) and one per timer
 * firing, instead of a timer per run (Node reads the clock for every setTimeout) plus two reads.
 */
import type { Clock, TimerHandle } from '../core/clock.js';

/** A job's run: resolves to the delay before the next run. `startedAt` is Clock.now() at the start (read once per batch). */
export type JobTask = (signal: AbortSignal, startedAt: number) => Promise<number>;

export interface SchedulerOptions {
  readonly maxConcurrent?: number;
  /** Fraction of each delay removed at random (0 = none). Default 0.1. */
  readonly jitter?: number;
  readonly random?: () => number;
  /** Called when a task throws (tasks should not; the job keeps running at `retryMs`). */
  readonly onError?: (id: string, err: unknown) => void;
  /** Jobs due within this many ms are started together, inside their jitter window (default 10). */
  readonly batchMs?: number;
  /**
   * When runs wait for a slot, start them once per event-loop turn (setImmediate: after every
   * completion of this poll phase) rather than one per completion. Default false.
   */
  readonly batchQueued?: boolean;
}

interface Job {
  readonly id: string;
  readonly task: JobTask;
  /** One controller per job (not per run: allocation per check matters at thousands per second). */
  readonly ac: AbortController;
  /** Latest start (the drawn delay) and earliest start (the jitter window's lower end), Clock ms. */
  due: number;
  early: number;
  /** When it was put in the FIFO queue (Clock ms). */
  enq: number;
  /** Insertion order among equal due times (the heap is not stable by itself). */
  seq: number;
  waiting: boolean;
  running: boolean;
  removed: boolean;
  /** Completion callbacks, made once per job (not per run). */
  readonly ok: (next: number) => void;
  readonly err: (e: unknown) => void;
}

const before = (a: Job, b: Job) => a.due < b.due || (a.due === b.due && a.seq < b.seq);

export class Scheduler {
  private readonly jobs = new Map<string, Job>();
  /** Jobs waiting for their time, a binary min-heap on `due`; removed jobs are dropped when they surface. */
  private readonly heap: Job[] = [];
  private readonly queue: Job[] = [];
  private qHead = 0;
  private timer: TimerHandle | undefined;
  private timerAt = Infinity;
  private active = 0;
  private stopped = false;
  private seq = 0;
  private idle: { promise: Promise<void>; resolve: () => void } | undefined;
  private readonly max: number;
  private readonly jitter: number;
  private readonly random: () => number;
  private readonly batchMs: number;
  private readonly fire = () => this.onTimer();
  private pumpPending = false;
  private readonly pumpLater = () => {
    this.pumpPending = false;
    if (!this.stopped) this.pump();
  };
  /** Runs started in total (for status and benchmarks). */
  runs = 0;
  /** Longest time a run waited for a free slot, ms. */
  maxQueueWaitMs = 0;

  constructor(private readonly clock: Clock, private readonly opts: SchedulerOptions = {}) {
    this.max = Math.max(1, opts.maxConcurrent ?? 1000);
    this.jitter = Math.min(0.5, Math.max(0, opts.jitter ?? 0.1));
    this.random = opts.random ?? Math.random;
    this.batchMs = Math.max(0, opts.batchMs ?? 10);
  }

  get size(): number {
    return this.jobs.size;
  }
  get running(): number {
    return this.active;
  }
  get queued(): number {
    return this.queue.length - this.qHead;
  }

  has(id: string): boolean {
    return this.jobs.has(id);
  }

  /** Add a job whose first run is after `firstDelayMs` (exactly: staggering is the caller's choice). */
  add(id: string, firstDelayMs: number, task: JobTask): void {
    if (this.stopped) return;
    this.remove(id);
    const job: Job = {
      id,
      task,
      ac: new AbortController(),
      due: 0,
      early: 0,
      enq: 0,
      seq: 0,
      waiting: false,
      running: false,
      removed: false,
      ok: (next) => this.finish(job, next),
      err: (e) => {
        this.opts.onError?.(id, e);
        this.finish(job, 1000);
      },
    };
    this.jobs.set(id, job);
    const now = this.clock.now();
    const at = now + Math.max(0, firstDelayMs);
    this.push(job, at, at, now);
  }

  /** Remove a job; an in-flight run is aborted and its result discarded by the caller's task. */
  remove(id: string): void {
    const job = this.jobs.get(id);
    if (!job) return;
    this.jobs.delete(id);
    job.removed = true;
    job.ac.abort();
    if (job.waiting) {
      const qi = this.queue.indexOf(job, this.qHead);
      if (qi >= 0) this.queue.splice(qi, 1);
      job.waiting = false;
    }
    // A job in the heap is dropped when it reaches the top.
  }

  /** Stop everything: timer cleared, in-flight runs aborted and awaited. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const id of [...this.jobs.keys()]) this.remove(id);
    this.heap.length = 0;
    this.queue.length = 0;
    this.qHead = 0;
    this.disarm();
    if (this.active === 0) return;
    if (!this.idle) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      this.idle = { promise, resolve };
    }
    await this.idle.promise;
  }

  /** Delay with jitter: uniformly in [delay × (1 − jitter), delay]. */
  jittered(delayMs: number): number {
    return delayMs * (1 - this.jitter * this.random());
  }

  private push(job: Job, due: number, early: number, now: number): void {
    job.due = due;
    job.early = early;
    job.seq = this.seq++;
    const h = this.heap;
    let i = h.length;
    h.push(job);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(job, h[p]!)) break;
      h[i] = h[p]!;
      i = p;
    }
    h[i] = job;
    if (due < this.timerAt) this.armAt(due, now);
  }

  private pop(): void {
    const h = this.heap;
    const last = h.pop()!;
    if (h.length === 0) return;
    let i = 0;
    const n = h.length;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && before(h[r]!, h[l]!) ? r : l;
      if (!before(h[c]!, last)) break;
      h[i] = h[c]!;
      i = c;
    }
    h[i] = last;
  }

  private armAt(at: number, now: number): void {
    this.disarm();
    this.timerAt = at;
    this.timer = this.clock.setTimeout(this.fire, Math.max(0, at - now));
  }

  private disarm(): void {
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Infinity;
  }

  private onTimer(): void {
    this.timer = undefined;
    this.timerAt = Infinity;
    if (this.stopped) return;
    const now = this.clock.now();
    const h = this.heap;
    while (h.length) {
      const j = h[0]!;
      if (j.removed) {
        this.pop();
        continue;
      }
      if (j.due > now && (j.due > now + this.batchMs || j.early > now)) break;
      this.pop();
      if (this.active < this.max) this.start(j, now);
      else {
        j.enq = now;
        j.waiting = true;
        this.queue.push(j);
      }
    }
    while (h.length && h[0]!.removed) this.pop();
    if (h.length) this.armAt(h[0]!.due, now);
  }

  private start(job: Job, now: number): void {
    this.active++;
    this.runs++;
    job.running = true;
    let p: Promise<number>;
    try {
      p = job.task(job.ac.signal, now);
    } catch (e) {
      p = Promise.reject(e);
    }
    p.then(job.ok, job.err);
  }

  private finish(job: Job, next: number): void {
    job.running = false;
    this.active--;
    let now: number | undefined;
    if (!job.removed && !this.stopped) {
      now = this.clock.now();
      const d = Math.max(0, next);
      const due = now + this.jittered(d);
      this.push(job, due, Math.max(now + d * (1 - this.jitter), due - this.batchMs), now);
    }
    if (this.opts.batchQueued) {
      if (!this.pumpPending && this.qHead < this.queue.length) {
        this.pumpPending = true;
        setImmediate(this.pumpLater);
      }
    } else this.pump(now);
    if (this.active === 0 && this.idle) {
      const f = this.idle.resolve;
      this.idle = undefined;
      f();
    }
  }

  private pump(now?: number): void {
    if (this.qHead >= this.queue.length) return;
    while (this.active < this.max && this.qHead < this.queue.length) {
      const j = this.queue[this.qHead++]!;
      j.waiting = false;
      if (j.removed) continue;
      now ??= this.clock.now();
      const waited = now - j.enq;
      if (waited > this.maxQueueWaitMs) this.maxQueueWaitMs = waited;
      this.start(j, now);
    }
    if (this.qHead >= this.queue.length) {
      this.queue.length = 0;
      this.qHead = 0;
    } else if (this.qHead > 1024 && this.qHead * 2 > this.queue.length) {
      this.queue.splice(0, this.qHead);
      this.qHead = 0;
    }
  }
}
