import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { DnsChecker } from '../../src/health/checks/dns.js';
import { decodeMessage, DnsDecodeError, encodeName, encodeQuery, encodeResponse, QTYPES } from '../../src/health/checks/dns-wire.js';
import { closedPort, closedUdpPort, tcpServer, udpServer } from './support/servers.js';

// Generous default deadline: a loaded CI machine must not turn an answered check into a timeout; tests of
// the timeout path pass their own short one.
const T = (port: number, timeoutMs = 10_000) => ({ address: '127.0.0.1', port, timeoutMs });
const base = { name: 'svc.example.org', qtype: 'A' as const, transport: 'udp' as const, expect_rcode: 'NOERROR' as const, expect_answers: [] as string[] };

/** A tiny authoritative answerer: `answer(name, qtype)` → { rcode, addrs }. */
function responder(answer: (name: string, qtype: number) => { rcode?: number; a?: string[]; ns?: string[] } | undefined) {
  return (m: Buffer): Buffer | undefined => {
    const q = decodeMessage(m);
    const qq = q.questions[0]!;
    const a = answer(qq.name, qq.type);
    if (!a) return undefined;
    const answers = [
      ...(a.a ?? []).map((ip) => ({ name: qq.name, type: QTYPES.A, rdata: Buffer.from(ip.split('.').map(Number)) })),
      ...(a.ns ?? []).map((n) => ({ name: qq.name, type: QTYPES.NS, rdata: encodeName(n) })),
    ];
    return encodeResponse({ id: q.id, aa: true, rcode: a.rcode ?? 0, question: qq, answers });
  };
}

test('dns wire: query encodes RFC 1035 header/question; compressed names decode; loops are rejected', () => {
  const q = encodeQuery(0x1234, 'Example.ORG.', QTYPES.SOA);
  assert.equal(q.toString('hex'), '123401000001000000000000076578616d706c65036f72670000060001');
  // answer name as a pointer to offset 12 (the question name)
  const resp = Buffer.concat([encodeResponse({ id: 1, question: { name: 'a.example', type: 1 } }), Buffer.from('c00c000100010000003c0004c0000201', 'hex')]);
  resp.writeUInt16BE(1, 6);
  const m = decodeMessage(resp);
  assert.deepEqual(m.answers.map((x) => [x.name, x.data]), [['a.example', '192.0.2.1']]);
  const loop = Buffer.from('000181800001000000000000c00c00010001', 'hex');
  assert.throws(() => decodeMessage(loop), DnsDecodeError);
  assert.throws(() => decodeMessage(Buffer.from('0001', 'hex')), DnsDecodeError);
});

test('dns/udp: expected rcode and answers → up; wrong answer → dns_answer; NXDOMAIN → dns_rcode', async () => {
  const srv = await udpServer(responder((name) => (name === 'svc.example.org' ? { a: ['192.0.2.10', '192.0.2.11'] } : { rcode: 3 })));
  try {
    assert.equal((await new DnsChecker({ ...base, expect_answers: ['192.0.2.11'] }).run(T(srv.port))).ok, true);
    const wrong = await new DnsChecker({ ...base, expect_answers: ['192.0.2.99'] }).run(T(srv.port));
    assert.equal(wrong.reason, 'dns_answer');
    assert.match(wrong.detail ?? '', /missing 192\.0\.2\.99; got 192\.0\.2\.10,192\.0\.2\.11/);
    const nx = await new DnsChecker({ ...base, name: 'gone.example.org' }).run(T(srv.port));
    assert.equal(nx.reason, 'dns_rcode');
    assert.equal((await new DnsChecker({ ...base, name: 'gone.example.org', expect_rcode: 'NXDOMAIN' }).run(T(srv.port))).ok, true);
  } finally {
    await srv.close();
  }
});

test('dns/udp: silent server → timeout; closed port → udp_unreachable; wrong id ignored then timeout; garbage ignored', async () => {
  const silent = await udpServer(() => undefined);
  const wrongId = await udpServer((m) => encodeResponse({ id: (m.readUInt16BE(0) + 1) & 0xffff }));
  const garbage = await udpServer(() => Buffer.from('nonsense'));
  try {
    assert.equal((await new DnsChecker(base).run(T(silent.port, 200))).reason, 'timeout');
    assert.equal((await new DnsChecker(base).run(T(await closedUdpPort()))).reason, 'udp_unreachable');
    assert.equal((await new DnsChecker(base).run(T(wrongId.port, 200))).reason, 'timeout');
    assert.equal((await new DnsChecker(base).run(T(garbage.port, 200))).reason, 'timeout');
  } finally {
    await silent.close();
    await wrongId.close();
    await garbage.close();
  }
});

test('dns/tcp: length-prefixed query/answer; NS names compared case-insensitively; closed port refused', async () => {
  const answer = responder(() => ({ ns: ['NS1.Example.org'] }));
  const srv = await tcpServer((s: net.Socket) => {
    let acc = Buffer.alloc(0);
    s.on('data', (d: Buffer) => {
      acc = Buffer.concat([acc, d]);
      if (acc.length >= 2 && acc.length >= 2 + acc.readUInt16BE(0)) {
        const r = answer(acc.subarray(2, 2 + acc.readUInt16BE(0)))!;
        const len = Buffer.alloc(2);
        len.writeUInt16BE(r.length, 0);
        // split the reply in two writes to exercise reassembly
        s.write(Buffer.concat([len, r.subarray(0, 5)]));
        setTimeout(() => s.write(r.subarray(5)), 20);
      }
    });
  });
  try {
    const r = await new DnsChecker({ ...base, qtype: 'NS', transport: 'tcp', expect_answers: ['ns1.example.org.'] }).run(T(srv.port));
    assert.equal(r.ok, true, r.detail);
    assert.equal((await new DnsChecker({ ...base, transport: 'tcp' }).run(T(await closedPort()))).reason, 'connect_refused');
  } finally {
    await srv.close();
  }
});

test('dns/udp: a truncated answer is retried over TCP on the same port', async () => {
  // UDP says TC with no answers; TCP (same port number) has the full answer.
  const udp = await udpServer((m) => {
    const q = decodeMessage(m);
    return encodeResponse({ id: q.id, tc: true, question: q.questions[0]! });
  });
  const full = responder(() => ({ a: ['192.0.2.10'] }));
  let tcpQueries = 0;
  const tcp = await tcpServer((s: net.Socket) => {
    let acc = Buffer.alloc(0);
    s.on('data', (d: Buffer) => {
      acc = Buffer.concat([acc, d]);
      if (acc.length >= 2 && acc.length >= 2 + acc.readUInt16BE(0)) {
        tcpQueries++;
        const r = full(acc.subarray(2, 2 + acc.readUInt16BE(0)))!;
        const len = Buffer.alloc(2);
        len.writeUInt16BE(r.length, 0);
        s.write(Buffer.concat([len, r]));
      }
    });
  }, '127.0.0.1', udp.port).catch(() => undefined);
  try {
    if (!tcp) return; // the TCP port of the same number was taken: nothing to prove this time
    const r = await new DnsChecker({ ...base, expect_answers: ['192.0.2.10'] }).run(T(udp.port));
    assert.equal(r.ok, true, r.detail);
    assert.equal(tcpQueries, 1);
  } finally {
    await udp.close();
    await tcp?.close();
  }
});
