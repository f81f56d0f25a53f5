/**
 * The packet layer's public surface: capture formats (read and write), link /
 * IP / transport decoding into the reused PacketView, checksums,
 * defragmentation, and the packet sources that tie them together.
 */
export { PacketView, IPPROTO, TCP_FLAG } from "./view.js";
export { ETH_P, IP_PROTOCOL_NUMBERS, LINKTYPE, NEXTHDR, conntrackProtoName, rulesetProtoName, trackedProtoName } from "./proto.js";
export { Ipv6Walk, ipv6SkipExthdr } from "./ipv6.js";
export { CaptureError } from "./errors.js";
export type { CaptureErrorReason } from "./errors.js";
export { CaptureParser } from "./capture.js";
export type { CaptureParserOptions, RecordSink } from "./capture.js";
export {
  decodeFrame,
  decodeIpv4,
  decodeIpv6,
  decodeReasonName,
  decodeReasonText,
  decodeReasons,
  DECODE_REASON,
  DECODE_FLAG,
  FIRST_L4_REASON,
  SUPPORTED_LINK_TYPES,
} from "./decode.js";
export type { DecodeReason } from "./decode.js";
export { l4ChecksumOk, ipv4HeaderChecksumOk, onesSum, foldSum, finishChecksum, pseudoHeaderSum, sctpCrc32c } from "./checksum.js";
export { Defragmenter, DEFRAG } from "./defrag.js";
export type { DefragOptions, DefragSummary, DefragDropReason } from "./defrag.js";
export { PacketSource, forEachPacket, forEachPacketSync } from "./source.js";
export type { PacketHandler, SourceOptions, SourceSummary } from "./source.js";
export { PcapWriter, PcapngWriter } from "./writer.js";
export type { CaptureOutput, PcapWriterOptions, PcapngWriterOptions, PcapngInterface } from "./writer.js";
export {
  buildTcp,
  buildUdp,
  buildUdpLite,
  buildIcmp,
  buildIcmpError,
  buildSctp,
  buildGre,
  buildIp,
  buildFromView,
  frameIp,
  fragment,
  locateIp,
  sctpInitChunk,
  tcpFlagsByte,
  SCTP_CHUNK,
} from "./build.js";
export type {
  LinkOptions,
  IpOptions,
  PacketOptions,
  Payload,
  TcpFlags,
  TcpBuildOptions,
  UdpBuildOptions,
  UdpLiteBuildOptions,
  IcmpBuildOptions,
  IcmpErrorOptions,
  SctpChunk,
  SctpBuildOptions,
  GreBuildOptions,
  Ipv6ExtHeader,
  FragmentOptions,
} from "./build.js";
export { parseIp, formatIp, ipFamily, ipToWords } from "./addr.js";
