/**
 * Pure codec for the generic-netlink "IPVS" family (kernel net/netfilter/ipvs/ip_vs_ctl.c,
 * attribute numbers from include/uapi/linux/ip_vs.h) and for the parts of netlink (RFC 3549,
 * include/uapi/linux/netlink.h, genetlink.h) needed around it. No I/O here: bytes in, bytes out.
 *
 * Layout reminders:
 *  nlmsghdr  = len u32 | type u16 | flags u16 | seq u32 | pid u32          (host order = LE here)
 *  genlmsghdr= cmd u8 | version u8 | reserved u16
 *  nlattr    = len u16 | type u16 (bit 15 NLA_F_NESTED) | payload, padded to 4
 * Nested attributes are written with NLA_F_NESTED set, as libnl (and so ipvsadm) does.
 * Every decode error is an LvsdError with code NETLINK_DECODE; nothing here throws anything else.
 */
import { LvsdError } from '../core/errors.js';
import { bytesToIp, parseIp } from '../core/address.js';
import {
  FAMILY_AF, FWD_NUM, PROTO_NUM, TUN_NUM, SVC_F_USER_MASK,
  type FwdMethod, type IpvsDaemon, type IpvsDest, type IpvsInfo, type IpvsProtocol, type IpvsService,
  type IpvsServiceId, type IpvsStats, type IpvsTimeouts, type TunType,
} from './model.js';

// ------------------------------------------------------------------ constants
export const NLMSG_HDRLEN = 16;
export const GENL_HDRLEN = 4;
export const NLMSG_NOOP = 1;
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
export const NLM_F_REQUEST = 0x1;
export const NLM_F_MULTI = 0x2;
export const NLM_F_ACK = 0x4;
export const NLM_F_DUMP = 0x300; // ROOT | MATCH
export const NLA_F_NESTED = 0x8000;
export const NLA_TYPE_MASK = 0x3fff;

export const GENL_ID_CTRL = 0x10;
export const CTRL_CMD_NEWFAMILY = 1;
export const CTRL_CMD_GETFAMILY = 3;
export const CTRL_ATTR_FAMILY_ID = 1;
export const CTRL_ATTR_FAMILY_NAME = 2;
export const CTRL_ATTR_VERSION = 3;
export const CTRL_ATTR_MAXATTR = 5;

export const IPVS_GENL_NAME = 'IPVS';
/** IPVS_GENL_VERSION. */
export const IPVS_GENL_VERSION = 1;

export const IPVS_CMD = {
  NEW_SERVICE: 1, SET_SERVICE: 2, DEL_SERVICE: 3, GET_SERVICE: 4,
  NEW_DEST: 5, SET_DEST: 6, DEL_DEST: 7, GET_DEST: 8,
  NEW_DAEMON: 9, DEL_DAEMON: 10, GET_DAEMON: 11,
  SET_CONFIG: 12, GET_CONFIG: 13, SET_INFO: 14, GET_INFO: 15, ZERO: 16, FLUSH: 17,
} as const;

export const IPVS_CMD_ATTR = { SERVICE: 1, DEST: 2, DAEMON: 3, TIMEOUT_TCP: 4, TIMEOUT_TCP_FIN: 5, TIMEOUT_UDP: 6 } as const;
export const SVC_ATTR = {
  AF: 1, PROTOCOL: 2, ADDR: 3, PORT: 4, FWMARK: 5, SCHED_NAME: 6, FLAGS: 7, TIMEOUT: 8, NETMASK: 9,
  STATS: 10, PE_NAME: 11, STATS64: 12,
} as const;
export const DEST_ATTR = {
  ADDR: 1, PORT: 2, FWD_METHOD: 3, WEIGHT: 4, U_THRESH: 5, L_THRESH: 6, ACTIVE_CONNS: 7, INACT_CONNS: 8,
  PERSIST_CONNS: 9, STATS: 10, ADDR_FAMILY: 11, STATS64: 12, TUN_TYPE: 13, TUN_PORT: 14, TUN_FLAGS: 15,
} as const;
export const DAEMON_ATTR = {
  STATE: 1, MCAST_IFN: 2, SYNC_ID: 3, SYNC_MAXLEN: 4, MCAST_GROUP: 5, MCAST_GROUP6: 6, MCAST_PORT: 7, MCAST_TTL: 8,
} as const;
export const STATS_ATTR = {
  CONNS: 1, INPKTS: 2, OUTPKTS: 3, INBYTES: 4, OUTBYTES: 5, CPS: 6, INPPS: 7, OUTPPS: 8, INBPS: 9, OUTBPS: 10,
} as const;
export const INFO_ATTR = { VERSION: 1, CONN_TAB_SIZE: 2 } as const;
/** IP_VS_STATE_MASTER / BACKUP. */
export const STATE_MASTER = 1;
export const STATE_BACKUP = 2;
/** IP_VS_CONN_F_FWD_MASK. */
const FWD_MASK = 0x7;

function decodeError(msg: string, cause?: unknown): LvsdError {
  return new LvsdError('NETLINK_DECODE', `netlink decode: ${msg}`, cause ? { cause } : undefined);
}

