/**
 * Replay: capture → packet source (decode, defrag) → conntrack → sinks.
 *
 * Shared by the CLI, the kernel comparison tests and the benchmarks, so that
 * each of them measures the same engine. With a ruleset, packets go through
 * the firewall's netfilter path instead (rules, NAT and conntrack in hook
 * order; conntrack only when the ruleset registers it).
 */
import { CT_DROPPED, Tracker } from "../conntrack/tracker.js";
import type { EntryReader } from "../conntrack/entry.js";
import { formatEvent } from "../conntrack/events.js";
import type { EventSink, EventType } from "../conntrack/events.js";
import { timestampPrefix } from "../conntrack/format.js";
import type { ExpectEventSink } from "../conntrack/helpers/expect.js";
import { CT_STATE, IPS } from "../conntrack/constants.js";
import { forEachPacket } from "../packet/source.js";
import type { SourceSummary } from "../packet/source.js";
import type { PacketView } from "../packet/view.js";
import { ReaderCounts } from "./reader-counts.js";
import { trackedProtoName } from "../packet/proto.js";
import { defaultSysctls, SYSCTLS } from "../conntrack/sysctl.js";
import type { ReplaySummary } from "../report/summary.js";
import type { HostModel } from "../firewall/host.js";
import type { Ruleset } from "../firewall/model.js";
// The firewall is loaded only by a replay with a ruleset (start-up of a plain replay: see below).
import type { NetfilterPath, PathResult } from "../firewall/path.js";
import { Census } from "../conntrack/census.js";
import type { CensusReader, CensusResult } from "../conntrack/census.js";
import { SUPPORTED_LINK_TYPES } from "../packet/decode.js";
import { extensionAttached, kernelMemory } from "../report/memory.js";
import type { PolicyConfig } from "../conntrack/policy/registry.js";

/** A ruleset to replay through, and the host it runs on. */
export interface FirewallOptions {
  ruleset: Ruleset;
  host: HostModel;
  /** Track every packet whatever the ruleset registers (nf_conntrack.enable_hooks=1). */
  enableHooks?: boolean;
  /** Seed of the firewall's random source (statistic --mode random, NAT port offsets). */
  seed?: number;
  /** Called after every IP packet with its outcome (the view holds the packet as the last hook saw it). */
  onPacket?: ((index: number, view: PacketView, result: PathResult) => void) | null;
}

/** Options of {@link replay}. */
export interface ReplayOptions {
  /** Sysctl settings over the kernel defaults (any accepted name form). */
  sysctls?: Readonly<Record<string, number | string>>;
  /**
   * "capture" (default): capture timestamps drive timeouts, so entries expire
   * during a long capture. "frozen": every packet at the first packet's
   * instant, as when a capture is pushed through a kernel at top speed.
   */
  clock?: "capture" | "frozen";
  /** Reassemble IP fragments before tracking (nf_defrag). Defaults to true. */
  defrag?: boolean;
  /** Hash seed; fixes bucket placement (and so early-drop victims) across runs. */
  seed?: number;
  /** The table policy (default kernel); when given the summary reports it, live evictions included. */
  policy?: PolicyConfig;
  /** Receives each event line as `conntrack -E -o extended` prints it. */
  onEvent?: ((line: string) => void) | null;
  /**
   * Receives each expectation event (FTP/TFTP helpers) as `conntrack -E
   * expect` prints it: `    [NEW] 300 proto=6 src=… helper=ftp`, `[DESTROY] …`,
   * at the moment the kernel sends it (NEW when the helper reads the
   * command, DESTROY when a connection takes it, it times out or its master
   * goes), so that beside onEvent the two streams interleave in kernel order.
   */
  onExpectEvent?: ((line: string) => void) | null;
  /** Prefix event lines (expectation ones too) with `[sec.usec]\t` like `conntrack -E -o timestamp`. */
  eventTimestamps?: boolean;
  /** Called every `progressEvery` records with the count so far. */
  onProgress?: ((records: number, bytes: number) => void) | null;
  progressEvery?: number;
  /** Name of the input in messages (defaults to the path, or "-"). */
  name?: string;
  /** Run every packet through this ruleset's packet path instead of conntrack alone. */
  firewall?: FirewallOptions | null;
  /**
   * Take a census of the final table and of the table at its peak, with this
   * many items per list (the summary's `census`; null when absent).
   */
  census?: { top: number } | null;
  /**
   * Called once before the first packet with a probe of the run so far, for
   * a progress display driven by a timer (the probe costs nothing per packet).
   */
  onStart?: ((probe: () => ReplayProgress) => void) | null;
  /** Ends the run early (between chunks of a stream): the summary says it was interrupted. */
  signal?: AbortSignal | null;
  /** A conntrack event listener exists (the kernel then attaches the event extension with nf_conntrack_events=2). */
  eventListener?: boolean;
}

