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

/** print_icmptype of libipt_icmp / libip6t_icmp6 with -n: `icmptype 3 code 4`, `icmp !type 8`. */
function list({ mod }: MatchCall, out: readonly Match[]): string {
  let s = "";
  for (const m of out) {
    if (m.kind !== "icmp") continue;
    const [lo, hi] = m.types.pairs()[0] ?? [0, 0xffff];
    // "any" is type 0xff with every code.
    const type = lo === 0 && hi === 0xffff ? 0xff : lo >> 8;
    const cmin = lo === 0 && hi === 0xffff ? 0 : lo & 0xff;
    const cmax = lo === 0 && hi === 0xffff ? 0xff : hi & 0xff;
    s += ` ${mod === "icmp6" ? "ipv6-icmp" : "icmp"}${m.neg ? " !" : ""}type ${type}`;
    if (cmin === cmax) s += ` code ${cmin}`;
    else if (cmin !== 0 || cmax !== 0xff) s += ` codes ${cmin}-${cmax}`;
  }
  return s;
}

export const icmp: XtMatch = {
  type: "match",
  name: "icmp",
  options: { "--icmp-type": 1 },
  build,
  list,
  implicitFor: 1,
};

export const icmp6: XtMatch = {
  type: "match",
  name: "icmp6",
  options: { "--icmpv6-type": 1 },
  build,
  list,
  implicitFor: 58,
  aliases: ["icmpv6"],
};
