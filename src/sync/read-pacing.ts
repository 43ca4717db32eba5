/**
 * When the table worker (table-worker.ts) reads the connection table next (pure): the pause after a
 * read, from its duration, poll_interval and the kernel stream's activity. The worker is the shell
 * (timers, the read itself); these rules are its core, tested alone (test/sync/read-pacing.test.ts).
 */

/**
 * A read that takes less than this share of the period is followed sooner than poll_interval: the
 * pause after it is its own duration × (1/READ_SHARE − 1), so cheap reads (a small table) come more
 * often while the thread stays below this share of a core: a read of 0.3 ms (a small table on a
 * real host) is followed after 10 ms (MIN_PAUSE_MS), one of 4 ms after 36 ms, one of 5 ms or more
 * after poll_interval (50 ms by default) as before.
 */
export const READ_SHARE = 0.1;
/** Shortest pause between reads: an idle director's worker reads a small table at most ~100 times a second. */
export const MIN_PAUSE_MS = 10;

/**
 * Pause before the next read. poll_interval is the longest period (read start to read start) while
 * a read is shorter than it; a cheap read is followed sooner (READ_SHARE), since half a period is,
 * on average, the time a new connection waits for the read that shows it. When a read takes longer
 * than poll_interval, the pause is as long as the read itself: reads never overlap (one at a time),
 * no timer backlog builds (the next one is armed only after a read ends) and this thread keeps at
 * most about half a core busy, whatever the table size.
 * The size matters: the kernel prints /proc/net/ip_vs_conn through seq_file a page (~50 entries)
 * per read() call, and every call walks the connection hash from its first bucket to the resume
 * position (ip_vs_conn_seq_start → ip_vs_conn_array), so a full read costs O(n²) kernel time:
 * seconds at 100,000 entries, during which a new connection waits (lvsd_sync_table_read_seconds).
 */
export function nextDelay(readMs: number, pollMs: number): number {
  const ceiling = readMs > pollMs ? readMs : pollMs - readMs;
  return Math.min(ceiling, Math.max(MIN_PAUSE_MS, readMs * (1 / READ_SHARE - 1)));
}

/**
 * While the kernel stream runs (table-worker.ts) and brings records (BUSY_STREAM or more since the last read
 * ended), or when a read is slower than poll_interval, a read is followed after 9× its own duration
 * (READ_SHARE of this thread's time), poll_interval or not: the stream brings new connections and
 * state changes within tens of ms, so the reads are left with what it cannot see (connections
 * before their 3rd packet, expiry, removals, the confirmation of what a resync answer holds).
 * poll_interval capped the period of reads between 5 ms and poll_interval long (a table of a few
 * thousand entries in the lab guest) at poll_interval, so they took up to all of this thread's
 * time: at ~1,000 new connections/s a's lvsd used 64 % of its UML guest against 27 % with the
 * kernel channel, three quarters of the table worker's time parsing and diffing reads
 * (bench/results/sync.md, 2026-12-05 01:17); reads slower than poll_interval were spaced 4×.
 * A quiet stream (fewer records) keeps the period without the stream for reads up to
 * poll_interval: the kernel holds its last record until the next one (~100 ms at 10/s), and a read
 * shows that connection sooner (bench/results/sync.md, 2026-12-04 22:10); a read of 100 entries
 * takes 20 ms and more in a loaded lab guest.
 */
export function streamDelay(readMs: number, pollMs: number, records: number): number {
  return records >= BUSY_STREAM || readMs > pollMs ? Math.max(MIN_PAUSE_MS, readMs * (1 / READ_SHARE - 1)) : nextDelay(readMs, pollMs);
}
/** Stream records since the last read ended from which the stream counts as busy: its held record waits for the next within a read's period. */
export const BUSY_STREAM = 2;

/**
 * The pause after a read made while the kernel stream runs: streamDelay of the read's own work,
 * less the pauses the read already made for a busy stream (readSliced pauses 9× each slice's work
 * while the stream brings records: READ_SHARE kept within the read), at least MIN_PAUSE_MS. Until
 * 2026-12-05 18:10 the pause after was 9× the read's whole wall time, its pauses included: under a
 * busy stream reads took ~1 % of the thread, not READ_SHARE, and a connection only a read shows
 * (one whose 3rd packet the stream never saw: the master daemon never sends it) waited ten times
 * the read period (bench/results/sync.md, session 24).
 */
export function pauseAfterStreamRead(wallMs: number, pausedMs: number, pollMs: number, records: number): number {
  return Math.max(MIN_PAUSE_MS, streamDelay(wallMs - pausedMs, pollMs, records) - pausedMs);
}
