/**
 * Remote hands for the pair benches' driver (bench/support/sync-pair-driver.ts and its resync phase,
 * sync-pair-resync.ts), run in guest c: commands and CPU counters in the directors' guests through
 * their lab agents (src/lab/pair-agent.ts). Every wait is bounded.
 */
import { agent } from '../../src/lab/pair-agent.js';
import { setTimeout as sleep } from 'node:timers/promises';

/** Runs a command in a guest to its end (the agent's /exec, at most 30 s); its stdout. */
export const exec = async (host: string, argv: string[]) => (await agent<{ code: number; stdout: string; stderr: string }>(host, '/exec', { argv })).stdout;

/**
 * Until fn() answers, at most ms (polled every step ms). Whatever fn throws is retried (an agent
 * busy in a loaded guest answers late or not at all): the wait ends in a timeout, not at the error.
 */
export async function until<T>(fn: () => Promise<T | undefined>, what: string, ms: number, step = 1000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(step);
  }
}

export type Cpu = { lvsd: number; user: number; sys: number; threads: Record<string, [number, number]>; kthreads: number; busy: number; parts: [number, number, number]; agent: number; at: number };
/**
 * CPU seconds (USER_HZ 100) in a director's guest: its lvsd (user + system, and per thread:
 * "main" or "NAME/TID" → [user, system]), its ipvs-* kernel threads, the whole guest busy and
 * its parts (/proc/stat: user + nice, system, irq + softirq: the stream's datagrams on lo are softirq work).
 */
export async function cpu(host: string, pid: number): Promise<Cpu> {
  const text = await exec(host, ['sh', '-c', `head -1 /proc/stat; echo; cat /proc/${pid}/stat; echo; cat /proc/[0-9]*/stat 2>/dev/null | grep '(ipvs-' ; echo; cat /proc/${pid}/task/*/stat 2>/dev/null | sed 's/^/T /'; echo; sed 's/^/A /' /proc/$PPID/stat; true`]);
  const [statLine, ...rest] = text.split('\n');
  const f = statLine!.trim().split(/\s+/).slice(1).map(Number);
  const busy = (f.reduce((x, y) => x + y, 0) - (f[3] ?? 0) - (f[4] ?? 0)) / 100;
  const us = (l: string): [number, number] => {
    const g = l.slice(l.lastIndexOf(')') + 2).split(' ');
    return [Number(g[11]) / 100, Number(g[12]) / 100];
  };
  const ticks = (l: string) => us(l)[0] + us(l)[1];
  const procs = rest.filter((l) => l.includes(') ') && !l.startsWith('T ') && !l.startsWith('A '));
  // The pair agent's own CPU and its finished children's (the bench's processes in the guest: exec'd
  // commands, the stream socket's watch, the poller): the guest's busy time that is neither lvsd nor the kernel's.
  const agentLine = rest.find((l) => l.startsWith('A ') && l.includes(') '));
  const ag = agentLine ? agentLine.slice(agentLine.lastIndexOf(')') + 2).split(' ').slice(11, 15).reduce((t, x) => t + Number(x), 0) / 100 : NaN;
  const own = procs.find((l) => l.startsWith(`${pid} (`));
  const threads: Record<string, [number, number]> = {};
  for (const l of rest.filter((x) => x.startsWith('T ') && x.includes(') '))) {
    const tid = Number(l.slice(2, l.indexOf(' (')));
    threads[tid === pid ? 'main' : `${l.slice(l.indexOf('(') + 1, l.lastIndexOf(')'))}/${tid}`] = us(l);
  }
  const [user, sys] = own ? us(own) : [NaN, NaN];
  const parts: [number, number, number] = [((f[0] ?? 0) + (f[1] ?? 0)) / 100, (f[2] ?? 0) / 100, ((f[5] ?? 0) + (f[6] ?? 0)) / 100];
  return { lvsd: own ? ticks(own) : NaN, user, sys, threads, kthreads: procs.filter((l) => l.includes('(ipvs-')).reduce((s, l) => s + ticks(l), 0), busy, parts, agent: ag, at: Date.now() };
}

/**
 * Runs a background command in a guest to its end (at most ms); its stdout. A failed command is
 * an error at once (until() would retry a throw until its timeout).
 */
export async function runIn(host: string, argv: string[], ms: number): Promise<string> {
  const id = (await agent<{ id: number }>(host, '/spawn', { argv })).id;
  const o = await until(async () => {
    const x = await agent<{ stdout: string; stderr: string; code: number | null }>(host, '/output', { id });
    return x.code === null ? undefined : x;
  }, `${argv[1]} in ${host}`, ms, 500);
  if (o.code !== 0) throw new Error(`${argv.join(' ')} in ${host}: exit ${o.code}: ${o.stderr.slice(-1500)}`);
  return o.stdout;
}

/** UDP datagrams a guest's kernel dropped for full receive buffers (/proc/net/snmp, Udp RcvbufErrors). */
export async function rcvbufErrors(host: string): Promise<number> {
  const lines = (await exec(host, ['cat', '/proc/net/snmp'])).split('\n').filter((l) => l.startsWith('Udp:'));
  return Number(lines[1]!.split(/\s+/)[lines[0]!.split(/\s+/).indexOf('RcvbufErrors')]);
}
