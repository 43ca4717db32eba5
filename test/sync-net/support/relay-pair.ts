/**
 * Two sync engines with their real channels and table workers on loopback, A's frames passed to B
 * through a relay that may drop them (the tests' loss on the way), B's frames passed back (dropped
 * too if the test says so).
 * Each table worker reads `file` (in /proc/net/ip_vs_conn's format); B's hand-overs to its kernel are
 * collected in `injected` (the real kernel path: the lab tests), A's are discarded.
 */
import dgram from 'node:dgram';
import { Registry } from 'prom-client';
import { silentLogger } from '../../../src/core/log.js';
import { SyncEngine } from '../../../src/sync/engine.js';
import { SyncChannel, DEFAULT_FRAME_PAYLOAD } from '../../../src/sync/channel.js';
import { WorkerTableSource } from '../../../src/sync/source.js';
import type { SyncKey } from '../../../src/config/keys.js';

export interface Director {
  readonly eng: SyncEngine;
  readonly ch: SyncChannel;
}

async function udp(): Promise<dgram.Socket> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  return s;
}

export class RelayPair {
  /** What B handed to its kernel, one sync message each. */
  readonly injected: Buffer[] = [];
  /** Sequence numbers B's channel counted lost (gaps). */
  readonly lost = { n: 0 };
  private readonly ports = { a: 0, b: 0 };
  private readonly directors: Director[] = [];

  private constructor(
    private readonly file: string,
    private readonly key: SyncKey,
    private readonly fromA: dgram.Socket,
    private readonly fromB: dgram.Socket,
  ) {}

  /** `pass(frame)`: whether the relay passes a frame A sent (false: dropped on the way); `passBack`: one B sent (all, if not given). */
  static async open(file: string, key: SyncKey, pass: (m: Buffer) => boolean, passBack: (m: Buffer) => boolean = () => true): Promise<RelayPair> {
    const p = new RelayPair(file, key, await udp(), await udp());
    p.fromA.on('message', (m) => {
      if (pass(m)) p.fromA.send(m, p.ports.b, '127.0.0.1');
    });
    p.fromB.on('message', (m) => {
      if (passBack(m)) p.fromB.send(m, p.ports.a, '127.0.0.1');
    });
    return p;
  }

  /** Starts director A or B (passive until setActive), wired as the daemon wires it (src/sync/subsystem.ts). */
  async director(side: 'a' | 'b'): Promise<Director> {
    let eng: SyncEngine | undefined;
    const ch = await SyncChannel.open({
      node: side === 'a' ? 1 : 2, keys: [this.key], port: 0, localAddress: '127.0.0.1',
      peers: [{ address: '127.0.0.1', port: (side === 'a' ? this.fromA : this.fromB).address().port }], epoch: BigInt(Date.now()),
      onFrame: (f, _from, gap) => void eng?.onFrame(f, gap),
      onDrop: (r, n = 1) => {
        if (side === 'b' && r === 'lost') this.lost.n += n;
        eng?.drop(r, n);
      },
    });
    eng = new SyncEngine({
      log: silentLogger, registry: new Registry(),
      openSource: (onChanges, onError) => new WorkerTableSource({ paths: [this.file], syncid: 42, maxMessage: DEFAULT_FRAME_PAYLOAD, pollMs: 50, services: [] }, onChanges, onError),
      channel: ch, inject: async (m) => void (side === 'b' && this.injected.push(m)), now: () => performance.now(), wallNow: () => Date.now(), syncid: 42,
    });
    this.ports[side] = ch.localPort;
    const d = { eng, ch };
    this.directors.push(d);
    return d;
  }

  async close(): Promise<void> {
    for (const d of this.directors) await d.eng.close();
    for (const d of this.directors) await d.ch.close();
    this.fromA.close();
    this.fromB.close();
  }
}
