/**
 * The demo's client: one process in the client namespace for the whole demo (every process started in
 * the UML guest costs ~1 s), driven by one JSON command per stdin line, answering each with one JSON
 * line on stdout. It talks HTTP to the lab's rs-server (body "NAME LOCAL REMOTE").
 *
 *   {"cmd":"burst","n":30}            n requests, each on its own connection → BurstReply
 *   {"cmd":"stream","everyMs":50}     a request on a new connection every everyMs (≤ 4 in flight) until
 *                                     {"cmd":"stop-stream"} → StreamReply (answered at once: {"ok":true});
 *                                     {"cmd":"mark"} notes the time (failures of requests started
 *                                     before it are counted apart: they were in flight)
 *   {"cmd":"hold","n":24,"everyMs":300}  n HTTP/1.1 keep-alive connections, each sending its next
 *                                     request everyMs after the previous answer → {"open":n,"ports":[...]}
 *   {"cmd":"report","resetWait":true} → HoldReply for the held connections, without closing them
 *                                     (resetWait: the longest wait is measured afresh from now on)
 *   {"cmd":"quit"}
 *
 * Bounded whatever it is told: at most 64 held connections, 5,000 streamed requests, 10 s per streamed
 * request, 20 s without an answer on a held connection (then it counts as broken), and the process
 * exits after 15 minutes.
 */
import { connect, type Socket } from 'node:net';
import { createInterface } from 'node:readline';

const [vip, portArg] = process.argv.slice(2);
const port = Number(portArg);
if (!vip || !Number.isInteger(port)) {
  process.stderr.write('usage: client VIP PORT (commands on stdin)\n');
  process.exit(2);
}
setTimeout(() => process.exit(3), 900_000).unref(); // as long as the host lets the guest live

const reply = (o: unknown) => process.stdout.write(`${JSON.stringify(o)}\n`);
const inc = (m: Record<string, number>, k: string) => (m[k] = (m[k] ?? 0) + 1);

export interface BurstReply { byServer: Record<string, number>; failed: number; errors: Record<string, number> }
export interface StreamReply extends BurstReply {
  sent: number;
  slowestMs: number;
  /** Failed requests that had started before the last "mark" (in flight when the scenario struck). */
  failedStartedBeforeMark: number;
}
export interface HoldReply {
  /** Connections still open with every request answered so far. */
  open: number;
  /** Connections that ended with an error (reset, timeout, closed by the peer). */
  broken: number;
  errors: Record<string, number>;
  /** Answers over all held connections. */
  answered: number;
  /** Held connections per real server (the server that answered its first request). */
  byServer: Record<string, number>;
  /** Of the ended (broken) connections: how many per real server ("?" if it never answered). */
  brokenByServer: Record<string, number>;
  /** The ended connections (client port, real server, error), to look them up in a kernel's table. */
  ended: Array<{ port: number; server: string; error: string }>;
  /** Longest wait for an answer on any held connection (a failover shows here). */
  longestWaitMs: number;
  /** Answers that came from another server than the connection's first (must stay 0: one TCP connection, one server). */
  switched: number;
}

/** One HTTP/1.0 request on a new connection; resolves with the server's name or an error code. */
function once(timeoutMs: number): Promise<{ name?: string; error?: string }> {
  return new Promise((resolve) => {
    let buf = '';
    let done = false;
    const s = connect({ host: vip!, port });
    const finish = (r: { name?: string; error?: string }) => {
      if (done) return;
      done = true;
      s.destroy();
      resolve(r);
    };
    s.setTimeout(timeoutMs, () => finish({ error: 'TIMEOUT' }));
    s.on('connect', () => s.write(`GET / HTTP/1.0\r\nHost: ${vip}\r\n\r\n`));
    s.on('data', (d: Buffer) => (buf += d.toString()));
    s.on('error', (e: NodeJS.ErrnoException) => finish({ error: e.code ?? 'ERROR' }));
    s.on('end', () => {
      const name = (buf.split('\r\n\r\n')[1] ?? '').trim().split(' ')[0];
      finish(buf.startsWith('HTTP/1.1 200') && name ? { name } : { error: 'BAD_REPLY' });
    });
  });
}

async function burst(n: number): Promise<BurstReply> {
  const r: BurstReply = { byServer: {}, failed: 0, errors: {} };
  for (let i = 0; i < Math.min(n, 1000); i++) {
    const o = await once(10_000);
    if (o.name) inc(r.byServer, o.name);
    else {
      r.failed++;
      inc(r.errors, o.error!);
    }
  }
  return r;
}

let stream: { stop: () => Promise<StreamReply> } | undefined;
let markAt = Infinity;
function startStream(everyMs: number): void {
  const r: StreamReply = { byServer: {}, failed: 0, errors: {}, sent: 0, slowestMs: 0, failedStartedBeforeMark: 0 };
  const pending = new Set<Promise<void>>();
  const timer = setInterval(() => {
    if (pending.size >= 4 || r.sent >= 5000) return;
    r.sent++;
    const t0 = Date.now();
    // 31 s: room for the SYN retries at 1, 3, 7 and 15 s. A SYN sent to a dead real server is retried
    // until the director has removed it (expire_nodest_conn reschedules the next retry); on a loaded
    // machine the removal can take longer than the 7 s retry.
    const p = once(31_000).then((o) => {
      r.slowestMs = Math.max(r.slowestMs, Date.now() - t0);
      if (o.name) inc(r.byServer, o.name);
      else {
        r.failed++;
        if (t0 < markAt) r.failedStartedBeforeMark++;
        inc(r.errors, o.error!);
      }
      pending.delete(p);
    });
    pending.add(p);
  }, Math.max(10, everyMs));
  stream = {
    async stop() {
      clearInterval(timer);
      await Promise.all(pending);
      return r;
    },
  };
}

