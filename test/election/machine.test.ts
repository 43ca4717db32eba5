/**
 * State-machine properties beyond the scenario files: invariants under random event sequences, and
 * a discrete-event simulation of several routers on one link (pure machines + a simulated wire) that
 * checks RFC election outcomes for random priorities, addresses and intervals.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  createInstance,
  step,
  stepBatch,
  masterDownIntervalMs,
  currentMaster,
  type Effect,
  type InstanceParams,
  type InstanceState,
  type VrrpEvent,
  type TimerName,
} from '../../src/election/machine.js';
import { compareIp, parseIp } from '../../src/core/address.js';

function invariants(s: InstanceState, where: string) {
  const t = s.timers;
  if (s.state === 'MASTER') {
    assert.ok(t.adver !== undefined, `${where}: master without Adver_Timer`);
    assert.equal(t.master_down, undefined, `${where}: master with Master_Down_Timer`);
    assert.equal(t.preempt, undefined, `${where}: master with preempt timer`);
  } else if (s.state === 'BACKUP') {
    assert.equal(t.adver, undefined, `${where}: backup with Adver_Timer`);
    assert.ok(t.master_down !== undefined || t.preempt !== undefined, `${where}: backup with no timer running`);
  } else {
    const { handover, ...rest } = t;
    assert.deepEqual(rest, {}, `${where}: ${s.state} with timers`);
    assert.equal(handover !== undefined, s.handover === true, `${where}: handover timer iff handing over`);
  }
  assert.ok(s.priority >= 1 && s.priority <= 255);
  if (s.state !== 'INIT' && s.faults.length > 0) assert.equal(s.state, 'FAULT', `${where}: faults but ${s.state}`);
}

const params = (p: Partial<InstanceParams> = {}): InstanceParams => ({
  name: 'vi', version: 3, vrid: 1, priority: 100, advertIntervalMs: 1000, preempt: true, preemptDelayMs: 0, primaryAddress: '192.0.2.1', ...p,
});

const eventArb: fc.Arbitrary<VrrpEvent> = fc.oneof(
  fc.constant({ type: 'startup' } as const),
  fc.constant({ type: 'shutdown' } as const),
  fc.record({
    type: fc.constant('advert' as const),
    from: fc.constantFrom('192.0.2.1', '192.0.2.2', '192.0.2.200', 'garbage', '2001:db8::1'),
    priority: fc.oneof(fc.integer({ min: 0, max: 255 }), fc.constantFrom(-1, 256, 1.5, Number.NaN)),
    maxAdvertMs: fc.oneof(fc.constantFrom(10, 100, 1000, 40950), fc.constantFrom(0, -5, Number.NaN, Infinity)),
  }),
  fc.record({ type: fc.constant('timer' as const), name: fc.constantFrom<TimerName>('adver', 'master_down', 'preempt'), lateMs: fc.option(fc.integer({ min: 0, max: 100 }), { nil: undefined }) }).map((e) => (e.lateMs === undefined ? { type: e.type, name: e.name } : e)),
  fc.record({ type: fc.constant('fault' as const), reason: fc.constantFrom('a', 'b') }),
  fc.record({ type: fc.constant('fault_cleared' as const), reason: fc.constantFrom('a', 'b', 'c') }),
  fc.record({ type: fc.constant('priority' as const), effective: fc.oneof(fc.integer({ min: -300, max: 300 }), fc.constant(Number.NaN)) }),
  fc.record({ type: fc.constant('sync' as const), to: fc.constantFrom('MASTER' as const, 'BACKUP' as const), group: fc.constant('G'), member: fc.constant('x') }),
);

test('property: random event sequences never throw and keep the timer/state invariants; VIPs are added and removed alternately', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 255 }),
      fc.constantFrom(2 as const, 3 as const),
      fc.boolean(),
      fc.constantFrom(0, 500),
      fc.array(fc.tuple(eventArb, fc.integer({ min: 0, max: 2000 })), { maxLength: 60 }),
      (priority, version, preempt, preemptDelayMs, evs) => {
        let s = createInstance(params({ priority, version, preempt, preemptDelayMs }), 0);
        let now = 0;
        let vips = false;
        for (const [ev, dt] of evs) {
          now += dt;
          const r = step(s, ev, now);
          for (const e of r.effects) {
            if (e.type === 'add_vips') { assert.equal(vips, false, 'add_vips twice'); vips = true; }
            if (e.type === 'remove_vips') { assert.equal(vips, true, 'remove_vips without add'); vips = false; }
            if (e.type === 'timer') assert.ok(Number.isFinite(e.ms) && e.ms >= 0, `bad timer ${JSON.stringify(e)}`);
            if (e.type === 'send_advert') assert.ok(Number.isInteger(e.priority) && e.priority >= 0 && e.priority <= 255);
          }
          s = r.state;
          invariants(s, JSON.stringify(ev));
          assert.equal(vips, s.state === 'MASTER' || s.handover === true, 'VIPs held exactly while Master (or stopped and handing over)');
          if (s.handover) assert.equal(s.state, 'INIT', 'a handover happens only after a shutdown');
          assert.deepEqual(JSON.parse(JSON.stringify(s)), s, 'state is plain data');
        }
      },
    ),
    { numRuns: 600 },
  );
});

test('stepBatch feeds queued adverts before a due master_down expiry (no false takeover after a stall)', () => {
  let s = createInstance(params({ advertIntervalMs: 10, lateToleranceMs: 1000 }), 0); // guard off: ordering alone must save us
  s = step(s, { type: 'startup' }, 0).state;
  s = step(s, { type: 'advert', from: '192.0.2.2', priority: 200, maxAdvertMs: 10 }, 5).state;
  const deadline = s.timers.master_down!;
  const queued: VrrpEvent[] = [
    { type: 'timer', name: 'master_down' },
    { type: 'advert', from: '192.0.2.2', priority: 200, maxAdvertMs: 10 },
  ];
  const bad = stepBatch(s, [queued[0]!], deadline + 50);
  assert.equal(bad.state.state, 'MASTER', 'control: the expiry alone takes over');
  const r = stepBatch(s, queued, deadline + 50);
  assert.equal(r.state.state, 'BACKUP');
  assert.ok(!r.effects.some((e) => e.type === 'become'));
});

// --- simulation of routers on one link --------------------------------------------------------

interface Node {
  addr: string;
  s: InstanceState;
  timers: Map<TimerName, number>;
  alive: boolean;
  vips: boolean;
}

class Wire {
  now = 0;
  readonly nodes: Node[];
  private readonly inflight: Array<{ at: number; to: number; ev: VrrpEvent }> = [];
  transitions: Array<{ at: number; node: string; from: string; to: string; reason: string }> = [];
  constructor(ps: InstanceParams[], readonly latency = 0.2) {
    this.nodes = ps.map((p) => ({ addr: p.primaryAddress, s: createInstance(p, 0), timers: new Map(), alive: true, vips: false }));
  }
  private exec(i: number, effects: readonly Effect[]) {
    const n = this.nodes[i]!;
    for (const e of effects) {
      switch (e.type) {
        case 'timer': n.timers.set(e.name, this.now + e.ms); break;
        case 'cancel': n.timers.delete(e.name); break;
        case 'add_vips': n.vips = true; break;
        case 'remove_vips': n.vips = false; break;
        case 'become': this.transitions.push({ at: this.now, node: n.addr, from: e.from, to: e.to, reason: e.reason }); break;
        case 'send_advert':
          this.nodes.forEach((m, j) => {
            if (j !== i) this.inflight.push({ at: this.now + this.latency, to: j, ev: { type: 'advert', from: n.addr, priority: e.priority, maxAdvertMs: n.s.params.advertIntervalMs } });
          });
          break;
        default: break;
      }
    }
  }
  feed(i: number, ev: VrrpEvent) {
    const n = this.nodes[i]!;
    if (!n.alive) return;
    const r = step(n.s, ev, this.now);
    n.s = r.state;
    this.exec(i, r.effects);
    invariants(n.s, `node ${n.addr} after ${JSON.stringify(ev)}`);
  }
  /** Hard kill: the process disappears (its VIPs stay configured, as with SIGKILL; it sends nothing). */
  kill(i: number) {
    const n = this.nodes[i]!;
    n.alive = false;
    n.timers.clear();
  }
  /** Freeze a node's event loop (a stall) until `until`: its timers and received packets wait. */
  freeze(i: number, until: number) {
    this.frozenUntil.set(i, until);
  }
  private readonly frozenUntil = new Map<number, number>();
  run(until: number) {
    type Cand = { eff: number; rank: number; at: number; kind: 'pkt' | 'timer'; i: number; name?: TimerName; k?: number };
    for (let guard = 0; guard < 200_000; guard++) {
      // Next event. Normally deliveries come before timers at the same instant (adverts are read
      // first). For a node coming out of a stall, Node's loop runs due timers (timers phase) before
      // it reads the socket (poll phase): that is the case the late guard exists for.
      let best: Cand | undefined;
      const consider = (c: Cand) => {
        if (!best || c.eff < best.eff || (c.eff === best.eff && (c.rank < best.rank || (c.rank === best.rank && c.at < best.at)))) best = c;
      };
      this.inflight.forEach((p, k) => {
        const fu = this.frozenUntil.get(p.to) ?? -Infinity;
        const bumped = p.at < fu;
        consider({ eff: Math.max(p.at, fu), rank: bumped ? 1 : 0, at: p.at, kind: 'pkt', i: p.to, k });
      });
      this.nodes.forEach((n, i) => {
        if (!n.alive) return;
        const fu = this.frozenUntil.get(i) ?? -Infinity;
        for (const [name, at] of n.timers) consider({ eff: Math.max(at, fu), rank: at < fu ? 0 : 1, at, kind: 'timer', i, name });
      });
      if (!best || (best as Cand).eff > until) { this.now = until; return; }
      const b = best as Cand;
      this.now = b.eff;
      if (b.kind === 'pkt') {
        const p = this.inflight.splice(b.k!, 1)[0]!;
        if (this.nodes[p.to]!.alive) this.feed(p.to, p.ev);
      } else {
        this.nodes[b.i]!.timers.delete(b.name!);
        this.feed(b.i, { type: 'timer', name: b.name! });
      }
    }
    throw new Error('simulation did not settle (event storm)');
  }
  masters(): string[] {
    return this.nodes.filter((n) => n.alive && n.s.state === 'MASTER').map((n) => n.addr);
  }
}

