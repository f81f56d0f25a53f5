/**
 * libxt_multiport: up to 15 ports or ranges.
 */
import { RulesetSyntaxError, q, textPos } from "../../errors.js";
import type { Match } from "../../model.js";
import { NumSet, PORT_PROTOS } from "../../values.js";
import { needProto, parsePortRange } from "../args.js";
import type { TextPos } from "../../errors.js";
import type { MatchCall, Opt, Tok, XtMatch } from "../types.js";

function build({ ctx, modTok, opts, pi }: MatchCall): Match[] {
  const pos = (t: Tok): TextPos => textPos(ctx.file, ctx.lineNo, t.col);
  const out: Match[] = [];
  needProto(ctx, pi, modTok, PORT_PROTOS, `match ${q("multiport")}`);
  if (opts.length !== 1) throw new RulesetSyntaxError(pos(modTok), `match ${q("multiport")} takes exactly one of --sports, --dports, --ports`);
  const o = opts[0] as Opt;
  const parts = (o.args[0] as Tok).text.split(",");
  if (parts.length > 15) throw new RulesetSyntaxError(pos(o.args[0] as Tok), "too many ports: multiport allows 15");
  const pairs: number[] = [];
  for (const p of parts) {
    const r = parsePortRange(ctx, o.args[0] as Tok, p);
    pairs.push(...r.data);
  }
  const dir = o.name === "--ports" ? "any" : o.name.startsWith("--s") ? "src" : "dst";
  out.push({ kind: "port", dir, neg: o.neg, protos: NumSet.of(pi.proto), set: new NumSet(pairs) });
  return out;
}

/** multiport_print: the ports in the order given, ranges with ":" (`multiport dports  !1:2,5`). */
function list({ ctx, opts }: MatchCall): string {
  const o = opts[0];
  if (!o) return "";
  const which = o.name === "--ports" ? "ports" : o.name.startsWith("--s") ? "sports" : "dports";
  const parts = (o.args[0] as Tok).text.split(",").map((p) => {
    const [lo, hi] = parsePortRange(ctx, o.args[0] as Tok, p).pairs()[0] as [number, number];
    return lo === hi ? String(lo) : `${lo}:${hi}`;
  });
  return ` multiport ${which} ${o.neg ? " !" : ""}${parts.join(",")}`;
}

export const multiport: XtMatch = {
  type: "match",
  name: "multiport",
  options: {
    "--sports": 1,
    "--source-ports": 1,
    "--dports": 1,
    "--destination-ports": 1,
    "--ports": 1,
  },
  build,
  list,
};
