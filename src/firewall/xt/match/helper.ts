/**
 * libxt_helper: the connection's helper.
 */
import {} from "../../errors.js";
import type { Match } from "../../model.js";
import type { MatchCall, Tok, XtMatch } from "../types.js";

function build({ opts }: MatchCall): Match[] {
  const out: Match[] = [];
  for (const o of opts) out.push({ kind: "cthelper", neg: o.neg, name: (o.args[0] as Tok).text });
  return out;
}

/** helper_print: `helper match ! "sip"`. */
function list(_call: MatchCall, out: readonly Match[]): string {
  return out.map((m) => (m.kind === "cthelper" ? ` helper match ${m.neg ? "! " : ""}"${m.name}"` : "")).join("");
}

export const helper: XtMatch = {
  type: "match",
  name: "helper",
  options: { "--helper": 1 },
  build,
  list,
};
