/** The election's Prometheus metrics (lvsd_vrrp_*), shared by every instance of a daemon. */
import type { Registry } from 'prom-client';
import { Counter, Gauge } from 'prom-client';

export interface ElectionMetrics {
  readonly state: Gauge<'vrrp_instance' | 'state'>;
  readonly transitions: Counter<'vrrp_instance' | 'from' | 'to'>;
  readonly advertsSent: Counter<'vrrp_instance'>;
  readonly advertsReceived: Counter<'vrrp_instance'>;
  readonly advertsLate: Counter<'vrrp_instance'>;
  readonly advertsBackstop: Counter<'vrrp_instance'>;
  readonly takeoverThread: Counter<'vrrp_instance'>;
  readonly dropped: Counter<'vrrp_instance' | 'reason'>;
  readonly garpSent: Counter<'vrrp_instance'>;
  readonly masterInfo: Gauge<'vrrp_instance' | 'address'>;
  readonly lateTimers: Counter<'vrrp_instance'>;
  readonly vipRestored: Counter<'vrrp_instance'>;
  readonly splitBrain: Counter<'vrrp_instance'>;
  readonly splitBrainLastSeen: Gauge<'vrrp_instance'>;
}

function metric<T>(registry: Registry, name: string, make: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? make();
}

export function createElectionMetrics(registry: Registry): ElectionMetrics {
  const r = [registry];
  return {
    state: metric(registry, 'lvsd_vrrp_state', () => new Gauge({ name: 'lvsd_vrrp_state', help: 'VRRP instance state: 1 for the current state', labelNames: ['vrrp_instance', 'state'] as const, registers: r })),
    transitions: metric(registry, 'lvsd_vrrp_transitions_total', () => new Counter({ name: 'lvsd_vrrp_transitions_total', help: 'VRRP state transitions', labelNames: ['vrrp_instance', 'from', 'to'] as const, registers: r })),
    advertsSent: metric(registry, 'lvsd_vrrp_adverts_sent_total', () => new Counter({ name: 'lvsd_vrrp_adverts_sent_total', help: 'VRRP adverts sent', labelNames: ['vrrp_instance'] as const, registers: r })),
    advertsLate: metric(registry, 'lvsd_vrrp_adverts_late_total', () => new Counter({ name: 'lvsd_vrrp_adverts_late_total', help: 'Adverts sent more than one advert interval after they were due (this process was held up: the backups saw that much more silence)', labelNames: ['vrrp_instance'] as const, registers: r })),
    takeoverThread: metric(registry, 'lvsd_vrrp_takeover_thread_total', () => new Counter({ name: 'lvsd_vrrp_takeover_thread_total', help: 'Takeovers the takeover thread carried out at the master_down deadline while the event loop was held up past it', labelNames: ['vrrp_instance'] as const, registers: r })),
    advertsBackstop: metric(registry, 'lvsd_vrrp_adverts_backstop_total', () => new Counter({ name: 'lvsd_vrrp_adverts_backstop_total', help: 'Adverts the backstop threads sent for a Master whose event loop was held up (or whose CPU was frozen) past 1.5 advert intervals', labelNames: ['vrrp_instance'] as const, registers: r })),
    advertsReceived: metric(registry, 'lvsd_vrrp_adverts_received_total', () => new Counter({ name: 'lvsd_vrrp_adverts_received_total', help: 'Valid VRRP adverts received', labelNames: ['vrrp_instance'] as const, registers: r })),
    dropped: metric(registry, 'lvsd_vrrp_packets_dropped_total', () => new Counter({ name: 'lvsd_vrrp_packets_dropped_total', help: 'VRRP packets dropped, by reason', labelNames: ['vrrp_instance', 'reason'] as const, registers: r })),
    garpSent: metric(registry, 'lvsd_vrrp_garp_sent_total', () => new Counter({ name: 'lvsd_vrrp_garp_sent_total', help: 'Gratuitous ARPs / unsolicited NAs sent', labelNames: ['vrrp_instance'] as const, registers: r })),
    masterInfo: metric(registry, 'lvsd_vrrp_master_info', () => new Gauge({ name: 'lvsd_vrrp_master_info', help: 'Address of the current master as seen by this instance (value 1)', labelNames: ['vrrp_instance', 'address'] as const, registers: r })),
    lateTimers: metric(registry, 'lvsd_vrrp_late_timers_total', () => new Counter({ name: 'lvsd_vrrp_late_timers_total', help: 'master_down expiries that fired late, so the master was given a grace before taking over', labelNames: ['vrrp_instance'] as const, registers: r })),
    splitBrain: metric(registry, 'lvsd_vrrp_split_brain_adverts_total', () => new Counter({ name: 'lvsd_vrrp_split_brain_adverts_total', help: 'Adverts received while Master from another master of the same VRID that does not yield (lower priority, or equal priority and lower address): two masters on the link', labelNames: ['vrrp_instance'] as const, registers: r })),
    splitBrainLastSeen: metric(registry, 'lvsd_vrrp_split_brain_last_seen_seconds', () => new Gauge({ name: 'lvsd_vrrp_split_brain_last_seen_seconds', help: 'Unix time of the last split-brain advert (see lvsd_vrrp_split_brain_adverts_total); 0 = never', labelNames: ['vrrp_instance'] as const, registers: r })),
    vipRestored: metric(registry, 'lvsd_vrrp_vip_restored_total', () => new Counter({ name: 'lvsd_vrrp_vip_restored_total', help: 'VIPs re-added after being removed while master', labelNames: ['vrrp_instance'] as const, registers: r })),
  };
}

