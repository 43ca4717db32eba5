/**
 * TCP connect check: healthy when the three-way handshake completes. The socket is then closed with
 * an RST (SO_LINGER 0 via Socket.resetAndDestroy) instead of a FIN, so neither side keeps a
 * TIME_WAIT entry (RFC 793 §3.5: only the side that sends the first FIN enters TIME_WAIT) — at
 * thousands of checks per second, FIN closes would exhaust the ephemeral port range.
 */
import net from 'node:net';
import type { Checker, CheckReason, CheckResult, CheckTarget } from './types.js';
import { detailOf, reasonOfError, withDeadline } from './types.js';
import { cancelConnect, fastConnectAvailable, startConnect, statusName, type ConnectSink, type ConnectToken } from './tcp-fast.js';
import { Deadline, track, untrack } from './deadlines.js';

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

/**
 * One check on the fast path: the connect request, the deadline and the promise's resolve in one
 * object (no closures, no timer, two clock reads per check). Settles exactly once.
 */
class FastCheck extends Deadline implements ConnectSink {
  private token: ConnectToken | undefined;
  private settled = false;
  private readonly t0 = performance.now();
  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly timeoutMs: number,
    private readonly resolve: (r: CheckResult) => void,
  ) {
    super();
  }
  start(v6: boolean, bindAddress: string | undefined, signal: AbortSignal | undefined): void {
    if (signal?.aborted) return this.abort();
    const t = startConnect(this.host, this.port, v6, bindAddress, this);
    if (typeof t === 'number') return this.failed(t);
    this.token = t;
    track(this, this.timeoutMs, this.t0, signal);
  }
  onConnect(status: number): void {
    this.token = undefined;
    untrack(this);
    if (status === 0) this.settle(true);
    else this.failed(status);
  }
  expire(): void {
    this.cancel();
    this.settle(false, 'timeout', `no answer within ${this.timeoutMs} ms`);
  }
  abort(): void {
    this.cancel();
    this.settle(false, 'aborted', 'check cancelled');
  }
  private cancel(): void {
    if (this.token) cancelConnect(this.token);
    this.token = undefined;
  }
  private failed(status: number): void {
    const code = statusName(status);
    // Same reason and detail as an Error with this code would give (detailOf), without the stack trace.
    this.settle(false, reasonOfError({ code }), `${code}: connect ${code} ${this.host}:${this.port}`);
  }
  private settle(ok: boolean, reason?: CheckReason, detail?: string): void {
    if (this.settled) return;
    this.settled = true;
    const durationMs = performance.now() - this.t0;
    this.resolve(ok ? { ok, durationMs } : { ok, reason: reason!, detail: detail!, durationMs });
  }
}

export class TcpChecker implements Checker {
  readonly kind = 'tcp' as const;
  private readonly fast: boolean;
  private lastHost = '';
  private lastV6 = false;
  /** `fast: false` forces the net.Socket path (the fast path is used when the binding is there). */
  constructor(private readonly opts: ConnectOptions & { fast?: boolean } = {}) {
    this.fast = opts.fast !== false && fastConnectAvailable();
  }
  run(target: CheckTarget, signal?: AbortSignal): Promise<CheckResult> {
    if (this.fast) {
      const host = this.opts.connect_address ?? target.address;
      if (host !== this.lastHost) {
        this.lastHost = host;
        this.lastV6 = net.isIPv6(host);
      }
      const v6 = this.lastV6;
      return new Promise<CheckResult>((resolve) => new FastCheck(host, this.opts.connect_port ?? target.port, target.timeoutMs, resolve).start(v6, this.opts.bind_address, signal));
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
