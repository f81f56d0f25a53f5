/**
 * Link, IP and transport decoding into the reused PacketView.
 *
 * Faithfulness notes (the kernel code each rule comes from):
 * - IPv4 header checks and their order follow ip_rcv_core(): length ≥ 20,
 *   version 4 and IHL ≥ 5, whole header present, header checksum (with
 *   DECODE_FLAG.VERIFY_IPV4_CHECKSUM, which the packet sources pass; a zero
 *   checksum field is a transmit-offload artefact and passes), total length
 *   ≤ bytes received and ≥ header length. Failing packets are dropped by the
 *   kernel before conntrack sees them: `family` stays 0.
 * - IPv6: ip6_rcv_core() (version; multicast source and multicast
 *   destinations of reserved or interface-local scope dropped; payload
 *   length ≤ bytes received; hop-by-hop options as ipv6_parse_hopopts()
 *   checks them, jumbograms included; loopback addresses are kept, since a
 *   capture of `lo` is replayed as if on `lo`), then the
 *   extension-header walk of ipv6_skip_exthdr() as used by conntrack's
 *   ipv6_get_l4proto(): hop-by-hop, routing, destination options, fragment
 *   (a non-first fragment stops the walk), AH; "no next header" fails.
 *   Failures after the fixed header are conntrack-level (counted `invalid`):
 *   `family` is set and `l4Ok` false.
 * - TCP options: the loops of tcp_options() / tcp_sack() in
 *   nf_conntrack_proto_tcp.c, including where malformed lists stop.
 * - UDP / UDP-Lite header rules: udp_error() / udplite_error().
 * - ICMP / ICMPv6 errors: the quoted header is read the way
 *   nf_conntrack_inet_error() → nf_ct_get_tuplepr() reads it (see decodeInner).
 *
 * Bounds: a decoder never reads past `frameOff + capLen`, because `data` is
 * usually the reader's whole chunk and the next record follows.
 */
import { be16, be32, le32 } from "./bytes.js";
import { Ipv6Walk, isIpv6ExtHdr, ipv6SkipExthdr } from "./ipv6.js";
import { BSD_AF, ETH_P, IPPROTO, LINKTYPE, NEXTHDR, PPP_PROTO } from "./proto.js";
import type { PacketView } from "./view.js";

/** Why a frame could not be decoded (fully). Codes are stable; names are the public identifiers. */
export const DECODE_REASON = {
  OK: 0,
  // ---- the packet never reaches conntrack (not IP, or dropped by the IP layer)
  UNSUPPORTED_LINK_TYPE: 1,
  TRUNCATED_LINK_HEADER: 2,
  NOT_IP: 3,
  BAD_IP_VERSION: 4,
  TRUNCATED_IPV4_HEADER: 5,
  BAD_IPV4_HEADER_LENGTH: 6,
  BAD_IPV4_CHECKSUM: 7,
  BAD_IPV4_TOTAL_LENGTH: 8,
  TRUNCATED_IPV4_PACKET: 9,
  TRUNCATED_IPV6_HEADER: 10,
  TRUNCATED_IPV6_PACKET: 11,
  BAD_IPV6_ADDRESS: 12,
  BAD_IPV6_HOP_BY_HOP: 13,
  // ---- conntrack sees the packet, but cannot use its transport header (l4Ok false)
  TRUNCATED_IPV6_EXTENSION_HEADER: 16,
  IPV6_NO_NEXT_HEADER: 17,
  TRUNCATED_TCP_HEADER: 18,
  BAD_TCP_HEADER_LENGTH: 19,
  TRUNCATED_UDP_HEADER: 20,
  BAD_UDP_LENGTH: 21,
  TRUNCATED_UDPLITE_HEADER: 22,
  BAD_UDPLITE_COVERAGE: 23,
  UDPLITE_CHECKSUM_MISSING: 24,
  TRUNCATED_ICMP_HEADER: 25,
  TRUNCATED_ICMPV6_HEADER: 26,
  TRUNCATED_SCTP_HEADER: 27,
  TRUNCATED_GRE_HEADER: 28,
} as const;

/** A DecodeReason code. */
export type DecodeReason = (typeof DECODE_REASON)[keyof typeof DECODE_REASON];

/** Codes at or above this are transport-level: the IP header was fine and `family` is set. */
export const FIRST_L4_REASON = 16;

