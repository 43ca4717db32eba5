/**
 * The text of the per virtual server and per real server series (Prometheus text format 0.0.4),
 * written from one read of the kernel's table. It runs in the table-metrics worker thread
 * (./table-worker.ts), never on the daemon's event loop: at 10,000 services × 10 real servers it is
 * 970,000 series and ~126 MB, seconds of CPU in the lab guest (bench/results/scrape.md).
 *
 * The read goes straight into columns of numbers (TableColumns, a DumpSink: the kernel's destination
 * replies are read in place, no object per real server); label text is built once per declared
 * service and real server (as bytes, kept while the configuration is the same); series are written
 * straight into Buffers of CHUNK_BYTES (no string per line), and each full Buffer is handed on as it
 * is: the main thread writes it to the HTTP response. Counters are the kernel's own running totals,
 * written as read (a service or real server that left the table has no series).
 */
import type { MetricDoc } from '../metrics/catalogue.js';
import { escapeLabelValue, familyHeader } from '../metrics/exposition.js';
import { DestRecord, readDestReply } from './genl.js';
import { endpoint, serviceKey, type IpvsService } from './model.js';
import type { DumpSink } from './netlink.js';

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

/**
 * A family's values are columns of TableColumns: `col` for one series per row, `dir` for the in and
 * out series of a `direction` family.
 */
interface Family extends MetricDoc {
  readonly type: 'counter' | 'gauge';
  readonly col?: number;
  readonly dir?: readonly [number, number];
  /** No series for a row whose value is NONE. */
  readonly optional?: true;
}

/** Columns of a virtual server's row (the kernel's values; 0 where it sent none). */
const V = { CONNS: 0, INPKTS: 1, OUTPKTS: 2, INBYTES: 3, OUTBYTES: 4, ACTIVE: 5, INACT: 6 } as const;
const V_COLS = 7;
/** Columns of a real server's row. */
const R = { ACTIVE: 0, INACT: 1, CONNS: 2, INPKTS: 3, OUTPKTS: 4, INBYTES: 5, OUTBYTES: 6, WEIGHT: 7, CONFIGURED: 8 } as const;
const R_COLS = 9;
/** No value, so no series: the configured weight of a real server the configuration does not name. */
const NONE = -1;

const VS = ['virtual_server', 'service'];
const RS = ['virtual_server', 'service', 'real_server'];

const VS_FAMILIES: readonly Family[] = [
  { name: 'lvsd_ipvs_virtual_server_connections_total', type: 'counter', labels: VS, help: 'Connections scheduled by the virtual server (kernel counter)', col: V.CONNS },
  { name: 'lvsd_ipvs_virtual_server_packets_total', type: 'counter', labels: [...VS, 'direction'], help: 'Packets through the virtual server by direction (in: from clients, out: replies through the director; 0 for DR/TUN)', dir: [V.INPKTS, V.OUTPKTS] },
  { name: 'lvsd_ipvs_virtual_server_bytes_total', type: 'counter', labels: [...VS, 'direction'], help: 'Bytes through the virtual server by direction', dir: [V.INBYTES, V.OUTBYTES] },
  { name: 'lvsd_ipvs_virtual_server_active_connections', type: 'gauge', labels: VS, help: 'Active (established) connections of the virtual server: the sum over its real servers', col: V.ACTIVE },
  { name: 'lvsd_ipvs_virtual_server_inactive_connections', type: 'gauge', labels: VS, help: 'Inactive connections of the virtual server (not established, or closing): the sum over its real servers', col: V.INACT },
];
const RS_FAMILIES: readonly Family[] = [
  { name: 'lvsd_ipvs_real_server_active_connections', type: 'gauge', labels: RS, help: 'Active (established) connections of the real server in the kernel', col: R.ACTIVE },
  { name: 'lvsd_ipvs_real_server_inactive_connections', type: 'gauge', labels: RS, help: 'Inactive connections of the real server in the kernel', col: R.INACT },
  { name: 'lvsd_ipvs_real_server_connections_total', type: 'counter', labels: RS, help: 'Connections scheduled to the real server (kernel counter)', col: R.CONNS },
  { name: 'lvsd_ipvs_real_server_packets_total', type: 'counter', labels: [...RS, 'direction'], help: 'Packets to and from the real server by direction', dir: [R.INPKTS, R.OUTPKTS] },
  { name: 'lvsd_ipvs_real_server_bytes_total', type: 'counter', labels: [...RS, 'direction'], help: 'Bytes to and from the real server by direction', dir: [R.INBYTES, R.OUTBYTES] },
  { name: 'lvsd_ipvs_real_server_weight', type: 'gauge', labels: RS, help: 'Weight of the real server in the kernel (effective: 0 while inhibited, lowered by dynamic weights)', col: R.WEIGHT },
  // No series for a real server the configuration does not name (one added by hand).
  { name: 'lvsd_ipvs_real_server_configured_weight', type: 'gauge', labels: RS, help: 'Weight of the real server in the configuration', col: R.CONFIGURED, optional: true },
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
  /** The IPv4 real servers' also by address (as a u32) × 65536 + port: found without making their key text. */
  readonly rs4: Map<number, RsLabels>;
}

