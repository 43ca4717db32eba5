/**
 * keepalived's `state` / `priority` rules as the config model applies them (keepalived 2.2.7
 * vrrp_complete_instance, vrrp_sync.c): each is derived from the other when left out; state MASTER
 * clears nopreempt and preempt_delay; a sync group starts MASTER only when every member is the
 * address owner wanting MASTER. The state machine's side (who skips the first wait) is in the
 * scenario files 28-30.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseConfigText } from '../../src/config/load.js';
import { repoRoot } from '../support/proc.js';

const file = join(repoRoot, 'test', 'fixtures', 'config', 'valid', 'initial-state.yaml');
const cfg = parseConfigText(readFileSync(file, 'utf8'), file, { checkFiles: false, hostname: 'test' }).config;
const inst = (n: string) => cfg.vrrp_instances.find((i) => i.name === n)!;
const pick = (n: string) => {
  const i = inst(n);
  return { priority: i.priority, initial_state: i.initial_state, preempt: i.preempt, preempt_delay: i.preempt_delay };
};

test('initial_state MASTER without a priority is the address owner (255)', () => {
  assert.deepEqual(pick('OWNER'), { priority: 255, initial_state: 'MASTER', preempt: true, preempt_delay: 0 });
});

test('priority 255 without initial_state wants MASTER; other priorities BACKUP', () => {
  assert.equal(inst('H1').initial_state, 'MASTER');
  assert.deepEqual(pick('G2'), { priority: 100, initial_state: 'BACKUP', preempt: true, preempt_delay: 0 });
});

test('initial_state MASTER below 255 keeps its priority and clears preempt: false and preempt_delay', () => {
  assert.deepEqual(pick('HINT'), { priority: 150, initial_state: 'MASTER', preempt: true, preempt_delay: 0 });
});

test('the owner may be told to wait (initial_state BACKUP)', () => {
  assert.deepEqual(pick('WAITING_OWNER'), { priority: 255, initial_state: 'BACKUP', preempt: true, preempt_delay: 0 });
});

test('a sync group with a non-owner member starts every member as BACKUP; a group of owners wanting MASTER keeps MASTER', () => {
  assert.deepEqual(pick('G1'), { priority: 255, initial_state: 'BACKUP', preempt: true, preempt_delay: 0 });
  assert.equal(inst('G2').initial_state, 'BACKUP');
  assert.deepEqual([inst('H1').initial_state, inst('H2').initial_state], ['MASTER', 'MASTER']);
  assert.deepEqual([inst('H1').priority, inst('H2').priority], [255, 255]);
});
