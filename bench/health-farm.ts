/**
 * Benchmark helper: N loopback TCP listeners (real servers), spread over 127.0.1.x addresses.
 * argv: COUNT PER_ADDRESS BASE_PORT [lean]. Prints "listening <ms> ms <lean|net>" and "ready" once all listen.
 * stdin commands:
 *   "kill I"   → stop listener I (new connects are refused) and print "killed I <epoch ms>"
 *   "revive I" → listen again on a killed listener I, print "revived I <epoch ms>"
 *   "stats"    → print "accepted <connections accepted so far>"
 *   "quit"     → exit
 * `lean`: listen and accept on libuv's TCP handles directly (the binding net.Server is built on) and
 * close each accepted connection at once, without a net.Socket per connection. Inside the one-CPU
 * lab guest the farm shares the CPU with the checker being measured; net.Socket per accepted
 * connection costs more than the check itself there. Falls back to net.Server when the binding is
 * missing.
 * A listen error (EMFILE: the open-files limit is below COUNT) is printed as "error <message>" on
 * stdout and on stderr, and the farm exits 1, so the caller fails at once instead of waiting.
 */
import net from 'node:net';
import { createInterface } from 'node:readline';

export function endpointOf(i: number, perAddress: number, basePort: number): { host: string; port: number } {
  return { host: `127.0.1.${1 + Math.floor(i / perAddress)}`, port: basePort + (i % perAddress) };
}

interface RawHandle {
  bind(address: string, port: number): number;
  listen(backlog: number): number;
  close(cb?: () => void): void;
  onconnection: ((status: number, client?: RawHandle) => void) | null;
}
interface RawBinding {
  TCP: new (type: number) => RawHandle;
  constants: { SERVER: number };
}

function rawBinding(): RawBinding | null {
  try {
    const pb = (process as unknown as { binding?: (n: string) => unknown }).binding;
    const b = pb?.call(process, 'tcp_wrap') as Partial<RawBinding> | undefined;
    const p = b?.TCP?.prototype as Partial<RawHandle> | undefined;
    if (b?.TCP && typeof b.constants?.SERVER === 'number' && typeof p?.bind === 'function' && typeof p.listen === 'function') return b as RawBinding;
  } catch {
    /* not available */
  }
  return null;
}

function fail(msg: string): never {
  process.stdout.write(`error ${msg}\n`);
  process.stderr.write(`health-farm: ${msg}\n`);
  process.exit(1);
}

async function main() {
  const [countArg, perArg, baseArg, mode] = process.argv.slice(2);
  const count = Number(countArg ?? 5000);
  const per = Number(perArg ?? 100);
  const base = Number(baseArg ?? 30000);
  const raw = mode === 'lean' ? rawBinding() : null;
  const closers: Array<(() => void) | undefined> = [];
  let accepted = 0;
  const listenOne = async (i: number): Promise<void> => {
    const { host, port } = endpointOf(i, per, base);
    if (raw) {
      const h = new raw.TCP(raw.constants.SERVER);
      let e = h.bind(host, port);
      if (!e) e = h.listen(511);
      if (e) fail(`listen ${host}:${port} (listener ${i + 1} of ${count}): errno ${e}`);
      h.onconnection = (status, client) => {
        if (status === 0 && client) {
          accepted++;
          client.close();
        }
      };
      closers[i] = () => h.close();
    } else {
      const s = net.createServer((c) => {
        accepted++;
        c.on('error', () => {});
      });
      await new Promise<void>((resolve) => {
        s.once('error', (e) => fail(`listen ${host}:${port} (listener ${i + 1} of ${count}): ${e.message}`));
        s.listen({ host, port, backlog: 511 }, resolve);
      });
      closers[i] = () => s.close();
    }
  };
  const t0 = performance.now();
  for (let i = 0; i < count; i++) await listenOne(i);
  process.stdout.write(`listening ${Math.round(performance.now() - t0)} ms ${raw ? 'lean' : 'net'}\nready\n`);
  createInterface({ input: process.stdin }).on('line', (l) => {
    const [cmd, arg] = l.trim().split(/\s+/);
    if (cmd === 'kill') {
      const i = Number(arg);
      const c = closers[i];
      if (!c) return;
      c();
      closers[i] = undefined;
      process.stdout.write(`killed ${i} ${Date.now()}\n`);
    } else if (cmd === 'revive') {
      const i = Number(arg);
      if (i >= 0 && i < count && !closers[i]) void listenOne(i).then(() => process.stdout.write(`revived ${i} ${Date.now()}\n`));
    } else if (cmd === 'stats') {
      process.stdout.write(`accepted ${accepted}\n`);
    } else if (cmd === 'quit') {
      process.exit(0);
    }
  }).on('close', () => process.exit(0));
}
if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) void main();
