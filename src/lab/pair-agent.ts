/**
 * A guest's remote hands in a lab of several guests (labPair): the host cannot reach the guests'
 * segment (it has no device on it, by design), so a command in one guest drives the others through
 * this agent, over the segment itself.
 *
 *   node dist/src/lab/pair-agent.js ADDRESS [PORT] [MAX_SECONDS]
 *
 * HTTP with JSON bodies, POST only:
 *   /ping                      → {} (the agent is up)
 *   /time                      → {wall}: this guest's wall clock (ms, sub-ms) when it answered;
 *                              with the caller's clock before and after, bounds the skew between guests
 *   /exec {argv, timeoutMs?}   run a command to its end → {code, stdout, stderr}
 *   /spawn {argv}              start a background command → {id}
 *   /output {id}               its output so far → {stdout, stderr, code (null while it runs)}
 *   /signal {id, signal}       signal it (by PID)
 *   /exit {code?}              SIGTERM every background command (up to 10 s, then SIGKILL), exit
 *   /poweroff                  answers, then powers the guest off at once (sysrq o): no process
 *                              is told, no packet says goodbye: a director's host failing
 * The agent exits by itself after MAX_SECONDS (default 1800). Lab use only: it runs what it is told
 * as root, and listens only on the lab segment's address it is given.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';

export const AGENT_PORT = 4801;

interface Bg {
  child: ChildProcess;
  stdout: string;
  stderr: string;
  code: number | null;
}

/** Calls an agent; throws on a transport error or a non-200 answer. */
export async function agent<T = Record<string, unknown>>(host: string, path: string, body: Record<string, unknown> = {}, port = AGENT_PORT, timeoutMs = 120_000): Promise<T> {
  const r = await fetch(`http://${host.includes(':') ? `[${host}]` : host}:${port}${path}`, {
    method: 'POST',
    body: JSON.stringify(body),
    headers: { 'content-type': 'application/json' },
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await r.text();
  if (r.status !== 200) throw new Error(`agent ${host}${path}: ${r.status} ${text}`);
  return JSON.parse(text) as T;
}

/**
 * The offset of an agent's clock from ours (its wall − ours, ms), from the quickest of `n` /time
 * round trips: the true offset is within ±rtt/2 of the estimate (NTP's reasoning, RFC 5905 §8).
 */
export async function clockOffset(host: string, n = 20): Promise<{ offsetMs: number; rttMs: number }> {
  let best = { offsetMs: NaN, rttMs: Infinity };
  for (let i = 0; i < n; i++) {
    const t1 = performance.timeOrigin + performance.now();
    const { wall } = await agent<{ wall: number }>(host, '/time');
    const t3 = performance.timeOrigin + performance.now();
    if (t3 - t1 < best.rttMs) best = { offsetMs: wall - (t1 + t3) / 2, rttMs: t3 - t1 };
  }
  return best;
}

/** Keeps the last `max` characters (a daemon's log may grow for the whole run). */
const tail = (s: string, max = 1 << 20) => (s.length > max ? s.slice(-max) : s);

function serve(address: string, port: number, maxSeconds: number): void {
  const bg = new Map<number, Bg>();
  let next = 1;
  const reply = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const stopAll = async (): Promise<void> => {
    const live = [...bg.values()].filter((b) => b.code === null && b.child.pid !== undefined);
    for (const b of live) b.child.kill('SIGTERM');
    const end = Date.now() + 10_000;
    while (live.some((b) => b.code === null) && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
    for (const b of live) if (b.code === null) b.child.kill('SIGKILL');
  };
  const handle = async (path: string, q: Record<string, unknown>, res: ServerResponse): Promise<void> => {
    const argv = q.argv;
    const okArgv = Array.isArray(argv) && argv.length > 0 && argv.every((a) => typeof a === 'string');
    switch (path) {
      case '/exec': {
        if (!okArgv) return reply(res, 400, { error: 'argv: a non-empty list of strings' });
        const [cmd, ...args] = argv as string[];
        const c = spawn(cmd!, args, { stdio: ['ignore', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        c.stdout!.on('data', (d: Buffer) => (stdout = tail(stdout + d.toString())));
        c.stderr!.on('data', (d: Buffer) => (stderr = tail(stderr + d.toString())));
        const t = setTimeout(() => c.kill('SIGKILL'), Math.min(Number(q.timeoutMs) || 30_000, 600_000));
        const code = await new Promise<number>((r) => {
          c.on('error', (e) => ((stderr += String(e)), r(127)));
          c.on('close', (n, sig) => r(n ?? (sig ? 128 : 1)));
        });
        clearTimeout(t);
        return reply(res, 200, { code, stdout, stderr });
      }
      case '/spawn': {
        if (!okArgv) return reply(res, 400, { error: 'argv: a non-empty list of strings' });
        const [cmd, ...args] = argv as string[];
        const b: Bg = { child: spawn(cmd!, args, { stdio: ['ignore', 'pipe', 'pipe'] }), stdout: '', stderr: '', code: null };
        b.child.stdout!.on('data', (d: Buffer) => (b.stdout = tail(b.stdout + d.toString())));
        b.child.stderr!.on('data', (d: Buffer) => (b.stderr = tail(b.stderr + d.toString())));
        b.child.on('error', (e) => ((b.stderr += String(e)), (b.code = 127)));
        b.child.on('exit', (n, sig) => (b.code = n ?? (sig ? 128 : 1)));
        const id = next++;
        bg.set(id, b);
        return reply(res, 200, { id, pid: b.child.pid });
      }
      case '/output':
      case '/signal': {
        const b = bg.get(Number(q.id));
        if (!b) return reply(res, 404, { error: `no background command ${String(q.id)}` });
        if (path === '/signal' && b.code === null) b.child.kill(typeof q.signal === 'string' ? (q.signal as NodeJS.Signals) : 'SIGTERM');
        return reply(res, 200, { stdout: b.stdout, stderr: b.stderr, code: b.code });
      }
      case '/exit': {
        await stopAll();
        reply(res, 200, {});
        res.on('finish', () => process.exit(Number(q.code) || 0));
        return;
      }
      case '/ping':
        return reply(res, 200, {});
      case '/time':
        return reply(res, 200, { wall: performance.timeOrigin + performance.now() });
      case '/poweroff':
        reply(res, 200, {});
        res.on('finish', () => setTimeout(() => writeFileSync('/proc/sysrq-trigger', 'o'), 50));
        return;
      default:
        return reply(res, 404, { error: `unknown path ${path}` });
    }
  };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      let q: Record<string, unknown>;
      try {
        q = body ? (JSON.parse(body) as Record<string, unknown>) : {};
      } catch {
        return reply(res, 400, { error: 'body: not JSON' });
      }
      if (req.method !== 'POST') return reply(res, 405, { error: 'POST only' });
      handle(req.url ?? '/', q, res).catch((e: unknown) => reply(res, 500, { error: String(e) }));
    });
  });
  server.listen(port, address, () => process.stdout.write(`lab agent listening on ${address}:${port}\n`));
  setTimeout(() => {
    void stopAll().then(() => process.exit(3));
  }, maxSeconds * 1000).unref();
}

if (process.argv[1] && /pair-agent\.js$/.test(process.argv[1])) {
  const [address, port, max] = process.argv.slice(2);
  if (!address) {
    process.stderr.write('usage: pair-agent.js ADDRESS [PORT] [MAX_SECONDS]\n');
    process.exit(2);
  }
  serve(address, Number(port) || AGENT_PORT, Number(max) || 1800);
}
