/**
 * Minimal DNS message codec (RFC 1035 §4.1) for health checks: build one query, parse a response
 * (header, question, answer records with name compression §4.1.4). Pure; bad input → DnsDecodeError.
 */
import { bytesToIp } from '../../core/address.js';

export const QTYPES = { A: 1, NS: 2, CNAME: 5, SOA: 6, PTR: 12, MX: 15, TXT: 16, AAAA: 28, SRV: 33 } as const;
export type QType = keyof typeof QTYPES;
export const RCODES = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED'] as const;

export function rcodeName(n: number): string {
  return RCODES[n] ?? `RCODE${n}`;
}

export class DnsDecodeError extends Error {}

export interface DnsRecord {
  readonly name: string;
  readonly type: number;
  readonly class: number;
  readonly ttl: number;
  /** Text form: address for A/AAAA, target name for NS/CNAME/PTR/MX/SRV, mname for SOA, joined strings for TXT. */
  readonly data: string;
}

export interface DnsMessage {
  readonly id: number;
  readonly qr: boolean;
  readonly opcode: number;
  readonly aa: boolean;
  readonly tc: boolean;
  readonly rd: boolean;
  readonly ra: boolean;
  readonly rcode: number;
  readonly questions: ReadonlyArray<{ name: string; type: number; class: number }>;
  readonly answers: readonly DnsRecord[];
}

/** Lower case, no trailing dot; the root is "". */
export function normalizeName(n: string): string {
  const s = n.toLowerCase();
  return s.endsWith('.') ? s.slice(0, -1) : s;
}

export function encodeName(name: string): Buffer {
  const n = normalizeName(name);
  const parts: Buffer[] = [];
  if (n !== '') {
    for (const label of n.split('.')) {
      const b = Buffer.from(label, 'ascii');
      if (b.length === 0 || b.length > 63) throw new RangeError(`bad label in DNS name ${JSON.stringify(name)}`);
      parts.push(Buffer.from([b.length]), b);
    }
  }
  parts.push(Buffer.from([0]));
  const out = Buffer.concat(parts);
  if (out.length > 255) throw new RangeError('DNS name longer than 255 bytes');
  return out;
}

export function encodeQuery(id: number, name: string, qtype: number, rd = true): Buffer {
  const h = Buffer.alloc(12);
  h.writeUInt16BE(id & 0xffff, 0);
  h.writeUInt16BE(rd ? 0x0100 : 0, 2);
  h.writeUInt16BE(1, 4); // QDCOUNT
  const q = Buffer.alloc(4);
  q.writeUInt16BE(qtype, 0);
  q.writeUInt16BE(1, 2); // IN
  return Buffer.concat([h, encodeName(name), q]);
}

/** Read a possibly compressed name at `off`; returns the name and the offset after it in place. */
function readName(b: Buffer, off: number): { name: string; next: number } {
  const labels: string[] = [];
  let p = off;
  let next = -1;
  let jumps = 0;
  let total = 0;
  for (;;) {
    if (p >= b.length) throw new DnsDecodeError('name runs past the end');
    const len = b[p]!;
    if ((len & 0xc0) === 0xc0) {
      if (p + 1 >= b.length) throw new DnsDecodeError('truncated pointer');
      if (++jumps > 32) throw new DnsDecodeError('compression loop');
      if (next < 0) next = p + 2;
      p = ((len & 0x3f) << 8) | b[p + 1]!;
      continue;
    }
    if (len & 0xc0) throw new DnsDecodeError('bad label type');
    if (len === 0) {
      if (next < 0) next = p + 1;
      break;
    }
    if (p + 1 + len > b.length) throw new DnsDecodeError('label runs past the end');
    total += len + 1;
    if (total > 255) throw new DnsDecodeError('name too long');
    labels.push(b.toString('latin1', p + 1, p + 1 + len));
    p += 1 + len;
  }
  return { name: labels.join('.').toLowerCase(), next };
}

function need(b: Buffer, off: number, n: number): void {
  if (off + n > b.length) throw new DnsDecodeError('message truncated');
}

