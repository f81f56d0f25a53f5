/**
 * Frame builder for tests, the scenario generator and `--write-pcap`.
 *
 * Every builder returns a complete frame as a fresh Uint8Array: Ethernet by
 * default (optionally 802.1Q/802.1ad tagged, optionally PPPoE), or the bare IP
 * packet with `link: "raw"`. The address family follows the address strings
 * ("10.0.0.1" → IPv4, "fd00::1" → IPv6). IP and transport checksums are correct
 * unless a builder is told otherwise (`checksum: "bad"` or a fixed value).
 *
 * Builders allocate freely: they are not for the tracker's hot path.
 *
 * @example
 * const syn = buildTcp({ src: "10.0.0.1", dst: "10.0.0.2", sport: 40000, dport: 80, flags: "S", seq: 1, mss: 1460, wscale: 7 });
 * const frags = fragment(buildUdp({ src: "fd00::1", dst: "fd00::2", sport: 5, dport: 53, payload: 3000 }), 1280);
 */
import { formatIp, parseIp } from "./addr.js";
import { SCTP_CHUNK } from "./view.js";
import { finishChecksum, foldSum, onesSum, sctpCrc32c } from "./checksum.js";
import type { PacketView } from "./view.js";

// ---------------------------------------------------------------------------
// Options

/** How the IP packet is framed. */
export interface LinkOptions {
  /** "ether" (default): an Ethernet II frame; "raw": the bare IP packet (LINKTYPE_RAW / IPV4 / IPV6). */
  link?: "ether" | "raw";
  /** Source MAC "aa:bb:cc:dd:ee:ff". Defaults to 02:00:00:00:00:01. */
  srcMac?: string;
  /** Destination MAC. Defaults to 02:00:00:00:00:02. */
  dstMac?: string;
  /** VLAN ids, outermost first. */
  vlan?: number[];
  /**
   * TPID of each tag in `vlan`. Defaults to 0x8100 for a single tag; with
   * several, 0x88a8 (802.1ad) for the outer ones and 0x8100 for the innermost.
   */
  vlanTpid?: number[];
  /** Carry the IP packet in a PPPoE session (EtherType 0x8864) with this session id. */
  pppoeSession?: number;
  /** Pad an Ethernet frame to the 60-byte minimum (what a NIC puts on the wire). Defaults to false. */
  ethPad?: boolean;
}

/** An IPv6 extension header to put between the fixed header and the transport. */
export type Ipv6ExtHeader =
  | {
      type: "hop" | "dest" | "routing";
      /** Header body after the 2 fixed bytes; padded with zeros to a multiple of 8 (with the 2 bytes). */
      data?: Uint8Array;
    }
  | { type: "fragment"; offset: number; more: boolean; id: number }
  | { type: "ah"; spi?: number; seq?: number; icv?: Uint8Array };

/** IP header fields. */
export interface IpOptions {
  /** Source address. */
  src: string;
  /** Destination address. */
  dst: string;
  /** IPv4 TTL / IPv6 hop limit. Defaults to 64. */
  ttl?: number;
  /** IPv4 TOS / IPv6 traffic class. Defaults to 0. */
  tos?: number;
  /** IPv4 identification. Defaults to 0. */
  id?: number;
  /** IPv4 don't-fragment flag. Defaults to false. */
  df?: boolean;
  /** IPv4 more-fragments flag. Defaults to false. */
  mf?: boolean;
  /** IPv4 fragment offset in bytes (a multiple of 8). Defaults to 0. */
  fragOffset?: number;
  /** IPv4 options; padded with EOL bytes to a multiple of 4. */
  ipOptions?: Uint8Array;
  /** IPv6 flow label. */
  flowLabel?: number;
  /** IPv6 extension headers, in order. */
  extHeaders?: Ipv6ExtHeader[];
  /** IPv4 header checksum: "bad" writes a wrong one, a number is written as is. */
  ipChecksum?: number | "bad";
  /** Overrides the IPv4 total length / IPv6 payload length field. */
  totalLength?: number;
}

/** Common to all transport builders. */
export interface PacketOptions extends IpOptions, LinkOptions {
  /**
   * Transport checksum: "bad" writes a wrong one, a number is written as is,
   * "offload" writes what a capture on the sending host shows under transmit
   * checksum offload (TCP/UDP: the folded pseudo-header sum; SCTP: 0; other
   * protocols are never offloaded and get a correct one).
   */
  checksum?: number | "bad" | "offload";
}

/** Payload: a length (filled with a byte pattern) or the bytes themselves. */
export type Payload = number | Uint8Array;

/** TCP flags as letters (F S R P A U E C, e.g. "SA", "FA", "RA", "PA") or the flag byte. */
export type TcpFlags = string | number;

