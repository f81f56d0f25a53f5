/**
 * The simulator: a scenario's traffic sources generate packets in time order
 * and each packet goes through the real tracker (or a ruleset's netfilter
 * path over it) the moment it is sent — the same engine as `ctlab replay`,
 * no second model. Every simulated second the sampler records the table.
 */
import { Tracker, trackerEngine } from "../conntrack/tracker.js";
import { EVENT_TYPE } from "../conntrack/events.js";
import type { EventSink, EventType } from "../conntrack/events.js";
import { NetfilterPath } from "../firewall/path.js";
import type { HostModel } from "../firewall/host.js";
import type { Ruleset } from "../firewall/model.js";
import type { Scenario } from "./scenario.js";
import { makeSources, ipv4Word, lanPrefix, SimNet } from "./sources.js";
import type { Source } from "./sources.js";
import { PcapSink, TeeSink, TrackerSink } from "./sink.js";
import type { FrameSink } from "./sink.js";
import { Rng } from "./random.js";
import { StateCounter } from "./states.js";
import { conntrackObjectSize, kernelMemoryBytes, predict, timeoutsFromSysctls } from "./model.js";
import type { Prediction } from "./model.js";
import type { PolicyConfig } from "../conntrack/policy/registry.js";

/** Simulated time starts here: 2023-11-14T22:13:20Z, as the scenario captures. */
export const SIM_EPOCH_US = 1_700_000_000_000_000;

/** One simulated second. */
export interface Sample {
  /** Seconds since the scenario start (the end of the second measured). */
  t: number;
  entries: number;
  /** Entries by "protocol STATE" (TCP states; UDP UNREPLIED/REPLIED). */
  by_state: Record<string, number>;
  /** Entries created and destroyed during the second. */
  inserts: number;
  deletes: number;
  /** Packets conntrack dropped (table full) during the second; early drops; invalid packets. */
  drops: number;
  early_drops: number;
  invalid: number;
  /** Packets a rule or policy dropped. */
  rule_drops: number;
  legit_attempted: number;
  legit_completed: number;
  legit_failed: number;
  kernel_memory_bytes: number;
  ctlab_memory_bytes: number;
}

/** What one run is given beyond the scenario. */
export interface RunOptions {
  /** Shown in comparisons ("nf_conntrack_max=65536", "stateless.rules"). */
  label?: string;
  /** Everything varied for this run (for the report's table). */
  params?: Record<string, string | number>;
  /** A ruleset the packets go through, and the host it runs on. */
  rules?: { ruleset: Ruleset; host: HostModel; name: string } | null;
  /** Write every packet the tracking host saw to this pcap. */
  writePcap?: string | null;
  /** Called with the fraction done, now and then. */
  onProgress?: ((done: number) => void) | null;
  /** Checked between simulated seconds: true stops the run (the results so far are kept). */
  shouldStop?: (() => boolean) | null;
  /** Kernel slab object size (default: /proc/slabinfo or 256). */
  objSize?: number;
  /** The tracker's table policy (default kernel). */
  policy?: PolicyConfig | null;
}

export interface RunSummary {
  legit: { attempted: number; completed: number; failed: number; vanished: number; success_ratio: number | null };
  /** Seconds into the run of the first packet conntrack dropped, or null. */
  first_drop_s: number | null;
  peak_entries: number;
  drops: number;
  early_drops: number;
  rule_drops: number;
  invalid: number;
  packets: number;
  kernel_memory_bytes: { peak: number; at_max: number };
  ctlab_memory_bytes: number;
  nf_conntrack_max: number;
  nf_conntrack_buckets: number;
  /** The table policy of the run. */
  policy: string;
  /** Entries evicted while their connection was still exchanging packets (its next packet found no entry). */
  live_evictions: number;
  /** Entries evicted before their timeout, by reason (early-drop, gc, scaled-timeout, …). */
  evictions: Record<string, number>;
  /** New entries the policy refused (their packet dropped), by reason. */
  refusals: Record<string, number>;
  /** Pressure-level changes of the policy. */
  pressure_changes: number;
  /** Simulated seconds (less than the duration when interrupted). */
  simulated_s: number;
  interrupted: boolean;
  elapsed_ms: number;
}

export interface RunResult {
  label: string;
  params: Record<string, string | number>;
  summary: RunSummary;
  model: Prediction;
  timeline: Sample[];
  /** The tracker after the run (its final table). */
  tracker: Tracker;
  /** The packet path, when rules were given. */
  path: NetfilterPath | null;
}

class CountingEvents implements EventSink {
  inserts = 0;
  deletes = 0;
  onEvent(type: EventType): void {
    if (type === EVENT_TYPE.NEW) this.inserts++;
    else if (type === EVENT_TYPE.DESTROY) this.deletes++;
  }
}

/**
 * Runs a scenario.
 * @param sysctls overrides on top of the scenario's `table:` (a sweep's values)
 */