const REASON_INFO: ReadonlyArray<readonly [number, string, string]> = [
  [0, "ok", "Decoded"],
  [1, "unsupported-link-type", "Link type not supported"],
  [2, "truncated-link-header", "Frame shorter than its link-layer header"],
  [3, "not-ip", "Frame carries no IPv4 or IPv6 packet"],
  [4, "bad-ip-version", "IP version field does not match the link layer's protocol"],
  [5, "truncated-ipv4-header", "IPv4 header cut short"],
  [6, "bad-ipv4-header-length", "IPv4 header length (IHL) below 5"],
  [7, "bad-ipv4-checksum", "IPv4 header checksum wrong"],
  [8, "bad-ipv4-total-length", "IPv4 total length shorter than the header"],
  [9, "truncated-ipv4-packet", "IPv4 total length exceeds the bytes on the wire"],
  [10, "truncated-ipv6-header", "IPv6 header cut short"],
  [11, "truncated-ipv6-packet", "IPv6 payload length exceeds the bytes on the wire"],
  [12, "bad-ipv6-address", "IPv6 multicast source, or multicast destination of scope 0 or 1"],
  [13, "bad-ipv6-hop-by-hop", "IPv6 hop-by-hop options the receiving stack rejects"],
  [16, "truncated-ipv6-extension-header", "IPv6 extension header chain runs past the packet"],
  [17, "ipv6-no-next-header", "IPv6 extension header chain ends without a transport header"],
  [18, "truncated-tcp-header", "TCP header cut short"],
  [19, "bad-tcp-header-length", "TCP data offset below 5 or beyond the segment"],
  [20, "truncated-udp-header", "UDP header cut short"],
  [21, "bad-udp-length", "UDP length field below 8 or beyond the datagram"],
  [22, "truncated-udplite-header", "UDP-Lite header cut short"],
  [23, "bad-udplite-coverage", "UDP-Lite checksum coverage below 8 or beyond the datagram"],
  [24, "udplite-checksum-missing", "UDP-Lite checksum is zero"],
  [25, "truncated-icmp-header", "ICMP header cut short"],
  [26, "truncated-icmpv6-header", "ICMPv6 header cut short"],
  [27, "truncated-sctp-header", "SCTP common header cut short"],
  [28, "truncated-gre-header", "GRE header cut short"],
];

const NAMES: string[] = [];
const TEXTS: string[] = [];
for (const [code, name, text] of REASON_INFO) {
  NAMES[code] = name;
  TEXTS[code] = text;
}

/** The identifier of a reason code, e.g. "truncated-ipv4-header". */
export function decodeReasonName(code: number): string {
  return NAMES[code] ?? `unknown-${code}`;
}

/** A sentence describing a reason code. */
export function decodeReasonText(code: number): string {
  return TEXTS[code] ?? `Unknown decode reason ${code}`;
}

/** Every reason code with its name and text, in code order. */
export function decodeReasons(): ReadonlyArray<{ code: number; name: string; text: string }> {
  return REASON_INFO.map(([code, name, text]) => ({ code, name, text }));
}

/** Bit flags for {@link decodeFrame}. */
export const DECODE_FLAG = {
  /**
   * Reject IPv4 headers with a wrong checksum, as ip_rcv_core() does before
   * PREROUTING (`reason` BAD_IPV4_CHECKSUM, `family` 0) — except a header
   * checksum of 0, which a capture on the sending host shows when the sum
   * was left to the NIC: the packet is accepted and `ipv4ChecksumZero` set.
   * The packet sources set this flag unless told not to.
   */
  VERIFY_IPV4_CHECKSUM: 1,
  /** No IPv4 header checksum verification (for callers that rewrite the header anyway). */
  NO_IPV4_CHECKSUM: 0,
} as const;

/** Link types {@link decodeFrame} understands. */
export const SUPPORTED_LINK_TYPES: readonly number[] = [
  LINKTYPE.NULL,
  LINKTYPE.ETHERNET,
  LINKTYPE.RAW_DLT12,
  LINKTYPE.RAW_DLT14,
  LINKTYPE.RAW,
  LINKTYPE.LOOP,
  LINKTYPE.LINUX_SLL,
  LINKTYPE.IPV4,
  LINKTYPE.IPV6,
  LINKTYPE.LINUX_SLL2,
];

/**
 * Decodes the captured frame the view points at (`data`, `frameOff`,
 * `capLen`, `wireLen`, `linkType`) into the view's link, IP and transport
 * fields. Never throws on packet content; problems end up in `view.reason`.
 */
