/**
 * Output formats against the literal lines recorded from Linux 6.18 and
 * conntrack-tools 1.4.7 (kernel-conntrack.md 5.1–5.4).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ipv6Compressed, ipv6Full, timestampPrefix } from "../../src/conntrack/format.js";
import { ConntrackStats } from "../../src/conntrack/stats.js";
import { entryOf, firstEntry, ManualClock, rig, tcp, udp } from "./helpers.js";
import { EventLineSink } from "../../src/conntrack/events.js";
import { Tracker } from "../../src/conntrack/tracker.js";
import { trackerEngine } from "../../src/conntrack/tracker.js";

describe("addresses", () => {
  it("compresses IPv6 like glibc inet_ntop", () => {
    const w = (s: string): [number, number, number, number] => {
      const g = s.split(":").map((x) => parseInt(x, 16));
      return [((g[0]! << 16) | g[1]!) >>> 0, ((g[2]! << 16) | g[3]!) >>> 0, ((g[4]! << 16) | g[5]!) >>> 0, ((g[6]! << 16) | g[7]!) >>> 0];
    };
    const cases: [string, string][] = [
      ["fd00:0:0:0:0:0:0:1", "fd00::1"],
      ["0:0:0:0:0:0:0:0", "::"],
      ["0:0:0:0:0:0:0:1", "::1"],
      ["2001:db8:0:0:0:0:0:0", "2001:db8::"],
      ["1:0:0:2:0:0:0:3", "1:0:0:2::3"],
      ["1:0:0:2:0:0:3:4", "1::2:0:0:3:4"],
      ["1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"],
      ["1:0:2:3:4:5:6:7", "1:0:2:3:4:5:6:7"],
      ["0:0:0:0:0:ffff:c000:201", "::ffff:192.0.2.1"],
      ["0:0:0:0:0:0:c000:201", "::192.0.2.1"],
      ["fe80:0:0:0:0:0:c000:201", "fe80::c000:201"],
    ];
    for (const [full, want] of cases) assert.equal(ipv6Compressed(...w(full)), want, full);
    assert.equal(ipv6Full(...w("fd00:0:0:0:0:0:0:1")), "fd00:0000:0000:0000:0000:0000:0000:0001");
  });
});

describe("conntrack -S and /proc/net/stat/nf_conntrack", () => {
  it("print the kernel's lines", () => {
    const st = new ConntrackStats();
    st.invalid = 4;
    const { tr } = rig();
    assert.deepEqual(
      // formatStats of a fresh tracker, then of the example counters
      tr.formatStats(),
      ["cpu=0   \tfound=0 invalid=0 insert=0 insert_failed=0 drop=0 early_drop=0 error=0 search_restart=0 clash_resolve=0 chaintoolong=0 "],
    );
    trackerEngine(tr).stats.invalid = 4;
    assert.deepEqual(tr.formatStats(), [
      "cpu=0   \tfound=0 invalid=4 insert=0 insert_failed=0 drop=0 early_drop=0 error=0 search_restart=0 clash_resolve=0 chaintoolong=0 ",
    ]);
    tr.process(udp({ src: "10.0.0.1", dst: "10.0.0.2", sport: 1, dport: 2 }));
    tr.process(udp({ src: "10.0.0.1", dst: "10.0.0.2", sport: 3, dport: 4 }));
    assert.deepEqual(tr.formatProcStat(), [
      "entries  clashres found new invalid ignore delete chainlength insert insert_failed drop early_drop icmp_error  expect_new expect_create expect_delete search_restart",
      "00000002  00000000 00000000 00000000 00000004 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000  00000000 00000000 00000000 00000000",
    ]);
    assert.deepEqual(st.entries()[1], ["invalid", 4]);
  });
});

describe("conntrack -L, /proc/net/nf_conntrack and -E lines", () => {
  const C = "10.0.0.1";
  const S = "10.0.0.2";

  it("shows TIME_WAIT one second after the last ACK (119), in -L and /proc", () => {
    const { tr, clock } = rig();
    const c = (flags: string, seq: number, ack: number) => tcp({ src: C, dst: S, sport: 40000, dport: 8080, flags, seq, ack });
    const s = (flags: string, seq: number, ack: number) => tcp({ src: S, dst: C, sport: 8080, dport: 40000, flags, seq, ack });
    tr.process(c("S", 1, 0));
    tr.process(s("SA", 9, 2));
    tr.process(c("A", 2, 10));
    tr.process(c("FA", 2, 10));
    tr.process(s("FA", 10, 3));
    tr.process(c("A", 3, 11));
    clock.tick(1000);
    assert.deepEqual(tr.formatTable(), [
      "tcp      6 119 TIME_WAIT src=10.0.0.1 dst=10.0.0.2 sport=40000 dport=8080 src=10.0.0.2 dst=10.0.0.1 sport=8080 dport=40000 [ASSURED] mark=0 use=1",
    ]);
    assert.deepEqual(tr.formatProc(), [
      "ipv4     2 tcp      6 119 TIME_WAIT src=10.0.0.1 dst=10.0.0.2 sport=40000 dport=8080 src=10.0.0.2 dst=10.0.0.1 sport=8080 dport=40000 [ASSURED] mark=0 zone=0 use=2",
    ]);
  });

  it("shows IPv6 expanded in /proc and compressed in -L", () => {
    const { tr, clock } = rig();
    const c = (flags: string, seq: number, ack: number) => tcp({ src: "fd00::1", dst: "fd00::2", sport: 40400, dport: 8084, flags, seq, ack });
    const s = (flags: string, seq: number, ack: number) => tcp({ src: "fd00::2", dst: "fd00::1", sport: 8084, dport: 40400, flags, seq, ack });
    tr.process(c("S", 1, 0));
    tr.process(s("SA", 9, 2));
    tr.process(c("A", 2, 10));
    tr.process(c("FA", 2, 10));
    tr.process(s("FA", 10, 3));
    tr.process(c("A", 3, 11));
    clock.tick(1000);
    assert.deepEqual(tr.formatProc(), [
      "ipv6     10 tcp      6 119 TIME_WAIT src=fd00:0000:0000:0000:0000:0000:0000:0001 dst=fd00:0000:0000:0000:0000:0000:0000:0002 sport=40400 dport=8084 src=fd00:0000:0000:0000:0000:0000:0000:0002 dst=fd00:0000:0000:0000:0000:0000:0000:0001 sport=8084 dport=40400 [ASSURED] mark=0 zone=0 use=2",
    ]);
    assert.deepEqual(tr.formatTable({ extended: true }), [
      "ipv6     10 tcp      6 119 TIME_WAIT src=fd00::1 dst=fd00::2 sport=40400 dport=8084 src=fd00::2 dst=fd00::1 sport=8084 dport=40400 [ASSURED] mark=0 use=1",
    ]);
  });

  it("does not refresh SYN_SENT on SYN retransmits (116 after 4 s)", () => {
    const { tr, clock } = rig();
    const syn = () => tcp({ src: S, dst: C, sport: 45690, dport: 9000, flags: "S", seq: 77 });
    tr.process(syn());
    clock.tick(1000);
    tr.process(syn());
    clock.tick(2000);
    tr.process(syn());
    clock.tick(1000);
    assert.deepEqual(tr.formatProc(), [
      "ipv4     2 tcp      6 116 SYN_SENT src=10.0.0.2 dst=10.0.0.1 sport=45690 dport=9000 [UNREPLIED] src=10.0.0.1 dst=10.0.0.2 sport=9000 dport=45690 mark=0 zone=0 use=2",
    ]);
  });

  it("prefixes -o timestamp,extended events with [sec.usec] and the layer 3", () => {
    const clock = new ManualClock(1795617927853.417);
    const sink = new EventLineSink({ timestamp: true, extended: true });
    const tr = new Tracker({ sysctls: { nf_conntrack_max: 64, nf_conntrack_buckets: 64 }, clock, seed: 1, events: sink });
    tr.process(tcp({ src: C, dst: S, sport: 40000, dport: 8080, flags: "S", seq: 5 }));
    assert.deepEqual(sink.lines, [
      "[1795617927.853417]\t    [NEW] ipv4     2 tcp      6 120 SYN_SENT src=10.0.0.1 dst=10.0.0.2 sport=40000 dport=8080 [UNREPLIED] src=10.0.0.2 dst=10.0.0.1 sport=8080 dport=40000",
    ]);
    assert.equal(timestampPrefix(5_000.25), "[00000005.000250]\t");
  });

  it("prints zone when non-zero, mark always in dumps and in events only when set", () => {
    const { tr, events } = rig();
    tr.process(udp({ src: C, dst: S, sport: 1, dport: 2 }), undefined, 5);
    const slot = firstEntry(tr).id;
    assert.equal(entryOf(tr, slot).zone, 5);
    // Same tuple in another zone is another connection.
    tr.process(udp({ src: C, dst: S, sport: 1, dport: 2 }), undefined, 0);
    assert.equal(tr.count, 2);
    tr.setMark(slot, 7);
    tr.process(udp({ src: S, dst: C, sport: 2, dport: 1 }), undefined, 5);
    assert.equal(tr.result.slot, slot);
    assert.equal(
      events.lines[0],
      "    [NEW] udp      17 30 src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2 [UNREPLIED] src=10.0.0.2 dst=10.0.0.1 sport=2 dport=1 zone=5",
    );
    assert.equal(events.lines[2], " [UPDATE] udp      17 30 src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2 src=10.0.0.2 dst=10.0.0.1 sport=2 dport=1 mark=7 zone=5");
    const lines = tr.formatTable().sort();
    assert.deepEqual(lines, [
      "udp      17 30 src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2 [UNREPLIED] src=10.0.0.2 dst=10.0.0.1 sport=2 dport=1 mark=0 use=1",
      "udp      17 30 src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2 src=10.0.0.2 dst=10.0.0.1 sport=2 dport=1 mark=7 zone=5 use=1",
    ]);
    assert.ok(tr.formatProc().some((l) => l.endsWith("mark=7 zone=5 use=2")));
  });

  it("shows delta-time with nf_conntrack_timestamp", () => {
    const { tr, clock } = rig({ sysctls: { nf_conntrack_timestamp: 1 } });
    tr.process(udp({ src: C, dst: S, sport: 1, dport: 2 }));
    clock.tick(2500);
    assert.deepEqual(tr.formatTable(), [
      "udp      17 27 src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2 [UNREPLIED] src=10.0.0.2 dst=10.0.0.1 sport=2 dport=1 mark=0 delta-time=2 use=1",
    ]);
    assert.match(tr.formatProc()[0] ?? "", / mark=0 zone=0 delta-time=2 use=2$/);
  });
});
