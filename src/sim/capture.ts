/**
 * A real capture as a traffic source (`type: capture`, `--traffic-from`):
 * its packets go through the tracker at their own spacing, divided by
 * `scale` (10 plays the capture ten times faster), from the source's start.
 * Looped, each pass after the first moves every address not in `keep` by the
 * pass number (IPv4: + pass × 2^16; IPv6: + pass in the second 32-bit word),
 * so a pass's flows are new connections rather than packets of the last
 * pass's entries, and fixes the checksums incrementally (IPv4 header
 * recomputed; TCP, UDP and ICMPv6 adjusted for the pseudo-header, RFC 1624).
 *
 * Replayed traffic does not react: a packet the table drops is not sent
 * again, and its flows are not counted as legitimate connections (the
 * capture's hosts already behaved as they did). ICMP errors have their outer
 * addresses moved only. The capture is held in memory, frames as the
 * Ethernet framing of their IP packet (fragments reassembled first, as the
 * kernel's defrag does before conntrack).
 */
import { readFileSync } from "node:fs";
import { forEachPacketSync } from "../packet/source.js";
import { CaptureError } from "../packet/errors.js";
import { onesSum } from "../packet/checksum.js";
import { parseIp } from "../packet/addr.js";
import { IPPROTO } from "../packet/proto.js";
import type { FrameSink } from "./sink.js";

/** The packets of a capture, struct of arrays over one byte store. */
export interface CaptureFrames {
  readonly name: string;
  /** Ethernet frames, back to back. */
  readonly bytes: Uint8Array;
  readonly off: Uint32Array;
  /** Captured bytes of the frame, and the frame's length on the wire. */
  readonly len: Uint32Array;
  readonly wireLen: Uint32Array;
  /** Microseconds since the first packet. */
  readonly us: Float64Array;
  /** 4 or 6. */
  readonly family: Uint8Array;
  /** Offset of the transport header in the frame (0: none to fix, e.g. a fragment). */
  readonly l4Off: Uint16Array;
  readonly proto: Uint8Array;
  readonly count: number;
  /** Microseconds from the first packet to the last. */
  readonly spanUs: number;
}

const ETH_HDR = 14;

/**
 * Loads the IP packets of a pcap or pcapng file (any link type the replay
 * reads); packets that are not IP are left out (`count` may be 0).
 * @throws CaptureError for an unreadable or malformed file
 */
