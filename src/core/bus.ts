/**
 * Typed in-process event bus between subsystems, so they never import each other:
 * health publishes real-server and quorum state, the IPVS programmer and the election consume it;
 * the election publishes instance state, connection sync consumes it.
 */
import { EventEmitter } from 'node:events';

export interface BusEvents {
  /** A real server's effective state changed (or was first decided). weight = weight to program. */
  'health.rs': { vs: string; rs: string; up: boolean; weight: number; inhibit: boolean; reason: string };
  /** A virtual server's quorum state changed. `vs` is the virtual server key, `name` its name. */
  'health.quorum': { vs: string; name: string; up: boolean; healthyWeight: number };
  /** A VRRP instance changed state. */
  'vrrp.state': { instance: string; from: string; to: string; reason: string };
}

export type BusEvent = keyof BusEvents;

export class Bus {
  private readonly ee = new EventEmitter();
  /** The last event of each kind per instance (events that carry one), for subscribers that start late. */
  private readonly latest = new Map<string, unknown>();
  constructor() {
    this.ee.setMaxListeners(100);
  }
  emit<K extends BusEvent>(k: K, v: BusEvents[K]): void {
    const inst = (v as { instance?: unknown }).instance;
    if (typeof inst === 'string') this.latest.set(`${k}\0${inst}`, v);
    this.ee.emit(k, v);
  }
  /** The last event of kind k emitted for `instance` (the bus does not replay to new subscribers). */
  last<K extends BusEvent>(k: K, instance: string): BusEvents[K] | undefined {
    return this.latest.get(`${k}\0${instance}`) as BusEvents[K] | undefined;
  }
  on<K extends BusEvent>(k: K, fn: (v: BusEvents[K]) => void): () => void {
    this.ee.on(k, fn);
    return () => this.ee.off(k, fn);
  }
}