/** Options of {@link buildTcp}. */
export interface TcpBuildOptions extends PacketOptions {
  sport: number;
  dport: number;
  /** Defaults to "A". */
  flags?: TcpFlags;
  seq?: number;
  ack?: number;
  /** Raw window field. Defaults to 65535. */
  win?: number;
  urg?: number;
  mss?: number;
  wscale?: number;
  sackPerm?: boolean;
  /** SACK blocks as [left, right] edges. */
  sack?: Array<[number, number]>;
  /** Timestamps option [TSval, TSecr]. */
  ts?: [number, number];
  /** Raw option bytes instead of the fields above (padded with EOL to 4 bytes). */
  tcpOptions?: Uint8Array;
  /** Overrides the data offset (header length / 4). */
  dataOffset?: number;
  payload?: Payload;
}

/** Options of {@link buildUdp} and {@link buildUdpLite}. */
export interface UdpBuildOptions extends Omit<PacketOptions, "checksum"> {
  sport: number;
  dport: number;
  payload?: Payload;
  /** Overrides the UDP length field (UDP-Lite: the checksum coverage). */
  udpLength?: number;
  /** "bad", "none" (zero), "offload" (the pseudo-header sum, see PacketOptions), or a fixed value. */
  checksum?: number | "bad" | "none" | "offload";
}

/** Options of {@link buildUdpLite}. */
export interface UdpLiteBuildOptions extends UdpBuildOptions {
  /** Checksum coverage in bytes; 0 (default) = the whole datagram. */
  coverage?: number;
  /**
   * Protocol number in the checksum's pseudo-header. Defaults to 136 (RFC
   * 3828). Linux conntrack verifies with 17 (udplite_error() passes
   * IPPROTO_UDP; checked against a 6.18 kernel), so with
   * `nf_conntrack_checksum=1` only 17 passes there.
   */
  checksumProto?: 136 | 17;
}

/** Options of {@link buildIcmp}: an ICMP or ICMPv6 query (echo by default). */
export interface IcmpBuildOptions extends PacketOptions {
  /** Defaults to echo request (8, or 128 for ICMPv6). */
  type?: number;
  code?: number;
  id?: number;
  seq?: number;
  payload?: Payload;
}

/** Options of {@link buildIcmpError}. */
export interface IcmpErrorOptions extends Omit<PacketOptions, "src" | "dst"> {
  /** ICMP(v6) type, e.g. 3 (unreachable), 11 (time exceeded), ICMPv6 1/2/3/4. */
  type: number;
  code?: number;
  /** Outer source. Defaults to the quoted packet's destination. */
  src?: string;
  /** Outer destination. Defaults to the quoted packet's source. */
  dst?: string;
  /** Bytes 4–7 of the ICMP header (next-hop MTU, gateway, pointer). Defaults to 0. */
  rest?: number;
  /**
   * How many bytes of the quoted IP packet to include. Defaults to what Linux
   * sends: up to 576 bytes (IPv4) / 1280 bytes (IPv6) for the whole error.
   */
  quoteLen?: number;
  /** How `inner` is framed. "auto" (default) recognises a bare IP packet, else Ethernet. */
  innerLink?: "auto" | "ether" | "raw";
}

/** An SCTP chunk. */
export interface SctpChunk {
  type: number;
  flags?: number;
  /** Chunk value (after the 4-byte chunk header), or a length of zeros. */
  data?: Payload;
}

/** Options of {@link buildSctp}. */
export interface SctpBuildOptions extends PacketOptions {
  sport: number;
  dport: number;
  /** Verification tag. */
  vtag: number;
  chunks: SctpChunk[];
}

/** Options of {@link buildGre}. */
export interface GreBuildOptions extends PacketOptions {
  /** 0 (RFC 2784/2890) or 1 (PPTP enhanced GRE, RFC 2637). Defaults to 0. */
  version?: 0 | 1;
  /** Protocol type. Defaults to 0x0800 for v0, 0x880b (PPP) for v1. */
  protocol?: number;
  /** v0 key (sets the K bit). */
  key?: number;
  /** v1 call id (the low half of the key field). */
  callId?: number;
  /** Sequence number (sets the S bit). */
  seq?: number;
  /** v1 acknowledgement number (sets the A bit). */
  ack?: number;
  /** v0: include the checksum field (C bit). */
  csum?: boolean;
  payload?: Payload;
}

// ---------------------------------------------------------------------------
// Small helpers

const ETH_IPV4 = 0x0800;
const ETH_IPV6 = 0x86dd;

function payloadBytes(p: Payload | undefined): Uint8Array {
  if (p === undefined) return new Uint8Array(0);
  if (typeof p !== "number") return p;
  const out = new Uint8Array(p);
  for (let i = 0; i < p; i++) out[i] = (i * 7 + 0x41) & 0xff;
  return out;
}

function parseMac(text: string): Uint8Array {
  const parts = text.split(/[:-]/);
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-fA-F]{1,2}$/.test(p))) {
    throw new TypeError(`Invalid MAC address "${text}"`);
  }
  return Uint8Array.from(parts.map((p) => parseInt(p, 16)));
}

/** Parses TCP flags given as letters or a byte. */
export function tcpFlagsByte(flags: TcpFlags): number {
  if (typeof flags === "number") return flags & 0xff;
  let f = 0;
  for (const c of flags.toUpperCase()) {
    const bit = "FSRPAUEC".indexOf(c);
    if (bit < 0) throw new TypeError(`Invalid TCP flag "${c}" in "${flags}"`);
    f |= 1 << bit;
  }
  return f;
}