// ------------------------------------------------------------------ writer
/** Grows as needed; attributes are appended in call order (the kernel does not care, tests do). */
export class AttrWriter {
  private buf: Buffer;
  private off: number;
  constructor(initial = 256, private readonly base = 0) {
    // Pooled, uninitialised memory: every byte up to `off` is written explicitly (padding included).
    this.buf = Buffer.allocUnsafe(initial);
    this.off = base;
  }
  private room(n: number): void {
    if (this.off + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.off + n));
    this.buf.copy(next, 0, 0, this.off);
    this.buf = next;
  }
  private header(type: number, payloadLen: number): number {
    const total = 4 + payloadLen;
    this.room((total + 3) & ~3);
    const at = this.off;
    this.buf.writeUInt16LE(total, at);
    this.buf.writeUInt16LE(type, at + 2);
    this.off += 4;
    return at;
  }
  private pad(): void {
    const aligned = (this.off + 3) & ~3;
    this.buf.fill(0, this.off, aligned);
    this.off = aligned;
  }
  u8(type: number, v: number): this {
    this.header(type, 1);
    this.buf.writeUInt8(v & 0xff, this.off);
    this.off += 1;
    this.pad();
    return this;
  }
  u16(type: number, v: number): this {
    this.header(type, 2);
    this.buf.writeUInt16LE(v & 0xffff, this.off);
    this.off += 2;
    this.pad();
    return this;
  }
  /** Network byte order (ports; kernel __be16). */
  be16(type: number, v: number): this {
    this.header(type, 2);
    this.buf.writeUInt16BE(v & 0xffff, this.off);
    this.off += 2;
    this.pad();
    return this;
  }
  u32(type: number, v: number): this {
    this.header(type, 4);
    this.buf.writeUInt32LE(v >>> 0, this.off);
    this.off += 4;
    return this;
  }
  be32(type: number, v: number): this {
    this.header(type, 4);
    this.buf.writeUInt32BE(v >>> 0, this.off);
    this.off += 4;
    return this;
  }
  /** Two consecutive u32 (struct ip_vs_flags { flags, mask }). */
  u32x2(type: number, a: number, b: number): this {
    this.header(type, 8);
    this.buf.writeUInt32LE(a >>> 0, this.off);
    this.buf.writeUInt32LE(b >>> 0, this.off + 4);
    this.off += 8;
    return this;
  }
  bytes(type: number, b: Uint8Array): this {
    this.header(type, b.length);
    this.buf.set(b, this.off);
    this.off += b.length;
    this.pad();
    return this;
  }
  /** NUL-terminated string (NLA_NUL_STRING / NLA_STRING as libnl's nla_put_string writes it). */
  str(type: number, s: string): this {
    const n = Buffer.byteLength(s);
    this.header(type, n + 1);
    this.buf.write(s, this.off);
    this.buf[this.off + n] = 0;
    this.off += n + 1;
    this.pad();
    return this;
  }
  nest(type: number, fill: (w: this) => void): this {
    const at = this.header(type | NLA_F_NESTED, 0);
    fill(this);
    this.buf.writeUInt16LE(this.off - at, at);
    return this;
  }
  /** Bytes written after `base`. */
  get length(): number {
    return this.off - this.base;
  }
  finish(): Buffer {
    return this.buf.subarray(0, this.off);
  }
}

export interface NlHeader {
  readonly type: number;
  readonly flags: number;
  readonly seq: number;
  readonly pid: number;
}

/** A whole generic-netlink request: nlmsghdr + genlmsghdr + attributes. */
export function genlMessage(h: NlHeader, cmd: number, version: number, attrs: (w: AttrWriter) => void): Buffer {
  const w = new AttrWriter(256, NLMSG_HDRLEN + GENL_HDRLEN);
  attrs(w);
  const b = w.finish();
  b.writeUInt32LE(b.length, 0);
  b.writeUInt16LE(h.type, 4);
  b.writeUInt16LE(h.flags, 6);
  b.writeUInt32LE(h.seq >>> 0, 8);
  b.writeUInt32LE(h.pid >>> 0, 12);
  b.writeUInt8(cmd, 16);
  b.writeUInt8(version, 17);
  b.writeUInt16LE(0, 18);
  return b;
}

// ------------------------------------------------------------------ reader
export interface NlMessage {
  readonly len: number;
  readonly type: number;
  readonly flags: number;
  readonly seq: number;
  readonly pid: number;
  /** Everything after the 16-byte header (a view). */
  readonly payload: Buffer;
}

/** Split one datagram into netlink messages (NLMSG_ALIGN between them). */
export function parseMessages(buf: Buffer): NlMessage[] {
  const out: NlMessage[] = [];
  let off = 0;
  while (off + NLMSG_HDRLEN <= buf.length) {
    const len = buf.readUInt32LE(off);
    if (len < NLMSG_HDRLEN || off + len > buf.length) throw decodeError(`message length ${len} at offset ${off} exceeds datagram of ${buf.length}`);
    out.push({
      len,
      type: buf.readUInt16LE(off + 4),
      flags: buf.readUInt16LE(off + 6),
      seq: buf.readUInt32LE(off + 8),
      pid: buf.readUInt32LE(off + 12),
      payload: buf.subarray(off + NLMSG_HDRLEN, off + len),
    });
    off += (len + 3) & ~3;
  }
  if (off < buf.length && buf.length - off >= 1 && out.length === 0) throw decodeError(`datagram of ${buf.length} bytes too short for a header`);
  return out;
}

/** NLMSG_ERROR payload: error i32 (negative errno, 0 = ACK) then the offending header. */
export function parseErrorPayload(p: Buffer): { errno: number; seq?: number } {
  if (p.length < 4) throw decodeError('NLMSG_ERROR payload shorter than 4 bytes');
  const err = p.readInt32LE(0);
  const seq = p.length >= 4 + NLMSG_HDRLEN ? p.readUInt32LE(4 + 8) : undefined;
  return seq === undefined ? { errno: -err } : { errno: -err, seq };
}

// ------------------------------------------------------------------ family resolution
export function encodeGetFamily(seq: number, pid: number, name = IPVS_GENL_NAME): Buffer {
  return genlMessage({ type: GENL_ID_CTRL, flags: NLM_F_REQUEST | NLM_F_ACK, seq, pid }, CTRL_CMD_GETFAMILY, 1, (w) => w.str(CTRL_ATTR_FAMILY_NAME, name));
}

