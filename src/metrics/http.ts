/**
 * The HTTP endpoint: GET /metrics (Prometheus text), GET /healthz, GET /status (JSON), GET /status/<subsystem>
 * (a subsystem's larger view, e.g. /status/sync: the peer-synced connection table).
 * Listens on loopback by default (global.api.listen).
 */
import { createServer, type Server, type IncomingMessage, type ServerResponse } from 'node:http';
import { finished } from 'node:stream/promises';
import type { Registry } from 'prom-client';
import { scrape } from './exposition.js';
import { parseEndpoint } from '../core/address.js';
import { LvsdError } from '../core/errors.js';
import { yieldToLoop } from '../core/clock.js';
import type { Logger } from '../core/log.js';

export interface ApiHandlers {
  readonly registry: Registry;
  status(): unknown;
  /** GET /status/<name>: a subsystem's larger view; undefined when it has none (404). */
  detail?(name: string): unknown;
  /** null when healthy, otherwise the reason (503). */
  unhealthy(): string | null;
}

export class ApiServer {
  private server: Server | undefined;
  private listening = '';
  constructor(private readonly h: ApiHandlers, private readonly log: Logger) {}

  get address(): string {
    return this.listening;
  }

  async listen(endpoint: string): Promise<void> {
    if (this.server && endpoint === this.listening) return;
    const ep = parseEndpoint(endpoint);
    if (!ep) throw new LvsdError('CONFIG_SEMANTIC', `bad listen address ${endpoint}`);
    const srv = createServer((req, res) => void this.handle(req, res));
    srv.keepAliveTimeout = 5000;
    srv.headersTimeout = 10000;
    await new Promise<void>((resolve, reject) => {
      srv.once('error', (e) => reject(new LvsdError('IO', `cannot listen on ${endpoint}: ${(e as Error).message}`, { cause: e })));
      srv.listen(ep.port, ep.address.text, () => resolve());
    });
    srv.on('error', (e) => this.log.error({ err: e }, 'api server error'));
    const old = this.server;
    this.server = srv;
    const a = srv.address();
    this.listening = a && typeof a === 'object' ? (a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`) : endpoint;
    this.log.info({ listen: this.listening }, 'api listening');
    if (old) await closeServer(old);
  }

  async close(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (s) await closeServer(s);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = (req.url ?? '/').split('?')[0]!;
    let detail: unknown;
    try {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD' }).end();
        return;
      }
      if (url === '/metrics') {
        await this.metrics(req, res);
      } else if (url === '/healthz') {
        const bad = this.h.unhealthy();
        res.writeHead(bad ? 503 : 200, { 'content-type': 'text/plain' }).end(bad ? `unhealthy: ${bad}\n` : 'ok\n');
      } else if (url === '/status') {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(this.h.status(), null, 2) + '\n');
      } else if (url.startsWith('/status/') && (detail = this.h.detail?.(url.slice('/status/'.length))) !== undefined) {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(detail) + '\n');
      } else {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics, /healthz, /status\n');
      }
    } catch (e) {
      this.log.error({ err: e, url }, 'api handler failed');
      if (!res.headersSent) res.writeHead(500).end();
      else res.end();
    }
  }

  /**
   * The registry's metrics and the attached expositions (the IPVS table's), streamed chunk by chunk
   * with the socket's back-pressure respected, so a million-series body is never one string. An
   * error after the first chunk cuts the response (the scraper sees a failed scrape, not a short one).
   * The chunks are borrowed (src/metrics/exposition.ts): the iterator is finished only once the
   * response is flushed to the socket or closed.
   */
  private async metrics(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks = scrape(this.h.registry);
    const first = await chunks.next();
    res.writeHead(200, { 'content-type': this.h.registry.contentType });
    if (req.method === 'HEAD') {
      await chunks.return(undefined);
      res.end();
      return;
    }
    try {
      let written = 0;
      for (let c = first; !c.done; c = await chunks.next()) {
        if (res.destroyed) break;
        if (!res.write(c.value)) await drained(res);
        written += c.value.length;
        if (written >= WRITE_TURN_BYTES) {
          // A write the kernel takes at once completes in the same turn ('drain' is a nextTick) and
          // chunks already there are awaited as microtasks: with a fast reader on loopback and the
          // table worker ahead of the socket, this loop wrote 577 chunks (36 MB, 131 ms of CPU) in
          // one turn of the event loop in a first scrape at 10,000 × 10 on the host
          // (bench/results/scrape.md, 2026-12-04 16:00). A turn per WRITE_TURN_BYTES bounds that by
          // bytes, whatever the reader does. (39cbc68 yielded after 5 ms counted from the last
          // 'drain', which comes in the same turn: it never yielded.)
          await yieldToLoop();
          written = 0;
        }
      }
      res.end();
      await finished(res).catch(() => undefined); // a client that went away: nothing left to write
    } catch (e) {
      res.destroy();
      throw e;
    } finally {
      await chunks.return(undefined);
    }
  }
}

/**
 * Bytes the /metrics write loop writes before it gives the event loop a turn: 16 of the table
 * worker's 64 kB chunks, ~3 ms of kernel work on the host (0.18 ms per write in the first scrape,
 * 2026-12-04) and ~7 ms in the UML lab guest (0.43 ms per write); the 126 turns of a 126 MB body
 * cost nothing measurable.
 */
const WRITE_TURN_BYTES = 1024 * 1024;

/** Resolves when `res` can take more, or is closed. */
function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

function closeServer(s: Server): Promise<void> {
  return new Promise((resolve) => {
    s.close(() => resolve());
    s.closeAllConnections?.();
  });
}
