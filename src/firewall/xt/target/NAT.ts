/**
 * libipt_SNAT/DNAT, libxt_MASQUERADE and libxt_REDIRECT: NAT ranges and flags.
 */
import { RulesetSyntaxError, q, textPos } from "../../errors.js";
import type { TextPos } from "../../errors.js";
import type { Action, NatSpec } from "../../model.js";
import { PORT_PROTOS, formatAddr } from "../../values.js";
import { natSpec } from "../args.js";
import type { TargetCall, Tok, XtTarget } from "../types.js";

function build({ ctx, name, nameTok, opts, chain, proto }: TargetCall): Action[] {
  const pos = (t: Tok): TextPos => textPos(ctx.file, ctx.lineNo, t.col);
  const has = (o: string) => opts.some((x) => x.name === o);
  const arg = (o: string): Tok | undefined => opts.find((x) => x.name === o)?.args[0];
  const hook = chain.base?.hook;
  if (name === "SNAT" || name === "DNAT") {
    const o = name === "SNAT" ? "--to-source" : "--to-destination";
    const spec = arg(o);
    const okHooks = name === "SNAT" ? ["postrouting", "input"] : ["prerouting", "output"];
    if (hook && !okHooks.includes(hook)) throw new RulesetSyntaxError(pos(nameTok), `target ${q(name)} is not valid in chain ${q(chain.name)}`);
    if (!spec) throw new RulesetSyntaxError(pos(nameTok), `target ${q(name)} needs ${q(o)}`);
    return [natSpec(ctx, name === "SNAT" ? "snat" : "dnat", spec, proto, has("--random"), has("--random-fully"), has("--persistent"))];
  }
  const okHook = name === "MASQUERADE" ? ["postrouting"] : ["prerouting", "output"];
  if (hook && !okHook.includes(hook)) throw new RulesetSyntaxError(pos(nameTok), `target ${q(name)} is not valid in chain ${q(chain.name)}`);
  const p = arg("--to-ports");
  let portLo = -1;
  let portHi = -1;
  if (p) {
    if (!PORT_PROTOS.includes(proto)) throw new RulesetSyntaxError(pos(p), `--to-ports needs ${q("-p")} with tcp, udp, sctp or dccp`);
    const m = /^([0-9]{1,5})(?:[-:]([0-9]{1,5}))?$/.exec(p.text);
    if (!m) throw new RulesetSyntaxError(pos(p), `invalid port range ${q(p.text)}`);
    portLo = Number(m[1]);
    portHi = m[2] === undefined ? portLo : Number(m[2]);
    if (portLo > 65535 || portHi > 65535 || portHi < portLo) throw new RulesetSyntaxError(pos(p), `invalid port range ${q(p.text)}`);
  }
  const nat: NatSpec = {
    kind: "nat",
    type: name === "MASQUERADE" ? "masquerade" : "redirect",
    family: ctx.v6 ? 6 : 4,
    addrLo: null,
    addrHi: null,
    portLo,
    portHi,
    random: has("--random"),
    fullyRandom: has("--random-fully"),
    persistent: false,
  };
  return [nat];
}

/** SNAT/DNAT_print, MASQUERADE_print, REDIRECT_print with -n. */
function list({ name, ctx }: TargetCall, out: readonly Action[]): string {
  const a = out[0];
  if (!a || a.kind !== "nat") return "";
  const fam = ctx.v6 ? 6 : 4;
  const ports = a.portLo < 0 ? "" : a.portLo === a.portHi ? String(a.portLo) : `${a.portLo}-${a.portHi}`;
  const flags = `${a.random ? " random" : ""}${a.fullyRandom ? " random-fully" : ""}${a.persistent ? " persistent" : ""}`;
  if (name === "MASQUERADE") return `${ports ? ` masq ports: ${ports}` : ""}${flags}`;
  if (name === "REDIRECT") return `${ports ? ` redir ports ${ports}` : ""}${flags}`;
  let addr = "";
  if (a.addrLo) {
    const lo = formatAddr(fam, a.addrLo);
    const hi = a.addrHi ? formatAddr(fam, a.addrHi) : lo;
    addr = hi === lo ? lo : `${lo}-${hi}`;
    if (fam === 6 && ports) addr = hi === lo ? `[${lo}]` : `[${lo}]-[${hi}]`;
  }
  return ` to:${addr}${ports ? `:${ports}` : ""}${flags}`;
}

export const SNAT: XtTarget = {
  type: "target",
  name: "SNAT",
  options: { "--to-source": 1, "--random": 0, "--random-fully": 0, "--persistent": 0 },
  tables: ["nat"],
  build,
  list,
};

export const DNAT: XtTarget = {
  type: "target",
  name: "DNAT",
  options: { "--to-destination": 1, "--random": 0, "--persistent": 0 },
  tables: ["nat"],
  build,
  list,
};

export const MASQUERADE: XtTarget = {
  type: "target",
  name: "MASQUERADE",
  options: { "--to-ports": 1, "--random": 0, "--random-fully": 0 },
  tables: ["nat"],
  build,
  list,
};

export const REDIRECT: XtTarget = {
  type: "target",
  name: "REDIRECT",
  options: { "--to-ports": 1, "--random": 0 },
  tables: ["nat"],
  build,
  list,
};
