/**
 * What a ruleset means for connection tracking, as pure functions of the model.
 *
 * - Which rules make the kernel track connections (./tracking.ts), and
 *   whether the ruleset could do without tracking, and what stands in the way.
 * - Traffic accepted only by stateless rules, which could be NOTRACKed, with
 *   generated raw rules for both directions (iptables-save and nft syntax)
 *   and a what-if run of representative packets through the filter chains.
 * - Operator warnings: one-sided NOTRACK, UNTRACKED packets dropped by filter
 *   rules that only accept ESTABLISHED,RELATED, NOTRACK of NATed traffic,
 *   NOTRACK of traffic that a stateful rule relies on.
 */
import { CT_STATE } from "../../conntrack/constants.js";
import { formatPos, q } from "../errors.js";
import { EvalState, PacketContext, VERDICT, createHost, evaluateHook } from "../eval.js";
import { ruleTargets, ruleVerdict, tableFamilies } from "../model.js";
import type { Chain, CtObject, HookName, Match, Rule, Ruleset, Syntax, Table } from "../model.js";
import { ruleTrackingReasons } from "../tracking.js";
import type { TrackReason } from "../tracking.js";
import { PORT_PROTOS, cmpWords } from "../values.js";
import type { AddrSet, IfacePattern, NumSet } from "../values.js";
import { boxCovers, boxOf, boxesOverlap, describeBox, mirrorBox } from "./box.js";
import type { TrafficBox } from "./box.js";
import { genRules, rawRulesFor } from "./generate.js";
import type { FlowKind, GeneratedRule } from "./generate.js";

// ---------------------------------------------------------------------------
// Paths and simulation

export const PATHS: Readonly<Record<Exclude<FlowKind, "any">, { orig: HookName[]; reply: HookName[]; nat: HookName[] }>> = {
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
export function rulesAtHook(rs: Ruleset, hook: HookName, family: 0 | 4 | 6, pick: (c: Chain) => boolean): Array<{ rule: Rule; base: Chain }> {
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

export const isNatChain = (c: Chain) => c.base?.type === "nat";
export const isFilterChain = (c: Chain) => c.base !== null && c.base.type !== "nat" && c.base.priority > -200;

export function hasNat(r: Rule): boolean {
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
  x[n - 1] = ((x[n - 1] as number) + 1) >>> 0;
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

export function simulate(
  rs: Ruleset,
  b: TrafficBox,
  kind: Exclude<FlowKind, "any">,
  direction: "original" | "reply",
  state: "new" | "established" | "untracked",
): PathCheck {
  const family: 4 | 6 = b.family === 6 ? 6 : 4;
  const local = family === 4 ? LOCAL4 : LOCAL6;
  const remote = family === 4 ? REMOTE4 : REMOTE6;
  // The original direction: client → server. For to-host the server is local.
  const cli = pickAddr(b.saddr, kind === "from-host" ? local : remote);
  const srv = pickAddr(b.daddr, kind === "to-host" ? local : family === 4 ? Uint32Array.of(0xcb00710a, 0, 0, 0) : REMOTE6);
  const proto = b.protos ? (b.protos.pairs()[0] as [number, number])[0] : 17;
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
  ctx.host = createHost({
    localAddrs: [
      { family, words: local.slice() },
      ...(kind === "to-host" ? [{ family, words: srv }] : []),
      ...(kind === "from-host" ? [{ family, words: cli }] : []),
    ],
  });
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
export type WarningCode = "one-sided-notrack" | "untracked-dropped" | "nat-needs-tracking" | "notrack-breaks-stateful" | "skipped-rules";

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
      if (m && !m.neg && m.mask === CT_STATE.INVALID)
        return { replaceable: true, hint: "an INVALID drop has no stateless equivalent; dropping it loses the sanity check only" };
      if (m && !m.neg && (m.mask & (CT_STATE.ESTABLISHED | CT_STATE.RELATED)) !== 0 && (m.mask & CT_STATE.NEW) === 0) {
        return {
          replaceable: true,
          hint: "replace with stateless accepts of the reply traffic (source ports of the services used, TCP without SYN); RELATED ICMP errors need their own accepts",
        };
      }
      if (m && !m.neg && (m.mask & CT_STATE.NEW) !== 0)
        return { replaceable: true, hint: "drop the state condition: the rule's addresses and ports already select the traffic" };
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
    const reason: TrackReason = { feature: o.kind, module: "nft_ct", kind: o.kind === "ct helper" ? "helper" : "template" };
    return { object: o, reason };
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
export function reliesOnTracking(r: Rule): boolean {
  for (const m of r.matches) {
    if (m.kind === "ctstate" && !m.neg && (m.mask & CT_STATE.UNTRACKED) === 0) return true;
    if (m.kind === "ctstate" && m.neg && (m.mask & CT_STATE.UNTRACKED) !== 0) return true;
    if (m.kind === "ctstatus" || m.kind === "ctaddr" || m.kind === "ctport" || m.kind === "cthelper" || m.kind === "connlimit") return true;
    if (m.kind === "mark" && m.source === "ct") return true;
  }
  return false;
}

export function isSpecific(b: TrafficBox): boolean {
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
        const hook = after.hooks.find((h) => h === "input" || h === "output" || h === "forward") ?? (after.hooks[after.hooks.length - 1] as HookName);
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
    if (
      m &&
      !m.neg &&
      (m.mask & CT_STATE.ESTABLISHED) !== 0 &&
      (m.mask & CT_STATE.UNTRACKED) === 0 &&
      ruleVerdict(rule)?.kind === "accept" &&
      boxesOverlap(boxOf(rule), b)
    )
      return rule;
  }
  return null;
}

export function dedupeWarnings(ws: AnalysisWarning[]): AnalysisWarning[] {
  const seen = new Set<string>();
  return ws.filter((w) => {
    const k = `${w.code}|${w.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}