export function decodeFrame(view: PacketView, flags = 0): void {
  view.resetDecoded();
  const d = view.data;
  const start = view.frameOff;
  const end = start + view.capLen;
  // Where the frame ends on the wire: IP length checks use this, not the snapped end.
  const wireEnd = start + (view.wireLen > view.capLen ? view.wireLen : view.capLen);
  switch (view.linkType) {
    case LINKTYPE.ETHERNET:
      if (end - start < 14) {
        view.reason = DECODE_REASON.TRUNCATED_LINK_HEADER;
        return;
      }
      decodeEtherType(view, d, start + 12, end, wireEnd, flags);
      return;
    case LINKTYPE.LINUX_SLL:
      if (end - start < 16) {
        view.reason = DECODE_REASON.TRUNCATED_LINK_HEADER;
        return;
      }
      decodeEtherType(view, d, start + 14, end, wireEnd, flags);
      return;
    case LINKTYPE.LINUX_SLL2: {
      if (end - start < 20) {
        view.reason = DECODE_REASON.TRUNCATED_LINK_HEADER;
        return;
      }
      const et = be16(d, start);
      dispatchEtherType(view, d, et, start + 20, end, wireEnd, flags);
      return;
    }
    case LINKTYPE.RAW_DLT12:
    case LINKTYPE.RAW_DLT14:
    case LINKTYPE.RAW:
      decodeRawIp(view, d, start, end, wireEnd, flags, 0);
      return;
    case LINKTYPE.IPV4:
      decodeRawIp(view, d, start, end, wireEnd, flags, 4);
      return;
    case LINKTYPE.IPV6:
      decodeRawIp(view, d, start, end, wireEnd, flags, 6);
      return;
    case LINKTYPE.NULL:
    case LINKTYPE.LOOP: {
      if (end - start < 4) {
        view.reason = DECODE_REASON.TRUNCATED_LINK_HEADER;
        return;
      }
      // The AF value is in the capturing host's byte order (NULL) or network
      // order (LOOP), and writers disagree: take whichever reading is small.
      let af = be32(d, start);
      if (af > 0xffff) af = le32(d, start);
      if (af === BSD_AF.INET) decodeIpv4(view, d, start + 4, end, wireEnd, flags);
      else if (af === BSD_AF.INET6_NETBSD || af === BSD_AF.INET6_FREEBSD || af === BSD_AF.INET6_DARWIN) decodeIpv6(view, d, start + 4, end, wireEnd);
      else view.reason = DECODE_REASON.NOT_IP;
      return;
    }
    default:
      view.reason = DECODE_REASON.UNSUPPORTED_LINK_TYPE;
  }
}

function decodeRawIp(view: PacketView, d: Uint8Array, off: number, end: number, wireEnd: number, flags: number, want: number): void {
  if (off >= end) {
    view.reason = want === 6 ? DECODE_REASON.TRUNCATED_IPV6_HEADER : DECODE_REASON.TRUNCATED_IPV4_HEADER;
    return;
  }
  const v = (d[off] as number) >> 4;
  if (want === 4 || (want === 0 && v === 4)) decodeIpv4(view, d, off, end, wireEnd, flags);
  else if (want === 6 || (want === 0 && v === 6)) decodeIpv6(view, d, off, end, wireEnd);
  else view.reason = DECODE_REASON.BAD_IP_VERSION;
}

/** Reads the EtherType at `typeOff` and follows VLAN tags, PPPoE sessions and MPLS to the IP packet. */
function decodeEtherType(view: PacketView, d: Uint8Array, typeOff: number, end: number, wireEnd: number, flags: number): void {
  const et = be16(d, typeOff);
  dispatchEtherType(view, d, et, typeOff + 2, end, wireEnd, flags);
}

