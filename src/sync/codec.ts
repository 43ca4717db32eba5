/**
 * The kernel's IPVS connection-sync protocol, version 1 (net/netfilter/ipvs/ip_vs_sync.c, Linux ≥ 2.6.39).
 * Pure codec: bytes ⇄ records. Decoding never throws; a malformed buffer is a typed SyncDecodeError.
 *
 * Message (one UDP datagram):
 *   0 reserved (0: a version-0 receiver then sees nr_conns 0) | 1 syncid | 2-3 size (be16, whole datagram)
 *   4 nr_conns (u8, so ≤ 255 records) | 5 version (1) | 6-7 spare (0)
 * Record (struct ip_vs_sync_v4 / ip_vs_sync_v6), 36 or 72 bytes before options:
 *   0 type (bit 0 = IPv6) | 1 protocol | 2-3 ver_size: top 4 bits the record version (must be 0, else the
 *   kernel drops the whole buffer), low 12 bits the record length including options, excluding padding
 *   4-7 flags (IP_VS_CONN_F_*) | 8-9 state | 10-11 cport | 12-13 vport | 14-15 dport | 16-19 fwmark
 *   20-23 timeout (seconds) | caddr | vaddr | daddr (4 or 16 bytes each)
 * Options after the addresses: type (u8), length (u8, non-zero), data. IPVS_OPT_SEQ_DATA (1) holds two
 * struct ip_vs_seq {init_seq, delta, previous_delta} (24 bytes, network order), IPVS_OPT_PE_DATA (2) the
 * persistence engine's data, IPVS_OPT_PE_NAME (3) its name; a type with bit 0x40 (IPVS_OPT_F_PARAM) set
 * is optional and skipped by receivers that don't know it. The next record starts at the next 4-byte
 * boundary (the sender pads with zeros; the last record is not padded).
 */

export const SYNC_PROTO_VERSION = 1;
export const SYNC_GROUP_V4 = '224.0.0.81';
export const SYNC_PORT = 8848;
export const MESSAGE_HEADER_LEN = 8;
export const RECORD_V4_LEN = 36;
export const RECORD_V6_LEN = 72;
/** nr_conns is a u8. */
export const MAX_RECORDS_PER_MESSAGE = 255;
/** The 12-bit size field of ver_size. */
const MAX_RECORD_LEN = 0x0fff;

const STYPE_F_INET6 = 1;
export const IPVS_OPT_SEQ_DATA = 1;
export const IPVS_OPT_PE_DATA = 2;
export const IPVS_OPT_PE_NAME = 3;
/** Bit in an option type: the option may be ignored by a receiver that doesn't know it. */
export const IPVS_OPT_F_PARAM = 1 << (7 - 1);
const SEQ_OPT_LEN = 24;
/** include/net/ip_vs.h: IP_VS_PEDATA_MAXLEN, IP_VS_PENAME_MAXLEN. */
export const PE_DATA_MAXLEN = 255;
export const PE_NAME_MAXLEN = 16;

/** include/uapi/linux/ip_vs.h connection flags. */
export const ConnFlags = {
  MASQ: 0x0000,
  LOCALNODE: 0x0001,
  TUNNEL: 0x0002,
  DROUTE: 0x0003,
  BYPASS: 0x0004,
  FWD_MASK: 0x0007,
  SYNC: 0x0020,
  HASHED: 0x0040,
  NOOUTPUT: 0x0080,
  INACTIVE: 0x0100,
  OUT_SEQ: 0x0200,
  IN_SEQ: 0x0400,
  SEQ_MASK: 0x0600,
  NO_CPORT: 0x0800,
  TEMPLATE: 0x1000,
  ONE_PACKET: 0x2000,
} as const;

export interface SeqInfo {
  readonly initSeq: number;
  readonly delta: number;
  readonly previousDelta: number;
}

/** An option the codec carries through without interpreting (only optional ones reach here). */
export interface RawOption {
  readonly type: number;
  readonly data: Uint8Array;
}

