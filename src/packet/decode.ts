/**
 * Link, IP and transport decoding into the reused PacketView.
 *
 * Faithfulness notes (the kernel code each rule comes from):
 * - IPv4 header checks and their order follow ip_rcv_core(): length ≥ 20,
 *   version 4 and IHL ≥ 5, whole header present, header checksum (only with
 *   DECODE_FLAG.VERIFY_IPV4_CHECKSUM), total length ≤ bytes received and ≥
 *   header length. Failing packets are dropped by the kernel before conntrack
 *   sees them: `family` stays 0.
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
   * Reject IPv4 headers with a wrong checksum, as ip_rcv() does. Off by
   * default: captures taken on the sending host carry offloaded (zero)
   * header checksums although the packet on the wire was correct.
   */
  VERIFY_IPV4_CHECKSUM: 1,
  /** Accept IPv4 headers with a wrong checksum: the default now, kept (as no bit) for existing callers. */
  NO_IPV4_CHECKSUM: 0,
} as const;

/** Link types {@link decodeFrame} understands. */
export const SUPPORTED_LINK_TYPES: readonly number[] = [0, 1, 12, 14, 101, 108, 113, 228, 229, 276];

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
    case 1:
      if (end - start < 14) {
        view.reason = DECODE_REASON.TRUNCATED_LINK_HEADER;
        return;
      }
      decodeEtherType(view, d, start + 12, end, wireEnd, flags);
      return;
    case 113:
      if (end - start < 16) {
        view.reason = DECODE_REASON.TRUNCATED_LINK_HEADER;
        return;
      }
      decodeEtherType(view, d, start + 14, end, wireEnd, flags);
      return;
    case 276: {
      if (end - start < 20) {
        view.reason = DECODE_REASON.TRUNCATED_LINK_HEADER;
        return;
      }
      const et = ((d[start] as number) << 8) | (d[start + 1] as number);
      dispatchEtherType(view, d, et, start + 20, end, wireEnd, flags);
      return;
    }
    case 12:
    case 14:
    case 101:
      decodeRawIp(view, d, start, end, wireEnd, flags, 0);
      return;
    case 228:
      decodeRawIp(view, d, start, end, wireEnd, flags, 4);
      return;
    case 229:
      decodeRawIp(view, d, start, end, wireEnd, flags, 6);
      return;
    case 0:
    case 108: {
      if (end - start < 4) {
        view.reason = DECODE_REASON.TRUNCATED_LINK_HEADER;
        return;
      }
      // The AF value is in the capturing host's byte order (NULL) or network
      // order (LOOP), and writers disagree: take whichever reading is small.
      let af = ((d[start] as number) << 24) | ((d[start + 1] as number) << 16) | ((d[start + 2] as number) << 8) | (d[start + 3] as number);
      if ((af & 0xffff0000) !== 0) {
        af = (d[start] as number) | ((d[start + 1] as number) << 8) | ((d[start + 2] as number) << 16) | ((d[start + 3] as number) << 24);
      }
      if (af === 2) decodeIpv4(view, d, start + 4, end, wireEnd, flags);
      else if (af === 24 || af === 28 || af === 30) decodeIpv6(view, d, start + 4, end, wireEnd);
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
  const et = ((d[typeOff] as number) << 8) | (d[typeOff + 1] as number);
  dispatchEtherType(view, d, et, typeOff + 2, end, wireEnd, flags);
}