function dispatchEtherType(view: PacketView, d: Uint8Array, first: number, payload: number, end: number, wireEnd: number, flags: number): void {
  let et = first;
  let o = payload;
  for (;;) {
    switch (et) {
      case ETH_P.IP:
        decodeIpv4(view, d, o, end, wireEnd, flags);
        return;
      case ETH_P.IPV6:
        decodeIpv6(view, d, o, end, wireEnd);
        return;
      case ETH_P.VLAN:
      case ETH_P.QINQ:
      case ETH_P.QINQ_OLD: {
        if (o + 4 > end) {
          view.reason = DECODE_REASON.TRUNCATED_LINK_HEADER;
          return;
        }
        if (view.vlanTags === 0) view.vlan = be16(d, o) & 0xfff;
        view.vlanTags++;
        et = be16(d, o + 2);
        o += 4;
        continue;
      }
      case ETH_P.PPP_SES: {
        // PPPoE session: ver/type, code, session id, length, then the PPP protocol.
        if (o + 8 > end) {
          view.reason = DECODE_REASON.TRUNCATED_LINK_HEADER;
          return;
        }
        const ppp = be16(d, o + 6);
        o += 8;
        if (ppp === PPP_PROTO.IP) et = ETH_P.IP;
        else if (ppp === PPP_PROTO.IPV6) et = ETH_P.IPV6;
        else {
          view.reason = DECODE_REASON.NOT_IP;
          return;
        }
        continue;
      }
      case ETH_P.MPLS_UC:
      case ETH_P.MPLS_MC: {
        // MPLS label stack down to the bottom-of-stack entry; the payload type is not signalled.
        for (;;) {
          if (o + 4 > end) {
            view.reason = DECODE_REASON.TRUNCATED_LINK_HEADER;
            return;
          }
          const bos = ((d[o + 2] as number) & 1) !== 0;
          o += 4;
          if (bos) break;
        }
        if (o >= end) {
          view.reason = DECODE_REASON.TRUNCATED_LINK_HEADER;
          return;
        }
        const v = (d[o] as number) >> 4;
        if (v === 4) et = ETH_P.IP;
        else if (v === 6) et = ETH_P.IPV6;
        else {
          view.reason = DECODE_REASON.NOT_IP;
          return;
        }
        continue;
      }
      default:
        view.reason = DECODE_REASON.NOT_IP;
        return;
    }
  }
}

/**
 * Decodes an IPv4 packet at `off`. Exported for the defragmenter, which
 * re-decodes a reassembled datagram in its own buffer.
 */
export function decodeIpv4(view: PacketView, d: Uint8Array, off: number, end: number, wireEnd: number, flags: number): void {
  if (end - off < 20) {
    view.reason = DECODE_REASON.TRUNCATED_IPV4_HEADER;
    return;
  }
  const b0 = d[off] as number;
  if (b0 >> 4 !== 4) {
    view.reason = DECODE_REASON.BAD_IP_VERSION;
    return;
  }
  const ihl = (b0 & 15) << 2;
  if (ihl < 20) {
    view.reason = DECODE_REASON.BAD_IPV4_HEADER_LENGTH;
    return;
  }
  if (off + ihl > end) {
    view.reason = DECODE_REASON.TRUNCATED_IPV4_HEADER;
    return;
  }
  if ((flags & DECODE_FLAG.VERIFY_IPV4_CHECKSUM) !== 0) {
    let s = 0;
    for (let i = off; i < off + ihl; i += 2) s += be16(d, i);
    s = (s & 0xffff) + (s >>> 16);
    s = (s & 0xffff) + (s >>> 16);
    if (s !== 0xffff) {
      // A zero field is the transmit-offload artefact of a capture on the sending host: the wire carried the right sum.
      if (d[off + 10] !== 0 || d[off + 11] !== 0) {
        view.reason = DECODE_REASON.BAD_IPV4_CHECKSUM;
        return;
      }
      view.ipv4ChecksumZero = true;
    }
  }
  const tot = be16(d, off + 2);
  if (off + tot > wireEnd) {
    view.reason = DECODE_REASON.TRUNCATED_IPV4_PACKET;
    return;
  }
  if (tot < ihl) {
    view.reason = DECODE_REASON.BAD_IPV4_TOTAL_LENGTH;
    return;
  }
  view.family = 4;
  view.l3Off = off;
  view.l3HdrLen = ihl;
  const capIp = end - off;
  view.l3Len = tot < capIp ? tot : capIp;
  view.src[0] = be32(d, off + 12);
  view.dst[0] = be32(d, off + 16);
  view.ttl = d[off + 8] as number;
  view.ipId = be16(d, off + 4);
  const fo = be16(d, off + 6);
  const proto = d[off + 9] as number;
  view.proto = proto;
  const l4Off = off + ihl;
  const l4Len = tot - ihl;
  view.l4Off = l4Off;
  view.l4Len = l4Len;
  const capL4 = off + view.l3Len - l4Off;
  view.l4CapLen = capL4 > 0 ? capL4 : 0;
  if ((fo & 0x3fff) !== 0) {
    view.isFragment = true;
    view.moreFragments = (fo & 0x2000) !== 0;
    view.fragOffset = (fo & 0x1fff) << 3;
    // A non-first fragment has no transport header (ipv4_get_l4proto refuses it).
    if (view.fragOffset !== 0) return;
  }
  decodeL4(view, d, proto);
}

