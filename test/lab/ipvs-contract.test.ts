/**
 * The Dataplane contract against the real kernel (runs inside the UML lab: `lvsd lab exec`).
 * The same suite runs against MemoryDataplane on the host (test/ipvs/contract-memory.test.ts).
 */
import { execFileSync } from 'node:child_process';
import { NetlinkDataplane } from '../../src/ipvs/netlink.js';
import { dataplaneContract } from '../ipvs/contract.js';

// Destinations must have unicast addresses, which needs lo up in the guest.
execFileSync('ip', ['link', 'set', 'lo', 'up']);

dataplaneContract('kernel', {
  open: async () => {
    // The guest's table belongs to these tests: start every case from empty (never done by lvsd itself).
    execFileSync('ipvsadm', ['-C']);
    for (const st of ['master', 'backup']) {
      try { execFileSync('ipvsadm', ['--stop-daemon', st], { stdio: 'ignore' }); } catch { /* not running */ }
    }
    return NetlinkDataplane.open();
  },
  daemonInterface: 'lo',
});
