/** The real file system for the keepalived reader (the imperative shell of the importer). */
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import type { ConfigFiles } from './source.js';

export const nodeFiles: ConfigFiles = {
  read: (p) => readFileSync(p, 'utf8'),
  list: (d) => {
    try {
      return readdirSync(d);
    } catch {
      return undefined;
    }
  },
  exists: (p) => existsSync(p),
};
