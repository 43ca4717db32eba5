import { request } from 'node:http';
import { parseEndpoint } from '../core/address.js';
import { loadConfigOffThread, ConfigError } from '../config/index.js';
import { readConfigText } from '../config/read.js';
import { parseCommandLine, CONFIG_OPTION, UsageError } from './args.js';
import { renderStatus } from './status-view.js';


export const summary = 'show the running daemon\'s state (asks its HTTP endpoint)';
export const usage = `Usage: lvsd status [-c FILE | --api ADDR:PORT] [--json]

Asks a running lvsd for its state over GET /status and prints a summary for people: VRRP
instances with state and priority, virtual servers with their real servers' health, weight and
connections, connection sync; times relative to now.
  -c, --config FILE   find the endpoint from this configuration (global.api.listen)
  --api ADDR:PORT     endpoint to ask (default 127.0.0.1:9650)
  --json              print the raw JSON (snake_case keys, ISO times)
Exit status: 0 running, 3 not reachable.
`;

/** GET on a running daemon's endpoint (also `lvsd sync show`). */
export function apiGet(endpoint: string, path: string): Promise<{ status: number; body: string }> {
  const ep = parseEndpoint(endpoint);
  if (!ep) throw new UsageError(`bad endpoint ${endpoint}`);
  return new Promise((resolve, reject) => {
    const req = request({ host: ep.address.text, port: ep.port, path, timeout: 3000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end();
  });
}

type Json = Record<string, unknown>;

/** The endpoint to ask: --api, else global.api.listen of the -c file, else the default. */
export async function apiEndpoint(o: { api?: string; config?: string }): Promise<string> {
  let endpoint = o.api;
  const file = o.config;
  if (!endpoint && file) {
    try {
      endpoint = (await loadConfigOffThread(file, { checkFiles: false })).config.global.api.listen;
    } catch (e) {
      if (e instanceof ConfigError) {
        // The daemon may still be running an older, valid file; fall back to a plain read of the key.
        let text = '';
        try {
          text = readConfigText(file);
        } catch {
          /* not a readable regular file: the default endpoint below */
        }
        const m = /listen:\s*["']?([^\s"'#]+)/.exec(text);
        endpoint = m?.[1];
      } else throw e;
    }
  }
  return endpoint ?? '127.0.0.1:9650';
}

/**
 * GET `path` from the running daemon (endpoint from --api or the config): the body, or undefined after
 * saying on stderr why not (no daemon answering, or a status other than 200; the caller exits 3).
 */
export async function daemonGet(command: string, o: { api?: string; config?: string }, path: string): Promise<string | undefined> {
  const endpoint = await apiEndpoint(o);
  let r: { status: number; body: string };
  try {
    r = await apiGet(endpoint, path);
  } catch (e) {
    process.stderr.write(`lvsd ${command}: no lvsd answering on ${endpoint} (${(e as Error).message})\n`);
    return undefined;
  }
  if (r.status !== 200) {
    process.stderr.write(`lvsd ${command}: ${endpoint} answered HTTP ${r.status}\n`);
    return undefined;
  }
  return r.body;
}

export async function main(argv: string[]): Promise<number> {
  const { values: o } = parseCommandLine(argv, { ...CONFIG_OPTION, api: { type: 'string' }, json: { type: 'boolean' } });
  const body = await daemonGet('status', o, '/status');
  if (body === undefined) return 3;
  if (o.json) process.stdout.write(body);
  else process.stdout.write(renderStatus(JSON.parse(body) as Json));
  return 0;
}
