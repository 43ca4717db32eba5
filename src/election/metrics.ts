/** The election's Prometheus metrics (lvsd_vrrp_*), shared by every instance of a daemon. */
import type { Registry } from 'prom-client';
import { Counter, Gauge } from 'prom-client';

export interface ElectionMetrics {
  readonly state: Gauge<'instance' | 'state'>;
  readonly transitions: Counter<'instance' | 'from' | 'to'>;
  readonly advertsSent: Counter<'instance'>;
  readonly advertsReceived: Counter<'instance'>;
  readonly advertsLate: Counter<'instance'>;
  readonly advertsBackstop: Counter<'instance'>;
  readonly takeoverThread: Counter<'instance'>;
  readonly dropped: Counter<'instance' | 'reason'>;
  readonly garpSent: Counter<'instance'>;
  readonly masterInfo: Gauge<'instance' | 'address'>;
  readonly lateTimers: Counter<'instance'>;
  readonly vipRestored: Counter<'instance'>;
}

function metric<T>(registry: Registry, name: string, make: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? make();
}

export function createElectionMetrics(registry: Registry): ElectionMetrics {
  const r = [registry];
  return {
    state: metric(registry, 'lvsd_vrrp_state', () => new Gauge({ name: 'lvsd_vrrp_state', help: 'VRRP instance state: 1 for the current state', labelNames: ['instance', 'state'] as const, registers: r })),
    transitions: metric(registry, 'lvsd_vrrp_transitions_total', () => new Counter({ name: 'lvsd_vrrp_transitions_total', help: 'VRRP state transitions', labelNames: ['instance', 'from', 'to'] as const, registers: r })),
    advertsSent: metric(registry, 'lvsd_vrrp_adverts_sent_total', () => new Counter({ name: 'lvsd_vrrp_adverts_sent_total', help: 'VRRP adverts sent', labelNames: ['instance'] as const, registers: r })),
    advertsLate: metric(registry, 'lvsd_vrrp_adverts_late_total', () => new Counter({ name: 'lvsd_vrrp_adverts_late_total', help: 'Adverts sent more than one advert interval after they were due (this process was held up: the backups saw that much more silence)', labelNames: ['instance'] as const, registers: r })),
    takeoverThread: metric(registry, 'lvsd_vrrp_takeover_thread_total', () => new Counter({ name: 'lvsd_vrrp_takeover_thread_total', help: 'Takeovers the takeover thread carried out at the master_down deadline while the event loop was held up past it', labelNames: ['instance'] as const, registers: r })),
    advertsBackstop: metric(registry, 'lvsd_vrrp_adverts_backstop_total', () => new Counter({ name: 'lvsd_vrrp_adverts_backstop_total', help: 'Adverts the backstop threads sent for a Master whose event loop was held up (or whose CPU was frozen) past 1.5 advert intervals', labelNames: ['instance'] as const, registers: r })),
    advertsReceived: metric(registry, 'lvsd_vrrp_adverts_received_total', () => new Counter({ name: 'lvsd_vrrp_adverts_received_total', help: 'Valid VRRP adverts received', labelNames: ['instance'] as const, registers: r })),
    dropped: metric(registry, 'lvsd_vrrp_packets_dropped_total', () => new Counter({ name: 'lvsd_vrrp_packets_dropped_total', help: 'VRRP packets dropped, by reason', labelNames: ['instance', 'reason'] as const, registers: r })),
    garpSent: metric(registry, 'lvsd_vrrp_garp_sent_total', () => new Counter({ name: 'lvsd_vrrp_garp_sent_total', help: 'Gratuitous ARPs / unsolicited NAs sent', labelNames: ['instance'] as const, registers: r })),
    masterInfo: metric(registry, 'lvsd_vrrp_master_info', () => new Gauge({ name: 'lvsd_vrrp_master_info', help: 'Address of the current master as seen by this instance (value 1)', labelNames: ['instance', 'address'] as const, registers: r })),
    lateTimers: metric(registry, 'lvsd_vrrp_late_timers_total', () => new Counter({ name: 'lvsd_vrrp_late_timers_total', help: 'master_down expiries that fired late, so the master was given a grace before taking over', labelNames: ['instance'] as const, registers: r })),
    vipRestored: metric(registry, 'lvsd_vrrp_vip_restored_total', () => new Counter({ name: 'lvsd_vrrp_vip_restored_total', help: 'VIPs re-added after being removed while master', labelNames: ['instance'] as const, registers: r })),
  };
}
