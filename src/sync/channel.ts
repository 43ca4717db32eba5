/**
 * The sync channel between directors over node:dgram: authenticated frames (wire.ts) sent by unicast
 * to configured peers (IPv4 or IPv6) or by multicast to 224.0.0.81 (IPv4, TTL 1, link-local, the group
 * the kernel's own sync uses), received, authenticated, replay-checked and handed on. Every datagram
 * that is not accepted is counted by reason, never thrown.
 */
import dgram from 'node:dgram';
import { isIPv6 } from 'node:net';
import { LvsdError } from '../core/errors.js';
import { FrameType, openFrame, ReplayGuard, sealFrame, FRAME_OVERHEAD, DATA_STAMP_LEN, type DropReason, type Frame, type SeqRange } from './wire.js';
import type { SyncKey } from '../config/keys.js';

export const SYNC_MULTICAST_GROUP = '224.0.0.81';

export interface Endpoint {
  readonly address: string;
  readonly port: number;
}

export interface ChannelOptions {
  /** This director's node id (wire.nodeIdOf(router_id)). */
  readonly node: number;
  /** Keys: the first signs, every one is accepted. */
  readonly keys: readonly SyncKey[];
  /** Local port (and address: for multicast the interface's IPv4 address, for unicast any local one). */
  readonly port: number;
  readonly localAddress?: string;
  /** Unicast peers; empty → multicast to 224.0.0.81 on the interface of localAddress. */
  readonly peers: readonly Endpoint[];
  /** Epoch of this run (ms since the Unix epoch at start: larger after a restart). */
  readonly epoch: bigint;
  /** A fresh frame; `lost`: the sender's sequence numbers it skipped (also counted: onDrop 'lost'). */
  readonly onFrame: (f: Frame, from: Endpoint, lost?: SeqRange) => void;
  readonly onDrop: (reason: DropReason, count?: number) => void;
}

/**
 * Socket buffer asked for (SO_RCVBUF / SO_SNDBUF): the kernel caps it at net.core.rmem_max /
 * wmem_max (then doubles it), so on a default host (212,992) this gives 416 KiB instead of the
 * 208 KiB default; raise rmem_max for more. A full resync arrives as thousands of datagrams at once.
 */
const SOCKET_BUFFER = 4 * 1024 * 1024;
/**
 * Buffer space one datagram of a full frame is counted for in a receive queue (its skb's truesize:
 * ~2.3 KB on lo, a page and more on a veth or NIC), with room for the peer's other frames. 4 KiB
 * (a window of 104 in a 416 KiB buffer) still overflowed the peer's socket in the lab (212
 * datagrams of a 20,000-entry resync); 8 KiB: a window of 52.
 */
const DATAGRAM_TRUESIZE = 8192;
/** Bounds of the window a receiver advertises (frames): 8 frames are reported at a time. */
const WINDOW_MIN = 16;
const WINDOW_MAX = 256;

/** Largest sync message a DATA frame may carry so that the datagram fits a 1500-byte MTU (IPv6 + UDP headers). */
export const DEFAULT_FRAME_PAYLOAD = 1500 - 40 - 8 - FRAME_OVERHEAD - DATA_STAMP_LEN;

export class SyncChannel {
  private seq = 0n;
  private readonly guard = new ReplayGuard();
  private keys: readonly SyncKey[];
  private closed = false;

  private constructor(
    private readonly sock: dgram.Socket,
    private readonly opts: ChannelOptions,
    private readonly targets: readonly Endpoint[],
  ) {
    this.keys = opts.keys;
    sock.on('message', (msg, rinfo) => this.receive(msg, { address: rinfo.address, port: rinfo.port }));
  }

