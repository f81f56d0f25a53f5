/**
 * The conntrack table as data: struct-of-arrays indexed by slot, chained hash
 * buckets and per-timeout FIFO expiry lists. Policy (what to look up, when to
 * expire, events) lives in tracker.ts.
 *
 * Growth: only the bucket array is sized up front (nf_conntrack_buckets), as
 * the kernel's hash table is; slots are allocated on demand, as the kernel
 * allocates each nf_conn from its slab. The slot arrays start at
 * INITIAL_SLOTS and double (never beyond nf_conntrack_max) when every slot
 * is taken; a copy keeps every index, so an entry's slot — its identity in
 * events, chain links, expiry lists, NAT and the per-protocol stores — never
 * changes. Free slots form a LIFO list threaded through their (unused) chain
 * links below a high-water mark, which hands out slots in exactly the order
 * a preallocated free stack would.
 *
 * Per slot, for an IPv4 entry: proto u8, flags u8, zone u16, saddr/daddr
 * u32, sport/dport u16, status u16, expiry u32, two chain links i32,
 * expiry-list links 2 × i32 + class u8 — 39 bytes, plus one i32 bucket head
 * per bucket. IPv6 addresses keep word 0 inline and words 1–3 in a side
 * store allocated with the first IPv6 entry; a NAT reply tuple (≠ the
 * inverted original) lives in a side store allocated with the first NAT entry.
 *
 * Index: as in the kernel, every entry is linked twice (tuplehash[ORIGINAL]
 * and tuplehash[REPLY]), each node in the bucket of its own tuple's
 * directional hash (tuple.ts), so chains, early drop's bucket scan and the
 * GC's walk see what the kernel's see. Node ids: `slot` is an entry's
 * original node, `REPLY_NODE + slot` its reply node (a fixed offset, so
 * growth renumbers nothing); a reply node compares against the NAT reply
 * tuple when there is one, else against the inverted original.
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

/** Node id of a slot's NAT reply node: REPLY_NODE + slot. Slots stay below it. */
export const REPLY_NODE = 1 << 30;
/** Most slots a table can have (no limit set, or a limit beyond what node ids can address). */
export const MAX_SLOTS = REPLY_NODE - 1;
/** Slots allocated before the first entry (a few hundred bytes). */
export const INITIAL_SLOTS = 64;

/** elClass value of an entry in no expiry list (unconfirmed or free). */
export const NO_CLASS = 255;
/** Class shared by timeouts beyond the first OVERFLOW_CLASS distinct ones; kept sorted by insertion. */
const OVERFLOW_CLASS = 254;

/** The NAT reply tuples (nf_conntrack_alter_reply), one per slot, allocated on first use. */
export class NatReplyStore {
  saddr: Uint32Array;
  daddr: Uint32Array;
  sport: Uint16Array;
  dport: Uint16Array;
  /** Words 1–3 of the source and destination addresses, for IPv6 entries. */
  v6: Uint32Array;

  constructor(slots: number) {
    this.saddr = new Uint32Array(slots);
    this.daddr = new Uint32Array(slots);
    this.sport = new Uint16Array(slots);
    this.dport = new Uint16Array(slots);
    this.v6 = new Uint32Array(slots * 6);
  }

  /** Copies every array into one of `slots` slots (indices kept). */
  grow(slots: number): void {
    this.saddr = grown(this.saddr, slots, 0);
    this.daddr = grown(this.daddr, slots, 0);
    this.sport = grown(this.sport, slots, 0);
    this.dport = grown(this.dport, slots, 0);
    this.v6 = grown(this.v6, slots * 6, 0);
  }

  get bytes(): number {
    return this.saddr.byteLength + this.daddr.byteLength + this.sport.byteLength + this.dport.byteLength + this.v6.byteLength;
  }
}

type Grown = Uint8Array | Uint16Array | Uint32Array | Int32Array | Float64Array;

/** A copy of `a` with `length` elements, the new ones set to `fill`. */
export function grown<T extends Grown>(a: T, length: number, fill: number): T {
  const b = new (a.constructor as new (n: number) => T)(length);
  b.set(a);
  if (fill !== 0) b.fill(fill, a.length);
  return b;
}

/**
 * Storage of the conntrack table. The bucket array is allocated once; the
 * slot arrays grow with the entries (side stores are allocated on first need
 * and grow with them).
 */
export class Table {
  /** nf_conntrack_max: most entries at once; 0 = no limit. */
  readonly max: number;
  /** Most slots the arrays may grow to: nf_conntrack_max, or MAX_SLOTS without a limit. */
  readonly limit: number;
  readonly buckets: number;
  readonly seed: number;
  /** Slots allocated in every slot array (grows by doubling up to `limit`). */
  size: number;

