/**
 * The peer-synced table for `lvsd sync show` (pure): the records this director received from its
 * peer, as rows with the columns and text `ipvsadm -Lnc` prints for the same connections, so the two
 * can be compared line by line.
 *
 * Expiry: a record with timeout 0 gets the receiving kernel's timeout for its state
 * (ip_vs_proc_conn in net/netfilter/ipvs/ip_vs_sync.c: pd->timeout_table[state], 3 min for a
 * template); these are the kernel's defaults (ip_vs_proto_tcp.c tcp_timeouts, ip_vs_proto_udp.c,
 * ip_vs_proto_sctp.c), seen in the lab as 900 s ESTABLISHED, 60 s SYN_RECV, 300 s UDP. A director
 * whose timeouts were changed with `ipvsadm --set` expires ESTABLISHED / FIN_WAIT / UDP entries at
 * its own values; the row then shows lvsd's estimate, not the kernel's timer.
 */
import { bytesToIp, formatEndpoint } from '../core/address.js';
import { ConnFlags, type SyncConn } from './codec.js';
import { PROTO_NAME, stateName } from './conntable.js';

const TCP_TIMEOUTS = [2, 900, 120, 60, 120, 120, 10, 60, 30, 120, 120];
const SCTP_TIMEOUTS = [2, 10, 10, 10, 10, 10, 10, 900, 10, 10, 10, 10, 10];
const UDP_TIMEOUT = 300;
const TEMPLATE_TIMEOUT = 180;

/** Seconds the receiving kernel keeps a synced record without news (see the file comment). */
export function peerTimeoutSeconds(c: SyncConn): number {
  return timeoutSeconds(c.timeout, c.flags, c.protocol, c.state);
}

/** The same from a record's fields (the receiver reads them from the record's bytes). */
export function timeoutSeconds(timeout: number, flags: number, protocol: number, state: number): number {
  if (timeout) return timeout;
  if (flags & ConnFlags.TEMPLATE) return TEMPLATE_TIMEOUT;
  if (protocol === 6) return TCP_TIMEOUTS[state] ?? 2;
  if (protocol === 132) return SCTP_TIMEOUTS[state] ?? 2;
  return UDP_TIMEOUT;
}

/** One row of `lvsd sync show --json`. */
export interface PeerConnRow {
  readonly protocol: string;
  readonly expire_seconds: number;
  readonly state: string;
  readonly source: string;
  readonly virtual: string;
  readonly destination: string;
  readonly template: boolean;
  readonly forwarding: 'masq' | 'local' | 'tunnel' | 'dr' | 'bypass';
  readonly fwmark: number;
}

const FORWARDING = ['masq', 'local', 'tunnel', 'dr', 'bypass'] as const;

export function peerConnRow(c: SyncConn, expireSeconds: number): PeerConnRow {
  const template = (c.flags & ConnFlags.TEMPLATE) !== 0;
  const ep = (a: Uint8Array, port: number) => formatEndpoint(bytesToIp(a).text, port);
  return {
    protocol: PROTO_NAME[c.protocol] ?? String(c.protocol),
    expire_seconds: Math.max(0, Math.floor(expireSeconds)),
    state: stateName(c.protocol, template, c.state),
    source: ep(c.caddr, c.cport),
    virtual: ep(c.vaddr, c.vport),
    destination: ep(c.daddr, c.dport),
    template,
    forwarding: FORWARDING[c.flags & ConnFlags.FWD_MASK] ?? 'masq',
    fwmark: c.fwmark,
  };
}

/** Rows in a stable order: by virtual service, then client. */
export function sortRows(rows: PeerConnRow[]): PeerConnRow[] {
  const key = (r: PeerConnRow) => `${r.protocol} ${r.virtual} ${r.source} ${r.destination}`;
  return rows.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}

/** The text `ipvsadm -Lnc` prints (its header and "%-3s %-6s %-11s %-18s %-18s %s" lines). */
export function formatLnc(rows: readonly PeerConnRow[]): string {
  const lines = ['IPVS connection entries', 'pro expire state       source             virtual            destination'];
  for (const r of rows) {
    const expire = `${String(Math.floor(r.expire_seconds / 60)).padStart(2, '0')}:${String(r.expire_seconds % 60).padStart(2, '0')}`;
    lines.push(`${r.protocol.padEnd(3)} ${expire.padEnd(6)} ${r.state.padEnd(11)} ${r.source.padEnd(18)} ${r.virtual.padEnd(18)} ${r.destination}`);
  }
  return lines.join('\n') + '\n';
}
