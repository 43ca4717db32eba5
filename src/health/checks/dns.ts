/**
 * DNS check (keepalived DNS_CHECK): one query over UDP or TCP (RFC 1035 §4.2; TCP messages carry a
 * two-byte length prefix, RFC 7766 §8). Healthy when the response has the expected RCODE and every
 * expected answer is present among the answer records of the queried type. UDP datagrams whose id
 * or QR bit don't match are ignored, not judged (they may be stray or spoofed).
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { randomInt } from 'node:crypto';
import { parseIp } from '../../core/address.js';
import type { Checker, CheckResult, CheckTarget } from './types.js';
import { detailOf, reasonOfError, withDeadline } from './types.js';
import { endpointOf, openTcp, resetClose, type ConnectOptions } from './tcp.js';
import { decodeMessage, encodeQuery, normalizeName, QTYPES, RCODES, rcodeName, type DnsMessage, type QType } from './dns-wire.js';

export interface DnsCheckOptions extends ConnectOptions {
  readonly name: string;
  readonly qtype: QType;
  readonly transport: 'udp' | 'tcp';
  readonly expect_rcode: (typeof RCODES)[number];
  readonly expect_answers: readonly string[];
}

function normAnswer(qtype: QType, s: string): string {
  if (qtype === 'A' || qtype === 'AAAA') return parseIp(s)?.text ?? s.toLowerCase();
  if (qtype === 'TXT') return s;
  return normalizeName(s);
}

export class DnsChecker implements Checker {
  readonly kind = 'dns' as const;
  private readonly qtype: number;
  private readonly expectRcode: number;
  private readonly expected: string[];
  constructor(private readonly o: DnsCheckOptions) {
    this.qtype = QTYPES[o.qtype];
    this.expectRcode = RCODES.indexOf(o.expect_rcode);
    this.expected = o.expect_answers.map((a) => normAnswer(o.qtype, a));
  }

  /** Judge a decoded response that belongs to our query. */
  judge(m: DnsMessage): Omit<CheckResult, 'durationMs'> {
    if (m.rcode !== this.expectRcode) return { ok: false, reason: 'dns_rcode', detail: `rcode ${rcodeName(m.rcode)}, expected ${this.o.expect_rcode}` };
    if (this.expected.length === 0) return { ok: true, detail: `rcode ${rcodeName(m.rcode)}, ${m.answers.length} answers` };
    const got = new Set(m.answers.filter((a) => a.type === this.qtype).map((a) => normAnswer(this.o.qtype, a.data)));
    const missing = this.expected.filter((e) => !got.has(e));
    if (missing.length) {
      const why = m.tc ? ' (response truncated)' : '';
      return { ok: false, reason: 'dns_answer', detail: `missing ${missing.join(',')}; got ${[...got].join(',') || 'none'}${why}`.slice(0, 200) };
    }
    return { ok: true, detail: `${got.size} answers` };
  }

  run(target: CheckTarget, signal?: AbortSignal): Promise<CheckResult> {
    const id = randomInt(0, 0x10000);
    let query: Buffer;
    try {
      query = encodeQuery(id, this.o.name, this.qtype);
    } catch (e) {
      return Promise.resolve({ ok: false, reason: 'error', detail: detailOf(e), durationMs: 0 });
    }
    const ep = endpointOf(this.o, target);
    return withDeadline(target.timeoutMs, signal, (done, onCleanup) => {
      let overTcp = false;
      const onReply = (buf: Buffer, stream: boolean) => {
        let m: DnsMessage;
        try {
          m = decodeMessage(buf);
        } catch (e) {
          if (stream) done({ ok: false, reason: 'dns_malformed', detail: detailOf(e) });
          return; // a malformed datagram is dropped; the real answer may still come
        }
        if (m.id !== id || !m.qr) {
          if (stream) done({ ok: false, reason: 'dns_malformed', detail: `id ${m.id} qr ${m.qr}` });
          return;
        }
        // RFC 1035 §4.2.1 / RFC 7766 §5: a truncated UDP answer is retried over TCP (same deadline).
        if (!stream && m.tc && !overTcp && this.expected.length > 0 && m.rcode === this.expectRcode) {
          overTcp = true;
          return tcp();
        }
        done(this.judge(m));
      };
      const tcp = () => {
        const s = openTcp(this.o, target);
        onCleanup(() => resetClose(s));
        let acc = Buffer.alloc(0);
        s.once('connect', () => {
          const len = Buffer.alloc(2);
          len.writeUInt16BE(query.length, 0);
          s.write(Buffer.concat([len, query]));
        });
        s.on('data', (d: Buffer) => {
          acc = Buffer.concat([acc, d]);
          if (acc.length >= 2) {
            const n = acc.readUInt16BE(0);
            if (acc.length >= 2 + n) onReply(acc.subarray(2, 2 + n), true);
          }
        });
        s.once('error', (e) => done({ ok: false, reason: reasonOfError(e), detail: detailOf(e) }));
        s.once('close', () => done({ ok: false, reason: 'closed', detail: 'closed before a complete response' }));
      };
      if (this.o.transport === 'udp') {
        const s = dgram.createSocket(net.isIPv6(ep.host) ? 'udp6' : 'udp4');
        onCleanup(() => s.close());
        s.on('error', (e) => {
          if (overTcp) return;
          const code = (e as NodeJS.ErrnoException).code;
          done(code === 'ECONNREFUSED' ? { ok: false, reason: 'udp_unreachable', detail: 'ICMP port unreachable' } : { ok: false, reason: reasonOfError(e), detail: detailOf(e) });
        });
        s.on('message', (m) => {
          if (!overTcp) onReply(m, false);
        });
        const go = () => s.connect(ep.port, ep.host, () => s.send(query));
        if (this.o.bind_address) s.bind({ address: this.o.bind_address, port: 0 }, go);
        else go();
      } else {
        overTcp = true;
        tcp();
      }
    });
  }
}
