/**
 * Shared pieces of the "VRRP under attack" reliability tests: directors (lvsd, keepalived) and a
 * hostile host on one bridge, the hostile host's forged packets (forge-cli.ts), and counters read
 * from a director's /metrics.
 */
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Netns } from '../../../src/lab/netns.js';
import { apiGet } from '../../election-net/support/peers.js';
import { parsePrometheus, type Sample } from '../../support/prom.js';
import { waitFor } from '../../support/proc.js';

const here = dirname(fileURLToPath(import.meta.url));
const forgeCli = join(here, 'forge-cli.js');

export const VIP = '192.0.2.42';
export const A = '192.0.2.1';
export const B = '192.0.2.2';
export const X = '192.0.2.9';

export interface ForgeSpec {
  class: 'advert' | 'badsum';
  family?: 4 | 6;
  /** Addresses the advert carries (default [VIP]). */
  vips?: string[];
  version: 2 | 3;
  priority: number;
  intervalMs: number;
  pps: number;
  count: number;
  maxMs: number;
  vrid?: number;
  to?: string;
  password?: string;
  ah?: { seq: number };
}

/** Send forged packets from `ns` (bounded by count and time); resolves with what was sent. */
export async function forge(ns: Netns, s: ForgeSpec): Promise<{ sent: number; seconds: number }> {
  const spec = { ifname: 'eth0', vrid: 42, vips: [VIP], ...s };
  const r = await ns.exec([process.execPath, forgeCli, JSON.stringify(spec)], { timeoutMs: s.maxMs + 20_000 });
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { sent: number; seconds: number };
}

/** A director's metrics (lvsd API on 127.0.0.1:9650 in its namespace). */
export async function metrics(ns: Netns): Promise<Sample[]> {
  return parsePrometheus(await apiGet(ns, '/metrics'));
}

/** Sum of a metric's samples whose labels include `labels` (0 when none). */
export function total(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples.filter((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v)).reduce((s, x) => s + x.value, 0);
}

export async function isMaster(ns: Netns): Promise<boolean> {
  return total(await metrics(ns), 'lvsd_vrrp_state', { state: 'MASTER' }) === 1;
}

/** The kernel's drop count of the raw VRRP sockets in a namespace (/proc/net/raw, last column): receive-buffer overflows. */
export async function rawSocketDrops(ns: Netns): Promise<number> {
  const r = await ns.exec(['cat', '/proc/net/raw']);
  return r.stdout
    .split('\n')
    .slice(1)
    .map((l) => l.trim().split(/\s+/))
    // local address column is ADDR:PROTO in hex; 0070 = protocol 112
    .filter((f) => f.length > 12 && f[1]!.endsWith(':0070'))
    .reduce((s, f) => s + Number(f.at(-1)), 0);
}

/**
 * Until lvsd in `ns` has sent (its role MASTER) or accepted (BACKUP) `n` more adverts than when
 * called: a "nothing moved" window measured in the protocol's own events instead of a sleep. Adverts
 * leave at least one interval apart, so n of them span at least n - 1 intervals of wall time however
 * loaded the machine (longer when late, never shorter), and they prove the adverts kept flowing.
 */
export async function advertsPass(ns: Netns, n: number, how: 'sent' | 'received', timeoutMs = 60_000): Promise<void> {
  const name = how === 'sent' ? 'lvsd_vrrp_adverts_sent_total' : 'lvsd_vrrp_adverts_received_total';
  const start = total(await metrics(ns), name);
  await waitFor(async () => total(await metrics(ns), name) >= start + n, `lvsd to have ${how} ${n} more adverts (from ${start})`, timeoutMs, 200);
}
