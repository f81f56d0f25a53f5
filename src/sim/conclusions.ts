/**
 * Conclusions in words, from the numbers of one or more runs: what an
 * operator would otherwise read off the charts.
 */
import type { RunResult as FullRun } from "./engine.js";

/** What conclusions read of a run (a live run or one back from a worker). */
type RunResult = Pick<FullRun, "label" | "summary" | "timeline" | "model">;

/** "272 MiB", "1.5 GiB", "640 KiB". */
export function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v >= 100 || u === 0 ? Math.round(v) : v.toFixed(1)} ${units[u]}`;
}

function pct(x: number): string {
  const p = x * 100;
  return `${p >= 10 || p === 0 ? Math.round(p) : p.toFixed(1)} %`;
}

/** The first second the table was at nf_conntrack_max, or null. */
export function firstFullSecond(r: RunResult): number | null {
  for (const s of r.timeline) if (s.entries >= r.summary.nf_conntrack_max) return s.t;
  return null;
}

/** Legitimate connections failed / decided during the seconds the table dropped packets (or was full). */
function duringTrouble(r: RunResult): { failed: number; decided: number } | null {
  let failed = 0;
  let decided = 0;
  let any = false;
  for (const s of r.timeline) {
    if (s.drops > 0 || s.entries >= r.summary.nf_conntrack_max) {
      any = true;
      failed += s.legit_failed;
      decided += s.legit_failed + s.legit_completed;
    }
  }
  return any && decided > 0 ? { failed, decided } : null;
}

/** Sentences about one run. */
export function runConclusions(r: RunResult): string[] {
  const out: string[] = [];
  const s = r.summary;
  const full = firstFullSecond(r);
  if (full !== null) {
    let line = `The table is full after ${full} s (${s.nf_conntrack_max.toLocaleString("en-US")} entries)`;
    if (s.drops > 0)
      line += `; ${s.drops.toLocaleString("en-US")} packets dropped ("nf_conntrack: table full, dropping packet"), the first at ${s.first_drop_s} s`;
    if (s.early_drops > 0) line += `; early drop evicted ${s.early_drops.toLocaleString("en-US")} unassured entries to make room`;
    out.push(`${line}.`);
  } else {
    out.push(
      `The table never fills: at most ${s.peak_entries.toLocaleString("en-US")} of ${s.nf_conntrack_max.toLocaleString("en-US")} entries (${pct(s.peak_entries / Math.max(1, s.nf_conntrack_max))}).`,
    );
  }
  const t = duringTrouble(r);
  if (t !== null) out.push(`${pct(t.failed / t.decided)} of legitimate connections failed while the table was full or dropping.`);
  else if (s.legit.success_ratio !== null && s.legit.failed > 0) out.push(`${pct(1 - s.legit.success_ratio)} of legitimate connections failed.`);
  else if (s.legit.attempted > 0)
    out.push(
      `Every legitimate connection that finished succeeded (${s.legit.completed.toLocaleString("en-US")} of ${s.legit.attempted.toLocaleString("en-US")} attempted).`,
    );
  const last = r.timeline[r.timeline.length - 1];
  if (last !== undefined && last.entries > 0) {
    const est = last.by_state["tcp ESTABLISHED"] ?? 0;
    if (est / last.entries > 0.3 && est > 1000)
      out.push(
        `${est.toLocaleString("en-US")} entries are ESTABLISHED at the end: connections whose close the table never saw stay for nf_conntrack_tcp_timeout_established.`,
      );
  }
  if (s.rule_drops > 0) out.push(`The ruleset dropped ${s.rule_drops.toLocaleString("en-US")} packets.`);
  out.push(`Kernel memory peaks at ${formatBytes(s.kernel_memory_bytes.peak)} (${formatBytes(s.kernel_memory_bytes.at_max)} with the table full).`);
  const m = r.model;
  if (m.exceeds_table) {
    out.push(
      `The traffic wants ${Math.round(m.wanted).toLocaleString("en-US")} entries (Little's law), ${(m.wanted / Math.max(1, s.nf_conntrack_max)).toFixed(1)}× nf_conntrack_max: the model caps them at the table's ${s.nf_conntrack_max.toLocaleString("en-US")}; which ones hold the table then is early drop's choice, simulated above.`,
    );
  }
  if (m.time_to_full_s !== null || full !== null) {
    out.push(
      `The steady-state model predicts ${m.time_to_full_s === null ? "a table that never fills" : `a full table after ${m.time_to_full_s} s`}; the simulation ${full === null ? "never filled it" : `filled it after ${full} s`}.`,
    );
  }
  return out;
}

/** Sentences comparing runs of a sweep. */
export function sweepConclusions(runs: readonly RunResult[]): string[] {
  if (runs.length < 2) return [];
  const out: string[] = [];
  for (const r of runs) {
    const full = firstFullSecond(r);
    const sr = r.summary.legit.success_ratio;
    out.push(
      `With ${r.label}: ${full === null ? "it never fills" : `full after ${full} s`}, ${sr === null ? "no legitimate traffic" : `${pct(sr)} of legitimate connections succeed`}, at ${formatBytes(r.summary.kernel_memory_bytes.peak)} of kernel memory.`,
    );
  }
  return out;
}
