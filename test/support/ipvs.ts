/**
 * The IPVS subsystem fixture shared by its host tests (test/ipvs/subsystem.test.ts, in-memory
 * dataplane) and its real-kernel test (test/lab/ipvs-apply.test.ts): the "web" cluster config and a
 * subsystem wired to a ManualClock, a Bus, a Registry and a RecordingLogger.
 */
import { Registry } from 'prom-client';
import { parseConfigText } from '../../src/config/load.js';
import type { ClusterConfig } from '../../src/config/index.js';
import { Bus } from '../../src/core/bus.js';
import { ManualClock } from '../../src/core/clock.js';
import { RecordingLogger } from '../../src/core/log.js';
import { createIpvsSubsystem } from '../../src/ipvs/subsystem.js';
import type { Dataplane } from '../../src/ipvs/model.js';

/**
 * tcp/192.0.2.10:80 "web", wrr, real servers 198.51.100.1 (weight 1, inhibit_on_failure) and
 * 198.51.100.2 (weight `weight2`, default 2); `extraVs` is appended to virtual_servers.
 */
export function webYaml(o: { routerId: string; driftCheckInterval: number; weight2?: number; extraVs?: string }): string {
  return `
global:
  router_id: ${o.routerId}
  ipvs: { drift_check_interval: ${o.driftCheckInterval} }
virtual_servers:
  - name: web
    address: 192.0.2.10
    port: 80
    scheduler: wrr
    real_servers:
      - { address: 198.51.100.1, weight: 1, inhibit_on_failure: true }
      - { address: 198.51.100.2, weight: ${o.weight2 ?? 2} }
${o.extraVs ?? ''}`;
}

/** Parse a config text (no file checks). */
export const cfgOf = (text: string, file = 'test.yaml'): ClusterConfig => parseConfigText(text, file, { checkFiles: false }).config;

/** An IPVS subsystem on `dataplane`, or (none given) on the kernel's, as the daemon opens it. */
export function ipvsHarness<D extends Dataplane | undefined = undefined>(dataplane?: D) {
  const clock = new ManualClock();
  const bus = new Bus();
  const registry = new Registry();
  const logger = new RecordingLogger();
  const sub = createIpvsSubsystem({ logger, clock, registry, bus }, dataplane ? { dataplane } : {});
  return { clock, bus, registry, logger, sub, dp: dataplane as D };
}
