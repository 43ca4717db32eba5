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
 * built once per row, series are written in chunks of CHUNK_LINES lines with a turn of the event loop
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
import { destKey, serviceKey, type IpvsStats, type IpvsTable } from './model.js';

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

/** Series lines per chunk: ~250 kB of text, a few ms of work on the dev host (bench/scrape.ts). */
const CHUNK_LINES = 512;
/** Services turned into rows between two turns of the event loop. */
const ROWS_PER_SLICE = 200;

interface RsRow {
  /** `virtual_server="…",service="…",real_server="…"` */
  readonly labels: string;
  readonly active: number;
  readonly inactive: number;
  readonly weight: number;
  readonly configured: number | undefined;
  readonly stats: IpvsStats | undefined;
}
interface VsRow {
  /** `virtual_server="…",service="…"` */
  readonly labels: string;
  readonly stats: IpvsStats | undefined;
  readonly rs: readonly RsRow[];
}
interface Snapshot {
  readonly rows: readonly VsRow[];
  /** The per-real-server series are left out (more declared real servers than max_real_servers). */
  readonly capped: boolean;
}

type Value = number | bigint | undefined;
interface Family<R> extends MetricDoc {
  readonly type: 'counter' | 'gauge';
  /** One value per row, or the in and out values of a `direction` family. */
  readonly value: (r: R) => Value | readonly [Value, Value];
  /** No series for a row without a value (instead of 0). */
  readonly optional?: true;
}

const VS = ['virtual_server', 'service'];
const RS = ['virtual_server', 'service', 'real_server'];
const sum = (rs: readonly RsRow[], f: (r: RsRow) => number) => rs.reduce((s, d) => s + f(d), 0);

const VS_FAMILIES: ReadonlyArray<Family<VsRow>> = [
  { name: 'lvsd_ipvs_virtual_server_connections_total', type: 'counter', labels: VS, help: 'Connections scheduled by the virtual server (kernel counter)', value: (r) => r.stats?.conns },
  { name: 'lvsd_ipvs_virtual_server_packets_total', type: 'counter', labels: [...VS, 'direction'], help: 'Packets through the virtual server by direction (in: from clients, out: replies through the director; 0 for DR/TUN)', value: (r) => [r.stats?.inpkts, r.stats?.outpkts] },
  { name: 'lvsd_ipvs_virtual_server_bytes_total', type: 'counter', labels: [...VS, 'direction'], help: 'Bytes through the virtual server by direction', value: (r) => [r.stats?.inbytes, r.stats?.outbytes] },
  { name: 'lvsd_ipvs_virtual_server_active_connections', type: 'gauge', labels: VS, help: 'Active (established) connections of the virtual server: the sum over its real servers', value: (r) => sum(r.rs, (d) => d.active) },
  { name: 'lvsd_ipvs_virtual_server_inactive_connections', type: 'gauge', labels: VS, help: 'Inactive connections of the virtual server (not established, or closing): the sum over its real servers', value: (r) => sum(r.rs, (d) => d.inactive) },
];
const RS_FAMILIES: ReadonlyArray<Family<RsRow>> = [
  { name: 'lvsd_ipvs_real_server_active_connections', type: 'gauge', labels: RS, help: 'Active (established) connections of the real server in the kernel', value: (d) => d.active },
  { name: 'lvsd_ipvs_real_server_inactive_connections', type: 'gauge', labels: RS, help: 'Inactive connections of the real server in the kernel', value: (d) => d.inactive },
  { name: 'lvsd_ipvs_real_server_connections_total', type: 'counter', labels: RS, help: 'Connections scheduled to the real server (kernel counter)', value: (d) => d.stats?.conns },
  { name: 'lvsd_ipvs_real_server_packets_total', type: 'counter', labels: [...RS, 'direction'], help: 'Packets to and from the real server by direction', value: (d) => [d.stats?.inpkts, d.stats?.outpkts] },
  { name: 'lvsd_ipvs_real_server_bytes_total', type: 'counter', labels: [...RS, 'direction'], help: 'Bytes to and from the real server by direction', value: (d) => [d.stats?.inbytes, d.stats?.outbytes] },
  { name: 'lvsd_ipvs_real_server_weight', type: 'gauge', labels: RS, help: 'Weight of the real server in the kernel (effective: 0 while inhibited, lowered by dynamic weights)', value: (d) => d.weight },
  // No series for a real server the configuration does not name (one added by hand).
  { name: 'lvsd_ipvs_real_server_configured_weight', type: 'gauge', labels: RS, help: 'Weight of the real server in the configuration', value: (d) => d.configured, optional: true },
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
  readonly labels: string;
  readonly rs: Map<string, { readonly labels: string; readonly configured: number | undefined }>;
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
  const labels = `${q('virtual_server', vs.name)},${q('service', key)}`;
  const rs = new Map<string, { labels: string; configured: number | undefined }>();
  for (const r of vs.real_servers) rs.set(r.key, { labels: `${labels},${q('real_server', r.key)}`, configured: r.weight });
  if (vs.sorry_server) {
    const k = destKey({ addr: vs.sorry_server.address, port: vs.sorry_server.port });
    rs.set(k, { labels: `${labels},${q('real_server', k)}`, configured: vs.sorry_server.weight });
  }
  const out = { labels, rs };
  cache.labels.set(key, out);
  return out;
}

