/**
 * The text of the per virtual server and per real server series (Prometheus text format 0.0.4),
 * written from one read of the kernel's table. It runs in the table-metrics worker thread
 * (./table-worker.ts), never on the daemon's event loop: at 10,000 services × 10 real servers it is
 * 970,000 series and ~126 MB, seconds of CPU in the lab guest (bench/results/scrape.md).
 *
 * Label text is built once per declared service and real server (as bytes, kept while the
 * configuration is the same), series are written straight into Buffers of CHUNK_BYTES (no string per
 * line), and each full Buffer is handed on as it is: the main thread writes it to the HTTP response.
 * Counters are the kernel's own running totals, written as read (a service or real server that left
 * the table has no series).
 */
import type { MetricDoc } from '../metrics/catalogue.js';
import { escapeLabelValue, familyHeader } from '../metrics/exposition.js';
import { destKey, serviceKey, type IpvsDest, type IpvsTable, type IpvsTableEntry } from './model.js';

/**
 * What the text needs of one declared virtual server, in a form that crosses to the worker thread
 * cheaply (structured clone: strings and numbers, no config model).
 */
export interface DeclaredService {
  /** serviceKey(): `tcp/192.0.2.1:80`, `fwm/5/ipv4`. */
  readonly key: string;
  /** The configured name (label `virtual_server`). */
  readonly name: string;
  /** destKey() of each declared real server, the sorry server last if there is one… */
  readonly rs: readonly string[];
  /** …and its configured weight (same order). */
  readonly weights: readonly number[];
}

/** Bytes per chunk: one Buffer of its own (transferable to the main thread, written to the socket as is). */
export const CHUNK_BYTES = 64 * 1024;

type Value = number | bigint | undefined;
interface Family<R> extends MetricDoc {
  readonly type: 'counter' | 'gauge';
  /** One value per row (`configured`: the real server's configured weight)… */
  readonly value?: (r: R, configured: number | undefined) => Value;
  /** …or the in and out values of a `direction` family. */
  readonly dir?: readonly [(r: R) => Value, (r: R) => Value];
  /** No series for a row without a value (instead of 0). */
  readonly optional?: true;
}

const VS = ['virtual_server', 'service'];
const RS = ['virtual_server', 'service', 'real_server'];
const sum = (ds: readonly IpvsDest[], f: (d: IpvsDest) => number | undefined) => ds.reduce((s, d) => s + (f(d) ?? 0), 0);

const VS_FAMILIES: ReadonlyArray<Family<IpvsTableEntry>> = [
  { name: 'lvsd_ipvs_virtual_server_connections_total', type: 'counter', labels: VS, help: 'Connections scheduled by the virtual server (kernel counter)', value: (e) => e.service.stats?.conns },
  { name: 'lvsd_ipvs_virtual_server_packets_total', type: 'counter', labels: [...VS, 'direction'], help: 'Packets through the virtual server by direction (in: from clients, out: replies through the director; 0 for DR/TUN)', dir: [(e) => e.service.stats?.inpkts, (e) => e.service.stats?.outpkts] },
  { name: 'lvsd_ipvs_virtual_server_bytes_total', type: 'counter', labels: [...VS, 'direction'], help: 'Bytes through the virtual server by direction', dir: [(e) => e.service.stats?.inbytes, (e) => e.service.stats?.outbytes] },
  { name: 'lvsd_ipvs_virtual_server_active_connections', type: 'gauge', labels: VS, help: 'Active (established) connections of the virtual server: the sum over its real servers', value: (e) => sum(e.dests, (d) => d.active_conns) },
  { name: 'lvsd_ipvs_virtual_server_inactive_connections', type: 'gauge', labels: VS, help: 'Inactive connections of the virtual server (not established, or closing): the sum over its real servers', value: (e) => sum(e.dests, (d) => d.inact_conns) },
];
const RS_FAMILIES: ReadonlyArray<Family<IpvsDest>> = [
  { name: 'lvsd_ipvs_real_server_active_connections', type: 'gauge', labels: RS, help: 'Active (established) connections of the real server in the kernel', value: (d) => d.active_conns ?? 0 },
  { name: 'lvsd_ipvs_real_server_inactive_connections', type: 'gauge', labels: RS, help: 'Inactive connections of the real server in the kernel', value: (d) => d.inact_conns ?? 0 },
  { name: 'lvsd_ipvs_real_server_connections_total', type: 'counter', labels: RS, help: 'Connections scheduled to the real server (kernel counter)', value: (d) => d.stats?.conns },
  { name: 'lvsd_ipvs_real_server_packets_total', type: 'counter', labels: [...RS, 'direction'], help: 'Packets to and from the real server by direction', dir: [(d) => d.stats?.inpkts, (d) => d.stats?.outpkts] },
  { name: 'lvsd_ipvs_real_server_bytes_total', type: 'counter', labels: [...RS, 'direction'], help: 'Bytes to and from the real server by direction', dir: [(d) => d.stats?.inbytes, (d) => d.stats?.outbytes] },
  { name: 'lvsd_ipvs_real_server_weight', type: 'gauge', labels: RS, help: 'Weight of the real server in the kernel (effective: 0 while inhibited, lowered by dynamic weights)', value: (d) => d.weight },
  // No series for a real server the configuration does not name (one added by hand).
  { name: 'lvsd_ipvs_real_server_configured_weight', type: 'gauge', labels: RS, help: 'Weight of the real server in the configuration', value: (_d, configured) => configured, optional: true },
];

