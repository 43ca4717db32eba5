/**
 * Tracking for the election runtime: vrrp_script runners, link-state polls and tracked
 * virtual-server quorum, turned into the machine's fault / priority events (priority.ts) for the
 * instances that track them (keepalived track_interface, track_script, and lvsd's
 * track_virtual_servers).
 */
import { readFileSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import { runScript } from '../core/scripts.js';
import type { Clock, TimerHandle } from '../core/clock.js';
import type { Logger } from '../core/log.js';
import type { VrrpScriptConfig, ClusterConfig } from '../config/model.js';
import type { VrrpEvent } from './machine.js';
import { effectivePriority, initialScriptState, scriptResult, trackingEvents, type ScriptState, type Tracking } from './priority.js';
import type { Inst } from './instance.js';

/** What the tracker needs from the runtime. */
export interface TrackerHost {
  readonly clock: Clock;
  readonly logger: Logger;
  /** The running instances. */
  insts(): Iterable<Inst>;
  /** Step an instance's machine with a tracking event. */
  dispatch(name: string, ev: VrrpEvent): void;
  /** Link state of an interface. */
  readonly linkUp: (ifname: string) => boolean;
  /** Milliseconds between link-state polls (default 500). */
  readonly linkPollMs?: number | undefined;
  /** Called after each link poll (the runtime reopens VRRP sockets of interfaces created again). */
  readonly afterLinkPoll?: () => void;
}

/** Default link check: operstate up/unknown (loopback-like devices report unknown). */
export function sysfsLinkUp(ifname: string): boolean {
  try {
    const s = readFileSync(`/sys/class/net/${ifname}/operstate`, 'utf8').trim();
    return s === 'up' || s === 'unknown';
  } catch {
    return false;
  }
}

/** One vrrp_script's runner: its config (replaced by a reload), state, next run. */
interface ScriptRunner {
  cfg: VrrpScriptConfig;
  st: ScriptState;
  timer?: TimerHandle;
  running: boolean;
  stopped: boolean;
  tick: () => void;
}

export class Tracker {
  private readonly scripts = new Map<string, ScriptRunner>();
  private readonly quorum = new Map<string, boolean>();
  private linkTimer: TimerHandle | undefined;
  private readonly linkState = new Map<string, boolean>();
  private cluster: ClusterConfig | undefined;
  private readonly linkUp: (ifname: string) => boolean;

  constructor(private readonly h: TrackerHost) {
    this.linkUp = h.linkUp;
  }

  /** Each running vrrp_script and whether it is good (for the scrape-time metrics). */
  scriptStatus(): Array<{ name: string; good: boolean }> {
    return [...this.scripts].map(([name, s]) => ({ name, good: s.st.good }));
  }

  /** Start the link polls (once). */
  startLinks(): void {
    if (!this.linkTimer) this.pollLinks();
  }

  /** Stop every script runner and the link polls. */
  stop(): void {
    for (const s of this.scripts.values()) {
      s.stopped = true;
      if (s.timer) this.h.clock.clearTimeout(s.timer);
    }
    this.scripts.clear();
    if (this.linkTimer) this.h.clock.clearTimeout(this.linkTimer);
    this.linkTimer = undefined;
  }

  /** Tracked virtual-server quorum (bus 'health.quorum'), by virtual server name. */
  setQuorum(vsName: string, up: boolean, cluster: ClusterConfig): void {
    if (this.quorum.get(vsName) === up) return;
    this.quorum.set(vsName, up);
    for (const inst of this.h.insts()) if (inst.cfg.track_virtual_servers.some((t) => t.name === vsName)) this.recomputeTracking(inst, cluster);
  }

  setCluster(c: ClusterConfig): void {
    this.cluster = c;
  }

  recomputeTracking(inst: Inst, cluster: ClusterConfig | undefined = this.cluster): void {
    const c = inst.cfg;
    const linkGood = (n: string) => this.linkState.get(n) ?? this.linkUp(n);
    const tracking: Tracking = {
      // The instance's own interface always counts (weight 0: down ⇒ FAULT), like keepalived.
      interfaces: [{ name: c.interface, weight: 0, good: linkGood(c.interface) }, ...c.track_interfaces.filter((t) => t.name !== c.interface).map((t) => ({ name: t.name, weight: t.weight, good: linkGood(t.name) }))],
      scripts: c.track_scripts.map((t) => {
        const sc = cluster?.vrrp_scripts.find((s) => s.name === t.name);
        return { name: t.name, weight: t.weight ?? sc?.weight ?? 0, good: this.scripts.get(t.name)?.st.good ?? true };
      }),
      virtualServers: c.track_virtual_servers.map((t) => ({ name: t.name, weight: t.weight, good: this.quorum.get(t.name) ?? true })),
    };
    inst.tracking = tracking;
    const next = effectivePriority(c.priority, tracking, { syncGroup: c.sync_group !== undefined });
    const evs = trackingEvents(inst.prio, next);
    inst.prio = next;
    for (const e of evs) {
      inst.log.info({ event: e }, 'tracking changed');
      this.h.dispatch(c.name, e);
    }
  }

  pollLinks(): void {
    const names = new Set<string>();
    for (const i of this.h.insts()) {
      names.add(i.cfg.interface);
      for (const t of i.cfg.track_interfaces) names.add(t.name);
    }
    let changed = false;
    for (const n of names) {
      const up = this.linkUp(n);
      if (this.linkState.get(n) !== up) {
        if (this.linkState.has(n)) changed = true;
        this.linkState.set(n, up);
      }
    }
    if (changed) for (const i of this.h.insts()) this.recomputeTracking(i);
    this.h.afterLinkPoll?.();
    this.linkTimer = this.h.clock.setTimeout(() => this.pollLinks(), this.h.linkPollMs ?? 500);
  }

  /** Start/stop vrrp_script runners to match the instances' references. */
  syncScripts(cfg: ClusterConfig): void {
    this.cluster = cfg;
    const wanted = new Set<string>();
    for (const i of this.h.insts()) for (const t of i.cfg.track_scripts) wanted.add(t.name);
    for (const [name, s] of this.scripts) {
      if (!wanted.has(name)) {
        s.stopped = true;
        if (s.timer) this.h.clock.clearTimeout(s.timer);
        this.scripts.delete(name);
      }
    }
    for (const name of wanted) {
      const sc = cfg.vrrp_scripts.find((s) => s.name === name);
      if (!sc) continue;
      const had = this.scripts.get(name);
      if (had) {
        // A reload changed the script: its state (good, rise/fall counts) is kept; the new command,
        // timeout and rise/fall apply from the next run, the new interval from now.
        if (isDeepStrictEqual(had.cfg, sc)) continue;
        had.cfg = sc;
        if (had.timer) this.h.clock.clearTimeout(had.timer);
        had.timer = this.h.clock.setTimeout(had.tick, sc.interval * 1000);
        continue;
      }
      const entry: ScriptRunner = { cfg: sc, st: initialScriptState(), running: false, stopped: false, tick: () => {} };
      this.scripts.set(name, entry);
      const tick = () => {
        if (entry.stopped) return;
        const sc = entry.cfg;
        if (!entry.running) {
          entry.running = true;
          void runTrackScript(sc.script, sc.timeout * 1000, sc.script_user).then((ok) => {
            entry.running = false;
            if (entry.stopped) return;
            const before = entry.st.good;
            entry.st = scriptResult(entry.st, ok, entry.cfg.rise, entry.cfg.fall);
            if (entry.st.good !== before) {
              this.h.logger.info({ script: name, good: entry.st.good }, 'vrrp_script state changed');
              for (const i of this.h.insts()) if (i.cfg.track_scripts.some((t) => t.name === name)) this.recomputeTracking(i);
            }
          });
        }
        entry.timer = this.h.clock.setTimeout(tick, sc.interval * 1000);
      };
      entry.tick = tick;
      tick();
    }
  }
}

/** Run a tracking script: success = exit 0 before the timeout (keepalived vrrp_script). */
async function runTrackScript(argv: readonly string[], timeoutMs: number, user: string | undefined): Promise<boolean> {
  const o = await runScript({ argv, timeoutMs, user });
  return o.code === 0 && !o.timedOut;
}