/**
 * Who may win: the highest priority (RFC 5798 §6.4.2: a Backup accepts a master of equal priority,
 * so among equals the first to time out keeps the role; the address tie-break of §6.4.3 only decides
 * between two Masters, e.g. when they start together).
 */
function eligible(nodes: Array<{ addr: string; prio: number }>): string[] {
  const max = Math.max(...nodes.map((n) => n.prio));
  return nodes.filter((n) => n.prio === max).map((n) => n.addr);
}

const routersArb = fc
  .record({
    n: fc.integer({ min: 2, max: 4 }),
    prios: fc.array(fc.integer({ min: 1, max: 255 }), { minLength: 4, maxLength: 4 }),
    lastOctets: fc.uniqueArray(fc.integer({ min: 1, max: 254 }), { minLength: 4, maxLength: 4 }),
    version: fc.constantFrom(2 as const, 3 as const),
    cs: fc.constantFrom(1, 10, 100),
  })
  .map((r) => {
    const interval = r.version === 2 ? 1000 : r.cs * 10;
    // At most one owner (255) on a link: several owners is a misconfiguration the RFC doesn't cover.
    let owner = false;
    const prios = r.prios.slice(0, r.n).map((p) => (p === 255 ? (owner ? 254 : ((owner = true), 255)) : p));
    return prios.map((prio, i) => ({ prio, addr: `192.0.2.${r.lastOctets[i]}`, interval, version: r.version }));
  });

