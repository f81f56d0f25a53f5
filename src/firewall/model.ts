/**
 * The ruleset model, independent of the syntax it was read from.
 *
 * iptables-save text and `nft -j list ruleset` JSON both become a `Ruleset`:
 * tables of a family, chains (base chains carry hook, priority and policy),
 * and rules made of an ordered list of match expressions and a list of
 * actions (statements). Every rule keeps where it came from (file, line,
 * column or JSON path) and its original text, and carries packet/byte
 * counters that evaluation updates.
 *
 * The model is plain data: evaluation state (token buckets, recent lists,
 * nth counters) lives outside it, indexed by the `slot` numbers that the
 * parsers hand out to stateful matches, so a compiled evaluator can keep that
 * state in flat arrays and allocate nothing per packet.
 */
import { RulesetSyntaxError, q } from "./errors.js";
import type { SourcePos } from "./errors.js";
import type { AddrSet, IfacePattern, NumSet } from "./values.js";

/** nftables families; iptables tables are `ip`, ip6tables tables `ip6`. */
export type Family = "ip" | "ip6" | "inet" | "arp" | "bridge" | "netdev";

/** Netfilter hooks by their nft names. */
export type HookName = "prerouting" | "input" | "forward" | "output" | "postrouting" | "ingress" | "egress";

/** Base chain types. */
export type ChainType = "filter" | "nat" | "route";

/** Packet and byte counters (numbers: exact up to 2^53). */
export interface Counters {
  packets: number;
  bytes: number;
}

/** What the ruleset was read from. */
export type Syntax = "iptables" | "nft";

/** A whole ruleset. */
export interface Ruleset {
  readonly syntax: Syntax;
  /** File name as given (used in every position). */
  readonly file: string;
  readonly tables: Table[];
  /** Rules that were not understood and were kept as never-matching (only with `allowUnsupported`). */
  readonly skipped: SkippedRule[];
  /** Things that were read but ignored, e.g. flowtables. */
  readonly notes: Note[];
  /** ipset sets named by `-m set` (iptables input only). */
  readonly ipsets: Map<string, IpSet>;
  /** nft objects that make the kernel track connections by existing (ct helper / timeout / expectation). */
  readonly ctObjects: CtObject[];
  /** iptables: comment lines after the last COMMIT (for exact re-serialisation). */
  readonly trailer: string[];
  /** Number of stateful-match slots handed out (size of evaluation state arrays). */
  slots: number;
}

/** A rule that was skipped because it uses an unsupported feature. */
export interface SkippedRule {
  readonly pos: SourcePos;
  readonly feature: string;
  readonly message: string;
  readonly text: string;
}

/** A remark about input that was accepted but not modelled. */
export interface Note {
  readonly pos: SourcePos;
  readonly message: string;
}

/** An nft ct helper / ct timeout / ct expectation object. */
export interface CtObject {
  readonly kind: "ct helper" | "ct timeout" | "ct expectation";
  readonly family: Family;
  readonly table: string;
  readonly name: string;
  /** ct helper: the helper's type (`"ftp"`), or "" when not given. */
  readonly helperType?: string;
  readonly pos: SourcePos;
}

/** A table of one family. */
export interface Table {
  readonly family: Family;
  readonly name: string;
  /** Chains in declaration order. */
  readonly chains: Chain[];
  readonly chainByName: Map<string, Chain>;
  /** nft named sets and maps, by name. */
  readonly sets: Map<string, NamedSet>;
  readonly pos: SourcePos;
  /** iptables: comment lines before `*table` (for exact re-serialisation). */
  readonly preamble: string[];
}

/** A chain; `base` is null for user chains (reached by jump/goto only). */
export interface Chain {
  readonly family: Family;
  readonly table: string;
  readonly name: string;
  readonly base: BaseChain | null;
  readonly rules: Rule[];
  readonly pos: SourcePos;
  /** Counters of packets that fell off the end of a base chain (iptables `:CHAIN POLICY [p:b]`). */
  readonly policyCounters: Counters;
}

/** Hook attachment of a base chain. */
export interface BaseChain {
  readonly type: ChainType;
  readonly hook: HookName;
  /** Priority number (raw -300, mangle -150, dstnat -100, filter 0, security 50, srcnat 100). */
  readonly priority: number;
  /** Verdict for packets that reach the end of the chain. */
  policy: "accept" | "drop";
}

