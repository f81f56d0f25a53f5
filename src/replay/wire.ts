/**
 * A decoded PacketView as numbers, for handing packets to worker threads
 * (`replay --threads`): the decoder runs once, on the reading thread, and a
 * worker rebuilds the very view the tracker would have seen, pointed at the
 * frame's bytes in a shared batch buffer. Generated from view.ts (every
 * field but \`data\`; a test fails when a field is added and not carried).
 */
import type { PacketView } from "../packet/view.js";

/** Float64 cells per packet: every field of the view (address arrays as four cells). */
export const VIEW_CELLS = 78;

/** An offset into \`data\` (≥ the frame's start) moved from the reader's buffer to the batch's. */
function shifted(x: number, base: number, at: number): number {
  return x >= base ? x - base + at : x;
}

/** Writes every field of \`v\` into \`f\` from cell \`o\` (VIEW_CELLS cells). */
export function writeView(v: PacketView, f: Float64Array, o: number): void {
  f[o + 0] = v.index;
  f[o + 1] = v.fileOffset;
  f[o + 2] = v.tsSec;
  f[o + 3] = v.tsNsec;
  f[o + 4] = v.capLen;
  f[o + 5] = v.wireLen;
  f[o + 6] = v.linkType;
  f[o + 7] = v.interfaceId;
  f[o + 8] = v.frameOff;
  f[o + 9] = v.vlan;
  f[o + 10] = v.vlanTags;
  f[o + 11] = v.family;
  f[o + 12] = v.l3Off;
  f[o + 13] = v.l3HdrLen;
  f[o + 14] = v.l3Len;
  const src = v.src;
  f[o + 15] = src[0] as number;
  f[o + 16] = src[1] as number;
  f[o + 17] = src[2] as number;
  f[o + 18] = src[3] as number;
  const dst = v.dst;
  f[o + 19] = dst[0] as number;
  f[o + 20] = dst[1] as number;
  f[o + 21] = dst[2] as number;
  f[o + 22] = dst[3] as number;
  f[o + 23] = v.ttl;
  f[o + 24] = v.ipId;
  f[o + 25] = v.isFragment ? 1 : 0;
  f[o + 26] = v.fragOffset;
  f[o + 27] = v.moreFragments ? 1 : 0;
  f[o + 28] = v.fragHdrOff;
  f[o + 29] = v.reassembled ? 1 : 0;
  f[o + 30] = v.ipv4ChecksumZero ? 1 : 0;
  f[o + 31] = v.proto;
  f[o + 32] = v.l4Off;
  f[o + 33] = v.l4Len;
  f[o + 34] = v.l4CapLen;
  f[o + 35] = v.l4Ok ? 1 : 0;
  f[o + 36] = v.sport;
  f[o + 37] = v.dport;
  f[o + 38] = v.tcpFlags;
  f[o + 39] = v.seq;
  f[o + 40] = v.ack;
  f[o + 41] = v.window;
  f[o + 42] = v.tcpHdrLen;
  f[o + 43] = v.payloadLen;
  f[o + 44] = v.optMss;
  f[o + 45] = v.optWscale;
  f[o + 46] = v.optSackPerm ? 1 : 0;
  f[o + 47] = v.sackCount;
  const sackRight = v.sackRight;
  f[o + 48] = sackRight[0] as number;
  f[o + 49] = sackRight[1] as number;
  f[o + 50] = sackRight[2] as number;
  f[o + 51] = sackRight[3] as number;
  f[o + 52] = v.icmpType;
  f[o + 53] = v.icmpCode;
  f[o + 54] = v.icmpId;
  f[o + 55] = v.greVersion;
  f[o + 56] = v.greKey;
  f[o + 57] = v.greProtocol;
  f[o + 58] = v.sctpVtag;
  f[o + 59] = v.sctpChunksOff;
  f[o + 60] = v.innerOk ? 1 : 0;
  f[o + 61] = v.innerFamily;
  f[o + 62] = v.innerProto;
  const innerSrc = v.innerSrc;
  f[o + 63] = innerSrc[0] as number;
  f[o + 64] = innerSrc[1] as number;
  f[o + 65] = innerSrc[2] as number;
  f[o + 66] = innerSrc[3] as number;
  const innerDst = v.innerDst;
  f[o + 67] = innerDst[0] as number;
  f[o + 68] = innerDst[1] as number;
  f[o + 69] = innerDst[2] as number;
  f[o + 70] = innerDst[3] as number;
  f[o + 71] = v.innerSport;
  f[o + 72] = v.innerDport;
  f[o + 73] = v.innerIcmpType;
  f[o + 74] = v.innerIcmpCode;
  f[o + 75] = v.innerIcmpId;
  f[o + 76] = v.innerGreKey;
  f[o + 77] = v.reason;
}

