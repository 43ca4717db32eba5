/**
 * 500 TCP checks against one loopback listener must not leave TIME_WAIT sockets behind: checks close
 * with RST. A FIN close of the same 500 connections is measured too, so the test proves it can fail.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { execFileSync } from 'node:child_process';
import { TcpChecker } from '../../src/health/checks/tcp.js';
import { tcpServer } from './support/servers.js';
import { waitFor } from '../support/proc.js';

function timeWait(port: number): number {
  const out = execFileSync('ss', ['-tanH', 'state', 'time-wait', `( sport = :${port} or dport = :${port} )`], { encoding: 'utf8' });
  return out.split('\n').filter((l) => l.trim()).length;
}

test('500 TCP checks leave ~no TIME_WAIT; 100 FIN closes do', async () => {
  const srv = await tcpServer();
  const fin = await tcpServer((s) => s.on('end', () => s.end()));
  try {
    // 250 checks on the fast path, 250 on the net.Socket fallback.
    for (let i = 0; i < 5; i++) {
      const c = new TcpChecker({ fast: i % 2 === 0 });
      const rs = await Promise.all(Array.from({ length: 100 }, () => c.run({ address: '127.0.0.1', port: srv.port, timeoutMs: 30_000 })));
      assert.ok(rs.every((r) => r.ok));
    }
    await new Promise((r) => setTimeout(r, 200));
    const tw = timeWait(srv.port);
    assert.ok(tw <= 5, `${tw} TIME_WAIT sockets after RST closes`);
    // Control: a client that closes with FIN first leaves one TIME_WAIT per connection.
    await Promise.all(
      Array.from({ length: 100 }, () =>
        new Promise<void>((res) => {
          const s = net.connect(fin.port, '127.0.0.1', () => s.end());
          s.on('close', () => res());
          s.on('error', () => res());
        }),
      ),
    );
    await waitFor(() => timeWait(fin.port) >= 90, 'TIME_WAIT after FIN closes', 30_000).catch(() => undefined);
    assert.ok(timeWait(fin.port) >= 90, `control: only ${timeWait(fin.port)} TIME_WAIT after FIN closes`);
  } finally {
    await srv.close();
    await fin.close();
  }
});
