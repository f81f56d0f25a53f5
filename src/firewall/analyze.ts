/**
 * What a ruleset means for connection tracking, as pure functions of the model.
 *
 * - Which rules make the kernel track connections, and why. Conntrack hooks
 *   are registered in a network namespace only when something calls
 *   nf_ct_netns_get(): the checkentry/init of xt_state, xt_conntrack,
 *   xt_connlimit, xt_connmark (match and target), xt_helper, xt_CT (except
 *   --notrack), xt_nat/MASQUERADE/REDIRECT, xt_SYNPROXY, and of nft_ct (get and
 *   set), nft_connlimit, nft_nat/masq/redir, nft_synproxy, nft_flow_offload and
 *   the ct helper/timeout/expectation objects. NOTRACK, CT --notrack, nft
 *   notrack, limit, recent and statistic do not. A rule counts from the moment
 *   it is loaded, reached or not. (Checked on Linux 6.18 in scratch
 *   namespaces: an empty nat chain tracks nothing; `ct state`, `ct mark`,
 *   `ct count`, connmark, `CT --zone`, MASQUERADE and a lone ct helper object
 *   each start tracking; an inet table starts it for both families.)
 * - Whether the ruleset could do without tracking, and what stands in the way.
 * - Traffic accepted only by stateless rules, which could be NOTRACKed, with
 *   generated raw rules for both directions (iptables-save and nft syntax)
 *   and a what-if run of representative packets through the filter chains.
 * - Operator warnings: one-sided NOTRACK, UNTRACKED packets dropped by filter
 *   rules that only accept ESTABLISHED,RELATED, NOTRACK of NATed traffic,
 *   NOTRACK of traffic that a stateful rule relies on.
 */
import { CT_STATE } from "../conntrack/constants.js";
import { RulesetSyntaxError, formatPos, q, textPos } from "./errors.js";
import { EvalState, PacketContext, VERDICT, createHost, evaluateHook } from "./eval.js";
import { ruleTargets, ruleVerdict, tableFamilies } from "./model.js";
import type { Chain, CtObject, HookName, Match, Rule, Ruleset, Syntax, Table } from "./model.js";
import {
  AddrSet,
  NumSet,
  PORT_PROTOS,
  PROTO_NUM,
  cmpWords,
  formatAddr,
  maskToPrefix,
  parseAddr,
  parseCidr,
  parseIface,
  protoName,
} from "./values.js";
import type { IfacePattern } from "./values.js";

// ---------------------------------------------------------------------------
// Why a rule needs tracking

/** One reason a rule (or object) makes the kernel track connections. */
export interface TrackReason {
  /** What in the rule, as the ruleset spells it (`-m conntrack --ctstate`, `ct state`, `MASQUERADE`). */
  readonly feature: string;
  /** The kernel module whose checkentry/init calls nf_ct_netns_get(). */
  readonly module: string;
  /** Kind of dependency, for grouping and for the stateless verdict. */
  readonly kind: "state" | "nat" | "connmark" | "connlimit" | "helper" | "template" | "synproxy" | "offload" | "unknown";
}

function isIpt(r: Rule, rs: Ruleset): boolean {
  return rs.syntax === "iptables" && r.family !== "inet";
}

const CT_SELECTORS = new Set(["ctmark", "ctstate", "ctstatus", "ctdirection", "ctzone"]);

/** Reasons from one match; empty when it needs no conntrack. */
function matchReasons(m: Match, r: Rule, ipt: boolean): TrackReason[] {
  const stateMod = ipt && /(^|\s)-m state(\s|$)/.test(r.text) ? "xt_state" : "xt_conntrack";
  switch (m.kind) {
    case "ctstate":
      return [{ feature: ipt ? (stateMod === "xt_state" ? "-m state --state" : "-m conntrack --ctstate") : "ct state", module: ipt ? stateMod : "nft_ct", kind: "state" }];
    case "ctstatus":
    case "ctdir":
    case "ctproto":
    case "ctaddr":
    case "ctport":
    case "ctexpire":
      return [{ feature: ipt ? `-m conntrack (${m.kind})` : `ct ${m.kind.slice(2)}`, module: ipt ? "xt_conntrack" : "nft_ct", kind: "state" }];
    case "cthelper":
      return [{ feature: ipt ? "-m helper" : "ct helper", module: ipt ? "xt_helper" : "nft_ct", kind: "helper" }];
    case "mark":
      return m.source === "ct" ? [{ feature: ipt ? "-m connmark" : "ct mark", module: ipt ? "xt_connmark" : "nft_ct", kind: "connmark" }] : [];
    case "connlimit":
      return [{ feature: ipt ? "-m connlimit" : "ct count", module: ipt ? "xt_connlimit" : "nft_connlimit", kind: "connlimit" }];
    case "lookup":
      return m.keys.some((k) => CT_SELECTORS.has(k)) ? [{ feature: `ct ${m.keys.find((k) => CT_SELECTORS.has(k))!.slice(2)} lookup`, module: "nft_ct", kind: "state" }] : [];
    case "cmp":
      return CT_SELECTORS.has(m.key) ? [{ feature: `ct ${m.key.slice(2)}`, module: "nft_ct", kind: "state" }] : [];
    default:
      return [];
  }
}

/** Unsupported features known to call nf_ct_netns_get (the rule was skipped, but it still tracks). */
const UNSUPPORTED_TRACKING: Readonly<Record<string, string>> = {
  "-m connbytes": "xt_connbytes",
  "-m connlabel": "xt_connlabel",
  "-m cluster": "xt_cluster",
  "-j CONNSECMARK": "xt_CONNSECMARK",
  "-j NETMAP": "xt_NETMAP",
  "-j CLUSTERIP": "ipt_CLUSTERIP",
  "xt match conntrack": "xt_conntrack",
  "xt match state": "xt_state",
  "xt match connlimit": "xt_connlimit",
  "xt match connmark": "xt_connmark",
  "xt match helper": "xt_helper",
  "xt target CONNMARK": "xt_CONNMARK",
  "xt target CT": "xt_CT",
  "xt target SNAT": "xt_nat",
  "xt target DNAT": "xt_nat",
  "xt target MASQUERADE": "xt_MASQUERADE",
};

