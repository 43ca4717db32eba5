/**
 * In-memory IPVS table that answers like the kernel (net/netfilter/ipvs/ip_vs_ctl.c, Linux 6.1):
 * same errno for the same mistakes, proven by the contract suite that also runs against the kernel.
 *   NEW_SERVICE on an existing one → EEXIST; SET/DEL/any dest op on a missing service → ESRCH;
 *   NEW_DEST existing → EEXIST; SET/DEL_DEST missing → ENOENT; unknown scheduler / engine → ENOENT;
 *   weight < 0 or l_threshold > u_threshold → ERANGE; GUE without port → EINVAL;
 *   IPv6 persistence prefix outside 1..128 → EINVAL.
 */
import {
  DataplaneError, destConfig, destKey, serviceConfig, serviceKey,
  type Dataplane, type IpvsDaemon, type IpvsDest, type IpvsInfo, type IpvsOp, type IpvsService, type IpvsServiceId,
  type IpvsTable, type IpvsTableEntry, type IpvsTimeouts, type OpOutcome,
} from './model.js';

export const KERNEL_SCHEDULERS = ['rr', 'wrr', 'lc', 'wlc', 'lblc', 'lblcr', 'dh', 'sh', 'mh', 'sed', 'nq', 'fo', 'ovf', 'twos'];
export const KERNEL_PES = ['sip'];

const ERRNO_TEXT: Record<string, string> = {
  EEXIST: 'File exists',
  ESRCH: 'No such process',
  ENOENT: 'No such file or directory',
  ERANGE: 'Numerical result out of range',
  EINVAL: 'Invalid argument',
};

function fail(errno: string, what: string): never {
  throw new DataplaneError(errno, `${what}: ${ERRNO_TEXT[errno] ?? errno}`);
}

interface Entry {
  service: IpvsService;
  dests: Map<string, IpvsDest>;
}

export class MemoryDataplane implements Dataplane {
  private readonly services = new Map<string, Entry>();
  private timeouts: IpvsTimeouts = { tcp: 900, tcp_fin: 120, udp: 300 };
  private daemons: IpvsDaemon[] = [];
  /** Every mutating call, for tests that count what reached the "kernel". */
  readonly calls: string[] = [];

  constructor(initial?: IpvsTable) {
    if (initial) for (const e of initial) this.services.set(serviceKey(e.service), { service: serviceConfig(e.service), dests: new Map(e.dests.map((d) => [destKey(d), destConfig(d)])) });
  }

  private entry(s: IpvsServiceId): Entry {
    const e = this.services.get(serviceKey(s));
    if (!e) fail('ESRCH', `service ${serviceKey(s)}`);
    return e;
  }

  private checkService(s: IpvsService): void {
    if (!KERNEL_SCHEDULERS.includes(s.scheduler)) fail('ENOENT', `scheduler ${s.scheduler}`);
    if (s.pe_name && !KERNEL_PES.includes(s.pe_name)) fail('ENOENT', `persistence engine ${s.pe_name}`);
    if (s.family === 6 && (s.netmask < 1 || s.netmask > 128)) fail('EINVAL', `IPv6 netmask ${s.netmask}`);
  }

  private checkDest(s: IpvsService, d: IpvsDest): void {
    if (d.weight < 0) fail('ERANGE', `weight ${d.weight}`);
    if (d.l_threshold > d.u_threshold) fail('ERANGE', `lower threshold ${d.l_threshold} above upper ${d.u_threshold}`);
    if (d.fwd === 'tun' && d.tun_type === 'gue' && !d.tun_port) fail('EINVAL', 'GUE tunnel without port');
    if (d.family !== s.family && d.fwd !== 'tun') fail('EINVAL', 'address family of destination differs from the service (only tunnelling may mix)');
  }

  /** The entry for a service key (no copy of the dests map; callers must not mutate). */
  entryOf(key: string): IpvsTableEntry | undefined {
    const e = this.services.get(key);
    return e ? { service: e.service, dests: [...e.dests.values()] } : undefined;
  }
  get size(): { services: number; dests: number } {
    let dests = 0;
    for (const e of this.services.values()) dests += e.dests.size;
    return { services: this.services.size, dests };
  }

  async listServices(): Promise<IpvsService[]> {
    return [...this.services.values()].map((e) => e.service);
  }
  async listDests(s: IpvsServiceId): Promise<IpvsDest[]> {
    return [...this.entry(s).dests.values()].map((d) => ({ ...d, active_conns: 0, inact_conns: 0, persist_conns: 0 }));
  }
  async dump(): Promise<IpvsTable> {
    return [...this.services.values()].map((e) => ({ service: e.service, dests: [...e.dests.values()].map((d) => ({ ...d, active_conns: 0, inact_conns: 0, persist_conns: 0 })) }));
  }

