import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { buildIcmp, buildUdp, buildTcp, locateIp } from "../../src/packet/build.js";
import { CT_STATE, CTINFO, HOOK } from "../../src/conntrack/constants.js";
import { INVALID_REASON } from "../../src/conntrack/stats.js";
import { decoded, entryOf, icmp, icmpError, rig, udp } from "./helpers.js";

const A = "10.0.0.1";
const B = "10.0.0.2";
const R = "10.0.9.9";

describe("ICMP tracking (nf_conntrack_proto_icmp.c)", () => {
  it("tracks an echo exchange and prints the kernel's -L, -o extended and /proc lines", () => {
    const { tr, clock, events } = rig();
    assert.equal(tr.process(icmp({ src: A, dst: B, type: 8, id: 17185, seq: 1 })), CT_STATE.NEW);
    assert.equal(tr.process(icmp({ src: B, dst: A, type: 0, id: 17185, seq: 1 })), CT_STATE.ESTABLISHED);
    assert.equal(tr.result.ctinfo, CTINFO.ESTABLISHED_REPLY);
    clock.tick(1000);
    assert.deepEqual(tr.formatTable(), [
      "icmp     1 29 src=10.0.0.1 dst=10.0.0.2 type=8 code=0 id=17185 src=10.0.0.2 dst=10.0.0.1 type=0 code=0 id=17185 mark=0 use=1",
    ]);
    assert.deepEqual(tr.formatTable({ extended: true }), [
      "ipv4     2 icmp     1 29 src=10.0.0.1 dst=10.0.0.2 type=8 code=0 id=17185 src=10.0.0.2 dst=10.0.0.1 type=0 code=0 id=17185 mark=0 use=1",
    ]);
    clock.tick(8000);
    assert.deepEqual(tr.formatProc(), [
      "ipv4     2 icmp     1 21 src=10.0.0.1 dst=10.0.0.2 type=8 code=0 id=17185 src=10.0.0.2 dst=10.0.0.1 type=0 code=0 id=17185 mark=0 zone=0 use=2",
    ]);
    // Never ASSURED; the reply is an UPDATE for REPLY only.
    assert.deepEqual(events.lines, [
      "    [NEW] icmp     1 30 src=10.0.0.1 dst=10.0.0.2 type=8 code=0 id=17185 [UNREPLIED] src=10.0.0.2 dst=10.0.0.1 type=0 code=0 id=17185",
      " [UPDATE] icmp     1 30 src=10.0.0.1 dst=10.0.0.2 type=8 code=0 id=17185 src=10.0.0.2 dst=10.0.0.1 type=0 code=0 id=17185",
    ]);
  });

  it("shares one entry between unanswered requests with one id, all NEW", () => {
    const { tr } = rig();
    for (let i = 0; i < 3; i++) assert.equal(tr.process(icmp({ src: A, dst: B, id: 7, seq: i })), CT_STATE.NEW);
    assert.equal(tr.count, 1);
  });

  it("creates entries only from request types; replies and others are invalid", () => {
    const { tr } = rig();
    assert.equal(tr.process(icmp({ src: B, dst: A, type: 0, id: 9 })), CT_STATE.INVALID);
    assert.equal(tr.result.invalidReason, INVALID_REASON.NO_NEW);
    // Router advertisement: no request/reply partner, the tuple cannot be inverted.
    assert.equal(tr.process(icmp({ src: B, dst: A, type: 9 })), CT_STATE.INVALID);
    assert.equal(tr.result.invalidReason, INVALID_REASON.NOT_INVERTIBLE);
    assert.equal(tr.stats.invalid, 2);
    assert.equal(tr.count, 0);
    assert.equal(tr.process(icmp({ src: A, dst: B, type: 13, id: 0 })), CT_STATE.NEW);
    assert.deepEqual(tr.formatTable(), [
      "icmp     1 30 src=10.0.0.1 dst=10.0.0.2 type=13 code=0 id=0 [UNREPLIED] src=10.0.0.2 dst=10.0.0.1 type=14 code=0 id=0 mark=0 use=1",
    ]);
  });

  it("counts short, bad-checksum and unknown-type ICMP as `error`, not `invalid`", () => {
    const { tr } = rig();
    assert.equal(tr.process(icmp({ src: A, dst: B, type: 8, id: 1, checksum: "bad" })), CT_STATE.INVALID);
    assert.equal(tr.process(icmp({ src: A, dst: B, type: 19 })), CT_STATE.INVALID);
    assert.equal(tr.stats.error, 2);
    assert.equal(tr.stats.invalid, 0);
    // Outside PRE_ROUTING the checksum is not looked at.
    assert.equal(tr.process(icmp({ src: A, dst: B, type: 8, id: 1, checksum: "bad" }), HOOK.LOCAL_OUT), CT_STATE.NEW);
  });
});