/** Why this rule makes the kernel track connections (empty: it does not). */
export function ruleTrackingReasons(r: Rule, rs: Ruleset): TrackReason[] {
  const ipt = isIpt(r, rs);
  const out: TrackReason[] = [];
  if (r.unsupported) {
    const mod = UNSUPPORTED_TRACKING[r.unsupported];
    if (mod) out.push({ feature: r.unsupported, module: mod, kind: "unknown" });
  }
  for (const m of r.matches) out.push(...matchReasons(m, r, ipt));
  for (const a of r.actions) {
    switch (a.kind) {
      case "nat": {
        const name = ipt ? a.type.toUpperCase() : a.type;
        const module = ipt ? (a.type === "snat" || a.type === "dnat" ? "xt_nat" : a.type === "masquerade" ? "xt_MASQUERADE" : "xt_REDIRECT") : a.type === "masquerade" ? "nft_masq" : a.type === "redirect" ? "nft_redir" : "nft_nat";
        out.push({ feature: name, module, kind: "nat" });
        break;
      }
      case "ct":
        out.push({ feature: ipt ? "-j CT" : a.timeout ? "ct timeout set" : "ct zone set", module: ipt ? "xt_CT" : "nft_ct", kind: "template" });
        break;
      case "cthelperset":
        out.push({ feature: "ct helper set", module: "nft_ct", kind: "helper" });
        break;
      case "setmark":
        if (a.target === "ct") out.push({ feature: ipt ? "-j CONNMARK" : "ct mark set", module: ipt ? "xt_CONNMARK" : "nft_ct", kind: "connmark" });
        break;
      case "copymark":
        out.push({ feature: ipt ? (a.to === "ct" ? "-j CONNMARK --save-mark" : "-j CONNMARK --restore-mark") : a.to === "ct" ? "ct mark set meta mark" : "meta mark set ct mark", module: ipt ? "xt_CONNMARK" : "nft_ct", kind: "connmark" });
        break;
      case "synproxy":
        out.push({ feature: ipt ? "-j SYNPROXY" : "synproxy", module: ipt ? "xt_SYNPROXY" : "nft_synproxy", kind: "synproxy" });
        break;
      case "flowoffload":
        out.push({ feature: "flow add", module: "nft_flow_offload", kind: "offload" });
        break;
      case "vmap":
        if (a.keys.some((k) => CT_SELECTORS.has(k))) out.push({ feature: `ct ${a.keys.find((k) => CT_SELECTORS.has(k))!.slice(2)} vmap`, module: "nft_ct", kind: "state" });
        break;
      default:
        break;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// Traffic boxes: what a rule's stateless matches select

/** A traffic class: the cross product of the constrained fields (null = any). */
export interface TrafficBox {
  readonly family: 0 | 4 | 6;
  readonly protos: NumSet | null;
  readonly sport: NumSet | null;
  readonly dport: NumSet | null;
  readonly saddr: AddrSet | null;
  readonly daddr: AddrSet | null;
  readonly iif: readonly IfacePattern[] | null;
  readonly oif: readonly IfacePattern[] | null;
  /** True when the rule has stateless conditions the box does not express (negations, marks, limits, …). */
  readonly approximate: boolean;
}

/** The box of a rule's stateless matches (an over-approximation when `approximate`). */
export function boxOf(r: Rule): TrafficBox {
  let family: 0 | 4 | 6 = r.family === "ip" ? 4 : r.family === "ip6" ? 6 : 0;
  let protos: NumSet | null = null;
  let sport: NumSet | null = null;
  let dport: NumSet | null = null;
  let saddr: AddrSet | null = null;
  let daddr: AddrSet | null = null;
  let iif: readonly IfacePattern[] | null = null;
  let oif: readonly IfacePattern[] | null = null;
  let approximate = false;
  for (const m of r.matches) {
    switch (m.kind) {
      case "proto":
        if (m.neg) approximate = true;
        else if (!protos || m.protos.pairs().length < protos.pairs().length || sameProtoSet(protos, PORT_PROTOS)) protos = m.protos;
        break;
      case "nfproto":
        if (m.neg) approximate = true;
        else family = m.family;
        break;
      case "addr":
        if (m.neg) approximate = true;
        else {
          family = m.set.family;
          if (m.dir === "src") saddr = m.set;
          else daddr = m.set;
        }
        break;
      case "port":
        if (m.neg || m.dir === "any") approximate = true;
        else {
          if (!protos) protos = m.protos;
          if (m.dir === "src") sport = m.set;
          else dport = m.set;
        }
        break;
      case "iface":
        if (m.neg) approximate = true;
        else if (m.dir === "in") iif = m.names;
        else oif = m.names;
        break;
      case "icmp":
        if (!protos) protos = NumSet.of(m.v6 ? 58 : 1);
        approximate = true;
        break;
      case "comment":
        break;
      default:
        if (matchReasons(m, r, false).length === 0) approximate = true;
        break;
    }
  }
  // A wildcard `-p tcp -m tcp` without ports selects every port: keep it null.
  if (sport && isFullPorts(sport)) sport = null;
  if (dport && isFullPorts(dport)) dport = null;
  return { family, protos, sport, dport, saddr, daddr, iif, oif, approximate };
}

function sameProtoSet(s: NumSet, list: readonly number[]): boolean {
  return list.every((p) => s.has(p)) && s.pairs().every(([lo, hi]) => lo === hi && list.includes(lo));
}

function isFullPorts(s: NumSet): boolean {
  return s.pairs().some(([lo, hi]) => lo === 0 && hi === 65535);
}

function numOverlap(a: NumSet | null, b: NumSet | null): boolean {
  if (!a || !b) return true;
  for (const [alo, ahi] of a.pairs()) for (const [blo, bhi] of b.pairs()) if (alo <= bhi && blo <= ahi) return true;
  return false;
}

function numCovers(a: NumSet | null, b: NumSet | null): boolean {
  if (!a) return true;
  if (!b) return false;
  return b.pairs().every(([blo, bhi]) => a.pairs().some(([alo, ahi]) => alo <= blo && bhi <= ahi));
}

function addrOverlap(a: AddrSet | null, b: AddrSet | null): boolean {
  if (!a || !b) return true;
  if (a.family !== b.family) return false;
  const n = a.family === 4 ? 1 : 4;
  for (let i = 0; i < a.size; i++) {
    const x = a.range(i);
    for (let j = 0; j < b.size; j++) {
      const y = b.range(j);
      if (cmpWords(x.lo, y.hi, n) <= 0 && cmpWords(y.lo, x.hi, n) <= 0) return true;
    }
  }
  return false;
}

function addrCovers(a: AddrSet | null, b: AddrSet | null): boolean {
  if (!a) return true;
  if (!b || a.family !== b.family) return false;
  const n = a.family === 4 ? 1 : 4;
  for (let j = 0; j < b.size; j++) {
    const y = b.range(j);
    let ok = false;
    for (let i = 0; i < a.size && !ok; i++) {
      const x = a.range(i);
      ok = cmpWords(x.lo, y.lo, n) <= 0 && cmpWords(y.hi, x.hi, n) <= 0;
    }
    if (!ok) return false;
  }
  return true;
}

function ifOverlap(a: readonly IfacePattern[] | null, b: readonly IfacePattern[] | null): boolean {
  if (!a || !b) return true;
  return a.some((x) => b.some((y) => (x.prefix && y.name.startsWith(x.name)) || (y.prefix && x.name.startsWith(y.name)) || (!x.prefix && !y.prefix && x.name === y.name)));
}

function ifCovers(a: readonly IfacePattern[] | null, b: readonly IfacePattern[] | null): boolean {
  if (!a) return true;
  if (!b) return false;
  return b.every((y) => a.some((x) => (x.prefix ? y.name.startsWith(x.name) : !y.prefix && x.name === y.name)));
}

/** Whether some packet could be in both boxes. */
export function boxesOverlap(a: TrafficBox, b: TrafficBox): boolean {
  if (a.family && b.family && a.family !== b.family) return false;
  return (
    numOverlap(a.protos, b.protos) &&
    numOverlap(a.sport, b.sport) &&
    numOverlap(a.dport, b.dport) &&
    addrOverlap(a.saddr, b.saddr) &&
    addrOverlap(a.daddr, b.daddr) &&
    ifOverlap(a.iif, b.iif) &&
    ifOverlap(a.oif, b.oif)
  );
}

/** Whether box `a` holds every packet of box `b` (ignoring `approximate`). */
export function boxCovers(a: TrafficBox, b: TrafficBox): boolean {
  if (a.family && a.family !== b.family) return false;
  return (
    numCovers(a.protos, b.protos) &&
    numCovers(a.sport, b.sport) &&
    numCovers(a.dport, b.dport) &&
    addrCovers(a.saddr, b.saddr) &&
    addrCovers(a.daddr, b.daddr) &&
    ifCovers(a.iif, b.iif) &&
    ifCovers(a.oif, b.oif)
  );
}

/** The reply direction of a box: ports, addresses and interfaces swapped. */
export function mirrorBox(b: TrafficBox): TrafficBox {
  return { ...b, sport: b.dport, dport: b.sport, saddr: b.daddr, daddr: b.saddr, iif: b.oif, oif: b.iif };
}

/** A short human description: `udp dport 53`, `tcp dport 80,443 from 10.0.0.0/8`. */
export function describeBox(b: TrafficBox): string {
  const parts: string[] = [];
  if (b.family) parts.push(b.family === 4 ? "ipv4" : "ipv6");
  if (b.protos) parts.push(b.protos.pairs().map(([lo, hi]) => (lo === hi ? protoName(lo).replace("ipv6-icmp", "icmpv6") : `${lo}-${hi}`)).join(","));
  if (b.sport) parts.push(`sport ${fmtNums(b.sport, "-")}`);
  if (b.dport) parts.push(`dport ${fmtNums(b.dport, "-")}`);
  if (b.saddr) parts.push(`saddr ${addrTexts(b.saddr).join(",")}`);
  if (b.daddr) parts.push(`daddr ${addrTexts(b.daddr).join(",")}`);
  if (b.iif) parts.push(`iif ${b.iif.map((x) => x.name + (x.prefix ? "*" : "")).join(",")}`);
  if (b.oif) parts.push(`oif ${b.oif.map((x) => x.name + (x.prefix ? "*" : "")).join(",")}`);
  return parts.length ? parts.join(" ") : "all traffic";
}

function fmtNums(s: NumSet, sep: string): string {
  return s
    .pairs()
    .map(([lo, hi]) => (lo === hi ? String(lo) : `${lo}${sep}${hi}`))
    .join(",");
}

/** CIDR (or lo-hi) texts of an address set. */
function addrTexts(s: AddrSet): string[] {
  const out: string[] = [];
  for (let i = 0; i < s.size; i++) {
    const r = s.range(i);
    out.push(rangeText(s.family, r.lo, r.hi));
  }
  return out;
}

function rangeText(family: 4 | 6, lo: Uint32Array, hi: Uint32Array): string {
  // A prefix when lo..hi is one aligned block.
  const mask = new Uint32Array(4);
  for (let k = 0; k < 4; k++) mask[k] = ~(lo[k]! ^ hi[k]!) >>> 0;
  const len = maskToPrefix(family, mask);
  if (len >= 0) {
    let aligned = true;
    for (let k = 0; k < (family === 4 ? 1 : 4); k++) if ((lo[k]! & ~mask[k]!) !== 0 || (hi[k]! | mask[k]!) >>> 0 !== 0xffffffff) aligned = false;
    if (aligned) return `${formatAddr(family, lo)}/${len}`;
  }
  return `${formatAddr(family, lo)}-${formatAddr(family, hi)}`;
}

// ---------------------------------------------------------------------------
// Rule text generation (iptables-save and nft syntax)

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
    const fam: 4 | 6 = b.family === 6 ? 6 : 4;
    const addr = (flag: string, s: AddrSet | null) => {
      if (!s) return;
      const texts = addrTexts(s).map((t) => (t.includes("/") ? t : null));
      if (texts.every((t) => t !== null)) parts.push(flag, (texts as string[]).join(","));
      else parts.push("-m", "iprange", flag === "-s" ? "--src-range" : "--dst-range", addrTexts(s)[0]!);
    };
    addr("-s", b.saddr);
    addr("-d", b.daddr);
    if (b.iif) parts.push("-i", b.iif[0]!.name + (b.iif[0]!.prefix ? "+" : ""));
    if (b.oif) parts.push("-o", b.oif[0]!.name + (b.oif[0]!.prefix ? "+" : ""));
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
    void fam;
    parts.push("-j", ...target.split(" "));
    return parts.join(" ");
  });
}

