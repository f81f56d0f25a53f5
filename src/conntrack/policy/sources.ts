/**
 * Entries per source — an address, a prefix (/24, /64) or a zone — for the
 * policies that limit or balance sources (`quota`, `ctlab`). An open-addressed
 * table of exact keys (four address words masked to the prefix, family and
 * zone) with linear probing and backward-shift deletion; it doubles at half
 * load, so a spoofed flood with one source per entry costs one cell per entry
 * (24 bytes) and a lookup per new entry, never anything per packet.
 */
import { FLAG_V6 } from "../table.js";
import type { Table } from "../table.js";
import type { TupleScratch } from "../tuple.js";
import type { SourceCounts } from "./policy.js";

/** How entries are grouped. */
export type SourceGrouping = "address" | "prefix" | "zone";

const W = 6; // words per cell: 4 address words, family << 16 | zone, count

function maskOf(bits: number): number {
  if (bits <= 0) return 0;
  if (bits >= 32) return 0xffffffff;
  return (0xffffffff << (32 - bits)) >>> 0;
}

export class SourceCounter implements SourceCounts {
  #cells: Uint32Array;
  #mask: number;
  #size = 0;
  /** Distinct sources holding at least one entry. */
  get sources(): number {
    return this.#size;
  }
  readonly #m4: number;
  readonly #m6: readonly [number, number, number, number];
  readonly #byZoneOnly: boolean;
  readonly #table: Table;
  // The key being looked up.
  #k0 = 0;
  #k1 = 0;
  #k2 = 0;
  #k3 = 0;
  #kt = 0;

  constructor(table: Table, grouping: SourceGrouping, prefix4: number, prefix6: number) {
    this.#table = table;
    this.#byZoneOnly = grouping === "zone";
    const p4 = grouping === "address" ? 32 : prefix4;
    const p6 = grouping === "address" ? 128 : prefix6;
    this.#m4 = maskOf(p4);
    this.#m6 = [maskOf(p6), maskOf(p6 - 32), maskOf(p6 - 64), maskOf(p6 - 96)];
    this.#cells = new Uint32Array(1024 * W);
    this.#mask = 1023;
  }

  get bytes(): number {
    return this.#cells.byteLength;
  }

  #key(v6: boolean, zone: number, a0: number, a1: number, a2: number, a3: number): void {
    if (this.#byZoneOnly) {
      this.#k0 = this.#k1 = this.#k2 = this.#k3 = 0;
      this.#kt = zone;
      return;
    }
    if (v6) {
      const m = this.#m6;
      this.#k0 = (a0 & m[0]) >>> 0;
      this.#k1 = (a1 & m[1]) >>> 0;
      this.#k2 = (a2 & m[2]) >>> 0;
      this.#k3 = (a3 & m[3]) >>> 0;
    } else {
      this.#k0 = (a0 & this.#m4) >>> 0;
      this.#k1 = this.#k2 = this.#k3 = 0;
    }
    this.#kt = ((v6 ? 6 : 4) << 16) | zone;
  }

  #slotKey(slot: number): void {
    const tb = this.#table;
    const v6 = ((tb.flags[slot] as number) & FLAG_V6) !== 0;
    const w = tb.v6;
    const o = slot * 6;
    this.#key(
      v6,
      tb.zone[slot] as number,
      tb.saddr[slot] as number,
      v6 && w !== null ? (w[o] as number) : 0,
      v6 && w !== null ? (w[o + 1] as number) : 0,
      v6 && w !== null ? (w[o + 2] as number) : 0,
    );
  }

  #hash(): number {
    let h = Math.imul(this.#k0 ^ 0x9e3779b9, 0x85ebca6b);
    h = Math.imul(h ^ this.#k1 ^ (h >>> 15), 0xc2b2ae35);
    h = Math.imul(h ^ this.#k2 ^ (h >>> 13), 0x85ebca6b);
    h = Math.imul(h ^ this.#k3 ^ (h >>> 16), 0xc2b2ae35);
    h = Math.imul(h ^ this.#kt ^ (h >>> 15), 0x27d4eb2f);
    return (h ^ (h >>> 16)) >>> 0;
  }

  /** The cell of the current key, or the empty cell where it would go (as ~cell). */
  #find(): number {
    const c = this.#cells;
    const m = this.#mask;
    for (let i = this.#hash() & m; ; i = (i + 1) & m) {
      const o = i * W;
      if (c[o + 5] === 0) return ~i;
      if (c[o] === this.#k0 && c[o + 1] === this.#k1 && c[o + 2] === this.#k2 && c[o + 3] === this.#k3 && c[o + 4] === this.#kt) return i;
    }
  }

  /** Entries of the source of tuple `t` (its ORIGINAL source). */
  countOfTuple(t: TupleScratch): number {
    this.#key(t.family === 6, t.zone, t.s0, t.s1, t.s2, t.s3);
    const i = this.#find();
    return i < 0 ? 0 : (this.#cells[i * W + 5] as number);
  }

  /** Entries of the source of a slot. */
  countOfSlot(slot: number): number {
    this.#slotKey(slot);
    const i = this.#find();
    return i < 0 ? 0 : (this.#cells[i * W + 5] as number);
  }

  added(slot: number): void {
    this.#slotKey(slot);
    let i = this.#find();
    const c = this.#cells;
    if (i >= 0) {
      c[i * W + 5] = (c[i * W + 5] as number) + 1;
      return;
    }
    if ((this.#size + 1) * 2 > this.#mask + 1) {
      this.#grow();
      this.#slotKey(slot);
      i = this.#find();
    }
    const o = ~i * W;
    const cells = this.#cells;
    cells[o] = this.#k0;
    cells[o + 1] = this.#k1;
    cells[o + 2] = this.#k2;
    cells[o + 3] = this.#k3;
    cells[o + 4] = this.#kt;
    cells[o + 5] = 1;
    this.#size++;
  }

  removed(slot: number): void {
    this.#slotKey(slot);
    const i = this.#find();
    if (i < 0) return;
    const c = this.#cells;
    const n = (c[i * W + 5] as number) - 1;
    if (n > 0) {
      c[i * W + 5] = n;
      return;
    }
    this.#size--;
    // Backward-shift deletion: pull later cells of the run into the hole.
    const m = this.#mask;
    let hole = i;
    for (let j = (i + 1) & m; c[j * W + 5] !== 0; j = (j + 1) & m) {
      const o = j * W;
      this.#k0 = c[o] as number;
      this.#k1 = c[o + 1] as number;
      this.#k2 = c[o + 2] as number;
      this.#k3 = c[o + 3] as number;
      this.#kt = c[o + 4] as number;
      const home = this.#hash() & m;
      // Move j into the hole unless its home lies cyclically in (hole, j].
      const between = hole <= j ? home > hole && home <= j : home > hole || home <= j;
      if (between) continue;
      c.copyWithin(hole * W, o, o + W);
      hole = j;
    }
    c.fill(0, hole * W, hole * W + W);
  }

  #grow(): void {
    const old = this.#cells;
    const n = (this.#mask + 1) * 2;
    this.#cells = new Uint32Array(n * W);
    this.#mask = n - 1;
    const c = this.#cells;
    for (let o = 0; o < old.length; o += W) {
      if (old[o + 5] === 0) continue;
      this.#k0 = old[o] as number;
      this.#k1 = old[o + 1] as number;
      this.#k2 = old[o + 2] as number;
      this.#k3 = old[o + 3] as number;
      this.#kt = old[o + 4] as number;
      const i = ~this.#find();
      c.set(old.subarray(o, o + W), i * W);
    }
  }
}
