/**
 * Per virtual server and per real server figures, read from the kernel when Prometheus scrapes:
 * connections (active, inactive, total), packets and bytes in each direction, and weights (the
 * configured one and the one in the kernel, which health checks and inhibit_on_failure lower).
 * These are what node_exporter's IPVS collector shows for a director, labelled by lvsd's own names
 * (`virtual_server` = the configured name, `service` = protocol/address:port or fwm/N,
 * `real_server` = address:port) so they join with the health and VRRP metrics.
 *
 * One kernel read serves a whole scrape and every scrape within `cacheMs` (default 1 s, less than
 * any sensible scrape interval), so two Prometheus servers scraping at once share one; a read still
 * in flight is shared however old. Only services lvsd declares are shown (a table it does not manage
 * is not its business, as in plan()).
 *
 * The text is written here, not by prom-client (src/metrics/exposition.ts says why): label text is
 * built once per declared service and real server (as bytes, kept while the configuration is the
 * same), series are written straight into Buffers of CHUNK_BYTES with a turn of the event loop
 * between chunks, and the chunks are streamed to the HTTP client. Counters are the kernel's own
 * running totals, written as read (a service or real server that left the table has no series).
 * `global.api.table_metrics` can switch them off, or leave the per-real-server series out of a table
 * with more real servers than `max_real_servers` (a million series is more than most Prometheus
 * setups want from one target).
 */
import type { Registry } from 'prom-client';
import type { VirtualServerConfig } from '../config/model.js';
import type { MetricDoc } from '../metrics/catalogue.js';
import { yieldToLoop } from '../core/clock.js';
import { attachExposition, escapeLabelValue, familyHeader } from '../metrics/exposition.js';
import { destKey, serviceKey, type IpvsDest, type IpvsTable, type IpvsTableEntry } from './model.js';

export interface TableMetricsSettings {
  /** false: no table series and no kernel read at scrape time. */
  readonly enabled: boolean;
  /** Above this many declared real servers, only the per-virtual-server series are written. */
  readonly max_real_servers: number;
}

export const DEFAULT_TABLE_METRICS: TableMetricsSettings = { enabled: true, max_real_servers: 100_000 };

export interface TableMetricsSource {
  /** The kernel's table (one read), or undefined when there is no dataplane (no IPVS, no services). */
  read(): Promise<IpvsTable> | undefined;
  /** The virtual servers of the running configuration. */
  declared(): readonly VirtualServerConfig[];
  /** global.api.table_metrics of the running configuration (default DEFAULT_TABLE_METRICS). */
  settings?(): TableMetricsSettings | undefined;
  /** Monotonic milliseconds. */
  now(): number;
}

/**
 * Bytes per chunk: a chunk is written into one Buffer, handed to the socket as is (no string to
 * encode), and is a fraction of a millisecond of work on the dev host, a few ms in the lab guest.
 */
const CHUNK_BYTES = 64 * 1024;
/** Services turned into rows between two turns of the event loop. */
const ROWS_PER_SLICE = 200;

/** A declared real server's label text (`virtual_server="…",service="…",real_server="…"`, UTF-8). */
interface RsLabels {
  readonly labels: Buffer;
  readonly configured: number | undefined;
}
/** A service of the table, declared, with its label text and its destinations' (same order). */
interface VsRow {
  readonly labels: Buffer;
  readonly entry: IpvsTableEntry;
  readonly rs: readonly RsLabels[];
}
interface Snapshot {
  readonly rows: readonly VsRow[];
  /** The per-real-server series are left out (more declared real servers than max_real_servers). */
  readonly capped: boolean;
}

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

/** The number of declared real servers (sorry servers included): what max_real_servers caps. */
export function declaredRealServers(declared: readonly VirtualServerConfig[]): number {
  let n = 0;
  for (const v of declared) n += v.real_servers.length + (v.sorry_server ? 1 : 0);
  return n;
}

const q = (name: string, v: string) => `${name}="${escapeLabelValue(v)}"`;

/** A declared service's label text and its real servers' (label text, configured weight). */
interface ServiceLabels {
  readonly text: string;
  readonly labels: Buffer;
  readonly rs: Map<string, RsLabels>;
}

/**
 * Label text per declared service, kept for as long as the configuration is the same (keyed by its
 * virtual server list): built on a scrape's first sight of a service, reused by every later scrape.
 * Rebuilding ~100,000 label strings per scrape made young-generation GC pauses the longest stalls.
 */
const labelCache = new WeakMap<readonly VirtualServerConfig[], { byKey: Map<string, VirtualServerConfig>; labels: Map<string, ServiceLabels> }>();

function serviceLabels(declared: readonly VirtualServerConfig[], key: string): ServiceLabels | undefined {
  let cache = labelCache.get(declared);
  if (!cache) {
    cache = { byKey: new Map(declared.map((v) => [v.key, v])), labels: new Map() };
    labelCache.set(declared, cache);
  }
  const hit = cache.labels.get(key);
  if (hit) return hit;
  const vs = cache.byKey.get(key);
  if (!vs) return undefined;
  const text = `${q('virtual_server', vs.name)},${q('service', key)}`;
  const rs = new Map<string, RsLabels>();
  for (const r of vs.real_servers) rs.set(r.key, { labels: Buffer.from(`${text},${q('real_server', r.key)}`), configured: r.weight });
  if (vs.sorry_server) {
    const k = destKey({ addr: vs.sorry_server.address, port: vs.sorry_server.port });
    rs.set(k, { labels: Buffer.from(`${text},${q('real_server', k)}`), configured: vs.sorry_server.weight });
  }
  const out = { text, labels: Buffer.from(text), rs };
  cache.labels.set(key, out);
  return out;
}

