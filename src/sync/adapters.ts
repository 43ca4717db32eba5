/**
 * The real mechanisms behind lvsd's sync channel (wired by src/daemon): the kernel's connection
 * table from /proc, the loopback injector feeding the kernel's backup sync daemon, lo's multicast
 * flag, an interface's IPv4 address.
 */
import { readFile } from 'node:fs/promises';
import dgram from 'node:dgram';
import { networkInterfaces } from 'node:os';
import { createRtNetlink } from 'netlink';
import { LvsdError } from '../core/errors.js';
import { SYNC_GROUP_V4, SYNC_PORT } from './codec.js';

export const CONN_TABLE = '/proc/net/ip_vs_conn';

export function readConnTable(): Promise<string> {
  return readFile(CONN_TABLE, 'latin1');
}

/**
 * A UDP socket that multicasts sync messages to 224.0.0.81:8848 out of lo with loopback on: the
 * kernel backup daemon bound to lo receives them as from a master daemon (ip_vs_sync.c
 * make_receive_sock binds the group and port on the interface; nothing leaves the host).
 */
export class LoopbackInjector {
  private constructor(private readonly sock: dgram.Socket) {}

  static async open(): Promise<LoopbackInjector> {
    const sock = dgram.createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      sock.bind(0, '127.0.0.1', () => resolve());
    });
    sock.setMulticastInterface('127.0.0.1');
    sock.setMulticastLoopback(true);
    sock.setMulticastTTL(1);
    sock.on('error', () => undefined);
    return new LoopbackInjector(sock);
  }

  send(message: Buffer): Promise<void> {
    return new Promise((resolve, reject) => this.sock.send(message, SYNC_PORT, SYNC_GROUP_V4, (e) => (e ? reject(e) : resolve())));
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
