/**
 * libxt_MARK and libxt_CONNMARK (target): set, and/or/xor, save and restore marks.
 */
import { RulesetSyntaxError, q, textPos } from "../../errors.js";
import type { TextPos } from "../../errors.js";
import type { Action } from "../../model.js";
import { num, parseValueMask } from "../args.js";
import type { TargetCall, Tok, XtTarget } from "../types.js";

function build({ ctx, name, nameTok, opts }: TargetCall): Action[] {
  const pos = (t: Tok): TextPos => textPos(ctx.file, ctx.lineNo, t.col);
  const has = (o: string) => opts.some((x) => x.name === o);
  const arg = (o: string): Tok | undefined => opts.find((x) => x.name === o)?.args[0];
  const target = name === "MARK" ? "meta" : "ct";
  const out: Action[] = [];
  if (name === "CONNMARK" && (has("--save-mark") || has("--restore-mark"))) {
    const m = arg("--mask");
    let nfmask = 0xffffffff;
    let ctmask = 0xffffffff;
    if (m) nfmask = ctmask = num(ctx, m, 0xffffffff);
    const nf = arg("--nfmask");
    const ct = arg("--ctmask");
    if (nf) nfmask = num(ctx, nf, 0xffffffff);
    if (ct) ctmask = num(ctx, ct, 0xffffffff);
    out.push({ kind: "copymark", to: has("--save-mark") ? "ct" : "meta", nfmask, ctmask });
  } else {
    const o = opts.find((x) => x.name !== "--nfmask" && x.name !== "--ctmask" && x.name !== "--mask");
    if (!o) throw new RulesetSyntaxError(pos(nameTok), `target ${q(name)} needs an operation such as --set-xmark`);
    const a = o.args[0]!;
    let value: number;
    let mask: number;
    switch (o.name) {
      case "--set-xmark": {
        const vm = parseValueMask(ctx, a, 0xffffffff);
        value = vm.value;
        mask = vm.mask;
        break;
      }
      case "--set-mark": {
        // libxt_MARK: --set-mark v/m is xset v/(m|v); without /m the mask is all ones.
        const vm = parseValueMask(ctx, a, 0xffffffff);
        value = vm.value;
        mask = (vm.mask | vm.value) >>> 0;
        break;
      }
      case "--and-mark":
        value = 0;
        mask = ~num(ctx, a, 0xffffffff) >>> 0;
        break;
      case "--or-mark":
        value = num(ctx, a, 0xffffffff);
        mask = value;
        break;
      default:
        value = num(ctx, a, 0xffffffff);
        mask = 0;
        break;
    }
    out.push({ kind: "setmark", target, value, mask });
  }
  return out;
}

export const MARK: XtTarget = {
  type: "target",
  name: "MARK",
  options: { "--set-xmark": 1, "--set-mark": 1, "--and-mark": 1, "--or-mark": 1, "--xor-mark": 1 },
  build,
};

export const CONNMARK: XtTarget = {
  type: "target",
  name: "CONNMARK",
  options: {
    "--set-xmark": 1,
    "--set-mark": 1,
    "--and-mark": 1,
    "--or-mark": 1,
    "--xor-mark": 1,
    "--save-mark": 0,
    "--restore-mark": 0,
    "--nfmask": 1,
    "--ctmask": 1,
    "--mask": 1,
  },
  build,
};