/** The run so far, for progress displays. */
export interface ReplayProgress {
  /** Frames handed to the tracker or skipped (after reassembly). */
  packets: number;
  /** Captured bytes of those frames. */
  bytes: number;
  /** Entries in the table now, and its limit (nf_conntrack_max; 0 = none). */
  entries: number;
  max: number;
}

/** What a replay leaves behind: the tracker (its final table) and the summary. */
export interface ReplayRun {
  tracker: Tracker;
  summary: ReplaySummary;
  source: SourceSummary;
  /** The packet path, its counters and the ruleset's rule counters, when a ruleset was given. */
  path: NetfilterPath | null;
}

/** Capture time that drives the tracker; set before every packet. */
class CaptureClock {
  /** NaN until the first packet: the tracker's time (and GC schedule) starts there, not at 0. */
  ms = Number.NaN;
  frozen: boolean;
  started = false;
  constructor(frozen: boolean) {
    this.frozen = frozen;
  }
  now(): number {
    return this.ms;
  }
  set(view: PacketView): void {
    if (this.frozen && this.started) return;
    this.started = true;
    this.ms = view.tsSec * 1000 + Math.floor(view.tsNsec / 1e6);
  }
}

class LineEvents implements EventSink {
  constructor(
    private readonly out: (line: string) => void,
    private readonly timestamps: boolean,
  ) {}
  onEvent(type: EventType, bits: number, entry: EntryReader, timeMs: number): void {
    this.out(formatEvent(type, bits, entry, timeMs, { extended: true, timestamp: this.timestamps }));
  }
}

/** `conntrack -E expect` lines: the message type as "%9s " (as for flow events), the optional timestamp before it. */
function expectLines(out: (line: string) => void, timestamps: boolean, clock: { now(): number }): ExpectEventSink {
  return (kind, line) => out(`${timestamps ? timestampPrefix(clock.now()) : ""}${`[${kind}]`.padStart(9)} ${line}`);
}

/** Census of a tracker's live entries (its read-only entry views). */
function takeCensus(census: Census, tracker: Tracker): void {
  census.clear();
  tracker.forEachEntry((e) => census.addReader(e));
}

/**
 * The peak census is not free: a census walks the whole table. So it is
 * taken lazily: on the packet after a new peak, before that packet moves
 * time on (and expires anything), so that it sees exactly the peak table —
 * but only when the peak is at least 5/4 of the last census's, or when at
 * least half as many packets were replayed since the last census as the
 * table has entries. The walks then cost at most 5 peak tables plus 2 entry
 * visits per packet, whatever the table does; the price is that a peak just
 * above the last census's may go without its own census (`entries` of the
 * peak census then says which peak it describes, never less than 4/5 of the
 * highest). A table that ends at its peak has the final census for it.
 */
function peakCensusDue(peak: number, censusPeak: number, packetsSince: number, count: number): boolean {
  return censusPeak === 0 || 4 * peak >= 5 * censusPeak || 2 * packetsSince >= count;
}

/**
 * Replays a capture through a fresh tracker.
 * @param input path, "-" for standard input, a readable stream, an async iterable of chunks, or the bytes
 * @throws SysctlError for bad sysctls (before reading anything); a corrupt
 *   capture does not throw: the summary carries the error and the results so far
 */