  // ---- tuple (ORIGINAL direction) ----
  proto: Uint8Array;
  flags: Uint8Array;
  zone: Uint16Array;
  saddr: Uint32Array;
  daddr: Uint32Array;
  sport: Uint16Array;
  dport: Uint16Array;
  /** Words 1–3 of source and destination of IPv6 entries (6 per slot); null until the first one. */
  v6: Uint32Array | null = null;
  /** NAT reply tuples; null until the first NAT entry. */
  nat: NatReplyStore | null = null;

  // ---- state ----
  status: Uint16Array;
  /** Absolute u32 jiffies deadline of confirmed entries; relative timeout while unconfirmed. */
  expiry: Uint32Array;

  // ---- hash index ----
  readonly heads: Int32Array;
  /** Chain link of a slot's original node; for a free slot, the next free slot. */
  chain: Int32Array;
  /** Chain link of a slot's reply node. */
  rchain: Int32Array;

  // ---- expiry lists ----
  elPrev: Int32Array;
  elNext: Int32Array;
  elClass: Uint8Array;
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
  /** Slots handed out at least once; those above are untouched. */
  private highWater = 0;
  /** Head of the list of released slots (linked through `chain`), or -1. */
  private freeHead = -1;
  private freeCount = 0;

  private readonly scratch = new TupleScratch();

  /** `max` is nf_conntrack_max (0: no limit), `initialSlots` the first allocation (capped at the limit). */
  constructor(max: number, buckets: number, seed: number, initialSlots = INITIAL_SLOTS) {
    this.max = max;
    this.limit = max === 0 || max > MAX_SLOTS ? MAX_SLOTS : max;
    this.buckets = buckets;
    this.seed = seed | 0;
    const n = Math.max(1, Math.min(initialSlots, this.limit));
    this.size = n;
    this.proto = new Uint8Array(n);
    this.flags = new Uint8Array(n);
    this.zone = new Uint16Array(n);
    this.saddr = new Uint32Array(n);
    this.daddr = new Uint32Array(n);
    this.sport = new Uint16Array(n);
    this.dport = new Uint16Array(n);
    this.status = new Uint16Array(n);
    this.expiry = new Uint32Array(n);
    this.heads = new Int32Array(buckets).fill(-1);
    this.chain = new Int32Array(n).fill(-1);
    this.rchain = new Int32Array(n).fill(-1);
    this.elPrev = new Int32Array(n).fill(-1);
    this.elNext = new Int32Array(n).fill(-1);
    this.elClass = new Uint8Array(n).fill(NO_CLASS);
  }

  /** Entries allocated (confirmed or not). */
  get used(): number {
    return this.highWater - this.freeCount;
  }

  /** Slots allocated and not in use (the arrays may still grow beyond them). */
  get free(): number {
    return this.size - this.used;
  }

  /**
   * The size the slot arrays take at the next growth: double, at most
   * `limit`; 0 when they cannot grow any more.
   */
  nextSize(): number {
    if (this.size >= this.limit) return 0;
    return Math.min(this.size * 2, this.limit);
  }

  /**
   * Grows every slot array (and the side stores) to `size` slots, keeping
   * every slot where it is. Callers grow their own per-slot stores first, so
   * that a failed allocation (RangeError) leaves no slot without its state.
   */
  grow(size: number): void {
    if (size <= this.size) return;
    const proto = grown(this.proto, size, 0);
    const flags = grown(this.flags, size, 0);
    const zone = grown(this.zone, size, 0);
    const saddr = grown(this.saddr, size, 0);
    const daddr = grown(this.daddr, size, 0);
    const sport = grown(this.sport, size, 0);
    const dport = grown(this.dport, size, 0);
    const status = grown(this.status, size, 0);
    const expiry = grown(this.expiry, size, 0);
    const chain = grown(this.chain, size, -1);
    const rchain = grown(this.rchain, size, -1);
    const elPrev = grown(this.elPrev, size, -1);
    const elNext = grown(this.elNext, size, -1);
    const elClass = grown(this.elClass, size, NO_CLASS);
    const v6 = this.v6 === null ? null : grown(this.v6, size * 6, 0);
    if (this.nat !== null) this.nat.grow(size);
    this.proto = proto;
    this.flags = flags;
    this.zone = zone;
    this.saddr = saddr;
    this.daddr = daddr;
    this.sport = sport;
    this.dport = dport;
    this.status = status;
    this.expiry = expiry;
    this.chain = chain;
    this.rchain = rchain;
    this.elPrev = elPrev;
    this.elNext = elNext;
    this.elClass = elClass;
    this.v6 = v6;
    this.size = size;
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
      this.rchain.byteLength +
      this.elPrev.byteLength +
      this.elNext.byteLength +
      this.elClass.byteLength +
      this.classHead.byteLength +
      this.classTail.byteLength +
      this.classCount.byteLength +
      this.classTimeout.byteLength +
      this.classSum.byteLength;
    if (this.v6 !== null) n += this.v6.byteLength;
    if (this.nat !== null) n += this.nat.bytes;
    return n;
  }

