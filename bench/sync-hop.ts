/**
 * The lab guest's raw costs, to read bench/sync.ts against (issue 18: where does a sync record's
 * time go?). Inside the lab only:
 *   bin/lvsd lab exec -- node dist/bench/sync-hop.js [--count 100] [--interval 100]
 * Two namespaces on one bridge (192.0.2.2, 192.0.2.3). b runs a node UDP echo; a sends COUNT
 * datagrams INTERVAL ms apart (10/s by default, the bench's low rate), each carrying its send time;
 * b notes the one-way delay (same guest clock) and echoes. Printed: one-way a→b and round trip
 * p50/p95/max, the lateness of a 50 ms setTimeout (sync.poll_interval) and the time of one read
 * of a's (empty) /proc/net/ip_vs_conn, by fs.promises.readFile (thread-pool hops) and by
 * synchronous calls (the table worker's way), all in a process in a's namespace (the same guest CPU).
 * Bounded: COUNT ≤ 1,000, 60 s.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { readFile } from 'node:fs/promises';
import dgram from 'node:dgram';
import { Topology } from '../src/lab/netns.js';

const arg = (name: string, dflt: number, max: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return Math.min(max, Math.max(1, Number(i >= 0 ? process.argv[i + 1] : dflt)));
};
const wall = () => performance.timeOrigin + performance.now();
const q = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)]! : NaN;
};
const fmt = (xs: number[]) => `p50 ${q(xs, 0.5).toFixed(2)} / p95 ${q(xs, 0.95).toFixed(2)} / max ${Math.max(...xs).toFixed(2)} ms (n=${xs.length})`;

// The echo, run by node -e in b: answers each datagram with its one-way delay appended.
const ECHO = `const s=require('dgram').createSocket('udp4');const w=()=>performance.timeOrigin+performance.now();
s.on('message',(m,r)=>{const d=w()-m.readDoubleBE(0);const o=Buffer.alloc(16);m.copy(o,0,0,8);o.writeDoubleBE(d,8);s.send(o,r.port,r.address)});
s.bind(7777,'192.0.2.3',()=>console.log('ready'));setTimeout(()=>process.exit(0),60000);`;

async function main(): Promise<void> {
  if (!process.env.LVSD_IN_LAB) {
    process.stderr.write('run inside the lab: bin/lvsd lab exec -- node dist/bench/sync-hop.js\n');
    process.exitCode = 69;
    return;
  }
  const count = arg('count', 100, 1000);
  const interval = arg('interval', 100, 1000);
  const topo = new Topology();
  try {
    const a = await topo.member('a', ['192.0.2.2/24']);
    const b = await topo.member('b', ['192.0.2.3/24']);
    const echo = b.start([process.execPath, '-e', ECHO]);
    for (let i = 0; i < 100 && !echo.output().includes('ready'); i++) await sleep(100);
    // The client runs in a's namespace through the same mechanism (a child node process).
    const CLIENT = `const s=require('dgram').createSocket('udp4');const w=()=>performance.timeOrigin+performance.now();
const one=[],rtt=[],tl=[],rd=[],rs=[];let sent=0;const fs=require('fs/promises');const fss=require('fs');const buf=Buffer.alloc(65536);
const rsync=(p)=>{const fd=fss.openSync(p,'r');let t='',pos=0,n;while((n=fss.readSync(fd,buf,0,buf.length,pos))>0){t+=buf.toString('latin1',0,n);pos+=n}fss.closeSync(fd);return t};
s.on('message',(m)=>{rtt.push(w()-m.readDoubleBE(0));one.push(m.readDoubleBE(8))});
s.bind(0,'192.0.2.2',async()=>{for(let i=0;i<${count};i++){const b=Buffer.alloc(8);b.writeDoubleBE(w());s.send(b,7777,'192.0.2.3');
const t=performance.now();await new Promise(r=>setTimeout(r,50));tl.push(performance.now()-t-50);
const t2=performance.now();await fs.readFile('/proc/net/ip_vs_conn','latin1').catch(()=>fs.readFile('/proc/net/udp','latin1'));rd.push(performance.now()-t2);
const t3=performance.now();rsync('/proc/net/ip_vs_conn');rs.push(performance.now()-t3);
await new Promise(r=>setTimeout(r,Math.max(0,${interval}-50)))}
await new Promise(r=>setTimeout(r,1000));console.log(JSON.stringify({one,rtt,tl,rd,rs}));process.exit(0)});`;
    const cl = a.start([process.execPath, '-e', CLIENT]);
    const exit = await Promise.race([cl.exited, sleep(60_000).then(() => ({ code: -1 }))]);
    if (exit.code !== 0) throw new Error(`client failed: ${cl.output().slice(-1000)}`);
    const r = JSON.parse(cl.output().trim().split('\n').pop()!) as { one: number[]; rtt: number[]; tl: number[]; rd: number[]; rs: number[] };
    process.stdout.write(`node dgram a→b one-way: ${fmt(r.one)}\nround trip: ${fmt(r.rtt)}\nsetTimeout(50) late by: ${fmt(r.tl)}\n/proc/net/ip_vs_conn (empty) by fs.promises.readFile: ${fmt(r.rd)}\nthe same by openSync/readSync/closeSync (the table worker's read): ${fmt(r.rs)}\n`);
  } finally {
    await topo.destroy();
  }
}

await main();
