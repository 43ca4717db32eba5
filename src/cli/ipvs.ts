/**
 * `lvsd ipvs apply` makes the kernel's IPVS table equal to a config's virtual servers (every real
 * server considered healthy) without flushing; `lvsd ipvs show` prints the kernel table exactly as
 * `ipvsadm -Ln` does, so `diff <(ipvsadm -Ln) <(lvsd ipvs show)` is empty.
 */
import { isLvsdError, errorMessage } from '../core/errors.js';
import { parseCommandLine, CONFIG_OPTION, UsageError } from './args.js';

export const summary = 'program the kernel IPVS table from a config (apply) or print it (show)';
export const usage = `Usage: lvsd ipvs apply -c FILE [--dry-run] [--exclusive]
       lvsd ipvs show [--json]

apply   Read the kernel's IPVS table, plan the operations that make it equal to FILE's virtual
        servers (every real server considered healthy) and apply them. Changes are made in place
        (a weight or scheduler change never deletes a destination or service); the table is never
        flushed. Services FILE does not declare are left alone unless --exclusive (or
        global.ipvs.exclusive in FILE). Prints one operation per line; exit 0 when all succeeded,
        1 when one failed or FILE is invalid, 69 when the kernel has no IPVS.
        --dry-run   print the operations without applying them
show    Print the kernel's table in the same lines as \`ipvsadm -Ln\` (--json: as JSON, with stats).
`;

const EX_UNAVAILABLE = 69;

async function openDataplane() {
  const { NetlinkDataplane } = await import('../ipvs/netlink.js');
  return NetlinkDataplane.open();
}

function jsonReplacer(_k: string, v: unknown): unknown {
  return typeof v === 'bigint' ? Number(v) : v;
}

async function apply(argv: string[]): Promise<number> {
  const { values: o } = parseCommandLine(argv, { ...CONFIG_OPTION, 'dry-run': { type: 'boolean' }, exclusive: { type: 'boolean' } });
  const file = o.config ?? '/etc/lvsd/lvsd.yaml';
  // Loaded here, not at the top: `lvsd ipvs show` should not pay for the schema and YAML parser.
  const { loadConfigOffThread, errorLines, ConfigError } = await import('../config/index.js');
  let config;
  try {
    config = (await loadConfigOffThread(file, { checkFiles: false })).config;
  } catch (e) {
    if (e instanceof ConfigError) {
      for (const l of errorLines(e)) process.stderr.write(l + '\n');
      return 1;
    }
    throw e;
  }
  const { desiredFromConfig } = await import('../ipvs/desired.js');
  const { plan, formatOp } = await import('../ipvs/plan.js');
  const { execute } = await import('../ipvs/executor.js');
  const dp = await openDataplane();
  try {
    const desired = desiredFromConfig(config);
    const actual = await dp.dump();
    const exclusive = o.exclusive === true || config.global.ipvs.exclusive;
    const ops = plan(desired, actual, { exclusive });
    for (const op of ops) process.stdout.write(formatOp(op) + '\n');
    if (o['dry-run']) return 0;
    const t = config.global.ipvs.timeouts;
    if (t && (t.tcp || t.tcp_fin || t.udp)) {
      const cur = await dp.getTimeouts();
      const want = { tcp: t.tcp || cur.tcp, tcp_fin: t.tcp_fin || cur.tcp_fin, udp: t.udp || cur.udp };
      if (want.tcp !== cur.tcp || want.tcp_fin !== cur.tcp_fin || want.udp !== cur.udp) {
        await dp.setTimeouts(want);
        process.stdout.write(`set-timeouts tcp=${want.tcp} tcp_fin=${want.tcp_fin} udp=${want.udp}\n`);
      }
    }
    const r = await execute(dp, ops);
    for (const f of r.failed) process.stderr.write(`lvsd ipvs apply: failed: ${formatOp(f.op)}: ${f.errno ?? ''} ${f.message ?? ''}\n`);
    return r.failed.length ? 1 : 0;
  } finally {
    await dp.close();
  }
}

async function show(argv: string[]): Promise<number> {
  const { values: o } = parseCommandLine(argv, { json: { type: 'boolean' } });
  const { formatIpvsadmList } = await import('../ipvs/format.js');
  const dp = await openDataplane();
  try {
    const info = await dp.getInfo();
    const table = await dp.dump();
    if (o.json) process.stdout.write(JSON.stringify({ info, services: table.map((e) => ({ ...e.service, dests: e.dests })) }, jsonReplacer, 2) + '\n');
    else process.stdout.write(formatIpvsadmList(info, table));
    return 0;
  } finally {
    await dp.close();
  }
}

export async function main(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  try {
    if (sub === 'apply') return await apply(rest);
    if (sub === 'show') return await show(rest);
  } catch (e) {
    if (isLvsdError(e, 'IPVS_UNAVAILABLE')) {
      process.stderr.write(`lvsd ipvs: ${e.message}\n`);
      return EX_UNAVAILABLE;
    }
    if (isLvsdError(e)) {
      process.stderr.write(`lvsd ipvs: ${errorMessage(e)}\n`);
      return 1;
    }
    throw e;
  }
  throw new UsageError(sub ? `unknown ipvs subcommand "${sub}" (apply, show)` : 'ipvs needs a subcommand: apply or show');
}