/** One rule. */
export interface Rule {
  /** Sequence number within the ruleset (stable, 0-based, file order). */
  readonly id: number;
  readonly family: Family;
  readonly table: string;
  readonly chain: string;
  /** All matches must hold for the actions to run. */
  readonly matches: Match[];
  /** Statements in order; the first terminal one ends evaluation of the chain. */
  readonly actions: Action[];
  readonly counters: Counters;
  /** nft: whether the rule has a counter statement (iptables rules always count). */
  readonly counted: boolean;
  readonly pos: SourcePos;
  /** iptables: the rule as written after `[p:b]` (`-A INPUT ...`); nft: a one-line rendering. */
  readonly text: string;
  /** `-m comment --comment` / nft `comment`, or null. */
  readonly comment: string | null;
  /** When the rule used an unsupported feature and was kept as never-matching: the feature. */
  readonly unsupported: string | null;
  /** nft rule handle, or -1. */
  readonly handle: number;
  /**
   * iptables: what `iptables -L -v -n` shows for the rule, from each match
   * and target module's printer: the target column and the text after the
   * address columns (with its leading space). Absent for skipped rules.
   */
  readonly listing?: { readonly target: string; readonly extra: string };
}

// ---------------------------------------------------------------------------
// Matches

/** Which address/port of a conntrack tuple a ct match reads. */
export type CtTupleField = "origsrc" | "origdst" | "replsrc" | "repldst";

/** A packet or conntrack field that nft expressions (vmap keys, concatenations) can select. */
export type Selector =
  | "l4proto"
  | "nfproto"
  | "saddr"
  | "daddr"
  | "sport"
  | "dport"
  | "iifname"
  | "oifname"
  | "mark"
  | "ctmark"
  | "ctstate"
  | "ctstatus"
  | "ctdirection"
  | "ctzone"
  | "icmptype"
  | "icmpcode"
  | "tcpflags"
  | "ttl"
  | "length"
  /** nft `numgen`: the value the rule's generator produced for this packet (see NumGen). */
  | "numgen";

/**
 * nft `numgen random|inc mod N [offset O]` (nft_numgen.c): random is
 * reciprocal_scale(get_random_u32(), N) + O; inc is a per-expression counter
 * that starts at N - 1, so the first packet gets O.
 */
export interface NumGen {
  readonly mode: "random" | "inc";
  readonly mod: number;
  readonly offset: number;
  /** Evaluation-state slot of the inc counter. */
  readonly slot: number;
}

/** One key value inside a set element: integer interval, address interval, or interface/string pattern. */
export type ElemValue =
  | { readonly t: "num"; readonly lo: number; readonly hi: number }
  | { readonly t: "addr"; readonly family: 4 | 6; readonly lo: Uint32Array; readonly hi: Uint32Array }
  | { readonly t: "str"; readonly pattern: IfacePattern };

/** A set element: one value per key (a concatenation has several). */
export type Elem = readonly ElemValue[];

/**
 * The match expressions. iptables options and nft payload/meta/ct matches that
 * mean the same thing share a kind; what only nft can say (concatenations,
 * relational operators on arbitrary fields) uses `lookup` / `cmp`.
 */
