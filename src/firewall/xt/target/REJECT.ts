/**
 * libipt_REJECT and libip6t_REJECT: ICMP error or TCP reset (the reply itself is not generated).
 */
import { RulesetSyntaxError, q, textPos } from "../../errors.js";
import type { TextPos } from "../../errors.js";
import type { Action } from "../../model.js";
import type { TargetCall, Tok, XtTarget } from "../types.js";

function build({ ctx, nameTok, opts, proto }: TargetCall): Action[] {
  const pos = (t: Tok): TextPos => textPos(ctx.file, ctx.lineNo, t.col);
  const arg = (o: string): Tok | undefined => opts.find((x) => x.name === o)?.args[0];
  const w = arg("--reject-with")?.text ?? (ctx.v6 ? "icmp6-port-unreachable" : "icmp-port-unreachable");
  const ok4 = [
    "icmp-net-unreachable",
    "icmp-host-unreachable",
    "icmp-port-unreachable",
    "icmp-proto-unreachable",
    "icmp-net-prohibited",
    "icmp-host-prohibited",
    "icmp-admin-prohibited",
    "tcp-reset",
    "net-unreach",
    "host-unreach",
    "port-unreach",
    "proto-unreach",
    "net-prohib",
    "host-prohib",
    "admin-prohib",
    "tcp-rst",
  ];
  const ok6 = [
    "icmp6-no-route",
    "no-route",
    "icmp6-adm-prohibited",
    "adm-prohibited",
    "icmp6-addr-unreachable",
    "addr-unreach",
    "icmp6-port-unreachable",
    "port-unreach",
    "icmp6-policy-fail",
    "policy-fail",
    "icmp6-reject-route",
    "reject-route",
    "tcp-reset",
    "tcp-rst",
  ];
  if (!(ctx.v6 ? ok6 : ok4).includes(w)) throw new RulesetSyntaxError(pos(arg("--reject-with") ?? nameTok), `unknown reject type ${q(w)}`);
  if ((w === "tcp-reset" || w === "tcp-rst") && proto !== 6) throw new RulesetSyntaxError(pos(nameTok), `--reject-with tcp-reset needs ${q("-p tcp")}`);
  return [{ kind: "reject", with: w }];
}

/** Short names iptables accepts for --reject-with, and the name reject_print shows. */
const REJECT_CANON: Readonly<Record<string, string>> = {
  "net-unreach": "icmp-net-unreachable",
  "host-unreach": "icmp-host-unreachable",
  "port-unreach": "icmp-port-unreachable",
  "proto-unreach": "icmp-proto-unreachable",
  "net-prohib": "icmp-net-prohibited",
  "host-prohib": "icmp-host-prohibited",
  "admin-prohib": "icmp-admin-prohibited",
  "tcp-rst": "tcp-reset",
  "no-route": "icmp6-no-route",
  "adm-prohibited": "icmp6-adm-prohibited",
  "addr-unreach": "icmp6-addr-unreachable",
  "policy-fail": "icmp6-policy-fail",
  "reject-route": "icmp6-reject-route",
};

/** reject_print: `reject-with icmp-port-unreachable`. */
function list({ ctx }: TargetCall, out: readonly Action[]): string {
  const a = out[0];
  if (!a || a.kind !== "reject") return "";
  const w = a.with === "port-unreach" ? (ctx.v6 ? "icmp6-port-unreachable" : "icmp-port-unreachable") : (REJECT_CANON[a.with] ?? a.with);
  return ` reject-with ${w}`;
}

export const REJECT: XtTarget = {
  type: "target",
  name: "REJECT",
  options: { "--reject-with": 1 },
  build,
  list,
};
