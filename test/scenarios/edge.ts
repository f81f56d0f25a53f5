/**
 * Corner cases chosen to find disagreements: malformed headers, odd flag
 * and option combinations, sequence wraparound, bundled SCTP chunks,
 * overlapping fragments, nested ICMP errors, IPv6 extension headers.
 */
import {
  buildGre,
  buildIcmp,
  buildIcmpError,
  buildIp,
  buildSctp,
  buildTcp,
  buildUdp,
  buildUdpLite,
  fragment,
  SCTP_CHUNK,
  sctpInitChunk,
} from "../../src/packet/build.js";
import { TcpConv } from "./dsl.js";
import type { Scenario, ScenarioContext } from "./types.js";

function conv(ctx: ScenarioContext, cport: number, o: Partial<ConstructorParameters<typeof TcpConv>[1]> = {}): TcpConv {
  return new TcpConv(ctx, { client: ctx.v4(1), server: ctx.v4(2), cport, sport: 8080, ...o });
}

export const edgeScenarios: Scenario[] = [
  {
    name: "tcp-odd-segments",
    description:
      "SYN carrying data; SYN with ECE+CWR (ECN setup); SYN+URG; FIN+ACK+URG; RST+ACK with ack 0; a RST carrying data; a keep-alive (seq one below the next); TCP header length below 20 and beyond the packet; an option list with a zero-length option",
    expected: "Valid flag sets are tracked, ECE/CWR/PSH are ignored by the flag check, malformed headers are INVALID",
    tags: ["tcp", "edge"],
    build(ctx) {
      conv(ctx, 41001).syn("c", { payload: 100 }).synack("s").ack("c").data("c", 10).ack("s");
      conv(ctx, 41002).seg("c", "SEC").seg("s", "SAE").ack("c");
      conv(ctx, 41003).seg("c", "SU").synack("s").ack("c").seg("c", "FAU").ack("s");
      const r = conv(ctx, 41004);
      r.handshake().data("c", 10).ack("s").seg("s", "RA", { ack: 0 });
      const rd = conv(ctx, 41005);
      rd.handshake().data("c", 10).ack("s").seg("c", "R", { payload: 20 });
      const ka = conv(ctx, 41006);
      ka.handshake().data("c", 100).ack("s");
      ka.ack("c", { seq: (ka.next.c - 1) >>> 0, noAdvance: true }).ack("s", { noAdvance: true });
      ctx.emit(buildTcp({ src: ctx.v4(1), dst: ctx.v4(2), sport: 41007, dport: 8080, flags: "S", seq: 1, dataOffset: 4 }));
      ctx.emit(buildTcp({ src: ctx.v4(1), dst: ctx.v4(2), sport: 41008, dport: 8080, flags: "S", seq: 1, dataOffset: 15 }));
      ctx.emit(
        buildTcp({ src: ctx.v4(1), dst: ctx.v4(2), sport: 41009, dport: 8080, flags: "S", seq: 1, tcpOptions: Uint8Array.of(2, 4, 5, 0xb4, 3, 0, 7, 1) }),
      );
      ctx.emit(buildTcp({ src: ctx.v4(2), dst: ctx.v4(1), sport: 8080, dport: 41009, flags: "SA", seq: 9, ack: 2 }));
      ctx.emit(buildTcp({ src: ctx.v4(1), dst: ctx.v4(2), sport: 41009, dport: 8080, flags: "A", seq: 2, ack: 10 }));
    },
  },
  {
    name: "tcp-seq-wrap",
    description: "A connection whose sequence numbers wrap past 2^32 in both directions during the transfer",
    expected: "Window checks use modular arithmetic: everything in window, ASSURED, FIN close to TIME_WAIT",
    tags: ["tcp", "edge"],
    build(ctx) {
      const c = conv(ctx, 41011, { isnC: 0xfffff000, isnS: 0xffffff00 });
      c.handshake();
      for (let i = 0; i < 6; i++) c.data("c", 1000).data("s", 100).ack("c");
      c.closeFrom("c");
    },
  },
  {
    name: "tcp-handshake-oddities",
    description:
      "SYN/ACK acknowledging the wrong number; SYN retransmitted with new options and a new ISN; RST with seq 0 answering a SYN; challenge ACK in LAST_ACK after a new SYN; SYN/ACK arriving before the SYN",
    expected: "As the kernel's window and RST checks decide",
    tags: ["tcp", "edge"],
    build(ctx) {
      conv(ctx, 41021).syn("c").synack("s", { ack: 12345 }).synack("s", { noAdvance: true }).ack("c");
      const n = conv(ctx, 41022, { wscaleC: 2 });
      n.syn("c").syn("c", { seq: 4_000_000, wscale: 5, sackPerm: true }).synack("s").ack("c");
      conv(ctx, 41023).syn("c").seg("s", "RA", { seq: 0 });
      const la = conv(ctx, 41024);
      la.handshake().data("c", 10).ack("s").fin("c").ack("s").fin("s");
      la.syn("c", { seq: (la.next.c + 50_000) >>> 0, noAdvance: true });
      la.ack("s", { noAdvance: true });
      la.ack("c");
      const rev = conv(ctx, 41025);
      rev.synack("s", { ack: rev.isn.c + 1 });
      rev.syn("c").ack("c");
    },
  },
  {
    name: "udp-icmp-edge",
    description:
      "UDP-Lite with coverage below 8 and above the length; ICMP echo with a non-zero code; echo reply with a different id; ICMPv6 node-information query and reply; an ICMP error quoting only 12 bytes of IP header; an ICMP error quoting another ICMP error; an error quoting an echo reply (the reply direction of an echo flow)",
    expected: "Malformed UDP-Lite INVALID; node information tracked; short and nested quotes INVALID; quoting the echo reply RELATED",
    tags: ["udp", "icmp", "edge"],
    build(ctx) {
      const a = ctx.v4(1);
      const b = ctx.v4(2);
      ctx.emit(buildUdpLite({ src: a, dst: b, sport: 51101, dport: 7, payload: 40, coverage: 4 }));
      ctx.emit(buildUdpLite({ src: a, dst: b, sport: 51102, dport: 7, payload: 40, coverage: 100 }));
      ctx.emit(buildIcmp({ src: a, dst: b, type: 8, code: 1, id: 0x600, seq: 1 }));
      ctx.emit(buildIcmp({ src: b, dst: a, type: 0, code: 1, id: 0x600, seq: 1 }));
      ctx.emit(buildIcmp({ src: a, dst: b, type: 8, id: 0x601, seq: 1 }));
      ctx.emit(buildIcmp({ src: b, dst: a, type: 0, id: 0x602, seq: 1 }));
      ctx.emit(buildIcmp({ src: ctx.v6(1), dst: ctx.v6(2), type: 139, code: 0, id: 0x603, payload: 16 }));
      ctx.emit(buildIcmp({ src: ctx.v6(2), dst: ctx.v6(1), type: 140, code: 0, id: 0x603, payload: 16 }));
      const u = buildUdp({ src: a, dst: b, sport: 51103, dport: 9000, payload: 30 });
      ctx.emit(u);
      ctx.emit(buildIcmpError(u, { type: 3, code: 3, quoteLen: 12 }));
      const err = buildIcmpError(u, { type: 3, code: 3 });
      ctx.emit(buildIcmpError(err, { type: 3, code: 1, src: ctx.v4(254) }));
      const req = buildIcmp({ src: a, dst: b, type: 8, id: 0x604, seq: 1 });
      ctx.emit(req);
      const rep = buildIcmp({ src: b, dst: a, type: 0, id: 0x604, seq: 1 });
      ctx.emit(rep);
      ctx.emit(buildIcmpError(rep, { type: 3, code: 3 }));
    },
  },
  {
    name: "frag-edge",
    description:
      "IPv4: overlapping fragments, a duplicated fragment, fragments of a datagram with IP options; IPv6: an atomic fragment (offset 0, no more fragments), and fragments after hop-by-hop and destination-options headers; a TCP segment behind hop-by-hop + destination options",
    expected: "Overlap discards the datagram; duplicates are ignored; atomic fragments are tracked; extension headers are walked",
    tags: ["frag", "edge"],
    build(ctx) {
      const c = ctx.v4(1);
      const s = ctx.v4(2);
      const ov = fragment(buildUdp({ src: c, dst: s, sport: 51201, dport: 2049, payload: 2000, id: 0x3001 }), 800);
      const first = ov[0] as Uint8Array;
      // A copy of the second fragment moved back by 8 bytes: it overlaps the first.
      const second = (ov[1] as Uint8Array).slice();
      const ipOff = 14;
      const fo = (((second[ipOff + 6] as number) << 8) | (second[ipOff + 7] as number)) & 0x1fff;
      const flags = (second[ipOff + 6] as number) & 0xe0;
      second[ipOff + 6] = flags | (((fo - 1) >> 8) & 0x1f);
      second[ipOff + 7] = (fo - 1) & 0xff;
      second[ipOff + 10] = 0;
      second[ipOff + 11] = 0;
      ctx.emit(first);
      ctx.emit(second);
      for (const f of ov.slice(2)) ctx.emit(f);
      const dup = fragment(buildUdp({ src: c, dst: s, sport: 51202, dport: 2049, payload: 2000, id: 0x3002 }), 800);
      ctx.emit(dup[0] as Uint8Array);
      ctx.emit(dup[0] as Uint8Array);
      for (const f of dup.slice(1)) ctx.emit(f);
      const opt = buildUdp({ src: c, dst: s, sport: 51203, dport: 2049, payload: 1500, id: 0x3003, ipOptions: Uint8Array.of(7, 7, 4, 0, 0, 0, 0) });
      for (const f of fragment(opt, 600)) ctx.emit(f);
      const v6c = ctx.v6(1);
      const v6s = ctx.v6(2);
      ctx.emit(buildUdp({ src: v6c, dst: v6s, sport: 51204, dport: 53, payload: 40, extHeaders: [{ type: "fragment", offset: 0, more: false, id: 0x77 }] }));
      const ext = buildUdp({ src: v6c, dst: v6s, sport: 51205, dport: 53, payload: 3000, extHeaders: [{ type: "hop" }, { type: "dest" }] });
      for (const f of fragment(ext, 1280, { id: 0x78 })) ctx.emit(f);
      ctx.emit(buildTcp({ src: v6c, dst: v6s, sport: 41201, dport: 80, flags: "S", seq: 5, mss: 1400, extHeaders: [{ type: "hop" }, { type: "dest" }] }));
      ctx.emit(buildTcp({ src: v6s, dst: v6c, sport: 80, dport: 41201, flags: "SA", seq: 50, ack: 6, mss: 1400 }));
    },
  },
  {
    name: "sctp-edge",
    description:
      "SCTP: an INIT ACK with the wrong verification tag; bundled DATA+SACK chunks; HEARTBEAT/HEARTBEAT ACK on an established association; a retransmitted COOKIE ECHO; an INIT collision (both ends send INIT); SHUTDOWN with a wrong tag",
    expected: "As the kernel's sctp_conntracks table and vtag checks decide",
    tags: ["sctp", "edge"],
    build(ctx) {
      const c = ctx.v4(1);
      const s = ctx.v4(2);
      const up = (cport: number, vtag: number, chunks: Parameters<typeof buildSctp>[0]["chunks"]): void =>
        ctx.emit(buildSctp({ src: c, dst: s, sport: cport, dport: 5060, vtag, chunks }));
      const down = (cport: number, vtag: number, chunks: Parameters<typeof buildSctp>[0]["chunks"]): void =>
        ctx.emit(buildSctp({ src: s, dst: c, sport: 5060, dport: cport, vtag, chunks }));
      up(51301, 0, [sctpInitChunk(0xa1)]);
      down(51301, 0xdead, [sctpInitChunk(0xb1, { ack: true })]);
      const data = { type: SCTP_CHUNK.DATA, flags: 3, data: 16 + 12 };
      const sack = { type: SCTP_CHUNK.SACK, data: 12 };
      up(51302, 0, [sctpInitChunk(0xa2)]);
      down(51302, 0xa2, [sctpInitChunk(0xb2, { ack: true })]);
      up(51302, 0xb2, [{ type: SCTP_CHUNK.COOKIE_ECHO, data: 24 }]);
      up(51302, 0xb2, [{ type: SCTP_CHUNK.COOKIE_ECHO, data: 24 }]);
      down(51302, 0xa2, [{ type: SCTP_CHUNK.COOKIE_ACK }]);
      up(51302, 0xb2, [data, sack]);
      down(51302, 0xa2, [sack, data]);
      up(51302, 0xb2, [{ type: SCTP_CHUNK.HEARTBEAT, data: 8 }]);
      down(51302, 0xa2, [{ type: SCTP_CHUNK.HEARTBEAT_ACK, data: 8 }]);
      up(51302, 0x12345, [{ type: SCTP_CHUNK.SHUTDOWN, data: 4 }]);
      // A packet with no chunk at all; an INIT bundled with DATA; COOKIE ECHO bundled with DATA; ABORT with the T bit.
      up(51304, 0, []);
      up(51305, 0, [sctpInitChunk(0xa5), data]);
      up(51306, 0, [sctpInitChunk(0xa6)]);
      down(51306, 0xa6, [sctpInitChunk(0xb6, { ack: true })]);
      up(51306, 0xb6, [{ type: SCTP_CHUNK.COOKIE_ECHO, data: 24 }, data]);
      down(51306, 0xa6, [{ type: SCTP_CHUNK.COOKIE_ACK }, sack]);
      down(51306, 0xb6, [{ type: SCTP_CHUNK.ABORT, flags: 1 }]);
      up(51303, 0, [sctpInitChunk(0xa3)]);
      down(51303, 0, [sctpInitChunk(0xb3)]);
      down(51303, 0xa3, [sctpInitChunk(0xb3, { ack: true })]);
      up(51303, 0xb3, [sctpInitChunk(0xa3, { ack: true })]);
    },
  },
  {
    name: "sctp-heartbeat-ack-first",
    description:
      "SCTP entries opened by a HEARTBEAT ACK (a secondary path seen first), then: COOKIE ECHO back with the same tag; HEARTBEAT ACK back with another tag; ABORT and SHUTDOWN COMPLETE back with the same tag (both directions of opening); INIT ACK onward with the same tag",
    expected: "As the kernel decides; found by seeded SCTP fuzzing (every disagreement minimised to one of these pairs)",
    tags: ["sctp", "edge"],
    build(ctx) {
      const c = ctx.v4(1);
      const s = ctx.v4(2);
      const pkt = (fromClient: boolean, cport: number, vtag: number, chunk: Parameters<typeof buildSctp>[0]["chunks"][number]): void =>
        ctx.emit(
          buildSctp(
            fromClient
              ? { src: c, dst: s, sport: cport, dport: 2905, vtag, chunks: [chunk] }
              : { src: s, dst: c, sport: 2905, dport: cport, vtag, chunks: [chunk] },
          ),
        );
      const hbAck = (t = false): { type: number; flags: number; data: number } => ({ type: SCTP_CHUNK.HEARTBEAT_ACK, flags: t ? 1 : 0, data: 8 });
      pkt(true, 51701, 0x2003, hbAck(true));
      pkt(false, 51701, 0x2003, { type: SCTP_CHUNK.COOKIE_ECHO, data: 8 });
      pkt(true, 51702, 0x2004, hbAck());
      pkt(false, 51702, 0x1234, hbAck());
      pkt(false, 51703, 0x1234, hbAck());
      pkt(true, 51703, 0x1234, { type: SCTP_CHUNK.ABORT, data: 8 });
      pkt(false, 51704, 0x1000, hbAck());
      pkt(true, 51704, 0x1000, { type: SCTP_CHUNK.SHUTDOWN_COMPLETE, data: 8 });
      pkt(true, 51705, 0x1234, hbAck());
      pkt(false, 51705, 0x1234, { type: SCTP_CHUNK.SHUTDOWN_COMPLETE, data: 8 });
      pkt(true, 51706, 0x2000, hbAck());
      pkt(true, 51706, 0x2000, sctpInitChunk(0x1006, { ack: true }));
      // A HEARTBEAT (not ACK) first, answered by its HEARTBEAT ACK: the ordinary secondary-path case.
      pkt(true, 51707, 0x3000, { type: SCTP_CHUNK.HEARTBEAT, data: 8 });
      pkt(false, 51707, 0x4000, hbAck());
    },
  },
  {
    name: "gre-ip-edge",
    description:
      "PPTP GRE (version 1) with a non-PPP protocol type; GRE version 0 with a checksum; IPv4 options (record route, timestamp) on a UDP flow; an IPv4 packet claiming TCP with only 8 transport bytes",
    expected: "As the kernel's GRE tuple code and header checks decide",
    tags: ["gre", "edge"],
    build(ctx) {
      const a = ctx.v4(1);
      const b = ctx.v4(2);
      ctx.emit(buildGre({ src: a, dst: b, version: 1, protocol: 0x0800, callId: 7, payload: 20 }));
      ctx.emit(buildGre({ src: a, dst: ctx.v4(3), csum: true, payload: 30 }));
      ctx.emit(buildGre({ src: ctx.v4(3), dst: a, csum: true, payload: 30 }));
      ctx.emit(buildUdp({ src: a, dst: b, sport: 51401, dport: 161, payload: 20, ipOptions: Uint8Array.of(7, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0) }));
      ctx.emit(buildUdp({ src: b, dst: a, sport: 161, dport: 51401, payload: 20, ipOptions: Uint8Array.of(0x44, 12, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0) }));
      ctx.emit(buildIp({ src: a, dst: b }, 6, 8));
    },
  },
  {
    name: "ipv6-header-chain",
    description:
      'IPv6 whose header chain ends in "no next header" (59) after a destination-options header and directly after the fixed header; IPv6 whose hop-by-hop header is cut short by the payload length; a UDP datagram behind routing + destination-options headers',
    expected:
      "No next header: INVALID (ipv6_skip_exthdr fails); the truncated hop-by-hop header is dropped by ip6_rcv_core before conntrack; the long chain is walked",
    tags: ["ipv6", "edge"],
    build(ctx) {
      ctx.emit(buildIp({ src: ctx.v6(1), dst: ctx.v6(2), extHeaders: [{ type: "dest" }] }, 59, 0));
      ctx.emit(buildIp({ src: ctx.v6(3), dst: ctx.v6(4) }, 59, 0));
      ctx.emit(buildIp({ src: ctx.v6(5), dst: ctx.v6(6), extHeaders: [{ type: "hop" }], totalLength: 4 }, 17, 0));
      ctx.emit(buildUdp({ src: ctx.v6(7), dst: ctx.v6(8), sport: 51501, dport: 53, payload: 10, extHeaders: [{ type: "dest" }, { type: "dest" }] }));
      ctx.emit(buildUdp({ src: ctx.v6(8), dst: ctx.v6(7), sport: 53, dport: 51501, payload: 10 }));
    },
  },
  {
    name: "icmp-errors-more",
    description:
      "ICMP redirect, source quench and parameter problem quoting a live TCP flow; an error from the client about the server's segment; ICMP types 19 and 40; ICMPv6 time exceeded and parameter problem quoting a live flow; an ICMPv6 redirect from a global address; an unknown ICMPv6 informational type; an MLD query",
    expected: "Errors quoting live flows are RELATED; unknown types INVALID; MLD UNTRACKED",
    tags: ["icmp", "edge", "related"],
    build(ctx) {
      const c = ctx.v4(1);
      const s = ctx.v4(2);
      const r = ctx.v4(254);
      const t = new TcpConv(ctx, { client: c, server: s, cport: 41601, sport: 25 });
      t.handshake();
      const seg = buildTcp({ src: c, dst: s, sport: 41601, dport: 25, flags: "PA", seq: t.next.c, ack: t.next.s, payload: 100 });
      ctx.emit(seg);
      ctx.emit(buildIcmpError(seg, { type: 5, code: 1, src: r, rest: 0x0a000001 }));
      ctx.emit(buildIcmpError(seg, { type: 4, code: 0, src: r }));
      ctx.emit(buildIcmpError(seg, { type: 12, code: 0, src: r, rest: 0x14000000 }));
      const back = buildTcp({ src: s, dst: c, sport: 25, dport: 41601, flags: "PA", seq: t.next.s, ack: t.next.c + 100, payload: 50 });
      ctx.emit(back);
      ctx.emit(buildIcmpError(back, { type: 3, code: 10 }));
      ctx.emit(buildIcmp({ src: c, dst: s, type: 19, id: 1 }));
      ctx.emit(buildIcmp({ src: c, dst: s, type: 40, id: 1 }));
      const a6 = ctx.v6(1);
      const b6 = ctx.v6(2);
      const u6 = buildUdp({ src: a6, dst: b6, sport: 51601, dport: 123, payload: 48 });
      ctx.emit(u6);
      ctx.emit(buildIcmpError(u6, { type: 3, code: 0, src: ctx.v6(0xfe) }));
      ctx.emit(buildIcmpError(u6, { type: 4, code: 1, src: ctx.v6(0xfe), rest: 6 }));
      ctx.emit(buildIcmpError(u6, { type: 137, code: 0, src: ctx.v6(0xfe), ttl: 255, rest: 0 }));
      ctx.emit(buildIcmp({ src: a6, dst: b6, type: 200, id: 1 }));
      ctx.emit(buildIcmp({ src: a6, dst: b6, type: 130, ttl: 1, payload: 20 }));
    },
  },
];
