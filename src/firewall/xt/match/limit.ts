/**
 * libxt_limit: token bucket.
 */
import { RulesetSyntaxError, q, textPos } from "../../errors.js";
import type { Match } from "../../model.js";
import { num, parseRate } from "../args.js";
import type { TextPos } from "../../errors.js";
import type { MatchCall, Tok, XtMatch } from "../types.js";

function build({ ctx, opts }: MatchCall): Match[] {
  const pos = (t: Tok): TextPos => textPos(ctx.file, ctx.lineNo, t.col);
  const out: Match[] = [];
  let rate = 3;
  let unitSec = 3600;
  let burst = 5;
  for (const o of opts) {
    if (o.neg) throw new RulesetSyntaxError(pos(o.tok), `${q("!")} cannot negate ${q(o.name)}`);
    if (o.name === "--limit") {
      const r = parseRate(ctx, o.args[0] as Tok);
      rate = r.rate;
      unitSec = r.unitSec;
    } else burst = num(ctx, o.args[0] as Tok, 10000);
  }
  out.push({ kind: "limit", over: false, rate, unitSec, burst, slot: ctx.rs.slots++ });
  return out;
}

/** Units of limit_print, largest first, in XT_LIMIT_SCALE ticks. */
const RATES: ReadonlyArray<readonly [string, number]> = [
  ["day", 86400 * 10000],
  ["hour", 3600 * 10000],
  ["min", 60 * 10000],
  ["sec", 10000],
];

/** limit_print: the kernel's average interval turned back into the largest unit that divides it (`limit: avg 3/min burst 5`). */
function list(_call: MatchCall, out: readonly Match[]): string {
  const m = out[0];
  if (!m || m.kind !== "limit") return "";
  const period = Math.floor((10000 * m.unitSec) / m.rate);
  let i = 1;
  for (; i < RATES.length; i++) {
    const mult = (RATES[i] as readonly [string, number])[1];
    if (period > mult || Math.floor(mult / period) < mult % period) break;
  }
  const [name, mult] = RATES[i - 1] as readonly [string, number];
  return ` limit: avg ${Math.floor(mult / period)}/${name} burst ${m.burst}`;
}

export const limit: XtMatch = {
  type: "match",
  name: "limit",
  options: { "--limit": 1, "--limit-burst": 1 },
  build,
  list,
};