export function decodeFamily(payload: Buffer): { id: number; name: string; version: number; maxattr: number } {
  const a = genlAttrs(ctrlIndex, payload);
  a.need(CTRL_ATTR_FAMILY_ID, 'CTRL_ATTR_FAMILY_ID');
  a.need(CTRL_ATTR_FAMILY_NAME, 'CTRL_ATTR_FAMILY_NAME');
  return {
    id: a.u16(CTRL_ATTR_FAMILY_ID, 'family id')!,
    name: a.str(CTRL_ATTR_FAMILY_NAME),
    version: a.u32(CTRL_ATTR_VERSION, 'version') ?? 0,
    maxattr: a.u32(CTRL_ATTR_MAXATTR, 'maxattr') ?? 0,
  };
}

// ------------------------------------------------------------------ IPVS encoders
/** Parsed addresses, reused: a table repeats the same few hundred addresses many times. */
const addrCache = new Map<string, Uint8Array>();
function addrBytes16(addr: string): Uint8Array {
  const hit = addrCache.get(addr);
  if (hit) return hit;
  // The kernel reads sizeof(union nf_inet_addr) = 16 bytes; IPv4 sits in the first 4 (ipvsadm sends 16).
  const p = parseIp(addr);
  if (!p) throw new LvsdError('IPVS_INVALID', `not an IP address: ${addr}`);
  const out = new Uint8Array(16);
  out.set(p.bytes, 0);
  if (addrCache.size > 65536) addrCache.clear();
  addrCache.set(addr, out);
  return out;
}

/**
 * IPVS_CMD_ATTR_SERVICE. `full` adds what NEW/SET need (scheduler, flags, timeout, netmask, pe);
 * identity-only is enough for DEL_SERVICE and for the service part of dest commands — but
 * ipvsadm always sends the full form, and so do we for byte equality (the kernel ignores extras).
 * Attribute order follows libipvs's ipvs_nl_fill_service_attr.
 */
export function writeService(w: AttrWriter, s: IpvsServiceId & Partial<IpvsService>, full: boolean): void {
  w.nest(IPVS_CMD_ATTR.SERVICE, () => {
    w.u16(SVC_ATTR.AF, FAMILY_AF[s.family]);
    if (s.fwmark) {
      w.u32(SVC_ATTR.FWMARK, s.fwmark);
    } else {
      w.u16(SVC_ATTR.PROTOCOL, PROTO_NUM[s.protocol]);
      w.bytes(SVC_ATTR.ADDR, addrBytes16(s.addr));
      w.be16(SVC_ATTR.PORT, s.port);
    }
    if (!full) return;
    w.str(SVC_ATTR.SCHED_NAME, s.scheduler ?? '');
    if (s.pe_name) w.str(SVC_ATTR.PE_NAME, s.pe_name);
    // struct ip_vs_flags { flags, mask }: mask ~0 replaces every flag bit (as ipvsadm does).
    w.u32x2(SVC_ATTR.FLAGS, s.flags ?? 0, 0xffffffff);
    w.u32(SVC_ATTR.TIMEOUT, s.timeout ?? 0);
    // IPv4: the mask itself in network order (kernel __be32); IPv6: a prefix length, host order.
    const nm = s.netmask ?? (s.family === 6 ? 128 : 0xffffffff);
    if (s.family === 4) w.be32(SVC_ATTR.NETMASK, nm);
    else w.u32(SVC_ATTR.NETMASK, nm);
  });
}

/** IPVS_CMD_ATTR_DEST in libipvs's order (ipvs_nl_fill_dest_attr). */
export function writeDest(w: AttrWriter, d: Pick<IpvsDest, 'addr' | 'port' | 'family'> & Partial<IpvsDest>, full: boolean): void {
  w.nest(IPVS_CMD_ATTR.DEST, () => {
    w.u16(DEST_ATTR.ADDR_FAMILY, FAMILY_AF[d.family]);
    w.bytes(DEST_ATTR.ADDR, addrBytes16(d.addr));
    w.be16(DEST_ATTR.PORT, d.port);
    if (!full) return;
    w.u32(DEST_ATTR.FWD_METHOD, FWD_NUM[d.fwd ?? 'nat']);
    w.u32(DEST_ATTR.WEIGHT, d.weight ?? 0);
    w.u8(DEST_ATTR.TUN_TYPE, TUN_NUM[d.tun_type ?? 'ipip']);
    w.be16(DEST_ATTR.TUN_PORT, d.tun_port ?? 0);
    w.u16(DEST_ATTR.TUN_FLAGS, d.tun_flags ?? 0);
    w.u32(DEST_ATTR.U_THRESH, d.u_threshold ?? 0);
    w.u32(DEST_ATTR.L_THRESH, d.l_threshold ?? 0);
  });
}

export interface Hdr {
  readonly family: number;
  readonly seq: number;
  readonly pid: number;
}

const REQ_ACK = NLM_F_REQUEST | NLM_F_ACK;

function ipvs(h: Hdr, cmd: number, flags: number, attrs: (w: AttrWriter) => void): Buffer {
  return genlMessage({ type: h.family, flags, seq: h.seq, pid: h.pid }, cmd, IPVS_GENL_VERSION, attrs);
}

export function encodeNewService(h: Hdr, s: IpvsService): Buffer {
  return ipvs(h, IPVS_CMD.NEW_SERVICE, REQ_ACK, (w) => writeService(w, s, true));
}
export function encodeSetService(h: Hdr, s: IpvsService): Buffer {
  return ipvs(h, IPVS_CMD.SET_SERVICE, REQ_ACK, (w) => writeService(w, s, true));
}
/** ipvsadm sends the full service (scheduler "" etc.); `s` may be only an id. */
export function encodeDelService(h: Hdr, s: IpvsServiceId): Buffer {
  return ipvs(h, IPVS_CMD.DEL_SERVICE, REQ_ACK, (w) => writeService(w, idOnly(s), true));
}
/**
 * Dest commands carry the service's identity; like ipvsadm we send it in the full form with an empty
 * scheduler and default flags/timeout/netmask (the kernel only looks the service up by identity).
 */
