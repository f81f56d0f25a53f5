/** tcp_in_window: the four bounds, overshoot, scaling, SACK, and the timeout rules fed by it. */
import type { SysctlValues } from "../../src/conntrack/sysctl.js";
import { test } from "node:test";
import assert from "node:assert/strict";
import { TcpTracker, TCP_CT_FLAG, TCP_STATE } from "../../src/conntrack/tcp.js";
import { CT_STATE, L4_VERDICT } from "../../src/conntrack/constants.js";
import { FakeConntrack, tcp, type Host } from "./fake-ctx.js";

const C: Host = 0;
const S: Host = 1;
const c = 1000;
const s = 50_000;

function conn(sysctl: Partial<SysctlValues> = {}): FakeConntrack {
  return new FakeConntrack((n) => new TcpTracker(n), { sysctl: { nf_conntrack_log_invalid: 6, ...sysctl } });
}

function t(ct: FakeConntrack): TcpTracker {
  const t = ct.tracker;
  assert.ok(t instanceof TcpTracker);
  return t;
}

/**
 * Handshake without options and small windows. Afterwards:
 * client seen[0]: td_end 1001, td_maxend 3001, td_maxwin 1000;
 * server seen[1]: td_end 50001, td_maxend 51001, td_maxwin 2000.
 */
function small(sysctl: Partial<SysctlValues> = {}): FakeConntrack {
  const ct = conn(sysctl);
  ct.send(C, tcp({ flags: "S", seq: c, win: 1000 }));
  ct.send(S, tcp({ flags: "S.", seq: s, ack: c + 1, win: 2000 }));
  ct.send(C, tcp({ flags: ".", seq: c + 1, ack: s + 1, win: 1000 }));
  assert.equal(ct.state(), "ESTABLISHED");
  return ct;
}

test("window data after a plain handshake", () => {
  const ct = small();
  assert.deepEqual(t(ct).seen(ct.slot, 0), {
    tdEnd: 1001,
    tdMaxEnd: 3001,
    tdMaxWin: 1000,
    tdMaxAck: 50001,
    tdScale: 0,
    flags: TCP_CT_FLAG.MAXACK_SET,
  });
  assert.deepEqual(t(ct).seen(ct.slot, 1), {
    tdEnd: 50001,
    tdMaxEnd: 51001,
    tdMaxWin: 2000,
    tdMaxAck: 1001,
    tdScale: 0,
    flags: TCP_CT_FLAG.MAXACK_SET,
  });
});

test("I: seq <= sender.td_maxend; just above with a small overshoot is IGNOREd and taken on", () => {
  const ok = small();
  assert.equal(ok.send(C, tcp({ flags: "P.", seq: 3001, ack: s + 1, win: 1000, len: 10 })).verdict, L4_VERDICT.ACCEPT);
  assert.equal(t(ok).seen(ok.slot, 1).tdMaxWin, 2010, "receiver.td_maxwin grows by the overshoot past td_maxend");

  const over = small();
  const refreshes = over.ctx.refreshes;
  const r = over.send(C, tcp({ flags: "P.", seq: 3002, ack: s + 1, win: 1000, len: 10 }));
  assert.equal(r.verdict, L4_VERDICT.ACCEPT, "IGNORE, not INVALID");
  assert.equal(over.ctx.refreshes, refreshes, "no refresh");
  assert.deepEqual(over.ctx.logs, ["12 bytes more than expected"]);
  const s0 = t(over).seen(over.slot, 0);
  assert.equal(s0.tdEnd, 3012);
  assert.equal(s0.flags & TCP_CT_FLAG.DATA_UNACKNOWLEDGED, TCP_CT_FLAG.DATA_UNACKNOWLEDGED);
  // The receiver acknowledging the overshooting data passes check III thanks to that.
  assert.equal(over.send(S, tcp({ flags: ".", seq: s + 1, ack: 3012, win: 2000 })).verdict, L4_VERDICT.ACCEPT);
  assert.equal(over.invalid, 0);

  const far = small();
  assert.equal(far.send(C, tcp({ flags: "P.", seq: 3002 + 5000, ack: s + 1, win: 1000, len: 10 })).ctState, CT_STATE.INVALID);
  assert.deepEqual(far.ctx.logs, ["SEQ is over upper bound 3002 (over the window of the receiver)"]);
});

