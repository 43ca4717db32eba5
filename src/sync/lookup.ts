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
const hex = (s: string | undefined) => (s ? Buffer.from(parseIp(s)?.bytes ?? []).toString('hex') : '');

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
    const d = Buffer.from(e.daddr).toString('hex');
    const v = Buffer.from(e.vaddr).toString('hex');
    const direct = byTuple.get(`${e.protocol}|${v}|${e.vport}|${d}`) ?? byTuple.get(`${e.protocol}|${v}|0|${d}`);
    if (direct) return direct;
    const marks = byDest.get(d);
    return marks && marks.length === 1 ? marks[0] : undefined;
  };
}
