/**
 * Records real IPVS sync messages from the lab kernel's MASTER daemon, for the codec's fixtures
 * (test/fixtures/sync/). Run inside the guest, with the fixture folder mounted read-write:
 *
 *   bin/lvsd lab exec --rw test/fixtures/sync -- node dist/test/lab/support/sync-capture.js test/fixtures/sync
 *
 * One segment: client, director (master sync daemon on eth0, syncid 7), a DR real server, and a
 * capture namespace whose dgram socket joins 224.0.0.81:8848 and writes every datagram it receives as
 * kernel-master-NN.bin. Connections of every kind the codec knows are opened through the director:
 * plain TCP, UDP, a persistent service (templates), a fwmark service (tc marks the packets) and IPv6;
 * some are then closed so state changes are synced too. `ipvsadm -Lnc` of the director is saved
 * beside the datagrams (table.txt) as the human-readable truth.
 */
import { writeFileSync, readdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Topology } from '../../../src/lab/netns.js';

const out = resolve(process.argv[2] ?? 'test/fixtures/sync');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const CAPTURE = `const dgram = require('dgram'); const fs = require('fs'); const [dir, iface] = process.argv.slice(1); let n = 0;
const s = dgram.createSocket({ type: 'udp4', reuseAddr: true });
s.on('message', (m) => { n++; fs.writeFileSync(dir + '/kernel-master-' + String(n).padStart(2, '0') + '.bin', m); console.log('got ' + m.length); });
s.bind(8848, '224.0.0.81', () => { s.addMembership('224.0.0.81', iface); console.log('listening'); });`;

const SERVERS = `const net = require('net'); const dgram = require('dgram');
for (const [port, host] of [[80, '0.0.0.0'], [81, '0.0.0.0'], [82, '0.0.0.0'], [80, '::']]) net.createServer((s) => { s.on('data', (d) => s.write(d)); s.on('error', () => {}); }).listen({ port, host, ipv6Only: host === '::' });
const u = dgram.createSocket('udp4'); u.on('message', (m, r) => u.send(m, r.port, r.address)); u.bind(53);
console.log('listening');`;

/** Client: opens the connections named on the command line ("tcp HOST PORT", "udp HOST PORT"), sends 5 messages on each, keeps them open; on stdin "close" closes the first half. */
const CLIENT = `const net = require('net'); const dgram = require('dgram'); const specs = JSON.parse(process.argv[1]); const socks = [];
for (const [proto, host, port] of specs) {
  if (proto === 'tcp') { const s = net.connect(port, host, () => { let i = 0; const t = setInterval(() => { s.write('x' + i); if (++i >= 5) clearInterval(t); }, 30); }); s.on('data', () => {}); s.on('error', (e) => console.log('error ' + e.code)); socks.push(s); }
  else { const u = dgram.createSocket('udp4'); let i = 0; const t = setInterval(() => { u.send('q' + i, port, host); if (++i >= 5) clearInterval(t); }, 30); u.on('message', () => {}); socks.push(null); }
}
setTimeout(() => { for (let i = 0; i < socks.length / 2; i++) socks[i] && socks[i].end(); console.log('closed half'); }, 5000);
setTimeout(() => process.exit(0), 30000);
console.log('started');`;

async function main(): Promise<void> {
  const topo = new Topology();
  try {
    for (const f of readdirSync(out)) if (/^kernel-master-\d+\.bin$/.test(f)) rmSync(join(out, f));
    const cl = await topo.member('cl', ['192.0.2.50/24', '2001:db8::50/64']);
    const d = await topo.member('d', ['192.0.2.1/24', '192.0.2.100/24', '192.0.2.101/24', '2001:db8::1/64', '2001:db8::100/64']);
    const rs = await topo.member('rs', ['192.0.2.11/24', '2001:db8::11/64']);
    const cap = await topo.member('cap', ['192.0.2.9/24']);
    await rs.sysctls({ 'net.ipv4.conf.all.arp_ignore': '1', 'net.ipv4.conf.all.arp_announce': '2' });
    await rs.ipBatch(['addr add 192.0.2.100/32 dev lo', 'addr add 192.0.2.101/32 dev lo', 'addr add 2001:db8::100/128 dev lo']);
    // The real server must not answer neighbour solicitations for the IPv6 VIP on eth0: it is on lo
    // only, and Linux answers NS only for addresses on the receiving interface, so that holds.
    const srv = rs.start([process.execPath, '-e', SERVERS]);
    const capture = cap.start([process.execPath, '-e', CAPTURE, out, '192.0.2.9']);

    const ipvs = [
      '-A -t 192.0.2.100:80 -s rr', '-a -t 192.0.2.100:80 -r 192.0.2.11:80 -g',
      '-A -t 192.0.2.100:81 -s rr -p 60', '-a -t 192.0.2.100:81 -r 192.0.2.11:81 -g',
      '-A -f 5 -s rr', '-a -f 5 -r 192.0.2.11:0 -g',
      '-A -t [2001:db8::100]:80 -s rr', '-a -t [2001:db8::100]:80 -r [2001:db8::11]:80 -g',
      '-A -u 192.0.2.100:53 -s rr', '-a -u 192.0.2.100:53 -r 192.0.2.11:53 -g',
    ];
    await d.exec(['ipvsadm', '-R'], { input: ipvs.join('\n') + '\n' });
    // Packets to 192.0.2.101:82 get fwmark 5 at tc ingress (the lab kernel's nf_tables lacks the ip
    // family's filter chain; tc's skbedit runs before IPVS's LOCAL_IN hook just as well).
    await d.exec(['tc', '-batch', '-'], {
      input: 'qdisc add dev eth0 ingress\nfilter add dev eth0 ingress protocol ip u32 match ip dst 192.0.2.101/32 match ip dport 82 0xffff action skbedit mark 5\n',
    });
    await d.exec(['ipvsadm', '--start-daemon', 'master', '--mcast-interface', 'eth0', '--syncid', '7']);
    for (const r of [srv, capture]) {
      for (let i = 0; i < 100 && !r.output().includes('listening'); i++) await sleep(100);
      if (!r.output().includes('listening')) throw new Error(`helper did not start: ${r.output()}`);
    }
    const specs = [
      ['tcp', '192.0.2.100', 80], ['tcp', '192.0.2.100', 80], ['tcp', '192.0.2.100', 81], ['tcp', '192.0.2.100', 81],
      ['tcp', '192.0.2.101', 82], ['tcp', '2001:db8::100', 80], ['udp', '192.0.2.100', 53], ['tcp', '192.0.2.100', 80],
    ];
    const client = cl.start([process.execPath, '-e', CLIENT, JSON.stringify(specs)]);
    // The master flushes a partly filled buffer once it is 2 s old, checked every second; the client
    // closes half its connections after 5 s (state changes are synced at once into the next buffer).
    await sleep(3500);
    const table1 = (await d.exec(['ipvsadm', '-Lnc'])).stdout;
    await sleep(6500);
    const table2 = (await d.exec(['ipvsadm', '-Lnc'])).stdout;
    writeFileSync(join(out, 'table.txt'), `# ipvsadm -Lnc on the director, 3.5 s after the connections opened\n${table1}\n# 10 s after (half closed at 5 s)\n${table2}`);
    process.stdout.write(`capture:\n${capture.output()}\nclient:\n${client.output()}\n${table1}\n${table2}\n`);
    const got = readdirSync(out).filter((f) => f.endsWith('.bin')).length;
    if (got === 0) throw new Error('no sync datagram captured');
    console.log(`${got} datagrams in ${out}`);
  } finally {
    await topo.destroy();
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
