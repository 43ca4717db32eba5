import { mkdirSync, readFileSync, readlinkSync, closeSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { LvsdError } from '../core/errors.js';
import { loadAfPacket, type AfPacketAddon } from '../election/announce.js';

/** The lifecycle half of the native addon (native/afpacket/lifecycle.c). */
export interface LifecycleAddon {
  /** flock(LOCK_EX|LOCK_NB) on `path` (O_CLOEXEC, O_NOFOLLOW), then write `text`: the fd, or -1 if held. */
  lockfile(path: string, text: string): number;
  /** One datagram to a $NOTIFY_SOCKET address ('@' = abstract); 0 or the errno. */
  sdnotify(socket: string, message: string): number;
}

export function lifecycleAddon(): LifecycleAddon {
  return loadAfPacket() as AfPacketAddon & LifecycleAddon;
}

/**
 * One daemon per director, however it is started: an flock(2) on `lvsd-net<N>.lock` in the state
 * directory, N being the inode of this process's network namespace (/proc/self/ns/net). What a
 * daemon owns (VIPs, the IPVS table, VRRP sockets) belongs to a network namespace, so the lock is
 * per namespace and per state directory, not per config path: a second daemon started through a
 * symlink, another path or a hard link to the same file, or with another file altogether, is refused
 * (before, a symlinked start became MASTER too and removed the live master's VIP). The kernel drops
 * the lock when the holder dies (kill -9 included), so there is no stale lock to judge and no PID
 * to trust: a pid file naming a reused, unrelated PID blocked start-up before. Tests running two
 * directors in two namespaces on one host may share a state directory.
 *
 * flock rather than an abstract unix socket (also kernel-released and per namespace): anyone in the
 * namespace can bind an abstract name and so keep lvsd from starting, while the state directory is
 * root's (/run/lvsd).
 */
export class DirectorLock {
  private fd: number | undefined;
  readonly path: string;

  constructor(stateDir: string, private readonly addon: LifecycleAddon = lifecycleAddon()) {
    this.path = join(stateDir, `lvsd-${netnsId()}.lock`);
  }

  /** Take the lock or throw LOCKED naming the holder's PID. */
  acquire(): void {
    try {
      mkdirSync(join(this.path, '..'), { recursive: true });
    } catch (e) {
      throw new LvsdError('IO', `cannot create the state directory for ${this.path}: ${(e as Error).message}`, { cause: e });
    }
    let fd: number;
    try {
      fd = this.addon.lockfile(this.path, `${process.pid}\n`);
    } catch (e) {
      throw new LvsdError('IO', `cannot lock ${this.path}: ${(e as Error).message}`, { cause: e });
    }
    if (fd < 0) {
      const pid = this.holder();
      throw new LvsdError('LOCKED', `another lvsd (pid ${pid ?? 'unknown'}) is already running for this director (it holds ${this.path})`);
    }
    this.fd = fd;
  }

  /** The PID the holder wrote into the file (read only while someone holds the lock). */
  holder(): number | undefined {
    try {
      const n = Number(readFileSync(this.path, 'utf8').split('\n')[0]);
      return Number.isInteger(n) && n > 0 ? n : undefined;
    } catch {
      return undefined;
    }
  }

  /** Unlink, then close: a starter that locked the old file sees it unlinked and retries (lifecycle.c). */
  release(): void {
    if (this.fd === undefined) return;
    try {
      unlinkSync(this.path);
    } catch {
      /* removed by hand */
    }
    closeSync(this.fd);
    this.fd = undefined;
  }
}

/** `net4026531840` from the /proc/self/ns/net link ("net:[4026531840]"). */
function netnsId(): string {
  try {
    const m = /\[(\d+)\]/.exec(readlinkSync('/proc/self/ns/net'));
    if (m) return `net${m[1]}`;
  } catch {
    /* no /proc */
  }
  return 'net';
}
