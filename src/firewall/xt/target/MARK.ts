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
    const a = o.args[0] as Tok;
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

/** mark_tg_print / connmark_tg_print: the xset value/mask named by the operation it is. */
function list({ name }: TargetCall, out: readonly Action[]): string {
  const a = out[0];
  const h = (v: number) => `0x${(v >>> 0).toString(16)}`;
  if (!a) return "";
  if (a.kind === "setmark") {
    const { value, mask } = a;
    if (value === 0) return ` ${name} and ${h(~mask)}`;
    if (value === mask) return ` ${name} or ${h(value)}`;
    if (mask === 0) return ` ${name} xor ${h(value)}`;
    if (mask >>> 0 === 0xffffffff) return ` ${name} set ${h(value)}`;
    return ` ${name} xset ${h(value)}/${h(mask)}`;
  }
  if (a.kind === "copymark") {
    const op = a.to === "ct" ? "save" : "restore";
    const all = 0xffffffff;
    if (a.nfmask >>> 0 === all && a.ctmask >>> 0 === all) return ` CONNMARK ${op}`;
    if (a.nfmask === a.ctmask) return ` CONNMARK ${op} mask ${h(a.nfmask)}`;
    return op === "save" ? ` CONNMARK save nfmask ${h(a.nfmask)} ctmask ~${h(a.ctmask)}` : ` CONNMARK restore ctmask ${h(a.ctmask)} nfmask ~${h(a.nfmask)}`;
  }
  return "";
}

export const MARK: XtTarget = {
  type: "target",
  name: "MARK",
  options: { "--set-xmark": 1, "--set-mark": 1, "--and-mark": 1, "--or-mark": 1, "--xor-mark": 1 },
  build,
  list,
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
  list,
};
