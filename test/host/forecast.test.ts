/**
 * The doctor's steady state is the simulator's model fed with the live rates:
 * a simulated table (src/sim), listed as `conntrack -L -o extended` prints it,
 * read by the doctor, must forecast what the model predicts for the
 * scenario itself running on — state by state.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { diagnose } from "../../src/host/diagnose.js";
import type { DoctorReport } from "../../src/host/diagnose.js";
import type { Snapshot } from "../../src/host/snapshot.js";
import { TableCensus } from "../../src/host/table.js";
import { runScenario } from "../../src/sim/engine.js";
import { predict, timeoutsFromSysctls } from "../../src/sim/model.js";
import { parseScenario } from "../../src/sim/scenario.js";

const SCENARIO = `name: doctor-forecast
duration: 60
seed: 5
traffic:
  - type: syn-flood
    rate: 20
    start: 30
    answered: false
  - type: dns
    rate: 10
    arrival: constant
  - type: clients
    rate: 5
    arrival: constant
    close: rst
    loss: { rst: 1 }
`;

function doctorOn(yaml: string, orphanIdleSeconds: number): { report: DoctorReport; model: Record<string, number>; max: number } {
  const s = parseScenario(yaml);
  const sim = runScenario(s);
  const table = new TableCensus({ sysctls: {}, orphanIdleSeconds });
  for (const l of sim.tracker.formatTable({ extended: true })) table.line(l);
  assert.equal(table.badCount, 0);
  const max = 262144;
  const snap: Snapshot = {
    meta: { netns: "sim", takenAtMs: 0 },
    conntrackLoaded: true,
    sysctls: { nf_conntrack_max: max, nf_conntrack_buckets: max },
    modes: {},
    count: table.total,
    table,
    tableFull: [],
    problems: [],
    bad: [],
  };
  // The scenario's own prediction once it has run far longer than every timeout: the demand
  // per state uncapped (the five-day orphans alone would exceed the table, where the model scales
  // its capped occupancy down; doctor reports each state's demand and says when it overflows).
  const long = predict({ ...s, duration: 1e6 }, timeoutsFromSysctls(sim.tracker.sysctl), max);
  return { report: diagnose(snap, { minEntries: 10 }), model: long.wanted_occupancy, max };
}

function near(got: number, want: number, what: string): void {
  assert.ok(Math.abs(got - want) <= Math.max(2, want * 0.1), `${what}: ${got}, the model says ${Math.round(want)}`);
}

describe("doctor: the steady state from the simulator's model", () => {
  it("reads each state's rate from the idle ages and holds it for the state's timeout", () => {
    const { report, model, max } = doctorOn(SCENARIO, 5);
    const st = report.steady_state;
    assert.ok(st !== null);
    assert.equal(st.basis, "table");
    const row = (state: string, kind: string) => st.by_state.find((x) => `${x.protocol} ${x.state}` === state && x.kind === kind);
    // SYN flood for 30 s of its 120 s timeout: 600 now, 20/s × 120 s on.
    const syn = row("tcp SYN_SENT", "timeout");
    assert.ok(syn !== undefined);
    assert.equal(syn.entries_now, 600);
    near(syn.rate_per_second ?? 0, 20, "SYN_SENT rate");
    assert.equal(syn.hold_seconds, 120);
    near(syn.entries, model["tcp SYN_SENT"] ?? 0, "SYN_SENT");
    // DNS has run past its 30 s timeout: already steady.
    const dns = row("udp REPLIED", "timeout");
    near(dns?.entries ?? 0, model["udp REPLIED"] ?? 0, "udp REPLIED");
    near(dns?.entries ?? 0, dns?.entries_now ?? 0, "DNS is stationary");
    // Orphans of lost RSTs pile up for the five-day ESTABLISHED timeout.
    const orph = row("tcp ESTABLISHED", "orphans");
    near(orph?.rate_per_second ?? 0, 5, "orphan rate");
    near(orph?.entries ?? 0, model["tcp ESTABLISHED"] ?? 0, "orphans");
    near(
      st.entries,
      Object.values(model).reduce((a, b) => a + b, 0),
      "total",
    );
    // 5/s for five days is 2.16 M entries: over the 262 144 limit, which the model reaches in about 262 144 / 5 s.
    assert.ok(st.seconds_until_full !== null);
    near(st.seconds_until_full, max / 5, "time until full");
    const f = report.findings.find((x) => x.id === "forecast-full");
    assert.equal(f?.evidence["growing"], "tcp ESTABLISHED");
    assert.equal(report.idle.find((x) => x.protocol === "tcp" && x.state === "SYN_SENT")?.timeout_seconds, 120);
  });

  it("a flood that stopped drains: no new entries in the first idle bucket", () => {
    const { report, model } = doctorOn(SCENARIO.replace("start: 30", "start: 10\n    end: 30"), 3600);
    const syn = report.steady_state?.by_state.find((x) => x.protocol === "tcp" && x.state === "SYN_SENT");
    assert.ok(syn !== undefined);
    assert.equal(syn.kind, "ended");
    assert.equal(syn.entries, 0);
    assert.equal(model["tcp SYN_SENT"] ?? 0, 0);
    // Without orphans (idle under an hour) every ESTABLISHED entry is taken as live and stays.
    const est = report.steady_state?.by_state.find((x) => x.protocol === "tcp" && x.state === "ESTABLISHED");
    assert.ok(est !== undefined);
    assert.equal(est.kind, "stationary");
    assert.equal(est.entries, est.entries_now);
    assert.ok(!report.findings.some((x) => x.id === "forecast-full"));
  });
});
