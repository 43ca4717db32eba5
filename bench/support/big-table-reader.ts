/**
 * The table-metrics worker's reader for host runs of bench/scrape.ts (no IPVS on the host). The
 * kernel's answers to the 1 + N dumps of bigTable(n, d) — IPVS_CMD_NEW_SERVICE / NEW_DEST message
 * payloads with the attributes Linux 6.1 puts in them (ip_vs_genl_fill_service/_dest, 32- and 64-bit
 * stats) — are encoded once per worker thread, and every read decodes them with lvsd's own decoder
 * (src/ipvs/genl.ts), as NetlinkDataplane.dumpOn decodes the kernel's. So a host run measures
 * everything lvsd does for a scrape except the kernel's dumps and the socket reads.
 */
import { bigTable } from './big-table.js';
import { AttrWriter, DEST_ATTR, GENL_HDRLEN, IPVS_CMD, IPVS_CMD_ATTR, IPVS_GENL_VERSION, STATS_ATTR, SVC_ATTR, decodeDestReply, decodeServiceReply } from '../../src/ipvs/genl.js';
import { FAMILY_AF, FWD_NUM, PROTO_NUM, TUN_NUM, type IpvsStats, type IpvsTable, type IpvsTableEntry } from '../../src/ipvs/model.js';
import type { TableReader } from '../../src/ipvs/table-reader.js';

/** An IPv4 address as the kernel sends it: union nf_inet_addr, 16 bytes. */
function addr16(a: string): Buffer {
  const b = Buffer.alloc(16);
  a.split('.').forEach((o, i) => (b[i] = Number(o)));
  return b;
}
const u64 = (v: number | bigint) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(v));
  return b;
};

/** IPVS_SVC_ATTR_STATS (u32 fields) and IPVS_SVC_ATTR_STATS64 (u64), as ip_vs_genl_fill_stats{,64} write them. */
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

function encode(table: IpvsTable): { services: Buffer[]; dests: Buffer[][] } {
  const services = table.map(({ service: s }) => reply(IPVS_CMD.NEW_SERVICE, (w) => w.nest(IPVS_CMD_ATTR.SERVICE, () => {
    w.u16(SVC_ATTR.AF, FAMILY_AF[s.family]);
    w.u16(SVC_ATTR.PROTOCOL, PROTO_NUM[s.protocol]);
    w.bytes(SVC_ATTR.ADDR, addr16(s.addr));
    w.be16(SVC_ATTR.PORT, s.port);
    w.str(SVC_ATTR.SCHED_NAME, s.scheduler);
    w.u32x2(SVC_ATTR.FLAGS, s.flags, 0xffffffff);
    w.u32(SVC_ATTR.TIMEOUT, s.timeout);
    w.be32(SVC_ATTR.NETMASK, s.netmask);
    writeStats(w, s.stats!, SVC_ATTR.STATS, SVC_ATTR.STATS64);
  })));
  const dests = table.map((e) => e.dests.map((d) => reply(IPVS_CMD.NEW_DEST, (w) => w.nest(IPVS_CMD_ATTR.DEST, () => {
    w.bytes(DEST_ATTR.ADDR, addr16(d.addr));
    w.be16(DEST_ATTR.PORT, d.port);
    w.u32(DEST_ATTR.FWD_METHOD, FWD_NUM[d.fwd]);
    w.u32(DEST_ATTR.WEIGHT, d.weight);
    w.u8(DEST_ATTR.TUN_TYPE, TUN_NUM[d.tun_type]);
    w.be16(DEST_ATTR.TUN_PORT, d.tun_port);
    w.u16(DEST_ATTR.TUN_FLAGS, d.tun_flags);
    w.u32(DEST_ATTR.U_THRESH, d.u_threshold);
    w.u32(DEST_ATTR.L_THRESH, d.l_threshold);
    w.u32(DEST_ATTR.ACTIVE_CONNS, d.active_conns ?? 0);
    w.u32(DEST_ATTR.INACT_CONNS, d.inact_conns ?? 0);
    w.u32(DEST_ATTR.PERSIST_CONNS, d.persist_conns ?? 0);
    w.u16(DEST_ATTR.ADDR_FAMILY, FAMILY_AF[d.family]);
    writeStats(w, d.stats!, DEST_ATTR.STATS, DEST_ATTR.STATS64);
  }))));
  return { services, dests };
}

/** The encoded replies of this thread, by table size (made on the first open: not a read's cost). */
const encoded = new Map<string, ReturnType<typeof encode>>();

export async function openTableReader(o: { n: number; d: number }): Promise<TableReader> {
  const key = `${o.n}x${o.d}`;
  let enc = encoded.get(key);
  if (!enc) encoded.set(key, (enc = encode(bigTable(o.n, o.d))));
  const { services, dests } = enc;
  return {
    read: async () => {
      const out: IpvsTableEntry[] = [];
      for (let i = 0; i < services.length; i++) {
        const s = decodeServiceReply(services[i]!);
        out.push({ service: s, dests: dests[i]!.map((p) => decodeDestReply(p, s.family)) });
      }
      return out;
    },
    close: async () => {},
  };
}
