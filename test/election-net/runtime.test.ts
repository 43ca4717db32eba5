/**
 * The election subsystem's shell logic with fakes for the I/O roles (transport, address table,
 * frame sender) and a ManualClock: the master_down expiry is deferred past adverts delivered in
 * the same loop turn; reload by diff; quorum tracking; metrics; bus events; status.
 * (Real sockets, netlink and keepalived are covered by the namespace tests in this folder.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { Bus } from '../../src/core/bus.js';
import { ManualClock } from '../../src/core/clock.js';
import { silentLogger } from '../../src/core/log.js';
import { parseIp } from '../../src/core/address.js';
import { parseConfigText, diffConfig, type ClusterConfig, type VirtualAddress } from '../../src/config/index.js';
import { createElectionSubsystem } from '../../src/election/subsystem.js';
import type { TransportHandlers, VrrpTransport } from '../../src/election/transport.js';
import type { AddressTable } from '../../src/election/vips.js';
import type { Advert } from '../../src/election/codec.js';
import type { FastResult } from '../../src/election/io.js';

class FakeTransport implements VrrpTransport {
  readonly localAddress: Uint8Array;
  h: TransportHandlers | undefined;
  sent: Advert[] = [];
  closed = false;
  constructor(readonly name: string, local: string) {
    this.localAddress = parseIp(local)!.bytes;
  }
  start(h: TransportHandlers) {
    this.h = h;
  }
  send(a: Advert) {
    this.sent.push(a);
  }
  close() {
    this.closed = true;
  }
  deliver(priority: number, from = '192.0.2.9', intervalMs = 100, ageMs?: number) {
    this.h?.onAdvert({ advert: { version: 3, vrid: 1, priority, intervalMs, addresses: [] }, src: from, srcBytes: parseIp(from)!.bytes, ...(ageMs !== undefined ? { ageMs } : {}) });
  }
}

/** A transport whose socket can be read synchronously: `waiting` adverts are delivered by poll(). */
class PollingTransport extends FakeTransport {
  waiting: number[] = [];
  polls = 0;
  poll() {
    this.polls++;
    for (const p of this.waiting.splice(0)) this.deliver(p);
  }
}

class FakeTable implements AddressTable {
  readonly addrs = new Set<string>();
  async add(ifname: string, v: VirtualAddress) {
    const k = `${ifname}/${v.address}`;
    if (this.addrs.has(k)) return 'present' as const;
    this.addrs.add(k);
    return 'added' as const;
  }
  async remove(ifname: string, v: VirtualAddress) {
    return this.addrs.delete(`${ifname}/${v.address}`) ? ('removed' as const) : ('absent' as const);
  }
  async list(ifname: string) {
    return new Set([...this.addrs].filter((k) => k.startsWith(`${ifname}/`)).map((k) => k.split('/')[1]!));
  }
  watch() {
    return () => {};
  }
  close() {}
}

function cfg(text: string): ClusterConfig {
  return parseConfigText(text, 'test.yaml', { checkFiles: false }).config;
}

const base = (instances: string) => `
global:
  router_id: t
vrrp_instances:
${instances}
virtual_servers:
  - name: web
    address: 192.0.2.80
    port: 80
    protocol: tcp
    real_servers:
      - address: 198.51.100.1
`;
const inst = (name: string, vrid: number, prio: number, vip: string, extra = '') => `  - name: ${name}
    interface: eth0
    virtual_router_id: ${vrid}
    priority: ${prio}
    version: 3
    advert_interval: 0.1
    virtual_addresses: [${vip}/24]
${extra}`;

/** What a fake takeover call was prepared with and did (harness option `fast`). */
interface FastCall {
  readonly advert: Advert | undefined;
  readonly rounds: number;
  ran: boolean;
  /** Clock time when run() was called. */
  at?: number;
}

/**
 * A stand-in for the takeover thread (harness option `thread`): it decides at its deadline when the
 * runtime's wake waits for it (sleeping the clock to it), or when a test calls act() (the thread
 * acting while the loop is held up). Acting adds the VIPs to the fake table, like the takeover call.
 */
interface FakeThread {
  readonly log: string[];
  armed: boolean;
  due?: number;
  limit: number;
  result?: FastResult;
  act(lateMs: number): void;
}