  /** The released slots, most recent first, for invariant checks (allocates). */
  freeSlots(): number[] {
    const out: number[] = [];
    for (let s = this.freeHead; s >= 0 && out.length <= this.size; s = this.chain[s] as number) out.push(s);
    return out;
  }

  // ---- slots ------------------------------------------------------------------------

  /**
   * Takes a free slot: the last one released, else the first never used;
   * -1 when every allocated slot is taken (grow, or the table is at its limit).
   */
  alloc(): number {
    let slot = this.freeHead;
    if (slot >= 0) {
      this.freeHead = this.chain[slot] as number;
      this.chain[slot] = -1;
      this.freeCount--;
    } else {
      if (this.highWater >= this.size) return -1;
      slot = this.highWater++;
    }
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
    this.chain[slot] = this.freeHead;
    this.freeHead = slot;
    this.freeCount++;
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
      if (v6 === null) v6 = this.v6 = new Uint32Array(this.size * 6);
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
    if (nat === null) nat = this.nat = new NatReplyStore(this.size);
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
      this.loadWords(
        slot,
        t,
        6,
        this.saddr[slot] as number,
        this.daddr[slot] as number,
        this.sport[slot] as number,
        this.dport[slot] as number,
        this.v6 as Uint32Array,
      );
      return;
    }
    // IPv4, the common case, keeps its own call with literal zeros: through the shared loader
    // (zeros read from an array) loadTuple() measured 25 % slower on IPv4 slots.
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
    t.computeHash(this.seed);
  }

  /** Loads a slot's NAT reply tuple into `t` (hash included). Only for FLAG_NAT slots. */
  loadNatReply(slot: number, t: TupleScratch): void {
    const nat = this.nat as NatReplyStore;
    const family = (this.flags[slot] as number) & FLAG_V6 ? 6 : 4;
    this.loadWords(slot, t, family, nat.saddr[slot] as number, nat.daddr[slot] as number, nat.sport[slot] as number, nat.dport[slot] as number, nat.v6);
  }

  /** A tuple of the slot's protocol and zone from address word 0, words 1–3 of each address in `w` (6 per slot), and ports. */
  private loadWords(slot: number, t: TupleScratch, family: 4 | 6, s0: number, d0: number, sport: number, dport: number, w: Uint32Array): void {
    const o = slot * 6;
    t.setWords(
      family,
      this.proto[slot] as number,
      this.zone[slot] as number,
      s0,
      w[o] as number,
      w[o + 1] as number,
      w[o + 2] as number,
      d0,
      w[o + 3] as number,
      w[o + 4] as number,
      w[o + 5] as number,
      sport,
      dport,
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
    return node < REPLY_NODE ? (this.chain[node] as number) : (this.rchain[node - REPLY_NODE] as number);
  }

  /** Loads a slot's REPLY tuple into `t` (hash included): the NAT reply tuple, else the inverted original. */
  loadReply(slot: number, t: TupleScratch): void {
    if ((this.flags[slot] as number) & FLAG_NAT) {
      this.loadNatReply(slot, t);
      return;
    }
    this.loadTuple(slot, t);
    t.invert();
    t.computeHash(this.seed);
  }

  /**
   * Links a slot's two nodes at the head of their buckets, original first
   * (__nf_conntrack_hash_insert: hlist_nulls_add_head_rcu of ORIGINAL, then
   * REPLY), as confirmation does.
   */
  link(slot: number): void {
    const t = this.scratch;
    this.loadTuple(slot, t);
    const b = this.bucketOf(t.hash);
    this.chain[slot] = this.heads[b] as number;
    this.heads[b] = slot;
    this.loadReply(slot, t);
    const rb = this.bucketOf(t.hash);
    this.rchain[slot] = this.heads[rb] as number;
    this.heads[rb] = REPLY_NODE + slot;
  }

  /** Removes a slot's nodes from the index. */
  unlink(slot: number): void {
    const t = this.scratch;
    this.loadTuple(slot, t);
    this.unlinkNode(slot, this.bucketOf(t.hash));
    this.loadReply(slot, t);
    this.unlinkNode(REPLY_NODE + slot, this.bucketOf(t.hash));
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
    else if (prev < REPLY_NODE) this.chain[prev] = after;
    else this.rchain[prev - REPLY_NODE] = after;
    if (node < REPLY_NODE) this.chain[node] = -1;
    else this.rchain[node - REPLY_NODE] = -1;
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
   * entries, each counted `weight` times (the kernel's walk meets an entry
   * once per node), seeded with `initial` weighted as `initialCount`. Classes
   * whose timeout is at least `clampJ` count every entry at `clampJ`; others
   * contribute their exact remaining time (the lower clamp is not applied).
   */
  averageRemaining(nowJx: number, initial: number, initialCount: number, clampJ: number, weight = 1): number {
    let sum = 0;
    let n = 0;
    for (let c = 0; c < this.classesUsed; c++) sum += this.classContribution(c, nowJx, clampJ, false);
    sum += this.classContribution(OVERFLOW_CLASS, nowJx, clampJ, true);
    for (let c = 0; c < this.classesUsed; c++) n += this.classCount[c] as number;
    n += this.classCount[OVERFLOW_CLASS] as number;
    return (initial * initialCount + weight * sum) / (initialCount + weight * n);
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
   * from listed slots, every slot below the high-water mark either in use or
   * free. Returns a description of the first defect, or null.
   */
  audit(): string | null {
    const t = new TupleScratch();
    const seen = new Uint8Array(this.size);
    const replies = new Uint8Array(this.size);
    for (let b = 0; b < this.buckets; b++) {
      for (let node = this.heads[b] as number; node >= 0; node = this.nextNode(node)) {
        if (node >= REPLY_NODE) {
          const s = node - REPLY_NODE;
          if (replies[s]) return `reply node of slot ${s} linked twice`;
          replies[s] = 1;
          this.loadReply(s, t);
        } else {
          if (seen[node]) return `slot ${node} linked twice`;
          seen[node] = 1;
          this.loadTuple(node, t);
        }
        if (t.hash % this.buckets !== b) return `node ${node} in bucket ${b}, hash says ${t.hash % this.buckets}`;
      }
    }
    for (let s = 0; s < this.size; s++) if (seen[s] !== replies[s]) return `slot ${s} has one of its two nodes linked`;
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
        if (n > this.size) return `list ${c}: cycle`;
      }
      if (this.classTail[c] !== prev) return `list ${c}: bad tail`;
      if (this.classCount[c] !== n) return `list ${c}: count ${this.classCount[c]} for ${n} entries`;
      listed += n;
    }
    let indexed = 0;
    for (let s = 0; s < this.size; s++) indexed += seen[s] as number;
    if (listed !== indexed) return `${listed} listed but ${indexed} indexed`;
    let free = 0;
    for (let s = this.freeHead; s >= 0; s = this.chain[s] as number) {
      if (s >= this.highWater) return `free slot ${s} above the high-water mark ${this.highWater}`;
      if (seen[s] === 2) return `slot ${s} free twice`;
      if (seen[s] === 1) return `free slot ${s} is in the index`;
      seen[s] = 2;
      if (++free > this.freeCount) return `free list longer than ${this.freeCount}`;
    }
    if (free !== this.freeCount) return `free list has ${free} slots, count says ${this.freeCount}`;
    // Slots in use but not indexed: at most the unconfirmed entry of the last packet.
    if (this.used - indexed > 1) return `${this.used} slots in use but ${indexed} indexed`;
    return null;
  }

  // ---- read by table policies (policy/) ------------------------------------------------

  /** Timeout classes in use: 0 … classes − 1 (the mixed-timeout overflow class is not one of them). */
  get classes(): number {
    return this.classesUsed;
  }

  /** The slot with the earliest deadline in class `c` — its longest-idle entry — or -1. */
  headOf(c: number): number {
    return this.classHead[c] as number;
  }

  /** Timeout in jiffies of a listed slot's class; -1 for the overflow class or an unlisted slot. */
  timeoutOfSlot(slot: number): number {
    const c = this.elClass[slot] as number;
    if (c >= OVERFLOW_CLASS) return -1;
    return this.classTimeout[c] as number;
  }

  /** Entries on expiry lists (confirmed, not yet expired or reaped). */
  listed(): number {
    let n = this.classCount[OVERFLOW_CLASS] as number;
    for (let c = 0; c < this.classesUsed; c++) n += this.classCount[c] as number;
    return n;
  }
}
