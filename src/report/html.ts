/**
 * The self-contained HTML report of `ctlab simulate`: uPlot and its CSS
 * inlined, the data inlined as JSON, nothing fetched (a Content-Security-
 * Policy forbids every network request). Long runs are downsampled to at
 * most MAX_POINTS per series (each point the maximum of its bucket, so peaks
 * and drops stay visible).
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import type { RunData } from "../sim/sweep.js";
import { formatBytes } from "../sim/conclusions.js";
import { policySectionHtml } from "./policies.js";

export const MAX_POINTS = 1500;

function asset(rel: string): string {
  const req = createRequire(import.meta.url);
  return readFileSync(req.resolve(rel), "utf8");
}

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c] as string);
}

/** Bucket maxima of `ys` over at most `points` buckets, with the bucket's last x. */
export function downsample(xs: readonly number[], ys: readonly number[], points = MAX_POINTS): { x: number[]; y: number[] } {
  if (xs.length <= points) return { x: [...xs], y: [...ys] };
  const x: number[] = [];
  const y: number[] = [];
  for (let i = 0; i < points; i++) {
    const a = Math.floor((i * xs.length) / points);
    const b = Math.floor(((i + 1) * xs.length) / points);
    let m = -Infinity;
    for (let j = a; j < b; j++) m = Math.max(m, ys[j] as number);
    x.push(xs[b - 1] as number);
    y.push(m);
  }
  return { x, y };
}

interface Chart {
  id: string;
  title: string;
  unit: string;
  x: number[];
  series: Array<{ label: string; y: number[] }>;
}

function chartsOf(runs: readonly RunData[]): Chart[] {
  const charts: Chart[] = [];
  const first = runs[0];
  if (first === undefined) return charts;
  const xs = first.timeline.map((s) => s.t);
  const ds = (ys: number[]) => downsample(xs, ys);
  const sx = ds(xs.map(() => 0)).x;
  // Entries by state, one chart per run (at most four).
  runs.slice(0, 4).forEach((r, i) => {
    const states = new Set<string>();
    for (const s of r.timeline) for (const k of Object.keys(s.by_state)) states.add(k);
    const rx = r.timeline.map((s) => s.t);
    const series = [...states].sort().map((k) => ({
      label: k,
      y: downsample(
        rx,
        r.timeline.map((s) => s.by_state[k] ?? 0),
      ).y,
    }));
    series.push({
      label: "nf_conntrack_max",
      y: downsample(
        rx,
        rx.map(() => r.summary.nf_conntrack_max),
      ).y,
    });
    charts.push({ id: `states${i}`, title: `Entries by state${runs.length > 1 ? `: ${r.label}` : ""}`, unit: "entries", x: downsample(rx, rx).x, series });
  });
  const per = (f: (s: RunData["timeline"][number]) => number) => runs.map((r) => ({ label: r.label, y: ds(r.timeline.map(f)).y }));
  charts.push({
    id: "entries",
    title: "Entries: simulated and the model's prediction",
    unit: "entries",
    x: sx,
    series: [
      ...per((s) => s.entries),
      ...runs.map((r) => ({ label: `model: ${r.label}`, y: ds(r.timeline.map((s) => Math.min(r.summary.nf_conntrack_max, modelAt(r, s.t)))).y })),
    ],
  });
  charts.push({
    id: "drops",
    title: "Drops per second (table full) and early drops",
    unit: "per second",
    x: sx,
    series: [
      ...per((s) => s.drops).map((x) => ({ ...x, label: `drops: ${x.label}` })),
      ...per((s) => s.early_drops).map((x) => ({ ...x, label: `early drops: ${x.label}` })),
    ],
  });
  charts.push({
    id: "legit",
    title: "Legitimate connections: success ratio per second",
    unit: "%",
    x: sx,
    series: per((s) => {
      const d = s.legit_completed + s.legit_failed;
      return d === 0 ? 100 : (100 * s.legit_completed) / d;
    }),
  });
  charts.push({
    id: "legit-failed",
    title: "Legitimate connections failed per second",
    unit: "per second",
    x: sx,
    series: per((s) => s.legit_failed),
  });
  charts.push({
    id: "memory",
    title: "Kernel memory of the table",
    unit: "MiB",
    x: sx,
    series: per((s) => Math.round((s.kernel_memory_bytes / 1048576) * 10) / 10),
  });
  return charts;
}

/** The model's expected total at second t (Little's law per flow, as in model.ts). */
function modelAt(r: RunData, t: number): number {
  let n = 0;
  for (const f of r.model.flows) {
    if (t <= f.start) continue;
    const from = Math.max(f.start, t - f.hold);
    const to = Math.min(f.end, t);
    if (to > from) n += f.rate * (to - from);
  }
  return Math.round(n);
}