function idOnly(s: IpvsServiceId): IpvsServiceId {
  return { family: s.family, protocol: s.protocol, addr: s.addr, port: s.port, fwmark: s.fwmark };
}
export function encodeNewDest(h: Hdr, s: IpvsServiceId, d: IpvsDest): Buffer {
  return ipvs(h, IPVS_CMD.NEW_DEST, REQ_ACK, (w) => { writeService(w, idOnly(s), true); writeDest(w, d, true); });
}
export function encodeSetDest(h: Hdr, s: IpvsServiceId, d: IpvsDest): Buffer {
  return ipvs(h, IPVS_CMD.SET_DEST, REQ_ACK, (w) => { writeService(w, idOnly(s), true); writeDest(w, d, true); });
}
/** Only the dest identity matters to the kernel; the other fields are sent as ipvsadm does. */
export function encodeDelDest(h: Hdr, s: IpvsServiceId, d: Pick<IpvsDest, 'addr' | 'port' | 'family'> & Partial<IpvsDest>): Buffer {
  return ipvs(h, IPVS_CMD.DEL_DEST, REQ_ACK, (w) => { writeService(w, idOnly(s), true); writeDest(w, d, true); });
}
export function encodeGetServices(h: Hdr): Buffer {
  return ipvs(h, IPVS_CMD.GET_SERVICE, REQ_ACK | NLM_F_DUMP, () => {});
}
export function encodeGetService(h: Hdr, s: IpvsServiceId): Buffer {
  return ipvs(h, IPVS_CMD.GET_SERVICE, REQ_ACK, (w) => writeService(w, s, false));
}
export function encodeGetDests(h: Hdr, s: IpvsServiceId): Buffer {
  return ipvs(h, IPVS_CMD.GET_DEST, REQ_ACK | NLM_F_DUMP, (w) => writeService(w, s, false));
}
export function encodeGetInfo(h: Hdr): Buffer {
  return ipvs(h, IPVS_CMD.GET_INFO, REQ_ACK, () => {});
}
export function encodeFlush(h: Hdr): Buffer {
  return ipvs(h, IPVS_CMD.FLUSH, REQ_ACK, () => {});
}
export function encodeGetTimeouts(h: Hdr): Buffer {
  return ipvs(h, IPVS_CMD.GET_CONFIG, REQ_ACK, () => {});
}
/** 0 / absent = leave the kernel's value (ip_vs_set_timeout only applies values > 0). */
export function encodeSetTimeouts(h: Hdr, t: Partial<IpvsTimeouts>): Buffer {
  return ipvs(h, IPVS_CMD.SET_CONFIG, REQ_ACK, (w) => {
    w.u32(IPVS_CMD_ATTR.TIMEOUT_TCP, t.tcp ?? 0);
    w.u32(IPVS_CMD_ATTR.TIMEOUT_TCP_FIN, t.tcp_fin ?? 0);
    w.u32(IPVS_CMD_ATTR.TIMEOUT_UDP, t.udp ?? 0);
  });
}
export function encodeNewDaemon(h: Hdr, d: IpvsDaemon): Buffer {
  return ipvs(h, IPVS_CMD.NEW_DAEMON, REQ_ACK, (w) =>
    w.nest(IPVS_CMD_ATTR.DAEMON, () => {
      w.u32(DAEMON_ATTR.STATE, d.state === 'master' ? STATE_MASTER : STATE_BACKUP);
      w.str(DAEMON_ATTR.MCAST_IFN, d.mcast_ifn);
      w.u32(DAEMON_ATTR.SYNC_ID, d.syncid);
      if (d.maxlen) w.u16(DAEMON_ATTR.SYNC_MAXLEN, d.maxlen);
      if (d.mcast_group) {
        const g = parseIp(d.mcast_group);
        if (!g) throw new LvsdError('IPVS_INVALID', `bad multicast group ${d.mcast_group}`);
        if (g.family === 4) w.bytes(DAEMON_ATTR.MCAST_GROUP, g.bytes);
        else w.bytes(DAEMON_ATTR.MCAST_GROUP6, g.bytes);
      }
      // Host byte order: the kernel reads it with nla_get_u16 and applies htons itself (ip_vs_ctl.c).
      if (d.mcast_port) w.u16(DAEMON_ATTR.MCAST_PORT, d.mcast_port);
      if (d.mcast_ttl) w.u8(DAEMON_ATTR.MCAST_TTL, d.mcast_ttl);
    }),
  );
}
export function encodeDelDaemon(h: Hdr, state: IpvsDaemon['state']): Buffer {
  return ipvs(h, IPVS_CMD.DEL_DAEMON, REQ_ACK, (w) =>
    w.nest(IPVS_CMD_ATTR.DAEMON, () => {
      // ipvsadm also sends an empty interface and sync id 0; the kernel only reads the state.
      w.u32(DAEMON_ATTR.STATE, state === 'master' ? STATE_MASTER : STATE_BACKUP);
      w.str(DAEMON_ATTR.MCAST_IFN, '');
      w.u32(DAEMON_ATTR.SYNC_ID, 0);
    }),
  );
}
export function encodeGetDaemons(h: Hdr): Buffer {
  return ipvs(h, IPVS_CMD.GET_DAEMON, REQ_ACK | NLM_F_DUMP, () => {});
}

// ------------------------------------------------------------------ IPVS decoders
const AF_FAMILY = new Map<number, 4 | 6>([[2, 4], [10, 6]]);
const PROTO_NAME = new Map<number, IpvsProtocol>([[6, 'tcp'], [17, 'udp'], [132, 'sctp']]);
const FWD_NAME = new Map<number, FwdMethod>(Object.entries(FWD_NUM).map(([k, v]) => [v, k as FwdMethod]));
const TUN_NAME = new Map<number, TunType>(Object.entries(TUN_NUM).map(([k, v]) => [v, k as TunType]));

