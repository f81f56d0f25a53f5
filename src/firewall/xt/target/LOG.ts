/**
 * libxt_LOG and libxt_NFLOG: logging, no effect on the verdict.
 */
import { RulesetSyntaxError, q, textPos } from "../../errors.js";
import type { TextPos } from "../../errors.js";
import type { Action } from "../../model.js";
import { num } from "../args.js";
import type { TargetCall, Tok, XtTarget } from "../types.js";

function build({ ctx, name, opts }: TargetCall): Action[] {
  const pos = (t: Tok): TextPos => textPos(ctx.file, ctx.lineNo, t.col);
  const arg = (o: string): Tok | undefined => opts.find((x) => x.name === o)?.args[0];
  if (name === "NFLOG") {
    const g = arg("--nflog-group");
    return [{ kind: "log", nflog: true, prefix: arg("--nflog-prefix")?.text ?? "", level: -1, group: g ? num(ctx, g, 65535) : 0 }];
  }
  const lvl = arg("--log-level");
  let level = 4;
  if (lvl) {
    const names = ["emerg", "alert", "crit", "error", "warning", "notice", "info", "debug"];
    const n = /^[0-7]$/.test(lvl.text) ? Number(lvl.text) : names.indexOf(lvl.text === "panic" ? "emerg" : lvl.text === "err" ? "error" : lvl.text === "warn" ? "warning" : lvl.text);
    if (n < 0) throw new RulesetSyntaxError(pos(lvl), `unknown log level ${q(lvl.text)}`);
    level = n;
  }
  const prefix = arg("--log-prefix")?.text ?? "";
  if (prefix.length > 29) throw new RulesetSyntaxError(pos(arg("--log-prefix")!), "log prefix longer than 29 characters");
  return [{ kind: "log", nflog: false, prefix, level, group: -1 }];
}

export const LOG: XtTarget = {
  type: "target",
  name: "LOG",
  options: {
    "--log-level": 1,
    "--log-prefix": 1,
    "--log-tcp-sequence": 0,
    "--log-tcp-options": 0,
    "--log-ip-options": 0,
    "--log-uid": 0,
    "--log-macdecode": 0,
  },
  build,
};

export const NFLOG: XtTarget = {
  type: "target",
  name: "NFLOG",
  options: { "--nflog-group": 1, "--nflog-prefix": 1, "--nflog-range": 1, "--nflog-size": 1, "--nflog-threshold": 1 },
  build,
};
