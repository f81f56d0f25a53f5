/**
 * Scenarios whose outcome depends on time passing between packets. They are
 * replayed into the kernel at the capture's pace and compared with ctlab on
 * the capture clock; gaps keep well clear (≥ 0.5 s) of every threshold so
 * scheduling jitter cannot decide the result.
 */
import { buildIcmp, buildUdp } from "../../src/packet/build.js";
import { TcpConv } from "./dsl.js";
import type { Scenario } from "./types.js";

export const timingScenarios: Scenario[] = [
  {
    name: "udp-stream-timing",
    description: "UDP: a reply then another packet 2.6 s after the first; a reply then another packet after 1 s; an unreplied flow sent twice 2.6 s apart",
    expected: "Only the flow older than 2 s with a reply becomes ASSURED with the 120 s stream timeout; the others stay at 30 s",
    tags: ["udp", "timing"],
    kernel: { realtime: true },
    build(ctx) {
      const a = ctx.v4(1);
      const b = ctx.v4(2);
      ctx.emit(buildUdp({ src: a, dst: b, sport: 51001, dport: 4789, payload: 50 }));
      ctx.emit(buildUdp({ src: a, dst: b, sport: 51002, dport: 4789, payload: 50 }));
      ctx.emit(buildUdp({ src: a, dst: b, sport: 51003, dport: 4789, payload: 50 }));
      ctx.wait(0.1);
      ctx.emit(buildUdp({ src: b, dst: a, sport: 4789, dport: 51001, payload: 50 }));
      ctx.emit(buildUdp({ src: b, dst: a, sport: 4789, dport: 51002, payload: 50 }));
      ctx.wait(0.9);
      ctx.emit(buildUdp({ src: a, dst: b, sport: 51002, dport: 4789, payload: 50 }));
      ctx.wait(1.6);
      ctx.emit(buildUdp({ src: a, dst: b, sport: 51001, dport: 4789, payload: 50 }));
      ctx.emit(buildUdp({ src: a, dst: b, sport: 51003, dport: 4789, payload: 50 }));
      ctx.emit(buildUdp({ src: b, dst: a, sport: 4789, dport: 51001, payload: 50 }));
    },
  },
  {
    name: "tcp-timing",
    description: "A SYN retransmitted after 3 s (must not refresh SYN_SENT); a handshake whose ACK comes 2 s after the SYN/ACK",
    expected: "The retransmitted SYN leaves the 120 s timer running (≈117 s left); the late ACK still establishes",
    tags: ["tcp", "timing"],
    kernel: { realtime: true },
    build(ctx) {
      const a = new TcpConv(ctx, { client: ctx.v4(1), server: ctx.v4(2), cport: 51011, sport: 80 });
      a.syn("c");
      const b = new TcpConv(ctx, { client: ctx.v4(1), server: ctx.v4(2), cport: 51012, sport: 80 });
      b.syn("c").synack("s");
      ctx.wait(2);
      b.ack("c");
      ctx.wait(1);
      a.syn("c", { noAdvance: true });
    },
  },
  {
    name: "icmp-timing",
    description: "ICMP echo requests with one id 3 s apart, and a reply to the second",
    expected: "Each request refreshes the entry to 30 s",
    tags: ["icmp", "timing"],
    kernel: { realtime: true },
    build(ctx) {
      ctx.emit(buildIcmp({ src: ctx.v4(1), dst: ctx.v4(2), type: 8, id: 0x500, seq: 1 }));
      ctx.wait(3);
      ctx.emit(buildIcmp({ src: ctx.v4(1), dst: ctx.v4(2), type: 8, id: 0x500, seq: 2 }));
      ctx.emit(buildIcmp({ src: ctx.v4(2), dst: ctx.v4(1), type: 0, id: 0x500, seq: 2 }));
    },
  },
];
