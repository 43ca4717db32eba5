/**
 * A client of many TCP connections in one process of a lab namespace, in named groups, driven
 * through its stdin (the lab sync tests: a connection survives a failover when a line sent on it is
 * echoed by its real server, support/echo.ts).
 */
import { createInterface } from 'node:readline';
import type { Netns } from '../../../src/lab/netns.js';

/**
 * Many connections in one process, in named groups. stdin "open GROUP N HOST" (prints {opened}: the
 * connected ones of that group), "round G1,G2" (one line on every connection of those groups, prints
 * {ok, total, failed}). A group not in a round sends nothing: its connections stay idle.
 */
export const CLIENT = `const net = require('net'); const conns = [];
function open(g, n, host) { for (let i = 0; i < n; i++) { const s = net.connect(80, host); const c = { g, s, port: 0, closed: false, err: '', waiter: null, buf: '' };
  s.on('connect', () => { c.port = s.localPort; }); s.on('data', (d) => { c.buf += d; if (c.buf.includes('\\n')) { c.buf = ''; if (c.waiter) c.waiter(true); } });
  s.on('error', (e) => { c.err = e.code; }); s.on('close', () => { c.closed = true; if (c.waiter) c.waiter(false); }); conns.push(c); } }
async function round(gs) { const cs = conns.filter((c) => gs.includes(c.g)); const res = await Promise.all(cs.map((c) => c.closed ? false : new Promise((r) => { const t = setTimeout(() => { c.waiter = null; r(false); }, 10000); c.waiter = (ok) => { clearTimeout(t); c.waiter = null; r(ok); }; c.s.write('ping\\n'); })));
  console.log(JSON.stringify({ ok: res.filter(Boolean).length, total: cs.length, failed: cs.filter((c, i) => !res[i]).map((c) => c.g + ':' + c.port + ':' + c.err) })); }
require('readline').createInterface({ input: process.stdin }).on('line', (l) => { const [cmd, a, n, host] = l.split(' '); if (cmd === 'open') { open(a, Number(n), host); setTimeout(() => console.log(JSON.stringify({ opened: conns.filter((c) => c.g === a && c.port).length })), 1500); } else if (cmd === 'round') round(a.split(',')); });
setTimeout(() => process.exit(0), 1200000);`;

export interface Round {
  ok: number;
  total: number;
  /** "group:localPort:error" of each connection that did not answer. */
  failed: string[];
}

/** Starts CLIENT in `ns`: open() resolves with the connections of the group that connected, round() with the answers. */
export function connClient(ns: Netns): { open(group: string, n: number, host: string): Promise<number>; round(groups: readonly string[]): Promise<Round> } {
  const child = ns.spawn([process.execPath, '-e', CLIENT], { stdio: ['pipe', 'pipe', 'pipe'] });
  const out: string[] = [];
  const waiters: Array<() => void> = [];
  createInterface({ input: child.stdout! }).on('line', (l) => {
    out.push(l);
    waiters.splice(0).forEach((w) => w());
  });
  const ask = async <T>(cmd: string): Promise<T> => {
    const n = out.length;
    child.stdin!.write(cmd + '\n');
    const end = Date.now() + 60000;
    while (out.length === n) {
      if (Date.now() > end) throw new Error(`client did not answer "${cmd}"`);
      await new Promise<void>((r) => {
        waiters.push(r);
        setTimeout(r, 500);
      });
    }
    return JSON.parse(out[n]!) as T;
  };
  return {
    open: async (group, n, host) => (await ask<{ opened: number }>(`open ${group} ${n} ${host}`)).opened,
    round: (groups) => ask<Round>(`round ${groups.join(',')}`),
  };
}
