/**
 * Connection sync on the real kernel (runs inside the lab guest): two directors each run the real
 * daemon (`lvsd run`) with the same DR virtual server; A's config says sync mode master, B's backup.
 * A client opens a TCP connection through A; the connection record must appear in B's IPVS
 * connection table (ipvsadm -Lnc), carried by the kernel sync daemons lvsd started.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { Topology, type Netns } from '../../src/lab/netns.js';
import { lvsdBin } from '../support/proc.js';
import { until } from './support/until.js';

const skip = process.env.LVSD_IN_LAB === '1' ? false : 'runs inside the lab guest (node scripts/test.mjs --only lab)';
const VIP = '192.0.2.100';
const RS = '192.0.2.11';

function cfg(dir: string, name: string, mode: 'master' | 'backup', port: number): string {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(
    file,
    `global:
  router_id: ${name}
  state_dir: ${dir}/state-${name}
  api: { listen: 127.0.0.1:${port} }
  ipvs: { drift_check_interval: 0 }
virtual_servers:
  - address: ${VIP}
    port: 80
    scheduler: rr
    forwarding: dr
    real_servers:
      - address: ${RS}
sync:
  interface: eth0
  mode: ${mode}
  sync_id: 42
`,
  );
  return file;
}

test('lvsd starts the kernel sync daemons and a connection made through the master appears on the backup', { skip, timeout: 600_000 }, async () => {
  const topo = new Topology();
  const dir = mkdtempSync(join(tmpdir(), 'lvsd-sync-'));
  try {
    const br = await topo.bridge('lan0');
    const ns: Record<string, Netns> = {};
    const addrs: Record<string, string> = { cl: '192.0.2.50', da: '192.0.2.2', db: '192.0.2.3', rs: RS };
    for (const [n, a] of Object.entries(addrs)) {
      ns[n] = await topo.netns(n);
      await topo.link(ns[n]!, 'eth0', br);
      await ns[n]!.addr('eth0', `${a}/24`);
    }
    // Director A holds the VIP; the real server carries it on lo without answering ARP for it (DR).
    await ns.da!.addr('eth0', `${VIP}/24`);
    await ns.rs!.sysctl('net.ipv4.conf.all.arp_ignore', '1');
    await ns.rs!.sysctl('net.ipv4.conf.all.arp_announce', '2');
    await ns.rs!.addr('lo', `${VIP}/32`);
    ns.rs!.spawn([process.execPath, '-e', `require('net').createServer(s=>{s.on('data',d=>s.write(d));s.on('error',()=>{})}).listen(80,'0.0.0.0')`]);

    const a = ns.da!.spawn([lvsdBin, 'run', '-c', cfg(dir, 'a', 'master', 19651)]);
    const b = ns.db!.spawn([lvsdBin, 'run', '-c', cfg(dir, 'b', 'backup', 19652)]);
    let logA = '';
    let logB = '';
    a.stdout?.on('data', (d: Buffer) => (logA += d.toString()));
    b.stdout?.on('data', (d: Buffer) => (logB += d.toString()));
    a.stderr?.on('data', (d: Buffer) => (logA += d.toString()));
    b.stderr?.on('data', (d: Buffer) => (logB += d.toString()));

    // Each daemon programmed its table and started its sync daemon (the kernel reports it).
    for (const [n, want] of [['da', 'master'], ['db', 'backup']] as const) {
      await until(async () => {
        const r = await ns[n]!.exec(['ipvsadm', '-L', '--daemon'], { check: false });
        // The kernel's own report, as ipvsadm prints it: the defaults lvsd passed must round-trip (group, port, ttl).
        return r.stdout.includes(`${want} sync daemon (mcast=eth0, syncid=42`) && r.stdout.includes('group=224.0.0.81, port=8848, ttl=1') ? true : undefined;
      }, () => `${want} sync daemon in ${n}\n${n === 'da' ? logA : logB}`);
    }
    const tableB = (await ns.db!.exec(['ipvsadm', '-Ln'])).stdout;
    assert.match(tableB, /TCP\s+192\.0\.2\.100:80 rr/);

    // A client connection through A, kept open, with enough packets to cross the sync threshold.
    const client = ns.cl!.spawn([
      process.execPath,
      '-e',
      `const s=require('net').connect(80,'${VIP}',()=>{let i=0;const t=setInterval(()=>{s.write('ping'+i);if(++i>=10)clearInterval(t)},50)});s.on('data',()=>{});setTimeout(()=>process.exit(0),30000)`,
    ]);
    const onA = await until(async () => {
      const r = await ns.da!.exec(['ipvsadm', '-Lnc']);
      return /ESTABLISHED\s+192\.0\.2\.50:\d+\s+192\.0\.2\.100:80\s+192\.0\.2\.11:80/.test(r.stdout) ? r.stdout : undefined;
    }, 'the connection on the master');
    const cport = /ESTABLISHED\s+192\.0\.2\.50:(\d+)/.exec(onA)![1];
    const onB = await until(async () => {
      const r = await ns.db!.exec(['ipvsadm', '-Lnc']);
      return r.stdout.includes(`192.0.2.50:${cport}`) ? r.stdout : undefined;
    }, 'the synced connection on the backup');
    assert.match(onB, new RegExp(`TCP\\s+\\S+\\s+\\S+\\s+192\\.0\\.2\\.50:${cport}\\s+192\\.0\\.2\\.100:80\\s+192\\.0\\.2\\.11:80`));
    client.kill('SIGKILL');

    // Status reports the running daemon; SIGTERM stops lvsd and its sync daemon, leaving the table.
    a.kill('SIGTERM');
    await until(async () => ((await ns.da!.exec(['ipvsadm', '-L', '--daemon'], { check: false })).stdout.includes('master') ? undefined : true), 'the master sync daemon to stop');
    assert.match((await ns.da!.exec(['ipvsadm', '-Ln'])).stdout, /192\.0\.2\.100:80/, 'stopping lvsd does not flush the table');
    b.kill('SIGTERM');
  } finally {
    await topo.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
});
