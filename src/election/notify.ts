/**
 * Notify scripts on VRRP transitions, keepalived-style:
 *  - `master` / `backup` / `fault` / `stop`: the configured command as written, for that state;
 *  - `any` (keepalived `notify`): the command plus `INSTANCE|GROUP NAME STATE PRIORITY`.
 * Commands run without a shell (argv), never block the event loop, are killed after `timeout`
 * seconds (SIGTERM, then SIGKILL one second later), and run one at a time per instance/group in
 * order of the transitions (keepalived's per-instance script queue), so a slow `master` script can
 * never finish after the `backup` one that followed it.
 */
import { spawn } from 'node:child_process';
import type { Logger } from '../core/log.js';
import { errorMessage } from '../core/errors.js';
import type { Notify } from '../config/model.js';

export type NotifyKind = 'INSTANCE' | 'GROUP';
export type NotifyStateName = 'MASTER' | 'BACKUP' | 'FAULT' | 'STOP';

export interface NotifyJob {
  readonly argv: readonly string[];
  readonly timeoutMs: number;
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
  const timeoutMs = n.timeout * 1000;
  const out: NotifyJob[] = [];
  const specific = state === 'MASTER' ? n.master : state === 'BACKUP' ? n.backup : state === 'FAULT' ? n.fault : n.stop;
  if (specific?.length) out.push({ argv: specific, timeoutMs });
  if (n.any?.length) out.push({ argv: [...n.any, kind, name, state, String(priority)], timeoutMs });
  return out;
}

const MAX_QUEUE = 32;

/** Runs jobs serially per key (instance or group name). */
export class Notifier {
  private readonly queues = new Map<string, { jobs: NotifyJob[]; running: boolean }>();
  private readonly live = new Set<number>();

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

  private runOne(job: NotifyJob): Promise<NotifyResult> {
    return new Promise((resolve) => {
      const [cmd, ...args] = job.argv;
      if (!cmd) return resolve({ argv: job.argv, code: null, signal: null, timedOut: false, error: 'empty command' });
      let timedOut = false;
      let killTimer: NodeJS.Timeout | undefined;
      const child = spawn(cmd, args, { stdio: 'ignore', detached: false });
      if (child.pid) this.live.add(child.pid);
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGTERM');
        killTimer = setTimeout(() => child.kill('SIGKILL'), 1000);
        killTimer.unref();
      }, job.timeoutMs);
      timer.unref();
      let settled = false;
      const finish = (r: NotifyResult) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (killTimer) clearTimeout(killTimer);
        if (child.pid) this.live.delete(child.pid);
        resolve(r);
      };
      child.on('error', (e) => finish({ argv: job.argv, code: null, signal: null, timedOut, error: errorMessage(e) }));
      child.on('exit', (code, signal) => finish({ argv: job.argv, code, signal, timedOut }));
    });
  }

  /** Wait (bounded) until every queue is empty; used on stop so the STOP script gets a chance to run. */
  async drain(maxMs: number): Promise<void> {
    const end = Date.now() + maxMs;
    while (Date.now() < end && [...this.queues.values()].some((q) => q.running || q.jobs.length)) {
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}