function family(v: number, what: string): 4 | 6 {
  const f = AF_FAMILY.get(v);
  if (!f) throw decodeError(`${what}: unknown address family ${v}`);
  return f;
}
/**
 * Where each attribute of one nest lies, read in place: for type t (≤ the index's max) the value is
 * buf[at[2t], at[2t + 1]), -1 when absent; the last of a repeated type wins, and an attribute that
 * overruns the nest is an error. It is the one attribute reader of every reply: for the dump replies
 * of a large table, a Map and one Buffer view per attribute (3 million views for the 110,000 replies
 * of 10,000 services × 10 real servers) were most of the decode and its garbage
 * (bench/results/scrape.md). One index per nesting level, reused: decoding is synchronous.
 */
class AttrIndex {
  private readonly at: Int32Array;
  private buf: Buffer = Buffer.alloc(0);
  constructor(private readonly max: number) {
    this.at = new Int32Array(2 * (max + 1));
  }
  index(buf: Buffer, start = 0, end = buf.length): this {
    this.buf = buf;
    const at = this.at;
    // A loop, not at.fill(-1), and the header's bytes read directly: this runs three times per
    // destination reply (330,000 times per read of a 10,000 x 10 table).
    for (let i = 0; i < at.length; i++) at[i] = -1;
    let off = start;
    while (off + 4 <= end) {
      const len = buf[off]! | (buf[off + 1]! << 8);
      const type = (buf[off + 2]! | (buf[off + 3]! << 8)) & NLA_TYPE_MASK;
      if (len < 4 || off + len > end) throw decodeError(`attribute type ${type} length ${len} at offset ${off} overruns ${end}`);
      if (type <= this.max) {
        this.at[2 * type] = off + 4;
        this.at[2 * type + 1] = off + len;
      }
      off += (len + 3) & ~3;
    }
    return this;
  }
  has(t: number): boolean {
    return this.at[2 * t]! >= 0;
  }
  /** Start of the value of `t`, checked to hold `n` bytes; -1 when absent. */
  start(t: number, n: number, what: string): number {
    const s = this.at[2 * t]!;
    if (s < 0) return -1;
    const len = this.at[2 * t + 1]! - s;
    if (len < n) throw decodeError(n === 1 ? `${what}: expected 1 byte` : `${what}: expected ${n} bytes, got ${len}`);
    return s;
  }
  u8(t: number, what: string): number | undefined {
    const s = this.start(t, 1, what);
    return s < 0 ? undefined : this.buf[s]!;
  }
  u16(t: number, what: string): number | undefined {
    const s = this.start(t, 2, what);
    return s < 0 ? undefined : this.buf.readUInt16LE(s);
  }
  be16(t: number, what: string): number | undefined {
    const s = this.start(t, 2, what);
    return s < 0 ? undefined : this.buf.readUInt16BE(s);
  }
  u32(t: number, what: string): number | undefined {
    const s = this.start(t, 4, what);
    return s < 0 ? undefined : this.buf.readUInt32LE(s);
  }
  be32(t: number, what: string): number | undefined {
    const s = this.start(t, 4, what);
    return s < 0 ? undefined : this.buf.readUInt32BE(s);
  }
  /** A u64 as a number (counters other than bytes: exact far beyond any real count). */
  u64n(t: number, what: string): number | undefined {
    const s = this.start(t, 8, what);
    return s < 0 ? undefined : this.buf.readUInt32LE(s) + this.buf.readUInt32LE(s + 4) * 0x1_0000_0000;
  }
  /** A NUL-terminated string ('' when absent). */
  str(t: number): string {
    const s = this.at[2 * t]!;
    if (s < 0) return '';
    const e = this.at[2 * t + 1]!;
    const z = this.buf.indexOf(0, s);
    return this.buf.toString('latin1', s, z < 0 || z > e ? e : z);
  }
  need(t: number, what: string): void {
    if (!this.has(t)) throw decodeError(`missing ${what}`);
  }
  /** An address of family `fam` (IPv4 read in place). */
  addr(t: number, fam: 4 | 6, what: string): string {
    const n = fam === 4 ? 4 : 16;
    const s = this.at[2 * t]!;
    const len = this.at[2 * t + 1]! - s;
    if (len < n) throw decodeError(`${what}: ${len} address bytes for IPv${fam}`);
    const b = this.buf;
    if (fam === 4) return `${b[s]}.${b[s + 1]}.${b[s + 2]}.${b[s + 3]}`;
    return bytesToIp(b.subarray(s, s + n)).text;
  }
  /** Where the value of `t` starts (-1 when absent)… */
  startOf(t: number): number {
    return this.at[2 * t]!;
  }
  /** …and ends. */
  endOf(t: number): number {
    return this.at[2 * t + 1]!;
  }
  /** The [start, end) of a nest's value, or undefined when absent. */
  range(t: number): [number, number] | undefined {
    const s = this.at[2 * t]!;
    return s < 0 ? undefined : [s, this.at[2 * t + 1]!];
  }
  get bytes(): Buffer {
    return this.buf;
  }
}

const svcIndex = new AttrIndex(SVC_ATTR.STATS64);
const destIndex = new AttrIndex(DEST_ATTR.TUN_FLAGS);
const statsIndex = new AttrIndex(STATS_ATTR.OUTBPS);

/**
 * The counters of one IPVS_*_ATTR_STATS / _STATS64 nest, read into a reused record: the byte
 * counters as their two 32-bit halves (exact whatever their size; a number only below 2^53). The
 * readers of a large table (the table metrics' text) take the values from here without an object or
 * a BigInt per counter; statsObject() makes the model's IpvsStats of them.
 */