test("III: sack <= receiver.td_end", () => {
  const ok = small();
  assert.equal(ok.send(C, tcp({ flags: ".", seq: 1001, ack: s + 1, win: 1000 })).verdict, L4_VERDICT.ACCEPT);
  const bad = small();
  assert.equal(bad.send(C, tcp({ flags: ".", seq: 1001, ack: s + 2, win: 1000 })).verdict, L4_VERDICT.INVALID);
  assert.deepEqual(bad.ctx.logs, ["ACK is over upper bound 50002 (ACKed data not seen yet)"]);
  assert.equal(bad.state(), "ESTABLISHED");
});

test("II: seq + len >= sender.td_end - receiver.td_maxwin (already ACKed data is IGNOREd)", () => {
  const bound = (1001 - 2000 - 1) >>> 0; // 4294966296
  const ok = small();
  assert.equal(ok.send(C, tcp({ flags: "P.", seq: (bound + 1 - 100) >>> 0, ack: s + 1, win: 1000, len: 100 })).verdict, L4_VERDICT.ACCEPT);
  assert.deepEqual(ok.ctx.logs, []);
  const old = small();
  const refreshes = old.ctx.refreshes;
  assert.equal(old.send(C, tcp({ flags: "P.", seq: (bound - 100) >>> 0, ack: s + 1, win: 1000, len: 100 })).verdict, L4_VERDICT.ACCEPT);
  assert.equal(old.ctx.refreshes, refreshes, "IGNORE: no refresh");
  assert.deepEqual(old.ctx.logs, [`SEQ is under lower bound ${bound} (already ACKed data retransmitted)`]);
  assert.equal(old.invalid, 0);
});

test("IV: sack >= receiver.td_end - MAXACKWINDOW(sender) (66000 below td_maxwin 66000)", () => {
  const ok = small();
  assert.equal(ok.send(C, tcp({ flags: ".", seq: 1001, ack: (s + 1 - 66000) >>> 0, win: 1000 })).verdict, L4_VERDICT.ACCEPT);
  assert.deepEqual(ok.ctx.logs, []);
  const late = small();
  const r = late.send(C, tcp({ flags: ".", seq: 1001, ack: (s + 1 - 66001) >>> 0, win: 1000 }));
  assert.equal(r.verdict, L4_VERDICT.ACCEPT, "IGNORE");
  assert.deepEqual(late.ctx.logs, [`ignored ACK under lower bound ${(s - 66000) >>> 0} (possible overly delayed)`]);
});

test("MAXACKWINDOW uses the sender's td_maxwin when larger than 66000", () => {
  const ct = conn();
  ct.send(C, tcp({ flags: "S", seq: c, win: 65535, wscale: 2 }));
  ct.send(S, tcp({ flags: "S.", seq: s, ack: c + 1, win: 65535, wscale: 2 }));
  ct.send(C, tcp({ flags: ".", seq: c + 1, ack: s + 1, win: 50000 })); // 200000 scaled
  assert.equal(t(ct).seen(ct.slot, 0).tdMaxWin, 200000);
  assert.equal(ct.send(C, tcp({ flags: ".", seq: c + 1, ack: (s + 1 - 200000) >>> 0, win: 50000 })).verdict, L4_VERDICT.ACCEPT);
  assert.deepEqual(ct.ctx.logs, []);
  ct.send(C, tcp({ flags: ".", seq: c + 1, ack: (s + 1 - 200001) >>> 0, win: 50000 }));
  assert.equal(ct.ctx.logs.length, 1);
});

