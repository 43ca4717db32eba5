/**
 * The real-kernel lab: runs one command as root inside a throw-away user-mode-linux guest.
 *
 * Why UML: the host kernel has no IPVS; Debian's `user-mode-linux` package is a Linux 6.1 kernel that
 * runs as an ordinary process, with IPVS, veth, ipip, bridge... as loadable modules. The guest's root
 * file system is the host's `/` through hostfs, mounted READ-ONLY (so the guest, running as root,
 * cannot modify the host), which makes node, ipvsadm, keepalived and this checkout visible at the same
 * paths. The guest gets no network device at all (only lo): everything networked happens in
 * namespaces the command creates inside.
 *
 * Boot sequence (generated init script, PID 1 in the guest, see initScript()):
 *   proc/sys (devtmpfs is auto-mounted by the kernel), tmpfs on /run (+ /run/netns, /run/tmp as TMPDIR),
 *   /tmp as tmpfs when nothing of ours lives there, the job folder mounted read-write with hostfs
 *   (the exit status travels back through it), modules loaded with `modprobe -d` from a tree whose
 *   lib/modules/VERSION points at /usr/lib/uml/modules/VERSION (and kernel.modprobe set to the same,
 *   so on-demand loading works too), then the command with a clean, whitelisted environment.
 * Output: the guest's console (tty0) is the kernel process's fd 1 and tty1 its fd 2; the command's
 * stdout goes to tty0 and stderr to tty1. `quiet loglevel=0` keeps kernel messages off the console;
 * the tty turns \n into \r\n (onlcr); we turn \r\n back into \n on the way out (one stty exec per
 * tty would cost ~50 ms of boot: every exec in the guest costs that much).
 * Power-off: `poweroff -f` (reboot(2)), so no sysrq banner and no SIGABRT ("Aborted") from UML.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync, mkdirSync, chmodSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Transform, type Writable } from 'node:stream';
import { LvsdError } from '../core/errors.js';

export const UML_KERNEL = '/usr/bin/linux.uml';
export const UML_MODULES = '/usr/lib/uml/modules';

/** Loaded at boot; a failure here fails the run (exit 70) with modprobe's message. */
export const REQUIRED_MODULES = [
  'ipv6', 'veth', 'bridge', 'ipip', 'dummy',
  'ip_vs', 'ip_vs_rr', 'ip_vs_wrr', 'ip_vs_lc', 'ip_vs_wlc', 'ip_vs_lblc', 'ip_vs_lblcr', 'ip_vs_dh',
  'ip_vs_sh', 'ip_vs_mh', 'ip_vs_sed', 'ip_vs_nq', 'ip_vs_fo', 'ip_vs_ovf',
] as const;
/** Loaded at boot when present; absence is not an error. */
export const OPTIONAL_MODULES = ['ip_vs_ftp'] as const;
// Everything else (sch_netem, ip6_tunnel, ...) loads on demand through kernel.modprobe, or explicitly
// with $LVSD_LAB_MODPROBE NAME inside the guest.

/** Environment variables passed through to the command (plus everything starting LVSD_ or NODE_). */
const PASS_ENV = ['PATH', 'HOME', 'TERM', 'LANG', 'LC_ALL', 'TZ', 'CI', 'FORCE_COLOR', 'NO_COLOR', 'USER', 'LOGNAME'];

/** Status codes of the lab itself (the command's own status is passed through unchanged). */
export const LAB_UNAVAILABLE_EXIT = 69; // EX_UNAVAILABLE
export const LAB_FAILED_EXIT = 70; // EX_SOFTWARE: the guest did not report a status
export const LAB_TIMEOUT_EXIT = 124; // like timeout(1)
export const LAB_KILLED_EXIT = 137; // like a SIGKILLed process: the caller aborted the guest (opts.signal)

/**
 * A guest's one network device (labPair): eth0 on a user-space switch (uml_switch) that listens on a
 * unix socket in a folder labPair made. UML's daemon transport only talks to that socket (its data
 * socket is in the abstract unix namespace): no device of the host's network is involved.
 */
