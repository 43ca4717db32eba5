/**
 * The driver of test/lab/pair/sync-pair.test.ts, run as the command of guest "c" (clients and real
 * servers) of a three-guest lab: directors a (192.0.2.2) and b (192.0.2.3) are guests of their own,
 * each running the lab agent (src/lab/pair-agent.ts); guest c (192.0.2.60) holds the client
 * (192.0.2.50) and two DR real servers (192.0.2.11, .12, VIP on lo), each in a namespace of c.
 *
 *   node sync-driver.js DIR     (DIR: a-19681.yaml, b-19681.yaml written by the test; shared read-write)
 *
 * Steps (exit 0 when all hold, 1 with the reason otherwise): both lvsd start through the agents; a
 * becomes master and b stays backup (a's adverts reach it); N TCP connections opened through the
 * VIP answer; all N appear in b's kernel table (ipvsadm -Lnc in b's guest: they crossed the segment
 * on channel lvsd, multicast 224.0.0.81 by default); a's guest is powered off
 * at once (no goodbye); b takes the VIP; every connection still answers, now through b.
 */
import { join } from 'node:path';
import { Topology } from '../../../../src/lab/netns.js';
import { agent } from '../../../../src/lab/pair-agent.js';
import { lvsdBin } from '../../../support/proc.js';
import { ECHO_SERVER, lines } from '../../support/echo.js';
import { until } from '../../support/until.js';

const VIP = '192.0.2.100';
const A = '192.0.2.2';
const B = '192.0.2.3';
const N = 40;

/**
 * N connections to the VIP, reported once all are up or after 30 s (not at a fixed 2 s: under a
 * loaded host a SYN may need its 1 s retransmit, and 37 of 40 within 2 s once failed the test);
 * stdin "round" sends one line on each and prints {ok, total}.
 */
const CLIENT = `const net = require('net'); const cs = [];
for (let i = 0; i < ${N}; i++) { const s = net.connect(80, '${VIP}'); const c = { s, up: false, w: null, b: '' }; s.on('connect', () => (c.up = true));
  s.on('data', (d) => { c.b += d; if (c.b.includes('\\n')) { c.b = ''; if (c.w) c.w(true); } }); s.on('error', () => {}); s.on('close', () => { c.up = false; if (c.w) c.w(false); }); cs.push(c); }
const t0 = Date.now(); const iv = setInterval(() => { const n = cs.filter((c) => c.up).length; if (n === ${N} || Date.now() - t0 > 30000) { clearInterval(iv); console.log(JSON.stringify({ opened: n })); } }, 100);
require('readline').createInterface({ input: process.stdin }).on('line', async () => {
  const r = await Promise.all(cs.map((c) => !c.up ? false : new Promise((res) => { const t = setTimeout(() => res(false), 10000); c.w = (ok) => { clearTimeout(t); c.w = null; res(ok); }; c.s.write('ping\\n'); })));
  console.log(JSON.stringify({ ok: r.filter(Boolean).length, total: cs.length })); });
setTimeout(() => process.exit(0), 900000);`;

const t0 = Date.now();
const say = (m: string) => process.stdout.write(`[c +${Math.round((Date.now() - t0) / 1000)}s] ${m}\n`);
const exec = async (host: string, argv: string[]) => (await agent<{ code: number; stdout: string; stderr: string }>(host, '/exec', { argv })).stdout;
const rows = (lnc: string) => (lnc.match(/192\.0\.2\.50:\d+\s+192\.0\.2\.100:80\s/g) ?? []).length;

