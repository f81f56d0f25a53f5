/**
 * libxt_SYNPROXY: hands validated connections to conntrack (the proxy handshake is not generated).
 */
import type { Action } from "../../model.js";
import type { TargetCall, XtTarget } from "../types.js";

function build(_call: TargetCall): Action[] {
  return [{ kind: "synproxy" }];
}

/** SYNPROXY_print, trailing space included as the real binary prints it. */
function list({ opts }: TargetCall): string {
  const arg = (o: string) => opts.find((x) => x.name === o)?.args[0]?.text;
  const has = (o: string) => opts.some((x) => x.name === o);
  let s = " SYNPROXY ";
  if (has("--sack-perm")) s += "sack-perm ";
  if (has("--timestamp")) s += "timestamp ";
  if (arg("--wscale") !== undefined) s += `wscale ${Number(arg("--wscale"))} `;
  if (arg("--mss") !== undefined) s += `mss ${Number(arg("--mss"))} `;
  if (has("--ecn")) s += "ecn ";
  return s;
}

export const SYNPROXY: XtTarget = {
  type: "target",
  name: "SYNPROXY",
  options: { "--sack-perm": 0, "--timestamp": 0, "--wscale": 1, "--mss": 1, "--ecn": 0 },
  build,
  list,
};
