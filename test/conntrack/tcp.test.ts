import type { SysctlValues } from "../../src/conntrack/sysctl.js";
import { test } from "node:test";
import assert from "node:assert/strict";
import { TcpTracker, TCP_CT_FLAG, TCP_INDEX, TCP_STATE, TCP_STATE_NAMES, tcpIndex, tcpStateName } from "../../src/conntrack/tcp.js";
import { CT_STATE, IPS, L4_VERDICT } from "../../src/conntrack/constants.js";
import { PacketView } from "../../src/packet/view.js";
import { FakeConntrack, FakeCtx, tcp, type Host } from "./fake-ctx.js";

const C: Host = 0; // client
const S: Host = 1; // server

function conn(sysctl: Partial<SysctlValues> = {}): FakeConntrack {
  return new FakeConntrack((n) => new TcpTracker(n), { sysctl });
}

function tracker(ct: FakeConntrack): TcpTracker {
  const t = ct.tracker;
  assert.ok(t instanceof TcpTracker);
  return t;
}

const c = 1000; // client ISN
const s = 5000; // server ISN

/** Three-way handshake with window scaling and SACK on both sides. */
function handshake(ct: FakeConntrack): void {
  ct.send(C, tcp({ flags: "S", seq: c, win: 64240, mss: true, sackPerm: true, ts: true, wscale: 7 }));
  ct.send(S, tcp({ flags: "S.", seq: s, ack: c + 1, win: 65160, mss: true, sackPerm: true, ts: true, wscale: 7 }));
  ct.send(C, tcp({ flags: ".", seq: c + 1, ack: s + 1, win: 502, ts: true }));
}

test("state names and enum values are the kernel's", () => {
  assert.deepEqual(TCP_STATE_NAMES, ["NONE", "SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT", "CLOSE_WAIT", "LAST_ACK", "TIME_WAIT", "CLOSE", "SYN_SENT2"]);
  assert.equal(TCP_STATE.SYN_SENT2, 9);
  assert.equal(TCP_STATE.MAX, 10);
  assert.equal(TCP_STATE.UNACK, 13);
  assert.equal(tcpStateName(TCP_STATE.SYN_SENT2), "SYN_SENT2");
  assert.equal(tcpStateName(42), "");
  const t = new TcpTracker(3);
  assert.equal(t.stateText(0), "NONE ");
});

test("bytesAllocated is exactly 56 bytes per entry", () => {
  assert.equal(new TcpTracker(0).bytesAllocated, 0);
  assert.equal(new TcpTracker(1).bytesAllocated, 56);
  assert.equal(new TcpTracker(262144).bytesAllocated, 56 * 262144);
  assert.throws(() => new TcpTracker(-1), RangeError);
});

test("get_conntrack_index: RST beats SYN beats FIN beats ACK", () => {
  assert.equal(tcpIndex(0x02), TCP_INDEX.SYN);
  assert.equal(tcpIndex(0x12), TCP_INDEX.SYNACK);
  assert.equal(tcpIndex(0x11), TCP_INDEX.FIN);
  assert.equal(tcpIndex(0x10), TCP_INDEX.ACK);
  assert.equal(tcpIndex(0x14), TCP_INDEX.RST);
  assert.equal(tcpIndex(0x07), TCP_INDEX.RST);
  assert.equal(tcpIndex(0x03), TCP_INDEX.SYN);
  assert.equal(tcpIndex(0x08), TCP_INDEX.NONE);
  assert.equal(tcpIndex(0x00), TCP_INDEX.NONE);
});

test("tcp_error: exactly the tcp_valid_flags[] combinations pass, PSH/ECE/CWR ignored", () => {
  const allowed = new Set([0x02, 0x22, 0x12, 0x04, 0x14, 0x11, 0x31, 0x10, 0x30]);
  const t = new TcpTracker(1);
  const p = tcp({ flags: "" });
  for (let f = 0; f < 256; f++) {
    p.tcpFlags = f;
    const ok = t.valid(p, true);
    assert.equal(ok, allowed.has(f & ~0xc8), `flags 0x${f.toString(16)}`);
    if (!ok) assert.equal(t.invalidReason, "invalid tcp flag combination");
  }
});

