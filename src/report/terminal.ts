/**
 * The terminal summary of `ctlab simulate`: per run the headline numbers,
 * sparklines of the table and of legitimate traffic, the model beside the
 * simulation, and the conclusions.
 */
import type { RunData } from "../sim/sweep.js";
import { formatBytes } from "../sim/conclusions.js";
import { comparesPolicies, policyTableText, reasons } from "./policies.js";

const BARS = "▁▂▃▄▅▆▇█";

/** A sparkline of `values` in `width` characters (each the maximum of its bucket), scaled to `max` (default: the largest value). */
export function sparkline(values: readonly number[], width = 60, max?: number): string {
  if (values.length === 0) return "";
  const n = Math.min(width, values.length);
  const cells: number[] = [];
  for (let i = 0; i < n; i++) {
    const a = Math.floor((i * values.length) / n);
    const b = Math.max(a + 1, Math.floor(((i + 1) * values.length) / n));
    let m = 0;
    for (let j = a; j < b; j++) m = Math.max(m, values[j] as number);
    cells.push(m);
  }
  const top = max ?? Math.max(...cells);
  return cells.map((v) => (top <= 0 || v <= 0 ? " " : BARS[Math.min(7, Math.floor((v / top) * 7.999))])).join("");
}

function n(x: number): string {
  return x.toLocaleString("en-US");
}

/** The summary text (lines end with "\n"). */
export function terminalSummary(scenarioName: string, duration: number, runs: readonly RunData[], conclusions: readonly string[]): string {
  const out: string[] = [];
  const cut = runs.filter((r) => r.summary.interrupted);
  const simulated =
    cut.length === 0 ? `${duration} s simulated` : `interrupted: ${Math.min(...cut.map((r) => r.summary.simulated_s))} of ${duration} s simulated`;
  out.push(`ctlab simulate: ${scenarioName}, ${simulated}${runs.length > 1 ? `, ${runs.length} runs` : ""}`);
  for (const r of runs) {
    const s = r.summary;
    out.push("");
    if (runs.length > 1) out.push(`── ${r.label}`);
    const ent = r.timeline.map((x) => x.entries);
    const drops = r.timeline.map((x) => x.drops + x.legit_failed);
    const ok = r.timeline.map((x) => x.legit_completed);
    const max = s.nf_conntrack_max;
    out.push(`  entries  ${sparkline(ent, 60, max)}  peak ${n(s.peak_entries)} / ${n(max)}`);
    out.push(`  legit ok ${sparkline(ok, 60)}  ${n(s.legit.completed)} completed`);
    out.push(`  trouble  ${sparkline(drops, 60)}  ${n(s.drops)} dropped, ${n(s.legit.failed)} legit failed`);
    const sr = s.legit.success_ratio === null ? "–" : `${(s.legit.success_ratio * 100).toFixed(1)} %`;
    out.push(
      `  legit success ${sr} (${n(s.legit.attempted)} attempted) · first drop ${s.first_drop_s === null ? "never" : `${s.first_drop_s} s`} · early drops ${n(s.early_drops)} · kernel memory ${formatBytes(s.kernel_memory_bytes.peak)} (full: ${formatBytes(s.kernel_memory_bytes.at_max)})`,
    );
    const last = r.timeline[r.timeline.length - 1];
    const sim = last === undefined ? 0 : last.entries;
    out.push(
      `  model    ${n(Math.round(r.model.total))} entries at the end${r.model.exceeds_table ? ` (the table's limit: the traffic wants ${n(Math.round(r.model.wanted))}, ${(r.model.wanted / max).toFixed(1)}× nf_conntrack_max)` : ""}, full ${r.model.time_to_full_s === null ? "never" : `after ${r.model.time_to_full_s} s`} · simulated ${n(sim)}`,
    );
    if (comparesPolicies(runs))
      out.push(`  policy   ${s.policy} · live evictions ${n(s.live_evictions)} · evicted: ${reasons(s.evictions)} · refused: ${reasons(s.refusals)}`);
    for (const c of r.conclusions) out.push(`  · ${c}`);
    out.push(`  ${n(s.packets)} packets in ${(s.elapsed_ms / 1000).toFixed(1)} s${s.interrupted ? " (interrupted)" : ""}`);
  }
  if (comparesPolicies(runs)) {
    out.push("");
    out.push("Table policies");
    out.push(policyTableText(runs).trimEnd());
  }
  if (conclusions.length > 0) {
    out.push("");
    out.push("Comparison");
    for (const c of conclusions) out.push(`  · ${c}`);
  }
  return out.join("\n") + "\n";
}
