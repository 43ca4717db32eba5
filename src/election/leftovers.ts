/**
 * The VIPs a configuration puts on its interfaces, and their removal when no daemon runs: after a
 * kill -9 the kernel keeps every address the daemon added (keepalived leaves them too). A starting
 * instance removes its own (runtime: "removed VIPs left by a previous run"); `lvsd cleanup`, which
 * the unit runs as ExecStopPost, does it without starting anything.
 */
import type { ClusterConfig, VirtualAddress } from '../config/index.js';
import { errorMessage } from '../core/errors.js';
import type { AddressTable } from './vips.js';

export interface PlacedVip {
  readonly instance: string;
  readonly ifname: string;
  readonly vip: VirtualAddress;
}

/** Every VIP of every instance (excluded ones too) with the interface it goes on (`device`, else the instance's). */
export function configuredVips(cfg: ClusterConfig): PlacedVip[] {
  return cfg.vrrp_instances.flatMap((inst) =>
    [...inst.virtual_addresses, ...inst.virtual_addresses_excluded].map((vip) => ({ instance: inst.name, ifname: vip.device ?? inst.interface, vip })),
  );
}

export interface RemovalResult extends PlacedVip {
  readonly result: 'removed' | 'absent' | 'error';
  readonly error?: string;
}

/** Remove each VIP, one by one; an error on one (e.g. its interface is gone) does not stop the rest. */
export async function removeVips(table: AddressTable, vips: readonly PlacedVip[]): Promise<RemovalResult[]> {
  const out: RemovalResult[] = [];
  for (const p of vips) {
    try {
      out.push({ ...p, result: await table.remove(p.ifname, p.vip) });
    } catch (e) {
      out.push({ ...p, result: 'error', error: errorMessage(e) });
    }
  }
  return out;
}
