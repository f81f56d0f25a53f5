/**
 * libxt_state and libxt_conntrack: ct state, status, tuple fields, expiry, direction.
 */
import type { Match } from "../../model.js";
import { parseAddrList, parsePortRange, unsupportedOpt } from "../args.js";
import { CTSTATE_BITS, CTSTATUS_BITS, NumSet, PROTO_NUM, formatAddr } from "../../values.js";
import { RulesetSyntaxError, q, textPos } from "../../errors.js";
import type { TextPos } from "../../errors.js";
import type { Ctx, MatchCall, Opt, Tok, XtMatch } from "../types.js";

/** `--state` / `--ctstate` / `--ctstatus` / … of -m state and -m conntrack. */
function buildCtOpt(ctx: Ctx, mod: string, o: Opt): Match {
  const pos = (t: Tok): TextPos => textPos(ctx.file, ctx.lineNo, t.col);
  const a = o.args[0] as Tok;
  switch (o.name) {
    case "--state":
    case "--ctstate": {
      let mask = 0;
      for (const s of a.text.split(",")) {
        const bit = CTSTATE_BITS[s.toLowerCase()];
        if (bit === undefined || (mod === "state" && (s === "SNAT" || s === "DNAT"))) {
          throw new RulesetSyntaxError(
            pos(a),
            `unknown state ${q(s)}: expected ${mod === "state" ? "INVALID, NEW, ESTABLISHED, RELATED, UNTRACKED" : "INVALID, NEW, ESTABLISHED, RELATED, UNTRACKED, SNAT, DNAT"}`,
          );
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

/** The order conntrack_dump / state_print print the options in, whatever order they were given. */
const CT_ORDER = [
  "--state",
  "--ctstate",
  "--ctproto",
  "--ctorigsrc",
  "--ctorigdst",
  "--ctreplsrc",
  "--ctrepldst",
  "--ctorigsrcport",
  "--ctorigdstport",
  "--ctreplsrcport",
  "--ctrepldstport",
  "--ctstatus",
  "--ctexpire",
  "--ctdir",
];
const STATE_NAMES: ReadonlyArray<readonly [number, string]> = [
  [CTSTATE_BITS["invalid"] as number, "INVALID"],
  [CTSTATE_BITS["new"] as number, "NEW"],
  [CTSTATE_BITS["related"] as number, "RELATED"],
  [CTSTATE_BITS["established"] as number, "ESTABLISHED"],
  [CTSTATE_BITS["untracked"] as number, "UNTRACKED"],
  [CTSTATE_BITS["snat"] as number, "SNAT"],
  [CTSTATE_BITS["dnat"] as number, "DNAT"],
];
const STATUS_NAMES: ReadonlyArray<readonly [number, string]> = [
  [CTSTATUS_BITS["expected"] as number, "EXPECTED"],
  [CTSTATUS_BITS["seen_reply"] as number, "SEEN_REPLY"],
  [CTSTATUS_BITS["assured"] as number, "ASSURED"],
  [CTSTATUS_BITS["confirmed"] as number, "CONFIRMED"],
];

function bitNames(mask: number, names: ReadonlyArray<readonly [number, string]>): string {
  const hit = names.filter(([bit]) => (mask & bit) !== 0).map(([, n]) => n);
  return hit.length ? hit.join(",") : "NONE";
}

/** conntrack_dump / state_print with -n: `! ctstate INVALID ctproto 6 ctorigsrc 10.0.0.0/8 ctdir REPLY`. */
function list({ ctx, mod, opts }: MatchCall, out: readonly Match[]): string {
  const fam = ctx.v6 ? 6 : 4;
  const pairs = opts.map((o, i) => ({ o, m: out[i] as Match })).sort((a, b) => CT_ORDER.indexOf(a.o.name) - CT_ORDER.indexOf(b.o.name));
  let s = "";
  for (const { o, m } of pairs) {
    const bang = o.neg ? " !" : "";
    switch (m.kind) {
      case "ctstate":
        s += `${bang} ${mod === "state" ? "state" : "ctstate"} ${bitNames(m.mask, STATE_NAMES)}`;
        break;
      case "ctstatus":
        s += `${bang} ctstatus ${bitNames(m.mask, STATUS_NAMES)}`;
        break;
      case "ctproto":
        s += `${bang} ctproto ${m.proto}`;
        break;
      case "ctaddr": {
        const r = m.set.range(0);
        let len = fam === 4 ? 32 : 128;
        // The prefix length from the range (lo..hi is one aligned block).
        for (let k = fam === 4 ? 32 : 128; k >= 0; k--) {
          const words = fam === 4 ? 1 : 4;
          let ok = true;
          for (let w = 0; w < words && ok; w++) {
            const bits = Math.max(0, Math.min(32, k - 32 * w));
            const hostMask = bits === 32 ? 0 : (0xffffffff >>> bits) >>> 0;
            if (((r.hi[w] as number) ^ (r.lo[w] as number)) >>> 0 !== hostMask) ok = false;
          }
          if (ok) {
            len = k;
            break;
          }
        }
        s += `${bang} ct${m.field} ${formatAddr(fam, r.lo)}${len === (fam === 4 ? 32 : 128) ? "" : `/${len}`}`;
        break;
      }
      case "ctport": {
        const [lo, hi] = m.set.pairs()[0] as [number, number];
        s += `${bang} ct${m.field}port ${lo === hi ? lo : `${lo}:${hi}`}`;
        break;
      }
      case "ctexpire": {
        const [lo, hi] = m.set.pairs()[0] as [number, number];
        s += `${bang} ctexpire ${lo === hi ? lo : `${lo}:${hi}`}`;
        break;
      }
      case "ctdir":
        s += ` ctdir ${m.dir === 0 ? "ORIGINAL" : "REPLY"}`;
        break;
      default:
        break;
    }
  }
  return s;
}

export const state: XtMatch = {
  type: "match",
  name: "state",
  options: { "--state": 1 },
  build,
  list,
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
  list,
};