function harness(opts: { polling?: boolean; fast?: boolean; fastThrows?: boolean; backstop?: boolean; thread?: boolean } = {}) {
  const clock = new ManualClock(1000);
  const registry = new Registry();
  const bus = new Bus();
  const table = new FakeTable();
  const transports = new Map<string, FakeTransport>();
  const deferred: Array<() => void> = [];
  const frames: Uint8Array[] = [];
  const frameIfs: string[] = [];
  const events: Array<{ instance: string; from: string; to: string; reason: string }> = [];
  bus.on('vrrp.state', (e) => events.push(e));
  const fastCalls: FastCall[] = [];
  // Backstop calls and the adverts the transport sent, in one log (order matters: disarm before the priority-0 advert).
  const wire: string[] = [];
  let backstopOwed = 0;
  const threads = new Map<string, FakeThread>();
  const sub = createElectionSubsystem(
    { logger: silentLogger, clock, registry, bus },
    {
      makeTransport: (c) => {
        const t = opts.polling ? new PollingTransport(c.name, '192.0.2.5') : new FakeTransport(c.name, '192.0.2.5');
        const send = t.send.bind(t);
        t.send = (a) => {
          wire.push(`advert:${a.priority}`);
          send(a);
        };
        transports.set(c.name, t);
        return t;
      },
      ...(opts.backstop
        ? {
            backstop: () => ({
              arm: (a) => (wire.push(`arm:${a.priority}`), true),
              kick: () => {
                wire.push('kick');
                const n = backstopOwed;
                backstopOwed = 0;
                return n;
              },
              disarm: () => void wire.push('disarm'),
              close: () => void wire.push('close'),
            }),
          }
        : {}),
      ...(opts.thread
        ? {
            takeoverThread: (c) => {
              let loaded: { advert: Advert | undefined; rounds: number } | undefined;
              const f: FakeThread = {
                log: [],
                armed: false,
                limit: -1,
                act(lateMs) {
                  f.armed = false;
                  const t = transports.get(c.name);
                  if ((f.limit >= 0 && lateMs > f.limit) || (t instanceof PollingTransport && t.waiting.length)) {
                    f.result = { pending: true, lateMs };
                    return;
                  }
                  for (const v of c.virtual_addresses) table.addrs.add(`${c.interface}/${v.address}`);
                  f.log.push('acted');
                  f.result = { pending: false, lateMs, vipsAdded: true, rounds: loaded!.rounds, advertSent: loaded!.advert !== undefined };
                },
              };
              threads.set(c.name, f);
              return {
                load: (_targets, advert, rounds) => {
                  f.log.push(`load:${advert?.priority}`);
                  loaded = { advert, rounds };
                  f.armed = false;
                  return true;
                },
                arm: (inMs, limit) => {
                  f.log.push('arm');
                  Object.assign(f, { due: clock.now() + inMs, limit, armed: true, result: undefined });
                },
                disarm: () => {
                  f.log.push('disarm');
                  f.armed = false;
                },
                fired: () => f.result?.pending === false,
                wait: (timeoutMs) => {
                  if (!f.result && f.armed && f.due! - clock.now() <= timeoutMs) {
                    if (f.due! > clock.now()) clock.sleep(f.due! - clock.now());
                    f.act(clock.now() - f.due!);
                  }
                  const r = f.result;
                  f.result = undefined;
                  f.armed = false;
                  return r;
                },
                close: () => void f.log.push('close'),
              };
            },
          }
        : {}),
      addressTable: table,
      frameSender: {
        send: (i, f) => {
          frames.push(f);
          frameIfs.push(i);
        },
        close: () => {},
      },
      macOf: (i) => Uint8Array.from(i === 'lo' ? [0, 0, 0, 0, 0, 0] : [2, 0, 0, 0, i === 'eth1' ? 1 : 0, 5]),
      defer: (fn) => void deferred.push(fn),
      sleepSync: (ms) => clock.sleep(ms),
      linkUp: () => true,
      // A stand-in for the addon's call: 'pending' while an advert waits in the (polling) socket,
      // else it adds the instance's VIPs to the fake table and reports the rounds and advert sent.
      ...(opts.fast
        ? {
            fastTakeover: (c) => ({
              prepare: (_targets, advert, rounds) => {
                const call: FastCall = { advert, rounds, ran: false };
                fastCalls.push(call);
                return {
                  // The addon's call sleeps `waitMs` (to the deadline) before it acts.
                  run: (waitMs = 0, lateLimitMs = -1) => {
                    if (opts.fastThrows) throw new TypeError('takeover(...)');
                    if (waitMs > 0) clock.sleep(waitMs);
                    const lateMs = Math.max(0, -waitMs);
                    if (lateLimitMs >= 0 && lateMs > lateLimitMs) return { pending: true as const, lateMs };
                    call.at = clock.now();
                    const t = transports.get(c.name);
                    if (t instanceof PollingTransport && t.waiting.length) return { pending: true as const };
                    call.ran = true;
                    for (const v of c.virtual_addresses) table.addrs.add(`${c.interface}/${v.address}`);
                    return { pending: false as const, vipsAdded: true, rounds, advertSent: advert !== undefined };
                  },
                };
              },
            }),
          }
        : {}),
    },
  );
  const runDeferred = () => {
    for (const fn of deferred.splice(0)) fn();
  };
  return { clock, registry, bus, table, transports, deferred, runDeferred, frames, frameIfs, events, fastCalls, threads, sub, wire, owe: (n: number) => (backstopOwed += n) };
}

const flush = () => new Promise((r) => setImmediate(r));

