/**
 * libxt_NOTRACK and libxt_CT: no tracking, or a conntrack template (zone, helper, timeout).
 */
import { RulesetSyntaxError, textPos } from "../../errors.js";
import type { TextPos } from "../../errors.js";
import type { Action } from "../../model.js";
import { num } from "../args.js";
import type { TargetCall, Tok, XtTarget } from "../types.js";

function build({ ctx, name, nameTok, opts }: TargetCall): Action[] {
  const pos = (t: Tok): TextPos => textPos(ctx.file, ctx.lineNo, t.col);
  const has = (o: string) => opts.some((x) => x.name === o);
  const arg = (o: string): Tok | undefined => opts.find((x) => x.name === o)?.args[0];
  if (name === "NOTRACK") return [{ kind: "notrack" }];
  if (has("--notrack")) {
    if (opts.length > 1) throw new RulesetSyntaxError(pos(nameTok), "--notrack cannot be combined with other CT options");
    return [{ kind: "notrack" }];
  }
  const z = arg("--zone") ?? arg("--zone-orig") ?? arg("--zone-reply");
  return [{ kind: "ct", zone: z ? num(ctx, z, 65535) : 0, helper: arg("--helper")?.text ?? "", timeout: arg("--timeout")?.text ?? "" }];
}

/** The names of ct_events / exp_events, in bit order, as ct_print_events shows them. */
const CT_EVENTS = ["new", "related", "destroy", "reply", "assured", "protoinfo", "helper", "mark", "natseqinfo", "secmark"];

/** ct_print_v1 (and the NOTRACK alias the nft backend lists as "CT ... NOTRACK"). */
function list({ name, opts }: TargetCall): string {
  if (name === "NOTRACK") return " NOTRACK";
  const arg = (o: string) => opts.find((x) => x.name === o)?.args[0]?.text;
  const events = (o: string) => {
    const given = new Set((arg(o) ?? "").split(","));
    return CT_EVENTS.filter((e) => given.has(e)).join(",");
  };
  let s = " CT";
  if (opts.some((o) => o.name === "--notrack")) s += " notrack";
  const helper = arg("--helper");
  if (helper !== undefined) s += ` helper ${helper}`;
  if (arg("--ctevents") !== undefined) s += ` ctevents ${events("--ctevents")}`;
  if (arg("--expevents") !== undefined) s += ` expevents ${events("--expevents")}`;
  for (const [o, label] of [
    ["--zone-orig", "zone-orig"],
    ["--zone-reply", "zone-reply"],
    ["--zone", "zone"],
  ] as const) {
    const z = arg(o);
    if (z !== undefined && Number(z) !== 0) s += ` ${label} ${Number(z)}`;
  }
  const timeout = arg("--timeout");
  if (timeout !== undefined) s += ` timeout ${timeout}`;
  return s;
}

export const NOTRACK: XtTarget = {
  type: "target",
  name: "NOTRACK",
  options: {},
  tables: ["raw"],
  build,
  list,
};

export const CT: XtTarget = {
  type: "target",
  name: "CT",
  options: {
    "--notrack": 0,
    "--helper": 1,
    "--zone": 1,
    "--zone-orig": 1,
    "--zone-reply": 1,
    "--timeout": 1,
    "--ctevents": 1,
    "--expevents": 1,
  },
  tables: ["raw"],
  build,
  list,
};