function nftSet(items: string[]): string {
  return items.length === 1 ? items[0]! : `{ ${items.join(", ")} }`;
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
  if (protos.length === 1 && PORT_PROTOS.includes(protos[0]!) && hasPorts) {
    const pn = protoName(protos[0]!);
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

function genRules(hook: HookName, direction: "original" | "reply", box: TrafficBox, target: "notrack" | "accept"): GeneratedRule[] {
  const b = ifaceForHook(box, hook);
  const iptTarget = target === "notrack" ? "CT --notrack" : "ACCEPT";
  const fams: Array<4 | 6> = b.family ? [b.family] : [4, 6];
  return fams.flatMap((family) => {
    const fb = { ...b, family } as TrafficBox;
    return iptablesLines(chainNameFor(hook), fb, iptTarget).map((line) => ({
      hook,
      direction,
      family,
      iptables: line,
      nft: nftExpr(b.family ? fb : { ...b, family: 0 }, target),
    }));
  }).filter((g, i, all) => all.findIndex((x) => x.iptables === g.iptables && x.hook === g.hook) === i);
}

/** The raw rules for a box in both directions of the given flow kind. */
function rawRulesFor(b: TrafficBox, kind: FlowKind): GeneratedRule[] {
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
    const line = `${table === "filter" ? "insert" : "add"} rule ${chainFor.get(r.hook)!} ${r.nft}`;
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

// ---------------------------------------------------------------------------
// Paths and simulation

/** Where a flow's original direction goes: to a local socket, from one, or through the box. */
export type FlowKind = "to-host" | "from-host" | "forwarded" | "any";

const PATHS: Readonly<Record<Exclude<FlowKind, "any">, { orig: HookName[]; reply: HookName[]; nat: HookName[] }>> = {
  "to-host": { orig: ["prerouting", "input"], reply: ["output", "postrouting"], nat: ["prerouting", "input"] },
  "from-host": { orig: ["output", "postrouting"], reply: ["prerouting", "input"], nat: ["output", "postrouting"] },
  forwarded: { orig: ["prerouting", "forward", "postrouting"], reply: ["prerouting", "forward", "postrouting"], nat: ["prerouting", "postrouting"] },
};

/** Every rule reachable from a chain through jumps and gotos (each once). */
function reachable(t: Table, c: Chain, out: Rule[] = [], seen = new Set<string>()): Rule[] {
  if (seen.has(c.name)) return out;
  seen.add(c.name);
  for (const r of c.rules) {
    out.push(r);
    for (const { target } of ruleTargets(r)) {
      const n = t.chainByName.get(target);
      if (n) reachable(t, n, out, seen);
    }
  }
  return out;
}

/** Rules reachable from base chains at a hook that satisfy `pick`. */
function rulesAtHook(rs: Ruleset, hook: HookName, family: 0 | 4 | 6, pick: (c: Chain) => boolean): Array<{ rule: Rule; base: Chain }> {
  const out: Array<{ rule: Rule; base: Chain }> = [];
  for (const t of rs.tables) {
    const fams = tableFamilies(t.family);
    if (family !== 0 && !fams.includes(family)) continue;
    if (fams.length === 0) continue;
    for (const c of t.chains) {
      if (!c.base || c.base.hook !== hook || !pick(c)) continue;
      for (const rule of reachable(t, c)) out.push({ rule, base: c });
    }
  }
  return out;
}

const isNatChain = (c: Chain) => c.base?.type === "nat";
const isFilterChain = (c: Chain) => c.base !== null && c.base.type !== "nat" && c.base.priority > -200;

function hasNat(r: Rule): boolean {
  return r.actions.some((a) => a.kind === "nat");
}

function isNotrack(r: Rule): boolean {
  return r.actions.some((a) => a.kind === "notrack");
}

/** Representative addresses: documentation prefixes (RFC 5737 / RFC 3849). */
const LOCAL4 = Uint32Array.of(0xc0000201, 0, 0, 0); // 192.0.2.1
const REMOTE4 = Uint32Array.of(0xc6336407, 0, 0, 0); // 198.51.100.7
const LOCAL6 = Uint32Array.of(0x20010db8, 0, 0, 1);
const REMOTE6 = Uint32Array.of(0x20010db8, 0xffff, 0, 7);

function pickAddr(s: AddrSet | null, fallback: Uint32Array): Uint32Array {
  if (!s || s.size === 0) return fallback;
  const r = s.range(0);
  const n = s.family === 4 ? 1 : 4;
  if (cmpWords(r.lo, r.hi, n) === 0) return r.lo;
  // Prefer a host address inside a network (lo + 1).
  const x = r.lo.slice();
  x[n - 1] = (x[n - 1]! + 1) >>> 0;
  return x;
}

function pickPort(s: NumSet | null, fallback: number): number {
  if (!s) return fallback;
  const p = s.pairs()[0];
  return p ? p[0] : fallback;
}

/** Result of running a representative packet through the filter chains of a path. */
export interface PathCheck {
  readonly direction: "original" | "reply";
  readonly hooks: readonly HookName[];
  /** ct state the packet had. */
  readonly state: "new" | "established" | "untracked";
  readonly verdict: "accept" | "drop" | "stolen" | "queue";
  /** Deciding rule, or null for a policy / no chain. */
  readonly rule: Rule | null;
  /** The chain whose policy decided, when no rule did. */
  readonly policyChain: string | null;
}

function simulate(rs: Ruleset, b: TrafficBox, kind: Exclude<FlowKind, "any">, direction: "original" | "reply", state: "new" | "established" | "untracked"): PathCheck {
  const family: 4 | 6 = b.family === 6 ? 6 : 4;
  const local = family === 4 ? LOCAL4 : LOCAL6;
  const remote = family === 4 ? REMOTE4 : REMOTE6;
  // The original direction: client → server. For to-host the server is local.
  const cli = pickAddr(b.saddr, kind === "from-host" ? local : remote);
  const srv = pickAddr(b.daddr, kind === "to-host" ? local : family === 4 ? Uint32Array.of(0xcb00710a, 0, 0, 0) : REMOTE6);
  const proto = b.protos ? b.protos.pairs()[0]![0] : 17;
  const cport = pickPort(b.sport, 40000);
  const sport = pickPort(b.dport, 40001);
  const ctx = new PacketContext();
  const p = ctx.p;
  p.resetDecoded();
  p.family = family;
  p.proto = proto;
  p.l4Ok = true;
  p.l3Len = 60;
  p.ttl = 64;
  const orig = direction === "original";
  p.src.set(orig ? cli : srv);
  p.dst.set(orig ? srv : cli);
  p.sport = orig ? cport : sport;
  p.dport = orig ? sport : cport;
  if (proto === 6) p.tcpFlags = state === "new" ? 0x02 : 0x10;
  if (proto === 1 || proto === 58) {
    p.icmpType = proto === 1 ? (orig ? 8 : 0) : orig ? 128 : 129;
    p.icmpCode = 0;
  }
  ctx.ctState = state === "new" ? CT_STATE.NEW : state === "established" ? CT_STATE.ESTABLISHED : CT_STATE.UNTRACKED;
  ctx.ctDir = orig ? 0 : 1;
  ctx.ctProto = proto;
  ctx.dryRun = true;
  ctx.state = new EvalState(rs.slots);
  ctx.host = createHost({ localAddrs: [{ family, words: local.slice() }, ...(kind === "to-host" ? [{ family, words: srv }] : []), ...(kind === "from-host" ? [{ family, words: cli }] : [])] });
  const hooks = orig ? PATHS[kind].orig : PATHS[kind].reply;
  const inIf = (iface: readonly IfacePattern[] | null) => (iface && iface[0] ? iface[0].name + (iface[0].prefix ? "0" : "") : "eth0");
  let verdict: number = VERDICT.ACCEPT;
  let rule: Rule | null = null;
  let policyChain: string | null = null;
  for (const hook of hooks) {
    ctx.hook = hook;
    const arriving = hook === "prerouting" || hook === "input" || hook === "forward";
    const leaving = hook === "output" || hook === "postrouting" || hook === "forward";
    ctx.iif = arriving ? (orig ? inIf(b.iif) : inIf(b.oif)) : "";
    ctx.oif = leaving ? (orig ? inIf(b.oif) : inIf(b.iif)) : "";
    if (kind === "forwarded" && hook === "forward" && ctx.iif === ctx.oif) ctx.oif = ctx.iif === "eth0" ? "eth1" : "eth0";
    ctx.resetResults();
    verdict = evaluateHook(rs, hook, ctx, { minPriority: -200, types: ["filter", "route"] });
    rule = ctx.verdictRule;
    policyChain = ctx.verdictRule === null && ctx.verdictChain ? ctx.verdictChain.name : null;
    if (verdict !== VERDICT.ACCEPT) break;
  }
  const v = verdict === VERDICT.ACCEPT ? "accept" : verdict === VERDICT.DROP ? "drop" : verdict === VERDICT.STOLEN ? "stolen" : "queue";
  return { direction, hooks, state, verdict: v, rule: verdict === VERDICT.ACCEPT ? null : rule, policyChain: verdict === VERDICT.ACCEPT ? null : policyChain };
}

// ---------------------------------------------------------------------------
// The analysis

/** A rule that makes the kernel track connections. */
export interface TrackingRule {
  readonly rule: Rule;
  readonly reasons: readonly TrackReason[];
}

/** Something that stands between the ruleset and running without conntrack. */
export interface StatelessBlocker {
  readonly rule: Rule | null;
  readonly object: CtObject | null;
  readonly reason: TrackReason;
  /** Whether a stateless rewrite exists (with a loss of precision the hint names). */
  readonly replaceable: boolean;
  readonly hint: string;
}

/** Traffic accepted only statelessly: a NOTRACK candidate. */
export interface NotrackCandidate {
  readonly box: TrafficBox;
  readonly kind: Exclude<FlowKind, "any">;
  readonly description: string;
  /** The stateless accept rules that define the class. */
  readonly basis: readonly Rule[];
  /** raw rules for both directions. */
  readonly rules: readonly GeneratedRule[];
  /** Filter rules to add so that UNTRACKED packets of the class are still accepted (empty when none are needed). */
  readonly filterRules: readonly GeneratedRule[];
  /** What-if runs with the packets untracked. */
  readonly checks: readonly PathCheck[];
  readonly notes: readonly string[];
}

/** A traffic class that looked stateless but must stay tracked. */
export interface ExcludedClass {
  readonly description: string;
  readonly basis: readonly Rule[];
  readonly reason: string;
  readonly rule: Rule | null;
}

/** Operator warning codes. */
export type WarningCode =
  | "one-sided-notrack"
  | "untracked-dropped"
  | "nat-needs-tracking"
  | "notrack-breaks-stateful"
  | "skipped-rules";

/** One operator warning. */
export interface AnalysisWarning {
  readonly code: WarningCode;
  readonly severity: "warning" | "info";
  readonly message: string;
  /** Rules involved (the first is the one the warning is about). */
  readonly rules: readonly Rule[];
}

/** Everything `ctlab rules analyze` reports. */
export interface AnalysisResult {
  readonly file: string;
  readonly syntax: Syntax;
  readonly ruleCount: number;
  /** Families whose conntrack hooks the ruleset registers. */
  readonly trackedFamilies: { readonly ipv4: boolean; readonly ipv6: boolean };
  /** True when nothing registers the hooks: no packet is ever tracked. */
  readonly noTracking: boolean;
  readonly trackingRules: readonly TrackingRule[];
  readonly trackingObjects: ReadonlyArray<{ readonly object: CtObject; readonly reason: TrackReason }>;
  /** Could the ruleset be rewritten to run without conntrack? */
  readonly stateless: { readonly possible: boolean; readonly blockers: readonly StatelessBlocker[] };
  readonly candidates: readonly NotrackCandidate[];
  readonly excluded: readonly ExcludedClass[];
  /** Existing NOTRACK rules. */
  readonly notrackRules: readonly Rule[];
  readonly warnings: readonly AnalysisWarning[];
}

function blockerFor(reason: TrackReason, r: Rule | null): { replaceable: boolean; hint: string } {
  switch (reason.kind) {
    case "nat":
      return { replaceable: false, hint: "NAT keeps its mapping in the conntrack entry: it cannot run untracked" };
    case "state": {
      const m = r?.matches.find((x): x is Extract<Match, { kind: "ctstate" }> => x.kind === "ctstate");
      if (m && !m.neg && m.mask === CT_STATE.INVALID) return { replaceable: true, hint: "an INVALID drop has no stateless equivalent; dropping it loses the sanity check only" };
      if (m && !m.neg && (m.mask & (CT_STATE.ESTABLISHED | CT_STATE.RELATED)) !== 0 && (m.mask & CT_STATE.NEW) === 0) {
        return { replaceable: true, hint: "replace with stateless accepts of the reply traffic (source ports of the services used, TCP without SYN); RELATED ICMP errors need their own accepts" };
      }
      if (m && !m.neg && (m.mask & CT_STATE.NEW) !== 0) return { replaceable: true, hint: "drop the state condition: the rule's addresses and ports already select the traffic" };
      return { replaceable: false, hint: "matches conntrack data that has no stateless equivalent" };
    }
    case "connmark":
      return { replaceable: false, hint: "connmark lives in the conntrack entry" };
    case "connlimit":
      return { replaceable: false, hint: "counting connections needs the table" };
    case "helper":
      return { replaceable: false, hint: "helpers (FTP, SIP, …) inspect tracked connections" };
    case "template":
      return { replaceable: false, hint: "a CT template (zone, helper, timeout) applies to tracked connections" };
    case "synproxy":
      return { replaceable: false, hint: "SYNPROXY hands validated connections over to conntrack" };
    case "offload":
      return { replaceable: false, hint: "flow offload moves tracked connections to a flowtable" };
    default:
      return { replaceable: false, hint: "an unmodelled feature that uses conntrack" };
  }
}

/**
 * Analyses a ruleset for connection tracking. Pure: the model (and its
 * counters) is not changed; what-if packets run on a private state.
 */
export function analyzeRuleset(rs: Ruleset): AnalysisResult {
  const trackingRules: TrackingRule[] = [];
  let ipv4 = false;
  let ipv6 = false;
  let ruleCount = 0;
  for (const t of rs.tables) {
    for (const c of t.chains) {
      for (const r of c.rules) {
        ruleCount++;
        const reasons = ruleTrackingReasons(r, rs);
        if (reasons.length === 0) continue;
        trackingRules.push({ rule: r, reasons });
        const fams = tableFamilies(r.family);
        if (fams.includes(4)) ipv4 = true;
        if (fams.includes(6)) ipv6 = true;
      }
    }
  }
  const trackingObjects = rs.ctObjects.map((o) => {
    const fams = tableFamilies(o.family);
    if (fams.includes(4)) ipv4 = true;
    if (fams.includes(6)) ipv6 = true;
    return { object: o, reason: { feature: o.kind, module: "nft_ct", kind: o.kind === "ct helper" ? "helper" : "template" } as TrackReason };
  });
  const noTracking = !ipv4 && !ipv6;

  const blockers: StatelessBlocker[] = [];
  for (const tr of trackingRules) {
    for (const reason of tr.reasons) {
      const b = blockerFor(reason, tr.rule);
      blockers.push({ rule: tr.rule, object: null, reason, ...b });
    }
  }
  for (const o of trackingObjects) blockers.push({ rule: null, object: o.object, reason: o.reason, ...blockerFor(o.reason, null) });

  const notrackRules: Rule[] = [];
  for (const t of rs.tables) for (const c of t.chains) for (const r of c.rules) if (isNotrack(r)) notrackRules.push(r);

  const warnings: AnalysisWarning[] = [];
  const { candidates, excluded } = noTracking ? { candidates: [], excluded: [] } : findCandidates(rs, notrackRules);
  warnings.push(...notrackWarnings(rs, notrackRules));
  if (rs.skipped.length) {
    warnings.push({
      code: "skipped-rules",
      severity: "info",
      message: `${rs.skipped.length} rule(s) use unsupported features and were kept as never-matching: the analysis ignores what they match`,
      rules: [],
    });
  }
  return {
    file: rs.file,
    syntax: rs.syntax,
    ruleCount,
    trackedFamilies: { ipv4, ipv6 },
    noTracking,
    trackingRules,
    trackingObjects,
    stateless: { possible: blockers.every((b) => b.replaceable), blockers },
    candidates,
    excluded,
    notrackRules,
    warnings,
  };
}

/** Whether a rule's ct condition would stop matching once its traffic is UNTRACKED. */
function reliesOnTracking(r: Rule): boolean {
  for (const m of r.matches) {
    if (m.kind === "ctstate" && !m.neg && (m.mask & CT_STATE.UNTRACKED) === 0) return true;
    if (m.kind === "ctstate" && m.neg && (m.mask & CT_STATE.UNTRACKED) !== 0) return true;
    if (m.kind === "ctstatus" || m.kind === "ctaddr" || m.kind === "ctport" || m.kind === "cthelper" || m.kind === "connlimit") return true;
    if (m.kind === "mark" && m.source === "ct") return true;
  }
  return false;
}

function isSpecific(b: TrafficBox): boolean {
  return b.protos !== null || b.sport !== null || b.dport !== null || b.saddr !== null || b.daddr !== null;
}

function findCandidates(rs: Ruleset, notrackRules: readonly Rule[]): { candidates: NotrackCandidate[]; excluded: ExcludedClass[] } {
  type Raw = { box: TrafficBox; kind: Exclude<FlowKind, "any">; basis: Rule[] };
  const raws: Raw[] = [];
  const add = (box: TrafficBox, kind: Exclude<FlowKind, "any">, r: Rule) => {
    const same = raws.find((x) => x.kind === kind && boxCovers(x.box, box) && boxCovers(box, x.box));
    if (same) {
      if (!same.basis.includes(r)) same.basis.push(r);
    } else raws.push({ box, kind, basis: [r] });
  };
  for (const hook of ["input", "output", "forward"] as const) {
    for (const { rule } of rulesAtHook(rs, hook, 0, isFilterChain)) {
      if (ruleVerdict(rule)?.kind !== "accept" || rule.unsupported) continue;
      if (ruleTrackingReasons(rule, rs).length > 0) continue;
      const b = boxOf(rule);
      if (!b.protos || !b.protos.pairs().every(([lo, hi]) => lo === hi && PORT_PROTOS.includes(lo))) continue;
      if (!b.sport && !b.dport) continue;
      // Normalise to the original direction of the flow.
      const replyHalf = !b.dport && b.sport !== null;
      if (hook === "input") add(replyHalf ? mirrorBox(b) : b, replyHalf ? "from-host" : "to-host", rule);
      else if (hook === "output") add(replyHalf ? mirrorBox(b) : b, replyHalf ? "to-host" : "from-host", rule);
      else add(replyHalf ? mirrorBox(b) : b, "forwarded", rule);
    }
  }
  const candidates: NotrackCandidate[] = [];
  const excluded: ExcludedClass[] = [];
  const rawBoxes = notrackRules.map((r) => ({ r, box: boxOf(r), hook: hookOfRule(rs, r) }));
  for (const raw of raws) {
    const description = `${describeBox(raw.box)} (${raw.kind})`;
    const path = PATHS[raw.kind];
    // NAT rules on the original path would translate this traffic.
    const natHit = path.nat
      .flatMap((h) => rulesAtHook(rs, h, raw.box.family, isNatChain))
      .find(({ rule }) => hasNat(rule) && boxesOverlap(boxOf(rule), raw.box));
    if (natHit) {
      excluded.push({ description, basis: raw.basis, reason: "NAT needs tracking: a NAT rule on its path may translate it", rule: natHit.rule });
      continue;
    }
    // Stateful filter rules on the path that would stop matching.
    const hooks = [...new Set([...path.orig, ...path.reply])];
    const stateful = hooks
      .flatMap((h) => rulesAtHook(rs, h, raw.box.family, isFilterChain))
      .find(({ rule }) => {
        if (!reliesOnTracking(rule)) return false;
        const rb = boxOf(rule);
        if (!isSpecific(rb)) return false;
        return boxesOverlap(rb, raw.box) || boxesOverlap(rb, mirrorBox(raw.box));
      });
    if (stateful) {
      excluded.push({ description, basis: raw.basis, reason: "a stateful rule matches this traffic and relies on its conntrack state", rule: stateful.rule });
      continue;
    }
    const rules = rawRulesFor(raw.box, raw.kind);
    // Already untracked in both directions?
    const covered = rules.every((g) => rawBoxes.some((x) => x.hook === g.hook && boxCovers(x.box, g.direction === "original" ? raw.box : mirrorBox(raw.box))));
    if (covered) continue;
    const notes: string[] = [];
    if (raw.box.approximate) notes.push("the accepting rule has further conditions: the generated rules may untrack a little more than it accepts");
    if (raw.box.protos?.has(6)) notes.push("TCP without tracking: replies must be accepted by port, and conntrack's INVALID and window checks no longer apply");
    const checks: PathCheck[] = [];
    const filterRules: GeneratedRule[] = [];
    for (const direction of ["original", "reply"] as const) {
      const before = simulate(rs, raw.box, raw.kind, direction, direction === "original" ? "new" : "established");
      const after = simulate(rs, raw.box, raw.kind, direction, "untracked");
      checks.push(after);
      if (before.verdict === "accept" && after.verdict !== "accept") {
        const hook = after.hooks.find((h) => h === "input" || h === "output" || h === "forward") ?? after.hooks[after.hooks.length - 1]!;
        const b = direction === "original" ? raw.box : mirrorBox(raw.box);
        filterRules.push(...genRules(hook, direction, b, "accept"));
        notes.push(
          `${direction} packets are accepted today as ${before.state.toUpperCase()} but would be dropped as UNTRACKED by ${after.rule ? `rule at ${formatPos(after.rule.pos)}` : `the policy of chain ${q(after.policyChain ?? "?")}`}: add the filter rule(s) shown`,
        );
      }
    }
    candidates.push({ box: raw.box, kind: raw.kind, description, basis: raw.basis, rules, filterRules, checks, notes });
  }
  return { candidates, excluded };
}

function hookOfRule(rs: Ruleset, r: Rule): HookName | null {
  // The base chain that reaches the rule (first found).
  for (const t of rs.tables) {
    if (t.family !== r.family || t.name !== r.table) continue;
    for (const c of t.chains) {
      if (!c.base) continue;
      if (reachable(t, c).includes(r)) return c.base.hook;
    }
  }
  return null;
}

function notrackWarnings(rs: Ruleset, notrackRules: readonly Rule[]): AnalysisWarning[] {
  const out: AnalysisWarning[] = [];
  const raw = notrackRules.map((r) => ({ r, box: boxOf(r), hook: hookOfRule(rs, r) })).filter((x) => x.hook !== null);
  const at = (h: HookName) => raw.filter((x) => x.hook === h);
  for (const x of raw) {
    const m = mirrorBox(x.box);
    const desc = describeBox(x.box);
    const mdesc = describeBox(m);
    // One-sided NOTRACK.
    const inOut = at("output").some((y) => boxCovers(y.box, { ...m, iif: null, oif: m.oif }));
    const inPre = at("prerouting").some((y) => boxCovers(y.box, { ...m, iif: m.iif, oif: null }));
    if (x.hook === "prerouting" && !inOut && !inPre) {
      out.push({
        code: "one-sided-notrack",
        severity: "warning",
        message: `NOTRACK covers ${desc} arriving, but not its replies (${mdesc}): the replies create conntrack entries and later packets of the flow may be INVALID; add the mirror rule in raw OUTPUT (and PREROUTING when the host forwards this traffic)`,
        rules: [x.r],
      });
    } else if (x.hook === "prerouting" && !inOut && inPre && !isSpecificLocal(x.box)) {
      out.push({
        code: "one-sided-notrack",
        severity: "info",
        message: `NOTRACK of ${desc} has its mirror in raw PREROUTING only: replies this host sends itself (raw OUTPUT) stay tracked`,
        rules: [x.r],
      });
    } else if (x.hook === "output" && !inPre) {
      out.push({
        code: "one-sided-notrack",
        severity: "warning",
        message: `NOTRACK covers ${desc} sent by this host, but not its replies (${mdesc}) arriving in raw PREROUTING: they create conntrack entries`,
        rules: [x.r],
      });
    }
    // NAT on untracked traffic.
    const natHooks: HookName[] = x.hook === "prerouting" ? ["prerouting", "input", "postrouting"] : ["output", "postrouting"];
    for (const h of natHooks) {
      for (const { rule } of rulesAtHook(rs, h, x.box.family, isNatChain)) {
        if (hasNat(rule) && boxesOverlap(boxOf(rule), x.box)) {
          out.push({
            code: "nat-needs-tracking",
            severity: "warning",
            message: `NOTRACK of ${desc} overlaps a NAT rule at ${formatPos(rule.pos)}: NAT needs tracking, so these packets will not be translated`,
            rules: [x.r, rule],
          });
        }
      }
    }
    // Stateful filter rules that rely on the state of this traffic.
    const filterHooks: HookName[] = x.hook === "prerouting" ? ["input", "forward"] : ["output"];
    for (const h of filterHooks) {
      for (const { rule } of rulesAtHook(rs, h, x.box.family, isFilterChain)) {
        if (!reliesOnTracking(rule)) continue;
        const rb = boxOf(rule);
        if (!isSpecific(rb) || !boxesOverlap(rb, x.box)) continue;
        const v = ruleVerdict(rule);
        out.push({
          code: "notrack-breaks-stateful",
          severity: "warning",
          message: `rule at ${formatPos(rule.pos)} tests the conntrack state of ${describeBox(rb)}, which NOTRACK makes UNTRACKED: it will no longer match${v?.kind === "accept" ? " and the traffic may fall through to a drop" : ""}`,
          rules: [x.r, rule],
        });
      }
    }
    // What-if: does the filter accept the untracked packets?
    const kind: Exclude<FlowKind, "any"> = x.hook === "prerouting" ? "to-host" : "from-host";
    const after = simulate(rs, x.box, kind, "original", "untracked");
    if (after.verdict === "drop") {
      const est = establishedOnlyAccept(rs, kind === "to-host" ? "input" : "output", x.box);
      out.push({
        code: "untracked-dropped",
        severity: "warning",
        message: `UNTRACKED packets of ${desc} are dropped by ${after.rule ? `the rule at ${formatPos(after.rule.pos)}` : `the policy of chain ${q(after.policyChain ?? "?")}`}${est ? `: the filter accepts this traffic only as ESTABLISHED,RELATED (rule at ${formatPos(est.pos)}); add a stateless accept or --ctstate UNTRACKED` : ": add a stateless accept for it"}`,
        rules: after.rule ? [x.r, after.rule] : [x.r],
      });
    }
  }
  return dedupeWarnings(out);
}

function isSpecificLocal(b: TrafficBox): boolean {
  return b.daddr !== null;
}

function establishedOnlyAccept(rs: Ruleset, hook: HookName, b: TrafficBox): Rule | null {
  for (const { rule } of rulesAtHook(rs, hook, b.family, isFilterChain)) {
    const m = rule.matches.find((x): x is Extract<Match, { kind: "ctstate" }> => x.kind === "ctstate");
    if (m && !m.neg && (m.mask & CT_STATE.ESTABLISHED) !== 0 && (m.mask & CT_STATE.UNTRACKED) === 0 && ruleVerdict(rule)?.kind === "accept" && boxesOverlap(boxOf(rule), b)) return rule;
  }
  return null;
}

function dedupeWarnings(ws: AnalysisWarning[]): AnalysisWarning[] {
  const seen = new Set<string>();
  return ws.filter((w) => {
    const k = `${w.code}|${w.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

// ---------------------------------------------------------------------------
// `ctlab rules notrack FILE --for 'udp dport 53'`

const SEL_FILE = "<selector>";

interface SelTok {
  readonly text: string;
  readonly col: number;
}

function selTokens(s: string): SelTok[] {
  const out: SelTok[] = [];
  let i = 0;
  while (i < s.length) {
    const c = s[i]!;
    if (c === " " || c === "\t") {
      i++;
      continue;
    }
    if (c === "{" || c === "}" || c === ",") {
      out.push({ text: c, col: i + 1 });
      i++;
      continue;
    }
    const start = i;
    let t = "";
    if (c === '"') {
      i++;
      while (i < s.length && s[i] !== '"') t += s[i++];
      if (i >= s.length) throw new RulesetSyntaxError(textPos(SEL_FILE, 1, start + 1), "unterminated quoted string");
      i++;
    } else {
      while (i < s.length && !" \t{},".includes(s[i]!)) t += s[i++];
    }
    out.push({ text: t, col: start + 1 });
  }
  return out;
}

/**
 * Parses a small nft-like traffic selector: `[ip|ip6] [tcp|udp|sctp|udplite|icmp|icmpv6]
 * [sport P] [dport P] [saddr A] [daddr A] [iif NAME] [oif NAME]`, where P is a
 * port, a range `a-b` or a set `{ a, b-c }`, and A an address, prefix or range
 * (or a set of them).
 * @throws {RulesetSyntaxError} naming the column in `<selector>`.
 */
export function parseSelector(text: string): TrafficBox {
  const toks = selTokens(text);
  let i = 0;
  let family: 0 | 4 | 6 = 0;
  let protos: NumSet | null = null;
  let sport: NumSet | null = null;
  let dport: NumSet | null = null;
  let saddr: AddrSet | null = null;
  let daddr: AddrSet | null = null;
  let iif: IfacePattern[] | null = null;
  let oif: IfacePattern[] | null = null;
  const fail = (t: SelTok | undefined, msg: string): never => {
    throw new RulesetSyntaxError(textPos(SEL_FILE, 1, t ? t.col : text.length + 1), msg, "selector");
  };
  const values = (key: SelTok): SelTok[] => {
    const t = toks[i++];
    if (!t) return fail(undefined, `missing value after ${q(key.text)}`);
    if (t.text !== "{") {
      if (t.text === "}" || t.text === ",") fail(t, `unexpected ${q(t.text)}`);
      // Allow comma lists without braces: dport 53,853
      const list = [t];
      while (toks[i]?.text === ",") {
        i++;
        const n = toks[i++];
        if (!n || n.text === "{" || n.text === "}" || n.text === ",") fail(n, "expected a value after a comma");
        list.push(n!);
      }
      return list;
    }
    const list: SelTok[] = [];
    for (;;) {
      const v = toks[i++];
      if (!v) return fail(undefined, `missing ${q("}")}`);
      if (v.text === "}") break;
      if (v.text === ",") continue;
      if (v.text === "{") fail(v, "nested sets are not allowed");
      list.push(v);
    }
    if (list.length === 0) fail(t, "empty set");
    return list;
  };
  const ports = (key: SelTok): NumSet => {
    const pairs: number[] = [];
    for (const v of values(key)) {
      const m = /^([0-9]{1,5})(?:[-:]([0-9]{1,5}))?$/.exec(v.text);
      if (!m) fail(v, `invalid port ${q(v.text)}`);
      const lo = Number(m![1]);
      const hi = m![2] === undefined ? lo : Number(m![2]);
      if (lo > 65535 || hi > 65535) fail(v, `invalid port ${q(v.text)}`);
      if (hi < lo) fail(v, `invalid port range ${q(v.text)}`);
      pairs.push(lo, hi);
    }
    return new NumSet(pairs);
  };
  const addrs = (key: SelTok): AddrSet => {
    const ranges: Array<{ lo: Uint32Array; hi: Uint32Array }> = [];
    const texts: string[] = [];
    let fam: 4 | 6 | 0 = family;
    for (const v of values(key)) {
      const dash = v.text.indexOf("-");
      if (dash > 0) {
        const a = parseAddr(v.text.slice(0, dash));
        const b = parseAddr(v.text.slice(dash + 1));
        if (!a || !b || a.family !== b.family || (fam && a.family !== fam)) fail(v, `invalid address range ${q(v.text)}`);
        fam = a!.family;
        ranges.push({ lo: a!.words, hi: b!.words });
      } else {
        const c = parseCidr(v.text, fam);
        if (!c) fail(v, `invalid address ${q(v.text)}`);
        fam = c!.family;
        ranges.push({ lo: c!.lo, hi: c!.hi });
      }
      texts.push(v.text);
    }
    family = fam || 4;
    return new AddrSet(fam || 4, ranges, texts);
  };
  const seen = new Set<string>();
  while (i < toks.length) {
    const t = toks[i++]!;
    const k = t.text.toLowerCase();
    const once = (name: string) => {
      if (seen.has(name)) fail(t, `${q(name)} given twice`);
      seen.add(name);
    };
    switch (k) {
      case "ip":
      case "ipv4":
        once("family");
        family = 4;
        break;
      case "ip6":
      case "ipv6":
        once("family");
        family = 6;
        break;
      case "inet":
        once("family");
        break;
      case "tcp":
      case "udp":
      case "sctp":
      case "udplite":
      case "dccp":
      case "icmp":
      case "icmpv6":
      case "ipv6-icmp":
        once("protocol");
        protos = NumSet.of(PROTO_NUM[k]!);
        if (k === "icmp") family = family || 4;
        if (k === "icmpv6" || k === "ipv6-icmp") family = 6;
        break;
      case "l4proto":
      case "proto": {
        once("protocol");
        const pairs: number[] = [];
        for (const v of values(t)) {
          const n = PROTO_NUM[v.text.toLowerCase()] ?? (/^[0-9]{1,3}$/.test(v.text) ? Number(v.text) : undefined);
          if (n === undefined || n > 255) fail(v, `unknown protocol ${q(v.text)}`);
          pairs.push(n!, n!);
        }
        protos = new NumSet(pairs);
        break;
      }
      case "sport":
        once("sport");
        sport = ports(t);
        break;
      case "dport":
        once("dport");
        dport = ports(t);
        break;
      case "saddr":
        once("saddr");
        saddr = addrs(t);
        break;
      case "daddr":
        once("daddr");
        daddr = addrs(t);
        break;
      case "iif":
      case "iifname":
        once("iif");
        iif = values(t).map((v) => parseIface(v.text.replace(/\+$/, "*"), "*"));
        break;
      case "oif":
      case "oifname":
        once("oif");
        oif = values(t).map((v) => parseIface(v.text.replace(/\+$/, "*"), "*"));
        break;
      default:
        fail(t, `unknown selector word ${q(t.text)}: expected a protocol, sport, dport, saddr, daddr, iif or oif`);
    }
  }
  if ((sport || dport) && !protos) fail(toks[0], "ports need a protocol (tcp, udp, sctp, udplite or dccp)");
  if ((sport || dport) && protos && !protos.pairs().every(([lo, hi]) => lo === hi && PORT_PROTOS.includes(lo))) {
    fail(toks[0], "ports need a protocol with ports (tcp, udp, sctp, udplite or dccp)");
  }
  if (saddr && daddr && saddr.family !== daddr.family) fail(toks[0], "source and destination addresses of different families");
  if (toks.length === 0) fail(undefined, "empty selector: name at least a protocol");
  return { family, protos, sport, dport, saddr, daddr, iif, oif, approximate: false };
}

/** Result of {@link notrackRulesFor}. */
export interface NotrackSuggestion {
  readonly selector: string;
  readonly box: TrafficBox;
  /** raw rules: PREROUTING and OUTPUT, both directions. */
  readonly rules: readonly GeneratedRule[];
  /** Ready to apply in the ruleset's own syntax (iptables-restore --noflush, or nft -f). */
  readonly text: string;
  /** Warnings about the traffic with these rules in place (NAT overlap, stateful rules, UNTRACKED drops). */
  readonly warnings: readonly AnalysisWarning[];
}

/**
 * The raw-table rules that untrack the traffic named by `selector` in both
 * directions, in PREROUTING and OUTPUT, in the ruleset's own syntax, plus the
 * warnings the analysis would raise with them in place.
 * @throws {RulesetSyntaxError} for a malformed selector, or one whose address
 *   family the (iptables) ruleset cannot hold.
 */
export function notrackRulesFor(rs: Ruleset, selector: string): NotrackSuggestion {
  let box = parseSelector(selector);
  if (rs.syntax === "iptables") {
    const fam = rs.tables[0]?.family === "ip6" ? 6 : 4;
    if (box.family && box.family !== fam) {
      throw new RulesetSyntaxError(textPos(SEL_FILE, 1, 1), `the selector is for ${box.family === 6 ? "IPv6" : "IPv4"} but the ruleset is ${fam === 6 ? "ip6tables" : "iptables"}`, "selector");
    }
    box = { ...box, family: fam };
  }
  const rules = rawRulesFor(box, "any");
  const warnings: AnalysisWarning[] = [];
  for (const kind of ["to-host", "from-host", "forwarded"] as const) {
    const natHit = PATHS[kind].nat.flatMap((h) => rulesAtHook(rs, h, box.family, isNatChain)).find(({ rule }) => hasNat(rule) && boxesOverlap(boxOf(rule), box));
    if (natHit) {
      warnings.push({
        code: "nat-needs-tracking",
        severity: "warning",
        message: `${describeBox(box)} overlaps the NAT rule at ${formatPos(natHit.rule.pos)}: NAT needs tracking, untracked packets are not translated`,
        rules: [natHit.rule],
      });
      break;
    }
  }
  for (const hook of ["input", "output", "forward"] as const) {
    for (const { rule } of rulesAtHook(rs, hook, box.family, isFilterChain)) {
      const rb = boxOf(rule);
      if (reliesOnTracking(rule) && isSpecific(rb) && (boxesOverlap(rb, box) || boxesOverlap(rb, mirrorBox(box)))) {
        warnings.push({
          code: "notrack-breaks-stateful",
          severity: "warning",
          message: `rule at ${formatPos(rule.pos)} tests the conntrack state of ${describeBox(rb)}: once untracked it no longer matches`,
          rules: [rule],
        });
      }
    }
  }
  if (!rs.tables.some((t) => t.chains.length > 0) || analyzeTrackingFamilies(rs).none) {
    warnings.push({ code: "skipped-rules", severity: "info", message: "nothing in this ruleset registers conntrack hooks: its packets are not tracked, NOTRACK changes nothing", rules: [] });
  }
  for (const kind of ["to-host", "from-host"] as const) {
    for (const direction of ["original", "reply"] as const) {
      const before = simulate(rs, box, kind, direction, direction === "original" ? "new" : "established");
      const after = simulate(rs, box, kind, direction, "untracked");
      if (before.verdict === "accept" && after.verdict === "drop") {
        warnings.push({
          code: "untracked-dropped",
          severity: "warning",
          message: `${kind} ${direction} packets of ${describeBox(box)} would be dropped as UNTRACKED by ${after.rule ? `the rule at ${formatPos(after.rule.pos)}` : `the policy of chain ${q(after.policyChain ?? "?")}`}: accept them statelessly`,
          rules: after.rule ? [after.rule] : [],
        });
      }
    }
  }
  return { selector, box, rules, text: renderGenerated(rs, rules, "raw"), warnings: dedupeWarnings(warnings) };
}

function analyzeTrackingFamilies(rs: Ruleset): { none: boolean } {
  for (const t of rs.tables) for (const c of t.chains) for (const r of c.rules) if (ruleTrackingReasons(r, rs).length) return { none: false };
  return { none: rs.ctObjects.length === 0 };
}

// ---------------------------------------------------------------------------
// Output

function ruleRef(r: Rule): { id: number; family: string; table: string; chain: string; position: string; text: string } {
  return { id: r.id, family: r.family, table: r.table, chain: r.chain, position: formatPos(r.pos), text: r.text };
}

function boxJson(b: TrafficBox): Record<string, unknown> {
  return {
    family: b.family === 0 ? "any" : b.family === 4 ? "ipv4" : "ipv6",
    protocols: b.protos ? b.protos.pairs().map(([lo]) => protoName(lo)) : null,
    sport: b.sport ? b.sport.pairs() : null,
    dport: b.dport ? b.dport.pairs() : null,
    saddr: b.saddr ? addrTexts(b.saddr) : null,
    daddr: b.daddr ? addrTexts(b.daddr) : null,
    iif: b.iif ? b.iif.map((x) => x.name + (x.prefix ? "*" : "")) : null,
    oif: b.oif ? b.oif.map((x) => x.name + (x.prefix ? "*" : "")) : null,
    approximate: b.approximate,
  };
}

/** The analysis as plain JSON-ready data (rules by reference: id, position, text). */
export function analysisToJson(a: AnalysisResult): Record<string, unknown> {
  return {
    file: a.file,
    syntax: a.syntax,
    rules: a.ruleCount,
    tracking: {
      ipv4: a.trackedFamilies.ipv4,
      ipv6: a.trackedFamilies.ipv6,
      none: a.noTracking,
      rules: a.trackingRules.map((t) => ({ rule: ruleRef(t.rule), reasons: t.reasons })),
      objects: a.trackingObjects.map((o) => ({ kind: o.object.kind, table: o.object.table, name: o.object.name, position: formatPos(o.object.pos), reason: o.reason })),
    },
    stateless: {
      possible: a.stateless.possible,
      blockers: a.stateless.blockers.map((b) => ({
        rule: b.rule ? ruleRef(b.rule) : null,
        object: b.object ? `${b.object.kind} ${b.object.name}` : null,
        feature: b.reason.feature,
        module: b.reason.module,
        replaceable: b.replaceable,
        hint: b.hint,
      })),
    },
    notrackRules: a.notrackRules.map(ruleRef),
    candidates: a.candidates.map((c) => ({
      traffic: c.description,
      kind: c.kind,
      box: boxJson(c.box),
      basis: c.basis.map(ruleRef),
      rules: c.rules,
      filterRules: c.filterRules,
      checks: c.checks.map((k) => ({ ...k, rule: k.rule ? ruleRef(k.rule) : null })),
      notes: c.notes,
    })),
    excluded: a.excluded.map((e) => ({ traffic: e.description, reason: e.reason, rule: e.rule ? ruleRef(e.rule) : null, basis: e.basis.map(ruleRef) })),
    warnings: a.warnings.map((w) => ({ code: w.code, severity: w.severity, message: w.message, rules: w.rules.map(ruleRef) })),
  };
}

/** The analysis as a text report. */
export function formatAnalysis(a: AnalysisResult, rs?: Ruleset): string {
  const L: string[] = [];
  L.push(`Ruleset ${a.file} (${a.syntax === "iptables" ? "iptables-save" : "nft"}, ${a.ruleCount} rules)`);
  L.push("");
  L.push("Connection tracking");
  if (a.noTracking) {
    L.push("  No rule needs conntrack: the kernel registers no conntrack hooks, no packet is tracked.");
  } else {
    const fams = [a.trackedFamilies.ipv4 ? "IPv4" : "", a.trackedFamilies.ipv6 ? "IPv6" : ""].filter(Boolean).join(" and ");
    L.push(`  Tracked: ${fams}. ${a.trackingRules.length} rule(s)${a.trackingObjects.length ? ` and ${a.trackingObjects.length} object(s)` : ""} register the conntrack hooks (by being loaded, reached or not):`);
    for (const t of a.trackingRules) {
      L.push(`    ${formatPos(t.rule.pos)}  ${t.rule.text}`);
      L.push(`      needs conntrack: ${t.reasons.map((r) => `${r.feature} (${r.module})`).join(", ")}`);
    }
    for (const o of a.trackingObjects) L.push(`    ${formatPos(o.object.pos)}  ${o.object.kind} ${o.object.name} (${o.reason.module})`);
  }
  L.push("");
  L.push("Stateless operation");
  if (a.noTracking) L.push("  The ruleset is already stateless.");
  else if (a.stateless.possible) {
    L.push("  Possible with rewrites: every stateful rule has a stateless replacement.");
  } else {
    L.push("  Not possible without losing function:");
  }
  if (!a.noTracking) {
    const seen = new Set<string>();
    for (const b of a.stateless.blockers) {
      const k = `${b.reason.feature}|${b.hint}|${b.replaceable}`;
      if (seen.has(k)) continue;
      seen.add(k);
      const n = a.stateless.blockers.filter((x) => `${x.reason.feature}|${x.hint}|${x.replaceable}` === k).length;
      L.push(`    ${b.replaceable ? "replaceable" : "blocking   "}  ${b.reason.feature}${n > 1 ? ` (${n} rules)` : ""}: ${b.hint}`);
    }
  }
  L.push("");
  L.push("NOTRACK");
  if (a.notrackRules.length) {
    L.push(`  Existing NOTRACK rules: ${a.notrackRules.length}`);
    for (const r of a.notrackRules) L.push(`    ${formatPos(r.pos)}  ${r.text}`);
  } else L.push("  No NOTRACK rules.");
  if (a.noTracking) L.push("  Candidates: none needed (nothing is tracked).");
  else if (a.candidates.length === 0) L.push("  Candidates: none found (no traffic is accepted by stateless rules alone, or it must stay tracked).");
  for (const c of a.candidates) {
    L.push(`  Candidate: ${c.description}`);
    for (const r of c.basis) L.push(`    accepted statelessly by ${formatPos(r.pos)}  ${r.text}`);
    for (const n of c.notes) L.push(`    note: ${n}`);
    if (rs) {
      L.push("    raw rules:");
      for (const line of renderGenerated(rs, c.rules, "raw").trimEnd().split("\n")) L.push(`      ${line}`);
      if (c.filterRules.length) {
        L.push("    filter rules:");
        for (const line of renderGenerated(rs, c.filterRules, "filter").trimEnd().split("\n")) L.push(`      ${line}`);
      }
    } else {
      L.push("    raw rules (iptables-save | nft):");
      for (const g of c.rules) L.push(`      ${g.iptables}    |    ${g.nft}`);
    }
  }
  for (const e of a.excluded) {
    L.push(`  Not a candidate: ${e.description}: ${e.reason}${e.rule ? ` (rule at ${formatPos(e.rule.pos)})` : ""}`);
  }
  L.push("");
  L.push("Warnings");
  if (a.warnings.length === 0) L.push("  None.");
  for (const w of a.warnings) L.push(`  ${w.severity === "warning" ? "warning" : "info   "} [${w.code}] ${w.message}`);
  return L.join("\n") + "\n";
}

