/**
 * What every checker returns. Checkers never throw: a failure is a result with a short reason from a
 * bounded set (it becomes a metric label) and a free-form detail for logs.
 */
export type CheckReason =
  | 'connect_refused'
  | 'timeout'
  | 'reset'
  | 'unreachable'
  | 'closed'
  | 'bad_status'
  | 'body_mismatch'
  | 'digest_mismatch'
  | 'protocol_error'
  | 'tls_error'
  | 'dns_rcode'
  | 'dns_answer'
  | 'dns_malformed'
  | 'udp_unreachable'
  | 'udp_no_reply'
  | 'udp_mismatch'
  | 'exit_code'
  | 'killed_timeout'
  | 'spawn_error'
  | 'aborted'
  | 'error';

export interface CheckResult {
  readonly ok: boolean;
  readonly reason?: CheckReason;
  readonly detail?: string;
  readonly durationMs: number;
  /** Dynamic weight reported by the check (exec with dynamic_weight). */
  readonly weight?: number;
}

/** Where a check goes: the real server's endpoint and the effective timeout (check's own or policy's). */
export interface CheckTarget {
  readonly address: string;
  readonly port: number;
  readonly timeoutMs: number;
}

export type CheckKind = 'tcp' | 'http' | 'https' | 'udp' | 'dns' | 'exec';

export interface Checker {
  readonly kind: CheckKind;
  run(target: CheckTarget, signal?: AbortSignal): Promise<CheckResult>;
}

/** Map a socket error to a reason; unknown codes collapse to 'error' so the label set stays bounded. */
export function reasonOfError(e: unknown): CheckReason {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case 'ECONNREFUSED':
      return 'connect_refused';
    case 'ECONNRESET':
    case 'EPIPE':
      return 'reset';
    case 'ETIMEDOUT':
      return 'timeout';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EADDRNOTAVAIL':
      return 'unreachable';
    default:
      if (typeof code === 'string' && (code.startsWith('ERR_SSL') || code.startsWith('ERR_TLS') || /CERT|SELF_SIGNED|UNABLE_TO/.test(code))) return 'tls_error';
      return 'error';
  }
}

export function detailOf(e: unknown): string {
  const err = e as NodeJS.ErrnoException | undefined;
  const s = err?.code ? `${err.code}: ${err.message}` : String((err as Error | undefined)?.message ?? e);
  return s.length > 200 ? s.slice(0, 200) : s;
}

/**
 * Abort subscriptions without an EventTarget listener per check (add/removeEventListener showed up
 * at ~5 % of the CPU at 5,000 checks/s): one real listener per signal, a Set of callbacks behind it.
 */
const abortSubs = new WeakMap<AbortSignal, Set<() => void>>();
function subscribeAbort(signal: AbortSignal, fn: () => void): () => void {
  let set = abortSubs.get(signal);
  if (!set) {
    const s = (set = new Set());
    abortSubs.set(signal, s);
    signal.addEventListener('abort', () => { for (const f of [...s]) f(); }, { once: true });
  }
  set.add(fn);
  return () => set!.delete(fn);
}

/**
 * Runs `body` with a deadline and an optional abort signal; `body` receives a `done` callback that
 * settles exactly once and a `cleanup` registration. Guarantees the result arrives, whatever the
 * socket does, and that resources are released.
 */
export function withDeadline(
  timeoutMs: number,
  signal: AbortSignal | undefined,
  body: (done: (r: Omit<CheckResult, 'durationMs'>) => void, onCleanup: (fn: () => void) => void) => void,
  onTimeout: () => Omit<CheckResult, 'durationMs'> = () => ({ ok: false, reason: 'timeout', detail: `no answer within ${timeoutMs} ms` }),
): Promise<CheckResult> {
  const t0 = performance.now();
  return new Promise<CheckResult>((resolve) => {
    const cleanups: Array<() => void> = [];
    let settled = false;
    let unsubscribe: (() => void) | undefined;
    const done = (r: Omit<CheckResult, 'durationMs'>) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      unsubscribe?.();
      for (const c of cleanups.reverse()) {
        try {
          c();
        } catch {
          /* releasing a resource must not turn a result into a throw */
        }
      }
      resolve({ ...r, durationMs: performance.now() - t0 });
    };
    const onAbort = () => done({ ok: false, reason: 'aborted', detail: 'check cancelled' });
    // Event-loop stall guard: Node runs expired timers before polling for I/O, so after a stall
    // longer than the timeout the timer would win even when the answer arrived in time. Deciding in
    // the check phase (setImmediate, after this iteration's poll) lets already-arrived I/O win.
    const timer = setTimeout(() => setImmediate(() => done(onTimeout())), timeoutMs);
    if (signal?.aborted) return onAbort();
    if (signal) unsubscribe = subscribeAbort(signal, onAbort);
    try {
      body(done, (fn) => cleanups.push(fn));
    } catch (e) {
      done({ ok: false, reason: reasonOfError(e), detail: detailOf(e) });
    }
  });
}
