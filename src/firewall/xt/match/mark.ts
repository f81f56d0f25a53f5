/**
 * libxt_mark and libxt_connmark (match): packet and connection marks.
 */
import {} from "../../errors.js";
import type { Match } from "../../model.js";
import { NumSet } from "../../values.js";
import { parseValueMask } from "../args.js";
import type { MatchCall, Tok, XtMatch } from "../types.js";

function build({ ctx, mod, opts }: MatchCall): Match[] {
  const out: Match[] = [];
  for (const o of opts) {
    const { value, mask } = parseValueMask(ctx, o.args[0] as Tok, 0xffffffff);
    out.push({ kind: "mark", source: mod === "mark" ? "meta" : "ct", neg: o.neg, mask, values: NumSet.of(value & mask) });
  }
  return out;
}

/** mark_print / connmark_print: `mark match ! 0x5`, `connmark match  0x2/0xff` (as given, not masked). */
function list({ ctx, mod, opts }: MatchCall): string {
  let s = "";
  for (const o of opts) {
    const { value, mask } = parseValueMask(ctx, o.args[0] as Tok, 0xffffffff);
    const v = `0x${(value >>> 0).toString(16)}${mask === 0xffffffff ? "" : `/0x${(mask >>> 0).toString(16)}`}`;
    s += mod === "mark" ? ` mark match${o.neg ? " !" : ""} ${v}` : ` connmark match ${o.neg ? "!" : ""} ${v}`;
  }
  return s;
}

export const mark: XtMatch = {
  type: "match",
  name: "mark",
  options: { "--mark": 1 },
  build,
  list,
};

export const connmark: XtMatch = {
  type: "match",
  name: "connmark",
  options: { "--mark": 1 },
  build,
  list,
};
