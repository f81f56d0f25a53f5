/**
 * Capture generators for the benchmarks.
 *
 * Millions of frames cannot go through `buildTcp` one by one in reasonable
 * time (it allocates several arrays per frame), so `TcpFrames` writes
 * Ethernet + IPv4 + TCP frames into one reused buffer, checksums included.
 * `TcpFrames.selfCheck()` compares its output byte for byte with `buildTcp`
 * for every packet shape the generators use, so the two cannot drift apart.
 *
 * Every generator returns what a correct tracker must report for its
 * capture; the benchmark cases check those numbers after each timed run.
 */
import { PcapWriter, buildTcp, formatIp } from "../src/packet/index.js";
import { finishChecksum, onesSum } from "../src/packet/checksum.js";
import type { TcpBuildOptions } from "../src/packet/index.js";

const FIN = 0x01;
const SYN = 0x02;
const PSH = 0x08;
const ACK = 0x10;

/** MSS 1460, SACK permitted, window scale 7: what a Linux SYN carries (timestamps left out). */
const SYN_OPTIONS = Uint8Array.from([2, 4, 0x05, 0xb4, 1, 1, 4, 2, 1, 3, 3, 7]);
const NO_OPTIONS = new Uint8Array(0);

/** The payload byte pattern of the frame builder (`payloadBytes` in build.ts). */
function payloadByte(i: number): number {
  return (i * 7 + 0x41) & 0xff;
}

/** Ethernet/IPv4/TCP frames written into one reused buffer. */
export class TcpFrames {
  readonly buf = new Uint8Array(2048);
  /** Sum of the payload bytes as 16-bit words, by length (the pattern is fixed). */
  readonly #payloadSum: number[] = [];

  constructor() {
    const b = this.buf;
    // Destination and source MAC: the frame builder's defaults; EtherType IPv4.
    b.set([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00], 0);
  }

  /** Writes one frame and returns its length. Addresses are u32 host-order values. */
  tcp(src: number, dst: number, sport: number, dport: number, seq: number, ack: number, flags: number, win: number, options: Uint8Array, payload: number): number {
    const b = this.buf;
    const optLen = (options.length + 3) & ~3;
    const thl = 20 + optLen;
    const l4Len = thl + payload;
    const ipLen = 20 + l4Len;
    // IPv4 header at 14.
    b[14] = 0x45;
    b[15] = 0;
    b[16] = ipLen >>> 8;
    b[17] = ipLen & 0xff;
    b[18] = 0;
    b[19] = 0;
    b[20] = 0;
    b[21] = 0;
    b[22] = 64;
    b[23] = 6;
    b[24] = 0;
    b[25] = 0;
    be32(b, 26, src);
    be32(b, 30, dst);
    const ipSum = finishChecksum(onesSum(b, 14, 20, 0));
    b[24] = ipSum >>> 8;
    b[25] = ipSum & 0xff;
    // TCP header at 34.
    b[34] = sport >>> 8;
    b[35] = sport & 0xff;
    b[36] = dport >>> 8;
    b[37] = dport & 0xff;
    be32(b, 38, seq);
    be32(b, 42, ack);
    b[46] = (thl >> 2) << 4;
    b[47] = flags;
    b[48] = win >>> 8;
    b[49] = win & 0xff;
    b[50] = 0;
    b[51] = 0;
    b[52] = 0;
    b[53] = 0;
    for (let i = 0; i < optLen; i++) b[54 + i] = i < options.length ? (options[i] as number) : 0;
    const dataOff = 54 + optLen;
    for (let i = 0; i < payload; i++) b[dataOff + i] = payloadByte(i);
    // Pseudo-header + header + payload (the header is a multiple of 4 bytes, so the payload sum aligns).
    let sum = 6 + l4Len + (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff);
    sum = onesSum(b, 34, thl, sum);
    sum += this.#sumOfPayload(payload);
    const cs = finishChecksum(sum);
    b[50] = cs >>> 8;
    b[51] = cs & 0xff;
    const frameLen = 14 + ipLen;
    return frameLen;
  }