/** Walk state of the outer IPv6 header chain and of a quoted one (never both at once). */
const outerWalk = new Ipv6Walk();
const innerWalk = new Ipv6Walk();

/** Decodes an IPv6 packet at `off` (exported for the defragmenter). */
export function decodeIpv6(view: PacketView, d: Uint8Array, off: number, end: number, wireEnd: number): void {
  if (end - off < 40) {
    view.reason = DECODE_REASON.TRUNCATED_IPV6_HEADER;
    return;
  }
  if ((d[off] as number) >> 4 !== 6) {
    view.reason = DECODE_REASON.BAD_IP_VERSION;
    return;
  }
  // RFC 4291 2.7 / errata 3480 checks of ip6_rcv_core(): before PREROUTING, so conntrack never sees these.
  const s0 = d[off + 8] as number;
  const d0 = d[off + 24] as number;
  const dScope = (d[off + 25] as number) & 15;
  if (s0 === 0xff || (d0 === 0xff && (dScope === 0 || dScope === 1))) {
    view.reason = DECODE_REASON.BAD_IPV6_ADDRESS;
    return;
  }
  const plen = be16(d, off + 4);
  let l3End = off + 40 + plen;
  if (l3End > wireEnd) {
    view.reason = DECODE_REASON.TRUNCATED_IPV6_PACKET;
    return;
  }
  if (d[off + 6] === NEXTHDR.HOP) {
    const jumbo = hopByHop(d, off, end < wireEnd ? end : wireEnd, plen, wireEnd);
    if (jumbo < 0) {
      view.reason = DECODE_REASON.BAD_IPV6_HOP_BY_HOP;
      return;
    }
    if (jumbo > 0) l3End = off + 40 + jumbo;
    // Payload length 0 without a jumbo option: ip6_rcv_core() does not trim, the packet keeps its length.
    else if (plen === 0) l3End = wireEnd;
  }
  const capEnd = l3End < end ? l3End : end;
  view.family = 6;
  view.l3Off = off;
  view.l3Len = capEnd - off;
  const src = view.src;
  const dst = view.dst;
  for (let i = 0; i < 4; i++) {
    const a = off + 8 + i * 4;
    src[i] = be32(d, a);
    const b = a + 16;
    dst[i] = be32(d, b);
  }
  view.ttl = d[off + 7] as number;
  const w = outerWalk;
  const first = d[off + 6] as number;
  if (!isIpv6ExtHdr(first)) {
    // No extension header, the common case: nothing to walk.
    const p = off + 40;
    view.proto = first;
    view.l3HdrLen = 40;
    view.l4Off = p;
    view.l4Len = l3End - p;
    view.l4CapLen = capEnd > p ? capEnd - p : 0;
    decodeL4(view, d, first);
    return;
  }
  const p = ipv6SkipExthdr(d, off + 40, capEnd, first, w);
  if (w.firstFrag >= 0) {
    view.fragHdrOff = w.firstFrag;
    const f = w.lastFrag;
    if (f >= 0) {
      const fo = be16(d, f + 2);
      if (f + 8 <= capEnd) view.ipId = be32(d, f + 4);
      view.moreFragments = (fo & 1) !== 0;
      view.fragOffset = fo & 0xfff8;
      view.isFragment = view.moreFragments || view.fragOffset !== 0;
    }
  }
  const nh = w.nexthdr;
  view.proto = nh;
  if (p < 0) {
    view.l3HdrLen = w.stop - off;
    view.reason = nh === NEXTHDR.NONE ? DECODE_REASON.IPV6_NO_NEXT_HEADER : DECODE_REASON.TRUNCATED_IPV6_EXTENSION_HEADER;
    return;
  }
  view.l3HdrLen = p - off;
  view.l4Off = p;
  if (nh === NEXTHDR.FRAGMENT) {
    // Non-first fragment: the walk stops here and conntrack finds no transport header.
    view.l4Len = l3End - p;
    view.l4CapLen = capEnd - p;
    return;
  }
  if (p > l3End) {
    view.reason = DECODE_REASON.TRUNCATED_IPV6_EXTENSION_HEADER;
    return;
  }
  view.l4Len = l3End - p;
  view.l4CapLen = capEnd > p ? capEnd - p : 0;
  decodeL4(view, d, nh);
}

