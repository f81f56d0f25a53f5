/**
 * libxt_set: ipset membership.
 */
import { RulesetSyntaxError, q, textPos } from "../../errors.js";
import type { Match } from "../../model.js";
import { unsupportedOpt } from "../args.js";
import type { TextPos } from "../../errors.js";
import type { MatchCall, Tok, XtMatch } from "../types.js";

function build({ ctx, modTok, opts }: MatchCall): Match[] {
  const pos = (t: Tok): TextPos => textPos(ctx.file, ctx.lineNo, t.col);
  const out: Match[] = [];
  for (const o of opts) {
    if (o.name === "--match-set" || o.name === "--set") {
      const nameTok = o.args[0] as Tok;
      const set = ctx.ipsets.get(nameTok.text);
      if (!set) {
        throw new RulesetSyntaxError(pos(nameTok), `unknown ipset ${q(nameTok.text)}: pass the ${q("ipset save")} output that creates it`, "-m set");
      }
      const dims = (o.args[1] as Tok).text.split(",");
      if (dims.some((d) => d !== "src" && d !== "dst") || dims.length === 0 || dims.length > 6) {
        throw new RulesetSyntaxError(pos(o.args[1] as Tok), `invalid set flags ${q((o.args[1] as Tok).text)}: expected src/dst separated by commas`);
      }
      if (set.family !== (ctx.v6 ? 6 : 4)) {
        throw new RulesetSyntaxError(
          pos(nameTok),
          `ipset ${q(set.name)} holds ${set.family === 6 ? "IPv6" : "IPv4"} entries, not usable in ${ctx.v6 ? "ip6tables" : "iptables"}`,
        );
      }
      out.push({ kind: "ipset", neg: o.neg, set, dims: dims as ("src" | "dst")[] });
    } else if (o.name === "--return-nomatch" || o.name === "--update-counters" || o.name === "--update-subcounters") {
      // Counter bookkeeping inside ipset: no effect on matching here.
    } else throw unsupportedOpt(ctx, o, `match ${q("set")}`);
  }
  if (out.length === 0) throw new RulesetSyntaxError(pos(modTok), `match ${q("set")} needs --match-set`);
  return out;
}

/** set_print: `match-set NAME src,dst`. */
function list({ opts }: MatchCall): string {
  let s = "";
  for (const o of opts) {
    if (o.name === "--match-set" || o.name === "--set") s += `${o.neg ? " !" : ""} match-set ${(o.args[0] as Tok).text} ${(o.args[1] as Tok).text}`;
    else s += ` ${o.name.slice(2)}`;
  }
  return s;
}

export const set: XtMatch = {
  type: "match",
  name: "set",
  options: {
    "--match-set": 2,
    "--set": 2,
    "--return-nomatch": 0,
    "--update-counters": 0,
    "--update-subcounters": 0,
    "--packets-eq": 1,
    "--packets-lt": 1,
    "--packets-gt": 1,
    "--bytes-eq": 1,
    "--bytes-lt": 1,
    "--bytes-gt": 1,
  },
  build,
  list,
};
