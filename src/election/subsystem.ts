/**
 * The election subsystem the daemon runs: every `vrrp_instances` entry of the config, with real
 * adapters (raw VRRP sockets, rtnetlink VIPs, AF_PACKET GARP/NA, notify scripts), metrics on the
 * daemon's registry, 'vrrp.state' published on the bus and 'health.quorum' consumed for
 * track_virtual_servers.
 *
 * Reload: added instances start, removed ones stop gracefully (priority-0 advert when master, stop
 * handover). A changed instance keeps running and its state (reload.ts decides how): only a new
 * VRID, interface, family, version or unicast_src makes it another router, which is replaced
 * make-before-break. Sync group and vrrp_script changes are applied in place too (script state kept).
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { Gauge } from 'prom-client';
import type { Subsystem, SubsystemDeps } from '../core/subsystem.js';
import type { Logger } from '../core/log.js';
import { errorMessage } from '../core/errors.js';
import type { ClusterConfig, VrrpInstanceConfig } from '../config/model.js';
import type { ConfigDiff } from '../config/diff.js';
import { ElectionRuntime, type RuntimeDeps } from './runtime.js';
import { reloadPlan, type ReloadPlan } from './reload.js';
import { createElectionMetrics, registerElectionStateMetrics } from './metrics.js';
import type { AdvertBackstop, FastResult, FastTakeover, InstanceIo, TakeoverThread } from './io.js';
import { RawVrrpTransport, type VrrpTransport } from './transport.js';
import { NetlinkAddressTable, VipSet, type AddressTable } from './vips.js';
import { Announcer, PacketSocketSender, linkInfo, loadAfPacket, type AnnounceTarget, type FrameSender } from './announce.js';
import { authKey, type Advert } from './codec.js';
import { AhSequence } from './ah.js';
import { Notifier } from './notify.js';

export interface ElectionOptions {
  /** Replace the raw transport (unit tests). */
  readonly makeTransport?: (cfg: VrrpInstanceConfig, log: Logger) => VrrpTransport;
  readonly addressTable?: AddressTable;
  readonly frameSender?: FrameSender;
  /** MAC of an interface (default: the AF_PACKET addon). */
  readonly macOf?: (ifname: string) => Uint8Array;
  readonly defer?: RuntimeDeps['defer'];
  readonly sleepSync?: RuntimeDeps['sleepSync'];
  readonly linkUp?: RuntimeDeps['linkUp'];
  /** Replace the takeover call (unit tests of the runtime's path around it; default: the addon's, with real mechanisms only). */
  readonly fastTakeover?: (cfg: VrrpInstanceConfig, table: AddressTable) => FastTakeover | undefined;
  /** Replace the advert backstop (unit tests; default: the addon's threads, with the raw transport only). */
  readonly backstop?: (cfg: VrrpInstanceConfig) => AdvertBackstop | undefined;
  /** Replace the takeover thread (unit tests; default: the addon's threads, with real mechanisms only). */
  readonly takeoverThread?: (cfg: VrrpInstanceConfig) => TakeoverThread | undefined;
}

/** Event-loop lag exported as lvsd_event_loop_lag_seconds{quantile} (one histogram per process). */
let lagHistogram: IntervalHistogram | undefined;
const LAG_RESOLUTION_MS = 5;
function lagGauge(deps: SubsystemDeps): void {
  if (deps.registry.getSingleMetric('lvsd_event_loop_lag_seconds')) return;
  lagHistogram ??= monitorEventLoopDelay({ resolution: LAG_RESOLUTION_MS });
  lagHistogram.enable();
  const h = lagHistogram;
  new Gauge({
    name: 'lvsd_event_loop_lag_seconds',
    help: 'Event-loop delay since the previous scrape (timers fire this late; a stall this long delays VRRP)',
    labelNames: ['quantile'] as const,
    registers: [deps.registry],
    collect() {
      if (h.count === 0) return;
      // The histogram records the interval between ticks of a LAG_RESOLUTION_MS timer; the lag
      // is what exceeds that interval.
      const lag = (ns: number) => Math.max(0, ns / 1e9 - LAG_RESOLUTION_MS / 1000);
      this.set({ quantile: '0.5' }, lag(h.percentile(50)));
      this.set({ quantile: '0.99' }, lag(h.percentile(99)));
      this.set({ quantile: '1' }, lag(h.max));
      h.reset();
    },
  });
}