  #sumOfPayload(len: number): number {
    let s = this.#payloadSum[len];
    if (s === undefined) {
      const p = new Uint8Array(len);
      for (let i = 0; i < len; i++) p[i] = payloadByte(i);
      s = onesSum(p, 0, len, 0);
      this.#payloadSum[len] = s;
    }
    return s;
  }

  /**
   * Compares frames of every shape the generators write with `buildTcp`'s.
   * @throws Error naming the first differing byte
   */
  static selfCheck(): void {
    const f = new TcpFrames();
    const cases: Array<[number, number, number, number, number, number, number, number, Uint8Array, number]> = [
      [0x0a000001, 0xc6120001, 40000, 80, 1, 0, SYN, 64240, SYN_OPTIONS, 0],
      [0xc6120001, 0x0a000001, 80, 40000, 0xfffffff0, 2, SYN | ACK, 65160, SYN_OPTIONS, 0],
      [0x0a000001, 0xc6120001, 40000, 80, 2, 0xfffffff1, PSH | ACK, 502, NO_OPTIONS, 16],
      [0xc6120001, 0x0a000001, 80, 40000, 0xfffffff1, 18, PSH | ACK, 509, NO_OPTIONS, 64],
      [0x0a000001, 0xc6120001, 40000, 80, 18, 0x31, FIN | ACK, 502, NO_OPTIONS, 0],
      [0xffffffff, 0x01020304, 65535, 1, 0x80000000, 0x7fffffff, ACK, 0, NO_OPTIONS, 1],
    ];
    for (const [src, dst, sport, dport, seq, ack, flags, win, opts, payload] of cases) {
      const n = f.tcp(src, dst, sport, dport, seq, ack, flags, win, opts, payload);
      const o: TcpBuildOptions = {
        src: formatIp(4, Uint32Array.of(src, 0, 0, 0)),
        dst: formatIp(4, Uint32Array.of(dst, 0, 0, 0)),
        sport,
        dport,
        seq,
        ack,
        flags,
        win,
        payload,
      };
      if (opts.length > 0) o.tcpOptions = opts;
      const ref = buildTcp(o);
      if (ref.length !== n) throw new Error(`TcpFrames: length ${n}, buildTcp ${ref.length}`);
      for (let i = 0; i < n; i++) {
        if (ref[i] !== f.buf[i]) throw new Error(`TcpFrames: byte ${i} is ${f.buf[i]}, buildTcp has ${ref[i]}`);
      }
    }
  }
}

function be32(b: Uint8Array, o: number, v: number): void {
  b[o] = v >>> 24;
  b[o + 1] = (v >>> 16) & 0xff;
  b[o + 2] = (v >>> 8) & 0xff;
  b[o + 3] = v & 0xff;
}

/** Capture start: 2023-11-14T22:13:20Z, in microseconds. */
const T0_US = 1_700_000_000_000_000;

/** Appends a record at `us` microseconds since the epoch. */
function put(w: PcapWriter, f: TcpFrames, us: number, len: number): void {
  const sec = Math.floor(us / 1e6);
  const usec = us - sec * 1e6;
  w.writePacket(sec, usec * 1000, f.buf.subarray(0, len));
}

/** The replay clock's reading of a record time (capture.ts: sec * 1000 + floor(nsec / 1e6)). */
function msOf(us: number): number {
  const sec = Math.floor(us / 1e6);
  return sec * 1000 + Math.floor((us - sec * 1e6) / 1000);
}

/** Tuple of flow `f`: distinct for every f < 2^24. */
function clientAddr(f: number): number {
  return (0x0a000000 | (f & 0xffffff)) >>> 0;
}
function serverAddr(f: number): number {
  return (0xc6120000 | (f & 0x3ff)) >>> 0; // 198.18.0.0/22
}
function clientPort(f: number): number {
  return 1024 + ((f * 7919) % 60000);
}
function isn(f: number, salt: number): number {
  return Math.imul(f + 1, 0x9e3779b1) ^ salt;
}

/** What a flow capture holds and what tracking it must give. */
export interface FlowCapture {
  path: string;
  packets: number;
  flows: number;
  /** Expected results of a capture-clock replay with the default TCP timeouts. */
  expect: { new: number; established: number; entries: number };
}

