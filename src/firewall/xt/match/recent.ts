/**
 * libxt_recent: address lists with hit counts.
 */
import { RulesetSyntaxError, q, textPos } from "../../errors.js";
import type { Match } from "../../model.js";
import { formatAddr, parseAddr } from "../../values.js";
import { num, maskLenOf } from "../args.js";
import type { TextPos } from "../../errors.js";
import type { MatchCall, Tok, XtMatch } from "../types.js";

function build({ ctx, modTok, opts }: MatchCall): Match[] {
  const pos = (t: Tok): TextPos => textPos(ctx.file, ctx.lineNo, t.col);
  const out: Match[] = [];
  let op: "set" | "rcheck" | "update" | "remove" | null = null;
  let neg = false;
  let name = "DEFAULT";
  let seconds = 0;
  let hitcount = 0;
  let reap = false;
  let rttl = false;
  let side: "src" | "dst" = "src";
  let maskLen = ctx.v6 ? 128 : 32;
  for (const o of opts) {
    const a = o.args[0];
    switch (o.name) {
      case "--set":
      case "--rcheck":
      case "--update":
      case "--remove":
        if (op) throw new RulesetSyntaxError(pos(o.tok), `match ${q("recent")} takes only one of --set, --rcheck, --update, --remove`);
        op = o.name.slice(2) as "set" | "rcheck" | "update" | "remove";
        neg = o.neg;
        break;
      case "--name":
        name = (a as Tok).text;
        break;
      case "--seconds":
        seconds = num(ctx, a as Tok, 0xffffffff);
        break;
      case "--hitcount":
        hitcount = num(ctx, a as Tok, 65535);
        break;
      case "--reap":
        reap = true;
        break;
      case "--rttl":
        rttl = true;
        break;
      case "--rsource":
        side = "src";
        break;
      case "--rdest":
        side = "dst";
        break;
      case "--mask": {
        const m = parseAddr((a as Tok).text);
        const len = m && m.family === (ctx.v6 ? 6 : 4) ? maskLenOf(m.family, m.words) : -1;
        if (len < 0) throw new RulesetSyntaxError(pos(a as Tok), `invalid mask ${q((a as Tok).text)}: expected a contiguous netmask`);
        maskLen = len;
        break;
      }
    }
  }
  if (!op) throw new RulesetSyntaxError(pos(modTok), `match ${q("recent")} needs one of --set, --rcheck, --update, --remove`);
  if ((seconds || hitcount) && (op === "set" || op === "remove")) {
    throw new RulesetSyntaxError(pos(modTok), `--seconds and --hitcount need --rcheck or --update`);
  }
  if (reap && !seconds) throw new RulesetSyntaxError(pos(modTok), `--reap needs --seconds`);
  out.push({ kind: "recent", neg, op, name, seconds, hitcount, reap, rttl, side, maskLen, slot: ctx.rs.slots++ });
  return out;
}

/** recent_print: `recent: UPDATE seconds: 60 hit_count: 4 name: SSH side: source mask: 255.255.255.255`. */
function list({ ctx }: MatchCall, out: readonly Match[]): string {
  const m = out[0];
  if (!m || m.kind !== "recent") return "";
  let s = m.neg ? " ! recent:" : " recent:";
  s += { set: " SET", rcheck: " CHECK", update: " UPDATE", remove: " REMOVE" }[m.op];
  if (m.seconds) s += ` seconds: ${m.seconds}`;
  if (m.reap) s += " reap";
  if (m.hitcount) s += ` hit_count: ${m.hitcount}`;
  if (m.rttl) s += " TTL-Match";
  s += ` name: ${m.name}`;
  s += m.side === "src" ? " side: source" : " side: dest";
  const fam = ctx.v6 ? 6 : 4;
  const mask = new Uint32Array(4);
  for (let k = 0; k < m.maskLen; k++) mask[k >> 5] = ((mask[k >> 5] as number) | (0x80000000 >>> (k & 31))) >>> 0;
  return `${s} mask: ${formatAddr(fam, mask)}`;
}

export const recent: XtMatch = {
  type: "match",
  name: "recent",
  options: {
    "--set": 0,
    "--rcheck": 0,
    "--update": 0,
    "--remove": 0,
    "--seconds": 1,
    "--reap": 0,
    "--hitcount": 1,
    "--rttl": 0,
    "--name": 1,
    "--rsource": 0,
    "--rdest": 0,
    "--mask": 1,
  },
  build,
  list,
};