/** What the addon's takeover call and takeover thread are given: the same for both. */
interface TakeoverArgs {
  readonly pollFds: number[];
  readonly req: { readonly fd: number; readonly seq: number; readonly payloads: Buffer[] };
  readonly frames: Array<[number, number, Buffer]>;
  /** Rounds of frames (1-64; 1 without frames). */
  readonly rounds: number;
  readonly adverts: Array<[number, Buffer, number, Buffer]>;
}

/** The real mechanisms a native takeover works on; undefined when any is not the real one (tests with fakes). */
interface TakeoverMechanisms {
  readonly transport: RawVrrpTransport;
  readonly vips: VipSet;
  readonly table: NetlinkAddressTable;
  readonly sender: PacketSocketSender;
  readonly announcer: Announcer | undefined;
}

function mechanisms(transport: VrrpTransport, vips: VipSet, table: AddressTable, sender: FrameSender, announcer: Announcer | undefined): TakeoverMechanisms | undefined {
  if (!(transport instanceof RawVrrpTransport) || !(table instanceof NetlinkAddressTable) || !(sender instanceof PacketSocketSender)) return undefined;
  return { transport, vips, table, sender, announcer };
}

/** The arguments for a takeover with these targets, advert and rounds; undefined when a socket is not open. */
function takeoverArgs(m: TakeoverMechanisms, targets: readonly AnnounceTarget[] | undefined, advert: Advert | undefined, rounds: number): TakeoverArgs | undefined {
  const fd = m.transport.descriptor();
  const req = m.table.addRequests(m.vips.placed());
  if (fd === undefined || !req) return undefined;
  const frames: Array<[number, number, Buffer]> = [];
  if (m.announcer && targets) {
    for (const f of m.announcer.framesFor(targets)) {
      const s = m.sender.socketFor(f.ifname);
      if (!s) return undefined;
      frames.push([s.fd, s.index, Buffer.from(f.frame.buffer, f.frame.byteOffset, f.frame.byteLength)]);
    }
  }
  const enc = advert ? m.transport.encode(advert) : undefined;
  // The addon sends at most 64 rounds; the announcer sends any beyond (master_repeat goes to 100).
  const n = frames.length ? Math.max(1, Math.min(64, rounds)) : 1;
  return { pollFds: [fd], req, frames, rounds: n, adverts: enc ? advertArgs(enc) : [] };
}

/** The addon's answer ([status, lateMs, addResult..., framesSent, advertsSent]) as a FastResult. */
function takeoverResult(r: number[], a: TakeoverArgs): FastResult {
  const lateMs = r[1]!;
  // -1: an advert may be waiting; -2: woke past the late limit. Either way nothing was done.
  if (r[0]! < 0) return { pending: true, lateMs };
  const nadd = a.req.payloads.length;
  return {
    pending: false,
    lateMs,
    // Any other answer is left to the normal add, which retries and logs it.
    vipsAdded: r.slice(2, 2 + nadd).every(NetlinkAddressTable.addAccepted),
    // Only whole rounds count; after a failed frame the announcer sends the burst itself.
    rounds: a.frames.length > 0 && r[2 + nadd] === a.rounds * a.frames.length ? a.rounds : 0,
    advertSent: a.adverts.length > 0 && r[3 + nadd] === a.adverts.length,
  };
}

/**
 * The runtime's one-call takeover (FastTakeover) over the real mechanisms: the instance's raw VRRP
 * socket, the synchronous netlink socket, the AF_PACKET sockets and the prebuilt announcement
 * frames. Undefined when any of them is not the real one (tests with fakes) or not open.
 */
