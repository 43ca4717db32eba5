/**
 * UDP check (keepalived UDP_CHECK): send a payload on a connected datagram socket and judge the reply.
 * Because the socket is connected, an ICMP port-unreachable for it is reported by the kernel as
 * ECONNREFUSED on the socket (Linux udp_err → sk_err; RFC 1122 §4.1.3.3), which is how a closed port
 * is told apart from a silent service. Without an expected reply, silence until the timeout is "up".
 */
import dgram from 'node:dgram';
import net from 'node:net';
import type { Checker, CheckResult, CheckTarget } from './types.js';
import { detailOf, reasonOfError, withDeadline } from './types.js';
import { endpointOf, type ConnectOptions } from './tcp.js';

export interface UdpCheckOptions extends ConnectOptions {
  readonly payload: string;
  readonly expect?: string | undefined;
  readonly icmp_unreachable_down: boolean;
  readonly require_reply: boolean;
}

/** "hex:0a0b" → bytes; anything else → UTF-8. Invalid hex gives undefined. */
export function bytesOf(s: string): Buffer | undefined {
  if (!s.startsWith('hex:')) return Buffer.from(s, 'utf8');
  const h = s.slice(4).replace(/\s+/g, '');
  if (h.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(h)) return undefined;
  return Buffer.from(h, 'hex');
}

export class UdpChecker implements Checker {
  readonly kind = 'udp' as const;
  private readonly payload: Buffer | undefined;
  private readonly expect: Buffer | undefined;
  constructor(private readonly o: UdpCheckOptions) {
    this.payload = bytesOf(o.payload);
    this.expect = o.expect !== undefined ? bytesOf(o.expect) : undefined;
  }
  run(target: CheckTarget, signal?: AbortSignal): Promise<CheckResult> {
    if (!this.payload || (this.o.expect !== undefined && !this.expect)) {
      return Promise.resolve({ ok: false, reason: 'error', detail: 'invalid hex in payload or expect', durationMs: 0 });
    }
    const needReply = this.o.require_reply || this.expect !== undefined;
    return withDeadline(
      target.timeoutMs,
      signal,
      (done, onCleanup) => {
        const ep = endpointOf(this.o, target);
        const s = dgram.createSocket(net.isIPv6(ep.host) ? 'udp6' : 'udp4');
        onCleanup(() => s.close());
        s.on('error', (e) => {
          const code = (e as NodeJS.ErrnoException).code;
          if (code === 'ECONNREFUSED') {
            if (this.o.icmp_unreachable_down) done({ ok: false, reason: 'udp_unreachable', detail: 'ICMP port unreachable' });
            return; // ignored: keep waiting for a reply or the timeout
          }
          done({ ok: false, reason: reasonOfError(e), detail: detailOf(e) });
        });
        s.on('message', (m) => {
          if (!this.expect) return done({ ok: true, detail: `reply of ${m.length} bytes` });
          // The reply must start with the expected bytes (a prefix lets services append counters, ids...).
          if (m.length >= this.expect.length && m.subarray(0, this.expect.length).equals(this.expect)) return done({ ok: true });
          done({ ok: false, reason: 'udp_mismatch', detail: `unexpected reply ${m.subarray(0, 32).toString('hex')}` });
        });
        const go = () =>
          s.connect(ep.port, ep.host, () => {
            s.send(this.payload!, (e) => {
              if (e) done({ ok: false, reason: reasonOfError(e), detail: detailOf(e) });
            });
          });
        if (this.o.bind_address) s.bind({ address: this.o.bind_address, port: 0 }, go);
        else go();
      },
      () => (needReply ? { ok: false, reason: 'udp_no_reply', detail: `no reply within ${target.timeoutMs} ms` } : { ok: true, detail: 'no reply and no ICMP error' }),
    );
  }
}
