/**
 * The conntrack table as data: struct-of-arrays indexed by slot, sized once
 * from nf_conntrack_max (capacity) and nf_conntrack_buckets (index), with a
 * free-slot stack, chained hash buckets and per-timeout FIFO expiry lists.
 * Policy (what to look up, when to expire, events) lives in tracker.ts.
 *
 * Per slot, for an IPv4 entry: proto u8, flags u8, zone u16, saddr/daddr
 * u32, sport/dport u16, status u16, expiry u32, chain link i32, expiry-list
 * links 2 × i32 + class u8, free-stack cell i32 — 43 bytes, plus one i32
 * bucket head per bucket. IPv6 addresses keep word 0 inline and words 1–3
 * in a side store allocated with the first IPv6 entry; a NAT reply tuple
 * (≠ the inverted original) lives in a side store allocated with the first
 * NAT entry and gets its own chain node, as the kernel's tuplehash[REPLY].
 *
 * Index: the kernel links every entry twice (original and reply tuple); here
 * one node per entry answers both directions because its hash is symmetric
 * (tuple.ts). Node ids: `slot` is an entry's original node, `capacity + slot`
 * its NAT reply node.
 *
 * Expiry: the kernel keeps an absolute jiffies deadline per entry and finds
 * expired ones by scanning (gc_worker). Here each distinct timeout value has
 * a FIFO list; a refresh moves the entry to the tail of the list of its new
 * timeout, so with a non-decreasing clock every list is sorted by deadline
 * and the earliest deadline overall is at one of the list heads: O(1) per
 * refresh, O(classes) per expiry, never a scan of the table.
 */
import { jdiff } from "./jiffies.js";
import { TupleScratch } from "./tuple.js";

/** flags bit: the entry is IPv6. */
export const FLAG_V6 = 1;
/** flags bit: the entry has a NAT reply tuple in the side store. */
export const FLAG_NAT = 2;

/** elClass value of an entry in no expiry list (unconfirmed or free). */
export const NO_CLASS = 255;
/** Class shared by timeouts beyond the first OVERFLOW_CLASS distinct ones; kept sorted by insertion. */
const OVERFLOW_CLASS = 254;

/** The NAT reply tuples (nf_conntrack_alter_reply), one per slot, allocated on first use. */
export class NatReplyStore {
  readonly saddr: Uint32Array;
  readonly daddr: Uint32Array;
  readonly sport: Uint16Array;
  readonly dport: Uint16Array;
  /** Words 1–3 of the source and destination addresses, for IPv6 entries. */
  readonly v6: Uint32Array;
  /** Chain links of the reply nodes. */
  readonly chain: Int32Array;

  constructor(capacity: number) {
    this.saddr = new Uint32Array(capacity);
    this.daddr = new Uint32Array(capacity);
    this.sport = new Uint16Array(capacity);
    this.dport = new Uint16Array(capacity);
    this.v6 = new Uint32Array(capacity * 6);
    this.chain = new Int32Array(capacity).fill(-1);
  }

  get bytes(): number {
    return (
      this.saddr.byteLength +
      this.daddr.byteLength +
      this.sport.byteLength +
      this.dport.byteLength +
      this.v6.byteLength +
      this.chain.byteLength
    );
  }
}

/** Storage of the conntrack table. All arrays are allocated once (side stores on first need). */
export class Table {
  readonly capacity: number;
  readonly buckets: number;
  readonly seed: number;

  // ---- tuple (ORIGINAL direction) ----
  readonly proto: Uint8Array;
  readonly flags: Uint8Array;
  readonly zone: Uint16Array;
  readonly saddr: Uint32Array;
  readonly daddr: Uint32Array;
  readonly sport: Uint16Array;
  readonly dport: Uint16Array;
  /** Words 1–3 of source and destination of IPv6 entries (6 per slot); null until the first one. */
  v6: Uint32Array | null = null;
  /** NAT reply tuples; null until the first NAT entry. */
  nat: NatReplyStore | null = null;

  // ---- state ----
  readonly status: Uint16Array;
  /** Absolute u32 jiffies deadline of confirmed entries; relative timeout while unconfirmed. */
  readonly expiry: Uint32Array;

