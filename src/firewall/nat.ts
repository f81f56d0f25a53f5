/**
 * NAT as nf_nat does it (net/netfilter/nf_nat_core.c, nf_nat_masquerade.c,
 * nf_nat_redirect.c), on the tracker's table.
 *
 * - A binding is made once per connection and manip type, on its first
 *   packet (nf_nat_setup_info on the unconfirmed entry): get_unique_tuple
 *   keeps the source when the resulting tuple is unique, reuses an existing
 *   mapping of the same source (find_appropriate_src), picks the address from
 *   the range by jhash2 of the addresses (find_best_ips_proto, bit-exact),
 *   and searches ports from a random offset (nf_nat_l4proto_unique_tuple:
 *   at most 128 attempts, then ever smaller windows). Each candidate is
 *   tested with nf_conntrack_tuple_taken (counting `found`).
 * - The reply tuple goes into the entry (nf_conntrack_alter_reply) and the
 *   status gets SRC_NAT/DST_NAT when the tuple changed, SRC_NAT_DONE /
 *   DST_NAT_DONE always; a connection no rule translates gets a null binding.
 * - Every later packet is rewritten in each NAT hook from the entry's
 *   tuples (nf_nat_packet), so rules in later hooks see translated addresses.
 *
 * - In the last attempts of a TCP SYN's search, a closing (TIME_WAIT) entry
 *   holding the candidate is evicted (nf_nat_used_tuple_harder).
 *
 * Not modelled: NETMAP/PROTO_OFFSET ranges, helpers (no expectations),
 * the inner headers of translated ICMP errors (only their outer addresses).
 */
import { IPS } from "../conntrack/constants.js";
import { grown } from "../conntrack/table.js";
import type { TrackerEngine } from "../conntrack/tracker.js";
import { TupleScratch } from "../conntrack/tuple.js";
import { TCP_STATE } from "../conntrack/tcp.js";
import type { PacketView } from "../packet/view.js";

/** Range flags (include/uapi/linux/netfilter/nf_nat.h NF_NAT_RANGE_*). */
export const NF_NAT_RANGE = {
  MAP_IPS: 1,
  PROTO_SPECIFIED: 2,
  PROTO_RANDOM: 4,
  PERSISTENT: 8,
  PROTO_RANDOM_FULLY: 16,
  PROTO_OFFSET: 32,
} as const;

const RANDOM_ALL = NF_NAT_RANGE.PROTO_RANDOM | NF_NAT_RANGE.PROTO_RANDOM_FULLY;

/** Manip types: SRC at POSTROUTING/INPUT, DST at PREROUTING/OUTPUT. */
export const MANIP = { SRC: 0, DST: 1 } as const;
export type ManipType = 0 | 1;

/** NF_NAT_MAX_ATTEMPTS. */
const MAX_ATTEMPTS = 128;
/** NF_NAT_HARDER_THRESH: the last attempts of a search may evict a closing TCP entry. */
const HARDER_THRESH = MAX_ATTEMPTS / 4;

const USES_NAT = IPS.SRC_NAT | IPS.DST_NAT | IPS.SEQ_ADJUST;

/** A nf_nat_range2, reused (no allocation per connection). */
export class NatRange {
  flags = 0;
  readonly minAddr = new Uint32Array(4);
  readonly maxAddr = new Uint32Array(4);
  minProto = 0;
  maxProto = 0;

  clear(): void {
    this.flags = 0;
    this.minAddr.fill(0);
    this.maxAddr.fill(0);
    this.minProto = 0;
    this.maxProto = 0;
  }

  /** One address, no port range (a null binding, MASQUERADE/REDIRECT without ports). */
  setAddr(a: ArrayLike<number>): void {
    this.flags |= NF_NAT_RANGE.MAP_IPS;
    for (let i = 0; i < 4; i++) {
      this.minAddr[i] = (a[i] as number) >>> 0;
      this.maxAddr[i] = (a[i] as number) >>> 0;
    }
  }

  setPorts(lo: number, hi: number): void {
    this.flags |= NF_NAT_RANGE.PROTO_SPECIFIED;
    this.minProto = lo;
    this.maxProto = hi;
  }
}

