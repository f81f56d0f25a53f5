/**
 * libxt_connlimit: connections per source or destination network.
 */
import { RulesetSyntaxError, q, textPos } from "../../errors.js";
import type { Match } from "../../model.js";
import { num } from "../args.js";
import type { TextPos } from "../../errors.js";
import type { MatchCall, Tok, XtMatch } from "../types.js";

function build({ ctx, modTok, opts }: MatchCall): Match[] {
  const pos = (t: Tok): TextPos => textPos(ctx.file, ctx.lineNo, t.col);
  const out: Match[] = [];
  let above = -1;
  let upto = -1;
  let mask = ctx.v6 ? 128 : 32;
  let key: "saddr" | "daddr" = "saddr";
  for (const o of opts) {
    const a = o.args[0];
    switch (o.name) {
      case "--connlimit-above":
        above = num(ctx, a as Tok, 0xffffffff);
        if (o.neg) {
          upto = above;
          above = -1;
        }
        break;
      case "--connlimit-upto":
        upto = num(ctx, a as Tok, 0xffffffff);
        if (o.neg) {
          above = upto;
          upto = -1;
        }
        break;
      case "--connlimit-mask":
        mask = num(ctx, a as Tok, ctx.v6 ? 128 : 32);
        break;
      case "--connlimit-saddr":
        key = "saddr";
        break;
      case "--connlimit-daddr":
        key = "daddr";
        break;
    }
  }
  if (above < 0 === upto < 0) throw new RulesetSyntaxError(pos(modTok), `match ${q("connlimit")} needs exactly one of --connlimit-above and --connlimit-upto`);
  out.push({ kind: "connlimit", above: above >= 0, limit: above >= 0 ? above : upto, maskLen: mask, key, slot: ctx.rs.slots++ });
  return out;
}

/** connlimit_print4/6: `#conn src/32 > 10`. */
function list(_call: MatchCall, out: readonly Match[]): string {
  const m = out[0];
  if (!m || m.kind !== "connlimit") return "";
  return ` #conn ${m.key === "daddr" ? "dst" : "src"}/${m.maskLen} ${m.above ? ">" : "<="} ${m.limit}`;
}

export const connlimit: XtMatch = {
  type: "match",
  name: "connlimit",
  options: {
    "--connlimit-upto": 1,
    "--connlimit-above": 1,
    "--connlimit-mask": 1,
    "--connlimit-saddr": 0,
    "--connlimit-daddr": 0,
  },
  build,
  list,
};
