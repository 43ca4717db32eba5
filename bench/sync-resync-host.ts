/**
 * The lvsd channel's own time for a full resync, on the host (no IPVS: issue 18's "≤ 1 s for
 * 100,000 connections" without a kernel's install):
 *   node dist/bench/sync-resync-host.js [--entries 100000] [--runs 3]
 * Two SyncEngines wired as the daemon wires them (src/sync/subsystem.ts), each with its real
 * SyncChannel (HMAC-SHA256 frames, UDP sockets on 127.0.0.1) and A with its real table worker
 * reading a file in /proc/net/ip_vs_conn's format (ENTRIES established TCP connections). A is
 * active and has read its table once (its first read's frames go to B's port before B exists: to
 * nobody) before B starts: the operator's case, a director that knows its table when the peer
 * restarts. B asks (resyncFromPeer) and hands every record to a no-op "kernel" (counted); the
 * kernel's install is what the lab's reference measures (bench/sync.ts). Per run: request → answer
 * ready on A (its log line: worker, encoding), → B's first RESYNC_DATA, → RESYNC_END at B, → A's
 * acknowledgement; records handed to B's "kernel"; frames lost, resent; both processes' CPU.
 * One process, one event loop for both engines (A's worker thread is its own): on a 2-core host
 * shared with other work read it as an upper bound of two directors' channel time.
 * LVSD_BENCH_MARK=1 prints the resync's start and end as CLOCK_MONOTONIC µs on stderr (the clock of
 * a --cpu-prof profile's timestamps), to cut the profile to the resync.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, loadavg } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { RecordingLogger, silentLogger } from '../src/core/log.js';
import { SyncEngine } from '../src/sync/engine.js';
import { SyncChannel, DEFAULT_FRAME_PAYLOAD } from '../src/sync/channel.js';
import { WorkerTableSource } from '../src/sync/source.js';
import { FrameType } from '../src/sync/wire.js';
import { makeKey } from '../src/config/keys.js';

function arg(name: string, dflt: number, max: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return Math.min(max, Math.max(1, Number(i >= 0 ? process.argv[i + 1] : dflt)));
}
const ENTRIES = arg('entries', 100_000, 1_000_000);
const RUNS = arg('runs', 3, 10);
const HEAD = 'Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData\n';
/** Connection i: a client address (198.51.x.y) and port, distinct for every i below 60,000 × 65,536. */
const line = (i: number) =>
  `TCP C633${Math.floor(i / 60000).toString(16).toUpperCase().padStart(4, '0')} ${(1024 + (i % 60000)).toString(16).toUpperCase().padStart(4, '0')} C0000264 0050 C000020B 0050 ESTABLISHED     898\n`;
const key = makeKey(Buffer.from('a shared sync key for the host resync bench'));
const counter = async (c: { get(): Promise<{ values: Array<{ value: number; labels: Record<string, unknown> }> }> }, label?: [string, string]) =>
  (await c.get()).values.filter((v) => !label || v.labels[label[0]] === label[1]).reduce((n, v) => n + v.value, 0);

interface Side {
  eng: SyncEngine;
  ch: SyncChannel;
}

async function director(side: 'a' | 'b', file: string, port: number, peerPort: () => number, log: RecordingLogger | undefined, onFrame: (t: FrameType) => void, handed: { n: number }): Promise<Side> {
  let eng: SyncEngine | undefined;
  const ch = await SyncChannel.open({
    node: side === 'a' ? 1 : 2, keys: [key], port, localAddress: '127.0.0.1',
    peers: [{ address: '127.0.0.1', port: peerPort() }], epoch: BigInt(Date.now()),
    onFrame: (f, _from, gap) => {
      onFrame(f.type);
      void eng?.onFrame(f, gap);
    },
    onDrop: (r, n = 1) => eng?.drop(r, n),
  });
  eng = new SyncEngine({
    log: log ?? silentLogger, registry: new Registry(),
    openSource: (onChanges, onError) => new WorkerTableSource({ paths: [file], syncid: 42, maxMessage: DEFAULT_FRAME_PAYLOAD, pollMs: 50, services: [] }, onChanges, onError),
    channel: ch,
    inject: async (m) => {
      handed.n += m[4]!; // v1 header byte 4: records in the message
    },
    now: () => performance.now(), wallNow: () => Date.now(), syncid: 42,
  });
  return { eng, ch };
}

