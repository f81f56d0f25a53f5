/**
 * The IPv6 extension-header walk, once: ipv6_skip_exthdr()
 * (net/ipv6/exthdrs_core.c) as conntrack (ipv6_get_l4proto, the ICMPv6 error
 * path) and nf_defrag_ipv6 (ipv6frag_thdr_truncated) call it. The decoder,
 * the quoted packet of an ICMPv6 error or redirect, and the defragmenter all
 * use this one function.
 */
import { be16 } from "./bytes.js";
import { NEXTHDR } from "./proto.js";

/** What a walk found besides its return value; one reused instance per caller, nothing allocated per packet. */
export class Ipv6Walk {
  /**
   * The next header where the walk stopped: the upper-layer protocol, 44 when
   * it stopped at a non-first fragment header, or (on failure) the header
   * that was missing or cut short, 59 for "no next header".
   */
  nexthdr = 0;
  /** Offset where the walk stopped (the header `nexthdr` names). */
  stop = 0;
  /** Offset of the first fragment header met, or -1 (set before its bytes are checked). */
  firstFrag = -1;
  /** Offset of the last fragment header whose offset field could be read, or -1 (the kernel's `frag_offp`). */
  lastFrag = -1;
}

/** ipv6_ext_hdr(): the next-header values ipv6_skip_exthdr() walks over. */
export function isIpv6ExtHdr(nh: number): boolean {
  return nh === NEXTHDR.HOP || nh === NEXTHDR.ROUTING || nh === NEXTHDR.FRAGMENT || nh === NEXTHDR.AUTH || nh === NEXTHDR.NONE || nh === NEXTHDR.DEST;
}

/** ipv6_optlen(): length of a hop-by-hop, routing or destination options header at `p`. */
export function ipv6OptLen(d: Uint8Array, p: number): number {
  return ((d[p + 1] as number) + 1) << 3;
}

/** ipv6_authlen(): length of an AH header at `p`. */
export function ipv6AuthLen(d: Uint8Array, p: number): number {
  return ((d[p + 1] as number) + 2) << 2;
}

/**
 * ipv6_skip_exthdr(): walks extension headers from `start` (where header
 * `nexthdr` begins), reading no byte at or beyond `end`. Returns the offset
 * of the upper-layer header — or of a non-first fragment header, where the
 * walk stops with `w.nexthdr` 44 — and -1 when the chain ends in "no next
 * header" or runs past `end`. The offset returned may lie beyond `end`: the
 * last header's length is not checked against it, as in the kernel.
 */
export function ipv6SkipExthdr(d: Uint8Array, start: number, end: number, nexthdr: number, w: Ipv6Walk): number {
  let nh = nexthdr;
  let p = start;
  w.firstFrag = -1;
  w.lastFrag = -1;
  while (isIpv6ExtHdr(nh)) {
    w.nexthdr = nh;
    w.stop = p;
    if (nh === NEXTHDR.FRAGMENT && w.firstFrag < 0) w.firstFrag = p;
    if (nh === NEXTHDR.NONE || p + 2 > end) return -1;
    let hlen: number;
    if (nh === NEXTHDR.FRAGMENT) {
      if (p + 4 > end) return -1;
      w.lastFrag = p;
      // A non-first fragment: the header after it is not in this packet.
      if ((be16(d, p + 2) & 0xfff8) !== 0) return p;
      hlen = 8;
    } else if (nh === NEXTHDR.AUTH) hlen = ipv6AuthLen(d, p);
    else hlen = ipv6OptLen(d, p);
    nh = d[p] as number;
    p += hlen;
  }
  w.nexthdr = nh;
  w.stop = p;
  return p;
}
