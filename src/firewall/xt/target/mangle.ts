/**
 * Targets that rewrite fields irrelevant to verdicts and tracking (TCPMSS,
 * DSCP, TOS, TTL, HL, CLASSIFY, CHECKSUM, ECN, TCPOPTSTRIP): their options
 * are read and ignored.
 */
import type { Action } from "../../model.js";
import type { TargetCall, XtTarget } from "../types.js";

function build({ name }: TargetCall): Action[] {
  return [{ kind: "mangle", name }];
}

const mangle = (name: string, options: Readonly<Record<string, number>>): XtTarget => ({ type: "target", name, options, build });

export const TCPMSS = mangle("TCPMSS", { "--set-mss": 1, "--clamp-mss-to-pmtu": 0 });
export const DSCP = mangle("DSCP", { "--set-dscp": 1, "--set-dscp-class": 1 });
export const TOS = mangle("TOS", { "--set-tos": 1, "--and-tos": 1, "--or-tos": 1, "--xor-tos": 1 });
export const TTL = mangle("TTL", { "--ttl-set": 1, "--ttl-dec": 1, "--ttl-inc": 1 });
export const HL = mangle("HL", { "--hl-set": 1, "--hl-dec": 1, "--hl-inc": 1 });
export const CLASSIFY = mangle("CLASSIFY", { "--set-class": 1 });
export const CHECKSUM = mangle("CHECKSUM", { "--checksum-fill": 0 });
export const ECN = mangle("ECN", { "--ecn-tcp-remove": 0 });
export const TCPOPTSTRIP = mangle("TCPOPTSTRIP", { "--strip-options": 1 });
