/**
 * The fast frame writer: Ethernet + IPv4 + TCP/UDP frames written into one
 * reused buffer, checksums included, no allocation per frame.
 *
 * Millions of frames cannot go through `buildTcp` one by one in reasonable
 * time (it allocates several arrays per frame). `FrameWriter.selfCheck()`
 * compares its output byte for byte with `buildTcp`/`buildUdp` for every
 * packet shape the generators use, so the two cannot drift apart; a test
 * runs it.
 */
import { buildTcp, buildUdp } from "../packet/build.js";
import type { TcpBuildOptions } from "../packet/build.js";
import { formatIp } from "../packet/addr.js";
import { onesSum } from "../packet/checksum.js";

export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;

/** MSS 1460, SACK permitted, window scale 7: what a Linux SYN carries (timestamps left out). */
export const SYN_OPTIONS: Uint8Array = Uint8Array.from([2, 4, 0x05, 0xb4, 1, 1, 4, 2, 1, 3, 3, 7]);
export const NO_OPTIONS: Uint8Array = new Uint8Array(0);

/** The payload byte pattern of the frame builder (`payloadBytes` in build.ts). */
function payloadByte(i: number): number {
  return (i * 7 + 0x41) & 0xff;
}

/** The largest payload a frame may carry (an Ethernet MTU's worth and then some). */
export const MAX_PAYLOAD = 1960;

/** The payload pattern, once: a frame's payload is a prefix of it. */
const PATTERN: Uint8Array = Uint8Array.from({ length: MAX_PAYLOAD }, (_, i) => payloadByte(i));

/** Sum of a byte string as 16-bit words (not folded), cached per options array (the generators pass a few constants). */
const optionSums = new WeakMap<Uint8Array, number>();

function optionsSum(options: Uint8Array): number {
  let s = optionSums.get(options);
  if (s === undefined) {
    s = onesSum(options, 0, options.length, 0);
    optionSums.set(options, s);
  }
  return s;
}

/** One's-complement fold of a sum of 16-bit words (any non-negative integer below 2^53). */
function fold(sum: number): number {
  let s = sum;
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 65536);
  return s;
}

/**
 * Ethernet/IPv4 frames written into one reused buffer. Addresses are u32
 * host-order values. The checksums are summed from the field values, not
 * read back from the bytes: the header words are known, the payload and
 * option sums are precomputed (a frame costs its stores and a few adds).
 */
export class FrameWriter {
  readonly buf = new Uint8Array(2048);
  /** Sum of the payload bytes as 16-bit words, by length (the pattern is fixed). */
  readonly #payloadSum = new Float64Array(MAX_PAYLOAD + 1).fill(-1);
  /** The bytes of the last payload written and the options written after the last header: skipped when the next frame has the same. */
  #lastPayload = -1;
  #lastPayloadOff = -1;
  #lastOptions: Uint8Array | null = null;

  constructor() {
    const b = this.buf;
    // Destination and source MAC: the frame builder's defaults; EtherType IPv4.
    b.set([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00], 0);
    // The IPv4 header's constant bytes: version/IHL, TOS, ID, flags/fragment offset, TTL.
    b[14] = 0x45;
    b[15] = 0;
    b[18] = 0;
    b[19] = 0;
    b[20] = 0;
    b[21] = 0;
    b[22] = 64;
  }

