/**
 * The doctor's diagnosis: pure functions of a Snapshot. Nothing here reads
 * the host or the clock; the same snapshot always gives the same report.
 */
import { analyzeRuleset } from "../firewall/analysis/analyze.js";
import type { AnalysisResult } from "../firewall/analysis/analyze.js";
import { boxesOverlap, boxOf, mirrorBox } from "../firewall/analysis/box.js";
import { notrackRulesFor } from "../firewall/analysis/notrack.js";
import { parseSelector } from "../firewall/analysis/selector.js";
import { loadRuleset } from "../firewall/load.js";
import { BUCKET_BYTES, DEFAULT_CONNTRACK_OBJ_SIZE, kernelMemoryBytes } from "../sim/model.js";
import type { SteadyState } from "./forecast.js";
import { steadyStateFromCounters, steadyStateFromTable } from "./forecast.js";
import { uncountedStats } from "./parse.js";
import type { Snapshot } from "./snapshot.js";
import type { KeyCount } from "./table.js";
import { IDLE_BUCKET_LABELS } from "./table.js";

export type Severity = "critical" | "warning" | "info";

export interface Finding {
  readonly id: string;
  readonly severity: Severity;
  readonly title: string;
  /** Figures that support the finding. */
  readonly evidence: Readonly<Record<string, number | string>>;
  readonly detail: string;
}

export interface FileChange {
  readonly path: string;
  readonly content: string;
}

export interface Recommendation {
  readonly id: string;
  readonly title: string;
  readonly commands: readonly string[];
  readonly files: readonly FileChange[];
  /** Extra kernel memory the change may cost (negative: frees), bytes; null when none. */
  readonly memory_bytes: number | null;
  readonly notes: readonly string[];
}

export interface ProtoStateRow {
  readonly protocol: string;
  readonly state: string;
  readonly entries: number;
  readonly unreplied: number;
  readonly assured: number;
}

export interface IdleRow {
  readonly protocol: string;
  readonly state: string;
  readonly timeout_seconds: number | null;
  readonly buckets: Readonly<Record<string, number>>;
  readonly max_seconds: number;
  readonly mean_seconds: number;
}

export interface TrackedClass {
  /** The class as a selector: "udp dport 53". */
  readonly class: string;
  readonly entries: number;
  readonly share: number;
  /** Entries a NOTRACK of the class would free now (NATed ones cannot be untracked). */
  readonly notrack_frees: number;
  /** Rules of the live ruleset that make the class tracked ("position: text"). */
  readonly tracking_rules: readonly string[];
  /** NOTRACK rules for both directions in the ruleset's syntax, when the ruleset was read. */
  readonly notrack_rules: string | null;
  readonly warnings: readonly string[];
}

export interface Forecast {
  readonly interval_seconds: number;
  readonly fill_rate_per_second: number;
  /** null when the table is not filling. */
  readonly seconds_until_full: number | null;
  readonly insert_rate_per_second: number | null;
  readonly drop_rate_per_second: number | null;
  readonly early_drop_rate_per_second: number | null;
  readonly insert_failed_rate_per_second: number | null;
  /** The steady-state model's entries (the report's steady_state), null when it has no rates. */
  readonly steady_state_entries: number | null;
}

