/**
 * Notify scripts on VRRP transitions, keepalived-style:
 *  - `master` / `backup` / `fault` / `stop`: the configured command as written, for that state;
 *  - `any` (keepalived `notify`): the command plus `INSTANCE|GROUP NAME STATE PRIORITY`.
 * Commands run without a shell (argv), never block the event loop, are killed with their process
 * group after `timeout` seconds (src/core/scripts.ts: SIGTERM, then SIGKILL one second later), and run one at a time per instance/group in
 * order of the transitions (keepalived's per-instance script queue), so a slow `master` script can
 * never finish after the `backup` one that followed it.
 */
import { runScript } from '../core/scripts.js';
import type { Logger } from '../core/log.js';
import type { Notify } from '../config/model.js';

export type NotifyKind = 'INSTANCE' | 'GROUP';
export type NotifyStateName = 'MASTER' | 'BACKUP' | 'FAULT' | 'STOP';

export interface NotifyJob {
  readonly argv: readonly string[];
  readonly timeoutMs: number;
  /** global.script_user */
  readonly user?: string;
}

export interface NotifyResult {
  readonly argv: readonly string[];
  readonly code: number | null;
  readonly signal: string | null;
  readonly timedOut: boolean;
  readonly error?: string;
}

/** The commands a transition runs (pure): state-specific first, then `any` with keepalived's args. */
export function notifyJobs(n: Notify | undefined, kind: NotifyKind, name: string, state: NotifyStateName, priority: number): NotifyJob[] {
  if (!n) return [];
  const base = { timeoutMs: n.timeout * 1000, ...(n.script_user ? { user: n.script_user } : {}) };
  const out: NotifyJob[] = [];
  const specific = state === 'MASTER' ? n.master : state === 'BACKUP' ? n.backup : state === 'FAULT' ? n.fault : n.stop;
  if (specific?.length) out.push({ argv: specific, ...base });
  if (n.any?.length) out.push({ argv: [...n.any, kind, name, state, String(priority)], ...base });
  return out;
}

const MAX_QUEUE = 32;

/** Runs jobs serially per key (instance or group name). */
export class Notifier {
  private readonly queues = new Map<string, { jobs: NotifyJob[]; running: boolean }>();

  constructor(
    private readonly log: Logger,
    private readonly onDone?: (key: string, r: NotifyResult) => void,
  ) {}

  enqueue(key: string, jobs: readonly NotifyJob[]): void {
    if (!jobs.length) return;
    let q = this.queues.get(key);
    if (!q) {
      q = { jobs: [], running: false };
      this.queues.set(key, q);
    }
    q.jobs.push(...jobs);
    if (q.jobs.length > MAX_QUEUE) {
      const dropped = q.jobs.splice(0, q.jobs.length - MAX_QUEUE);
      this.log.warn({ key, dropped: dropped.length }, 'notify queue full: oldest scripts skipped');
    }
    if (!q.running) this.next(key, q);
  }

  private next(key: string, q: { jobs: NotifyJob[]; running: boolean }): void {
    const job = q.jobs.shift();
    if (!job) {
      q.running = false;
      return;
    }
    q.running = true;
    void this.runOne(job).then((r) => {
      if (r.error || r.timedOut || r.code !== 0) this.log.warn({ key, argv: r.argv, code: r.code, signal: r.signal, timedOut: r.timedOut, err: r.error }, 'notify script failed');
      else this.log.debug({ key, argv: r.argv }, 'notify script done');
      this.onDone?.(key, r);
      this.next(key, q);
    });
  }

  private async runOne(job: NotifyJob): Promise<NotifyResult> {
    const o = await runScript({ argv: job.argv, timeoutMs: job.timeoutMs, user: job.user });
    return { argv: job.argv, code: o.code, signal: o.signal, timedOut: o.timedOut, ...(o.error ? { error: o.error } : {}) };
  }

  /** Wait (bounded) until every queue is empty; used on stop so the STOP script gets a chance to run. */
  async drain(maxMs: number): Promise<void> {
    const end = Date.now() + maxMs;
    while (Date.now() < end && [...this.queues.values()].some((q) => q.running || q.jobs.length)) {
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}