function dispatchEtherType(view: PacketView, d: Uint8Array, first: number, payload: number, end: number, wireEnd: number, flags: number): void {
  let et = first;
  let o = payload;
  for (;;) {
    switch (et) {
      case 0x0800:
        decodeIpv4(view, d, o, end, wireEnd, flags);
        return;
      case 0x86dd:
        decodeIpv6(view, d, o, end, wireEnd);
        return;
      case 0x8100:
      case 0x88a8:
      case 0x9100: {
        if (o + 4 > end) {
          view.reason = DECODE_REASON.TRUNCATED_LINK_HEADER;
          return;
        }
        if (view.vlanTags === 0) view.vlan = (((d[o] as number) << 8) | (d[o + 1] as number)) & 0xfff;
        view.vlanTags++;
        et = ((d[o + 2] as number) << 8) | (d[o + 3] as number);
        o += 4;
        continue;
      }
      case 0x8864: {
        // PPPoE session: ver/type, code, session id, length, then the PPP protocol.
        if (o + 8 > end) {
          view.reason = DECODE_REASON.TRUNCATED_LINK_HEADER;
          return;
        }
        const ppp = ((d[o + 6] as number) << 8) | (d[o + 7] as number);
        o += 8;
        if (ppp === 0x0021) et = 0x0800;
        else if (ppp === 0x0057) et = 0x86dd;
        else {
          view.reason = DECODE_REASON.NOT_IP;
          return;
        }
        continue;
      }
      case 0x8847:
      case 0x8848: {
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
        if (v === 4) et = 0x0800;
        else if (v === 6) et = 0x86dd;
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
  if ((flags & 1) !== 0) {
    let s = 0;
    for (let i = off; i < off + ihl; i += 2) s += ((d[i] as number) << 8) | (d[i + 1] as number);
    s = (s & 0xffff) + (s >>> 16);
    s = (s & 0xffff) + (s >>> 16);
    if (s !== 0xffff) {
      view.reason = DECODE_REASON.BAD_IPV4_CHECKSUM;
      return;
    }
  }
  const tot = ((d[off + 2] as number) << 8) | (d[off + 3] as number);
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
  view.src[0] = (((d[off + 12] as number) << 24) | ((d[off + 13] as number) << 16) | ((d[off + 14] as number) << 8) | (d[off + 15] as number)) >>> 0;
  view.dst[0] = (((d[off + 16] as number) << 24) | ((d[off + 17] as number) << 16) | ((d[off + 18] as number) << 8) | (d[off + 19] as number)) >>> 0;
  view.ttl = d[off + 8] as number;
  view.ipId = ((d[off + 4] as number) << 8) | (d[off + 5] as number);
  const fo = ((d[off + 6] as number) << 8) | (d[off + 7] as number);
  const proto = d[off + 9] as number;
  view.proto = proto;
  const l4Off = off + ihl;
  const l4Len = tot - ihl;
  view.l4Off = l4Off;
  view.l4Len = l4Len;
  const capL4 = (off + view.l3Len) - l4Off;
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
  const plen = ((d[off + 4] as number) << 8) | (d[off + 5] as number);
  let l3End = off + 40 + plen;
  if (l3End > wireEnd) {
    view.reason = DECODE_REASON.TRUNCATED_IPV6_PACKET;
    return;
  }
  if (d[off + 6] === 0) {
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
    src[i] = (((d[a] as number) << 24) | ((d[a + 1] as number) << 16) | ((d[a + 2] as number) << 8) | (d[a + 3] as number)) >>> 0;
    const b = a + 16;
    dst[i] = (((d[b] as number) << 24) | ((d[b + 1] as number) << 16) | ((d[b + 2] as number) << 8) | (d[b + 3] as number)) >>> 0;
  }
  view.ttl = d[off + 7] as number;
  let nh = d[off + 6] as number;
  let p = off + 40;
  // ipv6_skip_exthdr(): hop-by-hop 0, routing 43, fragment 44, AH 51, none 59, dest 60.
  while (nh === 0 || nh === 43 || nh === 44 || nh === 51 || nh === 59 || nh === 60) {
    if (nh === 44 && view.fragHdrOff < 0) view.fragHdrOff = p;
    if (nh === 59) {
      view.l3HdrLen = p - off;
      view.proto = 59;
      view.reason = DECODE_REASON.IPV6_NO_NEXT_HEADER;
      return;
    }
    if (p + 2 > capEnd) {
      view.l3HdrLen = p - off;
      view.proto = nh;
      view.reason = DECODE_REASON.TRUNCATED_IPV6_EXTENSION_HEADER;
      return;
    }
    let hlen: number;
    if (nh === 44) {
      if (p + 4 > capEnd) {
        view.l3HdrLen = p - off;
        view.proto = nh;
        view.reason = DECODE_REASON.TRUNCATED_IPV6_EXTENSION_HEADER;
        return;
      }
      const fo = ((d[p + 2] as number) << 8) | (d[p + 3] as number);
      if (p + 8 <= capEnd) {
        view.ipId = (((d[p + 4] as number) << 24) | ((d[p + 5] as number) << 16) | ((d[p + 6] as number) << 8) | (d[p + 7] as number)) >>> 0;
      }
      view.moreFragments = (fo & 1) !== 0;
      view.fragOffset = fo & 0xfff8;
      if (view.fragOffset !== 0) {
        // Non-first fragment: the walk stops here and conntrack finds no transport header.
        view.isFragment = true;
        view.l3HdrLen = p - off;
        view.proto = 44;
        view.l4Off = p;
        view.l4Len = l3End - p;
        view.l4CapLen = capEnd - p;
        return;
      }
      if (view.moreFragments) view.isFragment = true;
      hlen = 8;
    } else if (nh === 51) {
      hlen = ((d[p + 1] as number) + 2) << 2;
    } else {
      hlen = ((d[p + 1] as number) + 1) << 3;
    }
    nh = d[p] as number;
    p += hlen;
  }
  view.l3HdrLen = p - off;
  view.proto = nh;
  view.l4Off = p;
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
        const j = (((d[p + 2] as number) << 24) | ((d[p + 3] as number) << 16) | ((d[p + 4] as number) << 8) | (d[p + 5] as number)) >>> 0;
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
    case 6:
      decodeTcp(view, d, o, cap, len);
      return;
    case 17:
    case 136: {
      if (cap >= 4) {
        view.sport = ((d[o] as number) << 8) | (d[o + 1] as number);
        view.dport = ((d[o + 2] as number) << 8) | (d[o + 3] as number);
      }
      if (cap < 8 || len < 8) {
        view.reason = proto === 17 ? DECODE_REASON.TRUNCATED_UDP_HEADER : DECODE_REASON.TRUNCATED_UDPLITE_HEADER;
        return;
      }
      const ulen = ((d[o + 4] as number) << 8) | (d[o + 5] as number);
      if (proto === 17) {
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
    case 1:
    case 58:
      decodeIcmp(view, d, o, cap, len, proto);
      return;
    case 132:
      if (cap >= 4) {
        view.sport = ((d[o] as number) << 8) | (d[o + 1] as number);
        view.dport = ((d[o + 2] as number) << 8) | (d[o + 3] as number);
      }
      if (cap < 12 || len < 12) {
        view.reason = DECODE_REASON.TRUNCATED_SCTP_HEADER;
        return;
      }
      view.sctpVtag = (((d[o + 4] as number) << 24) | ((d[o + 5] as number) << 16) | ((d[o + 6] as number) << 8) | (d[o + 7] as number)) >>> 0;
      view.sctpChunksOff = o + 12;
      view.l4Ok = true;
      return;
    case 47:
      decodeGre(view, d, o, cap, len);
      return;
    default:
      view.l4Ok = true;
  }
}

function decodeTcp(view: PacketView, d: Uint8Array, o: number, cap: number, len: number): void {
  if (cap >= 4) {
    view.sport = ((d[o] as number) << 8) | (d[o + 1] as number);
    view.dport = ((d[o + 2] as number) << 8) | (d[o + 3] as number);
  }
  if (cap < 20 || len < 20) {
    view.reason = DECODE_REASON.TRUNCATED_TCP_HEADER;
    return;
  }
  view.seq = (((d[o + 4] as number) << 24) | ((d[o + 5] as number) << 16) | ((d[o + 6] as number) << 8) | (d[o + 7] as number)) >>> 0;
  view.ack = (((d[o + 8] as number) << 24) | ((d[o + 9] as number) << 16) | ((d[o + 10] as number) << 8) | (d[o + 11] as number)) >>> 0;
  view.tcpFlags = d[o + 13] as number;
  view.window = ((d[o + 14] as number) << 8) | (d[o + 15] as number);
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
    else if (kind === 2 && size === 4) view.optMss = ((d[p] as number) << 8) | (d[p + 1] as number);
    else if (kind === 5 && !sackDone && size >= 10 && (size - 2) % 8 === 0) {
      sackDone = true;
      let n = 0;
      for (let i = 0; i < size - 2 && n < 4; i += 8) {
        const r = p + i + 4;
        view.sackRight[n++] = (((d[r] as number) << 24) | ((d[r + 1] as number) << 16) | ((d[r + 2] as number) << 8) | (d[r + 3] as number)) >>> 0;
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
    view.reason = proto === 1 ? DECODE_REASON.TRUNCATED_ICMP_HEADER : DECODE_REASON.TRUNCATED_ICMPV6_HEADER;
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
  if (proto === 1) {
    if (type === 0 || type === 8 || (type >= 13 && type <= 18)) view.icmpId = ((d[o + 4] as number) << 8) | (d[o + 5] as number);
    else if (view.family === 4 && (type === 3 || type === 4 || type === 5 || type === 11 || type === 12)) decodeInner(view, d, o + 8, end, 4);
    return;
  }
  if (type === 128 || type === 129 || type === 139 || type === 140) view.icmpId = ((d[o + 4] as number) << 8) | (d[o + 5] as number);
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
    const fo = ((d[off + 6] as number) << 8) | (d[off + 7] as number);
    if ((fo & 0x1fff) !== 0) return;
    l4 = off + (((d[off] as number) & 15) << 2);
    if (l4 > end) return;
    proto = d[off + 9] as number;
    view.innerSrc[0] = (((d[off + 12] as number) << 24) | ((d[off + 13] as number) << 16) | ((d[off + 14] as number) << 8) | (d[off + 15] as number)) >>> 0;
    view.innerDst[0] = (((d[off + 16] as number) << 24) | ((d[off + 17] as number) << 16) | ((d[off + 18] as number) << 8) | (d[off + 19] as number)) >>> 0;
  } else {
    if (off + 40 > end) return;
    let nh = d[off + 6] as number;
    let p = off + 40;
    while (nh === 0 || nh === 43 || nh === 44 || nh === 51 || nh === 59 || nh === 60) {
      if (nh === 59 || p + 2 > end) return;
      let hlen: number;
      if (nh === 44) {
        if (p + 4 > end) return;
        if ((((d[p + 2] as number) << 8) | (d[p + 3] as number)) & 0xfff8) return;
        hlen = 8;
      } else if (nh === 51) hlen = ((d[p + 1] as number) + 2) << 2;
      else hlen = ((d[p + 1] as number) + 1) << 3;
      nh = d[p] as number;
      p += hlen;
    }
    l4 = p;
    proto = nh;
    for (let i = 0; i < 4; i++) {
      const a = off + 8 + i * 4;
      view.innerSrc[i] = (((d[a] as number) << 24) | ((d[a + 1] as number) << 16) | ((d[a + 2] as number) << 8) | (d[a + 3] as number)) >>> 0;
      const b = a + 16;
      view.innerDst[i] = (((d[b] as number) << 24) | ((d[b + 1] as number) << 16) | ((d[b + 2] as number) << 8) | (d[b + 3] as number)) >>> 0;
    }
  }
  switch (proto) {
    case 6:
    case 17:
    case 33:
    case 132:
    case 136:
      if (l4 + 4 > end) return;
      view.innerSport = ((d[l4] as number) << 8) | (d[l4 + 1] as number);
      view.innerDport = ((d[l4 + 2] as number) << 8) | (d[l4 + 3] as number);
      break;
    case 1:
    case 58:
      if (l4 + 8 > end) return;
      view.innerIcmpType = d[l4] as number;
      view.innerIcmpCode = d[l4 + 1] as number;
      view.innerIcmpId = ((d[l4 + 4] as number) << 8) | (d[l4 + 5] as number);
      break;
    case 47:
      // gre_pkt_to_tuple(): keys only for version 1 with PPP; a v1 header
      // with another protocol fails; anything else is keyless.
      if (l4 + 4 <= end && ((d[l4 + 1] as number) & 7) === 1) {
        if (l4 + 8 <= end) {
          if ((((d[l4 + 2] as number) << 8) | (d[l4 + 3] as number)) !== 0x880b) return;
          view.innerGreKey = ((d[l4 + 6] as number) << 8) | (d[l4 + 7] as number);
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

function decodeGre(view: PacketView, d: Uint8Array, o: number, cap: number, len: number): void {
  if (cap < 4 || len < 4) {
    view.reason = DECODE_REASON.TRUNCATED_GRE_HEADER;
    return;
  }
  const f0 = d[o] as number;
  const ver = (d[o + 1] as number) & 7;
  view.greVersion = ver;
  view.greProtocol = ((d[o + 2] as number) << 8) | (d[o + 3] as number);
  if (ver === 1) {
    // PPTP: the key field carries payload length and call id.
    if (cap < 8 || len < 8) {
      view.reason = DECODE_REASON.TRUNCATED_GRE_HEADER;
      return;
    }
    view.greKey = ((d[o + 6] as number) << 8) | (d[o + 7] as number);
  } else if ((f0 & 0x20) !== 0) {
    const k = o + ((f0 & 0x80) !== 0 ? 8 : 4);
    if (k + 4 > o + cap || k + 4 > o + len) {
      view.reason = DECODE_REASON.TRUNCATED_GRE_HEADER;
      return;
    }
    view.greKey = (((d[k] as number) << 24) | ((d[k + 1] as number) << 16) | ((d[k + 2] as number) << 8) | (d[k + 3] as number)) >>> 0;
  }
  view.l4Ok = true;
}