/** `a.b.c.d:port` → the address as a u32 × 65536 + port; undefined for anything else. */
function v4Key(key: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3}):(\d{1,5})$/.exec(key);
  if (!m) return undefined;
  const [a, b, c, d, port] = m.slice(1).map(Number) as [number, number, number, number, number];
  if (a > 255 || b > 255 || c > 255 || d > 255 || port > 65535) return undefined;
  return (a * 0x100_0000 + b * 0x1_0000 + c * 0x100 + d) * 0x1_0000 + port;
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

  /** A declared service's labels; undefined for a service the configuration does not declare (not lvsd's business). */
  service(key: string): ServiceLabels | undefined {
    const hit = this.built.get(key);
    if (hit) return hit;
    const vs = this.byKey.get(key);
    if (!vs) return undefined;
    const text = `${q('virtual_server', vs.name)},${q('service', key)}`;
    const rs = new Map<string, RsLabels>();
    const rs4 = new Map<number, RsLabels>();
    vs.rs.forEach((k, i) => {
      const l = { labels: Buffer.from(`${text},${q('real_server', k)}`), configured: vs.weights[i] };
      rs.set(k, l);
      const k4 = v4Key(k);
      if (k4 !== undefined) rs4.set(k4, l);
    });
    const out = { text, labels: Buffer.from(text), rs, rs4 };
    this.built.set(key, out);
    return out;
  }
}

const MAX_EXACT = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * One read, as it comes (a DumpSink), in what the text needs: per declared service found in the table
 * a row of numbers and its label text, per real server the same, in Float64Arrays reused across
 * reads. Destination replies are read straight into the columns (readDestReply into one reused
 * DestRecord): at 10,000 × 10 the IpvsDest and stats objects, BigInts and their collection were most
 * of the worker's time per read (bench/results/scrape.md, 2026-12-04 18:50). A counter of 2^53 or
 * more (bytes) is NaN in its column and exact in `big`.
 */
export class TableColumns implements DumpSink {
  private labels = new LabelText([]);
  private list: readonly IpvsService[] = [];
  private svcLabels: Array<ServiceLabels | undefined> = [];
  /** Row of services[i], or -1 (not declared: no series). */
  private rowOf = new Int32Array(0);
  rows = 0;
  vs = new Float64Array(0);
  vsLabels: Buffer[] = [];
  /** Row r's real servers are rs rows [destStart[r], destEnd[r]). */
  destStart = new Int32Array(0);
  destEnd = new Int32Array(0);
  dests = 0;
  rs = new Float64Array(0);
  rsLabels: Buffer[] = [];
  /** Exact values of the NaN cells of vs and rs, by index. */
  readonly vsBig = new Map<number, bigint>();
  readonly rsBig = new Map<number, bigint>();
  private readonly rec = new DestRecord();

  /** Ready for a new read, labelled from `labels`. */
  reset(labels: LabelText): void {
    this.labels = labels;
    this.list = [];
    this.rows = 0;
    this.dests = 0;
    this.vsBig.clear();
    this.rsBig.clear();
  }