describe("ICMP errors (nf_conntrack_inet_error)", () => {
  const out = buildUdp({ src: A, dst: B, sport: 41000, dport: 9999 });

  it("attaches a port unreachable to the UDP flow as RELATED, without refresh or event", () => {
    const { tr, clock, events } = rig();
    tr.process(decoded(out));
    const slot = tr.result.slot;
    clock.tick(5000);
    assert.equal(tr.process(icmpError(out, { type: 3, code: 3 })), CT_STATE.RELATED);
    assert.equal(tr.result.ctinfo, CTINFO.RELATED_REPLY);
    assert.equal(tr.result.slot, slot);
    assert.equal(entryOf(tr, slot).timeoutSeconds, 25);
    assert.equal(events.lines.length, 1);
    assert.equal(tr.count, 1);
    // From a router on the path: the outer source differs, the destination is the flow's.
    assert.equal(tr.process(icmpError(out, { type: 11, src: R })), CT_STATE.RELATED);
    assert.equal(tr.stats.error, 0);
    assert.equal(tr.stats.invalid, 0);
  });

  it("is RELATED in the original direction when it quotes a reply packet", () => {
    const { tr } = rig();
    tr.process(decoded(out));
    const back = buildUdp({ src: B, dst: A, sport: 9999, dport: 41000 });
    tr.process(decoded(back));
    // A's side sends the error towards B about B's packet.
    assert.equal(tr.process(icmpError(back, { type: 3, code: 3 })), CT_STATE.RELATED);
    assert.equal(tr.result.ctinfo, CTINFO.RELATED);
  });

  it("counts an error for no connection, and one whose outer destination is not the flow's", () => {
    const { tr, logs } = rig({ sysctls: { nf_conntrack_log_invalid: 1 } });
    assert.equal(tr.process(icmpError(out, { type: 3, code: 3 })), CT_STATE.INVALID);
    assert.equal(tr.result.invalidReason, INVALID_REASON.ICMP_ERROR_NO_MATCH);
    assert.equal(tr.count, 0);
    tr.process(decoded(out));
    assert.equal(tr.process(icmpError(out, { type: 3, code: 3, src: B, dst: R })), CT_STATE.INVALID);
    assert.equal(tr.result.invalidReason, INVALID_REASON.ICMP_ERROR_MISMATCH);
    assert.equal(tr.stats.error, 2);
    assert.equal(tr.stats.invalid, 0);
    assert.match(logs.join("\n"), /nf_ct_proto_1: outer daddr 10\.0\.9\.9 != inner 10\.0\.0\.1 SRC=10\.0\.0\.2 DST=10\.0\.9\.9/);
  });

  it("refuses errors quoting untrackable packets (fragments, ICMP errors)", () => {
    const { tr } = rig();
    const err = buildIcmp({ src: A, dst: B, type: 3 });
    assert.equal(tr.process(icmpError(err, { type: 11, dst: A, src: R })), CT_STATE.INVALID);
    assert.equal(tr.stats.error, 1);
  });

  it("relates errors about TCP in both directions", () => {
    const { tr } = rig({ sysctls: { nf_conntrack_checksum: 0 } });
    const syn = buildTcp({ src: A, dst: B, sport: 40000, dport: 80, flags: "S", seq: 100 });
    tr.process(decoded(syn));
    assert.equal(tr.process(icmpError(syn, { type: 3, code: 1, src: R })), CT_STATE.RELATED);
    assert.equal(tr.result.ctinfo, CTINFO.RELATED_REPLY);
  });
});