test("tcp_error: truncated headers", () => {
  const t = new TcpTracker(1);
  const p = tcp({ flags: "S" });
  p.tcpHdrLen = 16; // doff 4
  assert.equal(t.valid(p, true), false);
  assert.equal(t.invalidReason, "truncated packet");
  tcp({ flags: "S", wscale: 7 }, p);
  p.l4Len = 22; // header claims 24 bytes
  assert.equal(t.valid(p, true), false);
  assert.equal(t.invalidReason, "truncated packet");
  p.l4Len = 12; // not even 20 bytes: skb_header_pointer fails, nothing logged
  assert.equal(t.valid(p, true), false);
  assert.equal(t.invalidReason, "");
  tcp({ flags: "S", wscale: 7 }, p);
  assert.equal(t.valid(p, true), true);
});

test("tcp_new: only a SYN or (loose) an ACK creates an entry", () => {
  for (const flags of ["S.", "F.", "R", "R."]) {
    const ct = conn({ nf_conntrack_log_invalid: 6 });
    const r = ct.send(C, tcp({ flags, seq: 1, ack: 1 }));
    assert.equal(r.ctState, CT_STATE.INVALID, flags);
    assert.equal(ct.exists, false);
    assert.deepEqual(ct.ctx.logs, ["invalid new"]);
    assert.deepEqual(ct.events, []);
  }
  const syn = conn();
  assert.equal(syn.send(C, tcp({ flags: "S", seq: 1 })).ctState, CT_STATE.NEW);
  assert.equal(syn.state(), "SYN_SENT");
  const ack = conn();
  assert.equal(ack.send(C, tcp({ flags: ".", seq: 1, ack: 1 })).ctState, CT_STATE.NEW);
  assert.equal(ack.state(), "ESTABLISHED");
  const strict = conn({ nf_conntrack_tcp_loose: 0, nf_conntrack_log_invalid: 6 });
  assert.equal(strict.send(C, tcp({ flags: ".", seq: 1, ack: 1 })).ctState, CT_STATE.INVALID);
  assert.equal(strict.exists, false);
  assert.deepEqual(strict.ctx.logs, [], "loose=0 rejects silently");
});

test("tcp_new: SYN initialises seen[0] (td_end = seq+1, maxwin, options, wscale capped at 14)", () => {
  const ct = conn();
  ct.send(C, tcp({ flags: "S", seq: 0xffffffff, win: 0, sackPerm: true, wscale: 15 }));
  const s0 = tracker(ct).seen(ct.slot, 0);
  assert.equal(s0.tdEnd, 0, "seq + 1 wraps");
  assert.equal(s0.tdMaxEnd, 0);
  assert.equal(s0.tdMaxWin, 1, "zero window counts as 1");
  assert.equal(s0.tdScale, 14);
  assert.equal(s0.flags, TCP_CT_FLAG.WINDOW_SCALE | TCP_CT_FLAG.SACK_PERM);
  assert.equal(tracker(ct).lastPacket(ct.slot), TCP_INDEX.SYN, "last_index SYN, dir 0");
});

