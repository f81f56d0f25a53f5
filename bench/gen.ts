/**
 * Capture generators for the benchmarks.
 *
 * Frames are written with the simulator's fast frame writer (`FrameWriter`
 * in src/sim/frames.ts: one reused buffer, checksums included, checked byte
 * for byte against `buildTcp`).
 *
 * Every generator returns what a correct tracker must report for its
 * capture; the benchmark cases check those numbers after each timed run.
 */
import { PcapWriter } from "../src/packet/writer.js";
import { FrameWriter, NO_OPTIONS, SYN_OPTIONS, TCP_ACK as ACK, TCP_FIN as FIN, TCP_PSH as PSH, TCP_SYN as SYN } from "../src/sim/frames.js";

/** Capture start: 2023-11-14T22:13:20Z, in microseconds. */
const T0_US = 1_700_000_000_000_000;

/** Appends a record at `us` microseconds since the epoch. */
function put(w: PcapWriter, f: FrameWriter, us: number, len: number): void {
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
  frame: (f: FrameWriter, e: FlowEnds, step: number) => number,
): number {
  const w = new PcapWriter(path, { bufferSize: 4 << 20 });
  const f = new FrameWriter();
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
  const f = new FrameWriter();
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
