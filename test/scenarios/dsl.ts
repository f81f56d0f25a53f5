/**
 * Small helpers for writing scenarios: a context that owns the clock and the
 * address block, and a TCP conversation that keeps sequence numbers straight
 * so a scenario reads like the exchange it describes.
 */
import { buildTcp, tcpFlagsByte } from "../../src/packet/build.js";
import type { LinkOptions, TcpBuildOptions } from "../../src/packet/build.js";
import type { ScenarioContext, TimedFrame } from "./types.js";

/** Capture time of the first frame of every scenario (2023-11-14T22:13:20Z). */
export const BASE_TIME = 1_700_000_000;

export function makeContext(block: number, startSec = BASE_TIME): ScenarioContext {
  if (!Number.isInteger(block) || block < 1 || block > 250) {
    throw new RangeError(`Invalid scenario block "${block}": must be 1–250`);
  }
  const frames: TimedFrame[] = [];
  // Microseconds keep every timestamp exact in a classic (µs) pcap.
  let us = 0;
  return {
    block,
    frames,
    v4: (host) => `10.${block}.${(host >> 8) & 0xff}.${host & 0xff}`,
    v6: (host) => `fd00:0:0:${block.toString(16)}::${host.toString(16)}`,
    emit(frame) {
      frames.push({ tsSec: startSec + Math.floor(us / 1e6), tsNsec: (us % 1e6) * 1000, frame });
      us += 1000;
    },
    wait(seconds) {
      us += Math.round(seconds * 1e6);
    },
  };
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
    readonly ctx: ScenarioContext,
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
    if (syn) {
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

  /** Client closes first: FIN, ACK, FIN, ACK. */
  closeFrom(side: Side): this {
    const other = TcpConv.other(side);
    return this.fin(side).ack(other).fin(other).ack(side);
  }
}