test("lifecycle, server closes first: the exact conntrack -E sequence of kernel-conntrack.md 1.11", () => {
  const ct = conn();
  handshake(ct);
  ct.send(C, tcp({ flags: "P.", seq: c + 1, ack: s + 1, len: 100, win: 502 }));
  assert.equal(ct.ctx.remaining(ct.slot), 300_000, "unacknowledged data caps ESTABLISHED at 300 s");
  ct.send(S, tcp({ flags: ".", seq: s + 1, ack: c + 101, win: 509 }));
  assert.equal(ct.ctx.remaining(ct.slot), 432_000_000, "all data acked: 5 days");
  ct.send(S, tcp({ flags: "F.", seq: s + 1, ack: c + 101, win: 509 }));
  ct.send(C, tcp({ flags: ".", seq: c + 101, ack: s + 2, win: 502 }));
  ct.send(C, tcp({ flags: "F.", seq: c + 101, ack: s + 2, win: 502 }));
  ct.send(S, tcp({ flags: ".", seq: s + 2, ack: c + 102, win: 509 }));
  ct.advance(119_999);
  assert.equal(ct.state(), "TIME_WAIT");
  ct.advance(1);
  assert.deepEqual(ct.events, [
    "[NEW] 120 SYN_SENT [UNREPLIED]",
    "[UPDATE] 60 SYN_RECV",
    "[UPDATE] 432000 ESTABLISHED [ASSURED]",
    "[UPDATE] 120 FIN_WAIT [ASSURED]",
    "[UPDATE] 60 CLOSE_WAIT [ASSURED]",
    "[UPDATE] 30 LAST_ACK [ASSURED]",
    "[UPDATE] 120 TIME_WAIT [ASSURED]",
    "[DESTROY] TIME_WAIT [ASSURED]",
  ]);
  assert.equal(ct.invalid, 0);
});

test("CLOSE_INIT marks the side that sent the first FIN; FIN|ACK from the peer goes FIN_WAIT -> LAST_ACK", () => {
  const ct = conn();
  handshake(ct);
  ct.send(C, tcp({ flags: "F.", seq: c + 1, ack: s + 1, win: 502 }));
  const t = tracker(ct);
  assert.equal(t.flags(ct.slot, 0) & TCP_CT_FLAG.CLOSE_INIT, TCP_CT_FLAG.CLOSE_INIT);
  assert.equal(t.flags(ct.slot, 1) & TCP_CT_FLAG.CLOSE_INIT, 0);
  ct.send(S, tcp({ flags: "F.", seq: s + 1, ack: c + 2, win: 509 }));
  assert.equal(ct.state(), "LAST_ACK");
  ct.send(C, tcp({ flags: ".", seq: c + 2, ack: s + 2, win: 502 }));
  assert.equal(ct.state(), "TIME_WAIT");
  assert.deepEqual(ct.events.slice(3), ["[UPDATE] 120 FIN_WAIT [ASSURED]", "[UPDATE] 30 LAST_ACK [ASSURED]", "[UPDATE] 120 TIME_WAIT [ASSURED]"]);
});

test("SYN retransmits in SYN_SENT do not refresh the timeout; the entry stays NEW", () => {
  const ct = conn();
  ct.send(C, tcp({ flags: "S", seq: c, win: 64240 }));
  ct.advance(1000);
  assert.equal(ct.send(C, tcp({ flags: "S", seq: c, win: 64240 })).ctState, CT_STATE.NEW);
  ct.advance(3000);
  ct.send(C, tcp({ flags: "S", seq: c, win: 64240 }));
  assert.equal(ct.timeoutSeconds(), 116);
  assert.deepEqual(ct.events, ["[NEW] 120 SYN_SENT [UNREPLIED]"]);
  ct.advance(116_000);
  assert.deepEqual(ct.events, ["[NEW] 120 SYN_SENT [UNREPLIED]", "[DESTROY] SYN_SENT [UNREPLIED]"]);
});

test("RST answering a SYN (closed port) destroys the entry at once", () => {
  const ct = conn();
  ct.send(C, tcp({ flags: "S", seq: c, win: 64240 }));
  const r = ct.send(S, tcp({ flags: "R.", seq: 0, ack: c + 1, win: 0 }));
  assert.equal(r.verdict, L4_VERDICT.ACCEPT);
  assert.equal(r.ctState, CT_STATE.ESTABLISHED);
  assert.equal(ct.exists, false);
  assert.deepEqual(ct.events, ["[NEW] 120 SYN_SENT [UNREPLIED]", "[DESTROY] 120 CLOSE [UNREPLIED]"]);
});

