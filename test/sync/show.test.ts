/**
 * `lvsd sync show` prints the peer-synced records as `ipvsadm -Lnc` prints the same connections.
 * The expected text is what ipvsadm printed in the lab (UML, Linux 6.1) for these very records,
 * injected through a backup daemon on lo 2 s earlier (expire 898 of 900, 58 of 60, 298 of 300).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseIp } from '../../src/core/address.js';
import { ConnFlags, type SyncConn } from '../../src/sync/codec.js';
import { formatLnc, peerConnRow, peerTimeoutSeconds, sortRows } from '../../src/sync/show.js';

const ip = (s: string) => parseIp(s)!.bytes;
const conn = (p: Partial<SyncConn> & Pick<SyncConn, 'protocol' | 'state' | 'cport' | 'vport' | 'dport'>, c: string, v: string, d: string): SyncConn => ({
  family: c.includes(':') ? 6 : 4,
  flags: ConnFlags.DROUTE,
  fwmark: 0,
  timeout: 0,
  caddr: ip(c),
  vaddr: ip(v),
  daddr: ip(d),
  ...p,
});

const template = conn({ protocol: 6, flags: ConnFlags.TEMPLATE | ConnFlags.DROUTE, state: 0, cport: 0, vport: 80, dport: 80, timeout: 300 }, '192.0.2.50', '192.0.2.100', '192.0.2.11');
const synRecv = conn({ protocol: 6, state: 3, cport: 40001, vport: 80, dport: 80 }, '192.0.2.50', '192.0.2.100', '192.0.2.11');
const established = conn({ protocol: 6, state: 1, cport: 40000, vport: 80, dport: 80 }, '192.0.2.50', '192.0.2.100', '192.0.2.11');
const v6 = conn({ protocol: 6, state: 1, cport: 40002, vport: 80, dport: 80 }, '2001:db8::50', '2001:db8::100', '2001:db8::11');
const udp = conn({ protocol: 17, flags: ConnFlags.MASQ, state: 0, cport: 5353, vport: 53, dport: 53 }, '192.0.2.50', '192.0.2.100', '192.0.2.11');

test('rows print exactly as ipvsadm -Lnc printed the same connections in the lab', () => {
  const rows = [template, synRecv, established, v6, udp].map((c) => peerConnRow(c, peerTimeoutSeconds(c) - 2));
  assert.equal(
    formatLnc(rows),
    [
      'IPVS connection entries',
      'pro expire state       source             virtual            destination',
      'TCP 04:58  NONE        192.0.2.50:0       192.0.2.100:80     192.0.2.11:80',
      'TCP 00:58  SYN_RECV    192.0.2.50:40001   192.0.2.100:80     192.0.2.11:80',
      'TCP 14:58  ESTABLISHED 192.0.2.50:40000   192.0.2.100:80     192.0.2.11:80',
      'TCP 14:58  ESTABLISHED [2001:db8::50]:40002 [2001:db8::100]:80 [2001:db8::11]:80',
      'UDP 04:58  UDP         192.0.2.50:5353    192.0.2.100:53     192.0.2.11:53',
      '',
    ].join('\n'),
  );
});

test('a record of timeout 0 expires at the kernel default for its state; a given timeout wins', () => {
  assert.equal(peerTimeoutSeconds(established), 900);
  assert.equal(peerTimeoutSeconds(synRecv), 60);
  assert.equal(peerTimeoutSeconds({ ...established, state: 6 }), 10); // CLOSE
  assert.equal(peerTimeoutSeconds(udp), 300);
  assert.equal(peerTimeoutSeconds(template), 300);
  assert.equal(peerTimeoutSeconds({ ...template, timeout: 0 }), 180);
  assert.equal(peerTimeoutSeconds({ ...established, state: 99 }), 2, 'an unknown state gets the shortest timeout');
});

test('JSON rows carry the forwarding method and template bit, sorted by service then client', () => {
  const rows = sortRows([udp, v6, established, template].map((c) => peerConnRow(c, -5)));
  assert.deepEqual(rows.map((r) => `${r.protocol} ${r.source}`), ['TCP 192.0.2.50:0', 'TCP 192.0.2.50:40000', 'TCP [2001:db8::50]:40002', 'UDP 192.0.2.50:5353']);
  assert.deepEqual(rows[0], { protocol: 'TCP', expire_seconds: 0, state: 'NONE', source: '192.0.2.50:0', virtual: '192.0.2.100:80', destination: '192.0.2.11:80', template: true, forwarding: 'dr', fwmark: 0 });
  assert.equal(rows[3]!.forwarding, 'masq');
});