/** A checksum value that is certainly wrong when `good` is right. */
function wrongChecksum(good: number): number {
  // 0x0000 and 0xffff are the same number in one's complement: step away from both.
  const v = (good + 1) & 0xffff;
  return v === 0 || v === 0xffff || good === 0 || good === 0xffff ? 0x1234 : v;
}

function be16(b: Uint8Array, o: number, v: number): void {
  b[o] = (v >>> 8) & 0xff;
  b[o + 1] = v & 0xff;
}

function be32(b: Uint8Array, o: number, v: number): void {
  b[o] = (v >>> 24) & 0xff;
  b[o + 1] = (v >>> 16) & 0xff;
  b[o + 2] = (v >>> 8) & 0xff;
  b[o + 3] = v & 0xff;
}

function pseudoSum(src: Uint8Array, dst: Uint8Array, proto: number, len: number): number {
  let s = onesSum(src, 0, src.length, 0);
  s = onesSum(dst, 0, dst.length, s);
  return s + proto + (len >>> 16) + (len & 0xffff);
}

interface Addrs {
  src: Uint8Array;
  dst: Uint8Array;
  v6: boolean;
}

function addrs(o: IpOptions): Addrs {
  const src = parseIp(o.src);
  const dst = parseIp(o.dst);
  if (src.length !== dst.length) {
    throw new TypeError(`Address families differ: "${o.src}" and "${o.dst}"`);
  }
  return { src, dst, v6: src.length === 16 };
}

/**
 * Writes the transport checksum at `csOff` of `l4` (the field must be zero).
 * `cover` bytes are summed; `proto` and `pseudoLen` form the pseudo-header
 * (proto < 0: none, as for ICMPv4).
 */
function setChecksum(
  l4: Uint8Array,
  csOff: number,
  a: Addrs,
  proto: number,
  cover: number,
  pseudoLen: number,
  mode: number | "bad" | "none" | "offload" | undefined,
  zeroAsFfff: boolean,
  offloadable = false,
): void {
  if (typeof mode === "number") {
    be16(l4, csOff, mode);
    return;
  }
  if (mode === "none") {
    be16(l4, csOff, 0);
    return;
  }
  const base = proto < 0 ? 0 : pseudoSum(a.src, a.dst, proto, pseudoLen);
  if (mode === "offload" && offloadable) {
    // ~csum_tcpudp_magic(saddr, daddr, len, proto, 0): the folded pseudo-header sum, left for the NIC to complete.
    be16(l4, csOff, foldSum(base));
    return;
  }
  let c = finishChecksum(onesSum(l4, 0, Math.min(cover, l4.length), base));
  if (c === 0 && zeroAsFfff) c = 0xffff;
  be16(l4, csOff, mode === "bad" ? wrongChecksum(c) : c);
}

// ---------------------------------------------------------------------------
// IP and link layers

function ipv4Header(o: IpOptions, a: Addrs, proto: number, payloadLen: number): Uint8Array {
  const opts = o.ipOptions ?? new Uint8Array(0);
  const optLen = (opts.length + 3) & ~3;
  const hl = 20 + optLen;
  if (hl > 60) throw new RangeError(`IPv4 options too long: ${opts.length} bytes, at most 40`);
  const h = new Uint8Array(hl);
  h[0] = 0x40 | (hl >> 2);
  h[1] = o.tos ?? 0;
  be16(h, 2, o.totalLength ?? hl + payloadLen);
  be16(h, 4, o.id ?? 0);
  const off = o.fragOffset ?? 0;
  if (off % 8 !== 0) throw new RangeError(`Invalid fragment offset "${off}": not a multiple of 8`);
  be16(h, 6, (o.df === true ? 0x4000 : 0) | (o.mf === true ? 0x2000 : 0) | ((off >> 3) & 0x1fff));
  h[8] = o.ttl ?? 64;
  h[9] = proto;
  h.set(a.src, 12);
  h.set(a.dst, 16);
  h.set(opts, 20);
  const good = finishChecksum(onesSum(h, 0, hl, 0));
  const m = o.ipChecksum;
  be16(h, 10, m === undefined ? good : m === "bad" ? wrongChecksum(good) : m);
  return h;
}

const EXT_CODE = { hop: 0, routing: 43, fragment: 44, ah: 51, dest: 60 } as const;