test("a valid RST after a reply only moves to CLOSE for 10 s", () => {
  const ct = conn();
  handshake(ct);
  ct.send(S, tcp({ flags: "R.", seq: s + 1, ack: c + 1, win: 0 }));
  assert.equal(ct.state(), "CLOSE");
  assert.equal(ct.timeoutSeconds(), 10);
  assert.deepEqual(ct.events.at(-1), "[UPDATE] 10 CLOSE [ASSURED]");
  ct.advance(10_000);
  assert.equal(ct.events.at(-1), "[DESTROY] CLOSE [ASSURED]");
});

test("simultaneous open: SYN_SENT2, then SYN_RECV, then the reply ACK reaches ESTABLISHED", () => {
  const ct = conn();
  const a = 100,
    b = 900_000;
  ct.send(C, tcp({ flags: "S", seq: a, win: 64240, wscale: 7, sackPerm: true }));
  ct.send(S, tcp({ flags: "S", seq: b, win: 64240, wscale: 7, sackPerm: true }));
  assert.equal(ct.state(), "SYN_SENT2");
  assert.equal(tracker(ct).lastFlags(ct.slot) & TCP_CT_FLAG.SIMULTANEOUS_OPEN, TCP_CT_FLAG.SIMULTANEOUS_OPEN);
  ct.send(S, tcp({ flags: "S.", seq: b, ack: a + 1, win: 64240, wscale: 7, sackPerm: true }));
  assert.equal(ct.state(), "SYN_RECV");
  ct.send(C, tcp({ flags: "S.", seq: a, ack: b + 1, win: 64240, wscale: 7, sackPerm: true }));
  assert.equal(ct.state(), "SYN_RECV", "late SYN/ACK in simultaneous open");
  ct.send(S, tcp({ flags: ".", seq: b + 1, ack: a + 1, win: 502 }));
  assert.equal(ct.state(), "ESTABLISHED", "REPLY ACK with IP_CT_TCP_SIMULTANEOUS_OPEN");
  assert.equal(ct.invalid, 0);
  assert.deepEqual(ct.events, ["[NEW] 120 SYN_SENT [UNREPLIED]", "[UPDATE] 120 SYN_SENT2", "[UPDATE] 60 SYN_RECV", "[UPDATE] 432000 ESTABLISHED [ASSURED]"]);
});

test("simultaneous open without the flag: a REPLY ACK in SYN_RECV stays SYN_RECV", () => {
  const ct = conn();
  handshake(ct);
  const t = tracker(ct);
  t.fromNetlink(ct.slot, { state: TCP_STATE.SYN_RECV });
  ct.send(S, tcp({ flags: ".", seq: s + 1, ack: c + 1, win: 509 }));
  assert.equal(ct.state(), "SYN_RECV");
});

test("TIME_WAIT reopen: a new SYN destroys the old entry and creates a fresh one (REPEAT)", () => {
  const ct = conn();
  handshake(ct);
  ct.send(C, tcp({ flags: "F.", seq: c + 1, ack: s + 1, win: 502 }));
  ct.send(S, tcp({ flags: "F.", seq: s + 1, ack: c + 2, win: 509 }));
  ct.send(C, tcp({ flags: ".", seq: c + 2, ack: s + 2, win: 502 }));
  ct.advance(5000);
  const r = ct.send(C, tcp({ flags: "S", seq: c + 100_000, win: 64240, wscale: 7 }));
  assert.equal(r.ctState, CT_STATE.NEW);
  assert.equal(ct.state(), "SYN_SENT");
  assert.equal(ct.status & IPS.ASSURED, 0, "fresh entry");
  assert.deepEqual(ct.events.slice(-2), ["[DESTROY] 115 TIME_WAIT [ASSURED]", "[NEW] 120 SYN_SENT [UNREPLIED]"]);
  const s0 = tracker(ct).seen(ct.slot, 0);
  assert.equal(s0.tdEnd, c + 100_001);
  assert.equal(tracker(ct).seen(ct.slot, 1).tdMaxWin, 0, "reply side reset");
  // The new connection completes normally.
  ct.send(S, tcp({ flags: "S.", seq: 777, ack: c + 100_001, win: 65160, wscale: 7 }));
  ct.send(C, tcp({ flags: ".", seq: c + 100_001, ack: 778, win: 502 }));
  assert.equal(ct.state(), "ESTABLISHED");
  assert.equal(ct.invalid, 0);
});