/**
 * `flows` complete TCP connections, each SYN, SYN/ACK, ACK+16 B request,
 * 64 B response, FIN/ACK, FIN/ACK, ACK (7 packets). Connections are
 * pipelined: at tick k, packet s of flow k - s·lag is written, so about
 * 7·lag connections are open at any time and packets of different flows
 * interleave as on a busy server. With `tickUs` per tick the capture spans
 * (flows + 6·lag)·tickUs; TIME_WAIT entries (120 s) expire along the way.
 */
export function writeFlowCapture(path: string, flows: number, lag: number, tickUs: number): FlowCapture {
  const ticks = flows + 6 * lag;
  const packets = writePipelined(path, flows, lag, 7, tickUs, (f, e, s) => {
    switch (s) {
      case 0:
        return f.tcp(e.c, e.sv, e.cp, e.sp, e.ci, 0, SYN, 64240, SYN_OPTIONS, 0);
      case 1:
        return f.tcp(e.sv, e.c, e.sp, e.cp, e.si, (e.ci + 1) >>> 0, SYN | ACK, 65160, SYN_OPTIONS, 0);
      case 2:
        return f.tcp(e.c, e.sv, e.cp, e.sp, (e.ci + 1) >>> 0, (e.si + 1) >>> 0, PSH | ACK, 502, NO_OPTIONS, 16);
      case 3:
        return f.tcp(e.sv, e.c, e.sp, e.cp, (e.si + 1) >>> 0, (e.ci + 17) >>> 0, PSH | ACK, 509, NO_OPTIONS, 64);
      case 4:
        return f.tcp(e.c, e.sv, e.cp, e.sp, (e.ci + 17) >>> 0, (e.si + 65) >>> 0, FIN | ACK, 502, NO_OPTIONS, 0);
      case 5:
        return f.tcp(e.sv, e.c, e.sp, e.cp, (e.si + 65) >>> 0, (e.ci + 18) >>> 0, FIN | ACK, 509, NO_OPTIONS, 0);
      default:
        return f.tcp(e.c, e.sv, e.cp, e.sp, (e.ci + 18) >>> 0, (e.si + 66) >>> 0, ACK, 502, NO_OPTIONS, 0);
    }
  });
  // Entries left at the end: TIME_WAIT (120 s = 30000 jiffies at HZ 250) from the
  // last ACK, reaped once its deadline is not after the last packet's jiffy.
  const lastJ = Math.floor(msOf(T0_US + (ticks - 1) * tickUs) / 4);
  let entries = 0;
  for (let fl = 0; fl < flows; fl++) {
    const j = Math.floor(msOf(T0_US + (fl + 6 * lag) * tickUs) / 4);
    if (j + 30000 > lastJ) entries++;
  }
  return { path, packets, flows, expect: { new: flows, established: 6 * flows, entries } };
}

/**
 * Handshakes only: SYN, SYN/ACK, ACK for `flows` distinct tuples, pipelined
 * like the flow capture (lag ticks between the packets of one handshake),
 * one tick per microsecond. Every connection ends ESTABLISHED and ASSURED.
 */
export function writeHandshakeCapture(path: string, flows: number, lag: number): FlowCapture {
  const packets = writePipelined(path, flows, lag, 3, 1, (f, e, s) => {
    if (s === 0) return f.tcp(e.c, e.sv, e.cp, e.sp, e.ci, 0, SYN, 64240, SYN_OPTIONS, 0);
    if (s === 1) return f.tcp(e.sv, e.c, e.sp, e.cp, e.si, (e.ci + 1) >>> 0, SYN | ACK, 65160, SYN_OPTIONS, 0);
    return f.tcp(e.c, e.sv, e.cp, e.sp, (e.ci + 1) >>> 0, (e.si + 1) >>> 0, ACK, 502, NO_OPTIONS, 0);
  });
  return { path, packets, flows, expect: { new: flows, established: 2 * flows, entries: flows } };
}