test('an advert delivered in the same turn as a master_down expiry keeps the backup a backup', async () => {
  const h = harness();
  const c = cfg(base(inst('VI_1', 1, 100, '192.0.2.42')));
  await h.sub.start(c);
  const t = h.transports.get('VI_1')!;
  t.deliver(150);
  // Master_Down_Interval = 300 + 156/256*100 = 360.9 ms. The host timer fires late (stall) ...
  h.clock.advance(400);
  assert.equal(h.deferred.length, 1, 'expiry deferred, not acted on in the timer callback');
  // ... the poll phase then reads the master's advert that waited in the socket ...
  t.deliver(150);
  // ... and only then the deferred expiry runs: stale, ignored.
  h.runDeferred();
  assert.equal((h.sub.status() as { instances: Record<string, { state: string }> }).instances.VI_1!.state, 'BACKUP');
  assert.equal(h.table.addrs.size, 0);

  // Control: nothing arrives → the same expiry makes it master, VIP added and announced.
  h.clock.advance(400);
  h.runDeferred();
  h.clock.advance(100); // the late guard's grace (the expiry was late): min(lateness, half the 100 ms interval)
  h.runDeferred();
  await flush();
  assert.equal((h.sub.status() as { instances: Record<string, { state: string }> }).instances.VI_1!.state, 'MASTER');
  assert.ok(h.table.addrs.has('eth0/192.0.2.42'));
  assert.ok(h.frames.length >= 5, 'GARP burst sent');
  assert.deepEqual(h.events.map((e) => `${e.from}>${e.to}`), ['INIT>BACKUP', 'BACKUP>MASTER']);
  const m = await h.registry.metrics();
  assert.match(m, /lvsd_vrrp_state\{vrrp_instance="VI_1",state="MASTER"\} 1/);
  assert.match(m, /lvsd_vrrp_transitions_total\{vrrp_instance="VI_1",from="BACKUP",to="MASTER"\} 1/);
  assert.match(m, /lvsd_vrrp_master_info\{vrrp_instance="VI_1",address="192.0.2.5"\} 1/);
  assert.match(m, /lvsd_vrrp_garp_sent_total\{vrrp_instance="VI_1"\} \d+/);
  assert.match(m, /lvsd_vrrp_adverts_received_total\{vrrp_instance="VI_1"\} 2/);

  // Graceful stop, make-before-break (stop_handover): priority 0 goes out, the VIP stays ...
  const t0 = t.sent.length;
  let stopped = false;
  const stopping = h.sub.stop().then(() => (stopped = true));
  await flush();
  assert.equal(t.sent.at(-1)?.priority, 0, 'priority-0 advert sent at once');
  assert.equal(t.sent.length, t0 + 1);
  assert.ok(h.table.addrs.has('eth0/192.0.2.42'), 'VIP kept while no new master has advertised');
  assert.equal(stopped, false);
  h.clock.advance(150); // less than the bound (2 × 100 ms)
  await flush();
  assert.ok(h.table.addrs.has('eth0/192.0.2.42'));
  // ... until the backup that took over advertises: then the VIP goes and stop() completes.
  t.deliver(100, '192.0.2.7');
  await stopping;
  assert.equal(h.table.addrs.size, 0, 'VIP released after the new master advertised');
  assert.ok(t.closed);
});

const stateOf = (h: ReturnType<typeof harness>) => (h.sub.status() as { instances: Record<string, { state: string }> }).instances.VI_1!.state;

test('a transport with a synchronous poll: the master_down expiry reads waiting adverts first and acts in the same callback', async () => {
  const h = harness({ polling: true });
  await h.sub.start(cfg(base(inst('VI_1', 1, 100, '192.0.2.42', '    stop_handover: false\n'))));
  const t = h.transports.get('VI_1') as PollingTransport;
  t.deliver(150);
  // An advert is waiting in the socket when the timer fires (a stall): poll() feeds it, the expiry is stale.
  t.waiting.push(150);
  h.clock.advance(400);
  assert.equal(t.polls, 1);
  assert.equal(h.deferred.length, 0, 'nothing deferred: the socket was read synchronously');
  assert.equal(stateOf(h), 'BACKUP');
  // Nothing waiting: the same callback takes over (no check-phase turn), VIP added, GARP sent.
  h.clock.advance(361);
  assert.equal(h.deferred.length, 0);
  assert.equal(stateOf(h), 'MASTER');
  assert.ok(h.table.addrs.has('eth0/192.0.2.42'));
  await h.sub.stop();
});

test('takeover call: its advert and GARP rounds are adopted, not repeated, and counted; the step waits out the quiet window, bookkeeping 10 ms more', async () => {
  const h = harness({ polling: true, fast: true });
  await h.sub.start(cfg(base(inst('VI_1', 1, 100, '192.0.2.42', '    stop_handover: false\n'))));
  const t = h.transports.get('VI_1')!;
  h.clock.advance(100);
  t.deliver(150);
  h.clock.advance(361); // Master_Down_Interval 360.94 ms after that advert: the call runs at the deadline
  const call = h.fastCalls.at(-1)!;
  assert.ok(call.ran, 'the call ran');
  assert.equal(call.advert?.priority, 100, 'prepared with the advert the step sends');
  assert.equal(call.rounds, 5, 'the whole unspaced first burst (master_repeat 5)');
  assert.ok(h.table.addrs.has('eth0/192.0.2.42'));
  // Quiet window (10 ms): the data plane is done, the machine's step has not run yet.
  assert.equal(stateOf(h), 'BACKUP');
  h.clock.advance(9.5);
  assert.equal(stateOf(h), 'BACKUP');
  h.clock.advance(0.5);
  assert.equal(stateOf(h), 'MASTER');
  assert.equal(t.sent.length, 0, 'the step adopted the advert the call sent');
  assert.equal(h.frames.length, 0, 'the announcer sent none of the rounds the call sent');
  let m = await h.registry.metrics();
  assert.match(m, /lvsd_vrrp_garp_sent_total\{vrrp_instance="VI_1"\} 5\n/);
  assert.match(m, /lvsd_vrrp_adverts_sent_total\{vrrp_instance="VI_1"\} 1\n/);
  // Log, metrics of the transition and the bus event come POSTPONE_MS after the step.
  assert.deepEqual(h.events.map((e) => `${e.from}>${e.to}`), ['INIT>BACKUP']);
  assert.doesNotMatch(m, /lvsd_vrrp_state\{vrrp_instance="VI_1",state="MASTER"\} 1/);
  h.clock.advance(10);
  assert.deepEqual(h.events.map((e) => `${e.from}>${e.to}`), ['INIT>BACKUP', 'BACKUP>MASTER']);
  m = await h.registry.metrics();
  assert.match(m, /lvsd_vrrp_state\{vrrp_instance="VI_1",state="MASTER"\} 1/);
  // The next advert is the Adver_Timer's, one interval after the takeover call (not after the step).
  h.clock.advance(79); // 99.06 ms after the call
  assert.equal(t.sent.length, 0);
  h.clock.advance(2);
  assert.equal(t.sent.length, 1);
  assert.equal(h.frames.length, 0, 'the delayed burst waits for master_delay');
  await h.sub.stop();
});