export type Match =
  /** Layer 4 protocol (`-p`, `meta l4proto`, `ip protocol`, `ip6 nexthdr`). */
  | { readonly kind: "proto"; readonly neg: boolean; readonly protos: NumSet; readonly text: string }
  /** Network family (`meta nfproto`, implied by `ip saddr` in inet tables). */
  | { readonly kind: "nfproto"; readonly neg: boolean; readonly family: 4 | 6 }
  /** Source/destination address in a set of intervals (`-s`, `-d`, `ip saddr`, `-m iprange`). */
  | { readonly kind: "addr"; readonly dir: "src" | "dst"; readonly neg: boolean; readonly set: AddrSet }
  /** Input/output interface name (`-i eth+`, `iifname "eth*"`). */
  | { readonly kind: "iface"; readonly dir: "in" | "out"; readonly neg: boolean; readonly names: readonly IfacePattern[] }
  /**
   * Ports. `dir: "any"` is multiport `--ports` (either port). `protos` restricts
   * the packet's protocol (the tcp/udp match, nft `tcp dport` dependency).
   */
  | {
      readonly kind: "port";
      readonly dir: "src" | "dst" | "any";
      readonly neg: boolean;
      readonly protos: NumSet;
      readonly set: NumSet;
    }
  /** TCP flags: `eq` is (flags & mask) == comp (`--tcp-flags`, `--syn`); `any` is (flags & mask) != 0 (nft `tcp flags syn`). */
  | { readonly kind: "tcpflags"; readonly op: "eq" | "any"; readonly neg: boolean; readonly mask: number; readonly comp: number }
  /** ICMP/ICMPv6 type and code: `types` holds type*256+code intervals; -1..-1 encodes iptables `any`. */
  | { readonly kind: "icmp"; readonly v6: boolean; readonly neg: boolean; readonly types: NumSet; readonly text: string }
  /** ct state bits (`-m state`, `--ctstate`, `ct state`): matches when (state & mask) != 0. */
  | { readonly kind: "ctstate"; readonly neg: boolean; readonly mask: number; readonly text: string }
  /** ct status bits: matches when (status & mask) != 0 (`--ctstatus`, `ct status`). */
  | { readonly kind: "ctstatus"; readonly neg: boolean; readonly mask: number }
  /** ct direction (`--ctdir`, `ct direction`): 0 original, 1 reply. */
  | { readonly kind: "ctdir"; readonly neg: boolean; readonly dir: 0 | 1 }
  /** Layer 4 protocol of the conntrack entry (`--ctproto`). */
  | { readonly kind: "ctproto"; readonly neg: boolean; readonly proto: number }
  /** Address of the conntrack tuple (`--ctorigsrc`, `ct original saddr`). */
  | { readonly kind: "ctaddr"; readonly field: CtTupleField; readonly neg: boolean; readonly set: AddrSet }
  /** Port of the conntrack tuple (`--ctorigdstport`). */
  | { readonly kind: "ctport"; readonly field: CtTupleField; readonly neg: boolean; readonly set: NumSet }
  /** Remaining lifetime of the entry in seconds (`--ctexpire`). */
  | { readonly kind: "ctexpire"; readonly neg: boolean; readonly set: NumSet }
  /** Helper attached to the entry (`-m helper`, `ct helper`). */
  | { readonly kind: "cthelper"; readonly neg: boolean; readonly name: string }
  /** Packet mark or connmark: (mark & mask) in `values` (`-m mark`, `-m connmark`, `meta mark`, `ct mark`). */
  | {
      readonly kind: "mark";
      readonly source: "meta" | "ct";
      readonly neg: boolean;
      readonly mask: number;
      readonly values: NumSet;
    }
  /** Connection count per masked address (`-m connlimit`, nft `ct count`). */
  | {
      readonly kind: "connlimit";
      readonly above: boolean;
      readonly limit: number;
      /** Prefix length applied to the address (32/128 = per host); -1 for nft `ct count` (whole rule). */
      readonly maskLen: number;
      readonly key: "saddr" | "daddr";
      readonly slot: number;
    }
  /**
   * Token bucket (`-m limit`, nft `limit`). Costs and credit are in xt_limit
   * units: `cost` credits per packet, at most `burstCredits`, one credit per
   * `1/creditsPerSec` second. `over` inverts (nft `limit rate over`).
   */
  | {
      readonly kind: "limit";
      readonly over: boolean;
      /** Rate in packets per `unitSec` seconds, and the unit, as written. */
      readonly rate: number;
      readonly unitSec: number;
      readonly burst: number;
      readonly slot: number;
    }
  /** `-m recent`: a named list of recently seen addresses. */
  | {
      readonly kind: "recent";
      readonly neg: boolean;
      readonly op: "set" | "rcheck" | "update" | "remove";
      readonly name: string;
      readonly seconds: number;
      readonly hitcount: number;
      readonly reap: boolean;
      readonly rttl: boolean;
      readonly side: "src" | "dst";
      /** Address mask applied before lookup (prefix length; 32/128 = whole address). */
      readonly maskLen: number;
      readonly slot: number;
    }
  /** `-m statistic`: random (probability as a 31-bit threshold, as xt_statistic stores it) or every-nth. */
  | {
      readonly kind: "statistic";
      readonly neg: boolean;
      readonly mode: "random" | "nth";
      /** Random: match when (rand32 & 0x7fffffff) < threshold. */
      readonly threshold: number;
      readonly probability: number;
      /** Nth: `--every` and `--packet` as given. */
      readonly every: number;
      readonly packet: number;
      readonly slot: number;
    }
  /** `-m set --match-set NAME src,dst`. */
  | { readonly kind: "ipset"; readonly neg: boolean; readonly set: IpSet; readonly dims: readonly ("src" | "dst")[] }
  /** `-m addrtype`: route types as bits (1 << RTN_*). A zero mask means "not given". */
  | {
      readonly kind: "addrtype";
      readonly src: number;
      readonly srcNeg: boolean;
      readonly dst: number;
      readonly dstNeg: boolean;
      readonly limitIfaceIn: boolean;
      readonly limitIfaceOut: boolean;
    }
  /** `-f`: non-first fragment. */
  | { readonly kind: "fragment"; readonly neg: boolean }
  /** `-m comment` (always true; kept so the match list mirrors the rule). */
  | { readonly kind: "comment"; readonly text: string }
  /** nft set membership of one or more selectors (concatenations, named sets of other fields). */
  | {
      readonly kind: "lookup";
      readonly neg: boolean;
      readonly keys: readonly Selector[];
      readonly elems: readonly Elem[];
      /** Named set, or null for an anonymous one. */
      readonly setName: string | null;
      /** The named set, whose elements the packet path may add at run time (dynamic sets), or null. */
      readonly set: NamedSet | null;
    }
  /**
   * nft `fib` (nft_fib_ipv4/6.c) over the host model: the route type of an
   * address (`fib daddr type local`) or the interface of the route to it
   * (`fib saddr . iif oif missing`: reverse path filtering).
   */
  | {
      readonly kind: "fib";
      readonly neg: boolean;
      readonly addr: "saddr" | "daddr";
      /** `. iif`: the lookup is for the input interface (type: its addresses; oif: the route must leave by it). */
      readonly iif: boolean;
      /** `. oif`: type relative to the output interface. */
      readonly oif: boolean;
      readonly result: "type" | "oif" | "oifname";
      /** result type: the route types compared, as bits (1 << RTN_*). */
      readonly types: number;
      /** result oif/oifname: the interface names compared; empty with `missing` for `missing` / `0`. */
      readonly names: readonly IfacePattern[];
      readonly missing: boolean;
    }
  /** nft relational comparison of a numeric selector (`ip ttl < 5`), after an optional `& mask`. */
  | {
      readonly kind: "cmp";
      readonly key: Selector;
      readonly op: "==" | "!=" | "<" | ">" | "<=" | ">=";
      readonly mask: number;
      readonly value: number;
    }
  /** Placeholder for an unsupported match kept under `allowUnsupported`: never matches. */
  | { readonly kind: "never"; readonly feature: string };