export interface DoctorReport {
  readonly netns: string;
  readonly netns_inode: number | null;
  readonly taken_at: string;
  readonly conntrack_loaded: boolean;
  readonly entries: number;
  /** Entries the table listing showed (may differ from `entries` by what changed while it ran). */
  readonly entries_listed: number | null;
  readonly limit: number | null;
  readonly usage: number | null;
  /** Whether this namespace may change nf_conntrack_max (false in a child namespace or a read-only /proc/sys). */
  readonly limit_writable: boolean | null;
  readonly buckets: number | null;
  /** Each entry sits in two chains (original and reply tuple): 2 × entries ÷ buckets. */
  readonly average_chain_length: number | null;
  readonly kernel_memory_bytes: { readonly now: number; readonly at_limit: number | null; readonly per_entry: number; readonly buckets: number };
  readonly host_memory_bytes: number | null;
  readonly unreplied: number;
  readonly assured: number;
  readonly natted: number;
  readonly expectations: number | null;
  readonly by_protocol_state: readonly ProtoStateRow[];
  readonly top: {
    readonly sources: readonly KeyCount[];
    readonly destinations: readonly KeyCount[];
    readonly dports: readonly KeyCount[];
    readonly networks: readonly KeyCount[];
  };
  readonly idle: readonly IdleRow[];
  readonly oldest_idle_established_seconds: number | null;
  readonly orphans: number;
  /** With nf_conntrack_timestamp=1: entries with a creation time, and the oldest age (seconds since creation). */
  readonly timestamps: { readonly entries: number; readonly oldest_age_seconds: number | null };
  /** With nf_conntrack_acct=1: entries with counters, and their packets and bytes (both directions). */
  readonly accounting: { readonly entries: number; readonly packets: number; readonly bytes: number };
  readonly stats: Readonly<Record<string, number>> | null;
  /** Counters of `stats` this kernel prints but does not count (`insert` on kernels that count it only for ctnetlink-made entries): their values are not facts. */
  readonly stats_not_counted: readonly string[];
  readonly table_full_log: { readonly lines: number; readonly first: string | null; readonly last: string | null };
  readonly forecast: Forecast | null;
  /** The simulator's steady-state model (src/sim/model.ts) fed with the live rates: how full the table gets if they go on. */
  readonly steady_state: SteadyState | null;
  readonly tracked_by: {
    readonly ruleset: string | null;
    readonly tracking_rules: number;
    readonly no_tracking: boolean | null;
    readonly classes: readonly TrackedClass[];
  };
  readonly findings: readonly Finding[];
  readonly recommendations: readonly Recommendation[];
  readonly problems: ReadonlyArray<{ readonly source: string; readonly kind: string; readonly message: string }>;
  readonly bad_lines: ReadonlyArray<{ readonly source: string; readonly line: number; readonly reason: string; readonly text: string }>;
}

export interface DiagnoseOptions {
  /** Entries in each top list. Default 10. */
  readonly top?: number;
  /** Thresholds (tests lower them for small tables). */
  readonly minEntries?: number;
}

function share(n: number, total: number): number {
  return total > 0 ? n / total : 0;
}

function pct(x: number): string {
  return `${(x * 100).toFixed(1)} %`;
}