export class StatsRecord {
  conns = 0; inpkts = 0; outpkts = 0;
  inLo = 0; inHi = 0; outLo = 0; outHi = 0;
  cps = 0; inpps = 0; outpps = 0; inbps = 0; outbps = 0;
}

/** A u64 from its halves. */
export const u64Of = (lo: number, hi: number): bigint => (hi === 0 ? BigInt(lo) : (BigInt(hi) << 32n) | BigInt(lo));

export function statsObject(r: StatsRecord): IpvsStats {
  return {
    conns: r.conns, inpkts: r.inpkts, outpkts: r.outpkts, inbytes: u64Of(r.inLo, r.inHi), outbytes: u64Of(r.outLo, r.outHi),
    cps: r.cps, inpps: r.inpps, outpps: r.outpps, inbps: r.inbps, outbps: r.outbps,
  };
}

/** IPVS_*_ATTR_STATS (u32 counters, u64 bytes) or _STATS64 (all u64) in [start, end) of buf, into `r`. */
function readStatsAt(buf: Buffer, start: number, end: number, is64: boolean, r: StatsRecord): void {
  const a = statsIndex.index(buf, start, end);
  const n = is64 ? a.u64n : a.u32;
  r.conns = n.call(a, STATS_ATTR.CONNS, 'conns') ?? 0;
  r.inpkts = n.call(a, STATS_ATTR.INPKTS, 'inpkts') ?? 0;
  r.outpkts = n.call(a, STATS_ATTR.OUTPKTS, 'outpkts') ?? 0;
  let s = a.start(STATS_ATTR.INBYTES, 8, 'inbytes');
  r.inLo = s < 0 ? 0 : buf.readUInt32LE(s);
  r.inHi = s < 0 ? 0 : buf.readUInt32LE(s + 4);
  s = a.start(STATS_ATTR.OUTBYTES, 8, 'outbytes');
  r.outLo = s < 0 ? 0 : buf.readUInt32LE(s);
  r.outHi = s < 0 ? 0 : buf.readUInt32LE(s + 4);
  r.cps = n.call(a, STATS_ATTR.CPS, 'cps') ?? 0;
  r.inpps = n.call(a, STATS_ATTR.INPPS, 'inpps') ?? 0;
  r.outpps = n.call(a, STATS_ATTR.OUTPPS, 'outpps') ?? 0;
  r.inbps = n.call(a, STATS_ATTR.INBPS, 'inbps') ?? 0;
  r.outbps = n.call(a, STATS_ATTR.OUTBPS, 'outbps') ?? 0;
}

/** The stats of the nest indexed in `a` into `r` (the 64-bit ones when the kernel sent them); false when it sent none. */
function readStatsOf(a: AttrIndex, t32: number, t64: number, r: StatsRecord): boolean {
  if (a.startOf(t64) >= 0) readStatsAt(a.bytes, a.startOf(t64), a.endOf(t64), true, r);
  else if (a.startOf(t32) >= 0) readStatsAt(a.bytes, a.startOf(t32), a.endOf(t32), false, r);
  else return false;
  return true;
}

const svcStats = new StatsRecord();

/** The nested IPVS_CMD_ATTR_SERVICE of a GET_SERVICE reply (or request). */
export function decodeServiceAttrs(nest: Buffer, start = 0, end = nest.length): IpvsService {
  const a = svcIndex.index(nest, start, end);
  a.need(SVC_ATTR.AF, 'IPVS_SVC_ATTR_AF');
  const fam = family(a.u16(SVC_ATTR.AF, 'af')!, 'service');
  const fwmark = a.u32(SVC_ATTR.FWMARK, 'fwmark') ?? 0;
  const protoNum = a.u16(SVC_ATTR.PROTOCOL, 'protocol');
  let protocol: IpvsProtocol = 'tcp';
  if (protoNum !== undefined && protoNum !== 0) {
    const p = PROTO_NAME.get(protoNum);
    if (!p) throw decodeError(`service: unknown protocol ${protoNum}`);
    protocol = p;
  }
  const addr = fwmark || !a.has(SVC_ATTR.ADDR) ? (fam === 6 ? '::' : '0.0.0.0') : a.addr(SVC_ATTR.ADDR, fam, 'service address');
  const port = fwmark ? 0 : a.be16(SVC_ATTR.PORT, 'port') ?? 0;
  const flags = a.u32(SVC_ATTR.FLAGS, 'flags') ?? 0;
  let netmask: number;
  if (!a.has(SVC_ATTR.NETMASK)) netmask = fam === 6 ? 128 : 0xffffffff;
  else if (fam === 4) {
    const r = a.range(SVC_ATTR.NETMASK)!;
    if (r[1] - r[0] < 4) throw decodeError('netmask: short');
    netmask = a.be32(SVC_ATTR.NETMASK, 'netmask')!;
  } else netmask = a.u32(SVC_ATTR.NETMASK, 'netmask')!;
  const timeout = a.u32(SVC_ATTR.TIMEOUT, 'timeout') ?? 0;
  const scheduler = a.str(SVC_ATTR.SCHED_NAME);
  const pe_name = a.str(SVC_ATTR.PE_NAME);
  const stats = readStatsOf(a, SVC_ATTR.STATS, SVC_ATTR.STATS64, svcStats) ? statsObject(svcStats) : undefined;
  return {
    family: fam,
    protocol,
    addr,
    port,
    fwmark,
    scheduler,
    flags: flags & SVC_F_USER_MASK,
    timeout,
    netmask,
    pe_name,
    ...(stats ? { stats } : {}),
  };
}

/**
 * One destination of a GET_DEST reply, read into a reused record (no object, string or BigInt per
 * field but the address text): the one reader of destination replies. decodeDestAttrs() makes the
 * model's IpvsDest of it (lvsd ipvs show, the reconciler); the table metrics' worker takes the values
 * straight from it — at 10,000 × 10 the 100,000 destination and stats objects and 200,000 BigInts per
 * read, and the collection of them, were most of the worker's time (bench/results/scrape.md).
 */
