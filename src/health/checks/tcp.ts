/**
 * TCP connect check: healthy when the three-way handshake completes. The socket is then closed with
 * an RST (SO_LINGER 0 via Socket.resetAndDestroy) instead of a FIN, so neither side keeps a
 * TIME_WAIT entry (RFC 793 §3.5: only the side that sends the first FIN enters TIME_WAIT) — at
 * thousands of checks per second, FIN closes would exhaust the ephemeral port range.
 */
import net from 'node:net';
import type { Checker, CheckResult, CheckTarget } from './types.js';
import { detailOf, reasonOfError, withDeadline } from './types.js';
import { fastConnect, fastConnectAvailable, statusName } from './tcp-fast.js';

export interface ConnectOptions {
  readonly connect_address?: string | undefined;
  readonly connect_port?: number | undefined;
  readonly bind_address?: string | undefined;
}

export function endpointOf(o: ConnectOptions, t: CheckTarget): { host: string; port: number } {
  return { host: o.connect_address ?? t.address, port: o.connect_port ?? t.port };
}

/** Close a TCP socket with RST; falls back to destroy() when the handle is gone or not TCP. */
export function resetClose(s: net.Socket): void {
  try {
    if (!s.destroyed) s.resetAndDestroy();
  } catch {
    s.destroy();
  }
}

/** Open a TCP connection honouring connect override and source address. */
export function openTcp(o: ConnectOptions, t: CheckTarget): net.Socket {
  const ep = endpointOf(o, t);
  return net.connect({ host: ep.host, port: ep.port, ...(o.bind_address ? { localAddress: o.bind_address } : {}), noDelay: true });
}

export class TcpChecker implements Checker {
  readonly kind = 'tcp' as const;
  private readonly fast: boolean;
  /** `fast: false` forces the net.Socket path (the fast path is used when the binding is there). */
  constructor(private readonly opts: ConnectOptions & { fast?: boolean } = {}) {
    this.fast = opts.fast !== false && fastConnectAvailable();
  }
  run(target: CheckTarget, signal?: AbortSignal): Promise<CheckResult> {
    if (this.fast) {
      return withDeadline(target.timeoutMs, signal, (done, onCleanup) => {
        const ep = endpointOf(this.opts, target);
        const cancel = fastConnect(ep.host, ep.port, this.opts.bind_address, (status) => {
          if (status === 0) return done({ ok: true });
          const code = statusName(status);
          const e = Object.assign(new Error(`connect ${code} ${ep.host}:${ep.port}`), { code });
          done({ ok: false, reason: reasonOfError(e), detail: detailOf(e) });
        });
        onCleanup(cancel);
      });
    }
    return withDeadline(target.timeoutMs, signal, (done, onCleanup) => {
      const s = openTcp(this.opts, target);
      onCleanup(() => resetClose(s));
      s.once('connect', () => done({ ok: true }));
      s.once('error', (e) => done({ ok: false, reason: reasonOfError(e), detail: detailOf(e) }));
      s.once('close', () => done({ ok: false, reason: 'closed', detail: 'closed before connect' }));
    });
  }
}
