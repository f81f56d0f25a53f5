import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { PacketView } from "../../src/packet/view.js";
import { CT_STATE } from "../../src/conntrack/constants.js";
import { Tracker } from "../../src/conntrack/tracker.js";
import { handView, ip4, ManualClock, udp } from "./helpers.js";

/** A hand-filled IPv4 TCP SYN. */
function syn(v: PacketView, src: number, dst: number, sport: number, dport: number): PacketView {
  v.resetDecoded();
  v.family = 4;
  v.proto = 6;
  v.src[0] = src;
  v.dst[0] = dst;
  v.sport = sport;
  v.dport = dport;
  v.l4Ok = true;
  v.l4Len = 20;
  v.l4CapLen = 0;
  v.tcpHdrLen = 20;
  v.tcpFlags = 0x02;
  v.seq = 1000;
  v.window = 64240;
  return v;
}

describe("memory", () => {
  it("holds an IPv4 TCP entry in at most 128 bytes all-in at a million entries, allocated once", () => {
    const N = 1 << 20;
    const clock = new ManualClock();
    const before = process.memoryUsage().arrayBuffers;
    const tr = new Tracker({ sysctls: { nf_conntrack_max: N, nf_conntrack_buckets: N }, clock, seed: 9 });
    const atStart = tr.memoryBytes;
    const perEntry = atStart / N;
    assert.ok(perEntry <= 128, `${perEntry.toFixed(1)} bytes per entry`);
    const v = new PacketView();
    const base = ip4("10.0.0.0");
    const dst = ip4("192.0.2.80");
    for (let i = 0; i < N; i++) {
      assert.equal(tr.process(syn(v, (base + (i >>> 16)) >>> 0, dst, i & 0xffff, 443)), CT_STATE.NEW);
    }
    assert.equal(tr.count, N);
    // Nothing grew: every array was sized from nf_conntrack_max / nf_conntrack_buckets.
    assert.equal(tr.memoryBytes, atStart);
    const grown = process.memoryUsage().arrayBuffers - before;
    assert.ok(grown <= atStart + 8 * 1024 * 1024, `array buffers grew by ${grown} for ${atStart} accounted`);
    // Full: the next SYN early-drops an unassured SYN_SENT neighbour and takes its slot.
    assert.equal(tr.process(syn(v, ip4("10.99.0.1"), dst, 1, 443)), CT_STATE.NEW);
    assert.ok(tr.stats.early_drop >= 1);
    assert.equal(tr.count, N - tr.stats.early_drop + 1);
    assert.equal(tr.memoryBytes, atStart);
    assert.equal(tr.formatTable().length, tr.count);
  });

  it("allocates the IPv6, UDP, SCTP and extension stores only when first needed, exactly accounted", () => {
    const clock = new ManualClock();
    const cap = 1024;
    const tr = new Tracker({ sysctls: { nf_conntrack_max: cap, nf_conntrack_buckets: cap }, clock, seed: 1 });
    const m0 = tr.memoryBytes;
    tr.process(handView({ src: "10.0.0.1", dst: "10.0.0.2", proto: 50 }));
    assert.equal(tr.memoryBytes, m0);
    tr.process(udp({ src: "10.0.0.1", dst: "10.0.0.2", sport: 1, dport: 2 }));
    // ct->proto.udp.stream_ts, one u32 per slot.
    assert.equal(tr.memoryBytes, m0 + cap * 4);
    tr.process(udp({ src: "fd00::1", dst: "fd00::2", sport: 1, dport: 2 }));
    // Words 1–3 of both IPv6 addresses.
    assert.equal(tr.memoryBytes, m0 + cap * 4 + cap * 24);

    const acct = new Tracker({ sysctls: { nf_conntrack_max: cap, nf_conntrack_buckets: cap, nf_conntrack_acct: 1, nf_conntrack_timestamp: 1 }, seed: 1 });
    assert.equal(acct.memoryBytes, m0 + cap * 32 + cap * 16);
    const ev = new Tracker({ sysctls: { nf_conntrack_max: cap, nf_conntrack_buckets: cap }, seed: 1, events: { onEvent() {} } });
    assert.equal(ev.memoryBytes, m0 + cap * 2);
    const noEv = new Tracker({ sysctls: { nf_conntrack_max: cap, nf_conntrack_buckets: cap, nf_conntrack_events: 0 }, seed: 1, events: { onEvent() {} } });
    assert.equal(noEv.memoryBytes, m0);
  });
});