  /** Writes the IPv4 header for `l4Len` bytes of protocol `proto`. */
  #ip(src: number, dst: number, proto: number, l4Len: number): number {
    const b = this.buf;
    const ipLen = 20 + l4Len;
    b[16] = ipLen >>> 8;
    b[17] = ipLen & 0xff;
    b[23] = proto;
    be32(b, 26, src);
    be32(b, 30, dst);
    // 0x4500 + total length + 0 (ID) + 0 (frag) + TTL/protocol + addresses.
    const ipSum = ~fold(0x4500 + ipLen + ((64 << 8) | proto) + (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff)) & 0xffff;
    b[24] = ipSum >>> 8;
    b[25] = ipSum & 0xff;
    return ipLen;
  }

  #payload(off: number, len: number): void {
    if (len === 0 || (off === this.#lastPayloadOff && len <= this.#lastPayload)) return;
    this.buf.set(len === MAX_PAYLOAD ? PATTERN : PATTERN.subarray(0, len), off);
    this.#lastPayloadOff = off;
    this.#lastPayload = len;
  }

  /** Writes one TCP frame and returns its length. */
  tcp(
    src: number,
    dst: number,
    sport: number,
    dport: number,
    seq: number,
    ack: number,
    flags: number,
    win: number,
    options: Uint8Array,
    payload: number,
  ): number {
    const b = this.buf;
    const optLen = (options.length + 3) & ~3;
    const thl = 20 + optLen;
    const l4Len = thl + payload;
    const ipLen = this.#ip(src, dst, 6, l4Len);
    // TCP header at 34.
    b[34] = sport >>> 8;
    b[35] = sport & 0xff;
    b[36] = dport >>> 8;
    b[37] = dport & 0xff;
    be32(b, 38, seq);
    be32(b, 42, ack);
    const off = (thl >> 2) << 4;
    b[46] = off;
    b[47] = flags;
    b[48] = win >>> 8;
    b[49] = win & 0xff;
    b[52] = 0;
    b[53] = 0;
    let sum = 6 + l4Len + (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff);
    sum += sport + dport + (seq >>> 16) + (seq & 0xffff) + (ack >>> 16) + (ack & 0xffff) + ((off << 8) | flags) + win;
    if (optLen !== 0) {
      if (options !== this.#lastOptions) {
        b.set(options, 54);
        for (let i = options.length; i < optLen; i++) b[54 + i] = 0;
        this.#lastOptions = options;
      }
      // The options' pad bytes are zero: their sum is the options' own.
      sum += optionsSum(options);
      // The payload moved: what was there is no longer the pattern's prefix.
      this.#lastPayloadOff = -1;
    } else if (this.#lastOptions !== null) {
      this.#lastOptions = null;
      this.#lastPayloadOff = -1;
    }
    this.#payload(54 + optLen, payload);
    // The header is a multiple of 4 bytes, so the payload's words align with the pattern's.
    sum += this.#sumOfPayload(payload);
    const cs = ~fold(sum) & 0xffff;
    b[50] = cs >>> 8;
    b[51] = cs & 0xff;
    return 14 + ipLen;
  }

  /** Writes one UDP frame and returns its length. */
  udp(src: number, dst: number, sport: number, dport: number, payload: number): number {
    const b = this.buf;
    const l4Len = 8 + payload;
    const ipLen = this.#ip(src, dst, 17, l4Len);
    b[34] = sport >>> 8;
    b[35] = sport & 0xff;
    b[36] = dport >>> 8;
    b[37] = dport & 0xff;
    b[38] = l4Len >>> 8;
    b[39] = l4Len & 0xff;
    // The UDP payload starts at 42, where TCP's header was: whatever a TCP frame left there is not the pattern.
    this.#lastOptions = null;
    this.#lastPayloadOff = -1;
    this.#payload(42, payload);
    let sum = 17 + l4Len + (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff);
    sum += sport + dport + l4Len;
    sum += this.#sumOfPayload(payload);
    // A computed zero goes out as 0xffff: zero means "no checksum" in UDP over IPv4.
    const cs = ~fold(sum) & 0xffff || 0xffff;
    b[40] = cs >>> 8;
    b[41] = cs & 0xff;
    return 14 + ipLen;
  }

  #sumOfPayload(len: number): number {
    if (len === 0) return 0;
    let s = this.#payloadSum[len] as number;
    if (s < 0) {
      s = onesSum(PATTERN, 0, len, 0);
      this.#payloadSum[len] = s;
    }
    return s;
  }

  /**
   * Compares frames of every shape the generators write with `buildTcp`'s and `buildUdp`'s.
   * @throws Error naming the first differing byte
   */
  static selfCheck(): void {
    const f = new FrameWriter();
    const ip = (a: number) => formatIp(4, Uint32Array.of(a, 0, 0, 0));
    const compare = (what: string, n: number, ref: Uint8Array) => {
      if (ref.length !== n) throw new Error(`FrameWriter ${what}: length ${n}, the builder's ${ref.length}`);
      for (let i = 0; i < n; i++) {
        if (ref[i] !== f.buf[i]) throw new Error(`FrameWriter ${what}: byte ${i} is ${f.buf[i]}, the builder has ${ref[i]}`);
      }
    };
    const cases: Array<[number, number, number, number, number, number, number, number, Uint8Array, number]> = [
      [0x0a000001, 0xc6120001, 40000, 80, 1, 0, TCP_SYN, 64240, SYN_OPTIONS, 0],
      [0xc6120001, 0x0a000001, 80, 40000, 0xfffffff0, 2, TCP_SYN | TCP_ACK, 65160, SYN_OPTIONS, 0],
      [0x0a000001, 0xc6120001, 40000, 80, 2, 0xfffffff1, TCP_PSH | TCP_ACK, 502, NO_OPTIONS, 16],
      [0xc6120001, 0x0a000001, 80, 40000, 0xfffffff1, 18, TCP_PSH | TCP_ACK, 509, NO_OPTIONS, 64],
      [0x0a000001, 0xc6120001, 40000, 80, 18, 0x31, TCP_FIN | TCP_ACK, 502, NO_OPTIONS, 0],
      [0x0a000001, 0xc6120001, 40000, 80, 18, 0, TCP_RST, 0, NO_OPTIONS, 0],
      [0xc6120001, 0x0a000001, 80, 40000, 0, 19, TCP_RST | TCP_ACK, 0, NO_OPTIONS, 0],
      [0x0a000001, 0xc6120001, 40000, 80, 7, 0, TCP_SYN, 1024, NO_OPTIONS, 0],
      [0xffffffff, 0x01020304, 65535, 1, 0x80000000, 0x7fffffff, TCP_ACK, 0, NO_OPTIONS, 1],
      [0x0a000001, 0xc6120001, 40000, 443, 2, 3, TCP_PSH | TCP_ACK, 502, NO_OPTIONS, 1400],
    ];
    const udp: Array<[number, number, number, number, number]> = [
      [0x0a000001, 0xc6120035, 40000, 53, 40],
      [0xc6120035, 0x0a000001, 53, 40000, 120],
      [0x0a000001, 0xc6120035, 1, 2, 0],
      [0x0a000001, 0xc6120035, 1, 2, 3],
      [0xffffffff, 0xffffffff, 65535, 65535, 512],
    ];
    const tcpCase = (i: number) => {
      const [src, dst, sport, dport, seq, ack, flags, win, opts, payload] = cases[i] as (typeof cases)[number];
      const n = f.tcp(src, dst, sport, dport, seq, ack, flags, win, opts, payload);
      const o: TcpBuildOptions = { src: ip(src), dst: ip(dst), sport, dport, seq, ack, flags, win, payload };
      if (opts.length > 0) o.tcpOptions = opts;
      compare(`tcp case ${i}`, n, buildTcp(o));
    };
    const udpCase = (i: number) => {
      const [src, dst, sport, dport, payload] = udp[i] as (typeof udp)[number];
      const n = f.udp(src, dst, sport, dport, payload);
      compare(`udp case ${i}`, n, buildUdp({ src: ip(src), dst: ip(dst), sport, dport, payload }));
    };
    for (let i = 0; i < cases.length; i++) tcpCase(i);
    for (let i = 0; i < udp.length; i++) udpCase(i);
    // The writer skips bytes the last frame left right (options, the payload's prefix): every order of shapes must still match.
    let x = 0x2545f491;
    for (let k = 0; k < 400; k++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      const r = (x >>> 0) % (cases.length + udp.length);
      if (r < cases.length) tcpCase(r);
      else udpCase(r - cases.length);
    }
  }
}

function be32(b: Uint8Array, o: number, v: number): void {
  b[o] = v >>> 24;
  b[o + 1] = (v >>> 16) & 0xff;
  b[o + 2] = (v >>> 8) & 0xff;
  b[o + 3] = v & 0xff;
}
