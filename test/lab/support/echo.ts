/**
 * Line-echo traffic for connection tests in the lab: a TCP echo server to run on a real server, a
 * client that keeps ONE connection open and pings over it, and a line reader for either's stdout.
 * Run them with `ns.spawn([process.execPath, '-e', ECHO_SERVER, name, port])` and
 * `ns.spawn([process.execPath, '-e', echoClient(max), host, port])`.
 */
import { createInterface } from 'node:readline';
import type { ChildProcess } from 'node:child_process';

/** Echo server (args NAME PORT): answers each line with "NAME LINE"; prints "listening" once bound. */
export const ECHO_SERVER = `const [name, port] = process.argv.slice(1);
require('net').createServer((s) => { let b = ''; s.on('data', (d) => { b += d; let i; while ((i = b.indexOf('\\n')) >= 0) { s.write(name + ' ' + b.slice(0, i) + '\\n'); b = b.slice(i + 1); } }); s.on('error', () => {}); })
  .listen(Number(port), () => console.log('listening'));`;

/**
 * Client (args HOST PORT): one connection; sends "ping N" every 100 ms, at most `maxPings` (bounded),
 * prints each answer, and "closed" / "error CODE" when the connection ends.
 */
export function echoClient(maxPings: number): string {
  return `const [host, port] = process.argv.slice(1);
const s = require('net').connect(Number(port), host); let n = 0; let b = '';
s.on('connect', () => { const t = setInterval(() => { if (++n > ${maxPings}) { clearInterval(t); s.end(); } else s.write('ping ' + n + '\\n'); }, 100); s.on('close', () => clearInterval(t)); });
s.on('data', (d) => { b += d; let i; while ((i = b.indexOf('\\n')) >= 0) { console.log(b.slice(0, i)); b = b.slice(i + 1); } });
s.on('error', (e) => console.log('error ' + e.code)); s.on('close', () => { console.log('closed'); process.exit(0); });`;
}

export interface Lines {
  /** Every stdout line so far. */
  readonly all: string[];
  /** The first line from index `from` on that matches; throws after `ms` naming `what` and the last lines. */
  wait(pred: (l: string) => boolean, ms: number, what: string, from?: number): Promise<string>;
}

/** Collect a child's stdout lines; wait() wakes on each new line (and at least every 200 ms). */
export function lines(c: ChildProcess): Lines {
  const all: string[] = [];
  const waiters: Array<() => void> = [];
  createInterface({ input: c.stdout! }).on('line', (l) => {
    all.push(l);
    for (const w of waiters.splice(0)) w();
  });
  return {
    all,
    async wait(pred, ms, what, from = 0) {
      const end = Date.now() + ms;
      for (;;) {
        for (; from < all.length; from++) if (pred(all[from]!)) return all[from]!;
        if (Date.now() > end) throw new Error(`timed out waiting for ${what}; last: ${all.slice(-5).join(' | ')}`);
        await new Promise<void>((r) => {
          waiters.push(r);
          setTimeout(r, 200);
        });
      }
    },
  };
}
