/**
 * The conntrack sysctls of Linux 6.18 (`/proc/sys/net/netfilter/`), under
 * their kernel names, with the kernel's defaults, units and accepted ranges
 * (net/netfilter/nf_conntrack_standalone.c nf_ct_sysctl_table,
 * net/ipv6/netfilter/nf_conntrack_reasm.c nf_ct_frag6_sysctl_table).
 *
 * Defaults are those of a 64-bit host with more than 4 GiB of RAM
 * (nf_conntrack_init_start: 262144 buckets, nf_conntrack_max = buckets).
 */
import { HZ } from "./jiffies.js";

/** How a sysctl's text value is read and what the resolved number means. */
export type SysctlUnit =
  /** Whole seconds in /proc (proc_dointvec_jiffies); resolved to milliseconds. */
  | "seconds"
  /** A count of table entries or hash buckets. */
  | "entries"
  /** A byte count. */
  | "bytes"
  /** 0 or 1 (proc_dou8vec_minmax with extra1 = 0, extra2 = 1). */
  | "boolean"
  /** A small number with a documented meaning per value. */
  | "mode"
  /** An IP protocol number (nf_conntrack_log_invalid). */
  | "protocol"
  /** A plain counter. */
  | "count";

/** One sysctl of the registry. */
export interface SysctlSpec<N extends string = string> {
  /** Name under net.netfilter (e.g. "nf_conntrack_max"). */
  readonly name: N;
  /** Value the kernel starts with, in the /proc unit (seconds for timeouts). */
  readonly default: number;
  readonly unit: SysctlUnit;
  /** Smallest accepted value, in the /proc unit. */
  readonly min: number;
  /** Largest accepted value, in the /proc unit. */
  readonly max: number;
  /** One-line description. */
  readonly description: string;
  /** True for values the kernel reports but refuses to set (nf_conntrack_count). */
  readonly readOnly?: true;
}

const INT_MAX = 0x7fffffff;
/** Largest timeout proc_dointvec_jiffies stores without overflowing an int of jiffies. */
const MAX_SECONDS = Math.floor(INT_MAX / HZ);
/**
 * The bucket array is allocated up front from nf_conntrack_buckets (as the
 * kernel's is), so it is capped where the kernel only caps at INT_MAX (2^26
 * buckets are 256 MiB). nf_conntrack_max is not: slots are allocated as
 * entries arrive, so a large or no limit (0) costs nothing until used.
 */
export const MAX_TABLE_SIZE = 1 << 26;

function n<N extends string>(name: N, def: number, unit: SysctlUnit, min: number, max: number, description: string): SysctlSpec<N> {
  return { name, default: def, unit, min, max, description };
}
function t<N extends string>(name: N, def: number, description: string): SysctlSpec<N> {
  return n(name, def, "seconds", 0, MAX_SECONDS, description);
}
function b<N extends string>(name: N, def: number, description: string): SysctlSpec<N> {
  return n(name, def, "boolean", 0, 1, description);
}

