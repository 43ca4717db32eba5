/**
 * lvsd's own sync channel on the real kernel (inside the lab guest): two `lvsd run` directors with a
 * VRRP instance holding a DR VIP, sync.channel lvsd with a shared key. A client keeps many TCP
 * connections open through the VIP (idle between checks). The test proves, by effects:
 *  - every connection opened through A appears in B's kernel table (records went A → B's kernel
 *    through B's backup daemon on lo), and in `lvsd sync show` on B with the same ipvsadm -Lnc row;
 *  - failover: A's host dies (processes killed, link cut); every connection still answers through B;
 *  - connections opened through B while it is master;
 *  - failback: A comes back as a fresh host (a new namespace with A's address: empty IPVS table),
 *    asks for B's table, preempts, and every connection (old ones and B's) still answers through A.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { createInterface } from 'node:readline';
import { Topology, type Netns } from '../../src/lab/netns.js';
import { lvsdBin } from '../support/proc.js';
import { ECHO_SERVER } from './support/echo.js';
import { until as untilDone } from './support/until.js';
import { missingFromKernel } from './support/lnc.js';

const skip = process.env.LVSD_IN_LAB === '1' ? false : 'runs inside the lab guest (node scripts/test.mjs --only lab)';
const VIP = '192.0.2.100';
const KEY = 'hex:' + 'c0ffee'.repeat(8);

function config(dir: string, name: string, prio: number, port: number): string {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(
    file,
    `global:
  router_id: ${name}
  state_dir: ${dir}/state-${name}
  api: { listen: 127.0.0.1:${port} }
  ipvs: { drift_check_interval: 0 }
vrrp_instances:
  - name: vi
    interface: eth0
    virtual_router_id: 51
    priority: ${prio}
    version: 3
    advert_interval: 0.5
    virtual_addresses: [${VIP}/24]
virtual_servers:
  - address: ${VIP}
    port: 80
    scheduler: rr
    forwarding: dr
    real_servers:
      - address: 192.0.2.11
      - address: 192.0.2.12
sync:
  interface: eth0
  channel: lvsd
  key_file: ${dir}/sync.key
  sync_id: 42
`,
  );
  return file;
}

/** Many connections in one process; stdin "open N" / "round" (ping every connection once, report). */
const CLIENT = `const net = require('net'); const conns = [];
function open(n) { for (let i = 0; i < n; i++) { const s = net.connect(80, '${VIP}'); const c = { s, port: 0, closed: false, err: '', waiter: null, buf: '' };
  s.on('connect', () => { c.port = s.localPort; }); s.on('data', (d) => { c.buf += d; if (c.buf.includes('\\n')) { c.buf = ''; if (c.waiter) c.waiter(true); } });
  s.on('error', (e) => { c.err = e.code; }); s.on('close', () => { c.closed = true; if (c.waiter) c.waiter(false); }); conns.push(c); } }
async function round() { const res = await Promise.all(conns.map((c) => c.closed ? false : new Promise((r) => { const t = setTimeout(() => { c.waiter = null; r(false); }, 10000); c.waiter = (ok) => { clearTimeout(t); c.waiter = null; r(ok); }; c.s.write('ping\\n'); })));
  console.log(JSON.stringify({ ok: res.filter(Boolean).length, total: conns.length, failed: conns.filter((c, i) => !res[i]).map((c) => c.port + ':' + c.err) })); }
require('readline').createInterface({ input: process.stdin }).on('line', (l) => { const [cmd, n] = l.split(' '); if (cmd === 'open') { open(Number(n)); setTimeout(() => console.log(JSON.stringify({ opened: conns.filter((c) => c.port).length })), 1500); } else if (cmd === 'round') round(); });
setTimeout(() => process.exit(0), 800000);`;

const until = <T>(fn: () => Promise<T | undefined>, what: string | (() => string), ms = 180000) => untilDone(fn, what, ms, 300);

