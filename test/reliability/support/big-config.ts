/**
 * Large configurations written twice from one description: as lvsd YAML and as the equivalent
 * keepalived.conf, so the reliability test and bench/config-load.ts load the same thing in both.
 * Addresses are TEST-NET only. A "typo" gives every real server one misspelt key (`wieght`): one
 * error per real server in either program ("unknown key" / "Unknown keyword").
 */
export interface BigSpec {
  /** virtual servers */
  readonly services: number;
  /** real servers per virtual server */
  readonly realServers: number;
  /** one misspelt key per real server */
  readonly typo: boolean;
  /** unknown keys in the VRRP instance (`bogus_N: N`) */
  readonly unknownKeys?: number;
}

const vsAddr = (v: number) => ({ address: `192.0.2.${1 + (v % 250)}`, port: 1 + Math.floor(v / 250) });
const rsAddr = (r: number) => `198.51.100.${1 + (r % 250)}`;

export function bigLvsdYaml(s: BigSpec): string {
  const out = ['global:', '  router_id: big', 'vrrp_instances:', '  - name: VI_1', '    interface: eth0', '    virtual_router_id: 42', '    priority: 150', '    version: 3', '    advert_interval: 1', '    virtual_addresses: [192.0.2.42/24]'];
  for (let k = 0; k < (s.unknownKeys ?? 0); k++) out.push(`    bogus_${k}: ${k}`);
  if (s.services > 0) out.push('virtual_servers:');
  for (let v = 0; v < s.services; v++) {
    const { address, port } = vsAddr(v);
    out.push(`  - address: ${address}`, `    port: ${port}`, '    protocol: tcp', '    scheduler: wrr', '    forwarding: dr', '    real_servers:');
    for (let r = 0; r < s.realServers; r++) {
      out.push(`      - address: ${rsAddr(r)}`, `        port: ${port}`, '        weight: 1');
      if (s.typo) out.push('        wieght: 1');
      out.push('        checks:', '          - type: tcp', '            timeout: 1');
    }
  }
  return out.join('\n') + '\n';
}

export function bigKeepalivedConf(s: BigSpec): string {
  const out = ['global_defs {', '  router_id big', '}', 'vrrp_instance VI_1 {', '  state BACKUP', '  interface eth0', '  virtual_router_id 42', '  priority 150', '  version 3', '  advert_int 1'];
  for (let k = 0; k < (s.unknownKeys ?? 0); k++) out.push(`  bogus_${k} ${k}`);
  out.push('  virtual_ipaddress {', '    192.0.2.42/24', '  }', '}');
  for (let v = 0; v < s.services; v++) {
    const { address, port } = vsAddr(v);
    out.push(`virtual_server ${address} ${port} {`, '  protocol TCP', '  lb_algo wrr', '  lb_kind DR');
    for (let r = 0; r < s.realServers; r++) {
      out.push(`  real_server ${rsAddr(r)} ${port} {`, '    weight 1');
      if (s.typo) out.push('    wieght 1');
      out.push('    TCP_CHECK {', '      connect_timeout 1', '    }', '  }');
    }
    out.push('}');
  }
  return out.join('\n') + '\n';
}

/** The issue's "45,000-line invalid file": 320 services x 20 real servers, each with a misspelt key. */
export const ISSUE_45K: BigSpec = { services: 320, realServers: 20, typo: true };
