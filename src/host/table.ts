/**
 * What one pass over the live table leaves: counts by protocol and state,
 * UNREPLIED vs ASSURED, idle ages (from the remaining timeout against the
 * state's timeout), accounting and timestamp figures, NAT, and the talkers.
 * One `add()` per entry, no allocation per entry beyond the map keys of new
 * talkers, so a million entries pass in constant memory per entry.
 */
import { Census } from "../conntrack/census.js";
import type { CensusResult } from "../conntrack/census.js";
import { ipToWords } from "../packet/addr.js";
import type { BadLine } from "./parse.js";
import { CtEntry, badLine, isNoiseLine, parseCtEntry } from "./parse.js";

/** Upper bounds (seconds, exclusive) of the idle histogram's buckets; the last is open. */
export const IDLE_BUCKETS: readonly number[] = [10, 60, 600, 3600, 6 * 3600, 86400];
export const IDLE_BUCKET_LABELS: readonly string[] = ["<10s", "10s-1m", "1m-10m", "10m-1h", "1h-6h", "6h-1d", ">=1d"];

/** The state an entry is reported under: the protocol's state, or UNREPLIED/REPLIED/ASSURED for stateless protocols. */
export function stateKey(e: CtEntry): string {
  if (e.state !== "") return e.state;
  return e.assured ? "ASSURED" : e.unreplied ? "UNREPLIED" : "REPLIED";
}

const TCP_TIMEOUT: Readonly<Record<string, string>> = {
  SYN_SENT: "nf_conntrack_tcp_timeout_syn_sent",
  SYN_SENT2: "nf_conntrack_tcp_timeout_syn_sent",
  SYN_RECV: "nf_conntrack_tcp_timeout_syn_recv",
  ESTABLISHED: "nf_conntrack_tcp_timeout_established",
  FIN_WAIT: "nf_conntrack_tcp_timeout_fin_wait",
  CLOSE_WAIT: "nf_conntrack_tcp_timeout_close_wait",
  LAST_ACK: "nf_conntrack_tcp_timeout_last_ack",
  TIME_WAIT: "nf_conntrack_tcp_timeout_time_wait",
  CLOSE: "nf_conntrack_tcp_timeout_close",
};

/** Kernel defaults of the timeouts, for snapshots without sysctls. */
export const DEFAULT_TIMEOUTS: Readonly<Record<string, number>> = {
  nf_conntrack_generic_timeout: 600,
  nf_conntrack_tcp_timeout_syn_sent: 120,
  nf_conntrack_tcp_timeout_syn_recv: 60,
  nf_conntrack_tcp_timeout_established: 432000,
  nf_conntrack_tcp_timeout_fin_wait: 120,
  nf_conntrack_tcp_timeout_close_wait: 60,
  nf_conntrack_tcp_timeout_last_ack: 30,
  nf_conntrack_tcp_timeout_time_wait: 120,
  nf_conntrack_tcp_timeout_close: 10,
  nf_conntrack_tcp_timeout_unacknowledged: 300,
  nf_conntrack_tcp_timeout_max_retrans: 300,
  nf_conntrack_udp_timeout: 30,
  nf_conntrack_udp_timeout_stream: 120,
  nf_conntrack_icmp_timeout: 30,
  nf_conntrack_icmpv6_timeout: 30,
  nf_conntrack_gre_timeout: 30,
  nf_conntrack_gre_timeout_stream: 180,
  nf_conntrack_sctp_timeout_established: 210,
};

/** The sysctl whose timeout the entry's state was last given, or undefined when it cannot be told. */
export function timeoutSysctl(e: CtEntry): string | undefined {
  switch (e.proto) {
    case "tcp":
      return TCP_TIMEOUT[e.state];
    case "udp":
    case "udplite":
      // Replied and older than 2 s: the stream timeout (and ASSURED); else the short one.
      return e.assured ? "nf_conntrack_udp_timeout_stream" : "nf_conntrack_udp_timeout";
    case "icmp":
      return "nf_conntrack_icmp_timeout";
    case "icmpv6":
      return "nf_conntrack_icmpv6_timeout";
    case "gre":
      return e.unreplied ? "nf_conntrack_gre_timeout" : "nf_conntrack_gre_timeout_stream";
    case "sctp":
      return e.state === "" ? undefined : `nf_conntrack_sctp_timeout_${e.state.toLowerCase()}`;
    case "dccp":
      return undefined;
    default:
      return "nf_conntrack_generic_timeout";
  }
}

export interface KeyCount {
  readonly key: string;
  readonly entries: number;
  readonly share: number;
}