/** The kinds of Match. */
export type MatchKind = Match["kind"];

// ---------------------------------------------------------------------------
// Actions

/** NAT statement/target parameters. Absent address/ports are null. */
export interface NatSpec {
  readonly kind: "nat";
  readonly type: "snat" | "dnat" | "masquerade" | "redirect";
  readonly family: 4 | 6;
  /** Address range (inclusive), or null to keep the address (ports only) / use the interface address. */
  readonly addrLo: Uint32Array | null;
  readonly addrHi: Uint32Array | null;
  /** Port range, or -1 when not given. */
  readonly portLo: number;
  readonly portHi: number;
  readonly random: boolean;
  readonly fullyRandom: boolean;
  readonly persistent: boolean;
}

/** Statements and targets. */
export type Action =
  | { readonly kind: "accept" }
  | { readonly kind: "drop" }
  | { readonly kind: "return" }
  /** `continue` (nft) — explicit fall-through. */
  | { readonly kind: "continue" }
  /** Rejects with an ICMP error or TCP reset; `with` as written (`icmp-port-unreachable`, `tcp reset`). */
  | { readonly kind: "reject"; readonly with: string }
  | { readonly kind: "jump"; readonly target: string }
  | { readonly kind: "goto"; readonly target: string }
  /** NFQUEUE / nft queue: terminal; without a listener the kernel drops unless `bypass`. */
  | { readonly kind: "queue"; readonly num: number; readonly bypass: boolean }
  /** LOG / NFLOG / nft log: counted, non-terminal. */
  | { readonly kind: "log"; readonly nflog: boolean; readonly prefix: string; readonly level: number; readonly group: number }
  /** nft counter statement (iptables rules always count; this marks that nft ones do). */
  | { readonly kind: "counter"; readonly name: string | null }
  /** Mark update: new = (old & ~mask) ^ value (MARK/CONNMARK --set-xmark and friends, `meta mark set`, `ct mark set`). */
  | { readonly kind: "setmark"; readonly target: "meta" | "ct"; readonly value: number; readonly mask: number }
  /**
   * Copy between packet mark and connmark: CONNMARK --save-mark (meta→ct:
   * ct = (ct & ~ctmask) ^ (mark & nfmask)) / --restore-mark (ct→meta:
   * mark = (mark & ~nfmask) ^ (ct & ctmask)); nft `ct mark set meta mark`.
   */
  | { readonly kind: "copymark"; readonly to: "meta" | "ct"; readonly nfmask: number; readonly ctmask: number }
  /** NOTRACK / CT --notrack / nft notrack: the packet gets the untracked conntrack. */
  | { readonly kind: "notrack" }
  /** CT target (not --notrack): a template with zone/helper/timeout; makes the packet tracked. */
  | { readonly kind: "ct"; readonly zone: number; readonly helper: string; readonly timeout: string }
  /** nft `ct helper set "name"` (object reference). */
  | { readonly kind: "cthelperset"; readonly name: string }
  | NatSpec
  /** SYNPROXY: answers SYNs itself (cookies); the packet is consumed. */
  | { readonly kind: "synproxy" }
  /** nft `flow add @ft`: offloads the connection (needs tracking); non-terminal here. */
  | { readonly kind: "flowoffload"; readonly flowtable: string }
  /** nft verdict map: the first element containing the key decides. */
  | {
      readonly kind: "vmap";
      readonly keys: readonly Selector[];
      readonly entries: ReadonlyArray<{ readonly elem: Elem; readonly verdict: Action }>;
      readonly mapName: string | null;
      /** The key is `numgen`: its generator. */
      readonly gen: NumGen | null;
    }
  /**
   * nft dynamic set update (nft_dynset.c): `add @s { ip saddr }` inserts the
   * packet's key unless present, `update` inserts or refreshes its timeout,
   * `delete` removes it. A full set (size reached) breaks the rule.
   */
  | {
      readonly kind: "dynset";
      readonly op: "add" | "update" | "delete";
      readonly set: NamedSet;
      readonly keys: readonly Selector[];
      /** Element timeout in ms; -1 takes the set's default (0: none). */
      readonly timeoutMs: number;
    }
  /** A target that rewrites packet fields irrelevant to verdicts and tracking (TCPMSS, DSCP, TTL, …). */
  | { readonly kind: "mangle"; readonly name: string };

