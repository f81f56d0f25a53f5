/**
 * Every cell of tcp_conntracks[2][6][10] (nf_conntrack_proto_tcp.c), driven
 * through TcpTracker.packet(). The expected table is typed in here again from
 * the kernel source, independently of src/conntrack/tcp.ts.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { TcpTracker, TCP_CT_FLAG, TCP_STATE, tcpStateName, tcpTransition } from "../../src/conntrack/tcp.js";
import { CTINFO, IPS, L4_VERDICT } from "../../src/conntrack/constants.js";
import { FakeCtx, tcp } from "./fake-ctx.js";

const COLS = ["sNO", "sSS", "sSR", "sES", "sFW", "sCW", "sLA", "sTW", "sCL", "sS2"];
const CODE: Record<string, number> = {
  sNO: 0,
  sSS: 1,
  sSR: 2,
  sES: 3,
  sFW: 4,
  sCW: 5,
  sLA: 6,
  sTW: 7,
  sCL: 8,
  sS2: 9,
  sIV: 10,
  sIG: 11,
};

// prettier-ignore
const KERNEL_TABLE: Record<"0" | "1", Record<string, string>> = {
  0: {
    syn:    "sSS sSS sIG sIG sIG sIG sIG sSS sSS sS2",
    synack: "sIV sIV sSR sIV sIV sIV sIV sIV sIV sSR",
    fin:    "sIV sIV sFW sFW sLA sLA sLA sTW sCL sIV",
    ack:    "sES sIV sES sES sCW sCW sTW sTW sCL sIV",
    rst:    "sIV sCL sCL sCL sCL sCL sCL sCL sCL sCL",
    none:   "sIV sIV sIV sIV sIV sIV sIV sIV sIV sIV",
  },
  1: {
    syn:    "sIV sS2 sIV sIV sIV sIV sIV sSS sIV sS2",
    synack: "sIV sSR sIG sIG sIG sIG sIG sIG sIG sSR",
    fin:    "sIV sIV sFW sFW sLA sLA sLA sTW sCL sIV",
    ack:    "sIV sIG sSR sES sCW sCW sTW sTW sCL sIG",
    rst:    "sIV sCL sCL sCL sCL sCL sCL sCL sCL sCL",
    none:   "sIV sIV sIV sIV sIV sIV sIV sIV sIV sIV",
  },
};

const ROWS = ["syn", "synack", "fin", "ack", "rst", "none"] as const;
const PACKETS: Record<(typeof ROWS)[number], () => ReturnType<typeof tcp>> = {
  syn: () => tcp({ flags: "S", seq: 1000, win: 1000 }),
  synack: () => tcp({ flags: "S.", seq: 5000, ack: 1000, win: 1000 }),
  fin: () => tcp({ flags: "F.", seq: 1000, ack: 5000, win: 1000 }),
  ack: () => tcp({ flags: ".", seq: 1000, ack: 5000, win: 1000 }),
  rst: () => tcp({ flags: "R", seq: 1000, win: 0 }),
  none: () => tcp({ flags: "", seq: 1000, win: 1000 }),
};

const SLOT = 2;

/**
 * An entry in `old` state whose window checks can't fail: picked up from an
 * ACK (BE_LIBERAL and SACK_PERM on both sides), confirmed, a reply seen, and
 * the state then set as ctnetlink would.
 */
function entryIn(old: number, extraFlags = 0): { t: TcpTracker; ctx: FakeCtx } {
  const t = new TcpTracker(4);
  const ctx = new FakeCtx(4);
  assert.equal(t.init(ctx, SLOT, tcp({ flags: ".", seq: 1000, ack: 5000, win: 1000 })), true);
  ctx.confirmed[SLOT] = 1;
  ctx.status[SLOT] = IPS.CONFIRMED | IPS.SEEN_REPLY;
  ctx.expires[SLOT] = 1e9;
  t.fromNetlink(SLOT, {
    state: old,
    flagsOriginal: { flags: extraFlags, mask: extraFlags },
    flagsReply: { flags: extraFlags, mask: extraFlags },
  });
  return { t, ctx };
}

test("the tracker's own table equals the kernel's", () => {
  for (const dir of [0, 1] as const) {
    ROWS.forEach((row, index) => {
      const cells = KERNEL_TABLE[dir][row]!.split(" ");
      cells.forEach((cell, old) => assert.equal(tcpTransition(dir, index, old), CODE[cell], `${dir} ${row} ${COLS[old]}`));
    });
  }
});

for (const dir of [0, 1] as const) {
  ROWS.forEach((row) => {
    const cells = KERNEL_TABLE[dir][row]!.split(" ");
    cells.forEach((cell, old) => {
      const name = `${dir === 0 ? "ORIGINAL" : "REPLY"} ${row} in ${COLS[old]} -> ${cell}`;
      test(name, () => {
        const { t, ctx } = entryIn(old);
        const p = PACKETS[row]();
        const refreshes = ctx.refreshes;
        const verdict = t.packet(ctx, SLOT, p, dir, dir === 1 ? CTINFO.ESTABLISHED_REPLY : CTINFO.ESTABLISHED);
        const expected = CODE[cell]!;
        // sSS from TIME_WAIT/CLOSE without CLOSE_INIT or an own RST falls through to IGNORE.
        const ignored = expected === TCP_STATE.IGNORE || (expected === TCP_STATE.SYN_SENT && old >= TCP_STATE.TIME_WAIT);
        if (expected === TCP_STATE.MAX) {
          assert.equal(verdict, L4_VERDICT.INVALID);
          assert.equal(t.state(SLOT), old, "state unchanged");
          assert.equal(ctx.refreshes, refreshes, "no refresh");
        } else if (ignored) {
          assert.equal(verdict, L4_VERDICT.ACCEPT);
          assert.equal(t.state(SLOT), old, "state unchanged");
          assert.equal(ctx.refreshes, refreshes, "IGNORE does not refresh");
          assert.equal(ctx.cached[SLOT], 0, "no event");
        } else {
          assert.equal(verdict, L4_VERDICT.ACCEPT);
          assert.equal(tcpStateName(t.state(SLOT)), tcpStateName(expected));
          assert.equal(ctx.refreshes, refreshes + 1);
          if (row === "rst") assert.equal(ctx.lastRefresh, 10_000, "RST -> CLOSE timeout");
          assert.equal(ctx.killed.length, 0, "SEEN_REPLY set: a RST does not kill");
        }
      });
    });
  });
}

test("SYN in TIME_WAIT/CLOSE with CLOSE_INIT asks for a reopen (REPEAT) in both directions where the table says sSS", () => {
  for (const [dir, old] of [
    [0, TCP_STATE.TIME_WAIT],
    [0, TCP_STATE.CLOSE],
    [1, TCP_STATE.TIME_WAIT],
  ] as const) {
    const { t, ctx } = entryIn(old, TCP_CT_FLAG.CLOSE_INIT);
    const v = t.packet(ctx, SLOT, tcp({ flags: "S", seq: 9000 }), dir, CTINFO.ESTABLISHED);
    assert.equal(v, L4_VERDICT.REPEAT, `dir ${dir} old ${old}`);
    assert.equal(t.state(SLOT), old);
  }
  // REPLY SYN in CLOSE is sIV whatever the flags.
  const { t, ctx } = entryIn(TCP_STATE.CLOSE, TCP_CT_FLAG.CLOSE_INIT);
  assert.equal(t.packet(ctx, SLOT, tcp({ flags: "S", seq: 9000 }), 1, CTINFO.ESTABLISHED_REPLY), L4_VERDICT.INVALID);
});