/** Counters of what NAT did, for the summary. */
export interface NatCounters {
  /** Bindings that changed the tuple (SRC_NAT or DST_NAT set). */
  translated: number;
  /** Null bindings (no rule translated the connection in that hook). */
  nullBindings: number;
  /** Bindings that had to search for a free port. */
  searched: number;
  /** Bindings for which no free tuple was found (the packet then fails at confirmation). */
  exhausted: number;
}

/** Whether conntrack may resolve an insertion clash for the protocol (l4proto->allow_clash). */
function allowClash(proto: number): boolean {
  return proto !== 6 && proto !== 1 && proto !== 58 && proto !== 132;
}

function hasPorts(proto: number): boolean {
  return proto === 6 || proto === 17 || proto === 132;
}

function copyTuple(d: TupleScratch, s: TupleScratch): void {
  d.setWords(s.family, s.proto, s.zone, s.s0, s.s1, s.s2, s.s3, s.d0, s.d1, s.d2, s.d3, s.sport, s.dport);
}

function tupleEqual(a: TupleScratch, b: TupleScratch): boolean {
  return (
    a.family === b.family &&
    a.proto === b.proto &&
    a.s0 === b.s0 &&
    a.s1 === b.s1 &&
    a.s2 === b.s2 &&
    a.s3 === b.s3 &&
    a.d0 === b.d0 &&
    a.d1 === b.d1 &&
    a.d2 === b.d2 &&
    a.d3 === b.d3 &&
    a.sport === b.sport &&
    a.dport === b.dport
  );
}

/** The tuple key get_unique_tuple changes: ICMP id for either manip, else the port of the manipulated side. */
function keyOf(t: TupleScratch, manip: ManipType): number {
  if (t.proto === 1 || t.proto === 58) return t.sport;
  return manip === MANIP.SRC ? t.sport : t.dport;
}

function setKey(t: TupleScratch, manip: ManipType, v: number): void {
  const icmp = t.proto === 1 || t.proto === 58;
  const sport = icmp || manip === MANIP.SRC ? v : t.sport;
  const dport = !icmp && manip === MANIP.DST ? v : t.dport;
  t.setWords(t.family, t.proto, t.zone, t.s0, t.s1, t.s2, t.s3, t.d0, t.d1, t.d2, t.d3, sport, dport);
}

function addrWord(t: TupleScratch, src: boolean, i: number): number {
  if (src) return i === 0 ? t.s0 : i === 1 ? t.s1 : i === 2 ? t.s2 : t.s3;
  return i === 0 ? t.d0 : i === 1 ? t.d1 : i === 2 ? t.d2 : t.d3;
}

function setAddrWord(t: TupleScratch, src: boolean, i: number, v: number): void {
  const x = v >>> 0;
  if (src) {
    t.setWords(
      t.family,
      t.proto,
      t.zone,
      i === 0 ? x : t.s0,
      i === 1 ? x : t.s1,
      i === 2 ? x : t.s2,
      i === 3 ? x : t.s3,
      t.d0,
      t.d1,
      t.d2,
      t.d3,
      t.sport,
      t.dport,
    );
  } else {
    t.setWords(
      t.family,
      t.proto,
      t.zone,
      t.s0,
      t.s1,
      t.s2,
      t.s3,
      i === 0 ? x : t.d0,
      i === 1 ? x : t.d1,
      i === 2 ? x : t.d2,
      i === 3 ? x : t.d3,
      t.sport,
      t.dport,
    );
  }
}

function cmpU32(a: number, b: number): number {
  return a === b ? 0 : a >>> 0 < b >>> 0 ? -1 : 1;
}

/** The byte-swapped word: a __be32 as an x86 CPU reads it from memory (what jhash2 hashes). */
function bswap32(x: number): number {
  return (((x & 0xff) << 24) | ((x & 0xff00) << 8) | ((x >>> 8) & 0xff00) | (x >>> 24)) >>> 0;
}