/** The kinds of Action. */
export type ActionKind = Action["kind"];

/**
 * Whether an action ends the rule's statement list. Verdicts do; a verdict
 * map does only when its key is found (the evaluator handles that case), and
 * `continue` ends the rule without a verdict.
 */
export function isTerminal(a: Action): boolean {
  switch (a.kind) {
    case "accept":
    case "drop":
    case "return":
    case "reject":
    case "jump":
    case "goto":
    case "queue":
    case "nat":
    case "synproxy":
    case "vmap":
    case "continue":
      return true;
    default:
      return false;
  }
}

// ---------------------------------------------------------------------------
// ipset

/** An ipset set from an `ipset save` file. */
export interface IpSet {
  readonly name: string;
  /** hash:ip, hash:net, hash:ip,port, bitmap:port, … */
  readonly type: string;
  readonly family: 4 | 6;
  /** One entry per `add` line: one value per dimension. Ports carry a protocol (0 = any). */
  readonly entries: IpSetEntry[];
  readonly pos: SourcePos;
}

/** One ipset entry. */
export interface IpSetEntry {
  readonly values: ReadonlyArray<
    | { readonly t: "addr"; readonly lo: Uint32Array; readonly hi: Uint32Array }
    | { readonly t: "port"; readonly proto: number; readonly lo: number; readonly hi: number }
  >;
  /** `nomatch` entries exclude instead of include (hash:net). */
  readonly nomatch: boolean;
}

// ---------------------------------------------------------------------------
// nft named sets

/** An nft named set or map. */
export interface NamedSet {
  readonly name: string;
  readonly keys: readonly Selector[] | null;
  /** Key type names as nft prints them (`ipv4_addr`, `inet_service`, …). */
  readonly keyTypes: readonly string[];
  readonly elems: Elem[];
  /** Verdict map data, aligned with `elems`, or null for a set / data map. */
  readonly verdicts: Action[] | null;
  readonly pos: SourcePos;
  /** Default element timeout in ms (0: none). */
  readonly timeoutMs: number;
  /** Maximum number of elements (0: unlimited). */
  readonly size: number;
  /** Evaluation-state slot of the elements added at run time. */
  readonly slot: number;
}

// ---------------------------------------------------------------------------
// Helpers