test("TIME_WAIT reopen by the server (REPLY SYN): the new entry's ORIGINAL is the server", () => {
  const ct = conn();
  handshake(ct);
  ct.send(C, tcp({ flags: "F.", seq: c + 1, ack: s + 1, win: 502 }));
  ct.send(S, tcp({ flags: "F.", seq: s + 1, ack: c + 2, win: 509 }));
  ct.send(C, tcp({ flags: ".", seq: c + 2, ack: s + 2, win: 502 }));
  ct.send(S, tcp({ flags: "S", seq: 70_000, win: 64240 }));
  assert.equal(ct.origHost, S);
  assert.equal(ct.state(), "SYN_SENT");
  assert.deepEqual(ct.events.slice(-2), ["[DESTROY] 120 TIME_WAIT [ASSURED]", "[NEW] 120 SYN_SENT [UNREPLIED]"]);
});

test("CLOSE after our own RST: a new SYN reopens; after the peer's RST the SYN is only ignored", () => {
  const own = conn();
  handshake(own);
  own.send(C, tcp({ flags: "R.", seq: c + 1, ack: s + 1, win: 0 }));
  assert.equal(own.state(), "CLOSE");
  own.send(C, tcp({ flags: "S", seq: 42_000, win: 64240 }));
  assert.equal(own.state(), "SYN_SENT");
  assert.deepEqual(own.events.slice(-2), ["[DESTROY] 10 CLOSE [ASSURED]", "[NEW] 120 SYN_SENT [UNREPLIED]"]);

  const peer = conn({ nf_conntrack_log_invalid: 255 });
  handshake(peer);
  peer.send(S, tcp({ flags: "R.", seq: s + 1, ack: c + 1, win: 0 }));
  const before = peer.ctx.remaining(peer.slot);
  peer.advance(1000);
  const r = peer.send(C, tcp({ flags: "S", seq: 42_000, win: 64240, wscale: 6, sackPerm: true }));
  assert.equal(r.verdict, L4_VERDICT.ACCEPT);
  assert.equal(r.ctState, CT_STATE.ESTABLISHED);
  assert.equal(peer.state(), "CLOSE", "ignored");
  assert.equal(peer.ctx.remaining(peer.slot), before - 1000, "no refresh");
  assert.deepEqual(peer.ctx.logs, ["packet (index 0) in dir 0 ignored, state CLOSE"]);
  // The server's SYN/ACK acknowledging the ignored SYN resynchronises us.
  peer.send(S, tcp({ flags: "S.", seq: 8_000, ack: 42_001, win: 65160, wscale: 7 }));
  assert.equal(peer.state(), "SYN_RECV");
  const s0 = tracker(peer).seen(peer.slot, 0);
  assert.equal(s0.tdEnd, 42_001);
  assert.equal(s0.tdScale, 6, "annotated wscale restored");
  assert.equal(s0.flags & (TCP_CT_FLAG.WINDOW_SCALE | TCP_CT_FLAG.SACK_PERM), TCP_CT_FLAG.WINDOW_SCALE | TCP_CT_FLAG.SACK_PERM);
  peer.send(C, tcp({ flags: ".", seq: 42_001, ack: 8_001, win: 502 }));
  assert.equal(peer.state(), "ESTABLISHED");
  assert.equal(peer.invalid, 0);
});

