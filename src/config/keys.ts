/**
 * The key file of sync channel lvsd (sync.key_file; docs/sync.md, Keys): its format and reading.
 * Part of the configuration: the loader reads it with the YAML (load.ts), so a bad key file is an
 * error of the configuration, and its key ids make a rotated file a change a reload applies. The
 * channel signs with the first key and accepts both (sync/wire.ts).
 */
import { createHash } from 'node:crypto';
import { LvsdError } from '../core/errors.js';
import { readConfigText } from './read.js';

export interface SyncKey {
  readonly id: number;
  readonly secret: Buffer;
}

/** Minimum key length: HMAC-SHA256 keys shorter than the hash add no strength beyond their length. */
export const MIN_KEY_BYTES = 16;

export function makeKey(secret: Buffer): SyncKey {
  return { id: createHash('sha256').update(secret).digest().readUInt32BE(0), secret };
}

/** A key file holds two lines of at most a few hundred bytes: anything larger is not one. */
const MAX_KEY_FILE_BYTES = 64 * 1024;

/**
 * Keys from a file: one key per non-empty line (the first signs, a second is also accepted, for
 * rotation); a line "hex:..." or "base64:..." is decoded, anything else is used as its bytes.
 */
export function loadKeys(path: string): SyncKey[] {
  let text: string;
  try {
    // Bounded, regular files only (config/read.ts): a key_file naming a FIFO or /dev/zero must not
    // hang the loader, which validates it at every reload.
    text = readConfigText(path, MAX_KEY_FILE_BYTES, 'keys');
  } catch (e) {
    const code = ((e as Error).cause as NodeJS.ErrnoException | undefined)?.code;
    const why = code === 'ENOENT' ? 'does not exist' : code === 'EACCES' ? 'cannot be read (permission denied)' : (e as Error).message;
    throw new LvsdError('SYNC_KEY', `sync key file ${path}: ${why}`, { cause: e });
  }
  return parseKeys(text, path);
}

export function parseKeys(text: string, where = 'key file'): SyncKey[] {
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  if (lines.length === 0 || lines.length > 2) throw new LvsdError('SYNC_KEY', `${where}: expected 1 or 2 keys (one per line), found ${lines.length}`);
  return lines.map((l, i) => {
    const secret = l.startsWith('hex:') ? Buffer.from(l.slice(4), 'hex') : l.startsWith('base64:') ? Buffer.from(l.slice(7), 'base64') : Buffer.from(l, 'utf8');
    if (secret.length < MIN_KEY_BYTES) throw new LvsdError('SYNC_KEY', `${where}: key ${i + 1} is ${secret.length} bytes, at least ${MIN_KEY_BYTES} are needed`);
    return makeKey(secret);
  });
}