/** One connection (or persistence template) as the sync protocol carries it. */
export interface SyncConn {
  readonly family: 4 | 6;
  /** IP protocol number (6 TCP, 17 UDP, 132 SCTP; a template of a fwmark service may carry 0). */
  readonly protocol: number;
  /** IP_VS_CONN_F_* as sent (the kernel clears HASHED before sending). */
  readonly flags: number;
  /** Protocol state (e.g. IP_VS_TCP_S_ESTABLISHED = 1), or the template state. */
  readonly state: number;
  readonly cport: number;
  readonly vport: number;
  readonly dport: number;
  readonly fwmark: number;
  /** Seconds; 0 lets the receiving kernel use the state's default timeout. */
  readonly timeout: number;
  /** Addresses as network-order bytes (4 or 16 each): the codec never formats text on the hot path. */
  readonly caddr: Uint8Array;
  readonly vaddr: Uint8Array;
  readonly daddr: Uint8Array;
  readonly seq?: { readonly in: SeqInfo; readonly out: SeqInfo };
  readonly peData?: Uint8Array;
  readonly peName?: string;
  /** Optional (IPVS_OPT_F_PARAM) options the codec does not know, in order, after the known ones. */
  readonly extra?: readonly RawOption[];
}

export interface SyncMessage {
  readonly syncid: number;
  readonly conns: readonly SyncConn[];
}

export type SyncDecodeCode =
  | 'SHORT'
  | 'SIZE_MISMATCH'
  | 'NOT_V1'
  | 'TRUNCATED_RECORD'
  | 'RECORD_VERSION'
  | 'RECORD_TYPE'
  | 'RECORD_LENGTH'
  | 'BAD_OPTION'
  | 'DUPLICATE_OPTION'
  | 'UNKNOWN_MANDATORY_OPTION'
  | 'TRAILING_BYTES';

/** Why a buffer was not a valid version-1 sync message (a value, never thrown by decode). */
export class SyncDecodeError {
  readonly kind = 'sync-decode-error' as const;
  constructor(
    readonly code: SyncDecodeCode,
    readonly message: string,
    /** Byte offset in the datagram where the problem was found. */
    readonly offset: number,
  ) {}
}

export type DecodeResult = { ok: true; message: SyncMessage } | { ok: false; error: SyncDecodeError };

const fail = (code: SyncDecodeCode, message: string, offset: number): { ok: false; error: SyncDecodeError } => ({ ok: false, error: new SyncDecodeError(code, message, offset) });

const pad4 = (n: number) => (n + 3) & ~3;

/** Length of one record on the wire, options included, padding excluded. */
export function recordLength(c: SyncConn): number {
  let n = c.family === 6 ? RECORD_V6_LEN : RECORD_V4_LEN;
  if (c.seq) n += 2 + SEQ_OPT_LEN;
  if (c.peData) n += 2 + c.peData.length;
  if (c.peName !== undefined) n += 2 + Buffer.byteLength(c.peName, 'latin1');
  for (const o of c.extra ?? []) n += 2 + o.data.length;
  return n;
}

const outOfRange = (k: string, v: number, max: number): string | undefined => (Number.isInteger(v) && v >= 0 && v <= max ? undefined : `${k} ${v} out of range 0..${max}`);

/** Checks a record can be encoded; returns why not, or undefined. */
export function recordProblem(c: SyncConn): string | undefined {
  const alen = c.family === 6 ? 16 : 4;
  if (c.caddr.length !== alen || c.vaddr.length !== alen || c.daddr.length !== alen) return `addresses must be ${alen} bytes for IPv${c.family}`;
  // Field by field, not a loop over an array of them: this runs for every record of a resync
  // answer (100,000 and more), and those arrays were a good part of its encoding time.
  const bad =
    outOfRange('protocol', c.protocol, 0xff) ??
    outOfRange('state', c.state, 0xffff) ??
    outOfRange('cport', c.cport, 0xffff) ??
    outOfRange('vport', c.vport, 0xffff) ??
    outOfRange('dport', c.dport, 0xffff) ??
    outOfRange('flags', c.flags, 0xffffffff) ??
    outOfRange('fwmark', c.fwmark, 0xffffffff) ??
    outOfRange('timeout', c.timeout, 0xffffffff);
  if (bad) return bad;
  if (c.peData && (c.peData.length === 0 || c.peData.length > PE_DATA_MAXLEN)) return `persistence data must be 1..${PE_DATA_MAXLEN} bytes`;
  if (c.peName !== undefined) {
    const n = Buffer.byteLength(c.peName, 'latin1');
    if (n === 0 || n > PE_NAME_MAXLEN) return `persistence engine name must be 1..${PE_NAME_MAXLEN} bytes`;
  }
  for (const o of c.extra ?? []) {
    if (!(o.type & IPVS_OPT_F_PARAM)) return `extra option type ${o.type} lacks the optional bit 0x40`;
    if (o.data.length === 0 || o.data.length > 255) return 'option data must be 1..255 bytes';
  }
  if (recordLength(c) > MAX_RECORD_LEN) return 'record too long';
  return undefined;
}

