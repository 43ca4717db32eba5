/**
 * `lvsd demo`: the whole product on a real IPVS kernel, inside the user-mode-linux lab (src/lab/demo/
 * host.ts runs the scenario of src/lab/demo/scenario.ts in a guest and narrates it);
 * `lvsd demo --vrrp`: the VRRP-only failover in network namespaces on the host (src/lab/demo/vrrp.ts).
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isRoot } from '../lab/netns.js';
import { parseCommandLine, UsageError } from './args.js';

export const summary = 'the whole product on a real IPVS kernel (lab guest); --vrrp: VRRP failover in namespaces';
export const usage = `Usage: lvsd demo
       lvsd demo --vrrp [--example FILE]

Without options: boots the real-kernel lab (a user-mode-linux guest with IPVS and no network device
to the host: the host's interfaces are never touched) and shows, narrated line by line, two lvsd
directors (VRRP, IPVS direct routing, HTTP health checks, kernel connection sync), three HTTP real
servers and a client: requests spread over the real servers; a real server dies and leaves the
kernel table while no request fails, then returns; the master director crashes and the backup takes
the VIP with the client's long-lived connections; the old master returns and takes over again. Ends
with a summary table. About a minute on a quiet machine. Needs root the first time only if Debian's
user-mode-linux package must be installed.

--vrrp: VRRP only, in network namespaces on the host (needs root): two \`lvsd run\` daemons with the
VRRP-only example adapted to them and a client; kills the master and shows the takeover.
  --example FILE   VRRP-only configuration to adapt (default examples/vrrp-only.yaml)

Exit status: 0 the demo ran to its summary (--vrrp: the failover happened), 1 it stopped early,
69 the lab is unavailable, 77 --vrrp without root.
`;

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

export async function main(argv: string[]): Promise<number> {
  const { values: o } = parseCommandLine(argv, { vrrp: { type: 'boolean' }, example: { type: 'string' } });
  const example = o.example;
  if (!o.vrrp) {
    if (example !== undefined) throw new UsageError('--example goes with --vrrp');
    const { runLabDemo } = await import('../lab/demo/host.js');
    return (await runLabDemo()).code;
  }
  const file = resolve(example ?? join(root, 'examples', 'vrrp-only.yaml'));
  if (!isRoot()) {
    process.stderr.write('lvsd demo --vrrp needs root: it creates network namespaces, a bridge and veth pairs (all inside\nnamespaces it removes afterwards; the host\'s interfaces are never touched). Run: sudo bin/lvsd demo --vrrp\n');
    return 77;
  }
  if (!existsSync(file)) throw new UsageError(`example ${file} not found`);
  const { runVrrpDemo } = await import('../lab/demo/vrrp.js');
  return runVrrpDemo(file);
}