test("be_liberal (sysctl) turns every window failure into ACCEPT, but not the state table or the RST check", () => {
  const ct = small({ nf_conntrack_tcp_be_liberal: 1 });
  const r1 = ct.send(C, tcp({ flags: "P.", seq: 3002 + 5000, ack: s + 1, win: 1000, len: 10 }));
  assert.equal(r1.verdict, L4_VERDICT.ACCEPT);
  // nf_tcp_log_invalid returns ACCEPT straight out of tcp_in_window: no window update.
  assert.equal(t(ct).seen(ct.slot, 0).tdEnd, 1001);
  assert.equal(ct.timeoutSeconds(), 432000, "but the entry is refreshed");
  assert.equal(ct.send(C, tcp({ flags: ".", seq: 1001, ack: s + 100, win: 1000 })).verdict, L4_VERDICT.ACCEPT);
  assert.deepEqual(ct.ctx.logs, [], "liberal acceptance is not logged");
  // RST before td_maxack: still "invalid rst".
  assert.equal(ct.send(S, tcp({ flags: "R", seq: s - 5, win: 0 })).ctState, CT_STATE.INVALID);
  assert.deepEqual(ct.ctx.logs, ["invalid rst"]);
  // sIV stays INVALID.
  assert.equal(ct.send(S, tcp({ flags: "S", seq: s, win: 1000 })).ctState, CT_STATE.INVALID);
});

test("per-connection BE_LIBERAL is looked up on the sender only", () => {
  const ct = small();
  t(ct).fromNetlink(ct.slot, { flagsReply: { flags: TCP_CT_FLAG.BE_LIBERAL, mask: TCP_CT_FLAG.BE_LIBERAL } });
  assert.equal(ct.send(C, tcp({ flags: ".", seq: 1001, ack: s + 2, win: 1000 })).verdict, L4_VERDICT.INVALID);
  assert.equal(ct.send(S, tcp({ flags: ".", seq: s + 1, ack: 1002, win: 2000 })).verdict, L4_VERDICT.ACCEPT);
});

test("ignore_invalid_rst: a RST before td_maxack is window-checked instead; in window and inexact it keeps ESTABLISHED (10 s)", () => {
  const strict = small();
  assert.equal(strict.send(C, tcp({ flags: "R", seq: 500, win: 0 })).ctState, CT_STATE.INVALID);
  assert.deepEqual(strict.ctx.logs, ["invalid rst"]);

  const lax = small({ nf_conntrack_tcp_ignore_invalid_rst: 1 });
  assert.equal(lax.send(C, tcp({ flags: "R", seq: 500, win: 0 })).verdict, L4_VERDICT.ACCEPT);
  assert.equal(lax.state(), "ESTABLISHED");
  assert.equal(lax.timeoutSeconds(), 10, "index RST always selects the CLOSE timeout");
});

test("RST: exact td_maxack closes; a RST right after own data (train) closes; inexact in window keeps the state", () => {
  const exact = small();
  exact.send(C, tcp({ flags: "R", seq: 1001, win: 0 }));
  assert.equal(exact.state(), "CLOSE");

  const train = small();
  train.send(C, tcp({ flags: "P.", seq: 1001, ack: s + 1, win: 1000, len: 19 }));
  train.send(C, tcp({ flags: "R", seq: 1020, win: 0 }));
  assert.equal(train.state(), "CLOSE");

  const inexact = small();
  inexact.send(C, tcp({ flags: "P.", seq: 1001, ack: s + 1, win: 1000, len: 19 }));
  inexact.send(S, tcp({ flags: ".", seq: s + 1, ack: 1010, win: 2000 })); // partial ack: td_maxack 1010
  assert.equal(inexact.send(C, tcp({ flags: "R", seq: 1015, win: 0 })).verdict, L4_VERDICT.ACCEPT);
  assert.equal(inexact.state(), "ESTABLISHED");
  assert.equal(inexact.invalid, 0);
});