/**
 * ipv6_parse_hopopts() / ip6_parse_tlv() for the hop-by-hop header after the
 * IPv6 header at `off`: the header must be present; padding (Pad1/PadN, zero
 * filled) at most 7 bytes in a row; at most 8 other options
 * (net.ipv6.max_hbh_opts_number); router alert of length 2; a jumbo payload
 * option only 4n+2 aligned, of length 4, with payload length 0 and a value
 * above 65535 that fits; IOAM 4n aligned; CALIPSO long enough; unknown
 * options dropped unless their two high bits are 00.
 * Returns -1 to drop, the jumbo payload length, or 0.
 */
function hopByHop(d: Uint8Array, off: number, avail: number, plen: number, wireEnd: number): number {
  const h = off + 40;
  if (h + 8 > avail) return -1;
  const len = ((d[h + 1] as number) + 1) << 3;
  if (h + len > avail) return -1;
  let p = h + 2;
  let left = len - 2;
  let pad = 0;
  let count = 0;
  let jumbo = 0;
  while (left > 0) {
    const t = d[p] as number;
    if (t === 0) {
      if (++pad > 7) return -1;
      p++;
      left--;
      continue;
    }
    if (left < 2) return -1;
    const olen = (d[p + 1] as number) + 2;
    if (olen > left) return -1;
    if (t === 1) {
      pad += olen;
      if (pad > 7) return -1;
      for (let i = 2; i < olen; i++) if (d[p + i] !== 0) return -1;
    } else {
      if (++count > 8) return -1;
      const optoff = p - off;
      if (t === 0x05) {
        if (olen !== 4) return -1;
      } else if (t === 0xc2) {
        if (olen !== 6 || (optoff & 3) !== 2 || plen !== 0) return -1;
        const j = be32(d, p + 2);
        if (j <= 65535 || off + 40 + j > wireEnd) return -1;
        jumbo = j;
      } else if (t === 0x31) {
        if ((optoff & 3) !== 0) return -1;
      } else if (t === 0x07) {
        if (olen < 10 || (d[p + 6] as number) * 4 + 8 > olen - 2) return -1;
      } else if (t >> 6 !== 0) return -1;
      pad = 0;
    }
    p += olen;
    left -= olen;
  }
  return jumbo;
}

function decodeL4(view: PacketView, d: Uint8Array, proto: number): void {
  const o = view.l4Off;
  const cap = view.l4CapLen;
  const len = view.l4Len;
  switch (proto) {
    case IPPROTO.TCP:
      decodeTcp(view, d, o, cap, len);
      return;
    case IPPROTO.UDP:
    case IPPROTO.UDPLITE: {
      if (cap >= 4) {
        view.sport = be16(d, o);
        view.dport = be16(d, o + 2);
      }
      if (cap < 8 || len < 8) {
        view.reason = proto === IPPROTO.UDP ? DECODE_REASON.TRUNCATED_UDP_HEADER : DECODE_REASON.TRUNCATED_UDPLITE_HEADER;
        return;
      }
      const ulen = be16(d, o + 4);
      if (proto === IPPROTO.UDP) {
        if (ulen > len || ulen < 8) {
          view.reason = DECODE_REASON.BAD_UDP_LENGTH;
          return;
        }
      } else {
        if (ulen !== 0 && (ulen < 8 || ulen > len)) {
          view.reason = DECODE_REASON.BAD_UDPLITE_COVERAGE;
          return;
        }
        if (d[o + 6] === 0 && d[o + 7] === 0) {
          view.reason = DECODE_REASON.UDPLITE_CHECKSUM_MISSING;
          return;
        }
      }
      view.l4Ok = true;
      return;
    }
    case IPPROTO.ICMP:
    case IPPROTO.ICMPV6:
      decodeIcmp(view, d, o, cap, len, proto);
      return;
    case IPPROTO.SCTP:
      if (cap >= 4) {
        view.sport = be16(d, o);
        view.dport = be16(d, o + 2);
      }
      if (cap < 12 || len < 12) {
        view.reason = DECODE_REASON.TRUNCATED_SCTP_HEADER;
        return;
      }
      view.sctpVtag = be32(d, o + 4);
      view.sctpChunksOff = o + 12;
      view.l4Ok = true;
      return;
    case IPPROTO.GRE:
      decodeGre(view, d, o, cap, len);
      return;
    default:
      view.l4Ok = true;
  }
}