test("out-of-sync: a new SYN in ESTABLISHED is ignored, the SYN/ACK for it resyncs to SYN_RECV", () => {
  const ct = conn();
  handshake(ct);
  ct.send(C, tcp({ flags: "S", seq: 3_000_000, win: 29200, wscale: 7, sackPerm: true }));
  assert.equal(ct.state(), "ESTABLISHED");
  // A SYN/ACK not acking the annotated SYN is ignored as well.
  ct.send(S, tcp({ flags: "S.", seq: 6_000_000, ack: 123, win: 28960, wscale: 7 }));
  assert.equal(ct.state(), "ESTABLISHED");
  ct.send(C, tcp({ flags: "S", seq: 3_000_000, win: 29200, wscale: 7, sackPerm: true }));
  ct.send(S, tcp({ flags: "S.", seq: 6_000_000, ack: 3_000_001, win: 28960, wscale: 7 }));
  assert.equal(ct.state(), "SYN_RECV");
  ct.send(C, tcp({ flags: ".", seq: 3_000_001, ack: 6_000_001, win: 229 }));
  assert.equal(ct.state(), "ESTABLISHED");
  assert.deepEqual(ct.events.slice(3), ["[UPDATE] 60 SYN_RECV [ASSURED]", "[UPDATE] 432000 ESTABLISHED [ASSURED]"]);
  assert.equal(ct.invalid, 0);
});

test("RFC 5961 challenge ACK in LAST_ACK is not taken for the last ACK", () => {
  const ct = conn({ nf_conntrack_log_invalid: 6 });
  handshake(ct);
  ct.send(S, tcp({ flags: "F.", seq: s + 1, ack: c + 1, win: 509 }));
  ct.send(C, tcp({ flags: "F.", seq: c + 1, ack: s + 2, win: 502 }));
  assert.equal(ct.state(), "LAST_ACK");
  ct.send(C, tcp({ flags: "S", seq: 9_000_000, win: 64240 }));
  assert.equal(tracker(ct).lastFlags(ct.slot) & TCP_CT_FLAG.EXP_CHALLENGE_ACK, TCP_CT_FLAG.EXP_CHALLENGE_ACK);
  const r = ct.send(S, tcp({ flags: ".", seq: s + 2, ack: c + 2, win: 509 }));
  assert.equal(r.verdict, L4_VERDICT.ACCEPT);
  assert.equal(ct.state(), "LAST_ACK", "challenge ACK: no state change");
  assert.equal(tracker(ct).lastFlags(ct.slot) & TCP_CT_FLAG.EXP_CHALLENGE_ACK, 0);
  assert.deepEqual(ct.ctx.logs, ["packet (index 0) in dir 0 ignored, state LAST_ACK", "challenge-ack ignored"]);
  ct.send(S, tcp({ flags: ".", seq: s + 2, ack: c + 2, win: 509 }));
  assert.equal(ct.state(), "TIME_WAIT");
});

test("REPLY ACK in SYN_SENT (half-open) is ignored without refresh", () => {
  const ct = conn();
  ct.send(C, tcp({ flags: "S", seq: c, win: 64240 }));
  ct.advance(2000);
  const r = ct.send(S, tcp({ flags: ".", seq: 77, ack: 99, win: 100 }));
  assert.equal(r.verdict, L4_VERDICT.ACCEPT);
  assert.equal(ct.state(), "SYN_SENT");
  assert.equal(ct.timeoutSeconds(), 118);
  assert.equal(ct.status & IPS.SEEN_REPLY, IPS.SEEN_REPLY, "the core still records the reply");
});