/** Every conntrack sysctl ctlab models, in the kernel's table order (typed by name: see SysctlName). */
const REGISTRY = [
  n(
    "nf_conntrack_max",
    262144,
    "entries",
    0,
    INT_MAX,
    "Maximum number of tracked connections; a new one beyond it triggers early drop or is dropped. 0: no limit (the table grows as long as memory lasts, early drop never runs)",
  ),
  { ...n("nf_conntrack_count", 0, "entries", 0, INT_MAX, "Number of tracked connections (read-only)"), readOnly: true },
  n("nf_conntrack_buckets", 262144, "entries", 1, MAX_TABLE_SIZE, "Size of the hash table; rounded up to a multiple of 512 like nf_ct_alloc_hashtable"),
  b("nf_conntrack_checksum", 1, "Verify transport checksums of packets entering at PRE_ROUTING; bad ones are invalid"),
  n("nf_conntrack_log_invalid", 0, "protocol", 0, 255, "Log invalid packets of this IP protocol (255 = all, 0 = none)"),
  n("nf_conntrack_expect_max", 4096, "entries", 1, INT_MAX, "Maximum number of expectations (helpers)"),
  b("nf_conntrack_acct", 0, "Keep per-direction packet and byte counters for new connections"),
  n("nf_conntrack_events", 2, "mode", 0, 2, "Connection events: 0 off, 1 on, 2 only when a listener exists"),
  b("nf_conntrack_timestamp", 0, "Record start and stop times of new connections"),
  t("nf_conntrack_generic_timeout", 600, "Timeout of entries of protocols without a tracker"),
  t("nf_conntrack_tcp_timeout_syn_sent", 120, "TCP timeout after a SYN"),
  t("nf_conntrack_tcp_timeout_syn_recv", 60, "TCP timeout after the SYN/ACK"),
  t("nf_conntrack_tcp_timeout_established", 432000, "TCP timeout of an established connection"),
  t("nf_conntrack_tcp_timeout_fin_wait", 120, "TCP timeout after the first FIN"),
  t("nf_conntrack_tcp_timeout_close_wait", 60, "TCP timeout after the first FIN was acknowledged"),
  t("nf_conntrack_tcp_timeout_last_ack", 30, "TCP timeout after the second FIN"),
  t("nf_conntrack_tcp_timeout_time_wait", 120, "TCP timeout after the last ACK"),
  t("nf_conntrack_tcp_timeout_close", 10, "TCP timeout after a RST"),
  t("nf_conntrack_tcp_timeout_max_retrans", 300, "TCP timeout cap after nf_conntrack_tcp_max_retrans retransmissions or a zero window"),
  t("nf_conntrack_tcp_timeout_unacknowledged", 300, "TCP timeout cap while data is unacknowledged"),
  b("nf_conntrack_tcp_loose", 1, "Pick up TCP connections already in progress"),
  b("nf_conntrack_tcp_be_liberal", 0, "Only mark out-of-window RST segments as invalid"),
  b("nf_conntrack_tcp_ignore_invalid_rst", 0, "Do not mark out-of-window RST segments as invalid"),
  n("nf_conntrack_tcp_max_retrans", 3, "count", 0, 255, "Identical retransmissions before the max_retrans timeout applies"),
  t("nf_conntrack_udp_timeout", 30, "UDP timeout until a reply is seen (or within 2 s of creation)"),
  t("nf_conntrack_udp_timeout_stream", 120, "UDP timeout of a stream (replies seen, older than 2 s)"),
  t("nf_conntrack_icmp_timeout", 30, "ICMP timeout"),
  t("nf_conntrack_icmpv6_timeout", 30, "ICMPv6 timeout"),
  t("nf_conntrack_sctp_timeout_closed", 10, "SCTP timeout in CLOSED"),
  t("nf_conntrack_sctp_timeout_cookie_wait", 3, "SCTP timeout in COOKIE_WAIT"),
  t("nf_conntrack_sctp_timeout_cookie_echoed", 3, "SCTP timeout in COOKIE_ECHOED"),
  t("nf_conntrack_sctp_timeout_established", 210, "SCTP timeout in ESTABLISHED"),
  t("nf_conntrack_sctp_timeout_shutdown_sent", 3, "SCTP timeout in SHUTDOWN_SENT"),
  t("nf_conntrack_sctp_timeout_shutdown_recd", 3, "SCTP timeout in SHUTDOWN_RECD"),
  t("nf_conntrack_sctp_timeout_shutdown_ack_sent", 3, "SCTP timeout in SHUTDOWN_ACK_SENT"),
  t("nf_conntrack_sctp_timeout_heartbeat_sent", 30, "SCTP timeout in HEARTBEAT_SENT"),
  t("nf_conntrack_gre_timeout", 30, "GRE timeout until a reply is seen"),
  t("nf_conntrack_gre_timeout_stream", 180, "GRE timeout once replies were seen"),
  t("nf_conntrack_frag6_timeout", 60, "Time an incomplete IPv6 datagram is kept for reassembly"),
  n("nf_conntrack_frag6_low_thresh", 3145728, "bytes", 0, INT_MAX, "IPv6 reassembly memory below which no fragments are evicted"),
  n("nf_conntrack_frag6_high_thresh", 4194304, "bytes", 0, INT_MAX, "IPv6 reassembly memory above which new fragments are dropped"),
] as const satisfies readonly SysctlSpec[];

/** Every conntrack sysctl ctlab models, in the kernel's table order. */
export const SYSCTLS: readonly SysctlSpec<SysctlName>[] = Object.freeze(REGISTRY);

/** A name of the registry. */
export type SysctlName = (typeof REGISTRY)[number]["name"];

/** A name of the registry that can be set (all but the read-only nf_conntrack_count). */
export type SettableSysctlName = Exclude<(typeof REGISTRY)[number], { readonly readOnly: true }>["name"];

const SPEC_BY_NAME: ReadonlyMap<string, SysctlSpec<SysctlName>> = new Map(SYSCTLS.map((s) => [s.name, s]));

