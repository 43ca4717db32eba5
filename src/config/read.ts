/**
 * Reading the configuration file without trusting what the path names. The path may be replaced by
 * anything between two reloads: a FIFO (open(2) without O_NONBLOCK waits for a writer forever), a
 * character device such as /dev/zero or /dev/urandom (read(2) never reaches end of file), a
 * directory, or a file far larger than any configuration. So: open with O_NONBLOCK (no wait on a
 * FIFO; no effect on a regular file, see open(2)), fstat(2) the open descriptor (the object that
 * will be read, not whatever the path names a moment later), accept only a regular file no larger
 * than the cap, and read at most cap + 1 bytes so a file that grows after the fstat is caught too.
 */
import { closeSync, constants, fstatSync, openSync, readSync, realpathSync, type Stats } from 'node:fs';
import { resolve } from 'node:path';

/** Default size cap: ~40x the largest example, far above a hand-written file, far below harm. */
export const DEFAULT_MAX_CONFIG_BYTES = 4 * 1024 * 1024;

/** Why a path cannot be read as a configuration file; `message` is for people. */
export class ConfigReadError extends Error {
  constructor(readonly reason: 'open' | 'kind' | 'size' | 'read', message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ConfigReadError';
  }
}

function kindOf(st: Stats): string {
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isDirectory()) return 'a directory';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

/** " (the path leads to /dev/urandom)" when the path leads elsewhere, so the message names the real object. */
function viaLink(file: string): string {
  try {
    const real = realpathSync(file);
    return real !== resolve(file) ? ` (the path leads to ${real})` : '';
  } catch {
    return '';
  }
}

const bytes = (n: number) => `${n.toLocaleString('en-US')} bytes`;

/**
 * The file's text (UTF-8), or a ConfigReadError saying what the path is and why it is refused.
 * `what` names the contents in that message (the configuration, the sync keys).
 */
export function readConfigText(file: string, maxBytes = DEFAULT_MAX_CONFIG_BYTES, what = 'its configuration'): string {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (e) {
    throw new ConfigReadError('open', `cannot read file (${(e as NodeJS.ErrnoException).code ?? 'EIO'})`, { cause: e });
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new ConfigReadError('kind', `is ${kindOf(st)}${viaLink(file)}, not a regular file: lvsd reads ${what} only from a regular file`);
    if (st.size > maxBytes) throw new ConfigReadError('size', `the file is ${bytes(st.size)}, larger than the limit of ${bytes(maxBytes)}`);
    const chunks: Buffer[] = [];
    let total = 0;
    // Up to cap + 1 bytes: one byte past the cap proves the file grew beyond it since the fstat.
    for (;;) {
      const chunk = Buffer.allocUnsafe(Math.min(64 * 1024, maxBytes + 1 - total));
      let n: number;
      try {
        n = readSync(fd, chunk, 0, chunk.length, null);
      } catch (e) {
        throw new ConfigReadError('read', `cannot read file (${(e as NodeJS.ErrnoException).code ?? 'EIO'})`, { cause: e });
      }
      if (n === 0) break;
      chunks.push(n === chunk.length ? chunk : chunk.subarray(0, n));
      total += n;
      if (total > maxBytes) throw new ConfigReadError('size', `the file grew past the limit of ${bytes(maxBytes)} while being read`);
    }
    return Buffer.concat(chunks, total).toString('utf8');
  } finally {
    closeSync(fd);
  }
}
