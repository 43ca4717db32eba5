/**
 * What the daemon runtime drives. Subsystems are started in declaration order and stopped in
 * reverse. On SIGHUP each gets the new validated config together with the previous one and a diff
 * it can use to touch only what changed. `Cfg` is the config model (kept generic: core imports nothing).
 */
export interface Subsystem<Cfg, Diff = unknown> {
  readonly name: string;
  start(cfg: Cfg): Promise<void>;
  reload(next: Cfg, prev: Cfg, diff: Diff): Promise<void>;
  /** Graceful stop; must finish quickly (the daemon bounds the total with global.shutdown_timeout). */
  stop(): Promise<void>;
  /** JSON-serialisable view of the running state, shown by GET /status and `lvsd status`. */
  status(): unknown;
  /** A larger view than status() (e.g. the peer-synced connection table), served at GET /status/<name>. */
  detail?(): unknown;
  /**
   * Whether the subsystem can do its job now (IPVS programmable, VRRP sockets open, sync daemons
   * under control); the reason when it cannot. Absent: up while started. Read by /healthz (503),
   * lvsd_subsystem_up and /status.
   */
  health?(): SubsystemHealth;
}

export interface SubsystemHealth {
  readonly up: boolean;
  /** Why it is down, for people (logs, /status, /healthz). */
  readonly reason?: string;
}

import type { Registry } from 'prom-client';
import type { Logger } from './log.js';
import type { Clock } from './clock.js';
import type { Bus } from './bus.js';

/** What the daemon hands every subsystem factory. */
export interface SubsystemDeps {
  /** Already a child logger with {subsystem}; add {instance} with .child() where it applies. */
  readonly logger: Logger;
  readonly clock: Clock;
  /** The one prom-client registry served on /metrics; metric names start with lvsd_. */
  readonly registry: Registry;
  readonly bus: Bus;
}
