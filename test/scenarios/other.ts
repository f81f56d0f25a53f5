/**
 * Fragments, GRE, SCTP and protocols conntrack only knows generically.
 */
import { buildGre, buildIcmp, buildIp, buildSctp, buildTcp, buildUdp, fragment, SCTP_CHUNK, sctpInitChunk } from "../../src/packet/build.js";
import type { SctpChunk } from "../../src/packet/build.js";
import type { Scenario, ScenarioContext } from "./types.js";

function emitAll(ctx: ScenarioContext, frames: Uint8Array[]): void {
  for (const f of frames) ctx.emit(f);
}

function u32(...v: number[]): Uint8Array {
  const b = new Uint8Array(v.length * 4);
  v.forEach((x, i) => new DataView(b.buffer).setUint32(i * 4, x >>> 0));
  return b;
}

function dataChunk(tsn: number, len: number): SctpChunk {
  const d = new Uint8Array(12 + len);
  const dv = new DataView(d.buffer);
  dv.setUint32(0, tsn >>> 0);
  dv.setUint16(4, 0);
  dv.setUint16(6, 0);
  dv.setUint32(8, 0);
  return { type: SCTP_CHUNK.DATA, flags: 3, data: d };
}

function sackChunk(cumTsn: number): SctpChunk {
  return { type: SCTP_CHUNK.SACK, data: u32(cumTsn, 65536, 0) };
}