export class DestRecord {
  /** The address's bytes: abuf[aat, aat + 4 or 16), in the reply (valid until the record's next read). */
  private abuf: Buffer = Buffer.alloc(0);
  private aat = 0;
  /** An IPv4 address as a number (the bytes read big-endian), -1 for IPv6: compared without making text. */
  addr4 = -1;
  port = 0;
  family: 4 | 6 = 4;
  fwd: FwdMethod = 'nat';
  weight = 0;
  u_threshold = 0;
  l_threshold = 0;
  tun_type: TunType = 'ipip';
  tun_port = 0;
  tun_flags = 0;
  /** -1: not in the reply (the kernel's values are unsigned). */
  active_conns = -1;
  inact_conns = -1;
  persist_conns = -1;
  hasStats = false;
  readonly stats = new StatsRecord();

  /** The address as text (made on each call). */
  get addr(): string {
    const b = this.abuf;
    const s = this.aat;
    if (this.family === 4) return `${b[s]}.${b[s + 1]}.${b[s + 2]}.${b[s + 3]}`;
    return bytesToIp(b.subarray(s, s + 16)).text;
  }
  /** Where the address lies (readDestAttrs, after checking its length). */
  setAddr(buf: Buffer, at: number): void {
    this.abuf = buf;
    this.aat = at;
    this.addr4 = this.family === 4 ? buf.readUInt32BE(at) : -1;
  }
}

/** The nested IPVS_CMD_ATTR_DEST in [start, end) of `nest` into `d`. `svcFamily` is used when no ADDR_FAMILY (old kernels). */
export function readDestAttrs(nest: Buffer, svcFamily: 4 | 6, start: number, end: number, d: DestRecord): void {
  const a = destIndex.index(nest, start, end);
  const afv = a.u16(DEST_ATTR.ADDR_FAMILY, 'dest af');
  const fam = afv !== undefined ? family(afv, 'dest') : svcFamily;
  a.need(DEST_ATTR.FWD_METHOD, 'IPVS_DEST_ATTR_FWD_METHOD');
  const fwdNum = a.u32(DEST_ATTR.FWD_METHOD, 'fwd')! & FWD_MASK;
  const fwd = FWD_NAME.get(fwdNum);
  if (!fwd) throw decodeError(`dest: unknown forwarding method ${fwdNum}`);
  const tunNum = a.u8(DEST_ATTR.TUN_TYPE, 'tun type') ?? 0;
  const tun = TUN_NAME.get(tunNum);
  if (!tun) throw decodeError(`dest: unknown tunnel type ${tunNum}`);
  d.active_conns = a.u32(DEST_ATTR.ACTIVE_CONNS, 'active') ?? -1;
  d.inact_conns = a.u32(DEST_ATTR.INACT_CONNS, 'inact') ?? -1;
  d.persist_conns = a.u32(DEST_ATTR.PERSIST_CONNS, 'persist') ?? -1;
  a.need(DEST_ATTR.ADDR, 'IPVS_DEST_ATTR_ADDR');
  const as = a.startOf(DEST_ATTR.ADDR);
  const alen = a.endOf(DEST_ATTR.ADDR) - as;
  if (alen < (fam === 4 ? 4 : 16)) throw decodeError(`dest address: ${alen} address bytes for IPv${fam}`);
  a.need(DEST_ATTR.PORT, 'IPVS_DEST_ATTR_PORT');
  d.port = a.be16(DEST_ATTR.PORT, 'dest port')!;
  a.need(DEST_ATTR.WEIGHT, 'IPVS_DEST_ATTR_WEIGHT');
  // The kernel's weight is an int; never negative in practice (it rejects < 0 on input).
  d.weight = a.u32(DEST_ATTR.WEIGHT, 'weight')! | 0;
  d.u_threshold = a.u32(DEST_ATTR.U_THRESH, 'u_thresh') ?? 0;
  d.l_threshold = a.u32(DEST_ATTR.L_THRESH, 'l_thresh') ?? 0;
  d.tun_port = a.be16(DEST_ATTR.TUN_PORT, 'tun port') ?? 0;
  d.tun_flags = a.u16(DEST_ATTR.TUN_FLAGS, 'tun flags') ?? 0;
  d.family = fam;
  d.setAddr(nest, as);
  d.fwd = fwd;
  d.tun_type = tun;
  d.hasStats = readStatsOf(a, DEST_ATTR.STATS, DEST_ATTR.STATS64, d.stats);
}

const destScratch = new DestRecord();

/** The nested IPVS_CMD_ATTR_DEST of a GET_DEST reply. `svcFamily` is used when no ADDR_FAMILY (old kernels). */
export function decodeDestAttrs(nest: Buffer, svcFamily: 4 | 6, start = 0, end = nest.length): IpvsDest {
  const r = destScratch;
  readDestAttrs(nest, svcFamily, start, end, r);
  // Optional fields assigned, not spread in: four spread objects per destination were a measurable
  // share of a large table's decode.
  const d: { -readonly [K in keyof IpvsDest]: IpvsDest[K] } = {
    addr: r.addr, port: r.port, family: r.family, fwd: r.fwd, weight: r.weight, u_threshold: r.u_threshold, l_threshold: r.l_threshold,
    tun_type: r.tun_type, tun_port: r.tun_port, tun_flags: r.tun_flags,
  };
  if (r.active_conns >= 0) d.active_conns = r.active_conns;
  if (r.inact_conns >= 0) d.inact_conns = r.inact_conns;
  if (r.persist_conns >= 0) d.persist_conns = r.persist_conns;
  if (r.hasStats) d.stats = statsObject(r.stats);
  return d;
}