export async function replay(input: string | NodeJS.ReadableStream | AsyncIterable<Uint8Array> | Uint8Array, opts: ReplayOptions = {}): Promise<ReplayRun> {
  const clock = new CaptureClock(opts.clock === "frozen");
  const log: { time: number; line: string }[] = [];
  const tracker = new Tracker({
    sysctls: opts.sysctls ?? {},
    clock,
    ...(opts.seed !== undefined ? { seed: opts.seed } : {}),
    ...(opts.policy !== undefined ? { policy: opts.policy, countLiveEvictions: true } : {}),
    events: opts.onEvent ? new LineEvents(opts.onEvent, opts.eventTimestamps === true) : null,
    expectEvents: opts.onExpectEvent ? expectLines(opts.onExpectEvent, opts.eventTimestamps === true, clock) : null,
    log: (timeMs, line) => {
      if (log.length < 10000) log.push({ time: timeMs / 1000, line });
    },
  });

  let newP = 0;
  let est = 0;
  let rel = 0;
  let inv = 0;
  let untr = 0;
  let dropped = 0;
  let tracked = 0;
  let peak = 0;
  let peakTime: number | null = null;
  const rc = new ReaderCounts(opts.onProgress ?? null, opts.progressEvery ?? 65536);

  const fw = opts.firewall ?? null;
  // A plain replay never compiles the firewall's modules (the ruleset evaluators, NAT, the
  // tracking analysis): most of the CLI's start-up before the first packet otherwise.
  const fwMods = fw ? await Promise.all([import("../firewall/path.js"), import("../firewall/eval.js")]) : null;
  const DROP_CONNTRACK = fwMods?.[0].DROP_REASON.CONNTRACK ?? -1;
  const DROP_CONFIRM = fwMods?.[0].DROP_REASON.CONFIRM ?? -1;
  const VERDICT_DROP = fwMods?.[1].VERDICT.DROP ?? -1;
  const path =
    fw && fwMods
      ? new fwMods[0].NetfilterPath({
          ruleset: fw.ruleset,
          tracker,
          host: fw.host,
          ...(fw.enableHooks === true ? { enableHooks: true } : {}),
          ...(fw.seed !== undefined ? { seed: fw.seed } : opts.seed !== undefined ? { seed: opts.seed } : {}),
        })
      : null;
  const onPacket = fw?.onPacket ?? null;
  let ipIndex = 0;

  const censusTop = opts.census?.top ?? null;
  const census = censusTop !== null ? new Census() : null;
  // Both are set in the packet callback: typed wide so the reads after the loop are not narrowed to their initial values.
  let peakCensus = null as { result: CensusResult; time: number | null; peak: number; peakTime: number | null } | null;
  let packetsAtCensus = 0;
  /** Peak the last census was taken for (0: none yet), and whether a higher one is pending. */
  let censusPeak = 0;
  let peakPending = false as boolean;

  const handler = (view: PacketView): void => {
    if (!rc.admit(view)) return;
    // Before this packet's time is set: the census must see the table as the last packet left it.
    if (peakPending && census !== null) {
      const c = tracker.count;
      if (c === peak && peakCensusDue(peak, censusPeak, rc.total - packetsAtCensus, c)) {
        takeCensus(census, tracker);
        peakCensus = { result: census.result(censusTop ?? 10), time: peakTime, peak, peakTime };
        censusPeak = peak;
        packetsAtCensus = rc.total;
        peakPending = false;
      }
    }
    clock.set(view);
    let s: number;
    if (path !== null) {
      path.run(view, clock.ms);
      const r = path.result;
      if (onPacket !== null) onPacket(ipIndex, view, r);
      ipIndex++;
      // Packets conntrack never saw (no hooks for the family) are in the path's stats only.
      if (r.state === 0 && r.dropReason !== DROP_CONNTRACK) return;
      s = r.verdict === VERDICT_DROP && (r.dropReason === DROP_CONNTRACK || r.dropReason === DROP_CONFIRM) ? CT_DROPPED : r.state;
    } else {
      s = tracker.process(view);
    }
    tracked++;
    if (s === CT_DROPPED) dropped++;
    else if (s === CT_STATE.ESTABLISHED) est++;
    else if (s === CT_STATE.NEW) newP++;
    else if (s === CT_STATE.INVALID) inv++;
    else if (s === CT_STATE.RELATED) rel++;
    else if (s === CT_STATE.UNTRACKED) untr++;
    const c = tracker.count;
    if (c > peak) {
      peak = c;
      peakTime = clock.ms / 1000;
      if (census !== null) peakPending = true;
    }
  };

  const started = performance.now();
  // nf_defrag is registered together with conntrack: without it the rules see fragments.
  const defrag = opts.defrag !== false && (path === null || path.conntrackOn.ipv4 || path.conntrackOn.ipv6);
  const maxEntries = tracker.sysctl.nf_conntrack_max;
  opts.onStart?.(() => ({ packets: rc.total, bytes: rc.bytes, entries: tracker.count, max: maxEntries }));
  const source = await forEachPacket(input as string, handler, {
    defrag,
    ...(opts.name !== undefined ? { name: opts.name } : {}),
  });
  const elapsed = performance.now() - started;
  const interrupted = opts.signal?.aborted === true;
  const summary = buildSummary(input, opts, source, tracker, {
    total: rc.total,
    tracked,
    newP,
    est,
    rel,
    inv,
    untr,
    dropped,
    nonIp: rc.nonIp,
    backwards: rc.backwards,
    peak,
    peakTime,
    unsupportedLinks: rc.unsupportedLinks,
    log,
    elapsed,
    interrupted,
    census,
    censusTop,
    peakCensus,
    peakPending,
  });
  if (opts.policy !== undefined) {
    const pol = tracker.policy;
    summary.policy = {
      name: pol.name,
      options: { ...pol.options },
      level: pol.levelName,
      evictions: { ...pol.evictions },
      refusals: { ...pol.refusals },
      level_changes: pol.levelChanges,
      live_evictions: pol.liveEvictions ?? 0,
    };
  }
  return { tracker, summary, source, path };
}