  // ---- hash index ----
  readonly heads: Int32Array;
  readonly chain: Int32Array;

  // ---- expiry lists ----
  readonly elPrev: Int32Array;
  readonly elNext: Int32Array;
  readonly elClass: Uint8Array;
  private readonly classHead = new Int32Array(256).fill(-1);
  private readonly classTail = new Int32Array(256).fill(-1);
  private readonly classCount = new Int32Array(256);
  /** Timeout in jiffies of each class (for the GC's average). */
  private readonly classTimeout = new Uint32Array(256);
  /** Sum over the class of its deadlines as unwrapped jiffies (for the GC's average). */
  private readonly classSum = new Float64Array(256);
  private readonly classOf = new Map<number, number>();
  private classesUsed = 0;
  /**
   * Direct-mapped cache of `classOf` (timeout → class), 256 cells: a TCP
   * entry whose data is ACKed packet by packet alternates between two
   * timeouts (ESTABLISHED, UNACKNOWLEDGED), and a Map lookup per refresh
   * measured ~15 ns of a ~60 ns list move.
   */
  private readonly cacheTimeout = new Int32Array(256).fill(-1);
  private readonly cacheClass = new Uint8Array(256);

  // ---- free slots ----
  private readonly freeStack: Int32Array;
  private freeTop: number;

  private readonly scratch = new TupleScratch();

  constructor(capacity: number, buckets: number, seed: number) {
    this.capacity = capacity;
    this.buckets = buckets;
    this.seed = seed | 0;
    this.proto = new Uint8Array(capacity);
    this.flags = new Uint8Array(capacity);
    this.zone = new Uint16Array(capacity);
    this.saddr = new Uint32Array(capacity);
    this.daddr = new Uint32Array(capacity);
    this.sport = new Uint16Array(capacity);
    this.dport = new Uint16Array(capacity);
    this.status = new Uint16Array(capacity);
    this.expiry = new Uint32Array(capacity);
    this.heads = new Int32Array(buckets).fill(-1);
    this.chain = new Int32Array(capacity).fill(-1);
    this.elPrev = new Int32Array(capacity).fill(-1);
    this.elNext = new Int32Array(capacity).fill(-1);
    this.elClass = new Uint8Array(capacity).fill(NO_CLASS);
    this.freeStack = new Int32Array(capacity);
    // Slot 0 is handed out first.
    for (let i = 0; i < capacity; i++) this.freeStack[i] = capacity - 1 - i;
    this.freeTop = capacity;
  }

  /** Entries allocated (confirmed or not). */
  get used(): number {
    return this.capacity - this.freeTop;
  }

  /** Free slots left. */
  get free(): number {
    return this.freeTop;
  }

  /** Bytes held by every typed array of the table, side stores included. */
  get bytes(): number {
    let n =
      this.proto.byteLength +
      this.flags.byteLength +
      this.zone.byteLength +
      this.saddr.byteLength +
      this.daddr.byteLength +
      this.sport.byteLength +
      this.dport.byteLength +
      this.status.byteLength +
      this.expiry.byteLength +
      this.heads.byteLength +
      this.chain.byteLength +
      this.elPrev.byteLength +
      this.elNext.byteLength +
      this.elClass.byteLength +
      this.freeStack.byteLength +
      this.classHead.byteLength +
      this.classTail.byteLength +
      this.classCount.byteLength +
      this.classTimeout.byteLength +
      this.classSum.byteLength;
    if (this.v6 !== null) n += this.v6.byteLength;
    if (this.nat !== null) n += this.nat.bytes;
    return n;
  }

  /** The free-slot stack's cells below its top, for invariant checks (allocates). */
  freeSlots(): number[] {
    return Array.from(this.freeStack.subarray(0, this.freeTop));
  }

  // ---- slots ------------------------------------------------------------------------

  /** Takes a free slot, or returns -1. */
  alloc(): number {
    if (this.freeTop === 0) return -1;
    const slot = this.freeStack[--this.freeTop] as number;
    this.status[slot] = 0;
    this.expiry[slot] = 0;
    this.flags[slot] = 0;
    return slot;
  }