export function loadCapture(path: string): CaptureFrames {
  let data: Uint8Array;
  try {
    data = readFileSync(path);
  } catch (e) {
    throw new CaptureError(path, 0, "io-error", `Cannot read capture "${path}": ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  const meta: Array<[number, number, number, number, number]> = [];
  let t0 = -1;
  forEachPacketSync(
    data,
    (v) => {
      if (v.family === 0) return;
      const ip = v.data.subarray(v.l3Off, v.frameOff + v.capLen);
      const us = v.tsSec * 1e6 + Math.floor(v.tsNsec / 1000);
      if (t0 < 0) t0 = us;
      // A fragment that is not the first, or one whose transport header was not captured, has no checksum to adjust.
      const l4 = (v.isFragment && !v.reassembled) || v.l4CapLen < 8 ? 0 : ETH_HDR + (v.l4Off - v.l3Off);
      const frame = new Uint8Array(ETH_HDR + ip.length);
      frame.set([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1], 0);
      frame[12] = v.family === 4 ? 0x08 : 0x86;
      frame[13] = v.family === 4 ? 0x00 : 0xdd;
      frame.set(ip, ETH_HDR);
      chunks.push(frame);
      const wire = ETH_HDR + Math.max(ip.length, v.l3Len);
      meta.push([Math.max(0, us - t0), frame.length, wire, v.family, l4 | (v.proto << 16)]);
      total += frame.length;
    },
    { name: path },
  );
  const n = meta.length;
  const bytes = new Uint8Array(total);
  const off = new Uint32Array(n);
  const len = new Uint32Array(n);
  const wireLen = new Uint32Array(n);
  const us = new Float64Array(n);
  const family = new Uint8Array(n);
  const l4Off = new Uint16Array(n);
  const proto = new Uint8Array(n);
  let o = 0;
  let last = 0;
  for (let i = 0; i < n; i++) {
    const m = meta[i] as [number, number, number, number, number];
    const c = chunks[i] as Uint8Array;
    bytes.set(c, o);
    off[i] = o;
    len[i] = m[1];
    wireLen[i] = m[2];
    // A capture's timestamps may step back (several interfaces): time never goes backwards here.
    last = Math.max(last, m[0]);
    us[i] = last;
    family[i] = m[3];
    l4Off[i] = m[4] & 0xffff;
    proto[i] = m[4] >>> 16;
    o += m[1];
  }
  return { name: path, bytes, off, len, wireLen, us, family, l4Off, proto, count: n, spanUs: last };
}

/** What a capture source needs of its scenario entry. */
export interface CaptureSpec {
  scale: number;
  loop: boolean;
  keep: readonly string[];
  start: number;
  end?: number | undefined;
}

/** Where the L4 checksum of a protocol sits in its header, or -1 (SCTP's CRC32c and ICMPv4's cover no address). */
function checksumAt(proto: number, family: number): number {
  if (proto === IPPROTO.TCP) return 16;
  if (proto === IPPROTO.UDP || proto === IPPROTO.UDPLITE) return 6;
  if (proto === IPPROTO.ICMPV6 && family === 6) return 2;
  return -1;
}

function fold(sum: number): number {
  let s = sum;
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 65536);
  return s;
}

/** Replays a loaded capture into the simulated network (a `Source` of sources.ts, by shape: that module builds it). */
export class CaptureTraffic {
  readonly #sink: FrameSink;
  readonly #c: CaptureFrames;
  readonly #scale: number;
  readonly #loop: boolean;
  readonly #startUs: number;
  readonly #endUs: number;
  readonly #passUs: number;
  readonly #keep4 = new Set<number>();
  readonly #keep6: Uint32Array[] = [];
  readonly #buf: Uint8Array;
  #i = 0;
  #pass = 0;
  #next = Infinity;
  #oldSum = 0;
  #newSum = 0;
  /** Packets sent. */
  sent = 0;

  constructor(sink: FrameSink, frames: CaptureFrames, spec: CaptureSpec, t0Us: number, durationS: number, hostAddress: string) {
    this.#sink = sink;
    this.#c = frames;
    this.#scale = spec.scale;
    this.#loop = spec.loop;
    this.#startUs = t0Us + spec.start * 1e6;
    this.#endUs = t0Us + Math.min(spec.end ?? durationS, durationS) * 1e6;
    const span = frames.spanUs / spec.scale;
    // One mean gap between the last packet of a pass and the first of the next.
    this.#passUs = span + Math.max(1, span / Math.max(1, frames.count - 1));
    for (const a of [hostAddress, ...spec.keep]) {
      const w = parseIp(a);
      if (w.length === 4) this.#keep4.add(be32(w, 0));
      else this.#keep6.push(Uint32Array.of(be32(w, 0), be32(w, 4), be32(w, 8), be32(w, 12)));
    }
    let max = 0;
    for (let i = 0; i < frames.count; i++) max = Math.max(max, frames.len[i] as number);
    this.#buf = new Uint8Array(max);
    this.#schedule();
  }

  get nextUs(): number {
    return this.#next;
  }

  #schedule(): void {
    if (this.#c.count === 0) return;
    if (this.#i >= this.#c.count) {
      if (!this.#loop) {
        this.#next = Infinity;
        return;
      }
      this.#i = 0;
      this.#pass++;
    }
    const t = Math.round(this.#startUs + this.#pass * this.#passUs + (this.#c.us[this.#i] as number) / this.#scale);
    this.#next = t < this.#endUs ? t : Infinity;
  }

  step(): void {
    const c = this.#c;
    const i = this.#i;
    const us = this.#next;
    const n = c.len[i] as number;
    const b = this.#buf;
    const src = c.bytes;
    const o = c.off[i] as number;
    for (let k = 0; k < n; k++) b[k] = src[o + k] as number;
    if (this.#pass > 0) this.#rotate(i, n);
    this.#sink.frame(us, b, n, c.wireLen[i]);
    this.sent++;
    this.#i = i + 1;
    this.#schedule();
  }

  /** Moves the addresses not kept by the pass number and fixes the checksums. */
  #rotate(i: number, n: number): void {
    const b = this.#buf;
    const c = this.#c;
    const fam = c.family[i] as number;
    const l4 = c.l4Off[i] as number;
    const csAt = l4 === 0 ? -1 : checksumAt(c.proto[i] as number, fam);
    this.#oldSum = 0;
    this.#newSum = 0;
    if (fam === 4) {
      this.#move4(ETH_HDR + 12);
      this.#move4(ETH_HDR + 16);
      // The IPv4 header checksum, summed again over the header.
      const ihl = ((b[ETH_HDR] as number) & 0x0f) * 4;
      b[ETH_HDR + 10] = 0;
      b[ETH_HDR + 11] = 0;
      const hs = ~fold(onesSum(b, ETH_HDR, Math.min(ihl, n - ETH_HDR), 0)) & 0xffff;
      b[ETH_HDR + 10] = hs >>> 8;
      b[ETH_HDR + 11] = hs & 0xff;
    } else {
      this.#move6(ETH_HDR + 8);
      this.#move6(ETH_HDR + 24);
    }
    if (csAt < 0 || l4 + csAt + 2 > n || this.#oldSum === 0) return;
    const p = l4 + csAt;
    const cs = ((b[p] as number) << 8) | (b[p + 1] as number);
    // UDP over IPv4 without a checksum stays without one.
    if (cs === 0 && fam === 4 && c.proto[i] === IPPROTO.UDP) return;
    let sum = ~fold((~cs & 0xffff) + this.#oldSum + this.#newSum) & 0xffff;
    if (sum === 0 && c.proto[i] === IPPROTO.UDP) sum = 0xffff;
    b[p] = sum >>> 8;
    b[p + 1] = sum & 0xff;
  }

  /** Adds `add` to the 32-bit word at `at`, keeping the one's-complement sums of the old and new words. */
  #moveWord(at: number, add: number): void {
    const b = this.#buf;
    const a = be32(b, at);
    const r = (a + add) >>> 0;
    this.#oldSum += (~(a >>> 16) & 0xffff) + (~a & 0xffff);
    this.#newSum += (r >>> 16) + (r & 0xffff);
    b[at] = r >>> 24;
    b[at + 1] = (r >>> 16) & 0xff;
    b[at + 2] = (r >>> 8) & 0xff;
    b[at + 3] = r & 0xff;
  }

  #move4(at: number): void {
    if (!this.#keep4.has(be32(this.#buf, at))) this.#moveWord(at, this.#pass * 0x10000);
  }

  #move6(at: number): void {
    const b = this.#buf;
    for (const k of this.#keep6) {
      if (be32(b, at) === k[0] && be32(b, at + 4) === k[1] && be32(b, at + 8) === k[2] && be32(b, at + 12) === k[3]) return;
    }
    // The second 32-bit word of the address.
    this.#moveWord(at + 4, this.#pass);
  }
}

function be32(b: Uint8Array, at: number): number {
  return (((b[at] as number) << 24) | ((b[at + 1] as number) << 16) | ((b[at + 2] as number) << 8) | (b[at + 3] as number)) >>> 0;
}
