/**
 * Worker-thread entry: read and validate one configuration file, post the result, exit. Runs off
 * the daemon's event loop so a slow or hostile file cannot delay adverts, checks or /healthz
 * (see offload.ts, which starts it, bounds it in time and memory, and turns a crash into an error).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { ConfigError, loadConfigFile, type LoadOptions } from './load.js';
import type { WorkerReply } from './offload.js';

const { file, opts } = workerData as { file: string; opts: LoadOptions };
let reply: WorkerReply;
try {
  reply = { ok: true, loaded: loadConfigFile(file, opts) };
} catch (e) {
  reply = e instanceof ConfigError
    ? { ok: false, code: e.code, diagnostics: e.diagnostics, omitted: e.omitted }
    : { ok: false, code: 'CONFIG_WORKER', diagnostics: [], omitted: 0, message: e instanceof Error ? `${e.name}: ${e.message}` : String(e) };
}
parentPort?.postMessage(reply);
