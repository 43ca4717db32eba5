/**
 * A Master's advert path with the native backstop, in a namespace: adverts every INTERVAL_MS from
 * JavaScript (each kicks the backstop), then the event loop is blocked for STALL_MS (Atomics.wait)
 * after 300 ms. Prints one JSON line: the stall's wall-clock start and end and how many adverts
 * the backstop threads sent (in all, and before the stall). MODE: `armed` (the normal Master), `disarmed` (disarmed right before
 * the stall: nothing may go out).
 * Usage: node backstop-cli.js IFNAME INTERVAL_MS STALL_MS MODE
 */
import { RawVrrpTransport } from '../../../src/election/transport.js';
import { nativeBackstop } from '../../../src/election/subsystem.js';
import { parseIp } from '../../../src/core/address.js';
import { silentLogger } from '../../../src/core/log.js';

const [ifname, intervalArg, stallArg, mode] = process.argv.slice(2);
const interval = Number(intervalArg);
const t = new RawVrrpTransport({ ifname: ifname!, family: 4, version: 3, vrid: 9, addrCount: 1, intervalMs: interval, logger: silentLogger });
t.start({ onAdvert: () => {}, onDrop: () => {} });
const bs = nativeBackstop(t, interval);
if (!bs) throw new Error('no native backstop');
const advert = { version: 3 as const, vrid: 9, priority: 120, intervalMs: interval, addresses: [parseIp('192.0.2.42')!.bytes] };
if (!bs.arm(advert)) throw new Error('backstop not armed');
let backstopSent = 0;
const send = () => {
  t.send(advert);
  backstopSent += bs.kick();
};
send();
const timer = setInterval(send, interval);
setTimeout(() => {
  // What it sent before the disarm (a loop held up > 1.5 intervals by a loaded machine) is told apart.
  backstopSent += bs.kick();
  const beforeDisarm = backstopSent;
  if (mode === 'disarmed') bs.disarm();
  const start = Date.now();
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, Number(stallArg));
  const end = Date.now();
  clearInterval(timer);
  backstopSent += bs.kick();
  process.stdout.write(JSON.stringify({ start, end, backstopSent, beforeDisarm }) + '\n');
  setTimeout(() => {
    bs.close();
    t.close();
  }, 100);
}, 300);
