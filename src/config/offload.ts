/**
 * Loading a configuration file on a worker thread (node:worker_threads). Parsing and validating a
 * large file is CPU work measured in seconds; on the event loop it stopped VRRP adverts long enough
 * for the peer to take over. Here the loop only waits for a message. The worker is bounded: a
 * deadline (terminate and reject) and a heap limit (the worker dies, not the daemon), so a file
 * that would take forever or explode in memory (YAML aliases expand when validated) is one more
 * rejected configuration. `lvsd run`, the SIGHUP reload and `lvsd check-config` all load through here.
 */
import { Worker } from 'node:worker_threads';
import { ConfigError, type ConfigErrorCode, type Diagnostic } from './errors.js';
import type { LoadedConfig, LoadOptions } from './load.js';
import { deepFreeze } from './model.js';

export type WorkerReply =
  | { ok: true; loaded: LoadedConfig }
  | { ok: false; code: string; diagnostics: Diagnostic[] | readonly Diagnostic[]; omitted: number; message?: string };

/** Far above the measured time for a file at the size cap (docs/reliability.md), far below "hung". */
export const DEFAULT_LOAD_TIMEOUT_MS = 60_000;
/** Heap for one load; a file at the 4 MiB cap needs a fraction of it (docs/reliability.md). */
export const DEFAULT_LOAD_HEAP_MB = 512;

export interface OffThreadOptions extends LoadOptions {
  timeoutMs?: number;
  maxHeapMb?: number;
}

const CODES = new Set<ConfigErrorCode>(['CONFIG_SYNTAX', 'CONFIG_SCHEMA', 'CONFIG_SEMANTIC', 'CONFIG_IO', 'CONFIG_TIMEOUT', 'CONFIG_WORKER']);

/** Read and validate `file` on a worker thread; resolves the model or rejects with a ConfigError. */
export function loadConfigOffThread(file: string, opts: OffThreadOptions = {}): Promise<LoadedConfig> {
  const { timeoutMs = DEFAULT_LOAD_TIMEOUT_MS, maxHeapMb = DEFAULT_LOAD_HEAP_MB, ...load } = opts;
  const fail = (code: ConfigErrorCode, message: string, cause?: unknown) =>
    new ConfigError([{ severity: 'error', file, line: 1, column: 1, path: '', message }], code, 0, cause === undefined ? undefined : { cause });
  return new Promise<LoadedConfig>((resolve, reject) => {
    let settled = false;
    const worker = new Worker(new URL('./worker.js', import.meta.url), {
      workerData: { file, opts: load },
      resourceLimits: { maxOldGenerationSizeMb: maxHeapMb, maxYoungGenerationSizeMb: Math.min(64, Math.max(4, maxHeapMb / 8)) },
      stdout: false,
      stderr: false,
    });
    const settle = (f: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      f();
    };
    const timer = setTimeout(() => {
      settle(() => reject(fail('CONFIG_TIMEOUT', `loading the file took longer than ${timeoutMs / 1000} s and was stopped; nothing from it was applied`)));
      void worker.terminate();
    }, timeoutMs);
    worker.once('message', (r: WorkerReply) => {
      settle(() => {
        if (r.ok) resolve({ ...r.loaded, config: deepFreeze(r.loaded.config) });
        else if (r.message !== undefined) reject(fail('CONFIG_WORKER', `the configuration loader failed: ${r.message}`));
        else reject(new ConfigError(r.diagnostics, CODES.has(r.code as ConfigErrorCode) ? (r.code as ConfigErrorCode) : 'CONFIG_WORKER', r.omitted));
      });
    });
    worker.once('error', (e: Error & { code?: string }) => {
      const why = e.code === 'ERR_WORKER_OUT_OF_MEMORY' ? `it needed more than the ${maxHeapMb} MB heap allowed for loading a configuration` : e.message;
      settle(() => reject(fail('CONFIG_WORKER', `the configuration loader stopped: ${why}; nothing from the file was applied`, e)));
    });
    worker.once('exit', (code) => {
      settle(() => reject(fail('CONFIG_WORKER', `the configuration loader exited (status ${code}) without a result; nothing from the file was applied`)));
    });
  });
}
