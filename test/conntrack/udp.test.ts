import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { CT_STATE, CTINFO, HOOK, IPS } from "../../src/conntrack/constants.js";
import { INVALID_REASON } from "../../src/conntrack/stats.js";
import { entryIds, entryOf, firstEntry, rig, udp, udplite } from "./helpers.js";

const A = "10.0.0.1";
const B = "10.0.0.2";

describe("UDP tracking (nf_conntrack_proto_udp.c)", () => {
  it("prints the kernel's -E lines for a flow answered within 2 s, then assured after 2 s", () => {
    const { tr, clock, events } = rig();
    assert.equal(tr.process(udp({ src: A, dst: B, sport: 41000, dport: 5353 })), CT_STATE.NEW);
    assert.equal(tr.result.ctinfo, CTINFO.NEW);
    clock.tick(1200);
    assert.equal(tr.process(udp({ src: B, dst: A, sport: 5353, dport: 41000 })), CT_STATE.ESTABLISHED);
    assert.equal(tr.result.ctinfo, CTINFO.ESTABLISHED_REPLY);
    clock.tick(1200);
    // The event goes out a jiffy after the refresh, as on the live kernel: 119.
    assert.equal(tr.in(udp({ src: A, dst: B, sport: 41000, dport: 5353 })), CT_STATE.ESTABLISHED);
    tr.advance(clock.t + 4);
    assert.equal(tr.confirm(), true);
    assert.deepEqual(events.lines, [
      "    [NEW] udp      17 30 src=10.0.0.1 dst=10.0.0.2 sport=41000 dport=5353 [UNREPLIED] src=10.0.0.2 dst=10.0.0.1 sport=5353 dport=41000",
      " [UPDATE] udp      17 30 src=10.0.0.1 dst=10.0.0.2 sport=41000 dport=5353 src=10.0.0.2 dst=10.0.0.1 sport=5353 dport=41000",
      " [UPDATE] udp      17 119 src=10.0.0.1 dst=10.0.0.2 sport=41000 dport=5353 src=10.0.0.2 dst=10.0.0.1 sport=5353 dport=41000 [ASSURED]",
    ]);
    const slot = firstEntry(tr).id;
    assert.equal(entryOf(tr, slot).status & (IPS.ASSURED | IPS.SEEN_REPLY | IPS.CONFIRMED), IPS.ASSURED | IPS.SEEN_REPLY | IPS.CONFIRMED);
    // Expiry 120 s later: DESTROY without a timeout.
    tr.advance(clock.t + 120_004);
    assert.equal(
      events.lines[3],
      "[DESTROY] udp      17 src=10.0.0.1 dst=10.0.0.2 sport=41000 dport=5353 src=10.0.0.2 dst=10.0.0.1 sport=5353 dport=41000 [ASSURED]",
    );
    assert.equal(tr.count, 0);
  });

  it("stays unassured at 30 s while the flow is younger than 2 s (DNS style)", () => {
    const { tr, clock } = rig();
    tr.process(udp({ src: A, dst: B, sport: 41001, dport: 5354 }));
    clock.tick(10);
    tr.process(udp({ src: B, dst: A, sport: 5354, dport: 41001 }));
    clock.tick(1000);
    tr.process(udp({ src: A, dst: B, sport: 41001, dport: 5354 }));
    clock.tick(990);
    // Exactly 2 s after creation: time_after(jiffies, stream_ts) is still false.
    tr.process(udp({ src: A, dst: B, sport: 41001, dport: 5354 }));
    const slot = firstEntry(tr).id;
    assert.equal(entryOf(tr, slot).status & IPS.ASSURED, 0);
    assert.equal(entryOf(tr, slot).timeoutSeconds, 30);
    clock.tick(4);
    tr.process(udp({ src: A, dst: B, sport: 41001, dport: 5354 }));
    assert.equal(entryOf(tr, slot).status & IPS.ASSURED, IPS.ASSURED);
    assert.equal(entryOf(tr, slot).timeoutSeconds, 120);
  });

  it("shows the -L lines of the kernel examples", () => {
    const { tr, clock } = rig();
    tr.process(udp({ src: A, dst: B, sport: 41001, dport: 5354 }));
    clock.tick(1000);
    assert.deepEqual(tr.formatTable(), [
      "udp      17 29 src=10.0.0.1 dst=10.0.0.2 sport=41001 dport=5354 [UNREPLIED] src=10.0.0.2 dst=10.0.0.1 sport=5354 dport=41001 mark=0 use=1",
    ]);
    tr.process(udp({ src: B, dst: A, sport: 5354, dport: 41001 }));
    clock.tick(2500);
    tr.process(udp({ src: A, dst: B, sport: 41001, dport: 5354 }));
    clock.tick(1500);
    tr.advance(clock.t);
    assert.deepEqual(tr.formatTable(), [
      "udp      17 118 src=10.0.0.1 dst=10.0.0.2 sport=41001 dport=5354 src=10.0.0.2 dst=10.0.0.1 sport=5354 dport=41001 [ASSURED] mark=0 use=1",
    ]);
  });

  it("keeps NEW for retransmissions until a reply, then ESTABLISHED both ways", () => {
    const { tr } = rig();
    assert.equal(tr.process(udp({ src: A, dst: B, sport: 1, dport: 2 })), CT_STATE.NEW);
    assert.equal(tr.process(udp({ src: A, dst: B, sport: 1, dport: 2 })), CT_STATE.NEW);
    assert.equal(tr.result.isNew, false);
    assert.equal(tr.process(udp({ src: B, dst: A, sport: 2, dport: 1 })), CT_STATE.ESTABLISHED);
    assert.equal(tr.result.dir, 1);
    assert.equal(tr.process(udp({ src: A, dst: B, sport: 1, dport: 2 })), CT_STATE.ESTABLISHED);
    assert.equal(tr.result.ctinfo, CTINFO.ESTABLISHED);
    assert.equal(tr.count, 1);
  });

  it("marks short and malformed datagrams invalid (udp_error)", () => {
    const { tr } = rig();
    assert.equal(tr.process(udp({ src: A, dst: B, sport: 1, dport: 2, payload: 10, udpLength: 100 })), CT_STATE.INVALID);
    assert.equal(tr.process(udp({ src: A, dst: B, sport: 1, dport: 2, payload: 10, udpLength: 7 })), CT_STATE.INVALID);
    assert.equal(tr.stats.invalid, 2);
    assert.equal(tr.stats.byReason[INVALID_REASON.MALFORMED], 2);
    assert.equal(tr.count, 0);
    // A length field shorter than the IP payload is fine (trailing bytes).
    assert.equal(tr.process(udp({ src: A, dst: B, sport: 1, dport: 2, payload: 10, udpLength: 12 })), CT_STATE.NEW);
  });

  it("verifies the checksum only at PRE_ROUTING with nf_conntrack_checksum=1; zero means none", () => {
    const { tr } = rig();
    assert.equal(tr.process(udp({ src: A, dst: B, sport: 1, dport: 2, checksum: "bad" })), CT_STATE.INVALID);
    assert.equal(tr.result.invalidReason, INVALID_REASON.BAD_CHECKSUM);
    assert.equal(tr.process(udp({ src: A, dst: B, sport: 1, dport: 2, checksum: "bad" }), HOOK.LOCAL_OUT), CT_STATE.NEW);
    assert.equal(tr.process(udp({ src: A, dst: B, sport: 3, dport: 4, checksum: "none" })), CT_STATE.NEW);
    const off = rig({ sysctls: { nf_conntrack_checksum: 0 } }).tr;
    assert.equal(off.process(udp({ src: A, dst: B, sport: 1, dport: 2, checksum: "bad" })), CT_STATE.NEW);
  });

  it("leaves nothing behind when the first packet is dropped before confirmation", () => {
    const { tr, events } = rig();
    tr.in(udp({ src: A, dst: B, sport: 1, dport: 2 }));
    assert.equal(tr.count, 1);
    assert.equal(entryIds(tr).length, 0);
    tr.dropUnconfirmed();
    assert.equal(tr.count, 0);
    assert.deepEqual(events.lines, []);
    // A later packet creates it afresh.
    assert.equal(tr.process(udp({ src: A, dst: B, sport: 1, dport: 2 })), CT_STATE.NEW);
    assert.equal(events.lines.length, 1);
  });

  it("makes the timeout relative to confirmation, not to the first packet", () => {
    const { tr, clock } = rig();
    tr.in(udp({ src: A, dst: B, sport: 1, dport: 2 }));
    tr.advance(clock.t + 10_000);
    tr.confirm();
    const slot = firstEntry(tr).id;
    assert.equal(entryOf(tr, slot).timeoutSeconds, 30);
  });
});

