/**
 * The real mechanisms behind lvsd's sync channel (wired by src/daemon): the kernel's connection
 * table from /proc, the loopback injector feeding the kernel's backup sync daemon, lo's multicast
 * flag, an interface's IPv4 address.
 */
import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import { endianness, networkInterfaces } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { createRtNetlink } from 'netlink';
import { LvsdError } from '../core/errors.js';
import { SYNC_GROUP_V4, SYNC_PORT } from './codec.js';

/** The kernel's connection table (IPv4 and IPv6 entries alike), read by the table worker (table-worker.ts). */
export const CONN_TABLE = '/proc/net/ip_vs_conn';

/**
 * The kernel backup daemon's socket in /proc/net/udp (ip_vs_sync.c make_receive_sock binds it to
 * 224.0.0.81:8848 on its interface): bytes waiting in its receive queue and datagrams it dropped
 * (sk_drops: the queue was full). /proc prints the address as the 32-bit value in host order.
 */
export function backupDaemonQueue(procNetUdp: string, le = endianness() === 'LE'): { queued: number; drops: number } | undefined {
  const group = SYNC_GROUP_V4.split('.').map((o) => Number(o).toString(16).toUpperCase().padStart(2, '0'));
  const local = `${(le ? group.reverse() : group).join('')}:${SYNC_PORT.toString(16).toUpperCase().padStart(4, '0')}`;
  for (const line of procNetUdp.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f[1] !== local) continue;
    const rx = parseInt(f[4]?.split(':')[1] ?? '', 16);
    const drops = Number(f[f.length - 1]);
    if (Number.isFinite(rx) && Number.isFinite(drops)) return { queued: rx, drops };
  }
  return undefined;
}

/** Pacing of the hand-over: check the daemon's queue every CHECK_EVERY messages, wait while it holds more than QUEUE_HIGH bytes. */
const CHECK_EVERY = 16;
/**
 * A third of the default receive buffer (net.core.rmem_default, 212,992 bytes; the daemon keeps it
 * unless sync_sock_size is set): one loopback datagram of a 1,400-byte message costs ~2.3 KB of it
 * (its truesize), so ~90 fit; 16 more on top of this mark still fit.
 */
const QUEUE_HIGH = 64 * 1024;
/** Longest wait for the daemon to drain before sending anyway (its drops are counted then). */
const DRAIN_LIMIT_MS = 1000;
/** Messages waiting for the hand-over at most (a full resync of 200,000 IPv4 entries is ~5,300). */
const MAX_PENDING = 20_000;

/**
 * A UDP socket that multicasts sync messages to 224.0.0.81:8848 out of lo with loopback on: the
 * kernel backup daemon bound to lo receives them as from a master daemon (ip_vs_sync.c
 * make_receive_sock binds the group and port on the interface; nothing leaves the host).
 * Messages go one at a time, in order, paced by the daemon's receive queue: a full resync hands
 * thousands of messages over at once, and the daemon's socket (a kernel thread that drains it
 * when scheduled) would otherwise drop what does not fit. Its drops are reported (onDrops).
 */
export class LoopbackInjector {
  private chain: Promise<void> = Promise.resolve();
  private pending = 0;
  private sinceCheck = 0;
  private drops: number | undefined;

  private constructor(
    private readonly sock: dgram.Socket,
    private readonly onDrops: (n: number) => void,
    private readonly procNetUdp: string,
  ) {}

  static async open(onDrops: (n: number) => void = () => undefined, procNetUdp = '/proc/net/udp'): Promise<LoopbackInjector> {
    const sock = dgram.createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      sock.bind(0, '127.0.0.1', () => resolve());
    });
    sock.setMulticastInterface('127.0.0.1');
    sock.setMulticastLoopback(true);
    sock.setMulticastTTL(1);
    sock.on('error', () => undefined);
    return new LoopbackInjector(sock, onDrops, procNetUdp);
  }

  /**
   * Resolves once the message is handed to lo; rejects when MAX_PENDING messages already wait.
   * The chain orders the sends and the queue checks; it does not wait for each send's completion
   * (a loop turn each): the sends between two checks go out back to back, in order (libuv queues
   * a socket's sends in order). The queue check runs after every CHECK_EVERY-th message, not
   * before it: a lone message (a new connection at a low rate) never waits for a read of
   * /proc/net/udp, only the ones queued behind it.
   */
  send(message: Buffer): Promise<void> {
    if (this.pending >= MAX_PENDING) return Promise.reject(new Error('hand-over queue full'));
    this.pending++;
    let sent!: Promise<void>;
    const issued = this.chain.then(() => {
      sent = new Promise<void>((resolve, reject) => this.sock.send(message, SYNC_PORT, SYNC_GROUP_V4, (e) => (e ? reject(e) : resolve())));
    });
    this.chain = issued
      .then(async () => {
        if (++this.sinceCheck < CHECK_EVERY) return;
        this.sinceCheck = 0;
        await this.drain();
      })
      .catch(() => undefined);
    return issued.then(() => sent).finally(() => this.pending--);
  }

  /** Waits (bounded) while the daemon's queue is above QUEUE_HIGH; reports new drops. */
  private async drain(): Promise<void> {
    const end = performance.now() + DRAIN_LIMIT_MS;
    for (;;) {
      // Synchronous: a few KB of this namespace's sockets, one read() or two. fs.promises.readFile is
      // five thread-pool hops (open, fstat, read, read, close) once per 16 messages: in the busy lab
      // guest those hops held a resync's hand-over back (5.3-12.4 s after the answer; 1.3-2.5 s with
      // this read, same host load; bench/results/sync.md 2026-12-04 16:58-17:20).
      let text = '';
      try {
        text = readFileSync(this.procNetUdp, 'latin1');
      } catch {
        /* no /proc: nothing to pace against */
      }
      const q = backupDaemonQueue(text);
      if (!q) return; // no daemon socket seen: nothing to pace against (its absence shows in the kernel table)
      if (this.drops !== undefined && q.drops > this.drops) this.onDrops(q.drops - this.drops);
      this.drops = q.drops;
      if (q.queued <= QUEUE_HIGH || performance.now() > end) return;
      await sleep(1);
    }
  }

  close(): Promise<void> {
    return new Promise((r) => this.sock.close(() => r()));
  }
}

/** `ip link set lo multicast on`: the kernel's backup daemon can only join the group on a multicast link. */
export async function enableLoopbackMulticast(): Promise<void> {
  const rt = createRtNetlink();
  try {
    await rt.setLink({ index: 1, flags: { multicast: true }, change: { multicast: true } });
  } catch (e) {
    throw new LvsdError('SYNC_CHANNEL', `cannot enable multicast on lo: ${(e as Error).message}`, { cause: e });
  } finally {
    rt.socket.socket.close();
  }
}

/** First IPv4 address of an interface (the multicast channel's source and membership). */
export function interfaceIPv4(name: string): string | undefined {
  return networkInterfaces()[name]?.find((a) => a.family === 'IPv4')?.address;
}