  /** Returns a slot that is in no chain and no expiry list to the free stack. */
  release(slot: number): void {
    this.status[slot] = 0;
    this.flags[slot] = 0;
    this.elClass[slot] = NO_CLASS;
    this.freeStack[this.freeTop++] = slot;
  }

  /** Stores the ORIGINAL tuple of a slot. */
  setTuple(slot: number, t: TupleScratch): void {
    this.proto[slot] = t.proto;
    this.zone[slot] = t.zone;
    this.saddr[slot] = t.s0;
    this.daddr[slot] = t.d0;
    this.sport[slot] = t.sport;
    this.dport[slot] = t.dport;
    if (t.family === 6) {
      let v6 = this.v6;
      if (v6 === null) v6 = this.v6 = new Uint32Array(this.capacity * 6);
      const o = slot * 6;
      v6[o] = t.s1;
      v6[o + 1] = t.s2;
      v6[o + 2] = t.s3;
      v6[o + 3] = t.d1;
      v6[o + 4] = t.d2;
      v6[o + 5] = t.d3;
      this.flags[slot] = (this.flags[slot] as number) | FLAG_V6;
    } else {
      this.flags[slot] = (this.flags[slot] as number) & ~FLAG_V6;
    }
  }

  /** Stores a NAT reply tuple for a slot (not yet in the index). */
  setNatReply(slot: number, t: TupleScratch): void {
    let nat = this.nat;
    if (nat === null) nat = this.nat = new NatReplyStore(this.capacity);
    nat.saddr[slot] = t.s0;
    nat.daddr[slot] = t.d0;
    nat.sport[slot] = t.sport;
    nat.dport[slot] = t.dport;
    const o = slot * 6;
    nat.v6[o] = t.s1;
    nat.v6[o + 1] = t.s2;
    nat.v6[o + 2] = t.s3;
    nat.v6[o + 3] = t.d1;
    nat.v6[o + 4] = t.d2;
    nat.v6[o + 5] = t.d3;
    this.flags[slot] = (this.flags[slot] as number) | FLAG_NAT;
  }

  /** Loads a slot's ORIGINAL tuple into `t` (hash included). */
  loadTuple(slot: number, t: TupleScratch): void {
    if ((this.flags[slot] as number) & FLAG_V6) {
      const v6 = this.v6 as Uint32Array;
      const o = slot * 6;
      t.setWords(
        6,
        this.proto[slot] as number,
        this.zone[slot] as number,
        this.saddr[slot] as number,
        v6[o] as number,
        v6[o + 1] as number,
        v6[o + 2] as number,
        this.daddr[slot] as number,
        v6[o + 3] as number,
        v6[o + 4] as number,
        v6[o + 5] as number,
        this.sport[slot] as number,
        this.dport[slot] as number,
      );
    } else {
      t.setWords(
        4,
        this.proto[slot] as number,
        this.zone[slot] as number,
        this.saddr[slot] as number,
        0,
        0,
        0,
        this.daddr[slot] as number,
        0,
        0,
        0,
        this.sport[slot] as number,
        this.dport[slot] as number,
      );
    }
    t.computeHash(this.seed);
  }

  /** Loads a slot's NAT reply tuple into `t` (hash included). Only for FLAG_NAT slots. */
  loadNatReply(slot: number, t: TupleScratch): void {
    const nat = this.nat as NatReplyStore;
    const o = slot * 6;
    const v = nat.v6;
    t.setWords(
      (this.flags[slot] as number) & FLAG_V6 ? 6 : 4,
      this.proto[slot] as number,
      this.zone[slot] as number,
      nat.saddr[slot] as number,
      v[o] as number,
      v[o + 1] as number,
      v[o + 2] as number,
      nat.daddr[slot] as number,
      v[o + 3] as number,
      v[o + 4] as number,
      v[o + 5] as number,
      nat.sport[slot] as number,
      nat.dport[slot] as number,
    );
    t.computeHash(this.seed);
  }

  // ---- index ------------------------------------------------------------------------