async function once(file: string) {
  const log = new RecordingLogger();
  const handed = { n: 0 };
  const seen: Partial<Record<number, number>> = {};
  let lastData = 0;
  let bPort = 0;
  let aPort = 0;
  // A's peer port is B's, which exists only later: A sends to a port nobody holds until then.
  const placeholder = await SyncChannel.open({ node: 9, keys: [key], port: 0, localAddress: '127.0.0.1', peers: [{ address: '127.0.0.1', port: 9 }], epoch: 1n, onFrame: () => undefined, onDrop: () => undefined });
  bPort = placeholder.localPort;
  await placeholder.close();
  const a = await director('a', file, 0, () => bPort, log, () => undefined, { n: 0 });
  aPort = a.ch.localPort;
  a.eng.setActive(true, 'bench');
  const t0 = performance.now();
  for (let i = 0; i < 1200 && (await counter(a.eng.m.records, ['direction', 'sent'])) < ENTRIES; i++) await new Promise((r) => setTimeout(r, 50));
  const firstRead = performance.now() - t0;
  // B takes the port A sends to (a closed unicast socket's port, free again).
  const bHanded = { n: 0 };
  const b = await director('b', file, bPort, () => aPort, undefined, (t) => {
    const now = performance.now();
    seen[t] ??= now;
    if (t === FrameType.RESYNC_DATA) lastData = now;
  }, bHanded);
  await new Promise((r) => setTimeout(r, 500)); // A's first read's last frames, if any, have gone by
  const cpu0 = process.cpuUsage();
  const asked = performance.now();
  if (process.env.LVSD_BENCH_MARK) process.stderr.write(`mark start ${process.hrtime.bigint() / 1000n}\n`);
  const ok = await b.eng.resyncFromPeer(3000);
  const ended = performance.now();
  if (process.env.LVSD_BENCH_MARK) process.stderr.write(`mark end ${process.hrtime.bigint() / 1000n}\n`);
  const ackSum = async () => (await a.eng.m.resyncSeconds.get()).values.find((v) => v.metricName === 'lvsd_sync_resync_duration_seconds_sum')?.value ?? 0;
  for (let i = 0; i < 200 && (await ackSum()) === 0; i++) await new Promise((r) => setTimeout(r, 10));
  const ackS = (await ackSum()) || NaN;
  for (let i = 0; i < 500 && bHanded.n < ENTRIES; i++) await new Promise((r) => setTimeout(r, 10));
  const handedAt = performance.now();
  const cpu = process.cpuUsage(cpu0);
  const line = log.entries.find((e) => e.msg === 'full table sent to the peer')?.obj as Record<string, number> | undefined;
  const res = {
    ok,
    firstReadMs: Math.round(firstRead),
    readyMs: line?.ready_ms,
    workerMs: line?.worker_ms,
    encodeMs: line?.encode_ms,
    frames: line?.frames,
    records: line?.records,
    firstFrameMs: Math.round((seen[FrameType.RESYNC_DATA] ?? NaN) - asked),
    lastFrameMs: Math.round(lastData - asked),
    endMs: Math.round(ended - asked),
    ackMs: Math.round(ackS * 1000),
    handed: bHanded.n,
    handedMs: Math.round(handedAt - asked),
    lost: await counter(b.eng.m.drops, ['reason', 'lost']),
    resent: await counter(a.eng.m.resent),
    cpuMs: Math.round((cpu.user + cpu.system) / 1000),
  };
  await a.eng.close();
  await b.eng.close();
  await a.ch.close();
  await b.ch.close();
  return res;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'lvsd-resync-host-'));
  const file = join(dir, 'ip_vs_conn');
  writeFileSync(file, HEAD + Array.from({ length: ENTRIES }, (_, i) => line(i)).join(''));
  const load0 = loadavg();
  const started = new Date().toISOString();
  try {
    for (let i = 0; i < RUNS; i++) process.stdout.write(`${JSON.stringify(await once(file))}\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  process.stdout.write(`entries ${ENTRIES}, ${started} → ${new Date().toISOString()}, load ${load0.map((x) => x.toFixed(2)).join(' ')} → ${loadavg().map((x) => x.toFixed(2)).join(' ')}\n`);
}

await main();
