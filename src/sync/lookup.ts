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
 * An address as a map key: IPv4 as its 32-bit value, without a Buffer (this runs twice per entry of
 * a resync answer: Buffer + hex for 100,000 entries was most of the answer's encoding).
 */
const addrKey = (a: Uint8Array): string => (a.length === 4 ? String(((a[0]! << 24) | (a[1]! << 16) | (a[2]! << 8) | a[3]!) >>> 0) : Buffer.from(a).toString('hex'));
const hex = (s: string | undefined) => (s ? addrKey(parseIp(s)?.bytes ?? new Uint8Array(0)) : '');

/** The declared virtual servers (plain data: also posted to the table worker). */
export type DeclaredServices = ClusterConfig['virtual_servers'];

export function serviceLookup(cfg: { readonly virtual_servers: DeclaredServices }): ServiceLookup {
  const byTuple = new Map<string, ServiceFacts>();
  const byDest = new Map<string, ServiceFacts[]>();
  for (const vs of cfg.virtual_servers) {
    const persistence = vs.persistence?.timeout ?? 0;
    for (const rs of vs.real_servers) {
      const facts: ServiceFacts = { forwarding: rs.forwarding, fwmark: vs.fwmark ?? 0, persistence };
      if (vs.fwmark !== undefined) {
        const k = hex(rs.address);
        byDest.set(k, [...(byDest.get(k) ?? []), facts]);
      } else {
        byTuple.set(`${PROTO[vs.protocol]}|${hex(vs.address)}|${vs.port}|${hex(rs.address)}`, facts);
      }
    }
  }
  return (e: ConnEntry) => {
    const d = addrKey(e.daddr);
    const v = addrKey(e.vaddr);
    const direct = byTuple.get(`${e.protocol}|${v}|${e.vport}|${d}`) ?? byTuple.get(`${e.protocol}|${v}|0|${d}`);
    if (direct) return direct;
    const marks = byDest.get(d);
    return marks && marks.length === 1 ? marks[0] : undefined;
  };
}
