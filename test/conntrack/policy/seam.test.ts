import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { PacketView } from "../../../src/packet/view.js";
import { CT_DROPPED, Tracker, trackerEngine } from "../../../src/conntrack/tracker.js";
import type { TrackerOptions } from "../../../src/conntrack/tracker.js";
import { EventLineSink } from "../../../src/conntrack/events.js";
import { PolicyError } from "../../../src/conntrack/policy/policy.js";
import { ip4, ManualClock, udpFast } from "../helpers.js";

const A = ip4("10.0.0.1");
const B = ip4("10.0.0.2");
const v = new PacketView();

function make(extra: Partial<TrackerOptions> = {}, max = 64) {
  const clock = new ManualClock();
  const events = new EventLineSink({ extended: true, timestamp: true });
  const logs: string[] = [];
  const tr = new Tracker({
    sysctls: { nf_conntrack_max: max, nf_conntrack_buckets: 16 },
    clock,
    seed: 99,
    events,
    log: (_t, l) => logs.push(l),
    ...extra,
  });
  return { tr, clock, events, logs };
}

/** A churn of UDP flows, some answered (then ASSURED by a later packet), into a small table. */
function churn(tr: Tracker, clock: ManualClock): number[] {
  const states: number[] = [];
  let x = 7;
  for (let i = 0; i < 3000; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    const port = 1024 + (x % 400);
    const reply = (x >>> 16) % 3 === 0;
    states.push(tr.process(reply ? udpFast(v, B, A, 53, port) : udpFast(v, A, B, port, 53)));
    clock.tick(5 + ((x >>> 8) % 40));
  }
  return states;
}

describe("table policy seam", () => {
  it("defaults to kernel, and an explicit kernel policy is the same tracker packet by packet (states, events, logs, counters)", () => {
    const a = make();
    const b = make({ policy: "kernel" });
    const c = make({ policy: { name: "kernel" } });
    const sa = churn(a.tr, a.clock);
    assert.deepEqual(churn(b.tr, b.clock), sa);
    assert.deepEqual(churn(c.tr, c.clock), sa);
    assert.ok(a.tr.stats.early_drop > 0 && a.tr.stats.drop > 0, "the workload fills the table");
    for (const o of [b, c]) {
      assert.deepEqual(o.events.lines, a.events.lines);
      assert.deepEqual(o.logs, a.logs);
      assert.deepEqual({ ...o.tr.stats }, { ...a.tr.stats });
      assert.deepEqual(o.tr.formatTable({ extended: true }), a.tr.formatTable({ extended: true }));
    }
    assert.equal(a.tr.policy.name, "kernel");
  });

  it("counts the kernel's evictions and refusals by reason", () => {
    const { tr, clock } = make();
    churn(tr, clock);
    const p = tr.policy;
    assert.equal(p.evictions["early-drop"], tr.stats.early_drop);
    assert.equal(p.refusals["table-full"], tr.stats.drop);
    assert.equal(p.levelChanges, 0);
    assert.equal(p.liveEvictions, null);
  });

  it("refuses an unknown policy or option with a PolicyError naming it", () => {
    assert.throws(
      () => new Tracker({ policy: "lru" as never }),
      (e: unknown) => e instanceof PolicyError && e.option === "policy" && /Unknown table policy "lru": known are kernel/.test(e.message),
    );
    assert.throws(
      () => new Tracker({ policy: { name: "kernel", start: 1 } as never }),
      (e: unknown) => e instanceof PolicyError && e.option === "kernel.start" && /policy "kernel" has no options/.test(e.message),
    );
  });

  it("costs nothing below the watch mark: the engine consults kernel only at nf_conntrack_max", () => {
    const { tr } = make({}, 0);
    const e = trackerEngine(tr);
    assert.equal(e.policy.watchFrom, Infinity);
    assert.equal(make({}, 64).tr.policy.name, "kernel");
    assert.equal(trackerEngine(make({}, 64).tr).policy.watchFrom, 64);
  });
});

describe("live-eviction audit (countLiveEvictions)", () => {
  /** Fills a 4-entry table with unanswered flows from ports 1..4, then opens port 100 (early drop evicts someone). */
  function full(tr: Tracker, clock: ManualClock): number[] {
    for (let p = 1; p <= 4; p++) tr.process(udpFast(v, A, B, p, 53));
    clock.tick(1000);
    const before = new Set(
      trackerEngine(tr)
        .slots()
        .map((s) => trackerEngine(tr).table.sport[s]),
    );
    assert.notEqual(tr.process(udpFast(v, A, B, 100, 53)), CT_DROPPED);
    const after = new Set(
      trackerEngine(tr)
        .slots()
        .map((s) => trackerEngine(tr).table.sport[s]),
    );
    return [...before].filter((p) => !after.has(p)) as number[];
  }

  it("counts an evicted entry whose flow sends again before its deadline, once, from either direction", () => {
    const { tr, clock } = make({ countLiveEvictions: true }, 4);
    const gone = full(tr, clock);
    assert.ok(gone.length >= 1, "early drop evicted something");
    const port = gone[0] as number;
    assert.equal(tr.policy.liveEvictions, 0);
    // The answer comes back: the entry would still have matched it (30 s timeout).
    tr.process(udpFast(v, B, A, 53, port));
    assert.equal(tr.policy.liveEvictions, 1);
    tr.process(udpFast(v, A, B, port, 53));
    assert.equal(tr.policy.liveEvictions, 1, "counted once per eviction");
  });

  it("does not count a flow that returns after its entry would have expired, nor flows never evicted", () => {
    const { tr, clock } = make({ countLiveEvictions: true }, 4);
    const gone = full(tr, clock);
    clock.tick(31_000);
    for (const p of gone) tr.process(udpFast(v, A, B, p, 53));
    tr.process(udpFast(v, A, B, 2000, 53));
    assert.equal(tr.policy.liveEvictions, 0);
  });

  it("is off by default and leaves the kernel's behaviour alone when on", () => {
    const a = make();
    const b = make({ countLiveEvictions: true });
    assert.deepEqual(churn(b.tr, b.clock), churn(a.tr, a.clock));
    assert.deepEqual(b.events.lines, a.events.lines);
    assert.ok((b.tr.policy.liveEvictions ?? -1) > 0, "the churn's evicted flows come back");
  });
});
