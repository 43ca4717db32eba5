/**
 * What the demo's guest side (scenario.ts, inside the UML lab) tells the host side (host.ts), one
 * JSON object per stdout line behind a marker, so the host can narrate while the guest works and can
 * tell the scenario's own lines from anything else a program in the guest prints.
 */

export const MARK = '@lvsd-demo ';

export interface DemoSummary {
  /** Requests on separate connections while every real server is up. */
  spread: { requests: number; failed: number; byServer: Record<string, number> };
  /** A real server's host dies and comes back while the client keeps sending requests. */
  realServer: {
    name: string;
    requests: number;
    failed: number;
    /** Of the failed: requests already in flight when the real server died (their server is gone). */
    failedInFlight: number;
    slowestMs: number;
    /** From its death to its removal from the kernel table (undefined: not seen). */
    removedAfterMs?: number;
    /** From its return to its re-entry in the kernel table. */
    readdedAfterMs?: number;
  };
  /** The master director crashes; the backup takes over. */
  failover: Move;
  /** The old master returns and preempts. */
  failback: Move;
  /** Sync mode the directors ran (config `sync`). */
  syncMode: string;
  /** Requests on new connections after the failback (the cluster still serves). */
  after: { requests: number; failed: number };
}

export interface Move {
  from: string;
  to: string;
  /** From `timedFrom` to the new master's VRRP transition (undefined: it did not happen). */
  vipMovedAfterMs?: number;
  /** What vipMovedAfterMs is timed from ("the crash", "its election started"). */
  timedFrom: string;
  /** Long-lived connections the client held before the move, and still open and answered after it. */
  held: number;
  kept: number;
  /** Why the others ended, by error code (ECONNRESET: the new master did not know the connection). */
  errors: Record<string, number>;
  /** The ended ones the new master's kernel knew (synced), by real server (the one that answered the connection). */
  endedByServer: Record<string, number>;
  /** The ended ones the new master's kernel did not know. */
  endedUnsynced: number;
  /**
   * Real servers the new master's own health checks had out of its kernel table at some moment
   * of the move (a "real server down" in its log, or absent when it took over): a connection on
   * one of them is dropped at its next packet (expire_nodest_conn), synced or not.
   */
  takenOut: string[];
  /** Longest wait for an answer on a held connection during the move. */
  longestWaitMs: number;
  /** Connections the new master's kernel knew from sync just before the move. */
  syncedBefore?: number;
}

export type DemoEvent =
  /** A new chapter of the story. */
  | { ev: 'step'; title: string }
  /** One narrated fact. */
  | { ev: 'say'; text: string }
  /** A command's output shown as it is (`lvsd ipvs show` on a director). */
  | { ev: 'show'; title: string; text: string }
  | { ev: 'summary'; summary: DemoSummary; totalMs: number }
  /** The scenario could not go on; the host prints it and exits 1. */
  | { ev: 'fail'; text: string };

export type Stamped = DemoEvent & { t: number };

export function encode(e: Stamped): string {
  return `${MARK}${JSON.stringify(e)}`;
}

/** A line from the guest: an event, or undefined for any other line (shown as it is). */
export function decode(line: string): Stamped | undefined {
  if (!line.startsWith(MARK)) return undefined;
  try {
    const o = JSON.parse(line.slice(MARK.length)) as Stamped;
    return typeof o === 'object' && o !== null && typeof o.ev === 'string' && typeof o.t === 'number' ? o : undefined;
  } catch {
    return undefined;
  }
}
