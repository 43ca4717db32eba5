/**
 * The demo's story, run inside the lab guest (`lvsd demo` boots the guest and starts this file there;
 * it refuses to run anywhere else). It builds the cluster of cluster.ts, plays the steps below and
 * reports each fact as an event line (events.ts) for the host to narrate, ending with the summary:
 *
 *   0. two `lvsd run` directors elect a master, program IPVS, check the real servers, start sync;
 *   1. requests on new connections are spread over the three real servers;
 *   2. a real server's host dies while requests flow: it leaves the kernel table, no request fails;
 *      it comes back and re-enters the table;
 *   3. the client holds long-lived connections; the backup's kernel learns them by sync;
 *   4. the master director crashes: the backup takes the VIP and the connections carry on;
 *   5. the old master returns (a rebooted host: empty kernel tables) and preempts.
 * Every figure is measured here; nothing is assumed. Durations come from lvsd's own log times.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Topology } from '../netns.js';
import { buildCluster, VIP, type Director, type LogLine } from './cluster.js';
import type { RealServer } from '../topologies.js';
import type { BurstReply, HoldReply, StreamReply } from './client.js';
import { encode, type DemoEvent, type DemoSummary, type Move } from './events.js';

const t0 = Date.now();
const emit = (e: DemoEvent) => process.stdout.write(`${encode({ ...e, t: Date.now() - t0 })}\n`);
const step = (title: string) => emit({ ev: 'step', title });
const say = (text: string) => emit({ ev: 'say', text });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const secs = (ms: number | undefined) => (ms === undefined ? '?' : `${(ms / 1000).toFixed(1)} s`);
const counts = (m: Record<string, number>) => Object.entries(m).sort().map(([k, v]) => `${k} ${v}`).join(', ') || 'none';

/** The directors, for the failure report (their last log lines say why a step did not happen). */
const directors: Director[] = [];

class Stop extends Error {}
function need<T>(v: T | undefined, what: string): T {
  if (v === undefined) {
    const dead = directors.filter((d) => d.exited && d.proc?.signalCode !== 'SIGKILL');
    throw new Stop(`${what}${dead.map((d) => `; lvsd on ${d.label} exited: ${d.log.at(-1)?.msg ?? 'no log'}`).join('')}`);
  }
  return v;
}

const isTransition = (to: string) => (l: LogLine) => l.to === to && typeof l.msg === 'string' && l.msg.startsWith('VRRP ');
const rsEvent = (addr: string, to: 'up' | 'down') => (l: LogLine) => l.msg === `real server ${to}` && String(l.real_server ?? '').startsWith(`${addr}:`);
const reconciled = (l: LogLine) => l.msg === 'IPVS table reconciled';

function diffCounts(after: Record<string, number>, before: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) if (v - (before[k] ?? 0) > 0) out[k] = v - (before[k] ?? 0);
  return out;
}

/** A real server's name ("rs2") from its address, for the narration. */
const nameOf = (rss: readonly RealServer[]) => (addr: string) => rss.find((r) => r.address === addr)?.name ?? addr;

/**
 * What director `d`'s own health checks did from its log line `from` on: each real server down/up
 * line with its reason, timed from `t0` ("the crash", ...), and the real servers they took out of its
 * kernel table at some moment in that span (a "down" line, or absent from `inTable`, its table read
 * when it took over). With expire_nodest_conn=1 (tuneDirector) the kernel drops a connection whose
 * real server is no longer in the table at its next packet, and the client's retry gets a reset from
 * the director's own stack (it holds the VIP): those connections cannot survive the move.
 */
function checksSince(d: Director, from: number, t0: { at: number; what: string }, inTable: readonly string[] | undefined, rss: readonly RealServer[]): { lines: string[]; takenOut: string[] } {
  const rsName = nameOf(rss);
  const takenOut = new Set<string>();
  const lines: string[] = [];
  for (const l of d.log.slice(from)) {
    if (l.msg !== 'real server down' && l.msg !== 'real server up') continue;
    const name = rsName(String(l.real_server ?? '').split(':')[0]!);
    if (l.msg === 'real server down') takenOut.add(name);
    const dt = l.time - t0.at;
    lines.push(`${name} ${l.to} ${secs(Math.abs(dt))} ${dt < 0 ? 'before' : 'after'} ${t0.what} (${String(l.reason ?? '')})`);
  }
  for (const r of rss) if (inTable !== undefined && !inTable.includes(r.address)) takenOut.add(r.name);
  return { lines, takenOut: [...takenOut].sort() };
}

