/**
 * systemd readiness (sd_notify(3)): with Type=notify, systemd considers the start done, and lets
 * `systemctl reload` through, only once READY=1 arrives on $NOTIFY_SOCKET. lvsd sends it after its
 * signal handlers are installed and every subsystem has started, STOPPING=1 when it begins to
 * stop. The datagram is sent by the native addon (lifecycle.c) from the main process itself, so
 * the unit needs no NotifyAccess=all and no systemd-notify child (whose message systemd may fail to
 * attribute to the unit once that short-lived process has exited). The variable is removed from the
 * environment so notify and check scripts cannot speak for the daemon.
 */
import type { Logger } from '../core/log.js';
import { lifecycleAddon, type LifecycleAddon } from './lock.js';

export class SystemdNotifier {
  private readonly socket: string | undefined;
  constructor(private readonly log: Logger, env: NodeJS.ProcessEnv = process.env, private readonly addon?: LifecycleAddon) {
    this.socket = env.NOTIFY_SOCKET || undefined;
    delete env.NOTIFY_SOCKET;
  }

  send(message: 'READY=1' | 'STOPPING=1'): void {
    if (!this.socket) return;
    let err: number;
    try {
      err = (this.addon ?? lifecycleAddon()).sdnotify(this.socket, message);
    } catch (e) {
      this.log.warn({ socket: this.socket, err: (e as Error).message }, 'cannot notify systemd');
      return;
    }
    if (err) this.log.warn({ socket: this.socket, errno: err, message }, 'cannot notify systemd');
    else this.log.debug({ message }, 'notified systemd');
  }
}