function nextPow2(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

export function formatDuration(s: number): string {
  if (!Number.isFinite(s)) return "never";
  if (s < 60) return `${Math.round(s)} s`;
  if (s < 3600) return `${(s / 60).toFixed(1)} min`;
  if (s < 86400) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86400).toFixed(1)} d`;
}

export function formatBytesIEC(n: number): string {
  const a = Math.abs(n);
  if (a < 1024) return `${n} B`;
  if (a < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  if (a < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

/** A dports key ("udp/53", "icmp") as a firewall selector. */
function selectorOf(key: string): string | undefined {
  const m = /^(tcp|udp|sctp|udplite|dccp)\/(\d+)$/.exec(key);
  if (m !== null) return `${m[1] as string} dport ${m[2] as string}`;
  return undefined;
}

interface RulesetView {
  readonly label: string;
  readonly analysis: AnalysisResult;
  readonly rs: ReturnType<typeof loadRuleset>;
}

function loadLive(s: Snapshot, problems: Array<{ source: string; kind: string; message: string }>): RulesetView | undefined {
  const r = s.ruleset;
  if (r === undefined) return undefined;
  try {
    const rs = loadRuleset(r.text, { file: r.format === "nft-json" ? "nft -j list ruleset" : "iptables-save", format: r.format, allowUnsupported: true });
    return { label: r.format === "nft-json" ? "nft" : "iptables", analysis: analyzeRuleset(rs), rs };
  } catch (e) {
    problems.push({ source: "ruleset", kind: "failed", message: `The live ruleset could not be analysed: ${(e as Error).message}` });
    return undefined;
  }
}

const SYSCTL_FILE = "/etc/sysctl.d/90-conntrack.conf";
const MODPROBE_FILE = "/etc/modprobe.d/nf_conntrack.conf";

/** The doctor's report for one snapshot. */
export function diagnose(s: Snapshot, opts: DiagnoseOptions = {}): DoctorReport {
  const topN = opts.top ?? 10;
  const minEntries = opts.minEntries ?? 100;
  const t = s.table;
  const sys = s.sysctls;
  const problems = s.problems.map((p) => ({ source: p.source, kind: p.kind, message: p.message }));
  const entries = s.count ?? sys["nf_conntrack_count"] ?? t?.total ?? 0;
  const limit = sys["nf_conntrack_max"] ?? null;
  const buckets = sys["nf_conntrack_buckets"] ?? s.hashsize ?? null;
  const perEntry = s.slab?.objSize ?? DEFAULT_CONNTRACK_OBJ_SIZE;
  const bucketBytes = (buckets ?? 0) * BUCKET_BYTES;
  const usage = limit !== null && limit > 0 ? entries / limit : null;
  const modeMax = s.modes["nf_conntrack_max"];
  const limitWritable = modeMax === undefined ? null : (modeMax & 0o200) !== 0;
  const inChild = limitWritable === false;
  const stats = s.stats ?? null;
  const notCounted = uncountedStats(stats, s.count ?? s.sysctls["nf_conntrack_count"]);
  const total = t?.total ?? 0;
  // The kernel log is global: newer kernels name the namespace of each line,
  // but namespace inodes are reused once a namespace is gone. This
  // namespace's own drop counter settles it: with drop = 0 here, every
  // "table full" line came from another (or an earlier) namespace.
  const droppedHere = s.stats?.["drop"];
  const tableFull =
    droppedHere === 0 ? [] : s.tableFull.filter((l) => l.netnsInode === undefined || s.meta.netnsInode === undefined || l.netnsInode === s.meta.netnsInode);

  const byPS: ProtoStateRow[] = [];
  const idle: IdleRow[] = [];
  if (t !== undefined) {
    const rows = [...t.byProtoState.entries()].sort((a, b) => b[1].entries - a[1].entries || (a[0] < b[0] ? -1 : 1));
    for (const [k, v] of rows) {
      const [protocol, state] = k.split(" ") as [string, string];
      byPS.push({ protocol, state, entries: v.entries, unreplied: v.unreplied, assured: v.assured });
      const bucketsOut: Record<string, number> = {};
      IDLE_BUCKET_LABELS.forEach((l, i) => (bucketsOut[l] = v.idle[i] ?? 0));
      idle.push({
        protocol,
        state,
        timeout_seconds: v.timeoutSeconds,
        buckets: bucketsOut,
        max_seconds: v.maxIdle,
        mean_seconds: v.entries > 0 ? v.idleSum / v.entries : 0,
      });
    }
  }

  // The steady state: per-state flows from the listing, else one flow from two samples of the counters.
  let steady: SteadyState | null = t !== undefined && t.total > 0 ? steadyStateFromTable(t, limit) : null;
  // Forecast from two samples.
  let forecast: Forecast | null = null;
  if (s.meta.firstTakenAtMs !== undefined && s.firstCount !== undefined && s.count !== undefined) {
    const dt = (s.meta.takenAtMs - s.meta.firstTakenAtMs) / 1000;
    if (dt > 0) {
      const fill = (s.count - s.firstCount) / dt;
      const rate = (k: string): number | null => {
        const a = s.firstStats?.[k];
        const b = s.stats?.[k];
        return a === undefined || b === undefined || notCounted.includes(k) ? null : (b - a) / dt;
      };
      const ins = rate("insert");
      if (steady === null && ins !== null) steady = steadyStateFromCounters(s.count, ins, fill, limit);
      forecast = {
        interval_seconds: dt,
        fill_rate_per_second: fill,
        seconds_until_full: fill > 0 && limit !== null ? Math.max(0, (limit - s.count) / fill) : null,
        insert_rate_per_second: ins,
        drop_rate_per_second: rate("drop"),
        early_drop_rate_per_second: rate("early_drop"),
        insert_failed_rate_per_second: rate("insert_failed"),
        steady_state_entries: steady?.entries ?? null,
      };
    }
  }

  const findings: Finding[] = [];
  const recs: Recommendation[] = [];
  const chainLen = buckets !== null && buckets > 0 ? (2 * entries) / buckets : null;
  const view = s.conntrackLoaded ? loadLive(s, problems) : undefined;
  const classes: TrackedClass[] = [];

  if (!s.conntrackLoaded) {
    findings.push({
      id: "conntrack-not-in-use",
      severity: "info",
      title: "Connection tracking is not in use here",
      evidence: { "/proc/sys/net/netfilter/nf_conntrack_max": "absent" },
      detail:
        "nf_conntrack is not loaded in this kernel/namespace: no table can fill, nothing to tune — good news. " +
        "It is loaded by the first rule that needs it (ct state / -m conntrack / -m state, NAT, a helper) or by `modprobe nf_conntrack`.",
    });
    return finish();
  }

  // --- Table usage and drops
  if (usage !== null && limit !== null) {
    if (usage >= 0.9 || (usage >= 0.75 && entries >= minEntries)) {
      findings.push({
        id: "table-nearly-full",
        severity: usage >= 0.9 ? "critical" : "warning",
        title: `The table is ${pct(usage)} full`,
        evidence: { entries, limit, usage },
        detail: "New connections are dropped (or evict unassured ones) once the table is full.",
      });
    }
  }
  if (steady !== null && limit !== null && entries >= minEntries && steady.entries >= limit) {
    const grows = [...steady.by_state].sort((a, b) => b.entries - b.entries_now - (a.entries - a.entries_now))[0];
    findings.push({
      id: "forecast-full",
      severity: steady.seconds_until_full !== null && steady.seconds_until_full < 3600 ? "critical" : "warning",
      title: `At the current rates the table fills: ${steady.entries} entries expected, nf_conntrack_max is ${limit}`,
      evidence: {
        steady_state_entries: steady.entries,
        limit,
        basis: steady.basis,
        ...(steady.seconds_until_full !== null ? { seconds_until_full: steady.seconds_until_full } : {}),
        ...(grows !== undefined && grows.entries > grows.entries_now ? { growing: `${grows.protocol} ${grows.state}`, growing_to: grows.entries } : {}),
      },
      detail:
        "The simulator's steady-state model (Little's law per state: entries entering it per second × its timeout), fed with the rates this table shows, reaches the limit. " +
        "Shorten the growing state's timeout, stop the traffic that feeds it, or size the table for it.",
    });
  }
  const drop = stats?.["drop"] ?? 0;
  const earlyDrop = stats?.["early_drop"] ?? 0;
  if (drop > 0 || tableFull.length > 0) {
    findings.push({
      id: "table-full-drops",
      severity: "critical",
      title: "Packets were dropped because the table was full",
      evidence: {
        drop,
        kernel_log_lines: tableFull.length,
        ...(tableFull[0] ? { first_logged: tableFull[0].time } : {}),
        ...(tableFull.length ? { last_logged: tableFull[tableFull.length - 1]?.time ?? "" } : {}),
        ...(forecast !== null && forecast.drop_rate_per_second !== null ? { drop_per_second: forecast.drop_rate_per_second } : {}),
      },
      detail: '`conntrack -S` drop counts new connections refused; the kernel logs "nf_conntrack: table full, dropping packet" (rate limited).',
    });
  }
  if (earlyDrop > 0) {
    findings.push({
      id: "early-drops",
      severity: "warning",
      title: "Unassured entries were evicted to make room (early_drop)",
      evidence: {
        early_drop: earlyDrop,
        ...(forecast !== null && forecast.early_drop_rate_per_second !== null ? { early_drop_per_second: forecast.early_drop_rate_per_second } : {}),
      },
      detail: "The table reached nf_conntrack_max and the kernel freed not-yet-assured entries near the new one's bucket.",
    });
  }
  const insertFailed = stats?.["insert_failed"] ?? 0;
  const clash = stats?.["clash_resolve"] ?? 0;
  if (insertFailed > 0 || clash > 0) {
    findings.push({
      id: "insert-races",
      severity: insertFailed > 0 ? "warning" : "info",
      title: "Insert races (insert_failed / clash_resolve), not a full table",
      evidence: { insert_failed: insertFailed, clash_resolve: clash, ...(usage !== null ? { usage } : {}) },
      detail:
        "Two packets of one new flow were confirmed at once on two CPUs — typically a resolver sending A and AAAA queries from one socket through NAT. " +
        "clash_resolve counts races the kernel settled; insert_failed counts packets it dropped. Raising nf_conntrack_max does not help; " +
        "`options single-request-reopen` in resolv.conf, or NOTRACK for DNS where NAT is not needed, does.",
    });
  }
  if (limit !== null && buckets !== null && limit > 4 * buckets) {
    findings.push({
      id: "hash-too-small",
      severity: "warning",
      title: "The hash table is small for nf_conntrack_max",
      evidence: { limit, buckets, chain_length_at_limit: (2 * limit) / buckets },
      detail: "A full table would have long hash chains: every lookup walks them. The kernel default is one bucket per entry.",
    });
  }

  // --- Traffic shape (needs the table)
  if (t !== undefined && total > 0) {
    const res = t.results(topN);
    if (t.halfOpen >= minEntries && share(t.halfOpen, total) >= 0.2) {
      const srcs = res.halfOpen.sources.distinct;
      const target = res.halfOpen.destinations.top[0];
      const port = res.halfOpen.destination_ports.top[0];
      findings.push({
        id: "syn-flood",
        severity: "warning",
        title: `SYN flood: ${t.halfOpen} half-open TCP entries (${pct(share(t.halfOpen, total))}) from ${srcs} source(s)`,
        evidence: {
          half_open: t.halfOpen,
          share: share(t.halfOpen, total),
          distinct_sources: srcs,
          ...(target ? { top_destination: target.key, top_destination_share: target.share } : {}),
          ...(port ? { top_dport: port.key, top_dport_share: port.share } : {}),
        },
        detail:
          srcs >= 50
            ? "Many sources each with few SYNs, never answered or never completed: a spoofed or distributed flood. Each holds an entry for nf_conntrack_tcp_timeout_syn_sent/_syn_recv."
            : "Few sources opening many connections that never complete: a scan or a flood from few hosts.",
      });
      recs.push({
        id: "syn-flood",
        title: "Shorten the half-open timeouts and protect the target",
        commands: ["sysctl -w net.netfilter.nf_conntrack_tcp_timeout_syn_sent=30", "sysctl -w net.netfilter.nf_conntrack_tcp_timeout_syn_recv=30"],
        files: [{ path: SYSCTL_FILE, content: "net.netfilter.nf_conntrack_tcp_timeout_syn_sent = 30\nnet.netfilter.nf_conntrack_tcp_timeout_syn_recv = 30\n" }],
        memory_bytes: null,
        notes: [
          "SYNPROXY (nft synproxy / iptables -j SYNPROXY) answers SYNs with cookies before any entry is made; rate-limit new connections per source (nft meter / hashlimit).",
        ],
      });
    }
    const an = res.assured.source_networks;
    const topNet = an.top[0] === undefined ? undefined : { key: an.top[0].key, entries: an.top[0].entries, share: share(an.top[0].entries, total) };
    if (topNet !== undefined && topNet.entries >= minEntries && topNet.share >= 0.3) {
      findings.push({
        id: "connection-flood",
        severity: "warning",
        title: `Connection flood: ${topNet.entries} ASSURED entries (${pct(topNet.share)}) from ${topNet.key}`,
        evidence: { network: topNet.key, assured_entries: topNet.entries, share: topNet.share, networks_with_assured: an.distinct },
        detail:
          "Completed connections from few networks fill the table: a client opening far more connections than it needs, or an attack with real handshakes. Early drop cannot evict ASSURED entries.",
      });
      recs.push({
        id: "connection-flood",
        title: `Limit connections from ${topNet.key}`,
        commands: [`nft add rule inet filter input ip saddr ${topNet.key} ct count over 1000 drop`],
        files: [],
        memory_bytes: null,
        notes: ["ct count (nft) / -m connlimit (iptables) caps concurrent connections per source; pick the figure from the client's real need."],
      });
    }
    const est = t.stateCount("tcp", "ESTABLISHED");
    if (est !== undefined && t.orphans >= Math.min(10, minEntries) && share(t.orphans, est.entries) >= 0.1) {
      const estTimeout = sys["nf_conntrack_tcp_timeout_established"] ?? 432000;
      findings.push({
        id: "orphans",
        severity: share(t.orphans, total) >= 0.3 ? "warning" : "info",
        title: `${t.orphans} ESTABLISHED entries idle for over ${formatDuration(t.opts.orphanIdleSeconds ?? 3600)} (orphans)`,
        evidence: {
          orphans: t.orphans,
          share_of_established: share(t.orphans, est.entries),
          oldest_idle_seconds: t.oldestIdleEstablished,
          established_timeout: estTimeout,
        },
        detail:
          "Idle age = the state's timeout minus the remaining one. Connections whose FIN/RST was lost (or that ended behind another path) sit until nf_conntrack_tcp_timeout_established expires " +
          `(${formatDuration(estTimeout)} here).`,
      });
      const newT = Math.max(3600, Math.min(estTimeout, 86400));
      if (newT < estTimeout) {
        recs.push({
          id: "established-timeout",
          title: `Lower nf_conntrack_tcp_timeout_established to ${newT} s`,
          commands: [`sysctl -w net.netfilter.nf_conntrack_tcp_timeout_established=${newT}`],
          files: [{ path: SYSCTL_FILE, content: `net.netfilter.nf_conntrack_tcp_timeout_established = ${newT}\n` }],
          memory_bytes: -t.orphans * perEntry,
          notes: [
            "Entries idle longer than the new timeout expire; a long-lived idle connection through a stateful firewall or NAT then breaks unless its endpoints send keepalives more often than that.",
            "The value applies to entries as their next packet refreshes them; existing timers keep running.",
          ],
        });
      }
    }
  }

  // --- Why it is tracked, what NOTRACK would free
  if (t !== undefined && total > 0) {
    for (const c of t.results(topN).all.destination_ports.top) {
      const sel = selectorOf(c.key);
      if (sel === undefined) continue;
      const natted = t.natByDport.get(c.key);
      let trackingRules: string[] = [];
      let notrack: string | null = null;
      const warnings: string[] = [];
      if (view !== undefined) {
        try {
          const box = parseSelector(sel);
          trackingRules = view.analysis.trackingRules
            .filter((tr) => {
              const b = boxOf(tr.rule);
              return boxesOverlap(b, box) || boxesOverlap(b, mirrorBox(box));
            })
            .slice(0, 5)
            .map((tr) => `${tr.rule.table}/${tr.rule.chain}: ${tr.rule.text}`);
          const sug = notrackRulesFor(view.rs, sel);
          notrack = sug.text;
          for (const w of sug.warnings) warnings.push(w.message);
        } catch (e) {
          warnings.push((e as Error).message);
        }
      }
      classes.push({
        class: sel,
        entries: c.entries,
        share: c.share,
        notrack_frees: c.entries - natted,
        tracking_rules: trackingRules,
        notrack_rules: notrack,
        warnings,
      });
    }
    const dns = t.dports.get("udp/53");
    const dnsNat = t.natByDport.get("udp/53");
    if (dns - dnsNat >= minEntries && share(dns, total) >= 0.1) {
      const cls = classes.find((c) => c.class === "udp dport 53");
      findings.push({
        id: "notrack-dns",
        severity: "info",
        title: `DNS holds ${dns} entries (${pct(share(dns, total))}): it could run untracked`,
        evidence: { udp_dns_entries: dns, natted: dnsNat, share: share(dns, total), ...(cls ? { tracking_rules: cls.tracking_rules.length } : {}) },
        detail:
          "Each query makes an entry that lives nf_conntrack_udp_timeout(_stream) seconds. A resolver or authoritative server rarely needs state: NOTRACK both directions.",
      });
      recs.push(notrackRec("notrack-dns", "udp dport 53", dns - dnsNat, perEntry, cls, view, s));
    }
    for (const c of classes) {
      if (c.class === "udp dport 53" || !c.class.startsWith("udp ")) continue;
      if (c.notrack_frees >= minEntries && c.share >= 0.2) {
        findings.push({
          id: "notrack-udp",
          severity: "info",
          title: `${c.class} holds ${c.entries} entries (${pct(c.share)}): a NOTRACK candidate`,
          evidence: { class: c.class, entries: c.entries, share: c.share, natted: c.entries - c.notrack_frees },
          detail: "Stateless UDP services (syslog, NTP, metrics, game servers) gain nothing from tracking.",
        });
        recs.push(notrackRec(`notrack-${c.class.replace(/ /g, "-")}`, c.class, c.notrack_frees, perEntry, c, view, s));
      }
    }
  }

  // --- Sizing
  const needBigger = (usage !== null && usage >= 0.75) || drop > 0 || tableFull.length > 0 || (forecast?.seconds_until_full ?? Infinity) < 3600;
  if (needBigger && limit !== null) {
    const peak = Math.max(entries, forecast?.steady_state_entries ?? 0, limit);
    const newMax = nextPow2(Math.ceil(peak * 2));
    const newHash = newMax;
    const cost = (newMax - limit) * perEntry + Math.max(0, newHash - (buckets ?? 0)) * BUCKET_BYTES;
    const notes = [
      `The cost is what a full table would take (${formatBytesIEC(perEntry)} per entry, ${BUCKET_BYTES} B per bucket): entries are allocated as they come.`,
      "Settings written with sysctl -w are lost at boot: the file keeps them. The hashsize module option only applies when nf_conntrack loads; the sysfs write resizes now.",
      "kube-proxy (--conntrack-max-per-core) and some container runtimes write nf_conntrack_max at start: set it there too, or it is overwritten.",
    ];
    if (s.memTotalBytes !== undefined && newMax * perEntry > s.memTotalBytes * 0.1)
      notes.push(`A full table would use over 10 % of this host's ${formatBytesIEC(s.memTotalBytes)}: check that the traffic is legitimate before raising it.`);
    if (inChild) notes.push("This namespace cannot change nf_conntrack_max (read-only here): it is global, set it in the host's initial namespace.");
    recs.push({
      id: "raise-limit",
      title: `Raise nf_conntrack_max to ${newMax} and the hash to ${newHash} buckets`,
      commands: [`sysctl -w net.netfilter.nf_conntrack_max=${newMax}`, `echo ${newHash} > /sys/module/nf_conntrack/parameters/hashsize`],
      files: [
        { path: SYSCTL_FILE, content: `net.netfilter.nf_conntrack_max = ${newMax}\n` },
        { path: MODPROBE_FILE, content: `options nf_conntrack hashsize=${newHash}\n` },
      ],
      memory_bytes: cost,
      notes,
    });
  }

  return finish();

  function finish(): DoctorReport {
    return {
      netns: s.meta.netns === "" ? "current" : s.meta.netns,
      netns_inode: s.meta.netnsInode ?? null,
      taken_at: new Date(s.meta.takenAtMs).toISOString(),
      conntrack_loaded: s.conntrackLoaded,
      entries,
      entries_listed: t?.total ?? null,
      limit,
      usage,
      limit_writable: limitWritable,
      buckets,
      average_chain_length: chainLen ?? null,
      kernel_memory_bytes: {
        now: kernelMemoryBytes(entries, buckets ?? 0, { objSize: perEntry }),
        at_limit: limit === null ? null : kernelMemoryBytes(limit, buckets ?? 0, { objSize: perEntry }),
        per_entry: perEntry,
        buckets: bucketBytes,
      },
      host_memory_bytes: s.memTotalBytes ?? null,
      unreplied: t?.unreplied ?? 0,
      assured: t?.assured ?? 0,
      natted: t?.natted ?? 0,
      expectations: s.expectations ?? null,
      by_protocol_state: byPS,
      top: {
        sources: t?.results(topN).all.sources.top ?? [],
        destinations: t?.results(topN).all.destinations.top ?? [],
        dports: t?.results(topN).all.destination_ports.top ?? [],
        networks: t?.results(topN).all.source_networks.top ?? [],
      },
      idle,
      oldest_idle_established_seconds: t !== undefined && t.oldestIdleEstablished >= 0 ? t.oldestIdleEstablished : null,
      orphans: t?.orphans ?? 0,
      timestamps: { entries: t?.withTimestamp ?? 0, oldest_age_seconds: t !== undefined && t.oldestAge >= 0 ? t.oldestAge : null },
      accounting: { entries: t?.withAcct ?? 0, packets: t?.packets ?? 0, bytes: t?.bytes ?? 0 },
      stats,
      stats_not_counted: notCounted,
      table_full_log: { lines: tableFull.length, first: tableFull[0]?.time ?? null, last: tableFull[tableFull.length - 1]?.time ?? null },
      forecast,
      steady_state: steady,
      tracked_by: {
        ruleset: view?.label ?? null,
        tracking_rules: view?.analysis.trackingRules.length ?? 0,
        no_tracking: view?.analysis.noTracking ?? null,
        classes,
      },
      findings: findings.sort((a, b) => sevRank(a.severity) - sevRank(b.severity)),
      recommendations: recs,
      problems,
      bad_lines: s.bad.map((b) => ({ source: b.source, line: b.line, reason: b.reason, text: b.text })),
    };
  }
}