/** The families of the table text (name, type, labels, help), for the catalogue. */
export const TABLE_FAMILIES: readonly MetricDoc[] = [...VS_FAMILIES, ...RS_FAMILIES].map(({ name, type, labels, help }) => ({ name, type, labels, help }));

const q = (name: string, v: string) => `${name}="${escapeLabelValue(v)}"`;

/** A declared real server's label text (`virtual_server="…",service="…",real_server="…"`, UTF-8). */
interface RsLabels {
  readonly labels: Buffer;
  readonly configured: number | undefined;
}
/** A declared service's label text and its real servers'. */
interface ServiceLabels {
  readonly text: string;
  readonly labels: Buffer;
  readonly rs: Map<string, RsLabels>;
}
/** A service of the table, declared, with its label text and its destinations' (same order). */
interface VsRow {
  readonly labels: Buffer;
  readonly entry: IpvsTableEntry;
  readonly rs: readonly RsLabels[];
}

/**
 * Label text of one declared configuration, built on a read's first sight of a service and reused by
 * every later read while the configuration is the same (a new configuration gets a new LabelText).
 * Rebuilding ~100,000 label strings per scrape made garbage-collector pauses the longest stalls.
 */
export class LabelText {
  private readonly byKey: Map<string, DeclaredService>;
  private readonly built = new Map<string, ServiceLabels>();
  constructor(declared: readonly DeclaredService[]) {
    this.byKey = new Map(declared.map((v) => [v.key, v]));
  }

  service(key: string): ServiceLabels | undefined {
    const hit = this.built.get(key);
    if (hit) return hit;
    const vs = this.byKey.get(key);
    if (!vs) return undefined;
    const text = `${q('virtual_server', vs.name)},${q('service', key)}`;
    const rs = new Map<string, RsLabels>();
    vs.rs.forEach((k, i) => rs.set(k, { labels: Buffer.from(`${text},${q('real_server', k)}`), configured: vs.weights[i] }));
    const out = { text, labels: Buffer.from(text), rs };
    this.built.set(key, out);
    return out;
  }

  /** The rows of the declared services found in the table (a table lvsd does not manage is not its business). */
  rows(table: IpvsTable): VsRow[] {
    const rows: VsRow[] = [];
    for (const entry of table) {
      const sl = this.service(serviceKey(entry.service));
      if (!sl) continue;
      const rs = entry.dests.map((d) => {
        const k = destKey(d);
        // A real server the configuration does not name (added by hand): labelled, no configured weight.
        return sl.rs.get(k) ?? { labels: Buffer.from(`${sl.text},${q('real_server', k)}`), configured: undefined };
      });
      rows.push({ labels: sl.labels, entry, rs });
    }
    return rows;
  }
}

const MAX_EXACT = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * Text written straight into Buffers of CHUNK_BYTES: the label text of a row is bytes cached across
 * reads, values are written digit by digit. A million series make no string per line.
 */
class ChunkWriter {
  private buf: Buffer;
  private pos = 0;
  constructor(private readonly alloc: () => Buffer) {
    this.buf = alloc();
  }

