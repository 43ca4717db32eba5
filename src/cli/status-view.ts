/**
 * `lvsd status` for a person: the daemon's /status JSON as a short summary — the VRRP instances with
 * state and priority, every virtual server with its real servers' health, weight and connections,
 * the sync channel — with relative times ("3m ago"). `--json` prints the raw document instead.
 * The JSON shape is the subsystems' own (src/*\/subsystem.ts status()); this file only reads it and
 * shows whatever it does not know as plain key: value lines, so a new field is never lost.
 */
type Json = Record<string, unknown>;

const obj = (v: unknown): Json => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : {});
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const str = (v: unknown, dflt = '-'): string => (v === undefined || v === null || v === '' ? dflt : String(v));

/** "4s", "3m 20s", "2h 5m", "3d 4h": the two largest units. */
export function humanDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.floor(seconds);
  const units: Array<[string, number]> = [['d', 86400], ['h', 3600], ['m', 60], ['s', 1]];
  const parts: string[] = [];
  let rest = s;
  for (const [u, n] of units) {
    const q = Math.floor(rest / n);
    if (q > 0 || (u === 's' && parts.length === 0)) parts.push(`${q}${u}`);
    rest -= q * n;
    if (parts.length === 2) break;
  }
  return parts.join(' ');
}

/** "3m 20s ago" for an ISO time (or Unix milliseconds), relative to `now`. */
export function ago(t: unknown, now: number): string {
  const ms = typeof t === 'number' ? t : typeof t === 'string' ? Date.parse(t) : NaN;
  if (!Number.isFinite(ms) || ms <= 0) return '-';
  return `${humanDuration((now - ms) / 1000)} ago`;
}

/** Left-aligned columns, two spaces apart. */
function table(rows: string[][], indent = '  '): string[] {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows.map((r) => indent + r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd());
}

function election(e: Json, now: number): string[] {
  const insts = Object.entries(obj(e.instances));
  if (!insts.length) return [];
  const out = ['VRRP instances'];
  out.push(
    ...table(
      insts.map(([name, v]) => {
        const i = obj(v);
        const prio = i.priority === i.configured_priority ? `priority ${str(i.priority)}` : `priority ${str(i.priority)} (configured ${str(i.configured_priority)})`;
        const faults = arr(i.faults);
        return [
          name,
          str(i.state),
          prio,
          `vrid ${str(i.vrid)} on ${str(i.interface)}, v${str(i.version)} every ${str(i.advert_interval)}s`,
          `master ${str(i.master)}`,
          `since ${ago(i.since, now)}${faults.length ? `  faults: ${faults.map((f) => str(f)).join(', ')}` : ''}`,
        ];
      }),
    ),
  );
  const groups = Object.entries(obj(e.sync_groups));
  if (groups.length) out.push(...table(groups.map(([g, st]) => [`sync group ${g}`, str(st)])));
  return out;
}

function virtualServers(health: Json, ipvs: Json, now: number): string[] {
  const vss = arr(health.virtual_servers).map(obj);
  const ipvsByKey = new Map(arr(ipvs.services).map(obj).map((s) => [str(s.key), s]));
  if (!vss.length && !ipvsByKey.size) return [];
  const out = ['Virtual servers'];
  const kernel = ipvs.available === false ? `IPVS not programmed: ${str(ipvs.error, 'IPVS unavailable')}` : undefined;
  if (kernel) out.push(`  (${kernel})`);
  for (const vs of vss) {
    const q = obj(vs.quorum);
    const k = ipvsByKey.get(str(vs.key));
    const inKernel = k ? (k.present ? 'in kernel' : 'NOT in kernel') : '';
    const quorum = q.up ? `quorum up (healthy weight ${str(q.healthy_weight)} ≥ ${str(q.quorum)})` : `QUORUM DOWN (healthy weight ${str(q.healthy_weight)} < ${str(q.quorum)})`;
    out.push(`  ${str(vs.name)}  ${str(vs.key)}  ${quorum}${vs.sorry_active ? '  sorry server active' : ''}${inKernel ? `  ${inKernel}` : ''}`);
    const dests = new Map(arr(k?.dests).map(obj).map((d) => [str(d.key), d]));
    out.push(
      ...table(
        arr(vs.real_servers).map(obj).map((rs) => {
          const d = dests.get(str(rs.key));
          const conns = d && (d.active_conns !== undefined || d.inact_conns !== undefined) ? `conns ${str(d.active_conns, '0')} active, ${str(d.inact_conns, '0')} inactive` : '';
          return [str(rs.key), rs.up ? 'UP' : 'DOWN', `weight ${str(d?.weight ?? rs.weight)}`, conns, `since ${ago(rs.since, now)}`, rs.up ? '' : str(rs.reason, '')];
        }),
        '    ',
      ),
    );
  }
  return out;
}

function sync(s: Json): string[] {
  if (!Object.keys(s).length) return [];
  if (s.configured === false) return ['Connection sync', '  not configured'];
  const lines = ['Connection sync'];
  const known = new Set(['configured']);
  lines.push(...table(Object.entries(s).filter(([k]) => !known.has(k)).map(([k, v]) => [k, typeof v === 'object' ? JSON.stringify(v) : str(v)])));
  return lines;
}

export function renderStatus(s: Json, now = Date.now()): string {
  const out: string[] = [];
  const l = obj(s.lvsd);
  out.push(`lvsd ${str(l.version)} (pid ${str(l.pid)}) ${str(l.phase)} for ${humanDuration(Number(l.uptime_seconds))} — router ${str(s.router_id)}`);
  const c = obj(s.config);
  const lr = s.last_reload ? obj(s.last_reload) : undefined;
  out.push(`config ${str(c.file)}; last reload: ${lr ? `${str(lr.result)} ${ago(lr.at, now)}` : 'none'}`);
  for (const e of arr(lr?.errors)) out.push(`  ${str(e)}`);
  if (s.unhealthy) out.push(`UNHEALTHY: ${str(s.unhealthy)}`);
  const subs = obj(s.subsystems);
  const sections = [election(obj(subs.election), now), virtualServers(obj(subs.health), obj(subs.ipvs), now), sync(obj(subs.sync))];
  for (const sec of sections) if (sec.length) out.push('', ...sec);
  // Subsystems this view does not know are shown as they are.
  for (const [name, v] of Object.entries(subs)) {
    if (['election', 'health', 'ipvs', 'sync'].includes(name)) continue;
    out.push('', name, ...table(Object.entries(obj(v)).map(([k, x]) => [k, typeof x === 'object' ? JSON.stringify(x) : str(x)])));
  }
  return out.join('\n') + '\n';
}
