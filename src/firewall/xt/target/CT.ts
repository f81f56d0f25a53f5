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

export const NOTRACK: XtTarget = {
  type: "target",
  name: "NOTRACK",
  options: {},
  tables: ["raw"],
  build,
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
};