/** Counts keys; memory grows with distinct keys only. */
export class KeyCounter {
  readonly #m = new Map<string, number>();
  add(k: string): void {
    this.#m.set(k, (this.#m.get(k) ?? 0) + 1);
  }
  get distinct(): number {
    return this.#m.size;
  }
  get(k: string): number {
    return this.#m.get(k) ?? 0;
  }
  /** The `n` largest, largest first (ties by key), shares of `total`. */
  top(n: number, total: number): KeyCount[] {
    const all = [...this.#m.entries()];
    all.sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    return all.slice(0, n).map(([key, entries]) => ({ key, entries, share: total > 0 ? entries / total : 0 }));
  }
}

/** A dotted quad without allocating (the common case); anything else through ipToWords. */
function fastWords(text: string, out: Uint32Array): 4 | 6 {
  let word = 0;
  let part = 0;
  let digitsInPart = 0;
  let parts = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 46 /* . */) {
      if (digitsInPart === 0 || part > 255) return ipToWords(text, out);
      word = word * 256 + part;
      part = 0;
      digitsInPart = 0;
      parts++;
    } else if (c >= 48 && c <= 57 && digitsInPart < 3) {
      part = part * 10 + (c - 48);
      digitsInPart++;
    } else return ipToWords(text, out);
  }
  if (parts !== 3 || digitsInPart === 0 || part > 255) return ipToWords(text, out);
  out[0] = word * 256 + part;
  out[1] = 0;
  out[2] = 0;
  out[3] = 0;
  return 4;
}

/** Per (protocol, state) figures. */
export interface StateCount {
  entries: number;
  unreplied: number;
  assured: number;
  /** Idle histogram (IDLE_BUCKETS). */
  idle: number[];
  /** Largest idle age seen, seconds. */
  maxIdle: number;
  /** Sum of idle ages, seconds (for the mean). */
  idleSum: number;
  /** The state's timeout (the sysctl its entries were given), seconds; null when it cannot be told. */
  timeoutSeconds: number | null;
}

export interface TableOptions {
  /** Sysctl values (timeouts) of the namespace; defaults fill gaps. */
  readonly sysctls: Readonly<Record<string, number>>;
  /** Entries idle at least this long in ESTABLISHED count as orphans. Default 3600 s. */
  readonly orphanIdleSeconds?: number;
  /** Source name for bad lines. */
  readonly source?: string;
}

