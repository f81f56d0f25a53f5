/**
 * Live-eviction audit: was an evicted entry still in use? Each eviction
 * records the directional hashes of the entry's two tuples with the deadline
 * the entry had; a later packet that finds no entry but whose tuple hash is
 * recorded, before that deadline, belonged to the evicted connection — the
 * kernel (or the policy) would have matched it had it kept the entry, and now
 * the packet is NEW, INVALID or dropped. That is a live eviction.
 *
 * Bounded memory: an open-addressed table of (hash, deadline, evicted-at)
 * cells, four probes per hash, sized with the table (a power of two at least
 * nf_conntrack_max, at most 2^21). When the four cells of a hash are taken by
 * records still pending, the oldest eviction is forgotten: a connection idle
 * for longer than the table's whole eviction history may be missed, never
 * counted twice. Hash collisions (32-bit seeded hashes) can at worst count a
 * stranger's packet, with odds of about 4 in 2^32 per lookup.
 *
 * Off by default (TrackerOptions.countLiveEvictions): the simulator turns it on.
 */
import { jdiff } from "../jiffies.js";

const PROBES = 4;

export class EvictionAudit {
  /** Live evictions found so far. */
  live = 0;
  readonly #mask: number;
  readonly #hash: Uint32Array;
  readonly #deadline: Uint32Array;
  readonly #at: Uint32Array;
  /** 1 in a cell in use. */
  readonly #used: Uint8Array;
  #pending = 0;

  constructor(capacity: number) {
    let n = 1024;
    const want = Math.min(capacity === 0 ? 1 << 16 : capacity, 1 << 21);
    while (n < want) n *= 2;
    this.#mask = n - 1;
    this.#hash = new Uint32Array(n);
    this.#deadline = new Uint32Array(n);
    this.#at = new Uint32Array(n);
    this.#used = new Uint8Array(n);
  }

  /** Records still pending (for tests). */
  get pending(): number {
    return this.#pending;
  }

  get bytes(): number {
    return this.#hash.byteLength + this.#deadline.byteLength + this.#at.byteLength + this.#used.byteLength;
  }

  /** An entry whose tuples hash to `h1` and `h2`, deadline `deadline`, was evicted at `nowJ`. */
  record(h1: number, h2: number, deadline: number, nowJ: number): void {
    this.#put(h1, deadline, nowJ);
    if (h2 !== h1) this.#put(h2, deadline, nowJ);
  }

  #put(h: number, deadline: number, nowJ: number): void {
    const m = this.#mask;
    let victim = -1;
    let oldest = 0;
    for (let i = 0; i < PROBES; i++) {
      const c = (h + i) & m;
      if (this.#used[c] === 0 || jdiff(this.#deadline[c] as number, nowJ) <= 0 || this.#hash[c] === h) {
        if (this.#used[c] === 0) this.#pending++;
        this.#set(c, h, deadline, nowJ);
        return;
      }
      const age = jdiff(nowJ, this.#at[c] as number);
      if (victim < 0 || age > oldest) {
        victim = c;
        oldest = age;
      }
    }
    this.#set(victim, h, deadline, nowJ);
  }

  #set(c: number, h: number, deadline: number, nowJ: number): void {
    this.#used[c] = 1;
    this.#hash[c] = h;
    this.#deadline[c] = deadline;
    this.#at[c] = nowJ;
  }

  /**
   * A packet whose tuple hashes to `h` found no entry at `nowJ`. True (and
   * counted once, both records of the connection dropped) when it belongs to
   * an entry evicted before its deadline; `other` is the hash of the
   * packet's inverted tuple (the entry's other direction).
   */
  check(h: number, other: number, nowJ: number): boolean {
    const c = this.#find(h);
    if (c < 0) return false;
    const alive = jdiff(this.#deadline[c] as number, nowJ) > 0;
    this.#clear(c);
    const o = this.#find(other);
    if (o >= 0) this.#clear(o);
    if (alive) this.live++;
    return alive;
  }

  #find(h: number): number {
    const m = this.#mask;
    for (let i = 0; i < PROBES; i++) {
      const c = (h + i) & m;
      if (this.#used[c] !== 0 && this.#hash[c] === h) return c;
    }
    return -1;
  }

  #clear(c: number): void {
    this.#used[c] = 0;
    this.#pending--;
  }
}
