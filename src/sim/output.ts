/**
 * `ctlab simulate --json` and `--csv`: the documented output. The JSON shape
 * is defined once here in zod; schema/simulate.schema.json is generated from
 * it and a test holds the shipped file and real output to it.
 */
import { z } from "zod";
import type { RunData } from "./sweep.js";
import type { Scenario } from "./scenario.js";

const count = z.number().int().min(0);

const sampleSchema = z.strictObject({
  t: z.number().describe("seconds since the scenario start, at the end of the second measured"),
  entries: count,
  by_state: z.record(z.string(), count).describe('entries by "protocol STATE", e.g. "tcp SYN_RECV", "udp UNREPLIED"'),
  inserts: count,
  deletes: count,
  drops: count.describe("packets conntrack dropped (table full)"),
  early_drops: count,
  invalid: count,
  rule_drops: count,
  legit_attempted: count,
  legit_completed: count,
  legit_failed: count,
  kernel_memory_bytes: count.describe("slab object size × entries + 8 B × buckets (+ event extension)"),
  ctlab_memory_bytes: count,
});

const runSchema = z.strictObject({
  label: z.string(),
  params: z.record(z.string(), z.union([z.string(), z.number()])).describe("everything varied for this run"),
  summary: z.strictObject({
    legit: z.strictObject({ attempted: count, completed: count, failed: count, vanished: count, success_ratio: z.number().min(0).max(1).nullable() }),
    first_drop_s: z.number().nullable().describe("when conntrack first dropped a packet, or null"),
    peak_entries: count,
    drops: count,
    early_drops: count,
    rule_drops: count,
    invalid: count,
    packets: count,
    kernel_memory_bytes: z.strictObject({ peak: count, at_max: count }),
    ctlab_memory_bytes: count,
    nf_conntrack_max: count,
    nf_conntrack_buckets: count,
    policy: z.string().describe("the table policy of the run (kernel, adaptive, emergency, recycle-half-open, quota, ctlab)"),
    live_evictions: count.describe(
      "entries evicted while their connection was still exchanging packets: the next packet found no entry before the entry's deadline",
    ),
    evictions: z
      .record(z.string(), count)
      .describe("entries evicted before their timeout, by reason (early-drop, gc, scaled-timeout, emergency-timeout, half-open, idle)"),
    refusals: z.record(z.string(), count).describe("new entries refused (packet dropped), by reason (table-full, quota, not-syn, all-active, source-share)"),
    pressure_changes: count.describe("pressure-level changes of the policy"),
    simulated_s: count,
    interrupted: z.boolean(),
    elapsed_ms: count,
  }),
  model: z.strictObject({
    occupancy: z
      .record(z.string(), z.number())
      .describe("expected entries per state at the end, capped at nf_conntrack_max (when the demand exceeds it: the demand's proportions scaled down)"),
    total: z.number().describe("expected entries at the end: min(wanted, nf_conntrack_max)"),
    wanted: z.number().describe("what the traffic would hold in a table without limit (Little's law per state, uncapped)"),
    wanted_occupancy: z.record(z.string(), z.number()).describe("the uncapped demand per state"),
    exceeds_table: z.boolean().describe("the demand exceeds nf_conntrack_max: the table is full, occupancy is an estimate"),
    time_to_full_s: z.number().nullable(),
  }),
  conclusions: z.array(z.string()),
  timeline: z.array(sampleSchema),
});

export const simulateOutputSchema = z.strictObject({
  scenario: z.record(z.string(), z.unknown()).describe("the scenario as run, every default filled in"),
  runs: z.array(runSchema).min(1),
  conclusions: z.array(z.string()).describe("comparisons across runs"),
});

export type SimulateOutput = z.output<typeof simulateOutputSchema>;

export function simulateJsonSchema(): Record<string, unknown> {
  const s = z.toJSONSchema(simulateOutputSchema) as Record<string, unknown>;
  return { ...s, $id: "https://ctlab.dev/schema/simulate.schema.json", title: "ctlab simulate --json" };
}

/** The JSON document of a set of runs. */
export function toOutput(scenario: Scenario, runs: readonly RunData[], conclusions: string[]): SimulateOutput {
  return {
    scenario: scenario,
    runs: runs.map((r) => ({
      label: r.label,
      params: r.params,
      summary: r.summary,
      model: {
        occupancy: r.model.occupancy,
        total: r.model.total,
        wanted: r.model.wanted,
        wanted_occupancy: r.model.wanted_occupancy,
        exceeds_table: r.model.exceeds_table,
        time_to_full_s: r.model.time_to_full_s,
      },
      conclusions: r.conclusions,
      timeline: r.timeline,
    })),
    conclusions,
  };
}

/** One CSV row per run and second; states as columns (the union over all runs). */
export function toCsv(runs: readonly RunData[]): string {
  const states = new Set<string>();
  for (const r of runs) for (const s of r.timeline) for (const k of Object.keys(s.by_state)) states.add(k);
  const st = [...states].sort();
  const cols = [
    "run",
    "t",
    "entries",
    ...st,
    "inserts",
    "deletes",
    "drops",
    "early_drops",
    "invalid",
    "rule_drops",
    "legit_attempted",
    "legit_completed",
    "legit_failed",
    "kernel_memory_bytes",
    "ctlab_memory_bytes",
  ];
  const q = (v: string) => (/[",\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v);
  const lines = [cols.map(q).join(",")];
  for (const r of runs) {
    for (const s of r.timeline) {
      lines.push(
        [
          q(r.label),
          s.t,
          s.entries,
          ...st.map((k) => s.by_state[k] ?? 0),
          s.inserts,
          s.deletes,
          s.drops,
          s.early_drops,
          s.invalid,
          s.rule_drops,
          s.legit_attempted,
          s.legit_completed,
          s.legit_failed,
          s.kernel_memory_bytes,
          s.ctlab_memory_bytes,
        ].join(","),
      );
    }
  }
  return lines.join("\n") + "\n";
}
