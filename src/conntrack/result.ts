/**
 * What conntrack decided for one packet: the value `in()`/`process()` return
 * and the record of details the tracker reuses for every packet.
 */
import { CT_STATE } from "./constants.js";
import type { Expectation } from "./helpers/expect.js";

/** Returned by `in()`/`process()` when conntrack itself dropped the packet (NF_DROP). */
export const CT_DROPPED = -1;

/**
 * Details of the last `in()`: one record, reused for every packet (read it
 * before the next one). `state` is what `in()` returned; `ctStateName()`
 * names it.
 */
export class CtResult {
  /** The CT_STATE bit of the packet, 0 when it never entered conntrack (not IP), CT_DROPPED when conntrack dropped it. */
  state: CtStateValue = 0;
  /** CTINFO value, or -1 when the packet has no conntrack. */
  ctinfo = -1;
  /** Entry of the packet, or -1 (invalid, untracked, or the entry was destroyed by this packet). */
  slot = -1;
  /** Direction of the packet in its entry. */
  dir: 0 | 1 = 0;
  /** Conntrack dropped the packet (table full, tracker drop, failed confirmation). */
  dropped = false;
  /** INVALID_REASON of an invalid, errored or dropped packet. */
  invalidReason = 0;
  /** The entry was created by this packet and awaits `confirm()`. */
  isNew = false;
  /** The new entry matched this expectation (RELATED to its master): NAT may follow the master. */
  expected: Expectation | null = null;

  /** `ctStateName(this.state)`. */
  get stateName(): CtStateName {
    return ctStateName(this.state);
  }

  reset(): void {
    this.expected = null;
    this.state = 0;
    this.ctinfo = -1;
    this.slot = -1;
    this.dir = 0;
    this.dropped = false;
    this.invalidReason = 0;
    this.isNew = false;
  }
}

/** What conntrack decided for a packet: a CT_STATE bit, 0 when it never entered conntrack (not IPv4/IPv6), or CT_DROPPED. */
export type CtStateValue = 0 | (typeof CT_STATE)[keyof typeof CT_STATE] | typeof CT_DROPPED;

/** Names of CtStateValue: the nft `ct state` words, "dropped" for CT_DROPPED, "none" for 0. */
export type CtStateName = "none" | "invalid" | "established" | "related" | "new" | "untracked" | "dropped";

/**
 * The name of what conntrack decided for a packet, from `in()`/`process()`'s
 * return value or from `tracker.result`.
 */
export function ctStateName(state: number | Readonly<CtResult>): CtStateName {
  switch (typeof state === "number" ? state : state.state) {
    case CT_STATE.INVALID:
      return "invalid";
    case CT_STATE.ESTABLISHED:
      return "established";
    case CT_STATE.RELATED:
      return "related";
    case CT_STATE.NEW:
      return "new";
    case CT_STATE.UNTRACKED:
      return "untracked";
    case CT_DROPPED:
      return "dropped";
    default:
      return "none";
  }
}
