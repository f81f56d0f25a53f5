import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { PacketView } from "../../src/packet/view.js";
import { HZ } from "../../src/conntrack/jiffies.js";
import { Tracker } from "../../src/conntrack/tracker.js";
import { entryIds, entryOf, handView, icmp, ip4, ManualClock, rig, udp, udpFast } from "./helpers.js";
import { trackerEngine } from "../../src/conntrack/tracker.js";
import { formatEvent } from "../../src/conntrack/events.js";
import { tupleText } from "../../src/conntrack/format.js";

const A = "10.0.0.1";
const B = "10.0.0.2";

describe("expiry", () => {
  it("destroys entries in deadline order, each at its deadline, whatever the creation order", () => {
    const { tr, clock, events } = rig({ timestamp: true });
    const t0 = clock.t;
    tr.process(handView({ src: A, dst: B, proto: 50 })); // 600 s
    clock.tick(5000);
    tr.process(icmp({ src: A, dst: B, id: 1 })); // 30 s → t0 + 35 s
    clock.tick(5000);
    tr.process(udp({ src: A, dst: B, sport: 1, dport: 2 })); // 30 s → t0 + 40 s
    events.lines.length = 0;
    tr.advance(t0 + 1_000_000);
    const stamp = (ms: number): string => `[${Math.floor(ms / 1000)}.000000]\t`;
    assert.deepEqual(events.lines, [
      `${stamp(t0 + 35_000)}[DESTROY] icmp     1 src=10.0.0.1 dst=10.0.0.2 type=8 code=0 id=1 [UNREPLIED] src=10.0.0.2 dst=10.0.0.1 type=0 code=0 id=1`,
      `${stamp(t0 + 40_000)}[DESTROY] udp      17 src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2 [UNREPLIED] src=10.0.0.2 dst=10.0.0.1 sport=2 dport=1`,
      `${stamp(t0 + 600_000)}[DESTROY] unknown  50 src=10.0.0.1 dst=10.0.0.2 [UNREPLIED] src=10.0.0.2 dst=10.0.0.1`,
    ]);
    assert.equal(tr.count, 0);
  });

  it("moves a refreshed entry behind the others", () => {
    const { tr, clock, events } = rig();
    tr.process(udp({ src: A, dst: B, sport: 1, dport: 1 }));
    clock.tick(1000);
    tr.process(udp({ src: A, dst: B, sport: 2, dport: 2 }));
    clock.tick(19_000);
    tr.process(udp({ src: A, dst: B, sport: 1, dport: 1 }));
    events.lines.length = 0;
    clock.tick(10_999);
    tr.advance(clock.t);
    assert.equal(events.lines.length, 0);
    clock.tick(1);
    tr.advance(clock.t);
    assert.equal(events.lines.length, 1);
    assert.match(events.lines[0] ?? "", /sport=2 dport=2/);
    clock.tick(19_000);
    tr.advance(clock.t);
    assert.match(events.lines[1] ?? "", /sport=1 dport=1/);
  });

  it("treats an expired entry as absent on lookup and destroys it there", () => {
    const clock = new ManualClock();
    const lines: string[] = [];
    // No clock: time moves only when told, so the lookup meets the expired entry first.
    const tr = new Tracker({
      sysctls: { nf_conntrack_max: 64, nf_conntrack_buckets: 64 },
      seed: 1,
      events: { onEvent: (type, bits, e, ms) => lines.push(formatEvent(type, bits, e, ms)) },
    });
    tr.advance(clock.t);
    tr.process(udp({ src: A, dst: B, sport: 1, dport: 2 }));
    // Jump the tracker's time without running expiry: set it through in() with a clock-less advance of 0.
    (trackerEngine(tr) as unknown as { setTime(ms: number): void }).setTime(clock.t + 31_000);
    assert.equal(tr.process(udp({ src: B, dst: A, sport: 2, dport: 1 })), 8);
    assert.equal(lines.length, 3);
    assert.match(lines[1] ?? "", /^\[DESTROY\] udp {6}17 src=10\.0\.0\.1/);
    assert.match(lines[2] ?? "", /^ {4}\[NEW\] udp {6}17 30 src=10\.0\.0\.2 dst=10\.0\.0\.1 sport=2 dport=1/);
  });

  it("never runs time backwards when the clock does (out-of-order capture timestamps)", () => {
    const { tr, clock } = rig();
    tr.process(udp({ src: A, dst: B, sport: 1, dport: 2 }));
    clock.tick(10_000);
    tr.process(udp({ src: A, dst: B, sport: 3, dport: 4 }));
    clock.tick(-5_000);
    tr.process(udp({ src: A, dst: B, sport: 1, dport: 2 }));
    // The refresh happened at the latest time seen (t0 + 10 s), not 5 s earlier.
    assert.deepEqual(
      entryIds(tr).map((s) => entryOf(tr, s).timeoutSeconds),
      [30, 30],
    );
    assert.equal(trackerEngine(tr).table.audit(), null);
  });

  it("is wrap-safe across the u32 jiffies wrap", () => {
    const wrapMs = (2 ** 32 - 2 * HZ) * (1000 / HZ); // two seconds before jiffies wrap
    const clock = new ManualClock(wrapMs);
    const lines: string[] = [];
    const tr = new Tracker({
      sysctls: { nf_conntrack_max: 64, nf_conntrack_buckets: 64 },
      clock,
      seed: 3,
      events: { onEvent: (type, bits, e, ms) => lines.push(formatEvent(type, bits, e, ms)) },
    });
    tr.process(udp({ src: A, dst: B, sport: 1, dport: 2 }));
    clock.tick(1000);
    tr.process(udp({ src: A, dst: B, sport: 3, dport: 4 }));
    clock.tick(5000);
    assert.deepEqual(
      entryIds(tr)
        .map((s) => entryOf(tr, s).timeoutSeconds)
        .sort(),
      [24, 25],
    );
    clock.tick(24_000);
    tr.advance(clock.t);
    assert.equal(tr.count, 1);
    clock.tick(1000);
    tr.advance(clock.t);
    assert.equal(tr.count, 0);
    assert.equal(lines.filter((l) => l.startsWith("[DESTROY]")).length, 2);
  });

  it("expires a million entries in steps without scanning the table", () => {
    const N = 1 << 20;
    const clock = new ManualClock(1_000_000);
    let destroyed = 0;
    let lastSport = -1;
    let ordered = true;
    const tr = new Tracker({
      sysctls: { nf_conntrack_max: N, nf_conntrack_buckets: N },
      clock,
      seed: 7,
      events: {
        onEvent: (type, _bits, e) => {
          if (type !== 4) return;
          destroyed++;
          // Entries were created in sport order within each source: expiry keeps that order.
          const tu = tupleText(e, 0, false);
          const sp = Number(/sport=(\d+)/.exec(tu)?.[1]);
          const src = Number(/src=10\.(\d+)\./.exec(tu)?.[1]);
          const key = src * 65536 + sp;
          if (key < lastSport) ordered = false;
          lastSport = key;
        },
      },
    });
    const v = new PacketView();
    const base = ip4("10.0.0.0");
    const dst = ip4("192.0.2.1");
    for (let i = 0; i < N; i++) {
      if ((i & 0xffff) === 0) clock.tick(100);
      tr.process(udpFast(v, (base + ((i >>> 16) << 16)) >>> 0, dst, i & 0xffff, 53));
    }
    assert.equal(tr.count, N);
    // Idle advances cost O(classes), not O(entries).
    const idle = performance.now();
    for (let k = 0; k < 10_000; k++) {
      clock.tick(1);
      tr.advance(clock.t);
    }
    const idleMs = performance.now() - idle;
    assert.equal(tr.count, N);
    assert.ok(idleMs < 500, `10k idle advances took ${idleMs.toFixed(1)} ms`);
    // Expire in 1 s steps.
    let prev = N;
    for (let s = 0; s < 40; s++) {
      clock.tick(1000);
      tr.advance(clock.t);
      assert.ok(tr.count <= prev);
      prev = tr.count;
    }
    assert.equal(tr.count, 0);
    assert.equal(destroyed, N);
    assert.equal(ordered, true);
  });
});
