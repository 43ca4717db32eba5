/**
 * IPv6 raw socket through the project's addon (native/afpacket), read with recvmsg(2) so every
 * datagram comes with the ancillary data an IPv6 raw socket only gives that way (RFC 3542 §6): the
 * received hop limit (IPV6_RECVHOPLIMIT; VRRP requires 255, RFC 5798 §5.1.2.3 / §7.1) and the
 * destination address and arrival interface (IPV6_RECVPKTINFO). The kernel strips the IPv6 header
 * of raw IPv6 datagrams, so this is the only place the hop limit can be read from.
 */
import { loadAfPacket } from './announce.js';
import { LvsdError } from '../core/errors.js';

export interface Ip6Datagram {
  readonly payload: Buffer;
  /** Source address, 16 bytes. */
  readonly src: Uint8Array;
  /** Destination address from IPV6_PKTINFO (16 bytes), absent if the kernel gave none. */
  readonly dst?: Uint8Array;
  /** Hop limit from IPV6_HOPLIMIT, absent if the kernel gave none. */
  readonly hopLimit?: number;
  readonly ifindex: number;
  /** Datagram or control data did not fit (MSG_TRUNC / MSG_CTRUNC). */
  readonly truncated: boolean;
}

export interface Ip6Handlers {
  onMessage(d: Ip6Datagram): void;
  onError(err: Error): void;
}

export class Ip6RawSocket {
  private fd: number | undefined;

  constructor(protocol: number, h: Ip6Handlers) {
    const a = loadAfPacket();
    this.fd = a.ip6open(protocol, (err, payload, src, dst, hopLimit, ifindex, truncated) => {
      if (err) return h.onError(err);
      h.onMessage({
        payload: payload!,
        src: new Uint8Array(src!),
        ...(dst ? { dst: new Uint8Array(dst) } : {}),
        ...(hopLimit !== undefined && hopLimit >= 0 ? { hopLimit } : {}),
        ifindex: ifindex ?? 0,
        truncated: truncated ?? false,
      });
    });
  }

  private open(): number {
    if (this.fd === undefined) throw new LvsdError('SOCKET_CLOSED', 'IPv6 raw socket is closed');
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
    loadAfPacket().ip6send(this.open(), Buffer.from(dst), scopeId, Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength));
  }

  close(): void {
    if (this.fd === undefined) return;
    loadAfPacket().ip6close(this.fd);
    this.fd = undefined;
  }
}
