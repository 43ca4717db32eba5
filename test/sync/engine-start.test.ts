/**
 * A restarted director's engine, in the order things happen (issue 18: the restarted director's
 * start before its resync request): it is passive and asks for the peer's table without opening
 * its table reader (a worker thread, whose start only competed with the resync); the daemon opens
 * the reader after that (openReader), before the election starts, so no BACKUP → MASTER step pays
 * a worker's start; an engine nobody opened a reader for opens it at its first activation, and one
 * never opened closes without one. Steps are recorded as events, not timed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { silentLogger } from '../../src/core/log.js';
import { SyncEngine } from '../../src/sync/engine.js';
import type { PollResult, TableSource } from '../../src/sync/source.js';
import { FrameType } from '../../src/sync/wire.js';

function engine() {
  const events: string[] = [];
  let seq = 0n;
  const empty: PollResult = { payloads: [], records: 0, readMs: 0, skipped: 0 };
  const source: TableSource = {
    setActive: (on) => void events.push(`reader ${on ? 'active' : 'passive'}`),
    setServices: () => undefined,
    setStream: () => undefined,
    pollNow: async () => empty,
    full: async () => empty,
    forget: () => undefined,
    answered: () => undefined,
    close: async () => void events.push('reader closed'),
  };
  const eng = new SyncEngine({
    log: silentLogger,
    registry: new Registry(),
    openSource: () => {
      events.push('reader opened');
      return source;
    },
    channel: {
      send: async (type: FrameType) => {
        events.push(`sent ${FrameType[type]}`);
        return ++seq;
      },
      receiveWindow: 24,
      node: 1,
      epoch: 1n,
      get lastSeq() {
        return seq;
      },
    },
    inject: async () => undefined,
    now: () => performance.now(),
    wallNow: () => Date.now(),
    syncid: 42,
  });
  return { eng, events };
}

test('a restarted, passive director asks for the peer table before opening its table reader; the reader is opened once, passive, before any activation', async () => {
  const { eng, events } = engine();
  eng.setActive(false, 'start');
  // No peer answers: the wait ends after the (short) silence; only the order of events is checked.
  assert.equal(await eng.resyncFromPeer(1), false);
  assert.deepEqual(events, ['sent RESYNC_REQUEST']);
  eng.openReader(); // as the sync subsystem's start does, before the election starts
  assert.deepEqual(events, ['sent RESYNC_REQUEST', 'reader opened', 'reader passive']);
  eng.setActive(true, 'vrrp BACKUP->MASTER');
  eng.setActive(false, 'vrrp MASTER->BACKUP');
  eng.setActive(true, 'vrrp BACKUP->MASTER');
  await eng.close();
  assert.deepEqual(events, ['sent RESYNC_REQUEST', 'reader opened', 'reader passive', 'reader active', 'reader passive', 'reader active', 'reader closed']);
});

test('a director that never became active closes without having opened a table reader', async () => {
  const { eng, events } = engine();
  eng.setActive(false, 'start');
  eng.setServices([]);
  await eng.close();
  assert.deepEqual(events, []);
});

test('a director that starts active (an address owner) opens its reader at once', async () => {
  const { eng, events } = engine();
  eng.setActive(true, 'start');
  await eng.close();
  assert.deepEqual(events, ['reader opened', 'reader active', 'reader closed']);
});
