/**
 * The conntrack tuple of a packet (nf_ct_get_tuple, nf_ct_invert_tuple) in a
 * reused scratch object, and its hash (hash_conntrack_raw).
 *
 * Encoding shared with the table's per-slot arrays:
 * - ports protocols (TCP, UDP, UDP-Lite, SCTP): sport/dport are the ports;
 * - ICMP/ICMPv6: sport = echo identifier, dport = type << 8 | code;
 * - GRE: sport = source key, dport = destination key (PPTP call ids);
 * - anything else: both 0 (the tuple is the addresses and the protocol).
 */
import { be16 } from "../packet/bytes.js";
import type { PacketView } from "../packet/view.js";
import { IPPROTO } from "../packet/view.js";

/** ICMP types that have a request/reply partner: invmap of nf_conntrack_proto_icmp.c, -1 when none. */
const ICMP_INV = new Int16Array(256).fill(-1);
ICMP_INV[8] = 0;
ICMP_INV[0] = 8;
ICMP_INV[13] = 14;
ICMP_INV[14] = 13;
ICMP_INV[15] = 16;
ICMP_INV[16] = 15;
ICMP_INV[17] = 18;
ICMP_INV[18] = 17;

/** invmap of nf_conntrack_proto_icmpv6.c: echo 128↔129, node information 139↔140. */
const ICMPV6_INV = new Int16Array(256).fill(-1);
ICMPV6_INV[128] = 129;
ICMPV6_INV[129] = 128;
ICMPV6_INV[139] = 140;
ICMPV6_INV[140] = 139;

/**
 * The reply type of an ICMP (proto 1) or ICMPv6 (proto 58) type, or -1 when
 * the type cannot be inverted (nf_conntrack_invert_icmp[v6]_tuple fails).
 */
export function icmpInverseType(proto: number, type: number): number {
  if (type < 0 || type > 255) return -1;
  return (proto === IPPROTO.ICMPV6 ? ICMPV6_INV[type] : ICMP_INV[type]) as number;
}

/** GRE protocol type of PPP, the only one PPTP's enhanced GRE carries (GRE_PROTO_PPP). */
const GRE_PROTO_PPP = 0x880b;

// ---- hashing -------------------------------------------------------------------------

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

function mix(h: number, k: number): number {
  k = Math.imul(k, C1);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, C2);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

/** MurmurHash3's finaliser: full avalanche of a 32-bit value. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * A packet's tuple, filled in place. One instance per tracker for the packet
 * and one for the quoted packet of ICMP errors; nothing here allocates.
 */
export class TupleScratch {
  family: 4 | 6 = 4;
  proto = 0;
  zone = 0;
  s0 = 0;
  s1 = 0;
  s2 = 0;
  s3 = 0;
  d0 = 0;
  d1 = 0;
  d2 = 0;
  d3 = 0;
  /** Tuple keys in ORIGINAL orientation (see the module comment). */
  sport = 0;
  dport = 0;
  /**
   * The keys an entry's ORIGINAL tuple has when this tuple is its reply
   * (ports swapped, ICMP type inverted); meaningful only when `invertible`.
   */
  rsport = 0;
  rdport = 0;
  /** nf_ct_invert_tuple would succeed (false for ICMP types without a partner). */
  invertible = true;
  /** Hash of the tuple in its direction (computeHash). */
  hash = 0;

  /** Family, protocol, zone and addresses (four words each; IPv4 in word 0). */
  private setL3(family: 4 | 6, proto: number, zone: number, src: Uint32Array, dst: Uint32Array): void {
    this.family = family;
    this.proto = proto;
    this.zone = zone;
    this.s0 = src[0] as number;
    this.d0 = dst[0] as number;
    if (family === 6) {
      this.s1 = src[1] as number;
      this.s2 = src[2] as number;
      this.s3 = src[3] as number;
      this.d1 = dst[1] as number;
      this.d2 = dst[2] as number;
      this.d3 = dst[3] as number;
    } else {
      this.s1 = this.s2 = this.s3 = 0;
      this.d1 = this.d2 = this.d3 = 0;
    }
  }