function ipv6Header(o: IpOptions, a: Addrs, proto: number, payloadLen: number): Uint8Array {
  const exts = o.extHeaders ?? [];
  const parts: Uint8Array[] = [];
  for (let i = 0; i < exts.length; i++) {
    const e = exts[i] as Ipv6ExtHeader;
    const next = i + 1 < exts.length ? EXT_CODE[(exts[i + 1] as Ipv6ExtHeader).type] : proto;
    let b: Uint8Array;
    if (e.type === "fragment") {
      if (e.offset % 8 !== 0) throw new RangeError(`Invalid fragment offset "${e.offset}": not a multiple of 8`);
      b = new Uint8Array(8);
      be16(b, 2, (e.offset & 0xfff8) | (e.more ? 1 : 0));
      be32(b, 4, e.id);
    } else if (e.type === "ah") {
      const icv = e.icv ?? new Uint8Array(12);
      const len = 12 + icv.length;
      if (len % 4 !== 0) throw new RangeError(`Invalid AH ICV length "${icv.length}": not a multiple of 4`);
      b = new Uint8Array(len);
      b[1] = len / 4 - 2;
      be32(b, 4, e.spi ?? 0x100);
      be32(b, 8, e.seq ?? 1);
      b.set(icv, 12);
    } else {
      const data = e.data ?? new Uint8Array(6);
      const len = (2 + data.length + 7) & ~7;
      b = new Uint8Array(len);
      b[1] = len / 8 - 1;
      b.set(data, 2);
      // Unfilled bytes stay zero: Pad1 options, valid TLV padding.
    }
    b[0] = next;
    parts.push(b);
  }
  let extLen = 0;
  for (const p of parts) extLen += p.length;
  const h = new Uint8Array(40 + extLen);
  const tc = o.tos ?? 0;
  const fl = o.flowLabel ?? 0;
  be32(h, 0, ((6 << 28) | (tc << 20) | (fl & 0xfffff)) >>> 0);
  be16(h, 4, o.totalLength ?? extLen + payloadLen);
  h[6] = exts.length > 0 ? EXT_CODE[(exts[0] as Ipv6ExtHeader).type] : proto;
  h[7] = o.ttl ?? 64;
  h.set(a.src, 8);
  h.set(a.dst, 24);
  let p = 40;
  for (const part of parts) {
    h.set(part, p);
    p += part.length;
  }
  return h;
}