test('simulation (property): routers elect the RFC winner, exactly one holds the VIPs, and a hard kill hands over within Master_Down_Interval', () => {
  fc.assert(
    fc.property(routersArb, fc.array(fc.integer({ min: 0, max: 50 }), { minLength: 4, maxLength: 4 }), (rs, startJitter) => {
      const wire = new Wire(rs.map((r) => params({ version: r.version, priority: r.prio, advertIntervalMs: r.interval, primaryAddress: r.addr })));
      const iv = rs[0]!.interval;
      // Staggered starts (ms-scale jitter scaled to the interval).
      const starts = rs.map((_, i) => ((startJitter[i] ?? 0) * iv) / 50);
      const order = rs.map((_, i) => i).sort((a, b) => starts[a]! - starts[b]!);
      for (const i of order) {
        wire.run(starts[i]!);
        wire.feed(i, { type: 'startup' });
      }
      wire.run(Math.max(...starts) + 6 * iv + 1000);
      const ms = wire.masters();
      assert.equal(ms.length, 1, `masters ${JSON.stringify(ms)} for ${JSON.stringify(rs)}`);
      const winner = ms[0]!;
      assert.ok(eligible(rs).includes(winner), `${winner} is not among the highest priority ${JSON.stringify(rs)}`);
      if (starts.every((x) => x === starts[0])) {
        // Simultaneous start: equal-priority Masters meet and the higher address stays (§6.4.3).
        const best = eligible(rs).sort((a, b) => compareIp(parseIp(b)!.bytes, parseIp(a)!.bytes))[0];
        assert.equal(winner, best, 'simultaneous start: address tie-break');
      }
      assert.deepEqual(wire.nodes.filter((n) => n.vips).map((n) => n.addr), [winner], 'exactly the master holds the VIPs');
      for (const n of wire.nodes) if (n.addr !== winner) assert.equal(currentMaster(n.s), winner, 'backups know the master');
      // Hard-kill the master: the next best takes over within its Master_Down_Interval (+ latency).
      const wi = wire.nodes.findIndex((n) => n.addr === winner);
      const killAt = wire.now;
      wire.kill(wi);
      const rest = rs.filter((r) => r.addr !== winner);
      const nextEligible = eligible(rest);
      const nextR = rest.find((r) => r.addr === nextEligible[0])!;
      const bound = masterDownIntervalMs(nextR.version, nextR.prio, iv) + 2 * wire.latency + 1e-6;
      wire.run(killAt + bound);
      const became = wire.transitions.find((t) => t.at > killAt && t.to === 'MASTER');
      assert.ok(became, `no takeover within ${bound} ms`);
      wire.run(killAt + bound + 6 * iv + 1000);
      const after = wire.masters();
      assert.equal(after.length, 1, `after the kill: masters ${JSON.stringify(after)}`);
      assert.ok(nextEligible.includes(after[0]!), `${after[0]} took over, expected one of ${nextEligible}`);
      assert.deepEqual(wire.nodes.filter((n) => n.alive && n.vips).map((n) => n.addr), after);
    }),
    { numRuns: 150 },
  );
});

