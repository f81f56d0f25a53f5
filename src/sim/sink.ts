/**
 * Frame sinks: where generated frames go.
 *
 * - {@link TrackerSink} decodes each frame into one reused PacketView and
 *   runs it through a tracker (or a ruleset's netfilter path) at once, so
 *   generated traffic needs no capture file in between. It keeps time the
 *   way `replay --clock capture` does (milliseconds = floor(µs / 1000)), so
 *   the same frames written to a pcap and replayed give the same table.
 * - {@link PcapSink} writes a classic microsecond pcap (`--write-pcap`).
 * - {@link TeeSink} feeds several: the verdict is the first one's.
 *
 * A sink answers whether the frame got through: a generator can react to a
 * drop (a client retransmits a SYN the full table dropped).
 */
import { CT_DROPPED } from "../conntrack/tracker.js";
import type { Tracker } from "../conntrack/tracker.js";
import { decodeFrame, FIRST_L4_REASON } from "../packet/decode.js";
import { PacketView } from "../packet/view.js";
import { PcapWriter } from "../packet/writer.js";
import type { CaptureOutput } from "../packet/writer.js";
import type { NetfilterPath } from "../firewall/path.js";
import { VERDICT } from "../firewall/eval.js";
import { DROP_REASON } from "../firewall/path.js";
import type { Micros } from "./time.js";
import { msOf, nsecOf, secOf } from "./time.js";

/** Receives frames in time order. */
export interface FrameSink {
  /**
   * One frame: `len` bytes of `buf` (Ethernet), valid only during the call.
   * @param wireLen its length on the wire when more than was captured (a replayed capture's snaplen)
   * @returns false when the frame was dropped (conntrack or a rule), true otherwise
   */
  frame(us: Micros, buf: Uint8Array, len: number, wireLen?: number): boolean;
  /** Flushes and releases whatever the sink holds. */
  close(): void;
}

/** The replay clock: NaN until the first frame, then the last frame's millisecond. */
class SinkClock {
  ms = Number.NaN;
  now(): number {
    return this.ms;
  }
}

/** What the tracker sink counted, in the replay summary's terms. */
export interface TrackerSinkCounts {
  /** Frames handed in. */
  frames: number;
  /** Frames conntrack (or the path) saw. */
  tracked: number;
  /** Frames dropped by conntrack (table full, …) or by a rule. */
  dropped: number;
  /** Frames a rule or policy dropped (a subset of dropped). */
  ruleDropped: number;
}

/** Runs frames through a tracker (or a netfilter path over one) as they are generated. */
export class TrackerSink implements FrameSink {
  readonly tracker: Tracker;
  readonly path: NetfilterPath | null;
  /** The view every frame is decoded into (after `frame()`, the packet as the last hook saw it). */
  readonly view = new PacketView();
  readonly counts: TrackerSinkCounts = { frames: 0, tracked: 0, dropped: 0, ruleDropped: 0 };
  readonly #clock = new SinkClock();

  /**
   * @param make builds the tracker around the sink's clock (so options stay the caller's)
   * @param makePath builds the packet path over that tracker, or null for conntrack alone
   */
  constructor(make: (clock: { now(): number }) => Tracker, makePath: ((tracker: Tracker) => NetfilterPath) | null = null) {
    this.tracker = make(this.#clock);
    this.path = makePath === null ? null : makePath(this.tracker);
  }

  /** The tracker's time in milliseconds (NaN before the first frame). */
  get nowMs(): number {
    return this.#clock.ms;
  }

  frame(us: Micros, buf: Uint8Array, len: number, wireLen = len): boolean {
    const v = this.view;
    const c = this.counts;
    c.frames++;
    v.index = c.frames;
    v.tsSec = secOf(us);
    v.tsNsec = nsecOf(us);
    v.capLen = len;
    v.wireLen = wireLen;
    v.linkType = 1;
    v.data = buf;
    v.frameOff = 0;
    decodeFrame(v, 0);
    if (v.family === 0 || (v.reason !== 0 && v.reason < FIRST_L4_REASON)) return true;
    const ms = msOf(us);
    this.#clock.ms = ms;
    c.tracked++;
    const path = this.path;
    if (path === null) {
      if (this.tracker.process(v) !== CT_DROPPED) return true;
      c.dropped++;
      return false;
    }
    if (path.run(v, ms) !== VERDICT.DROP) return true;
    c.dropped++;
    const why = path.result.dropReason;
    if (why === DROP_REASON.RULE || why === DROP_REASON.POLICY) c.ruleDropped++;
    return false;
  }

  close(): void {}
}

/** Writes frames to a classic microsecond pcap. */
export class PcapSink implements FrameSink {
  readonly #w: PcapWriter;
  frames = 0;

  constructor(out: CaptureOutput) {
    this.#w = new PcapWriter(out, { bufferSize: 4 << 20 });
  }

  frame(us: Micros, buf: Uint8Array, len: number, wireLen = len): boolean {
    this.#w.writePacket(secOf(us), nsecOf(us), len === buf.length ? buf : buf.subarray(0, len), wireLen);
    this.frames++;
    return true;
  }

  close(): void {
    this.#w.close();
  }
}

/** Feeds every sink; the first sink's verdict is the answer. */
export class TeeSink implements FrameSink {
  readonly #first: FrameSink;
  readonly #rest: FrameSink[];

  constructor(first: FrameSink, ...rest: FrameSink[]) {
    this.#first = first;
    this.#rest = rest;
  }

  frame(us: Micros, buf: Uint8Array, len: number, wireLen = len): boolean {
    // The others first: the first sink may rewrite the buffer (NAT translates in place).
    for (const s of this.#rest) s.frame(us, buf, len, wireLen);
    return this.#first.frame(us, buf, len, wireLen);
  }

  close(): void {
    this.#first.close();
    for (const s of this.#rest) s.close();
  }
}