test("RST|ACK with ack 0 (broken stacks) and RST without ACK use receiver.td_end as ack", () => {
  for (const flags of ["R.", "R"]) {
    const ct = conn();
    const bigS = 3_000_000_000;
    ct.send(C, tcp({ flags: "S", seq: c, win: 1000 }));
    ct.send(S, tcp({ flags: "S.", seq: bigS, ack: c + 1, win: 2000 }));
    ct.send(C, tcp({ flags: ".", seq: c + 1, ack: bigS + 1, win: 1000 }));
    assert.equal(ct.send(C, tcp({ flags, seq: c + 1, ack: 0, win: 0 })).verdict, L4_VERDICT.ACCEPT, flags);
    assert.equal(ct.state(), "CLOSE");
  }
  // A plain ACK with ack 0 gets no such help.
  const ct = conn();
  ct.send(C, tcp({ flags: "S", seq: c, win: 1000 }));
  ct.send(S, tcp({ flags: "S.", seq: 3_000_000_000, ack: c + 1, win: 2000 }));
  assert.equal(ct.send(C, tcp({ flags: ".", seq: c + 1, ack: 0, win: 1000 })).verdict, L4_VERDICT.INVALID);
});

test("window scaling: both sides must send the option; shifts capped at 14; SYN windows never scaled", () => {
  const both = conn();
  both.send(C, tcp({ flags: "S", seq: c, win: 64240, wscale: 7 }));
  assert.equal(t(both).seen(both.slot, 0).tdMaxWin, 64240);
  both.send(S, tcp({ flags: "S.", seq: s, ack: c + 1, win: 65160, wscale: 20 }));
  assert.equal(t(both).scale(both.slot, 0), 7);
  assert.equal(t(both).scale(both.slot, 1), 14);
  both.send(C, tcp({ flags: ".", seq: c + 1, ack: s + 1, win: 502 }));
  assert.equal(t(both).seen(both.slot, 0).tdMaxWin, 502 << 7);
  assert.equal(t(both).seen(both.slot, 1).tdMaxEnd, s + 1 + (502 << 7));

  const clientOnly = conn();
  clientOnly.send(C, tcp({ flags: "S", seq: c, win: 64240, wscale: 7 }));
  clientOnly.send(S, tcp({ flags: "S.", seq: s, ack: c + 1, win: 65160, mss: true }));
  assert.equal(t(clientOnly).scale(clientOnly.slot, 0), 0);
  assert.equal(t(clientOnly).scale(clientOnly.slot, 1), 0);
  clientOnly.send(C, tcp({ flags: ".", seq: c + 1, ack: s + 1, win: 502 }));
  assert.equal(t(clientOnly).seen(clientOnly.slot, 0).tdMaxWin, 64240);

  const serverOnly = conn();
  serverOnly.send(C, tcp({ flags: "S", seq: c, win: 64240, mss: true }));
  serverOnly.send(S, tcp({ flags: "S.", seq: s, ack: c + 1, win: 65160, wscale: 7 }));
  assert.equal(t(serverOnly).scale(serverOnly.slot, 1), 0);
  assert.equal(t(serverOnly).flags(serverOnly.slot, 1) & TCP_CT_FLAG.WINDOW_SCALE, TCP_CT_FLAG.WINDOW_SCALE);
});

test("a SYN with a higher ISN in SYN_SENT re-initialises the sender (options may change)", () => {
  const ct = conn();
  ct.send(C, tcp({ flags: "S", seq: c, win: 64240, wscale: 7, sackPerm: true }));
  ct.send(C, tcp({ flags: "S", seq: c + 5000, win: 29200, wscale: 3 }));
  const s0 = t(ct).seen(ct.slot, 0);
  assert.equal(s0.tdEnd, c + 5001);
  assert.equal(s0.tdMaxWin, 29200);
  assert.equal(s0.tdScale, 3);
  assert.equal(s0.flags, TCP_CT_FLAG.WINDOW_SCALE);
  // A SYN without options keeps the old option state (tcp_options returns early).
  ct.send(C, tcp({ flags: "S", seq: c + 9000, win: 100 }));
  assert.equal(t(ct).seen(ct.slot, 0).tdScale, 3);
});

