/**
 * Ledgers of known differences between ctlab and the kernel: each entry says
 * why ctlab differs and which differences it explains. A comparison passes
 * only when every difference is explained by its entry and every pattern of
 * the entry still explains something — so the ledger can neither hide a new
 * difference nor outlive a fixed one.
 */
import type { Comparison, Difference } from "./compare.js";
import { formatDifferences } from "./compare.js";

export interface KnownDifference {
  /** Why ctlab differs here (a kernel behaviour not modelled, a harness limit, …). */
  reason: string;
  /** Each difference must match one pattern (against "aspect: message"); each pattern must match one. */
  matches: readonly RegExp[];
}

function text(d: Difference): string {
  return `${d.aspect}: ${d.message}`;
}

/**
 * Checks a comparison against its ledger entry (undefined: none). Returns the
 * problems, each a sentence; an empty list means the comparison passes.
 */
export function checkAgainstLedger(name: string, cmp: Comparison, entry: KnownDifference | undefined): string[] {
  if (entry === undefined) {
    return cmp.identical ? [] : [`"${name}" differs from the kernel and is not in the ledger:\n${formatDifferences(cmp.differences, 10)}`];
  }
  const problems: string[] = [];
  if (cmp.identical) return [`"${name}" is in the ledger (${entry.reason}) but now agrees with the kernel: remove the entry`];
  const unexplained = cmp.differences.filter((d) => !entry.matches.some((re) => re.test(text(d))));
  if (unexplained.length > 0) {
    problems.push(`"${name}" has differences its ledger entry (${entry.reason}) does not explain:\n${formatDifferences(unexplained, 10)}`);
  }
  for (const re of entry.matches) {
    if (!cmp.differences.some((d) => re.test(text(d)))) problems.push(`"${name}": ledger pattern ${String(re)} no longer matches any difference: remove it`);
  }
  return problems;
}
