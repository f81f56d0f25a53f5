/**
 * The Prometheus exporter: node_exporter's conntrack metrics (same names,
 * types and meaning, read through `conntrack -S` so they keep working on
 * kernels without /proc/net/stat) and ctlab's own under `ctlab_`.
 *
 * Cost control: counters (sysctls, `conntrack -S`) are read per scrape, and
 * concurrent scrapes share one read; the table census runs on its own
 * schedule, one at a time; a scrape waits for fresh counters at most
 * `scrapeBudgetMs` and otherwise serves the last values (counted in
 * ctlab_scrape_budget_exceeded_total), so even a million-entry table never
 * makes a scrape slow.
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { DoctorReport } from "./diagnose.js";
import { diagnose } from "./diagnose.js";
import { uncountedStats } from "./parse.js";
import type { NetnsTarget, Snapshot } from "./snapshot.js";
import { liveSource, takeSnapshot } from "./snapshot.js";

/** node_exporter's counters read from `conntrack -S` (all gauges there, so here too). */
export const NODE_STATS = ["found", "invalid", "ignore", "insert", "insert_failed", "drop", "early_drop", "search_restart"] as const;

const NODE_HELP: Readonly<Record<(typeof NODE_STATS)[number], string>> = {
  found: "Lookups that found an existing entry (conntrack -S found).",
  invalid: "Packets that could not be tracked (conntrack -S invalid).",
  ignore: "Packets already attached to an entry or untracked (only where the kernel still reports it).",
  insert:
    "Entries inserted into the table (conntrack -S insert); absent when this kernel does not count it (fewer inserts than entries: kernels that count only conntrack -I).",
  insert_failed: "Entries whose insertion failed because an equal one was already there (conntrack -S insert_failed).",
  drop: "Packets dropped because no entry could be made, e.g. the table was full (conntrack -S drop).",
  early_drop: "Entries evicted to make room for new ones with the table full (conntrack -S early_drop).",
  search_restart: "Table lookups restarted because of a hash resize or a moved entry (conntrack -S search_restart).",
};

export interface ExporterOptions {
  readonly targets: readonly NetnsTarget[];
  /** Add a netns label (with --all-netns). */
  readonly netnsLabel: boolean;
  /** Top-N sources and ports kept as labels; the rest is one "other" series. Default 10. */
  readonly topN?: number;
  /** How often the table census runs. Default 60 s. */
  readonly tableIntervalMs?: number;
  /** Longest a scrape waits for fresh counters. Default 3 s. */
  readonly scrapeBudgetMs?: number;
  /** Counters younger than this are served as they are. Default 1 s. */
  readonly countersMaxAgeMs?: number;
  readonly orphanIdleSeconds?: number;
  /** For tests: how a snapshot is taken. */
  readonly take?: (t: NetnsTarget, withTable: boolean) => Promise<Snapshot>;
  readonly now?: () => number;
}

interface NsState {
  readonly target: NetnsTarget;
  counters?: Snapshot;
  countersAt: number;
  census?: DoctorReport;
  censusAt: number;
  /** (time ms, entries) samples for the fill rate. */
  readonly samples: Array<[number, number]>;
}

function nsName(t: NetnsTarget): string {
  return t.label === "" ? "current" : t.label;
}

export class ConntrackExporter {
  readonly registry = new Registry();
  readonly #opts: ExporterOptions;
  readonly #ns: NsState[];
  readonly #now: () => number;
  #countersRefresh: Promise<void> | undefined;
  #censusRunning: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  readonly #g: Record<string, Gauge>;
  readonly #scrapeDuration: Histogram;
  readonly #errors: Counter;
  readonly #budgetExceeded: Counter;

