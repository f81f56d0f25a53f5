/**
 * Expectations (net/netfilter/nf_conntrack_expect.c): connections a helper
 * announced from what it read in its master's payload. A new connection
 * whose original tuple matches one (under its mask) is RELATED to the
 * master: init_conntrack sets IPS_EXPECTED, links the master, copies its
 * mark and runs the expectation's function (NAT follows the master).
 *
 * Kept as a short array: a table holds at most nf_conntrack_expect_max
 * expectations, a handful in practice, and the tracker asks for one only
 * while `count` is non-zero, so connections without helpers pay one
 * counter check.
 */
import { ipText } from "../format.js";

/** NF_CT_EXPECT_CLASS_DEFAULT. */
export const EXPECT_CLASS_DEFAULT = 0;

/** One expectation. Addresses are four words (IPv4 in word 0). */
export interface Expectation {
  readonly family: 4 | 6;
  readonly proto: number;
  readonly src: Uint32Array;
  /** The source address must match (the mask is all ones); false: any source. */
  readonly srcMasked: boolean;
  readonly sport: number;
  /** The source port must match; false: any source port. */
  readonly sportMasked: boolean;
  readonly dst: Uint32Array;
  dport: number;
  readonly zone: number;
  /** The master's slot, its helper and the class of the expectation. */
  readonly master: number;
  readonly helper: string;
  readonly cls: number;
  /** Deadline on the tracker clock (ms). */
  deadlineMs: number;
  /** NAT: run nf_nat_follow_master on the expected connection, with this port and master direction. */
  natFollow: boolean;
  savedPort: number;
  natDir: 0 | 1;
  /** Creation order, so that "oldest" is well defined. */
  readonly seq: number;
}

/** Receives expectation events as `conntrack -E expect` prints them. */
export type ExpectEventSink = (kind: "NEW" | "DESTROY", line: string) => void;

/** What the tracker gives the table: the master's tuples for listing, and the clock. */
export interface ExpectHost {
  /** The master's tuple in a direction: addresses (4 words each) and ports. */
  masterTuple(slot: number, dir: 0 | 1): { src: ArrayLike<number>; dst: ArrayLike<number>; sport: number; dport: number };
}

/** Why `add` refused an expectation (the helper then drops the packet). */
export const EXPECT_ERR = { OK: 0, ALREADY: 1, BUSY: 2, MFILE: 3 } as const;

/** The expectation table of one network namespace. */
export class ExpectTable {
  /** cnet->expect_count. */
  count = 0;
  private readonly list: Expectation[] = [];
  private seq = 0;
  /** Earliest deadline, so that expiry costs one comparison per packet. */
  private nextDeadline = Infinity;

  constructor(
    /** nf_conntrack_expect_max. */
    readonly max: number,
    private readonly host: ExpectHost,
    private readonly sink: ExpectEventSink | null,
    /** expect_create and expect_delete of /proc/net/stat/nf_conntrack. */
    private readonly stats: { expect_create: number; expect_delete: number },
  ) {}

  /** Expectations in the kernel's listing order (newest first, as hlist_add_head leaves them). */
  all(): readonly Expectation[] {
    return [...this.list].reverse();
  }

  /** Of one master. */
  of(master: number): Expectation[] {
    return this.list.filter((e) => e.master === master);
  }

  /**
   * nf_ct_expect_related: checks, evicts the master's oldest when over the
   * helper's max_expected, inserts. Returns EXPECT_ERR.
   */
  add(e: Omit<Expectation, "seq">, maxExpected: number, nowMs: number): number {
    this.expire(nowMs);
    // __nf_ct_expect_check: the same expectation is replaced; one that overlaps another master's is refused.
    for (let i = 0; i < this.list.length; i++) {
      const x = this.list[i] as Expectation;
      if (x.master === e.master && sameExpect(x, e)) {
        if (x.cls !== e.cls) return EXPECT_ERR.ALREADY;
        this.removeAt(i, nowMs);
        break;
      }
      if (clash(x, e)) return EXPECT_ERR.BUSY;
    }
    if (maxExpected > 0) {
      let n = 0;
      for (const x of this.list) if (x.master === e.master && x.cls === e.cls) n++;
      if (n >= maxExpected) {
        // evict_oldest_expect: the master's list is newest first, its last of the class is the oldest.
        let oldest = -1;
        for (let i = 0; i < this.list.length; i++) {
          const x = this.list[i] as Expectation;
          if (x.master === e.master && x.cls === e.cls) {
            oldest = i;
            break;
          }
        }
        if (oldest >= 0) this.removeAt(oldest, nowMs);
        n--;
        if (n >= maxExpected) return EXPECT_ERR.MFILE;
      }
    }
    if (this.count >= this.max) return EXPECT_ERR.MFILE;
    const full: Expectation = { ...e, seq: this.seq++ };
    this.list.push(full);
    this.count++;
    this.stats.expect_create++;
    if (full.deadlineMs < this.nextDeadline) this.nextDeadline = full.deadlineMs;
    if (this.sink !== null) this.sink("NEW", this.format(full, nowMs));
    return EXPECT_ERR.OK;
  }