function sevRank(s: Severity): number {
  return s === "critical" ? 0 : s === "warning" ? 1 : 2;
}

function notrackRec(
  id: string,
  sel: string,
  frees: number,
  perEntry: number,
  cls: TrackedClass | undefined,
  view: RulesetView | undefined,
  s: Snapshot,
): Recommendation {
  const m = /^(\w+) dport (\d+)$/.exec(sel);
  const proto = m?.[1] ?? "udp";
  const port = m?.[2] ?? "0";
  const text =
    cls?.notrack_rules ??
    [
      "table inet ctlab_notrack {",
      `  chain pre { type filter hook prerouting priority raw; ${proto} dport ${port} notrack; ${proto} sport ${port} notrack; }`,
      `  chain out { type filter hook output priority raw; ${proto} dport ${port} notrack; ${proto} sport ${port} notrack; }`,
      "}",
    ].join("\n") + "\n";
  const iptables = view?.label === "iptables" || s.ruleset?.format === "iptables";
  const file = iptables ? "/etc/iptables/rules.v4 (raw table, then iptables-restore)" : "/etc/nftables.conf (or a file it includes)";
  return {
    id,
    title: `NOTRACK ${sel} in both directions (frees ${frees} entries now)`,
    commands: iptables
      ? text
          .split("\n")
          .filter((l) => l.startsWith("-A "))
          .map((l) => `iptables -t raw ${l}`)
      : [`nft -f - <<'EOF'\n${text.trimEnd()}\nEOF`],
    files: [{ path: file, content: text }],
    memory_bytes: -frees * perEntry,
    notes: [
      "Both directions: a NOTRACK of the requests only leaves the replies to create entries of their own (one-sided NOTRACK).",
      "Untracked packets have ct state untracked: a filter that accepts only established/related or drops invalid must accept them explicitly.",
      "NAT needs tracking: NATed traffic of the class keeps its entries.",
      ...(cls?.warnings ?? []),
    ],
  };
}
