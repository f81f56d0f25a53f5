/**
 * The conntrack helper interface (struct nf_conntrack_helper): a helper
 * attached to a connection reads every packet of it at the confirm hook
 * (nf_confirm, before __nf_conntrack_confirm; not ICMP errors, RELATED_REPLY)
 * and may register expectations. Helpers are attached only by explicit
 * assignment (iptables `-j CT --helper`, nft `ct helper set`): the kernel
 * removed the nf_conntrack_helper automatic assignment in 6.0.
 */
import type { PacketView } from "../../packet/view.js";
import type { Expectation } from "./expect.js";

/** What a helper may ask of the tracker. */
export interface HelperContext {
  /** The entry's address (4 words) at one end of one direction's tuple. */
  addr(slot: number, dir: 0 | 1, end: "src" | "dst"): Uint32Array;
  port(slot: number, dir: 0 | 1, end: "src" | "dst"): number;
  familyOf(slot: number): 4 | 6;
  zoneOf(slot: number): number;
  statusOf(slot: number): number;
  /** nf_ct_expect_related with the helper's policy; false when refused (the packet is then dropped). */
  expectRelated(e: Omit<Expectation, "seq" | "deadlineMs" | "helper" | "cls">, slot: number): boolean;
  /** nf_ct_helper_log. */
  log(slot: number, p: PacketView, message: string): void;
}

/** A helper: its name, protocol, expectation policy, per-connection state and packet function. */
export interface ConntrackHelper<S = unknown> {
  readonly name: string;
  /** IPPROTO of the connections it may be attached to. */
  readonly proto: number;
  /** nf_conntrack_expect_policy of class 0. */
  readonly maxExpected: number;
  readonly timeoutSec: number;
  /** The helper's private area of a new connection (nfct_help_data). */
  newState(): S;
  /** helper->help: false means NF_DROP. `dir` is the packet's direction. */
  help(ctx: HelperContext, p: PacketView, slot: number, ctinfo: number, dir: 0 | 1, state: S): boolean;
}