test('simulation: equal priorities started together: both time out, meet as Masters, the higher address stays', () => {
  for (const [a, b] of [['192.0.2.100', '192.0.2.99'], ['192.0.2.99', '192.0.2.100'], ['192.0.2.1', '192.0.2.200']] as const) {
    const wire = new Wire([params({ priority: 100, primaryAddress: a }), params({ priority: 100, primaryAddress: b })]);
    wire.feed(0, { type: 'startup' });
    wire.feed(1, { type: 'startup' });
    wire.run(20_000);
    const want = compareIp(parseIp(a)!.bytes, parseIp(b)!.bytes) > 0 ? a : b;
    assert.deepEqual(wire.masters(), [want]);
    assert.ok(wire.transitions.some((t) => t.reason === 'equal_priority_higher_address'), 'both were Master before the tie-break');
  }
});

/**
 * Master 192.0.2.10 (200) and backup 192.0.2.20 (100) at 10 ms adverts, settled at 500 + phase ms;
 * then `stall(wire, t0)` freezes whom it wants. Returns the backup's takeovers after t0 (false ones:
 * the master never died). `guard` false turns the late guard off (the control).
 */
function falseTakeovers(guard: boolean, phase: number, until: number, stall: (w: Wire, t0: number) => void): number {
  const wire = new Wire([
    params({ priority: 200, advertIntervalMs: 10, primaryAddress: '192.0.2.10' }),
    params({ priority: 100, advertIntervalMs: 10, primaryAddress: '192.0.2.20', ...(guard ? {} : { lateToleranceMs: 1e9 }) }),
  ]);
  wire.feed(0, { type: 'startup' });
  wire.feed(1, { type: 'startup' });
  wire.run(500 + phase);
  assert.deepEqual(wire.masters(), ['192.0.2.10']);
  const t0 = wire.now;
  stall(wire, t0);
  wire.run(t0 + until);
  return wire.transitions.filter((t) => t.at > t0 && t.node === '192.0.2.20' && t.to === 'MASTER').length;
}