  /**
   * Bucket of a hash (the kernel's reciprocal_scale, here a remainder):
   * `hash % buckets`, computed as hash − ⌊hash / buckets⌋ · buckets because a
   * u32 hash above 2^31 is a double in V8 and `%` on doubles calls fmod
   * (measured: 12–18 ns against 4–7 ns; the profile put 30 % of lookup() on it). The
   * quotient of two integers below 2^32 rounds at most up across an integer,
   * never down, so one correction makes the result exact.
   */
  bucketOf(hash: number): number {
    const n = this.buckets;
    const b = hash - Math.floor(hash / n) * n;
    return b < 0 ? b + n : b;
  }

  /** Number of index nodes in a bucket's chain. */
  chainLength(bucket: number): number {
    let n = 0;
    for (let node = this.heads[bucket] as number; node >= 0; node = this.nextNode(node)) n++;
    return n;
  }

  /** The node after `node` in its chain, or -1. */
  nextNode(node: number): number {
    return node < this.capacity
      ? (this.chain[node] as number)
      : ((this.nat as NatReplyStore).chain[node - this.capacity] as number);
  }

  /** Links a slot's nodes at the head of their buckets (hlist_nulls_add_head_rcu), as confirmation does. */
  link(slot: number): void {
    const t = this.scratch;
    this.loadTuple(slot, t);
    const b = this.bucketOf(t.hash);
    this.chain[slot] = this.heads[b] as number;
    this.heads[b] = slot;
    if ((this.flags[slot] as number) & FLAG_NAT) {
      this.loadNatReply(slot, t);
      const rb = this.bucketOf(t.hash);
      const nat = this.nat as NatReplyStore;
      nat.chain[slot] = this.heads[rb] as number;
      this.heads[rb] = this.capacity + slot;
    }
  }

  /** Removes a slot's nodes from the index. */
  unlink(slot: number): void {
    const t = this.scratch;
    this.loadTuple(slot, t);
    this.unlinkNode(slot, this.bucketOf(t.hash));
    if ((this.flags[slot] as number) & FLAG_NAT) {
      this.loadNatReply(slot, t);
      this.unlinkNode(this.capacity + slot, this.bucketOf(t.hash));
    }
  }

  private unlinkNode(node: number, bucket: number): void {
    let prev = -1;
    let cur = this.heads[bucket] as number;
    while (cur >= 0 && cur !== node) {
      prev = cur;
      cur = this.nextNode(cur);
    }
    if (cur < 0) throw new Error(`Index corrupt: node ${node} missing from bucket ${bucket}`);
    const after = this.nextNode(node);
    if (prev < 0) this.heads[bucket] = after;
    else if (prev < this.capacity) this.chain[prev] = after;
    else (this.nat as NatReplyStore).chain[prev - this.capacity] = after;
    if (node < this.capacity) this.chain[node] = -1;
    else (this.nat as NatReplyStore).chain[node - this.capacity] = -1;
  }

  // ---- expiry lists -----------------------------------------------------------------

  /**
   * Puts a confirmed slot, whose `expiry` holds its absolute deadline, on the
   * list of timeout `timeoutJ` (jiffies). `nowJ` is the current u32 jiffies and
   * `nowJx` the same instant unwrapped (a float that never wraps).
   */
  enqueue(slot: number, timeoutJ: number, nowJ: number, nowJx: number): void {
    const cls = this.classFor(timeoutJ);
    const e = this.expiry[slot] as number;
    const tail = this.classTail[cls] as number;
    this.elClass[slot] = cls;
    this.classCount[cls] = (this.classCount[cls] as number) + 1;
    this.classSum[cls] = (this.classSum[cls] as number) + nowJx + jdiff(e, nowJ);
    this.append(slot, cls, tail, e);
  }

  /** The expiry class of a timeout, created on first use (OVERFLOW_CLASS once all are taken). */
  private classFor(timeoutJ: number): number {
    const cell = (timeoutJ ^ (timeoutJ >>> 8) ^ (timeoutJ >>> 16)) & 255;
    if (this.cacheTimeout[cell] === timeoutJ) return this.cacheClass[cell] as number;
    let c = this.classOf.get(timeoutJ);
    if (c === undefined) {
      if (this.classesUsed < OVERFLOW_CLASS) {
        c = this.classesUsed++;
        this.classTimeout[c] = timeoutJ;
        this.classOf.set(timeoutJ, c);
      } else {
        c = OVERFLOW_CLASS;
      }
    }
    this.cacheTimeout[cell] = timeoutJ;
    this.cacheClass[cell] = c;
    return c;
  }

