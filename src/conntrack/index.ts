/**
 * The conntrack module's public surface: a kernel-faithful nf_conntrack
 * (Linux 6.18) over a fixed-size struct-of-arrays table. This list is
 * reviewed: add to it deliberately.
 */
export { Tracker, CtResult, CT_DROPPED } from "./tracker.js";
export type { TrackerOptions, Clock } from "./tracker.js";

export { EVENT_TYPE, EventLineSink } from "./events.js";
export type { EventSink, EventType, EventFormatOptions } from "./events.js";

export { ConntrackStats, INVALID_REASON, INVALID_REASON_NAMES } from "./stats.js";

export {
  SYSCTLS,
  MAX_TABLE_SIZE,
  SysctlError,
  defaultSysctls,
  parseSysctlAssignment,
  parseSysctlFile,
  resolveSysctls,
  sysctlSpec,
} from "./sysctl.js";
export type {
  IgnoredSysctl,
  SysctlAssignment,
  SysctlErrorReason,
  SysctlFile,
  SysctlName,
  SysctlSpec,
  SysctlUnit,
  SysctlValues,
} from "./sysctl.js";

export { IPS, IPCT, CTINFO, CT_STATE, L4_VERDICT, HOOK, DIR } from "./constants.js";
export type { CtContext, L4Tracker } from "./l4.js";

export { HZ } from "./jiffies.js";
export { TcpTracker, TCP_STATE, TCP_STATE_NAMES, tcpStateName } from "./tcp.js";
export { SCTP_STATE, SCTP_STATE_NAMES } from "./sctp.js";
export { ipText, ipv6Compressed, ipv6Full, l4Name } from "./format.js";
export { TupleScratch } from "./tuple.js";