  /**
   * nf_ct_get_tuple for a decoded packet. Returns false when the kernel could
   * not build a tuple: transport header unreadable, PPTP GRE not carrying PPP.
   */
  fromView(p: PacketView, zone: number): boolean {
    this.setL3(p.family === 6 ? 6 : 4, p.proto, zone, p.src, p.dst);
    switch (p.proto) {
      case IPPROTO.TCP:
      case IPPROTO.UDP:
      case IPPROTO.UDPLITE:
      case IPPROTO.SCTP:
        // nf_ct_get_tuple_ports: the first four transport bytes.
        if (!p.l4Ok && p.l4CapLen < 4) return false;
        this.setPorts(p.sport, p.dport);
        return true;
      case IPPROTO.ICMP:
      case IPPROTO.ICMPV6: {
        // icmp[v6]_pkt_to_tuple reads the whole 8-byte header, id included for every type.
        if (p.icmpType < 0 || p.l4Len < 8) return false;
        const data = p.data;
        const off = p.l4Off;
        const id = p.l4CapLen >= 8 && off + 8 <= data.length ? be16(data, off + 4) : p.icmpId;
        this.setIcmp(p.proto, p.icmpType, p.icmpCode, id);
        return true;
      }
      case IPPROTO.GRE:
        return this.greFromView(p);
      default:
        this.setPorts(0, 0);
        return true;
    }
  }

  /**
   * nf_ct_get_tuple of the packet quoted in an ICMP error (nf_ct_get_tuplepr
   * on the inner header), from the decoder's inner fields.
   */
  fromInner(p: PacketView, zone: number): boolean {
    if (!p.innerOk || p.innerFamily !== p.family) return false;
    this.setL3(p.innerFamily === 6 ? 6 : 4, p.innerProto, zone, p.innerSrc, p.innerDst);
    switch (p.innerProto) {
      case IPPROTO.TCP:
      case IPPROTO.UDP:
      case IPPROTO.UDPLITE:
      case IPPROTO.SCTP:
        this.setPorts(p.innerSport, p.innerDport);
        return true;
      case IPPROTO.ICMP:
      case IPPROTO.ICMPV6:
        if (p.innerIcmpType < 0) return false;
        this.setIcmp(p.innerProto, p.innerIcmpType, p.innerIcmpCode, p.innerIcmpId);
        return true;
      case IPPROTO.GRE:
        // The decoder reports the PPTP call id (0 for GREv0, as the kernel's tuple).
        this.sport = 0;
        this.dport = p.innerGreKey & 0xffff;
        this.rsport = this.dport;
        this.rdport = 0;
        this.invertible = true;
        return true;
      default:
        this.setPorts(0, 0);
        return true;
    }
  }

  /**
   * nf_ct_invert_tuple in place: after it the scratch holds the reply tuple.
   * Only called when `invertible`.
   */
  invert(): void {
    let x = this.s0;
    this.s0 = this.d0;
    this.d0 = x;
    x = this.s1;
    this.s1 = this.d1;
    this.d1 = x;
    x = this.s2;
    this.s2 = this.d2;
    this.d2 = x;
    x = this.s3;
    this.s3 = this.d3;
    this.d3 = x;
    const sp = this.sport;
    const dp = this.dport;
    this.sport = this.rsport;
    this.dport = this.rdport;
    this.rsport = sp;
    this.rdport = dp;
    // `hash` is the original direction's: stale until computeHash().
  }

