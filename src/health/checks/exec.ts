/**
 * Exec check (keepalived MISC_CHECK): run a program without a shell in its own process group.
 * Exit 0 = healthy. With dynamic_weight (keepalived misc_dynamic) exit 2–255 is healthy too and sets
 * the weight to status − 2; exit 1 is down. When the timeout expires the whole process group gets
 * SIGKILL, so a script that forked children cannot leave them hanging.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Checker, CheckResult, CheckTarget } from './types.js';
import { detailOf, withDeadline } from './types.js';

export interface ExecCheckOptions {
  readonly command: string | readonly string[];
  readonly dynamic_weight: boolean;
  readonly env: Readonly<Record<string, string>>;
}

function killGroup(c: ChildProcess): void {
  if (c.pid === undefined || c.exitCode !== null || c.signalCode !== null) return;
  try {
    process.kill(-c.pid, 'SIGKILL');
  } catch {
    try {
      c.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }
}

export class ExecChecker implements Checker {
  readonly kind = 'exec' as const;
  private readonly argv: readonly string[];
  constructor(private readonly o: ExecCheckOptions) {
    this.argv = typeof o.command === 'string' ? o.command.trim().split(/\s+/) : o.command;
  }
  run(target: CheckTarget, signal?: AbortSignal): Promise<CheckResult> {
    let child: ChildProcess | undefined;
    return withDeadline(
      target.timeoutMs,
      signal,
      (done, onCleanup) => {
        const [cmd, ...args] = this.argv;
        if (!cmd) return done({ ok: false, reason: 'spawn_error', detail: 'empty command' });
        child = spawn(cmd, args, {
          detached: true, // own process group: the timeout kills the script and its children together
          stdio: 'ignore',
          env: { ...process.env, ...this.o.env, LVSD_RS_ADDRESS: target.address, LVSD_RS_PORT: String(target.port) },
        });
        const c = child;
        onCleanup(() => killGroup(c));
        c.once('error', (e) => done({ ok: false, reason: 'spawn_error', detail: detailOf(e) }));
        c.once('exit', (code, sig) => {
          if (code === 0) return done({ ok: true, detail: 'exit 0' });
          if (code !== null && code >= 2 && this.o.dynamic_weight) return done({ ok: true, weight: code - 2, detail: `exit ${code}: weight ${code - 2}` });
          done({ ok: false, reason: 'exit_code', detail: code !== null ? `exit ${code}` : `signal ${sig}` });
        });
      },
      () => ({ ok: false, reason: 'killed_timeout', detail: `killed after ${target.timeoutMs} ms (pid ${child?.pid ?? '?'})` }),
    );
  }
}