const replyIndex = new AttrIndex(IPVS_CMD_ATTR.TIMEOUT_UDP);
const ctrlIndex = new AttrIndex(CTRL_ATTR_MAXATTR);
const infoIndex = new AttrIndex(INFO_ATTR.CONN_TAB_SIZE);
const daemonIndex = new AttrIndex(DAEMON_ATTR.MCAST_TTL);

/** The top-level attributes of a reply payload (genl header + attrs), indexed in `a`. */
function genlAttrs(a: AttrIndex, payload: Buffer): AttrIndex {
  if (payload.length < GENL_HDRLEN) throw decodeError('generic netlink payload shorter than its header');
  return a.index(payload, GENL_HDRLEN);
}

/** [start, end) of the nested attribute `t` of a reply payload (genl header + attrs). */
function replyNest(payload: Buffer, t: number, what: string): [number, number] {
  const r = genlAttrs(replyIndex, payload).range(t);
  if (!r) throw decodeError(`missing ${what}`);
  return r;
}

/** A GET_SERVICE reply message payload (genl header + attrs); also reads a request's service. */
export function decodeServiceReply(payload: Buffer): IpvsService {
  const [s, e] = replyNest(payload, IPVS_CMD_ATTR.SERVICE, 'IPVS_CMD_ATTR_SERVICE');
  return decodeServiceAttrs(payload, s, e);
}
export function decodeDestReply(payload: Buffer, svcFamily: 4 | 6): IpvsDest {
  const [s, e] = replyNest(payload, IPVS_CMD_ATTR.DEST, 'IPVS_CMD_ATTR_DEST');
  return decodeDestAttrs(payload, svcFamily, s, e);
}
/** A GET_DEST reply message payload into `d` (readDestAttrs). */
export function readDestReply(payload: Buffer, svcFamily: 4 | 6, d: DestRecord): void {
  const a = genlAttrs(replyIndex, payload);
  const s = a.startOf(IPVS_CMD_ATTR.DEST);
  if (s < 0) throw decodeError('missing IPVS_CMD_ATTR_DEST');
  readDestAttrs(payload, svcFamily, s, a.endOf(IPVS_CMD_ATTR.DEST), d);
}
export function decodeInfoReply(payload: Buffer): IpvsInfo {
  const a = genlAttrs(infoIndex, payload);
  a.need(INFO_ATTR.VERSION, 'IPVS_INFO_ATTR_VERSION');
  a.need(INFO_ATTR.CONN_TAB_SIZE, 'IPVS_INFO_ATTR_CONN_TAB_SIZE');
  return { version: a.u32(INFO_ATTR.VERSION, 'version')!, connTabSize: a.u32(INFO_ATTR.CONN_TAB_SIZE, 'size')! };
}
export function decodeTimeoutsReply(payload: Buffer): IpvsTimeouts {
  const a = genlAttrs(replyIndex, payload);
  return {
    tcp: a.u32(IPVS_CMD_ATTR.TIMEOUT_TCP, 'tcp') ?? 0,
    tcp_fin: a.u32(IPVS_CMD_ATTR.TIMEOUT_TCP_FIN, 'tcp_fin') ?? 0,
    udp: a.u32(IPVS_CMD_ATTR.TIMEOUT_UDP, 'udp') ?? 0,
  };
}
export function decodeDaemonReply(payload: Buffer): IpvsDaemon {
  const [s, e] = replyNest(payload, IPVS_CMD_ATTR.DAEMON, 'IPVS_CMD_ATTR_DAEMON');
  const a = daemonIndex.index(payload, s, e);
  for (const [t, what] of [[DAEMON_ATTR.STATE, 'state'], [DAEMON_ATTR.MCAST_IFN, 'mcast ifn'], [DAEMON_ATTR.SYNC_ID, 'sync id']] as const) a.need(t, what);
  const st = a.u32(DAEMON_ATTR.STATE, 'state')!;
  // An unset group reads as zeros: the kernel reports both families' attributes.
  const set = (t: number, n: number) => {
    const r = a.range(t);
    return r !== undefined && r[1] - r[0] >= n && payload.subarray(r[0], r[0] + n).some((x) => x !== 0);
  };
  const group = set(DAEMON_ATTR.MCAST_GROUP, 4) ? a.addr(DAEMON_ATTR.MCAST_GROUP, 4, 'group') : set(DAEMON_ATTR.MCAST_GROUP6, 16) ? a.addr(DAEMON_ATTR.MCAST_GROUP6, 6, 'group6') : undefined;
  const maxlen = a.u16(DAEMON_ATTR.SYNC_MAXLEN, 'maxlen');
  const port = a.u16(DAEMON_ATTR.MCAST_PORT, 'port');
  const ttl = a.u8(DAEMON_ATTR.MCAST_TTL, 'ttl');
  return {
    state: st & STATE_MASTER ? 'master' : 'backup',
    mcast_ifn: a.str(DAEMON_ATTR.MCAST_IFN),
    syncid: a.u32(DAEMON_ATTR.SYNC_ID, 'sync id')!,
    ...(maxlen !== undefined ? { maxlen } : {}),
    ...(group ? { mcast_group: group } : {}),
    ...(port !== undefined ? { mcast_port: port } : {}),
    ...(ttl !== undefined ? { mcast_ttl: ttl } : {}),
  };
}

/** Encode any planner op (used by the netlink dataplane and by tests). */
export function encodeOp(h: Hdr, op: import('./model.js').IpvsOp): Buffer {
  switch (op.op) {
    case 'add-service': return encodeNewService(h, op.service);
    case 'set-service': return encodeSetService(h, op.service);
    case 'del-service': return encodeDelService(h, op.service);
    case 'add-dest': return encodeNewDest(h, op.service, op.dest);
    case 'set-dest': return encodeSetDest(h, op.service, op.dest);
    case 'del-dest': return encodeDelDest(h, op.service, op.dest);
  }
}