/** The endpoints and initial sequence numbers of generated flow `fl` (one object, refilled per packet). */
class FlowEnds {
  c = 0;
  sv = 0;
  cp = 0;
  sp = 0;
  ci = 0;
  si = 0;
  load(fl: number): this {
    this.c = clientAddr(fl);
    this.sv = serverAddr(fl);
    this.cp = clientPort(fl);
    this.sp = fl & 1 ? 443 : 80;
    this.ci = isn(fl, 0x1234) >>> 0;
    this.si = isn(fl, 0x5678) >>> 0;
    return this;
  }
}

/**
 * Writes `steps` packets per flow, pipelined: at tick k, step s of flow
 * k − s·lag, so packets of different flows interleave as on a busy server.
 * `frame` builds step s of a flow into the frame buffer and returns its length.
 * @returns the number of packets written
 */
function writePipelined(
  path: string,
  flows: number,
  lag: number,
  steps: number,
  tickUs: number,
  frame: (f: TcpFrames, e: FlowEnds, step: number) => number,
): number {
  const w = new PcapWriter(path, { bufferSize: 4 << 20 });
  const f = new TcpFrames();
  const e = new FlowEnds();
  let packets = 0;
  const ticks = flows + (steps - 1) * lag;
  for (let k = 0; k < ticks; k++) {
    const us = T0_US + k * tickUs;
    for (let s = 0; s < steps; s++) {
      const fl = k - s * lag;
      if (fl < 0 || fl >= flows) continue;
      put(w, f, us, frame(f, e.load(fl), s));
      packets++;
    }
  }
  w.close();
  return packets;
}

/**
 * Established traffic: `flows` connections open with a handshake, then
 * `dataPackets` packets alternate between a client segment of `payload`
 * bytes on flow i and the server's ACK of everything sent so far on the
 * flow half a round behind, so consecutive packets never share a flow.
 * One packet per microsecond; every packet is in window.
 */
export function writeEstablishedCapture(path: string, flows: number, dataPackets: number, payload: number): FlowCapture {
  const w = new PcapWriter(path, { bufferSize: 4 << 20 });
  const f = new TcpFrames();
  const cNext = new Uint32Array(flows);
  const sNext = new Uint32Array(flows);
  let us = T0_US;
  for (let fl = 0; fl < flows; fl++) {
    const c = clientAddr(fl);
    const sv = serverAddr(fl);
    const cp = clientPort(fl);
    const sp = fl & 1 ? 443 : 80;
    const ci = isn(fl, 0x1234) >>> 0;
    const si = isn(fl, 0x5678) >>> 0;
    put(w, f, us++, f.tcp(c, sv, cp, sp, ci, 0, SYN, 64240, SYN_OPTIONS, 0));
    put(w, f, us++, f.tcp(sv, c, sp, cp, si, (ci + 1) >>> 0, SYN | ACK, 65160, SYN_OPTIONS, 0));
    put(w, f, us++, f.tcp(c, sv, cp, sp, (ci + 1) >>> 0, (si + 1) >>> 0, ACK, 502, NO_OPTIONS, 0));
    cNext[fl] = (ci + 1) >>> 0;
    sNext[fl] = (si + 1) >>> 0;
  }
  const half = flows >>> 1;
  for (let i = 0; i < dataPackets; i++) {
    const visit = i >>> 1;
    if ((i & 1) === 0) {
      const fl = visit % flows;
      const seq = cNext[fl] as number;
      const n = f.tcp(clientAddr(fl), serverAddr(fl), clientPort(fl), fl & 1 ? 443 : 80, seq, sNext[fl] as number, PSH | ACK, 502, NO_OPTIONS, payload);
      cNext[fl] = (seq + payload) >>> 0;
      put(w, f, us++, n);
    } else {
      const fl = (visit + half) % flows;
      const n = f.tcp(serverAddr(fl), clientAddr(fl), fl & 1 ? 443 : 80, clientPort(fl), sNext[fl] as number, cNext[fl] as number, ACK, 509, NO_OPTIONS, 0);
      put(w, f, us++, n);
    }
  }
  w.close();
  const packets = 3 * flows + dataPackets;
  return { path, packets, flows, expect: { new: flows, established: 2 * flows + dataPackets, entries: flows } };
}
