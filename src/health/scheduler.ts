/**
 * Runs periodic jobs on an injected Clock with bounded concurrency.
 * - Each job's next run is scheduled when its previous run completes (no overlap of one job with
 *   itself), after the delay the job returns (interval, or retry_delay after a failure).
 * - Jitter only shortens a delay (by up to `jitter` × delay), so servers checked at the same interval
 *   drift apart instead of synchronising, while detection is never later than the configured interval.
 * - At most `maxConcurrent` runs are in flight; runs beyond that wait in FIFO order. Waiting time
 *   is not part of a check's timeout (the timeout starts when the check starts).
 */
import type { Clock, TimerHandle } from '../core/clock.js';

export type JobTask = (signal: AbortSignal) => Promise<number>;

export interface SchedulerOptions {
  readonly maxConcurrent?: number;
  /** Fraction of each delay removed at random (0 = none). Default 0.1. */
  readonly jitter?: number;
  readonly random?: () => number;
  /** Called when a task throws (tasks should not; the job keeps running at `retryMs`). */
  readonly onError?: (id: string, err: unknown) => void;
}

interface Job {
  readonly id: string;
  readonly task: JobTask;
  timer?: TimerHandle;
  /** One controller per job (not per run: allocation per check matters at thousands per second). */
  readonly ac: AbortController;
  running: boolean;
  removed: boolean;
}

export class Scheduler {
  private readonly jobs = new Map<string, Job>();
  private readonly queue: Job[] = [];
  private active = 0;
  private stopped = false;
  private readonly inflight = new Set<Promise<void>>();
  private readonly max: number;
  private readonly jitter: number;
  private readonly random: () => number;
  /** Runs started in total (for status and benchmarks). */
  runs = 0;
  /** Longest time a run waited for a free slot, ms. */
  maxQueueWaitMs = 0;

  constructor(private readonly clock: Clock, private readonly opts: SchedulerOptions = {}) {
    this.max = Math.max(1, opts.maxConcurrent ?? 1000);
    this.jitter = Math.min(0.5, Math.max(0, opts.jitter ?? 0.1));
    this.random = opts.random ?? Math.random;
  }

  get size(): number {
    return this.jobs.size;
  }
  get running(): number {
    return this.active;
  }
  get queued(): number {
    return this.queue.length;
  }

  has(id: string): boolean {
    return this.jobs.has(id);
  }

  /** Add a job whose first run is after `firstDelayMs` (exactly: staggering is the caller's choice). */
  add(id: string, firstDelayMs: number, task: JobTask): void {
    if (this.stopped) return;
    this.remove(id);
    const job: Job = { id, task, ac: new AbortController(), running: false, removed: false };
    this.jobs.set(id, job);
    this.arm(job, firstDelayMs);
  }

  /** Remove a job; an in-flight run is aborted and its result discarded by the caller's task. */
  remove(id: string): void {
    const job = this.jobs.get(id);
    if (!job) return;
    this.jobs.delete(id);
    job.removed = true;
    if (job.timer) this.clock.clearTimeout(job.timer);
    job.ac.abort();
    const qi = this.queue.indexOf(job);
    if (qi >= 0) this.queue.splice(qi, 1);
  }

  /** Stop everything: timers cleared, in-flight runs aborted and awaited. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const id of [...this.jobs.keys()]) this.remove(id);
    this.queue.length = 0;
    await Promise.allSettled([...this.inflight]);
  }

  /** Delay with jitter: uniformly in [delay × (1 − jitter), delay]. */
  jittered(delayMs: number): number {
    return delayMs * (1 - this.jitter * this.random());
  }

  private arm(job: Job, delayMs: number): void {
    job.timer = this.clock.setTimeout(() => {
      job.timer = undefined;
      if (job.removed) return;
      const enq = this.clock.now();
      if (this.active < this.max) this.start(job, enq);
      else {
        (job as Job & { enq?: number }).enq = enq;
        this.queue.push(job);
      }
    }, Math.max(0, delayMs));
  }

  private start(job: Job, enqueuedAt: number): void {
    this.active++;
    this.runs++;
    const waited = this.clock.now() - enqueuedAt;
    if (waited > this.maxQueueWaitMs) this.maxQueueWaitMs = waited;
    job.running = true;
    let next = 1000;
    const p = (async () => {
      try {
        next = await job.task(job.ac.signal);
      } catch (e) {
        this.opts.onError?.(job.id, e);
      }
    })().finally(() => {
      this.inflight.delete(p);
      job.running = false;
      this.active--;
      if (!job.removed && !this.stopped) this.arm(job, this.jittered(next));
      this.pump();
    });
    this.inflight.add(p);
  }

  private pump(): void {
    while (this.active < this.max && this.queue.length) {
      const j = this.queue.shift()! as Job & { enq?: number };
      if (!j.removed) this.start(j, j.enq ?? this.clock.now());
    }
  }
}