  /** Links `slot` (deadline `e`) into the list of `cls`, whose tail is `tail`, keeping it sorted. */
  private append(slot: number, cls: number, tail: number, e: number): void {
    if (tail < 0 || jdiff(this.expiry[tail] as number, e) <= 0) {
      // The usual case: a deadline no earlier than the tail's.
      this.elPrev[slot] = tail;
      this.elNext[slot] = -1;
      if (tail < 0) this.classHead[cls] = slot;
      else this.elNext[tail] = slot;
      this.classTail[cls] = slot;
      return;
    }
    // Overflow class (mixed timeouts): walk back to keep the list sorted.
    let after = tail;
    while (after >= 0 && jdiff(this.expiry[after] as number, e) > 0) after = this.elPrev[after] as number;
    const before = after < 0 ? (this.classHead[cls] as number) : (this.elNext[after] as number);
    this.elPrev[slot] = after;
    this.elNext[slot] = before;
    if (after < 0) this.classHead[cls] = slot;
    else this.elNext[after] = slot;
    this.elPrev[before] = slot;
  }

  /**
   * `dequeue`, the new deadline `e`, then `enqueue` on the list of `timeoutJ`,
   * in one step for a listed slot (a refresh): the same lists and counters
   * and the same floating-point operations on classSum in the same order,
   * without the intermediate unlinked state. A slot already last on the list
   * it stays on only has its deadline changed.
   */
  requeue(slot: number, e: number, timeoutJ: number, nowJ: number, nowJx: number): void {
    const old = this.elClass[slot] as number;
    const cls = this.classFor(timeoutJ);
    const expiry = this.expiry;
    const elPrev = this.elPrev;
    const elNext = this.elNext;
    this.classSum[old] = (this.classSum[old] as number) - (nowJx + jdiff(expiry[slot] as number, nowJ));
    expiry[slot] = e;
    this.classSum[cls] = (this.classSum[cls] as number) + nowJx + jdiff(e, nowJ);
    const p = elPrev[slot] as number;
    const n = elNext[slot] as number;
    // Same (single-timeout) class: e is no earlier than the old deadline, so a tail stays the tail.
    if (n < 0 && old === cls && cls !== OVERFLOW_CLASS) return;
    if (p < 0) this.classHead[old] = n;
    else elNext[p] = n;
    if (n < 0) this.classTail[old] = p;
    else elPrev[n] = p;
    if (old !== cls) {
      this.classCount[old] = (this.classCount[old] as number) - 1;
      this.classCount[cls] = (this.classCount[cls] as number) + 1;
      this.elClass[slot] = cls;
    }
    this.append(slot, cls, this.classTail[cls] as number, e);
  }

  /** Takes a slot off its expiry list (no-op when it is on none). */
  dequeue(slot: number, nowJ: number, nowJx: number): void {
    const cls = this.elClass[slot] as number;
    if (cls === NO_CLASS) return;
    const p = this.elPrev[slot] as number;
    const n = this.elNext[slot] as number;
    if (p < 0) this.classHead[cls] = n;
    else this.elNext[p] = n;
    if (n < 0) this.classTail[cls] = p;
    else this.elPrev[n] = p;
    this.elPrev[slot] = -1;
    this.elNext[slot] = -1;
    this.elClass[slot] = NO_CLASS;
    this.classCount[cls] = (this.classCount[cls] as number) - 1;
    this.classSum[cls] = (this.classSum[cls] as number) - (nowJx + jdiff(this.expiry[slot] as number, nowJ));
  }

  /**
   * The listed slot with the earliest deadline, or -1 when no entry is
   * listed. Looks at one head per timeout class.
   */
  earliest(nowJ: number): number {
    let best = -1;
    let bestDiff = 0;
    const n = this.classesUsed;
    for (let c = 0; c < n; c++) {
      const h = this.classHead[c] as number;
      if (h < 0) continue;
      const d = jdiff(this.expiry[h] as number, nowJ);
      if (best < 0 || d < bestDiff) {
        best = h;
        bestDiff = d;
      }
    }
    const h = this.classHead[OVERFLOW_CLASS] as number;
    if (h >= 0) {
      const d = jdiff(this.expiry[h] as number, nowJ);
      if (best < 0 || d < bestDiff) best = h;
    }
    return best;
  }