export interface LabLink {
  /** The switch's control socket. */
  socket: string;
  /** eth0's MAC address (a locally administered one: 02:...). */
  mac: string;
  /** Addresses (CIDR) put on eth0 at boot, before the command starts. */
  addrs: readonly string[];
  /** The host network namespace the switch runs in (labPair's own): the kernel process joins it. */
  netns?: string;
}

export interface LabOptions {
  /** Guest memory, UML syntax (e.g. "1024M"). Default 1024M. */
  mem?: string;
  /** Kill the kernel after this many seconds (exit 124). Default 1800. */
  timeoutSec?: number;
  /** Working directory of the command (host path, seen at the same path inside). Default process.cwd(). */
  cwd?: string;
  /** Environment to filter and pass (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Extra variables set inside as given (not filtered). */
  setEnv?: Record<string, string>;
  /** Host folders mounted read-write at the same path inside (everything else is read-only). */
  rw?: string[];
  /** Where the command's stdout / stderr go (default process.stdout / process.stderr). */
  stdout?: Writable;
  stderr?: Writable;
  /** Install Debian's user-mode-linux package when the kernel is missing and we are root (default true). */
  install?: boolean;
  /** Progress/diagnostic messages of the lab itself (default: to stderr). */
  log?: (msg: string) => void;
  /** eth0 on a lab switch (labPair); without it the guest has no network device but lo. */
  link?: LabLink;
  /** Aborting kills the guest at once (SIGKILL to its processes: a host losing power); code 137. */
  signal?: AbortSignal;
}

export interface LabResult {
  /** The command's exit status, or 69/70/124 for lab failures (see `error`). */
  code: number;
  /** Why the lab (not the command) failed, when it did. */
  error?: string;
  /** Guest uptime (ms) when init started and when the command started; host wall time in total. */
  initMs?: number;
  readyMs?: number;
  totalMs: number;
}

export interface LabKernel {
  kernel: string;
  /** e.g. "6.1.176", read from /usr/lib/uml/modules/ */
  version: string;
  modules: string;
}

/** Where the UML kernel and its modules are, or undefined. */
export function findKernel(): LabKernel | undefined {
  // LVSD_LAB_KERNEL: another UML kernel binary (its modules still come from UML_MODULES).
  const kernel = process.env.LVSD_LAB_KERNEL || UML_KERNEL;
  if (!existsSync(kernel) || !existsSync(UML_MODULES)) return undefined;
  const versions = readdirSync(UML_MODULES).filter((v) => existsSync(join(UML_MODULES, v, 'modules.dep')));
  versions.sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
  const version = versions.at(-1);
  if (!version) return undefined;
  return { kernel, version, modules: join(UML_MODULES, version) };
}

/** Find the kernel, installing Debian's user-mode-linux package when root; else LAB_UNAVAILABLE. */
export function ensureKernel(opts: { install?: boolean; log?: (m: string) => void } = {}): LabKernel {
  const found = findKernel();
  if (found) return found;
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  // LVSD_LAB_INSTALL=0: never run apt-get (tests of the "unavailable" path, offline machines).
  if (opts.install !== false && process.env.LVSD_LAB_INSTALL !== '0' && root) {
    opts.log?.('lab: installing Debian package user-mode-linux (the real-kernel lab needs it)');
    try {
      execFileSync('apt-get', ['install', '-y', '-q', 'user-mode-linux'], {
        stdio: ['ignore', 'ignore', 'pipe'],
        env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      });
    } catch (e) {
      throw new LvsdError('LAB_UNAVAILABLE', `the lab needs Debian's user-mode-linux package, and "apt-get install -y user-mode-linux" failed: ${String((e as { stderr?: Buffer }).stderr ?? e).trim()}`, { cause: e });
    }
    const after = findKernel();
    if (after) return after;
  }
  throw new LvsdError(
    'LAB_UNAVAILABLE',
    `the lab needs Debian's user-mode-linux package (${UML_KERNEL} and ${UML_MODULES}/VERSION are missing); install it as root: apt-get install -y user-mode-linux`,
  );
}

