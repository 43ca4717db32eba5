/**
 * False-failover check: an lvsd pair at VRRPv3 0.01 s adverts runs for a while, optionally with
 * CPU burners on the machine (busy loops in the backup's namespace, which compete for the same
 * cores), and we count master changes after the first election (any is a false failover), late
 * master_down timers the guard re-checked, and the backup's event-loop lag.
 *
 * Usage: node dist/bench/failover-stability.js [--seconds 600] [--burners 2] [--impls lvsd,keepalived] [--nice -20]
 * Needs root.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Topology } from '../src/lab/netns.js';
import { waitFor } from '../test/support/proc.js';
import { startPeer, removeScratch, type PeerSpec } from '../test/election-net/support/peers.js';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] ?? def : def;
}

const VIP = '192.0.2.42';

async function run(kind: PeerSpec['kind'], seconds: number, burners: number, nice: number | undefined): Promise<string> {
  const topo = new Topology();
  try {
    const a = await topo.member('a', ['192.0.2.1/24']);
    const b = await topo.member('b', ['192.0.2.2/24']);
    const base = { kind, version: 3, advert: 0.01, vips: [`${VIP}/24`], ...(nice !== undefined ? { nice } : {}) } as const;
    startPeer(a, { ...base, name: 'a', priority: 150 });
    const pb = startPeer(b, { ...base, name: 'b', priority: 100 });
    await waitFor(async () => (await a.addrs()).includes(VIP) && !(await b.addrs()).includes(VIP), 'a master', 30000, 20);
    await sleep(500);
    // Bounded busy loops (each ends by itself after `seconds`).
    for (let i = 0; i < burners; i++) b.start([process.execPath, '-e', `const e=Date.now()+${seconds * 1000};let x=0;while(Date.now()<e){x+=Math.sqrt(x+1);}`]);
    const before = pb.proc.output();
    let flaps = 0;
    const end = Date.now() + seconds * 1000;
    let wasB = false;
    while (Date.now() < end) {
      const isB = (await b.addrs()).includes(VIP);
      if (isB && !wasB) flaps++;
      wasB = isB;
      await sleep(5);
    }
    const log = pb.proc.output().slice(before.length);
    const toMaster = kind === 'lvsd' ? (log.match(/"to":"MASTER"/g) ?? []).length : (log.match(/Entering MASTER STATE/g) ?? []).length;
    const late = (log.match(/timer fired late/g) ?? []).length;
    let lag = '';
    if (kind === 'lvsd') {
      const r = await b.exec(['node', '-e', "fetch('http://127.0.0.1:9650/metrics').then(r=>r.text()).then(t=>process.stdout.write(t))"], { check: false });
      const m = r.code === 0 ? r.stdout : '';
      lag = m.split('\n').filter((l) => l.startsWith('lvsd_event_loop_lag_seconds') || l.startsWith('lvsd_vrrp_late')).join('; ');
    }
    return `${kind.padEnd(10)} ${seconds}s burners=${burners} nice=${nice ?? '-'}: backup->master transitions ${toMaster}, VIP appeared on backup ${flaps}x, late-timer rechecks ${late} ${lag}`;
  } finally {
    await topo.destroy();
  }
}

const seconds = Number(arg('seconds', '600'));
const burners = Number(arg('burners', '2'));
// --nice N: both daemons at scheduling priority N (lvsd global.nice, keepalived vrrp_priority).
const niceArg = arg('nice', '');
const nice = niceArg === '' ? undefined : Number(niceArg);
if (process.getuid?.() !== 0) {
  process.stderr.write('needs root\n');
  process.exit(77);
}
for (const kind of arg('impls', 'lvsd,keepalived').split(',') as Array<PeerSpec['kind']>) {
  process.stdout.write((await run(kind, seconds, burners, nice)) + '\n');
}
removeScratch();