export function runScenario(s: Scenario, sysctls: Readonly<Record<string, number | string>> = {}, opts: RunOptions = {}): RunResult {
  const started = performance.now();
  const events = new CountingEvents();
  const rules = opts.rules ?? null;
  const trackerSink = new TrackerSink(
    (clock) =>
      new Tracker({
        sysctls: { ...s.table, ...sysctls },
        clock,
        seed: s.seed,
        events,
        countLiveEvictions: true,
        ...(opts.policy !== undefined && opts.policy !== null ? { policy: opts.policy } : {}),
      }),
    rules !== null ? (tracker) => new NetfilterPath({ ruleset: rules.ruleset, tracker, host: rules.host, seed: s.seed }) : null,
  );
  const tracker = trackerSink.tracker;
  const pcap = opts.writePcap ? new PcapSink(opts.writePcap) : null;
  const sink: FrameSink = pcap === null ? trackerSink : new TeeSink(trackerSink, pcap);
  const gw = s.host.gateway;
  const address = ipv4Word(s.host.address);
  const net =
    gw === undefined
      ? new SimNet(sink, address, new Rng(s.seed ^ 0x1f123bb5), s.host.services)
      : new SimNet(sink, ipv4Word(gw.server), new Rng(s.seed ^ 0x1f123bb5), s.host.services, address, { ...lanPrefix(gw.lan), view: trackerSink.view });
  const synRetries = 6;
  const sources: Source[] = makeSources(net, s, SIM_EPOCH_US, synRetries);
  const max = tracker.sysctl.nf_conntrack_max;
  const buckets = tracker.sysctl.nf_conntrack_buckets;
  const objSize = opts.objSize ?? conntrackObjectSize();
  const memOpts = { objSize, events: s.events };

  const timeline: Sample[] = [];
  const states = new StateCounter();
  const engine = trackerEngine(tracker);
  let prev = { inserts: 0, deletes: 0, drops: 0, early: 0, invalid: 0, rule: 0, att: 0, comp: 0, fail: 0 };
  let firstDropUs = -1;
  let lastDrops = 0;
  let peak = 0;
  let peakMem = 0;

  const sample = (sec: number) => {
    // Entries as nf_conntrack_count (what table-full is decided on, expired entries awaiting GC included); states as a dump shows them.
    const byState = states.count(engine).byState;
    const n = tracker.count;
    const st = tracker.stats;
    const l = net.legit;
    const cur = {
      inserts: events.inserts,
      deletes: events.deletes,
      drops: st.drop,
      early: st.early_drop,
      invalid: st.invalid,
      rule: trackerSink.counts.ruleDropped,
      att: l.attempted,
      comp: l.completed,
      fail: l.failed,
    };
    const kmem = kernelMemoryBytes(n, buckets, memOpts);
    if (n > peak) peak = n;
    if (kmem > peakMem) peakMem = kmem;
    timeline.push({
      t: sec,
      entries: n,
      by_state: byState,
      inserts: cur.inserts - prev.inserts,
      deletes: cur.deletes - prev.deletes,
      drops: cur.drops - prev.drops,
      early_drops: cur.early - prev.early,
      invalid: cur.invalid - prev.invalid,
      rule_drops: cur.rule - prev.rule,
      legit_attempted: cur.att - prev.att,
      legit_completed: cur.comp - prev.comp,
      legit_failed: cur.fail - prev.fail,
      kernel_memory_bytes: kmem,
      ctlab_memory_bytes: tracker.memoryBytes,
    });
    prev = cur;
  };

  const endUs = SIM_EPOCH_US + Math.round(s.duration * 1e6);
  let nextSample = 1;
  let nextSampleUs = SIM_EPOCH_US + 1e6;
  let interrupted = false;
  const progress = opts.onProgress ?? null;
  const stop = opts.shouldStop ?? null;
  for (;;) {
    let src: Source | null = null;
    let t = Infinity;
    for (const x of sources) {
      const u = x.nextUs;
      if (u < t) {
        t = u;
        src = x;
      }
    }
    if (src === null || t >= endUs) break;
    while (t >= nextSampleUs) {
      sample(nextSample);
      if (progress !== null && nextSample % 10 === 0) progress(nextSample / s.duration);
      nextSample++;
      nextSampleUs += 1e6;
      if (stop !== null && stop()) {
        interrupted = true;
        break;
      }
    }
    if (interrupted) break;
    src.step();
    const d = tracker.stats.drop;
    if (d !== lastDrops) {
      if (firstDropUs < 0) firstDropUs = t;
      lastDrops = d;
    }
  }
  if (!interrupted) while (nextSample <= Math.ceil(s.duration)) sample(nextSample++);
  pcap?.close();

  const l = net.legit;
  const decided = l.completed + l.failed;
  const st = tracker.stats;
  const pol = tracker.policy;
  const summary: RunSummary = {
    legit: {
      attempted: l.attempted,
      completed: l.completed,
      failed: l.failed,
      vanished: l.vanished,
      success_ratio: decided === 0 ? null : l.completed / decided,
    },
    first_drop_s: firstDropUs < 0 ? null : Math.round((firstDropUs - SIM_EPOCH_US) / 1000) / 1000,
    peak_entries: Math.max(peak, tracker.count),
    drops: st.drop,
    early_drops: st.early_drop,
    rule_drops: trackerSink.counts.ruleDropped,
    invalid: st.invalid,
    packets: trackerSink.counts.frames,
    kernel_memory_bytes: { peak: peakMem, at_max: kernelMemoryBytes(max, buckets, memOpts) },
    ctlab_memory_bytes: tracker.memoryBytes,
    nf_conntrack_max: max,
    nf_conntrack_buckets: buckets,
    policy: pol.name,
    live_evictions: pol.liveEvictions ?? 0,
    evictions: { ...pol.evictions },
    refusals: { ...pol.refusals },
    pressure_changes: pol.levelChanges,
    simulated_s: timeline.length,
    interrupted,
    elapsed_ms: Math.round(performance.now() - started),
  };
  const model = predict(s, timeoutsFromSysctls(tracker.sysctl), max);
  return { label: opts.label ?? s.name, params: opts.params ?? {}, summary, model, timeline, tracker, path: trackerSink.path };
}
