/**
 * Rule text generation: raw-table NOTRACK rules (and filter accepts) for a
 * traffic box, in iptables-save and nft syntax, for both directions of a
 * flow, and the snippet that applies them to a given ruleset.
 */
import type { Chain, HookName, Ruleset } from "../model.js";
import { PORT_PROTOS, protoName } from "../values.js";
import type { AddrSet, IfacePattern, NumSet } from "../values.js";
import { addrTexts, fmtNums, mirrorBox } from "./box.js";
import type { TrafficBox } from "./box.js";

/** Where a flow's original direction goes: to a local socket, from one, or through the box. */
export type FlowKind = "to-host" | "from-host" | "forwarded" | "any";

/** A generated rule, in both syntaxes. */
export interface GeneratedRule {
  /** Hook the rule goes to. */
  readonly hook: HookName;
  /** Which direction of the flow it handles. */
  readonly direction: "original" | "reply";
  /** Family the iptables line is for (ip6tables when 6). */
  readonly family: 4 | 6;
  /** iptables-save form, e.g. `-A PREROUTING -p udp -m udp --dport 53 -j CT --notrack` (table raw or filter). */
  readonly iptables: string;
  /** nft statement form, e.g. `udp dport 53 notrack`. */
  readonly nft: string;
}

function chainNameFor(hook: HookName): string {
  return hook.toUpperCase();
}

/** iptables-save line(s) for a box (one per protocol when it names several). */
function iptablesLines(chain: string, b: TrafficBox, target: string): string[] {
  const protos = b.protos ? b.protos.pairs().flatMap(([lo, hi]) => Array.from({ length: Math.min(hi - lo + 1, 8) }, (_, i) => lo + i)) : [-1];
  return protos.map((p) => {
    const parts = ["-A", chain];
    const addr = (flag: string, s: AddrSet | null) => {
      if (!s) return;
      const texts = addrTexts(s).map((t) => (t.includes("/") ? t : null));
      if (texts.every((t) => t !== null)) parts.push(flag, texts.join(","));
      else parts.push("-m", "iprange", flag === "-s" ? "--src-range" : "--dst-range", addrTexts(s)[0] as string);
    };
    addr("-s", b.saddr);
    addr("-d", b.daddr);
    const iface = (flag: string, l: readonly IfacePattern[] | null) => {
      if (!l) return;
      const first = l[0] as IfacePattern;
      parts.push(flag, first.name + (first.prefix ? "+" : ""));
    };
    iface("-i", b.iif);
    iface("-o", b.oif);
    if (p >= 0) {
      const name = p === 58 ? "ipv6-icmp" : protoName(p);
      parts.push("-p", name);
      const single = (s: NumSet | null) => !s || s.pairs().length === 1;
      if (PORT_PROTOS.includes(p) && (b.sport || b.dport)) {
        if (single(b.sport) && single(b.dport)) {
          parts.push("-m", name);
          if (b.sport) parts.push("--sport", fmtNums(b.sport, ":"));
          if (b.dport) parts.push("--dport", fmtNums(b.dport, ":"));
        } else {
          if (b.sport) parts.push("-m", "multiport", "--sports", fmtNums(b.sport, ":"));
          if (b.dport) parts.push("-m", "multiport", "--dports", fmtNums(b.dport, ":"));
        }
      }
    }
    parts.push("-j", ...target.split(" "));
    return parts.join(" ");
  });
}

function nftSet(items: string[]): string {
  return items.length === 1 ? (items[0] as string) : `{ ${items.join(", ")} }`;
}

/** nft statement text for a box. */
function nftExpr(b: TrafficBox, verdict: string): string {
  const parts: string[] = [];
  const fam = b.family === 6 ? "ip6" : "ip";
  if (b.saddr) parts.push(`${fam} saddr ${nftSet(addrTexts(b.saddr))}`);
  if (b.daddr) parts.push(`${fam} daddr ${nftSet(addrTexts(b.daddr))}`);
  if (!b.saddr && !b.daddr && b.family) parts.push(`meta nfproto ${b.family === 4 ? "ipv4" : "ipv6"}`);
  if (b.iif) parts.push(`iifname ${nftSet(b.iif.map((x) => JSON.stringify(x.name + (x.prefix ? "*" : ""))))}`);
  if (b.oif) parts.push(`oifname ${nftSet(b.oif.map((x) => JSON.stringify(x.name + (x.prefix ? "*" : ""))))}`);
  const protos = b.protos ? b.protos.pairs().flatMap(([lo, hi]) => (lo === hi ? [lo] : [])) : [];
  const hasPorts = b.sport || b.dport;
  if (protos.length === 1 && PORT_PROTOS.includes(protos[0] as number) && hasPorts) {
    const pn = protoName(protos[0] as number);
    if (b.sport) parts.push(`${pn} sport ${nftSet(fmtNums(b.sport, "-").split(","))}`);
    if (b.dport) parts.push(`${pn} dport ${nftSet(fmtNums(b.dport, "-").split(","))}`);
  } else {
    if (protos.length) parts.push(`meta l4proto ${nftSet(protos.map((p) => (p === 58 ? "ipv6-icmp" : protoName(p))))}`);
    if (b.sport) parts.push(`th sport ${nftSet(fmtNums(b.sport, "-").split(","))}`);
    if (b.dport) parts.push(`th dport ${nftSet(fmtNums(b.dport, "-").split(","))}`);
  }
  parts.push(verdict);
  return parts.join(" ");
}