function concat(parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Wraps an IP packet (IPv4 or IPv6, by its version nibble) in the requested link framing. */
export function frameIp(ip: Uint8Array, link: LinkOptions = {}): Uint8Array {
  if ((link.link ?? "ether") === "raw") return ip;
  const v6 = (ip[0] as number) >> 4 === 6;
  const vlan = link.vlan ?? [];
  const hdr: number[] = [];
  hdr.push(...parseMac(link.dstMac ?? "02:00:00:00:00:02"), ...parseMac(link.srcMac ?? "02:00:00:00:00:01"));
  for (let i = 0; i < vlan.length; i++) {
    const tpid = link.vlanTpid?.[i] ?? (vlan.length > 1 && i < vlan.length - 1 ? 0x88a8 : 0x8100);
    const tci = (vlan[i] as number) & 0xffff;
    hdr.push(tpid >> 8, tpid & 0xff, tci >> 8, tci & 0xff);
  }
  if (link.pppoeSession !== undefined) {
    const s = link.pppoeSession;
    const len = ip.length + 2;
    // PPPoE session header (ver 1, type 1, code 0), then the PPP protocol field.
    hdr.push(0x88, 0x64, 0x11, 0x00, s >> 8, s & 0xff, len >> 8, len & 0xff, 0x00, v6 ? 0x57 : 0x21);
  } else {
    const et = v6 ? ETH_IPV6 : ETH_IPV4;
    hdr.push(et >> 8, et & 0xff);
  }
  const head = Uint8Array.from(hdr);
  const total = head.length + ip.length;
  const out = new Uint8Array(link.ethPad === true ? Math.max(60, total) : total);
  out.set(head, 0);
  out.set(ip, head.length);
  return out;
}

/**
 * Builds an IP packet (framed as requested) carrying `payload` as protocol
 * `proto`, with no transport processing: for generic protocols and for
 * hand-made fragments.
 */
export function buildIp(opts: IpOptions & LinkOptions, proto: number, payload: Payload = 0): Uint8Array {
  const a = addrs(opts);
  return finishIp(opts, a, proto, payloadBytes(payload));
}

function finishIp(opts: IpOptions & LinkOptions, a: Addrs, proto: number, l4: Uint8Array): Uint8Array {
  const hdr = a.v6 ? ipv6Header(opts, a, proto, l4.length) : ipv4Header(opts, a, proto, l4.length);
  return frameIp(concat([hdr, l4]), opts);
}

// ---------------------------------------------------------------------------
// Transports

/** Builds a TCP segment. */
export function buildTcp(o: TcpBuildOptions): Uint8Array {
  const a = addrs(o);
  let opts: Uint8Array;
  if (o.tcpOptions !== undefined) opts = o.tcpOptions;
  else {
    const b: number[] = [];
    if (o.mss !== undefined) b.push(2, 4, (o.mss >> 8) & 0xff, o.mss & 0xff);
    if (o.sackPerm === true) b.push(1, 1, 4, 2);
    if (o.ts !== undefined) {
      const t = new Uint8Array(8);
      be32(t, 0, o.ts[0]);
      be32(t, 4, o.ts[1]);
      b.push(1, 1, 8, 10, ...t);
    }
    if (o.wscale !== undefined) b.push(1, 3, 3, o.wscale & 0xff);
    if (o.sack !== undefined && o.sack.length > 0) {
      b.push(1, 1, 5, 2 + 8 * o.sack.length);
      for (const [l, r] of o.sack) {
        const t = new Uint8Array(8);
        be32(t, 0, l);
        be32(t, 4, r);
        b.push(...t);
      }
    }
    opts = Uint8Array.from(b);
  }
  const optLen = (opts.length + 3) & ~3;
  if (optLen > 40) throw new RangeError(`TCP options too long: ${opts.length} bytes, at most 40`);
  const hl = 20 + optLen;
  const data = payloadBytes(o.payload);
  const l4 = new Uint8Array(hl + data.length);
  be16(l4, 0, o.sport);
  be16(l4, 2, o.dport);
  be32(l4, 4, o.seq ?? 0);
  be32(l4, 8, o.ack ?? 0);
  l4[12] = ((o.dataOffset ?? hl >> 2) & 0xf) << 4;
  l4[13] = tcpFlagsByte(o.flags ?? "A");
  be16(l4, 14, o.win ?? 65535);
  be16(l4, 18, o.urg ?? 0);
  l4.set(opts, 20);
  l4.set(data, hl);
  setChecksum(l4, 16, a, 6, l4.length, l4.length, o.checksum, false, true);
  return finishIp(o, a, 6, l4);
}

/** Builds a UDP datagram. */
export function buildUdp(o: UdpBuildOptions): Uint8Array {
  const a = addrs(o);
  const data = payloadBytes(o.payload);
  const l4 = new Uint8Array(8 + data.length);
  be16(l4, 0, o.sport);
  be16(l4, 2, o.dport);
  be16(l4, 4, o.udpLength ?? l4.length);
  l4.set(data, 8);
  setChecksum(l4, 6, a, 17, l4.length, l4.length, o.checksum, true, true);
  return finishIp(o, a, 17, l4);
}

/**
 * Builds a UDP-Lite datagram. The checksum covers the first `coverage` bytes
 * with the pseudo-header of RFC 3828 (see `checksumProto` for the kernel's view).
 */
export function buildUdpLite(o: UdpLiteBuildOptions): Uint8Array {
  const a = addrs(o);
  const data = payloadBytes(o.payload);
  const l4 = new Uint8Array(8 + data.length);
  be16(l4, 0, o.sport);
  be16(l4, 2, o.dport);
  const cov = o.udpLength ?? o.coverage ?? 0;
  be16(l4, 4, cov);
  l4.set(data, 8);
  setChecksum(l4, 6, a, o.checksumProto ?? 136, cov === 0 ? l4.length : cov, l4.length, o.checksum, true);
  return finishIp(o, a, 136, l4);
}

/** Builds an ICMP or ICMPv6 query message (echo request by default). */
export function buildIcmp(o: IcmpBuildOptions): Uint8Array {
  const a = addrs(o);
  const data = payloadBytes(o.payload);
  const l4 = new Uint8Array(8 + data.length);
  l4[0] = o.type ?? (a.v6 ? 128 : 8);
  l4[1] = o.code ?? 0;
  be16(l4, 4, o.id ?? 0);
  be16(l4, 6, o.seq ?? 0);
  l4.set(data, 8);
  setChecksum(l4, 2, a, a.v6 ? 58 : -1, l4.length, l4.length, o.checksum, false);
  return finishIp(o, a, a.v6 ? 58 : 1, l4);
}

/**
 * Finds the IP packet inside a frame built here (or any Ethernet/VLAN/PPPoE
 * frame, or a bare IP packet) and returns its offset.
 */
export function locateIp(frame: Uint8Array, link: "auto" | "ether" | "raw" = "auto"): number {
  if (link === "raw" || (link === "auto" && looksLikeBareIp(frame))) return 0;
  let off = 12;
  for (;;) {
    if (off + 2 > frame.length) throw new RangeError(`Frame too short for its link header: ${frame.length} bytes`);
    const et = ((frame[off] as number) << 8) | (frame[off + 1] as number);
    if (et === 0x8100 || et === 0x88a8 || et === 0x9100) {
      off += 4;
      continue;
    }
    if (et === 0x8864) return off + 10;
    if (et === ETH_IPV4 || et === ETH_IPV6) return off + 2;
    throw new TypeError(`Frame carries no IP packet: EtherType 0x${et.toString(16).padStart(4, "0")}`);
  }
}

function looksLikeBareIp(b: Uint8Array): boolean {
  const v = (b[0] as number) >> 4;
  if (v === 4 && b.length >= 20) {
    const tl = ((b[2] as number) << 8) | (b[3] as number);
    return ((b[0] as number) & 0xf) >= 5 && tl === b.length;
  }
  if (v === 6 && b.length >= 40) return 40 + (((b[4] as number) << 8) | (b[5] as number)) === b.length;
  return false;
}

function ipPacketLength(b: Uint8Array, off: number): number {
  const v = (b[off] as number) >> 4;
  const len = v === 4 ? ((b[off + 2] as number) << 8) | (b[off + 3] as number) : 40 + (((b[off + 4] as number) << 8) | (b[off + 5] as number));
  return Math.min(len, b.length - off);
}

function bytesToText(b: Uint8Array, off: number, v6: boolean): string {
  if (!v6) return `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`;
  const g: string[] = [];
  for (let i = 0; i < 8; i++) g.push((((b[off + 2 * i] as number) << 8) | (b[off + 2 * i + 1] as number)).toString(16));
  return g.join(":");
}

/**
 * Builds an ICMP / ICMPv6 error quoting (the start of) `inner`, a frame or a
 * bare IP packet. The family of the error is that of the quoted packet.
 */
export function buildIcmpError(inner: Uint8Array, o: IcmpErrorOptions): Uint8Array {
  const ipOff = locateIp(inner, o.innerLink ?? "auto");
  const v6 = (inner[ipOff] as number) >> 4 === 6;
  const innerLen = ipPacketLength(inner, ipOff);
  const src = o.src ?? bytesToText(inner, ipOff + (v6 ? 24 : 16), v6);
  const dst = o.dst ?? bytesToText(inner, ipOff + (v6 ? 8 : 12), v6);
  const full: IpOptions & LinkOptions = { ...o, src, dst };
  const a = addrs(full);
  // Linux (icmp_send / icmp6_send) quotes as much as fits in 576 / 1280 bytes.
  const room = v6 ? 1280 - 40 - 8 : 576 - 20 - 8;
  const q = Math.min(innerLen, o.quoteLen ?? room);
  const l4 = new Uint8Array(8 + q);
  l4[0] = o.type;
  l4[1] = o.code ?? 0;
  be32(l4, 4, (o.rest ?? 0) >>> 0);
  l4.set(inner.subarray(ipOff, ipOff + q), 8);
  setChecksum(l4, 2, a, v6 ? 58 : -1, l4.length, l4.length, o.checksum, false);
  return finishIp(full, a, v6 ? 58 : 1, l4);
}

/** Builds an SCTP packet (common header + chunks) with a correct CRC32c by default. */
export function buildSctp(o: SctpBuildOptions): Uint8Array {
  const a = addrs(o);
  const parts: Uint8Array[] = [];
  for (const c of o.chunks) {
    const data = payloadBytes(c.data ?? 0);
    const len = 4 + data.length;
    const b = new Uint8Array((len + 3) & ~3);
    b[0] = c.type;
    b[1] = c.flags ?? 0;
    be16(b, 2, len);
    b.set(data, 4);
    parts.push(b);
  }
  const body = concat(parts);
  const l4 = new Uint8Array(12 + body.length);
  be16(l4, 0, o.sport);
  be16(l4, 2, o.dport);
  be32(l4, 4, o.vtag >>> 0);
  l4.set(body, 12);
  let crc = sctpCrc32c(l4, 0, l4.length);
  if (o.checksum === "bad") crc = (crc ^ 0x5a5a5a5a) >>> 0;
  else if (o.checksum === "offload") crc = 0;
  else if (typeof o.checksum === "number") crc = o.checksum >>> 0;
  // Stored little-endian: the kernel writes cpu_to_le32(crc32c).
  l4[8] = crc & 0xff;
  l4[9] = (crc >>> 8) & 0xff;
  l4[10] = (crc >>> 16) & 0xff;
  l4[11] = (crc >>> 24) & 0xff;
  return finishIp(o, a, 132, l4);
}

export { SCTP_CHUNK } from "./view.js";

/** An INIT (or INIT ACK) chunk with the given initiate tag and no parameters. */
export function sctpInitChunk(initTag: number, o: { ack?: boolean; arwnd?: number; outStreams?: number; inStreams?: number; tsn?: number } = {}): SctpChunk {
  const d = new Uint8Array(16);
  be32(d, 0, initTag >>> 0);
  be32(d, 4, o.arwnd ?? 65536);
  be16(d, 8, o.outStreams ?? 10);
  be16(d, 10, o.inStreams ?? 10);
  be32(d, 12, (o.tsn ?? 1) >>> 0);
  return { type: o.ack === true ? SCTP_CHUNK.INIT_ACK : SCTP_CHUNK.INIT, data: d };
}

/** Builds a GRE packet: v0 (optional key / sequence / checksum) or v1 (PPTP: key = payload length + call id). */
export function buildGre(o: GreBuildOptions): Uint8Array {
  const a = addrs(o);
  const v = o.version ?? 0;
  const data = payloadBytes(o.payload);
  const proto = o.protocol ?? (v === 1 ? 0x880b : ETH_IPV4);
  const fields: number[] = [];
  let f0 = 0;
  let f1 = v;
  const csum = v === 0 && o.csum === true;
  if (csum) {
    f0 |= 0x80;
    fields.push(0);
  }
  if (v === 1) {
    f0 |= 0x20;
    fields.push((((data.length & 0xffff) << 16) | ((o.callId ?? 0) & 0xffff)) >>> 0);
  } else if (o.key !== undefined) {
    f0 |= 0x20;
    fields.push(o.key >>> 0);
  }
  if (o.seq !== undefined) {
    f0 |= 0x10;
    fields.push(o.seq >>> 0);
  }
  if (v === 1 && o.ack !== undefined) {
    f1 |= 0x80;
    fields.push(o.ack >>> 0);
  }
  const l4 = new Uint8Array(4 + 4 * fields.length + data.length);
  l4[0] = f0;
  l4[1] = f1;
  be16(l4, 2, proto);
  for (let i = 0; i < fields.length; i++) be32(l4, 4 + 4 * i, fields[i] as number);
  l4.set(data, 4 + 4 * fields.length);
  if (csum) setChecksum(l4, 4, a, -1, l4.length, l4.length, o.checksum, false);
  return finishIp(o, a, 47, l4);
}

// ---------------------------------------------------------------------------
// Fragmentation

/** Options of {@link fragment}. */
export interface FragmentOptions {
  /** How the input is framed; "auto" (default) recognises a bare IP packet, else Ethernet. */
  link?: "auto" | "ether" | "raw";
  /** IPv6 fragment identification (IPv4 keeps the packet's own id). Defaults to 0x1234. */
  id?: number;
}

/**
 * Splits an IP datagram (inside `frame`) into fragments of at most `mtu`
 * bytes of IP packet each, keeping the link header. IPv4 copies the header
 * (non-copied options become NOPs after the first fragment, as
 * ip_options_fragment() does); IPv6 inserts a fragment header after the
 * hop-by-hop / routing headers. Fragmenting a fragment keeps its offset.
 */
export function fragment(frame: Uint8Array, mtu: number, opts: FragmentOptions = {}): Uint8Array[] {
  const ipOff = locateIp(frame, opts.link ?? "auto");
  const head = frame.subarray(0, ipOff);
  const v6 = (frame[ipOff] as number) >> 4 === 6;
  const ipLen = ipPacketLength(frame, ipOff);
  const ip = frame.subarray(ipOff, ipOff + ipLen);
  const out: Uint8Array[] = [];
  const withLink = (pkt: Uint8Array): Uint8Array => {
    const f = new Uint8Array(head.length + pkt.length);
    f.set(head, 0);
    f.set(pkt, head.length);
    // A PPPoE session header carries the payload length (+2 for the PPP protocol field).
    const h = head.length;
    if (h >= 22 && head[h - 10] === 0x88 && head[h - 9] === 0x64 && head[h - 8] === 0x11) {
      be16(f, head.length - 4, pkt.length + 2);
    }
    return f;
  };
  if (!v6) {
    const hl = ((ip[0] as number) & 0xf) * 4;
    const flags = ((ip[6] as number) << 8) | (ip[7] as number);
    const baseOff = (flags & 0x1fff) * 8;
    const origMf = (flags & 0x2000) !== 0;
    const payload = ip.subarray(hl);
    const step = (mtu - hl) & ~7;
    if (step <= 0) throw new RangeError(`MTU "${mtu}" too small for a ${hl}-byte IPv4 header`);
    const laterHdr = ip.slice(0, hl);
    stripUncopiedOptions(laterHdr);
    for (let pos = 0; pos < payload.length || pos === 0; pos += step) {
      const chunk = payload.subarray(pos, Math.min(payload.length, pos + step));
      const last = pos + step >= payload.length;
      const h = pos === 0 ? ip.slice(0, hl) : laterHdr.slice();
      be16(h, 2, hl + chunk.length);
      const off = (baseOff + pos) >> 3;
      be16(h, 6, (flags & 0x4000) | (last && !origMf ? 0 : 0x2000) | off);
      h[10] = 0;
      h[11] = 0;
      be16(h, 10, finishChecksum(onesSum(h, 0, hl, 0)));
      out.push(withLink(concat([h, chunk])));
      if (payload.length === 0) break;
    }
    return out;
  }
  // IPv6: the unfragmentable part is the fixed header plus hop-by-hop, routing,
  // and destination options that precede a routing header (RFC 8200 4.5).
  let next = ip[6] as number;
  let p = 40;
  let lastNextOff = 6;
  for (;;) {
    if (next === 0 || next === 43) {
      lastNextOff = p;
      next = ip[p] as number;
      p += ((ip[p + 1] as number) + 1) * 8;
    } else if (next === 60 && p + 1 < ip.length && ip[p] === 43) {
      lastNextOff = p;
      next = ip[p] as number;
      p += ((ip[p + 1] as number) + 1) * 8;
    } else break;
  }
  const unfrag = ip.subarray(0, p);
  const rest = ip.subarray(p);
  const step = (mtu - p - 8) & ~7;
  if (step <= 0) throw new RangeError(`MTU "${mtu}" too small for a ${p}-byte IPv6 header chain`);
  const id = opts.id ?? 0x1234;
  for (let pos = 0; pos < rest.length || pos === 0; pos += step) {
    const chunk = rest.subarray(pos, Math.min(rest.length, pos + step));
    const last = pos + step >= rest.length;
    const h = unfrag.slice();
    h[lastNextOff] = 44;
    be16(h, 4, p - 40 + 8 + chunk.length);
    const fh = new Uint8Array(8);
    fh[0] = next;
    be16(fh, 2, pos | (last ? 0 : 1));
    be32(fh, 4, id >>> 0);
    out.push(withLink(concat([h, fh, chunk])));
    if (rest.length === 0) break;
  }
  return out;
}

/** Replaces options without the "copied" bit by NOPs (ip_options_fragment). */
function stripUncopiedOptions(h: Uint8Array): void {
  const hl = ((h[0] as number) & 0xf) * 4;
  let p = 20;
  while (p < hl) {
    const t = h[p] as number;
    if (t === 0) break;
    if (t === 1) {
      p++;
      continue;
    }
    const len = h[p + 1] as number;
    if (len < 2 || p + len > hl) break;
    if ((t & 0x80) === 0) h.fill(1, p, p + len);
    p += len;
  }
}

// ---------------------------------------------------------------------------
// Views back to bytes

/**
 * A frame for a packet view, for capture sinks such as `--write-pcap`. A view
 * that came from a capture (its `data` holds the record) gives a copy of its
 * bytes: the frame as captured, or the reassembled datagram (framed per
 * `link`). A view filled field by field (the simulator) is built from its
 * decoded fields: addresses, protocol, ports, TCP flags / numbers / window /
 * options (SACK blocks get left edge = right edge - 1, as only right edges are
 * kept), payload length (zero bytes), ICMP type / code / id and, for an error
 * with `innerOk`, a quoted IP header plus 8 transport bytes; SCTP gets the
 * verification tag and no chunks, GRE its version and key.
 */
export function buildFromView(view: PacketView, link: LinkOptions = {}): Uint8Array {
  if (view.capLen > 0 && view.data.length >= view.frameOff + view.capLen) {
    const bytes = view.data.slice(view.frameOff, view.frameOff + view.capLen);
    return view.reassembled ? frameIp(bytes, link) : bytes;
  }
  if (view.family === 0) throw new TypeError("Cannot build a frame for a view without an IP family");
  const fam = view.family;
  const withVlan: LinkOptions = view.vlan >= 0 && link.vlan === undefined ? { ...link, vlan: [view.vlan] } : link;
  const base = { ...withVlan, src: formatIp(fam, view.src), dst: formatIp(fam, view.dst), ttl: view.ttl > 0 ? view.ttl : 64 };
  switch (view.proto) {
    case 6: {
      const sack: Array<[number, number]> = [];
      for (let i = 0; i < view.sackCount; i++) {
        const r = view.sackRight[i] as number;
        sack.push([(r - 1) >>> 0, r]);
      }
      return buildTcp({
        ...base,
        sport: view.sport,
        dport: view.dport,
        flags: view.tcpFlags,
        seq: view.seq,
        ack: view.ack,
        win: view.window,
        payload: view.payloadLen,
        ...(view.optMss >= 0 ? { mss: view.optMss } : {}),
        ...(view.optWscale >= 0 ? { wscale: view.optWscale } : {}),
        ...(view.optSackPerm ? { sackPerm: true } : {}),
        ...(sack.length > 0 ? { sack } : {}),
      });
    }
    case 17:
      return buildUdp({ ...base, sport: view.sport, dport: view.dport, payload: Math.max(0, view.l4Len - 8) });
    case 136:
      return buildUdpLite({ ...base, sport: view.sport, dport: view.dport, payload: Math.max(0, view.l4Len - 8) });
    case 1:
    case 58: {
      if (view.innerOk) {
        const innerFam = view.innerFamily === 0 ? fam : view.innerFamily;
        const ib = { link: "raw" as const, src: formatIp(innerFam, view.innerSrc), dst: formatIp(innerFam, view.innerDst) };
        let inner: Uint8Array;
        if (view.innerProto === 6) inner = buildTcp({ ...ib, sport: view.innerSport, dport: view.innerDport });
        else if (view.innerProto === 17) inner = buildUdp({ ...ib, sport: view.innerSport, dport: view.innerDport });
        else if (view.innerProto === 1 || view.innerProto === 58) {
          inner = buildIcmp({ ...ib, type: view.innerIcmpType, code: view.innerIcmpCode, id: view.innerIcmpId });
        } else inner = buildIp(ib, view.innerProto, 8);
        const hdr = innerFam === 4 ? ((inner[0] as number) & 15) * 4 : 40;
        return buildIcmpError(inner, { ...base, type: view.icmpType, code: Math.max(0, view.icmpCode), quoteLen: hdr + 8, innerLink: "raw" });
      }
      return buildIcmp({ ...base, type: view.icmpType, code: Math.max(0, view.icmpCode), id: view.icmpId, payload: Math.max(0, view.l4Len - 8) });
    }
    case 132:
      return buildSctp({ ...base, sport: view.sport, dport: view.dport, vtag: view.sctpVtag, chunks: [] });
    case 47:
      return buildGre({
        ...base,
        version: view.greVersion === 1 ? 1 : 0,
        ...(view.greVersion === 1 ? { callId: view.greKey } : view.greKey !== 0 ? { key: view.greKey } : {}),
        ...(view.greProtocol !== 0 ? { protocol: view.greProtocol } : {}),
      });
    default:
      return buildIp(base, view.proto, Math.max(0, view.l4Len));
  }
}