/** Standard priorities of the iptables tables per hook (include/uapi/linux/netfilter_ipv4.h NF_IP_PRI_*). */
export const IPTABLES_PRIORITY: Readonly<Record<string, number>> = {
  raw: -300,
  mangle: -150,
  "nat:prerouting": -100,
  "nat:output": -100,
  "nat:input": 100,
  "nat:postrouting": 100,
  filter: 0,
  security: 50,
};

/** Built-in chains of each iptables table, with their hooks. */
export const IPTABLES_BUILTINS: Readonly<Record<string, Readonly<Record<string, HookName>>>> = {
  raw: { PREROUTING: "prerouting", OUTPUT: "output" },
  mangle: { PREROUTING: "prerouting", INPUT: "input", FORWARD: "forward", OUTPUT: "output", POSTROUTING: "postrouting" },
  nat: { PREROUTING: "prerouting", INPUT: "input", OUTPUT: "output", POSTROUTING: "postrouting" },
  filter: { INPUT: "input", FORWARD: "forward", OUTPUT: "output" },
  security: { INPUT: "input", FORWARD: "forward", OUTPUT: "output" },
};

/** The rule's deciding verdict kind, if it has a terminal action (for display and analysis). */
export function ruleVerdict(r: Rule): Action | null {
  for (const a of r.actions) if (isTerminal(a)) return a;
  return null;
}

/** Looks a chain up by table key and name. */
export function findTable(rs: Ruleset, family: Family, name: string): Table | undefined {
  return rs.tables.find((t) => t.family === family && t.name === name);
}

/** Every rule of the ruleset, in table/chain order. */
export function* allRules(rs: Ruleset): Generator<Rule> {
  for (const t of rs.tables) for (const c of t.chains) yield* c.rules;
}

/** The IP families (4, 6) a table's rules see. */
export function tableFamilies(f: Family): Array<4 | 6> {
  switch (f) {
    case "ip":
      return [4];
    case "ip6":
      return [6];
    case "inet":
    case "bridge":
    case "netdev":
      return [4, 6];
    default:
      return [];
  }
}

/** Creates an empty ruleset shell (parsers fill it). */
export function emptyRuleset(syntax: Syntax, file: string): Ruleset {
  return { syntax, file, tables: [], skipped: [], notes: [], ipsets: new Map(), ctObjects: [], trailer: [], slots: 0 };
}

/** Creates an empty table. */
export function newTable(family: Family, name: string, pos: SourcePos, preamble: string[] = []): Table {
  return { family, name, chains: [], chainByName: new Map(), sets: new Map(), pos, preamble };
}

/** Adds a chain to a table (replacing nothing: callers check for duplicates). */
export function addChain(t: Table, name: string, base: BaseChain | null, pos: SourcePos, policyCounters: Counters = { packets: 0, bytes: 0 }): Chain {
  const c: Chain = { family: t.family, table: t.name, name, base, rules: [], pos, policyCounters };
  t.chains.push(c);
  t.chainByName.set(name, c);
  return c;
}

/** Chains a rule can continue in (jump, goto, and verdicts of its verdict maps). */
export function ruleTargets(r: Rule): Array<{ kind: "jump" | "goto"; target: string }> {
  const out: Array<{ kind: "jump" | "goto"; target: string }> = [];
  for (const a of r.actions) {
    if (a.kind === "jump" || a.kind === "goto") out.push({ kind: a.kind, target: a.target });
    else if (a.kind === "vmap") {
      for (const e of a.entries) if (e.verdict.kind === "jump" || e.verdict.kind === "goto") out.push({ kind: e.verdict.kind, target: e.verdict.target });
    }
  }
  return out;
}

/**
 * Rejects jump loops, as the kernel does when the ruleset is loaded
 * (iptables: mark_source_chains; nft: the loop check in nf_tables_api).
 * @throws {RulesetSyntaxError} at the rule that closes a loop.
 */
export function checkChainGraph(rs: Ruleset): void {
  for (const t of rs.tables) {
    const state = new Map<string, 1 | 2>();
    const visit = (c: Chain, path: string[]): void => {
      state.set(c.name, 1);
      for (const r of c.rules) {
        for (const { target } of ruleTargets(r)) {
          const next = t.chainByName.get(target);
          if (!next) continue;
          const st = state.get(target);
          if (st === 1) {
            throw new RulesetSyntaxError(r.pos, `chain loop: ${[...path, c.name, target].map((x) => q(x)).join(" -> ")}`, "loop");
          }
          if (st === undefined) visit(next, [...path, c.name]);
        }
      }
      state.set(c.name, 2);
    };
    for (const c of t.chains) if (!state.has(c.name)) visit(c, []);
  }
}
