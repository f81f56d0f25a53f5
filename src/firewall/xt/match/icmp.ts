/**
 * libipt_icmp and libip6t_icmp6: ICMP types and codes.
 */
import { RulesetSyntaxError, q, textPos } from "../../errors.js";
import type { Match } from "../../model.js";
import { needProto, parseIcmpType } from "../args.js";
import type { TextPos } from "../../errors.js";
import type { MatchCall, Tok, XtMatch } from "../types.js";

function build({ ctx, mod, modTok, opts, pi }: MatchCall): Match[] {
  const pos = (t: Tok): TextPos => textPos(ctx.file, ctx.lineNo, t.col);
  const out: Match[] = [];
  const v6 = mod === "icmp6";
  if (v6 !== ctx.v6) throw new RulesetSyntaxError(pos(modTok), `match ${q(mod)} is not available in ${ctx.v6 ? "ip6tables" : "iptables"}`);
  needProto(ctx, pi, modTok, [v6 ? 58 : 1], `match ${q(mod)}`);
  for (const o of opts) out.push(parseIcmpType(ctx, o, v6));
  return out;
}

export const icmp: XtMatch = {
  type: "match",
  name: "icmp",
  options: { "--icmp-type": 1 },
  build,
  implicitFor: 1,
};

export const icmp6: XtMatch = {
  type: "match",
  name: "icmp6",
  options: { "--icmpv6-type": 1 },
  build,
  implicitFor: 58,
  aliases: ["icmpv6"],
};
