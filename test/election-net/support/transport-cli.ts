/**
 * Opens a RawVrrpTransport inside a namespace and prints one JSON line per received advert or drop.
 * Usage: node transport-cli.js IFNAME FAMILY VERSION VRID ADDRCOUNT INTERVAL_MS DURATION_MS [send:PRIO[:TTL]] [peers=a,b]
 * With send:PRIO it also advertises every INTERVAL_MS with that priority (send:PRIO:TTL sets the
 * multicast TTL / IPv6 hop limit, for drop tests). With stall:MS the process blocks its event loop
 * for MS after 300 ms, then reads what waited with the transport's synchronous poll(); advert lines
 * then also carry `age` (ms, from the kernel receive stamp) and `sync` (delivered inside poll()).
 * With `stamp`, advert lines carry `at`, the wall-clock ms they were read (this loop is never stalled).
 */
import { RawVrrpTransport } from '../../../src/election/transport.js';
import { parseIp, bytesToIp } from '../../../src/core/address.js';
import { silentLogger } from '../../../src/core/log.js';

const [ifname, fam, ver, vrid, count, interval, duration, ...rest] = process.argv.slice(2);
const sendArg = rest.find((x) => x.startsWith('send:'));
const peersArg = rest.find((x) => x.startsWith('peers='));
const stamp = rest.includes('stamp');
const stallMs = Number(rest.find((x) => x.startsWith('stall:'))?.slice(6) ?? 0);
let inPoll = false;
const t = new RawVrrpTransport({
  ifname: ifname!,
  family: Number(fam) as 4 | 6,
  version: Number(ver) as 2 | 3,
  vrid: Number(vrid),
  addrCount: Number(count),
  intervalMs: Number(interval),
  ...(peersArg ? { unicastPeers: peersArg.slice(6).split(',') } : {}),
  logger: silentLogger,
});
const ttlOverride = sendArg?.split(':')[2];
t.start({
  onAdvert: (r) =>
    process.stdout.write(
      JSON.stringify({ advert: { ...r.advert, addresses: r.advert.addresses.map((a) => bytesToIp(a).text) }, src: r.src, ...(stallMs ? { age: r.ageMs ?? 0, sync: inPoll } : {}), ...(stamp ? { at: Date.now() } : {}) }) + '\n',
    ),
  onDrop: (reason, src) => process.stdout.write(JSON.stringify({ drop: reason, src }) + '\n'),
});
// The socket is open and joined: tests wait for this line instead of guessing a start-up time.
process.stdout.write(JSON.stringify({ ready: true }) + '\n');
if (ttlOverride) {
  // Multicast TTL (IPv4, IP_MULTICAST_TTL) or hop limit (IPv6, IPV6_MULTICAST_HOPS) other than 255.
  const inner = t as unknown as { sock: { setInt(a: number, b: number, v: number): void } };
  if (Number(fam) === 6) inner.sock.setInt(41, 18, Number(ttlOverride));
  else inner.sock.setInt(0, 33, Number(ttlOverride));
}
let timer: NodeJS.Timeout | undefined;
if (sendArg) {
  const prio = Number(sendArg.split(':')[1]);
  const addrs = [parseIp(Number(fam) === 4 ? '192.0.2.42' : '2001:db8::42')!.bytes];
  const send = () => t.send({ version: Number(ver) as 2 | 3, vrid: Number(vrid), priority: prio, intervalMs: Number(interval), addresses: addrs });
  send();
  timer = setInterval(send, Number(interval));
}
if (stallMs) {
  setTimeout(() => {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, stallMs);
    inPoll = true;
    t.poll();
    inPoll = false;
    process.stdout.write(JSON.stringify({ polled: true }) + '\n');
  }, 300);
}
setTimeout(() => {
  if (timer) clearInterval(timer);
  t.close();
}, Number(duration));