function writeSeq(b: Buffer, off: number, s: SeqInfo): number {
  b.writeUInt32BE(s.initSeq >>> 0, off);
  b.writeUInt32BE(s.delta >>> 0, off + 4);
  b.writeUInt32BE(s.previousDelta >>> 0, off + 8);
  return off + 12;
}

/** Writes one record at off; returns the offset after it (unpadded). The record must be valid. */
function writeRecord(b: Buffer, off: number, c: SyncConn): number {
  const len = recordLength(c);
  b[off] = c.family === 6 ? STYPE_F_INET6 : 0;
  b[off + 1] = c.protocol;
  b.writeUInt16BE(len & MAX_RECORD_LEN, off + 2); // record version 0 in the top 4 bits
  b.writeUInt32BE(c.flags >>> 0, off + 4);
  b.writeUInt16BE(c.state, off + 8);
  b.writeUInt16BE(c.cport, off + 10);
  b.writeUInt16BE(c.vport, off + 12);
  b.writeUInt16BE(c.dport, off + 14);
  b.writeUInt32BE(c.fwmark >>> 0, off + 16);
  b.writeUInt32BE(c.timeout >>> 0, off + 20);
  let p = off + 24;
  b.set(c.caddr, p);
  p += c.caddr.length;
  b.set(c.vaddr, p);
  p += c.vaddr.length;
  b.set(c.daddr, p);
  p += c.daddr.length;
  if (c.seq) {
    b[p++] = IPVS_OPT_SEQ_DATA;
    b[p++] = SEQ_OPT_LEN;
    p = writeSeq(b, p, c.seq.in);
    p = writeSeq(b, p, c.seq.out);
  }
  if (c.peData) {
    b[p++] = IPVS_OPT_PE_DATA;
    b[p++] = c.peData.length;
    b.set(c.peData, p);
    p += c.peData.length;
  }
  if (c.peName !== undefined) {
    const name = Buffer.from(c.peName, 'latin1');
    b[p++] = IPVS_OPT_PE_NAME;
    b[p++] = name.length;
    name.copy(b, p);
    p += name.length;
  }
  for (const o of c.extra ?? []) {
    b[p++] = o.type;
    b[p++] = o.data.length;
    b.set(o.data, p);
    p += o.data.length;
  }
  return p;
}

/** Size of a message holding these records (header, records, padding between them). */
export function messageLength(conns: readonly SyncConn[]): number {
  let n = MESSAGE_HEADER_LEN;
  conns.forEach((c, i) => {
    n = (i === 0 ? n : pad4(n)) + recordLength(c);
  });
  return n;
}

/** Throws RangeError for a syncid or a record that cannot be encoded (a programming error: records come from the kernel's table or from decode, both valid). */
function checkEncodable(syncid: number, conns: readonly SyncConn[]): void {
  if (!Number.isInteger(syncid) || syncid < 0 || syncid > 255) throw new RangeError(`syncid ${syncid} out of range 0..255`);
  for (const c of conns) {
    const why = recordProblem(c);
    if (why) throw new RangeError(`cannot encode sync record: ${why}`);
  }
}

/**
 * Writes the message of records conns[from, to) (its size known: messageLength) at off of b, a
 * zero-filled buffer (reserved, spare and padding stay 0).
 */
function writeMessage(b: Buffer, off: number, syncid: number, conns: readonly SyncConn[], from: number, to: number, size: number): void {
  b[off + 1] = syncid;
  b.writeUInt16BE(size, off + 2);
  b[off + 4] = to - from;
  b[off + 5] = SYNC_PROTO_VERSION;
  let p = off + MESSAGE_HEADER_LEN;
  for (let i = from; i < to; i++) {
    if (i > from) p = pad4(p - off) + off;
    p = writeRecord(b, p, conns[i]!);
  }
}

/**
 * Encodes one message. Throws RangeError for records that cannot be encoded (a programming error:
 * records come from the kernel's table or from decode, both valid) or for more than 255 records.
 */
