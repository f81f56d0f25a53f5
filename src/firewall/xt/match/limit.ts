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
      const r = parseRate(ctx, o.args[0]!);
      rate = r.rate;
      unitSec = r.unitSec;
    } else burst = num(ctx, o.args[0]!, 10000);
  }
  out.push({ kind: "limit", over: false, rate, unitSec, burst, slot: ctx.rs.slots++ });
  return out;
}

export const limit: XtMatch = {
  type: "match",
  name: "limit",
  options: { "--limit": 1, "--limit-burst": 1 },
  build,
};
