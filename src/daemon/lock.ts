import { mkdirSync, openSync, writeSync, closeSync, readFileSync, unlinkSync } from 'node:fs';
import { dirname } from 'node:path';
import { LvsdError } from '../core/errors.js';

/**
 * One daemon per configuration file: an exclusive pid file in the state directory. A stale file
 * (its pid no longer alive) is taken over, as after a crash or SIGKILL.
 */
export class PidLock {
  private held = false;
  constructor(readonly path: string) {}

  acquire(what: string): void {
    mkdirSync(dirname(this.path), { recursive: true });
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const fd = openSync(this.path, 'wx', 0o644);
        writeSync(fd, `${process.pid}\n${what}\n`);
        closeSync(fd);
        this.held = true;
        return;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
          throw new LvsdError('IO', `cannot create pid file ${this.path}: ${(e as Error).message}`, { cause: e });
        }
      }
      const other = this.owner();
      if (other !== undefined && other !== process.pid && alive(other)) {
        throw new LvsdError('LOCKED', `another lvsd (pid ${other}) is already running with this configuration (${this.path})`);
      }
      try {
        unlinkSync(this.path); // stale
      } catch {
        /* raced with another starter; retry */
      }
    }
    throw new LvsdError('LOCKED', `could not take the pid file ${this.path}`);
  }

  owner(): number | undefined {
    try {
      const n = Number(readFileSync(this.path, 'utf8').split('\n')[0]);
      return Number.isInteger(n) && n > 0 ? n : undefined;
    } catch {
      return undefined;
    }
  }

  release(): void {
    if (!this.held) return;
    this.held = false;
    try {
      if (this.owner() === process.pid) unlinkSync(this.path);
    } catch {
      /* already gone */
    }
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
