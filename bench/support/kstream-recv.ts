/**
 * Receiver for bench/sync-kstream.ts, run inside the active director's namespace of the lab guest:
 *
 *   node kstream-recv.js GROUP PORT SECONDS
 *
 * Joins GROUP on lo and reads what the kernel's master sync daemon (started on lo with that group
 * and port, sync_maxlen 1) multicasts there. Prints one line per UDP record the first time its
 * client port is seen, "r PORT WALLMS SOURCE" (written out once a second), and every second a JSON line with its own CPU (user+system
 * µs, process.cpuUsage), datagrams, records, how many records each datagram held and the
 * datagrams its socket dropped (/proc/net/udp). Ends after
 * SECONDS (≤ 900) or on SIGTERM.
 */
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { decodeMessage } from '../../src/sync/codec.js';

const [group = '224.0.0.81', portS = '8849', secS = '60'] = process.argv.slice(2);
const wall = () => performance.timeOrigin + performance.now();
const seen = new Set<number>();
let datagrams = 0;
let records = 0;
let bad = 0;
const perDatagram = new Map<number, number>();
const sock = createSocket({ type: 'udp4', reuseAddr: true });
sock.on('message', (buf, rinfo) => {
  const t = wall();
  datagrams++;
  const r = decodeMessage(buf);
  if (!r.ok) {
    bad++;
    return;
  }
  const n = r.message.conns.length;
  records += n;
  perDatagram.set(n, (perDatagram.get(n) ?? 0) + 1);
  for (const c of r.message.conns) {
    if (c.protocol !== 17 || seen.has(c.cport)) continue;
    seen.add(c.cport);
    out += `r ${c.cport} ${t.toFixed(1)} ${rinfo.address}\n`;
  }
});
/** First sightings, written with the status line once a second (one write per datagram would cost the receiver more than its work). */
let out = '';
sock.bind(Number(portS), group, () => {
  sock.addMembership(group, '127.0.0.1');
  // As lvsd's channel socket asks (capped by net.core.rmem_max): a burst of one-record datagrams
  // costs ~1 KiB of buffer each (skb truesize), ~200 of them fill the default buffer.
  try {
    sock.setRecvBufferSize(4 * 1024 * 1024);
  } catch {
    /* keep the default */
  }
  process.stdout.write(JSON.stringify({ ready: true }) + '\n');
});
/** Datagrams the kernel dropped at this socket (its receive buffer full): /proc/net/udp's last column. */
const drops = () => {
  const hex = Number(portS).toString(16).toUpperCase().padStart(4, '0');
  try {
    for (const l of readFileSync('/proc/net/udp', 'latin1').split('\n')) {
      const f = l.trim().split(/\s+/);
      if (f[1]?.endsWith(`:${hex}`)) return Number(f[f.length - 1]) || 0;
    }
  } catch {
    /* not readable */
  }
  return 0;
};
const status = () => {
  const u = process.cpuUsage();
  process.stdout.write(out);
  out = '';
  process.stdout.write(JSON.stringify({ at: Math.round(wall()), cpuUs: u.user + u.system, datagrams, records, bad, drops: drops(), perDatagram: Object.fromEntries(perDatagram) }) + '\n');
};
const tick = setInterval(status, 1000);
const end = () => {
  clearInterval(tick);
  status();
  sock.close();
};
setTimeout(end, Math.min(900, Number(secS)) * 1000);
process.on('SIGTERM', end);
