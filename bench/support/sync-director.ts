/**
 * The configuration of one lab director running a sync channel, shared by the sync benches and lab
 * tests (bench/sync*.ts, test/lab/sync-{resync-large,kstream,switch}.test.ts) so they measure and
 * test the same daemon set-up: one v3
 * instance on eth0 (VRID 51, 0.5 s adverts) holding the VIP, IPVS drift checks off (the injected
 * tables would otherwise be re-read), and the given virtual servers and sync channel.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface SyncDirector {
  name: string;
  prio: number;
  /** The API port; also keeps files of restarted directors apart. */
  port: number;
  vip: string;
  channel: 'kernel' | 'lvsd';
  syncId: number;
  /** One YAML flow mapping per virtual server. */
  virtualServers: string[];
  /** The channel's key file (channel lvsd). */
  keyFile?: string;
  /** sync.poll_interval (ms; the default otherwise). */
  pollInterval?: number;
  /** sync.stream_port (the default otherwise). */
  streamPort?: number;
}

/** Writes the director's config into dir and returns its path. */
export function writeSyncDirectorConfig(dir: string, d: SyncDirector): string {
  const file = join(dir, `${d.name}-${d.port}.yaml`);
  writeFileSync(
    file,
    `global:
  router_id: ${d.name}
  state_dir: ${dir}/state-${d.name}-${d.port}
  api: { listen: 127.0.0.1:${d.port} }
  ipvs: { drift_check_interval: 0 }
vrrp_instances:
  - { name: vi, interface: eth0, virtual_router_id: 51, priority: ${d.prio}, version: 3, advert_interval: 0.5, virtual_addresses: [${d.vip}/24] }
virtual_servers:
${d.virtualServers.map((vs) => `  - ${vs}\n`).join('')}sync:
  interface: eth0
  channel: ${d.channel}
  sync_id: ${d.syncId}
${d.keyFile ? `  key_file: ${d.keyFile}\n` : ''}${d.pollInterval ? `  poll_interval: ${d.pollInterval}\n` : ''}${d.streamPort !== undefined ? `  stream_port: ${d.streamPort}\n` : ''}`,
  );
  return file;
}
