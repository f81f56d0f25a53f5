/**
 * libxt_iprange: address ranges.
 */
import { RulesetSyntaxError, q, textPos } from "../../errors.js";
import type { Match } from "../../model.js";
import { AddrSet, formatAddr, parseAddr } from "../../values.js";
import type { TextPos } from "../../errors.js";
import type { MatchCall, Tok, XtMatch } from "../types.js";

function build({ ctx, opts }: MatchCall): Match[] {
  const pos = (t: Tok): TextPos => textPos(ctx.file, ctx.lineNo, t.col);
  const out: Match[] = [];
  for (const o of opts) {
    const a = o.args[0] as Tok;
    const [lo, hi] = a.text.split("-");
    const x = lo ? parseAddr(lo) : null;
    const y = hi ? parseAddr(hi) : null;
    const fam = ctx.v6 ? 6 : 4;
    if (!x || !y || x.family !== fam || y.family !== fam) throw new RulesetSyntaxError(pos(a), `invalid address range ${q(a.text)}`);
    out.push({ kind: "addr", dir: o.name === "--src-range" ? "src" : "dst", neg: o.neg, set: new AddrSet(fam, [{ lo: x.words, hi: y.words }], [a.text]) });
  }
  return out;
}

/** iprange_mt_print: `source IP range ! 10.0.0.1-10.0.0.9`. */
function list({ ctx }: MatchCall, out: readonly Match[]): string {
  const fam = ctx.v6 ? 6 : 4;
  return out
    .map((m) => {
      if (m.kind !== "addr") return "";
      const r = m.set.range(0);
      return ` ${m.dir === "src" ? "source" : "destination"} IP range ${m.neg ? "! " : ""}${formatAddr(fam, r.lo)}-${formatAddr(fam, r.hi)}`;
    })
    .join("");
}

export const iprange: XtMatch = {
  type: "match",
  name: "iprange",
  options: { "--src-range": 1, "--dst-range": 1 },
  build,
  list,
};