/** POSIX shell single-quoting. */
export function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

function under(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir.endsWith('/') ? dir : `${dir}/`);
}

/** The environment the command sees: a whitelist of the caller's plus the lab's own. */
export function guestEnv(env: NodeJS.ProcessEnv, set: Record<string, string> = {}): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) continue;
    if (PASS_ENV.includes(k) || k.startsWith('LVSD_') || k.startsWith('NODE_')) out[k] = v;
  }
  out.PATH = `${out.PATH ?? ''}:/usr/local/sbin:/usr/sbin:/sbin:/usr/local/bin:/usr/bin:/bin`.replace(/^:/, '');
  out.TMPDIR = '/run/tmp';
  out.LVSD_IN_LAB = '1';
  return { ...out, ...set };
}

/** Variables that depend on the job folder (set by labRun). */
function jobEnv(job: string): Record<string, string> {
  return { LVSD_LAB_MODPROBE: join(job, 'modprobe') };
}

interface InitSpec {
  job: string;
  modTree: string;
  cwd: string;
  argv: readonly string[];
  env: Record<string, string>;
  mountTmp: boolean;
  rw: string[];
  /** Give the command a pipe instead of the console (the caller's stream is not a TTY). */
  pipeOut?: boolean;
  pipeErr?: boolean;
}

