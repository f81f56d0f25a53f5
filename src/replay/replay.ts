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
import { CT_STATE, IPS } from "../conntrack/constants.js";
import { forEachPacket } from "../packet/source.js";
import type { SourceSummary } from "../packet/source.js";
import { FIRST_L4_REASON } from "../packet/decode.js";
import type { PacketView } from "../packet/view.js";
import { defaultSysctls, SYSCTLS } from "../conntrack/sysctl.js";
import type { ReplaySummary } from "../report/summary.js";
import type { HostModel } from "../firewall/host.js";
import type { Ruleset } from "../firewall/model.js";
import { NetfilterPath } from "../firewall/path.js";
import type { PathResult } from "../firewall/path.js";
import { DROP_REASON } from "../firewall/path.js";
import { VERDICT } from "../firewall/eval.js";

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
  /** Receives each event line as `conntrack -E -o extended` prints it. */
  onEvent?: ((line: string) => void) | null;
  /** Prefix event lines with `[sec.usec]\t` like `conntrack -E -o timestamp`. */
  eventTimestamps?: boolean;
  /** Called every `progressEvery` records with the count so far. */
  onProgress?: ((records: number, bytes: number) => void) | null;
  progressEvery?: number;
  /** Name of the input in messages (defaults to the path, or "-"). */
  name?: string;
  /** Run every packet through this ruleset's packet path instead of conntrack alone. */
  firewall?: FirewallOptions | null;
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

/**
 * Replays a capture through a fresh tracker.
 * @param input path, "-" for standard input, a readable stream or the bytes
 * @throws SysctlError for bad sysctls (before reading anything); a corrupt
 *   capture does not throw: the summary carries the error and the results so far
 */
export async function replay(input: string | NodeJS.ReadableStream | Uint8Array, opts: ReplayOptions = {}): Promise<ReplayRun> {
  const clock = new CaptureClock(opts.clock === "frozen");
  const log: { time: number; line: string }[] = [];
  const tracker = new Tracker({
    sysctls: opts.sysctls ?? {},
    clock,
    ...(opts.seed !== undefined ? { seed: opts.seed } : {}),
    events: opts.onEvent ? new LineEvents(opts.onEvent, opts.eventTimestamps === true) : null,
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
  let nonIp = 0;
  let total = 0;
  let peak = 0;
  let peakTime: number | null = null;
  const malformed: Record<string, number> = {};
  const progress = opts.onProgress ?? null;
  const every = opts.progressEvery ?? 65536;
  let bytes = 0;

  const fw = opts.firewall ?? null;
  const path = fw
    ? new NetfilterPath({
        ruleset: fw.ruleset,
        tracker,
        host: fw.host,
        ...(fw.enableHooks === true ? { enableHooks: true } : {}),
        ...(fw.seed !== undefined ? { seed: fw.seed } : opts.seed !== undefined ? { seed: opts.seed } : {}),
      })
    : null;
  const onPacket = fw?.onPacket ?? null;
  let ipIndex = 0;

  const handler = (view: PacketView): void => {
    total++;
    bytes += view.capLen;
    if (progress !== null && total % every === 0) progress(total, bytes);
    // Frames that never reach conntrack: not IP, or refused by the IP layer.
    if (view.family === 0 || (view.reason !== 0 && view.reason < FIRST_L4_REASON)) {
      nonIp++;
      return;
    }
    clock.set(view);
    let s: number;
    if (path !== null) {
      path.run(view, clock.ms);
      const r = path.result;
      if (onPacket !== null) onPacket(ipIndex, view, r);
      ipIndex++;
      // Packets conntrack never saw (no hooks for the family) are in the path's stats only.
      if (r.state === 0 && r.dropReason !== DROP_REASON.CONNTRACK) return;
      s = r.verdict === VERDICT.DROP && (r.dropReason === DROP_REASON.CONNTRACK || r.dropReason === DROP_REASON.CONFIRM) ? CT_DROPPED : r.state;
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
    }
  };

  const started = performance.now();
  // nf_defrag is registered together with conntrack: without it the rules see fragments.
  const defrag = opts.defrag !== false && (path === null || path.conntrackOn.ipv4 || path.conntrackOn.ipv6);
  const source = await forEachPacket(input as string, handler, {
    defrag,
    ...(opts.name !== undefined ? { name: opts.name } : {}),
  });
  const elapsed = performance.now() - started;

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
  for (const e of tracker.entries()) {
    const proto = protoName(e.proto, e.family);
    const state = e.stateName;
    if (proto !== lastProto || state !== lastState) {
      let m = counts.get(proto);
      if (m === undefined) counts.set(proto, (m = new Map()));
      let c = m.get(state);
      if (c === undefined) m.set(state, (c = { n: 0 }));
      last = c;
      lastProto = proto;
      lastState = state;
    }
    last.n++;
    const st = e.status;
    if (st & IPS.ASSURED) assured++;
    if (!(st & IPS.SEEN_REPLY)) unreplied++;
  }
  const byProtocol: Record<string, Record<string, number>> = {};
  for (const [proto, m] of counts) {
    const o: Record<string, number> = (byProtocol[proto] = {});
    for (const [state, c] of m) o[state] = (o[state] ?? 0) + c.n;
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

  const summary: ReplaySummary = {
    input: opts.name ?? (typeof input === "string" ? input : "-"),
    format: source.format ?? "",
    clock: opts.clock ?? "capture",
    capture: {
      records: source.records,
      bytes: source.bytes,
      first: ts(source.firstTs),
      last: ts(source.lastTs),
      linkTypes: source.linkTypes,
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
      nonIp,
      malformed,
      fragments: source.fragments?.fragments ?? 0,
      reassembled: source.fragments?.reassembled ?? 0,
      invalidReasons: tracker.stats.reasons(),
    },
    entries: { total: tracker.count, byProtocol, assured, unreplied },
    stats,
    peak_entries: Math.max(peak, tracker.peak),
    peak_time: peakTime,
    max_entries: tracker.sysctl.nf_conntrack_max,
    buckets: tracker.sysctl.nf_conntrack_buckets,
    memory_bytes: tracker.memoryBytes,
    log,
    error: source.error ? { message: source.error.message, byteOffset: source.error.byteOffset } : null,
    elapsed_ms: Math.round(elapsed),
    sysctls: changed,
  };
  return { tracker, summary, source, path };
}

function protoName(proto: number, family: 4 | 6): string {
  switch (proto) {
    case 6:
      return "tcp";
    case 17:
      return "udp";
    case 136:
      return "udplite";
    case 1:
      return "icmp";
    case 58:
      return "icmpv6";
    case 132:
      return "sctp";
    case 47:
      return "gre";
    default:
      return `unknown(${proto})${family === 6 ? "/ipv6" : ""}`;
  }
}