test('simulation (property): a backup stalled longer than Master_Down_Interval does not take over from a live master (late guard); control without the guard does', () => {
  fc.assert(
    fc.property(fc.integer({ min: 40, max: 300 }), fc.integer({ min: 0, max: 9 }), (stall, phase) => {
      const outcome = (guard: boolean) => falseTakeovers(guard, phase, stall + 200, (w, t0) => w.freeze(1, t0 + stall));
      assert.equal(outcome(true), 0, `false takeover after a ${stall} ms stall with the guard`);
      assert.ok(outcome(false) > 0, `control: without the guard a ${stall} ms stall should fake a master-down`);
    }),
    { numRuns: 60 },
  );
});

test('simulation (property): master and backup frozen together (one host stall), the master getting the CPU back up to 4 ms after the backup: no false takeover (the grace); control without the guard takes over', () => {
  fc.assert(
    fc.property(fc.integer({ min: 60, max: 300 }), fc.integer({ min: 0, max: 4 }), fc.integer({ min: 0, max: 9 }), (stall, after, phase) => {
      const outcome = (guard: boolean) =>
        falseTakeovers(guard, phase, stall + 200, (w, t0) => {
          w.freeze(1, t0 + stall);
          w.freeze(0, t0 + stall + after);
        });
      assert.equal(outcome(true), 0, `false takeover after a shared ${stall} ms stall, master back ${after} ms later`);
      assert.ok(outcome(false) > 0, `control: without the guard the shared stall should fake a master-down`);
    }),
    { numRuns: 60 },
  );
});

test('simulation: a master that dies before or during the backup stall is taken over after the recheck / one interval after the stall', () => {
  const setup = () => {
    const wire = new Wire([
      params({ priority: 200, advertIntervalMs: 10, primaryAddress: '192.0.2.10' }),
      params({ priority: 100, advertIntervalMs: 10, primaryAddress: '192.0.2.20' }),
    ]);
    wire.feed(0, { type: 'startup' });
    wire.feed(1, { type: 'startup' });
    wire.run(500);
    return wire;
  };
  const takeover = (wire: Wire, t0: number) => wire.transitions.find((x) => x.at > t0 && x.node === '192.0.2.20' && x.to === 'MASTER');
  // Dead before the stall: nothing is queued, the late expiry is re-checked once and then acted on.
  let wire = setup();
  let t0 = wire.now;
  wire.kill(0);
  wire.freeze(1, t0 + 100);
  wire.run(t0 + 300);
  let t = takeover(wire, t0);
  assert.ok(t);
  assert.equal(t.reason, 'master_down_timeout_after_recheck');
  assert.ok(Math.abs(t.at - (t0 + 100 + 5)) < 1e-6, `took over at +${t.at - t0} ms, expected stall end + grace of half an interval (5 ms)`);
  // Dead during the stall: its last adverts are read after the stall and count as fresh (no kernel
  // receive timestamps), so the takeover comes one Master_Down_Interval after the stall ends.
  wire = setup();
  t0 = wire.now;
  wire.freeze(1, t0 + 100);
  wire.run(t0 + 20);
  wire.kill(0);
  wire.run(t0 + 300);
  t = takeover(wire, t0);
  assert.ok(t);
  assert.equal(t.reason, 'master_down_timeout');
  assert.ok(Math.abs(t.at - (t0 + 100 + masterDownIntervalMs(3, 100, 10))) < 1e-6, `took over at +${t.at - t0} ms`);
});

