/**
 * `ctlab simulate --policies-matrix`: every built-in scenario under every
 * table policy, at each scenario's own table size, as one table of
 * legitimate success and live evictions. With `--duration` every scenario
 * is cut short: sources that would start later are left out.
 */
import { BUILTIN_SCENARIOS, builtinScenario } from "./builtin.js";
import { parseScenario } from "./scenario.js";
import type { Scenario } from "./scenario.js";
import type { RunData, RunSpec } from "./sweep.js";
import type { PolicyConfig } from "../conntrack/policy/registry.js";
import type { MatrixCell } from "../report/policies.js";

/**
 * The scenarios of the matrix: every built-in one but `stateless`, whose
 * NOTRACK rules keep the flood out of the table (a policy has nothing to decide).
 */
export function matrixScenarios(): string[] {
  return BUILTIN_SCENARIOS.map((b) => b.name).filter((n) => n !== "stateless");
}

/** The runs of the matrix: scenario by scenario, every policy. */
export function planPolicyMatrix(
  scenarios: readonly string[],
  policies: readonly PolicyConfig[],
  overrides: { seed?: number; duration?: number } = {},
): RunSpec[] {
  const out: RunSpec[] = [];
  for (const name of scenarios) {
    let s: Scenario = builtinScenario(name);
    if (overrides.seed !== undefined || overrides.duration !== undefined) {
      const o = structuredClone(s) as Record<string, unknown>;
      if (overrides.seed !== undefined) o.seed = overrides.seed;
      if (overrides.duration !== undefined) {
        // A shortened matrix keeps the sources that start in time and ends the others' at the new end.
        const d = overrides.duration;
        o.duration = d;
        const traffic = (o.traffic as Array<Record<string, unknown>>).filter((t) => typeof t.start !== "number" || t.start < d);
        o.traffic = traffic.map((t) => (typeof t.end === "number" && t.end > d ? { ...t, end: d } : t));
      }
      s = parseScenario(JSON.stringify(o), `built-in scenario "${name}" with --seed/--duration`);
    }
    for (const p of policies) {
      const pn = typeof p === "string" ? p : p.name;
      out.push({ scenario: s, sysctls: {}, label: `${name} ${pn}`, params: { scenario: name, policy: pn }, rules: null, writePcap: null, policy: p });
    }
  }
  return out;
}

/** The cells of finished matrix runs. */
export function matrixCells(runs: readonly RunData[]): MatrixCell[] {
  return runs.map((r) => ({
    scenario: String(r.params.scenario),
    policy: String(r.params.policy),
    success: r.summary.legit.success_ratio,
    live: r.summary.live_evictions,
    drops: r.summary.drops,
    firstDrop: r.summary.first_drop_s,
    peakMemory: r.summary.kernel_memory_bytes.peak,
  }));
}
