/**
 * libxt_SYNPROXY: hands validated connections to conntrack (the proxy handshake is not generated).
 */
import type { Action } from "../../model.js";
import type { TargetCall, XtTarget } from "../types.js";

function build({  }: TargetCall): Action[] {
  return [{ kind: "synproxy" }];
}

export const SYNPROXY: XtTarget = {
  type: "target",
  name: "SYNPROXY",
  options: { "--sack-perm": 0, "--timestamp": 0, "--wscale": 1, "--mss": 1, "--ecn": 0 },
  build,
};
