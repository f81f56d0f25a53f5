/**
 * What one pass over the live table leaves: counts by protocol and state,
 * UNREPLIED vs ASSURED, idle ages (from the remaining timeout against the
 * state's timeout), accounting and timestamp figures, NAT, and the talkers.
 * One `add()` per entry, no allocation per entry beyond the map keys of new
 * talkers, so a million entries pass in constant memory per entry.
 */
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

/** The /24 (IPv4) or /64 (IPv6) network of an address as conntrack prints it. */
export function networkOf(addr: string): string {
  if (!addr.includes(":")) {
    const last = addr.lastIndexOf(".");
    return last < 0 ? addr : `${addr.slice(0, last)}.0/24`;
  }
  const groups = expandV6(addr);
  if (groups === undefined) return addr;
  const head = groups.slice(0, 4).map((g) => g.toLowerCase().replace(/^0+(?=.)/, ""));
  // RFC 5952 text: the trailing zero groups join the "::" the host part already needs.
  while (head.length > 0 && head[head.length - 1] === "0") head.pop();
  return `${head.join(":")}::/64`;
}

function expandV6(a: string): string[] | undefined {
  const dbl = a.indexOf("::");
  let parts: string[];
  if (dbl >= 0) {
    const l = a.slice(0, dbl).split(":").filter((x) => x !== "");
    const r = a.slice(dbl + 2).split(":").filter((x) => x !== "");
    if (l.length + r.length > 7) return undefined;
    parts = [...l, ...Array<string>(8 - l.length - r.length).fill("0"), ...r];
  } else parts = a.split(":");
  return parts.length === 8 ? parts : undefined;
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
  readonly sources = new KeyCounter();
  readonly destinations = new KeyCounter();
  /** "proto/port" of the original direction's destination port. */
  readonly dports = new KeyCounter();
  readonly networks = new KeyCounter();
  /** Half-open TCP (SYN_SENT / SYN_RECV without a reply seen or not assured): sources and targets. */
  halfOpen = 0;
  readonly halfOpenSources = new KeyCounter();
  readonly halfOpenTargets = new KeyCounter();
  /** ASSURED entries per source network (connection floods). */
  readonly assuredNetworks = new KeyCounter();
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
    this.add(this.#entry);
  }

  /** Feeds one parsed entry. */
  add(e: CtEntry): void {
    this.total++;
    if (e.family === 4) this.v4++;
    else this.v6++;
    if (e.unreplied) this.unreplied++;
    if (e.assured) this.assured++;
    if (e.offload) this.offloaded++;
    if (e.natted) this.natted++;
    const key = `${e.proto} ${stateKey(e)}`;
    let sc = this.byProtoState.get(key);
    if (sc === undefined) {
      sc = { entries: 0, unreplied: 0, assured: 0, idle: new Array<number>(IDLE_BUCKETS.length + 1).fill(0), maxIdle: 0, idleSum: 0 };
      this.byProtoState.set(key, sc);
    }
    sc.entries++;
    if (e.unreplied) sc.unreplied++;
    if (e.assured) sc.assured++;
    let full = this.#timeout(timeoutSysctl(e));
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
    const net = networkOf(e.src);
    const dport = e.dport >= 0 ? `${e.proto}/${e.dport}` : e.proto;
    this.sources.add(e.src);
    this.destinations.add(e.dst);
    this.dports.add(dport);
    this.networks.add(net);
    if (e.natted) this.natByDport.add(dport);
    if (e.assured) this.assuredNetworks.add(net);
    if (e.proto === "tcp" && (e.state === "SYN_SENT" || e.state === "SYN_RECV" || e.state === "SYN_SENT2") && !e.assured) {
      this.halfOpen++;
      this.halfOpenSources.add(e.src);
      this.halfOpenTargets.add(e.dport >= 0 ? `${e.dst}:${e.dport}` : e.dst);
    }
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