/** fstab field escaping (space, tab, newline, backslash as octal, as getmntent(3) reads them). */
function fstabField(s: string): string {
  return s.replace(/[\\ \t\n]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
}

/**
 * The guest's mounts, all done by one `mount -a -T FILE` (X-mount.mkdir makes the mount points on
 * the fresh tmpfs). hostfs takes the host folder as its whole option string.
 */
export function fstab(s: Pick<InitSpec, 'job' | 'mountTmp' | 'rw'>): string {
  const lines = [
    'proc /proc proc defaults 0 0',
    'sysfs /sys sysfs defaults 0 0',
    'tmpfs /run tmpfs mode=755 0 0',
    `none /run/lvsd-job hostfs ${fstabField(s.job)},X-mount.mkdir 0 0`,
    'tmpfs /run/tmp tmpfs mode=1777,X-mount.mkdir 0 0',
    'tmpfs /dev/shm tmpfs mode=1777,X-mount.mkdir 0 0',
    'devpts /dev/pts devpts newinstance,ptmxmode=0666,X-mount.mkdir 0 0',
    ...(s.mountTmp ? ['tmpfs /tmp tmpfs mode=1777 0 0'] : []),
    ...s.rw.map((d) => `none ${fstabField(d)} hostfs ${fstabField(d)} 0 0`),
  ];
  return lines.join('\n') + '\n';
}

/** PID 1 of the guest. Everything it needs from the host is baked in here or lives in `job`. */
export function initScript(s: InitSpec): string {
  const q = shQuote;
  const envArgs = Object.entries(s.env)
    .filter(([k]) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(k))
    .map(([k, v]) => q(`${k}=${v}`))
    .join(' ');
  const M = `modprobe -d ${q(s.modTree)}`;
  return `#!/bin/bash
# Generated by lvsd lab: PID 1 of a throw-away user-mode-linux guest. Root (hostfs /) is read-only.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
J=${q(s.job)}
fail() { echo "lvsd lab: $*" >/dev/tty1; echo 70 > /run/lvsd-job/status 2>/dev/null; sync; poweroff -f >/dev/null 2>&1; echo o > /proc/sysrq-trigger; }
# Every exec costs ~50-300 ms in UML, so the whole boot uses few processes: one mount -a, one or two
# modprobe, one ip.
mount -a -T "$J/fstab" || fail "mounting the guest's file systems failed"
read INIT_UP _ < /proc/uptime
echo "$INIT_UP" > /run/lvsd-job/init-uptime
# On-demand module loading (a scheduler or qdisc asked for later) uses the same module tree.
echo "$J/modprobe" > /proc/sys/kernel/modprobe
${M} -a ${REQUIRED_MODULES.join(' ')} 2>/dev/tty1 || fail "loading kernel modules failed"
${M} -q -a ${OPTIONAL_MODULES.join(' ')} 2>/dev/null
ip -batch "$J/ip.batch" 2>/dev/tty1 || fail "configuring the guest's network devices failed"
read READY_UP _ < /proc/uptime
echo "$READY_UP" > /run/lvsd-job/ready-uptime
if cd ${q(s.cwd)}; then
${
  s.pipeOut || s.pipeErr
    ? `  # The caller's stdout/stderr are not terminals: give the command pipes too (programs pick their
  # output format on isatty, e.g. node --test's reporter), copied to the consoles by two cats.
  mkfifo /run/lvsd-out /run/lvsd-err
  ${s.pipeOut ? 'cat /run/lvsd-out > /dev/console & op=$!' : 'op='}
  ${s.pipeErr ? 'cat /run/lvsd-err > /dev/tty1 & ep=$!' : 'ep='}
  env -i ${envArgs} ${s.argv.map(q).join(' ')} < /dev/null > ${s.pipeOut ? '/run/lvsd-out' : '/dev/console'} 2> ${s.pipeErr ? '/run/lvsd-err' : '/dev/tty1'} & cp=$!
  wait $cp
  rc=$?
  # Daemons the command left running may still hold the pipes: give the cats 2 s, then stop them.
  for i in {1..20}; do { [ -n "$op" ] && kill -0 $op 2>/dev/null; } || { [ -n "$ep" ] && kill -0 $ep 2>/dev/null; } || break; sleep 0.1; done
  kill $op $ep 2>/dev/null`
    : `  env -i ${envArgs} ${s.argv.map(q).join(' ')} < /dev/null 2>/dev/tty1
  rc=$?`
}
else
  echo "lvsd lab: cannot enter ${s.cwd.replace(/[^A-Za-z0-9_./-]/g, '?')} inside the guest" >/dev/tty1
  rc=70
fi
cd /
echo "$rc" > /run/lvsd-job/status
sync
umount /run/lvsd-job 2>/dev/null
poweroff -f > /dev/null 2>&1
echo o > /proc/sysrq-trigger
`;
}

/** What the guest's init gives `ip -batch`: lo up; with a link, eth0 up with its addresses. */
export function ipBatch(link: LabLink | undefined): string {
  const lines = ['link set lo up'];
  if (link) {
    // No duplicate-address detection on the lab segment: IPv6 addresses are usable at once.
    lines.push('link set eth0 up', ...link.addrs.map((a) => `addr add ${a} dev eth0${a.includes(':') ? ' nodad' : ''}`));
  }
  return lines.join('\n') + '\n';
}

/** The kernel argument that gives the guest eth0 on the switch (UML's daemon transport). */
export function linkArg(link: LabLink): string {
  if (!/^(02|06|0a|0e)(:[0-9a-f]{2}){5}$/i.test(link.mac)) throw new LvsdError('LAB_USAGE', `bad MAC "${link.mac}" (a locally administered unicast one, e.g. 02:00:00:00:00:01)`);
  // The kernel splits the device spec at commas; a path with one would be misread.
  if (!/^\/[A-Za-z0-9_./+-]+$/.test(link.socket)) throw new LvsdError('LAB_USAGE', `bad switch socket path "${link.socket}"`);
  for (const a of link.addrs) if (!/^[0-9a-fA-F.:]+\/[0-9]{1,3}$/.test(a)) throw new LvsdError('LAB_USAGE', `bad address "${a}" (CIDR, e.g. 192.0.2.2/24)`);
  return `eth0=daemon,${link.mac},unix,${link.socket}`;
}

/** Turns \r\n into \n across chunk boundaries (the guest's tty may still add \r). */
export function crlfFilter(): Transform {
  let pendingCr = false;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      let s = (pendingCr ? '\r' : '') + chunk.toString('latin1');
      pendingCr = s.endsWith('\r');
      if (pendingCr) s = s.slice(0, -1);
      cb(null, Buffer.from(s.replace(/\r\n/g, '\n'), 'latin1'));
    },
    flush(cb) {
      cb(null, pendingCr ? Buffer.from('\r', 'latin1') : undefined);
    },
  });
}