function settable(s: SysctlSpec<SysctlName>): s is SysctlSpec<SettableSysctlName> {
  return s.readOnly !== true;
}
const VALID_NAMES = SYSCTLS.filter((s) => !s.readOnly)
  .map((s) => s.name)
  .sort()
  .join(", ");

/** The spec of a sysctl by its short name, or undefined. */
export function sysctlSpec(name: string): SysctlSpec | undefined {
  return SPEC_BY_NAME.get(name);
}

/**
 * Resolved sysctl values: every name of the registry (but the read-only
 * count), timeouts in milliseconds, everything else in its /proc unit,
 * nf_conntrack_buckets already rounded as the kernel rounds it. Frozen.
 */
export type SysctlValues = { readonly [K in SettableSysctlName]: number };

/** Why a sysctl setting was refused. */
export type SysctlErrorReason = "unknown-name" | "bad-value" | "out-of-range" | "read-only" | "syntax";

/** A sysctl name or value ctlab refuses, as `sysctl -w` would. */
export class SysctlError extends Error {
  readonly reason: SysctlErrorReason;
  /** The name as written, when the error is about one. */
  readonly key: string;
  /** File and 1-based line, when the setting came from a file. */
  readonly file: string | undefined;
  readonly line: number | undefined;

  constructor(reason: SysctlErrorReason, key: string, message: string, file?: string, line?: number) {
    super(file === undefined ? message : `${file}:${line ?? 0}: ${message}`);
    this.name = "SysctlError";
    this.reason = reason;
    this.key = key;
    this.file = file;
    this.line = line;
  }
}

/** One accepted `NAME=VALUE`. */
export interface SysctlAssignment {
  /** Short registry name ("nf_conntrack_max"). */
  readonly name: SettableSysctlName;
  /** The value in the /proc unit (seconds for timeouts). */
  readonly value: number;
  /** The key as written ("net.netfilter.nf_conntrack_max"). */
  readonly key: string;
}

/** A line of a sysctl file that was not applied, and why. */
export interface IgnoredSysctl {
  readonly key: string;
  readonly line: number;
  readonly reason: string;
  /**
   * "foreign": not a conntrack sysctl; "read-only": reports state
   * (nf_conntrack_count), as in `sysctl -a` output; "unknown": an
   * nf_conntrack_* name ctlab does not model and no near miss of one (a
   * sysctl of another kernel version, e.g. the DCCP ones); "suppressed": an
   * error on a line with a leading "-".
   */
  readonly kind: "foreign" | "read-only" | "unknown" | "suppressed";
}

/** What a sysctl.conf-style file sets for conntrack. */
export interface SysctlFile {
  /** Settings in file order (a later one for the same name wins). */
  readonly assignments: readonly (SysctlAssignment & { readonly line: number })[];
  /** name → value of the last assignment of each name, ready for `Tracker`'s `sysctls`. */
  readonly values: Partial<SysctlValues>;
  /** Keys that are not conntrack's, and errors suppressed by a leading "-". */
  readonly ignored: readonly IgnoredSysctl[];
}

/**
 * The registry name a key refers to: `nf_conntrack_x`,
 * `net.netfilter.nf_conntrack_x`, `net/netfilter/nf_conntrack_x`,
 * `/proc/sys/net/netfilter/nf_conntrack_x`, or the `net.nf_conntrack_max`
 * alias. Returns null for keys outside net.netfilter (and the alias).
 */
