/**
 * libxt_LOG and libxt_NFLOG: logging, no effect on the verdict.
 */
import { RulesetSyntaxError, q, textPos } from "../../errors.js";
import type { TextPos } from "../../errors.js";
import type { Action } from "../../model.js";
import { num } from "../args.js";
import { saveString } from "../quote.js";
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
    const n = /^[0-7]$/.test(lvl.text)
      ? Number(lvl.text)
      : names.indexOf(lvl.text === "panic" ? "emerg" : lvl.text === "err" ? "error" : lvl.text === "warn" ? "warning" : lvl.text);
    if (n < 0) throw new RulesetSyntaxError(pos(lvl), `unknown log level ${q(lvl.text)}`);
    level = n;
  }
  const prefix = arg("--log-prefix")?.text ?? "";
  if (prefix.length > 29) throw new RulesetSyntaxError(pos(arg("--log-prefix") as Tok), "log prefix longer than 29 characters");
  return [{ kind: "log", nflog: false, prefix, level, group: -1 }];
}

/** XT_LOG_* flag bits, as LOG_print shows them (decimal). */
const LOG_FLAGS: Readonly<Record<string, number>> = {
  "--log-tcp-sequence": 0x01,
  "--log-tcp-options": 0x02,
  "--log-ip-options": 0x04,
  "--log-uid": 0x08,
  "--log-macdecode": 0x20,
};

/** LOG_print / NFLOG_print: `LOG flags 0 level 4 prefix "in: "`, `nflog-prefix x nflog-group 5`. */
function list({ name, opts }: TargetCall, out: readonly Action[]): string {
  const a = out[0];
  if (!a || a.kind !== "log") return "";
  const arg = (o: string) => opts.find((x) => x.name === o)?.args[0]?.text;
  if (name === "NFLOG") {
    let s = "";
    if (a.prefix) s += ` nflog-prefix ${saveString(a.prefix)}`;
    if (a.group) s += ` nflog-group ${a.group}`;
    const size = arg("--nflog-size");
    if (size !== undefined) s += ` nflog-size ${Number(size)}`;
    const threshold = arg("--nflog-threshold");
    if (threshold !== undefined && Number(threshold) !== 1) s += ` nflog-threshold ${Number(threshold)}`;
    return s;
  }
  let flags = 0;
  for (const o of opts) flags |= LOG_FLAGS[o.name] ?? 0;
  return ` LOG flags ${flags} level ${a.level}${a.prefix ? ` prefix "${a.prefix}"` : ""}`;
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
  list,
};

export const NFLOG: XtTarget = {
  type: "target",
  name: "NFLOG",
  options: { "--nflog-group": 1, "--nflog-prefix": 1, "--nflog-range": 1, "--nflog-size": 1, "--nflog-threshold": 1 },
  build,
  list,
};
