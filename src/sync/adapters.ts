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
import { joinMessages, MAX_RECORDS_PER_MESSAGE, SYNC_GROUP_V4 } from './codec.js';

/** The kernel's connection table (IPv4 and IPv6 entries alike), read by the table worker (table-worker.ts). */
export const CONN_TABLE = '/proc/net/ip_vs_conn';

/**
 * The kernel backup daemon's socket in /proc/net/udp (ip_vs_sync.c make_receive_sock binds it to
 * the group and its port, 224.0.0.81:PORT, on its interface): bytes waiting in its receive queue and datagrams it dropped
 * (sk_drops: the queue was full). /proc prints the address as the 32-bit value in host order.
 */
export function backupDaemonQueue(procNetUdp: string, port: number, le = endianness() === 'LE'): { queued: number; drops: number } | undefined {
  const group = SYNC_GROUP_V4.split('.').map((o) => Number(o).toString(16).toUpperCase().padStart(2, '0'));
  const local = `${(le ? group.reverse() : group).join('')}:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  for (const line of procNetUdp.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f[1] !== local) continue;
    const rx = parseInt(f[4]?.split(':')[1] ?? '', 16);
    const drops = Number(f[f.length - 1]);
    if (Number.isFinite(rx) && Number.isFinite(drops)) return { queued: rx, drops };
  }
  return undefined;
}

/**
 * Pacing of the hand-over: check the daemon's queue after every CHECK_BYTES of messages sent, wait
 * while it holds more than QUEUE_HIGH bytes.
 */
const CHECK_BYTES = 40 * 1024;
/**
 * A third of the default receive buffer (net.core.rmem_default, 212,992 bytes; the daemon keeps it
 * unless sync_sock_size is set). A datagram on lo costs more of it than its length (its truesize:
 * ~2.3 KB for a 1,400-byte message, ~17 KB for a joined one of 9 KB), so up to CHECK_BYTES sent on
 * top of this mark (~90 KB of truesize at most) still fit.
 */
const QUEUE_HIGH = 64 * 1024;
/** Longest wait for the daemon to drain before sending anyway (its drops are counted then). */
const DRAIN_LIMIT_MS = 1000;
/**
 * A datagram is kept for a resend until a look at least this long after its send saw no new drop
 * of the daemon's socket: by then lo has delivered it (or dropped it) even when the softirq that
 * delivers it waited for the CPU (a busy one-CPU guest's stalls are tens of ms).
 */
const SETTLE_MS = 100;
/** Resends of the kept datagrams in a row, each followed by another drop, before they are given up as lost. */
const MAX_REPAIRS = 3;
/** Messages waiting for the hand-over at most (a full resync of 200,000 IPv4 entries is ~5,300). */
const MAX_PENDING = 20_000;
/**
 * Bytes of one joined message at most: 255 IPv6 records (the v1 limit) are ~18 KB; the backup
 * daemon reads up to lo's MTU less the IP and UDP headers (its sync_maxlen when none is given:
 * ip_vs_sync.c start_sync_thread, from the interface's MTU, 65,536 on lo).
 */
const JOIN_BYTES = 32 * 1024;

/**
 * A UDP socket that multicasts sync messages to 224.0.0.81:PORT out of lo with loopback on: the
 * kernel backup daemon bound to lo receives them as from a master daemon (ip_vs_sync.c
 * make_receive_sock binds the group and port on the interface; nothing leaves the host).
 * Messages go in order, paced by the daemon's receive queue: a full resync hands thousands of
 * messages over at once, and the daemon's socket (a kernel thread that drains it when scheduled)
 * would otherwise drop what does not fit. What it drops anyway is counted and sent again (settle,
 * repair); what still does not arrive is reported lost (HandOverEvents).
 * Messages that wait (while the daemon drains its queue) are joined into one of up to 255 records
 * (joinMessages): a frame of the channel carries at most ~38 records (one MTU), and a datagram to
 * lo per frame is a system call and a wake-up of the daemon per 38 records, which is when the
 * daemon falls behind (lo takes 64 KB datagrams). The messages of the frames read in one turn of
 * the event loop go joined too (send: setImmediate); nothing else waits.
 */
export class LoopbackInjector {
  private readonly queue: Array<{ message: Buffer; done: (e: Error | null) => void }> = [];
  private running = false;
  private closed = false;
  private sinceCheck = 0;
  /** Messages handed over, and the datagrams they went in (fewer when joined); datagrams resent after the daemon dropped some. */
  readonly sent = { messages: 0, datagrams: 0, resent: 0 };
  /** The daemon socket's drop count at the last look that took it. */
  private drops = 0;
  /**
   * Datagrams sent (or resent) that no look SETTLE_MS or more after their send has cleared: a drop
   * a look reports happened to one of these. Not only those since the last look: lo's delivery runs
   * in the NET_RX softirq, which a busy one-CPU guest defers to ksoftirqd until the sender sleeps,
   * so a datagram's drop can show looks after its send (lab, 2026-12-06: 3 of 14 drops seen only
   * after the injector's last look when it kept only the datagrams since the look before last).
   */
  private kept: Array<{ msg: Buffer; at: number }> = [];
  /** Repairs in a row without a clean look in between (bounded by MAX_REPAIRS). */
  private repairs = 0;

  private constructor(
    private readonly sock: dgram.Socket,
    private readonly events: HandOverEvents,
    private readonly port: number,
    private readonly procNetUdp: string,
  ) {}

  /** port: the backup daemon's on lo (sync.handover_port; 8848, IP_VS_SYNC_PORT, for one started without a port). */
  static async open(port: number, events: HandOverEvents = {}, procNetUdp = '/proc/net/udp'): Promise<LoopbackInjector> {
    const sock = dgram.createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      sock.bind(0, '127.0.0.1', () => resolve());
    });
    sock.setMulticastInterface('127.0.0.1');
    sock.setMulticastLoopback(true);
    sock.setMulticastTTL(1);
    sock.on('error', () => undefined);
    const inj = new LoopbackInjector(sock, events, port, procNetUdp);
    // The daemon's drops so far are not ours: the count starts now. A daemon socket first seen
    // later is one made since (a daemon started after this), and every drop it counts is ours;
    // before 2026-12-06 the count started at the first check, 40 KB in, and drops of those first
    // datagrams into a small socket went unseen (lab: 2 dropped, 0 counted, 456 records missing).
    inj.drops = backupDaemonQueue(inj.read(), port)?.drops ?? 0;
    return inj;
  }

  /**
   * Resolves once the message (joined with others or not) is handed to lo; rejects when
   * MAX_PENDING messages already wait, or with the send's error. The queue check runs after
   * every CHECK_BYTES sent and SETTLE_MS after the last send, not before a send: a message never
   * waits for a read of /proc/net/udp, only the ones queued behind a check.
   */
  send(message: Buffer): Promise<void> {
    if (this.queue.length >= MAX_PENDING) return Promise.reject(new Error('hand-over queue full'));
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ message, done: (e) => (e ? reject(e) : resolve()) });
      if (!this.due) {
        // After the frames read in this turn of the event loop (libuv reads up to 32 datagrams a
        // turn, each one frame's message): they go joined, one datagram and one wake-up of the
        // kernel daemon for all, not one per frame's ~38 records. setImmediate runs right after
        // the loop's I/O phase: a lone message waits no timer (nor the settling look's).
        this.due = setImmediate(() => {
          this.due = undefined;
          if (!this.running) void this.run();
          else this.wake?.();
        });
      }
    });
  }
  private due: NodeJS.Immediate | undefined;
  /** Ends the wait for the settling look (a message arrived, or close()). */
  private wake: (() => void) | undefined;
  private ran: Promise<void> = Promise.resolve();

  /** Resolves once everything queued so far is handed over and settled (its last look, and any resend, done). */
  async whenIdle(): Promise<void> {
    while (this.running || this.due || this.queue.length) {
      await this.ran;
      if (this.due) await new Promise((r) => setImmediate(r));
    }
  }

  private run(): Promise<void> {
    this.ran = this.loop();
    return this.ran;
  }

  private async loop(): Promise<void> {
    this.running = true;
    let last: Promise<void> = Promise.resolve();
    try {
      while (!this.closed && (this.queue.length || this.kept.length)) {
        if (!this.queue.length) {
          // Nothing to send: look once the newest datagram is SETTLE_MS old (the drops of a burst's
          // last datagrams are not left until the next burst), unless a message comes first.
          const wait = this.kept[this.kept.length - 1]!.at + SETTLE_MS - performance.now();
          if (wait > 0) {
            const woken = new Promise<void>((r) => (this.wake = r));
            const timer = setTimeout(() => this.wake?.(), wait);
            await woken;
            clearTimeout(timer);
            this.wake = undefined;
            continue;
          }
          await last;
          await this.settle(this.look());
          continue;
        }
        // As many waiting messages as one message holds (255 records, JOIN_BYTES), in order.
        let n = 0;
        let records = 0;
        let bytes = 0;
        for (const q of this.queue) {
          const r = q.message[4] ?? 0;
          if (n > 0 && (records + r > MAX_RECORDS_PER_MESSAGE || bytes + q.message.length > JOIN_BYTES)) break;
          n++;
          records += r;
          bytes += q.message.length;
        }
        const batch = this.queue.splice(0, n);
        let msg: Buffer;
        try {
          msg = n === 1 ? batch[0]!.message : joinMessages(batch.map((q) => q.message));
        } catch (e) {
          for (const q of batch) q.done(e as Error);
          continue;
        }
        try {
          last = this.datagram(msg, (e) => {
            for (const q of batch) q.done(e);
          });
        } catch (e) {
          for (const q of batch) q.done(e as Error); // a closed socket
          continue;
        }
        this.sent.messages += n;
        this.sent.datagrams++;
        this.sinceCheck += msg.length;
        if (this.sinceCheck >= CHECK_BYTES) {
          // dgram's send() only starts the send (its address lookup defers it to a later tick),
          // and this loop yields to nothing but promises while the daemon keeps up: without this
          // wait every check read the queue before any of the datagrams it was to pace had left,
          // and a long queue (a resync's) went out as one burst after the loop — 367 of 439
          // datagrams of 100,000 records dropped by the daemon's socket, none of them seen
          // (lab, 2026-12-06). Sends on one socket complete in order: after the last one's
          // callback everything sent so far has been handed to lo.
          this.sinceCheck = 0;
          await last;
          await this.settle(await this.drain());
        }
      }
    } finally {
      this.running = false;
    }
  }

  /** Sends one datagram to the daemon and keeps it until a look clears it; resolves when it is handed to lo (throws on a closed socket). */
  private datagram(msg: Buffer, done: (e: Error | null) => void = () => undefined): Promise<void> {
    const sent = new Promise<void>((resolve) =>
      this.sock.send(msg, this.port, SYNC_GROUP_V4, (e) => {
        done(e);
        resolve();
      }),
    );
    this.kept.push({ msg, at: performance.now() });
    return sent;
  }

  /**
   * What a look means for the kept datagrams: no new drop clears those sent SETTLE_MS or more
   * before it; a drop sends every kept datagram again (repair), up to MAX_REPAIRS times in a row;
   * no daemon socket seen: nothing to pace against or repair (its absence shows in the kernel table).
   */
  private async settle(q: Look | undefined): Promise<void> {
    if (!q) {
      this.kept = [];
      return;
    }
    if (q.dropped === 0) {
      this.repairs = 0;
      const before = performance.now() - SETTLE_MS;
      let i = 0;
      while (i < this.kept.length && this.kept[i]!.at <= before) i++;
      if (i) this.kept.splice(0, i);
      return;
    }
    if (++this.repairs > MAX_REPAIRS) {
      // The daemon keeps dropping what is sent into its empty socket (it is not draining): give up on these.
      this.events.lost?.(q.dropped);
      this.kept = [];
      this.repairs = 0;
      return;
    }
    await this.repair();
  }

  /** Waits (bounded) while the daemon's queue is above QUEUE_HIGH; its socket's state at the last look. */
  private async drain(): Promise<Look | undefined> {
    const end = performance.now() + DRAIN_LIMIT_MS;
    // Block once before looking (a 1 ms timer: the process sleeps in epoll). On one CPU, what was
    // just sent may still be on its way through lo (the NET_RX softirq, deferred to ksoftirqd
    // under load) and the daemon's thread runs only when we block: a look before that saw the
    // socket's queue empty while the datagrams on their way were enough to overflow it (lab,
    // 100,000 records: 9-17 of 439 datagrams dropped in three runs of five, each counted; with
    // this yield none in four, and the hand-over as fast: 2.1-2.3 s against 1.9-2.4 s).
    await sleep(1);
    let dropped = 0;
    for (;;) {
      const q = this.look();
      if (!q) return undefined;
      dropped += q.dropped;
      if (q.queued <= QUEUE_HIGH || performance.now() > end) return { ...q, dropped };
      await sleep(1);
    }
  }

  /**
   * The daemon dropped some of the kept datagrams (which ones, /proc does not say): each goes
   * again, one at a time into an empty socket — UDP queues a datagram whenever what the socket
   * holds is within its buffer (udp.c __udp_enqueue_schedule_skb), so one sent into an empty queue
   * is not dropped for room, whatever sync_sock_size gave the daemon. The kernel takes a record it
   * holds as an update (ip_vs_sync.c ip_vs_proc_conn): sending one that had arrived again is
   * harmless, and later records for the same connections are sent after these. The resent
   * datagrams are kept like any other: a drop among them shows at a later look (settle).
   */
  private async repair(): Promise<void> {
    const again = this.kept.map((k) => k.msg);
    this.kept = [];
    let resent = 0;
    try {
      for (const msg of again) {
        const end = performance.now() + DRAIN_LIMIT_MS;
        // The queue only: drops seen meanwhile are left for the next look (settle), which resends again.
        for (let q = this.look(false); q && q.queued > 0 && performance.now() < end; q = this.look(false)) await sleep(1);
        await this.datagram(msg);
        resent++;
      }
    } catch {
      /* a closed socket */
    } finally {
      this.sent.resent += resent;
      if (resent) this.events.resent?.(resent);
    }
  }

  /**
   * Reads the daemon's socket line: its queue, and the datagrams it dropped since the last look
   * that took them (take: false leaves them for the next; undefined: no daemon socket).
   */
  private look(take = true): Look | undefined {
    // Synchronous: a few KB of this namespace's sockets, one read() or two. fs.promises.readFile is
    // five thread-pool hops (open, fstat, read, read, close) once per check: in the busy lab
    // guest those hops held a resync's hand-over back (5.3-12.4 s after the answer; 1.3-2.5 s with
    // this read, same host load; bench/results/sync.md 2026-12-04 16:58-17:20).
    const q = backupDaemonQueue(this.read(), this.port);
    if (!q) return undefined;
    // A smaller count: another socket (the daemon restarted); its drops so far are ours.
    const dropped = q.drops >= this.drops ? q.drops - this.drops : q.drops;
    if (!take) return { queued: q.queued, dropped: 0 };
    if (dropped) this.events.dropped?.(dropped);
    this.drops = q.drops;
    return { queued: q.queued, dropped };
  }

  private read(): string {
    try {
      return readFileSync(this.procNetUdp, 'latin1');
    } catch {
      return ''; // no /proc: nothing to pace against
    }
  }

  /** Closes the socket; drops of the daemon since the last look are reported lost (nothing is resent now). */
  close(): Promise<void> {
    this.closed = true;
    // Messages still queued are not sent: their callers hear so (the loop stops at the next turn).
    for (const q of this.queue.splice(0)) q.done(new Error('hand-over closed'));
    this.wake?.();
    const q = this.look();
    if (q && q.dropped > 0) this.events.lost?.(q.dropped);
    this.kept = [];
    return new Promise((r) => this.sock.close(() => r()));
  }
}

/** The daemon's socket at a look: bytes waiting, datagrams dropped since the look before. */
interface Look {
  queued: number;
  dropped: number;
}

/** What the hand-over reports (counted in metrics by the sync subsystem). */
export interface HandOverEvents {
  /** Datagrams the kernel's backup daemon dropped (its socket full), as its socket counts them. */
  dropped?(n: number): void;
  /** Datagrams handed over again after a drop. */
  resent?(n: number): void;
  /** Drops not made good: seen after the resend, or at close. Records the local kernel lacks. */
  lost?(n: number): void;
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