test('takeover call: a host timer that fires past the late guard\'s tolerance leaves the expiry to the machine (grace, then the call)', async () => {
  const h = harness({ polling: true, fast: true });
  await h.sub.start(cfg(base(inst('VI_1', 1, 100, '192.0.2.42', '    stop_handover: false\n'))));
  const t = h.transports.get('VI_1')!;
  h.clock.advance(100);
  t.deliver(150);
  const due = h.clock.now() + 300 + (156 / 256) * 100;
  h.clock.advance(300); // the host timer wakes 3 ms before the deadline, at ~358 ms: not yet
  h.clock.sleep(66); // a stall: the host timer fires 5 ms past the deadline
  h.clock.advance(0);
  assert.equal(h.fastCalls.filter((c) => c.ran).length, 0, 'the call did nothing (late)');
  assert.equal(stateOf(h), 'BACKUP', 'the machine grants the master the lost time');
  assert.equal(h.table.addrs.size, 0);
  // Nothing arrives during the grace: the re-check takes over, through the call.
  h.clock.advance(60);
  const call = h.fastCalls.find((c) => c.ran);
  assert.ok(call?.at !== undefined && call.at > due + 5, 'the call ran after the grace');
  h.clock.advance(10);
  assert.equal(stateOf(h), 'MASTER');
  await h.sub.stop();
});

test('takeover call: a call that throws does not take the daemon down; the expiry takes the normal path', async () => {
  const h = harness({ polling: true, fast: true, fastThrows: true });
  await h.sub.start(cfg(base(inst('VI_1', 1, 100, '192.0.2.42', '    stop_handover: false\n'))));
  const t = h.transports.get('VI_1')!;
  h.clock.advance(100);
  t.deliver(150);
  h.clock.advance(361);
  await flush();
  assert.equal(stateOf(h), 'MASTER');
  assert.ok(h.table.addrs.has('eth0/192.0.2.42'), 'VIP added by the normal path');
  assert.ok(h.frames.length >= 5, 'GARP burst sent by the announcer');
  await h.sub.stop();
});

test('takeover warm-up: the wake\'s JavaScript runs dry at start and every 10 s as Backup (nothing sent or added), not as Master', async () => {
  const h = harness({ polling: true, fast: true });
  await h.sub.start(cfg(base(inst('VI_1', 1, 100, '192.0.2.42', '    stop_handover: false\n'))));
  const t = h.transports.get('VI_1')!;
  const atStart = h.fastCalls.length;
  assert.ok(atStart >= 8, `prepared ${atStart} times at start (V8 allocates feedback after 8 calls)`);
  assert.ok(h.fastCalls.every((c) => !c.ran && c.advert?.priority === 100));
  // Backup for 20 s with the master's adverts: two more warm-ups, nothing sent, no VIP.
  for (let i = 0; i < 200; i++) {
    t.deliver(150);
    h.clock.advance(100);
  }
  assert.equal(stateOf(h), 'BACKUP');
  assert.equal(h.fastCalls.length, 3 * atStart);
  assert.ok(h.fastCalls.every((c) => !c.ran));
  assert.equal(t.sent.length, 0);
  assert.equal(h.table.addrs.size, 0);
  // Master (the adverts stop): no more warm-ups.
  h.clock.advance(400);
  assert.equal(stateOf(h), 'MASTER');
  const n = h.fastCalls.length;
  h.clock.advance(20_000);
  assert.equal(h.fastCalls.length, n);
  await h.sub.stop();
});

test('takeover call: an advert waiting in the socket stops it; events in the quiet window queue behind the held step; bookkeeping keeps its order and is applied before a stop', async () => {
  const h = harness({ polling: true, fast: true });
  await h.sub.start(cfg(base(inst('VI_1', 1, 100, '192.0.2.42', '    stop_handover: false\n'))));
  const t = h.transports.get('VI_1') as PollingTransport;
  h.clock.advance(100);
  t.deliver(150);
  t.waiting.push(150);
  h.clock.advance(361);
  assert.equal(stateOf(h), 'BACKUP', 'the waiting advert was read: no takeover');
  assert.equal(h.fastCalls.at(-1)!.ran, false);
  assert.equal(h.table.addrs.size, 0);
  h.clock.advance(361);
  assert.ok(h.table.addrs.has('eth0/192.0.2.42'), 'the call took over');
  // A higher priority master appears inside the quiet window: its advert waits behind the held step ...
  h.clock.advance(2);
  t.deliver(200);
  assert.equal(stateOf(h), 'BACKUP');
  assert.ok(h.table.addrs.has('eth0/192.0.2.42'));
  // ... which runs at the window's end (Master), then the advert (back to Backup, VIP released).
  h.clock.advance(8);
  assert.equal(stateOf(h), 'BACKUP');
  await flush();
  assert.equal(h.table.addrs.size, 0, 'VIP released by the queued advert');
  assert.deepEqual(h.events.map((e) => `${e.from}>${e.to}`), ['INIT>BACKUP']);
  h.clock.advance(10);
  assert.deepEqual(h.events.map((e) => `${e.from}>${e.to}`), ['INIT>BACKUP', 'BACKUP>MASTER', 'MASTER>BACKUP']);
  // Stopped inside the next quiet window: the held step, its bookkeeping, then the stop's transition.
  // (The queued advert counted from when it arrived: Master_Down_Interval 360.94 ms from then.)
  h.clock.advance(334);
  assert.ok(!h.table.addrs.has('eth0/192.0.2.42'));
  h.clock.advance(10);
  assert.ok(h.table.addrs.has('eth0/192.0.2.42'));
  assert.equal(stateOf(h), 'BACKUP');
  await h.sub.stop();
  assert.deepEqual(h.events.map((e) => `${e.from}>${e.to}`).slice(3), ['BACKUP>MASTER', 'MASTER>INIT']);
  assert.equal(h.table.addrs.size, 0);
});