/** Run argv inside a fresh guest; resolves with the command's exit status (or 69/70/124). */
export async function runInLab(argv: readonly string[], opts: LabOptions = {}): Promise<number> {
  return (await labRun(argv, opts)).code;
}

/** Like runInLab, with timings and the lab's own error. */
export async function labRun(argv: readonly string[], opts: LabOptions = {}): Promise<LabResult> {
  const t0 = Date.now();
  const log = opts.log ?? ((m: string) => process.stderr.write(`${m}\n`));
  if (argv.length === 0) throw new LvsdError('LAB_USAGE', 'no command given');
  let k: LabKernel;
  try {
    k = ensureKernel({ ...(opts.install !== undefined ? { install: opts.install } : {}), log });
  } catch (e) {
    const msg = (e as Error).message;
    log(`lvsd lab: ${msg}`);
    return { code: LAB_UNAVAILABLE_EXIT, error: msg, totalMs: Date.now() - t0 };
  }
  const mem = opts.mem ?? '1024M';
  if (!/^[0-9]+[KMG]?$/i.test(mem)) throw new LvsdError('LAB_USAGE', `bad memory size "${mem}" (e.g. 512M, 2G)`);
  const timeoutSec = opts.timeoutSec ?? 1800;
  if (!(timeoutSec > 0)) throw new LvsdError('LAB_USAGE', `bad timeout "${timeoutSec}"`);
  const cwd = resolve(opts.cwd ?? process.cwd());
  for (const bad of ['/proc', '/sys', '/dev', '/run']) {
    if (under(cwd, bad)) throw new LvsdError('LAB_USAGE', `the lab cannot run in ${cwd}: ${bad} is replaced inside the guest`);
  }
  const linkSpec = opts.link ? linkArg(opts.link) : undefined;
  const rw = (opts.rw ?? []).map((d) => resolve(d));
  for (const d of rw) {
    if (!existsSync(d) || !statSync(d).isDirectory()) throw new LvsdError('LAB_USAGE', `--rw ${d}: not a folder`);
    if (d === '/' || ['/proc', '/sys', '/dev', '/run'].some((b) => under(d, b))) throw new LvsdError('LAB_USAGE', `--rw ${d}: not allowed`);
  }

  // The job folder must be on the host file system (the guest reaches it through hostfs); /var/tmp
  // rather than /tmp so that the guest may put a tmpfs over /tmp.
  const base = existsSync('/var/tmp') ? '/var/tmp' : '/tmp';
  const job = mkdtempSync(join(base, 'lvsd-lab-'));
  const modTree = join(job, 'mods');
  mkdirSync(join(modTree, 'lib', 'modules'), { recursive: true });
  symlinkSync(k.modules, join(modTree, 'lib', 'modules', k.version));
  const modprobe = join(job, 'modprobe');
  writeFileSync(modprobe, `#!/bin/sh\nexec /usr/sbin/modprobe -d ${shQuote(modTree)} "$@"\n`);
  chmodSync(modprobe, 0o755);
  const mountTmp = !under(cwd, '/tmp') && !under(job, '/tmp') && !rw.some((d) => under(d, '/tmp'));
  const init = join(job, 'init');
  const stdout = opts.stdout ?? process.stdout;
  const stderr = opts.stderr ?? process.stderr;
  const isTty = (w: Writable) => (w as Writable & { isTTY?: boolean }).isTTY === true;
  writeFileSync(join(job, 'fstab'), fstab({ job, mountTmp, rw }));
  writeFileSync(join(job, 'ip.batch'), ipBatch(opts.link));
  writeFileSync(
    init,
    initScript({ job, modTree, cwd, argv, env: guestEnv(opts.env ?? process.env, { ...jobEnv(job), ...opts.setEnv }), mountTmp, rw, pipeOut: !isTty(stdout), pipeErr: !isTty(stderr) }),
  );
  chmodSync(init, 0o755);
  mkdirSync(join(job, 'uml'));

  const kernelArgs = [
    `mem=${mem}`,
    'root=/dev/root', 'rootfstype=hostfs', 'rootflags=/', 'ro',
    `init=${init}`,
    'quiet', 'loglevel=0',
    // Console = tty0 → our stdout, tty1 → our stderr; every other console/serial line unconnected.
    'con=null', 'con0=null,fd:1', 'con1=null,fd:2', 'ssl=null',
    // UML's per-instance control folder goes into the job folder (removed with it).
    `uml_dir=${join(job, 'uml')}`,
    ...(linkSpec ? [linkSpec] : []),
  ];
  let child: ChildProcess;
  try {
    // Own process group: UML runs guest processes as host child processes; we kill the group we made.
    // In the switch's namespace (labPair) the data sockets, abstract ones, can reach each other;
    // `ip netns exec` execs the kernel, so the pid (and group) stays the one spawned here.
    const [cmd, args] = inNetns(opts.link?.netns, k.kernel, kernelArgs);
    child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true, cwd: job,
      // UML backs guest memory with a file in TMPDIR (default /dev/shm, a tmpfs); keep that default.
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
    });
  } catch (e) {
    rmSync(job, { recursive: true, force: true });
    throw new LvsdError('LAB_UNAVAILABLE', `cannot start ${k.kernel}: ${String(e)}`, { cause: e });
  }
  const killGroup = (): void => {
    if (child.pid === undefined) return;
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  };
  const cleanupSync = (): void => {
    killGroup();
    try {
      rmSync(job, { recursive: true, force: true });
    } catch {
      /* best effort */
    }
  };
  const onSignal = (sig: NodeJS.Signals): void => {
    cleanupSync();
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
  };
  process.on('exit', cleanupSync);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  // Forward the guest's output; if our reader goes away (EPIPE, e.g. `| head`), keep draining the
  // guest's side so the kernel never blocks on its console, and let the command finish.
  const forward = (src: NodeJS.ReadableStream, dst: Writable): Promise<void> =>
    new Promise<void>((r) => {
      const f = crlfFilter();
      const onErr = () => {
        f.unpipe(dst);
        f.resume();
      };
      dst.on('error', onErr);
      f.on('end', () => {
        dst.removeListener('error', onErr);
        r();
      });
      src.pipe(f).pipe(dst, { end: false });
    });
  const outDone = forward(child.stdout!, stdout);
  const errDone = forward(child.stderr!, stderr);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    killGroup();
  }, timeoutSec * 1000);
  let aborted = false;
  const onAbort = (): void => {
    aborted = true;
    killGroup();
  };
  if (opts.signal?.aborted) onAbort();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  const exit = await new Promise<{ code: number | null; signal: NodeJS.Signals | null; err?: Error }>((res) => {
    child.on('error', (err) => res({ code: null, signal: null, err }));
    child.on('exit', (code, signal) => res({ code, signal }));
  });
  clearTimeout(timer);
  opts.signal?.removeEventListener('abort', onAbort);
  // UML may leave guest-process helpers behind if it died abnormally: the group goes too.
  killGroup();
  let grace: NodeJS.Timeout | undefined;
  await Promise.race([Promise.all([outDone, errDone]), new Promise((r) => (grace = setTimeout(r, 2000)))]);
  clearTimeout(grace);

  const read = (f: string): string | undefined => {
    try {
      return readFileSync(join(job, f), 'utf8').trim();
    } catch {
      return undefined;
    }
  };
  const status = read('status');
  const secs = (s: string | undefined) => (s && /^[0-9.]+$/.test(s) ? Math.round(Number(s) * 1000) : undefined);
  const initMs = secs(read('init-uptime'));
  const readyMs = secs(read('ready-uptime'));
  process.removeListener('exit', cleanupSync);
  process.removeListener('SIGINT', onSignal);
  process.removeListener('SIGTERM', onSignal);
  cleanupSync();

  const res: LabResult = { code: 0, totalMs: Date.now() - t0 };
  if (initMs !== undefined) res.initMs = initMs;
  if (readyMs !== undefined) res.readyMs = readyMs;
  if (aborted) {
    res.code = LAB_KILLED_EXIT;
    res.error = 'the guest was killed (aborted by its caller)';
  } else if (timedOut) {
    res.code = LAB_TIMEOUT_EXIT;
    res.error = `the guest was killed after the ${timeoutSec} s timeout`;
  } else if (status !== undefined && /^[0-9]+$/.test(status)) {
    res.code = Number(status);
  } else {
    res.code = LAB_FAILED_EXIT;
    res.error = exit.err
      ? `cannot run ${k.kernel}: ${exit.err.message}`
      : `the guest stopped without reporting the command's status (kernel exit ${exit.code ?? exit.signal}; out of memory? try --mem)`;
  }
  if (res.error) log(`lvsd lab: ${res.error}`);
  return res;
}

