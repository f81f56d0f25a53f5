import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { PacketView } from "../../src/packet/view.js";
import { CT_STATE } from "../../src/conntrack/constants.js";
import { INITIAL_SLOTS } from "../../src/conntrack/table.js";
import { CT_DROPPED, Tracker, trackerEngine } from "../../src/conntrack/tracker.js";
import { TupleScratch } from "../../src/conntrack/tuple.js";
import { entryIds, entryOf, handView, ip4, ManualClock, rig, udp, udpFast } from "./helpers.js";

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

/** Bytes per slot of an IPv4 TCP entry: the table's slot arrays (39) and the TCP window state (56). */
const SLOT_BYTES = 39 + 56;
/** Bytes that do not depend on the slot count: the expiry-class arrays (256 classes × 24 B). */
const CLASS_BYTES = 256 * 24;

describe("memory", () => {
  it("holds an IPv4 TCP entry in at most 100 bytes all-in at a million entries; the slots grow to nf_conntrack_max and no further", () => {
    const N = 1 << 20;
    const clock = new ManualClock();
    const before = process.memoryUsage().arrayBuffers;
    const tr = new Tracker({ sysctls: { nf_conntrack_max: N, nf_conntrack_buckets: N }, clock, seed: 9 });
    // Up front: the bucket array only (and the first few slots).
    assert.equal(tr.slotCount, INITIAL_SLOTS);
    assert.equal(tr.memoryBytes, N * 4 + CLASS_BYTES + INITIAL_SLOTS * SLOT_BYTES);
    const v = new PacketView();
    const base = ip4("10.0.0.0");
    const dst = ip4("192.0.2.80");
    for (let i = 0; i < N; i++) {
      assert.equal(tr.process(syn(v, (base + (i >>> 16)) >>> 0, dst, i & 0xffff, 443)), CT_STATE.NEW);
    }
    assert.equal(tr.count, N);
    assert.equal(tr.slotCount, N);
    const full = tr.memoryBytes;
    assert.equal(full, N * 4 + CLASS_BYTES + N * SLOT_BYTES);
    assert.ok(full / N <= 100, `${(full / N).toFixed(1)} bytes per entry`);
    // Live array buffers: the accounted ones, plus at most the garbage of the last doublings not yet collected.
    const grown = process.memoryUsage().arrayBuffers - before;
    assert.ok(grown <= 2 * full + 8 * 1024 * 1024, `array buffers grew by ${grown} for ${full} accounted`);
    // Full: the next SYN early-drops an unassured SYN_SENT neighbour and takes its slot; nothing grows.
    assert.equal(tr.process(syn(v, ip4("10.99.0.1"), dst, 1, 443)), CT_STATE.NEW);
    assert.ok(tr.stats.early_drop >= 1);
    assert.equal(tr.count, N - tr.stats.early_drop + 1);
    assert.equal(tr.memoryBytes, full);
    assert.equal(tr.slotCount, N);
    let listed = 0;
    tr.forEachEntry(() => listed++);
    assert.equal(listed, tr.count);
  });

  it("costs kilobytes beyond the bucket array for a 200-entry capture with the default sysctls", () => {
    const tr = new Tracker({ clock: new ManualClock(), seed: 3 });
    const buckets = tr.sysctl.nf_conntrack_buckets;
    assert.equal(buckets, 262144);
    const v = new PacketView();
    for (let i = 0; i < 200; i++) tr.process(syn(v, ip4("10.0.0.1"), ip4("192.0.2.80"), 20000 + i, 443));
    assert.equal(tr.count, 200);
    assert.equal(tr.slotCount, 256);
    const beyond = tr.memoryBytes - buckets * 4;
    assert.equal(beyond, CLASS_BYTES + 256 * SLOT_BYTES);
    assert.ok(beyond < 32 * 1024, `${beyond} bytes beyond the bucket array`);
  });

  it("allocates the IPv6, UDP, SCTP and extension stores only when first needed, and grows them with the table, exactly accounted", () => {
    const clock = new ManualClock();
    const cap = 1024;
    const fixed = cap * 4 + CLASS_BYTES;
    const tr = new Tracker({ sysctls: { nf_conntrack_max: cap, nf_conntrack_buckets: cap }, clock, seed: 1 });
    const m0 = tr.memoryBytes;
    assert.equal(m0, fixed + INITIAL_SLOTS * SLOT_BYTES);
    tr.process(handView({ src: "10.0.0.1", dst: "10.0.0.2", proto: 50 }));
    assert.equal(tr.memoryBytes, m0);
    tr.process(udp({ src: "10.0.0.1", dst: "10.0.0.2", sport: 1, dport: 2 }));
    // ct->proto.udp.stream_ts, one u32 per slot.
    assert.equal(tr.memoryBytes, m0 + INITIAL_SLOTS * 4);
    tr.process(udp({ src: "fd00::1", dst: "fd00::2", sport: 1, dport: 2 }));
    // Words 1–3 of both IPv6 addresses.
    assert.equal(tr.memoryBytes, m0 + INITIAL_SLOTS * (4 + 24));
    // One entry more than the slots: every store doubles.
    const v = new PacketView();
    for (let i = 0; tr.count <= INITIAL_SLOTS; i++) tr.process(udpFast(v, ip4("10.0.1.1"), ip4("10.0.0.2"), 1000 + i, 53));
    assert.equal(tr.slotCount, 2 * INITIAL_SLOTS);
    assert.equal(tr.memoryBytes, fixed + 2 * INITIAL_SLOTS * (SLOT_BYTES + 4 + 24));

    const ext = { nf_conntrack_max: cap, nf_conntrack_buckets: cap, nf_conntrack_acct: 1, nf_conntrack_timestamp: 1 };
    const acct = new Tracker({ sysctls: ext, seed: 1 });
    assert.equal(acct.memoryBytes, m0 + INITIAL_SLOTS * (32 + 16));
    const ev = new Tracker({ sysctls: { nf_conntrack_max: cap, nf_conntrack_buckets: cap }, seed: 1, events: { onEvent() {} } });
    assert.equal(ev.memoryBytes, m0 + INITIAL_SLOTS * 2);
    const noEv = new Tracker({ sysctls: { nf_conntrack_max: cap, nf_conntrack_buckets: cap, nf_conntrack_events: 0 }, seed: 1, events: { onEvent() {} } });
    assert.equal(noEv.memoryBytes, m0);
  });

  it("never grows the slots beyond nf_conntrack_max, whatever the doubling would give", () => {
    const { tr } = rig({ sysctls: { nf_conntrack_max: 100, nf_conntrack_buckets: 512, nf_conntrack_udp_timeout: 3600 } });
    const v = new PacketView();
    for (let i = 0; i < 300; i++) tr.process(udpFast(v, ip4("10.0.0.1"), ip4("10.0.0.2"), 1000 + i, 53));
    assert.equal(tr.slotCount, 100);
    assert.equal(tr.count, 100);
    assert.equal(trackerEngine(tr).table.audit(), null);
  });
});

