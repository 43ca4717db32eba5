/**
 * The kernel's side of a table dump, for readers of a table held in memory (test/support/table-reader.ts,
 * bench/support/big-table-reader.ts): the payloads of the IPVS_CMD_NEW_SERVICE / NEW_DEST messages
 * Linux 6.1 answers GET_SERVICE / GET_DEST dumps with (ip_vs_genl_fill_service / _dest /
 * _stats{,64} in net/netfilter/ipvs/ip_vs_ctl.c: 32- and 64-bit stats, byte counters u64 in both),
 * and the feeding of a DumpSink with them as NetlinkDataplane.dumpInto does: so everything after the
 * socket reads — the decoding included — is lvsd's code.
 */
import { AttrWriter, DEST_ATTR, GENL_HDRLEN, IPVS_CMD, IPVS_CMD_ATTR, IPVS_GENL_VERSION, STATS_ATTR, SVC_ATTR, decodeServiceReply } from '../../src/ipvs/genl.js';
import { parseIp } from '../../src/core/address.js';
import { FAMILY_AF, FWD_NUM, PROTO_NUM, TUN_NUM, type IpvsDest, type IpvsService, type IpvsStats, type IpvsTable } from '../../src/ipvs/model.js';
import type { DumpSink } from '../../src/ipvs/netlink.js';

/** An address as the kernel sends it: union nf_inet_addr, 16 bytes. */
function addr16(a: string): Buffer {
  const b = Buffer.alloc(16);
  b.set(parseIp(a)!.bytes);
  return b;
}
const u64 = (v: number | bigint) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(v));
  return b;
};

/** IPVS_*_ATTR_STATS (u32 fields, u64 bytes) and IPVS_*_ATTR_STATS64 (u64), as ip_vs_genl_fill_stats{,64} write them. */
function writeStats(w: AttrWriter, s: IpvsStats, t32: number, t64: number): void {
  const f: Array<[number, number | bigint]> = [
    [STATS_ATTR.CONNS, s.conns], [STATS_ATTR.INPKTS, s.inpkts], [STATS_ATTR.OUTPKTS, s.outpkts], [STATS_ATTR.INBYTES, s.inbytes], [STATS_ATTR.OUTBYTES, s.outbytes],
    [STATS_ATTR.CPS, s.cps], [STATS_ATTR.INPPS, s.inpps], [STATS_ATTR.OUTPPS, s.outpps], [STATS_ATTR.INBPS, s.inbps], [STATS_ATTR.OUTBPS, s.outbps],
  ];
  w.nest(t32, () => {
    for (const [t, v] of f) {
      if (t === STATS_ATTR.INBYTES || t === STATS_ATTR.OUTBYTES) w.bytes(t, u64(v));
      else w.u32(t, Number(v));
    }
  });
  w.nest(t64, () => {
    for (const [t, v] of f) w.bytes(t, u64(v));
  });
}

/** A reply payload: genl header (cmd, version) + the attributes. */
function reply(cmd: number, fill: (w: AttrWriter) => void): Buffer {
  const w = new AttrWriter(512, GENL_HDRLEN);
  fill(w);
  const b = Buffer.from(w.finish());
  b.writeUInt8(cmd, 0);
  b.writeUInt8(IPVS_GENL_VERSION, 1);
  b.writeUInt16LE(0, 2);
  return b;
}

export function serviceReply(s: IpvsService): Buffer {
  return reply(IPVS_CMD.NEW_SERVICE, (w) => w.nest(IPVS_CMD_ATTR.SERVICE, () => {
    w.u16(SVC_ATTR.AF, FAMILY_AF[s.family]);
    if (s.fwmark) w.u32(SVC_ATTR.FWMARK, s.fwmark);
    else {
      w.u16(SVC_ATTR.PROTOCOL, PROTO_NUM[s.protocol]);
      w.bytes(SVC_ATTR.ADDR, addr16(s.addr));
      w.be16(SVC_ATTR.PORT, s.port);
    }
    w.str(SVC_ATTR.SCHED_NAME, s.scheduler);
    w.u32x2(SVC_ATTR.FLAGS, s.flags, 0xffffffff);
    w.u32(SVC_ATTR.TIMEOUT, s.timeout);
    if (s.family === 4) w.be32(SVC_ATTR.NETMASK, s.netmask);
    else w.u32(SVC_ATTR.NETMASK, s.netmask);
    if (s.stats) writeStats(w, s.stats, SVC_ATTR.STATS, SVC_ATTR.STATS64);
  }));
}

/** A destination's reply; the optional counters only when the model has them. */
export function destReply(d: IpvsDest): Buffer {
  return reply(IPVS_CMD.NEW_DEST, (w) => w.nest(IPVS_CMD_ATTR.DEST, () => {
    w.bytes(DEST_ATTR.ADDR, addr16(d.addr));
    w.be16(DEST_ATTR.PORT, d.port);
    w.u32(DEST_ATTR.FWD_METHOD, FWD_NUM[d.fwd]);
    w.u32(DEST_ATTR.WEIGHT, d.weight);
    w.u8(DEST_ATTR.TUN_TYPE, TUN_NUM[d.tun_type]);
    w.be16(DEST_ATTR.TUN_PORT, d.tun_port);
    w.u16(DEST_ATTR.TUN_FLAGS, d.tun_flags);
    w.u32(DEST_ATTR.U_THRESH, d.u_threshold);
    w.u32(DEST_ATTR.L_THRESH, d.l_threshold);
    if (d.active_conns !== undefined) w.u32(DEST_ATTR.ACTIVE_CONNS, d.active_conns);
    if (d.inact_conns !== undefined) w.u32(DEST_ATTR.INACT_CONNS, d.inact_conns);
    if (d.persist_conns !== undefined) w.u32(DEST_ATTR.PERSIST_CONNS, d.persist_conns);
    w.u16(DEST_ATTR.ADDR_FAMILY, FAMILY_AF[d.family]);
    if (d.stats) writeStats(w, d.stats, DEST_ATTR.STATS, DEST_ATTR.STATS64);
  }));
}

export interface TableReplies {
  readonly services: readonly Buffer[];
  readonly dests: ReadonlyArray<readonly Buffer[]>;
}

export function tableReplies(table: IpvsTable): TableReplies {
  return { services: table.map((e) => serviceReply(e.service)), dests: table.map((e) => e.dests.map(destReply)) };
}

/** `sink` fed with `r` as NetlinkDataplane.dumpInto feeds it (services decoded by lvsd, destination replies as they are). */
export function feedSink(r: TableReplies, sink: DumpSink): void {
  sink.services(r.services.map((p) => decodeServiceReply(p)));
  r.dests.forEach((ps, i) => sink.destReplies(i, ps));
}
