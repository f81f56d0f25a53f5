/** Property tests: arbitrary packet streams never break the tracker; well-formed TCP is never INVALID. */
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { TcpTracker, TCP_STATE, TCP_STATE_NAMES } from "../../src/conntrack/tcp.js";
import { IPS, L4_VERDICT } from "../../src/conntrack/constants.js";
import { PacketView } from "../../src/packet/view.js";
import { FakeConntrack, tcp, type Host } from "./fake-ctx.js";

const BASE: readonly [number, number] = [1000, 0xffffffff - 20_000]; // the server's numbers wrap

const arbPacket = fc.record({
  host: fc.constantFrom<Host>(0, 1),
  flags: fc.oneof(fc.integer({ min: 0, max: 255 }), fc.constantFrom(0x02, 0x12, 0x10, 0x18, 0x11, 0x04, 0x14, 0x19)),
  seqDelta: fc.oneof(fc.integer({ min: -70_000, max: 140_000 }), fc.integer({ min: 0, max: 0xffffffff })),
  ackDelta: fc.oneof(fc.integer({ min: -70_000, max: 140_000 }), fc.constant(0), fc.integer({ min: 0, max: 0xffffffff })),
  win: fc.oneof(fc.integer({ min: 0, max: 65535 }), fc.constant(0)),
  len: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 3000 })),
  wscale: fc.option(fc.integer({ min: 0, max: 20 }), { nil: undefined }),
  sackPerm: fc.boolean(),
  sack: fc.array(fc.integer({ min: -5000, max: 80_000 }), { maxLength: 4 }),
  advance: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 400_000 })),
});

const arbSysctl = fc.record({
  nf_conntrack_tcp_be_liberal: fc.constantFrom(0, 1),
  nf_conntrack_tcp_loose: fc.constantFrom(0, 1),
  nf_conntrack_tcp_ignore_invalid_rst: fc.constantFrom(0, 1),
  nf_conntrack_tcp_max_retrans: fc.integer({ min: 0, max: 5 }),
  nf_conntrack_log_invalid: fc.constantFrom(0, 6),
});

test("random packet streams: never throw, states stay valid, ASSURED implies SEEN_REPLY", () => {
  fc.assert(
    fc.property(arbSysctl, fc.array(arbPacket, { minLength: 1, maxLength: 60 }), (sysctl, pkts) => {
      const ct = new FakeConntrack((n) => new TcpTracker(n), { sysctl });
      const t = ct.tracker;
      assert.ok(t instanceof TcpTracker);
      const view = new PacketView();
      for (const k of pkts) {
        ct.advance(k.advance);
        const other = (k.host ^ 1) as Host;
        tcp(
          {
            flags: "",
            seq: BASE[k.host] + k.seqDelta,
            ack: BASE[other] + k.ackDelta,
            win: k.win,
            len: k.len,
            ...(k.wscale === undefined ? {} : { wscale: k.wscale }),
            sackPerm: k.sackPerm,
            sack: k.sack.map((d) => BASE[other] + d),
          },
          view,
        );
        view.tcpFlags = k.flags;
        const r = ct.send(k.host, view);
        assert.ok(r.verdict === L4_VERDICT.ACCEPT || r.verdict === L4_VERDICT.INVALID, `verdict ${r.verdict}`);
        if (ct.exists) {
          const st = t.state(ct.slot);
          assert.ok(st >= TCP_STATE.SYN_SENT && st <= TCP_STATE.SYN_SENT2, `state ${st}`);
          assert.equal(t.stateText(ct.slot), `${TCP_STATE_NAMES[st]} `);
          assert.equal(t.canEarlyDrop(ct.slot), st >= TCP_STATE.FIN_WAIT && st <= TCP_STATE.CLOSE);
          assert.ok(ct.ctx.remaining(ct.slot) > 0);
          assert.ok(t.scale(ct.slot, 0) <= 14 && t.scale(ct.slot, 1) <= 14);
          if (ct.status & IPS.ASSURED) assert.ok(ct.status & IPS.SEEN_REPLY);
        }
      }
    }),
    { numRuns: 400 },
  );
});

/** One side of a simulated TCP endpoint. */
interface Side {
  isn: number;
  sndNxt: number; // bytes sent (relative)
  rcvAcked: number; // bytes of the peer acknowledged (relative)
  win: number; // raw window advertised
  wscale: number;
  peerRight: number; // peer's acked + peer's scaled window (relative right edge of what we may send)
}

test("well-formed TCP (sends within the peer's window, cumulative acks) is never INVALID", () => {
  const arbStep = fc.record({
    host: fc.constantFrom<Host>(0, 1),
    len: fc.integer({ min: 0, max: 40_000 }),
    ackFrac: fc.double({ min: 0, max: 1, noNaN: true }),
    win: fc.integer({ min: 0, max: 65535 }),
  });
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 0xffffffff }),
      fc.integer({ min: 0, max: 0xffffffff }),
      fc.integer({ min: 0, max: 14 }),
      fc.integer({ min: 0, max: 14 }),
      fc.array(arbStep, { minLength: 1, maxLength: 80 }),
      (isnA, isnB, wsA, wsB, steps) => {
        const ct = new FakeConntrack((n) => new TcpTracker(n));
        const sides: [Side, Side] = [
          { isn: isnA, sndNxt: 0, rcvAcked: 0, win: 65535, wscale: wsA, peerRight: 0 },
          { isn: isnB, sndNxt: 0, rcvAcked: 0, win: 65535, wscale: wsB, peerRight: 0 },
        ];
        const [a, b] = sides;
        const view = new PacketView();
        ct.send(0, tcp({ flags: "S", seq: a.isn, win: a.win, wscale: a.wscale }, view));
        ct.send(1, tcp({ flags: "S.", seq: b.isn, ack: a.isn + 1, win: b.win, wscale: b.wscale }, view));
        ct.send(0, tcp({ flags: ".", seq: a.isn + 1, ack: b.isn + 1, win: a.win }, view));
        // A SYN's window is never scaled; the final handshake ACK's is.
        a.peerRight = b.win;
        b.peerRight = a.win << a.wscale;
        for (const st of steps) {
          const me = sides[st.host];
          const peer = sides[st.host ^ 1]!;
          const len = Math.max(0, Math.min(st.len, me.peerRight - me.sndNxt));
          // Cumulative ack of some of what the peer has sent.
          const acked = me.rcvAcked + Math.floor((peer.sndNxt - me.rcvAcked) * st.ackFrac);
          me.rcvAcked = acked;
          me.win = st.win;
          tcp(
            {
              flags: len > 0 ? "P." : ".",
              seq: me.isn + 1 + me.sndNxt,
              ack: peer.isn + 1 + acked,
              win: me.win,
              len,
            },
            view,
          );
          const r = ct.send(st.host, view);
          assert.equal(r.verdict, L4_VERDICT.ACCEPT);
          me.sndNxt += len;
          // The peer may now send up to what we acked plus our window (never moving its edge back).
          peer.peerRight = Math.max(peer.peerRight, acked + (me.win << me.wscale));
        }
        assert.equal(ct.invalid, 0);
        assert.equal(ct.state(), "ESTABLISHED");
        assert.ok(ct.status & IPS.ASSURED);
      },
    ),
    { numRuns: 300 },
  );
});
