/**
 * GET /metrics (src/metrics/http.ts) against a reader in another process, as Prometheus is.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { Registry } from 'prom-client';
import { silentLogger } from '../../src/core/log.js';
import { attachExposition } from '../../src/metrics/exposition.js';
import { ApiServer } from '../../src/metrics/http.js';

test('GET /metrics gives the event loop turns while it writes a large body whose chunks are all there to a fast reader', async () => {
  // 64 MB in 1,024 chunks that are all ready at once (as the table metrics' are when their worker
  // is ahead of the socket): a write the kernel takes at once completes in the same turn, so
  // without a turn given on purpose the loop would run for the whole body (timers, VRRP, waiting).
  const chunk = Buffer.alloc(64 * 1024, 0x23); // '#': comment lines are valid text
  chunk[chunk.length - 1] = 0x0a;
  const registry = new Registry();
  // Chunks handed out since the event loop last ran a setImmediate callback, and the most of them.
  let run = 0;
  let maxRun = 0;
  attachExposition(registry, {
    families: [],
    async *chunks() {
      for (let i = 0; i < 1024; i++) {
        maxRun = Math.max(maxRun, ++run);
        yield chunk;
      }
    },
  });
  const api = new ApiServer({ registry, status: () => ({}), unhealthy: () => null }, silentLogger);
  await api.listen('127.0.0.1:0');
  let counting = true;
  const turn = () => {
    run = 0;
    if (counting) setImmediate(turn);
  };
  try {
    const reader = spawn(process.execPath, ['-e', `
      let n = 0;
      require('node:http').get(process.argv[1], (r) => r.on('data', (b) => (n += b.length)).on('end', () => console.log(n)));
    `, `http://${api.address}/metrics`], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    reader.stdout.on('data', (b: Buffer) => (out += b));
    setImmediate(turn);
    const code = await new Promise<number | null>((resolve) => reader.on('close', resolve));
    assert.equal(code, 0);
    assert.ok(Number(out) >= 64 * 1024 * 1024, `reader got ${out.trim()} bytes`);
    // A turn after every 1 MB written: 16 of these chunks at most in one turn (without it, 126–259
    // on the dev host: as many as the socket took).
    assert.ok(maxRun <= 16, `${maxRun} chunks (of 1,024) written in one turn of the event loop`);
  } finally {
    counting = false;
    await api.close();
  }
});