/** The report as one HTML document. */
/** The banner of a report cut short by Ctrl-C: what was simulated of what was asked. */
function interruptedNote(runs: readonly RunData[]): string {
  const cut = runs.filter((r) => r.summary.interrupted);
  if (cut.length === 0) return "";
  const what = cut.map((r) => `${runs.length > 1 ? `${esc(r.label)}: ` : ""}${r.summary.simulated_s} s`).join(", ");
  return `<section class="interrupted" id="interrupted"><h2>Interrupted</h2><p>The run was stopped with Ctrl-C; this report shows what was simulated (${what}).</p></section>\n`;
}

export function htmlReport(opts: { title: string; scenarioYaml: string; runs: readonly RunData[]; conclusions: readonly string[] }): string {
  const charts = chartsOf(opts.runs);
  const rows = opts.runs
    .map((r) => {
      const s = r.summary;
      const sr = s.legit.success_ratio === null ? "–" : `${(s.legit.success_ratio * 100).toFixed(1)} %`;
      return `<tr><td>${esc(r.label)}</td><td>${s.nf_conntrack_max.toLocaleString("en-US")}</td><td>${s.peak_entries.toLocaleString("en-US")}</td><td>${s.first_drop_s ?? "never"}</td><td>${s.drops.toLocaleString("en-US")}</td><td>${s.early_drops.toLocaleString("en-US")}</td><td>${s.legit.attempted.toLocaleString("en-US")}</td><td>${s.legit.failed.toLocaleString("en-US")}</td><td>${sr}</td><td>${formatBytes(s.kernel_memory_bytes.peak)}</td><td>${r.model.time_to_full_s ?? "never"}</td></tr>`;
    })
    .join("\n");
  const conclusions = [...opts.runs.flatMap((r) => (opts.runs.length > 1 ? r.conclusions.map((c) => `${r.label}: ${c}`) : r.conclusions)), ...opts.conclusions];
  const data = JSON.stringify(charts).replace(/</g, "\\u003c");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(opts.title)} — ctlab simulate</title>
<style>${asset("uplot/dist/uPlot.min.css")}
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:18px 28px}header h1{margin:0;font-size:20px}header p{margin:4px 0 0;opacity:.8}
main{padding:20px 28px;max-width:1280px}section{background:#fff;border-radius:8px;box-shadow:0 1px 3px #0001;padding:14px 18px;margin:0 0 18px}
h2{font-size:15px;margin:0 0 10px}ul.conc li{margin:3px 0}table{border-collapse:collapse;width:100%}th,td{text-align:right;padding:4px 8px;border-bottom:1px solid #e4e7ec}th:first-child,td:first-child{text-align:left}
.interrupted{background:#fff4e5;border-left:4px solid #e8590c}.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(560px,1fr));gap:18px}.chart{min-height:300px}pre{background:#f0f2f5;padding:10px;border-radius:6px;overflow:auto;font-size:12px}
</style></head><body>
<header><h1>${esc(opts.title)}</h1><p>ctlab simulate · ${opts.runs.length} run${opts.runs.length > 1 ? "s" : ""} · every packet through ctlab's conntrack engine</p></header>
<main>
${interruptedNote(opts.runs)}<section><h2>Conclusions</h2><ul class="conc">${conclusions.map((c) => `<li>${esc(c)}</li>`).join("")}</ul></section>
<section><h2>Runs</h2><table><thead><tr><th>run</th><th>nf_conntrack_max</th><th>peak entries</th><th>first drop (s)</th><th>drops</th><th>early drops</th><th>legit attempted</th><th>legit failed</th><th>legit success</th><th>kernel memory</th><th>model: full after (s)</th></tr></thead><tbody>
${rows}
</tbody></table></section>
${policySectionHtml(opts.runs)}
<div class="grid">${charts.map((c) => `<section><h2>${esc(c.title)}</h2><div class="chart" id="chart-${c.id}" data-chart="${c.id}"></div></section>`).join("")}</div>
<section><h2>The scenario as run</h2><pre>${esc(opts.scenarioYaml)}</pre></section>
</main>
<script>${asset("uplot/dist/uPlot.iife.min.js")}</script>
<script>
(function(){
  var charts = ${data};
  var palette = ["#2563eb","#dc2626","#16a34a","#d97706","#7c3aed","#0891b2","#db2777","#4b5563","#65a30d","#9333ea"];
  window.__ctlabCharts = {};
  charts.forEach(function(c){
    var el = document.getElementById("chart-" + c.id);
    var w = Math.max(400, el.clientWidth || 560);
    var series = [{label: "s"}].concat(c.series.map(function(s, i){
      var dashed = /^model|nf_conntrack_max/.test(s.label);
      return {label: s.label, stroke: palette[i % palette.length], width: dashed ? 1 : 1.5, dash: dashed ? [6, 4] : undefined, points: {show: false}};
    }));
    var data = [c.x].concat(c.series.map(function(s){ return s.y; }));
    var u = new uPlot({width: w, height: 260, series: series, scales: {x: {time: false}}, axes: [{label: "seconds"}, {label: c.unit, size: 70}]}, data, el);
    window.__ctlabCharts[c.id] = u;
  });
  document.body.dataset.rendered = String(charts.length);
})();
</script>
</body></html>
`;
}
