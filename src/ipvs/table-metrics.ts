/**
 * Per virtual server and per real server figures, read from the kernel when Prometheus scrapes:
 * connections (active, inactive, total), packets and bytes in each direction, and weights (the
 * configured one and the one in the kernel, which health checks and inhibit_on_failure lower).
 * These are what node_exporter's IPVS collector shows for a director, labelled by lvsd's own names
 * (`virtual_server` = the configured name, `service` = protocol/address:port or fwm/N,
 * `real_server` = address:port) so they join with the health and VRRP metrics.
 *
 * One netlink dump serves a whole scrape: every metric's collect() awaits the same snapshot, kept
 * for `cacheMs` (default 1 s, less than any sensible scrape interval), so N metrics never cost N
 * dumps and two Prometheus servers scraping at once share one. Only services lvsd declares are
 * shown (a table it does not manage is not its business, as in plan()).
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { VirtualServerConfig } from '../config/model.js';
import { destKey, serviceKey, type IpvsStats, type IpvsTable } from './model.js';

export interface TableMetricsSource {
  /** The kernel's table (one dump), or undefined when there is no dataplane (no IPVS, no services). */
  read(): Promise<IpvsTable> | undefined;
  /** The virtual servers of the running configuration. */
  declared(): readonly VirtualServerConfig[];
  /** Monotonic milliseconds. */
  now(): number;
}

const VS = ['virtual_server', 'service'] as const;
const RS = ['virtual_server', 'service', 'real_server'] as const;
const DIR = ['direction'] as const;

interface Row {
  vs: Record<(typeof VS)[number], string>;
  rs: Array<{ labels: Record<(typeof RS)[number], string>; active: number; inactive: number; weight: number; configured: number | undefined; stats: IpvsStats | undefined }>;
  stats: IpvsStats | undefined;
}

/** The snapshot a scrape works from: the declared services found in the kernel, with their labels. */
function rowsOf(table: IpvsTable, declared: readonly VirtualServerConfig[]): Row[] {
  const byKey = new Map(declared.map((v) => [v.key, v]));
  const rows: Row[] = [];
  for (const e of table) {
    const key = serviceKey(e.service);
    const vs = byKey.get(key);
    if (!vs) continue;
    const configured = new Map<string, number>(vs.real_servers.map((r) => [r.key, r.weight]));
    if (vs.sorry_server) configured.set(destKey({ addr: vs.sorry_server.address, port: vs.sorry_server.port }), vs.sorry_server.weight);
    const vsLabels = { virtual_server: vs.name, service: key };
    rows.push({
      vs: vsLabels,
      stats: e.service.stats,
      rs: e.dests.map((d) => ({
        labels: { ...vsLabels, real_server: destKey(d) },
        active: d.active_conns ?? 0,
        inactive: d.inact_conns ?? 0,
        weight: d.weight,
        configured: configured.get(destKey(d)),
        stats: d.stats,
      })),
    });
  }
  return rows;
}

function existing<T>(registry: Registry, name: string): T | undefined {
  return registry.getSingleMetric(name) as T | undefined;
}

/**
 * Registers the table metrics on `registry` (once per registry; a later call only swaps the source,
 * so a restarted subsystem does not register twice).
 */