function decodeTcp(view: PacketView, d: Uint8Array, o: number, cap: number, len: number): void {
  if (cap >= 4) {
    view.sport = be16(d, o);
    view.dport = be16(d, o + 2);
  }
  if (cap < 20 || len < 20) {
    view.reason = DECODE_REASON.TRUNCATED_TCP_HEADER;
    return;
  }
  view.seq = be32(d, o + 4);
  view.ack = be32(d, o + 8);
  view.tcpFlags = d[o + 13] as number;
  view.window = be16(d, o + 14);
  const hl = ((d[o + 12] as number) >> 4) << 2;
  view.tcpHdrLen = hl;
  // tcp_error(): "truncated packet" when doff*4 < 20 or beyond the segment.
  if (hl < 20 || hl > len) {
    view.reason = DECODE_REASON.BAD_TCP_HEADER_LENGTH;
    return;
  }
  view.payloadLen = len - hl;
  if (hl > cap) {
    view.reason = DECODE_REASON.TRUNCATED_TCP_HEADER;
    return;
  }
  if (hl > 20) tcpOptions(view, d, o + 20, hl - 20);
  view.l4Ok = true;
}

/**
 * One pass with the loop structure of the kernel's tcp_options() and
 * tcp_sack(): EOL ends the list; NOP is one byte; any other option needs a
 * length byte ≥ 2 that fits, else parsing stops (earlier results stand).
 * Window scale and SACK-permitted are taken from every well-formed
 * occurrence (the last wins); SACK blocks only from the first well-formed
 * SACK option, where tcp_sack() returns.
 */
function tcpOptions(view: PacketView, d: Uint8Array, start: number, length: number): void {
  let p = start;
  let left = length;
  let sackDone = false;
  while (left > 0) {
    const kind = d[p++] as number;
    if (kind === 0) return;
    if (kind === 1) {
      left--;
      continue;
    }
    if (left < 2) return;
    const size = d[p++] as number;
    if (size < 2 || size > left) return;
    if (kind === 3 && size === 3) view.optWscale = d[p] as number;
    else if (kind === 4 && size === 2) view.optSackPerm = true;
    else if (kind === 2 && size === 4) view.optMss = be16(d, p);
    else if (kind === 5 && !sackDone && size >= 10 && (size - 2) % 8 === 0) {
      sackDone = true;
      let n = 0;
      for (let i = 0; i < size - 2 && n < 4; i += 8) {
        const r = p + i + 4;
        view.sackRight[n++] = be32(d, r);
      }
      view.sackCount = n;
    }
    p += size - 2;
    left -= size;
  }
}

function decodeIcmp(view: PacketView, d: Uint8Array, o: number, cap: number, len: number, proto: number): void {
  // icmp_error() / icmpv6_error() and the tuple code read the full 8-byte header.
  if (cap < 8 || len < 8) {
    view.reason = proto === IPPROTO.ICMP ? DECODE_REASON.TRUNCATED_ICMP_HEADER : DECODE_REASON.TRUNCATED_ICMPV6_HEADER;
    if (cap >= 2) {
      view.icmpType = d[o] as number;
      view.icmpCode = d[o + 1] as number;
    }
    return;
  }
  const type = d[o] as number;
  view.icmpType = type;
  view.icmpCode = d[o + 1] as number;
  view.l4Ok = true;
  const end = o + cap;
  if (proto === IPPROTO.ICMP) {
    if (type === 0 || type === 8 || (type >= 13 && type <= 18)) view.icmpId = be16(d, o + 4);
    else if (view.family === 4 && (type === 3 || type === 4 || type === 5 || type === 11 || type === 12)) decodeInner(view, d, o + 8, end, 4);
    return;
  }
  if (type === 128 || type === 129 || type === 139 || type === 140) view.icmpId = be16(d, o + 4);
  else if (view.family === 6) {
    if (type < 128) decodeInner(view, d, o + 8, end, 6);
    else if (type === 137) {
      // nf_conntrack_icmpv6_redirect(): the first ND option must be a Redirected Header (type 4, len ≠ 0).
      // Code, hop limit and source checks are the tracker's.
      const opt = o + 40;
      if (opt + 2 <= end && d[opt] === 4 && d[opt + 1] !== 0) decodeInner(view, d, opt + 8, end, 6);
    }
  }
}

