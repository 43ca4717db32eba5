/**
 * The connections known from the peer (pure): every record the peer sent, the latest per
 * connection, until its timeout (show.ts timeoutSeconds). What reads it: the gauge
 * lvsd_sync_peer_connections (how many) and `lvsd sync show` (each one, decoded when shown).
 *
 * Kept as the messages they arrived in (the bytes handed to the kernel) plus, per connection, three
 * numbers in typed arrays (which message, the record's offset in it, its expiry), found by an
 * open-addressing hash of the record's identity bytes (codec.ts recordKey's fields: protocol, the
 * template flag, cport, vport, caddr, vaddr). No string key, no object and no Map entry per record:
 * a 100,000-record resync was 100,000 of each on the receiver, and their inserts and garbage
 * collection its largest cost (Map.set alone 40 % of its hand-over's time, bench/sync-resync-host.ts
 * profile 2026-12-05 10:27; in the lab guest the receiver was the largest CPU user of the resync,
 * bench/results/sync.md 08:44).
 */
import { recordFlags, recordProtocol, recordState, recordTimeout, sameRecordConn, recordConnHash } from './codec.js';
import { timeoutSeconds } from './show.js';

const INITIAL = 1024;

export class PeerTable {
  /** Messages by slot; a slot no live entry points to any more is undefined (its bytes freed). */
  private msgs: Array<Uint8Array | undefined> = [];
  /** Live entries per message slot. */
  private msgLive: number[] = [];
  /** Entries 0..count-1: message slot, record offset, expiry (ms, the caller's clock). */
  private eMsg = new Int32Array(INITIAL);
  private eOff = new Int32Array(INITIAL);
  private eUntil = new Float64Array(INITIAL);
  private count = 0;
  /** Hash slots: entry index + 1, 0 empty; a power of two, at least twice the entries' capacity. */
  private slots = new Int32Array(2 * INITIAL);

  /** Connections held (expired ones count until the next expire()). */
  get size(): number {
    return this.count;
  }

  /**
   * Keeps the records of `msg` at these offsets (records of an accepted message: codec
   * messageRecords' spans, every other one a start), each replacing the connection's earlier record.
   */
  add(msg: Uint8Array, spans: readonly number[], now: number): void {
    if (!spans.length) return;
    const slot = this.msgs.length;
    this.msgs.push(msg);
    this.msgLive.push(0);
    for (let i = 0; i < spans.length; i += 2) {
      const p = spans[i]!;
      const until = now + timeoutSeconds(recordTimeout(msg, p), recordFlags(msg, p), recordProtocol(msg, p), recordState(msg, p)) * 1000;
      const mask = this.slots.length - 1;
      let h = recordConnHash(msg, p) & mask;
      let e: number;
      while ((e = this.slots[h]! - 1) >= 0 && !sameRecordConn(this.msgs[this.eMsg[e]!]!, this.eOff[e]!, msg, p)) h = (h + 1) & mask;
      if (e >= 0) {
        const old = this.eMsg[e]!;
        if (old === slot) this.msgLive[slot]!--; // a message repeating one connection: its last copy stands
        else this.release(old);
      } else {
        e = this.count++;
        if (e === this.eMsg.length) {
          this.grow();
          this.rehash(e);
          this.insertSlot(e, recordConnHash(msg, p));
        } else this.slots[h] = e + 1; // the free slot the probe ended at
      }
      this.eMsg[e] = slot;
      this.eOff[e] = p;
      this.eUntil[e] = until;
      this.msgLive[slot]!++;
    }
  }

  /** Drops the records whose timeout passed (a pass over all: call it at most every second or so). */
  expire(now: number): void {
    let live = 0;
    for (let e = 0; e < this.count; e++) {
      if (this.eUntil[e]! < now) {
        this.release(this.eMsg[e]!);
        continue;
      }
      this.eMsg[live] = this.eMsg[e]!;
      this.eOff[live] = this.eOff[e]!;
      this.eUntil[live] = this.eUntil[e]!;
      live++;
    }
    const dropped = live < this.count;
    this.count = live;
    // Message slots: renumbered without the freed ones once they are most of them.
    const free = this.msgs.length - this.msgs.reduce((n, m) => n + (m ? 1 : 0), 0);
    if (free > 64 && free * 2 > this.msgs.length) {
      const to = new Int32Array(this.msgs.length);
      const msgs: Array<Uint8Array | undefined> = [];
      const msgLive: number[] = [];
      this.msgs.forEach((m, i) => {
        if (!m) return;
        to[i] = msgs.length;
        msgs.push(m);
        msgLive.push(this.msgLive[i]!);
      });
      for (let e = 0; e < this.count; e++) this.eMsg[e] = to[this.eMsg[e]!]!;
      this.msgs = msgs;
      this.msgLive = msgLive;
    }
    if (dropped) this.rehash();
  }

  /** Every connection held: its message, the record's offset there, its expiry. */
  *entries(): Generator<{ msg: Uint8Array; off: number; until: number }> {
    for (let e = 0; e < this.count; e++) yield { msg: this.msgs[this.eMsg[e]!]!, off: this.eOff[e]!, until: this.eUntil[e]! };
  }

  private release(slot: number): void {
    if (--this.msgLive[slot]! === 0) this.msgs[slot] = undefined;
  }

  private grow(): void {
    const n = this.eMsg.length * 2;
    const m = new Int32Array(n);
    m.set(this.eMsg);
    const o = new Int32Array(n);
    o.set(this.eOff);
    const u = new Float64Array(n);
    u.set(this.eUntil);
    this.eMsg = m;
    this.eOff = o;
    this.eUntil = u;
  }

  private insertSlot(e: number, hash: number): void {
    const mask = this.slots.length - 1;
    let h = hash & mask;
    while (this.slots[h] !== 0) h = (h + 1) & mask;
    this.slots[h] = e + 1;
  }

  /** The hash slots again, for the entries 0..n-1 (after a growth or a removal). */
  private rehash(n = this.count): void {
    const size = 2 * this.eMsg.length;
    if (this.slots.length !== size) this.slots = new Int32Array(size);
    else this.slots.fill(0);
    for (let e = 0; e < n; e++) this.insertSlot(e, recordConnHash(this.msgs[this.eMsg[e]!]!, this.eOff[e]!));
  }
}
