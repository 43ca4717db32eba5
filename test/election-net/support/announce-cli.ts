/**
 * Sends the announcement schedule for some addresses from inside a namespace (the test process
 * itself stays in the host namespace). Usage: node announce-cli.js IFNAME REPEAT DELAY_S ADDR...
 * Prints "sent N failed M" when the schedule has run.
 */
import { SystemClock } from '../../../src/core/clock.js';
import { parseIp } from '../../../src/core/address.js';
import { Announcer, PacketSocketSender, linkInfo } from '../../../src/election/announce.js';

const [ifname, repeat, delay, ...addrs] = process.argv.slice(2);
const clock = new SystemClock();
const sender = new PacketSocketSender();
let sent = 0;
let failed = 0;
const a = new Announcer({ sender, clock, onSent: (ok) => (ok ? sent++ : failed++) });
const mac = linkInfo(ifname!).mac;
a.start(ifname!, mac, addrs.map((x) => parseIp(x)!.bytes), {
  master_repeat: Number(repeat),
  master_delay: Number(delay),
  master_refresh: 0,
  master_refresh_repeat: 1,
  interval: 0,
});
setTimeout(() => {
  a.stop();
  sender.close();
  process.stdout.write(`sent ${sent} failed ${failed}\n`);
}, Number(delay) * 1000 + 100);