  services(list: readonly IpvsService[]): void {
    this.list = list;
    const n = list.length;
    if (this.rowOf.length < n) {
      this.rowOf = new Int32Array(n);
      this.destStart = new Int32Array(n);
      this.destEnd = new Int32Array(n);
      this.vs = new Float64Array(n * V_COLS);
    }
    this.svcLabels.length = n;
    for (let i = 0; i < n; i++) {
      const s = list[i]!;
      const sl = (this.svcLabels[i] = this.labels.service(serviceKey(s)));
      if (!sl) {
        this.rowOf[i] = -1;
        continue;
      }
      const row = this.rows++;
      this.rowOf[i] = row;
      this.vsLabels[row] = sl.labels;
      this.destStart[row] = this.destEnd[row] = 0;
      const o = row * V_COLS;
      const st = s.stats;
      this.vs[o + V.CONNS] = st?.conns ?? 0;
      this.vs[o + V.INPKTS] = st?.inpkts ?? 0;
      this.vs[o + V.OUTPKTS] = st?.outpkts ?? 0;
      this.vs[o + V.INBYTES] = this.exact(this.vsBig, o + V.INBYTES, st?.inbytes ?? 0n);
      this.vs[o + V.OUTBYTES] = this.exact(this.vsBig, o + V.OUTBYTES, st?.outbytes ?? 0n);
      this.vs[o + V.ACTIVE] = 0;
      this.vs[o + V.INACT] = 0;
    }
  }

  destReplies(i: number, replies: readonly Buffer[]): void {
    const row = this.rowOf[i]!;
    if (row < 0) return;
    const family = this.list[i]!.family;
    const sl = this.svcLabels[i]!;
    const need = (this.dests + replies.length) * R_COLS;
    if (this.rs.length < need) {
      const grown = new Float64Array(Math.max(need, 2 * this.rs.length));
      grown.set(this.rs.subarray(0, this.dests * R_COLS));
      this.rs = grown;
    }
    const rs = this.rs;
    const d = this.rec;
    const st = d.stats;
    const v = row * V_COLS;
    this.destStart[row] = this.dests;
    let sumActive = 0;
    let sumInact = 0;
    for (let j = 0; j < replies.length; j++) {
      readDestReply(replies[j]!, family, d);
      const k = this.dests++;
      const rl = d.addr4 >= 0 ? sl.rs4.get(d.addr4 * 0x1_0000 + d.port) : sl.rs.get(endpoint(d.addr, d.port));
      // A real server the configuration does not name (added by hand): labelled, no configured weight.
      this.rsLabels[k] = rl ? rl.labels : Buffer.from(`${sl.text},${q('real_server', endpoint(d.addr, d.port))}`);
      const o = k * R_COLS;
      const active = d.active_conns < 0 ? 0 : d.active_conns;
      const inact = d.inact_conns < 0 ? 0 : d.inact_conns;
      rs[o + R.ACTIVE] = active;
      rs[o + R.INACT] = inact;
      sumActive += active;
      sumInact += inact;
      if (d.hasStats) {
        rs[o + R.CONNS] = st.conns;
        rs[o + R.INPKTS] = st.inpkts;
        rs[o + R.OUTPKTS] = st.outpkts;
        rs[o + R.INBYTES] = st.inHi < 0x20_0000 ? st.inHi * 0x1_0000_0000 + st.inLo : this.exact(this.rsBig, o + R.INBYTES, (BigInt(st.inHi) << 32n) | BigInt(st.inLo));
        rs[o + R.OUTBYTES] = st.outHi < 0x20_0000 ? st.outHi * 0x1_0000_0000 + st.outLo : this.exact(this.rsBig, o + R.OUTBYTES, (BigInt(st.outHi) << 32n) | BigInt(st.outLo));
      } else {
        rs[o + R.CONNS] = rs[o + R.INPKTS] = rs[o + R.OUTPKTS] = rs[o + R.INBYTES] = rs[o + R.OUTBYTES] = 0;
      }
      rs[o + R.WEIGHT] = d.weight;
      rs[o + R.CONFIGURED] = rl?.configured ?? NONE;
    }
    this.destEnd[row] = this.dests;
    this.vs[v + V.ACTIVE] = sumActive;
    this.vs[v + V.INACT] = sumInact;
  }

