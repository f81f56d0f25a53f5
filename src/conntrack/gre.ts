/**
 * GRE (nf_conntrack_proto_gre.c nf_conntrack_gre_packet): GREv0 is tracked by
 * addresses alone (keys 0, like the generic tracker); PPTP's enhanced GRE
 * (version 1) by call id, but without the PPTP helper no source key is ever
 * known, so each direction of a PPTP session is an entry of its own. The
 * tuple is built by the core (tuple.ts). Timeouts: nf_conntrack_gre_timeout
 * until a reply, then nf_conntrack_gre_timeout_stream and ASSURED.
 */
import type { PacketView } from "../packet/view.js";
import { IPPROTO } from "../packet/view.js";
import { IPCT, IPS, L4_VERDICT } from "./constants.js";
import type { CtContext, L4Tracker } from "./l4.js";

export class GreTracker implements L4Tracker {
  readonly proto = IPPROTO.GRE;
  readonly bytesAllocated = 0;

  /** No per-slot state: nothing to grow. */
  grow(_slots: number): void {}

  valid(_p: PacketView, _checksumChecked: boolean): boolean {
    return true;
  }

  init(_ctx: CtContext, _slot: number, _p: PacketView): boolean {
    return true;
  }

  packet(ctx: CtContext, slot: number, _p: PacketView, _dir: 0 | 1, _ctinfo: number): number {
    const status = ctx.status[slot] as number;
    if (status & IPS.SEEN_REPLY) {
      ctx.refresh(slot, ctx.sysctl.nf_conntrack_gre_timeout_stream);
      if (status & IPS.NAT_CLASH) return L4_VERDICT.ACCEPT;
      if ((status & IPS.ASSURED) === 0) {
        ctx.status[slot] = status | IPS.ASSURED;
        ctx.event(slot, IPCT.ASSURED);
      }
    } else {
      ctx.refresh(slot, ctx.sysctl.nf_conntrack_gre_timeout);
    }
    return L4_VERDICT.ACCEPT;
  }

  stateText(_slot: number): string {
    return "";
  }

  canEarlyDrop(_slot: number): boolean {
    return false;
  }
}