/**
 * Decodes the packet quoted by an ICMP error exactly as far as
 * nf_ct_get_tuplepr() does: the family is the outer one (the quoted version
 * nibble is not checked); IPv4 needs 20 header bytes, refuses a non-first
 * fragment and a header running past the packet; IPv6 needs 40 bytes and
 * walks extension headers like the outer packet; then 4 port bytes for
 * TCP/UDP/UDP-Lite/SCTP/DCCP, 8 bytes for ICMP/ICMPv6, and GRE as
 * gre_pkt_to_tuple(). Other protocols need nothing more.
 */
function decodeInner(view: PacketView, d: Uint8Array, off: number, end: number, family: 4 | 6): void {
  let l4: number;
  let proto: number;
  if (family === 4) {
    if (off + 20 > end) return;
    const fo = be16(d, off + 6);
    if ((fo & 0x1fff) !== 0) return;
    l4 = off + (((d[off] as number) & 15) << 2);
    if (l4 > end) return;
    proto = d[off + 9] as number;
    view.innerSrc[0] = be32(d, off + 12);
    view.innerDst[0] = be32(d, off + 16);
  } else {
    if (off + 40 > end) return;
    const p = ipv6SkipExthdr(d, off + 40, end, d[off + 6] as number, innerWalk);
    if (p < 0 || innerWalk.nexthdr === NEXTHDR.FRAGMENT) return;
    l4 = p;
    proto = innerWalk.nexthdr;
    for (let i = 0; i < 4; i++) {
      const a = off + 8 + i * 4;
      view.innerSrc[i] = be32(d, a);
      const b = a + 16;
      view.innerDst[i] = be32(d, b);
    }
  }
  switch (proto) {
    case IPPROTO.TCP:
    case IPPROTO.UDP:
    case IPPROTO.DCCP:
    case IPPROTO.SCTP:
    case IPPROTO.UDPLITE:
      if (l4 + 4 > end) return;
      view.innerSport = be16(d, l4);
      view.innerDport = be16(d, l4 + 2);
      break;
    case IPPROTO.ICMP:
    case IPPROTO.ICMPV6:
      if (l4 + 8 > end) return;
      view.innerIcmpType = d[l4] as number;
      view.innerIcmpCode = d[l4 + 1] as number;
      view.innerIcmpId = be16(d, l4 + 4);
      break;
    case IPPROTO.GRE:
      // gre_pkt_to_tuple(): keys only for version 1 with PPP; a v1 header
      // with another protocol fails; anything else is keyless.
      if (l4 + 4 <= end && ((d[l4 + 1] as number) & 7) === 1) {
        if (l4 + 8 <= end) {
          if (be16(d, l4 + 2) !== GRE_PROTO_PPP) return;
          view.innerGreKey = be16(d, l4 + 6);
        }
      }
      break;
    default:
      break;
  }
  view.innerProto = proto;
  view.innerFamily = family;
  view.innerOk = true;
}

/** GRE protocol type of PPP, which PPTP's enhanced GRE (version 1) carries. */
const GRE_PROTO_PPP = 0x880b;

function decodeGre(view: PacketView, d: Uint8Array, o: number, cap: number, len: number): void {
  if (cap < 4 || len < 4) {
    view.reason = DECODE_REASON.TRUNCATED_GRE_HEADER;
    return;
  }
  const f0 = d[o] as number;
  const ver = (d[o + 1] as number) & 7;
  view.greVersion = ver;
  view.greProtocol = be16(d, o + 2);
  if (ver === 1) {
    // PPTP: the key field carries payload length and call id.
    if (cap < 8 || len < 8) {
      view.reason = DECODE_REASON.TRUNCATED_GRE_HEADER;
      return;
    }
    view.greKey = be16(d, o + 6);
  } else if ((f0 & 0x20) !== 0) {
    const k = o + ((f0 & 0x80) !== 0 ? 8 : 4);
    if (k + 4 > o + cap || k + 4 > o + len) {
      view.reason = DECODE_REASON.TRUNCATED_GRE_HEADER;
      return;
    }
    view.greKey = be32(d, k);
  }
  view.l4Ok = true;
}
