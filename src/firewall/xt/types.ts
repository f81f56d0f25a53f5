/**
 * The shape of an iptables extension module, as iptables' own libxt_*
 * extensions are shaped: the option table (name → number of arguments), a
 * builder that turns the parsed options into the model's matches or actions
 * (which eval.ts evaluates, shared with nft), and the context they read.
 * The registry (./registry.ts) lists every module.
 */
import type { Action, Chain, IpSet, Match, Ruleset, Table } from "../model.js";

/** A token of a rule line, with its 1-based column. */
export interface Tok {
  readonly text: string;
  readonly col: number;
  readonly quoted: boolean;
}

/** One option occurrence of a match or target. */
export interface Opt {
  readonly name: string;
  readonly tok: Tok;
  readonly neg: boolean;
  readonly args: Tok[];
}

/** Everything the rule parser needs about its surroundings. */
export interface Ctx {
  readonly rs: Ruleset;
  readonly file: string;
  readonly lineNo: number;
  readonly table: Table;
  readonly v6: boolean;
  readonly declared: Set<string>;
  readonly ipsets: Map<string, IpSet>;
}

/** The rule's `-p`, which several matches and targets check. */
export interface ProtoInfo {
  proto: number;
  protoNeg: boolean;
  protoTok: Tok | null;
}

/** What a rule specification has built so far. */
export interface Built {
  matches: Match[];
  actions: Action[];
  comment: string | null;
  counters: [number, number] | null;
  /** `-4` in an ip6 table or `-6` in an ip table: iptables-restore ignores the rule. */
  skipFamily: boolean;
  /** What `iptables -L -v -n` shows: the target column and the text after the address columns. */
  listing?: { target: string; extra: string };
}

/** Option name → number of arguments. */
export type OptionSpec = Readonly<Record<string, number>>;

/** A match module (`-m NAME`). */
export interface XtMatch {
  readonly type: "match";
  readonly name: string;
  /** Other names `-m` accepts for it (`icmpv6` for `icmp6`). */
  readonly aliases?: readonly string[];
  readonly options: OptionSpec;
  /** The protocol whose `-p` loads this match implicitly (`-p tcp --dport 22`). */
  readonly implicitFor?: number;
  build(call: MatchCall): Match[];
  /** What `iptables -L -n` prints for this match (libxt_*'s print()), each part with its leading space. */
  list(call: MatchCall, built: readonly Match[]): string;
}

/** What a match builder is given: `-m NAME` (or the implicit `-p` token) and the options that followed it. */
export interface MatchCall {
  readonly ctx: Ctx;
  /** The module's canonical name. */
  readonly mod: string;
  readonly modTok: Tok;
  readonly opts: Opt[];
  readonly pi: ProtoInfo;
  /** The rule so far (the comment module records the comment here). */
  readonly b: Built;
}

/** A target module (`-j NAME`). */
export interface XtTarget {
  readonly type: "target";
  readonly name: string;
  readonly options: OptionSpec;
  /** The only tables it may be used in (the kernel's xt_target .table). */
  readonly tables?: readonly string[];
  build(call: TargetCall): Action[];
  /** What `iptables -L -n` prints for the target's options, each part with its leading space. */
  list(call: TargetCall, built: readonly Action[]): string;
}

/** What a target builder is given. */
export interface TargetCall {
  readonly ctx: Ctx;
  readonly name: string;
  readonly nameTok: Tok;
  readonly opts: Opt[];
  readonly chain: Chain;
  /** The rule's `-p` (-1 when none). */
  readonly proto: number;
}
