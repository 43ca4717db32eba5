/**
 * Targeted retransmission of a full-resync answer (pure): the answer's frames are numbered
 * (RESYNC_DATA: answer id, frame index), the receiver keeps which indices it holds and names the
 * missing ones as index ranges (RESYNC_MISSING), the sender resends only those.
 *
 * Why numbered indices and not the channel's sequence numbers: a resent frame is a new frame with a
 * new channel sequence number and a new MAC, so the replay guard (wire.ts) treats it like any other
 * frame and needs no exception. Resending a frame under its old sequence number would have needed
 * one: a gap older than the guard's window (1,024 frames; a 100,000-entry answer is ~2,700) is
 * refused as a replay, and widening the window for it would let old frames in. The index inside the
 * authenticated payload tells the receiver which hole the new frame fills; a frame it already holds
 * (the original arrived late after all) is skipped, so a duplicate installs nothing twice.
 */

import type { SeqRange } from './wire.js';

/** Bytes in front of the sync v1 message in a RESYNC_DATA frame: u32 answer id, u32 frame index. */
export const RESYNC_DATA_HEADER_LEN = 8;
/** An open range's last index: "from first to the end of the answer" (the RESYNC_END was not seen). */
export const OPEN_END = 0xffffffff;
/**
 * Ranges named in one RESYNC_MISSING: 4 + 2 + 160 × 8 = 1,286 bytes, inside a frame that fits a
 * 1500-byte MTU (channel.ts DEFAULT_FRAME_PAYLOAD, 1,380). More gaps are named in the next round.
 */
export const MISSING_RANGES_MAX = 160;

/** Inclusive range of frame indices. */
export interface IndexRange {
  readonly first: number;
  readonly last: number;
}

export interface Missing {
  readonly id: number;
  readonly ranges: readonly IndexRange[];
}

export type MissingDecode = { ok: true; missing: Missing } | { ok: false; why: string };

/** RESYNC_MISSING payload: u32 answer id, u16 range count, then per range u32 first, u32 last. */
export function encodeMissing(m: Missing): Buffer {
  if (m.ranges.length > MISSING_RANGES_MAX) throw new RangeError(`${m.ranges.length} ranges: at most ${MISSING_RANGES_MAX}`);
  const b = Buffer.alloc(6 + 8 * m.ranges.length);
  b.writeUInt32BE(m.id >>> 0, 0);
  b.writeUInt16BE(m.ranges.length, 4);
  m.ranges.forEach((r, i) => {
    b.writeUInt32BE(r.first >>> 0, 6 + 8 * i);
    b.writeUInt32BE(r.last >>> 0, 10 + 8 * i);
  });
  return b;
}

/** Never throws: a payload of the wrong length, too many ranges or a reversed range is an error value. */
export function decodeMissing(b: Uint8Array): MissingDecode {
  if (b.length < 6) return { ok: false, why: `${b.length} bytes: shorter than the 6-byte header` };
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const n = v.getUint16(4);
  if (n > MISSING_RANGES_MAX) return { ok: false, why: `${n} ranges: at most ${MISSING_RANGES_MAX}` };
  if (b.length !== 6 + 8 * n) return { ok: false, why: `${n} ranges need ${6 + 8 * n} bytes, got ${b.length}` };
  const ranges: IndexRange[] = [];
  for (let i = 0; i < n; i++) {
    const first = v.getUint32(6 + 8 * i);
    const last = v.getUint32(10 + 8 * i);
    if (last < first) return { ok: false, why: `range ${i} is reversed (${first}..${last})` };
    ranges.push({ first, last });
  }
  return { ok: true, missing: { id: v.getUint32(0), ranges } };
}

/**
 * The indices missing from an answer, as at most `max` ranges, lowest first. `held` are the indices
 * received (any order); `frames` is the answer's size when its RESYNC_END arrived, else undefined:
 * then everything after the highest index held is missing too (an open range, OPEN_END).
 */
