/**
 * The roles the election runtime drives per instance (built real by the subsystem, fake by tests):
 * transport, VIP ownership, announcements, and the three mechanisms that act for a held-up event
 * loop — the takeover call, the takeover thread and the advert backstop (native/afpacket).
 */
import type { Advert } from './codec.js';
import type { VrrpTransport } from './transport.js';
import type { VipSet } from './vips.js';
import type { Announcer, AnnounceTarget } from './announce.js';

/** What the runtime needs per instance, built by the subsystem (real) or a test (fakes). */
export interface InstanceIo {
  readonly transport: VrrpTransport;
  readonly vips: VipSet;
  /**
   * Announcer plus what it needs; absent when GARP is unavailable (logged by the factory). `mac` is
   * the instance interface's; `macOf` gives the MAC of another interface a VIP is put on (`device`).
   */
  readonly announce?: { readonly announcer: Announcer; readonly ifname: string; readonly mac: Uint8Array; readonly macOf?: (ifname: string) => Uint8Array };
  /** The data-plane part of a takeover in one native call, when every mechanism supports it. */
  readonly fast?: FastTakeover;
  /** Sends the Master's advert when this process is held up (see AdvertBackstop); absent with fakes or when disabled. */
  readonly backstop?: AdvertBackstop;
  /** Carries out a takeover at the master_down deadline when this process is held up then (see TakeoverThread); absent with fakes or when disabled. */
  readonly thread?: TakeoverThread;
}

/**
 * Stands in for a held-up event loop at a Backup's master_down deadline: loaded with what the
 * takeover does (as FastTakeover.prepare) and armed with each new deadline, threads outside the
 * event loop (native, two CPUs, SCHED_FIFO when allowed: takeover.c tk*) sleep to it and do it there,
 * unless a datagram is waiting in the instance's socket or being read from it by the event loop
 * (the loop then decides: it may be the master's advert), or they woke more than `lateLimitMs` past
 * it (a frozen machine: the late guard decides). The runtime collects the decision at its own wake
 * and adopts what was done, as after the takeover call.
 */
export interface TakeoverThread {
  /** What a takeover does (as FastTakeover.prepare; disarms); false when a mechanism is not ready. */
  load(targets: readonly AnnounceTarget[] | undefined, advert: Advert | undefined, rounds: number): boolean;
  /** Act `inMs` from now (nothing loaded: ignored); `lateLimitMs` < 0: no limit. */
  arm(inMs: number, lateLimitMs: number): void;
  /** It does not act after this returns. */
  disarm(): void;
  /** It acted on the current arm and wait() has not collected that yet. */
  fired(): boolean;
  /**
   * The current arm's decision, collected once, waiting up to `timeoutMs` (≤ 20) for it: what was done,
   * or pending (a datagram, or too late). Undefined when none was made by then (or nothing armed):
   * the arm is then cancelled.
   */
  wait(timeoutMs: number): FastResult | undefined;
  close(): void;
}

/**
 * Stands in for a held-up event loop while Master: once armed with the Master's advert it sends it
 * whenever no advert was sent for 1.5 advert intervals (two threads outside the event loop, on
 * two CPUs: see native/afpacket/backstop.c). The runtime still sends every advert itself and kicks it
 * each time, and disarms it before anything that leaves Master takes effect.
 */
export interface AdvertBackstop {
  /** Arm (or re-arm with a new priority): false when the advert cannot be armed (not started, socket closed). */
  arm(a: Advert): boolean;
  /** An advert was just sent by the runtime; returns how many the backstop sent since the last kick. */
  kick(): number;
  /** No backstop advert goes out once this returns. */
  disarm(): void;
  close(): void;
}

/**
 * Prepares the one call that, at a master_down deadline the machine will act on, checks the VRRP
 * socket for a waiting advert and otherwise adds the VIPs, sends their announcements (`rounds`
 * rounds: the whole first burst when it has no spacing) and the new Master's first advert (see
 * armTimer). `run(waitMs, lateLimitMs)` first sleeps `waitMs` (≤ 10) in the call, to the deadline;
 * it then reports 'pending' (an advert may be waiting, or it woke more than `lateLimitMs` (≥ 0)
 * past that target: nothing done) or what it did, with how far past the target
 * it acted (`lateMs`).
 */
export interface FastTakeover {
  prepare(targets: readonly AnnounceTarget[] | undefined, advert: Advert | undefined, rounds: number): { run(waitMs?: number, lateLimitMs?: number): FastResult } | undefined;
}
export type FastResult =
  | { readonly pending: true; readonly lateMs?: number }
  | { readonly pending: false; readonly lateMs?: number; readonly vipsAdded: boolean; /** whole rounds of frames sent */ readonly rounds: number; readonly advertSent: boolean };
