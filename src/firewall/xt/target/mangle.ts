/**
 * Targets that rewrite fields irrelevant to verdicts and tracking (TCPMSS,
 * DSCP, TOS, TTL, HL, CLASSIFY, CHECKSUM, ECN, TCPOPTSTRIP): their options
 * are read and ignored; the listing shows them as the real binary does.
 */
import type { Action } from "../../model.js";
import type { Opt, TargetCall, XtTarget } from "../types.js";

function build({ name }: TargetCall): Action[] {
  return [{ kind: "mangle", name }];
}

type Printer = (arg: (o: string) => string | undefined, opts: readonly Opt[]) => string;

const mangle = (name: string, options: Readonly<Record<string, number>>, print: Printer): XtTarget => ({
  type: "target",
  name,
  options,
  build,
  list: ({ opts }) => print((o) => opts.find((x) => x.name === o)?.args[0]?.text, opts),
});

const n = (s: string | undefined): number => Number(s ?? 0);
const hex2 = (v: number): string => `0x${(v & 0xff).toString(16).padStart(2, "0")}`;

/** DSCP class names (xtables' dscp_helper class_to_dscp). */
const DSCP_CLASS: Readonly<Record<string, number>> = {
  CS0: 0,
  CS1: 8,
  CS2: 16,
  CS3: 24,
  CS4: 32,
  CS5: 40,
  CS6: 48,
  CS7: 56,
  BE: 0,
  EF: 46,
  AF11: 10,
  AF12: 12,
  AF13: 14,
  AF21: 18,
  AF22: 20,
  AF23: 22,
  AF31: 26,
  AF32: 28,
  AF33: 30,
  AF41: 34,
  AF42: 36,
  AF43: 38,
};

export const TCPMSS = mangle("TCPMSS", { "--set-mss": 1, "--clamp-mss-to-pmtu": 0 }, (arg) =>
  arg("--set-mss") !== undefined ? ` TCPMSS set ${n(arg("--set-mss"))}` : " TCPMSS clamp to PMTU",
);
export const DSCP = mangle("DSCP", { "--set-dscp": 1, "--set-dscp-class": 1 }, (arg) => {
  const cls = arg("--set-dscp-class");
  return ` DSCP set ${hex2(cls !== undefined ? (DSCP_CLASS[cls.toUpperCase()] ?? 0) : n(arg("--set-dscp")))}`;
});
export const TOS = mangle("TOS", { "--set-tos": 1, "--and-tos": 1, "--or-tos": 1, "--xor-tos": 1 }, (arg) => {
  // tos_tg_print shows the xset value/mask each operation stands for.
  const and = arg("--and-tos");
  const or = arg("--or-tos");
  const xor = arg("--xor-tos");
  if (and !== undefined) return ` TOS set ${hex2(0)}/${hex2(~n(and))}`;
  if (or !== undefined) return ` TOS set ${hex2(n(or))}/${hex2(n(or))}`;
  if (xor !== undefined) return ` TOS set ${hex2(n(xor))}/${hex2(0)}`;
  const [v, m] = (arg("--set-tos") ?? "0").split("/");
  return ` TOS set ${hex2(n(v))}/${hex2(m === undefined ? 0xff : n(m))}`;
});
export const TTL = mangle("TTL", { "--ttl-set": 1, "--ttl-dec": 1, "--ttl-inc": 1 }, (arg) =>
  arg("--ttl-set") !== undefined
    ? ` TTL set to ${n(arg("--ttl-set"))}`
    : arg("--ttl-dec") !== undefined
      ? ` TTL decrement by ${n(arg("--ttl-dec"))}`
      : ` TTL increment by ${n(arg("--ttl-inc"))}`,
);
export const HL = mangle("HL", { "--hl-set": 1, "--hl-dec": 1, "--hl-inc": 1 }, (arg) =>
  arg("--hl-set") !== undefined
    ? ` HL set to ${n(arg("--hl-set"))}`
    : arg("--hl-dec") !== undefined
      ? ` HL decrement by ${n(arg("--hl-dec"))}`
      : ` HL increment by ${n(arg("--hl-inc"))}`,
);
export const CLASSIFY = mangle("CLASSIFY", { "--set-class": 1 }, (arg) => {
  const [maj, min] = (arg("--set-class") ?? "0:0").split(":");
  return ` CLASSIFY set ${parseInt(maj ?? "0", 16).toString(16)}:${parseInt(min ?? "0", 16).toString(16)}`;
});
export const CHECKSUM = mangle("CHECKSUM", { "--checksum-fill": 0 }, () => " CHECKSUM fill");
export const ECN = mangle("ECN", { "--ecn-tcp-remove": 0 }, () => " ECN TCP remove");
export const TCPOPTSTRIP = mangle("TCPOPTSTRIP", { "--strip-options": 1 }, (arg) => ` TCPOPTSTRIP options ${arg("--strip-options") ?? ""}`);