/** Accumulates one pass over the table. */
export class TableCensus {
  readonly opts: TableOptions;
  readonly #entry = new CtEntry();
  readonly #ce = {
    family: 4 as 4 | 6,
    proto: 0,
    state: "",
    unreplied: false,
    assured: false,
    timeoutSeconds: 0,
    src: new Uint32Array(4),
    dst: new Uint32Array(4),
    sport: 0,
    dport: 0,
  };
  #result: { n: number; all: CensusResult; halfOpen: CensusResult; assured: CensusResult } | undefined;
  #lineNo = 0;
  total = 0;
  unreplied = 0;
  assured = 0;
  natted = 0;
  offloaded = 0;
  /** TCP entries whose remaining time is under the unacknowledged-data cap (idle age taken against the cap). */
  capped = 0;
  /** ESTABLISHED entries idle at least orphanIdleSeconds. */
  orphans = 0;
  /** Oldest idle ESTABLISHED entry, seconds (-1 when none). */
  oldestIdleEstablished = -1;
  /** Entries whose delta-time (age since creation) is known; the oldest age. */
  withTimestamp = 0;
  oldestAge = -1;
  /** Entries with accounting, and their packet/byte totals. */
  withAcct = 0;
  packets = 0;
  bytes = 0;
  readonly byProtoState = new Map<string, StateCount>();
  /** Who fills the table: the census module the replay summary uses (src/conntrack/census.ts). */
  readonly census = new Census();
  /** The same for half-open TCP (SYN_SENT / SYN_RECV, not assured) and for ASSURED entries. */
  readonly halfOpenCensus = new Census();
  readonly assuredCensus = new Census();
  halfOpen = 0;
  /** Entries per "proto/port" class (a small key space: what a NOTRACK of each class would free). */
  readonly dports = new KeyCounter();
  /** NATed entries per "proto/dport" (NAT needs tracking: these cannot be NOTRACKed). */
  readonly natByDport = new KeyCounter();
  /** Entries per family. */
  v4 = 0;
  v6 = 0;
  readonly bad: BadLine[] = [];
  badCount = 0;

  constructor(opts: TableOptions) {
    this.opts = opts;
  }

  #timeout(name: string | undefined): number | undefined {
    if (name === undefined) return undefined;
    return this.opts.sysctls[name] ?? DEFAULT_TIMEOUTS[name];
  }

  /** Feeds one line of `conntrack -L` / /proc/net/nf_conntrack. */
  line(text: string): void {
    this.#lineNo++;
    if (isNoiseLine(text)) return;
    const why = parseCtEntry(text, this.#entry);
    if (why !== undefined) {
      this.badCount++;
      if (this.bad.length < 20) this.bad.push(badLine(this.opts.source ?? "conntrack -L", this.#lineNo, why, text));
      return;
    }
    const e = this.#entry;
    const ce = this.#ce;
    try {
      ce.family = fastWords(e.src, ce.src);
      fastWords(e.dst, ce.dst);
    } catch {
      this.badCount++;
      if (this.bad.length < 20) this.bad.push(badLine(this.opts.source ?? "conntrack -L", this.#lineNo, `bad address "${e.src}" or "${e.dst}"`, text));
      return;
    }
    this.add(e);
  }

  /** Feeds one parsed entry (its addresses already in the census words by line()). */
  add(e: CtEntry): void {
    this.#result = undefined;
    this.total++;
    if (e.family === 4) this.v4++;
    else this.v6++;
    if (e.unreplied) this.unreplied++;
    if (e.assured) this.assured++;
    if (e.offload) this.offloaded++;
    if (e.natted) this.natted++;
    const key = `${e.proto} ${stateKey(e)}`;
    let full = this.#timeout(timeoutSysctl(e));
    let sc = this.byProtoState.get(key);
    if (sc === undefined) {
      sc = {
        entries: 0,
        unreplied: 0,
        assured: 0,
        idle: new Array<number>(IDLE_BUCKETS.length + 1).fill(0),
        maxIdle: 0,
        idleSum: 0,
        timeoutSeconds: full ?? null,
      };
      this.byProtoState.set(key, sc);
    }
    sc.entries++;
    if (e.unreplied) sc.unreplied++;
    if (e.assured) sc.assured++;
    // TCP caps the timeout at nf_conntrack_tcp_timeout_unacknowledged (or
    // _max_retrans) while data is unacknowledged: a remaining time under the
    // cap means the cap was given, far more likely than an entry idle for
    // almost the whole 5-day timeout. Such ages are counted as `capped`.
    if (e.proto === "tcp" && full !== undefined) {
      const cap = Math.min(this.#timeout("nf_conntrack_tcp_timeout_unacknowledged") ?? 300, this.#timeout("nf_conntrack_tcp_timeout_max_retrans") ?? 300);
      if (full > cap && e.timeout <= cap) {
        full = cap;
        this.capped++;
      }
    }
    const idle = full === undefined ? 0 : Math.max(0, full - e.timeout);
    let b = 0;
    while (b < IDLE_BUCKETS.length && idle >= (IDLE_BUCKETS[b] as number)) b++;
    (sc.idle[b] as number)++;
    sc.idleSum += idle;
    if (idle > sc.maxIdle) sc.maxIdle = idle;
    if (e.proto === "tcp" && e.state === "ESTABLISHED") {
      if (idle > this.oldestIdleEstablished) this.oldestIdleEstablished = idle;
      if (idle >= (this.opts.orphanIdleSeconds ?? 3600)) this.orphans++;
    }
    if (e.deltaTime >= 0) {
      this.withTimestamp++;
      if (e.deltaTime > this.oldestAge) this.oldestAge = e.deltaTime;
    }
    if (e.packetsOrig >= 0) {
      this.withAcct++;
      this.packets += e.packetsOrig + Math.max(0, e.packetsReply);
      this.bytes += e.bytesOrig + Math.max(0, e.bytesReply);
    }
    const ce = this.#ce;
    ce.proto = e.protonum;
    ce.state = e.state;
    ce.unreplied = e.unreplied;
    ce.assured = e.assured;
    ce.timeoutSeconds = e.timeout;
    ce.sport = Math.max(0, e.sport);
    ce.dport = Math.max(0, e.dport);
    this.census.add(ce);
    const dport = e.dport >= 0 ? `${e.proto}/${e.dport}` : e.proto;
    this.dports.add(dport);
    if (e.natted) this.natByDport.add(dport);
    if (e.assured) this.assuredCensus.add(ce);
    if (e.proto === "tcp" && (e.state === "SYN_SENT" || e.state === "SYN_RECV" || e.state === "SYN_SENT2") && !e.assured) {
      this.halfOpen++;
      this.halfOpenCensus.add(ce);
    }
  }

  /** The census results (top `n` of each dimension), computed once per table. */
  results(n: number): { all: CensusResult; halfOpen: CensusResult; assured: CensusResult } {
    if (this.#result === undefined || this.#result.n !== n) {
      this.#result = { n, all: this.census.result(n), halfOpen: this.halfOpenCensus.result(1), assured: this.assuredCensus.result(1) };
    }
    return this.#result;
  }

  /** Entries of a protocol in any state. */
  protoCount(proto: string): number {
    let n = 0;
    for (const [k, v] of this.byProtoState) if (k.startsWith(`${proto} `)) n += v.entries;
    return n;
  }

  stateCount(proto: string, state: string): StateCount | undefined {
    return this.byProtoState.get(`${proto} ${state}`);
  }
}
