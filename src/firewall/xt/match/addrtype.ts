/**
 * libxt_addrtype: routing type of the source and destination addresses.
 */
import { RulesetSyntaxError, q, textPos } from "../../errors.js";
import type { Match } from "../../model.js";
import { ADDRTYPE_RTN, ADDRTYPE_RTN_BY_NAME } from "../../values.js";
import type { TextPos } from "../../errors.js";
import type { MatchCall, Tok, XtMatch } from "../types.js";

function build({ ctx, modTok, opts }: MatchCall): Match[] {
  const pos = (t: Tok): TextPos => textPos(ctx.file, ctx.lineNo, t.col);
  const out: Match[] = [];
  let src = 0;
  let dst = 0;
  let srcNeg = false;
  let dstNeg = false;
  let limitIfaceIn = false;
  let limitIfaceOut = false;
  for (const o of opts) {
    if (o.name === "--src-type" || o.name === "--dst-type") {
      let bits = 0;
      for (const name of (o.args[0] as Tok).text.split(",")) {
        const rtn = ADDRTYPE_RTN_BY_NAME[name.toUpperCase()];
        if (rtn === undefined) throw new RulesetSyntaxError(pos(o.args[0] as Tok), `unknown address type ${q(name)}`);
        bits |= 1 << rtn;
      }
      if (o.name === "--src-type") {
        src = bits;
        srcNeg = o.neg;
      } else {
        dst = bits;
        dstNeg = o.neg;
      }
    } else if (o.name === "--limit-iface-in") limitIfaceIn = true;
    else limitIfaceOut = true;
  }
  if (limitIfaceIn && limitIfaceOut) throw new RulesetSyntaxError(pos(modTok), "--limit-iface-in and --limit-iface-out exclude each other");
  out.push({ kind: "addrtype", src, srcNeg, dst, dstNeg, limitIfaceIn, limitIfaceOut });
  return out;
}

/** addrtype_print_v1: `ADDRTYPE match src-type !LOCAL,BROADCAST limit-in`. */
function list(_call: MatchCall, out: readonly Match[]): string {
  const m = out[0];
  if (!m || m.kind !== "addrtype") return "";
  const names = (bits: number) =>
    Object.entries(ADDRTYPE_RTN)
      .filter(([, rtn]) => (bits & (1 << rtn)) !== 0)
      .map(([n]) => n)
      .join(",");
  let s = " ADDRTYPE match";
  if (m.src) s += ` src-type ${m.srcNeg ? "!" : ""}${names(m.src)}`;
  if (m.dst) s += ` dst-type ${m.dstNeg ? "!" : ""}${names(m.dst)}`;
  if (m.limitIfaceIn) s += " limit-in";
  if (m.limitIfaceOut) s += " limit-out";
  return s;
}

export const addrtype: XtMatch = {
  type: "match",
  name: "addrtype",
  options: { "--src-type": 1, "--dst-type": 1, "--limit-iface-in": 0, "--limit-iface-out": 0 },
  build,
  list,
};
