/**
 * `ctlab rules notrack FILE --for SELECTOR`: the raw-table rules that untrack
 * the selected traffic in both directions, in the ruleset's own syntax, with
 * the warnings the analysis would raise once they are in place.
 */
import { RulesetSyntaxError, formatPos, q, textPos } from "../errors.js";
import type { Ruleset } from "../model.js";
import { rulesetRegistersConntrack } from "../tracking.js";
import { PATHS, dedupeWarnings, hasNat, isFilterChain, isNatChain, isSpecific, reliesOnTracking, rulesAtHook, simulate } from "./analyze.js";
import type { AnalysisWarning } from "./analyze.js";
import { boxOf, boxesOverlap, describeBox, mirrorBox } from "./box.js";
import type { TrafficBox } from "./box.js";
import { rawRulesFor, renderGenerated } from "./generate.js";
import type { GeneratedRule } from "./generate.js";
import { SEL_FILE, parseSelector } from "./selector.js";

/** Result of {@link notrackRulesFor}. */
export interface NotrackSuggestion {
  readonly selector: string;
  readonly box: TrafficBox;
  /** raw rules: PREROUTING and OUTPUT, both directions. */
  readonly rules: readonly GeneratedRule[];
  /** Ready to apply in the ruleset's own syntax (iptables-restore --noflush, or nft -f). */
  readonly text: string;
  /** Warnings about the traffic with these rules in place (NAT overlap, stateful rules, UNTRACKED drops). */
  readonly warnings: readonly AnalysisWarning[];
}

/**
 * The raw-table rules that untrack the traffic named by `selector` in both
 * directions, in PREROUTING and OUTPUT, in the ruleset's own syntax, plus the
 * warnings the analysis would raise with them in place.
 * @throws {RulesetSyntaxError} for a malformed selector, or one whose address
 *   family the (iptables) ruleset cannot hold.
 */
export function notrackRulesFor(rs: Ruleset, selector: string): NotrackSuggestion {
  let box = parseSelector(selector);
  if (rs.syntax === "iptables") {
    const fam = rs.tables[0]?.family === "ip6" ? 6 : 4;
    if (box.family && box.family !== fam) {
      throw new RulesetSyntaxError(
        textPos(SEL_FILE, 1, 1),
        `the selector is for ${box.family === 6 ? "IPv6" : "IPv4"} but the ruleset is ${fam === 6 ? "ip6tables" : "iptables"}`,
        "selector",
      );
    }
    box = { ...box, family: fam };
  }
  const rules = rawRulesFor(box, "any");
  const warnings: AnalysisWarning[] = [];
  for (const kind of ["to-host", "from-host", "forwarded"] as const) {
    const natHit = PATHS[kind].nat
      .flatMap((h) => rulesAtHook(rs, h, box.family, isNatChain))
      .find(({ rule }) => hasNat(rule) && boxesOverlap(boxOf(rule), box));
    if (natHit) {
      warnings.push({
        code: "nat-needs-tracking",
        severity: "warning",
        message: `${describeBox(box)} overlaps the NAT rule at ${formatPos(natHit.rule.pos)}: NAT needs tracking, untracked packets are not translated`,
        rules: [natHit.rule],
      });
      break;
    }
  }
  for (const hook of ["input", "output", "forward"] as const) {
    for (const { rule } of rulesAtHook(rs, hook, box.family, isFilterChain)) {
      const rb = boxOf(rule);
      if (reliesOnTracking(rule) && isSpecific(rb) && (boxesOverlap(rb, box) || boxesOverlap(rb, mirrorBox(box)))) {
        warnings.push({
          code: "notrack-breaks-stateful",
          severity: "warning",
          message: `rule at ${formatPos(rule.pos)} tests the conntrack state of ${describeBox(rb)}: once untracked it no longer matches`,
          rules: [rule],
        });
      }
    }
  }
  if (!rs.tables.some((t) => t.chains.length > 0) || !rulesetRegistersConntrack(rs)) {
    warnings.push({
      code: "skipped-rules",
      severity: "info",
      message: "nothing in this ruleset registers conntrack hooks: its packets are not tracked, NOTRACK changes nothing",
      rules: [],
    });
  }
  for (const kind of ["to-host", "from-host"] as const) {
    for (const direction of ["original", "reply"] as const) {
      const before = simulate(rs, box, kind, direction, direction === "original" ? "new" : "established");
      const after = simulate(rs, box, kind, direction, "untracked");
      if (before.verdict === "accept" && after.verdict === "drop") {
        warnings.push({
          code: "untracked-dropped",
          severity: "warning",
          message: `${kind} ${direction} packets of ${describeBox(box)} would be dropped as UNTRACKED by ${after.rule ? `the rule at ${formatPos(after.rule.pos)}` : `the policy of chain ${q(after.policyChain ?? "?")}`}: accept them statelessly`,
          rules: after.rule ? [after.rule] : [],
        });
      }
    }
  }
  return { selector, box, rules, text: renderGenerated(rs, rules, "raw"), warnings: dedupeWarnings(warnings) };
}
