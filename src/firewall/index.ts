/**
 * The firewall part's public surface: reading rulesets (iptables-save, nft
 * JSON, nft text), the syntax-independent model, evaluation of chains, and the
 * connection-tracking analysis.
 *
 * @example
 * ```ts
 * import { loadRuleset, analyzeRuleset, formatAnalysis } from "ctlab";
 * const rs = loadRuleset(readFileSync("rules.v4", "utf8"), { file: "rules.v4" });
 * process.stdout.write(formatAnalysis(analyzeRuleset(rs), rs));
 * ```
 */
export { RulesetSyntaxError, formatPos } from "./errors.js";
export type { SourcePos, TextPos, JsonPos } from "./errors.js";

export { isTerminal, ruleVerdict, ruleTargets, allRules, findTable, tableFamilies, IPTABLES_PRIORITY, IPTABLES_BUILTINS } from "./model.js";
export type {
  Action,
  ActionKind,
  BaseChain,
  Chain,
  ChainType,
  Counters,
  CtObject,
  CtTupleField,
  Elem,
  ElemValue,
  Family,
  HookName,
  IpSet,
  IpSetEntry,
  Match,
  MatchKind,
  NamedSet,
  NatSpec,
  Note,
  Rule,
  Ruleset,
  Selector,
  SkippedRule,
  Syntax,
  Table,
} from "./model.js";

export { AddrSet, NumSet, parseAddr, parseCidr, formatAddr } from "./values.js";
export type { IfacePattern } from "./values.js";

export { parseIptables, serializeIptables, saveString } from "./iptables.js";
export type { IptablesParseOptions, IptablesSerializeOptions } from "./iptables.js";
export { parseIpsetSave } from "./ipset.js";
export { parseNftJson, renderRule } from "./nft.js";
export type { NftParseOptions } from "./nft.js";
export { detectFormat, loadRuleset } from "./load.js";
export type { RulesetFormat, LoadOptions, NftTextConverter } from "./load.js";

export {
  VERDICT,
  PacketContext,
  EvalState,
  CompiledRuleset,
  compileRuleset,
  evaluateChain,
  evaluateHook,
  baseChainsAt,
  matchReference,
  createHost,
  xorshift32,
} from "./eval.js";
export type { EvalHost, HostOptions, HookChainFilter } from "./eval.js";

export { ruleTrackingReasons } from "./tracking.js";
export type { TrackReason } from "./tracking.js";
export { analyzeRuleset } from "./analysis/analyze.js";
export type {
  AnalysisResult,
  AnalysisWarning,
  WarningCode,
  TrackingRule,
  StatelessBlocker,
  NotrackCandidate,
  ExcludedClass,
  PathCheck,
} from "./analysis/analyze.js";
export { formatAnalysis, analysisToJson } from "./analysis/format.js";
export { notrackRulesFor } from "./analysis/notrack.js";
export type { NotrackSuggestion } from "./analysis/notrack.js";
export { parseSelector } from "./analysis/selector.js";
export { renderGenerated } from "./analysis/generate.js";
export type { GeneratedRule, FlowKind } from "./analysis/generate.js";
export { boxOf, boxesOverlap, boxCovers, mirrorBox, describeBox } from "./analysis/box.js";
export type { TrafficBox } from "./analysis/box.js";
