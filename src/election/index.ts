/**
 * Pure VRRP parts (no I/O): the runtime (transport, VIP ownership, GARP, notify) consumes these.
 *
 * Codec (./codec.ts) — RFC 3768 (v2) / RFC 5798 (v3):
 *  - `encodeAdvert(advert, {srcAddr, dstAddr})` → VRRP payload bytes (the kernel adds the IP header).
 *    srcAddr/dstAddr are the IP header addresses (needed for the v3 pseudo-header checksum).
 *  - `decodeAdvert(buf, {family, srcAddr, dstAddr, ttl?, expect?})` → `{ok:true, advert}` or
 *    `{ok:false, reason: DropReason}`; never throws. Count drops by `reason` (DROP_REASONS lists all).
 *  - `decodeIpv4Vrrp(buf, expect?)` for raw IPv4 sockets (IP header first): IP parse + TTL 255 check +
 *    decodeAdvert. IPv6 raw sockets do not deliver the header: call decodeAdvert with family 6 and the
 *    hop limit from ancillary data if available.
 *  - `Advert.intervalMs` is milliseconds on both versions (v2 wire = s, v3 wire = cs).
 */
export * from './codec.js';

/**
 * State machine (./machine.ts) — RFC 5798 §6.4 / RFC 3768 §6.4 + keepalived Fault, preempt_delay:
 *  - `createInstance(params, now)` → INIT state; `step(state, event, now)` → `{state, effects}`;
 *    `stepBatch(state, events, now)` runs a loop turn's events with timer expiries LAST.
 *  - Events: startup | shutdown | advert{from, priority, maxAdvertMs} | timer{name, lateMs?} |
 *    fault{reason} | fault_cleared{reason} | priority{effective} | sync{to, group, member}.
 *  - Effects, to execute IN ORDER: timer{name, ms} (re-arm, replaces) | cancel{name} |
 *    send_advert{priority} | become{from,to,reason} | add_vips | remove_vips | garp{reason} |
 *    notify{state: MASTER|BACKUP|FAULT|STOP} | late_timer{name, lateMs} (late guard deferred an expiry).
 *  - `currentMaster(state)`, `masterDownIntervalMs`, `skewTimeMs` for status/metrics.
 */
export * from './machine.js';

/**
 * Tracking (./priority.ts), keepalived semantics:
 *  - `effectivePriority(base, {interfaces, scripts, virtualServers}, {syncGroup?})` → `{priority, faults}`;
 *    each object `{name, weight, good}`: weight 0 & bad → fault "interface:NAME" / "script:NAME" /
 *    "quorum:NAME"; weight > 0 added while good; weight < 0 added while bad; clamped 1..254; the
 *    owner (255) stays 255; sync-group members get weight 0 (keepalived).
 *  - `trackingEvents(prevResult, nextResult)` → fault / priority / fault_cleared events for `step`.
 *  - `initialScriptState(initFail)`, `scriptResult(state, success, rise, fall)` for vrrp_script.
 */
export * from './priority.js';

/**
 * Sync groups (./syncgroup.ts): `groupStep(groupDef, statesByName, member, event, now)` →
 * `{states, effects: [{instance, effect}], groupTransition?}`; route every event of a group member
 * through it. `groupState(def, states)` is the aggregate for the group's notify.
 */
export * from './syncgroup.js';