export const UML_SWITCH = '/usr/bin/uml_switch';
const IP = 'ip';
/**
 * Datagrams a unix socket of the lab's segment may hold unread. Each frame crosses the segment as
 * one unix datagram (guest → switch → guest), and the host's default (net.unix.max_dgram_qlen, 10)
 * made a guest's eth0 drop what a burst put beyond 10 frames: a client sending 15,000 datagrams/s
 * got ~1 in 6 to the director (bench/results/sync.md, 2026-12-05). The sysctl is per network
 * namespace and taken when a socket is made, so labPair runs the switch and the guests in a
 * namespace of its own where it is raised; the host's stays as it is.
 */
export const LAB_DGRAM_QLEN = 512;

/** A command run in host network namespace ns (`ip netns exec` execs it: the pid is the one spawned), or as it is without one. */
function inNetns(ns: string | undefined, cmd: string, args: readonly string[]): [string, string[]] {
  return ns ? [IP, ['netns', 'exec', ns, cmd, ...args]] : [cmd, [...args]];
}

/** One guest of labPair: its name, its command and eth0's addresses; the rest as for labRun. */
export interface PairGuest extends Omit<LabOptions, 'link' | 'install' | 'log'> {
  name: string;
  argv: readonly string[];
  /** eth0's addresses (CIDR), set at boot; may be empty (the command configures eth0 itself). */
  addrs: readonly string[];
}