/** What the scrape-time metrics read from the running election (the runtime's status). */
export interface ElectionSnapshot {
  readonly instances: ReadonlyArray<{
    readonly name: string;
    readonly vrid: number;
    readonly interface: string;
    readonly version: number;
    readonly priority: number;
    readonly configured_priority: number;
    /** Unix milliseconds of the last state change. */
    readonly since: number;
  }>;
  readonly scripts: ReadonlyArray<{ readonly name: string; readonly good: boolean }>;
}

/**
 * Figures read when Prometheus scrapes, not kept up to date on every advert: the effective and
 * configured priority (keepalived-exporter's keepalived_vrrp_... equivalents), when the instance last
 * changed state, which VRID/interface it is (to join a pair's instances), and each tracked
 * vrrp_script's status. Reading at scrape time keeps the advert path free of metric work.
 * Registered once per registry; a later call swaps the source.
 */
export function registerElectionStateMetrics(registry: Registry, read: () => ElectionSnapshot): void {
  const had = snapshotSources.has(registry);
  snapshotSources.set(registry, read);
  if (had) return;
  const snap = () => snapshotSources.get(registry)!();
  const r = [registry];
  const gauge = <L extends string>(name: string, help: string, labelNames: readonly L[], fill: (g: Gauge<L>, s: ElectionSnapshot) => void) =>
    new Gauge<L>({ name, help, labelNames, registers: r, collect() { this.reset(); fill(this, snap()); } });
  gauge('lvsd_vrrp_priority', 'Effective VRRP priority (configured priority adjusted by tracked scripts, interfaces and virtual servers)', ['vrrp_instance'], (g, s) => {
    for (const i of s.instances) g.set({ vrrp_instance: i.name }, i.priority);
  });
  gauge('lvsd_vrrp_configured_priority', 'VRRP priority in the configuration', ['vrrp_instance'], (g, s) => {
    for (const i of s.instances) g.set({ vrrp_instance: i.name }, i.configured_priority);
  });
  gauge('lvsd_vrrp_last_transition_timestamp_seconds', 'Unix time of the instance\'s last state change (time() minus this = time in the current state)', ['vrrp_instance'], (g, s) => {
    for (const i of s.instances) g.set({ vrrp_instance: i.name }, i.since / 1000);
  });
  gauge('lvsd_vrrp_instance_info', 'The VRRP router an instance is (value 1): its VRID, interface and protocol version', ['vrrp_instance', 'vrid', 'interface', 'version'], (g, s) => {
    for (const i of s.instances) g.set({ vrrp_instance: i.name, vrid: String(i.vrid), interface: i.interface, version: String(i.version) }, 1);
  });
  gauge('lvsd_vrrp_script_status', 'Tracked vrrp_script status: 1 good (its last results met rise), 0 failing', ['vrrp_script'], (g, s) => {
    for (const x of s.scripts) g.set({ vrrp_script: x.name }, x.good ? 1 : 0);
  });
}

const snapshotSources = new WeakMap<Registry, () => ElectionSnapshot>();