function rdataText(b: Buffer, type: number, off: number, len: number): string {
  switch (type) {
    case QTYPES.A:
    case QTYPES.AAAA:
      if ((type === QTYPES.A && len !== 4) || (type === QTYPES.AAAA && len !== 16)) throw new DnsDecodeError('bad address length');
      return bytesToIp(b.subarray(off, off + len)).text;
    case QTYPES.NS:
    case QTYPES.CNAME:
    case QTYPES.PTR:
    case QTYPES.SOA:
      return readName(b, off).name;
    case QTYPES.MX:
      need(b, off, 2);
      return readName(b, off + 2).name;
    case QTYPES.SRV:
      need(b, off, 6);
      return readName(b, off + 6).name;
    case QTYPES.TXT: {
      const parts: string[] = [];
      let p = off;
      while (p < off + len) {
        const l = b[p]!;
        if (p + 1 + l > off + len) throw new DnsDecodeError('TXT string runs past rdata');
        parts.push(b.toString('utf8', p + 1, p + 1 + l));
        p += 1 + l;
      }
      return parts.join('');
    }
    default:
      return b.toString('hex', off, off + len);
  }
}

export function decodeMessage(b: Buffer): DnsMessage {
  need(b, 0, 12);
  const flags = b.readUInt16BE(2);
  const qd = b.readUInt16BE(4);
  const an = b.readUInt16BE(6);
  let p = 12;
  const questions: Array<{ name: string; type: number; class: number }> = [];
  for (let i = 0; i < qd; i++) {
    const n = readName(b, p);
    p = n.next;
    need(b, p, 4);
    questions.push({ name: n.name, type: b.readUInt16BE(p), class: b.readUInt16BE(p + 2) });
    p += 4;
  }
  const answers: DnsRecord[] = [];
  for (let i = 0; i < an; i++) {
    const n = readName(b, p);
    p = n.next;
    need(b, p, 10);
    const type = b.readUInt16BE(p);
    const cls = b.readUInt16BE(p + 2);
    const ttl = b.readUInt32BE(p + 4);
    const len = b.readUInt16BE(p + 8);
    p += 10;
    need(b, p, len);
    answers.push({ name: n.name, type, class: cls, ttl, data: rdataText(b, type, p, len) });
    p += len;
  }
  return {
    id: b.readUInt16BE(0),
    qr: (flags & 0x8000) !== 0,
    opcode: (flags >> 11) & 0xf,
    aa: (flags & 0x0400) !== 0,
    tc: (flags & 0x0200) !== 0,
    rd: (flags & 0x0100) !== 0,
    ra: (flags & 0x0080) !== 0,
    rcode: flags & 0xf,
    questions,
    answers,
  };
}

/** Encode a response (used by test servers and fuzzing): records given as raw rdata. */
export function encodeResponse(o: {
  id: number;
  rcode?: number;
  aa?: boolean;
  tc?: boolean;
  question?: { name: string; type: number };
  answers?: ReadonlyArray<{ name: string; type: number; ttl?: number; rdata: Buffer }>;
}): Buffer {
  const h = Buffer.alloc(12);
  h.writeUInt16BE(o.id, 0);
  h.writeUInt16BE(0x8000 | (o.aa ? 0x0400 : 0) | (o.tc ? 0x0200 : 0) | ((o.rcode ?? 0) & 0xf), 2);
  h.writeUInt16BE(o.question ? 1 : 0, 4);
  h.writeUInt16BE(o.answers?.length ?? 0, 6);
  const parts: Buffer[] = [h];
  if (o.question) {
    const q = Buffer.alloc(4);
    q.writeUInt16BE(o.question.type, 0);
    q.writeUInt16BE(1, 2);
    parts.push(encodeName(o.question.name), q);
  }
  for (const a of o.answers ?? []) {
    const f = Buffer.alloc(10);
    f.writeUInt16BE(a.type, 0);
    f.writeUInt16BE(1, 2);
    f.writeUInt32BE(a.ttl ?? 60, 4);
    f.writeUInt16BE(a.rdata.length, 8);
    parts.push(encodeName(a.name), f, a.rdata);
  }
  return Buffer.concat(parts);
}