test("picked-up connection (loose): UNREPLIED at 300 s, ASSURED on the packet after the reply, no window checks", () => {
  const ct = conn();
  ct.send(C, tcp({ flags: ".", seq: 10_000, ack: 20_000, win: 502 }));
  const t = tracker(ct);
  for (const d of [0, 1] as const) {
    assert.equal(t.flags(ct.slot, d) & (TCP_CT_FLAG.BE_LIBERAL | TCP_CT_FLAG.SACK_PERM), TCP_CT_FLAG.BE_LIBERAL | TCP_CT_FLAG.SACK_PERM);
  }
  ct.send(S, tcp({ flags: ".", seq: 20_000, ack: 10_000, win: 509 }));
  ct.send(C, tcp({ flags: ".", seq: 10_000, ack: 20_000, win: 502 }));
  assert.deepEqual(ct.events, ["[NEW] 300 ESTABLISHED [UNREPLIED]", "[UPDATE] 300 ESTABLISHED", "[UPDATE] 432000 ESTABLISHED [ASSURED]"]);
  // Wildly out of window: still accepted (BE_LIBERAL).
  assert.equal(ct.send(S, tcp({ flags: "P.", seq: 2_000_000_000, ack: 5, win: 1, len: 10 })).verdict, L4_VERDICT.ACCEPT);
  assert.equal(ct.invalid, 0);
});

test("picked-up connection: a RST as the first reply destroys it", () => {
  const ct = conn();
  ct.send(C, tcp({ flags: ".", seq: 10_000, ack: 20_000, win: 502 }));
  ct.send(S, tcp({ flags: "R", seq: 20_000, win: 0 }));
  assert.equal(ct.exists, false);
  assert.deepEqual(ct.events, ["[NEW] 300 ESTABLISHED [UNREPLIED]", "[DESTROY] 300 CLOSE [UNREPLIED]"]);
});

test("nf_tcp_handle_invalid: out-of-window FIN/RST after one from the other side lowers the timeout to UNACK", () => {
  const ct = conn({ nf_conntrack_log_invalid: 6 });
  handshake(ct);
  assert.equal(ct.timeoutSeconds(), 432000);
  // Server FIN far out of window: INVALID, remembered as last (FIN, dir 1).
  assert.equal(ct.send(S, tcp({ flags: "F.", seq: s + 900_000_000, ack: c + 1, win: 509 })).ctState, CT_STATE.INVALID);
  assert.equal(ct.timeoutSeconds(), 432000);
  assert.equal(tracker(ct).lastPacket(ct.slot), TCP_INDEX.FIN | (1 << 8));
  // Client RST out of window: lowered.
  assert.equal(ct.send(C, tcp({ flags: "R.", seq: c + 900_000_000, ack: s + 1, win: 0 })).ctState, CT_STATE.INVALID);
  assert.equal(ct.timeoutSeconds(), 300);
  assert.equal(ct.ctx.logs.at(-1), "lowered timeout to UNACK");
  assert.equal(ct.state(), "ESTABLISHED");
});

test("nf_tcp_handle_invalid does nothing for unassured or fixed-timeout entries, or when ≤ 120 s remain", () => {
  const unassured = conn();
  unassured.send(C, tcp({ flags: "S", seq: c, win: 64240 }));
  unassured.send(S, tcp({ flags: "S.", seq: s, ack: c + 1, win: 65160 }));
  unassured.send(S, tcp({ flags: "F.", seq: s + 900_000_000, ack: c + 1, win: 509 }));
  unassured.send(C, tcp({ flags: "F.", seq: c + 900_000_000, ack: s + 1, win: 509 }));
  assert.equal(unassured.ctx.setTimeouts, 0);
  assert.equal(unassured.invalid, 2);

  const fixed = conn();
  handshake(fixed);
  fixed.ctx.status[fixed.slot] = fixed.status | IPS.FIXED_TIMEOUT;
  fixed.send(S, tcp({ flags: "F.", seq: s + 900_000_000, ack: c + 1, win: 509 }));
  fixed.send(C, tcp({ flags: "F.", seq: c + 900_000_000, ack: s + 1, win: 509 }));
  assert.equal(fixed.ctx.setTimeouts, 0);

  const short = conn({ nf_conntrack_tcp_timeout_established: 100_000 });
  handshake(short);
  short.send(S, tcp({ flags: "F.", seq: s + 900_000_000, ack: c + 1, win: 509 }));
  short.send(C, tcp({ flags: "F.", seq: c + 900_000_000, ack: s + 1, win: 509 }));
  assert.equal(short.ctx.setTimeouts, 0);
});

