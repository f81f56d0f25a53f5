/**
 * A walk over every cell of the kernel's TCP transition table
 * (`tcp_conntracks[dir][index][old_state]` in nf_conntrack_proto_tcp.c):
 * one scenario per old state, holding one connection per (packet class,
 * direction). Each connection is driven into the old state with ordinary,
 * in-window segments, then receives one probe, so the cell — including the
 * sIV (invalid) and sIG (ignore) cells — decides what happens.
 */
import { TcpConv } from "./dsl.js";
import type { Side } from "./dsl.js";
import type { Scenario, ScenarioContext } from "./types.js";

/** Old states in the kernel's column order, with the segments that reach them. */
const STATES: ReadonlyArray<{ code: string; name: string; reach: (c: TcpConv) => void }> = [
  { code: "NO", name: "NONE (first packet)", reach: () => {} },
  { code: "SS", name: "SYN_SENT", reach: (c) => c.syn("c") },
  { code: "SR", name: "SYN_RECV", reach: (c) => c.syn("c").synack("s") },
  { code: "ES", name: "ESTABLISHED", reach: (c) => c.handshake() },
  { code: "FW", name: "FIN_WAIT", reach: (c) => c.handshake().fin("c") },
  { code: "CW", name: "CLOSE_WAIT", reach: (c) => c.handshake().fin("c").ack("s") },
  { code: "LA", name: "LAST_ACK", reach: (c) => c.handshake().fin("c").ack("s").fin("s") },
  { code: "TW", name: "TIME_WAIT", reach: (c) => c.handshake().fin("c").ack("s").fin("s").ack("c") },
  // An exact RST after the handshake: the reply has been seen, so CLOSE, not destroy.
  { code: "CL", name: "CLOSE", reach: (c) => c.handshake().rst("c") },
  // Simultaneous open: the server sends a bare SYN of its own.
  { code: "S2", name: "SYN_SENT2", reach: (c) => c.syn("c").syn("s") },
];

/** Packet classes in the kernel's row order (get_conntrack_index), plus "none" (no flags). */
const PROBES: ReadonlyArray<{ code: string; send: (c: TcpConv, side: Side, state: string) => void }> = [
  {
    code: "syn",
    send: (c, side, state) => {
      // During the handshake a SYN from a side that already sent one is a
      // retransmission; otherwise it is a new connection attempt with a fresh ISN.
      if (c.synSent[side] && (state === "SS" || state === "SR" || state === "S2")) c.syn(side, { noAdvance: true });
      else c.syn(side, { seq: (c.next[side] + 100_000) >>> 0, noAdvance: true });
    },
  },
  {
    code: "synack",
    send: (c, side) => {
      const seq = c.synSent[side] ? c.isn[side] : c.next[side];
      c.synack(side, { seq, noAdvance: true });
    },
  },
  { code: "fin", send: (c, side) => c.fin(side) },
  { code: "ack", send: (c, side) => c.ack(side) },
  { code: "rst", send: (c, side) => c.rstack(side) },
  { code: "none", send: (c, side) => c.seg(side, 0) },
];

function tableScenario(stateIndex: number): Scenario {
  const st = STATES[stateIndex];
  if (st === undefined) throw new RangeError(`No TCP state at index "${stateIndex}"`);
  const sides: Side[] = st.code === "NO" ? ["c"] : ["c", "s"];
  return {
    name: `tcp-table-${st.code.toLowerCase()}`,
    description: `TCP state table column s${st.code} (${st.name}): every packet class (syn, synack, fin, ack, rst, no flags) in ${sides.length === 1 ? "the original direction" : "both directions"}, one connection per cell`,
    expected:
      "Each connection ends in the state the kernel's tcp_conntracks table gives for the probe; sIV cells count the probe invalid, sIG cells leave the state and timeout unchanged, a SYN in TIME_WAIT/CLOSE after a FIN or RST reopens (DESTROY + NEW)",
    tags: ["tcp", "table"],
    build(ctx: ScenarioContext) {
      PROBES.forEach((probe, pi) => {
        sides.forEach((side, di) => {
          const c = new TcpConv(ctx, {
            client: ctx.v4(1),
            server: ctx.v4(2),
            cport: 30000 + pi * 2 + di,
            sport: 80,
            isnC: 1_000_000 + pi * 10_000,
            isnS: 5_000_000 + pi * 10_000,
          });
          st.reach(c);
          probe.send(c, side, st.code);
        });
      });
    },
  };
}

export const tcpTableScenarios: Scenario[] = STATES.map((_, i) => tableScenario(i));