/** The rows of the declared services found in the kernel; yields between slices. */
async function rowsOf(table: IpvsTable, declared: readonly VirtualServerConfig[]): Promise<VsRow[]> {
  const rows: VsRow[] = [];
  let i = 0;
  for (const e of table) {
    if (++i % ROWS_PER_SLICE === 0) await yieldToLoop();
    const sl = serviceLabels(declared, serviceKey(e.service));
    if (!sl) continue;
    rows.push({
      labels: sl.labels,
      stats: e.service.stats,
      rs: e.dests.map((d) => {
        const k = destKey(d);
        // A real server the configuration does not name (added by hand): labelled, no configured weight.
        const r = sl.rs.get(k) ?? { labels: `${sl.labels},${q('real_server', k)}`, configured: undefined };
        return { labels: r.labels, active: d.active_conns ?? 0, inactive: d.inact_conns ?? 0, weight: d.weight, configured: r.configured, stats: d.stats };
      }),
    });
  }
  return rows;
}

/**
 * One family's series, CHUNK_LINES lines at a time. Each chunk is one flat string (lines joined),
 * not a rope grown line by line: flattening a rope of thousands of pieces when the socket encodes
 * it cost more than building the lines (bench/scrape.ts).
 */
function* familyText<R extends { labels: string }>(f: Family<R>, rows: Iterable<R>): Generator<string> {
  let lines: string[] = [familyHeader(f)];
  for (const r of rows) {
    const v = f.value(r);
    if (Array.isArray(v)) {
      const [vin, vout] = v as readonly [Value, Value];
      lines.push(`${f.name}{${r.labels},direction="in"} ${vin ?? 0}\n`, `${f.name}{${r.labels},direction="out"} ${vout ?? 0}\n`);
    } else if (v !== undefined || !f.optional) {
      lines.push(`${f.name}{${r.labels}} ${(v as Value) ?? 0}\n`);
    }
    if (lines.length >= CHUNK_LINES) {
      yield lines.join('');
      lines = [];
    }
  }
  yield lines.join('');
}

function* realServers(rows: readonly VsRow[]): Generator<RsRow> {
  for (const r of rows) yield* r.rs;
}

/** The whole text of a snapshot, in chunks with a turn of the event loop after each. */
async function* tableText(snap: Snapshot): AsyncGenerator<string> {
  const families: Array<Generator<string>> = [
    ...VS_FAMILIES.map((f) => familyText(f, snap.rows)),
    ...RS_FAMILIES.map((f) => familyText(f, snap.capped ? [] : realServers(snap.rows))),
  ];
  for (const g of families) {
    for (const chunk of g) {
      yield chunk;
      await yieldToLoop();
    }
  }
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