  addServiceSync(s: IpvsService): void {
    const k = serviceKey(s);
    this.calls.push(`add-service ${k}`);
    if (this.services.has(k)) fail('EEXIST', `service ${k}`);
    this.checkService(s);
    this.services.set(k, { service: serviceConfig(s), dests: new Map() });
  }
  setServiceSync(s: IpvsService): void {
    this.calls.push(`set-service ${serviceKey(s)}`);
    const e = this.entry(s);
    this.checkService(s);
    e.service = serviceConfig(s);
  }
  delServiceSync(s: IpvsServiceId): void {
    this.calls.push(`del-service ${serviceKey(s)}`);
    this.entry(s);
    this.services.delete(serviceKey(s));
  }
  addDestSync(s: IpvsServiceId, d: IpvsDest): void {
    this.calls.push(`add-dest ${serviceKey(s)} ${destKey(d)}`);
    const e = this.entry(s);
    const k = destKey(d);
    if (e.dests.has(k)) fail('EEXIST', `destination ${k}`);
    this.checkDest(e.service, d);
    e.dests.set(k, destConfig(d));
  }
  setDestSync(s: IpvsServiceId, d: IpvsDest): void {
    this.calls.push(`set-dest ${serviceKey(s)} ${destKey(d)}`);
    const e = this.entry(s);
    const k = destKey(d);
    if (!e.dests.has(k)) fail('ENOENT', `destination ${k}`);
    this.checkDest(e.service, d);
    e.dests.set(k, destConfig(d));
  }
  delDestSync(s: IpvsServiceId, d: Pick<IpvsDest, 'addr' | 'port'>): void {
    this.calls.push(`del-dest ${serviceKey(s)} ${destKey(d)}`);
    const e = this.entry(s);
    if (!e.dests.delete(destKey(d))) fail('ENOENT', `destination ${destKey(d)}`);
  }

  async addService(s: IpvsService): Promise<void> { this.addServiceSync(s); }
  async setService(s: IpvsService): Promise<void> { this.setServiceSync(s); }
  async delService(s: IpvsServiceId): Promise<void> { this.delServiceSync(s); }
  async addDest(s: IpvsServiceId, d: IpvsDest): Promise<void> { this.addDestSync(s, d); }
  async setDest(s: IpvsServiceId, d: IpvsDest): Promise<void> { this.setDestSync(s, d); }
  async delDest(s: IpvsServiceId, d: Pick<IpvsDest, 'addr' | 'port' | 'family'>): Promise<void> { this.delDestSync(s, d); }

  applySync(op: IpvsOp): void {
    switch (op.op) {
      case 'add-service': return this.addServiceSync(op.service);
      case 'set-service': return this.setServiceSync(op.service);
      case 'del-service': return this.delServiceSync(op.service);
      case 'add-dest': return this.addDestSync(op.service, op.dest);
      case 'set-dest': return this.setDestSync(op.service, op.dest);
      case 'del-dest': return this.delDestSync(op.service, op.dest);
    }
  }

  async submit(ops: readonly IpvsOp[]): Promise<OpOutcome[]> {
    return ops.map((op) => {
      try {
        this.applySync(op);
        return { ok: true };
      } catch (e) {
        if (e instanceof DataplaneError) return { ok: false, errno: e.errno, message: e.message };
        throw e;
      }
    });
  }

  async getInfo(): Promise<IpvsInfo> {
    return { version: 0x010201, connTabSize: 4096 };
  }
  async getTimeouts(): Promise<IpvsTimeouts> {
    return this.timeouts;
  }
  async setTimeouts(t: Partial<IpvsTimeouts>): Promise<void> {
    this.timeouts = {
      tcp: t.tcp && t.tcp > 0 ? t.tcp : this.timeouts.tcp,
      tcp_fin: t.tcp_fin && t.tcp_fin > 0 ? t.tcp_fin : this.timeouts.tcp_fin,
      udp: t.udp && t.udp > 0 ? t.udp : this.timeouts.udp,
    };
  }
  async newDaemon(d: IpvsDaemon): Promise<void> {
    if (this.daemons.some((x) => x.state === d.state)) fail('EEXIST', `${d.state} sync daemon`);
    this.daemons.push(d);
  }
  async delDaemon(state: IpvsDaemon['state']): Promise<void> {
    const before = this.daemons.length;
    this.daemons = this.daemons.filter((d) => d.state !== state);
    if (this.daemons.length === before) fail('ESRCH', `${state} sync daemon`);
  }
  async getDaemons(): Promise<IpvsDaemon[]> {
    return [...this.daemons];
  }
  async flush(): Promise<void> {
    this.calls.push('flush');
    this.services.clear();
  }
  async close(): Promise<void> {}
}