function rol32(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** jhash2 (include/linux/jhash.h): Bob Jenkins' lookup3 over 32-bit words. */
export function jhash2(k: ArrayLike<number>, length: number, initval: number): number {
  let a = (0xdeadbeef + (length << 2) + initval) >>> 0;
  let b = a;
  let c = a;
  let o = 0;
  while (length > 3) {
    a = (a + (k[o] as number)) >>> 0;
    b = (b + (k[o + 1] as number)) >>> 0;
    c = (c + (k[o + 2] as number)) >>> 0;
    a = (a - c) >>> 0;
    a = (a ^ rol32(c, 4)) >>> 0;
    c = (c + b) >>> 0;
    b = (b - a) >>> 0;
    b = (b ^ rol32(a, 6)) >>> 0;
    a = (a + c) >>> 0;
    c = (c - b) >>> 0;
    c = (c ^ rol32(b, 8)) >>> 0;
    b = (b + a) >>> 0;
    a = (a - c) >>> 0;
    a = (a ^ rol32(c, 16)) >>> 0;
    c = (c + b) >>> 0;
    b = (b - a) >>> 0;
    b = (b ^ rol32(a, 19)) >>> 0;
    a = (a + c) >>> 0;
    c = (c - b) >>> 0;
    c = (c ^ rol32(b, 4)) >>> 0;
    b = (b + a) >>> 0;
    length -= 3;
    o += 3;
  }
  if (length === 0) return c;
  if (length === 3) c = (c + (k[o + 2] as number)) >>> 0;
  if (length >= 2) b = (b + (k[o + 1] as number)) >>> 0;
  a = (a + (k[o] as number)) >>> 0;
  c = (c ^ b) >>> 0;
  c = (c - rol32(b, 14)) >>> 0;
  a = (a ^ c) >>> 0;
  a = (a - rol32(c, 11)) >>> 0;
  b = (b ^ a) >>> 0;
  b = (b - rol32(a, 25)) >>> 0;
  c = (c ^ b) >>> 0;
  c = (c - rol32(b, 16)) >>> 0;
  a = (a ^ c) >>> 0;
  a = (a - rol32(c, 4)) >>> 0;
  b = (b ^ a) >>> 0;
  b = (b - rol32(a, 14)) >>> 0;
  c = (c ^ b) >>> 0;
  c = (c - rol32(b, 24)) >>> 0;
  return c;
}

/** reciprocal_scale: ⌊val × n / 2^32⌋, exact for 32-bit operands. */
export function reciprocalScale(val: number, n: number): number {
  const hi = (val >>> 16) * (n >>> 0);
  const lo = (val & 0xffff) * (n >>> 0);
  return Math.floor((hi + Math.floor(lo / 65536)) / 65536) >>> 0;
}

/**
 * The NAT engine of one tracker. `random16` stands for get_random_u16 (port
 * search offsets); make it deterministic for reproducible runs.
 */
export class NatEngine {
  readonly tracker: TrackerEngine;
  readonly counters: NatCounters = { translated: 0, nullBindings: 0, searched: 0, exhausted: 0 };
  private readonly random16: () => number;
  private readonly curr = new TupleScratch();
  private readonly next = new TupleScratch();
  private readonly probe = new TupleScratch();
  private readonly tmp = new TupleScratch();
  private readonly nullRange = new NatRange();
  private readonly jkey = new Uint32Array(4);
  private readonly replySrc = new Uint32Array(4);
  private readonly replyDst = new Uint32Array(4);
  /**
   * nf_nat_bysource: entries whose source was translated, chained per bucket
   * of a hash of (proto, source, zone) through per-slot links (allocated with
   * the first binding, sized to the table). Entries are validated on use and
   * unlinked when they died or their slot holds another connection.
   */
  private bsHeads: Int32Array | null = null;
  private bsNext: Int32Array | null = null;
  private bsPrev: Int32Array | null = null;
  private bsBucket: Int32Array | null = null;

  constructor(tracker: TrackerEngine, random16: () => number) {
    this.tracker = tracker;
    this.random16 = random16;
  }

  /** nf_nat_initialized: the binding of this manip type is made. */
  initialized(slot: number, manip: ManipType): boolean {
    const st = this.tracker.status[slot] as number;
    return (st & (manip === MANIP.SRC ? IPS.SRC_NAT_DONE : IPS.DST_NAT_DONE)) !== 0;
  }

  /**
   * nf_nat_alloc_null_binding: map the connection onto itself (address kept,
   * port only changed when the tuple would clash).
   */
  nullBinding(slot: number, manip: ManipType): void {
    const t = this.curr;
    this.tracker.tupleOf(slot, 1, t);
    // The reply tuple's destination is the original source (SRC), its source the original destination (DST).
    const r = this.nullRange;
    r.clear();
    r.flags = NF_NAT_RANGE.MAP_IPS;
    for (let i = 0; i < 4; i++) {
      const w = addrWord(t, manip !== MANIP.SRC, i);
      r.minAddr[i] = w;
      r.maxAddr[i] = w;
    }
    this.setupInfo(slot, r, manip);
  }

  /** nf_nat_setup_info for the unconfirmed entry of the last packet. */
  setupInfo(slot: number, range: NatRange, manip: ManipType): void {
    const tr = this.tracker;
    if (tr.isConfirmed(slot) || this.initialized(slot, manip)) return;
    const curr = this.curr;
    tr.tupleOf(slot, 1, curr);
    curr.invert();
    const next = this.next;
    this.uniqueTuple(next, curr, range, slot, manip);
    const isNull = tupleEqual(next, curr);
    if (!isNull) {
      const rep = this.probe;
      copyTuple(rep, next);
      rep.invert();
      const s = this.replySrc;
      const d = this.replyDst;
      s[0] = rep.s0;
      s[1] = rep.s1;
      s[2] = rep.s2;
      s[3] = rep.s3;
      d[0] = rep.d0;
      d[1] = rep.d1;
      d[2] = rep.d2;
      d[3] = rep.d3;
      tr.alterReply(slot, s, d, rep.sport, rep.dport);
      tr.status[slot] = (tr.status[slot] as number) | (manip === MANIP.SRC ? IPS.SRC_NAT : IPS.DST_NAT);
      this.counters.translated++;
      if (manip === MANIP.SRC) this.addBySource(slot);
    } else {
      this.counters.nullBindings++;
    }
    tr.status[slot] = (tr.status[slot] as number) | (manip === MANIP.SRC ? IPS.SRC_NAT_DONE : IPS.DST_NAT_DONE);
  }

  /** get_unique_tuple. */
  private uniqueTuple(out: TupleScratch, orig: TupleScratch, range: NatRange, slot: number, manip: ManipType): void {
    const flags = range.flags;
    if (manip === MANIP.SRC && (flags & RANDOM_ALL) === 0) {
      if (this.inRange(orig, range)) {
        if (!this.usedTupleNew(orig, slot)) {
          copyTuple(out, orig);
          return;
        }
      } else if (this.findAppropriateSrc(orig, out, range)) {
        if (!this.usedTuple(out)) return;
      }
    }
    copyTuple(out, orig);
    this.findBestIps(out, range, manip);
    if ((flags & RANDOM_ALL) === 0) {
      if (flags & NF_NAT_RANGE.PROTO_SPECIFIED) {
        if (
          (flags & NF_NAT_RANGE.PROTO_OFFSET) === 0 &&
          this.l4InRange(out, manip, range.minProto, range.maxProto) &&
          (range.minProto === range.maxProto || !this.usedTuple(out))
        ) {
          return;
        }
      } else if (!this.usedTuple(out)) {
        return;
      }
    }
    this.counters.searched++;
    if (!this.l4UniqueTuple(out, range, manip, slot)) this.counters.exhausted++;
  }

  /** nf_nat_used_tuple: the reply of the candidate is someone's tuple. */
  private usedTuple(t: TupleScratch): boolean {
    const p = this.probe;
    copyTuple(p, t);
    p.invert();
    return this.tracker.tupleTaken(p);
  }

  /**
   * nf_nat_used_tuple_harder (since 6.5): as usedTuple, except in the last
   * HARDER_THRESH attempts for the SYN of a TCP connection, where the entry
   * holding the candidate as its reply tuple is evicted (nf_ct_kill) when it
   * is closing (TIME_WAIT or later), was source-NATed, has no fixed timeout,
   * and the new connection's sequence has advanced past its own — so that
   * a gateway whose ports are all held by TIME_WAIT entries does not drop.
   */
  private usedTupleHarder(t: TupleScratch, slot: number, attemptsLeft: number): boolean {
    const tr = this.tracker;
    const tcp = tr.tcpTracker;
    if (attemptsLeft > HARDER_THRESH || t.proto !== 6 || tcp.state(slot) !== TCP_STATE.SYN_SENT) return this.usedTuple(t);
    const p = this.probe;
    copyTuple(p, t);
    p.invert();
    const other = tr.findTuple(p);
    if (other < 0) return false;
    if (tr.foundDir === 0 || other === slot) return true;
    const flags = tr.status[other] as number;
    if (tcp.state(other) < TCP_STATE.TIME_WAIT || (flags & (IPS.FIXED_TIMEOUT | IPS.DYING)) !== 0 || (flags & IPS.SRC_NAT) === 0) return true;
    // nf_seq_has_advanced: replies to the reused tuple must be out of the old entry's window.
    if (((tcp.tdEnd(slot, 0) - tcp.tdEnd(other, 0)) | 0) <= 0) return true;
    tr.kill(other);
    // Even when evicted, an offloaded entry's tuple is not reused.
    return (flags & (IPS.OFFLOAD | IPS.HW_OFFLOAD)) !== 0;
  }

  /** nf_nat_used_tuple_new: as usedTuple, but a reverse collision of two un-NATed clashable entries is left to confirmation. */
  private usedTupleNew(t: TupleScratch, slot: number): boolean {
    if (!this.usedTuple(t)) return false;
    if (!allowClash(t.proto)) return true;
    const tr = this.tracker;
    if (((tr.status[slot] as number) & USES_NAT) !== 0) return true;
    const p = this.probe;
    copyTuple(p, t);
    let other = tr.findTuple(p);
    if (other < 0) {
      p.invert();
      other = tr.findTuple(p);
      if (other < 0) return false;
    }
    if (((tr.status[other] as number) & USES_NAT) !== 0) return true;
    const a = this.tmp;
    tr.tupleOf(other, 0, a);
    tr.tupleOf(slot, 1, p);
    return !tupleEqual(a, p);
  }

  /** nf_in_range: would source-mapping to this tuple meet the range? */
  private inRange(t: TupleScratch, r: NatRange): boolean {
    if (r.flags & NF_NAT_RANGE.MAP_IPS) {
      const n = t.family === 4 ? 1 : 4;
      for (let i = 0; i < n; i++) {
        const c = cmpU32(addrWord(t, true, i), r.minAddr[i] as number);
        if (c < 0) return false;
        if (c > 0) break;
      }
      for (let i = 0; i < n; i++) {
        const c = cmpU32(addrWord(t, true, i), r.maxAddr[i] as number);
        if (c > 0) return false;
        if (c < 0) break;
      }
    }
    if ((r.flags & NF_NAT_RANGE.PROTO_SPECIFIED) === 0) return true;
    return this.l4InRange(t, MANIP.SRC, r.minProto, r.maxProto);
  }

  /** l4proto_in_range. */
  private l4InRange(t: TupleScratch, manip: ManipType, min: number, max: number): boolean {
    switch (t.proto) {
      case 1:
      case 58:
        return t.sport >= min && t.sport <= max;
      case 47:
      case 6:
      case 17:
      case 132: {
        const port = manip === MANIP.SRC ? t.sport : t.dport;
        return port >= min && port <= max;
      }
      default:
        return true;
    }
  }

  private sourceKey(t: TupleScratch): number {
    let h = Math.imul(t.proto ^ (t.zone << 8), 0x9e3779b1);
    h = Math.imul(h ^ t.s0, 0x85ebca6b);
    h = Math.imul(h ^ t.s1, 0xc2b2ae35);
    h = Math.imul(h ^ t.s2, 0x27d4eb2f);
    h = Math.imul(h ^ t.s3, 0x165667b1);
    h ^= t.sport;
    h ^= h >>> 15;
    return (h >>> 0) & ((this.bsHeads as Int32Array).length - 1);
  }

  private bsUnlink(slot: number): void {
    const b = (this.bsBucket as Int32Array)[slot] as number;
    if (b < 0) return;
    const next = this.bsNext as Int32Array;
    const prev = this.bsPrev as Int32Array;
    const n = next[slot] as number;
    const p = prev[slot] as number;
    if (p >= 0) next[p] = n;
    else (this.bsHeads as Int32Array)[b] = n;
    if (n >= 0) prev[n] = p;
    (this.bsBucket as Int32Array)[slot] = -1;
  }

  private addBySource(slot: number): void {
    const slots = this.tracker.slotCount;
    if (this.bsHeads === null) {
      // Sized from nf_conntrack_max (2^20 buckets without a limit); the links grow with the table.
      const cap = this.tracker.capacity === 0 ? 1 << 20 : this.tracker.capacity;
      let buckets = 1024;
      while (buckets < cap && buckets < 1 << 20) buckets <<= 1;
      this.bsHeads = new Int32Array(buckets).fill(-1);
      this.bsNext = new Int32Array(slots).fill(-1);
      this.bsPrev = new Int32Array(slots).fill(-1);
      this.bsBucket = new Int32Array(slots).fill(-1);
    } else if ((this.bsNext as Int32Array).length < slots) {
      this.bsNext = grown(this.bsNext as Int32Array, slots, -1);
      this.bsPrev = grown(this.bsPrev as Int32Array, slots, -1);
      this.bsBucket = grown(this.bsBucket as Int32Array, slots, -1);
    }
    this.bsUnlink(slot);
    const t = this.tmp;
    this.tracker.tupleOf(slot, 0, t);
    const b = this.sourceKey(t);
    const heads = this.bsHeads;
    const next = this.bsNext as Int32Array;
    const prev = this.bsPrev as Int32Array;
    const h = heads[b] as number;
    next[slot] = h;
    prev[slot] = -1;
    if (h >= 0) prev[h] = slot;
    heads[b] = slot;
    (this.bsBucket as Int32Array)[slot] = b;
  }

  /** find_appropriate_src: an existing mapping of the same source, if it meets the range. */
  private findAppropriateSrc(orig: TupleScratch, out: TupleScratch, range: NatRange): boolean {
    if (this.bsHeads === null) return false;
    const tr = this.tracker;
    const t = this.tmp;
    const next = this.bsNext as Int32Array;
    const b = this.sourceKey(orig);
    for (let s = this.bsHeads[b] as number; s >= 0;) {
      const following = next[s] as number;
      const st = tr.status[s] as number;
      if ((st & IPS.CONFIRMED) === 0 || (st & IPS.DYING) !== 0 || (st & IPS.SRC_NAT) === 0) {
        // Gone, or the slot now holds another (unconfirmed or untranslated) connection.
        this.bsUnlink(s);
        s = following;
        continue;
      }
      tr.tupleOf(s, 0, t);
      if (
        t.proto === orig.proto &&
        t.zone === orig.zone &&
        t.family === orig.family &&
        t.s0 === orig.s0 &&
        t.s1 === orig.s1 &&
        t.s2 === orig.s2 &&
        t.s3 === orig.s3 &&
        t.sport === orig.sport
      ) {
        tr.tupleOf(s, 1, t);
        t.invert();
        out.setWords(orig.family, orig.proto, orig.zone, t.s0, t.s1, t.s2, t.s3, orig.d0, orig.d1, orig.d2, orig.d3, t.sport, orig.dport);
        if (this.inRange(out, range)) return true;
      }
      s = following;
    }
    return false;
  }

  /** find_best_ips_proto: the address from the range, by jhash2 of the tuple's addresses. */
  private findBestIps(t: TupleScratch, r: NatRange, manip: ManipType): void {
    if ((r.flags & NF_NAT_RANGE.MAP_IPS) === 0) return;
    const src = manip === MANIP.SRC;
    const n = t.family === 4 ? 1 : 4;
    let same = true;
    for (let i = 0; i < n; i++) if (r.minAddr[i] !== r.maxAddr[i]) same = false;
    if (same) {
      for (let i = 0; i < n; i++) setAddrWord(t, src, i, r.minAddr[i] as number);
      return;
    }
    const max = n - 1;
    const persistent = (r.flags & NF_NAT_RANGE.PERSISTENT) !== 0;
    const key = this.jkey;
    for (let i = 0; i < 4; i++) key[i] = bswap32(addrWord(t, true, i));
    let j = jhash2(key, 4, persistent ? 0 : (bswap32(addrWord(t, false, max)) ^ t.zone) >>> 0);
    let fullRange = false;
    for (let i = 0; i <= max; i++) {
      let minip: number;
      let dist: number;
      if (!fullRange) {
        minip = r.minAddr[i] as number;
        const maxip = r.maxAddr[i] as number;
        dist = (maxip - minip + 1) >>> 0;
      } else {
        minip = 0;
        dist = 0xffffffff;
      }
      const v = (minip + reciprocalScale(j, dist)) >>> 0;
      setAddrWord(t, src, i, v);
      if (v !== r.maxAddr[i]) fullRange = true;
      if (!persistent) j = (j ^ bswap32(addrWord(t, false, i))) >>> 0;
    }
  }

  /**
   * nf_nat_l4proto_unique_tuple: search the port (ICMP id) range from an
   * offset. Returns false when every attempt was taken (the last candidate
   * stays in `t`, as in the kernel).
   */
  private l4UniqueTuple(t: TupleScratch, r: NatRange, manip: ManipType, slot: number): boolean {
    let min: number;
    let rangeSize: number;
    const proto = t.proto;
    if (proto === 1 || proto === 58) {
      if ((r.flags & NF_NAT_RANGE.PROTO_SPECIFIED) === 0) {
        min = 0;
        rangeSize = 65536;
      } else {
        min = r.minProto;
        rangeSize = r.maxProto - r.minProto + 1;
      }
    } else if (hasPorts(proto)) {
      if ((r.flags & NF_NAT_RANGE.PROTO_SPECIFIED) === 0) {
        // A destination port is never changed without a range.
        if (manip === MANIP.DST) return false;
        const key = keyOf(t, manip);
        if (key < 1024) {
          // Loose convention: below 512 is credential passing.
          if (key < 512) {
            min = 1;
            rangeSize = 511;
          } else {
            min = 600;
            rangeSize = 1023 - 600 + 1;
          }
        } else {
          min = 1024;
          rangeSize = 65535 - 1024 + 1;
        }
      } else {
        let lo = r.minProto;
        let hi = r.maxProto;
        if (hi < lo) [lo, hi] = [hi, lo];
        min = lo;
        rangeSize = hi - lo + 1;
      }
    } else {
      // GRE without a PPTP master and other protocols keep their tuple.
      return false;
    }
    let off = (r.flags & RANDOM_ALL) !== 0 || manip !== MANIP.DST ? this.random16() & 0xffff : 0;
    let attempts = Math.min(rangeSize, MAX_ATTEMPTS);
    for (;;) {
      for (let i = 0; i < attempts; i++, off = (off + 1) & 0xffff) {
        setKey(t, manip, min + (off % rangeSize));
        if (!this.usedTupleHarder(t, slot, attempts - i)) return true;
      }
      if (attempts >= rangeSize || attempts < 16) return false;
      attempts = attempts >>> 1;
      off = this.random16() & 0xffff;
    }
  }

  /**
   * nf_nat_packet: rewrite the packet's addresses and ports in a NAT hook
   * when the entry is translated in the direction this hook handles.
   * Returns true when the packet was changed.
   */
  packet(p: PacketView, slot: number, dir: 0 | 1, manip: ManipType): boolean {
    const tr = this.tracker;
    let bit: number = manip === MANIP.SRC ? IPS.SRC_NAT : IPS.DST_NAT;
    if (dir === 1) bit ^= IPS.SRC_NAT | IPS.DST_NAT;
    if (((tr.status[slot] as number) & bit) === 0) return false;
    // target = invert(tuple of the other direction): what this direction's packets must look like.
    const t = this.tmp;
    tr.tupleOf(slot, dir === 0 ? 1 : 0, t);
    t.invert();
    writeAddr(p, manip === MANIP.SRC, t);
    const pp = p.proto;
    if (pp === 1 || pp === 58) {
      // ICMP errors attached as RELATED only get their outer addresses changed (inner headers are not modelled).
      if (!isIcmpError(pp, p.icmpType)) p.icmpId = t.sport;
    } else if (pp === 6 || pp === 17 || pp === 132 || pp === 136) {
      if (manip === MANIP.SRC) p.sport = t.sport;
      else p.dport = t.dport;
    }
    return true;
  }
}

function isIcmpError(proto: number, type: number): boolean {
  if (proto === 1) return type === 3 || type === 4 || type === 5 || type === 11 || type === 12;
  return type < 128;
}

function writeAddr(p: PacketView, src: boolean, t: TupleScratch): void {
  const a = src ? p.src : p.dst;
  if (src) {
    a[0] = t.s0;
    a[1] = t.s1;
    a[2] = t.s2;
    a[3] = t.s3;
  } else {
    a[0] = t.d0;
    a[1] = t.d1;
    a[2] = t.d2;
    a[3] = t.d3;
  }
}