interface Held { sock: Socket; port?: number; server?: string; answered: number; state: 'open' | 'broken'; error?: string; sentAt?: number; longestWaitMs: number; switched: number }
const held: Held[] = [];

function hold(n: number, everyMs: number): void {
  for (let i = 0; i < Math.min(n, 64); i++) {
    const h: Held = { sock: connect({ host: vip!, port }), answered: 0, state: 'open', longestWaitMs: 0, switched: 0 };
    held.push(h);
    let buf = '';
    const send = () => {
      if (h.state !== 'open') return;
      h.sentAt = Date.now();
      h.sock.write(`GET / HTTP/1.1\r\nHost: ${vip}\r\n\r\n`);
    };
    const broke = (code: string) => {
      if (h.state !== 'open') return;
      h.state = 'broken';
      h.error = code;
      h.sock.destroy();
    };
    h.sock.setTimeout(20_000, () => broke('TIMEOUT'));
    h.sock.on('connect', () => {
      h.port = h.sock.localPort; // kept: a destroyed socket no longer has it
      send();
    });
    h.sock.on('error', (e: NodeJS.ErrnoException) => broke(e.code ?? 'ERROR'));
    h.sock.on('close', () => broke('CLOSED'));
    h.sock.on('data', (d: Buffer) => {
      buf += d.toString();
      // Responses carry content-length (rs-server sets it): cut complete ones off the front.
      for (;;) {
        const head = buf.indexOf('\r\n\r\n');
        if (head < 0) return;
        const len = Number(/content-length:\s*(\d+)/i.exec(buf.slice(0, head))?.[1] ?? NaN);
        if (!Number.isFinite(len)) return broke('BAD_REPLY');
        if (buf.length < head + 4 + len) return;
        const name = buf.slice(head + 4, head + 4 + len).trim().split(' ')[0] ?? '?';
        buf = buf.slice(head + 4 + len);
        h.answered++;
        if (h.sentAt !== undefined) h.longestWaitMs = Math.max(h.longestWaitMs, Date.now() - h.sentAt);
        h.server ??= name;
        if (name !== h.server) h.switched++;
        setTimeout(send, everyMs);
      }
    });
  }
}

/** The held connections' state; `resetWait` starts a new longest-wait measurement after it. */
function holdReport(resetWait: boolean): HoldReply {
  const r: HoldReply = { open: 0, broken: 0, errors: {}, answered: 0, byServer: {}, brokenByServer: {}, ended: [], longestWaitMs: 0, switched: 0 };
  const now = Date.now();
  for (const h of held) {
    if (h.state === 'open') r.open++;
    else {
      r.broken++;
      inc(r.errors, h.error ?? 'ERROR');
      inc(r.brokenByServer, h.server ?? '?');
      r.ended.push({ port: h.port ?? 0, server: h.server ?? '?', error: h.error ?? 'ERROR' });
    }
    r.answered += h.answered;
    if (h.server) inc(r.byServer, h.server);
    // A request still waiting counts with its wait so far.
    const waiting = h.state === 'open' && h.sentAt !== undefined && h.answered > 0 ? now - h.sentAt : 0;
    r.longestWaitMs = Math.max(r.longestWaitMs, h.longestWaitMs, waiting > 1000 ? waiting : 0);
    r.switched += h.switched;
    if (resetWait) h.longestWaitMs = 0;
  }
  return r;
}

createInterface({ input: process.stdin }).on('line', (line) => {
  void (async () => {
    let c: { cmd?: string; n?: number; everyMs?: number; resetWait?: boolean };
    try {
      c = JSON.parse(line) as typeof c;
    } catch {
      return reply({ error: `not JSON: ${line}` });
    }
    switch (c.cmd) {
      case 'burst':
        return reply(await burst(c.n ?? 30));
      case 'stream':
        startStream(c.everyMs ?? 50);
        return reply({ ok: true });
      case 'stop-stream':
        return reply(stream ? await stream.stop() : { error: 'no stream' });
      case 'mark':
        markAt = Date.now();
        return reply({ ok: true });
      case 'hold':
        hold(c.n ?? 24, c.everyMs ?? 300);
        await Promise.all(held.map((h) => (h.sock.localPort ? undefined : new Promise((r) => h.sock.once('connect', r).once('close', r)))));
        return reply({ open: held.length, ports: held.map((h) => h.sock.localPort).filter((p) => p !== undefined) });
      case 'report':
        return reply(holdReport(c.resetWait === true));
      case 'quit':
        for (const h of held) h.sock.destroy();
        process.exit(0);
      default:
        return reply({ error: `unknown command ${String(c.cmd)}` });
    }
  })();
});
process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