test('channel lvsd: every connection survives failover and failback, including ones opened on the backup while it was master', { skip, timeout: 900_000 }, async () => {
  const topo = new Topology();
  const dir = mkdtempSync(join(tmpdir(), 'lvsd-synclvsd-'));
  writeFileSync(join(dir, 'sync.key'), KEY + '\n');
  try {
    const cl = await topo.member('cl', ['192.0.2.50/24']);
    const da = await topo.member('da', ['192.0.2.2/24']);
    const db = await topo.member('db', ['192.0.2.3/24']);
    const rss: Netns[] = [];
    for (const [i, addr] of ['192.0.2.11', '192.0.2.12'].entries()) {
      const rs = await topo.member(`rs${i}`, [`${addr}/24`]);
      await rs.sysctls({ 'net.ipv4.conf.all.arp_ignore': '1', 'net.ipv4.conf.all.arp_announce': '2' });
      await rs.addr('lo', `${VIP}/32`);
      rs.spawn([process.execPath, '-e', ECHO_SERVER, `rs${i}`, '80']);
      rss.push(rs);
    }
    const logs: Record<string, string> = {};
    const runLvsd = (ns: Netns, name: string, prio: number, port: number) => {
      const r = ns.start([lvsdBin, 'run', '-c', config(dir, name, prio, port)]);
      return () => (logs[name] = r.output());
    };
    const vipOn = async (ns: Netns) => ((await ns.exec(['ip', '-4', '-o', 'addr', 'show', 'dev', 'eth0'], { via: 'nsenter' })).stdout.includes(`${VIP}/24`) ? true : undefined);
    const connsIn = async (ns: Netns) => ((await ns.exec(['ipvsadm', '-Lnc'], { via: 'nsenter' })).stdout.match(/192\.0\.2\.50:\d+\s+192\.0\.2\.100:80/g) ?? []).length;
    let logA = runLvsd(da, 'a', 150, 19661);
    const logB = runLvsd(db, 'b', 100, 19662);
    const dump = () => `\n--- a ---\n${logA()}\n--- b ---\n${logB()}`;
    await until(() => vipOn(da), () => `A to become master${dump()}`);

    const client = cl.spawn([process.execPath, '-e', CLIENT], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: string[] = [];
    const waiters: Array<() => void> = [];
    createInterface({ input: client.stdout! }).on('line', (l) => {
      out.push(l);
      waiters.splice(0).forEach((w) => w());
    });
    const ask = async (cmd: string): Promise<Record<string, unknown>> => {
      const n = out.length;
      client.stdin!.write(cmd + '\n');
      const end = Date.now() + 30000;
      while (out.length === n) {
        if (Date.now() > end) throw new Error(`client did not answer "${cmd}"`);
        await new Promise<void>((r) => {
          waiters.push(r);
          setTimeout(r, 500);
        });
      }
      return JSON.parse(out[n]!) as Record<string, unknown>;
    };

    // 1. Connections through A reach B's kernel table.
    const N = 60;
    assert.equal((await ask(`open ${N}`)).opened, N);
    assert.equal((await ask('round')).ok, N, 'all answer through A');
    await until(async () => ((await connsIn(db)) >= N ? true : undefined), () => `B to hold the ${N} connections${dump()}`, 60000);
    // `lvsd sync show` on B lists the same connections, each as B's `ipvsadm -Lnc` prints it.
    const show = await until(async () => {
      const r = await db.exec([lvsdBin, 'sync', 'show', '--api', '127.0.0.1:19662'], { via: 'nsenter' });
      return r.code === 0 && (r.stdout.match(/192\.0\.2\.50:\d+\s+192\.0\.2\.100:80/g) ?? []).length >= N ? r.stdout : undefined;
    }, () => `lvsd sync show on B to list the ${N} connections${dump()}`, 60000);
    const cmp = missingFromKernel(show, (await db.exec(['ipvsadm', '-Lnc'], { via: 'nsenter' })).stdout);
    assert.equal(cmp.shown.length, N, `sync show rows:\n${show}`);
    assert.deepEqual(cmp.missing, [], 'every row of lvsd sync show is in ipvsadm -Lnc on the same director');

    // 2. Failover: A's host dies and its link is cut.
    da.crash();
    await da.exec(['ip', 'link', 'set', 'eth0', 'down']);
    await until(() => vipOn(db), () => `B to take over${dump()}`);
    const afterFailover = await ask('round');
    assert.equal(afterFailover.ok, N, `connections through B after failover: ${JSON.stringify(afterFailover)}`);

    // 3. Connections opened through B while it is master.
    const M = 20;
    assert.equal((await ask(`open ${M}`)).opened, N + M);
    assert.equal((await ask('round')).ok, N + M);

    // 4. Failback: A returns as a fresh host (new namespace, same address, empty IPVS table).
    const da2 = await topo.member('da2', ['192.0.2.2/24']);
    logA = runLvsd(da2, 'a', 150, 19663);
    await until(() => vipOn(da2), () => `A to take the VIP back${dump()}`);
    await until(async () => ((await vipOn(db)) ? undefined : true), () => `B to release the VIP${dump()}`);
    assert.ok((await connsIn(da2)) >= N + M, `the returning director holds every connection: ${await connsIn(da2)}${dump()}`);
    const afterFailback = await ask('round');
    assert.equal(afterFailback.ok, N + M, `connections through A after failback: ${JSON.stringify(afterFailback)}${dump()}`);
  } finally {
    await topo.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
});
