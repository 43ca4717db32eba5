/**
 * Reading a running lvsd from outside, for the sync benches (bench/sync.ts in one guest,
 * bench/support/sync-pair-resync.ts across a pair): one series of its /metrics text, and its JSON log
 * (pino: one object a line, "time" in the daemon's own clock) — when a line was logged, the fields
 * of a resync answer, its start step by step.
 */

/** One series' value in a /metrics text ("name" or "name{labels}" exactly); NaN when absent. */
export function sample(text: string, series: string): number {
  const m = new RegExp(`^${series.replace(/[{}"+.]/g, (c) => `\\${c}`)} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

/** The time (epoch ms, the daemon's clock) of the first log line matching re; NaN when none. */
export function logTime(out: string, re: RegExp): number {
  const l = out.split('\n').find((x) => re.test(x));
  // pino's "time": epoch ms, or an ISO string (the daemon's log format).
  const m = l ? /"time":(?:(\d+)|"([^"]+)")/.exec(l) : null;
  return m ? (m[1] ? Number(m[1]) : Date.parse(m[2]!)) : NaN;
}

/**
 * The active director's last "full table sent to the peer" line (src/sync/engine.ts sendFullTable):
 * request → ready in its main thread, of it the worker (encode included), the age of the read it
 * came from; waiting behind earlier sends; its own frames; the records and frames it sent.
 */
export function answerOf(out: string): { readyMs: number; workerMs: number; encodeMs: number; snapshotAgeMs: number; queuedMs: number; sendMs: number; records: number; frames: number } {
  const line = out.split('\n').filter((l) => l.includes('full table sent to the peer')).pop() ?? '';
  const f = (k: string) => Number(new RegExp(`"${k}":(\\d+)`).exec(line)?.[1] ?? NaN);
  return { readyMs: f('ready_ms'), workerMs: f('worker_ms'), encodeMs: f('encode_ms'), snapshotAgeMs: f('snapshot_age_ms'), queuedMs: f('queued_ms'), sendMs: f('send_ms'), records: f('records'), frames: f('frames') };
}

/**
 * A daemon's log lines up to the first one matching `until` (included), as [ms since t0, message
 * and the fields that say which step]: its start, step by step (t0 in the daemon's clock).
 */
export function timeline(out: string, t0: number, until: RegExp): Array<[number, string]> {
  const rows: Array<[number, string]> = [];
  for (const l of out.split('\n')) {
    let j: Record<string, unknown>;
    try {
      j = JSON.parse(l) as Record<string, unknown>;
    } catch {
      continue;
    }
    const at = typeof j.time === 'number' ? j.time : Date.parse(String(j.time));
    const extra = ['name', 'what', 'op', 'state', 'ms', 'node_ms', 'modules_ms', 'to'].filter((k) => j[k] !== undefined).map((k) => `${k}=${JSON.stringify(j[k])}`);
    rows.push([Math.round(at - t0), `${String(j.msg)}${extra.length ? ` (${extra.join(' ')})` : ''}`]);
    if (until.test(String(j.msg))) break;
  }
  return rows;
}
