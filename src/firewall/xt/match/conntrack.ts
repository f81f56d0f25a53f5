/**
 * libxt_state and libxt_conntrack: ct state, status, tuple fields, expiry, direction.
 */
import type { Match } from "../../model.js";
import { parseAddrList, parsePortRange, unsupportedOpt } from "../args.js";
import { CTSTATE_BITS, CTSTATUS_BITS, NumSet, PROTO_NUM } from "../../values.js";
import { RulesetSyntaxError, q, textPos } from "../../errors.js";
import type { TextPos } from "../../errors.js";
import type { Ctx, MatchCall, Opt, Tok, XtMatch } from "../types.js";

/** `--state` / `--ctstate` / `--ctstatus` / … of -m state and -m conntrack. */
function buildCtOpt(ctx: Ctx, mod: string, o: Opt): Match {
  const pos = (t: Tok): TextPos => textPos(ctx.file, ctx.lineNo, t.col);
  const a = o.args[0]!;
  switch (o.name) {
    case "--state":
    case "--ctstate": {
      let mask = 0;
      for (const s of a.text.split(",")) {
        const bit = CTSTATE_BITS[s.toLowerCase()];
        if (bit === undefined || (mod === "state" && (s === "SNAT" || s === "DNAT"))) {
          throw new RulesetSyntaxError(pos(a), `unknown state ${q(s)}: expected ${mod === "state" ? "INVALID, NEW, ESTABLISHED, RELATED, UNTRACKED" : "INVALID, NEW, ESTABLISHED, RELATED, UNTRACKED, SNAT, DNAT"}`);
        }
        mask |= bit;
      }
      return { kind: "ctstate", neg: o.neg, mask, text: a.text };
    }
    case "--ctstatus": {
      let mask = 0;
      for (const s of a.text.split(",")) {
        const bit = CTSTATUS_BITS[s.toLowerCase()];
        if (bit === undefined || s.toLowerCase() === "snat" || s.toLowerCase() === "dnat" || s.toLowerCase() === "dying") {
          throw new RulesetSyntaxError(pos(a), `unknown status ${q(s)}: expected NONE, EXPECTED, SEEN_REPLY, ASSURED, CONFIRMED`);
        }
        mask |= bit;
      }
      return { kind: "ctstatus", neg: o.neg, mask };
    }
    case "--ctproto": {
      const n = /^[0-9]{1,3}$/.test(a.text) ? Number(a.text) : PROTO_NUM[a.text.toLowerCase()];
      if (n === undefined || n > 255) throw new RulesetSyntaxError(pos(a), `unknown protocol ${q(a.text)}`);
      return { kind: "ctproto", neg: o.neg, proto: n };
    }
    case "--ctorigsrc":
    case "--ctorigdst":
    case "--ctreplsrc":
    case "--ctrepldst": {
      const set = parseAddrList(ctx, a, ctx.v6 ? 6 : 4);
      if (set.size !== 1) throw new RulesetSyntaxError(pos(a), `${q(o.name)} takes one address`);
      return { kind: "ctaddr", field: o.name.slice(4) as "origsrc", neg: o.neg, set };
    }
    case "--ctorigsrcport":
    case "--ctorigdstport":
    case "--ctreplsrcport":
    case "--ctrepldstport":
      return { kind: "ctport", field: o.name.slice(4, -4) as "origsrc", neg: o.neg, set: parsePortRange(ctx, a) };
    case "--ctexpire": {
      const m = /^([0-9]{1,10})(?::([0-9]{1,10}))?$/.exec(a.text);
      if (!m) throw new RulesetSyntaxError(pos(a), `invalid expire range ${q(a.text)}: expected SECONDS or MIN:MAX`);
      const lo = Number(m[1]);
      const hi = m[2] === undefined ? lo : Number(m[2]);
      if (hi < lo || hi > 0xffffffff) throw new RulesetSyntaxError(pos(a), `invalid expire range ${q(a.text)}`);
      return { kind: "ctexpire", neg: o.neg, set: new NumSet([lo, hi]) };
    }
    case "--ctdir": {
      const d = a.text.toUpperCase();
      if (d !== "ORIGINAL" && d !== "REPLY") throw new RulesetSyntaxError(pos(a), `invalid direction ${q(a.text)}: expected ORIGINAL or REPLY`);
      if (o.neg) throw new RulesetSyntaxError(pos(o.tok), `${q("!")} cannot negate --ctdir`);
      return { kind: "ctdir", neg: false, dir: d === "ORIGINAL" ? 0 : 1 };
    }
    default:
      throw unsupportedOpt(ctx, o, `match ${q(mod)}`);
  }
}


function build({ ctx, mod, opts }: MatchCall): Match[] {
  const out: Match[] = [];
  for (const o of opts) out.push(buildCtOpt(ctx, mod, o));
  return out;
}

export const state: XtMatch = {
  type: "match",
  name: "state",
  options: { "--state": 1 },
  build,
};

export const conntrack: XtMatch = {
  type: "match",
  name: "conntrack",
  options: {
    "--ctstate": 1,
    "--ctproto": 1,
    "--ctorigsrc": 1,
    "--ctorigdst": 1,
    "--ctreplsrc": 1,
    "--ctrepldst": 1,
    "--ctorigsrcport": 1,
    "--ctorigdstport": 1,
    "--ctreplsrcport": 1,
    "--ctrepldstport": 1,
    "--ctstatus": 1,
    "--ctexpire": 1,
    "--ctdir": 1,
  },
  build,
};
