/**
 * Exec check (keepalived MISC_CHECK): run a program without a shell in its own process group.
 * Exit 0 = healthy. With dynamic_weight (keepalived misc_dynamic) exit 2–255 is healthy too and sets
 * the weight to status − 2; exit 1 is down. When the timeout expires the whole process group is
 * killed (src/core/scripts.ts), so a script that forked children cannot leave them hanging.
 */
import { runScript } from '../../core/scripts.js';
import type { Checker, CheckResult, CheckTarget } from './types.js';
import { detailOf, withDeadline } from './types.js';

export interface ExecCheckOptions {
  readonly command: string | readonly string[];
  readonly dynamic_weight: boolean;
  readonly env: Readonly<Record<string, string>>;
  /** Run as USER or USER:GROUP (the check's script_user, else global.script_user). */
  readonly script_user?: string | undefined;
}

export class ExecChecker implements Checker {
  readonly kind = 'exec' as const;
  private readonly argv: readonly string[];
  constructor(private readonly o: ExecCheckOptions) {
    this.argv = typeof o.command === 'string' ? o.command.trim().split(/\s+/) : o.command;
  }
  run(target: CheckTarget, signal?: AbortSignal): Promise<CheckResult> {
    let pid: number | undefined;
    const timedOut = (): Omit<CheckResult, 'durationMs'> => ({ ok: false, reason: 'killed_timeout', detail: `killed after ${target.timeoutMs} ms${pid ? ` (pid ${pid})` : ''}` });
    return withDeadline(
      target.timeoutMs,
      signal,
      (done, onCleanup) => {
        // The deadline (or the caller's abort) kills the script's whole process group.
        const stop = new AbortController();
        onCleanup(() => stop.abort());
        void runScript({
          argv: this.argv,
          timeoutMs: target.timeoutMs,
          user: this.o.script_user,
          env: { ...this.o.env, LVSD_RS_ADDRESS: target.address, LVSD_RS_PORT: String(target.port) },
          signal: stop.signal,
        }).then((r) => {
          pid = r.pid;
          if (r.error) return done({ ok: false, reason: 'spawn_error', detail: detailOf(r.error) });
          // The runner's own timer may kill the group and its exit be seen before this deadline's
          // timer runs (a loaded machine: CI, 2026-12-05): that exit is the timeout's, not the script's.
          if (r.timedOut) return done(timedOut());
          const code = r.code;
          if (code === 0) return done({ ok: true, detail: 'exit 0' });
          if (code !== null && code >= 2 && this.o.dynamic_weight) return done({ ok: true, weight: code - 2, detail: `exit ${code}: weight ${code - 2}` });
          done({ ok: false, reason: 'exit_code', detail: code !== null ? `exit ${code}` : `signal ${r.signal}` });
        });
      },
      timedOut,
    );
  }
}