describe("table growth keeps every entry where it is", () => {
  it("keeps slots, tuples, protocol state, events, marks, NAT reply nodes and expiry lists across doublings", () => {
    const { tr, clock, events } = rig({ sysctls: { nf_conntrack_max: 0, nf_conntrack_buckets: 512, nf_conntrack_acct: 1 } });
    const A = "10.0.0.1";
    const B = "192.0.2.80";
    const N = "198.51.100.1";
    // A source-NATed UDP flow and a TCP flow in the first slots.
    assert.equal(tr.in(udp({ src: A, dst: B, sport: 1000, dport: 53 })), CT_STATE.NEW);
    const natSlot = tr.result.slot;
    trackerEngine(tr).alterReply(natSlot, [ip4(B)], [ip4(N)], 53, 5000);
    assert.equal(tr.confirm(), true);
    tr.setMark(natSlot, 42);
    const v = new PacketView();
    assert.equal(tr.process(syn(v, ip4(A), ip4(B), 40000, 443)), CT_STATE.NEW);
    const tcpSlot = tr.result.slot;
    const before = new Map<number, string>();
    for (const s of entryIds(tr)) before.set(s, tr.formatEntry(s, { extended: true }));
    // Grow through several doublings (64 → 2048 slots).
    for (let i = 0; i < 2000; i++) tr.process(udpFast(v, ip4("10.1.0.1"), ip4("10.0.0.2"), 1024 + i, 53));
    assert.ok(tr.slotCount >= 2048);
    assert.equal(trackerEngine(tr).table.audit(), null);
    for (const [s, line] of before) assert.equal(tr.formatEntry(s, { extended: true }), line, `slot ${s}`);
    assert.equal(entryOf(tr, natSlot).mark, 42);
    assert.equal(trackerEngine(tr).tcpTracker.state(tcpSlot), 1 /* SYN_SENT */);
    assert.deepEqual(entryOf(tr, natSlot).counters(0), { packets: 1, bytes: 28 });
    // The NAT reply node is still found, in its direction, on the same slot.
    assert.equal(tr.process(udp({ src: B, dst: N, sport: 53, dport: 5000 })), CT_STATE.ESTABLISHED);
    assert.equal(tr.result.slot, natSlot);
    assert.equal(tr.result.dir, 1);
    const t = new TupleScratch();
    t.set(4, 17, 0, [ip4(B)], [ip4(N)], 53, 5000);
    assert.equal(trackerEngine(tr).findTuple(t), natSlot);
    // Expiry lists survived: everything expires, each with its DESTROY, and every slot is free again.
    events.lines.length = 0;
    clock.tick(200_000);
    tr.advance(clock.t);
    assert.equal(tr.count, 0);
    assert.equal(events.lines.filter((l) => l.startsWith("[DESTROY]")).length, 2002);
    assert.equal(trackerEngine(tr).table.audit(), null);
    assert.equal(trackerEngine(tr).table.free, tr.slotCount);
  });

  it("nf_conntrack_max=0: no limit, the table grows, early drop never runs", () => {
    const { tr, logs } = rig({ sysctls: { nf_conntrack_max: 0, nf_conntrack_buckets: 16384, nf_conntrack_udp_timeout: 3600 } });
    const v = new PacketView();
    for (let i = 0; i < 20000; i++) {
      assert.notEqual(tr.process(udpFast(v, ip4("10.0.0.1") + (i >>> 14), ip4("10.0.0.2"), 1024 + (i & 0x3fff), 53)), CT_DROPPED);
    }
    assert.equal(tr.count, 20000);
    assert.equal(tr.peak, 20000);
    assert.equal(tr.stats.drop, 0);
    assert.equal(tr.stats.early_drop, 0);
    assert.deepEqual(logs, []);
    assert.equal(tr.slotCount, 32768);
    assert.equal(tr.formatTable().length, 20000);
    assert.equal(trackerEngine(tr).table.audit(), null);
  });

  it("drops the packet as the kernel does on a failed allocation when memory runs out while growing", () => {
    const { tr } = rig({ sysctls: { nf_conntrack_max: 0, nf_conntrack_buckets: 512 } });
    const v = new PacketView();
    for (let i = 0; i < INITIAL_SLOTS; i++) tr.process(udpFast(v, ip4("10.0.0.1"), ip4("10.0.0.2"), 1024 + i, 53));
    const m = tr.memoryBytes;
    const tcp = trackerEngine(tr).tcpTracker as unknown as { grow: (n: number) => void };
    const grow = tcp.grow;
    tcp.grow = () => {
      throw new RangeError("Array buffer allocation failed");
    };
    try {
      assert.equal(tr.process(udpFast(v, ip4("10.0.0.1"), ip4("10.0.0.2"), 9999, 53)), CT_DROPPED);
    } finally {
      tcp.grow = grow;
    }
    assert.equal(tr.stats.drop, 1);
    assert.equal(tr.count, INITIAL_SLOTS);
    assert.equal(tr.slotCount, INITIAL_SLOTS);
    assert.equal(tr.memoryBytes, m);
    // Memory is back: the next new flow grows the table.
    assert.equal(tr.process(udpFast(v, ip4("10.0.0.1"), ip4("10.0.0.2"), 9999, 53)), CT_STATE.NEW);
    assert.equal(tr.slotCount, 2 * INITIAL_SLOTS);
    assert.equal(trackerEngine(tr).table.audit(), null);
  });
});