/**
 * Narrated lines about a move: the new master's own checks, its table when it took over, and which
 * connections ended where — with their entries in its kernel. Connections that ended on a real
 * server its checks did not take out have no known reason; for them it tells where their packets
 * could have gone: the new master's ARP entry for that real server against the server's MAC, and
 * whether the real server still holds their sockets (if it does, the reset did not come from it).
 */
async function tellMove(d: Director, since: string, checks: { lines: string[]; takenOut: string[] }, inTable: readonly string[] | undefined, rss: readonly RealServer[], endedByServer: Record<string, number>, ended: HoldReply['ended']): Promise<void> {
  const rsName = nameOf(rss);
  say(`${d.label}'s own health checks ${since}: ${checks.lines.length ? checks.lines.join('; ') : 'no real server went down or up'}`);
  say(`${d.label}'s kernel table when it took over: ${inTable === undefined ? 'not read' : inTable.map(rsName).join(', ') || 'no real server'}`);
  if (!ended.length) return;
  const entries = await entriesOf(d, ended, rsName);
  say(`the connections that ended, by real server: ${counts(endedByServer)}${entries ? `; ${d.label}'s kernel entries for them now: ${entries}` : ''}`);
  const excused = checks.takenOut.reduce((n, s) => n + (endedByServer[s] ?? 0), 0);
  if (excused) say(`${excused} of them were on ${checks.takenOut.join(', ')}, which ${d.label}'s own checks had taken out of its table (expire_nodest_conn drops a connection whose real server is gone; the client gets a reset)`);
  for (const rs of rss) {
    const ports = ended.filter((e) => e.server === rs.name).map((e) => e.port);
    if (!ports.length || checks.takenOut.includes(rs.name)) continue;
    const [neigh, mac, ss] = await Promise.all([
      d.ns.neigh(rs.address).catch(() => undefined),
      rs.ns.mac().catch(() => undefined),
      rs.ns.exec(['ss', '-Htn', 'state', 'established', '( sport = :80 )'], { via: 'nsenter', check: false }).catch(() => undefined),
    ]);
    const kept = ss ? ports.filter((p) => new RegExp(`192\\.0\\.2\\.50:${p}\\b`).test(ss.stdout)).length : '?';
    say(`no known reason for the ${ports.length} on ${rs.name}: ${d.label}'s ARP entry for it ${neigh ?? 'none'} (its MAC ${mac ?? '?'}); ${rs.name} still holds ${kept} of their sockets`);
  }
}

/** The kernel entries of the ended connections, counted by "STATE -> real server" (or "no entry"). */
async function entriesOf(d: Director, ended: HoldReply['ended'], rsName: (addr: string) => string): Promise<string | undefined> {
  const m = await d.entries().catch(() => undefined);
  if (!m) return undefined;
  const c: Record<string, number> = {};
  for (const e of ended) {
    const k = m.get(e.port);
    const key = k ? `${k.state} -> ${rsName(k.dest)}` : 'no entry';
    c[key] = (c[key] ?? 0) + 1;
  }
  return counts(c);
}

/** Which of the held connections (client ports) `d`'s kernel knows, polled until all or `ms`. */
async function syncedOn(d: Director, ports: readonly number[], ms: number): Promise<Set<number>> {
  const end = Date.now() + ms;
  let known = new Set<number>();
  while (Date.now() < end) {
    known = await d.knows(ports).catch(() => known);
    if (known.size >= ports.length) break;
    await sleep(500);
  }
  return known;
}

/**
 * The connections that ended during a move, split by whether the new master's kernel knew them
 * (`known`: its synced ones): the synced ones by real server, and how many it did not know.
 */
function endedSplit(ended: HoldReply['ended'], known: ReadonlySet<number>): { endedByServer: Record<string, number>; endedUnsynced: number } {
  const endedByServer: Record<string, number> = {};
  let endedUnsynced = 0;
  for (const e of ended) {
    if (known.has(e.port)) endedByServer[e.server] = (endedByServer[e.server] ?? 0) + 1;
    else endedUnsynced++;
  }
  return { endedByServer, endedUnsynced };
}

async function scenario(work: string, topo: Topology): Promise<DemoSummary> {
  step('Building the network inside the guest');
  const c = await buildCluster(topo, work);
  directors.push(c.a, c.b);
  const { a, b, client, lab } = c;
  const names = lab.realServers.map((r) => `${r.name} ${r.address}`).join(', ');
  say(`one segment: client 192.0.2.50, director-a 192.0.2.1 (VRRP priority 150), director-b 192.0.2.2 (priority 100)`);
  say(`real servers ${names}: HTTP, the VIP ${VIP} on lo (direct routing: they answer the client themselves)`);

  step('Starting lvsd on both directors');
  // One after the other: director-a is master before director-b starts (and a node start in the
  // guest is slow enough that two at once only make both later). The waits are long because a
  // machine loaded many times over slows the guest down as much.
  a.start();
  say(`director-a: lvsd run -c ${a.configFile}`);
  const ma = need(await a.wait(isTransition('MASTER'), 180_000), 'director-a did not become MASTER');
  say(`director-a: VRRP ${ma.from} -> MASTER (${ma.reason}): it holds the VIP ${VIP}`);
  b.start();
  say(`director-b: lvsd run -c ${b.configFile}`);
  const bb = need(await b.wait(isTransition('BACKUP'), 180_000), 'director-b did not become BACKUP');
  say(`director-b: VRRP ${bb.from} -> BACKUP (${bb.reason})`);
  need(await a.wait((l) => l.msg === 'sync source' && l.to === 'active', 60_000), 'director-a did not become the sync source');
  say('connection sync (lvsd channel, HMAC-SHA256 with a shared key): director-a reads its kernel\'s connection table every 50 ms and sends new connections to director-b, whose lvsd installs them in its kernel');
  need(await a.wait(reconciled, 60_000), 'director-a did not program IPVS');
  emit({ ev: 'show', title: 'director-a: lvsd ipvs show (the kernel table lvsd programmed; HTTP checks every 0.5 s)', text: await a.ipvsShow() });

  step('1. The client sends 30 requests, each on a new connection');
  const spread = await client.ask<BurstReply>({ cmd: 'burst', n: 30 });
  say(`answers by real server: ${counts(spread.byServer)}; failed: ${spread.failed}${spread.failed ? ` (${counts(spread.errors)})` : ''}`);

  step('2. A real server dies while the client keeps sending requests');
  const rs = lab.realServers[1]!;
  await client.ask({ cmd: 'stream', everyMs: 40 });
  say('the client sends a request on a new connection every 40 ms');
  await sleep(1000);
  const fromA = a.log.length;
  const fromB0 = b.log.length;
  // The host dies: its link goes silent first (a dead host answers nothing, not even a TCP reset),
  // then its processes are killed. The mark comes once the link is surely down: a command in the
  // guest takes up to a second, and a request that reached rs2 inside that window was in flight at
  // its death (its answer may be lost with the link), not sent after it.
  const deathAt = Date.now();
  await rs.ns.ip('link', 'set', 'eth0', 'down');
  await client.ask({ cmd: 'mark' });
  rs.ns.crash();
  say(`${rs.name}'s host dies: its link cut, every process killed`);
  const down = await a.wait(rsEvent(rs.address, 'down'), 60_000, fromA);
  const removed = down ? await a.wait(reconciled, 10_000, a.log.indexOf(down)) : undefined;
  const removedAfterMs = removed ? removed.time - deathAt : undefined;
  say(down ? `director-a: HTTP check of ${rs.name} failed (${String(down.reason ?? '')}); ${rs.name} removed from the kernel table ${secs(removedAfterMs)} after its death` : `director-a did not notice ${rs.name}'s death`);
  emit({ ev: 'show', title: `director-a: lvsd ipvs show (${rs.name} is gone)`, text: await a.ipvsShow() });
  await sleep(1000);
  const fromA2 = a.log.length;
  await rs.ns.ip('link', 'set', 'eth0', 'up');
  const backAt = Date.now();
  await rs.start();
  say(`${rs.name}'s host is back (link up, HTTP server started)`);
  const up = await a.wait(rsEvent(rs.address, 'up'), 60_000, fromA2);
  const readded = up ? await a.wait(reconciled, 10_000, a.log.indexOf(up)) : undefined;
  const readdedAfterMs = readded ? readded.time - backAt : undefined;
  say(up ? `director-a: ${rs.name} passes its check again and is back in the table ${secs(readdedAfterMs)} after its return` : `${rs.name} did not come back into the table`);
  // director-b checks on its own: the next steps need rs2 in both tables (sync installs a
  // connection only to a real server the receiving kernel has).
  await b.wait(rsEvent(rs.address, 'up'), 60_000, b.log.findIndex((l, i) => i >= fromB0 && rsEvent(rs.address, 'down')(l)) + 1 || fromB0);
  await sleep(1500);
  const st = await client.ask<StreamReply>({ cmd: 'stop-stream' });
  const inFlight = st.failedStartedBeforeMark;
  say(`while ${rs.name} was dying and returning the client sent ${st.sent} requests: ${st.failed} failed${st.failed ? ` (${counts(st.errors)}${inFlight ? `; ${inFlight} of them already in flight when ${rs.name} died` : ''})` : ''}, slowest ${secs(st.slowestMs)}; by server: ${counts(st.byServer)}`);
  if (st.slowestMs > 900) say('(a slow request is a SYN sent to the dead server just before its removal: the client\'s TCP retried it and the director, with expire_nodest_conn, sent the retry to a live server)');

  step('3. The client opens 24 long-lived connections');
  const fromB3 = b.log.length;
  const { ports } = await client.ask<{ ports: number[] }>({ cmd: 'hold', n: 24, everyMs: 300 });
  // Until every connection has had its first answer (each then knows its real server).
  let h0 = await client.ask<HoldReply>({ cmd: 'report', resetWait: true });
  for (let i = 0; i < 60 && Object.values(h0.byServer).reduce((x, y) => x + y, 0) < h0.open; i++) {
    await sleep(500);
    h0 = await client.ask<HoldReply>({ cmd: 'report', resetWait: true });
  }
  say(`${h0.open} keep-alive connections open, each sending a request every 0.3 s; by server: ${counts(h0.byServer)}`);
  const syncedB = await syncedOn(b, ports, 30_000);
  say(`director-b's kernel knows ${syncedB.size} of the ${ports.length} (ipvsadm -Lnc), sent by director-a's lvsd`);

  step('4. The master director crashes');
  const fromB = b.log.length;
  const crashAt = Date.now();
  a.ns.crash();
  await a.ns.ip('link', 'set', 'eth0', 'down');
  say('director-a: SIGKILL to every process and its link cut — a host that dies, no goodbye advert');
  const mb = await b.wait(isTransition('MASTER'), 60_000, fromB);
  const bTable = mb ? await b.kernelRealServers().catch(() => undefined) : undefined;
  const failoverMs = mb ? mb.time - crashAt : undefined;
  say(mb ? `director-b: VRRP BACKUP -> MASTER (${mb.reason}) ${secs(failoverMs)} after the crash; it takes the VIP and sends gratuitous ARP` : 'director-b did not take over');
  await sleep(2500);
  const h1 = await client.ask<HoldReply>({ cmd: 'report', resetWait: true });
  const mac = await b.ns.mac().catch(() => '?');
  const neigh = await lab.client.neigh(VIP).catch(() => undefined);
  say(`the client's ARP entry for ${VIP}: ${neigh ?? 'none'}${neigh === mac ? ' = director-b (moved by its gratuitous ARP)' : ''}`);
  say(`long-lived connections: ${h1.open} of ${h0.open} carry on${h1.broken - h0.broken ? `, ${h1.broken - h0.broken} ended (${counts(diffCounts(h1.errors, h0.errors))})` : ''}; longest wait for an answer ${secs(h1.longestWaitMs)}`);
  const endedB = diffCounts(h1.brokenByServer, h0.brokenByServer);
  const bChecks = checksSince(b, fromB3, { at: crashAt, what: 'the crash' }, bTable, lab.realServers);
  const endedFo = h1.ended.filter((e) => !h0.ended.some((x) => x.port === e.port));
  await tellMove(b, 'since step 3', bChecks, bTable, lab.realServers, endedB, endedFo);
  emit({ ev: 'show', title: 'director-b: lvsd ipvs show (the new master)', text: await b.ipvsShow() });
  const failover: Move = { from: 'director-a', to: 'director-b', timedFrom: 'the crash', held: h0.open, kept: h1.open, errors: diffCounts(h1.errors, h0.errors), ...endedSplit(endedFo, syncedB), takenOut: bChecks.takenOut, longestWaitMs: h1.longestWaitMs, syncedBefore: syncedB.size };
  if (failoverMs !== undefined) failover.vipMovedAfterMs = failoverMs;

  step('5. director-a comes back (rebooted: empty kernel tables) and takes over again');
  await c.reboot(a);
  const fromA3 = a.log.length;
  const fromB2 = b.log.length;
  a.start();
  say('director-a: lvsd run starts; before its election it asks director-b for its whole connection table');
  const got = await a.wait((l) => l.msg === 'peer table received' || l.msg === 'no active peer answered the resync request', 180_000, fromA3);
  if (got) say(got.msg === 'peer table received' ? `director-a: director-b's whole table received after ${secs(typeof got.ms === 'number' ? got.ms : undefined)} — now its election starts (priority 150 > 100)` : 'director-a: no answer to its resync request');
  // Timed from its election's start (INIT -> BACKUP), not from the process start: a node start in
  // the guest takes from one second to a minute, depending on how loaded the machine is.
  const ba2 = await a.wait(isTransition('BACKUP'), 180_000, fromA3);
  const ma2 = await a.wait(isTransition('MASTER'), 180_000, fromA3);
  // What director-a's kernel held when it took over: read at once (its own checks may take a real
  // server out, and its connections with it, a moment later).
  const syncedA = await a.knows(ports).catch(() => undefined);
  const aTable = ma2 ? await a.kernelRealServers().catch(() => undefined) : undefined;
  const failbackMs = ma2 && ba2 ? ma2.time - ba2.time : undefined;
  say(ma2 ? `director-a: VRRP INIT -> BACKUP, then BACKUP -> MASTER (${ma2.reason}) ${secs(failbackMs)} later; it takes the VIP back` : 'director-a did not take over again');
  const bb2 = await b.wait(isTransition('BACKUP'), 30_000, fromB2);
  if (bb2) say(`director-b: VRRP MASTER -> BACKUP (${bb2.reason})`);
  await sleep(2500);
  const h2 = await client.ask<HoldReply>({ cmd: 'report', resetWait: true });
  say(`long-lived connections: ${h2.open} of ${h1.open} carry on${h2.broken - h1.broken ? `, ${h2.broken - h1.broken} ended (${counts(diffCounts(h2.errors, h1.errors))})` : ''}; director-a's kernel knew ${syncedA?.size ?? '?'} of them when it took over`);
  const endedA = diffCounts(h2.brokenByServer, h1.brokenByServer);
  const aChecks = checksSince(a, fromA3, { at: ma2?.time ?? Date.now(), what: 'its takeover' }, aTable, lab.realServers);
  const endedFb = h2.ended.filter((e) => !h1.ended.some((x) => x.port === e.port));
  await tellMove(a, 'since its start', aChecks, aTable, lab.realServers, endedA, endedFb);
  const failback: Move = { from: 'director-b', to: 'director-a', timedFrom: 'its election started', held: h1.open, kept: h2.open, errors: diffCounts(h2.errors, h1.errors), ...endedSplit(endedFb, syncedA ?? new Set()), takenOut: aChecks.takenOut, longestWaitMs: h2.longestWaitMs };
  if (failbackMs !== undefined) failback.vipMovedAfterMs = failbackMs;
  if (syncedA !== undefined) failback.syncedBefore = syncedA.size;
  const after = await client.ask<BurstReply>({ cmd: 'burst', n: 15 });
  say(`15 new requests after the failback: ${counts(after.byServer)}; failed: ${after.failed}`);
  await client.ask({ cmd: 'quit' }, 2000).catch(() => undefined);

  return {
    spread: { requests: 30, failed: spread.failed, byServer: spread.byServer },
    realServer: {
      name: rs.name,
      requests: st.sent,
      failed: st.failed,
      failedInFlight: inFlight,
      slowestMs: st.slowestMs,
      ...(removedAfterMs !== undefined ? { removedAfterMs } : {}),
      ...(readdedAfterMs !== undefined ? { readdedAfterMs } : {}),
    },
    failover,
    failback,
    syncMode: 'lvsd',
    after: { requests: 15, failed: after.failed },
  };
}

async function main(): Promise<number> {
  if (process.env.LVSD_IN_LAB !== '1') {
    process.stderr.write('this is the guest side of `lvsd demo`; run `lvsd demo`\n');
    return 2;
  }
  const work = mkdtempSync(join(tmpdir(), 'lvsd-demo-'));
  const topo = new Topology('demo');
  try {
    const summary = await scenario(work, topo);
    emit({ ev: 'summary', summary, totalMs: Date.now() - t0 });
    return 0;
  } catch (e) {
    emit({ ev: 'fail', text: e instanceof Stop ? e.message : String((e as Error).stack ?? e) });
    for (const d of directors) {
      process.stderr.write(`--- ${d.label}: last lvsd log lines\n${d.log.slice(-12).map((l) => JSON.stringify(l)).join('\n')}\n`);
    }
    return 1;
  } finally {
    await topo.destroy();
    rmSync(work, { recursive: true, force: true });
  }
}

process.exitCode = await main();
