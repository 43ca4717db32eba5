/**
 * lvsd's sync wire between directors (pure): every datagram is an authenticated frame.
 *
 *   0-3   magic "LVSY"             4  frame version (1)       5  type (FrameType)
 *   6-7   reserved (0)
 *   8-11  sender node id (u32)     12-15 key id (u32: first 4 bytes of SHA-256 of the key)
 *   16-23 epoch (u64: the sender's start time in ms; a restarted sender has a larger one)
 *   24-31 sequence (u64, from 1, per epoch)
 *   32-.. payload (for DATA: u64 sight time, then one kernel IPVS sync v1 message, see codec.ts)
 *   last 32 bytes: HMAC-SHA256(key, everything before it)
 *
 * The kernel's own sync protocol has no authentication at all: anyone on the segment can install
 * connection entries steering clients to a real server of their choosing. Frames are checked
 * (length, magic, key, MAC in constant time) before anything else reads them, then the replay guard
 * (epoch + sliding sequence window, as IPsec's anti-replay window, RFC 4303 §3.4.3) drops duplicates
 * and stale epochs. Two keys are accepted at once so a key can be rotated one director at a time;
 * frames are sent with the first.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { SyncKey } from '../config/keys.js';

export const FRAME_MAGIC = 0x4c565359; // "LVSY"
/**
 * 2: DATA carries the sight time (version 1 had the bare v1 message). 3: a full-resync answer is
 * sent as numbered RESYNC_DATA frames and its missing frames are asked for (RESYNC_MISSING); a
 * version-2 peer would not understand either, so its frames are refused (malformed) rather than
 * half-understood. 4: lost DATA frames are named (DATA_MISSING) and a burst of DATA frames ends
 * with DATA_TAIL; a version-3 peer would count both as malformed, so the version says it. 5: a
 * DATA_MISSING names whose sequence numbers it means (node and epoch, resend.ts SeqOwner); a
 * version-4 peer would read the owner as ranges. A frame of another version is dropped as `version`
 * (not `malformed`), so a pair running two releases shows why its sync stopped.
 */
export const FRAME_VERSION = 5;
export const FRAME_HEADER_LEN = 32;
export const MAC_LEN = 32;
export const FRAME_OVERHEAD = FRAME_HEADER_LEN + MAC_LEN;
/** The sight time in front of a DATA frame's sync message. */
export const DATA_STAMP_LEN = 8;

