/**
 * A small table with every case the table text treats apart (test/ipvs/table-metrics.test.ts, the
 * golden text test/fixtures/ipvs/table-text.prom): IPv4, IPv6 and fwmark services, a service the
 * configuration does not declare, a real server added by hand, one with weight 0, counters missing,
 * byte counters above 2^53 and at 2^64 - 1, counters above 2^32, names that need escaping.
 */
import type { DeclaredService } from '../../src/ipvs/table-text.js';
import { makeDest, makeService, type IpvsStats, type IpvsTable } from '../../src/ipvs/model.js';

const stats = (k: number, bytes = BigInt(100 * k)): IpvsStats => ({ conns: k, inpkts: 2 * k, outpkts: 3 * k, inbytes: bytes, outbytes: bytes + 1n, cps: 1, inpps: 2, outpps: 3, inbps: 4, outbps: 5 });

export function oddTable(): IpvsTable {
  return [
    {
      service: { ...makeService({ protocol: 'tcp', addr: '192.0.2.10', port: 80, scheduler: 'wrr' }), stats: stats(7) },
      dests: [
        { ...makeDest({ addr: '198.51.100.1', port: 80, weight: 0 }), active_conns: 3, inact_conns: 4, persist_conns: 0, stats: stats(11) },
        { ...makeDest({ addr: '198.51.100.2', port: 8080, weight: 5 }), active_conns: 0, inact_conns: 1, persist_conns: 0, stats: stats(0x1_0000_0005, 2n ** 53n + 7n) },
        // Added by hand: no configured weight; the kernel sent no counters.
        makeDest({ addr: '198.51.100.99', port: 80, weight: 1 }),
      ],
    },
    {
      service: { ...makeService({ protocol: 'udp', addr: '2001:db8::10', port: 53 }), stats: stats(2, 2n ** 64n - 2n) },
      dests: [{ ...makeDest({ addr: '2001:db8::1', port: 53, weight: 2 }), active_conns: 1, inact_conns: 0, persist_conns: 0, stats: stats(1, 2n ** 64n - 2n) }],
    },
    // Not declared: no series.
    { service: { ...makeService({ protocol: 'tcp', addr: '192.0.2.11', port: 443 }), stats: stats(9) }, dests: [{ ...makeDest({ addr: '198.51.100.3', port: 443 }), stats: stats(9) }] },
    // No counters from the kernel, no real servers.
    { service: makeService({ protocol: 'sctp', addr: '192.0.2.12', port: 9 }), dests: [] },
    {
      service: { ...makeService({ protocol: 'tcp', fwmark: 5 }), stats: stats(3) },
      dests: [{ ...makeDest({ addr: '198.51.100.4', port: 0, fwd: 'dr', weight: 100 }), active_conns: 12, inact_conns: 34, persist_conns: 0, stats: stats(4) }],
    },
  ];
}

export function oddDeclared(): DeclaredService[] {
  return [
    { key: 'tcp/192.0.2.10:80', name: 'web "front"\\main\nline', rs: ['198.51.100.1:80', '198.51.100.2:8080', '198.51.100.5:80'], weights: [1, 5, 3] },
    { key: 'udp/[2001:db8::10]:53', name: 'dns', rs: ['[2001:db8::1]:53'], weights: [2] },
    { key: 'sctp/192.0.2.12:9', name: 'empty', rs: [], weights: [] },
    { key: 'fwm/5/ipv4', name: 'mark', rs: ['198.51.100.4:0'], weights: [100] },
    { key: 'tcp/192.0.2.99:80', name: 'absent', rs: ['198.51.100.1:80'], weights: [1] },
  ];
}
