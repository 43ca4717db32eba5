/**
 * The lab's segment itself (labPair): a burst of datagrams crosses it whole. Each frame is one unix
 * datagram guest → uml_switch → guest, and with the host's default unix datagram queue (10) a burst
 * beyond ~10 frames was dropped at the sender's eth0: the sync-pair bench's client got ~1 in 6 of its
 * 15,000 datagrams/s to the director. labPair runs the segment in a network namespace of its own with
 * a deeper queue (LAB_DGRAM_QLEN) and removes it at the end; the host's own setting is not touched.
 * Also the first real-kernel use of RawIpSocket.sendMany (sendmmsg(2)): 100 datagrams, one call.
 *
 * Runs on the host (it boots its own guests): scripts/test.mjs runs test/lab/pair/.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { labPair, LAB_DGRAM_QLEN } from '../../../src/lab/uml.js';
import { repoRoot } from '../../support/proc.js';
import { pairSkip } from './support/skip.js';

const skip = pairSkip;

const BURST = 100;
const labNetns = () => execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').map((l) => l.split(' ')[0]!).filter((n) => n.startsWith(`lvsd-lab-${process.pid}-`));

test(`a burst of ${BURST} datagrams in one sendmmsg crosses the segment whole; the segment's namespace has the deeper queue and is gone after`, { skip, timeout: 600_000 }, async () => {
  const hostQlen = readFileSync('/proc/sys/net/unix/max_dgram_qlen', 'utf8').trim();
  const out = { a: '', b: '' };
  const sink = (n: keyof typeof out) => {
    const s = new PassThrough();
    s.on('data', (d: Buffer) => (out[n] += d.toString()));
    return s;
  };
  const burst = join(repoRoot, 'dist', 'test', 'lab', 'pair', 'support', 'burst.js');
  const common = { cwd: repoRoot, timeoutSec: 300, mem: '512M' };
  let seen: { name: string; qlen: string } | undefined;
  const run = labPair([
    { name: 'a', addrs: ['192.0.2.2/24'], argv: [process.execPath, burst, 'send', '192.0.2.3', '9999', String(BURST)], stdout: sink('a'), stderr: sink('a'), ...common },
    { name: 'b', addrs: ['192.0.2.3/24'], argv: [process.execPath, burst, 'listen', '192.0.2.3', '9999'], stdout: sink('b'), stderr: sink('b'), ...common },
  ]);
  // While the guests run: the segment's namespace and its queue length.
  for (let i = 0; i < 100 && !seen; i++) {
    const [name] = labNetns();
    if (name) seen = { name, qlen: execFileSync('ip', ['netns', 'exec', name, 'cat', '/proc/sys/net/unix/max_dgram_qlen'], { encoding: 'utf8' }).trim() };
    else await new Promise((r) => setTimeout(r, 100));
  }
  const res = await run;
  const all = `--- a (${res.a!.code}) ---\n${out.a}\n--- b (${res.b!.code}) ---\n${out.b}`;
  assert.equal(seen?.qlen, String(LAB_DGRAM_QLEN), `the segment's namespace while the guests ran: ${JSON.stringify(seen)}`);
  assert.equal(res.a!.code, 0, all);
  assert.equal(res.b!.code, 0, all);
  assert.match(out.a, new RegExp(`sent ${BURST}\\b`), all);
  assert.match(out.b, new RegExp(`received ${BURST}\\b`), all);
  assert.deepEqual(labNetns(), [], 'the namespace is removed');
  assert.equal(readFileSync('/proc/sys/net/unix/max_dgram_qlen', 'utf8').trim(), hostQlen, "the host's own setting is untouched");
});
