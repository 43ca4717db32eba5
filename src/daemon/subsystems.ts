/**
 * Which subsystems the daemon runs, in start order (stopped in reverse):
 *   ipvs first, so it is listening before health publishes the first real-server states;
 *   health next; election last, so VIPs are only taken once the table is programmed.
 * Each factory module is loaded on demand, which keeps `lvsd run` usable while a subsystem's
 * module is absent from a build (the daemon logs that it is missing).
 */
import type { SubsystemDeps } from '../core/subsystem.js';
import type { DaemonSubsystem, SubsystemFactory } from './daemon.js';

interface Entry {
  name: string;
  module: string;
  exportName: string;
  /** Extra options the real daemon passes the factory. */
  options?: () => Promise<unknown>;
}

const ENTRIES: Entry[] = [
  { name: 'ipvs', module: '../ipvs/subsystem.js', exportName: 'createIpvsSubsystem' },
  { name: 'health', module: '../health/subsystem.js', exportName: 'createHealthSubsystem' },
  { name: 'election', module: '../election/subsystem.js', exportName: 'createElectionSubsystem' },
  {
    name: 'sync',
    module: '../sync/subsystem.js',
    exportName: 'createSyncSubsystem',
    // The kernel's sync daemons are driven over the same generic-netlink IPVS family.
    options: async () => {
      const { NetlinkDataplane } = await import('../ipvs/netlink.js');
      return { open: () => NetlinkDataplane.open() };
    },
  },
];

export async function defaultSubsystems(log: { warn(o: object, m: string): void }): Promise<Array<{ name: string; factory: SubsystemFactory }>> {
  const out: Array<{ name: string; factory: SubsystemFactory }> = [];
  for (const e of ENTRIES) {
    try {
      const mod = (await import(e.module)) as Record<string, unknown>;
      const f = mod[e.exportName];
      if (typeof f !== 'function') throw new Error(`${e.module} has no ${e.exportName}`);
      const options = e.options ? await e.options() : undefined;
      out.push({ name: e.name, factory: (deps: SubsystemDeps) => (f as (d: SubsystemDeps, o?: unknown) => DaemonSubsystem)(deps, options) });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ERR_MODULE_NOT_FOUND' && String((err as Error).message).includes(e.module.replace('../', '').replace('.js', ''))) log.warn({ name: e.name }, 'subsystem not built into this lvsd; skipped');
      else throw err;
    }
  }
  return out;
}
