/**
 * The NAT reply tuple hook (nf_conntrack_alter_reply): an entry whose reply
 * tuple is not its inverted original gets a second index node.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { CT_STATE, CTINFO } from "../../src/conntrack/constants.js";
import { firstEntry, ip4, rig, udp } from "./helpers.js";
import { trackerEngine } from "../../src/conntrack/tracker.js";

describe("NAT reply tuple", () => {
  it("finds a source-NATed entry from its translated reply, not from the untranslated one", () => {
    const { tr, events } = rig();
    const A = "10.0.0.1";
    const B = "192.0.2.80";
    const N = "198.51.100.1";
    assert.equal(tr.in(udp({ src: A, dst: B, sport: 1000, dport: 53 })), CT_STATE.NEW);
    const slot = tr.result.slot;
    // SNAT A:1000 → N:5000: the reply comes back to N:5000.
    trackerEngine(tr).alterReply(slot, [ip4(B)], [ip4(N)], 53, 5000);
    assert.equal(tr.confirm(), true);
    assert.equal(trackerEngine(tr).table.audit(), null);
    assert.equal(
      events.lines[0],
      "    [NEW] udp      17 30 src=10.0.0.1 dst=192.0.2.80 sport=1000 dport=53 [UNREPLIED] src=192.0.2.80 dst=198.51.100.1 sport=53 dport=5000",
    );
    assert.equal(tr.process(udp({ src: B, dst: N, sport: 53, dport: 5000 })), CT_STATE.ESTABLISHED);
    assert.equal(tr.result.ctinfo, CTINFO.ESTABLISHED_REPLY);
    assert.equal(tr.result.slot, slot);
    assert.equal(tr.process(udp({ src: A, dst: B, sport: 1000, dport: 53 })), CT_STATE.ESTABLISHED);
    assert.equal(tr.result.slot, slot);
    // The untranslated inverse is somebody else's flow.
    assert.equal(tr.process(udp({ src: B, dst: A, sport: 53, dport: 1000 })), CT_STATE.NEW);
    assert.notEqual(tr.result.slot, slot);
    assert.equal(tr.count, 2);
    assert.equal(trackerEngine(tr).table.audit(), null);
    tr.advance(tr.now + 200_000);
    assert.equal(tr.count, 0);
    assert.equal(trackerEngine(tr).table.audit(), null);
  });

  it("refuses to change the reply tuple of a confirmed entry", () => {
    const { tr } = rig();
    tr.process(udp({ src: "10.0.0.1", dst: "10.0.0.2", sport: 1, dport: 2 }));
    const slot = firstEntry(tr).id;
    assert.throws(
      () => trackerEngine(tr).alterReply(slot, [1], [2], 3, 4),
      /^Error: Cannot alter the reply tuple of entry \d+: only the unconfirmed entry of the last packet can change$/,
    );
  });
});
