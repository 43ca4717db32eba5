/**
 * Counting a large IPVS connection table in a lab namespace without reading it, for bench/sync.ts
 * and test/lab/sync-resync-large.test.ts.
 *
 * Reading /proc/net/ip_vs_conn is O(n²) in the kernel (seq_file resumes every ~4 KB read() by walking
 * the connection hash from bucket 0 to the n-th entry) and the hash is one for all namespaces of the
 * guest, so a poll of a 100,000-entry table costs tens of seconds of the guest's one CPU: a poller
 * doing that every 250 ms would measure itself. The kernel counts the connections bound to each real
 * server instead (ip_vs_bind_dest: ActiveConn for a connection without IP_VS_CONN_F_INACTIVE, as the
 * injected ESTABLISHED ones and the records lvsd syncs for them), read over netlink by `ipvsadm -Ln`
 * in O(services); the sync receiver's kernel binds synced connections the same way (ip_vs_proc_conn).
 * One read of the table at the end checks the entries themselves (distinctInjected).
 */
import type { Netns } from '../../src/lab/netns.js';

/** ActiveConn of real server `rs` (ADDR:PORT) under TCP virtual service `vs`, or 0 when absent. */
export async function activeConns(ns: Netns, vs: string, rs: string): Promise<number> {
  return (await destConns(ns, vs, rs)).active;
}

/**
 * ActiveConn and InActConn of real server `rs` under TCP virtual service `vs` (0 when absent). A
 * connection the kernel holds but bound to no real server (its service or real server did not
 * exist when it was installed: ip_vs_proc_conn leaves it unbound) is in neither.
 */
export async function destConns(ns: Netns, vs: string, rs: string): Promise<{ active: number; inactive: number }> {
  return parseDestConns((await ns.exec(['ipvsadm', '-Ln', '-t', vs], { via: 'nsenter', check: false })).stdout, rs);
}

/** ActiveConn and InActConn of real server `rs` in the output of `ipvsadm -Ln -t VS` (0 when absent): for a guest reached otherwise (the pair bench's agents). */
export function parseDestConns(out: string, rs: string): { active: number; inactive: number } {
  for (const l of out.split('\n')) {
    const f = l.trim().split(/\s+/);
    if (f[0] === '->' && f[1] === rs) return { active: Number(f[4]) || 0, inactive: Number(f[5]) || 0 };
  }
  return { active: 0, inactive: 0 };
}

/**
 * One read of the namespace's table: lines of injected entries (clients 203.0.113.0/24: "CB0071"),
 * and distinct ones. Lines repeat when the table changes during the read (seq_file resumes at a
 * position, see above): the two differ then.
 */
export async function distinctInjected(ns: Netns): Promise<{ lines: number; distinct: number }> {
  const out = (await ns.exec(['cat', '/proc/net/ip_vs_conn'], { via: 'nsenter', check: false })).stdout;
  const lines = out.split('\n').filter((l) => l.startsWith('TCP CB0071'));
  // Client address and port identify an injected entry (one service, one real server).
  return { lines: lines.length, distinct: new Set(lines.map((l) => l.slice(4, 17))).size };
}

/** Connections in the guest's IPVS hash, all namespaces (the ip_vs_conn slab), or undefined if not shown. */
export function guestConnSlab(slabinfo: string): number | undefined {
  const l = slabinfo.split('\n').find((x) => x.startsWith('ip_vs_conn '));
  return l ? Number(l.split(/\s+/)[1]) : undefined;
}