  /** A counter as a number while exact, else NaN with the value kept in `big`. */
  private exact(big: Map<number, bigint>, at: number, v: bigint): number {
    if (v >= 0n && v <= MAX_EXACT) return Number(v);
    big.set(at, v);
    return NaN;
  }
}

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
  /** `open labels close value\n`, room made beforehand; `exact` is the value when `v` is NaN. */
  line(open: Buffer, labels: Buffer, close: Buffer, v: number, exact: Map<number, bigint>, at: number): void {
    // TypedArray.set: Buffer.copy's argument checks cost more than these short copies.
    this.buf.set(open, this.pos);
    this.buf.set(labels, this.pos + open.length);
    this.buf.set(close, this.pos + open.length + labels.length);
    this.pos += open.length + labels.length + close.length;
    // Integers exactly (a u64 counter too), other numbers as JS prints them.
    if (Number.isSafeInteger(v) && v >= 0) this.uint(v);
    else this.pos += this.buf.write(v !== v ? String(exact.get(at) ?? v) : String(v), this.pos, 'latin1');
    this.buf[this.pos++] = 0x0a;
  }
  bytes(b: Buffer): void {
    this.buf.set(b, this.pos);
    this.pos += b.length;
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
function familyBytes(f: Family): { header: Buffer; open: Buffer } {
  return { header: enc(familyHeader(f)), open: enc(`${f.name}{`) };
}
const VS_BYTES = VS_FAMILIES.map(familyBytes);
const RS_BYTES = RS_FAMILIES.map(familyBytes);

/**
 * A chunk's memory: a Buffer of its own (allocUnsafeSlow, never a slice of the shared pool), so its
 * ArrayBuffer can be transferred between threads without copying.
 */
export const newChunk = (): Buffer => Buffer.allocUnsafeSlow(CHUNK_BYTES);

/**
 * Family `f`'s lines for rows [from, to) of `cols` (`stride` columns a row, `labels[r]` each row's
 * label text, `big` the exact values of its NaN cells): `name{labels} value`, or for a `direction` family
 * `name{labels,direction="in"} value` and the same with "out".
 */
function familyRows(w: ChunkWriter, emit: (chunk: Buffer) => void, f: Family, open: Buffer, cols: Float64Array, stride: number, labels: readonly Buffer[], from: number, to: number, big: Map<number, bigint>): void {
  let full: Buffer | undefined;
  if (f.dir) {
    const [ci, co] = f.dir;
    for (let r = from; r < to; r++) {
      const l = labels[r]!;
      if ((full = w.room(2 * (open.length + l.length + DIR_OUT.length + VALUE_MAX + 1)))) emit(full);
      const o = r * stride;
      w.line(open, l, DIR_IN, cols[o + ci]!, big, o + ci);
      w.line(open, l, DIR_OUT, cols[o + co]!, big, o + co);
    }
    return;
  }
  const c = f.col!;
  for (let r = from; r < to; r++) {
    const v = cols[r * stride + c]!;
    if (v === NONE && f.optional) continue;
    const l = labels[r]!;
    if ((full = w.room(open.length + l.length + CLOSE.length + VALUE_MAX + 1))) emit(full);
    w.line(open, l, CLOSE, v, big, r * stride + c);
  }
}

/**
 * The whole text of one read, family after family, handed to `emit` in whole-line chunks of at most
 * CHUNK_BYTES, each written into memory from `alloc` (a chunk of CHUNK_BYTES). `capped`: the
 * per-real-server series are left out (their headers stay). Plain loops over the columns: no object,
 * iterator result or string per series.
 */
export function writeTableText(t: TableColumns, capped: boolean, emit: (chunk: Buffer) => void, alloc: () => Buffer = newChunk): void {
  const w = new ChunkWriter(alloc);
  let full: Buffer | undefined;
  for (let i = 0; i < VS_FAMILIES.length; i++) {
    const b = VS_BYTES[i]!;
    if ((full = w.room(b.header.length))) emit(full);
    w.bytes(b.header);
    familyRows(w, emit, VS_FAMILIES[i]!, b.open, t.vs, V_COLS, t.vsLabels, 0, t.rows, t.vsBig);
  }
  for (let i = 0; i < RS_FAMILIES.length; i++) {
    const b = RS_BYTES[i]!;
    if ((full = w.room(b.header.length))) emit(full);
    w.bytes(b.header);
    if (capped) continue;
    // Row by row: with several netlink sockets the rows' real servers were stored in no set order.
    for (let r = 0; r < t.rows; r++) familyRows(w, emit, RS_FAMILIES[i]!, b.open, t.rs, R_COLS, t.rsLabels, t.destStart[r]!, t.destEnd[r]!, t.rsBig);
  }
  if ((full = w.take())) emit(full);
}