describe("ICMPv6 (nf_conntrack_proto_icmpv6.c)", () => {
  const C = "fd00::1";
  const D = "fd00::2";

  it("tracks echo and prints the kernel's -L line with compressed addresses", () => {
    const { tr } = rig();
    assert.equal(tr.process(icmp({ src: C, dst: D, type: 128, id: 85 })), CT_STATE.NEW);
    assert.equal(tr.process(icmp({ src: D, dst: C, type: 129, id: 85 })), CT_STATE.ESTABLISHED);
    assert.deepEqual(tr.formatTable(), [
      "icmpv6   58 30 src=fd00::1 dst=fd00::2 type=128 code=0 id=85 src=fd00::2 dst=fd00::1 type=129 code=0 id=85 mark=0 use=1",
    ]);
    assert.deepEqual(tr.formatProc(), [
      "ipv6     10 icmpv6   58 30 src=fd00:0000:0000:0000:0000:0000:0000:0001 dst=fd00:0000:0000:0000:0000:0000:0000:0002 type=128 code=0 id=85 src=fd00:0000:0000:0000:0000:0000:0000:0002 dst=fd00:0000:0000:0000:0000:0000:0000:0001 type=129 code=0 id=85 mark=0 zone=0 use=2",
    ]);
  });

  it("leaves neighbour discovery and MLD untracked", () => {
    const { tr } = rig();
    for (const type of [130, 131, 132, 133, 134, 135, 136, 143]) {
      assert.equal(tr.process(icmp({ src: "fe80::1", dst: "ff02::1", type, ttl: 255 })), CT_STATE.UNTRACKED, String(type));
      assert.equal(tr.result.ctinfo, CTINFO.UNTRACKED);
    }
    assert.equal(tr.count, 0);
    assert.equal(tr.stats.invalid + tr.stats.error, 0);
    // An unsolicited echo reply is invalid.
    assert.equal(tr.process(icmp({ src: D, dst: C, type: 129, id: 1 })), CT_STATE.INVALID);
  });

  it("relates a packet-too-big to the flow it quotes", () => {
    const { tr } = rig();
    const big = buildUdp({ src: C, dst: D, sport: 5000, dport: 6000, payload: 1400 });
    tr.process(decoded(big));
    assert.equal(tr.process(icmpError(big, { type: 2, src: "fd00::99", rest: 1280 })), CT_STATE.RELATED);
    assert.equal(tr.result.ctinfo, CTINFO.RELATED_REPLY);
  });

  it("relates a redirect only with code 0, hop limit 255, link-local source and a redirected header", () => {
    const inner = buildUdp({ src: C, dst: D, sport: 5000, dport: 6000, payload: 8 });
    const innerIp = inner.subarray(locateIp(inner));
    const redirect = (o: { ttl?: number; src?: string; code?: number; optType?: number; optLen?: number }): Uint8Array => {
      const body = new Uint8Array(32 + 8 + innerIp.length);
      body[15] = 0x22; // target fd00::22 (any), destination D
      body[0] = 0xfd;
      body[16] = 0xfd;
      body[31] = 2;
      body[32] = o.optType ?? 4;
      body[33] = o.optLen ?? Math.ceil((8 + innerIp.length) / 8);
      body.set(innerIp, 40);
      return buildIcmp({ src: o.src ?? "fe80::1", dst: C, type: 137, code: o.code ?? 0, ttl: o.ttl ?? 255, payload: body });
    };
    const { tr } = rig();
    tr.process(decoded(inner));
    assert.equal(tr.process(decoded(redirect({}))), CT_STATE.RELATED);
    // It quotes C's own packet and goes back to C: the reply direction of the flow.
    assert.equal(tr.result.ctinfo, CTINFO.RELATED_REPLY);
    assert.equal(tr.process(decoded(redirect({ ttl: 64 }))), CT_STATE.INVALID);
    assert.equal(tr.process(decoded(redirect({ src: "fd00::77" }))), CT_STATE.INVALID);
    assert.equal(tr.process(decoded(redirect({ optLen: 0 }))), CT_STATE.INVALID);
    assert.equal(tr.stats.error, 3);
    // Another option first, or a non-zero code: an ordinary ICMPv6 packet that cannot be tracked.
    assert.equal(tr.process(decoded(redirect({ optType: 1 }))), CT_STATE.INVALID);
    assert.equal(tr.process(decoded(redirect({ code: 1 }))), CT_STATE.INVALID);
    assert.equal(tr.stats.error, 3);
    assert.equal(tr.stats.invalid, 2);
  });

  it("does not track ICMP over IPv6 or ICMPv6 over IPv4", () => {
    const { tr } = rig();
    const v = udp({ src: C, dst: D, sport: 1, dport: 2 });
    v.proto = 1;
    v.icmpType = 8;
    v.l4Len = 16;
    assert.equal(tr.process(v), CT_STATE.INVALID);
    assert.equal(tr.count, 0);
  });
});