  /** Fills the tuple from explicit values (tests, ctnetlink-style inserts, NAT). */
  set(family: 4 | 6, proto: number, zone: number, src: ArrayLike<number>, dst: ArrayLike<number>, sport: number, dport: number): void {
    const v6 = family === 6;
    this.setWords(
      family,
      proto,
      zone,
      src[0] as number,
      v6 ? (src[1] as number) : 0,
      v6 ? (src[2] as number) : 0,
      v6 ? (src[3] as number) : 0,
      dst[0] as number,
      v6 ? (dst[1] as number) : 0,
      v6 ? (dst[2] as number) : 0,
      v6 ? (dst[3] as number) : 0,
      sport,
      dport,
    );
  }

  /** As `set`, from address words (no arrays: used on the table's paths). */
  setWords(
    family: 4 | 6,
    proto: number,
    zone: number,
    s0: number,
    s1: number,
    s2: number,
    s3: number,
    d0: number,
    d1: number,
    d2: number,
    d3: number,
    sport: number,
    dport: number,
  ): void {
    this.family = family;
    this.proto = proto;
    this.zone = zone;
    this.s0 = s0 >>> 0;
    this.s1 = s1 >>> 0;
    this.s2 = s2 >>> 0;
    this.s3 = s3 >>> 0;
    this.d0 = d0 >>> 0;
    this.d1 = d1 >>> 0;
    this.d2 = d2 >>> 0;
    this.d3 = d3 >>> 0;
    if (proto === IPPROTO.ICMP || proto === IPPROTO.ICMPV6) {
      this.setIcmp(proto, dport >>> 8, dport & 0xff, sport);
    } else {
      this.setPorts(sport, dport);
    }
  }

  /**
   * The hash of the tuple as it stands (hash_conntrack_raw): every field in
   * its direction, with a per-tracker seed, so a tuple and its inverse land
   * in unrelated buckets, as in the kernel, where an entry's original and
   * reply tuples sit in two chains and early drop scans from the hash of the
   * packet's own direction. After `invert()` it must be computed again.
   */
  computeHash(seed: number): number {
    let h = mix(seed, this.s0);
    h = mix(h, this.d0);
    if (this.family === 6) {
      h = mix(mix(mix(h, this.s1), this.s2), this.s3);
      h = mix(mix(mix(h, this.d1), this.d2), this.d3);
    }
    h = mix(h, (this.sport << 16) | this.dport);
    h = mix(h, this.proto | (this.zone << 8) | (this.family === 6 ? 1 << 24 : 0));
    this.hash = fmix32(h);
    return this.hash;
  }

  private setPorts(sport: number, dport: number): void {
    this.sport = sport & 0xffff;
    this.dport = dport & 0xffff;
    this.rsport = this.dport;
    this.rdport = this.sport;
    this.invertible = true;
  }

  private setIcmp(proto: number, type: number, code: number, id: number): void {
    const t = type & 0xff;
    const c = code & 0xff;
    this.sport = id & 0xffff;
    this.dport = (t << 8) | c;
    const inv = icmpInverseType(proto, t);
    this.invertible = inv >= 0;
    this.rsport = this.sport;
    this.rdport = inv >= 0 ? (inv << 8) | c : 0;
  }

  /** gre_pkt_to_tuple: GREv0 is tracked like a generic protocol, PPTP by call id. */
  private greFromView(p: PacketView): boolean {
    const data = p.data;
    const off = p.l4Off;
    const have = off + 4 <= data.length && p.l4CapLen >= 4;
    let version = p.greVersion;
    if (version < 0) {
      if (!have) {
        this.setPorts(0, 0);
        return true;
      }
      version = (data[off + 1] as number) & 7;
    }
    if (version !== 1) {
      this.setPorts(0, 0);
      return true;
    }
    // The PPTP header is needed up to the call id; without it the tuple stays zeroed.
    if (p.l4Len < 8) {
      this.setPorts(0, 0);
      return true;
    }
    let protocol = p.greProtocol;
    if (protocol === 0 && have) protocol = be16(data, off + 2);
    if (protocol !== 0 && protocol !== GRE_PROTO_PPP) return false;
    // No PPTP helper, so gre_keymap_lookup finds no source key: 0.
    this.setPorts(0, p.greKey);
    return true;
  }
}