  /**
   * gc_worker's running average of clamp(remaining, min, clamp) over listed
   * entries, seeded with `initial` weighted as `initialCount` entries. Classes
   * whose timeout is at least `clampJ` count every entry at `clampJ`; others
   * contribute their exact remaining time (the lower clamp is not applied).
   */
  averageRemaining(nowJx: number, initial: number, initialCount: number, clampJ: number): number {
    let sum = initial * initialCount;
    let n = initialCount;
    for (let c = 0; c < this.classesUsed; c++) sum += this.classContribution(c, nowJx, clampJ, false);
    sum += this.classContribution(OVERFLOW_CLASS, nowJx, clampJ, true);
    for (let c = 0; c < this.classesUsed; c++) n += this.classCount[c] as number;
    n += this.classCount[OVERFLOW_CLASS] as number;
    return sum / n;
  }

  private classContribution(c: number, nowJx: number, clampJ: number, mixed: boolean): number {
    const k = this.classCount[c] as number;
    if (k === 0) return 0;
    if (!mixed && (this.classTimeout[c] as number) >= clampJ) return k * clampJ;
    return Math.min((this.classSum[c] as number) - k * nowJx, k * clampJ);
  }

  /**
   * Checks the structure (for tests): chain nodes in the bucket of their hash,
   * list links consistent and each list sorted by deadline, free stack disjoint
   * from listed slots. Returns a description of the first defect, or null.
   */
  audit(): string | null {
    const t = new TupleScratch();
    const seen = new Uint8Array(this.capacity);
    for (let b = 0; b < this.buckets; b++) {
      for (let node = this.heads[b] as number; node >= 0; node = this.nextNode(node)) {
        if (node >= this.capacity) {
          this.loadNatReply(node - this.capacity, t);
        } else {
          if (seen[node]) return `slot ${node} linked twice`;
          seen[node] = 1;
          this.loadTuple(node, t);
        }
        if (t.hash % this.buckets !== b) return `node ${node} in bucket ${b}, hash says ${t.hash % this.buckets}`;
      }
    }
    let listed = 0;
    for (let c = 0; c < 256; c++) {
      let prev = -1;
      let n = 0;
      for (let s = this.classHead[c] as number; s >= 0; s = this.elNext[s] as number) {
        if (this.elPrev[s] !== prev) return `list ${c}: bad prev link at slot ${s}`;
        if (this.elClass[s] !== c) return `list ${c}: slot ${s} says class ${this.elClass[s]}`;
        if (!seen[s]) return `list ${c}: slot ${s} is not in the index`;
        if (prev >= 0 && jdiff(this.expiry[s] as number, this.expiry[prev] as number) < 0) return `list ${c}: not sorted at slot ${s}`;
        prev = s;
        n++;
        if (n > this.capacity) return `list ${c}: cycle`;
      }
      if (this.classTail[c] !== prev) return `list ${c}: bad tail`;
      if (this.classCount[c] !== n) return `list ${c}: count ${this.classCount[c]} for ${n} entries`;
      listed += n;
    }
    let indexed = 0;
    for (let s = 0; s < this.capacity; s++) indexed += seen[s] as number;
    if (listed !== indexed) return `${listed} listed but ${indexed} indexed`;
    for (let i = 0; i < this.freeTop; i++) {
      const s = this.freeStack[i] as number;
      if (seen[s] === 2) return `slot ${s} free twice`;
      if (seen[s] === 1) return `free slot ${s} is in the index`;
      seen[s] = 2;
    }
    return null;
  }

  /** Entries on expiry lists (confirmed, not yet expired or reaped). */
  listed(): number {
    let n = this.classCount[OVERFLOW_CLASS] as number;
    for (let c = 0; c < this.classesUsed; c++) n += this.classCount[c] as number;
    return n;
  }
}
