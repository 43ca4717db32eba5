/**
 * HTTP and HTTPS GET/HEAD checks (keepalived HTTP_GET / SSL_GET): expected status codes or ranges,
 * optional body regex and body digest (MD5 hex like keepalived, or sha256:HEX), Host header, TLS
 * with SNI and optional chain/name verification against a CA file. One fresh connection per check;
 * it is closed with RST once the answer is judged (see tcp.ts for why).
 */
import http from 'node:http';
import tls from 'node:tls';
import net from 'node:net';
import { createHash, type Hash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Checker, CheckResult, CheckTarget } from './types.js';
import { detailOf, reasonOfError, withDeadline } from './types.js';
import { endpointOf, openTcp, resetClose, type ConnectOptions } from './tcp.js';

export interface HttpCheckOptions extends ConnectOptions {
  readonly path: string;
  readonly status: ReadonlyArray<number | string>;
  readonly body_regex?: string | undefined;
  readonly digest?: string | undefined;
  readonly host?: string | undefined;
  readonly method: 'GET' | 'HEAD';
  readonly max_body: number;
  readonly tls?: { readonly sni?: string | undefined; readonly verify: boolean; readonly ca_file?: string | undefined } | undefined;
}

/** "200-299" / 404 → predicate. */
export function statusMatcher(spec: ReadonlyArray<number | string>): (code: number) => boolean {
  const ranges = spec.map((s) => {
    if (typeof s === 'number') return [s, s] as const;
    const [a, b] = s.split('-').map(Number);
    return [a ?? 0, b ?? a ?? 0] as const;
  });
  return (code) => ranges.some(([a, b]) => code >= a && code <= b);
}

export class HttpChecker implements Checker {
  readonly kind: 'http' | 'https';
  private readonly okStatus: (c: number) => boolean;
  private readonly regex: RegExp | undefined;
  private readonly configError: string | undefined;
  private readonly digestAlg: 'md5' | 'sha256' | undefined;
  private readonly digestHex: string | undefined;
  private ca: Buffer | undefined;

  constructor(private readonly o: HttpCheckOptions, secure: boolean) {
    this.kind = secure ? 'https' : 'http';
    this.okStatus = statusMatcher(o.status);
    let err: string | undefined;
    try {
      this.regex = o.body_regex !== undefined ? new RegExp(o.body_regex) : undefined;
    } catch (e) {
      err = `invalid body_regex: ${detailOf(e)}`;
    }
    if (o.digest) {
      const sha = o.digest.startsWith('sha256:');
      this.digestAlg = sha ? 'sha256' : 'md5';
      this.digestHex = (sha ? o.digest.slice(7) : o.digest).toLowerCase();
    }
    this.configError = err;
  }

  private caPem(): Buffer | undefined {
    if (!this.o.tls?.ca_file) return undefined;
    // Read on every check until it succeeds, so a CA file that appears later is picked up.
    this.ca ??= readFileSync(this.o.tls.ca_file);
    return this.ca;
  }

  run(target: CheckTarget, signal?: AbortSignal): Promise<CheckResult> {
    if (this.configError) return Promise.resolve({ ok: false, reason: 'error', detail: this.configError, durationMs: 0 });
    const secure = this.kind === 'https';
    return withDeadline(target.timeoutMs, signal, (done, onCleanup) => {
      const ep = endpointOf(this.o, target);
      const defPort = secure ? 443 : 80;
      const hostHeader = this.o.host ?? (net.isIPv6(ep.host) ? `[${ep.host}]` : ep.host) + (ep.port === defPort ? '' : `:${ep.port}`);
      let raw: net.Socket | undefined;
      onCleanup(() => raw && resetClose(raw));
      let ca: Buffer | undefined;
      if (secure) {
        try {
          ca = this.caPem();
        } catch (e) {
          return done({ ok: false, reason: 'tls_error', detail: `ca_file: ${detailOf(e)}` });
        }
      }
      const req = http.request({
        method: this.o.method,
        path: this.o.path,
        headers: { Host: hostHeader, 'User-Agent': 'lvsd-health', Connection: 'close', Accept: '*/*' },
        // No agent: with createConnection and agent undefined, ClientRequest uses our socket directly.
        createConnection: () => {
          raw = openTcp(this.o, target);
          if (!secure) return raw;
          const t = this.o.tls;
          const servername = t?.sni ?? this.o.host;
          return tls.connect({
            socket: raw,
            // SNI must be a DNS name (RFC 6066 §3): never send an IP literal.
            ...(servername && !net.isIP(servername) ? { servername } : {}),
            host: servername ?? ep.host,
            rejectUnauthorized: t?.verify ?? false,
            ...(ca ? { ca } : {}),
          });
        },
      });
      onCleanup(() => req.destroy());
      req.once('error', (e) => {
        const code = (e as NodeJS.ErrnoException).code ?? '';
        const reason = code.startsWith('HPE_') ? 'protocol_error' : secure && code === 'EPROTO' ? 'tls_error' : reasonOfError(e);
        done({ ok: false, reason, detail: detailOf(e) });
      });
      req.once('response', (res) => {
        const code = res.statusCode ?? 0;
        if (!this.okStatus(code)) return done({ ok: false, reason: 'bad_status', detail: `status ${code}` });
        if (!this.regex && !this.digestAlg) return done({ ok: true, detail: `status ${code}` });
        const hash: Hash | undefined = this.digestAlg ? createHash(this.digestAlg) : undefined;
        const kept: Buffer[] = [];
        let keptLen = 0;
        res.on('data', (d: Buffer) => {
          hash?.update(d);
          if (this.regex && keptLen < this.o.max_body) {
            const part = d.subarray(0, this.o.max_body - keptLen);
            kept.push(part);
            keptLen += part.length;
          }
        });
        res.once('error', (e) => done({ ok: false, reason: reasonOfError(e), detail: detailOf(e) }));
        res.once('aborted', () => done({ ok: false, reason: 'closed', detail: 'connection closed mid-body' }));
        res.once('end', () => {
          if (this.regex) {
            const body = Buffer.concat(kept).toString('utf8');
            if (!this.regex.test(body)) return done({ ok: false, reason: 'body_mismatch', detail: `body does not match /${this.o.body_regex}/` });
          }
          if (hash) {
            const got = hash.digest('hex');
            if (got !== this.digestHex) return done({ ok: false, reason: 'digest_mismatch', detail: `${this.digestAlg} ${got}` });
          }
          done({ ok: true, detail: `status ${code}` });
        });
      });
      req.end();
    });
  }
}