export function missingRanges(held: Iterable<number>, frames: number | undefined, max = MISSING_RANGES_MAX): IndexRange[] {
  const sorted = [...held].sort((x, y) => x - y);
  const out: IndexRange[] = [];
  let next = 0;
  for (const i of sorted) {
    if (frames !== undefined && i >= frames) break;
    if (i > next) out.push({ first: next, last: i - 1 });
    next = Math.max(next, i + 1);
  }
  if (frames === undefined) out.push({ first: next, last: OPEN_END });
  else if (next < frames) out.push({ first: next, last: frames - 1 });
  return out.slice(0, max);
}

/** The indices of `ranges` inside an answer of `frames` frames, in order, each once. */
export function indicesOf(ranges: readonly IndexRange[], frames: number): number[] {
  const want = new Set<number>();
  for (const r of ranges) for (let i = r.first; i <= Math.min(r.last, frames - 1); i++) want.add(i);
  return [...want].sort((x, y) => x - y);
}

/*
 * Lost ordinary DATA frames (a poll's changes). The receiver sees a gap in the sender's sequence
 * numbers (wire.ts ReplayGuard) and names them (DATA_MISSING: the sender's node and epoch, then
 * u64 ranges, since these are channel sequence numbers, not answer indices). The sender does not resend the old payloads: a later frame
 * may already have carried a newer state of the same connection, and resending the older one would
 * put it back at the peer. It looks the lost frames up in a ring of its recent DATA payloads and has
 * its table worker forget their connections, so its next read sends their current state (one path
 * for sending state: the poll). The receiver cannot tell which of the missing numbers were DATA
 * frames (a lost RESYNC_PROGRESS or RESYNC_DATA leaves the same gap): it names them all, and the
 * sender acts on those its ring holds.
 */

/** Ranges named in one DATA_MISSING: 14 + 80 × 16 = 1,294 bytes, inside DEFAULT_FRAME_PAYLOAD (1,380). */
export const DATA_MISSING_RANGES_MAX = 80;

/**
 * Whose sequence numbers a DATA_MISSING names: the sender's node id and the epoch of its run. Only
 * that director acts on it. Sequence numbers start again at every run and every director has its
 * own: without the owner, a DATA_MISSING repeated after its sender restarted, or sent on a segment
 * of more than two directors (multicast, or after a failover to a third), made another director
 * resend its own, unrelated frames' connections.
 */
export interface SeqOwner {
  readonly node: number;
  readonly epoch: bigint;
}

export type DataMissingDecode = { ok: true; owner: SeqOwner; ranges: SeqRange[] } | { ok: false; why: string };

const DATA_MISSING_HEADER = 14;

/** DATA_MISSING payload: u32 owner node, u64 owner epoch, u16 range count, then per range u64 first, u64 last (inclusive). */
export function encodeDataMissing(owner: SeqOwner, ranges: readonly SeqRange[]): Buffer {
  if (ranges.length > DATA_MISSING_RANGES_MAX) throw new RangeError(`${ranges.length} ranges: at most ${DATA_MISSING_RANGES_MAX}`);
  const b = Buffer.alloc(DATA_MISSING_HEADER + 16 * ranges.length);
  b.writeUInt32BE(owner.node >>> 0, 0);
  b.writeBigUInt64BE(BigInt.asUintN(64, owner.epoch), 4);
  b.writeUInt16BE(ranges.length, 12);
  ranges.forEach((r, i) => {
    b.writeBigUInt64BE(BigInt.asUintN(64, r.first), DATA_MISSING_HEADER + 16 * i);
    b.writeBigUInt64BE(BigInt.asUintN(64, r.last), DATA_MISSING_HEADER + 8 + 16 * i);
  });
  return b;
}

/** Never throws: a payload of the wrong length, too many ranges or a reversed range is an error value. */
export function decodeDataMissing(b: Uint8Array): DataMissingDecode {
  if (b.length < DATA_MISSING_HEADER) return { ok: false, why: `${b.length} bytes: shorter than the ${DATA_MISSING_HEADER}-byte header` };
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const owner = { node: v.getUint32(0), epoch: v.getBigUint64(4) };
  const n = v.getUint16(12);
  if (n > DATA_MISSING_RANGES_MAX) return { ok: false, why: `${n} ranges: at most ${DATA_MISSING_RANGES_MAX}` };
  if (b.length !== DATA_MISSING_HEADER + 16 * n) return { ok: false, why: `${n} ranges need ${DATA_MISSING_HEADER + 16 * n} bytes, got ${b.length}` };
  const ranges: SeqRange[] = [];
  for (let i = 0; i < n; i++) {
    const first = v.getBigUint64(DATA_MISSING_HEADER + 16 * i);
    const last = v.getBigUint64(DATA_MISSING_HEADER + 8 + 16 * i);
    if (last < first) return { ok: false, why: `range ${i} is reversed (${first}..${last})` };
    ranges.push({ first, last });
  }
  return { ok: true, owner, ranges };
}

