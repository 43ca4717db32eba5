/**
 * `lvsd sync show`: the connections this director learned from its peer over channel lvsd, asked
 * from the running daemon (GET /status/sync) and printed as `ipvsadm -Lnc` prints them.
 */
import { parseCommandLine, CONFIG_OPTION, UsageError } from './args.js';
import { daemonGet } from './status.js';
import { formatLnc, type PeerConnRow } from '../sync/show.js';

export const summary = 'list the connections learned from the peer director (ipvsadm -Lnc form)';
export const usage = `Usage: lvsd sync show [-c FILE | --api ADDR:PORT] [--json]

Asks a running lvsd (GET /status/sync) for the connections it received from its peer over the sync
channel lvsd and not yet expired, and prints them with the columns of \`ipvsadm -Lnc\` (pro, expire,
state, source, virtual, destination). Every one of them is also in the kernel's table on this
director (ipvsadm -Lnc), which lists this director's own connections as well. Expire is lvsd's
estimate from the kernel's default timeout for the state (the kernel timer restarts on traffic).
  -c, --config FILE   find the endpoint from this configuration (global.api.listen)
  --api ADDR:PORT     endpoint to ask (default 127.0.0.1:9650)
  --json              print the JSON: {"channel", "active", "connections": [{protocol,
                      expire_seconds, state, source, virtual, destination, template, forwarding,
                      fwmark}]}
Exit status: 0 listed, 1 the daemon runs no channel lvsd (sync.channel kernel keeps the records in
the kernel only: use ipvsadm -Lnc), 3 not reachable.
`;

interface SyncDetail {
  channel: string | null;
  active: boolean | null;
  connections: PeerConnRow[] | null;
}

export async function main(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== 'show') throw new UsageError(sub ? `unknown sync command "${sub}" (takes show)` : 'missing sync command (takes show)');
  const { values: o } = parseCommandLine(rest, { ...CONFIG_OPTION, api: { type: 'string' }, json: { type: 'boolean' } });
  const body = await daemonGet('sync show', o, '/status/sync');
  if (body === undefined) return 3;
  const d = JSON.parse(body) as SyncDetail;
  if (!d.connections) {
    process.stderr.write(d.channel
      ? `lvsd sync show: sync.channel is ${d.channel} and channel lvsd is not running; the kernel's own table is in \`ipvsadm -Lnc\`\n`
      : 'lvsd sync show: no sync configured on this director\n');
    return 1;
  }
  process.stdout.write(o.json ? body : formatLnc(d.connections));
  return 0;
}
