/**
 * Service facts for a connection of the kernel's table, from the declared virtual servers (pure):
 * forwarding method (the real server's override first), fwmark and persistence timeout. /proc does
 * not show them; the peer's kernel needs the fwmark to find a fwmark service's real server and the
 * persistence timeout for templates.
 */
import { parseIp } from '../core/address.js';
import type { ClusterConfig } from '../config/index.js';
import type { ConnEntry, ServiceFacts, ServiceLookup } from './conntable.js';

const PROTO = { tcp: 6, udp: 17, sctp: 132 } as const;
/**
 * An address as a map key: IPv4 as its 32-bit value, IPv6 as hex. This runs twice per entry of
 * every read's changes and of a resync answer; with string keys built per entry (Buffer + hex,
 * then a template) the lookup was most of encoding a 100,000-entry answer (~250 ms of ~350 ms on
 * the dev host, ~4 s in the lab guest); numbers in nested maps take ~10 ms.
 */
const addrKey = (a: Uint8Array): number | string => (a.length === 4 ? ((a[0]! << 24) | (a[1]! << 16) | (a[2]! << 8) | a[3]!) >>> 0 : Buffer.from(a).toString('hex'));
const keyOf = (s: string | undefined): number | string => (s ? addrKey(parseIp(s)?.bytes ?? new Uint8Array(0)) : '');
/** Protocol and port in one number. */
const protoPort = (protocol: number, port: number) => protocol * 65536 + port;

/** The declared virtual servers (plain data: also posted to the table worker). */
export type DeclaredServices = ClusterConfig['virtual_servers'];

export function serviceLookup(cfg: { readonly virtual_servers: DeclaredServices }): ServiceLookup {
  /** virtual address → protocol and port → real server address → facts. */
  const byTuple = new Map<number | string, Map<number, Map<number | string, ServiceFacts>>>();
  const byDest = new Map<number | string, ServiceFacts[]>();
  for (const vs of cfg.virtual_servers) {
    const persistence = vs.persistence?.timeout ?? 0;
    for (const rs of vs.real_servers) {
      const facts: ServiceFacts = { forwarding: rs.forwarding, fwmark: vs.fwmark ?? 0, persistence };
      if (vs.fwmark !== undefined) {
        const k = keyOf(rs.address);
        byDest.set(k, [...(byDest.get(k) ?? []), facts]);
      } else {
        const v = keyOf(vs.address);
        const ports = byTuple.get(v) ?? new Map<number, Map<number | string, ServiceFacts>>();
        byTuple.set(v, ports);
        const pp = protoPort(PROTO[vs.protocol], vs.port ?? 0);
        const dests = ports.get(pp) ?? new Map<number | string, ServiceFacts>();
        ports.set(pp, dests);
        dests.set(keyOf(rs.address), facts);
      }
    }
  }
  return (e: ConnEntry) => {
    const d = addrKey(e.daddr);
    const ports = byTuple.get(addrKey(e.vaddr));
    const direct = ports && (ports.get(protoPort(e.protocol, e.vport))?.get(d) ?? ports.get(protoPort(e.protocol, 0))?.get(d));
    if (direct) return direct;
    const marks = byDest.get(d);
    return marks && marks.length === 1 ? marks[0] : undefined;
  };
}
