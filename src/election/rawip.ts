/**
 * Raw IP socket through the project's addon (native/afpacket), read with recvmsg(2) so every
 * datagram comes with its ancillary data:
 *  - the kernel's receive timestamp (SO_TIMESTAMPNS, moved to CLOCK_MONOTONIC by the addon), so an
 *    advert is dated by when it arrived, not by when a just-woken or busy process got to it: the
 *    Master_Down_Timer is reset "upon receipt" (RFC 5798 §6.4.2);
 *  - for IPv6, the received hop limit (IPV6_RECVHOPLIMIT; VRRP requires 255, RFC 5798 §5.1.2.3 /
 *    §7.1) and the destination address and arrival interface (IPV6_RECVPKTINFO) — the kernel strips
 *    the IPv6 header of raw IPv6 datagrams (RFC 3542 §6), so this is the only place to read them;
 *  - for IPv4 the payload starts with the IPv4 header (TTL, addresses), as raw(7) delivers it.
 * `poll()` reads what is waiting synchronously: a deadline feeds queued adverts before acting.
 */
import { loadAfPacket, type EarlyDrops } from './announce.js';
import { LvsdError } from '../core/errors.js';

export interface RawDatagram {
  /** IPv4: the whole packet from the IPv4 header on; IPv6: the payload only. */
  readonly payload: Buffer;
  /** Source address, 4 or 16 bytes. */
  readonly src: Uint8Array;
  /** Destination address from the packet-info control message, absent if the kernel gave none. */
  readonly dst?: Uint8Array;
  /** IPv6 hop limit from IPV6_HOPLIMIT, absent if the kernel gave none (and for IPv4: read the header). */
  readonly hopLimit?: number;
  readonly ifindex: number;
  /** Datagram or control data did not fit (MSG_TRUNC / MSG_CTRUNC). */
  readonly truncated: boolean;
  /**
   * When the kernel received it, on performance.now()'s clock (its SO_TIMESTAMPNS on CLOCK_MONOTONIC
   * plus monoOffset(); the callback's entry time when the kernel gave none). A consumer computes the
   * age when it acts, so the JavaScript between here and there counts too.
   */
  readonly receivedAt: number;
}

export interface RawHandlers {
  onMessage(d: RawDatagram): void;
  onError(err: Error): void;
  /** Datagrams the addon rejected itself (IPv4 VRRP: TTL, checksum), counted per read batch. */
  onEarlyDrops?(drops: EarlyDrops): void;
}

let offset: number | undefined;
/**
 * performance.now() minus the addon's CLOCK_MONOTONIC reading, in ms. Both read CLOCK_MONOTONIC
 * (libuv's hrtime), so the offset is constant: measured once, the smallest bracket of five.
 */
export function monoOffset(): number {
  if (offset !== undefined) return offset;
  const a = loadAfPacket();
  let best = Infinity;
  for (let i = 0; i < 5; i++) {
    const before = performance.now();
    const m = a.monotonic();
    const after = performance.now();
    if (after - before < best) {
      best = after - before;
      offset = (before + after) / 2 - m;
    }
  }
  return offset!;
}

export class RawIpSocket {
  private fd: number | undefined;

  constructor(readonly family: 4 | 6, protocol: number, h: RawHandlers) {
    const a = loadAfPacket();
    const offset = monoOffset();
    this.fd = a.rawopen(family, protocol, (err, payload, src, dst, hopLimit, ifindex, truncated, rxMonoMs) => {
      if (err) return h.onError(err);
      if (!payload) return h.onEarlyDrops?.(src as EarlyDrops);
      // Built in one literal (no conditional spreads): this runs for every advert received.
      h.onMessage({
        payload,
        src: new Uint8Array(src as Buffer),
        dst: dst ? new Uint8Array(dst) : undefined,
        hopLimit: hopLimit !== undefined && hopLimit >= 0 ? hopLimit : undefined,
        ifindex: ifindex ?? 0,
        truncated: truncated ?? false,
        receivedAt: rxMonoMs !== undefined && rxMonoMs >= 0 ? Math.min(rxMonoMs + offset, performance.now()) : performance.now(),
      });
    });
  }

  /** The descriptor (for a poll(2) in the takeover call), undefined once closed. */
  get descriptor(): number | undefined {
    return this.fd;
  }

  private open(): number {
    if (this.fd === undefined) throw new LvsdError('SOCKET_CLOSED', 'raw IP socket is closed');
    return this.fd;
  }

  setOption(level: number, option: number, value: Buffer): void {
    loadAfPacket().setsockopt(this.open(), level, option, value);
  }

  /** An int option (4 bytes, host order). */
  setInt(level: number, option: number, v: number): void {
    const b = Buffer.alloc(4);
    b.writeInt32LE(v);
    this.setOption(level, option, b);
  }

  /** Synchronous non-blocking sendto(); throws with the errno code (EAGAIN, ENETUNREACH...). */
  send(dst: Uint8Array, scopeId: number, payload: Uint8Array): void {
    loadAfPacket().rawsend(this.open(), Buffer.from(dst), scopeId, Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength));
  }

  /**
   * Back-to-back payloads of `size` bytes each, all to dst, in as few sendmmsg(2) calls as fit
   * (256 a call); returns how many went (fewer when the socket's buffer filled: EAGAIN).
   */
  sendMany(dst: Uint8Array, scopeId: number, payloads: Buffer, size: number): number {
    return loadAfPacket().rawsendmany(this.open(), Buffer.from(dst), scopeId, payloads, size);
  }

  /** Deliver the datagrams waiting now, synchronously, through the handlers; returns how many. */
  poll(): number {
    return this.fd === undefined ? 0 : loadAfPacket().rawpoll(this.fd);
  }

  close(): void {
    if (this.fd === undefined) return;
    loadAfPacket().rawclose(this.fd);
    this.fd = undefined;
  }
}
