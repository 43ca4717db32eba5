/**
 * Running operator scripts (vrrp_script, notify commands, exec health checks, quorum and real-server
 * notify commands), the one place lvsd starts a program, like keepalived's script_security:
 *
 *  - Each script runs without a shell in its own process group (setsid: detached), so a timeout
 *    kills the group, grandchildren included: SIGTERM to the group, SIGKILL to the group one second
 *    later (kill(2) with a negative PID). Before, a timed-out script's children were left running
 *    (20 orphans in 20 s, alive after the daemon stopped).
 *  - Groups still running when the daemon stops are killed the same way (killRunningScripts).
 *  - `user` ("NAME" or "NAME:GROUP", keepalived's script_user) runs it with that user's uid and gid
 *    from /etc/passwd and /etc/group (libuv drops supplementary groups when it sets them).
 *  - scriptSecurityProblem() is the check the configuration loader applies when lvsd runs as root:
 *    a script, or a directory on its path, that a user other than root can write is refused.
 *
 * Node built-ins only (src/core imports nothing else).
 */
import { spawn } from 'node:child_process';
import { readFileSync, statSync, realpathSync } from 'node:fs';
import { dirname } from 'node:path';

export interface ScriptSpec {
  readonly argv: readonly string[];
  readonly timeoutMs: number;
  /** Run as this user ("NAME" or "NAME:GROUP"); unset: as lvsd. */
  readonly user?: string | undefined;
  /** Added to lvsd's environment. */
  readonly env?: Readonly<Record<string, string>>;
  /** Abort: the group is killed as on a timeout (counted as one). */
  readonly signal?: AbortSignal;
}

export interface ScriptOutcome {
  readonly code: number | null;
  readonly signal: string | null;
  readonly timedOut: boolean;
  readonly pid?: number;
  /** Could not be started (missing program, unknown user...). */
  readonly error?: string;
}

/** Seconds between SIGTERM and SIGKILL to a timed-out script's group. */
const KILL_GRACE_MS = 1000;

/** Process groups of scripts started and not yet reaped (leader's PID = PGID). */
const live = new Set<number>();

export interface Credentials {
  readonly uid: number;
  readonly gid: number;
}

/** uid/gid of "NAME" (its primary group) or "NAME:GROUP" from /etc/passwd and /etc/group; throws if unknown. */
export function lookupUser(spec: string): Credentials {
  const [user, group] = spec.split(':', 2) as [string, string | undefined];
  const pw = readFileSync('/etc/passwd', 'utf8').split('\n').map((l) => l.split(':')).find((f) => f[0] === user);
  if (!pw || pw.length < 4) throw new Error(`no user "${user}" in /etc/passwd`);
  let gid = Number(pw[3]);
  if (group !== undefined) {
    const gr = readFileSync('/etc/group', 'utf8').split('\n').map((l) => l.split(':')).find((f) => f[0] === group);
    if (!gr || gr.length < 3) throw new Error(`no group "${group}" in /etc/group`);
    gid = Number(gr[2]);
  }
  return { uid: Number(pw[2]), gid };
}

function killGroup(pgid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pgid, sig);
  } catch {
    /* the whole group is gone */
  }
}

/** Run one script; never rejects. */
export function runScript(spec: ScriptSpec): Promise<ScriptOutcome> {
  return new Promise((resolve) => {
    const [cmd, ...args] = spec.argv;
    if (!cmd) return resolve({ code: null, signal: null, timedOut: false, error: 'empty command' });
    let creds: Credentials | undefined;
    try {
      if (spec.user) creds = lookupUser(spec.user);
    } catch (e) {
      return resolve({ code: null, signal: null, timedOut: false, error: (e as Error).message });
    }
    let child;
    try {
      child = spawn(cmd, args, {
        detached: true, // setsid: its own process group, so a timeout reaches its children too
        stdio: 'ignore',
        ...(spec.env ? { env: { ...process.env, ...spec.env } } : {}),
        ...(creds ? { uid: creds.uid, gid: creds.gid } : {}),
      });
    } catch (e) {
      return resolve({ code: null, signal: null, timedOut: false, error: (e as Error).message });
    }
    const pid = child.pid;
    // Forget groups whose every process has gone (a PGID is not reused while any member lives).
    for (const g of live) if (!groupAlive(g)) live.delete(g);
    if (pid !== undefined) live.add(pid);
    let timedOut = false;
    let killTimer: NodeJS.Timeout | undefined;
    const expire = () => {
      if (timedOut || pid === undefined) return;
      timedOut = true;
      killGroup(pid, 'SIGTERM');
      // SIGKILL the group even after the leader exited: its children may ignore SIGTERM.
      killTimer = setTimeout(() => {
        killGroup(pid, 'SIGKILL');
        live.delete(pid);
      }, KILL_GRACE_MS);
      killTimer.unref();
    };
    const timer = setTimeout(expire, spec.timeoutMs);
    timer.unref();
    spec.signal?.addEventListener('abort', expire, { once: true });
    let settled = false;
    const finish = (o: ScriptOutcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      spec.signal?.removeEventListener('abort', expire);
      // A timed-out group stays listed until its SIGKILL; a finished one leaves whatever it started
      // on purpose alone (keepalived does the same), except at daemon stop.
      // The group stays listed while any process of it remains (checked now and at each new script).
      if (pid !== undefined && !timedOut && !groupAlive(pid)) live.delete(pid);
      resolve(o);
    };
    child.once('error', (e) => finish({ code: null, signal: null, timedOut, error: e.message }));
    child.once('exit', (code, signal) => finish({ code, signal, timedOut, ...(pid !== undefined ? { pid } : {}) }));
  });
}

/** Whether any process of group `pgid` is left (kill(2) with signal 0 on the negative PGID). */
function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** SIGKILL every script group still running (daemon stop: no script outlives lvsd). Returns how many. */
export function killRunningScripts(): number {
  const n = live.size;
  for (const pgid of live) killGroup(pgid, 'SIGKILL');
  live.clear();
  return n;
}

/**
 * keepalived script_security for a root daemon: the program and every directory above it must be
 * writable by root only — not owned by another user with owner write, not group-writable by a
 * group other than root, not world-writable (a directory with the sticky bit, such as /tmp, is
 * allowed: others cannot replace what they do not own). Both the path as written and the path
 * with symlinks resolved are checked. Returns the problem, or undefined when secure.
 */
export function scriptSecurityProblem(file: string): string | undefined {
  let real: string;
  try {
    real = realpathSync(file);
  } catch {
    return undefined; // missing: reported by the existence check
  }
  const seen = new Set<string>();
  for (const start of [file, real]) {
    for (let p = start; !seen.has(p); p = dirname(p)) {
      seen.add(p);
      let st;
      try {
        st = statSync(p);
      } catch {
        continue;
      }
      const what = p === start ? 'the script' : `directory ${p}`;
      if (st.uid !== 0 && st.mode & 0o200) return `${what === 'the script' ? `${p}` : what} is owned by uid ${st.uid} and writable by it`;
      if (st.gid !== 0 && st.mode & 0o020) return `${what === 'the script' ? `${p}` : what} is writable by group ${st.gid}`;
      if (st.mode & 0o002 && !(st.isDirectory() && st.mode & 0o1000)) return `${what === 'the script' ? `${p}` : what} is writable by everyone`;
      if (p === '/') break;
    }
  }
  return undefined;
}
