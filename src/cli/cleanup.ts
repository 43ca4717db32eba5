import { loadConfigOffThread, ConfigError, formatDiagnostic } from '../config/index.js';
import { errorMessage, isLvsdError } from '../core/errors.js';
import { DirectorLock } from '../daemon/lock.js';
import { NetlinkAddressTable } from '../election/vips.js';
import { configuredVips, removeVips } from '../election/leftovers.js';
import { parseCommandLine, CONFIG_OPTION } from './args.js';

export const summary = "remove this configuration's VIPs when no daemon runs (ExecStopPost)";
export const usage = `Usage: lvsd cleanup -c FILE [--state-dir DIR]

Removes every VIP of the configuration's VRRP instances from its interface, as a daemon killed with
SIGKILL leaves them. Refuses (exit 75, nothing touched) while an lvsd holds this director's lock
(see lvsd run); holds the lock itself meanwhile, so no daemon starts halfway. Never touches IPVS.
The shipped systemd unit runs it as ExecStopPost.
  -c, --config FILE   configuration file (default /etc/lvsd/lvsd.yaml)
  --state-dir DIR     where the lock file is (default: global.state_dir, /run/lvsd)
Exit status: 0 done (also when nothing was there), 1 invalid configuration or a VIP could not be
removed, 2 usage, 75 a daemon is running.
`;

export async function main(argv: string[]): Promise<number> {
  const { values: o } = parseCommandLine(argv, { ...CONFIG_OPTION, 'state-dir': { type: 'string' } });
  const file = o.config ?? '/etc/lvsd/lvsd.yaml';
  let config;
  try {
    config = (await loadConfigOffThread(file, { checkFiles: false })).config;
  } catch (e) {
    if (e instanceof ConfigError) for (const d of e.diagnostics) process.stderr.write(formatDiagnostic(d) + '\n');
    else process.stderr.write(`lvsd cleanup: ${errorMessage(e)}\n`);
    return 1;
  }
  const lock = new DirectorLock(o['state-dir'] ?? config.global.state_dir);
  try {
    lock.acquire();
  } catch (e) {
    process.stderr.write(`lvsd cleanup: ${errorMessage(e)}; nothing removed\n`);
    return isLvsdError(e, 'LOCKED') ? 75 : 1;
  }
  const table = new NetlinkAddressTable();
  try {
    const results = await removeVips(table, configuredVips(config));
    let failed = 0;
    for (const r of results) {
      const what = `${r.vip.address}/${r.vip.prefixLen} on ${r.ifname} (${r.instance})`;
      if (r.result === 'removed') process.stdout.write(`removed ${what}\n`);
      else if (r.result === 'error') {
        failed++;
        process.stderr.write(`lvsd cleanup: cannot remove ${what}: ${r.error ?? ''}\n`);
      }
    }
    return failed ? 1 : 0;
  } finally {
    table.close();
    lock.release();
  }
}