export const otherScenarios: Scenario[] = [
  {
    name: "frag-ipv4",
    description:
      "IPv4 fragments: a UDP datagram in 4 fragments in order, another in reverse order, a TCP segment of an established connection in fragments, a fragmented echo request, and a train whose last fragment never arrives",
    expected: "Reassembled before conntrack (one tracked datagram per train); the incomplete train is never seen by conntrack",
    tags: ["frag"],
    build(ctx) {
      const c = ctx.v4(1);
      const s = ctx.v4(2);
      emitAll(ctx, fragment(buildUdp({ src: c, dst: s, sport: 50071, dport: 2049, payload: 3000, id: 0x1001 }), 1000));
      ctx.emit(buildUdp({ src: s, dst: c, sport: 2049, dport: 50071, payload: 100, id: 0x2001 }));
      emitAll(ctx, fragment(buildUdp({ src: c, dst: s, sport: 50072, dport: 2049, payload: 3000, id: 0x1002 }), 1000).reverse());
      ctx.emit(buildTcp({ src: c, dst: s, sport: 40071, dport: 80, flags: "S", seq: 1, mss: 1460 }));
      ctx.emit(buildTcp({ src: s, dst: c, sport: 80, dport: 40071, flags: "SA", seq: 500, ack: 2, mss: 1460 }));
      ctx.emit(buildTcp({ src: c, dst: s, sport: 40071, dport: 80, flags: "A", seq: 2, ack: 501 }));
      emitAll(ctx, fragment(buildTcp({ src: c, dst: s, sport: 40071, dport: 80, flags: "PA", seq: 2, ack: 501, payload: 2000, id: 0x1003 }), 600));
      ctx.emit(buildTcp({ src: s, dst: c, sport: 80, dport: 40071, flags: "A", seq: 501, ack: 2002 }));
      emitAll(ctx, fragment(buildIcmp({ src: c, dst: s, type: 8, id: 0x400, seq: 1, payload: 4000 }), 1500));
      const lost = fragment(buildUdp({ src: c, dst: s, sport: 50073, dport: 2049, payload: 3000, id: 0x1004 }), 1000);
      emitAll(ctx, lost.slice(0, lost.length - 1));
    },
  },
  {
    name: "frag-ipv6",
    description: "IPv6 fragments: a UDP datagram in order, one out of order, and a TCP segment of an established connection",
    expected: "Reassembled by nf_defrag_ipv6 before conntrack",
    tags: ["frag", "ipv6"],
    build(ctx) {
      const c = ctx.v6(1);
      const s = ctx.v6(2);
      emitAll(ctx, fragment(buildUdp({ src: c, dst: s, sport: 50081, dport: 53, payload: 3000 }), 1280, { id: 0xa1 }));
      ctx.emit(buildUdp({ src: s, dst: c, sport: 53, dport: 50081, payload: 60 }));
      const f = fragment(buildUdp({ src: c, dst: s, sport: 50082, dport: 53, payload: 4000 }), 1280, { id: 0xa2 });
      const [f0, f1, ...rest] = f;
      emitAll(
        ctx,
        [...rest, f0, f1].filter((x) => x !== undefined),
      );
      ctx.emit(buildTcp({ src: c, dst: s, sport: 40081, dport: 80, flags: "S", seq: 1, mss: 1220 }));
      ctx.emit(buildTcp({ src: s, dst: c, sport: 80, dport: 40081, flags: "SA", seq: 500, ack: 2, mss: 1220 }));
      ctx.emit(buildTcp({ src: c, dst: s, sport: 40081, dport: 80, flags: "A", seq: 2, ack: 501 }));
      emitAll(ctx, fragment(buildTcp({ src: c, dst: s, sport: 40081, dport: 80, flags: "PA", seq: 2, ack: 501, payload: 3000 }), 1280, { id: 0xa3 }));
      ctx.emit(buildTcp({ src: s, dst: c, sport: 80, dport: 40081, flags: "A", seq: 501, ack: 3002 }));
    },
  },
  {
    name: "gre",
    description: "GRE version 0 without key in both directions, GRE v0 with a key one way, and PPTP enhanced GRE (version 1) with call ids in both directions",
    expected: "GRE entries as the kernel keys them (srckey/dstkey; v0 keys are 0); 30 s unreplied",
    tags: ["gre"],
    build(ctx) {
      const a = ctx.v4(1);
      const b = ctx.v4(2);
      ctx.emit(buildGre({ src: a, dst: b, payload: 60 }));
      ctx.emit(buildGre({ src: b, dst: a, payload: 60 }));
      ctx.emit(buildGre({ src: a, dst: b, payload: 60 }));
      ctx.emit(buildGre({ src: a, dst: ctx.v4(3), key: 0xdeadbeef, payload: 60 }));
      ctx.emit(buildGre({ src: a, dst: ctx.v4(4), version: 1, callId: 0x1111, seq: 1, payload: 40 }));
      ctx.emit(buildGre({ src: ctx.v4(4), dst: a, version: 1, callId: 0x2222, seq: 1, ack: 1, payload: 40 }));
      ctx.emit(buildGre({ src: ctx.v6(1), dst: ctx.v6(2), payload: 60 }));
    },
  },
  {
    name: "sctp",
    description:
      "SCTP: a full association (INIT, INIT ACK, COOKIE ECHO, COOKIE ACK, DATA/SACK, SHUTDOWN, SHUTDOWN ACK, SHUTDOWN COMPLETE); an association aborted after setup; an INIT with a non-zero verification tag; a lone INIT",
    expected: "SCTP states CLOSED … COOKIE_WAIT … ESTABLISHED … SHUTDOWN_* … CLOSED as the kernel's sctp_conntracks table gives them",
    tags: ["sctp"],
    build(ctx) {
      const c = ctx.v4(1);
      const s = ctx.v4(2);
      const assoc = (cport: number, tagC: number, tagS: number, end: "shutdown" | "abort" | "none"): void => {
        const up = (vtag: number, chunks: SctpChunk[]): void => ctx.emit(buildSctp({ src: c, dst: s, sport: cport, dport: 3868, vtag, chunks }));
        const down = (vtag: number, chunks: SctpChunk[]): void => ctx.emit(buildSctp({ src: s, dst: c, sport: 3868, dport: cport, vtag, chunks }));
        up(0, [sctpInitChunk(tagC, { tsn: 100 })]);
        down(tagC, [sctpInitChunk(tagS, { ack: true, tsn: 500 })]);
        up(tagS, [{ type: SCTP_CHUNK.COOKIE_ECHO, data: 32 }]);
        down(tagC, [{ type: SCTP_CHUNK.COOKIE_ACK }]);
        up(tagS, [dataChunk(100, 64)]);
        down(tagC, [sackChunk(100)]);
        if (end === "shutdown") {
          up(tagS, [{ type: SCTP_CHUNK.SHUTDOWN, data: u32(500) }]);
          down(tagC, [{ type: SCTP_CHUNK.SHUTDOWN_ACK }]);
          up(tagS, [{ type: SCTP_CHUNK.SHUTDOWN_COMPLETE }]);
        } else if (end === "abort") {
          down(tagC, [{ type: SCTP_CHUNK.ABORT }]);
        }
      };
      assoc(50091, 0x11111111, 0x22222222, "shutdown");
      assoc(50092, 0x33333333, 0x44444444, "abort");
      assoc(50093, 0x55555555, 0x66666666, "none");
      ctx.emit(buildSctp({ src: c, dst: s, sport: 50094, dport: 3868, vtag: 0x1234, chunks: [sctpInitChunk(0x77777777)] }));
      ctx.emit(buildSctp({ src: c, dst: s, sport: 50095, dport: 3868, vtag: 0, chunks: [sctpInitChunk(0x88888888)] }));
    },
  },
  {
    name: "generic-protocols",
    description:
      "Protocols without a conntrack tracker: experimental protocol 253 both ways, ESP (50) one way, DCCP (33, tracker removed in 6.17), OSPF-like protocol 89, and IPv6 protocol 253",
    expected: "Generic entries keyed by addresses and protocol number only, 600 s, never ASSURED",
    tags: ["generic"],
    build(ctx) {
      const a = ctx.v4(1);
      const b = ctx.v4(2);
      ctx.emit(buildIp({ src: a, dst: b }, 253, 40));
      ctx.emit(buildIp({ src: b, dst: a }, 253, 40));
      ctx.emit(buildIp({ src: a, dst: b }, 253, 40));
      ctx.emit(buildIp({ src: a, dst: ctx.v4(3) }, 50, 80));
      ctx.emit(buildIp({ src: a, dst: ctx.v4(4) }, 33, 24));
      ctx.emit(buildIp({ src: ctx.v4(4), dst: a }, 33, 24));
      ctx.emit(buildIp({ src: a, dst: ctx.v4(5) }, 89, 44));
      ctx.emit(buildIp({ src: ctx.v6(1), dst: ctx.v6(2) }, 253, 40));
    },
  },
];
