import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { SCTP_CHUNK, sctpInitChunk } from "../../src/packet/build.js";
import { CT_STATE, IPS } from "../../src/conntrack/constants.js";
import { SCTP_STATE, SctpTracker, sctpNewState } from "../../src/conntrack/sctp.js";
import { INVALID_REASON } from "../../src/conntrack/stats.js";
import { entryOf, firstEntry, rig, sctp } from "./helpers.js";
import { trackerEngine } from "../../src/conntrack/tracker.js";

const A = "10.0.0.1";
const B = "10.0.0.2";
const TAG_A = 0x11111111;
const TAG_B = 0x22222222;

const out = (vtag: number, chunks: Parameters<typeof sctp>[0]["chunks"], extra: Partial<Parameters<typeof sctp>[0]> = {}) =>
  sctp({ src: A, dst: B, sport: 5000, dport: 38412, vtag, chunks, ...extra });
const back = (vtag: number, chunks: Parameters<typeof sctp>[0]["chunks"]) => sctp({ src: B, dst: A, sport: 38412, dport: 5000, vtag, chunks });

describe("SCTP tracking (nf_conntrack_proto_sctp.c)", () => {
  it("follows the four-way handshake to ESTABLISHED [ASSURED] with the kernel's events", () => {
    const { tr, events } = rig();
    assert.equal(tr.process(out(0, [sctpInitChunk(TAG_A)])), CT_STATE.NEW);
    assert.equal(tr.process(back(TAG_A, [sctpInitChunk(TAG_B, { ack: true })])), CT_STATE.ESTABLISHED);
    assert.equal(tr.process(out(TAG_B, [{ type: SCTP_CHUNK.COOKIE_ECHO, data: 16 }])), CT_STATE.ESTABLISHED);
    assert.equal(tr.process(back(TAG_A, [{ type: SCTP_CHUNK.COOKIE_ACK }])), CT_STATE.ESTABLISHED);
    assert.deepEqual(events.lines, [
      "    [NEW] sctp     132 10 CLOSED src=10.0.0.1 dst=10.0.0.2 sport=5000 dport=38412 [UNREPLIED] src=10.0.0.2 dst=10.0.0.1 sport=38412 dport=5000",
      " [UPDATE] sctp     132 3 COOKIE_WAIT src=10.0.0.1 dst=10.0.0.2 sport=5000 dport=38412 src=10.0.0.2 dst=10.0.0.1 sport=38412 dport=5000",
      " [UPDATE] sctp     132 3 COOKIE_ECHOED src=10.0.0.1 dst=10.0.0.2 sport=5000 dport=38412 src=10.0.0.2 dst=10.0.0.1 sport=38412 dport=5000",
      " [UPDATE] sctp     132 210 ESTABLISHED src=10.0.0.1 dst=10.0.0.2 sport=5000 dport=38412 src=10.0.0.2 dst=10.0.0.1 sport=38412 dport=5000 [ASSURED]",
    ]);
    assert.deepEqual(tr.formatTable(), [
      "sctp     132 210 ESTABLISHED src=10.0.0.1 dst=10.0.0.2 sport=5000 dport=38412 src=10.0.0.2 dst=10.0.0.1 sport=38412 dport=5000 [ASSURED] mark=0 use=1",
    ]);
    const slot = firstEntry(tr).id;
    const sc = trackerEngine(tr).l4(132);
    assert.ok(sc instanceof SctpTracker);
    assert.equal(sc.vtagOf(slot, 0), TAG_B);
    assert.equal(sc.vtagOf(slot, 1), TAG_A);

    // Data must carry the receiver's tag.
    assert.equal(tr.process(out(TAG_B, [{ type: SCTP_CHUNK.DATA, data: 20 }])), CT_STATE.ESTABLISHED);
    assert.equal(tr.process(out(0xdead, [{ type: SCTP_CHUNK.DATA, data: 20 }])), CT_STATE.INVALID);
    assert.equal(tr.result.invalidReason, INVALID_REASON.STATE);

    // Graceful shutdown; SHUTDOWN_SENT may be evicted under pressure even though ASSURED.
    assert.equal(tr.process(out(TAG_B, [{ type: SCTP_CHUNK.SHUTDOWN, data: 4 }])), CT_STATE.ESTABLISHED);
    assert.equal(entryOf(tr, slot).stateName, "SHUTDOWN_SENT");
    assert.equal(sc.canEarlyDrop(slot), true);
    assert.equal(entryOf(tr, slot).timeoutSeconds, 3);
    tr.process(back(TAG_A, [{ type: SCTP_CHUNK.SHUTDOWN_ACK }]));
    assert.equal(entryOf(tr, slot).stateName, "SHUTDOWN_ACK_SENT");
    tr.process(out(TAG_B, [{ type: SCTP_CHUNK.SHUTDOWN_COMPLETE }]));
    assert.equal(entryOf(tr, slot).stateName, "CLOSED");
    assert.equal(entryOf(tr, slot).timeoutSeconds, 10);
  });

  it("refuses out-of-the-blue first packets (Sec 8.4) and a non-zero INIT vtag", () => {
    const { tr } = rig();
    assert.equal(tr.process(out(0, [{ type: SCTP_CHUNK.ABORT }])), CT_STATE.INVALID);
    assert.equal(tr.process(out(5, [{ type: SCTP_CHUNK.COOKIE_ACK }])), CT_STATE.INVALID);
    assert.equal(tr.process(out(5, [{ type: SCTP_CHUNK.DATA, data: 8 }])), CT_STATE.INVALID);
    assert.equal(tr.process(out(7, [sctpInitChunk(TAG_A)])), CT_STATE.INVALID);
    assert.equal(tr.stats.invalid, 4);
    assert.equal(tr.count, 0);
  });

  it("refuses malformed chunk lists (do_basic_checks)", () => {
    const { tr } = rig();
    // INIT must be alone.
    assert.equal(tr.process(out(0, [sctpInitChunk(TAG_A), { type: SCTP_CHUNK.DATA, data: 4 }])), CT_STATE.INVALID);
    // No chunk at all.
    assert.equal(tr.process(out(0, [])), CT_STATE.INVALID);
    assert.equal(tr.stats.invalid, 2);
  });

  it("checks the CRC32c at PRE_ROUTING", () => {
    const { tr } = rig();
    assert.equal(tr.process(out(0, [sctpInitChunk(TAG_A)], { checksum: "bad" })), CT_STATE.INVALID);
    assert.equal(tr.result.invalidReason, INVALID_REASON.BAD_CHECKSUM);
  });

  it("does not refresh the timeout on INIT retransmits of a CLOSED entry", () => {
    const { tr, clock } = rig();
    tr.process(out(0, [sctpInitChunk(TAG_A)]));
    const slot = firstEntry(tr).id;
    clock.tick(4000);
    assert.equal(tr.process(out(0, [sctpInitChunk(TAG_A)])), CT_STATE.NEW);
    assert.equal(entryOf(tr, slot).timeoutSeconds, 6);
  });

  it("tracks a secondary path from its HEARTBEAT and assures it on the HEARTBEAT_ACK", () => {
    const { tr } = rig();
    assert.equal(tr.process(out(TAG_B, [{ type: SCTP_CHUNK.HEARTBEAT, data: 8 }])), CT_STATE.NEW);
    const slot = firstEntry(tr).id;
    assert.equal(entryOf(tr, slot).stateName, "HEARTBEAT_SENT");
    assert.equal(tr.process(back(TAG_A, [{ type: SCTP_CHUNK.HEARTBEAT_ACK, data: 8 }])), CT_STATE.ESTABLISHED);
    assert.equal(entryOf(tr, slot).stateName, "ESTABLISHED");
    assert.equal(entryOf(tr, slot).status & IPS.ASSURED, IPS.ASSURED);
  });

  it("implements the transition table row by row", () => {
    assert.equal(sctpNewState(0, SCTP_STATE.NONE, SCTP_CHUNK.INIT), SCTP_STATE.CLOSED);
    assert.equal(sctpNewState(1, SCTP_STATE.NONE, SCTP_CHUNK.INIT), SCTP_STATE.MAX);
    assert.equal(sctpNewState(1, SCTP_STATE.CLOSED, SCTP_CHUNK.INIT_ACK), SCTP_STATE.COOKIE_WAIT);
    assert.equal(sctpNewState(1, SCTP_STATE.ESTABLISHED, SCTP_CHUNK.SHUTDOWN), SCTP_STATE.SHUTDOWN_RECD);
    assert.equal(sctpNewState(1, SCTP_STATE.COOKIE_ECHOED, SCTP_CHUNK.ERROR), SCTP_STATE.CLOSED);
    assert.equal(sctpNewState(0, SCTP_STATE.ESTABLISHED, SCTP_CHUNK.DATA), SCTP_STATE.ESTABLISHED);
    assert.equal(sctpNewState(1, SCTP_STATE.HEARTBEAT_SENT, SCTP_CHUNK.HEARTBEAT_ACK), SCTP_STATE.ESTABLISHED);
    assert.equal(sctpNewState(0, SCTP_STATE.SHUTDOWN_ACK_SENT, SCTP_CHUNK.SHUTDOWN_COMPLETE), SCTP_STATE.CLOSED);
    assert.equal(sctpNewState(0, SCTP_STATE.NONE, SCTP_CHUNK.SHUTDOWN_ACK), SCTP_STATE.SHUTDOWN_ACK_SENT);
  });
});
