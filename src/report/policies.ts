/**
 * Table policies side by side: the per-run comparison `ctlab simulate
 * --policy A --policy B` prints and puts in its HTML report, and the
 * scenario × policy matrix of `--policies-matrix` (Markdown, so the README
 * can show it as printed).
 */
import type { RunData } from "../sim/sweep.js";
import { formatBytes } from "../sim/conclusions.js";

function n(x: number): string {
  return x.toLocaleString("en-US");
}

function pct(r: number | null): string {
  return r === null ? "–" : `${(Math.floor(r * 10000) / 100).toFixed(2)} %`;
}

/** "idle 12,286, early-drop 7" — the non-zero counts of a by-reason record. */
export function reasons(rec: Readonly<Record<string, number>>): string {
  const parts = Object.entries(rec)
    .filter(([, v]) => v > 0)
    .map(([k, v]) => `${k} ${n(v)}`);
  return parts.length === 0 ? "none" : parts.join(", ");
}

/** Whether the runs compare policies (some run names one). */
export function comparesPolicies(runs: readonly RunData[]): boolean {
  return runs.some((r) => r.params.policy !== undefined);
}

interface Row {
  label: string;
  cells: string[];
}

const HEAD = ["legit ok", "live evicted", "drops", "first drop", "peak entries", "peak memory", "evictions", "refused"];

function rows(runs: readonly RunData[]): Row[] {
  return runs.map((r) => {
    const s = r.summary;
    return {
      label: r.label,
      cells: [
        pct(s.legit.success_ratio),
        n(s.live_evictions),
        n(s.drops),
        s.first_drop_s === null ? "never" : `${s.first_drop_s} s`,
        n(s.peak_entries),
        formatBytes(s.kernel_memory_bytes.peak),
        reasons(s.evictions),
        reasons(s.refusals),
      ],
    };
  });
}

/** The policy comparison as aligned text lines (ending with "\n"). */
export function policyTableText(runs: readonly RunData[]): string {
  const rs = rows(runs);
  const w0 = Math.max(6, ...rs.map((r) => r.label.length));
  const widths = HEAD.map((h, i) => Math.max(h.length, ...rs.map((r) => (r.cells[i] as string).length)));
  const line = (label: string, cells: readonly string[]) =>
    "  " + label.padEnd(w0) + "  " + cells.map((c, i) => (i >= 6 ? c : c.padStart(widths[i] as number))).join("  ");
  return [line("policy", HEAD), ...rs.map((r) => line(r.label, r.cells))].map((l) => l.trimEnd()).join("\n") + "\n";
}

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/** The policy comparison as an HTML section ("" when the runs do not compare policies). */
export function policySectionHtml(runs: readonly RunData[]): string {
  if (!comparesPolicies(runs)) return "";
  const body = rows(runs)
    .map((r) => `<tr><td>${esc(r.label)}</td>${r.cells.map((c) => `<td>${esc(c)}</td>`).join("")}</tr>`)
    .join("\n");
  return `<section id="policies"><h2>Table policies</h2><table><thead><tr><th>run</th>${HEAD.map((h) => `<th>${esc(h)}</th>`).join("")}</tr></thead><tbody>
${body}
</tbody></table><p>live evicted: entries evicted while their connection still sent packets (the next one found no entry before the entry's deadline).</p></section>`;
}

/** One cell of the matrix: a run's legitimate success and live evictions. */
export interface MatrixCell {
  scenario: string;
  policy: string;
  success: number | null;
  live: number;
  drops: number;
  firstDrop: number | null;
  peakMemory: number;
}

/** The scenario × policy matrix as a Markdown table ("legit ok · live evicted" per cell). */
export function policyMatrixMarkdown(cells: readonly MatrixCell[], policies: readonly string[], scenarios: readonly string[]): string {
  const head = `| scenario | ${policies.join(" | ")} |`;
  const rule = `|---|${policies.map(() => "---:").join("|")}|`;
  const lines = scenarios.map((sc) => {
    const row = policies.map((p) => {
      const c = cells.find((x) => x.scenario === sc && x.policy === p);
      return c === undefined ? "–" : `${pct(c.success)} · ${n(c.live)}`;
    });
    return `| ${sc} | ${row.join(" | ")} |`;
  });
  return [head, rule, ...lines].join("\n") + "\n";
}
