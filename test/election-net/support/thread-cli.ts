/**
 * The takeover thread (takeover.c tk*, subsystem.ts nativeTakeoverThread) over real mechanisms in a
 * namespace: a raw VRRP transport, netlink VIPs (192.0.2.42/24), GARP frames and our advert
 * (priority 100). Right after the transport reads its first advert (or at once, with `nowait`) it
 * arms the thread ARM_MS ahead, then per MODE:
 *   fire     block the event loop (Atomics.wait) to 60 ms past the deadline, then collect;
 *   waiting  the same: an advert that arrives meanwhile is left waiting in the socket;
 *   read     keep the loop free (it reads and drops what arrives: nothing re-arms), collect 30 ms past the deadline;
 *   reading  the same, but the callback of the next advert blocks the loop (inside the read) to 30 ms past the deadline;
 *   disarm   disarm at once, block past the deadline, then collect;
 *   late     arm ARM_MS (negative: already past) with a 3 ms late limit, collect (waiting up to 20 ms);
 *   timeout  collect at once with a 1 ms timeout (cancels the arm), then block past the deadline.
 * Prints {"armed":true} once armed, then one JSON line: the arm's deadline and the block's end (wall-clock ms), what collect
 * returned, whether the thread still reported `fired` after it, and whether the VIP is on eth0.
 * Usage: node thread-cli.js MODE ARM_MS [nowait]
 */
import { execFileSync } from 'node:child_process';
import { SystemClock } from '../../../src/core/clock.js';
import { silentLogger } from '../../../src/core/log.js';
import { parseIp } from '../../../src/core/address.js';
import { RawVrrpTransport } from '../../../src/election/transport.js';
import { NetlinkAddressTable, VipSet } from '../../../src/election/vips.js';
import { Announcer, PacketSocketSender, linkInfo } from '../../../src/election/announce.js';
import { nativeTakeoverThread } from '../../../src/election/subsystem.js';

const [mode, armArg] = process.argv.slice(2);
const armMs = Number(armArg);
const clock = new SystemClock();
const table = new NetlinkAddressTable();
const sender = new PacketSocketSender();
const vips = new VipSet({ table, clock, logger: silentLogger, ifname: 'eth0', vips: [{ address: '192.0.2.42', prefixLen: 24, family: 4, scope: 'global' }] });
const announcer = new Announcer({ sender, clock });
const transport = new RawVrrpTransport({ ifname: 'eth0', family: 4, version: 3, vrid: 9, addrCount: 1, intervalMs: 20, logger: silentLogger });
const block = (untilWall: number) => {
  const ms = untilWall - Date.now();
  if (ms > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
};
const hasVip = () => execFileSync('ip', ['-4', '-o', 'addr', 'show', 'dev', 'eth0']).toString().includes('192.0.2.42/');

let armed = false;
let later: (() => void) | undefined;
const go = () => {
  if (armed) return later?.();
  armed = true;
  const th = nativeTakeoverThread(transport, vips, table, sender, announcer);
  if (!th) throw new Error('no takeover thread with these mechanisms');
  const targets = [{ ifname: 'eth0', mac: linkInfo('eth0').mac, vips: [parseIp('192.0.2.42')!.bytes] }];
  sender.prepare('eth0');
  if (!th.load(targets, { version: 3, vrid: 9, priority: 100, intervalMs: 20, addresses: [parseIp('192.0.2.42')!.bytes] }, 2)) throw new Error('not loaded');
  const due = Date.now() + armMs;
  th.arm(armMs, mode === 'late' ? 3 : -1);
  // For a test that must stop the adverts once the thread is armed (mode read).
  process.stdout.write(JSON.stringify({ armed: true }) + '\n');
  let result: unknown;
  let end = Date.now();
  const finish = () => {
    const out = { due, end, result: result ?? null, firedAfter: th.fired(), vip: hasVip() };
    th.close();
    process.stdout.write(JSON.stringify(out) + '\n');
    transport.close();
    sender.close();
    table.close();
  };
  switch (mode) {
    case 'fire':
    case 'waiting':
      block(due + 60);
      end = Date.now();
      result = th.wait(0);
      return finish();
    case 'disarm':
      th.disarm();
      block(due + 60);
      end = Date.now();
      result = th.wait(0);
      return finish();
    case 'late':
      result = th.wait(20);
      return finish();
    case 'timeout':
      result = th.wait(1);
      block(due + 60);
      end = Date.now();
      return finish();
    case 'reading':
      later = () => {
        later = undefined;
        block(due + 30);
        setImmediate(() => {
          end = Date.now();
          result = th.wait(0);
          finish();
        });
      };
      return;
    case 'read':
      setTimeout(() => {
        end = Date.now();
        result = th.wait(0);
        finish();
      }, armMs + 30);
      return;
    default:
      throw new Error(`unknown mode ${mode}`);
  }
};
// Bounded: a mode that waits for an advert ('reading' needs a second one) must not hang its test when the
// sender's adverts stop coming (seen on a loaded machine); unref'd, so a finished run exits at once.
setTimeout(() => {
  process.stderr.write(`thread-cli ${mode}: no advert within 60 s\n`);
  process.exit(4);
}, 60_000).unref();
transport.start({ onAdvert: go, onDrop: () => {} });
if (process.argv.includes('nowait')) go();
