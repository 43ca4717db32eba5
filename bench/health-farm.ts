/**
 * Benchmark helper: N loopback TCP listeners (real servers), spread over 127.0.1.x addresses.
 * argv: COUNT PER_ADDRESS BASE_PORT. Prints "ready" once all listen. stdin commands:
 *   "kill I"  → stop listener I (new connects are refused) and print "killed I <epoch ms>"
 *   "quit"    → exit
 */
import net from 'node:net';
import { createInterface } from 'node:readline';

const [countArg, perArg, baseArg] = process.argv.slice(2);
const count = Number(countArg ?? 5000);
const per = Number(perArg ?? 100);
const base = Number(baseArg ?? 30000);

export function endpointOf(i: number, perAddress: number, basePort: number): { host: string; port: number } {
  return { host: `127.0.1.${1 + Math.floor(i / perAddress)}`, port: basePort + (i % perAddress) };
}

const servers: net.Server[] = [];
let accepted = 0;
async function main() {
  for (let i = 0; i < count; i++) {
    const { host, port } = endpointOf(i, per, base);
    const s = net.createServer((c) => {
      accepted++;
      c.on('error', () => {});
    });
    s.on('error', (e) => {
      process.stderr.write(`listen ${host}:${port}: ${e.message}\n`);
      process.exit(1);
    });
    await new Promise<void>((r) => s.listen({ host, port, backlog: 511 }, r));
    servers.push(s);
  }
  process.stdout.write('ready\n');
  createInterface({ input: process.stdin }).on('line', (l) => {
    const [cmd, arg] = l.trim().split(/\s+/);
    if (cmd === 'kill') {
      const i = Number(arg);
      const s = servers[i];
      if (!s) return;
      s.close();
      process.stdout.write(`killed ${i} ${Date.now()}\n`);
    } else if (cmd === 'stats') {
      process.stdout.write(`accepted ${accepted}\n`);
    } else if (cmd === 'quit') {
      process.exit(0);
    }
  });
}
if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) void main();
