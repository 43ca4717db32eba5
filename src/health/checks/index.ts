/** Build the checker for one configured check. */
import type { HealthCheck } from '../../config/model.js';
import type { Checker } from './types.js';
import { TcpChecker } from './tcp.js';
import { HttpChecker } from './http.js';
import { UdpChecker } from './udp.js';
import { DnsChecker } from './dns.js';
import { ExecChecker } from './exec.js';

export * from './types.js';
export { TcpChecker } from './tcp.js';
export { HttpChecker } from './http.js';
export { UdpChecker } from './udp.js';
export { DnsChecker } from './dns.js';
export { ExecChecker } from './exec.js';

export function createChecker(c: HealthCheck): Checker {
  switch (c.type) {
    case 'tcp':
      return new TcpChecker(c);
    case 'http':
      return new HttpChecker(c, false);
    case 'https':
      return new HttpChecker(c, true);
    case 'udp':
      return new UdpChecker(c);
    case 'dns':
      return new DnsChecker(c);
    case 'exec':
      return new ExecChecker(c);
  }
}
