/** Prometheus metrics of the IPVS programmer; bounded labels (op kind × result, reconcile reason). */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export interface IpvsMetrics {
  readonly ops: Counter<'op' | 'result'>;
  readonly reconcileDuration: Histogram<'reason'>;
  readonly driftRepairs: Counter;
  readonly services: Gauge;
  readonly destinations: Gauge;
}

function existing<T>(registry: Registry, name: string): T | undefined {
  return registry.getSingleMetric(name) as T | undefined;
}

/** Idempotent per registry (a reload or a second subsystem instance reuses the same metrics). */
export function ipvsMetrics(registry: Registry): IpvsMetrics {
  return {
    ops: existing(registry, 'lvsd_ipvs_ops_total') ?? new Counter({ name: 'lvsd_ipvs_ops_total', help: 'IPVS operations applied, by kind and result (ok, raced = settled race, error)', labelNames: ['op', 'result'] as const, registers: [registry] }),
    reconcileDuration: existing(registry, 'lvsd_ipvs_reconcile_duration_seconds') ?? new Histogram({ name: 'lvsd_ipvs_reconcile_duration_seconds', help: 'Time to read, plan and apply the IPVS table', labelNames: ['reason'] as const, buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers: [registry] }),
    driftRepairs: existing(registry, 'lvsd_ipvs_drift_repairs_total') ?? new Counter({ name: 'lvsd_ipvs_drift_repairs_total', help: 'Operations needed to repair drift (the kernel table changed behind lvsd)', registers: [registry] }),
    services: existing(registry, 'lvsd_ipvs_services') ?? new Gauge({ name: 'lvsd_ipvs_services', help: 'IPVS services lvsd manages that are present in the kernel', registers: [registry] }),
    destinations: existing(registry, 'lvsd_ipvs_destinations') ?? new Gauge({ name: 'lvsd_ipvs_destinations', help: 'Destinations of lvsd-managed IPVS services present in the kernel', registers: [registry] }),
  };
}
