/**
 * Codec proof: for every command captured from ipvsadm inside the UML lab (see
 * test/fixtures/ipvs/capture.sh), our encoder produces the same bytes (sequence number and port id
 * masked), and the kernel's own dump replies decode into the table `ipvsadm -Ln` printed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { loadCaptures, maskSeqPid } from './strace.js';
import * as g from '../../src/ipvs/genl.js';
import { makeDest, makeService, SVC_F_ONEPACKET, SVC_F_PERSISTENT, SVC_F_SCHED1, SVC_F_SCHED2, TUN_F_CSUM, type IpvsDest, type IpvsServiceId, type IpvsTableEntry } from '../../src/ipvs/model.js';
import { formatIpvsadmList } from '../../src/ipvs/format.js';
import { isLvsdError } from '../../src/core/errors.js';

const { cases, listOutput } = loadCaptures();

const svc11: IpvsServiceId = makeService({ protocol: 'tcp', addr: '192.0.2.11', port: 80 });
const svc6: IpvsServiceId = makeService({ protocol: 'tcp', addr: '2001:db8::11', port: 443 });
const fwm7: IpvsServiceId = makeService({ protocol: 'tcp', fwmark: 7 });
const drDefaults = (d: Partial<IpvsDest> & { addr: string; port: number }) => makeDest({ fwd: 'dr', weight: 1, ...d });

const encoders: Record<string, (h: g.Hdr) => Buffer> = {
  'svc-add-tcp': (h) => g.encodeNewService(h, makeService({ protocol: 'tcp', addr: '192.0.2.11', port: 80, scheduler: 'rr' })),
  'svc-add-udp': (h) => g.encodeNewService(h, makeService({ protocol: 'udp', addr: '192.0.2.11', port: 53, scheduler: 'wrr' })),
  'svc-add-fwmark': (h) => g.encodeNewService(h, makeService({ protocol: 'tcp', fwmark: 7, scheduler: 'wlc' })),
  'svc-add-fwmark6': (h) => g.encodeNewService(h, makeService({ protocol: 'tcp', fwmark: 8, family: 6, scheduler: 'rr' })),
  'svc-add-tcp6': (h) => g.encodeNewService(h, makeService({ protocol: 'tcp', addr: '2001:db8::11', port: 443, scheduler: 'lc' })),
  'svc-add-persist-mask': (h) => g.encodeNewService(h, makeService({ protocol: 'tcp', addr: '192.0.2.12', port: 80, scheduler: 'wrr', flags: SVC_F_PERSISTENT, timeout: 300, netmask: 0xffffff00 })),
  'svc-add-persist6': (h) => g.encodeNewService(h, makeService({ protocol: 'tcp', addr: '2001:db8::12', port: 80, scheduler: 'rr', flags: SVC_F_PERSISTENT, timeout: 120, netmask: 64 })),
  'svc-add-sh-flags-ops': (h) => g.encodeNewService(h, makeService({ protocol: 'udp', addr: '192.0.2.13', port: 53, scheduler: 'sh', flags: SVC_F_SCHED1 | SVC_F_SCHED2 | SVC_F_ONEPACKET })),
  'svc-add-pe-sip': (h) => g.encodeNewService(h, makeService({ protocol: 'udp', addr: '192.0.2.14', port: 5060, scheduler: 'rr', flags: SVC_F_PERSISTENT, timeout: 60, pe_name: 'sip' })),
  'svc-add-port0': (h) => g.encodeNewService(h, makeService({ protocol: 'tcp', addr: '192.0.2.15', port: 0, scheduler: 'rr', flags: SVC_F_PERSISTENT, timeout: 300 })),
  'svc-add-sctp': (h) => g.encodeNewService(h, makeService({ protocol: 'sctp', addr: '192.0.2.16', port: 9, scheduler: 'rr' })),
  'svc-edit': (h) => g.encodeSetService(h, makeService({ protocol: 'tcp', addr: '192.0.2.11', port: 80, scheduler: 'wlc', flags: SVC_F_PERSISTENT, timeout: 60 })),
  'svc-del': (h) => g.encodeDelService(h, svc11),
  'dest-add-nat': (h) => g.encodeNewDest(h, svc11, makeDest({ addr: '198.51.100.11', port: 8080, fwd: 'nat', weight: 3 })),
  'dest-add-dr-thresh': (h) => g.encodeNewDest(h, svc11, makeDest({ addr: '198.51.100.12', port: 80, fwd: 'dr', weight: 0, u_threshold: 100, l_threshold: 50 })),
  'dest-add-tun': (h) => g.encodeNewDest(h, svc11, makeDest({ addr: '198.51.100.13', port: 80, fwd: 'tun', weight: 2 })),
  'dest-add-tun-gue': (h) => g.encodeNewDest(h, svc11, makeDest({ addr: '198.51.100.14', port: 80, fwd: 'tun', weight: 1, tun_type: 'gue', tun_port: 6080, tun_flags: TUN_F_CSUM })),
  'dest-add-tun-gre': (h) => g.encodeNewDest(h, svc11, makeDest({ addr: '198.51.100.15', port: 80, fwd: 'tun', weight: 1, tun_type: 'gre', tun_flags: TUN_F_CSUM })),
  'dest-add-6': (h) => g.encodeNewDest(h, svc6, makeDest({ addr: '2001:db8::21', port: 443, fwd: 'nat', weight: 1 })),
  'dest-add-fwmark': (h) => g.encodeNewDest(h, fwm7, makeDest({ addr: '198.51.100.11', port: 0, fwd: 'dr', weight: 1 })),
  'dest-edit': (h) => g.encodeSetDest(h, svc11, makeDest({ addr: '198.51.100.11', port: 8080, fwd: 'nat', weight: 5 })),
  // ipvsadm -d fills the unused fields with its defaults (-g, weight 1).
  'dest-del': (h) => g.encodeDelDest(h, svc11, drDefaults({ addr: '198.51.100.11', port: 8080 })),
  'timeout-set': (h) => g.encodeSetTimeouts(h, { tcp: 900, tcp_fin: 120, udp: 300 }),
  'daemon-start': (h) => g.encodeNewDaemon(h, { state: 'master', mcast_ifn: 'lo', syncid: 5 }),
  'daemon-stop': (h) => g.encodeDelDaemon(h, 'master'),
  flush: (h) => g.encodeFlush(h),
};

test('every captured ipvsadm request is covered by an encoder case', () => {
  const names = cases.map((c) => c.name).filter((n) => n !== 'list');
  assert.ok(names.length >= 25, `only ${names.length} captured cases`);
  for (const n of names) assert.ok(encoders[n], `no encoder case for captured ${n}`);
  for (const c of cases) assert.equal(c.exitNote, undefined, `${c.name} failed when captured: ${c.exitNote}`);
});

for (const c of cases) {
  const enc = encoders[c.name];
  if (!enc) continue;
  test(`encoder matches ipvsadm bytes: ${c.name} (${c.argv})`, () => {
    const sent = c.messages.filter((m) => m.dir === 'send');
    // Each ipvsadm run sends GET_INFO first (libipvs init), then the command itself.
    assert.equal(sent.length, 2, 'expected GET_INFO + command');
    const info = sent[0]!.bytes;
    const cmd = sent[1]!.bytes;
    const family = cmd.readUInt16LE(4);
    assert.deepEqual(maskSeqPid(g.encodeGetInfo({ family, seq: 0, pid: 0 })), maskSeqPid(info));
    const ours = enc({ family, seq: cmd.readUInt32LE(8), pid: cmd.readUInt32LE(12) });
    assert.equal(ours.toString('hex'), cmd.toString('hex'));
  });
}

test('family resolution request matches what libnl sends', () => {
  // CTRL_CMD_GETFAMILY "IPVS" as captured (its first message; seq/pid masked).
  const expected = Buffer.from('20000000100005000000000000000000030100000900020049505653000000', 'hex');
  const ours = maskSeqPid(g.encodeGetFamily(0, 0));
  assert.equal(ours.subarray(0, 31).toString('hex'), expected.toString('hex'));
  assert.equal(ours.length, 32);
});

function decodeListCapture(): { table: IpvsTableEntry[]; info: { version: number; connTabSize: number } } {
  const list = cases.find((c) => c.name === 'list');
  assert.ok(list, 'list capture present');
  const table: IpvsTableEntry[] = [];
  let info: { version: number; connTabSize: number } | undefined;
  let lastReq: Buffer | undefined;
  for (const m of list.messages) {
    if (m.dir === 'send') { lastReq = m.bytes; continue; }
    const type = m.bytes.readUInt16LE(4);
    if (type === g.NLMSG_DONE || type === g.NLMSG_ERROR) continue;
    const reqCmd = lastReq![16];
    const payload = m.bytes.subarray(16);
    if (reqCmd === g.IPVS_CMD.GET_INFO) info = g.decodeInfoReply(payload);
    else if (reqCmd === g.IPVS_CMD.GET_SERVICE) table.push({ service: g.decodeServiceReply(payload), dests: [] });
    else if (reqCmd === g.IPVS_CMD.GET_DEST) {
      const q = g.decodeServiceReply(lastReq!.subarray(16));
      const e = table.find((t) => t.service.fwmark === q.fwmark && t.service.addr === q.addr && t.service.port === q.port && t.service.protocol === q.protocol);
      assert.ok(e);
      (e.dests as IpvsDest[]).push(g.decodeDestReply(payload, e.service.family));
    }
  }
  assert.ok(info);
  return { table, info };
}

test('kernel dump replies decode to the same table ipvsadm -Ln printed', () => {
  const { table, info } = decodeListCapture();
  assert.equal(table.length, 4);
  const persist6 = table.find((t) => t.service.family === 6)!;
  assert.equal(persist6.service.netmask, 64);
  assert.equal(persist6.service.timeout, 60);
  const fwm = table.find((t) => t.service.fwmark === 9)!;
  assert.equal(fwm.dests[0]!.tun_type, 'gue');
  assert.equal(fwm.dests[0]!.tun_port, 6080);
  assert.equal(formatIpvsadmList(info, table), listOutput);
});

test('decoding garbage never crashes: every failure is NETLINK_DECODE', () => {
  const { table } = decodeListCapture();
  const good = g.encodeNewDest({ family: 28, seq: 1, pid: 1 }, table[0]!.service, table[0]!.dests[0]!).subarray(16);
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(good.length), fc.integer({ min: 0, max: 255 }), (junk, at, val) => {
      const mutated = Buffer.from(good);
      if (at < mutated.length) mutated[at] = val;
      for (const input of [Buffer.from(junk), mutated, mutated.subarray(0, at)]) {
        for (const dec of [
          () => g.decodeServiceReply(input),
          () => g.decodeDestReply(input, 4),
          () => g.decodeInfoReply(input),
          () => g.decodeDaemonReply(input),
          () => g.decodeTimeoutsReply(input),
          () => g.decodeFamily(input),
          () => g.parseMessages(input),
        ]) {
          try { dec(); } catch (e) { if (!isLvsdError(e, 'NETLINK_DECODE')) throw e; }
        }
      }
    }),
    { numRuns: 400 },
  );
});

test('nested attributes carry NLA_F_NESTED (the kernel rejects nests without it for strict policies)', () => {
  const b = g.encodeNewService({ family: 28, seq: 0, pid: 0 }, makeService({ protocol: 'tcp', addr: '192.0.2.1', port: 80 }));
  assert.equal(b.readUInt16LE(22) & g.NLA_F_NESTED, g.NLA_F_NESTED);
});

test('a round trip through encode/decode keeps every service and dest field', () => {
  fc.assert(
    fc.property(
      fc.record({
        v6: fc.boolean(), port: fc.integer({ min: 0, max: 65535 }), fwmark: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 0xffffffff })),
        proto: fc.constantFrom('tcp' as const, 'udp' as const, 'sctp' as const), sched: fc.constantFrom('rr', 'wrr', 'sh', 'mh'),
        flags: fc.integer({ min: 0, max: 0x3f }).map((f) => f & ~2), timeout: fc.nat(), weight: fc.integer({ min: 0, max: 0x7fffffff }),
        fwd: fc.constantFrom('nat' as const, 'dr' as const, 'tun' as const), tun: fc.constantFrom('ipip' as const, 'gue' as const, 'gre' as const),
        tport: fc.integer({ min: 0, max: 65535 }), u: fc.nat(), l: fc.nat(),
      }),
      (r) => {
        const s = makeService({ protocol: r.proto, family: r.v6 ? 6 : 4, addr: r.v6 ? '2001:db8::5' : '192.0.2.5', port: r.port, fwmark: r.fwmark, scheduler: r.sched, flags: r.flags, timeout: r.timeout, netmask: r.v6 ? 96 : 0xffff0000 });
        const d = makeDest({ addr: r.v6 ? '2001:db8::9' : '198.51.100.9', port: r.port, fwd: r.fwd, weight: r.weight, u_threshold: r.u, l_threshold: r.l, tun_type: r.tun, tun_port: r.tport, tun_flags: 1 });
        const sb = g.encodeNewService({ family: 28, seq: 0, pid: 0 }, s).subarray(16);
        const back = g.decodeServiceReply(sb);
        assert.deepEqual(back, s);
        const db = g.encodeNewDest({ family: 28, seq: 0, pid: 0 }, s, d).subarray(16);
        assert.deepEqual(g.decodeDestReply(db, s.family), d);
      },
    ),
    { numRuns: 300 },
  );
});

test('a destination reply\'s counters: 64-bit stats preferred and read whole (above 2^32, bytes above 2^53), 32-bit stats when the kernel sends only those', () => {
  const u64 = (v: bigint) => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(v);
    return b;
  };
  // As ip_vs_genl_fill_stats{,64} write them (net/netfilter/ipvs/ip_vs_ctl.c): bytes are u64 in both.
  const reply = (with64: boolean) => {
    const w = new g.AttrWriter(512, g.GENL_HDRLEN);
    w.nest(g.IPVS_CMD_ATTR.DEST, () => {
      w.u16(g.DEST_ATTR.ADDR_FAMILY, 2).bytes(g.DEST_ATTR.ADDR, Buffer.from([198, 51, 100, 7, ...new Array(12).fill(0)])).be16(g.DEST_ATTR.PORT, 8080);
      w.u32(g.DEST_ATTR.FWD_METHOD, 0).u32(g.DEST_ATTR.WEIGHT, 3).u32(g.DEST_ATTR.ACTIVE_CONNS, 5).u32(g.DEST_ATTR.INACT_CONNS, 6);
      w.nest(g.DEST_ATTR.STATS, () => {
        w.u32(g.STATS_ATTR.CONNS, 7).u32(g.STATS_ATTR.INPKTS, 8).u32(g.STATS_ATTR.OUTPKTS, 9).bytes(g.STATS_ATTR.INBYTES, u64(10n)).bytes(g.STATS_ATTR.OUTBYTES, u64(11n)).u32(g.STATS_ATTR.CPS, 12);
      });
      if (with64) {
        w.nest(g.DEST_ATTR.STATS64, () => {
          w.bytes(g.STATS_ATTR.CONNS, u64(0x1_0000_0007n)).bytes(g.STATS_ATTR.INPKTS, u64(8n)).bytes(g.STATS_ATTR.OUTPKTS, u64(9n));
          w.bytes(g.STATS_ATTR.INBYTES, u64(0x20_0000_0000_0001n)).bytes(g.STATS_ATTR.OUTBYTES, u64(0xffff_ffff_ffff_ffffn)).bytes(g.STATS_ATTR.CPS, u64(12n));
        });
      }
    });
    const b = Buffer.from(w.finish());
    b[0] = g.IPVS_CMD.NEW_DEST;
    b[1] = g.IPVS_GENL_VERSION;
    return b;
  };
  const d64 = g.decodeDestReply(reply(true), 4);
  assert.equal(d64.addr, '198.51.100.7');
  assert.equal(d64.port, 8080);
  assert.equal(d64.active_conns, 5);
  assert.equal(d64.inact_conns, 6);
  assert.equal(d64.persist_conns, undefined, 'absent in the reply: absent in the result');
  assert.deepEqual(d64.stats, { conns: 0x1_0000_0007, inpkts: 8, outpkts: 9, inbytes: 0x20_0000_0000_0001n, outbytes: 0xffff_ffff_ffff_ffffn, cps: 12, inpps: 0, outpps: 0, inbps: 0, outbps: 0 });
  assert.deepEqual(g.decodeDestReply(reply(false), 4).stats, { conns: 7, inpkts: 8, outpkts: 9, inbytes: 10n, outbytes: 11n, cps: 12, inpps: 0, outpps: 0, inbps: 0, outbps: 0 });
});
