/**
 * Live-eviction audit: was an evicted entry still in use? Each eviction
 * records the directional hashes of the entry's two tuples with the deadline
 * the entry had; a later packet that finds no entry but whose tuple hash is
 * recorded, before that deadline, belonged to the evicted connection — the
 * kernel (or the policy) would have matched it had it kept the entry, and now
 * the packet is NEW, INVALID or dropped. That is a live eviction.
 *
 * Bounded memory: an open-addressed table of (hash, check, deadline,
 * evicted-at) cells, four probes per hash, sized with the table (a power of two at least
 * nf_conntrack_max, at most 2^21). When the four cells of a hash are taken by
 * records still pending, the oldest eviction is forgotten: a connection idle
 * for longer than the table's whole eviction history may be missed, never
 * counted twice. A record matches on the tuple's seeded hash (whose low bits
 * also pick the cell) and on a second, unrelated 32-bit check word of the
 * tuple (`tupleCheck`): a stranger's packet matches with odds near 2^-45
 * per lookup, not the 2^-17 the hash alone would give in a 2^15-cell table.
 *
 * A TCP SYN (without ACK) that meets the record of an entry evicted in a
 * closing state is not counted: it opens a new connection, and the kernel
 * would have replaced the old entry with a new one just the same (a reopen).
 *
 * Off by default (TrackerOptions.countLiveEvictions): the simulator turns it on.
 */
import { jdiff } from "../jiffies.js";
import type { TupleScratch } from "../tuple.js";

const PROBES = 4;

/** A 32-bit word of a tuple unrelated to its seeded hash (multiplicative mixing of addresses, ports, protocol). */
export function tupleCheck(t: TupleScratch): number {
  let h = Math.imul(t.s0 ^ Math.imul(t.s1, 0x27d4eb2f) ^ Math.imul(t.s2 ^ t.s3, 0x165667b1), 0x9e3779b1);
  h ^= Math.imul(t.d0 ^ Math.imul(t.d1, 0x27d4eb2f) ^ Math.imul(t.d2 ^ t.d3, 0x165667b1), 0x85ebca77);
  h ^= Math.imul(((t.sport << 16) | t.dport) ^ (t.proto << 8) ^ t.zone, 0xc2b2ae3d);
  return (h ^ (h >>> 15)) >>> 0;
}

export class EvictionAudit {
  /** Live evictions found so far. */
  live = 0;
  readonly #mask: number;
  readonly #hash: Uint32Array;
  readonly #check: Uint32Array;
  readonly #deadline: Uint32Array;
  readonly #at: Uint32Array;
  /** 1 in a cell in use, 3 when the entry was in a closing state. */
  readonly #used: Uint8Array;
  #pending = 0;

  constructor(capacity: number) {
    let n = 1024;
    const want = Math.min(capacity === 0 ? 1 << 16 : capacity, 1 << 21);
    while (n < want) n *= 2;
    this.#mask = n - 1;
    this.#hash = new Uint32Array(n);
    this.#check = new Uint32Array(n);
    this.#deadline = new Uint32Array(n);
    this.#at = new Uint32Array(n);
    this.#used = new Uint8Array(n);
  }

  /** Records still pending (for tests). */
  get pending(): number {
    return this.#pending;
  }

  get bytes(): number {
    return this.#hash.byteLength + this.#check.byteLength + this.#deadline.byteLength + this.#at.byteLength + this.#used.byteLength;
  }

  /** An entry whose tuples hash to `h1`, `h2` (check words `c1`, `c2`), deadline `deadline`, was evicted at `nowJ`. */
  record(h1: number, c1: number, h2: number, c2: number, deadline: number, nowJ: number, closing: boolean): void {
    const u = closing ? 3 : 1;
    this.#put(h1, c1, deadline, nowJ, u);
    if (h2 !== h1 || c2 !== c1) this.#put(h2, c2, deadline, nowJ, u);
  }

  #put(h: number, k: number, deadline: number, nowJ: number, u: number): void {
    const m = this.#mask;
    let victim = -1;
    let oldest = 0;
    for (let i = 0; i < PROBES; i++) {
      const c = (h + i) & m;
      if (this.#used[c] === 0 || jdiff(this.#deadline[c] as number, nowJ) <= 0 || (this.#hash[c] === h && this.#check[c] === k)) {
        if (this.#used[c] === 0) this.#pending++;
        this.#set(c, h, k, deadline, nowJ, u);
        return;
      }
      const age = jdiff(nowJ, this.#at[c] as number);
      if (victim < 0 || age > oldest) {
        victim = c;
        oldest = age;
      }
    }
    this.#set(victim, h, k, deadline, nowJ, u);
  }

  #set(c: number, h: number, k: number, deadline: number, nowJ: number, u: number): void {
    this.#used[c] = u;
    this.#hash[c] = h;
    this.#check[c] = k;
    this.#deadline[c] = deadline;
    this.#at[c] = nowJ;
  }

  /**
   * A packet whose tuple hashes to `h` (check word `k`) found no entry at
   * `nowJ`. True (and counted once, both records of the connection dropped)
   * when it belongs to an entry evicted before its deadline; `oh`, `ok` are
   * the hash and check of the packet's inverted tuple (the other direction);
   * `syn`: the packet is a TCP SYN without ACK.
   */
  check(h: number, k: number, oh: number, ok: number, nowJ: number, syn: boolean): boolean {
    const c = this.#find(h, k);
    if (c < 0) return false;
    const alive = jdiff(this.#deadline[c] as number, nowJ) > 0 && !(syn && this.#used[c] === 3);
    this.#clear(c);
    const o = this.#find(oh, ok);
    if (o >= 0) this.#clear(o);
    if (alive) this.live++;
    return alive;
  }

  #find(h: number, k: number): number {
    const m = this.#mask;
    for (let i = 0; i < PROBES; i++) {
      const c = (h + i) & m;
      if (this.#used[c] !== 0 && this.#hash[c] === h && this.#check[c] === k) return c;
    }
    return -1;
  }

  #clear(c: number): void {
    this.#used[c] = 0;
    this.#pending--;
  }
}