export function encodeMessage(m: SyncMessage): Buffer {
  if (m.conns.length > MAX_RECORDS_PER_MESSAGE) throw new RangeError(`${m.conns.length} records: a message holds at most ${MAX_RECORDS_PER_MESSAGE}`);
  checkEncodable(m.syncid, m.conns);
  const size = messageLength(m.conns);
  if (size > 0xffff) throw new RangeError(`message of ${size} bytes exceeds 65535`);
  const b = Buffer.alloc(size); // zero-filled
  writeMessage(b, 0, m.syncid, m.conns, 0, m.conns.length, size);
  return b;
}

/**
 * One record as its own bytes (recordLength(c), unpadded): what the table worker keeps per
 * connection in its sent-map and packs into messages (packRecords). Throws RangeError for a record
 * that cannot be encoded (a programming error: records come from the kernel's table or from decode).
 */
export function encodeRecord(c: SyncConn): Buffer {
  const why = recordProblem(c);
  if (why) throw new RangeError(`cannot encode sync record: ${why}`);
  const b = Buffer.alloc(recordLength(c));
  writeRecord(b, 0, c);
  return b;
}

/**
 * Splits records into as few messages as fit maxLen bytes each (and 255 records), in order. maxLen is
 * the datagram payload budget: the path MTU less IP/UDP headers and anything the transport appends.
 * The messages are views into one buffer, each behind `prefix` zero bytes of its own (the caller's:
 * a DATA frame's sight stamp): one allocation for the whole table, and one buffer a worker thread
 * can transfer to the main thread instead of copying it (a 100,000-entry resync answer is 2,635
 * messages: their copy and one Buffer each held the answer back seconds in the lab guest,
 * bench/results/sync.md 2026-12-05 02:18). Views of `prefix + message` bytes.
 */
export function encodeMessages(syncid: number, conns: readonly SyncConn[], maxLen: number, prefix = 0): Buffer[] {
  if (!Number.isInteger(syncid) || syncid < 0 || syncid > 255) throw new RangeError(`syncid ${syncid} out of range 0..255`);
  return packRecords(syncid, conns.map(encodeRecord), maxLen, prefix);
}

/**
 * encodeMessages for records already as bytes (valid v1 records, each unpadded: encodeRecord's, or
 * the kernel's own as the table worker receives them from its master daemon): copied as they are,
 * no decoding and no re-encoding. The table worker forwards the kernel stream's records this way:
 * decoding each into objects and encoding it again cost most of its time at 5,000 records/s
 * (bench/results/sync.md, 2026-12-05 07:30).
 */
export function packRecords(syncid: number, recs: readonly Uint8Array[], maxLen: number, prefix = 0): Buffer[] {
  // The layout first (where each message ends, its size), then one buffer and the copies.
  const ends: number[] = [];
  const sizes: number[] = [];
  let count = 0;
  let size = MESSAGE_HEADER_LEN;
  let total = 0;
  for (let i = 0; i < recs.length; i++) {
    const len = recs[i]!.length;
    if (MESSAGE_HEADER_LEN + len > maxLen) throw new RangeError(`a ${len}-byte record does not fit a ${maxLen}-byte message`);
    const next = (count ? pad4(size) : size) + len;
    if (count === MAX_RECORDS_PER_MESSAGE || next > maxLen) {
      ends.push(i);
      sizes.push(size);
      total += prefix + size;
      count = 0;
      size = MESSAGE_HEADER_LEN + len;
    } else size = next;
    count++;
  }
  if (count) {
    ends.push(recs.length);
    sizes.push(size);
    total += prefix + size;
  }
  const b = Buffer.from(new ArrayBuffer(total)); // zero-filled: reserved, spare, padding and the prefixes
  const out: Buffer[] = [];
  let off = 0;
  let from = 0;
  for (let m = 0; m < ends.length; m++) {
    const at = off + prefix;
    b[at + 1] = syncid;
    b.writeUInt16BE(sizes[m]!, at + 2);
    b[at + 4] = ends[m]! - from;
    b[at + 5] = SYNC_PROTO_VERSION;
    let p = at + MESSAGE_HEADER_LEN;
    for (let i = from; i < ends[m]!; i++) {
      if (i > from) p = pad4(p - at) + at;
      b.set(recs[i]!, p);
      p += recs[i]!.length;
    }
    out.push(b.subarray(off, off + prefix + sizes[m]!));
    off += prefix + sizes[m]!;
    from = ends[m]!;
  }
  return out;
}