export function registerTableMetrics(registry: Registry, source: TableMetricsSource, opts: { cacheMs?: number } = {}): void {
  const cacheMs = opts.cacheMs ?? 1000;
  const state = registryState.get(registry);
  if (state) {
    state.source = source;
    return;
  }
  const st: { source: TableMetricsSource; at: number; snap: Promise<Row[]> | undefined; reading: boolean } = { source, at: -Infinity, snap: undefined, reading: false };
  registryState.set(registry, st);

  /** The current scrape's rows: one dump per cacheMs, whichever metric asks first. */
  const rows = (): Promise<Row[]> => {
    const now = st.source.now();
    // A dump still running is shared, however old: a second one on the same netlink socket would be
    // refused as busy (a 10,000-service dump takes seconds; bench/scrape.ts).
    if (st.snap && (st.reading || now - st.at < cacheMs)) return st.snap;
    st.at = now;
    const read = st.source.read();
    if (!read) return (st.snap = Promise.resolve([]));
    st.reading = true;
    st.snap = read.then(
      (t) => rowsOf(t, st.source.declared()),
      () => [],
    ).finally(() => {
      st.reading = false;
    });
    return st.snap;
  };

  // Counters hold the kernel's own running totals: each scrape resets them and sets the kernel's
  // value, which also drops the series of a service or real server that left the table.
  function counter<L extends string>(name: string, help: string, labelNames: readonly L[], fill: (c: Counter<L>, r: Row[]) => void): void {
    if (existing(registry, name)) return;
    new Counter<L>({
      name, help, labelNames, registers: [registry],
      async collect() {
        const r = await rows();
        this.reset();
        fill(this, r);
      },
    });
  }
  function gauge<L extends string>(name: string, help: string, labelNames: readonly L[], fill: (g: Gauge<L>, r: Row[]) => void): void {
    if (existing(registry, name)) return;
    new Gauge<L>({
      name, help, labelNames, registers: [registry],
      async collect() {
        const r = await rows();
        this.reset();
        fill(this, r);
      },
    });
  }
  const n = (v: number | bigint | undefined) => Number(v ?? 0);

  counter('lvsd_ipvs_virtual_server_connections_total', 'Connections scheduled by the virtual server (kernel counter)', VS, (c, r) => {
    for (const x of r) c.inc(x.vs, n(x.stats?.conns));
  });
  counter('lvsd_ipvs_virtual_server_packets_total', 'Packets through the virtual server by direction (in: from clients, out: replies through the director; 0 for DR/TUN)', [...VS, ...DIR], (c, r) => {
    for (const x of r) {
      c.inc({ ...x.vs, direction: 'in' }, n(x.stats?.inpkts));
      c.inc({ ...x.vs, direction: 'out' }, n(x.stats?.outpkts));
    }
  });
  counter('lvsd_ipvs_virtual_server_bytes_total', 'Bytes through the virtual server by direction', [...VS, ...DIR], (c, r) => {
    for (const x of r) {
      c.inc({ ...x.vs, direction: 'in' }, n(x.stats?.inbytes));
      c.inc({ ...x.vs, direction: 'out' }, n(x.stats?.outbytes));
    }
  });
  gauge('lvsd_ipvs_virtual_server_active_connections', 'Active (established) connections of the virtual server: the sum over its real servers', VS, (g, r) => {
    for (const x of r) g.set(x.vs, x.rs.reduce((s, d) => s + d.active, 0));
  });
  gauge('lvsd_ipvs_virtual_server_inactive_connections', 'Inactive connections of the virtual server (not established, or closing): the sum over its real servers', VS, (g, r) => {
    for (const x of r) g.set(x.vs, x.rs.reduce((s, d) => s + d.inactive, 0));
  });
  gauge('lvsd_ipvs_real_server_active_connections', 'Active (established) connections of the real server in the kernel', RS, (g, r) => {
    for (const x of r) for (const d of x.rs) g.set(d.labels, d.active);
  });
  gauge('lvsd_ipvs_real_server_inactive_connections', 'Inactive connections of the real server in the kernel', RS, (g, r) => {
    for (const x of r) for (const d of x.rs) g.set(d.labels, d.inactive);
  });
  counter('lvsd_ipvs_real_server_connections_total', 'Connections scheduled to the real server (kernel counter)', RS, (c, r) => {
    for (const x of r) for (const d of x.rs) c.inc(d.labels, n(d.stats?.conns));
  });
  counter('lvsd_ipvs_real_server_packets_total', 'Packets to and from the real server by direction', [...RS, ...DIR], (c, r) => {
    for (const x of r) for (const d of x.rs) {
      c.inc({ ...d.labels, direction: 'in' }, n(d.stats?.inpkts));
      c.inc({ ...d.labels, direction: 'out' }, n(d.stats?.outpkts));
    }
  });
  counter('lvsd_ipvs_real_server_bytes_total', 'Bytes to and from the real server by direction', [...RS, ...DIR], (c, r) => {
    for (const x of r) for (const d of x.rs) {
      c.inc({ ...d.labels, direction: 'in' }, n(d.stats?.inbytes));
      c.inc({ ...d.labels, direction: 'out' }, n(d.stats?.outbytes));
    }
  });
  gauge('lvsd_ipvs_real_server_weight', 'Weight of the real server in the kernel (effective: 0 while inhibited, lowered by dynamic weights)', RS, (g, r) => {
    for (const x of r) for (const d of x.rs) g.set(d.labels, d.weight);
  });
  gauge('lvsd_ipvs_real_server_configured_weight', 'Weight of the real server in the configuration', RS, (g, r) => {
    for (const x of r) for (const d of x.rs) if (d.configured !== undefined) g.set(d.labels, d.configured);
  });
}

const registryState = new WeakMap<Registry, { source: TableMetricsSource; at: number; snap: Promise<Row[]> | undefined; reading: boolean }>();
