import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { CT_STATE, IPS } from "../../src/conntrack/constants.js";
import { entryOf, firstEntry, gre, handView, rig } from "./helpers.js";

const A = "10.0.0.1";
const B = "10.0.0.2";

describe("GRE (nf_conntrack_proto_gre.c)", () => {
  it("tracks GREv0 by addresses only, assures and switches to the stream timeout after a reply", () => {
    const { tr, events } = rig();
    assert.equal(tr.process(gre({ src: A, dst: B, key: 0xabcdef })), CT_STATE.NEW);
    // Another key between the same hosts is the same connection: keys are not part of a v0 tuple.
    assert.equal(tr.process(gre({ src: A, dst: B, key: 7 })), CT_STATE.NEW);
    assert.equal(tr.count, 1);
    assert.deepEqual(tr.formatTable(), [
      "gre      47 30 src=10.0.0.1 dst=10.0.0.2 srckey=0x0 dstkey=0x0 [UNREPLIED] src=10.0.0.2 dst=10.0.0.1 srckey=0x0 dstkey=0x0 mark=0 use=1",
    ]);
    assert.deepEqual(tr.formatProc(), [
      "ipv4     2 gre      47 30 timeout=30, stream_timeout=180 src=10.0.0.1 dst=10.0.0.2 srckey=0x0 dstkey=0x0 [UNREPLIED] src=10.0.0.2 dst=10.0.0.1 srckey=0x0 dstkey=0x0 mark=0 zone=0 use=2",
    ]);
    assert.equal(tr.process(gre({ src: B, dst: A })), CT_STATE.ESTABLISHED);
    assert.equal(tr.process(gre({ src: A, dst: B })), CT_STATE.ESTABLISHED);
    assert.deepEqual(events.lines.slice(1), [
      " [UPDATE] gre      47 30 src=10.0.0.1 dst=10.0.0.2 srckey=0x0 dstkey=0x0 src=10.0.0.2 dst=10.0.0.1 srckey=0x0 dstkey=0x0",
      " [UPDATE] gre      47 180 src=10.0.0.1 dst=10.0.0.2 srckey=0x0 dstkey=0x0 src=10.0.0.2 dst=10.0.0.1 srckey=0x0 dstkey=0x0 [ASSURED]",
    ]);
  });

  it("keys PPTP (GREv1) by call id; without the PPTP helper each direction is its own entry", () => {
    const { tr } = rig();
    assert.equal(tr.process(gre({ src: A, dst: B, version: 1, callId: 0x1234 })), CT_STATE.NEW);
    assert.equal(tr.process(gre({ src: B, dst: A, version: 1, callId: 0x5678 })), CT_STATE.NEW);
    assert.equal(tr.count, 2);
    const lines = tr.formatTable().sort();
    assert.deepEqual(lines, [
      "gre      47 30 src=10.0.0.1 dst=10.0.0.2 srckey=0x0 dstkey=0x1234 [UNREPLIED] src=10.0.0.2 dst=10.0.0.1 srckey=0x1234 dstkey=0x0 mark=0 use=1",
      "gre      47 30 src=10.0.0.2 dst=10.0.0.1 srckey=0x0 dstkey=0x5678 [UNREPLIED] src=10.0.0.1 dst=10.0.0.2 srckey=0x5678 dstkey=0x0 mark=0 use=1",
    ]);
  });

  it("cannot build a tuple for GREv1 carrying something else than PPP", () => {
    const { tr } = rig();
    assert.equal(tr.process(gre({ src: A, dst: B, version: 1, callId: 1, protocol: 0x0800 })), CT_STATE.INVALID);
    assert.equal(tr.count, 0);
  });
});

describe("generic tracking (nf_conntrack_proto_generic.c)", () => {
  it("tracks unknown protocols by addresses for 600 s and never assures them", () => {
    const { tr, clock } = rig();
    assert.equal(tr.process(handView({ src: A, dst: B, proto: 50 })), CT_STATE.NEW);
    assert.equal(tr.process(handView({ src: B, dst: A, proto: 50 })), CT_STATE.ESTABLISHED);
    clock.tick(3000);
    assert.equal(tr.process(handView({ src: A, dst: B, proto: 50 })), CT_STATE.ESTABLISHED);
    const slot = firstEntry(tr).id;
    assert.equal(entryOf(tr, slot).status & IPS.ASSURED, 0);
    assert.deepEqual(tr.formatTable(), ["unknown  50 600 src=10.0.0.1 dst=10.0.0.2 src=10.0.0.2 dst=10.0.0.1 mark=0 use=1"]);
    assert.deepEqual(tr.formatProc(), ["ipv4     2 unknown  50 600 src=10.0.0.1 dst=10.0.0.2 src=10.0.0.2 dst=10.0.0.1 mark=0 zone=0 use=2"]);
    clock.tick(600_000);
    assert.deepEqual(tr.formatTable(), []);
  });

  it("tracks DCCP generically since 6.17: conntrack-tools still prints zero ports", () => {
    const { tr } = rig();
    tr.process(handView({ src: A, dst: B, proto: 33, sport: 5000, dport: 6000 }));
    // Other ports, same entry: the tuple has no ports.
    tr.process(handView({ src: A, dst: B, proto: 33, sport: 5001, dport: 6001 }));
    assert.equal(tr.count, 1);
    assert.deepEqual(tr.formatTable(), [
      "dccp     33 600 src=10.0.0.1 dst=10.0.0.2 sport=0 dport=0 [UNREPLIED] src=10.0.0.2 dst=10.0.0.1 sport=0 dport=0 mark=0 use=1",
    ]);
    assert.deepEqual(tr.formatProc(), ["ipv4     2 unknown  33 600 src=10.0.0.1 dst=10.0.0.2 [UNREPLIED] src=10.0.0.2 dst=10.0.0.1 mark=0 zone=0 use=2"]);
  });
});