function fastTakeover(transport: VrrpTransport, vips: VipSet, table: AddressTable, sender: FrameSender, announcer: Announcer | undefined): FastTakeover | undefined {
  const m = mechanisms(transport, vips, table, sender, announcer);
  if (!m) return undefined;
  let addon: ReturnType<typeof loadAfPacket>;
  try {
    addon = loadAfPacket();
  } catch {
    return undefined;
  }
  return {
    prepare(targets, advert, rounds) {
      const a = takeoverArgs(m, targets, advert, rounds);
      if (!a) return undefined;
      return {
        run: (waitMs = 0, lateLimitMs = -1) =>
          takeoverResult(addon.takeover(a.pollFds, a.req.fd, a.req.seq, a.req.payloads, a.frames, a.rounds, a.adverts, waitMs, lateLimitMs), a),
      };
    },
  };
}

/**
 * The takeover thread (TakeoverThread) over the addon's tk* threads and the same real mechanisms
 * as fastTakeover; undefined with fakes. Throws when the threads cannot be started (the caller logs
 * it and goes on without). The threads are started here, with the instance (not at the first arm:
 * no pthread_create in the turn of a takeover).
 */
export function nativeTakeoverThread(transport: VrrpTransport, vips: VipSet, table: AddressTable, sender: FrameSender, announcer: Announcer | undefined): TakeoverThread | undefined {
  const m = mechanisms(transport, vips, table, sender, announcer);
  if (!m) return undefined;
  const addon = loadAfPacket();
  const id = addon.tkopen();
  let open = true;
  let loaded: TakeoverArgs | undefined;
  return {
    load(targets, advert, rounds) {
      const a = open ? takeoverArgs(m, targets, advert, rounds) : undefined;
      loaded = undefined;
      if (!a) {
        if (open) addon.tkdisarm(id);
        return false;
      }
      addon.tkload(id, a.pollFds, a.req.payloads, a.frames, a.rounds, a.adverts);
      loaded = a;
      return true;
    },
    arm(inMs, lateLimitMs) {
      if (open && loaded) addon.tkarm(id, addon.monotonic() + inMs, lateLimitMs);
    },
    disarm() {
      if (open) addon.tkdisarm(id);
    },
    fired: () => open && addon.tkfired(id),
    wait(timeoutMs) {
      if (!open || !loaded) return undefined;
      const r = addon.tkwait(id, Math.max(0, Math.min(20, timeoutMs)));
      return r[0] === -3 ? undefined : takeoverResult(r, loaded);
    },
    close() {
      if (open) addon.tkclose(id);
      open = false;
    },
  };
}

/** An encoded advert as the addon's advert arguments: [fd, dst, scopeId, payload] per destination. */
function advertArgs(enc: NonNullable<ReturnType<RawVrrpTransport['encode']>>): Array<[number, Buffer, number, Buffer]> {
  return enc.datagrams.map((d) => [enc.fd, Buffer.from(d.dst), d.scopeId, Buffer.from(d.payload.buffer, d.payload.byteOffset, d.payload.byteLength)]);
}

/**
 * The advert backstop over the addon's threads (native/afpacket/backstop.c), for the real raw transport only. The
 * threads are started here, with the instance, and wait disarmed on a condition variable: starting
 * them at the first arm would put two pthread_create calls into the turn of a takeover.
 */
export function nativeBackstop(transport: VrrpTransport, intervalMs: number): AdvertBackstop | undefined {
  if (!(transport instanceof RawVrrpTransport)) return undefined;
  let addon: ReturnType<typeof loadAfPacket>;
  let id: number;
  try {
    addon = loadAfPacket();
    id = addon.bsopen(Math.max(1, intervalMs), Math.max(BACKSTOP_LEASE_MS, 3 * intervalMs));
  } catch {
    return undefined;
  }
  let open = true;
  return {
    arm(a) {
      const enc = transport.encode(a);
      if (!enc || !open) return false;
      addon.bsarm(id, advertArgs(enc));
      return true;
    },
    kick: () => (open ? addon.bskick(id) : 0),
    disarm: () => {
      if (open) addon.bsdisarm(id);
    },
    close: () => {
      if (open) addon.bsclose(id);
      open = false;
    },
  };
}