/**
 * Several guests, each its own kernel (and its own CPU: each UML guest is a host process), on one
 * Ethernet segment: every guest's eth0 plugs into a uml_switch (Debian package uml-utilities) that
 * listens on a unix socket in a private folder this function makes and removes. The switch runs
 * WITHOUT -tap, so the segment reaches nothing but the guests: no host network device is involved.
 * The guests boot at the same time; resolves when every one has stopped, with each one's LabResult
 * (a guest aborted through its `signal` reports 137). Guest i gets MAC 02:00:00:00:00:<i+1>.
 * With `primary`, that guest's end ends the lab: the others are killed (137) once it stops.
 */
export async function labPair(guests: readonly PairGuest[], opts: { primary?: string; install?: boolean; log?: (msg: string) => void } = {}): Promise<Record<string, LabResult>> {
  const log = opts.log ?? ((m: string) => process.stderr.write(`${m}\n`));
  const names = guests.map((g) => g.name);
  if (guests.length < 2 || guests.length > 8) throw new LvsdError('LAB_USAGE', `a pair lab has 2 to 8 guests, not ${guests.length}`);
  if (new Set(names).size !== names.length || names.some((n) => !/^[A-Za-z0-9_-]{1,20}$/.test(n))) throw new LvsdError('LAB_USAGE', `guest names must be distinct words: ${names.join(', ')}`);
  if (opts.primary !== undefined && !names.includes(opts.primary)) throw new LvsdError('LAB_USAGE', `primary guest "${opts.primary}" is not one of ${names.join(', ')}`);
  const fail = (error: string): Record<string, LabResult> => {
    log(`lvsd lab: ${error}`);
    return Object.fromEntries(names.map((n) => [n, { code: LAB_UNAVAILABLE_EXIT, error, totalMs: 0 }]));
  };
  try {
    ensureKernel({ ...(opts.install !== undefined ? { install: opts.install } : {}), log });
  } catch (e) {
    return fail((e as Error).message);
  }
  if (!existsSync(UML_SWITCH)) return fail(`a lab of several guests needs uml_switch (${UML_SWITCH} is missing); install it as root: apt-get install -y uml-utilities`);
  const base = existsSync('/var/tmp') ? '/var/tmp' : '/tmp';
  const dir = mkdtempSync(join(base, 'lvsd-pair-'));
  chmodSync(dir, 0o700);
  const socket = join(dir, 'switch.ctl');
  let sw: ChildProcess | undefined;
  // The segment's own network namespace (no device in it but lo: the sockets are unix ones), with a
  // deeper datagram queue (LAB_DGRAM_QLEN). Without the right to make one, the host's namespace.
  let netns: string | undefined = `lvsd-lab-${process.pid}-${dir.slice(-6).replace(/[^A-Za-z0-9]/g, 'x')}`;
  try {
    execFileSync(IP, ['netns', 'add', netns], { stdio: 'pipe' });
    execFileSync(IP, ['netns', 'exec', netns, 'sysctl', '-qw', `net.unix.max_dgram_qlen=${LAB_DGRAM_QLEN}`], { stdio: 'pipe' });
  } catch (e) {
    log(`lvsd lab: the segment stays in the host's network namespace (unix datagram queue as the host has it): ${String((e as { stderr?: Buffer }).stderr ?? e).trim()}`);
    try {
      execFileSync(IP, ['netns', 'del', netns], { stdio: 'pipe' });
    } catch {
      /* was not made */
    }
    netns = undefined;
  }
  const stop = (): void => {
    if (sw?.pid !== undefined && sw.exitCode === null && sw.signalCode === null) {
      try {
        process.kill(sw.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    rmSync(dir, { recursive: true, force: true });
    if (netns) {
      try {
        execFileSync(IP, ['netns', 'del', netns], { stdio: 'pipe' });
      } catch {
        /* gone */
      }
      netns = undefined;
    }
  };
  // SIGINT/SIGTERM: labRun's handlers kill the guests and end the process by the signal's default
  // action, which runs no 'exit' handler: stop the switch and remove the namespace first (this
  // handler is registered before the guests', so it runs first; it re-raises only if it is the last).
  const onSignal = (sig: NodeJS.Signals): void => {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    stop();
    if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
  };
  process.on('exit', stop);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    let swOut = '';
    // stdin /dev/null: the switch then takes no commands; it serves until killed.
    sw = spawn(...inNetns(netns, UML_SWITCH, ['-unix', socket]), { stdio: ['ignore', 'pipe', 'pipe'] });
    sw.stdout!.on('data', (d: Buffer) => (swOut += d.toString()));
    sw.stderr!.on('data', (d: Buffer) => (swOut += d.toString()));
    const up = Date.now() + 5000;
    while (!existsSync(socket) && sw.exitCode === null && Date.now() < up) await new Promise((r) => setTimeout(r, 20));
    if (!existsSync(socket)) return fail(`uml_switch did not start: ${swOut.trim() || `no ${socket} after 5 s`}`);
    const others = new AbortController();
    const runs = guests.map(async ({ name, argv, addrs, signal, ...o }, i): Promise<[string, LabResult]> => {
      const mac = `02:00:00:00:00:${(i + 1).toString(16).padStart(2, '0')}`;
      const primary = name === opts.primary;
      const sig = opts.primary === undefined || primary ? signal : signal ? AbortSignal.any([signal, others.signal]) : others.signal;
      const r = await labRun(argv, { ...o, ...(sig ? { signal: sig } : {}), log: (m) => log(`${name}: ${m}`), link: { socket, mac, addrs, ...(netns ? { netns } : {}) } }).catch((e: unknown) => ({ code: LAB_FAILED_EXIT, error: String(e), totalMs: 0 }));
      if (primary) others.abort();
      return [name, r];
    });
    return Object.fromEntries(await Promise.all(runs));
  } finally {
    process.removeListener('exit', stop);
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    stop();
  }
}
