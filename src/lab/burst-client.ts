/**
 * Opens COUNT separate TCP connections to ADDR:PORT (at most CONCURRENCY at a time, overall deadline
 * DEADLINE_MS), sends one HTTP/1.0 GET on each and reads the reply line the lab's rs-server sends.
 * Usage: node burst-client.js ADDR PORT COUNT CONCURRENCY DEADLINE_MS
 * Prints one JSON object: { byServer: {NAME: n}, local: {NAME: LOCAL_ADDRESS_SEEN}, errors: {CODE: n}, ms }.
 */
import { connect } from 'node:net';

const [addr, portArg, countArg, concArg, deadlineArg] = process.argv.slice(2);
const port = Number(portArg);
const count = Math.min(Number(countArg), 100_000); // bounded whatever the caller asks
const conc = Math.max(1, Math.min(Number(concArg), 64));
const deadline = Date.now() + Math.min(Number(deadlineArg), 600_000);
const byServer: Record<string, number> = {};
const local: Record<string, string> = {};
const remote: Record<string, string> = {};
const errors: Record<string, number> = {};
const t0 = Date.now();

function one(): Promise<void> {
  return new Promise((resolve) => {
    let buf = '';
    const s = connect({ host: addr!, port });
    const fail = (code: string) => {
      errors[code] = (errors[code] ?? 0) + 1;
      s.destroy();
      resolve();
    };
    s.setTimeout(Math.max(100, Math.min(5000, deadline - Date.now())), () => fail('TIMEOUT'));
    s.on('connect', () => s.write(`GET / HTTP/1.0\r\nHost: ${addr}\r\n\r\n`));
    s.on('data', (d: Buffer) => (buf += d.toString()));
    s.on('error', (e: NodeJS.ErrnoException) => fail(e.code ?? 'ERROR'));
    s.on('end', () => {
      const body = buf.split('\r\n\r\n')[1] ?? '';
      const [name, loc, rem] = body.trim().split(' ');
      if (!name || !buf.startsWith('HTTP/1.1 200')) return fail('BAD_REPLY');
      byServer[name] = (byServer[name] ?? 0) + 1;
      local[name] = loc ?? '?';
      remote[name] = rem ?? '?';
      s.destroy();
      resolve();
    });
  });
}

let started = 0;
async function worker(): Promise<void> {
  while (started < count && Date.now() < deadline) {
    started++;
    await one();
  }
}
await Promise.all(Array.from({ length: conc }, worker));
process.stdout.write(JSON.stringify({ byServer, local, remote, errors, attempted: started, ms: Date.now() - t0 }) + '\n');