/** How long the backstop stands in for a silent event loop at least, ms (docs/config.md advert_backstop). */
const BACKSTOP_LEASE_MS = 2000;

export function createElectionSubsystem(deps: SubsystemDeps, opts: ElectionOptions = {}): Subsystem<ClusterConfig, ConfigDiff> {
  const log = deps.logger;
  const metrics = createElectionMetrics(deps.registry);
  lagGauge(deps);
  const notifier = new Notifier(log.child({ component: 'notify' }));
  const table = opts.addressTable ?? new NetlinkAddressTable();
  const sender = opts.frameSender ?? new PacketSocketSender();
  const macOf = opts.macOf ?? ((ifname: string) => linkInfo(ifname).mac);

  // AH anti-replay counters by instance name (ah.ts): they outlive a transport rebuilt by a reload in
  // place, so the adverts sent after it continue above the numbers the peer has seen.
  const ahSequences = new Map<string, AhSequence>();
  const ahSequenceOf = (name: string) => {
    let s = ahSequences.get(name);
    if (!s) ahSequences.set(name, (s = new AhSequence()));
    return s;
  };

  const makeIo = (cfg: VrrpInstanceConfig, ilog: Logger): InstanceIo => {
    const auth = cfg.authentication;
    const transport =
      opts.makeTransport?.(cfg, ilog) ??
      new RawVrrpTransport({
        ifname: cfg.interface,
        family: cfg.family,
        version: cfg.version,
        vrid: cfg.virtual_router_id,
        addrCount: cfg.virtual_addresses.length,
        intervalMs: Math.round(cfg.advert_interval * 1000),
        unicastPeers: cfg.unicast_peers,
        peers: cfg.peers,
        ...(auth ? { auth: { type: auth.type === 'AH' ? ('ah' as const) : ('pass' as const), key: authKey(auth.password) } } : {}),
        ...(auth?.type === 'AH' ? { ahSequence: ahSequenceOf(cfg.name) } : {}),
        ...(cfg.unicast_src ? { unicastSrc: cfg.unicast_src } : {}),
        exclude: [...cfg.virtual_addresses, ...cfg.virtual_addresses_excluded].map((v) => v.address),
        acceptV2: cfg.accept_v2_adverts,
        logger: ilog,
      });
    const vips = new VipSet({
      table,
      clock: deps.clock,
      logger: ilog,
      ifname: cfg.interface,
      vips: [...cfg.virtual_addresses, ...cfg.virtual_addresses_excluded],
      onRestored: () => metrics.vipRestored.inc({ vrrp_instance: cfg.name }),
    });
    let announce: InstanceIo['announce'];
    try {
      const mac = macOf(cfg.interface);
      const announcer = new Announcer({
        sender,
        clock: deps.clock,
        onSent: (ok, err) => {
          if (ok) metrics.garpSent.inc({ vrrp_instance: cfg.name });
          else ilog.warn({ err }, 'gratuitous ARP / NA send failed');
        },
      });
      announce = { announcer, ifname: cfg.interface, mac, macOf };
    } catch (e) {
      ilog.error({ err: errorMessage(e) }, 'GARP/NA unavailable: VIP moves will not be announced');
    }
    const fast = opts.fastTakeover ? opts.fastTakeover(cfg, table) : fastTakeover(transport, vips, table, sender, announce?.announcer);
    // No backstop with AH: it replays one prebuilt advert, which the peer drops as a replay (ah.ts).
    const backstop = cfg.advert_backstop && auth?.type !== 'AH' ? (opts.backstop ? opts.backstop(cfg) : nativeBackstop(transport, Math.round(cfg.advert_interval * 1000))) : undefined;
    let thread: TakeoverThread | undefined;
    if (cfg.takeover_thread && !cfg.sync_group) {
      try {
        thread = opts.takeoverThread ? opts.takeoverThread(cfg) : nativeTakeoverThread(transport, vips, table, sender, announce?.announcer);
      } catch (e) {
        ilog.warn({ err: errorMessage(e) }, 'takeover thread unavailable: a takeover waits for the event loop');
      }
    }
    return { transport, vips, ...(announce ? { announce } : {}), ...(fast ? { fast } : {}), ...(backstop ? { backstop } : {}), ...(thread ? { thread } : {}) };
  };

  const rt = new ElectionRuntime({
    clock: deps.clock,
    logger: log,
    bus: deps.bus,
    metrics,
    notifier,
    makeIo,
    ...(opts.defer ? { defer: opts.defer } : {}),
    ...(opts.sleepSync ? { sleepSync: opts.sleepSync } : {}),
    ...(opts.linkUp ? { linkUp: opts.linkUp } : {}),
  });
  registerElectionStateMetrics(deps.registry, () => rt.snapshot());
  let current: ClusterConfig | undefined;
  let offQuorum: (() => void) | undefined;

  return {
    name: 'election',
    async start(cfg) {
      current = cfg;
      rt.setCluster(cfg);
      // The master_down deadline is slept for on this thread (runtime armTimer): without the default
      // 50 µs timer slack the wake-up lands on the deadline (prctl(2) PR_SET_TIMERSLACK).
      if (cfg.vrrp_instances.length && !opts.makeTransport) {
        try {
          loadAfPacket().timerslack(1);
        } catch (e) {
          log.warn({ err: errorMessage(e) }, 'cannot lower the timer slack; master_down wake-ups may come up to 50 µs late');
        }
      }
      offQuorum = deps.bus.on('health.quorum', (q) => {
        if (current) rt.setQuorum(q.name, q.up, current);
      });
      try {
        await rt.start(cfg);
      } catch (e) {
        await rt.stop().catch(() => {});
        throw e;
      }
    },
    async reload(next, prev) {
      // Per running instance: the same, applied in place, or replaced (another router: reload.ts).
      // Sync group and vrrp_script changes reach their members through reconfigure (groups and
      // scripts are swapped there; a member's own config change is in its plan).
      const running = new Set(rt.names());
      const nextNames = new Set(next.vrrp_instances.map((i) => i.name));
      const plans = new Map<string, ReloadPlan>();
      for (const ic of next.vrrp_instances) {
        const before = prev.vrrp_instances.find((i) => i.name === ic.name);
        if (before && running.has(ic.name)) plans.set(ic.name, reloadPlan(before, ic));
      }
      const replace = [...plans].filter(([, p]) => p.kind === 'replace').map(([n]) => n);
      const inPlace = [...plans].filter(([, p]) => p.kind === 'in_place').map(([n]) => n);
      const toStop = [...running].filter((n) => !nextNames.has(n) || replace.includes(n));
      const toStart = [...nextNames].filter((n) => !running.has(n) || replace.includes(n));
      for (const n of ahSequences.keys()) if (!nextNames.has(n)) ahSequences.delete(n);
      log.info({ stop: toStop, start: toStart, in_place: inPlace }, 'election reload');
      // Replaced instances go first, make-before-break (their stop handover keeps the VIPs until
      // another router advertises), then the in-place changes, then what starts.
      if (toStop.length) await rt.stop(toStop);
      current = next;
      rt.setCluster(next);
      await rt.reconfigure(next, plans);
      if (toStart.length) await rt.start(next, toStart);
    },
    async stop() {
      offQuorum?.();
      await rt.stop();
      await notifier.drain(1000);
      table.close();
      sender.close();
    },
    // An instance of the config that is not running (its start failed at a reload: no address on
    // the interface, socket errors) has no VRRP socket: nobody answers for its VIPs.
    // A running instance whose interface is down or gone, whose socket is bound to an interface
    // that was created again, cannot receive, or cannot send: its peers decide without it.
    health() {
      const running = new Set(rt.names());
      const missing = (current?.vrrp_instances ?? []).filter((i) => !running.has(i.name)).map((i) => i.name);
      const reasons = [...(missing.length ? [`VRRP instances not running (no socket): ${missing.join(', ')}`] : []), ...rt.problems()];
      return reasons.length ? { up: false, reason: reasons.join('; ') } : { up: true };
    },
    status() {
      return { instances: rt.status(), sync_groups: rt.groupStatus() };
    },
  };
}
