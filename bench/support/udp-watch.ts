/**
 * Watches the receive queue of one UDP socket in this guest (bench/sync-pair.ts, in director a's
 * guest: lvsd's kernel-stream socket, bound to 224.0.0.81:PORT), so a run shows where the stream's
 * records are lost: whether the socket fills (its reader not draining, e.g. while a /proc table read
 * holds the table worker's thread) and when the kernel drops datagrams for it.
 *
 *   node udp-watch.js ADDRESS PORT PERIOD_MS SECONDS
 *
 * Every PERIOD_MS, /proc/net/udp's rx_queue (bytes of the queued datagrams, skb truesize: what the
 * kernel compares with the socket's receive buffer) and drops (the kernel's per-socket count) of
 * the lines bound to ADDRESS:PORT. The receive buffer itself (SO_RCVBUF as the kernel holds it) is
 * read once from `ss -uamn` (skmem rb). Prints one JSON line: the buffer, the queue's maximum, how
 * many samples had the queue at ≥ 90 % of the buffer, the drops over the watch, and the series
 * (ms since start, queue KiB, drops since start) at most every 250 ms.
 */
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { endianness } from 'node:os';

const [addr, portS, periodS, secondsS] = process.argv.slice(2);
const port = Number(portS);
const period = Number(periodS);
const seconds = Number(secondsS);
if (!addr || !(port > 0 && port < 65536) || !(period >= 5) || !(seconds > 0 && seconds <= 600)) {
  process.stderr.write('usage: udp-watch.js ADDRESS PORT PERIOD_MS(≥5) SECONDS(≤600)\n');
  process.exit(2);
}
const b = addr.split('.').map((x) => Number(x).toString(16).toUpperCase().padStart(2, '0'));
const want = `${(endianness() === 'LE' ? b.reverse() : b).join('')}:${port.toString(16).toUpperCase().padStart(4, '0')}`;

function look(): { queue: number; drops: number; sockets: number } {
  let queue = 0;
  let drops = 0;
  let sockets = 0;
  for (const line of readFileSync('/proc/net/udp', 'latin1').split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 13 || f[1] !== want) continue;
    sockets++;
    queue += parseInt(f[4]!.split(':')[1]!, 16);
    drops += Number(f[f.length - 1]);
  }
  return { queue, drops, sockets };
}

function rcvbuf(): number | undefined {
  try {
    const text = execFileSync('ss', ['-uamn', 'sport', '=', `:${port}`], { encoding: 'latin1' });
    const m = /skmem:\([^)]*\brb(\d+)/.exec(text);
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

const rb = rcvbuf();
const first = look();
const t0 = performance.now();
let maxQueue = 0;
let nearFull = 0;
let samples = 0;
let lastKept = -Infinity;
const series: Array<[number, number, number]> = [];
while (performance.now() - t0 < seconds * 1000) {
  const s = look();
  samples++;
  maxQueue = Math.max(maxQueue, s.queue);
  if (rb && s.queue >= 0.9 * rb) nearFull++;
  const at = performance.now() - t0;
  if (at - lastKept >= 250) {
    series.push([Math.round(at), Math.round(s.queue / 1024), s.drops - first.drops]);
    lastKept = at;
  }
  await sleep(period);
}
const last = look();
process.stdout.write(JSON.stringify({ sockets: last.sockets, rcvbuf: rb ?? null, samples, maxQueue, nearFull, drops: last.drops - first.drops, series }) + '\n');
