/**
 * The doctor's report as text. The JSON form is the DoctorReport itself
 * (schema/doctor.schema.json).
 */
import type { DoctorReport } from "../host/diagnose.js";
import { formatBytesIEC, formatDuration } from "../host/diagnose.js";
import { IDLE_BUCKET_LABELS } from "../host/table.js";
import type { KeyCount } from "../host/table.js";

function n(x: number): string {
  return x.toLocaleString("en-US").replace(/,/g, " ");
}

function pct(x: number): string {
  return `${(x * 100).toFixed(1)} %`;
}

function pad(s: string, w: number): string {
  return s.length >= w ? s : s + " ".repeat(w - s.length);
}

function lpad(s: string, w: number): string {
  return s.length >= w ? s : " ".repeat(w - s.length) + s;
}

function topBlock(title: string, rows: readonly KeyCount[], out: string[]): void {
  if (rows.length === 0) return;
  out.push(`  ${title}`);
  for (const r of rows) out.push(`    ${pad(r.key, 42)} ${lpad(n(r.entries), 10)}  ${lpad(pct(r.share), 7)}`);
}

/** The report of one namespace as text. */
export function formatDoctorText(r: DoctorReport): string {
  const out: string[] = [];
  out.push(`ctlab doctor — network namespace ${r.netns}${r.netns_inode !== null ? ` (net:[${r.netns_inode}])` : ""}, ${r.taken_at}`);
  out.push("");
  if (!r.conntrack_loaded) {
    out.push("Connection tracking is not in use here.");
    for (const f of r.findings) out.push(`  ${f.detail}`);
    problems(r, out);
    return out.join("\n") + "\n";
  }
  const limit = r.limit ?? 0;
  out.push(
    `Table      ${n(r.entries)} / ${r.limit === null ? "?" : n(limit)} entries${r.usage !== null ? ` (${pct(r.usage)})` : ""}${r.limit_writable === false ? "  [nf_conntrack_max is global: read-only in this namespace]" : ""}`,
  );
  if (r.buckets !== null) out.push(`Hash       ${n(r.buckets)} buckets, ${(r.average_chain_length ?? 0).toFixed(2)} tuples per chain on average (2 per entry)`);
  const m = r.kernel_memory_bytes;
  out.push(
    `Memory     ${formatBytesIEC(m.now)} now, ${m.at_limit === null ? "?" : formatBytesIEC(m.at_limit)} at the limit (${m.per_entry} B per entry, ${formatBytesIEC(m.buckets)} of buckets)${r.host_memory_bytes !== null ? `; host ${formatBytesIEC(r.host_memory_bytes)}` : ""}`,
  );
  if (r.entries_listed !== null)
    out.push(
      `Listed     ${n(r.entries_listed)} entries: ${n(r.unreplied)} UNREPLIED, ${n(r.assured)} ASSURED, ${n(r.natted)} NATed${r.expectations !== null ? `; ${n(r.expectations)} expectations` : ""}`,
    );
  if (r.timestamps.entries > 0 || r.accounting.entries > 0) {
    const parts: string[] = [];
    if (r.timestamps.entries > 0) parts.push(`oldest entry created ${formatDuration(r.timestamps.oldest_age_seconds ?? 0)} ago (nf_conntrack_timestamp)`);
    if (r.accounting.entries > 0) parts.push(`${n(r.accounting.packets)} packets, ${formatBytesIEC(r.accounting.bytes)} in listed entries (nf_conntrack_acct)`);
    out.push(`Ages       ${parts.join("; ")}`);
  }
  if (r.stats !== null) {
    const keys = ["found", "invalid", "insert", "insert_failed", "drop", "early_drop", "error", "search_restart", "clash_resolve", "chaintoolong"];
    out.push(
      `Counters   ${keys
        .filter((k) => r.stats?.[k] !== undefined)
        .map((k) => (r.stats_not_counted.includes(k) ? `${k}=n/a` : `${k}=${r.stats?.[k] ?? 0}`))
        .join(" ")}`,
    );
    if (r.stats_not_counted.length > 0)
      out.push(`           n/a: ${r.stats_not_counted.join(", ")} not counted by this kernel for entries that packets make (it counts conntrack -I only)`);
  }
  if (r.table_full_log.lines > 0)
    out.push(
      `Kernel log ${r.table_full_log.lines} "table full, dropping packet" line(s), first ${r.table_full_log.first ?? "?"}, last ${r.table_full_log.last ?? "?"}`,
    );
  const f = r.forecast;
  if (f !== null) {
    const full = f.seconds_until_full === null ? "not filling" : `full in ${formatDuration(f.seconds_until_full)}`;
    out.push(
      `Forecast   over ${f.interval_seconds.toFixed(1)} s: ${f.fill_rate_per_second >= 0 ? "+" : ""}${f.fill_rate_per_second.toFixed(1)} entries/s, ${full}` +
        (f.insert_rate_per_second !== null ? `; ${f.insert_rate_per_second.toFixed(1)} inserts/s` : ""),
    );
  } else out.push("Forecast   (run with --interval N for a fill rate and the time until full)");
  const st = r.steady_state;
  if (st !== null) {
    const moving = st.by_state.filter((x) => x.kind !== "stationary" && x.entries !== x.entries_now);
    out.push(
      `Steady     ≈ ${n(st.entries)} entries if the current rates go on (Little's law per state, the simulator's model; from the ${st.basis === "table" ? "listing's idle ages" : "two samples"})` +
        (st.seconds_until_full !== null ? `; reaches nf_conntrack_max in ${formatDuration(st.seconds_until_full)}` : ""),
    );
    for (const x of moving.slice(0, 5))
      out.push(
        `  ${pad(`${x.protocol} ${x.state}${x.kind === "orphans" ? " (orphans)" : ""}`, 38)} ${lpad(n(x.entries_now), 10)} → ${lpad(n(x.entries), 10)}` +
          (x.kind === "ended" ? "   (no new entries lately: drains)" : `   ${(x.rate_per_second ?? 0).toFixed(1)}/s × ${formatDuration(x.hold_seconds ?? 0)}`),
      );
  }

  if (r.by_protocol_state.length > 0) {
    out.push("");
    out.push("Entries by protocol and state");
    const total = r.entries_listed ?? 0;
    for (const row of r.by_protocol_state) {
      out.push(
        `  ${pad(`${row.protocol} ${row.state}`, 24)} ${lpad(n(row.entries), 10)}  ${lpad(pct(total > 0 ? row.entries / total : 0), 7)}   unreplied ${n(row.unreplied)}, assured ${n(row.assured)}`,
      );
    }
  }
  if (r.top.sources.length > 0) {
    out.push("");
    out.push("Top talkers");
    topBlock("sources", r.top.sources, out);
    topBlock("destinations", r.top.destinations, out);
    topBlock("destination ports", r.top.dports, out);
    topBlock("source networks (/24, /64)", r.top.networks, out);
  }
  if (r.idle.length > 0) {
    out.push("");
    out.push(`Idle for (state's timeout − remaining)   ${IDLE_BUCKET_LABELS.map((l) => lpad(l, 8)).join("")}       max`);
    for (const row of r.idle) {
      out.push(
        `  ${pad(`${row.protocol} ${row.state}`, 38)} ${IDLE_BUCKET_LABELS.map((l) => lpad(n(row.buckets[l] ?? 0), 8)).join("")}  ${lpad(formatDuration(row.max_seconds), 8)}`,
      );
    }
  }
  out.push("");
  out.push("Findings");
  if (r.findings.length === 0) out.push("  Nothing wrong found.");
  for (const x of r.findings) {
    out.push(`  [${x.severity}] ${x.title}  (${x.id})`);
    out.push(
      `      ${Object.entries(x.evidence)
        .map(([k, v]) => `${k}=${typeof v === "number" && !Number.isInteger(v) ? v.toFixed(3) : String(v)}`)
        .join(" ")}`,
    );
    out.push(`      ${x.detail}`);
  }
  const tb = r.tracked_by;
  if (tb.classes.length > 0) {
    out.push("");
    out.push(
      `Why it is tracked${tb.ruleset !== null ? ` (live ${tb.ruleset} ruleset: ${tb.tracking_rules} rule(s) need conntrack${tb.no_tracking ? "; nothing registers the hooks" : ""})` : " (ruleset not read)"}`,
    );
    for (const c of tb.classes.slice(0, 5)) {
      out.push(`  ${pad(c.class, 22)} ${lpad(n(c.entries), 10)} entries; a NOTRACK would free ${n(c.notrack_frees)}`);
      for (const rule of c.tracking_rules.slice(0, 3)) out.push(`      tracked because of ${rule}`);
    }
  }
  if (r.recommendations.length > 0) {
    out.push("");
    out.push("Recommendations");
    for (const rec of r.recommendations) {
      out.push(
        `  ${rec.title}${rec.memory_bytes !== null ? `  [${rec.memory_bytes >= 0 ? "+" : "−"}${formatBytesIEC(Math.abs(rec.memory_bytes))} kernel memory]` : ""}`,
      );
      for (const c of rec.commands) out.push(...c.split("\n").map((l, i) => `      ${i === 0 ? "$ " : "  "}${l}`));
      for (const file of rec.files) {
        out.push(`      in ${file.path}:`);
        for (const l of file.content.trimEnd().split("\n")) out.push(`        ${l}`);
      }
      for (const note of rec.notes) out.push(`      note: ${note}`);
    }
  }
  problems(r, out);
  return out.join("\n") + "\n";
}

function problems(r: DoctorReport, out: string[]): void {
  if (r.problems.length === 0 && r.bad_lines.length === 0) return;
  out.push("");
  out.push("Not read (the rest is still reported)");
  for (const p of r.problems) out.push(`  ${p.source}: ${p.message}`);
  for (const b of r.bad_lines.slice(0, 10)) out.push(`  ${b.source} line ${b.line}: ${b.reason}: ${JSON.stringify(b.text)}`);
}