test('advert age: the Master_Down_Timer runs from the kernel receive time, credited up to 5 ms', async () => {
  // Master_Down_Interval 360.9375 ms. A 2 ms old advert expires 2 ms earlier; a 50 ms one only 5 ms earlier.
  for (const [age, credited] of [[0, 0], [2, 2], [50, 5]] as const) {
    const h = harness({ polling: true });
    await h.sub.start(cfg(base(inst('VI_1', 1, 100, '192.0.2.42', '    stop_handover: false\n'))));
    const t = h.transports.get('VI_1')!;
    h.clock.advance(100);
    t.deliver(150, '192.0.2.9', 100, age);
    // The host timer wakes 3 ms early and sleeps to the deadline (less the futex overshoot allowance).
    h.clock.advance(360.9375 - credited - 3.2);
    assert.equal(stateOf(h), 'BACKUP', `age ${age}: not before the deadline`);
    h.clock.advance(3.3);
    assert.equal(stateOf(h), 'MASTER', `age ${age}: master at arrival + 360.94 ms - ${credited}`);
    await h.sub.stop();
  }
});

test('a Master held up past one advert interval counts the late advert; on-time adverts are not counted', async () => {
  const h = harness({ polling: true });
  await h.sub.start(cfg(base(inst('VI_1', 1, 100, '192.0.2.42', '    stop_handover: false\n'))));
  h.clock.advance(400);
  assert.equal(stateOf(h), 'MASTER');
  await flush();
  h.clock.advance(1000); // ten adverts on time
  const late = async () => (await h.registry.metrics()).match(/lvsd_vrrp_adverts_late_total\{vrrp_instance="VI_1"\} (\d+)/)?.[1] ?? '0';
  assert.equal(await late(), '0');
  const sent = h.transports.get('VI_1')!.sent.length;
  h.clock.sleep(250); // the process is held up 250 ms (no timer can fire)...
  h.clock.advance(0); // ...then the overdue Adver_Timer fires ~150-250 ms late
  assert.equal(await late(), '1');
  assert.equal(h.transports.get('VI_1')!.sent.length, sent + 1, 'the overdue advert is sent at once');
  h.clock.sleep(150); // 50 ms late: within one interval, not counted
  h.clock.advance(0);
  assert.equal(await late(), '1');
  h.clock.sleep(250);
  h.clock.advance(0);
  assert.equal(await late(), '2');
  await h.sub.stop();
});

test('backstop: armed with the Master advert once per priority, kicked after every advert, its own sends counted; disarmed before the priority-0 advert; not armed as Backup', async () => {
  const h = harness({ polling: true, backstop: true });
  await h.sub.start(cfg(base(inst('VI_1', 1, 100, '192.0.2.42', '    stop_handover: false\n'))));
  h.clock.advance(200);
  assert.ok(!h.wire.some((w) => w.startsWith('arm')), `a Backup arms nothing: ${h.wire.join(' ')}`);
  h.clock.advance(200);
  assert.equal(stateOf(h), 'MASTER');
  await flush();
  h.clock.advance(300);
  assert.deepEqual(h.wire.slice(0, 3), ['advert:100', 'arm:100', 'kick'], h.wire.join(' '));
  assert.equal(h.wire.filter((w) => w.startsWith('arm')).length, 1, 'armed once');
  assert.equal(h.wire.filter((w) => w === 'kick').length, h.wire.filter((w) => w.startsWith('advert')).length, 'one kick per advert');
  h.owe(3); // the threads stood in three times since the last kick
  h.clock.advance(100);
  assert.match(await h.registry.metrics(), /lvsd_vrrp_adverts_backstop_total\{vrrp_instance="VI_1"\} 3/);
  h.wire.length = 0;
  await h.sub.stop();
  const zero = h.wire.indexOf('advert:0');
  assert.ok(zero > 0 && h.wire.indexOf('disarm') >= 0 && h.wire.indexOf('disarm') < zero, `disarm before the priority-0 advert: ${h.wire.join(' ')}`);
  assert.ok(!h.wire.slice(zero).includes('kick'), 'the priority-0 advert does not kick (not Master)');
  assert.ok(h.wire.includes('close'));
});

test('stop handover: without a new master the VIPs go after two advert intervals; stop_handover false removes them at once', async () => {
  for (const handover of [true, false]) {
    const h = harness();
    await h.sub.start(cfg(base(inst('VI_1', 1, 100, '192.0.2.42', handover ? '' : '    stop_handover: false\n'))));
    h.clock.advance(400);
    h.runDeferred();
    await flush();
    assert.equal((h.sub.status() as { instances: Record<string, { state: string }> }).instances.VI_1!.state, 'MASTER');
    let stopped = false;
    const stopping = h.sub.stop().then(() => (stopped = true));
    await flush();
    await flush();
    if (handover) {
      assert.equal(stopped, false);
      assert.equal(h.table.addrs.size, 1);
      h.clock.advance(199);
      await flush();
      assert.equal(h.table.addrs.size, 1, 'still held just before the bound');
      h.clock.advance(1);
    }
    await stopping;
    assert.equal(h.table.addrs.size, 0, `VIP released (stop_handover ${handover})`);
    assert.equal(h.transports.get('VI_1')!.sent.at(-1)?.priority, 0);
  }
});