/** Ranges sorted, overlapping and adjacent ones joined (so nothing is counted or named twice). */
export function mergeRanges(ranges: readonly SeqRange[]): SeqRange[] {
  const sorted = [...ranges].sort((x, y) => (x.first < y.first ? -1 : x.first > y.first ? 1 : 0));
  const out: SeqRange[] = [];
  for (const r of sorted) {
    const top = out.at(-1);
    if (top && r.first <= top.last + 1n) {
      if (r.last > top.last) out[out.length - 1] = { first: top.first, last: r.last };
    } else out.push(r);
  }
  return out;
}

/**
 * When the receiver sends a DATA_MISSING, relative to the sight of a gap: first after 20 ms (gaps seen
 * together go in one frame), then again after 0.5 s and 1.5 s. The receiver cannot tell whether its
 * DATA_MISSING arrived (the answer is the connections' current state in new DATA frames, not a reply
 * it could match), so it repeats unconditionally, a bounded number of times: a lost DATA_MISSING no
 * longer leaves the gap's connections unknown to the peer until they change. Spaced, so the loss
 * that took the first one (the sender's full socket while it sends a burst, a congested queue) has
 * passed by the next. The sender answers each sequence number at most once (SentRing.take removes
 * it), so a repeat whose first copy arrived costs two small frames and nothing at the sender.
 */
export const DATA_MISSING_SENDS_MS: readonly number[] = [20, 500, 1500];

/**
 * The receiver's gaps waiting to be named (pure: time is passed in). Every DATA_MISSING names every
 * pending gap, until the gap's last scheduled send: so a gap's copies are consecutive DATA_MISSING
 * frames, never only every other one (a loss pattern that takes every k-th frame, k ≥ 2, cannot take
 * them all), and a burst of gaps costs one frame per send time, not one per gap.
 */
export class MissingNames {
  private entries: Array<{ range: SeqRange; seen: number; sends: number; last: number; named: boolean }> = [];

  constructor(
    private readonly max: number,
    private readonly schedule: readonly number[] = DATA_MISSING_SENDS_MS,
  ) {}

  /** A gap seen at `now`; false when `max` gaps are pending already (it stays counted as lost only). */
  note(range: SeqRange, now: number): boolean {
    if (this.entries.length >= this.max) return false;
    this.entries.push({ range, seen: now, sends: 0, last: now, named: false });
    return true;
  }

  /**
   * When gap e's next copy is due: its schedule's next time, and never sooner after its previous
   * copy than the schedule spaces them. A look that came late (a loaded event loop: timers fired
   * seconds late in the lab guest) then still leaves the gap its three copies, spread as
   * scheduled from the late one; counting the times that had passed instead named it once, and
   * the lab test's every-other-DATA_MISSING loss then left connections unknown to the peer.
   */
  private due(e: { seen: number; sends: number; last: number }): number {
    const at = e.seen + this.schedule[e.sends]!;
    return e.sends === 0 ? at : Math.max(at, e.last + this.schedule[e.sends]! - this.schedule[e.sends - 1]!);
  }

  /** When the next DATA_MISSING is due; undefined when no gap is pending. */
  nextDue(): number | undefined {
    let due: number | undefined;
    for (const e of this.entries) {
      const t = this.due(e);
      if (due === undefined || t < due) due = t;
    }
    return due;
  }