/** What the summary reads of the final table: the tracker, or the merged parts of a threaded replay. */
export interface SummaryTable {
  readonly count: number;
  readonly peak: number;
  readonly memoryBytes: number;
  readonly sysctl: Tracker["sysctl"];
  readonly stats: { entries(): [string, number][]; reasons(): Record<string, number>; readonly checksumOffloaded: number };
  /** Every live entry in `conntrack -L` order, the clock brought to the last packet first. */
  forEachEntry(cb: (e: CensusReader) => void): void;
}

/** The packet path's counts of a replay, for {@link buildSummary}. */
export interface SummaryCounts {
  total: number;
  tracked: number;
  newP: number;
  est: number;
  rel: number;
  inv: number;
  untr: number;
  dropped: number;
  nonIp: number;
  backwards: number;
  peak: number;
  peakTime: number | null;
  unsupportedLinks: Map<number, number>;
  log: { time: number; line: string }[];
  elapsed: number;
  interrupted: boolean;
  census: Census | null;
  censusTop: number | null;
  peakCensus: { result: CensusResult; time: number | null; peak: number; peakTime: number | null } | null;
  peakPending: boolean;
}

/** The summary of a replay from its final table and counts (shared by the single- and multi-threaded replays). */
export function buildSummary(
  input: string | NodeJS.ReadableStream | AsyncIterable<Uint8Array> | Uint8Array,
  opts: ReplayOptions,
  source: SourceSummary,
  tracker: SummaryTable,
  k: SummaryCounts,
): ReplaySummary {
  const {
    total,
    tracked,
    newP,
    est,
    rel,
    inv,
    untr,
    dropped,
    nonIp,
    backwards,
    peak,
    peakTime,
    unsupportedLinks,
    log,
    elapsed,
    interrupted,
    census,
    censusTop,
    peakPending,
  } = k;
  let peakCensus = k.peakCensus;
  const maxEntries = tracker.sysctl.nf_conntrack_max;
  const malformed: Record<string, number> = {};

  for (const [k, v] of Object.entries(source.decodeFailures)) malformed[k] = v;

  // Counted under the trackers' own state texts (constant strings: nothing is built per
  // entry, where trimming each one cost ~10 % of replaying a million handshakes) and
  // trimmed once per distinct state; keys keep their order of first appearance.
  // The last (protocol, state) counter is kept at hand: neighbouring entries mostly share it.
  const counts = new Map<string, Map<string, { n: number }>>();
  let lastProto = "";
  let lastState = "";
  let last: { n: number } = { n: 0 };
  let assured = 0;
  let unreplied = 0;
  census?.clear();
  let establishedLong = 0;
  const unackTimeout = tracker.sysctl.nf_conntrack_tcp_timeout_unacknowledged / 1000;
  tracker.forEachEntry((e) => {
    census?.addReader(e);
    const proto = protoName(e.proto, e.family);
    const state = e.stateName;
    if (proto !== lastProto || state !== lastState) {
      let m = counts.get(proto);
      if (m === undefined) counts.set(proto, (m = new Map<string, { n: number }>()));
      let c = m.get(state);
      if (c === undefined) m.set(state, (c = { n: 0 }));
      last = c;
      lastProto = proto;
      lastState = state;
    }
    last.n++;
    if (e.proto === 6 && state === "ESTABLISHED" && e.timeoutSeconds > unackTimeout) establishedLong++;
    const st = e.status;
    if (st & IPS.ASSURED) assured++;
    if (!(st & IPS.SEEN_REPLY)) unreplied++;
  });
  const byProtocol: Record<string, { entries: number; states: Record<string, number> }> = {};
  for (const [proto, m] of counts) {
    const o: Record<string, number> = {};
    let n = 0;
    for (const [state, c] of m) {
      n += c.n;
      const k = state.trim();
      // Protocols without states have no state key (never "").
      if (k !== "") o[k] = (o[k] ?? 0) + c.n;
    }
    byProtocol[proto] = { entries: n, states: o };
  }
  let censusOut: ReplaySummary["census"] = null;
  if (census !== null) {
    const final = census.result(censusTop ?? 10);
    const finalPeak = Math.max(peak, tracker.peak);
    // A pending peak the table never left (or too close to the last census to walk for) is best described by
    // the final table when it still holds the peak count.
    const endTime = source.lastTs === null ? null : source.lastTs.sec + source.lastTs.nsec / 1e9;
    if (peakCensus === null || (peakPending && tracker.count >= finalPeak)) peakCensus = { result: final, time: endTime, peak: finalPeak, peakTime };
    censusOut = {
      top: censusTop ?? 10,
      final,
      peak: { ...peakCensus.result, peak_entries: peakCensus.peak, peak_time: peakCensus.peakTime, time: peakCensus.time },
    };
  }

  const defaults = defaultSysctls();
  const changed: Record<string, number> = {};
  for (const spec of SYSCTLS) {
    const k = spec.name;
    if (k === "nf_conntrack_count") continue;
    const proc = spec.unit === "seconds" ? tracker.sysctl[k] / 1000 : tracker.sysctl[k];
    if (proc !== defaults[k] && k !== "nf_conntrack_buckets") changed[k] = proc;
  }
  if (tracker.sysctl.nf_conntrack_buckets !== defaults.nf_conntrack_buckets) {
    changed.nf_conntrack_buckets = tracker.sysctl.nf_conntrack_buckets;
  }

  const ts = (t: { sec: number; nsec: number } | null) => (t === null ? null : t.sec + t.nsec / 1e9);
  const stats: Record<string, number> = {};
  for (const [k, v] of tracker.stats.entries()) stats[k] = v;

  const buckets = tracker.sysctl.nf_conntrack_buckets;
  const extension = extensionAttached({
    acct: tracker.sysctl.nf_conntrack_acct,
    timestamp: tracker.sysctl.nf_conntrack_timestamp,
    events: tracker.sysctl.nf_conntrack_events,
    listener: opts.eventListener === true || (opts.onEvent !== undefined && opts.onEvent !== null),
  });
  const peakEntries = Math.max(peak, tracker.peak);
  const warnings: string[] = [];
  for (const [link, frames] of [...unsupportedLinks].sort((a, b) => a[0] - b[0])) {
    warnings.push(`${num(frames)} frames of link type ${link} skipped: ctlab decodes link types ${SUPPORTED_LINK_TYPES.join(", ")}`);
  }
  if (backwards > 0)
    warnings.push(`${num(backwards)} records have a timestamp earlier than the record before (merged or reordered capture?): timeouts ran on the later time`);
  return {
    input: opts.name ?? (typeof input === "string" ? input : "-"),
    format: source.format,
    clock: opts.clock ?? "capture",
    interrupted,
    capture: {
      records: source.records,
      bytes: source.bytes,
      first: ts(source.firstTs),
      last: ts(source.lastTs),
      link_types: source.linkTypes,
      unsupported_link_types: [...unsupportedLinks].sort((a, b) => a[0] - b[0]).map(([link_type, frames]) => ({ link_type, frames })),
      backwards_timestamps: backwards,
    },
    packets: {
      total,
      tracked,
      new: newP,
      established: est,
      related: rel,
      invalid: inv,
      untracked: untr,
      dropped,
      non_ip: nonIp,
      malformed,
      fragments: source.fragments?.fragments ?? 0,
      reassembled: source.fragments?.reassembled ?? 0,
      invalid_reasons: tracker.stats.reasons(),
      checksums: {
        ipv4_bad: source.ipv4ChecksumBad,
        ipv4_zero: source.ipv4ChecksumZero,
        offloaded: tracker.stats.checksumOffloaded,
      },
    },
    entries: { total: tracker.count, by_protocol: byProtocol, assured, unreplied, tcp_established_long: establishedLong },
    census: censusOut,
    stats,
    peak_entries: peakEntries,
    peak_time: peakTime,
    max_entries: maxEntries,
    buckets,
    memory: {
      kernel: kernelMemory(tracker.count, buckets, extension),
      kernel_peak: kernelMemory(peakEntries, buckets, extension),
      kernel_full: maxEntries === 0 ? null : kernelMemory(maxEntries, buckets, extension),
      ctlab_bytes: tracker.memoryBytes,
    },
    log,
    error:
      source.error && !(interrupted && source.error.reason === "truncated-record")
        ? { message: source.error.message, byte_offset: source.error.byteOffset }
        : null,
    warnings,
    elapsed_ms: Math.round(elapsed),
    sysctls: changed,
  };
}

function num(n: number): string {
  return n.toLocaleString("en-US");
}

/** Summary key of a protocol: the kernel tracker's name, or the number for the generic tracker. */
function protoName(proto: number, family: 4 | 6): string {
  return trackedProtoName(proto) ?? `unknown(${proto})${family === 6 ? "/ipv6" : ""}`;
}
