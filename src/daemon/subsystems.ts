/**
 * Which subsystems the daemon runs, in start order (stopped in reverse):
 *   ipvs first, so it is listening before health publishes the first real-server states;
 *   health next; election after both, so VIPs are only taken once the table is programmed;
 *   sync last, following the election's state.
 * This is the one place the real adapters (netlink, raw sockets, AF_PACKET) are chosen: each
 * factory's defaults are the real mechanisms, tests pass fakes to the factories directly.
 */
import type { SubsystemFactory } from './daemon.js';
import { createIpvsSubsystem } from '../ipvs/subsystem.js';
import { createHealthSubsystem } from '../health/subsystem.js';
import { createElectionSubsystem } from '../election/subsystem.js';
import { createSyncSubsystem } from '../sync/subsystem.js';
import { NetlinkDataplane } from '../ipvs/netlink.js';

export function defaultSubsystems(): Array<{ name: string; factory: SubsystemFactory }> {
  return [
    { name: 'ipvs', factory: (deps) => createIpvsSubsystem(deps) },
    { name: 'health', factory: (deps) => createHealthSubsystem(deps) },
    { name: 'election', factory: (deps) => createElectionSubsystem(deps) },
    // The kernel's sync daemons are driven over the same generic-netlink IPVS family.
    { name: 'sync', factory: (deps) => createSyncSubsystem(deps, { open: () => NetlinkDataplane.open() }) },
  ];
}
