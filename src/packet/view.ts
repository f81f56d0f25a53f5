/**
 * The one reused description of a decoded packet.
 *
 * Decoders fill it in place and the tracker reads it; nothing on the hot path
 * allocates a new one per packet. Every field exists from construction (with a
 * placeholder value) so that V8 keeps a single hidden class for it.
 *
 * Addresses are four 32-bit words in network order, word 0 first. An IPv4
 * address uses word 0 only and leaves words 1–3 zero, so one comparison routine
 * serves both families.
 */
export class PacketView {
  // ---- capture record -------------------------------------------------------
  /** 1-based record number in the capture (after pcapng non-packet blocks). */
  index = 0;
  /** Byte offset of the record header in the capture file (for error messages). */
  fileOffset = 0;
  /** Capture timestamp: whole seconds since the Unix epoch. */
  tsSec = 0;
  /** Capture timestamp: nanoseconds within the second. */
  tsNsec = 0;
  /** Bytes captured for this record. */
  capLen = 0;
  /** Bytes the packet had on the wire (may exceed capLen for snapped captures). */
  wireLen = 0;
  /** LINKTYPE_* of the record's interface. */
  linkType = 0;
  /** pcapng interface id (0 for pcap). */
  interfaceId = 0;
  /**
   * The bytes the offsets below refer to: the reader's buffer holding the
   * captured frame at `frameOff` (offsets are absolute in it), or the
   * reassembled datagram after defragmentation (then frameOff and l3Off are 0).
   * Valid only while the packet is being handled.
   */
  data: Uint8Array = EMPTY;
  /**
   * Offset of the captured frame in `data`: readers hand out the frame in
   * place inside their read buffer instead of slicing it out per record.
   */
  frameOff = 0;

  // ---- link layer -------------------------------------------------------------
  /** Outermost VLAN id, or -1 when untagged. */
  vlan = -1;
  /** Number of 802.1Q/802.1ad tags removed. */
  vlanTags = 0;

  // ---- layer 3 ----------------------------------------------------------------
  /** 4 or 6 for IP packets; 0 when the frame carries no IP packet (ARP, …). */
  family: 0 | 4 | 6 = 0;
  /** Offset of the IP header in `data`. */
  l3Off = 0;
  /** IP header length including IPv4 options / IPv6 extension headers walked. */
  l3HdrLen = 0;
  /** IP datagram length per its header (total length / 40 + payload length), clipped to what was captured. */
  l3Len = 0;
  /** Source address, four words (IPv4 in word 0). */
  readonly src = new Uint32Array(4);
  /** Destination address, four words (IPv4 in word 0). */
  readonly dst = new Uint32Array(4);
  /** IPv4 TTL or IPv6 hop limit. */
  ttl = 0;
  /** IPv4 identification or IPv6 fragment header identification. */
  ipId = 0;
  /** True when this packet is a fragment (IPv4 MF/offset, IPv6 fragment header) not yet reassembled. */
  isFragment = false;
  /** Fragment offset in bytes. */
  fragOffset = 0;
  /** More-fragments flag. */
  moreFragments = false;
  /** Offset in `data` of the first IPv6 fragment header met while walking extension headers, or -1. */
  fragHdrOff = -1;
  /** True when `data` holds a datagram the defragmenter reassembled (then linkType is 228 / 229, raw IP). */
  reassembled = false;
  /**
   * True when the IPv4 header checksum was verified, was wrong, and its field
   * is 0: the capture shows a sum the sending host left to the NIC, and the
   * packet was accepted as the wire carried it.
   */
  ipv4ChecksumZero = false;

  // ---- layer 4 ----------------------------------------------------------------
  /** Transport protocol number (IPPROTO_*); for IPv6, the last next-header. */
  proto = 0;
  /** Offset of the transport header in `data`. */
  l4Off = 0;
  /** Transport bytes (header + payload) according to the IP header. */
  l4Len = 0;
  /** Transport bytes actually present in `data` (≤ l4Len for snapped captures). */
  l4CapLen = 0;
  /** True when the transport header is complete and sane enough for tracking. */
  l4Ok = false;
  /** TCP/UDP/UDP-Lite/SCTP ports; 0 for other protocols. */
  sport = 0;
  dport = 0;

  // TCP
  /** TCP flag byte (FIN 0x01 SYN 0x02 RST 0x04 PSH 0x08 ACK 0x10 URG 0x20 ECE 0x40 CWR 0x80). */
  tcpFlags = 0;
  /** Sequence number, unsigned 32-bit. */
  seq = 0;
  /** Acknowledgement number, unsigned 32-bit. */
  ack = 0;
  /** Raw (unscaled) window field. */
  window = 0;
  /** TCP header length in bytes (data offset × 4). */
  tcpHdrLen = 0;
  /** TCP payload length in bytes (from the IP length, not the captured length). */
  payloadLen = 0;
  /** MSS option value, or -1. */
  optMss = -1;
  /** Window-scale option shift as sent (not yet capped), or -1 when absent. */
  optWscale = -1;
  /** SACK-permitted option present. */
  optSackPerm = false;
  /** Number of SACK blocks (0–4); their right edges are in sackRight. */
  sackCount = 0;
  /** Right edges of the SACK blocks, unsigned 32-bit. */
  readonly sackRight = new Uint32Array(4);

