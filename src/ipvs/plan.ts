/**
 * Pure planner: the operations that turn `actual` into `desired`.
 *
 * Rules (docs/ipvs.md):
 *  - Identity is (family, protocol, address, port) or (family, fwmark) for services and
 *    (address, port) for destinations; everything else is changed in place with SET_SERVICE /
 *    SET_DEST — never delete + add, because deleting a destination drops its connections.
 *  - Order is stable and safe: add-service, set-service, add-dest, set-dest, del-dest, del-service
 *    (a service exists before its destinations; destinations go before services). Within a phase,
 *    desired order for what is desired, key order for deletions.
 *  - Services lvsd does not declare are left alone unless `exclusive` (the whole table is lvsd's) or
 *    their key is in `managed` (declared earlier by lvsd, since removed from the config).
 *    Inside a declared service lvsd owns every destination.
 */
import {
  destAttrsEqual, destConfig, destKey, serviceAttrsEqual, serviceConfig, serviceId, serviceKey,
  type IpvsDest, type IpvsOp, type IpvsTable, type IpvsTableEntry,
} from './model.js';

export interface PlanOptions {
  /** lvsd owns the whole table: remove every service it does not declare. */
  readonly exclusive?: boolean;
  /** Service keys lvsd may remove although not desired (it declared them before). */
  readonly managed?: ReadonlySet<string>;
  /** Only plan these service keys (incremental changes); others are not looked at. */
  readonly only?: ReadonlySet<string>;
}

const PHASES: readonly IpvsOp['op'][] = ['add-service', 'set-service', 'add-dest', 'set-dest', 'del-dest', 'del-service'];

export function planEntry(want: IpvsTableEntry | undefined, have: IpvsTableEntry | undefined, out: Record<IpvsOp['op'], IpvsOp[]>): void {
  if (want && !have) {
    const svc = serviceConfig(want.service);
    out['add-service'].push({ op: 'add-service', service: svc });
    const id = serviceId(svc);
    const seen = new Set<string>();
    for (const d of want.dests) {
      const k = destKey(d);
      if (seen.has(k)) continue;
      seen.add(k);
      out['add-dest'].push({ op: 'add-dest', service: id, dest: destConfig(d) });
    }
    return;
  }
  if (!want && have) {
    out['del-service'].push({ op: 'del-service', service: serviceId(have.service) });
    return;
  }
  if (!want || !have) return;
  const id = serviceId(want.service);
  if (!serviceAttrsEqual(want.service, have.service)) out['set-service'].push({ op: 'set-service', service: serviceConfig(want.service) });
  const haveDests = new Map<string, IpvsDest>();
  for (const d of have.dests) haveDests.set(destKey(d), d);
  const wanted = new Set<string>();
  for (const d of want.dests) {
    const k = destKey(d);
    if (wanted.has(k)) continue;
    wanted.add(k);
    const h = haveDests.get(k);
    if (!h) out['add-dest'].push({ op: 'add-dest', service: id, dest: destConfig(d) });
    else if (!destAttrsEqual(d, h)) out['set-dest'].push({ op: 'set-dest', service: id, dest: destConfig(d) });
  }
  const extra = [...haveDests.keys()].filter((k) => !wanted.has(k)).sort();
  for (const k of extra) {
    const h = haveDests.get(k)!;
    out['del-dest'].push({ op: 'del-dest', service: id, dest: { addr: h.addr, port: h.port, family: h.family } });
  }
}

export function plan(desired: IpvsTable, actual: IpvsTable, opts: PlanOptions = {}): IpvsOp[] {
  const out = Object.fromEntries(PHASES.map((p) => [p, [] as IpvsOp[]])) as Record<IpvsOp['op'], IpvsOp[]>;
  const have = new Map<string, IpvsTableEntry>();
  for (const e of actual) have.set(serviceKey(e.service), e);
  const want = new Set<string>();
  for (const e of desired) {
    const k = serviceKey(e.service);
    if (want.has(k)) continue;
    if (opts.only && !opts.only.has(k)) continue;
    want.add(k);
    planEntry(e, have.get(k), out);
  }
  const gone = [...have.keys()]
    .filter((k) => !want.has(k) && (!opts.only || opts.only.has(k)))
    .filter((k) => opts.exclusive || opts.managed?.has(k))
    .sort();
  for (const k of gone) planEntry(undefined, have.get(k), out);
  return PHASES.flatMap((p) => out[p]);
}

/** One line per op, the format `lvsd ipvs apply` prints. */
export function formatOp(op: IpvsOp): string {
  const k = serviceKey(op.service);
  switch (op.op) {
    case 'add-service':
    case 'set-service': {
      const s = op.service;
      const extra = [`scheduler=${s.scheduler}`];
      if (s.flags) extra.push(`flags=0x${s.flags.toString(16)}`);
      if (s.timeout) extra.push(`timeout=${s.timeout}`);
      if (s.pe_name) extra.push(`pe=${s.pe_name}`);
      return `${op.op} ${k} ${extra.join(' ')}`;
    }
    case 'del-service':
      return `del-service ${k}`;
    case 'add-dest':
    case 'set-dest': {
      const d = op.dest;
      const extra = [`fwd=${d.fwd}`, `weight=${d.weight}`];
      if (d.u_threshold || d.l_threshold) extra.push(`thresholds=${d.u_threshold}/${d.l_threshold}`);
      if (d.fwd === 'tun' && (d.tun_type !== 'ipip' || d.tun_flags)) extra.push(`tun=${d.tun_type}${d.tun_port ? `:${d.tun_port}` : ''}${d.tun_flags ? ` tun_flags=${d.tun_flags}` : ''}`);
      return `${op.op} ${k} ${destKey(d)} ${extra.join(' ')}`;
    }
    case 'del-dest':
      return `del-dest ${k} ${destKey(op.dest)}`;
  }
}