  static async open(opts: ChannelOptions): Promise<SyncChannel> {
    if (opts.keys.length === 0) throw new LvsdError('SYNC_KEY', 'the sync channel needs a key');
    const v6 = opts.peers.some((p) => isIPv6(p.address)) || (opts.localAddress !== undefined && isIPv6(opts.localAddress));
    if (v6 && opts.peers.length === 0) throw new LvsdError('SYNC_CHANNEL', 'multicast sync is IPv4 only (224.0.0.81); give IPv6 peers by address');
    const sock = dgram.createSocket({ type: v6 ? 'udp6' : 'udp4', reuseAddr: opts.peers.length === 0, recvBufferSize: SOCKET_BUFFER, sendBufferSize: SOCKET_BUFFER });
    const multicast = opts.peers.length === 0;
    await new Promise<void>((resolve, reject) => {
      sock.once('error', (e) => reject(new LvsdError('SYNC_CHANNEL', `cannot open the sync socket on port ${opts.port}: ${e.message}`, { cause: e })));
      // Multicast: bind the wildcard address (a socket bound to a unicast address does not receive
      // group traffic); unicast: the configured local address, if any.
      sock.bind({ port: opts.port, ...(multicast ? {} : opts.localAddress ? { address: opts.localAddress } : {}) }, () => resolve());
    });
    sock.on('error', () => undefined); // send errors (peer unreachable) are per datagram; reported by send()
    if (multicast) {
      if (!opts.localAddress) throw new LvsdError('SYNC_CHANNEL', 'multicast sync needs the interface address');
      try {
        sock.addMembership(SYNC_MULTICAST_GROUP, opts.localAddress);
        sock.setMulticastInterface(opts.localAddress);
        sock.setMulticastTTL(1);
        sock.setMulticastLoopback(false);
      } catch (e) {
        sock.close();
        throw new LvsdError('SYNC_CHANNEL', `cannot join ${SYNC_MULTICAST_GROUP} on ${opts.localAddress}: ${(e as Error).message}`, { cause: e });
      }
    }
    const targets = multicast ? [{ address: SYNC_MULTICAST_GROUP, port: opts.port }] : opts.peers;
    return new SyncChannel(sock, opts, targets);
  }

  /** Replace the keys (rotation: a reload re-reads the key file). */
  setKeys(keys: readonly SyncKey[]): void {
    if (keys.length) this.keys = keys;
  }

  get node(): number {
    return this.opts.node;
  }

  get epoch(): bigint {
    return this.opts.epoch;
  }

  /**
   * DATA frames this director's socket can hold (advertised to the sender in RESYNC_PROGRESS): its
   * receive buffer as granted by the kernel, divided by a datagram's truesize.
   */
  get receiveWindow(): number {
    let bytes = 212_992;
    try {
      bytes = this.sock.getRecvBufferSize();
    } catch {
      /* closed: the default */
    }
    return Math.max(WINDOW_MIN, Math.min(WINDOW_MAX, Math.floor(bytes / DATAGRAM_TRUESIZE)));
  }

  /** The sequence number of the last frame sent (0 before the first). */
  get lastSeq(): bigint {
    return this.seq;
  }

  /** Seals and sends one frame to every target; resolves with its sequence number once handed to the kernel. */
  async send(type: FrameType, payload: Buffer): Promise<bigint> {
    if (this.closed) return 0n;
    const seq = (this.seq += 1n);
    const b = sealFrame(this.keys[0]!, { type, node: this.opts.node, epoch: this.opts.epoch, seq, payload });
    await Promise.all(
      this.targets.map(
        (t) =>
          new Promise<void>((resolve) => {
            this.sock.send(b, t.port, t.address, () => resolve());
          }),
      ),
    );
    return seq;
  }

  private receive(msg: Buffer, from: Endpoint): void {
    const r = openFrame(this.keys, msg);
    if (!r.ok) return this.opts.onDrop(r.reason);
    const f = r.frame;
    if (f.node === this.opts.node) return this.opts.onDrop('own');
    const v = this.guard.accept(f.node, f.epoch, f.seq, f.type === FrameType.DATA || f.type === FrameType.DATA_TAIL);
    if (v.verdict !== 'fresh') return this.opts.onDrop(v.verdict);
    if (v.lost) this.opts.onDrop('lost', Number(v.lost.last - v.lost.first + 1n));
    this.opts.onFrame(f, from, v.lost);
  }

  /** The local port bound (ChannelOptions.port 0 lets the kernel pick a free one). */
  get localPort(): number {
    return this.sock.address().port;
  }

  /** Epoch last accepted from a node. */
  peerEpoch(node: number): bigint | undefined {
    return this.guard.epochOf(node);
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    return new Promise((r) => this.sock.close(() => r()));
  }
}
