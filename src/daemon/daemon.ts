/**
 * The daemon runtime: loads the config, takes the per-config lock, starts subsystems in order and
 * stops them in reverse, reloads on SIGHUP (an invalid file is rejected and the running config keeps
 * serving), serves /metrics, /healthz and /status. This is the only place real adapters are wired.
 */
import { resolve } from 'node:path';
import { setPriority } from 'node:os';
import { Bus } from '../core/bus.js';
import { SystemClock, type Clock } from '../core/clock.js';
import { errorMessage, isLvsdError, LvsdError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { Subsystem, SubsystemDeps, SubsystemHealth } from '../core/subsystem.js';
// Not config/index.js: the schema, the YAML parser and zod load on the loader's worker thread only.
import { ConfigError, errorLines, formatDiagnostic } from '../config/errors.js';
import { diffConfig, type ConfigDiff } from '../config/diff.js';
import { loadConfigOffThread } from '../config/offload.js';
import type { ClusterConfig, LoadedConfig } from '../config/index.js';
import { createCoreMetrics, type CoreMetrics } from '../metrics/registry.js';
import { ApiServer } from '../metrics/http.js';
import { DirectorLock } from './lock.js';
import { killRunningScripts } from '../core/scripts.js';

export type DaemonSubsystem = Subsystem<ClusterConfig, ConfigDiff>;
export type SubsystemFactory = (deps: SubsystemDeps) => DaemonSubsystem | Promise<DaemonSubsystem>;

export interface DaemonOptions {
  readonly configFile: string;
  readonly logger: Logger;
  readonly version: string;
  /** Ordered: started first to last, stopped last to first. */
  readonly subsystems: ReadonlyArray<{ name: string; factory: SubsystemFactory }>;
  readonly clock?: Clock;
  /** Overrides global.state_dir (tests, unprivileged runs). */
  readonly stateDir?: string;
  /** Overrides global.api.listen. */
  readonly listen?: string;
  /** Called after the logger level should change (pino's level is set by the shell). */
  readonly setLogLevel?: (level: string) => void;
  /** Called with global.router_id whenever a configuration is loaded (the logger stamps it on every line). */
  readonly setRouterId?: (id: string) => void;
}

type Phase = 'starting' | 'running' | 'reloading' | 'stopping' | 'stopped';

export class Daemon {
  readonly metrics: CoreMetrics;
  readonly bus = new Bus();
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly api: ApiServer;
  private loaded: LoadedConfig | undefined;
  private running: Array<{ name: string; sub: DaemonSubsystem; ok: boolean }> = [];
  private phase: Phase = 'starting';
  private lock: DirectorLock | undefined;
  private startCancelled: string | undefined;
  private readonly startedAt = Date.now();
  private lastReload: { at: string; result: 'success' | 'failure'; errors?: string[] } | undefined;
  private reloadChain: Promise<unknown> = Promise.resolve();

  constructor(private readonly opts: DaemonOptions) {
    this.clock = opts.clock ?? new SystemClock();
    this.log = opts.logger.child({ subsystem: 'daemon' });
    this.metrics = createCoreMetrics(opts.version, () => this.running.map((r) => [r.name, this.healthOf(r).up] as const));
    this.api = new ApiServer(
      { registry: this.metrics.registry, status: () => this.status(), unhealthy: () => this.unhealthy(), detail: (name) => this.running.find((r) => r.name === name)?.sub.detail?.() },
      opts.logger.child({ subsystem: 'api' }),
    );
  }

  get config(): ClusterConfig | undefined {
    return this.loaded?.config;
  }

  get apiAddress(): string {
    return this.api.address;
  }

  /**
   * Load, lock, listen, start every subsystem. Throws (and cleans up) when the config is invalid,
   * another daemon holds the director's lock (LOCKED), or cancelStart() was called (STOPPED).
   */
  async start(): Promise<void> {
    // Off the event loop, as at SIGHUP: one way to load, bounded in time and memory.
    const t0 = this.clock.now();
    const loaded = await loadConfigOffThread(this.opts.configFile);
    this.log.info({ ms: Math.round(this.clock.now() - t0) }, 'configuration loaded');
    for (const w of loaded.warnings) this.log.warn({ diagnostic: formatDiagnostic(w) }, 'config warning');
    this.loaded = loaded;
    this.opts.setLogLevel?.(loaded.config.global.log_level);
    this.opts.setRouterId?.(loaded.config.global.router_id);
    this.applyNice(loaded.config.global.nice);
    this.checkCancelled();
    this.lock = new DirectorLock(resolve(this.opts.stateDir ?? loaded.config.global.state_dir));
    this.lock.acquire();
    try {
      this.checkCancelled();
      await this.api.listen(this.opts.listen ?? loaded.config.global.api.listen);
      this.metrics.lastReloadSuccess.set(Date.now() / 1000);
      for (const { name, factory } of this.opts.subsystems) {
        const deps: SubsystemDeps = {
          logger: this.opts.logger.child({ subsystem: name }),
          clock: this.clock,
          registry: this.metrics.registry,
          bus: this.bus,
        };
        this.checkCancelled();
        const sub = await factory(deps);
        const entry = { name, sub, ok: false };
        this.running.push(entry);
        const t0 = this.clock.now();
        await sub.start(loaded.config);
        entry.ok = true;
        this.log.info({ name, ms: Math.round(this.clock.now() - t0) }, 'subsystem started');
      }
      this.checkCancelled();
    } catch (e) {
      if (isLvsdError(e, 'STOPPED')) this.log.info({ reason: this.startCancelled }, 'stop requested during start; stopping what was started');
      else this.log.error({ err: errorMessage(e) }, 'start failed; stopping what was started');
      await this.stop();
      throw e;
    }
    this.phase = 'running';
    this.log.info({ config: this.opts.configFile, router_id: loaded.config.global.router_id, api: this.api.address, pid: process.pid }, 'lvsd running');
  }

  /**
   * SIGTERM/SIGINT while start() runs: start stops what it has started at its next step (after the
   * subsystem starting now) and rejects with STOPPED. No-op once running: use stop().
   */
  cancelStart(reason: string): void {
    if (this.phase === 'starting') this.startCancelled ??= reason;
  }

  private checkCancelled(): void {
    if (this.startCancelled) throw new LvsdError('STOPPED', `start cancelled by ${this.startCancelled}`);
  }

  /**
   * SIGHUP. An invalid file is rejected with its diagnostics logged, the failure is counted, and
   * the running configuration keeps serving. A valid one goes to each subsystem with a diff.
   * Reloads are serialised so two quick SIGHUPs don't interleave.
   */
  reload(): Promise<'success' | 'failure' | 'unchanged'> {
    const run = async (): Promise<'success' | 'failure' | 'unchanged'> => {
      if (this.phase !== 'running' || !this.loaded) return 'failure';
      let next: LoadedConfig;
      try {
        // On a worker thread: adverts, checks and /healthz keep running while a large file is validated.
        this.log.info({ config: this.opts.configFile }, 'reload: loading the configuration on a worker thread');
        next = await loadConfigOffThread(this.opts.configFile);
      } catch (e) {
        const errors = e instanceof ConfigError ? errorLines(e) : [errorMessage(e)];
        this.metrics.reloads.inc({ result: 'failure' });
        this.lastReload = { at: new Date().toISOString(), result: 'failure', errors };
        this.log.error({ errors }, 'reload rejected: the new configuration is invalid; still serving the previous one');
        return 'failure';
      }
      for (const w of next.warnings) this.log.warn({ diagnostic: formatDiagnostic(w) }, 'config warning');
      const prev = this.loaded.config;
      const diff = diffConfig(prev, next.config);
      this.phase = 'reloading';
      const errors: string[] = [];
      try {
        if (diff.global) {
          this.opts.setLogLevel?.(next.config.global.log_level);
          this.opts.setRouterId?.(next.config.global.router_id);
          if (next.config.global.nice !== prev.global.nice) this.applyNice(next.config.global.nice);
          if (!this.opts.listen && next.config.global.api.listen !== prev.global.api.listen) {
            try {
              await this.api.listen(next.config.global.api.listen);
            } catch (e) {
              errors.push(`api: ${errorMessage(e)}`);
            }
          }
        }
        if (!diff.empty) {
          for (const r of this.running) {
            try {
              await r.sub.reload(next.config, prev, diff);
            } catch (e) {
              errors.push(`${r.name}: ${errorMessage(e)}`);
              this.log.error({ name: r.name, err: errorMessage(e) }, 'subsystem reload failed');
            }
          }
        }
      } finally {
        this.phase = 'running';
      }
      this.loaded = next;
      const result = errors.length ? 'failure' : 'success';
      this.metrics.reloads.inc({ result });
      if (result === 'success') this.metrics.lastReloadSuccess.set(Date.now() / 1000);
      this.lastReload = { at: new Date().toISOString(), result, ...(errors.length ? { errors } : {}) };
      this.log.info({ result, changed: summariseDiff(diff) }, diff.empty ? 'reload: configuration unchanged' : 'reload applied');
      return diff.empty && result === 'success' ? 'unchanged' : result;
    };
    const p = this.reloadChain.then(run, run);
    this.reloadChain = p;
    return p;
  }

  /** Stop subsystems in reverse order, each bounded; then close the API and release the lock. */
  async stop(): Promise<void> {
    if (this.phase === 'stopped' || this.phase === 'stopping') return;
    this.phase = 'stopping';
    const budgetMs = (this.loaded?.config.global.shutdown_timeout ?? 5) * 1000;
    const deadline = this.clock.now() + budgetMs;
    for (const r of [...this.running].reverse()) {
      const left = Math.max(100, deadline - this.clock.now());
      try {
        await withTimeout(r.sub.stop(), left, `${r.name} stop`);
        this.log.info({ name: r.name }, 'subsystem stopped');
      } catch (e) {
        this.log.error({ name: r.name, err: errorMessage(e) }, 'subsystem stop failed');
      }
      this.metrics.up.set({ subsystem: r.name }, 0);
    }
    this.running = [];
    // No script outlives the daemon: whatever is still running (and its children) is killed.
    const killed = killRunningScripts();
    if (killed) this.log.info({ killed }, 'killed scripts still running at stop');
    await this.api.close();
    this.lock?.release();
    this.phase = 'stopped';
    this.log.info({}, 'lvsd stopped');
  }

  status(): unknown {
    const c = this.loaded?.config;
    const subsystems: Record<string, unknown> = {};
    for (const r of this.running) {
      try {
        subsystems[r.name] = r.sub.status();
      } catch (e) {
        subsystems[r.name] = { error: errorMessage(e) };
      }
    }
    return {
      lvsd: { version: this.opts.version, pid: process.pid, phase: this.phase, started_at: new Date(this.startedAt).toISOString(), uptime_seconds: Math.round((Date.now() - this.startedAt) / 1000) },
      router_id: c?.global.router_id,
      config: { file: resolve(this.opts.configFile), vrrp_instances: c?.vrrp_instances.length ?? 0, virtual_servers: c?.virtual_servers.length ?? 0 },
      last_reload: this.lastReload ?? null,
      health: Object.fromEntries(this.running.map((r) => [r.name, this.healthOf(r)])),
      subsystems,
    };
  }

  /** global.nice: the whole process (adverts, checks, netlink) runs at this priority. */
  private applyNice(nice: number | undefined): void {
    if (nice === undefined) return;
    try {
      setPriority(nice);
      this.log.info({ nice }, 'process priority set');
    } catch (e) {
      this.log.warn({ nice, err: errorMessage(e) }, 'cannot set the process priority (needs root or CAP_SYS_NICE); continuing');
    }
  }

  private unhealthy(): string | null {
    if (this.phase !== 'running' && this.phase !== 'reloading') return this.phase;
    const bad = this.running.flatMap((r) => {
      const h = this.healthOf(r);
      return h.up ? [] : [`${r.name}: ${h.reason ?? 'down'}`];
    });
    return bad.length ? bad.join('; ') : null;
  }

  /** A subsystem that did not start, or says it cannot do its job, is down. */
  private healthOf(r: { sub: DaemonSubsystem; ok: boolean }): SubsystemHealth {
    if (!r.ok) return { up: false, reason: 'not started' };
    try {
      return r.sub.health?.() ?? { up: true };
    } catch (e) {
      return { up: false, reason: `health unknown: ${errorMessage(e)}` };
    }
  }
}

function summariseDiff(d: ConfigDiff): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (d.global) out.global = true;
  if (d.sync) out.sync = true;
  for (const k of ['vrrp_instances', 'vrrp_scripts', 'vrrp_sync_groups', 'virtual_servers'] as const) {
    const x = d[k];
    if (x.added.length || x.removed.length || x.changed.length) out[k] = x;
  }
  return out;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<T>((_, reject) => {
      t = setTimeout(() => reject(new LvsdError('TIMEOUT', `${what} took longer than ${ms} ms`)), ms);
    }),
  ]);
}
