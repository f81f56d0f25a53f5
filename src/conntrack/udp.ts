/**
 * UDP and UDP-Lite tracking (net/netfilter/nf_conntrack_proto_udp.c):
 * nf_conntrack_udp_timeout until a reply is seen; once replies were seen and
 * the entry is older than 2 s, nf_conntrack_udp_timeout_stream and ASSURED.
 * UDP-Lite skips the 2 s rule. The transport checksum itself is verified by
 * the core (nf_conntrack_checksum at PRE_ROUTING) after `valid()`.
 */
import { be16 } from "../packet/bytes.js";
import type { PacketView } from "../packet/view.js";
import { IPPROTO } from "../packet/view.js";
import { IPCT, IPS, L4_VERDICT } from "./constants.js";
import { HZ, jdiff, jiffiesAt } from "./jiffies.js";
import type { CtContext, L4Tracker } from "./l4.js";

/** Reads a big-endian u16 of the transport header, or -1 when it was not captured. */
function l4u16(p: PacketView, at: number): number {
  const off = p.l4Off + at;
  if (at + 2 > p.l4CapLen || off + 2 > p.data.length) return -1;
  return be16(p.data, off);
}

/** UDP (proto 17) or UDP-Lite (proto 136). */
export class UdpTracker implements L4Tracker {
  readonly proto: number;
  private capacity: number;
  private readonly lite: boolean;
  /** ct->proto.udp.stream_ts (u32 jiffies), allocated with the first UDP entry. */
  private streamTs: Uint32Array | null = null;
  /** Why the last `valid()` returned false, as the kernel logs it. */
  invalidReason = "";

  constructor(capacity: number, proto: number = IPPROTO.UDP) {
    this.capacity = capacity;
    this.proto = proto;
    this.lite = proto === IPPROTO.UDPLITE;
  }

  get bytesAllocated(): number {
    return this.streamTs === null ? 0 : this.streamTs.byteLength;
  }

  /** Grows the per-slot store (when allocated) to `slots` slots. */
  grow(slots: number): void {
    if (slots <= this.capacity) return;
    if (this.streamTs !== null) {
      const ts = new Uint32Array(slots);
      ts.set(this.streamTs);
      this.streamTs = ts;
    }
    this.capacity = slots;
  }

  /** udp_error / udplite_error, without the checksum verification. */
  valid(p: PacketView, _checksumChecked: boolean): boolean {
    const len = p.l4Len;
    if (len < 8) {
      this.invalidReason = "short packet";
      return false;
    }
    const field = l4u16(p, 4);
    if (!this.lite) {
      // udp_validate_len: the length field must fit in what the IP header carries.
      if (field >= 0 && (field > len || field < 8)) {
        this.invalidReason = "truncated/malformed packet";
        return false;
      }
      return true;
    }
    // UDP-Lite: the length field is the checksum coverage (0 = everything).
    if (field > 0 && (field < 8 || field > len)) {
      this.invalidReason = "invalid checksum coverage";
      return false;
    }
    if (l4u16(p, 6) === 0) {
      this.invalidReason = "checksum missing";
      return false;
    }
    return true;
  }

  init(_ctx: CtContext, _slot: number, _p: PacketView): boolean {
    return true;
  }

  packet(ctx: CtContext, slot: number, _p: PacketView, _dir: 0 | 1, _ctinfo: number): number {
    const sys = ctx.sysctl;
    const unreplied = sys.nf_conntrack_udp_timeout;
    const replied = sys.nf_conntrack_udp_timeout_stream;
    const status = ctx.status[slot] as number;
    if (this.lite) {
      if (status & IPS.SEEN_REPLY) {
        ctx.refresh(slot, replied);
        if (status & IPS.NAT_CLASH) return L4_VERDICT.ACCEPT;
        if ((status & IPS.ASSURED) === 0) {
          ctx.status[slot] = (ctx.status[slot] as number) | IPS.ASSURED;
          ctx.event(slot, IPCT.ASSURED);
        }
      } else {
        ctx.refresh(slot, unreplied);
      }
      return L4_VERDICT.ACCEPT;
    }
    const now = jiffiesAt(ctx.now);
    let ts = this.streamTs;
    if ((status & IPS.CONFIRMED) === 0) {
      if (ts === null) ts = this.streamTs = new Uint32Array(this.capacity);
      ts[slot] = (now + 2 * HZ) >>> 0;
    }
    if (status & IPS.SEEN_REPLY) {
      let extra = unreplied;
      let stream = false;
      // Still active after two seconds? Extend the timeout (time_after).
      if (ts !== null && jdiff(ts[slot] as number, now) < 0) {
        extra = replied;
        stream = (status & IPS.ASSURED) === 0;
      }
      ctx.refresh(slot, extra);
      // Never ASSURED for clash-resolved NAT entries: they time out soon.
      if (status & IPS.NAT_CLASH) return L4_VERDICT.ACCEPT;
      if (stream && ((ctx.status[slot] as number) & IPS.ASSURED) === 0) {
        ctx.status[slot] = (ctx.status[slot] as number) | IPS.ASSURED;
        ctx.event(slot, IPCT.ASSURED);
      }
    } else {
      ctx.refresh(slot, unreplied);
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
