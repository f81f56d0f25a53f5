/**
 * libxt_iprange: address ranges.
 */
import { RulesetSyntaxError, q, textPos } from "../../errors.js";
import type { Match } from "../../model.js";
import { AddrSet, parseAddr } from "../../values.js";
import type { TextPos } from "../../errors.js";
import type { MatchCall, Tok, XtMatch } from "../types.js";

function build({ ctx, opts }: MatchCall): Match[] {
  const pos = (t: Tok): TextPos => textPos(ctx.file, ctx.lineNo, t.col);
  const out: Match[] = [];
  for (const o of opts) {
    const a = o.args[0]!;
    const [lo, hi] = a.text.split("-");
    const x = lo ? parseAddr(lo) : null;
    const y = hi ? parseAddr(hi) : null;
    const fam = ctx.v6 ? 6 : 4;
    if (!x || !y || x.family !== fam || y.family !== fam) throw new RulesetSyntaxError(pos(a), `invalid address range ${q(a.text)}`);
    out.push({ kind: "addr", dir: o.name === "--src-range" ? "src" : "dst", neg: o.neg, set: new AddrSet(fam, [{ lo: x.words, hi: y.words }], [a.text]) });
  }
  return out;
}

export const iprange: XtMatch = {
  type: "match",
  name: "iprange",
  options: { "--src-range": 1, "--dst-range": 1 },
  build,
};