test("SACK right edge counts only when the receiver sent SACK_PERM", () => {
  const mk = (clientSack: boolean, serverSack: boolean): FakeConntrack => {
    const ct = conn();
    ct.send(C, tcp({ flags: "S", seq: c, win: 1000, sackPerm: clientSack }));
    ct.send(S, tcp({ flags: "S.", seq: s, ack: c + 1, win: 2000, sackPerm: serverSack }));
    ct.send(C, tcp({ flags: ".", seq: c + 1, ack: s + 1, win: 1000 }));
    ct.send(S, tcp({ flags: "P.", seq: s + 1, ack: c + 1, win: 2000, len: 500 }));
    return ct;
  };
  // Client SACKs beyond what the server sent (server td_end = s + 501).
  const honoured = mk(false, true);
  assert.equal(honoured.send(C, tcp({ flags: ".", seq: c + 1, ack: s + 1, win: 1000, sack: [s + 600] })).verdict, L4_VERDICT.INVALID);
  assert.deepEqual(honoured.ctx.logs, [`ACK is over upper bound ${s + 502} (ACKed data not seen yet)`]);
  const ignored = mk(true, false);
  assert.equal(ignored.send(C, tcp({ flags: ".", seq: c + 1, ack: s + 1, win: 1000, sack: [s + 600] })).verdict, L4_VERDICT.ACCEPT);
  // A valid SACK block widens td_maxwin by sack - ack, and the highest of several edges counts.
  const wide = mk(false, true);
  assert.equal(wide.send(C, tcp({ flags: ".", seq: c + 1, ack: s + 1, win: 1000, sack: [s + 300, s + 501, s + 200] })).verdict, L4_VERDICT.ACCEPT);
  assert.equal(t(wide).seen(wide.slot, 0).tdMaxWin, 1000 + 500);
  assert.equal(t(wide).seen(wide.slot, 1).tdMaxEnd, s + 501 + 1000);
});

test("keep-alive reply after window-tracking reset: receiver.td_end + 1 is accepted (check III)", () => {
  const ct = small();
  ct.send(C, tcp({ flags: "P.", seq: 1001, ack: s + 1, win: 1000, len: 99 }));
  ct.send(S, tcp({ flags: ".", seq: s + 1, ack: 1100, win: 2000 }));
  t(ct).fixup(ct.slot);
  // Keep-alive probe: one byte below snd_nxt.
  assert.equal(ct.send(C, tcp({ flags: ".", seq: 1099, ack: s + 1, win: 1000 })).verdict, L4_VERDICT.ACCEPT);
  assert.equal(t(ct).seen(ct.slot, 0).tdEnd, 1099);
  assert.equal(t(ct).seen(ct.slot, 1).tdEnd, s + 1, "receiver uninitialised: td_end = sack");
  assert.equal(ct.send(S, tcp({ flags: ".", seq: s + 1, ack: 1100, win: 2000 })).verdict, L4_VERDICT.ACCEPT);
  assert.equal(t(ct).seen(ct.slot, 0).tdEnd, 1100, "bumped by one");
  // Without the keep-alive rule the same ack + 1 is over the upper bound.
  assert.equal(ct.send(S, tcp({ flags: ".", seq: s + 1, ack: 1102, win: 2000 })).verdict, L4_VERDICT.INVALID);
});

