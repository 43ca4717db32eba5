import { Registry, collectDefaultMetrics, Gauge, Counter } from 'prom-client';

export interface CoreMetrics {
  readonly registry: Registry;
  readonly reloads: Counter<'result'>;
  readonly lastReloadSuccess: Gauge;
  readonly up: Gauge<'subsystem'>;
}

/**
 * The daemon's one registry: process/Node metrics plus lvsd_build_info and the config-reload
 * metrics. Subsystems register their own lvsd_* metrics on the same registry.
 */
export function createCoreMetrics(version: string, upOf: () => Iterable<readonly [string, boolean]> = () => []): CoreMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const build = new Gauge({
    name: 'lvsd_build_info',
    help: 'Build information; the value is always 1.',
    labelNames: ['version', 'node'],
    registers: [registry],
  });
  build.set({ version, node: process.versions.node }, 1);
  const reloads = new Counter({
    name: 'lvsd_config_reloads_total',
    help: 'Configuration reloads (SIGHUP) by result: success or failure (invalid file, rejected).',
    labelNames: ['result'],
    registers: [registry],
  });
  // Both label values exist from the start so rate() and alerts work before the first reload.
  reloads.inc({ result: 'success' }, 0);
  reloads.inc({ result: 'failure' }, 0);
  const lastReloadSuccess = new Gauge({
    name: 'lvsd_config_last_reload_success_timestamp_seconds',
    help: 'Unix time of the last successful configuration load (start or reload).',
    registers: [registry],
  });
  const up = new Gauge({
    name: 'lvsd_subsystem_up',
    help: 'Whether a subsystem is running and can do its job (1), or failed, stopped or cannot (0: IPVS not programmable, VRRP sockets closed, sync daemons failing; /status says why).',
    labelNames: ['subsystem'],
    registers: [registry],
    // Read at scrape time, so the gauge says what /healthz says at that moment.
    collect() {
      for (const [subsystem, isUp] of upOf()) this.set({ subsystem }, isUp ? 1 : 0);
    },
  });
  return { registry, reloads, lastReloadSuccess, up };
}
