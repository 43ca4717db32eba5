/**
 * Drives a VipSet inside a namespace. Usage: node vips-cli.js IFNAME ADDR/PLEN... [async]
 * Prints "taken" after take(); on stdin line "release" prints "released N" and exits;
 * prints "restored ADDR" whenever the guard re-adds an address. The guard's poll is an hour: within a
 * test only the address notification can restore one (what the test proves, by effect, not by time).
 */
import { createInterface } from 'node:readline';
import { SystemClock } from '../../../src/core/clock.js';
import { silentLogger } from '../../../src/core/log.js';
import { NetlinkAddressTable, VipSet } from '../../../src/election/vips.js';

const [ifname, ...args] = process.argv.slice(2);
const addrs = args.filter((x) => x !== 'async');
const table = new NetlinkAddressTable();
const vips = addrs.map((a) => {
  const [address, plen] = a.split('/');
  const family = address!.includes(':') ? 6 : 4;
  return { address: address!, prefixLen: Number(plen), family, scope: 'global' } as const;
});
const set = new VipSet({ table, clock: new SystemClock(), logger: silentLogger, ifname: ifname!, vips, pollSeconds: 3600, onRestored: (v) => process.stdout.write(`restored ${v}\n`) });
const rl = createInterface({ input: process.stdin });
rl.on('line', (l) => {
  if (l.trim() === 'release') {
    void set.release().then((n) => {
      process.stdout.write(`released ${n}\n`);
      table.close();
      rl.close();
    });
  }
});
// As the runtime does at a takeover: synchronous add when the table can (the guard then starts in a
// microtask), else the asynchronous one. `async` on the command line forces the latter.
if (process.argv.includes('async') || !set.takeNow()) await set.take();
process.stdout.write('taken\n');