  /**
   * At `now`: if a send is due, every pending gap (merged: ranges to name), and how many sequence
   * numbers are named for the first time (`fresh`); gaps named their schedule's number of times are
   * then dropped. Nothing due: no ranges. A gap is named in every frame while it is pending; a copy
   * counts towards its schedule when its own time had come (its first: any frame, as its first time is
   * only the wait for gaps seen together), so its copies stay spread over its schedule.
   */
  take(now: number): { ranges: SeqRange[]; fresh: number } {
    if (!this.entries.some((e) => this.due(e) <= now)) return { ranges: [], fresh: 0 };
    let fresh = 0n;
    for (const e of this.entries) {
      if (!e.named) fresh += e.range.last - e.range.first + 1n;
      e.named = true;
      if (e.sends === 0 || this.due(e) <= now) {
        e.sends++;
        e.last = now;
      }
    }
    const ranges = mergeRanges(this.entries.map((e) => e.range));
    this.entries = this.entries.filter((e) => e.sends < this.schedule.length);
    return { ranges, fresh: Number(fresh) };
  }

  clear(): void {
    this.entries = [];
  }

  get size(): number {
    return this.entries.length;
  }
}

/**
 * Membership in sorted, disjoint ranges for numbers asked in increasing order (the ring's maps keep
 * their numbers in sending order): one walk, O(numbers + ranges), not numbers × ranges (a ring of
 * 5,000 numbers, 80 ranges per DATA_MISSING, several a second while a resync loses frames).
 */
function inRanges(merged: readonly SeqRange[]): (s: bigint) => boolean {
  let i = 0;
  return (s) => {
    while (i < merged.length && merged[i]!.last < s) i++;
    return i < merged.length && merged[i]!.first <= s;
  };
}

/**
 * The sender's recent DATA payloads by sequence number, oldest evicted first once either bound is
 * passed. `take` hands back (and removes) the payloads of the named numbers it holds: each number is
 * answered at most once, so a repeated DATA_MISSING takes nothing again. The numbers of DATA frames
 * evicted before they were named are remembered (up to `maxGone`, a bigint each): named later, they
 * are counted unavailable, once. Only numbers below those it remembers are counted unavailable
 * whatever they were (they may have been other frames: an upper bound, for asks that come back
 * thousands of DATA frames late). Other numbers not held were no DATA frames (RESYNC_DATA, control
 * frames) or were answered already, and are ignored.
 */
export class SentRing {
  private readonly frames = new Map<bigint, Buffer>();
  private readonly gone = new Set<bigint>();
  private held = 0;
  /** Numbers at or below this one are no longer known: DATA frames or not. */
  private forgottenUpTo = 0n;

  constructor(
    private readonly maxFrames: number,
    private readonly maxBytes: number,
    private readonly maxGone = 4 * maxFrames,
  ) {}

  /** Sequence numbers are added in increasing order (the channel numbers frames as it sends them). */
  add(seq: bigint, payload: Buffer): void {
    this.frames.set(seq, payload);
    this.held += payload.length;
    while (this.frames.size > this.maxFrames || this.held > this.maxBytes) {
      const [s, p] = this.frames.entries().next().value as [bigint, Buffer];
      this.frames.delete(s);
      this.held -= p.length;
      this.gone.add(s);
    }
    while (this.gone.size > this.maxGone) {
      const s = this.gone.values().next().value as bigint;
      this.gone.delete(s);
      this.forgottenUpTo = s;
    }
  }

  take(ranges: readonly SeqRange[]): { payloads: Buffer[]; unavailable: number } {
    const merged = mergeRanges(ranges);
    const payloads: Buffer[] = [];
    let named = inRanges(merged);
    for (const [s, p] of this.frames) {
      if (!named(s)) continue;
      payloads.push(p);
      this.frames.delete(s);
      this.held -= p.length;
    }
    let unavailable = 0n;
    named = inRanges(merged);
    for (const s of this.gone) {
      if (!named(s)) continue;
      unavailable++;
      this.gone.delete(s);
    }
    const floor = this.forgottenUpTo;
    for (const r of merged) if (r.first <= floor) unavailable += (r.last < floor ? r.last : floor) - r.first + 1n;
    return { payloads, unavailable: Number(unavailable) };
  }

  get size(): number {
    return this.frames.size;
  }

  get bytes(): number {
    return this.held;
  }
}