  constructor(opts: ExporterOptions) {
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
    this.#ns = opts.targets.map((target) => ({ target, countersAt: 0, censusAt: 0, samples: [] }));
    const r = this.registry;
    const ns = opts.netnsLabel ? ["netns"] : [];
    const g = (name: string, help: string, labels: string[] = []): Gauge => new Gauge({ name, help, labelNames: [...ns, ...labels], registers: [r] });
    this.#g = {
      entries: g("node_nf_conntrack_entries", "Entries in the connection tracking table (nf_conntrack_count, = conntrack -C)."),
      limit: g("node_nf_conntrack_entries_limit", "Largest number of entries the table may hold (nf_conntrack_max)."),
      ...Object.fromEntries(NODE_STATS.map((s) => [s, g(`node_nf_conntrack_stat_${s}`, NODE_HELP[s])])),
      clash_resolve: g("ctlab_conntrack_stat_clash_resolve", "Insert races the kernel settled by reusing the existing entry (conntrack -S clash_resolve)."),
      chaintoolong: g("ctlab_conntrack_stat_chaintoolong", "Inserts refused because a hash chain was too long (conntrack -S chaintoolong)."),
      buckets: g("ctlab_conntrack_buckets", "Hash table buckets (nf_conntrack_buckets)."),
      memory: g("ctlab_conntrack_kernel_memory_bytes", "Kernel memory the entries and buckets take now (slab object size × entries + 8 B per bucket)."),
      memoryLimit: g("ctlab_conntrack_kernel_memory_at_limit_bytes", "Kernel memory a full table would take."),
      untilFull: g("ctlab_conntrack_seconds_until_full", "Estimated seconds until the table is full at the recent fill rate (+Inf when not filling)."),
      byState: g(
        "ctlab_conntrack_entries_by_state",
        "Entries by protocol and state at the last table census (UNREPLIED/REPLIED/ASSURED for stateless protocols).",
        ["protocol", "state"],
      ),
      oldestIdle: g(
        "ctlab_conntrack_oldest_idle_established_seconds",
        "Longest idle time of an ESTABLISHED TCP entry (its timeout minus the remaining one) at the last census.",
      ),
      orphans: g("ctlab_conntrack_orphans", "ESTABLISHED TCP entries idle longer than the orphan threshold at the last census."),
      topSource: g("ctlab_conntrack_top_source_entries", 'Entries per original source address: the top N, the rest as source="other".', ["source"]),
      topDport: g("ctlab_conntrack_top_dport_entries", 'Entries per protocol/destination port: the top N, the rest as dport="other".', ["dport"]),
      censusAge: g("ctlab_conntrack_census_age_seconds", "Seconds since the last table census finished."),
      censusDuration: g("ctlab_conntrack_census_duration_seconds", "How long the last table census took."),
      up: g("ctlab_conntrack_up", "1 when connection tracking is loaded and its counters could be read."),
    };
    this.#scrapeDuration = new Histogram({
      name: "ctlab_scrape_duration_seconds",
      help: "Time to answer a /metrics scrape.",
      buckets: [0.005, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10],
      registers: [r],
    });
    this.#errors = new Counter({
      name: "ctlab_scrape_errors_total",
      help: "Sources that could not be read, by source.",
      labelNames: [...ns, "source"],
      registers: [r],
    });
    this.#budgetExceeded = new Counter({
      name: "ctlab_scrape_budget_exceeded_total",
      help: "Scrapes that served older counters because fresh ones took longer than the budget.",
      registers: [r],
    });
  }

  #take(t: NetnsTarget, withTable: boolean): Promise<Snapshot> {
    if (this.#opts.take !== undefined) return this.#opts.take(t, withTable);
    return takeSnapshot(liveSource(t), {
      withoutTable: !withTable,
      countersOnly: !withTable,
      ...(this.#opts.orphanIdleSeconds !== undefined ? { orphanIdleSeconds: this.#opts.orphanIdleSeconds } : {}),
    });
  }

  #labels(s: NsState, extra: Record<string, string> = {}): Record<string, string> {
    return this.#opts.netnsLabel ? { netns: nsName(s.target), ...extra } : extra;
  }

  /** Starts the census schedule (first census at once). */
  start(): void {
    void this.refreshCensus();
    this.#timer = setInterval(() => void this.refreshCensus(), this.#opts.tableIntervalMs ?? 60_000);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** One census of every namespace; a call while one runs joins it. */
  refreshCensus(): Promise<void> {
    if (this.#censusRunning !== undefined) return this.#censusRunning;
    this.#censusRunning = (async () => {
      for (const s of this.#ns) {
        const t0 = this.#now();
        try {
          const snap = await this.#take(s.target, true);
          s.census = diagnose(snap, { top: this.#opts.topN ?? 10 });
          s.censusAt = this.#now();
          this.#g["censusDuration"]?.set(this.#labels(s), (s.censusAt - t0) / 1000);
          this.#record(s, snap);
          for (const p of snap.problems) this.#errors.inc(this.#labels(s, { source: p.source }));
        } catch {
          // The last census stays served; the error counter tells the failure.
          this.#errors.inc(this.#labels(s, { source: "census" }));
        }
      }
    })().finally(() => (this.#censusRunning = undefined));
    return this.#censusRunning;
  }

  #record(s: NsState, snap: Snapshot): void {
    const c = snap.count ?? snap.sysctls["nf_conntrack_count"];
    if (c === undefined) return;
    const now = snap.meta.takenAtMs;
    s.samples.push([now, c]);
    // Five minutes of samples make the fill rate.
    while (s.samples.length > 2 && now - (s.samples[0]?.[0] ?? now) > 300_000) s.samples.shift();
    if (s.samples.length > 600) s.samples.splice(0, s.samples.length - 600);
  }

  #refreshCounters(): Promise<void> {
    if (this.#countersRefresh !== undefined) return this.#countersRefresh;
    this.#countersRefresh = (async () => {
      await Promise.all(
        this.#ns.map(async (s) => {
          try {
            const snap = await this.#take(s.target, false);
            s.counters = snap;
            s.countersAt = this.#now();
            this.#record(s, snap);
            for (const p of snap.problems) this.#errors.inc(this.#labels(s, { source: p.source }));
          } catch {
            this.#errors.inc(this.#labels(s, { source: "counters" }));
          }
        }),
      );
    })().finally(() => (this.#countersRefresh = undefined));
    return this.#countersRefresh;
  }

  /** Answers one scrape: the exposition text. */
  async scrape(): Promise<string> {
    const t0 = this.#now();
    const maxAge = this.#opts.countersMaxAgeMs ?? 1000;
    if (this.#ns.some((s) => t0 - s.countersAt >= maxAge)) {
      const budget = this.#opts.scrapeBudgetMs ?? 3000;
      let timer: NodeJS.Timeout | undefined;
      const late = await Promise.race([
        this.#refreshCounters().then(() => false),
        new Promise<boolean>((res) => {
          timer = setTimeout(() => res(true), budget);
        }),
      ]);
      if (timer !== undefined) clearTimeout(timer);
      if (late) this.#budgetExceeded.inc();
    }
    this.#fill();
    const text = await this.registry.metrics();
    this.#scrapeDuration.observe((this.#now() - t0) / 1000);
    // The duration of this scrape shows in the next one, as for every self-timing exporter.
    return text;
  }

  #fill(): void {
    const g = this.#g;
    for (const k of ["byState", "topSource", "topDport"]) g[k]?.reset();
    for (const s of this.#ns) {
      const L = this.#labels(s);
      const c = s.counters ?? undefined;
      const rep = s.census;
      const snap = c;
      if (snap === undefined || !snap.conntrackLoaded) {
        g["up"]?.set(L, 0);
        continue;
      }
      g["up"]?.set(L, 1);
      const entries = snap.count ?? snap.sysctls["nf_conntrack_count"] ?? 0;
      g["entries"]?.set(L, entries);
      const limit = snap.sysctls["nf_conntrack_max"];
      if (limit !== undefined) g["limit"]?.set(L, limit);
      // A counter the kernel prints but does not count has no sample: absent, not a 0 that reads as a fact.
      const notCounted = uncountedStats(snap.stats, entries);
      for (const st of NODE_STATS) {
        const v = snap.stats?.[st];
        if (v !== undefined && !notCounted.includes(st)) g[st]?.set(L, v);
        else g[st]?.remove(L);
      }
      for (const st of ["clash_resolve", "chaintoolong"]) {
        const v = snap.stats?.[st];
        if (v !== undefined) g[st]?.set(L, v);
      }
      const buckets = snap.sysctls["nf_conntrack_buckets"] ?? snap.hashsize;
      if (buckets !== undefined) g["buckets"]?.set(L, buckets);
      const per = snap.slab?.objSize ?? 320;
      g["memory"]?.set(L, entries * per + (buckets ?? 0) * 8);
      if (limit !== undefined) g["memoryLimit"]?.set(L, limit * per + (buckets ?? 0) * 8);
      const first = s.samples[0];
      const last = s.samples[s.samples.length - 1];
      let until = Infinity;
      if (first !== undefined && last !== undefined && last[0] - first[0] >= 1000 && limit !== undefined) {
        const rate = (last[1] - first[1]) / ((last[0] - first[0]) / 1000);
        if (rate > 0) until = Math.max(0, (limit - entries) / rate);
      }
      g["untilFull"]?.set(L, until);
      if (rep !== undefined) {
        for (const row of rep.by_protocol_state) g["byState"]?.set({ ...L, protocol: row.protocol, state: row.state }, row.entries);
        g["oldestIdle"]?.set(L, rep.oldest_idle_established_seconds ?? 0);
        g["orphans"]?.set(L, rep.orphans);
        const listed = rep.entries_listed ?? 0;
        let rest = listed;
        for (const x of rep.top.sources) {
          g["topSource"]?.set({ ...L, source: x.key }, x.entries);
          rest -= x.entries;
        }
        g["topSource"]?.set({ ...L, source: "other" }, rest);
        rest = listed;
        for (const x of rep.top.dports) {
          g["topDport"]?.set({ ...L, dport: x.key }, x.entries);
          rest -= x.entries;
        }
        g["topDport"]?.set({ ...L, dport: "other" }, rest);
        g["censusAge"]?.set(L, (this.#now() - s.censusAt) / 1000);
      }
    }
  }
}