test("retransmission counter: the 4th identical ACK (retrans = max_retrans) selects the 300 s timeout", () => {
  const ct = small();
  const ack = (): number => ct.send(S, tcp({ flags: ".", seq: s + 1, ack: 1001, win: 2000 })).verdict;
  ack();
  ack();
  ack();
  assert.equal(t(ct).retrans(ct.slot), 2);
  assert.equal(ct.timeoutSeconds(), 432000);
  ack();
  assert.equal(t(ct).retrans(ct.slot), 3);
  assert.equal(ct.timeoutSeconds(), 300);
  // Anything else resets it.
  ct.send(C, tcp({ flags: ".", seq: 1001, ack: s + 1, win: 1000 }));
  assert.equal(t(ct).retrans(ct.slot), 0);
  assert.equal(ct.timeoutSeconds(), 432000);
  // The counter is a u8, as in the kernel.
  for (let i = 0; i < 257; i++) ack();
  assert.equal(t(ct).retrans(ct.slot), 0);
  assert.equal(ct.timeoutSeconds(), 432000);
});

test("max_retrans sysctl, and RETRANS only when it is shorter than the state's timeout", () => {
  const ct = small({ nf_conntrack_tcp_max_retrans: 0 });
  ct.send(S, tcp({ flags: ".", seq: s + 1, ack: 1001, win: 2000 }));
  assert.equal(ct.timeoutSeconds(), 300);
  ct.send(S, tcp({ flags: "F.", seq: s + 1, ack: 1001, win: 2000 }));
  assert.equal(ct.timeoutSeconds(), 120, "FIN_WAIT 120 s < RETRANS 300 s");
});

test("zero window: last_win == 0 selects RETRANS (300 s) for ESTABLISHED", () => {
  const ct = small();
  ct.send(S, tcp({ flags: ".", seq: s + 1, ack: 1001, win: 0 }));
  assert.equal(ct.timeoutSeconds(), 300);
  ct.send(S, tcp({ flags: ".", seq: s + 1, ack: 1001, win: 2000 }));
  assert.equal(ct.timeoutSeconds(), 432000);
});

test("unacknowledged data: 300 s while either side has DATA_UNACKNOWLEDGED", () => {
  const ct = small();
  ct.send(S, tcp({ flags: "P.", seq: s + 1, ack: 1001, win: 2000, len: 10 }));
  assert.equal(ct.timeoutSeconds(), 300);
  ct.send(C, tcp({ flags: "P.", seq: 1001, ack: s + 11, win: 1000, len: 10 }));
  assert.equal(ct.timeoutSeconds(), 300, "client data now unacked");
  ct.send(S, tcp({ flags: ".", seq: s + 11, ack: 1011, win: 2000 }));
  assert.equal(ct.timeoutSeconds(), 432000);
});

test("custom timeouts come from the sysctls (ms)", () => {
  const ct = conn({ nf_conntrack_tcp_timeout_syn_sent: 7_000, nf_conntrack_tcp_timeout_syn_recv: 8_000, nf_conntrack_tcp_timeout_established: 9_000 });
  ct.send(C, tcp({ flags: "S", seq: c, win: 1000 }));
  assert.equal(ct.timeoutSeconds(), 7);
  ct.send(S, tcp({ flags: "S.", seq: s, ack: c + 1, win: 2000 }));
  assert.equal(ct.timeoutSeconds(), 8);
  ct.send(C, tcp({ flags: ".", seq: c + 1, ack: s + 1, win: 1000 }));
  assert.equal(ct.timeoutSeconds(), 9);
  // SYN_SENT2 has no sysctl: 120 s.
  const so = conn({ nf_conntrack_tcp_timeout_syn_sent: 7_000 });
  so.send(C, tcp({ flags: "S", seq: c, win: 1000 }));
  so.send(S, tcp({ flags: "S", seq: s, win: 1000 }));
  assert.equal(t(so).state(so.slot), TCP_STATE.SYN_SENT2);
  assert.equal(so.timeoutSeconds(), 7, "a SYN before SEEN_REPLY in SYN_SENT does not refresh");
  so.send(C, tcp({ flags: "S", seq: c, win: 1000 }));
  assert.equal(t(so).state(so.slot), TCP_STATE.SYN_SENT2);
  assert.equal(so.timeoutSeconds(), 120);
});

