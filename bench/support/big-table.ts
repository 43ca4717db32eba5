/**
 * A large IPVS table for the benches: `n` NAT virtual servers of `d` real servers each, as a config
 * model (built directly, no YAML) and as `ipvsadm -R` input for the same table. Addresses are
 * TEST-NET (192.0.2.0/24 VIPs, 198.51.100.0/24 real servers); nothing leaves the lab guest.
 */
import type { ClusterConfig, RealServerConfig, VirtualServerConfig } from '../../src/config/model.js';
import { DEFAULT_POLICY } from '../../src/config/model.js';
import type { IpvsStats, IpvsTable } from '../../src/ipvs/model.js';

const PORTS_PER_VIP = 40;

export function vip(i: number): { addr: string; port: number } {
  return { addr: `192.0.2.${1 + Math.floor(i / PORTS_PER_VIP)}`, port: 1000 + (i % PORTS_PER_VIP) };
}

export function bigConfig(n: number, d: number): ClusterConfig {
  if (n > 254 * PORTS_PER_VIP) throw new Error(`at most ${254 * PORTS_PER_VIP} services`);
  const vss: VirtualServerConfig[] = [];
  for (let i = 0; i < n; i++) {
    const { addr, port } = vip(i);
    const rss: RealServerConfig[] = [];
    for (let j = 0; j < d; j++) {
      rss.push({ key: `198.51.100.${1 + j}:80`, address: `198.51.100.${1 + j}`, family: 4, port: 80, weight: 1, forwarding: 'nat', upper_threshold: 0, lower_threshold: 0, checks: [], policy: DEFAULT_POLICY });
    }
    vss.push({ key: `tcp/${addr}:${port}`, name: `vs${i}`, family: 4, address: addr, port, protocol: 'tcp', scheduler: 'wrr', scheduler_flags: [], one_packet: false, forwarding: 'nat', quorum: 1, hysteresis: 0, real_servers: rss });
  }
  return { global: { router_id: 'bench', ipvs: { exclusive: false, drift_check_interval: 0 } }, vrrp_scripts: [], vrrp_instances: [], vrrp_sync_groups: [], virtual_servers: vss } as unknown as ClusterConfig;
}

export function restoreText(n: number, d: number): string {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const { addr, port } = vip(i);
    out.push(`-A -t ${addr}:${port} -s wrr`);
    for (let j = 0; j < d; j++) out.push(`-a -t ${addr}:${port} -r 198.51.100.${1 + j}:80 -m -w 1`);
  }
  return out.join('\n') + '\n';
}

/** The kernel table bigConfig(n, d) programs, with made-up counters (host runs of bench/scrape.ts). */
export function bigTable(n: number, d: number): IpvsTable {
  const stats = (k: number): IpvsStats => ({ conns: k, inpkts: 3 * k, outpkts: 2 * k, inbytes: BigInt(300 * k), outbytes: BigInt(200 * k), cps: 0, inpps: 0, outpps: 0, inbps: 0, outbps: 0 });
  return bigConfig(n, d).virtual_servers.map((v, i) => ({
    service: { family: 4, protocol: 'tcp', addr: v.address!, port: v.port, fwmark: 0, scheduler: 'wrr', flags: 0, timeout: 0, netmask: 0xffffffff, pe_name: '', stats: stats(i) },
    dests: v.real_servers.map((r, j) => ({ addr: r.address, port: r.port, family: 4 as const, fwd: 'nat' as const, weight: 1, u_threshold: 0, l_threshold: 0, tun_type: 'ipip' as const, tun_port: 0, tun_flags: 0, active_conns: j, inact_conns: 1, persist_conns: 0, stats: stats(j) })),
  }));
}
