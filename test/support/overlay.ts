/**
 * Runs a shell script as root inside a throw-away copy of this machine: a private mount namespace
 * with an overlayfs whose lower layer is / and whose upper layer is a tmpfs, entered with chroot.
 * Whatever the script installs or writes (dpkg's database, users, /usr, /etc) lives only in the
 * tmpfs and disappears with the namespace. Paths that existed on / before the call (e.g. a build
 * under os.tmpdir()) are visible inside. The script reports facts as `key=value` lines.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

export const shQuote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

export function inOverlay(scratch: string, script: string, timeoutMs: number): { out: string; status: number | null; facts: Array<[string, string]> } {
  const ov = join(scratch, 'ov');
  const ns = [
    'set -e',
    `mkdir -p ${ov} && mount -t tmpfs tmpfs ${ov} && mkdir ${ov}/upper ${ov}/work ${ov}/root`,
    `mount -t overlay overlay -o lowerdir=/,upperdir=${ov}/upper,workdir=${ov}/work ${ov}/root`,
    `mount --rbind /proc ${ov}/root/proc && mount --rbind /dev ${ov}/root/dev`,
    `chroot ${ov}/root /bin/sh -c ${shQuote(script)}`,
  ].join('\n');
  const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', ns], { encoding: 'utf8', timeout: timeoutMs });
  const out = (r.stdout ?? '') + (r.stderr ?? '');
  const facts = out.split('\n').map((l) => /^(\w+)=(.*)$/.exec(l)).filter((m) => m !== null).map((m) => [m[1]!, m[2]!] as [string, string]);
  return { out, status: r.status, facts };
}
