/**
 * ICMP and ICMPv6 entries (nf_conntrack_proto_icmp.c, _icmpv6.c): only
 * request types create one, every packet refreshes the 30 s timeout, never
 * ASSURED. Error messages never reach these trackers: `IcmpErrorPath`, which
 * the core runs first, resolves them against the connection of the quoted
 * packet (nf_conntrack_icmpv4_error, nf_conntrack_icmpv6_error,
 * nf_conntrack_inet_error).
 */
import { be16, be32 } from "../packet/bytes.js";
import { l4ChecksumOk } from "../packet/checksum.js";
import { Ipv6Walk, ipv6SkipExthdr } from "../packet/ipv6.js";
import { NEXTHDR } from "../packet/proto.js";
import type { PacketView } from "../packet/view.js";
import { IPPROTO } from "../packet/view.js";
import { CT_STATE, CTINFO, L4_VERDICT } from "./constants.js";
import { ipText } from "./format.js";
import type { CtContext, L4Tracker } from "./l4.js";
import type { CtResult } from "./result.js";
import type { ConntrackStats } from "./stats.js";
import { INVALID_REASON } from "./stats.js";
import { TupleScratch } from "./tuple.js";

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
    ctx.refresh(slot, this.v6 ? ctx.sysctl.nf_conntrack_icmpv6_timeout : ctx.sysctl.nf_conntrack_icmp_timeout);
    return L4_VERDICT.ACCEPT;
  }

  stateText(_slot: number): string {
    return "";
  }

  canEarlyDrop(_slot: number): boolean {
    return false;
  }
}

/** What `IcmpErrorPath.error` returns: not an error message, a failed check (counted), attached as RELATED, never tracked. */
export const ICMP_ERROR_NONE = 0;
export const ICMP_ERROR_FAILED = 1;
export const ICMP_ERROR_ATTACHED = 2;
export const ICMP_ERROR_UNTRACKED = 3;

/** What the ICMP error path may see and do of the table: the engine implements it. */
export interface IcmpErrorContext {
  readonly stats: ConntrackStats;
  readonly result: CtResult;
  /** Whether log lines go anywhere (messages are only built then). */
  readonly logging: boolean;
  log(slot: number, p: PacketView, message: string): void;
  /** nf_conntrack_find_get: the entry with `t` as either tuple, or -1 (the hash of `t` is computed here). */
  findTuple(t: TupleScratch): number;
  /** Direction in which the last `findTuple` matched. */
  readonly foundDir: 0 | 1;
  tupleOf(slot: number, dir: 0 | 1, out: TupleScratch): void;
  /** The packet being processed belongs to `slot` (nf_ct_set): its cached events are delivered at confirmation. */
  attachPacket(slot: number): void;
}

/**
 * The error half of nf_conntrack_proto_icmp.c and _icmpv6.c, which the core
 * runs before the lookup of every ICMP/ICMPv6 packet.
 */
export class IcmpErrorPath {
  private readonly inner = new TupleScratch();
  private readonly scratch = new TupleScratch();

  /**
   * nf_conntrack_icmpv4_error / nf_conntrack_icmpv6_error: header checks for
   * every ICMP packet, ND/MLD untracked, errors resolved as RELATED to the
   * connection of the quoted packet. Failures count `error`, not `invalid`.
   */
  error(ctx: IcmpErrorContext, p: PacketView, csum: boolean, zone: number): number {
    const v6 = p.family === 6;
    if (p.l4Len < 8 || p.icmpType < 0) return this.fail(ctx, p, INVALID_REASON.ICMP_ERROR_MALFORMED, "short packet");
    if (csum && !l4ChecksumOk(p)) {
      return this.fail(ctx, p, INVALID_REASON.ICMP_ERROR_MALFORMED, v6 ? "ICMPv6 checksum failed" : "bad hw icmp checksum");
    }
    const type = p.icmpType;
    if (!v6) {
      // 18 is the highest known ICMP type (NR_ICMP_TYPES); RFC 1122 says drop the rest.
      if (type > 18) return this.fail(ctx, p, INVALID_REASON.ICMP_ERROR_MALFORMED, "invalid icmp type");
      if (type !== 3 && type !== 4 && type !== 5 && type !== 11 && type !== 12) return ICMP_ERROR_NONE;
      return this.inetError(ctx, p, this.inner.fromInner(p, zone));
    }
    // MLD and neighbour discovery are never tracked (noct_valid_new).
    if ((type >= 130 && type <= 136) || type === 143) return ICMP_ERROR_UNTRACKED;
    if (type === 137) return this.redirect(ctx, p, zone);
    if (type >= 128) return ICMP_ERROR_NONE;
    return this.inetError(ctx, p, this.inner.fromInner(p, zone));
  }

  private fail(ctx: IcmpErrorContext, p: PacketView, reason: number, message: string): number {
    ctx.stats.error++;
    ctx.stats.byReason[reason] = (ctx.stats.byReason[reason] as number) + 1;
    ctx.result.state = CT_STATE.INVALID;
    ctx.result.invalidReason = reason;
    if (message !== "") ctx.log(-1, p, message);
    return ICMP_ERROR_FAILED;
  }