/** A plain Uint8Array copy (not a view into the datagram, not a Buffer). */
function copy(b: Uint8Array, off: number, len: number): Uint8Array {
  const out = new Uint8Array(len);
  out.set(b.subarray(off, off + len));
  return out;
}

const u16 = (b: Uint8Array, p: number): number => (b[p]! << 8) | b[p + 1]!;
const u32 = (b: Uint8Array, p: number): number => ((b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!) >>> 0;

function readSeq(b: Uint8Array, off: number): SeqInfo {
  return { initSeq: u32(b, off), delta: u32(b, off + 4), previousDelta: u32(b, off + 8) };
}

type WalkResult = { ok: true; syncid: number } | { ok: false; error: SyncDecodeError };

/**
 * The one walker of a message's framing, with the kernel's acceptance rules (ip_vs_process_message,
 * ip_vs_proc_sync_conn), stricter where the kernel is lenient only by accident (bytes after the last
 * record are rejected, options must come in the order the codec and the kernel write them: seq, pe
 * data, pe name, then optional ones; no duplicate), so that decode∘encode is the identity on every
 * accepted buffer. Fills `spans` with each record's start and end (pairs, unpadded) and allocates
 * nothing per record: every reader of the wire goes through here (decodeMessage, messageRecords).
 */
function walk(buf: Uint8Array, spans: number[]): WalkResult {
  spans.length = 0;
  if (buf.length < MESSAGE_HEADER_LEN) return fail('SHORT', `${buf.length} bytes: shorter than the 8-byte header`, 0);
  const size = u16(buf, 2);
  if (size !== buf.length) return fail('SIZE_MISMATCH', `header says ${size} bytes, datagram has ${buf.length}`, 2);
  if (buf[0] !== 0 || buf[5] !== SYNC_PROTO_VERSION || u16(buf, 6) !== 0) return fail('NOT_V1', 'not a version-1 sync message (reserved/version/spare)', 0);
  const n = buf[4]!;
  let p = MESSAGE_HEADER_LEN;
  for (let i = 0; i < n; i++) {
    if (i > 0) {
      const aligned = pad4(p);
      for (let k = p; k < aligned && k < buf.length; k++) if (buf[k] !== 0) return fail('TRAILING_BYTES', 'non-zero padding between records', k);
      p = aligned;
    }
    if (p + RECORD_V4_LEN > buf.length) return fail('TRUNCATED_RECORD', `record ${i} starts at ${p} and does not fit`, Math.min(p, buf.length));
    const type = buf[p]!;
    const verSize = u16(buf, p + 2);
    if (verSize >> 12) return fail('RECORD_VERSION', `record ${i} has version ${verSize >> 12} (must be 0)`, p + 2);
    const len = verSize & MAX_RECORD_LEN;
    const end = p + len;
    if (end > buf.length) return fail('TRUNCATED_RECORD', `record ${i} says ${len} bytes, past the end`, p + 2);
    if (type !== 0 && type !== STYPE_F_INET6) return fail('RECORD_TYPE', `record ${i} has unknown type ${type}`, p);
    const base = 24 + 3 * (type === STYPE_F_INET6 ? 16 : 4);
    if (len < base) return fail('RECORD_LENGTH', `record ${i} is ${len} bytes, IPv${type === STYPE_F_INET6 ? 6 : 4} needs ${base}`, p + 2);
    // Options seen so far, as the order they must come in: 1 seq, 2 pe data, 3 pe name, 4 optional ones.
    let last = 0;
    for (let q = p + base; q < end; ) {
      if (q + 2 > end) return fail('BAD_OPTION', `record ${i}: option header cut short`, q);
      const otype = buf[q]!;
      const olen = buf[q + 1]!;
      if (olen === 0 || q + 2 + olen > end) return fail('BAD_OPTION', `record ${i}: option ${otype} of length ${olen} does not fit`, q);
      const mandatory = !(otype & IPVS_OPT_F_PARAM);
      if (mandatory && otype === IPVS_OPT_SEQ_DATA && last < 4) {
        if (olen !== SEQ_OPT_LEN) return fail('BAD_OPTION', `record ${i}: sequence option of ${olen} bytes (must be ${SEQ_OPT_LEN})`, q);
        if (last >= 1) return fail('DUPLICATE_OPTION', `record ${i}: sequence option twice or out of order`, q);
        last = 1;
      } else if (mandatory && otype === IPVS_OPT_PE_DATA && last < 4) {
        if (last >= 2) return fail('DUPLICATE_OPTION', `record ${i}: persistence data twice or out of order`, q);
        last = 2;
      } else if (mandatory && otype === IPVS_OPT_PE_NAME && last < 4) {
        if (last >= 3) return fail('DUPLICATE_OPTION', `record ${i}: persistence engine name twice`, q);
        if (olen > PE_NAME_MAXLEN) return fail('BAD_OPTION', `record ${i}: persistence engine name of ${olen} bytes`, q);
        last = 3;
      } else if (!mandatory) {
        last = 4;
      } else {
        return fail('UNKNOWN_MANDATORY_OPTION', `record ${i}: option ${otype} is unknown or out of order and not optional`, q);
      }
      q += 2 + olen;
    }
    spans.push(p, end);
    p = end;
  }
  if (p !== buf.length) return fail('TRAILING_BYTES', `${buf.length - p} bytes after the last record`, p);
  return { ok: true, syncid: buf[1]! };
}

/**
 * The records of a message without decoding them: fills `out` with each record's start and end
 * (pairs, unpadded) and returns true, or returns false (out then holds nothing useful) when the
 * buffer is not a valid v1 message (decodeMessage's rules: the same walker). One array, reused by
 * the caller, and no object per record: the receiver of a peer's frames and the table worker's
 * kernel stream walk every message this way; read a record's fields with the record* functions.
 */
export function messageRecords(buf: Uint8Array, out: number[]): boolean {
  return walk(buf, out).ok;
}

/**
 * The record of an accepted message (decodeMessage, messageRecords) that starts at byte p, decoded:
 * its options as the walker let them through (in order, no duplicate, known sizes).
 */
export function recordAt(buf: Uint8Array, p: number): SyncConn {
  const family = buf[p] === STYPE_F_INET6 ? 6 : 4;
  const alen = family === 6 ? 16 : 4;
  const end = p + (u16(buf, p + 2) & MAX_RECORD_LEN);
  let seq: SyncConn['seq'];
  let peData: Uint8Array | undefined;
  let peName: string | undefined;
  let extra: RawOption[] | undefined;
  for (let q = p + 24 + 3 * alen; q < end; ) {
    const otype = buf[q]!;
    const olen = buf[q + 1]!;
    const data = q + 2;
    if (otype === IPVS_OPT_SEQ_DATA) seq = { in: readSeq(buf, data), out: readSeq(buf, data + 12) };
    else if (otype === IPVS_OPT_PE_DATA) peData = copy(buf, data, olen);
    else if (otype === IPVS_OPT_PE_NAME) peName = Buffer.from(buf.buffer, buf.byteOffset + data, olen).toString('latin1');
    else (extra ??= []).push({ type: otype, data: copy(buf, data, olen) });
    q = data + olen;
  }
  return {
    family,
    protocol: buf[p + 1]!,
    flags: recordFlags(buf, p),
    state: recordState(buf, p),
    cport: u16(buf, p + 10),
    vport: u16(buf, p + 12),
    dport: u16(buf, p + 14),
    fwmark: u32(buf, p + 16),
    timeout: recordTimeout(buf, p),
    caddr: copy(buf, p + 24, alen),
    vaddr: copy(buf, p + 24 + alen, alen),
    daddr: copy(buf, p + 24 + 2 * alen, alen),
    ...(seq ? { seq } : {}),
    ...(peData ? { peData } : {}),
    ...(peName !== undefined ? { peName } : {}),
    ...(extra ? { extra } : {}),
  };
}

/** Decodes a version-1 message (walk's rules): a typed error for anything it does not accept. */
export function decodeMessage(buf: Uint8Array): DecodeResult {
  const spans: number[] = [];
  const r = walk(buf, spans);
  if (!r.ok) return r;
  const conns: SyncConn[] = [];
  for (let i = 0; i < spans.length; i += 2) conns.push(recordAt(buf, spans[i]!));
  return { ok: true, message: { syncid: r.syncid, conns } };
}

/** Fields of the record at byte offset p of an accepted message (messageRecords). */
export const recordProtocol = (b: Uint8Array, p: number): number => b[p + 1]!;
export const recordFlags = (b: Uint8Array, p: number): number => u32(b, p + 4);
export const recordState = (b: Uint8Array, p: number): number => u16(b, p + 8);
export const recordTimeout = (b: Uint8Array, p: number): number => u32(b, p + 20);

/**
 * A record's identity as a string of 16-bit units, from its bytes: protocol and the template flag,
 * cport, vport, caddr, vaddr (7 units for IPv4, 19 for IPv6: the families never collide). The same
 * connection gives the same key whichever message carries it.
 */
export function recordKey(b: Uint8Array, p: number): string {
  const head = b[p + 1]! | ((b[p + 6]! & 0x10) << 4); // IP_VS_CONN_F_TEMPLATE = 0x1000: bit 4 of flags' third byte
  if (b[p] === STYPE_F_INET6) {
    let k = String.fromCharCode(head | 0x200, u16(b, p + 10), u16(b, p + 12));
    for (let i = p + 24; i < p + 56; i += 2) k += String.fromCharCode(u16(b, i));
    return k;
  }
  return String.fromCharCode(head, u16(b, p + 10), u16(b, p + 12), u16(b, p + 24), u16(b, p + 26), u16(b, p + 28), u16(b, p + 30));
}

/**
 * Whether two records (of accepted messages) are the same connection: recordKey's fields compared
 * as bytes (protocol, template flag, cport, vport, caddr, vaddr; the family by the type byte), no
 * string built: the peer table (peer-table.ts) compares and hashes every received record so.
 */
export function sameRecordConn(a: Uint8Array, p: number, b: Uint8Array, q: number): boolean {
  if (a[p] !== b[q] || a[p + 1] !== b[q + 1] || (a[p + 6]! & 0x10) !== (b[q + 6]! & 0x10)) return false;
  for (let i = 10; i < 14; i++) if (a[p + i] !== b[q + i]) return false;
  const n = 24 + 2 * (a[p] === STYPE_F_INET6 ? 16 : 4);
  for (let i = 24; i < n; i++) if (a[p + i] !== b[q + i]) return false;
  return true;
}

/** A 32-bit hash of sameRecordConn's identity bytes (FNV-1a over them). */
export function recordConnHash(b: Uint8Array, p: number): number {
  let h = Math.imul(2166136261 ^ b[p]!, 16777619);
  h = Math.imul(h ^ b[p + 1]!, 16777619);
  h = Math.imul(h ^ (b[p + 6]! & 0x10), 16777619);
  for (let i = 10; i < 14; i++) h = Math.imul(h ^ b[p + i]!, 16777619);
  const n = 24 + 2 * (b[p] === STYPE_F_INET6 ? 16 : 4);
  for (let i = 24; i < n; i++) h = Math.imul(h ^ b[p + i]!, 16777619);
  return h >>> 0;
}

/**
 * One message holding the records of `msgs`, in order (valid messages of one syncid, at most 255
 * records together): the bytes of encodeMessage over all their records, joined without decoding
 * (each message's records as they are, padded to 4 bytes between messages as between records).
 */
export function joinMessages(msgs: readonly Uint8Array[]): Buffer {
  let size = MESSAGE_HEADER_LEN;
  let count = 0;
  for (const m of msgs) {
    if (!m[4]) continue;
    if (count) size = pad4(size);
    size += m.length - MESSAGE_HEADER_LEN;
    count += m[4];
  }
  if (count > MAX_RECORDS_PER_MESSAGE) throw new RangeError(`${count} records: a message holds at most ${MAX_RECORDS_PER_MESSAGE}`);
  if (size > 0xffff) throw new RangeError(`message of ${size} bytes exceeds 65535`);
  const b = Buffer.alloc(size); // zero-filled: reserved, spare and padding are 0
  b[1] = msgs[0]?.[1] ?? 0;
  b.writeUInt16BE(size, 2);
  b[4] = count;
  b[5] = SYNC_PROTO_VERSION;
  let p = MESSAGE_HEADER_LEN;
  for (const m of msgs) {
    if (!m[4]) continue;
    if (p > MESSAGE_HEADER_LEN) p = pad4(p);
    b.set(m.subarray(MESSAGE_HEADER_LEN), p);
    p += m.length - MESSAGE_HEADER_LEN;
  }
  return b;
}
