/**
 * `lvsd lab exec [--] CMD...`: run a command as root inside a throw-away real Linux kernel
 * (Debian's user-mode-linux) with IPVS, veth, ipip and bridge available. See docs/lab.md.
 */
import { parseCommandLine, UsageError } from './args.js';
import { labRun, LAB_UNAVAILABLE_EXIT } from '../lab/uml.js';
import { isLvsdError } from '../core/errors.js';

export const summary = 'run a command inside a real-kernel lab (user-mode Linux with IPVS)';
export const usage = `Usage: lvsd lab exec [options] [--] CMD [ARGS...]

Boots Debian's user-mode-linux kernel with the host's / as a read-only root, IPVS (every scheduler),
veth, ipip, bridge and dummy modules loaded, tmpfs on /run and /tmp (TMPDIR=/run/tmp), and no network
device except lo. Runs CMD as root in the current directory, streams its output, and exits with CMD's
exit status (69: lab unavailable, 70: the guest failed, 124: timeout).

Options:
  --mem SIZE         guest memory (default 1024M)
  --timeout SECONDS  kill the guest after this long (default 1800)
  --rw DIR           also mount host folder DIR read-write at the same path (repeatable)
  --times            print boot timings to stderr at the end
Environment passed in: PATH, HOME, TERM, LANG, TZ, CI and every LVSD_* and NODE_* variable;
LVSD_IN_LAB=1 is set inside.
`;

export async function main(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== 'exec') throw new UsageError(sub ? `unknown lab command "${sub}"\n\n${usage}` : `missing lab command\n\n${usage}`);
  // Options stop at "--" or at the first word that is not an option (the command).
  const { values: o, rest: cmd } = parseCommandLine(
    rest,
    { mem: { type: 'string' }, timeout: { type: 'string' }, rw: { type: 'string', multiple: true }, times: { type: 'boolean' } },
    { tail: true },
  );
  if (cmd.length === 0) throw new UsageError('lab exec needs a command');
  const rw = o.rw ?? [];
  const mem = o.mem;
  const t = o.timeout;
  const timeoutSec = t === undefined ? undefined : Number(t);
  if (timeoutSec !== undefined && !(Number.isFinite(timeoutSec) && timeoutSec > 0)) throw new UsageError(`--timeout: "${t}" is not a positive number of seconds`);
  try {
    const r = await labRun(cmd, {
      ...(mem !== undefined ? { mem } : {}),
      ...(timeoutSec !== undefined ? { timeoutSec } : {}),
      rw,
    });
    if (o.times) process.stderr.write(`lvsd lab: init at ${r.initMs ?? '?'} ms guest uptime, command started at ${r.readyMs ?? '?'} ms, total ${r.totalMs} ms\n`);
    return r.code;
  } catch (e) {
    if (isLvsdError(e, 'LAB_USAGE')) throw new UsageError(e.message);
    if (isLvsdError(e, 'LAB_UNAVAILABLE')) {
      process.stderr.write(`lvsd lab: ${e.message}\n`);
      return LAB_UNAVAILABLE_EXIT;
    }
    throw e;
  }
}
