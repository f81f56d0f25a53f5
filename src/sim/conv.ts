/**
 * The conversation DSL: a TCP conversation that keeps sequence numbers
 * straight so generated traffic reads like the exchange it describes, and a
 * frame log that timestamps what it emits.
 *
 * Used by the kernel scenarios (test/scenarios), the demo and the simulator's
 * hand-written stories; the fast per-packet path of the simulator writes
 * frames with {@link FrameWriter} instead (no allocation per packet).
 */
import { buildTcp, tcpFlagsByte } from "../packet/build.js";
import type { LinkOptions, TcpBuildOptions } from "../packet/build.js";
import type { Micros, TimedFrame } from "./time.js";
import { timedFrame } from "./time.js";

/** Where a conversation sends its frames. */
export interface FrameTarget {
  /** Appends a frame at the target's current time. */
  emit(frame: Uint8Array): void;
}

/**
 * Collects frames with timestamps. The clock is `us`; every emit advances
 * it by `stepUs` (1 ms for kernel scenarios, so frames keep their order on
 * a real link; 0 when the caller sets the time of each frame).
 */
export class FrameLog implements FrameTarget {
  readonly frames: TimedFrame[] = [];
  us: Micros;
  readonly stepUs: number;

  constructor(startUs: Micros, stepUs = 0) {
    this.us = startUs;
    this.stepUs = stepUs;
  }

  emit(frame: Uint8Array): void {
    this.frames.push(timedFrame(this.us, frame));
    this.us += this.stepUs;
  }

  /** Advances the clock. */
  wait(seconds: number): void {
    this.us += Math.round(seconds * 1e6);
  }

  /** Sets the clock (seconds since the epoch, rounded to the microsecond). */
  at(seconds: number): this {
    this.us = Math.round(seconds * 1e6);
    return this;
  }
}

/** Which end sends: "c" = the client (opened the connection), "s" = the server. */
export type Side = "c" | "s";

export interface TcpConvOptions {
  client: string;
  server: string;
  cport: number;
  sport: number;
  /** Initial sequence numbers. */
  isnC?: number;
  isnS?: number;
  /** Window scale offered in each side's SYN (undefined: no option). */
  wscaleC?: number;
  wscaleS?: number;
  /** SACK-permitted offered in each side's SYN. */
  sackC?: boolean;
  sackS?: boolean;
  /** Raw window field each side advertises. */
  winC?: number;
  winS?: number;
  /** Link framing for every frame (VLAN, PPPoE …). */
  link?: LinkOptions;
}

/** Per-packet overrides. */
export type SegOptions = Partial<Pick<TcpBuildOptions, "seq" | "ack" | "win" | "sack" | "payload" | "ts" | "mss" | "wscale" | "sackPerm">> & {
  /** Do not advance the sender's sequence state (a retransmission or a probe). */
  noAdvance?: boolean;
  /** A SYN without options (no MSS, window scale or SACK-permitted), as flood tools send. */
  bare?: boolean;
};

/**
 * A TCP conversation between a client and a server. Each method emits one
 * segment with the next sequence number of its sender and acknowledging
 * everything the other side has sent, unless told otherwise.
 */
export class TcpConv {
  readonly o: TcpConvOptions;
  /** Next sequence number each side will send. */
  readonly next: Record<Side, number>;
  /** Initial sequence numbers. */
  readonly isn: Record<Side, number>;
  /** Whether each side has sent its SYN. */
  readonly synSent: Record<Side, boolean> = { c: false, s: false };

  constructor(
    readonly ctx: FrameTarget,
    o: TcpConvOptions,
  ) {
    this.o = o;
    this.isn = { c: (o.isnC ?? 1_000_000) >>> 0, s: (o.isnS ?? 2_000_000) >>> 0 };
    this.next = { c: this.isn.c, s: this.isn.s };
  }

  static other(side: Side): Side {
    return side === "c" ? "s" : "c";
  }

  /** Emits one segment with explicit flags. */
  seg(side: Side, flags: string | number, opts: SegOptions = {}): this {
    const o = this.o;
    const other = TcpConv.other(side);
    const f = tcpFlagsByte(flags);
    const syn = (f & 0x02) !== 0;
    const fin = (f & 0x01) !== 0;
    const ackFlag = (f & 0x10) !== 0;
    const payload = opts.payload ?? 0;
    const len = typeof payload === "number" ? payload : payload.length;
    const seq = (opts.seq ?? (syn ? this.isn[side] : this.next[side])) >>> 0;
    const b: TcpBuildOptions = {
      ...(o.link ?? {}),
      src: side === "c" ? o.client : o.server,
      dst: side === "c" ? o.server : o.client,
      sport: side === "c" ? o.cport : o.sport,
      dport: side === "c" ? o.sport : o.cport,
      flags: f,
      seq,
      ack: ackFlag ? (opts.ack ?? this.next[other]) >>> 0 : (opts.ack ?? 0) >>> 0,
      win: opts.win ?? (side === "c" ? (o.winC ?? 64240) : (o.winS ?? 65160)),
      payload,
    };
    if (syn && opts.bare !== true) {
      b.mss = opts.mss ?? 1460;
      const ws = opts.wscale ?? (side === "c" ? o.wscaleC : o.wscaleS);
      if (ws !== undefined) b.wscale = ws;
      const sp = opts.sackPerm ?? (side === "c" ? o.sackC : o.sackS);
      if (sp === true) b.sackPerm = true;
    }
    if (opts.sack !== undefined) b.sack = opts.sack;
    if (opts.ts !== undefined) b.ts = opts.ts;
    this.ctx.emit(buildTcp(b));
    if (opts.noAdvance !== true) {
      const end = (seq + len + (syn ? 1 : 0) + (fin ? 1 : 0)) >>> 0;
      if (syn) {
        this.synSent[side] = true;
        // A SYN with a new sequence number starts a new incarnation.
        this.isn[side] = seq;
      }
      // Only move forward (mod 2^32), so retransmissions do not rewind.
      if (((end - this.next[side]) | 0) > 0 || syn) this.next[side] = end;
    }
    return this;
  }

  syn(side: Side = "c", opts: SegOptions = {}): this {
    return this.seg(side, "S", opts);
  }
  synack(side: Side = "s", opts: SegOptions = {}): this {
    return this.seg(side, "SA", opts);
  }
  ack(side: Side, opts: SegOptions = {}): this {
    return this.seg(side, "A", opts);
  }
  data(side: Side, len: number, opts: SegOptions = {}): this {
    return this.seg(side, "PA", { ...opts, payload: len });
  }
  fin(side: Side, opts: SegOptions = {}): this {
    return this.seg(side, "FA", opts);
  }
  rst(side: Side, opts: SegOptions = {}): this {
    return this.seg(side, "R", opts);
  }
  rstack(side: Side, opts: SegOptions = {}): this {
    return this.seg(side, "RA", opts);
  }

  /** SYN, SYN/ACK, ACK. */
  handshake(): this {
    return this.syn("c").synack("s").ack("c");
  }

  /** Closes from `side`: FIN, ACK, FIN, ACK. */
  closeFrom(side: Side): this {
    const other = TcpConv.other(side);
    return this.fin(side).ack(other).fin(other).ack(side);
  }
}
