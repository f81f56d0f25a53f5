/**
 * Protocols without a tracker of their own (nf_conntrack_proto_generic.c
 * generic_packet): the tuple is addresses and protocol number, every packet
 * refreshes nf_conntrack_generic_timeout, nothing is ever ASSURED.
 */
import type { PacketView } from "../packet/view.js";
import { L4_VERDICT } from "./constants.js";
import type { CtContext, L4Tracker } from "./l4.js";

/** The generic tracker; `proto` is 0 because it serves every unknown protocol. */
export class GenericTracker implements L4Tracker {
  readonly proto: number;
  readonly bytesAllocated = 0;

  /** No per-slot state: nothing to grow. */
  grow(_slots: number): void {}

  constructor(proto = 0) {
    this.proto = proto;
  }

  valid(_p: PacketView, _checksumChecked: boolean): boolean {
    return true;
  }

  init(_ctx: CtContext, _slot: number, _p: PacketView): boolean {
    return true;
  }

  packet(ctx: CtContext, slot: number, _p: PacketView, _dir: 0 | 1, _ctinfo: number): number {
    ctx.refresh(slot, ctx.sysctl.nf_conntrack_generic_timeout);
    return L4_VERDICT.ACCEPT;
  }

  stateText(_slot: number): string {
    return "";
  }

  canEarlyDrop(_slot: number): boolean {
    return false;
  }
}