/**
 * Sets every field of \`v\` from \`f\` at cell \`o\`, with \`data\` = \`bytes\`
 * holding the frame at \`at\` (offsets moved there from the writer's frame start).
 */
export function readView(v: PacketView, f: Float64Array, o: number, bytes: Uint8Array, at: number): void {
  const base = f[o + 8] as number;
  v.data = bytes;
  v.index = f[o + 0] as number;
  v.fileOffset = f[o + 1] as number;
  v.tsSec = f[o + 2] as number;
  v.tsNsec = f[o + 3] as number;
  v.capLen = f[o + 4] as number;
  v.wireLen = f[o + 5] as number;
  v.linkType = f[o + 6] as number;
  v.interfaceId = f[o + 7] as number;
  v.frameOff = shifted(f[o + 8] as number, base, at);
  v.vlan = f[o + 9] as number;
  v.vlanTags = f[o + 10] as number;
  v.family = f[o + 11] as 0 | 4 | 6;
  v.l3Off = shifted(f[o + 12] as number, base, at);
  v.l3HdrLen = f[o + 13] as number;
  v.l3Len = f[o + 14] as number;
  const src = v.src;
  src[0] = f[o + 15] as number;
  src[1] = f[o + 16] as number;
  src[2] = f[o + 17] as number;
  src[3] = f[o + 18] as number;
  const dst = v.dst;
  dst[0] = f[o + 19] as number;
  dst[1] = f[o + 20] as number;
  dst[2] = f[o + 21] as number;
  dst[3] = f[o + 22] as number;
  v.ttl = f[o + 23] as number;
  v.ipId = f[o + 24] as number;
  v.isFragment = f[o + 25] === 1;
  v.fragOffset = f[o + 26] as number;
  v.moreFragments = f[o + 27] === 1;
  v.fragHdrOff = shifted(f[o + 28] as number, base, at);
  v.reassembled = f[o + 29] === 1;
  v.ipv4ChecksumZero = f[o + 30] === 1;
  v.proto = f[o + 31] as number;
  v.l4Off = shifted(f[o + 32] as number, base, at);
  v.l4Len = f[o + 33] as number;
  v.l4CapLen = f[o + 34] as number;
  v.l4Ok = f[o + 35] === 1;
  v.sport = f[o + 36] as number;
  v.dport = f[o + 37] as number;
  v.tcpFlags = f[o + 38] as number;
  v.seq = f[o + 39] as number;
  v.ack = f[o + 40] as number;
  v.window = f[o + 41] as number;
  v.tcpHdrLen = f[o + 42] as number;
  v.payloadLen = f[o + 43] as number;
  v.optMss = f[o + 44] as number;
  v.optWscale = f[o + 45] as number;
  v.optSackPerm = f[o + 46] === 1;
  v.sackCount = f[o + 47] as number;
  const sackRight = v.sackRight;
  sackRight[0] = f[o + 48] as number;
  sackRight[1] = f[o + 49] as number;
  sackRight[2] = f[o + 50] as number;
  sackRight[3] = f[o + 51] as number;
  v.icmpType = f[o + 52] as number;
  v.icmpCode = f[o + 53] as number;
  v.icmpId = f[o + 54] as number;
  v.greVersion = f[o + 55] as number;
  v.greKey = f[o + 56] as number;
  v.greProtocol = f[o + 57] as number;
  v.sctpVtag = f[o + 58] as number;
  v.sctpChunksOff = shifted(f[o + 59] as number, base, at);
  v.innerOk = f[o + 60] === 1;
  v.innerFamily = f[o + 61] as 0 | 4 | 6;
  v.innerProto = f[o + 62] as number;
  const innerSrc = v.innerSrc;
  innerSrc[0] = f[o + 63] as number;
  innerSrc[1] = f[o + 64] as number;
  innerSrc[2] = f[o + 65] as number;
  innerSrc[3] = f[o + 66] as number;
  const innerDst = v.innerDst;
  innerDst[0] = f[o + 67] as number;
  innerDst[1] = f[o + 68] as number;
  innerDst[2] = f[o + 69] as number;
  innerDst[3] = f[o + 70] as number;
  v.innerSport = f[o + 71] as number;
  v.innerDport = f[o + 72] as number;
  v.innerIcmpType = f[o + 73] as number;
  v.innerIcmpCode = f[o + 74] as number;
  v.innerIcmpId = f[o + 75] as number;
  v.innerGreKey = f[o + 76] as number;
  v.reason = f[o + 77] as number;
}
