/**
 * ICMP and ICMPv6 entries (nf_conntrack_proto_icmp.c, _icmpv6.c): only
 * request types create one, every packet refreshes the 30 s timeout, never
 * ASSURED. Error messages never reach these trackers: the core resolves them
 * against the quoted packet first (nf_conntrack_inet_error).
 */
import type { PacketView } from "../packet/view.js";
import { IPPROTO } from "../packet/view.js";
import { L4_VERDICT } from "./constants.js";
import type { CtContext, L4Tracker } from "./l4.js";

/** ICMP types that may create an entry: echo, timestamp, info request, address mask (valid_new). */
const ICMP_VALID_NEW = new Uint8Array(256);
ICMP_VALID_NEW[8] = 1;
ICMP_VALID_NEW[13] = 1;
ICMP_VALID_NEW[15] = 1;
ICMP_VALID_NEW[17] = 1;

/** ICMPv6 types that may create an entry: echo request, node information query. */
const ICMPV6_VALID_NEW = new Uint8Array(256);
ICMPV6_VALID_NEW[128] = 1;
ICMPV6_VALID_NEW[139] = 1;

/** ICMP (proto 1, IPv4 only) or ICMPv6 (proto 58, IPv6 only). */
export class IcmpTracker implements L4Tracker {
  readonly proto: number;
  readonly bytesAllocated = 0;

  /** No per-slot state: nothing to grow. */
  grow(_slots: number): void {}
  private readonly v6: boolean;

  constructor(proto: number = IPPROTO.ICMP) {
    this.proto = proto;
    this.v6 = proto === IPPROTO.ICMPV6;
  }

  valid(_p: PacketView, _checksumChecked: boolean): boolean {
    return true;
  }

  /** The valid_new check of nf_conntrack_icmp[v6]_packet for a would-be entry. */
  init(_ctx: CtContext, _slot: number, p: PacketView): boolean {
    if (this.v6) return p.family === 6 && ICMPV6_VALID_NEW[p.icmpType & 0xff] === 1 && p.icmpType >= 0;
    return p.family === 4 && ICMP_VALID_NEW[p.icmpType & 0xff] === 1 && p.icmpType >= 0;
  }

  packet(ctx: CtContext, slot: number, p: PacketView, _dir: 0 | 1, _ctinfo: number): number {
    // ICMP over IPv6 or ICMPv6 over IPv4 is never tracked.
    if (p.family !== (this.v6 ? 6 : 4)) return L4_VERDICT.INVALID;
    ctx.refresh(slot, (this.v6 ? ctx.sysctl.nf_conntrack_icmpv6_timeout : ctx.sysctl.nf_conntrack_icmp_timeout) as number);
    return L4_VERDICT.ACCEPT;
  }

  stateText(_slot: number): string {
    return "";
  }

  canEarlyDrop(_slot: number): boolean {
    return false;
  }
}