test('reload: removed instance stops with a priority-0 advert, changed is applied in place, added starts', async () => {
  const h = harness();
  const c1 = cfg(base(inst('A', 1, 200, '192.0.2.41') + inst('B', 2, 100, '192.0.2.42') + inst('C', 3, 100, '192.0.2.43')));
  await h.sub.start(c1);
  const ta = h.transports.get('A')!;
  const tc = h.transports.get('C')!;
  h.clock.advance(400);
  h.runDeferred();
  await flush();
  const st = () => (h.sub.status() as { instances: Record<string, { state: string; priority: number }> }).instances;
  assert.equal(st().A!.state, 'MASTER');
  const c2 = cfg(base(inst('B', 2, 100, '192.0.2.42') + inst('C', 3, 120, '192.0.2.43') + inst('D', 4, 100, '192.0.2.44')));
  const reloading = h.sub.reload(c2, c1, diffConfig(c1, c2));
  await flush();
  assert.ok(h.table.addrs.has('eth0/192.0.2.41'), 'A holds its VIP during the stop handover');
  h.clock.advance(200); // nobody takes over in this harness: the handover bound ends the wait
  await reloading;
  assert.equal(ta.sent.at(-1)?.priority, 0, 'A said goodbye with priority 0');
  assert.ok(ta.closed && !tc.closed, 'A stopped; C kept its socket');
  assert.ok(!h.table.addrs.has('eth0/192.0.2.41'), 'A released its VIP');
  assert.deepEqual(Object.keys(st()).sort(), ['B', 'C', 'D']);
  assert.equal(st().C!.priority, 120);
  assert.equal(h.transports.get('C'), tc, 'C changed in place (priority only: same transport)');
  const stopping = h.sub.stop();
  h.clock.advance(200); // B is master: its stop handover ends at the bound
  await stopping;
});

test('reload in place: a Master keeps MASTER through a priority, VIP and unicast-peer change; the VIPs follow one by one; a VRID change replaces it', async () => {
  const h = harness();
  const c1 = cfg(base(inst('A', 1, 200, '192.0.2.41')));
  await h.sub.start(c1);
  h.clock.advance(400);
  h.runDeferred();
  await flush();
  const st = () => (h.sub.status() as { instances: Record<string, { state: string; priority: number; vrid: number }> }).instances.A!;
  assert.equal(st().state, 'MASTER');
  const t1 = h.transports.get('A')!;
  const moves = h.events.length;
  // Priority: the same socket, re-advertised at once (before the next Adver_Timer).
  const c2 = cfg(base(inst('A', 1, 210, '192.0.2.41')));
  await h.sub.reload(c2, c1, diffConfig(c1, c2));
  assert.equal(h.transports.get('A'), t1);
  assert.equal(t1.sent.at(-1)?.priority, 210);
  // A VIP added: new I/O (the advert carries the VIPs), the old socket closed, both VIPs held.
  const c3 = cfg(base(inst('A', 1, 210, '192.0.2.41/24, 192.0.2.45')));
  await h.sub.reload(c3, c2, diffConfig(c2, c3));
  await flush();
  const t2 = h.transports.get('A')!;
  assert.ok(t2 !== t1 && t1.closed && !t2.closed);
  assert.ok(h.table.addrs.has('eth0/192.0.2.41') && h.table.addrs.has('eth0/192.0.2.45'), [...h.table.addrs].join());
  assert.equal(t2.sent.at(-1)?.addresses.length, 2, 'the new VIP set advertised at once');
  // The first VIP removed: only it goes.
  const c4 = cfg(base(inst('A', 1, 210, '192.0.2.45')));
  await h.sub.reload(c4, c3, diffConfig(c3, c4));
  await flush();
  assert.ok(!h.table.addrs.has('eth0/192.0.2.41') && h.table.addrs.has('eth0/192.0.2.45'), [...h.table.addrs].join());
  // Unicast peers: in place too.
  const c5 = cfg(base(inst('A', 1, 210, '192.0.2.45', '    unicast_peers: [192.0.2.9]\n')));
  await h.sub.reload(c5, c4, diffConfig(c4, c5));
  await flush();
  assert.equal(st().state, 'MASTER');
  assert.equal(h.events.length, moves, 'no transition through four reloads');
  // Another VRID is another router: replaced (stop handover, then a fresh start in Backup).
  const c6 = cfg(base(inst('A', 7, 210, '192.0.2.45', '    unicast_peers: [192.0.2.9]\n')));
  const reloading = h.sub.reload(c6, c5, diffConfig(c5, c6));
  await flush();
  h.clock.advance(200);
  await reloading;
  assert.equal(st().vrid, 7);
  assert.equal(st().state, 'BACKUP');
  const stopping = h.sub.stop();
  h.clock.advance(200);
  await stopping;
});

