import { posix } from 'node:path';
import type { ConfigFiles } from '../../src/config/keepalived/index.js';

/** Files in memory: path → text. */
export function memFiles(files: Record<string, string>): ConfigFiles {
  const dirs = new Map<string, Set<string>>();
  for (const f of Object.keys(files)) {
    let p = f;
    while (p !== '/') {
      const d = posix.dirname(p);
      if (!dirs.has(d)) dirs.set(d, new Set());
      dirs.get(d)!.add(posix.basename(p));
      p = d;
    }
  }
  return {
    read: (p) => {
      if (files[p] === undefined) throw Object.assign(new Error(`ENOENT: ${p}`), { code: 'ENOENT' });
      return files[p]!;
    },
    list: (d) => (dirs.has(d) ? [...dirs.get(d)!] : undefined),
    exists: (p) => files[p] !== undefined || dirs.has(p),
  };
}