/**
 * Puts a box's interface where the hook has one: an interface names the
 * host's side towards the peer, so arriving packets (prerouting, input) match
 * it as input interface and leaving ones (output, postrouting) as output.
 */
function ifaceForHook(b: TrafficBox, hook: HookName): TrafficBox {
  if (hook === "forward") return b;
  const iface = b.iif ?? b.oif;
  const arriving = hook === "prerouting" || hook === "input" || hook === "ingress";
  return { ...b, iif: arriving ? iface : null, oif: arriving ? null : iface };
}

export function genRules(hook: HookName, direction: "original" | "reply", box: TrafficBox, target: "notrack" | "accept"): GeneratedRule[] {
  const b = ifaceForHook(box, hook);
  const iptTarget = target === "notrack" ? "CT --notrack" : "ACCEPT";
  const fams: Array<4 | 6> = b.family ? [b.family] : [4, 6];
  return fams
    .flatMap((family) => {
      const fb = { ...b, family } as TrafficBox;
      return iptablesLines(chainNameFor(hook), fb, iptTarget).map((line) => ({
        hook,
        direction,
        family,
        iptables: line,
        nft: nftExpr(b.family ? fb : { ...b, family: 0 }, target),
      }));
    })
    .filter((g, i, all) => all.findIndex((x) => x.iptables === g.iptables && x.hook === g.hook) === i);
}

/** The raw rules for a box in both directions of the given flow kind. */
export function rawRulesFor(b: TrafficBox, kind: FlowKind): GeneratedRule[] {
  const m = mirrorBox(b);
  switch (kind) {
    case "to-host":
      return [...genRules("prerouting", "original", b, "notrack"), ...genRules("output", "reply", m, "notrack")];
    case "from-host":
      return [...genRules("output", "original", b, "notrack"), ...genRules("prerouting", "reply", m, "notrack")];
    case "forwarded":
      return [...genRules("prerouting", "original", b, "notrack"), ...genRules("prerouting", "reply", m, "notrack")];
    case "any":
      return [
        ...genRules("prerouting", "original", b, "notrack"),
        ...genRules("prerouting", "reply", m, "notrack"),
        ...genRules("output", "reply", m, "notrack"),
        ...genRules("output", "original", b, "notrack"),
      ];
  }
}

/**
 * Text to apply generated rules: an `iptables-restore --noflush` snippet
 * (`*raw` … `COMMIT`, per family) or an `nft -f` snippet that adds to the
 * ruleset's raw chains (creating a `ctlab_raw` table when it has none).
 */
export function renderGenerated(rs: Ruleset, rules: readonly GeneratedRule[], table: "raw" | "filter" = "raw"): string {
  if (rules.length === 0) return "";
  if (rs.syntax === "iptables") {
    const fam = rs.tables[0]?.family === "ip6" ? 6 : 4;
    const mine = rules.filter((r) => r.family === fam);
    const lines = [`*${table}`, ...mine.map((r) => (table === "filter" ? r.iptables.replace(/^-A /, "-I ") : r.iptables)), "COMMIT"];
    return lines.join("\n") + "\n";
  }
  const out: string[] = [];
  const seen = new Set<string>();
  const need: HookName[] = [];
  for (const r of rules) if (!need.includes(r.hook)) need.push(r.hook);
  const chainFor = new Map<HookName, string>();
  for (const hook of need) {
    const c = findNftChain(rs, hook, table);
    if (c) chainFor.set(hook, `${c.family} ${c.table} ${c.name}`);
  }
  const missing = need.filter((h) => !chainFor.has(h));
  if (missing.length) {
    const tname = table === "raw" ? "ctlab_raw" : "ctlab_filter";
    out.push(`table inet ${tname} {`);
    for (const h of missing) {
      out.push(`\tchain ${h} {`, `\t\ttype filter hook ${h} priority ${table === "raw" ? "raw" : "filter"}; policy accept;`, "\t}");
      chainFor.set(h, `inet ${tname} ${h}`);
    }
    out.push("}");
  }
  for (const r of rules) {
    const line = `${table === "filter" ? "insert" : "add"} rule ${chainFor.get(r.hook) as string} ${r.nft}`;
    if (!seen.has(line)) {
      seen.add(line);
      out.push(line);
    }
  }
  return out.join("\n") + "\n";
}

function findNftChain(rs: Ruleset, hook: HookName, table: "raw" | "filter"): Chain | undefined {
  for (const t of rs.tables) {
    if (t.family !== "inet" && t.family !== "ip" && t.family !== "ip6") continue;
    for (const c of t.chains) {
      const b = c.base;
      if (!b || b.hook !== hook || b.type !== "filter") continue;
      if (table === "raw" ? b.priority <= -200 : b.priority > -200 && b.priority <= 0) {
        if (t.family === "inet") return c;
      }
    }
  }
  return undefined;
}