describe("UDP-Lite tracking", () => {
  it("assures on the first packet after a reply, without the 2 s rule", () => {
    const { tr, events } = rig();
    tr.process(udplite({ src: A, dst: B, sport: 7, dport: 8, checksumProto: 17 }));
    tr.process(udplite({ src: B, dst: A, sport: 8, dport: 7, checksumProto: 17 }));
    tr.process(udplite({ src: A, dst: B, sport: 7, dport: 8, checksumProto: 17 }));
    assert.deepEqual(events.lines, [
      "    [NEW] udplite  136 30 src=10.0.0.1 dst=10.0.0.2 sport=7 dport=8 [UNREPLIED] src=10.0.0.2 dst=10.0.0.1 sport=8 dport=7",
      " [UPDATE] udplite  136 30 src=10.0.0.1 dst=10.0.0.2 sport=7 dport=8 src=10.0.0.2 dst=10.0.0.1 sport=8 dport=7",
      " [UPDATE] udplite  136 120 src=10.0.0.1 dst=10.0.0.2 sport=7 dport=8 src=10.0.0.2 dst=10.0.0.1 sport=8 dport=7 [ASSURED]",
    ]);
  });

  it("refuses a bad coverage and a missing checksum (udplite_error)", () => {
    const { tr } = rig({ sysctls: { nf_conntrack_checksum: 0 } });
    assert.equal(tr.process(udplite({ src: A, dst: B, sport: 7, dport: 8, payload: 4, coverage: 4 })), CT_STATE.INVALID);
    assert.equal(tr.process(udplite({ src: A, dst: B, sport: 7, dport: 8, payload: 4, coverage: 40 })), CT_STATE.INVALID);
    assert.equal(tr.process(udplite({ src: A, dst: B, sport: 7, dport: 8, checksum: "none" })), CT_STATE.INVALID);
    assert.equal(tr.stats.invalid, 3);
  });
});
