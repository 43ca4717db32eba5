/**
 * Real kernel (UML lab, NAT topology): `lvsd run` in the director with TCP health checks on three real
 * servers. A real server process killed in its namespace leaves `ipvsadm -Ln` (or goes to weight 0
 * with inhibit_on_failure) after the kill and stays out until it is restarted; restarted, it returns
 * (the daemon says after `rise` successful checks); a client's open connection to a healthy server is
 * never disturbed. Assertions are on effects and order only (CI is a loaded machine): the times are
 * printed as figures, and the bound (interval × fall + timeout + 0.5 s) is bench/health-scale.ts's.
 * The kernel table is sampled by a shell loop inside the director (date + /proc/net/ip_vs).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { Topology } from '../../src/lab/netns.js';
import { buildNatLab, lvsdBin, parseIpvsadmDests } from './support/topologies.js';
import { ECHO_SERVER, echoClient, lines, type Lines } from './support/echo.js';

const PORT = 9000;
const INTERVAL = 0.5;
const TIMEOUT = 0.5;
const FALL = 2;
const RISE = 2;
/** The detection bound operators are told (docs/health.md); printed beside the figures, not asserted. */
const BOUND_MS = (INTERVAL * FALL + TIMEOUT + 0.5) * 1000;

// Table sampler: bash builtins only (no fork per sample, so it samples every ~20 ms even in the guest):
// at most 20000 samples (bounded), each "@<epoch seconds>" then /proc/net/ip_vs (this netns's table).
const SAMPLER = `f=$(mktemp -u); mkfifo "$f"; exec 9<>"$f"; rm -f "$f"; i=0
while [ $i -lt 20000 ]; do i=$((i+1)); echo "@$EPOCHREALTIME"; while IFS= read -r l; do echo "$l"; done < /proc/net/ip_vs; read -t 0.02 -u 9; done`;

/** /proc/net/ip_vs (hex "C0000264:2328") → the same shape parseIpvsadmDests gives for ipvsadm -Ln. */
function parseProcIpVs(text: string, vip: string, port: number): Map<string, { method: string; weight: number }> {
  const hex = (h: string) => { const [a, p] = h.split(':'); return { ip: (a!.match(/../g) ?? []).map((x) => parseInt(x, 16)).join('.'), port: parseInt(p!, 16) }; };
  const out = new Map<string, { method: string; weight: number }>();
  let inService = false;
  for (const line of text.split('\n')) {
    const svc = /^(TCP|UDP|SCTP)\s+([0-9A-F]{8}:[0-9A-F]{4})/.exec(line);
    if (svc) { const e = hex(svc[2]!); inService = e.ip === vip && e.port === port; continue; }
    const m = /^\s+->\s+([0-9A-F]{8}:[0-9A-F]{4})\s+(\S+)\s+(\d+)/.exec(line);
    if (inService && m) out.set(hex(m[1]!).ip, { method: m[2]!, weight: Number(m[3]) });
  }
  return out;
}

interface Snapshot { at: number; dests: Map<string, { method: string; weight: number }> }

/** Parse the sampler output into timestamped snapshots of the service's destinations. */
function snapshots(out: string[], vip: string): Snapshot[] {
  const snaps: Snapshot[] = [];
  let at = 0;
  let buf: string[] = [];
  const flush = () => { if (at) snaps.push({ at, dests: parseProcIpVs(buf.join('\n'), vip, PORT) }); };
  for (const l of out) {
    if (l.startsWith('@')) { flush(); at = Number(l.slice(1)) * 1000; buf = []; } else buf.push(l);
  }
  return snaps; // the last (possibly incomplete) sample is left out
}