test("a zero window moves the receiver's td_maxend to sack + 1 (room for a window probe)", () => {
  const ct = small();
  ct.send(C, tcp({ flags: "P.", seq: 1001, ack: s + 1, win: 1000, len: 2000 }));
  ct.send(S, tcp({ flags: ".", seq: s + 1, ack: 3001, win: 0 }));
  assert.equal(t(ct).seen(ct.slot, 0).tdMaxEnd, 3002);
  assert.equal(ct.send(C, tcp({ flags: "P.", seq: 3001, ack: s + 1, win: 1000, len: 1 })).verdict, L4_VERDICT.ACCEPT);
});

test("RST with seq 0 answering a SYN in SYN_SENT takes the sender's td_end as seq", () => {
  const ct = conn();
  ct.send(C, tcp({ flags: "S", seq: c, win: 1000 }));
  // A bogus SYN/ACK initialises the server side (ISN 3e9) but is INVALID.
  assert.equal(ct.send(S, tcp({ flags: "S.", seq: 3_000_000_000, ack: c + 100, win: 2000 })).verdict, L4_VERDICT.INVALID);
  assert.equal(ct.send(S, tcp({ flags: "R.", seq: 0, ack: c + 1, win: 0 })).verdict, L4_VERDICT.ACCEPT);
  assert.equal(ct.exists, false, "killed: no reply seen");
});

test("RST with seq 0 outside ESTABLISHED skips the td_maxack check (answers a SYN we let through)", () => {
  const ct = conn();
  ct.send(C, tcp({ flags: "S", seq: c, win: 1000 }));
  ct.send(S, tcp({ flags: "S.", seq: s, ack: c + 1, win: 2000 }));
  assert.equal(ct.state(), "SYN_RECV");
  assert.equal(ct.send(C, tcp({ flags: "R", seq: 0, win: 0 })).verdict, L4_VERDICT.ACCEPT);
  assert.equal(ct.state(), "CLOSE");
  assert.equal(ct.invalid, 0);
});

test("RST answering a SYN we ignored (ack_seq == its end) skips the window check", () => {
  const ct = small();
  ct.send(C, tcp({ flags: "S", seq: 2_000_000_000, win: 1000 }));
  assert.equal(ct.state(), "ESTABLISHED");
  assert.equal(ct.send(S, tcp({ flags: "R.", seq: 0, ack: 2_000_000_001, win: 0 })).verdict, L4_VERDICT.ACCEPT);
  assert.equal(ct.state(), "CLOSE");
  // Acking anything else, the same RST goes through tcp_in_window and fails check III.
  const other = small();
  other.send(C, tcp({ flags: "S", seq: 2_000_000_000, win: 1000 }));
  assert.equal(other.send(S, tcp({ flags: "R.", seq: s + 1, ack: 2_000_000_002, win: 0 })).verdict, L4_VERDICT.INVALID);
});

test("nf_tcp_handle_invalid keeps timeouts under 120 s even when UNACK is shorter", () => {
  const ct = small({ nf_conntrack_tcp_timeout_established: 100_000, nf_conntrack_tcp_timeout_unacknowledged: 50_000 });
  ct.send(S, tcp({ flags: "F.", seq: s + 900_000_000, ack: 1001, win: 2000 }));
  ct.send(C, tcp({ flags: "F.", seq: 900_000_000, ack: s + 1, win: 1000 }));
  assert.equal(ct.invalid, 2);
  assert.equal(ct.timeoutSeconds(), 100);
  // With more than 120 s left it is lowered to UNACK.
  const long = small({ nf_conntrack_tcp_timeout_established: 130_000, nf_conntrack_tcp_timeout_unacknowledged: 50_000 });
  long.send(S, tcp({ flags: "F.", seq: s + 900_000_000, ack: 1001, win: 2000 }));
  long.send(C, tcp({ flags: "F.", seq: 900_000_000, ack: s + 1, win: 1000 }));
  assert.equal(long.timeoutSeconds(), 50);
});
