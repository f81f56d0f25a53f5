/**
 * UDP, ICMP and ICMPv6 scenarios, including ICMP errors that are RELATED to a
 * tracked flow and ones that are not.
 */
import { buildIcmp, buildIcmpError, buildTcp, buildUdp, buildUdpLite } from "../../src/packet/build.js";
import type { LinkOptions } from "../../src/packet/build.js";
import type { Scenario, ScenarioContext } from "./types.js";

function udp(ctx: ScenarioContext, src: string, dst: string, sport: number, dport: number, payload = 32, link: LinkOptions = {}): Uint8Array {
  const f = buildUdp({ ...link, src, dst, sport, dport, payload });
  ctx.emit(f);
  return f;
}

/** ICMPv6 neighbour-discovery style body: 4 reserved bytes then a target address. */
function ndBody(target: string): Uint8Array {
  const b = new Uint8Array(20);
  const groups = expand6(target);
  for (let i = 0; i < 8; i++) {
    b[4 + 2 * i] = (groups[i] ?? 0) >> 8;
    b[5 + 2 * i] = (groups[i] ?? 0) & 0xff;
  }
  return b;
}

function expand6(a: string): number[] {
  const [h = "", t = ""] = a.split("::");
  const head = h === "" ? [] : h.split(":").map((x) => parseInt(x, 16));
  const tail = t === "" ? [] : t.split(":").map((x) => parseInt(x, 16));
  return [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
}

export const udpIcmpScenarios: Scenario[] = [
  {
    name: "udp-basic",
    description: "UDP: a query never answered (sent twice); a query/answer exchange; a stream with several packets each way; IPv4 and IPv6",
    expected: "Unreplied: 30 s [UNREPLIED]; replied within the same instant: 30 s, not ASSURED (the stream needs 2 s of age)",
    tags: ["udp"],
    build(ctx) {
      udp(ctx, ctx.v4(1), ctx.v4(2), 50001, 53);
      udp(ctx, ctx.v4(1), ctx.v4(2), 50001, 53);
      udp(ctx, ctx.v4(1), ctx.v4(2), 50002, 53);
      udp(ctx, ctx.v4(2), ctx.v4(1), 53, 50002, 120);
      for (let i = 0; i < 3; i++) {
        udp(ctx, ctx.v4(1), ctx.v4(3), 50003, 5000, 200);
        udp(ctx, ctx.v4(3), ctx.v4(1), 5000, 50003, 200);
      }
      udp(ctx, ctx.v6(1), ctx.v6(2), 50004, 53);
      udp(ctx, ctx.v6(1), ctx.v6(2), 50005, 53);
      udp(ctx, ctx.v6(2), ctx.v6(1), 53, 50005, 300);
    },
  },
  {
    name: "udp-malformed",
    description: "UDP with a zero checksum; a length field longer than the datagram; a length field below 8; a length field shorter than the payload",
    expected: "Zero checksum and short length field are accepted; length beyond the data or below 8 is INVALID",
    tags: ["udp"],
    build(ctx) {
      ctx.emit(buildUdp({ src: ctx.v4(1), dst: ctx.v4(2), sport: 50011, dport: 9, payload: 20, checksum: "none" }));
      ctx.emit(buildUdp({ src: ctx.v4(1), dst: ctx.v4(2), sport: 50012, dport: 9, payload: 20, udpLength: 100 }));
      ctx.emit(buildUdp({ src: ctx.v4(1), dst: ctx.v4(2), sport: 50013, dport: 9, payload: 20, udpLength: 4 }));
      ctx.emit(buildUdp({ src: ctx.v4(1), dst: ctx.v4(2), sport: 50014, dport: 9, payload: 20, udpLength: 12 }));
    },
  },
  {
    name: "udp-vlan",
    description: "UDP exchanges inside 802.1Q, QinQ (802.1ad + 802.1Q) and triple-tagged frames",
    expected: "Identical to untagged UDP",
    tags: ["udp", "link"],
    build(ctx) {
      udp(ctx, ctx.v4(1), ctx.v4(2), 50021, 123, 48, { vlan: [7] });
      udp(ctx, ctx.v4(2), ctx.v4(1), 123, 50021, 48, { vlan: [7] });
      udp(ctx, ctx.v4(1), ctx.v4(2), 50022, 123, 48, { vlan: [100, 200] });
      udp(ctx, ctx.v4(2), ctx.v4(1), 123, 50022, 48, { vlan: [100, 200] });
      udp(ctx, ctx.v6(1), ctx.v6(2), 50023, 123, 48, { vlan: [1, 2, 3] });
    },
  },
  {
    name: "udplite",
    description: "UDP-Lite (protocol 136): a query with an answer and an unanswered one",
    expected: "Tracked as udplite 136 with the UDP timeouts",
    tags: ["udp"],
    build(ctx) {
      ctx.emit(buildUdpLite({ src: ctx.v4(1), dst: ctx.v4(2), sport: 50031, dport: 7, payload: 40, coverage: 8 }));
      ctx.emit(buildUdpLite({ src: ctx.v4(2), dst: ctx.v4(1), sport: 7, dport: 50031, payload: 40 }));
      ctx.emit(buildUdpLite({ src: ctx.v4(1), dst: ctx.v4(2), sport: 50032, dport: 7, payload: 40 }));
    },
  },
  {
    name: "icmp-queries",
    description:
      "ICMP echo request/reply; three unanswered echo requests with one id; timestamp, information and address-mask requests with replies; an echo reply with no request; a router advertisement",
    expected: "One entry per (addresses, id) 30 s, never ASSURED; unsolicited echo reply and non-query types are INVALID",
    tags: ["icmp"],
    build(ctx) {
      const a = ctx.v4(1);
      const b = ctx.v4(2);
      ctx.emit(buildIcmp({ src: a, dst: b, type: 8, id: 0x100, seq: 1, payload: 56 }));
      ctx.emit(buildIcmp({ src: b, dst: a, type: 0, id: 0x100, seq: 1, payload: 56 }));
      for (let i = 1; i <= 3; i++) ctx.emit(buildIcmp({ src: a, dst: b, type: 8, id: 0x101, seq: i, payload: 56 }));
      ctx.emit(buildIcmp({ src: a, dst: b, type: 13, id: 0x102, payload: 12 }));
      ctx.emit(buildIcmp({ src: b, dst: a, type: 14, id: 0x102, payload: 12 }));
      ctx.emit(buildIcmp({ src: a, dst: b, type: 15, id: 0x103 }));
      ctx.emit(buildIcmp({ src: b, dst: a, type: 16, id: 0x103 }));
      ctx.emit(buildIcmp({ src: a, dst: b, type: 17, id: 0x104, payload: 4 }));
      ctx.emit(buildIcmp({ src: b, dst: a, type: 18, id: 0x104, payload: 4 }));
      ctx.emit(buildIcmp({ src: b, dst: a, type: 0, id: 0x105, seq: 1 }));
      ctx.emit(buildIcmp({ src: b, dst: a, type: 9, id: 0 }));
      // An echo request with the same id in the other direction is a separate entry.
      ctx.emit(buildIcmp({ src: b, dst: a, type: 8, id: 0x100, seq: 1 }));
    },
  },
  {
    name: "icmp-errors",
    description:
      "ICMP errors: port unreachable for a UDP flow (from the server and in reply direction), frag-needed from a router for a TCP flow, time exceeded for a UDP flow; unrelated errors: quoting a flow that does not exist, and quoting a real flow but sent to a third host",
    expected: "Errors for tracked flows are RELATED, create nothing and do not refresh; unrelated ones are INVALID (counted in error)",
    tags: ["icmp", "related"],
    build(ctx) {
      const c = ctx.v4(1);
      const s = ctx.v4(2);
      const router = ctx.v4(254);
      const q = udp(ctx, c, s, 50041, 33434);
      ctx.emit(buildIcmpError(q, { type: 3, code: 3 }));
      // The client rejects the server's answer: an error travelling in the original direction.
      udp(ctx, c, s, 50042, 514);
      const r = udp(ctx, s, c, 514, 50042);
      ctx.emit(buildIcmpError(r, { type: 3, code: 3 }));
      const syn = buildTcp({ src: c, dst: s, sport: 40041, dport: 80, flags: "S", seq: 100, mss: 1460 });
      ctx.emit(syn);
      ctx.emit(buildTcp({ src: s, dst: c, sport: 80, dport: 40041, flags: "SA", seq: 900, ack: 101, mss: 1460 }));
      ctx.emit(buildTcp({ src: c, dst: s, sport: 40041, dport: 80, flags: "A", seq: 101, ack: 901 }));
      const big = buildTcp({ src: c, dst: s, sport: 40041, dport: 80, flags: "PA", seq: 101, ack: 901, payload: 1460, df: true });
      ctx.emit(big);
      ctx.emit(buildIcmpError(big, { type: 3, code: 4, src: router, rest: 1400 }));
      const t = udp(ctx, c, s, 50043, 33435);
      ctx.emit(buildIcmpError(t, { type: 11, code: 0, src: router }));
      // Quoting a datagram nobody sent.
      const ghost = buildUdp({ src: c, dst: s, sport: 50049, dport: 9999, payload: 8 });
      ctx.emit(buildIcmpError(ghost, { type: 3, code: 3 }));
      // Quoting the real flow, but the error goes to a third host (anti-spoofing check).
      ctx.emit(buildIcmpError(q, { type: 3, code: 3, dst: ctx.v4(9) }));
      // An error about an ICMP echo (quoting the request).
      const echo = buildIcmp({ src: c, dst: s, type: 8, id: 0x200, seq: 1 });
      ctx.emit(echo);
      ctx.emit(buildIcmpError(echo, { type: 3, code: 1, src: router }));
    },
  },
  {
    name: "icmpv6",
    description:
      "ICMPv6 echo request/reply; packet too big from a router for an IPv6 TCP flow; port unreachable for an unknown flow; neighbour solicitation/advertisement, router solicitation/advertisement and an MLDv2 report between global addresses",
    expected: "Echo tracked (icmpv6 58, 30 s); packet too big RELATED; unknown error INVALID; ND/RS/RA/MLD UNTRACKED",
    tags: ["icmp", "ipv6", "related"],
    build(ctx) {
      const a = ctx.v6(1);
      const b = ctx.v6(2);
      const router = ctx.v6(0xfe);
      ctx.emit(buildIcmp({ src: a, dst: b, type: 128, id: 0x300, seq: 1, payload: 56 }));
      ctx.emit(buildIcmp({ src: b, dst: a, type: 129, id: 0x300, seq: 1, payload: 56 }));
      ctx.emit(buildIcmp({ src: a, dst: b, type: 128, id: 0x301, seq: 1 }));
      ctx.emit(buildTcp({ src: a, dst: b, sport: 40061, dport: 443, flags: "S", seq: 10, mss: 1440 }));
      ctx.emit(buildTcp({ src: b, dst: a, sport: 443, dport: 40061, flags: "SA", seq: 70, ack: 11, mss: 1440 }));
      ctx.emit(buildTcp({ src: a, dst: b, sport: 40061, dport: 443, flags: "A", seq: 11, ack: 71 }));
      const big = buildTcp({ src: a, dst: b, sport: 40061, dport: 443, flags: "PA", seq: 11, ack: 71, payload: 1400 });
      ctx.emit(big);
      ctx.emit(buildIcmpError(big, { type: 2, code: 0, src: router, rest: 1280 }));
      const ghost = buildUdp({ src: a, dst: b, sport: 50061, dport: 9999, payload: 8 });
      ctx.emit(buildIcmpError(ghost, { type: 1, code: 4 }));
      ctx.emit(buildIcmp({ src: a, dst: b, type: 135, ttl: 255, payload: ndBody(b).subarray(4) }));
      ctx.emit(buildIcmp({ src: b, dst: a, type: 136, ttl: 255, payload: ndBody(b).subarray(4) }));
      ctx.emit(buildIcmp({ src: a, dst: b, type: 133, ttl: 255 }));
      ctx.emit(buildIcmp({ src: b, dst: a, type: 134, ttl: 255, payload: 8 }));
      ctx.emit(buildIcmp({ src: a, dst: b, type: 143, ttl: 1, payload: 4 }));
      // An unsolicited echo reply: INVALID.
      ctx.emit(buildIcmp({ src: b, dst: a, type: 129, id: 0x302, seq: 1 }));
    },
  },
];