/** The rows of the declared services found in the kernel; yields between slices. */
async function rowsOf(table: IpvsTable, declared: readonly VirtualServerConfig[]): Promise<VsRow[]> {
  const rows: VsRow[] = [];
  let i = 0;
  for (const entry of table) {
    if (++i % ROWS_PER_SLICE === 0) await yieldToLoop();
    const sl = serviceLabels(declared, serviceKey(entry.service));
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

const MAX_EXACT = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * Text written straight into Buffers of CHUNK_BYTES: the label text of a row is bytes cached across
 * scrapes, values are written digit by digit. A million series make no string per line, so the
 * scrape leaves next to no garbage for the collector (whose pauses were the longest stalls).
 */
class ChunkWriter {
  private buf = Buffer.allocUnsafe(CHUNK_BYTES);
  private pos = 0;

  /** Room for `n` more bytes; a full chunk is returned (to be yielded) and a new one started. */
  room(n: number): Buffer | undefined {
    if (this.pos + n <= this.buf.length) return undefined;
    const full = this.take();
    if (n > this.buf.length) this.buf = Buffer.allocUnsafe(n);
    return full;
  }
  take(): Buffer | undefined {
    if (this.pos === 0) return undefined;
    const full = this.buf.subarray(0, this.pos);
    this.buf = Buffer.allocUnsafe(CHUNK_BYTES);
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
 * The whole text of a snapshot, family after family, in chunks of CHUNK_BYTES with a turn of the
 * event loop after each. Plain loops, not a generator per family: an iterator result per row was
 * most of the garbage left (a million per scrape).
 */
async function* tableText(snap: Snapshot): AsyncGenerator<Buffer> {
  const w = new ChunkWriter();
  let full: Buffer | undefined;
  for (let i = 0; i < VS_FAMILIES.length; i++) {
    const f = VS_FAMILIES[i]!;
    const b = VS_BYTES[i]!;
    if ((full = w.room(b.header.length))) yield full;
    w.bytes(b.header);
    for (const r of snap.rows) {
      if ((full = rowText(w, f, b.open, r.entry, r.labels, undefined))) {
        yield full;
        await yieldToLoop();
      }
    }
  }
  for (let i = 0; i < RS_FAMILIES.length; i++) {
    const f = RS_FAMILIES[i]!;
    const b = RS_BYTES[i]!;
    if ((full = w.room(b.header.length))) yield full;
    w.bytes(b.header);
    if (snap.capped) continue;
    for (const r of snap.rows) {
      const ds = r.entry.dests;
      for (let j = 0; j < ds.length; j++) {
        if ((full = rowText(w, f, b.open, ds[j]!, r.rs[j]!.labels, r.rs[j]!.configured))) {
          yield full;
          await yieldToLoop();
        }
      }
    }
  }
  if ((full = w.take())) yield full;
}

interface State {
  source: TableMetricsSource;
  at: number;
  snap: Promise<Snapshot> | undefined;
  reading: boolean;
}
const registryState = new WeakMap<Registry, State>();

/**
 * Attaches the table metrics to `registry`'s scrape (once per registry; a later call only swaps the
 * source, so a restarted subsystem does not add them twice).
 */
export function registerTableMetrics(registry: Registry, source: TableMetricsSource, opts: { cacheMs?: number } = {}): void {
  const cacheMs = opts.cacheMs ?? 1000;
  const known = registryState.get(registry);
  if (known) {
    known.source = source;
    return;
  }
  const st: State = { source, at: -Infinity, snap: undefined, reading: false };
  registryState.set(registry, st);

  /** The current scrape's rows: one kernel read per cacheMs, shared while in flight. */
  const snapshot = (settings: TableMetricsSettings): Promise<Snapshot> => {
    const now = st.source.now();
    // A read still running is shared, however old: a second dump on the same netlink socket would be
    // refused as busy (a 10,000-service table takes seconds to read in the lab; bench/scrape.ts).
    if (st.snap && (st.reading || now - st.at < cacheMs)) return st.snap;
    st.at = now;
    const declared = st.source.declared();
    const capped = declaredRealServers(declared) > settings.max_real_servers;
    const read = st.source.read();
    if (!read) return (st.snap = Promise.resolve({ rows: [], capped }));
    st.reading = true;
    st.snap = read
      .then((t) => rowsOf(t, declared), () => [])
      .then((rows) => ({ rows, capped }))
      .finally(() => {
        st.reading = false;
      });
    return st.snap;
  };

  attachExposition(registry, {
    families: [...VS_FAMILIES, ...RS_FAMILIES].map(({ name, type, labels, help }) => ({ name, type, labels, help })),
    async *chunks() {
      const settings = st.source.settings?.() ?? DEFAULT_TABLE_METRICS;
      if (!settings.enabled) return;
      yield* tableText(await snapshot(settings));
    },
  });
}