  /** Room for `n` more bytes; a full chunk is returned (to be handed on) and a new one started. */
  room(n: number): Buffer | undefined {
    if (this.pos + n <= this.buf.length) return undefined;
    const full = this.take();
    if (n > this.buf.length) this.buf = Buffer.allocUnsafeSlow(n);
    return full;
  }
  take(): Buffer | undefined {
    if (this.pos === 0) return undefined;
    const full = this.buf.subarray(0, this.pos);
    this.buf = this.alloc();
    this.pos = 0;
    return full;
  }
  /** `open labels close value\n`, room made beforehand. */
  line(open: Buffer, labels: Buffer, close: Buffer, v: Value): void {
    // TypedArray.set: Buffer.copy's argument checks cost more than these short copies.
    this.buf.set(open, this.pos);
    this.buf.set(labels, this.pos + open.length);
    this.buf.set(close, this.pos + open.length + labels.length);
    this.pos += open.length + labels.length + close.length;
    this.value(v);
    this.buf[this.pos++] = 0x0a;
  }
  bytes(b: Buffer): void {
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }
  /** A value as Prometheus text: integers exactly (a u64 counter too), other numbers as JS prints them. */
  private value(v: Value): void {
    if (typeof v === 'bigint') {
      if (v >= 0n && v <= MAX_EXACT) this.uint(Number(v));
      else this.pos += this.buf.write(v.toString(), this.pos, 'latin1');
    } else if (v === undefined) {
      this.buf[this.pos++] = 0x30;
    } else if (Number.isSafeInteger(v) && v >= 0) {
      this.uint(v);
    } else {
      this.pos += this.buf.write(String(v), this.pos, 'latin1');
    }
  }
  private uint(v: number): void {
    let digits = 1;
    for (let t = v; t >= 10; t = Math.floor(t / 10)) digits++;
    let p = this.pos + digits;
    while (v >= 10) {
      const q10 = Math.floor(v / 10);
      this.buf[--p] = 0x30 + (v - q10 * 10);
      v = q10;
    }
    this.buf[--p] = 0x30 + v;
    this.pos += digits;
  }
}

/** Longest text of a value: 20 digits of a u64, or a double printed by JS (at most 24 characters). */
const VALUE_MAX = 24;
const enc = (s: string) => Buffer.from(s);
const CLOSE = enc('} ');
const DIR_IN = enc(',direction="in"} ');
const DIR_OUT = enc(',direction="out"} ');

/** A family's constant bytes: its HELP/TYPE header and `name{`. */
function familyBytes<R>(f: Family<R>): { header: Buffer; open: Buffer } {
  return { header: enc(familyHeader(f)), open: enc(`${f.name}{`) };
}
const VS_BYTES = VS_FAMILIES.map(familyBytes);
const RS_BYTES = RS_FAMILIES.map(familyBytes);

/**
 * Writes one row's line(s) of family `f`: `name{labels} value`, or for a `direction` family
 * `name{labels,direction="in"} value` and the same with "out". Returns a chunk that filled up first.
 */
function rowText<R>(w: ChunkWriter, f: Family<R>, open: Buffer, r: R, labels: Buffer, configured: number | undefined): Buffer | undefined {
  if (f.dir) {
    const full = w.room(2 * (open.length + labels.length + DIR_OUT.length + VALUE_MAX + 1));
    w.line(open, labels, DIR_IN, f.dir[0](r));
    w.line(open, labels, DIR_OUT, f.dir[1](r));
    return full;
  }
  const v = f.value!(r, configured);
  if (v === undefined && f.optional) return undefined;
  const full = w.room(open.length + labels.length + CLOSE.length + VALUE_MAX + 1);
  w.line(open, labels, CLOSE, v);
  return full;
}

/**
 * A chunk's memory: a Buffer of its own (allocUnsafeSlow, never a slice of the shared pool), so its
 * ArrayBuffer can be transferred between threads without copying.
 */
export const newChunk = (): Buffer => Buffer.allocUnsafeSlow(CHUNK_BYTES);

/**
 * The whole text of one read, family after family, handed to `emit` in whole-line chunks of at most
 * CHUNK_BYTES, each written into memory from `alloc` (a chunk of CHUNK_BYTES). `capped`: the
 * per-real-server series are left out (their headers stay). Plain loops, no generator per row: an
 * iterator result per row was most of the garbage (a million per scrape).
 */
export function writeTableText(rows: readonly VsRow[], capped: boolean, emit: (chunk: Buffer) => void, alloc: () => Buffer = newChunk): void {
  const w = new ChunkWriter(alloc);
  let full: Buffer | undefined;
  for (let i = 0; i < VS_FAMILIES.length; i++) {
    const f = VS_FAMILIES[i]!;
    const b = VS_BYTES[i]!;
    if ((full = w.room(b.header.length))) emit(full);
    w.bytes(b.header);
    for (const r of rows) if ((full = rowText(w, f, b.open, r.entry, r.labels, undefined))) emit(full);
  }
  for (let i = 0; i < RS_FAMILIES.length; i++) {
    const f = RS_FAMILIES[i]!;
    const b = RS_BYTES[i]!;
    if ((full = w.room(b.header.length))) emit(full);
    w.bytes(b.header);
    if (capped) continue;
    for (const r of rows) {
      const ds = r.entry.dests;
      for (let j = 0; j < ds.length; j++) {
        if ((full = rowText(w, f, b.open, ds[j]!, r.rs[j]!.labels, r.rs[j]!.configured))) emit(full);
      }
    }
  }
  if ((full = w.take())) emit(full);
}