test('track_virtual_servers weight 0: quorum lost puts the instance in FAULT and back', async () => {
  const h = harness();
  const c = cfg(base(inst('VI_1', 1, 100, '192.0.2.42', '    track_virtual_servers:\n      - name: web\n')));
  await h.sub.start(c);
  h.clock.advance(400);
  h.runDeferred();
  await flush();
  const st = () => (h.sub.status() as { instances: Record<string, { state: string }> }).instances.VI_1!.state;
  assert.equal(st(), 'MASTER');
  h.bus.emit('health.quorum', { vs: 'tcp/192.0.2.80:80', name: 'web', up: false, healthyWeight: 0 });
  await flush();
  assert.equal(st(), 'FAULT');
  assert.equal(h.transports.get('VI_1')!.sent.at(-1)?.priority, 0);
  assert.equal(h.table.addrs.size, 0);
  h.bus.emit('health.quorum', { vs: 'tcp/192.0.2.80:80', name: 'web', up: true, healthyWeight: 1 });
  assert.equal(st(), 'BACKUP');
  await h.sub.stop();
});

test('track_scripts: a failing vrrp_script (weight 0) faults the instance; a weighted one lowers priority', async () => {
  const h = harness();
  const text = base(
    inst('F', 1, 100, '192.0.2.42', '    track_scripts: [chk_fail]\n') + inst('W', 2, 100, '192.0.2.43', '    track_scripts:\n      - name: chk_fail\n        weight: -30\n'),
  ).replace('vrrp_instances:', 'vrrp_scripts:\n  - name: chk_fail\n    script: ["false"]\n    interval: 1\n    fall: 1\nvrrp_instances:');
  await h.sub.start(cfg(text));
  const st = () => (h.sub.status() as { instances: Record<string, { state: string; priority: number }> }).instances;
  // The script ran once at start (real process); wait for its exit to be seen.
  for (let i = 0; i < 100 && st().F!.state !== 'FAULT'; i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(st().F!.state, 'FAULT');
  assert.equal(st().W!.state, 'BACKUP');
  assert.equal(st().W!.priority, 70);
  await h.sub.stop();
});

test('VIPs with another device are added there and announced from that interface with its MAC (GARP and NA)', async () => {
  const h = harness();
  const c = cfg(
    base(`  - name: VI_1
    interface: eth0
    virtual_router_id: 1
    priority: 100
    version: 3
    advert_interval: 0.1
    virtual_addresses:
      - 192.0.2.42/24
      - { address: 198.51.100.42/24, device: eth1 }
    virtual_addresses_excluded:
      - { address: 2001:db8:1::42/64, device: eth1 }
      - { address: 203.0.113.42/32, device: lo }
    stop_handover: false
`),
  );
  await h.sub.start(c);
  h.clock.advance(400);
  h.runDeferred();
  await flush();
  assert.deepEqual([...h.table.addrs].sort(), ['eth0/192.0.2.42', 'eth1/198.51.100.42', 'eth1/2001:db8:1::42', 'lo/203.0.113.42']);
  const sent = h.frames.map((f, i) => ({ ifname: h.frameIfs[i]!, srcMac: [...f.subarray(6, 12)].join(','), type: (f[12]! << 8) | f[13]!, frame: f }));
  const on = (ifname: string) => sent.filter((x) => x.ifname === ifname);
  // One burst of master_repeat (5) per VIP: eth0 first (the failover's critical path), then eth1.
  assert.equal(sent[0]!.ifname, 'eth0');
  assert.equal(on('eth0').length, 5);
  assert.equal(on('eth1').length, 10);
  assert.equal(on('lo').length, 0, 'no link-layer address: nothing to announce');
  assert.ok(on('eth0').every((x) => x.srcMac === '2,0,0,0,0,5' && x.type === 0x0806));
  assert.ok(on('eth1').every((x) => x.srcMac === '2,0,0,0,1,5'), 'eth1 frames carry eth1 MAC');
  const arp = on('eth1').filter((x) => x.type === 0x0806);
  const na = on('eth1').filter((x) => x.type === 0x86dd);
  assert.equal(arp.length, 5);
  assert.equal(na.length, 5);
  assert.deepEqual([...arp[0]!.frame.subarray(28, 32)], [198, 51, 100, 42], 'GARP sender IP = the eth1 VIP');
  assert.deepEqual([...arp[0]!.frame.subarray(22, 28)], [2, 0, 0, 0, 1, 5], 'GARP sender MAC = eth1 MAC');
  assert.deepEqual([...na[0]!.frame.subarray(62, 78)], [...parseIp('2001:db8:1::42')!.bytes], 'NA target = the eth1 IPv6 VIP');
  await h.sub.stop();
});

test('takeover thread: loaded once, armed with every deadline; it acts at the deadline, the wake adopts what it did (no takeover call, nothing repeated)', async () => {
  const h = harness({ polling: true, fast: true, thread: true });
  await h.sub.start(cfg(base(inst('VI_1', 1, 100, '192.0.2.42', '    stop_handover: false\n'))));
  const t = h.transports.get('VI_1')!;
  const f = h.threads.get('VI_1')!;
  for (let i = 0; i < 5; i++) {
    t.deliver(150);
    h.clock.advance(100);
  }
  // Loaded with the advert the takeover sends, once; armed at each advert's new deadline.
  assert.deepEqual(f.log.filter((x) => x.startsWith('load')), ['load:100']);
  assert.equal(f.log.filter((x) => x === 'arm').length, 6, 'the startup timer, then one per advert');
  const due = h.clock.now() - 100 + 300 + (156 / 256) * 100;
  assert.ok(Math.abs(f.due! - due) < 1e-6, `armed for ${f.due}, the deadline is ${due}`);
  // The adverts stop: the wake waits for the thread, which acts at the deadline.
  h.clock.advance(261);
  assert.deepEqual(f.log.slice(-1), ['acted']);
  assert.ok(h.table.addrs.has('eth0/192.0.2.42'));
  assert.equal(h.fastCalls.filter((c) => c.ran).length, 0, 'no takeover call');
  h.clock.advance(10); // the quiet window
  assert.equal(stateOf(h), 'MASTER');
  assert.equal(t.sent.length, 0, 'the step adopted the advert the thread sent');
  assert.equal(h.frames.length, 0, 'and its GARP rounds');
  const m = await h.registry.metrics();
  assert.match(m, /lvsd_vrrp_garp_sent_total\{vrrp_instance="VI_1"\} 5\n/);
  // The loop was not held up: its wake came before the deadline, so this is not a thread takeover.
  assert.doesNotMatch(m, /lvsd_vrrp_takeover_thread_total\{vrrp_instance="VI_1"\} [1-9]/);
  // Master: the next arm (there is none) — the thread stays disarmed; a stop closes it.
  await h.sub.stop();
  assert.equal(f.log.at(-1), 'close');
});

test('takeover thread: it acted while the loop was held up; an advert read before the wake waits behind the takeover, then makes it Backup', async () => {
  const h = harness({ polling: true, fast: true, thread: true });
  await h.sub.start(cfg(base(inst('VI_1', 1, 100, '192.0.2.42', '    stop_handover: false\n'))));
  const t = h.transports.get('VI_1')!;
  const f = h.threads.get('VI_1')!;
  h.clock.advance(100);
  t.deliver(150);
  const due = f.due!;
  h.clock.advance(300); // the host timer wakes ~3 ms before the deadline: not yet
  h.clock.sleep(70); // the loop is held up past the deadline ...
  f.act(0.05); // ... and the thread acts there
  assert.ok(h.table.addrs.has('eth0/192.0.2.42'));
  // The loop comes back with a new master's advert read first: the takeover is stepped before it.
  t.deliver(200, '192.0.2.7');
  h.clock.advance(0); // the host timer: its wake already ran (nothing a second time)
  assert.equal(h.fastCalls.filter((c) => c.ran).length, 0);
  assert.equal(f.log.filter((x) => x === 'acted').length, 1);
  h.clock.advance(10); // the quiet window: the held expiry (Master), then the queued advert (Backup, VIP released)
  await flush();
  assert.equal(stateOf(h), 'BACKUP');
  assert.equal(h.table.addrs.size, 0);
  h.clock.advance(10);
  assert.deepEqual(h.events.map((e) => `${e.from}>${e.to}`), ['INIT>BACKUP', 'BACKUP>MASTER', 'MASTER>BACKUP']);
  const m = await h.registry.metrics();
  assert.match(m, /lvsd_vrrp_takeover_thread_total\{vrrp_instance="VI_1"\} 1\n/);
  assert.ok(h.clock.now() > due);
  await h.sub.stop();
});

test('takeover thread: an advert waiting at the deadline stops it and the loop reads it; a Backup that leaves (stop) disarms it', async () => {
  const h = harness({ polling: true, fast: true, thread: true });
  await h.sub.start(cfg(base(inst('VI_1', 1, 100, '192.0.2.42', '    stop_handover: false\n'))));
  const t = h.transports.get('VI_1') as PollingTransport;
  const f = h.threads.get('VI_1')!;
  h.clock.advance(100);
  t.deliver(150);
  t.waiting.push(150);
  h.clock.advance(361);
  assert.equal(f.log.includes('acted'), false);
  assert.equal(t.polls > 0, true, 'the loop read the socket');
  assert.equal(stateOf(h), 'BACKUP');
  assert.equal(h.table.addrs.size, 0);
  assert.equal(f.armed, true, 'armed again by the advert read');
  await h.sub.stop();
  assert.equal(f.armed, false);
  assert.equal(h.table.addrs.size, 0);
});

test('takeover thread: a tracked priority change while Backup reloads it with the new advert priority for the same deadline', async () => {
  const h = harness({ polling: true, fast: true, thread: true });
  await h.sub.start(cfg(base(inst('VI_1', 1, 100, '192.0.2.42', '    stop_handover: false\n    track_virtual_servers:\n      - name: web\n        weight: -30\n'))));
  const t = h.transports.get('VI_1')!;
  const f = h.threads.get('VI_1')!;
  h.clock.advance(100);
  t.deliver(150);
  assert.deepEqual(f.log.filter((x) => x.startsWith('load')), ['load:100']);
  h.clock.advance(100);
  h.bus.emit('health.quorum', { vs: 'tcp/192.0.2.80:80', name: 'web', up: false, healthyWeight: 0 });
  assert.equal((h.sub.status() as { instances: Record<string, { priority: number }> }).instances.VI_1!.priority, 70);
  // The scrape-time metrics show the effective and the configured priority, and which router it is.
  const m = await h.registry.metrics();
  assert.match(m, /lvsd_vrrp_priority\{vrrp_instance="VI_1"\} 70\n/);
  assert.match(m, /lvsd_vrrp_configured_priority\{vrrp_instance="VI_1"\} 100\n/);
  assert.match(m, /lvsd_vrrp_instance_info\{vrrp_instance="VI_1",vrid="1",interface="eth0",version="3"\} 1\n/);
  assert.match(m, /lvsd_vrrp_last_transition_timestamp_seconds\{vrrp_instance="VI_1"\} \d+/);
  assert.deepEqual(f.log.filter((x) => x.startsWith('load')), ['load:100', 'load:70']);
  assert.equal(f.armed, true);
  h.clock.advance(300); // past the deadline: the thread acts with the new plan
  h.clock.advance(10);
  assert.equal(stateOf(h), 'MASTER');
  assert.equal(t.sent.length, 0, 'its advert adopted');
  assert.ok(h.table.addrs.has('eth0/192.0.2.42'));
  await h.sub.stop();
});