  /**
   * nf_conntrack_icmpv6_redirect: a redirect (code 0, hop limit 255,
   * link-local source) carrying a redirected-header option is related to
   * the connection of the packet it quotes.
   */
  private redirect(ctx: IcmpErrorContext, p: PacketView, zone: number): number {
    // struct rd_msg: ICMPv6 header, target and destination addresses.
    if (p.l4Len < 40) return this.fail(ctx, p, INVALID_REASON.ICMP_ERROR_MALFORMED, "short redirect");
    if (p.icmpCode !== 0) return ICMP_ERROR_NONE;
    const s0 = p.src[0] as number;
    if (p.ttl !== 255 || s0 >>> 22 !== 0x3fa) {
      return this.fail(ctx, p, INVALID_REASON.ICMP_ERROR_MALFORMED, "invalid saddr or hoplimit for redirect");
    }
    const data = p.data;
    const opt = p.l4Off + 40;
    const end = Math.min(p.l4Off + Math.min(p.l4Len, p.l4CapLen), data.length);
    if (opt + 2 > end || data[opt + 1] === 0) return this.fail(ctx, p, INVALID_REASON.ICMP_ERROR_MALFORMED, "redirect without options");
    // ND_OPT_REDIRECT_HDR; other options are not parsed (the kernel does not either).
    if (data[opt] !== 4) return ICMP_ERROR_NONE;
    const ok = p.innerOk ? this.inner.fromInner(p, zone) : parseInnerV6(p, opt + 8, end, this.inner, zone);
    return this.inetError(ctx, p, ok);
  }

  /** nf_conntrack_inet_error: find the connection of the quoted packet and attach the error to it. */
  private inetError(ctx: IcmpErrorContext, p: PacketView, built: boolean): number {
    const it = this.inner;
    if (!built || !it.invertible) return this.fail(ctx, p, INVALID_REASON.ICMP_ERROR_MALFORMED, "");
    // The quoted packet went the other way: its inverse is what we look up.
    it.invert();
    const slot = ctx.findTuple(it);
    if (slot < 0) return this.fail(ctx, p, INVALID_REASON.ICMP_ERROR_NO_MATCH, "");
    const dir = ctx.foundDir;
    // Anti-spoofing: the error must go to the connection's destination in that direction.
    const s = this.scratch;
    ctx.tupleOf(slot, dir, s);
    const d = p.dst;
    const same = s.d0 === (d[0] as number) && (s.family === 4 || (s.d1 === (d[1] as number) && s.d2 === (d[2] as number) && s.d3 === (d[3] as number)));
    if (!same) {
      let msg = "";
      if (ctx.logging) {
        const fam = s.family;
        const outer = ipText(fam, d[0] as number, d[1] as number, d[2] as number, d[3] as number);
        msg = `outer daddr ${outer} != inner ${ipText(fam, s.d0, s.d1, s.d2, s.d3)}`;
      }
      return this.fail(ctx, p, INVALID_REASON.ICMP_ERROR_MISMATCH, msg);
    }
    const r = ctx.result;
    r.ctinfo = dir === 1 ? CTINFO.RELATED_REPLY : CTINFO.RELATED;
    r.state = CT_STATE.RELATED;
    r.slot = slot;
    r.dir = dir;
    ctx.attachPacket(slot);
    return ICMP_ERROR_ATTACHED;
  }
}

const innerWalk = new Ipv6Walk();

/**
 * The quoted IPv6 packet of a redirect, parsed from the bytes at `off` (the
 * decoder only quotes error messages): nf_ct_get_tuplepr over the inner
 * header, extension headers skipped by ipv6_skip_exthdr() (a chain ending in
 * "no next header" or cut short fails), a non-first fragment refused.
 */
function parseInnerV6(p: PacketView, off: number, end: number, t: TupleScratch, zone: number): boolean {
  const d = p.data;
  if (off + 40 > end) return false;
  const l4 = ipv6SkipExthdr(d, off + 40, end, d[off + 6] as number, innerWalk);
  const nh = innerWalk.nexthdr;
  if (l4 < 0 || nh === NEXTHDR.FRAGMENT) return false;
  let sport = 0;
  let dport = 0;
  if (nh === IPPROTO.TCP || nh === IPPROTO.UDP || nh === IPPROTO.UDPLITE || nh === IPPROTO.SCTP) {
    if (l4 + 4 > end) return false;
    sport = be16(d, l4);
    dport = be16(d, l4 + 2);
  } else if (nh === IPPROTO.ICMPV6 || nh === IPPROTO.ICMP) {
    if (l4 + 8 > end) return false;
    sport = be16(d, l4 + 4);
    dport = be16(d, l4);
  }
  t.setWords(
    6,
    nh,
    zone,
    be32(d, off + 8),
    be32(d, off + 12),
    be32(d, off + 16),
    be32(d, off + 20),
    be32(d, off + 24),
    be32(d, off + 28),
    be32(d, off + 32),
    be32(d, off + 36),
    sport,
    dport,
  );
  return true;
}
