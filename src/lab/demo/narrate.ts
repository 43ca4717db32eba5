/**
 * The host side's words (pure): each event from the guest becomes lines for a person, and the
 * summary becomes a table. Times at the left are the host's, since `lvsd demo` started (the guest's
 * boot included); durations inside the text were measured in the guest from lvsd's own log times.
 */
import type { DemoSummary, Move, Stamped } from './events.js';

const secs = (ms: number | undefined) => (ms === undefined ? 'not seen' : `${(ms / 1000).toFixed(1)} s`);
const counts = (m: Record<string, number>) => Object.entries(m).sort().map(([k, v]) => `${k} ${v}`).join(', ');

export function stamp(elapsedMs: number): string {
  return `${(elapsedMs / 1000).toFixed(1).padStart(6)}s`;
}

/** Lines for one event, each already stamped. */
export function narrate(e: Stamped, elapsedMs: number): string[] {
  const at = stamp(elapsedMs);
  switch (e.ev) {
    case 'step':
      return ['', `${at}  == ${e.title} ==`];
    case 'say':
      return [`${at}  ${e.text}`];
    case 'show':
      return [`${at}  ${e.title}:`, ...e.text.split('\n').map((l) => `           | ${l}`)];
    case 'fail':
      return [`${at}  the demo could not go on: ${e.text}`];
    case 'summary':
      return ['', ...summaryTable(e.summary, elapsedMs)];
  }
}

/**
 * A move's row. Its connections column: kept of held, how many the new master's kernel knew by sync,
 * how many ended (why, and on which real server), and the real servers the new master's own checks
 * took out of its table during the move — the one reason a synced connection may end (demo.test.ts).
 */
function moveRow(label: string, m: Move): string[] {
  const lost = m.held - m.kept;
  const notes = [
    ...(m.syncedBefore !== undefined ? [`${m.syncedBefore} synced`] : []),
    ...(lost ? [`${lost} ended: ${counts(m.errors)}`, `synced ones by server: ${counts(m.endedByServer) || 'none'}`, `not synced: ${m.endedUnsynced}`] : []),
    ...(m.takenOut.length ? [`${m.takenOut.join(', ')} taken out by ${m.to}'s own checks`] : []),
  ];
  return [label, '-', secs(m.longestWaitMs), `${m.kept} of ${m.held}${notes.length ? ` (${notes.join('; ')})` : ''}`, m.vipMovedAfterMs === undefined ? `VIP not on ${m.to}` : `VIP on ${m.to} ${secs(m.vipMovedAfterMs)} after ${m.timedFrom}`];
}

/**
 * The closing table: requests that failed (outages seen by the client), the longest the client
 * waited for an answer, the long-lived connections kept (and how many the new master's kernel knew
 * by sync), and how long each change took.
 */
export function summaryTable(s: DemoSummary, totalMs: number): string[] {
  const r = s.realServer;
  const rows: string[][] = [
    ['event', 'requests failed', 'longest wait', 'long-lived connections kept', 'time'],
    ['requests spread', `${s.spread.failed} of ${s.spread.requests} (${counts(s.spread.byServer)})`, '-', '-', '-'],
    [
      `${r.name} dies and returns`,
      `${r.failed - r.failedInFlight} of ${r.requests}${r.failedInFlight ? ` (+${r.failedInFlight} in flight on ${r.name} at its death)` : ''}`,
      secs(r.slowestMs),
      '-',
      `out of the table in ${secs(r.removedAfterMs)}, back in ${secs(r.readdedAfterMs)}`,
    ],
    moveRow(`${s.failover.from} crashes`, s.failover),
    moveRow(`${s.failback.to} returns`, s.failback),
    ['after the failback', `${s.after.failed} of ${s.after.requests}`, '-', '-', '-'],
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  const line = (row: string[]) => `  ${row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')}`.trimEnd();
  return [
    `Summary (connection sync: ${s.syncMode} mode; ${secs(totalMs)} in all, the lab's boot included)`,
    line(rows[0]!),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.slice(1).map(line),
  ];
}