test("log texts appear only when nf_conntrack_log_invalid is 6 or 255", () => {
  for (const [level, expectLogs] of [
    [0, false],
    [1, false],
    [17, false],
    [6, true],
    [255, true],
  ] as const) {
    const ct = conn({ nf_conntrack_log_invalid: level });
    ct.send(C, tcp({ flags: "S", seq: c, win: 64240 }));
    ct.send(C, tcp({ flags: "F.", seq: c, ack: 1, win: 64240 })); // FIN in SYN_SENT: sIV
    assert.equal(ct.invalid, 1);
    assert.deepEqual(ct.ctx.logs, expectLogs ? ["packet (index 2) in dir 0 invalid, state SYN_SENT"] : [], `level ${level}`);
  }
});

test("IPS_FIXED_TIMEOUT is the core's business: the tracker still asks for refreshes", () => {
  const ctx = new FakeCtx(2);
  const t = new TcpTracker(2);
  const p = new PacketView();
  tcp({ flags: "S", seq: 1 }, p);
  assert.equal(t.init(ctx, 0, p), true);
  ctx.status[0] = IPS.FIXED_TIMEOUT;
  t.packet(ctx, 0, p, 0, 2);
  assert.equal(ctx.refreshes, 1);
  assert.equal(ctx.expires[0], 0, "FakeCtx.refresh honours FIXED_TIMEOUT");
});

test("fixup (hooks re-registered) resets td_maxwin of ESTABLISHED entries only", () => {
  const ct = conn();
  handshake(ct);
  const t = tracker(ct);
  t.fixup(ct.slot);
  assert.equal(t.seen(ct.slot, 0).tdMaxWin, 0);
  assert.equal(t.seen(ct.slot, 1).tdMaxWin, 0);
  const syn = conn();
  syn.send(C, tcp({ flags: "S", seq: c, win: 64240 }));
  tracker(syn).fixup(syn.slot);
  assert.equal(tracker(syn).seen(syn.slot, 0).tdMaxWin, 64240);
});

test("canEarlyDrop: only the closing states", () => {
  const t = new TcpTracker(1);
  const expected = [false, false, false, false, true, true, true, true, true, false];
  expected.forEach((e, st) => {
    t.fromNetlink(0, { state: st });
    assert.equal(t.canEarlyDrop(0), e, tcpStateName(st));
  });
});

test("fromNetlink follows nlattr_to_tcp: flags under mask, wscale only when both sides scale", () => {
  const t = new TcpTracker(1);
  t.fromNetlink(0, { wscaleOriginal: 3, wscaleReply: 4 });
  assert.equal(t.scale(0, 0), 0);
  t.fromNetlink(0, {
    flagsOriginal: { flags: 0xff, mask: TCP_CT_FLAG.WINDOW_SCALE },
    flagsReply: { flags: TCP_CT_FLAG.WINDOW_SCALE | TCP_CT_FLAG.BE_LIBERAL, mask: 0xff },
    wscaleOriginal: 3,
    wscaleReply: 4,
  });
  assert.equal(t.flags(0, 0), TCP_CT_FLAG.WINDOW_SCALE);
  assert.equal(t.flags(0, 1), TCP_CT_FLAG.WINDOW_SCALE | TCP_CT_FLAG.BE_LIBERAL);
  assert.equal(t.scale(0, 0), 3);
  assert.equal(t.scale(0, 1), 4);
  t.setBeLiberal(0);
  assert.equal(t.flags(0, 0) & TCP_CT_FLAG.BE_LIBERAL, TCP_CT_FLAG.BE_LIBERAL);
});