  /**
   * nf_ct_find_expectation for the original tuple of a new connection: the
   * first active match whose master is confirmed and alive, unlinked
   * (DESTROY event). Null when none.
   */
  take(
    family: number,
    proto: number,
    zone: number,
    s: ArrayLike<number>,
    d: ArrayLike<number>,
    sport: number,
    dport: number,
    masterUsable: (slot: number) => boolean,
    nowMs: number,
  ): Expectation | null {
    this.expire(nowMs);
    const n = family === 6 ? 4 : 1;
    for (let i = 0; i < this.list.length; i++) {
      const x = this.list[i] as Expectation;
      if (x.family !== family || x.proto !== proto || x.zone !== zone || x.dport !== dport) continue;
      if (x.sportMasked && x.sport !== sport) continue;
      if (!wordsEqual(x.dst, d, n)) continue;
      if (x.srcMasked && !wordsEqual(x.src, s, n)) continue;
      if (!masterUsable(x.master)) return null;
      this.removeAt(i, nowMs);
      return x;
    }
    return null;
  }

  /** nf_ct_remove_expectations: the master is going away. */
  removeMaster(master: number, nowMs: number): void {
    for (let i = this.list.length - 1; i >= 0; i--) if ((this.list[i] as Expectation).master === master) this.removeAt(i, nowMs);
  }

  /** Expectation timers that fired by `nowMs` (nf_ct_expectation_timed_out). */
  expire(nowMs: number): void {
    if (nowMs < this.nextDeadline) return;
    let next = Infinity;
    for (let i = 0; i < this.list.length; i++) {
      const x = this.list[i] as Expectation;
      if (x.deadlineMs <= nowMs) {
        this.removeAt(i--, nowMs);
        continue;
      }
      if (x.deadlineMs < next) next = x.deadlineMs;
    }
    this.nextDeadline = next;
  }

  /** nf_ct_unlink_expect_report: the DESTROY event shows the time that was left. */
  private removeAt(i: number, nowMs: number): void {
    const x = this.list[i] as Expectation;
    this.list.splice(i, 1);
    this.count--;
    this.stats.expect_delete++;
    if (this.sink !== null) this.sink("DESTROY", this.format(x, nowMs));
  }

  /**
   * One `conntrack -L expect` line (libnetfilter_conntrack's expect
   * default format): remaining seconds, the expected tuple, its mask, the
   * master's original tuple, class and helper.
   */
  format(x: Expectation, nowMs: number): string {
    const fam = x.family;
    const a = (w: ArrayLike<number>) => ipText(fam, w[0] as number, w[1] as number, w[2] as number, w[3] as number);
    const ones = fam === 4 ? "255.255.255.255" : "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
    const zero = fam === 4 ? "0.0.0.0" : "::";
    const left = Math.max(0, Math.floor((x.deadlineMs - nowMs) / 1000));
    const m = this.host.masterTuple(x.master, 0);
    let s = `${left} proto=${x.proto} `;
    s += `src=${x.srcMasked ? a(x.src) : zero} dst=${a(x.dst)} sport=${x.sportMasked ? x.sport : 0} dport=${x.dport} `;
    s += `mask-src=${x.srcMasked ? ones : zero} mask-dst=${ones} sport=${x.sportMasked ? 65535 : 0} dport=65535 `;
    s += `master-src=${a(m.src)} master-dst=${a(m.dst)} sport=${m.sport} dport=${m.dport} `;
    s += `class=${x.cls} helper=${x.helper}`;
    return s;
  }

  /** `conntrack -L expect`, at `nowMs`. */
  formatTable(nowMs: number): string[] {
    this.expire(nowMs);
    return this.all().map((x) => this.format(x, nowMs));
  }
}

function wordsEqual(a: ArrayLike<number>, b: ArrayLike<number>, n: number): boolean {
  for (let i = 0; i < n; i++) if ((a[i] as number) >>> 0 !== (b[i] as number) >>> 0) return false;
  return true;
}

/** expect_matches: the same tuple and mask. */
function sameExpect(a: Expectation, b: Omit<Expectation, "seq">): boolean {
  const n = a.family === 6 ? 4 : 1;
  return (
    a.family === b.family &&
    a.proto === b.proto &&
    a.zone === b.zone &&
    a.dport === b.dport &&
    a.srcMasked === b.srcMasked &&
    a.sportMasked === b.sportMasked &&
    a.sport === b.sport &&
    wordsEqual(a.dst, b.dst, n) &&
    wordsEqual(a.src, b.src, n)
  );
}

/** expect_clash: the tuples agree under the intersection of their masks. */
function clash(a: Expectation, b: Omit<Expectation, "seq">): boolean {
  const n = a.family === 6 ? 4 : 1;
  if (a.family !== b.family || a.proto !== b.proto || a.zone !== b.zone || a.dport !== b.dport || !wordsEqual(a.dst, b.dst, n)) return false;
  if (a.srcMasked && b.srcMasked && !wordsEqual(a.src, b.src, n)) return false;
  if (a.sportMasked && b.sportMasked && a.sport !== b.sport) return false;
  return true;
}
