/**
 * Signals from the first instant of `lvsd run`. Node installs no handler of its own, so a SIGHUP or
 * SIGTERM that arrives while the config loads and the subsystems start would otherwise kill the
 * process with the default action (a `systemctl reload` right after a restart left no daemon).
 * `captureSignals()` runs before the run command's modules are even loaded (src/cli/main.ts); the
 * signals that arrive before the daemon takes them over wait here, in order. What remains is Node's
 * own boot (~0.1-0.2 s before any JavaScript, during which dispositions are the defaults): under
 * systemd that is covered by Type=notify, which holds `reload` until READY=1 (src/daemon/notify.ts).
 *
 * This module imports nothing, so installing it costs no module loading.
 */
export type StopSignal = 'SIGTERM' | 'SIGINT';
export type LvsdSignal = StopSignal | 'SIGHUP';

const SIGNALS: readonly LvsdSignal[] = ['SIGHUP', 'SIGTERM', 'SIGINT'];

export interface SignalInbox {
  /** Hand every queued signal, then every later one, to `handler` (one handler; replaces the queue). */
  deliver(handler: (s: LvsdSignal) => void): void;
}

let inbox: (SignalInbox & { queued: LvsdSignal[] }) | undefined;

export function captureSignals(): SignalInbox {
  if (inbox) return inbox;
  let handler: ((s: LvsdSignal) => void) | undefined;
  const box = {
    queued: [] as LvsdSignal[],
    deliver(h: (s: LvsdSignal) => void) {
      handler = h;
      for (const s of box.queued.splice(0)) h(s);
    },
  };
  for (const s of SIGNALS) process.on(s, () => (handler ? handler(s) : box.queued.push(s)));
  inbox = box;
  return box;
}
