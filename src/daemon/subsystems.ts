/**
 * Which subsystems the daemon runs, in start order (stopped in reverse):
 *   ipvs first, so it is listening before health publishes the first real-server states;
 *   health next; sync before the election, so a returning director has received the active one's
 *   connection table (channel lvsd: the start waits for the resync, bounded) before it can take the
 *   VIPs, and so that at stop the election releases the VIPs before sync stops sending;
 *   election last (VIPs are only taken once the table is programmed).
 * This is the one place the real adapters (netlink, raw sockets, AF_PACKET) are chosen: each
 * factory's defaults are the real mechanisms, tests pass fakes to the factories directly.
 */
import type { SubsystemFactory } from './daemon.js';
import { createIpvsSubsystem } from '../ipvs/subsystem.js';
import { createHealthSubsystem } from '../health/subsystem.js';
import { createElectionSubsystem } from '../election/subsystem.js';
import { createSyncSubsystem } from '../sync/subsystem.js';
import { NetlinkDataplane } from '../ipvs/netlink.js';
import { CONN_TABLE, LoopbackInjector, enableLoopbackMulticast, interfaceIPv4 } from '../sync/adapters.js';

export function defaultSubsystems(): Array<{ name: string; factory: SubsystemFactory }> {
  return [
    { name: 'ipvs', factory: (deps) => createIpvsSubsystem(deps) },
    { name: 'health', factory: (deps) => createHealthSubsystem(deps) },
    // The kernel's sync daemons are driven over the same generic-netlink IPVS family; channel lvsd:
    // /proc's connection table, the lo injector feeding the kernel's backup daemon.
    {
      name: 'sync',
      factory: (deps) =>
        createSyncSubsystem(deps, {
          open: () => NetlinkDataplane.open(),
          lvsd: { connTables: [CONN_TABLE], openInjector: (port, events) => LoopbackInjector.open(port, events), enableLoopbackMulticast, interfaceIPv4 },
        }),
    },
    { name: 'election', factory: (deps) => createElectionSubsystem(deps) },
  ];
}