test('simulation: graceful stop (priority 0) hands over after Skew_Time, far sooner than a hard kill', () => {
  for (const [version, iv] of [[2, 1000], [3, 100], [3, 10]] as const) {
    const wire = new Wire([
      params({ version, priority: 200, advertIntervalMs: iv, primaryAddress: '192.0.2.10' }),
      params({ version, priority: 100, advertIntervalMs: iv, primaryAddress: '192.0.2.20' }),
    ]);
    wire.feed(0, { type: 'startup' });
    wire.feed(1, { type: 'startup' });
    wire.run(10 * iv + 1000);
    assert.deepEqual(wire.masters(), ['192.0.2.10']);
    const stopAt = wire.now;
    wire.feed(0, { type: 'shutdown' });
    wire.run(stopAt + 5 * iv + 1000);
    const t = wire.transitions.find((x) => x.at > stopAt && x.to === 'MASTER')!;
    const skew = version === 3 ? (156 * iv) / 256 : (156 * 1000) / 256;
    assert.ok(Math.abs(t.at - stopAt - (skew + wire.latency)) < 1e-6, `v${version}/${iv}: takeover after ${t.at - stopAt} ms, expected Skew_Time ${skew} + latency`);
    assert.deepEqual(wire.masters(), ['192.0.2.20']);
  }
});

test('simulation: nopreempt keeps the current master when a higher-priority router joins; preempt hands over', () => {
  for (const preempt of [false, true]) {
    const wire = new Wire([
      params({ priority: 100, primaryAddress: '192.0.2.10' }),
      params({ priority: 200, primaryAddress: '192.0.2.20', preempt }),
    ]);
    wire.feed(0, { type: 'startup' });
    wire.run(5000);
    assert.deepEqual(wire.masters(), ['192.0.2.10']);
    wire.feed(1, { type: 'startup' });
    wire.run(20_000);
    assert.deepEqual(wire.masters(), [preempt ? '192.0.2.20' : '192.0.2.10']);
  }
});

test('simulation: preempt_delay postpones a returning higher-priority router by the delay', () => {
  const wire = new Wire([
    params({ priority: 100, primaryAddress: '192.0.2.10' }),
    params({ priority: 200, primaryAddress: '192.0.2.20', preemptDelayMs: 4000 }),
  ]);
  wire.feed(0, { type: 'startup' });
  wire.run(5000);
  wire.feed(1, { type: 'startup' });
  const joined = wire.now;
  wire.run(joined + 7000);
  assert.deepEqual(wire.masters(), ['192.0.2.10'], 'still waiting (3218.75 + 4000 ms)');
  wire.run(joined + 7300);
  assert.deepEqual(wire.masters(), ['192.0.2.20']);
  const t = wire.transitions.find((x) => x.node === '192.0.2.20' && x.to === 'MASTER')!;
  assert.equal(t.reason, 'preempt_delay_expired');
  assert.ok(Math.abs(t.at - joined - (3218.75 + 4000)) < 1e-6);
});

test('several instances per daemon are independent states', () => {
  let a = createInstance(params({ name: 'a', vrid: 1, priority: 255 }), 0);
  let b = createInstance(params({ name: 'b', vrid: 2, priority: 100 }), 0);
  a = step(a, { type: 'startup' }, 0).state;
  b = step(b, { type: 'startup' }, 0).state;
  assert.equal(a.state, 'MASTER');
  assert.equal(b.state, 'BACKUP');
  b = step(b, { type: 'fault', reason: 'x' }, 10).state;
  assert.equal(a.state, 'MASTER');
  assert.equal(b.state, 'FAULT');
});
