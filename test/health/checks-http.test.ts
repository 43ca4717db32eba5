import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { HttpChecker } from '../../src/health/checks/http.js';
import { blackholeListener, closedPort, httpServer, httpsServer, selfSigned, tcpServer } from './support/servers.js';

// Generous default deadline: a loaded CI machine must not turn an answered check into a timeout; tests of
// the timeout path pass their own short one.
const T = (port: number, timeoutMs = 10_000) => ({ address: '127.0.0.1', port, timeoutMs });
const base = { path: '/health', status: ['200-299'] as Array<number | string>, method: 'GET' as const, max_body: 65536 };
const BODY = 'service OK v1\n';

test('http: 200 with matching body regex, md5 and sha256 digests → up; Host header sent', async () => {
  const hosts: string[] = [];
  const paths: string[] = [];
  const srv = await httpServer((req, res) => {
    hosts.push(req.headers.host ?? '');
    paths.push(req.url ?? '');
    res.end(BODY);
  });
  try {
    const md5 = createHash('md5').update(BODY).digest('hex');
    const sha = createHash('sha256').update(BODY).digest('hex');
    assert.equal((await new HttpChecker({ ...base }, false).run(T(srv.port))).ok, true);
    assert.equal((await new HttpChecker({ ...base, body_regex: 'OK v\\d' }, false).run(T(srv.port))).ok, true);
    assert.equal((await new HttpChecker({ ...base, digest: md5 }, false).run(T(srv.port))).ok, true);
    assert.equal((await new HttpChecker({ ...base, digest: `sha256:${sha}`, host: 'www.example.org' }, false).run(T(srv.port))).ok, true);
    assert.deepEqual(paths, ['/health', '/health', '/health', '/health']);
    assert.equal(hosts[0], `127.0.0.1:${srv.port}`);
    assert.equal(hosts[3], 'www.example.org');
  } finally {
    await srv.close();
  }
});

test('http: wrong status → bad_status; explicit code list accepts it', async () => {
  const srv = await httpServer((_q, res) => {
    res.statusCode = 503;
    res.end('down');
  });
  try {
    const r = await new HttpChecker({ ...base }, false).run(T(srv.port));
    assert.equal(r.reason, 'bad_status');
    assert.match(r.detail ?? '', /503/);
    assert.equal((await new HttpChecker({ ...base, status: [200, '500-503'] }, false).run(T(srv.port))).ok, true);
  } finally {
    await srv.close();
  }
});

test('http: body mismatch and digest mismatch', async () => {
  const srv = await httpServer((_q, res) => res.end('maintenance'));
  try {
    assert.equal((await new HttpChecker({ ...base, body_regex: '^service OK' }, false).run(T(srv.port))).reason, 'body_mismatch');
    assert.equal((await new HttpChecker({ ...base, digest: createHash('md5').update(BODY).digest('hex') }, false).run(T(srv.port))).reason, 'digest_mismatch');
  } finally {
    await srv.close();
  }
});

test('http: accept then close → reset/closed; closed port → connect_refused; silent → timeout', async () => {
  const ac = await tcpServer((s) => s.destroy());
  const silent = await tcpServer(() => {});
  const bh = await blackholeListener();
  try {
    const r1 = await new HttpChecker({ ...base }, false).run(T(ac.port));
    assert.equal(r1.ok, false);
    assert.ok(['reset', 'closed'].includes(r1.reason!), r1.reason);
    assert.equal((await new HttpChecker({ ...base }, false).run(T(await closedPort()))).reason, 'connect_refused');
    const r3 = await new HttpChecker({ ...base }, false).run(T(silent.port, 300));
    assert.equal(r3.reason, 'timeout');
    assert.ok(r3.durationMs >= 300 && r3.durationMs < 10_000, `took ${r3.durationMs}`); // not before the deadline; seconds-level above
    assert.equal((await new HttpChecker({ ...base }, false).run(T(bh.port, 300))).reason, 'timeout');
  } finally {
    await ac.close();
    await silent.close();
    await bh.close();
  }
});

test('http: reply slower than the timeout → timeout; garbage → protocol_error; bad regex → error, no throw', async () => {
  const slow = await httpServer((_q, res) => setTimeout(() => res.end('late'), 600));
  const garbage = await tcpServer((s) => s.end('SSH-2.0-OpenSSH\r\n\r\n'));
  try {
    assert.equal((await new HttpChecker({ ...base }, false).run(T(slow.port, 200))).reason, 'timeout');
    assert.equal((await new HttpChecker({ ...base }, false).run(T(garbage.port))).reason, 'protocol_error');
    const r = await new HttpChecker({ ...base, body_regex: '(' }, false).run(T(slow.port));
    assert.equal(r.reason, 'error');
    assert.match(r.detail ?? '', /body_regex/);
  } finally {
    await slow.close();
    await garbage.close();
  }
});

const cert = selfSigned('svc.example.org');
after(() => cert.cleanup());

test('https: self-signed passes without verification, fails with it, passes with ca_file + SNI', async () => {
  const srv = await httpsServer(cert, (_q, res) => res.end(BODY));
  try {
    const noVerify = await new HttpChecker({ ...base, body_regex: 'OK', tls: { verify: false } }, true).run(T(srv.port));
    assert.equal(noVerify.ok, true, noVerify.detail);
    const verify = await new HttpChecker({ ...base, tls: { verify: true, sni: 'svc.example.org' } }, true).run(T(srv.port));
    assert.equal(verify.ok, false);
    assert.equal(verify.reason, 'tls_error', verify.detail);
    const withCa = await new HttpChecker({ ...base, tls: { verify: true, sni: 'svc.example.org', ca_file: cert.certFile } }, true).run(T(srv.port));
    assert.equal(withCa.ok, true, withCa.detail);
    const wrongName = await new HttpChecker({ ...base, tls: { verify: true, sni: 'other.example.org', ca_file: cert.certFile } }, true).run(T(srv.port));
    assert.equal(wrongName.reason, 'tls_error', wrongName.detail);
    assert.ok(srv.snis.includes('svc.example.org'), JSON.stringify(srv.snis));
    // An IP literal is never sent as SNI (RFC 6066 §3).
    assert.ok(!srv.snis.includes('127.0.0.1'));
  } finally {
    await srv.close();
  }
});

test('https: plain HTTP server behind an https check → tls_error', async () => {
  const srv = await httpServer((_q, res) => res.end('x'));
  try {
    const r = await new HttpChecker({ ...base, tls: { verify: false } }, true).run(T(srv.port));
    assert.equal(r.ok, false);
    assert.ok(['tls_error', 'reset', 'closed'].includes(r.reason!), `${r.reason} ${r.detail}`);
  } finally {
    await srv.close();
  }
});
