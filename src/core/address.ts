import { isIPv4, isIPv6 } from 'node:net';

export type Family = 4 | 6;

export interface IpAddress {
  readonly family: Family;
  /** Canonical text form (IPv6 compressed, lower case). */
  readonly text: string;
  /** Network-order bytes: 4 or 16. */
  readonly bytes: Uint8Array;
}

export interface IpPrefix extends IpAddress {
  readonly prefixLen: number;
}

export function ipFamily(s: string): Family | undefined {
  if (isIPv4(s)) return 4;
  if (isIPv6(s)) return 6;
  return undefined;
}

export function parseIp(s: string): IpAddress | undefined {
  if (isIPv4(s)) {
    const bytes = Uint8Array.from(s.split('.').map((x) => Number(x)));
    return { family: 4, text: bytes.join('.'), bytes };
  }
  if (isIPv6(s)) {
    const bytes = ipv6ToBytes(s);
    return { family: 6, text: formatIpv6(bytes), bytes };
  }
  return undefined;
}

/** "192.0.2.1/24" or "2001:db8::1/64"; a missing prefix means a host prefix (32 / 128). */
export function parsePrefix(s: string): IpPrefix | undefined {
  const slash = s.indexOf('/');
  const addr = parseIp(slash < 0 ? s : s.slice(0, slash));
  if (!addr) return undefined;
  const max = addr.family === 4 ? 32 : 128;
  if (slash < 0) return { ...addr, prefixLen: max };
  const p = s.slice(slash + 1);
  if (!/^\d{1,3}$/.test(p)) return undefined;
  const n = Number(p);
  if (n > max) return undefined;
  return { ...addr, prefixLen: n };
}

export function bytesToIp(b: Uint8Array): IpAddress {
  if (b.length === 4) return { family: 4, text: Array.from(b).join('.'), bytes: Uint8Array.from(b) };
  if (b.length === 16) return { family: 6, text: formatIpv6(b), bytes: Uint8Array.from(b) };
  throw new RangeError(`address must be 4 or 16 bytes, got ${b.length}`);
}

function ipv6ToBytes(s: string): Uint8Array {
  // Embedded IPv4 tail (::ffff:192.0.2.1) is converted to two groups first.
  let text = s;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const p = v4[1]!.split('.').map(Number);
    text = text.slice(0, v4.index) + ((p[0]! << 8) | p[1]!).toString(16) + ':' + ((p[2]! << 8) | p[3]!).toString(16);
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const h = head ? head.split(':') : [];
  const t = tail !== undefined ? (tail ? tail.split(':') : []) : [];
  const groups = tail !== undefined ? [...h, ...Array(8 - h.length - t.length).fill('0'), ...t] : h;
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    const v = parseInt(g, 16);
    out[i * 2] = v >> 8;
    out[i * 2 + 1] = v & 0xff;
  });
  return out;
}

/** RFC 5952 canonical form. */
export function formatIpv6(b: Uint8Array): string {
  const g: number[] = [];
  for (let i = 0; i < 16; i += 2) g.push((b[i]! << 8) | b[i + 1]!);
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) { bestStart = i; bestLen = j - i; }
    i = j;
  }
  const hex = g.map((x) => x.toString(16));
  if (bestStart < 0) return hex.join(':');
  const left = hex.slice(0, bestStart).join(':');
  const right = hex.slice(bestStart + bestLen).join(':');
  return `${left}::${right}`;
}

/** "[2001:db8::1]:80" for IPv6, "192.0.2.1:80" for IPv4. */
export function formatEndpoint(addr: string, port: number): string {
  return ipFamily(addr) === 6 ? `[${addr}]:${port}` : `${addr}:${port}`;
}

/** Parse "192.0.2.1:80", "[2001:db8::1]:80". */
export function parseEndpoint(s: string): { address: IpAddress; port: number } | undefined {
  const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(s) ?? /^([^:\[\]]+):(\d{1,5})$/.exec(s);
  if (!m) return undefined;
  const address = parseIp(m[1]!);
  const port = Number(m[2]);
  if (!address || port > 65535) return undefined;
  if (s.startsWith('[') !== (address.family === 6)) return undefined;
  return { address, port };
}

/** Compare addresses as unsigned big-endian integers (VRRP tie-break uses this; RFC 5798 §6.4.3). */
export function compareIp(a: Uint8Array, b: Uint8Array): number {
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return 0;
}