async function main(dir: string): Promise<void> {
  const topo = new Topology();
  const ids: Record<string, number> = {};
  const logs = async () => {
    let s = '';
    for (const [h, id] of Object.entries(ids)) s += `\n--- lvsd on ${h} ---\n${(await agent<{ stdout: string; stderr: string }>(h, '/output', { id }).catch((e) => ({ stdout: String(e), stderr: '' }))).stdout.slice(-6000)}`;
    return s;
  };
  /** until(), and on a timeout the directors' logs with the reason. */
  const wait = async <T>(fn: () => Promise<T | undefined>, what: string, ms: number, step: number): Promise<T> => {
    try {
      return await until(fn, what, ms, step);
    } catch (e) {
      throw new Error(`${(e as Error).message}${await logs()}`);
    }
  };
  try {
    // The client and the real servers sit on the segment through macvlans of c's eth0 (bridge mode:
    // they reach each other directly and everything else over the segment), each in a namespace;
    // this process keeps c's own address (192.0.2.60) to call the agents.
    const cl = await topo.macvlanMember('cl', '192.0.2.50/24');
    for (const [i, addr] of ['11', '12'].entries()) {
      const rs = await topo.macvlanMember(`rs${i}`, `192.0.2.${addr}/24`);
      await rs.sysctls({ 'net.ipv4.conf.all.arp_ignore': '1', 'net.ipv4.conf.all.arp_announce': '2' });
      await rs.addr('lo', `${VIP}/32`);
      rs.spawn([process.execPath, '-e', ECHO_SERVER, `rs${i}`, '80']);
    }
    for (const h of [A, B]) await until(async () => ((await agent(h, '/ping', {}, undefined, 5000)) ? true : undefined), `the agent on ${h}`, 240_000, 1000);
    say('both agents answer');
    for (const [h, n] of [[A, 'a'], [B, 'b']] as const) ids[h] = (await agent<{ id: number }>(h, '/spawn', { argv: [lvsdBin, 'run', '-c', join(dir, `${n}-19681.yaml`)] })).id;
    const vipOn = async (h: string) => ((await exec(h, ['ip', '-o', '-4', 'addr', 'show', 'dev', 'eth0'])).includes(`${VIP}/`) ? true : undefined);
    await wait(() => vipOn(A), 'a to become master', 240_000, 1000);
    await wait(async () => ((await exec(B, ['ipvsadm', '-L', '--daemon'])).includes('backup') ? true : undefined), "b's backup sync daemon", 240_000, 1000);
    say('a is master, b runs its backup daemon');

    const client = cl.spawn([process.execPath, '-e', CLIENT], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out = lines(client);
    const opened = JSON.parse(await out.wait((l) => l.includes('opened'), 60_000, 'the client to open its connections')) as { opened: number };
    if (opened.opened !== N) throw new Error(`opened ${opened.opened} of ${N} connections through a`);
    const round = async (what: string) => {
      const from = out.all.length;
      client.stdin!.write('round\n');
      const r = JSON.parse(await out.wait((l) => l.includes('"ok"'), 60_000, what, from)) as { ok: number; total: number };
      say(`${what}: ${r.ok}/${r.total} connections answer`);
      if (r.ok !== N) throw new Error(`${what}: ${r.ok} of ${N} connections answered${await logs()}`);
    };
    await round('through a');
    // b hears a's VRRP adverts (224.0.0.18) across the segment: it stays backup (without them it
    // would have taken the VIP too, 3 advert intervals after its start).
    if (await vipOn(B)) throw new Error(`b holds the VIP while a is master: the VRRP adverts do not cross${await logs()}`);
    let last = 0;
    const onB = await wait(async () => {
      const lnc = await exec(B, ['ipvsadm', '-Lnc']);
      last = rows(lnc);
      return last >= N ? lnc : undefined;
    }, `b's kernel to hold the ${N} connections`, 120_000, 1000).catch((e: Error) => {
      throw new Error(`${e.message} (it held ${last})`);
    });
    say(`b's kernel (ipvsadm -Lnc in b's guest) holds all ${rows(onB)} connections`);

    // a's host fails: its guest powers off at once (sysrq o), no VRRP priority-0 advert, nothing.
    await agent(A, '/poweroff');
    delete ids[A];
    say("a's guest powered off");
    await wait(() => vipOn(B), 'b to take the VIP', 120_000, 500);
    say('b holds the VIP');
    await round('through b after a failed');
    await agent(B, '/exit');
  } finally {
    await topo.destroy();
  }
}

main(process.argv[2]!).then(
  () => {
    say('PASS');
    process.exit(0);
  },
  (e: unknown) => {
    say(`FAIL: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  },
);
