/**
 * The diagnosis as a pure function of a Snapshot: each finding fires on its
 * evidence and only on it; the forecast and the sizing arithmetic.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { diagnose } from "../../src/host/diagnose.js";
import type { Snapshot } from "../../src/host/snapshot.js";

function snap(over: Partial<Snapshot> = {}): Snapshot {
  return {
    meta: { netns: "", netnsInode: 7, takenAtMs: 1_000_000 },
    conntrackLoaded: true,
    sysctls: { nf_conntrack_max: 1000, nf_conntrack_buckets: 1024 },
    modes: { nf_conntrack_max: 0o644 },
    stats: { drop: 0, early_drop: 0, insert_failed: 0, clash_resolve: 0, insert: 0 },
    count: 100,
    slab: { activeObjs: 0, numObjs: 0, objSize: 256, objPerSlab: 16, pagesPerSlab: 1 },
    tableFull: [],
    problems: [],
    bad: [],
    ...over,
  };
}

const ids = (s: Snapshot): string[] => diagnose(s).findings.map((f) => f.id);

describe("diagnose", () => {
  it("a host without conntrack gets the not-in-use report", () => {
    const r = diagnose(snap({ conntrackLoaded: false, sysctls: {} }));
    assert.deepEqual(
      r.findings.map((f) => f.id),
      ["conntrack-not-in-use"],
    );
    assert.equal(r.recommendations.length, 0);
    assert.match(r.findings[0]?.detail ?? "", /good news/);
  });

  it("memory now and at the limit from the slab object size and the buckets", () => {
    const r = diagnose(snap());
    assert.deepEqual(r.kernel_memory_bytes, { now: 100 * 256 + 1024 * 8, at_limit: 1000 * 256 + 1024 * 8, per_entry: 256, buckets: 8192 });
    assert.equal(r.usage, 0.1);
    assert.equal(r.average_chain_length, 200 / 1024);
    assert.equal(r.limit_writable, true);
  });

  it("kernel log lines count only with drops in this namespace and its inode", () => {
    const lines = [{ time: "t1", netnsInode: 7 }, { time: "t2", netnsInode: 8 }, { time: "t3" }];
    assert.ok(!ids(snap({ tableFull: lines })).includes("table-full-drops"), "drop = 0 here: the lines are another namespace's");
    const r = diagnose(snap({ tableFull: lines, stats: { drop: 5 } }));
    const f = r.findings.find((x) => x.id === "table-full-drops");
    assert.ok(f !== undefined);
    assert.equal(f.evidence["kernel_log_lines"], 2);
    assert.equal(f.severity, "critical");
    const raise = r.recommendations.find((x) => x.id === "raise-limit");
    assert.ok(raise !== undefined);
    assert.deepEqual(raise.commands, ["sysctl -w net.netfilter.nf_conntrack_max=2048", "echo 2048 > /sys/module/nf_conntrack/parameters/hashsize"]);
    assert.equal(raise.memory_bytes, (2048 - 1000) * 256 + (2048 - 1024) * 8);
    assert.ok(raise.files.some((x) => x.path === "/etc/modprobe.d/nf_conntrack.conf" && x.content === "options nf_conntrack hashsize=2048\n"));
  });

  it("insert races are told apart from a full table; a small hash is flagged", () => {
    const r = diagnose(snap({ stats: { drop: 0, insert_failed: 12, clash_resolve: 40 } }));
    const f = r.findings.find((x) => x.id === "insert-races");
    assert.deepEqual([f?.severity, f?.evidence["insert_failed"], f?.evidence["clash_resolve"]], ["warning", 12, 40]);
    assert.ok(!r.recommendations.some((x) => x.id === "raise-limit"), "raising the limit does not fix races");
    assert.ok(ids(snap({ sysctls: { nf_conntrack_max: 100_000, nf_conntrack_buckets: 1024 } })).includes("hash-too-small"));
    assert.ok(!ids(snap()).includes("hash-too-small"));
  });

  it("usage thresholds, and a child namespace's read-only limit", () => {
    assert.ok(!ids(snap({ count: 700 })).includes("table-nearly-full"));
    assert.ok(ids(snap({ count: 800 })).includes("table-nearly-full"));
    const r = diagnose(snap({ count: 950, modes: { nf_conntrack_max: 0o444 } }));
    assert.equal(r.findings.find((x) => x.id === "table-nearly-full")?.severity, "critical");
    assert.equal(r.limit_writable, false);
    assert.ok(r.recommendations.find((x) => x.id === "raise-limit")?.notes.some((n) => n.includes("global")));
  });

  it("forecast from two samples: fill rate, time until full, the steady-state model on the counters", () => {
    const r = diagnose(
      snap({
        meta: { netns: "", takenAtMs: 1_010_000, firstTakenAtMs: 1_000_000 },
        firstCount: 400,
        count: 500,
        firstStats: { insert: 1000, drop: 0, early_drop: 0, insert_failed: 0 },
        stats: { insert: 1200, drop: 30, early_drop: 10, insert_failed: 0 },
      }),
    );
    const f = r.forecast;
    assert.ok(f !== null);
    assert.equal(f.interval_seconds, 10);
    assert.equal(f.fill_rate_per_second, 10);
    assert.equal(f.seconds_until_full, 50);
    assert.equal(f.insert_rate_per_second, 20);
    assert.equal(f.drop_rate_per_second, 3);
    // 20 inserts/s, 10 departures/s: mean lifetime 500/10 = 50 s, steady state 20 × 50.
    assert.equal(f.steady_state_entries, 1000);
    // Without a table the model runs on one flow: 20/s, each held the 50 s mean lifetime; full (1000) in 50 s as the fill says.
    assert.deepEqual(r.steady_state, { basis: "counters", entries: 1000, seconds_until_full: 50, by_state: [] });
    assert.ok(r.findings.some((x) => x.id === "early-drops" && x.evidence["early_drop_per_second"] === 1));
  });
});