export enum FrameType {
  /**
   * Connection records: payload is a u64 sight time (ms since the Unix epoch on the sender's wall
   * clock: when the active director read the table that first showed these records' current state;
   * 0 in a full resync, whose records are not fresh sightings) followed by a kernel sync v1 message.
   * The receiver derives the staleness histogram from it (engine.ts).
   */
  DATA = 1,
  /** A peer (re)joined and asks for the whole table. Payload empty. */
  RESYNC_REQUEST = 2,
  /**
   * The last frame of a full-resync answer was sent (again, after a resend): payload u32 resync
   * id, u32 record count, u32 frame count (RESYNC_DATA indices 0..count-1).
   */
  RESYNC_END = 3,
  /** The peer holds every frame of a resync: payload u32 resync id. */
  RESYNC_ACK = 4,
  /**
   * Flow control of DATA frames (a full resync's and a poll's alike): payload u64, the sequence of
   * the last DATA frame the sender of this report read from its socket, and u32, the DATA frames its
   * UDP socket can hold (its window). Sent every 8 DATA frames read. The sender keeps at most a
   * window of unreported DATA frames in flight, so a large table (a resync, or the first read after
   * becoming active) does not overflow the receiver's socket.
   */
  RESYNC_PROGRESS = 5,
  /**
   * The active director received a RESYNC_REQUEST and prepares its answer (payload empty): sent at
   * once, so the asker knows an answer is coming even when preparing it (a table worker busy with
   * a large read) takes longer than its resync_timeout of silence.
   */
  RESYNC_BEGIN = 6,
  /**
   * One frame of a full-resync answer: payload u32 resync id, u32 frame index (from 0), then a
   * kernel sync v1 message. Paced like DATA (RESYNC_PROGRESS counts both). A resend of a frame is a
   * new frame (new sequence number, new MAC) with the same id and index (resend.ts says why).
   */
  RESYNC_DATA = 7,
  /**
   * The asker lacks frames of a resync answer: payload u32 resync id, u16 n, n × (u32 first,
   * u32 last) inclusive index ranges, last = 0xffffffff for "to the end" (resend.ts). Sent when
   * RESYNC_END shows gaps, or when the answer stops arriving. The sender resends those frames,
   * then RESYNC_END again; if it no longer holds that answer it sends a whole new one.
   */
  RESYNC_MISSING = 8,
  /**
   * The receiver saw a gap in the sender's sequence numbers (wire.ts ReplayGuard: frames lost on
   * the way or by its full socket): payload u16 n, n × (u64 first, u64 last) inclusive ranges of
   * the missing sequence numbers, whatever their type (the receiver cannot tell). The sender looks
   * them up among its recent DATA frames and has its table worker send those frames' connections
   * again with its next read, in their current state (not the old payload: resend.ts says why).
   * A gap is named in every DATA_MISSING for 1.5 s (at 20 ms, 0.5 s and 1.5 s at least), in case
   * one is lost; the sender acts on each number once.
   */
  DATA_MISSING = 9,
  /**
   * Payload empty. Sent once a burst of DATA frames has gone quiet (0.2–0.4 s without another
   * frame) and again a second later, each unless other frames were sent after the burst anyway:
   * its sequence number shows the receiver the burst's last number, so a lost last DATA frame is a
   * gap too (named in DATA_MISSING) and not only seen at the sender's next frame.
   */
  DATA_TAIL = 10,
}

export interface Frame {
  readonly type: FrameType;
  readonly node: number;
  readonly epoch: bigint;
  readonly seq: bigint;
  readonly keyId: number;
  readonly payload: Buffer;
}

/** lost: frames missing from a sender's sequence (dropped on the way or by this socket's full buffer), counted at the next one that arrives. */
export type DropReason = 'malformed' | 'version' | 'unknown_key' | 'bad_mac' | 'replay' | 'stale_epoch' | 'own' | 'lost';

export type OpenResult = { ok: true; frame: Frame } | { ok: false; reason: DropReason };

function mac(key: SyncKey, data: Uint8Array): Buffer {
  return createHmac('sha256', key.secret).update(data).digest();
}

/** Builds a frame signed with `key`. */
export function sealFrame(key: SyncKey, f: Omit<Frame, 'keyId'>): Buffer {
  const b = Buffer.alloc(FRAME_HEADER_LEN + f.payload.length + MAC_LEN);
  b.writeUInt32BE(FRAME_MAGIC, 0);
  b[4] = FRAME_VERSION;
  b[5] = f.type;
  b.writeUInt32BE(f.node >>> 0, 8);
  b.writeUInt32BE(key.id, 12);
  b.writeBigUInt64BE(f.epoch, 16);
  b.writeBigUInt64BE(f.seq, 24);
  f.payload.copy(b, FRAME_HEADER_LEN);
  const end = FRAME_HEADER_LEN + f.payload.length;
  mac(key, b.subarray(0, end)).copy(b, end);
  return b;
}

/** Authenticates a datagram. Never throws. */
export function openFrame(keys: readonly SyncKey[], b: Buffer): OpenResult {
  if (b.length < FRAME_OVERHEAD || b.readUInt32BE(0) !== FRAME_MAGIC || b.readUInt16BE(6) !== 0) return { ok: false, reason: 'malformed' };
  if (b[4] !== FRAME_VERSION) return { ok: false, reason: 'version' };
  const type = b[5]!;
  if (!(type in FrameType)) return { ok: false, reason: 'malformed' };
  const keyId = b.readUInt32BE(12);
  const key = keys.find((k) => k.id === keyId);
  if (!key) return { ok: false, reason: 'unknown_key' };
  const end = b.length - MAC_LEN;
  if (!timingSafeEqual(mac(key, b.subarray(0, end)), b.subarray(end))) return { ok: false, reason: 'bad_mac' };
  return {
    ok: true,
    frame: { type, node: b.readUInt32BE(8), keyId, epoch: b.readBigUInt64BE(16), seq: b.readBigUInt64BE(24), payload: b.subarray(FRAME_HEADER_LEN, end) },
  };
}

