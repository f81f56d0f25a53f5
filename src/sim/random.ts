/**
 * The seeded pseudo-random generators of ctlab, in one place.
 *
 * Three generators, each kept bit for bit as it was where it came from, so
 * that seeded outputs (kernel comparisons, demo captures, early-drop victims)
 * do not change:
 * - xorshift32 (Marsaglia, shifts 13/17/5): the tracker's random chain limit
 *   of __nf_conntrack_confirm and the firewall's `statistic --mode random`.
 *   Both use {@link xorshift32Next}; they differ only in how a seed becomes
 *   the first state (see {@link xorshift32} and the tracker).
 * - mulberry32: the traffic generators (demo, simulator). Passes PractRand
 *   far enough for traffic shapes, one 32-bit state, no allocation per draw.
 *
 * None of these is cryptographic; none needs to be.
 */

/**
 * One xorshift32 step. The state must be non-zero; the result is the next
 * state as an unsigned 32-bit value (and the draw).
 */
export function xorshift32Next(x: number): number {
  x ^= x << 13;
  x ^= x >>> 17;
  x ^= x << 5;
  return x >>> 0;
}

/**
 * A xorshift32 generator of unsigned 32-bit values; seed 0 becomes
 * 0x9e3779b9 (xorshift's state must not be zero).
 */
export function xorshift32(seed: number): () => number {
  let x = seed >>> 0 || 0x9e3779b9;
  return () => (x = xorshift32Next(x));
}

/** mulberry32's output function: the draw of a state (the state itself advances by 0x6d2b79f5). */
function mulberry32Draw(a: number): number {
  let t = a;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return (t ^ (t >>> 14)) >>> 0;
}

/** A mulberry32 generator of floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    return mulberry32Draw(a) / 4294967296;
  };
}

/**
 * A seeded random stream (mulberry32) with the draws traffic generation
 * needs. `next()` gives the same sequence as `mulberry32(seed)()`.
 */
export class Rng {
  #a: number;

  constructor(seed: number) {
    this.#a = seed >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    this.#a = (this.#a + 0x6d2b79f5) >>> 0;
    return mulberry32Draw(this.#a) / 4294967296;
  }

  /** An unsigned 32-bit integer (from one float draw, as the demo always took it). */
  u32(): number {
    return Math.floor(this.next() * 0x100000000) >>> 0;
  }

  /** An integer in [0, n). */
  below(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** An integer in [lo, hi] (inclusive). */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return p > 0 && this.next() < p;
  }

  /** An exponential variate of the given mean (inter-arrival times of a Poisson process). */
  exp(mean: number): number {
    // 1 - next() is in (0, 1]: log never sees 0.
    return -Math.log(1 - this.next()) * mean;
  }

  /** A log-normal variate with the given median and shape sigma (sizes, lifetimes). */
  logNormal(median: number, sigma: number): number {
    // Box–Muller with one draw pair per variate (the second normal is discarded to keep streams simple).
    const u = 1 - this.next();
    const v = this.next();
    const z = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
    return median * Math.exp(sigma * z);
  }

  /** A new independent stream derived from this one (one draw consumed). */
  fork(): Rng {
    return new Rng(this.u32() ^ 0x5bd1e995);
  }
}
