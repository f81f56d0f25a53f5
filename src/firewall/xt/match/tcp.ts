/**
 * libxt_tcp, libxt_udp, libxt_sctp: ports, TCP flags.
 */
import { q } from "../../errors.js";
import type { Match } from "../../model.js";
import { NumSet } from "../../values.js";
import { needProto, parseFlags, parsePortRange, unsupportedOpt } from "../args.js";
import type { MatchCall, Tok, XtMatch } from "../types.js";

function build({ ctx, mod, modTok, opts, pi }: MatchCall): Match[] {
  const out: Match[] = [];
  const pnum = mod === "tcp" ? 6 : mod === "udp" ? 17 : 132;
  needProto(ctx, pi, modTok, [pnum], `match ${q(mod)}`);
  const protos = NumSet.of(pnum);
  for (const o of opts) {
    switch (o.name) {
      case "--sport":
      case "--source-port":
      case "--dport":
      case "--destination-port":
        out.push({
          kind: "port",
          dir: o.name.includes("s") && !o.name.includes("dest") && o.name !== "--dport" ? "src" : "dst",
          neg: o.neg,
          protos,
          set: parsePortRange(ctx, o.args[0] as Tok),
        });
        break;
      case "--syn":
        out.push({ kind: "tcpflags", op: "eq", neg: o.neg, mask: 0x17, comp: 0x02 });
        break;
      case "--tcp-flags":
        out.push({ kind: "tcpflags", op: "eq", neg: o.neg, mask: parseFlags(ctx, o.args[0] as Tok), comp: parseFlags(ctx, o.args[1] as Tok) });
        break;
      default:
        throw unsupportedOpt(ctx, o, `match ${q(mod)}`);
    }
  }
  if (out.length === 0) out.push({ kind: "port", dir: "dst", neg: false, protos, set: new NumSet([0, 65535]) });
  return out;
}

/** tcp_print / udp_print / sctp_print: `tcp spts:1:1023 dpt:!22 flags:0x17/0x02`. */
function list({ mod }: MatchCall, out: readonly Match[]): string {
  let s = ` ${mod}`;
  for (const dir of ["src", "dst"] as const) {
    const m = out.find((x): x is Extract<Match, { kind: "port" }> => x.kind === "port" && x.dir === dir);
    if (!m) continue;
    const [lo, hi] = m.set.pairs()[0] ?? [0, 65535];
    if (lo === 0 && hi === 65535 && !m.neg) continue;
    const name = dir === "src" ? "spt" : "dpt";
    s += lo === hi ? ` ${name}:${m.neg ? "!" : ""}${lo}` : ` ${name}s:${m.neg ? "!" : ""}${lo}:${hi}`;
  }
  const f = out.find((x): x is Extract<Match, { kind: "tcpflags" }> => x.kind === "tcpflags");
  if (f) s += ` flags:${f.neg ? "!" : ""}0x${hex2(f.mask)}/0x${hex2(f.comp)}`;
  return s;
}

function hex2(v: number): string {
  return v.toString(16).toUpperCase().padStart(2, "0");
}

export const tcp: XtMatch = {
  type: "match",
  name: "tcp",
  options: {
    "--sport": 1,
    "--source-port": 1,
    "--dport": 1,
    "--destination-port": 1,
    "--syn": 0,
    "--tcp-flags": 2,
    "--tcp-option": 1,
  },
  build,
  list,
  implicitFor: 6,
};

export const udp: XtMatch = {
  type: "match",
  name: "udp",
  options: { "--sport": 1, "--source-port": 1, "--dport": 1, "--destination-port": 1 },
  build,
  list,
  implicitFor: 17,
};

export const sctp: XtMatch = {
  type: "match",
  name: "sctp",
  options: { "--sport": 1, "--source-port": 1, "--dport": 1, "--destination-port": 1, "--chunk-types": 2 },
  build,
  list,
  implicitFor: 132,
};