/** Window of sequence numbers remembered below the highest seen (RFC 4303 uses ≥ 32; datagrams reorder little on one segment). */
export const REPLAY_WINDOW = 1024;

const FRESH: Verdict = { verdict: 'fresh' };
const REPLAY: Verdict = { verdict: 'replay' };
const STALE_EPOCH: Verdict = { verdict: 'stale_epoch' };

interface PeerWindow {
  epoch: bigint;
  highest: bigint;
  seen: Set<bigint>;
}

/** Inclusive range of a sender's sequence numbers. */
export interface SeqRange {
  readonly first: bigint;
  readonly last: bigint;
}

/**
 * The replay guard's answer for one frame: fresh (to be handled) or why not. A fresh frame that
 * skips sequence numbers of the sender's current epoch names them (`lost`): frames missing between
 * the highest accepted so far and this one (lost, or reordered: on one segment almost always lost).
 */
export type Verdict = { readonly verdict: 'fresh'; readonly lost?: SeqRange } | { readonly verdict: 'replay' | 'stale_epoch' };

/**
 * Anti-replay state per sender node. A frame is fresh when its epoch is the sender's current one and
 * its sequence is new within the window, or when its epoch is newer (the sender restarted: the window
 * starts over). Older epochs and sequences below the window are stale.
 */
export class ReplayGuard {
  private readonly peers = new Map<number, PeerWindow>();

  /**
   * Checks and records (only when fresh), in one call: the verdict and the gap the frame reveals.
   * `data`: the frame is a DATA or DATA_TAIL frame, whose predecessors in a run the receiver is
   * owed (below).
   */
  accept(node: number, epoch: bigint, seq: bigint, data = false): Verdict {
    const p = this.peers.get(node);
    if (!p || epoch > p.epoch) {
      this.peers.set(node, { epoch, highest: seq, seen: new Set([seq]) });
      // Every run numbers its frames from 1: a DATA frame that is the first heard of its run,
      // numbered above 1, shows the frames before it were lost: a sender that became active while
      // this receiver had not heard from it (its start-up resync went unanswered) lost its first
      // DATA frames, or a restarted sender did. Named only while few enough for the sender to
      // hold them still (REPLAY_WINDOW, as many as its ring of DATA frames): a receiver that first
      // hears a sender later than that joined a running one. Not after another first frame (a
      // resync answer's): the answer holds the table, and frames sent before this receiver
      // listened were not lost on the way.
      return data && seq > 1n && seq <= BigInt(REPLAY_WINDOW) + 1n ? { verdict: 'fresh', lost: { first: 1n, last: seq - 1n } } : FRESH;
    }
    if (epoch < p.epoch) return STALE_EPOCH;
    if (seq + BigInt(REPLAY_WINDOW) <= p.highest) return REPLAY;
    if (p.seen.has(seq)) return REPLAY;
    p.seen.add(seq);
    if (seq <= p.highest) return FRESH;
    const lost = seq > p.highest + 1n ? { first: p.highest + 1n, last: seq - 1n } : undefined;
    p.highest = seq;
    const floor = seq - BigInt(REPLAY_WINDOW);
    if (p.seen.size > 2 * REPLAY_WINDOW) for (const s of p.seen) if (s <= floor) p.seen.delete(s);
    return lost ? { verdict: 'fresh', lost } : FRESH;
  }

  /** The epoch last accepted from a node (a new one means the peer restarted). */
  epochOf(node: number): bigint | undefined {
    return this.peers.get(node)?.epoch;
  }
}

/** A node id from the director's router_id (stable across restarts, distinct for distinct names). */
export function nodeIdOf(routerId: string): number {
  return createHash('sha256').update(routerId).digest().readUInt32BE(0);
}
