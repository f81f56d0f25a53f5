/**
 * Seeded random TCP conversations: mostly plausible segments with a share of
 * wrong sequence and acknowledgement numbers, odd windows, retransmissions,
 * stray SYNs, FINs and RSTs. Nobody chose these corner cases, which is the
 * point: the kernel decides, and ctlab must decide the same. The seeds are
 * fixed, so every run builds the same capture.
 */
import { TcpConv } from "./dsl.js";
import type { Side } from "./dsl.js";
import type { Scenario, ScenarioContext } from "./types.js";

/** mulberry32: a small, well-mixed 32-bit PRNG. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function pick<T>(r: () => number, items: readonly T[]): T {
  return items[Math.floor(r() * items.length)] as T;
}

function fuzzFlow(ctx: ScenarioContext, r: () => number, cport: number, steps: number): void {
  const c = new TcpConv(ctx, {
    client: ctx.v4(1),
    server: ctx.v4(2),
    cport,
    sport: 9000,
    isnC: Math.floor(r() * 2 ** 32),
    isnS: Math.floor(r() * 2 ** 32),
    ...(r() < 0.6 ? { wscaleC: pick(r, [0, 2, 7, 14]) } : {}),
    ...(r() < 0.6 ? { wscaleS: pick(r, [0, 3, 7, 9]) } : {}),
    sackC: r() < 0.5,
    sackS: r() < 0.5,
    winC: pick(r, [1000, 29200, 65535]),
    winS: pick(r, [1000, 28960, 65535]),
  });
  if (r() < 0.75) c.handshake();
  const last: Record<Side, { seq: number; len: number } | undefined> = { c: undefined, s: undefined };
  for (let i = 0; i < steps; i++) {
    const side: Side = r() < 0.55 ? "c" : "s";
    const other = TcpConv.other(side);
    const seqMode = r();
    let seq = c.next[side];
    if (seqMode > 0.8 && seqMode <= 0.9) seq = (seq + Math.floor((r() - 0.5) * 4000)) >>> 0;
    else if (seqMode > 0.9 && seqMode <= 0.95) seq = (seq + (r() < 0.5 ? -1 : 1) * (1 << 20)) >>> 0;
    else if (seqMode > 0.95) seq = Math.floor(r() * 2 ** 32);
    const ackMode = r();
    let ack = c.next[other];
    if (ackMode > 0.85 && ackMode <= 0.95) ack = (ack + Math.floor((r() - 0.5) * 4000)) >>> 0;
    else if (ackMode > 0.95) ack = Math.floor(r() * 2 ** 32);
    const win = pick(r, [0, 1, 512, 4096, 29200, 65535, 65535, 65535]);
    const exact = seqMode <= 0.8;
    const k = r();
    if (k < 0.4) {
      const len = pick(r, [1, 100, 536, 1000, 1460]);
      c.seg(side, "PA", { seq, ack, win, payload: len, noAdvance: !exact });
      last[side] = { seq, len };
    } else if (k < 0.6) {
      c.seg(side, "A", { seq, ack, win, noAdvance: true });
    } else if (k < 0.7) {
      const l = last[side];
      if (l !== undefined) c.seg(side, "PA", { seq: l.seq, ack, win, payload: l.len, noAdvance: true });
      else c.seg(side, "A", { seq, ack, win, noAdvance: true });
    } else if (k < 0.75) {
      c.seg(side, "FA", { seq, ack, win, noAdvance: !exact });
    } else if (k < 0.79) {
      c.seg(side, pick(r, ["R", "RA"]), { seq, ack, win, noAdvance: true });
    } else if (k < 0.83) {
      c.seg(side, "S", { seq: r() < 0.5 ? c.isn[side] : seq, win, noAdvance: true });
    } else if (k < 0.87) {
      c.seg(side, "SA", { seq: r() < 0.5 ? c.isn[side] : seq, ack, win, noAdvance: true });
    } else if (k < 0.93) {
      const blocks: Array<[number, number]> = [[(ack + 1000) >>> 0, (ack + pick(r, [2000, 100_000])) >>> 0]];
      c.seg(side, "A", { seq, ack, win, sack: blocks, noAdvance: true });
    } else if (k < 0.96) {
      c.seg(side, pick(r, [0x00, 0x01, 0x03, 0x29, 0x05, 0x12 | 0x40 | 0x80, 0x11 | 0x20]), { seq, ack, win, noAdvance: true });
    } else {
      // A keep-alive: one byte below the next sequence number.
      c.seg(side, "A", { seq: (c.next[side] - 1) >>> 0, ack, win, payload: r() < 0.5 ? 0 : 1, noAdvance: true });
    }
  }
}

/** A fuzz scenario for any seed (the registry holds a fixed few). */
export function fuzzScenario(seed: number, flows = 16, steps = 40): Scenario {
  return {
    name: `tcp-fuzz-${seed}`,
    description: `Seeded random TCP (seed ${seed}): ${flows} connections of ${steps} segments each, mostly plausible, some with wrong numbers, odd flags and windows`,
    expected: "Whatever the kernel decides; ctlab must decide the same for every segment",
    tags: ["tcp", "fuzz"],
    build(ctx) {
      const r = prng(seed);
      for (let f = 0; f < flows; f++) fuzzFlow(ctx, r, 20000 + f, steps);
    },
  };
}

export const fuzzScenarios: Scenario[] = [1, 2, 3, 4, 5, 6].map((s) => fuzzScenario(s, 16, 40));