function shortName(key: string): string | null {
  let k = key.trim();
  if (k.startsWith("/proc/sys/")) k = k.slice("/proc/sys/".length);
  k = k.replace(/\//g, ".");
  if (k.startsWith("net.netfilter.")) return k.slice("net.netfilter.".length);
  if (k === "net.nf_conntrack_max") return "nf_conntrack_max";
  if (!k.includes(".")) return k;
  return null;
}

/**
 * Reads an integer the way proc_dointvec does (kstrtoul with base 0): decimal,
 * `0x` hexadecimal or leading-zero octal, optionally negative.
 */
function parseInteger(text: string): number | null {
  const s = text.trim();
  const m = /^(-?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)$/.exec(s);
  if (m === null) return null;
  const body = m[2] as string;
  let v: number;
  if (/^0[xX]/.test(body)) v = parseInt(body.slice(2), 16);
  else if (body.length > 1 && body[0] === "0") v = parseInt(body.slice(1), 8);
  else v = parseInt(body, 10);
  if (!Number.isSafeInteger(v)) return null;
  return m[1] === "-" ? -v : v;
}

/** Levenshtein distance, for "did you mean". */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min((prev[j] as number) + 1, (cur[j - 1] as number) + 1, (prev[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length] as number;
}

/**
 * The settable sysctl a mistyped name most likely meant: the nearest by edit
 * distance, if at most 3 edits away (a dropped, doubled or swapped letter or
 * two), else undefined. Read-only names are not suggested, nor names for a
 * name of a protocol ctlab has no sysctl of (nf_conntrack_dccp_*).
 */
export function closestSysctlName(key: string): string | undefined {
  const name = shortName(key) ?? key;
  // nf_conntrack_<word>_…: when no modelled sysctl has that word (dccp, of a protocol ctlab does not
  // track), the name belongs to another kernel or module, not to a typo.
  const word = /^nf_conntrack_([a-z0-9]+)_/.exec(name)?.[1];
  if (word !== undefined && !SYSCTLS.some((s) => s.name.startsWith(`nf_conntrack_${word}`))) return undefined;
  let best: string | undefined;
  let bestD = 4;
  for (const s of SYSCTLS) {
    if (s.readOnly) continue;
    const d = editDistance(name, s.name);
    if (d < bestD) {
      bestD = d;
      best = s.name;
    }
  }
  return best;
}

function unknownName(key: string, file?: string, line?: number): SysctlError {
  const near = closestSysctlName(key);
  const detail = near !== undefined ? `did you mean "${near}"?` : `valid names are ${VALID_NAMES}`;
  return new SysctlError("unknown-name", key, `Unknown sysctl "${key}": ${detail}`, file, line);
}

/** The spec of a sysctl that may be set, or the read-only error. */
function settableSpec(spec: SysctlSpec<SysctlName>, key: string, file?: string, line?: number): SysctlSpec<SettableSysctlName> {
  if (!settable(spec)) {
    throw new SysctlError("read-only", key, `Sysctl "${key}" is read-only: it reports the current number of entries`, file, line);
  }
  return spec;
}

/** Checks a value against a spec; returns the number or throws. */
function checkValue(spec: SysctlSpec, key: string, raw: number | string, file?: string, line?: number): number {
  const v = typeof raw === "number" ? (Number.isSafeInteger(raw) ? raw : null) : parseInteger(raw);
  if (v === null) {
    throw new SysctlError(
      "bad-value",
      key,
      `Invalid value "${String(raw)}" for sysctl "${key}": expected an integer from ${spec.min} to ${spec.max}`,
      file,
      line,
    );
  }
  if (v < spec.min || v > spec.max) {
    throw new SysctlError(
      "out-of-range",
      key,
      `Value "${String(raw).trim()}" for sysctl "${key}" is out of range: valid range is ${spec.min} to ${spec.max}`,
      file,
      line,
    );
  }
  return v;
}

/**
 * Parses one `NAME=VALUE` (whitespace around `=` allowed), as given to
 * `sysctl -w` or a `--sysctl` option.
 * @throws SysctlError for a missing `=`, an unknown name, a bad value or a read-only name
 */
export function parseSysctlAssignment(text: string): SysctlAssignment {
  const eq = text.indexOf("=");
  if (eq < 0) throw new SysctlError("syntax", text.trim(), `Invalid sysctl setting "${text.trim()}": expected NAME=VALUE`);
  const key = text.slice(0, eq).trim();
  const name = shortName(key);
  const spec = name === null ? undefined : SPEC_BY_NAME.get(name);
  if (spec === undefined) throw unknownName(key);
  const sp = settableSpec(spec, key);
  return { name: sp.name, value: checkValue(sp, key, text.slice(eq + 1)), key };
}

/**
 * Parses a file in sysctl.conf syntax (procps `sysctl -p`): one `key = value`
 * per line, `#` and `;` start comments, blank lines are skipped, a leading
 * `-` on the key makes errors on that line ignored. Keys outside
 * net.netfilter, and net.netfilter keys not named nf_conntrack_* (nf_log,
 * nf_hooks_lwtunnel), are not conntrack's: they are reported as ignored.
 * Unknown `net.netfilter.nf_conntrack_*` names are errors.
 * @throws SysctlError with `file` and `line` for the first line in error
 */
export function parseSysctlFile(text: string, fileName: string): SysctlFile {
  const assignments: (SysctlAssignment & { line: number })[] = [];
  const ignored: IgnoredSysctl[] = [];
  const values: { [K in SettableSysctlName]?: number } = {};
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const raw = (lines[i] as string).trim();
    if (raw === "" || raw.startsWith("#") || raw.startsWith(";")) continue;
    let body = raw;
    let tolerant = false;
    if (body.startsWith("-")) {
      tolerant = true;
      body = body.slice(1).trim();
    }
    const eq = body.indexOf("=");
    if (eq < 0) {
      if (tolerant) {
        ignored.push({ key: body, line: lineNo, reason: 'invalid syntax (error ignored by leading "-")', kind: "suppressed" });
        continue;
      }
      throw new SysctlError("syntax", body, `Invalid line "${body}": expected NAME=VALUE`, fileName, lineNo);
    }
    const key = body.slice(0, eq).trim();
    const valueText = body.slice(eq + 1).trim();
    const name = shortName(key);
    if (name === null || (!name.startsWith("nf_conntrack_") && !SPEC_BY_NAME.has(name))) {
      ignored.push({ key, line: lineNo, reason: "not a conntrack sysctl", kind: "foreign" });
      continue;
    }
    const known = SPEC_BY_NAME.get(name);
    // `sysctl -a | grep conntrack` output is a valid input: it lists the read-only count and the
    // sysctls of modules or kernel versions ctlab does not model. A near miss is still a typo.
    if (known?.readOnly === true) {
      ignored.push({ key, line: lineNo, reason: "read-only (reports state, cannot be set)", kind: "read-only" });
      continue;
    }
    if (known === undefined && closestSysctlName(name) === undefined) {
      ignored.push({ key, line: lineNo, reason: "not a sysctl ctlab models (one of another kernel version or module?)", kind: "unknown" });
      continue;
    }
    try {
      const found = SPEC_BY_NAME.get(name);
      if (found === undefined) throw unknownName(key, fileName, lineNo);
      const spec = settableSpec(found, key, fileName, lineNo);
      const value = checkValue(spec, key, valueText, fileName, lineNo);
      assignments.push({ name: spec.name, value, key, line: lineNo });
      values[spec.name] = value;
    } catch (e) {
      if (tolerant && e instanceof SysctlError) {
        ignored.push({ key, line: lineNo, reason: `${e.message} (error ignored by leading "-")`, kind: "suppressed" });
        continue;
      }
      throw e;
    }
  }
  return { assignments, values, ignored };
}

/** The defaults of every settable sysctl, in /proc units. */
export function defaultSysctls(): SysctlValues {
  const out = {} as Record<SettableSysctlName, number>;
  for (const s of SYSCTLS) if (settable(s)) out[s.name] = s.default;
  return Object.freeze(out);
}

/** nf_ct_alloc_hashtable rounds the bucket count up to a page of hlist heads. */
const BUCKET_ROUNDING = 4096 / 8;

/**
 * Resolves settings (any accepted key form, numbers or /proc text) over the
 * defaults into the frozen values the tracker runs with: timeouts in
 * milliseconds, nf_conntrack_buckets rounded up to a multiple of 512.
 * @throws SysctlError for unknown names, bad values, values out of range, and
 *   nf_conntrack_frag6_low_thresh above nf_conntrack_frag6_high_thresh
 */
export function resolveSysctls(input: Readonly<Record<string, number | string>> = {}): SysctlValues {
  const procValues: Record<SettableSysctlName, number> = { ...defaultSysctls() };
  for (const [key, raw] of Object.entries(input)) {
    const name = shortName(key);
    const spec = name === null ? undefined : SPEC_BY_NAME.get(name);
    if (spec === undefined) throw unknownName(key);
    const sp = settableSpec(spec, key);
    procValues[sp.name] = checkValue(sp, key, raw);
  }
  const low = procValues.nf_conntrack_frag6_low_thresh;
  const high = procValues.nf_conntrack_frag6_high_thresh;
  if (low > high) {
    throw new SysctlError(
      "out-of-range",
      "nf_conntrack_frag6_low_thresh",
      `Value "${low}" for sysctl "nf_conntrack_frag6_low_thresh" is out of range: valid range is 0 to nf_conntrack_frag6_high_thresh (${high})`,
    );
  }
  const out = {} as Record<SettableSysctlName, number>;
  for (const s of SYSCTLS) {
    if (!settable(s)) continue;
    const v = procValues[s.name];
    out[s.name] = s.unit === "seconds" ? v * 1000 : v;
  }
  const buckets = out.nf_conntrack_buckets;
  out.nf_conntrack_buckets = Math.min(Math.ceil(buckets / BUCKET_ROUNDING) * BUCKET_ROUNDING, MAX_TABLE_SIZE);
  return Object.freeze(out);
}
