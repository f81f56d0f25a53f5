/**
 * The analysis as a text report (`ctlab rules analyze`) and as JSON-ready data.
 */
import { formatPos } from "../errors.js";
import type { Rule, Ruleset } from "../model.js";
import { protoName } from "../values.js";
import type { AnalysisResult } from "./analyze.js";
import { addrTexts } from "./box.js";
import type { TrafficBox } from "./box.js";
import { renderGenerated } from "./generate.js";

function ruleRef(r: Rule): { id: number; family: string; table: string; chain: string; position: string; text: string } {
  return { id: r.id, family: r.family, table: r.table, chain: r.chain, position: formatPos(r.pos), text: r.text };
}

function boxJson(b: TrafficBox): Record<string, unknown> {
  return {
    family: b.family === 0 ? "any" : b.family === 4 ? "ipv4" : "ipv6",
    protocols: b.protos ? b.protos.pairs().map(([lo]) => protoName(lo)) : null,
    sport: b.sport ? b.sport.pairs() : null,
    dport: b.dport ? b.dport.pairs() : null,
    saddr: b.saddr ? addrTexts(b.saddr) : null,
    daddr: b.daddr ? addrTexts(b.daddr) : null,
    iif: b.iif ? b.iif.map((x) => x.name + (x.prefix ? "*" : "")) : null,
    oif: b.oif ? b.oif.map((x) => x.name + (x.prefix ? "*" : "")) : null,
    approximate: b.approximate,
  };
}

/** The analysis as plain JSON-ready data (rules by reference: id, position, text). */
export function analysisToJson(a: AnalysisResult): Record<string, unknown> {
  return {
    file: a.file,
    syntax: a.syntax,
    rules: a.ruleCount,
    tracking: {
      ipv4: a.trackedFamilies.ipv4,
      ipv6: a.trackedFamilies.ipv6,
      none: a.noTracking,
      rules: a.trackingRules.map((t) => ({ rule: ruleRef(t.rule), reasons: t.reasons })),
      objects: a.trackingObjects.map((o) => ({
        kind: o.object.kind,
        table: o.object.table,
        name: o.object.name,
        position: formatPos(o.object.pos),
        reason: o.reason,
      })),
    },
    stateless: {
      possible: a.stateless.possible,
      blockers: a.stateless.blockers.map((b) => ({
        rule: b.rule ? ruleRef(b.rule) : null,
        object: b.object ? `${b.object.kind} ${b.object.name}` : null,
        feature: b.reason.feature,
        module: b.reason.module,
        replaceable: b.replaceable,
        hint: b.hint,
      })),
    },
    notrackRules: a.notrackRules.map(ruleRef),
    candidates: a.candidates.map((c) => ({
      traffic: c.description,
      kind: c.kind,
      box: boxJson(c.box),
      basis: c.basis.map(ruleRef),
      rules: c.rules,
      filterRules: c.filterRules,
      checks: c.checks.map((k) => ({ ...k, rule: k.rule ? ruleRef(k.rule) : null })),
      notes: c.notes,
    })),
    excluded: a.excluded.map((e) => ({ traffic: e.description, reason: e.reason, rule: e.rule ? ruleRef(e.rule) : null, basis: e.basis.map(ruleRef) })),
    warnings: a.warnings.map((w) => ({ code: w.code, severity: w.severity, message: w.message, rules: w.rules.map(ruleRef) })),
  };
}

/** The analysis as a text report. */
export function formatAnalysis(a: AnalysisResult, rs?: Ruleset): string {
  const L: string[] = [];
  L.push(`Ruleset ${a.file} (${a.syntax === "iptables" ? "iptables-save" : "nft"}, ${a.ruleCount} rules)`);
  L.push("");
  L.push("Connection tracking");
  if (a.noTracking) {
    L.push("  No rule needs conntrack: the kernel registers no conntrack hooks, no packet is tracked.");
  } else {
    const fams = [a.trackedFamilies.ipv4 ? "IPv4" : "", a.trackedFamilies.ipv6 ? "IPv6" : ""].filter(Boolean).join(" and ");
    L.push(
      `  Tracked: ${fams}. ${a.trackingRules.length} rule(s)${a.trackingObjects.length ? ` and ${a.trackingObjects.length} object(s)` : ""} register the conntrack hooks (by being loaded, reached or not):`,
    );
    for (const t of a.trackingRules) {
      L.push(`    ${formatPos(t.rule.pos)}  ${t.rule.text}`);
      L.push(`      needs conntrack: ${t.reasons.map((r) => `${r.feature} (${r.module})`).join(", ")}`);
    }
    for (const o of a.trackingObjects) L.push(`    ${formatPos(o.object.pos)}  ${o.object.kind} ${o.object.name} (${o.reason.module})`);
  }
  L.push("");
  L.push("Stateless operation");
  if (a.noTracking) L.push("  The ruleset is already stateless.");
  else if (a.stateless.possible) {
    L.push("  Possible with rewrites: every stateful rule has a stateless replacement.");
  } else {
    L.push("  Not possible without losing function:");
  }
  if (!a.noTracking) {
    const seen = new Set<string>();
    for (const b of a.stateless.blockers) {
      const k = `${b.reason.feature}|${b.hint}|${b.replaceable}`;
      if (seen.has(k)) continue;
      seen.add(k);
      const n = a.stateless.blockers.filter((x) => `${x.reason.feature}|${x.hint}|${x.replaceable}` === k).length;
      L.push(`    ${b.replaceable ? "replaceable" : "blocking   "}  ${b.reason.feature}${n > 1 ? ` (${n} rules)` : ""}: ${b.hint}`);
    }
  }
  L.push("");
  L.push("NOTRACK");
  if (a.notrackRules.length) {
    L.push(`  Existing NOTRACK rules: ${a.notrackRules.length}`);
    for (const r of a.notrackRules) L.push(`    ${formatPos(r.pos)}  ${r.text}`);
  } else L.push("  No NOTRACK rules.");
  if (a.noTracking) L.push("  Candidates: none needed (nothing is tracked).");
  else if (a.candidates.length === 0) L.push("  Candidates: none found (no traffic is accepted by stateless rules alone, or it must stay tracked).");
  for (const c of a.candidates) {
    L.push(`  Candidate: ${c.description}`);
    for (const r of c.basis) L.push(`    accepted statelessly by ${formatPos(r.pos)}  ${r.text}`);
    for (const n of c.notes) L.push(`    note: ${n}`);
    if (rs) {
      L.push("    raw rules:");
      for (const line of renderGenerated(rs, c.rules, "raw").trimEnd().split("\n")) L.push(`      ${line}`);
      if (c.filterRules.length) {
        L.push("    filter rules:");
        for (const line of renderGenerated(rs, c.filterRules, "filter").trimEnd().split("\n")) L.push(`      ${line}`);
      }
    } else {
      L.push("    raw rules (iptables-save | nft):");
      for (const g of c.rules) L.push(`      ${g.iptables}    |    ${g.nft}`);
    }
  }
  for (const e of a.excluded) {
    L.push(`  Not a candidate: ${e.description}: ${e.reason}${e.rule ? ` (rule at ${formatPos(e.rule.pos)})` : ""}`);
  }
  L.push("");
  L.push("Warnings");
  if (a.warnings.length === 0) L.push("  None.");
  for (const w of a.warnings) L.push(`  ${w.severity === "warning" ? "warning" : "info   "} [${w.code}] ${w.message}`);
  return L.join("\n") + "\n";
}
