/**
 * libxt_statistic: random and nth sampling.
 */
import { RulesetSyntaxError, q, textPos } from "../../errors.js";
import type { Match } from "../../model.js";
import { num } from "../args.js";
import type { TextPos } from "../../errors.js";
import type { MatchCall, Tok, XtMatch } from "../types.js";

function build({ ctx, modTok, opts }: MatchCall): Match[] {
  const pos = (t: Tok): TextPos => textPos(ctx.file, ctx.lineNo, t.col);
  const out: Match[] = [];
  let mode = "";
  let probability = -1;
  let every = 0;
  let packet = 0;
  let packetGiven = false;
  let neg = false;
  for (const o of opts) {
    const a = o.args[0] as Tok;
    switch (o.name) {
      case "--mode":
        mode = a.text;
        if (mode !== "random" && mode !== "nth") throw new RulesetSyntaxError(pos(a), `unknown statistic mode ${q(a.text)}: expected random or nth`);
        break;
      case "--probability": {
        neg = neg || o.neg;
        const p = /^[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?$/.test(a.text) ? Number(a.text) : NaN;
        if (!(p >= 0 && p <= 1)) throw new RulesetSyntaxError(pos(a), `invalid probability ${q(a.text)}: expected a number from 0 to 1`);
        probability = p;
        break;
      }
      case "--every":
        neg = neg || o.neg;
        every = num(ctx, a, 0xffffffff);
        if (every === 0) throw new RulesetSyntaxError(pos(a), "--every must be at least 1");
        break;
      case "--packet":
        packet = num(ctx, a, 0xffffffff);
        packetGiven = true;
        break;
    }
  }
  if (mode === "random" && probability < 0) throw new RulesetSyntaxError(pos(modTok), `--mode random needs --probability`);
  if (mode === "nth" && every === 0) throw new RulesetSyntaxError(pos(modTok), `--mode nth needs --every`);
  if (mode === "") throw new RulesetSyntaxError(pos(modTok), `match ${q("statistic")} needs --mode`);
  // libxt_statistic: "--every" also requires "--packet".
  if (mode === "nth" && !packetGiven) throw new RulesetSyntaxError(pos(modTok), `--mode nth needs --packet with --every, as iptables does`);
  if (mode === "nth" && packet >= every) throw new RulesetSyntaxError(pos(modTok), `--packet must be less than --every`);
  // libxt_statistic stores lround(0x80000000 * p); the kernel compares a 31-bit random value against it.
  out.push({
    kind: "statistic",
    neg,
    mode: mode as "random" | "nth",
    threshold: Math.round(0x80000000 * Math.max(0, probability)),
    probability: Math.max(0, probability),
    every,
    packet,
    slot: ctx.rs.slots++,
  });
  return out;
}

/** statistic_print: the probability the kernel holds (threshold / 2^31, %.11f), nth as given. */
function list(_call: MatchCall, out: readonly Match[]): string {
  const m = out[0];
  if (!m || m.kind !== "statistic") return "";
  if (m.mode === "random") return ` statistic mode random${m.neg ? " !" : ""} probability ${(m.threshold / 0x80000000).toFixed(11)}`;
  return ` statistic mode nth${m.neg ? " !" : ""} every ${m.every}${m.packet ? ` packet ${m.packet}` : ""}`;
}

export const statistic: XtMatch = {
  type: "match",
  name: "statistic",
  options: { "--mode": 1, "--probability": 1, "--every": 1, "--packet": 1 },
  build,
  list,
};
