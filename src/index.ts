/**
 * ctlab's public API. This list is reviewed: every name here is a promise,
 * so add to it deliberately. Engine internals (table layout, tuple scratch,
 * protocol trackers other than their state names) stay private.
 *
 * @example
 * ```ts
 * import { Tracker, PacketView, forEachPacketSync } from "ctlab";
 * const tracker = new Tracker({ sysctls: { nf_conntrack_max: 65536 } });
 * forEachPacketSync("capture.pcap", (view) => {
 *   tracker.advance(view.tsSec * 1000 + view.tsNsec / 1e6);
 *   tracker.process(view);
 * });
 * console.log(tracker.formatTable({ extended: true }).join("\n"));
 * ```
 */

// The tracker.
export { Tracker, CtResult, CT_DROPPED, ctStateName } from "./conntrack/tracker.js";
export type { TrackerOptions, Clock, CtStateValue, CtStateName } from "./conntrack/tracker.js";
export type { EntryReader, TupleReader, EntryCounters, EntryTimestamps } from "./conntrack/entry.js";
export { EVENT_TYPE, EventLineSink, formatEvent } from "./conntrack/events.js";
export type { EventSink, EventType, EventFormatOptions } from "./conntrack/events.js";
export { ConntrackStats, INVALID_REASON, INVALID_REASON_NAMES } from "./conntrack/stats.js";
export { IPS, IPCT, CTINFO, CT_STATE, HOOK, DIR } from "./conntrack/constants.js";
export { TCP_STATE, TCP_STATE_NAMES, tcpStateName } from "./conntrack/tcp.js";

// Table policies (`new Tracker({ policy })`): what the table does under pressure.
export { POLICY_NAMES, PolicyError, EVICT_REASON_NAMES, REFUSE_REASON_NAMES } from "./conntrack/policy/policy.js";
export type { PolicyName, PolicyEvent, PolicyReport } from "./conntrack/policy/policy.js";
export type {
  PolicyConfig,
  KernelPolicyOptions,
  AdaptivePolicyOptions,
  EmergencyPolicyOptions,
  RecycleHalfOpenPolicyOptions,
  QuotaPolicyOptions,
  CtlabPolicyOptions,
} from "./conntrack/policy/registry.js";
export { SCTP_STATE, SCTP_STATE_NAMES } from "./conntrack/sctp.js";

// Sysctls.
export { SYSCTLS, SysctlError, defaultSysctls, parseSysctlAssignment, parseSysctlFile, resolveSysctls } from "./conntrack/sysctl.js";
export type { SysctlSpec, SysctlFile, SysctlAssignment, SysctlValues, SysctlName, SettableSysctlName } from "./conntrack/sysctl.js";

// Packets: capture formats, decoding, defragmentation, writing, building.
export { PacketView, IPPROTO, TCP_FLAG } from "./packet/view.js";
export { LINKTYPE } from "./packet/proto.js";
export { CaptureError } from "./packet/errors.js";
export type { CaptureErrorReason } from "./packet/errors.js";
export { PacketSource, forEachPacket, forEachPacketSync } from "./packet/source.js";
export type { PacketHandler, SourceOptions, SourceSummary } from "./packet/source.js";
export { decodeFrame, decodeReasonName, decodeReasonText, DECODE_REASON } from "./packet/decode.js";
export { Defragmenter, DEFRAG } from "./packet/defrag.js";
export type { DefragOptions, DefragSummary } from "./packet/defrag.js";
export { l4ChecksumOk } from "./packet/checksum.js";
export { PcapWriter, PcapngWriter } from "./packet/writer.js";
export type { PcapWriterOptions, PcapngWriterOptions, PcapngInterface, CaptureOutput } from "./packet/writer.js";
export { buildTcp, buildUdp, buildUdpLite, buildIcmp, buildIcmpError, buildSctp, buildGre, fragment } from "./packet/build.js";
export type {
  TcpBuildOptions,
  UdpBuildOptions,
  IcmpBuildOptions,
  IcmpErrorOptions,
  SctpBuildOptions,
  GreBuildOptions,
  FragmentOptions,
} from "./packet/build.js";

// Replay and its report.
export { replay } from "./replay/replay.js";
export type { ReplayOptions, ReplayRun } from "./replay/replay.js";
export { formatSummaryText, formatSummaryJson } from "./report/summary.js";
export type { ReplaySummary, PacketsByState } from "./report/summary.js";

// Firewall rulesets: parsing (iptables-save, nft JSON/text), evaluation, tracking analysis.
export { RulesetSyntaxError } from "./firewall/errors.js";
export type { SourcePos } from "./firewall/errors.js";
export type { Ruleset, Table, Chain, Rule, Match, Action } from "./firewall/model.js";
export { detectFormat, loadRuleset } from "./firewall/load.js";
export type { LoadOptions } from "./firewall/load.js";
export { parseIptables, serializeIptables } from "./firewall/iptables.js";
export { parseIpsetSave } from "./firewall/ipset.js";
export { parseNftJson } from "./firewall/nft.js";
export { PacketContext, EvalState, CompiledRuleset, compileRuleset, evaluateChain, evaluateHook, createHost, VERDICT } from "./firewall/eval.js";
export type { EvalHost } from "./firewall/eval.js";
export { analyzeRuleset } from "./firewall/analysis/analyze.js";
export type { AnalysisResult } from "./firewall/analysis/analyze.js";
export { formatAnalysis, analysisToJson } from "./firewall/analysis/format.js";
export { notrackRulesFor } from "./firewall/analysis/notrack.js";
export type { NotrackSuggestion } from "./firewall/analysis/notrack.js";
export { parseSelector } from "./firewall/analysis/selector.js";
export { convertNftText } from "./host/nft-text.js";
export { EnvironmentError } from "./host/environment.js";
