/**
 * TCP scenarios beyond the state-table walk: lifecycles, reopen, loss,
 * retransmission, window tracking, RST validation, pick-up.
 */
import { TcpConv } from "./dsl.js";
import type { TcpConvOptions } from "./dsl.js";
import type { Scenario, ScenarioContext } from "./types.js";

/** A conversation between v4(1) (or v6(1)) and v4(2) on the given client port. */
function conv(ctx: ScenarioContext, cport: number, o: Partial<TcpConvOptions> = {}, v6 = false): TcpConv {
  return new TcpConv(ctx, {
    client: v6 ? ctx.v6(1) : ctx.v4(1),
    server: v6 ? ctx.v6(2) : ctx.v4(2),
    cport,
    sport: o.sport ?? 443,
    ...o,
  });
}

export const tcpScenarios: Scenario[] = [
  {
    name: "tcp-lifecycle",
    description:
      "Handshake, data both ways, client closes first (FIN/ACK, ACK, FIN/ACK, ACK); second flow where the server closes first; third where the peer's FIN rides on its ACK",
    expected: "SYN_SENT → SYN_RECV → ESTABLISHED [ASSURED] → FIN_WAIT → CLOSE_WAIT → LAST_ACK → TIME_WAIT; combined FIN+ACK goes FIN_WAIT → LAST_ACK",
    tags: ["tcp"],
    build(ctx) {
      const a = conv(ctx, 40001);
      a.handshake().data("c", 300).ack("s").data("s", 1200).ack("c").closeFrom("c");
      const b = conv(ctx, 40002);
      b.handshake().data("c", 100).data("s", 100).ack("c").closeFrom("s");
      const c = conv(ctx, 40003);
      c.handshake().data("c", 10).ack("s").fin("c").fin("s").ack("c");
    },
  },
  {
    name: "tcp-simultaneous-open",
    description: "Both ends send SYN, then both send SYN/ACK, then ACKs",
    expected: "SYN_SENT → SYN_SENT2 → SYN_RECV → ESTABLISHED; one of the crossing SYN/ACKs is invalid or ignored",
    tags: ["tcp"],
    build(ctx) {
      const c = conv(ctx, 40011, { sport: 40012 });
      c.syn("c").syn("s");
      c.synack("c").synack("s");
      c.ack("c").ack("s").data("c", 50).ack("s");
    },
  },
  {
    name: "tcp-simultaneous-close",
    description: "Both ends send FIN before seeing the other's FIN, then both ACK",
    expected: "FIN_WAIT → LAST_ACK → TIME_WAIT",
    tags: ["tcp"],
    build(ctx) {
      const c = conv(ctx, 40021);
      c.handshake().data("c", 10).ack("s");
      const finC = c.next.c;
      c.fin("c", { ack: c.next.s });
      c.fin("s", { ack: finC });
      c.ack("c").ack("s");
    },
  },
  {
    name: "tcp-timewait-reopen",
    description:
      "A closed connection (TIME_WAIT) reopened by a new SYN on the same tuple; a connection reset (CLOSE) reopened by the side that sent the RST; one reset by the server then reopened by the client",
    expected:
      "DESTROY of the old entry then NEW SYN_SENT when CLOSE_INIT is set or the RST came from the SYN's side; a SYN after the other side's RST in CLOSE is ignored",
    tags: ["tcp"],
    build(ctx) {
      const a = conv(ctx, 40031);
      a.handshake().data("c", 100).ack("s").closeFrom("c");
      a.syn("c", { seq: (a.next.c + 100_000) >>> 0 })
        .synack("s", { seq: 9_000_000 })
        .ack("c");
      const b = conv(ctx, 40032);
      b.handshake().data("c", 10).ack("s").rst("c");
      b.syn("c", { seq: (b.next.c + 100_000) >>> 0 });
      const d = conv(ctx, 40033);
      d.handshake().data("c", 10).ack("s").rst("s");
      d.syn("c", { seq: (d.next.c + 100_000) >>> 0 });
      // Server closed first, then the client reuses the tuple.
      const e = conv(ctx, 40034);
      e.handshake().closeFrom("s");
      e.syn("c", { seq: (e.next.c + 100_000) >>> 0 });
    },
  },
  {
    name: "tcp-rst-before-reply",
    description: "SYN answered by RST/ACK (closed port); SYN followed by the client's own RST; mid-stream pick-up answered by RST",
    expected: "The entry is destroyed at once (DESTROY CLOSE [UNREPLIED]); nothing is left in the table",
    tags: ["tcp"],
    build(ctx) {
      const a = conv(ctx, 40041, { sport: 81 });
      a.syn("c").rstack("s", { seq: 0 });
      const b = conv(ctx, 40042, { sport: 81 });
      b.syn("c").rst("c");
      const c = conv(ctx, 40043, { sport: 81 });
      c.data("c", 20).rst("s");
    },
  },
  {
    name: "tcp-fin-loss",
    description: "Connections whose closing segments were lost: only the client's FIN; FIN and its ACK; everything but the final ACK",
    expected: "Entries are left behind in FIN_WAIT (120 s), CLOSE_WAIT (60 s) and LAST_ACK (30 s)",
    tags: ["tcp", "loss"],
    build(ctx) {
      conv(ctx, 40051).handshake().data("c", 10).ack("s").fin("c");
      conv(ctx, 40052).handshake().data("c", 10).ack("s").fin("c").ack("s");
      conv(ctx, 40053).handshake().data("c", 10).ack("s").fin("c").ack("s").fin("s");
    },
  },
  {
    name: "tcp-rst-loss",
    description: "Connections whose RST was lost: one idle after data was acknowledged, one with unacknowledged data in flight",
    expected: "ESTABLISHED [ASSURED] left behind; 432000 s when everything was acknowledged, 300 s (unacknowledged) otherwise",
    tags: ["tcp", "loss"],
    build(ctx) {
      conv(ctx, 40061).handshake().data("c", 100).ack("s");
      conv(ctx, 40062).handshake().data("c", 100).ack("s").data("s", 500);
    },
  },
  {
    name: "tcp-syn-retransmit",
    description: "SYN sent three times before the SYN/ACK; SYN sent three times and never answered; SYN/ACK retransmitted",
    expected: "One entry per tuple; retransmitted SYNs are new and do not refresh; a retransmitted SYN/ACK is ignored",
    tags: ["tcp", "retrans"],
    build(ctx) {
      const a = conv(ctx, 40071);
      a.syn("c").syn("c", { noAdvance: true }).syn("c", { noAdvance: true }).synack("s").ack("c");
      const b = conv(ctx, 40072);
      b.syn("c").syn("c", { noAdvance: true }).syn("c", { noAdvance: true });
      const c = conv(ctx, 40073);
      c.syn("c").synack("s").synack("s", { noAdvance: true }).ack("c");
    },
  },
  {
    name: "tcp-data-retransmit",
    description: "A data segment retransmitted before and after it was acknowledged; an overlapping retransmission",
    expected: "Retransmissions are accepted or ignored (already-ACKed data), never invalid",
    tags: ["tcp", "retrans"],
    build(ctx) {
      const a = conv(ctx, 40081);
      a.handshake();
      const s0 = a.next.c;
      a.data("c", 500).data("c", 500, { seq: s0 }).ack("s").data("c", 500, { seq: s0 });
      a.data("c", 800, { seq: (s0 + 200) >>> 0 }).ack("s");
    },
  },
  {
    name: "tcp-ack-retransmit",
    description: "The same bare ACK repeated 4 times (identical seq/ack/window), with data outstanding from the other side",
    expected: "After 3 retransmissions the timeout is clamped to nf_conntrack_tcp_timeout_max_retrans (300 s)",
    tags: ["tcp", "retrans"],
    build(ctx) {
      const a = conv(ctx, 40091);
      a.handshake().data("c", 100).ack("s");
      for (let i = 0; i < 4; i++) a.ack("s", { noAdvance: true });
      // A second flow: identical ACKs while the other side has unacknowledged data.
      const b = conv(ctx, 40092);
      b.handshake().data("s", 1000);
      const ack = b.next.s;
      for (let i = 0; i < 5; i++) b.ack("c", { ack: (ack - 1000) >>> 0 });
    },
  },
  {
    name: "tcp-out-of-window",
    description: "Data far beyond the receiver's window; data slightly over the window edge; an ACK for data never sent; an ACK far below the window",
    expected: "Far beyond: INVALID; overshoot within the receiver's max window: ignored; ACK above what was sent: INVALID; old ACK: ignored",
    tags: ["tcp", "window"],
    build(ctx) {
      const a = conv(ctx, 40101, { winS: 1000 });
      a.handshake().data("c", 100, { seq: (a.next.c + 1_000_000) >>> 0, noAdvance: true });
      const b = conv(ctx, 40102, { winS: 1000 });
      b.handshake().data("c", 900).data("c", 300).ack("s");
      const c = conv(ctx, 40103);
      c.handshake()
        .data("c", 100)
        .ack("s", { ack: (c.next.c + 50_000) >>> 0 });
      const d = conv(ctx, 40104);
      d.handshake()
        .data("s", 1000)
        .ack("c")
        .ack("c", { ack: (d.next.s - 200_000) >>> 0 });
    },
  },
  {
    name: "tcp-rst-window",
    description:
      "RSTs in ESTABLISHED: with the exact expected sequence number; in window but inexact; out of window (below and above); RST in a closing state with an inexact sequence",
    expected: "Exact: CLOSE; inexact in-window: state kept (challenge ACK expected); out of window: INVALID; inexact in FIN_WAIT/CLOSE_WAIT: CLOSE",
    tags: ["tcp", "rst"],
    build(ctx) {
      const ex = conv(ctx, 40111);
      ex.handshake().data("c", 100).ack("s").rst("s");
      const inx = conv(ctx, 40112);
      inx
        .handshake()
        .data("c", 100)
        .ack("s")
        .rst("s", { seq: (inx.next.s + 100) >>> 0 });
      const below = conv(ctx, 40113);
      below
        .handshake()
        .data("s", 1000)
        .ack("c")
        .rst("s", { seq: (below.next.s - 5000) >>> 0 });
      const above = conv(ctx, 40114);
      above
        .handshake()
        .data("c", 100)
        .ack("s")
        .rst("s", { seq: (above.next.s + 10_000_000) >>> 0 });
      const closing = conv(ctx, 40115);
      closing
        .handshake()
        .data("c", 100)
        .ack("s")
        .fin("c")
        .ack("s")
        .rst("s", { seq: (closing.next.s + 100) >>> 0 });
      // A RST answering an ACK we let through (RST train): seq == last_end.
      const train = conv(ctx, 40116);
      train.handshake().data("c", 100).ack("s").ack("c", { noAdvance: true }).rstack("c");
    },
  },
  {
    name: "tcp-window-scale",
    description:
      "Window scaling: both sides offer wscale 7 and data fills a window above 64 KiB; only the client offers it (scaling off) with the same data; a SYN with shift 255 (capped at 14)",
    expected: "Both sides: the large flight is in window; one side: scaling is off and the flight overshoots the unscaled window",
    tags: ["tcp", "window"],
    build(ctx) {
      // The window in a SYN is never scaled: the server's first ACK after the
      // handshake is what opens the scaled window (2000 << 7 = 256000).
      const both = conv(ctx, 40121, { wscaleC: 7, wscaleS: 7, winS: 2000, winC: 2000 });
      both.handshake().ack("s", { win: 2000 });
      for (let i = 0; i < 120; i++) both.data("c", 1400, { win: 2000 });
      both.ack("s", { win: 2000 });
      const one = conv(ctx, 40122, { wscaleC: 7, winS: 2000, winC: 2000 });
      one.handshake().ack("s", { win: 2000 });
      for (let i = 0; i < 120; i++) one.data("c", 1400, { win: 2000 });
      one.ack("s", { win: 2000 });
      const big = conv(ctx, 40123, { wscaleC: 255, wscaleS: 7, winS: 2000 });
      big.handshake().data("c", 1400).ack("s").data("s", 100).ack("c");
    },
  },
  {
    name: "tcp-zero-window",
    description: "The server advertises a zero window after receiving data; the client probes it",
    expected: "ESTABLISHED with the timeout clamped to 300 s (zero window → max_retrans)",
    tags: ["tcp", "window"],
    build(ctx) {
      const a = conv(ctx, 40131);
      a.handshake().data("c", 1000).ack("s", { win: 0 });
      a.data("c", 1, { noAdvance: true }).ack("s", { win: 0 });
    },
  },
  {
    name: "tcp-sack",
    description:
      "SACK permitted on both sides: ACKs with SACK blocks inside what was sent; a SACK block beyond anything sent; SACK blocks when SACK was not negotiated",
    expected: "Valid SACK accepted; a SACK right edge above the sender's end is INVALID (checked only when SACK was permitted)",
    tags: ["tcp", "window"],
    build(ctx) {
      const a = conv(ctx, 40141, { sackC: true, sackS: true });
      a.handshake();
      const s0 = a.next.c;
      a.data("c", 1000).data("c", 1000).data("c", 1000);
      a.ack("s", { ack: s0, sack: [[s0 + 1000, s0 + 3000]] });
      a.ack("s", { ack: s0, sack: [[s0 + 1000, s0 + 90_000]] });
      a.ack("s");
      const b = conv(ctx, 40142);
      b.handshake();
      const t0 = b.next.c;
      b.data("c", 1000).data("c", 1000);
      b.ack("s", { ack: t0, sack: [[t0 + 1000, t0 + 90_000]] });
    },
  },
  {
    name: "tcp-midstream",
    description: "Connections picked up mid-stream (no SYN seen): data with a reply then more data; a one-way stream; a pick-up by a bare FIN/ACK",
    expected: "ESTABLISHED [UNREPLIED] 300 s, then reply, then [ASSURED]; one-way stays UNREPLIED; FIN as first packet is INVALID",
    tags: ["tcp", "loose"],
    build(ctx) {
      const a = conv(ctx, 40151, { isnC: 77_000_000, isnS: 88_000_000 });
      a.data("c", 200).data("s", 800).ack("c").data("c", 100);
      const b = conv(ctx, 40152, { isnC: 3_000_000_000 });
      b.data("c", 1000).data("c", 1000).data("c", 1000);
      const c = conv(ctx, 40153);
      c.fin("c");
      // A pick-up seen first from the server's side of an existing connection.
      const d = conv(ctx, 40154, { isnS: 4_000_000_000 });
      d.data("s", 500).ack("c").data("s", 500);
    },
  },
  {
    name: "tcp-invalid-flags",
    description:
      "Flag combinations tcp_error rejects: SYN+FIN, FIN without ACK, no flags, Xmas (FIN+PSH+URG), RST+FIN — as first packets and inside an established connection",
    expected: "All INVALID before any lookup; no entries from the first-packet probes; the established connection is unaffected",
    tags: ["tcp"],
    build(ctx) {
      const flags = [0x03, 0x01, 0x00, 0x29, 0x05, 0x07];
      flags.forEach((f, i) => conv(ctx, 40160 + i).seg("c", f));
      const e = conv(ctx, 40170);
      e.handshake();
      for (const f of flags) e.seg("c", f, { noAdvance: true });
      e.data("c", 10).ack("s");
    },
  },
  {
    name: "tcp-resync",
    description:
      "A new SYN inside an established connection answered by a SYN/ACK that acknowledges it (firewall out of sync); a SYN answered by a challenge ACK then RST and SYN again",
    expected:
      "The out-of-sync SYN/ACK resynchronises to SYN_RECV; the challenge-ACK sequence ends in a fresh connection (selftest conntrack_syn_challenge_ack)",
    tags: ["tcp"],
    build(ctx) {
      const a = conv(ctx, 40181);
      a.handshake().data("c", 100).ack("s");
      const newIsn = (a.next.c + 1_000_000) >>> 0;
      a.syn("c", { seq: newIsn, noAdvance: true });
      a.synack("s", { seq: 7_000_000, ack: (newIsn + 1) >>> 0, noAdvance: true });
      a.ack("c", { seq: (newIsn + 1) >>> 0, ack: 7_000_001, noAdvance: true });
      const b = conv(ctx, 40182);
      b.handshake().data("c", 100).ack("s");
      const isn2 = (b.next.c + 2_000_000) >>> 0;
      b.syn("c", { seq: isn2, noAdvance: true });
      // Challenge ACK from the server's old incarnation.
      b.ack("s", { noAdvance: true });
      b.rst("c", { seq: b.next.c, noAdvance: true });
      b.syn("c", { seq: isn2, noAdvance: true });
      b.synack("s", { seq: 8_000_000, ack: (isn2 + 1) >>> 0, noAdvance: true });
      b.ack("c", { seq: (isn2 + 1) >>> 0, ack: 8_000_001, noAdvance: true });
    },
  },
  {
    name: "tcp-ipv6",
    description: "IPv6 TCP: full lifecycle; a refused SYN; a mid-stream pick-up",
    expected: "As for IPv4, with ipv6 10 in the table",
    tags: ["tcp", "ipv6"],
    build(ctx) {
      conv(ctx, 40191, {}, true).handshake().data("c", 100).ack("s").data("s", 1000).ack("c").closeFrom("c");
      conv(ctx, 40192, { sport: 81 }, true).syn("c").rstack("s", { seq: 0 });
      const m = conv(ctx, 40193, {}, true);
      m.data("c", 100).data("s", 100).ack("c");
    },
  },
  {
    name: "tcp-vlan",
    description: "TCP connections in 802.1Q frames (VLAN 100), in QinQ frames (802.1ad 200 / 802.1Q 300) and in a PPPoE session",
    expected: "Identical to untagged traffic: the link layer does not matter to conntrack",
    tags: ["tcp", "link"],
    build(ctx) {
      conv(ctx, 40201, { link: { vlan: [100] } })
        .handshake()
        .data("c", 100)
        .ack("s")
        .closeFrom("c");
      conv(ctx, 40202, { link: { vlan: [200, 300] } })
        .handshake()
        .data("s", 100)
        .ack("c");
      conv(ctx, 40203, { link: { pppoeSession: 0x1234 } })
        .handshake()
        .data("c", 100)
        .ack("s");
      conv(ctx, 40204, { link: { pppoeSession: 0x1235, vlan: [10, 20] } }, true).handshake();
    },
  },
];