  // ICMP / ICMPv6
  icmpType = -1;
  icmpCode = -1;
  /** Echo/query identifier (0 when the type has none). */
  icmpId = 0;

  // GRE
  /** GRE version (0 or 1 = PPTP enhanced GRE); -1 when not GRE. */
  greVersion = -1;
  /** GRE key (v0 with K bit) or PPTP call id (v1); 0 when absent. */
  greKey = 0;
  /** GRE protocol type field (0x880b = PPP for PPTP); 0 when not GRE. */
  greProtocol = 0;

  // SCTP
  /** SCTP verification tag. */
  sctpVtag = 0;
  /** Offset of the first SCTP chunk in `data`. */
  sctpChunksOff = 0;

  // ---- ICMP error payload (the quoted packet) --------------------------------
  /** True when this is an ICMP/ICMPv6 error whose quoted IP header and 8 transport bytes were decoded. */
  innerOk = false;
  innerFamily: 0 | 4 | 6 = 0;
  innerProto = 0;
  readonly innerSrc = new Uint32Array(4);
  readonly innerDst = new Uint32Array(4);
  innerSport = 0;
  innerDport = 0;
  innerIcmpType = -1;
  innerIcmpCode = -1;
  innerIcmpId = 0;
  innerGreKey = 0;

  // ---- outcome of decoding -----------------------------------------------------
  /** 0 when decoding succeeded as far as it went; otherwise a DecodeReason code. */
  reason = 0;

  /**
   * Points the view at one whole captured frame (`bytes` from offset 0, all
   * of it captured, as long as on the wire) of link type `linkType`, ready for
   * decodeFrame(). For frames built in memory; readers fill the capture
   * fields themselves. Record number, file offset and timestamp are kept.
   */
  setFrame(bytes: Uint8Array, linkType: number = 1): this {
    this.data = bytes;
    this.frameOff = 0;
    this.capLen = bytes.length;
    this.wireLen = bytes.length;
    this.linkType = linkType;
    return this;
  }

  /** Puts every decoded field back to its placeholder (capture fields are kept). */
  resetDecoded(): void {
    this.vlan = -1;
    this.vlanTags = 0;
    this.family = 0;
    this.l3Off = 0;
    this.l3HdrLen = 0;
    this.l3Len = 0;
    const src = this.src;
    src[0] = 0;
    src[1] = 0;
    src[2] = 0;
    src[3] = 0;
    const dst = this.dst;
    dst[0] = 0;
    dst[1] = 0;
    dst[2] = 0;
    dst[3] = 0;
    this.ttl = 0;
    this.ipId = 0;
    this.isFragment = false;
    this.fragOffset = 0;
    this.moreFragments = false;
    this.fragHdrOff = -1;
    this.reassembled = false;
    this.ipv4ChecksumZero = false;
    this.proto = 0;
    this.l4Off = 0;
    this.l4Len = 0;
    this.l4CapLen = 0;
    this.l4Ok = false;
    this.sport = 0;
    this.dport = 0;
    this.tcpFlags = 0;
    this.seq = 0;
    this.ack = 0;
    this.window = 0;
    this.tcpHdrLen = 0;
    this.payloadLen = 0;
    this.optMss = -1;
    this.optWscale = -1;
    this.optSackPerm = false;
    this.sackCount = 0;
    this.icmpType = -1;
    this.icmpCode = -1;
    this.icmpId = 0;
    this.greVersion = -1;
    this.greKey = 0;
    this.greProtocol = 0;
    this.sctpVtag = 0;
    this.sctpChunksOff = 0;
    this.innerOk = false;
    this.innerFamily = 0;
    this.innerProto = 0;
    const innerSrc = this.innerSrc;
    innerSrc[0] = 0;
    innerSrc[1] = 0;
    innerSrc[2] = 0;
    innerSrc[3] = 0;
    const innerDst = this.innerDst;
    innerDst[0] = 0;
    innerDst[1] = 0;
    innerDst[2] = 0;
    innerDst[3] = 0;
    this.innerSport = 0;
    this.innerDport = 0;
    this.innerIcmpType = -1;
    this.innerIcmpCode = -1;
    this.innerIcmpId = 0;
    this.innerGreKey = 0;
    this.reason = 0;
  }
}

const EMPTY = new Uint8Array(0);

/** IP protocol numbers: defined with their names in proto.ts, exported here too since the view's `proto` holds them. */
export { IPPROTO } from "./proto.js";

/** TCP flag bits as they appear in the flag byte. */
export const TCP_FLAG = {
  FIN: 0x01,
  SYN: 0x02,
  RST: 0x04,
  PSH: 0x08,
  ACK: 0x10,
  URG: 0x20,
  ECE: 0x40,
  CWR: 0x80,
} as const;

/** SCTP chunk types (SCTP_CID_*), as conntrack and the frame builder name them. */
export const SCTP_CHUNK = {
  DATA: 0,
  INIT: 1,
  INIT_ACK: 2,
  SACK: 3,
  HEARTBEAT: 4,
  HEARTBEAT_ACK: 5,
  ABORT: 6,
  SHUTDOWN: 7,
  SHUTDOWN_ACK: 8,
  ERROR: 9,
  COOKIE_ECHO: 10,
  COOKIE_ACK: 11,
  SHUTDOWN_COMPLETE: 14,
} as const;