/** Upper bound of when `pred` first held after `since`: the start of the sample after the first one where it holds. */
async function whenTable(sampler: Lines, vip: string, since: number, pred: (s: Snapshot) => boolean, what: string, ms = 60_000): Promise<number> {
  const end = Date.now() + ms;
  for (;;) {
    const snaps = snapshots(sampler.all, vip).filter((s) => s.at >= since);
    const i = snaps.findIndex(pred);
    if (i >= 0 && i + 1 < snaps.length) return snaps[i + 1]!.at;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('health checks drive the kernel table: kill → removed / weight 0 until restarted, restart → back after rise; open connection untouched', { timeout: 900_000 }, async () => {
  const topo = new Topology();
  try {
    const lab = await buildNatLab(topo, { realServers: 3, port: PORT, startServers: false });
    const servers = new Map<string, ChildProcess>();
    const startEcho = async (i: number) => {
      const rs = lab.realServers[i]!;
      const c = rs.ns.spawn([process.execPath, '-e', ECHO_SERVER, rs.name, String(PORT)]);
      await lines(c).wait((l) => l === 'listening', 60_000, `${rs.name} listening`);
      servers.set(rs.name, c);
      return Date.now();
    };
    const killEcho = async (name: string) => {
      const c = servers.get(name)!;
      const gone = new Promise((r) => c.once('exit', r));
      const at = Date.now();
      process.kill(c.pid!, 'SIGKILL');
      await gone;
      return at;
    };
    for (let i = 0; i < 3; i++) await startEcho(i);
    const [rs1, rs2, rs3] = lab.realServers as [typeof lab.realServers[0], typeof lab.realServers[0], typeof lab.realServers[0]];

    const dir = mkdtempSync(join(tmpdir(), 'lvsd-health-lab-'));
    const cfgFile = join(dir, 'lvsd.yaml');
    writeFileSync(cfgFile, `global:
  router_id: ${topo.prefix}
virtual_servers:
  - name: web
    address: ${lab.vip}
    port: ${PORT}
    scheduler: rr
    forwarding: nat
    interval: ${INTERVAL}
    timeout: ${TIMEOUT}
    fall: ${FALL}
    rise: ${RISE}
    retry_delay: ${INTERVAL}
    real_servers:
      - { address: ${rs1.address}, checks: [{ type: tcp }] }
      - { address: ${rs2.address}, inhibit_on_failure: true, checks: [{ type: tcp }] }
      - { address: ${rs3.address}, checks: [{ type: tcp }] }
`);
    const daemon = lab.director.spawn([process.execPath, lvsdBin, 'run', '-c', cfgFile, '--state-dir', dir, '--listen', '127.0.0.1:9650']);
    const log = lines(daemon);
    let daemonErr = '';
    daemon.stderr!.on('data', (d: Buffer) => (daemonErr += d.toString()));
    const sampler = lines(lab.director.spawn(['bash', '-c', SAMPLER]));
    try {
      await whenTable(sampler, lab.vip, 0, (s) => s.dests.size === 3, 'three destinations programmed', 240_000).catch((e) => {
        throw new Error(`${String(e)}; daemon: ${log.all.slice(-5).join('\n')} ${daemonErr}`);
      });

      // A client connection that lands on rs3 (rr: at most three tries); it must never be disturbed.
      let client: Lines | undefined;
      for (let i = 0; i < 6 && !client; i++) {
        // One connection, "ping N" every 100 ms, at most 1200 (120 s).
        const c = lab.client.spawn([process.execPath, '-e', echoClient(1200), lab.vip, String(PORT)]);
        const l = lines(c);
        const first = await l.wait((x) => / ping \d+$/.test(x), 60_000, 'first echo');
        if (first.startsWith(`${rs3.name} `)) client = l;
        else process.kill(c.pid!, 'SIGKILL');
      }
      assert.ok(client, 'no connection landed on rs3');

      // Kill rs1 (no inhibit): in the table up to the kill, out of it after (order, not milliseconds).
      const before = (t: number) => snapshots(sampler.all, lab.vip).filter((x) => x.at < t).at(-1);
      assert.equal(before(Date.now())?.dests.get(rs1.address)?.weight, 1, 'rs1 in the table before the kill');
      const k1 = await killEcho(rs1.name);
      const gone1 = await whenTable(sampler, lab.vip, k1, (s) => !s.dests.has(rs1.address), 'rs1 removed');
      const t1 = gone1 - k1;

      // Kill rs2 (inhibit_on_failure): weight 1 up to the kill, then 0, and never removed.
      assert.equal(before(Date.now())?.dests.get(rs2.address)?.weight, 1, 'rs2 weight 1 before the kill');
      const k2 = await killEcho(rs2.name);
      const zero2 = await whenTable(sampler, lab.vip, k2, (s) => s.dests.get(rs2.address)?.weight === 0, 'rs2 weight 0');
      const t2 = zero2 - k2;
      const reasons = log.all.filter((l) => l.includes('"to":"down"'));
      assert.ok(reasons.some((l) => l.includes(rs1.address) && l.includes('connect_refused')), `log of rs1 going down with its reason: ${reasons.join('\n')}`);

      // Restart rs1: back in the table, and not before: out of every sample from its removal to its restart.
      const restartAt = Date.now();
      const back = await startEcho(0);
      const ret1 = await whenTable(sampler, lab.vip, back, (s) => s.dests.get(rs1.address)?.weight === 1, 'rs1 back');
      const tb = ret1 - back;
      const outage = snapshots(sampler.all, lab.vip).filter((x) => x.at >= gone1 && x.at < restartAt);
      assert.ok(outage.length > 0 && outage.every((x) => !x.dests.has(rs1.address)), `rs1 back in the table before it was restarted`);
      assert.ok(snapshots(sampler.all, lab.vip).filter((x) => x.at >= k2).every((x) => x.dests.has(rs2.address)), 'rs2 (inhibit) left the table');
      // The daemon's own account, in order: rs1 down (connect refused), then up after `rise` successes.
      // (The exact count of successes is proven on real sockets by test/health/subsystem.test.ts.)
      const isRs1 = (l: string) => l.includes(`"real_server":"${rs1.address}:${PORT}"`) && /"to":"(up|down)"/.test(l) && !l.includes('initial state');
      await log.wait((l) => isRs1(l) && l.includes('"to":"up"'), 60_000, 'the daemon logs rs1 up');
      const rs1Log = log.all.filter(isRs1);
      assert.deepEqual(rs1Log.map((l) => (JSON.parse(l) as { to: string }).to), ['down', 'up'], rs1Log.join('\n'));
      assert.match(rs1Log[1]!, new RegExp(`rise ${RISE}`));

      // The rs3 connection kept working the whole time, on the same server.
      const n = client.all.length;
      await client.wait((l) => / ping \d+$/.test(l), 60_000, 'an echo after all changes', n);
      assert.ok(client.all.every((l) => l.startsWith(`${rs3.name} ping`)), `disturbed: ${client.all.filter((l) => !l.startsWith(`${rs3.name} ping`)).join(' | ')}`);
      const snaps = snapshots(sampler.all, lab.vip);
      const gaps = snaps.slice(1).map((x, i) => x.at - snaps[i]!.at).sort((a, b) => a - b);
      const downLog = log.all.find((l) => l.includes('"to":"down"') && l.includes(rs1.address));
      const logAt = downLog ? Date.parse((JSON.parse(downLog) as { time: string }).time) - k1 : NaN;
      process.stdout.write(`# health-ipvs: daemon logged rs1 down ${logAt.toFixed(0)} ms after the kill; table sampled every ${gaps[gaps.length >> 1]?.toFixed(0)} ms (median)\n`);
      // The sampler agrees with ipvsadm.
      const final = parseIpvsadmDests(await lab.ipvsadm('-Ln'), lab.vip, PORT);
      assert.deepEqual([...final.entries()].sort(), [...snapshots(sampler.all, lab.vip).at(-1)!.dests.entries()].sort());
      process.stdout.write(`# health-ipvs: rs1 removed after ${t1.toFixed(0)} ms, rs2 weight 0 after ${t2.toFixed(0)} ms (bound ${BOUND_MS}), rs1 back after ${tb.toFixed(0)} ms (rise ${RISE} × interval ${INTERVAL * 1000} ms)\n`);
    } finally {
      if (daemon.exitCode === null) process.kill(daemon.pid!, 'SIGTERM');
    }
  } finally {
    await topo.destroy();
  }
});
