/**
 * The steady-state model: how full a conntrack table gets, from rates and
 * sysctls alone, by Little's law per state — entries in a state = the rate
 * at which entries enter it × the time the state holds one (its timeout, or
 * the time until the next packet moves it on). Entries that nothing ever
 * closes (a lost RST, a vanished client) are not stationary: they pile up at
 * their rate until their timeout (five days for ESTABLISHED).
 *
 * The simulator shows this prediction beside what it measured; the live-host
 * doctor uses the same functions for its forecasts.
 */
import { readFileSync } from "node:fs";
import type { Scenario } from "./scenario.js";

/** Timeouts in seconds, by sysctl name without the `nf_conntrack_` prefix. */
export interface ModelTimeouts {
  tcp_timeout_syn_sent: number;
  tcp_timeout_syn_recv: number;
  tcp_timeout_established: number;
  tcp_timeout_time_wait: number;
  tcp_timeout_close: number;
  udp_timeout: number;
  udp_timeout_stream: number;
}

/** A flow of entries into one state: `rate` per second, each held `hold` seconds, from `start` to `end` (seconds). */
export interface StateFlow {
  /** "tcp SYN_SENT", "udp UNREPLIED", … (the sampler's keys). */
  state: string;
  rate: number;
  hold: number;
  start: number;
  end: number;
}

/**
 * The model's answer. Little's law gives what the traffic *wants* to hold;
 * a table holds at most nf_conntrack_max. Past that the entries are capped
 * (`total`, `occupancy`) and the demand is kept apart (`wanted`): which
 * entries survive a full table is early drop's and the drops' business, not
 * a rate's, so the capped split by state is the demand's proportions scaled
 * down — an estimate the report labels as such (`exceeds_table`).
 */
export interface Prediction {
  /** Expected entries per state at the end, capped so their sum is at most nf_conntrack_max (proportions of the demand). */
  occupancy: Record<string, number>;
  /** Expected entries at the end: min(wanted, nf_conntrack_max). */
  total: number;
  /** What the traffic would hold in a table without limit (Little's law, uncapped); `wanted_occupancy` per state. */
  wanted: number;
  wanted_occupancy: Record<string, number>;
  /** True when the demand exceeds nf_conntrack_max: the table is full and `occupancy` is the demand scaled down. */
  exceeds_table: boolean;
  /** Seconds from the scenario start until the expected entries reach nf_conntrack_max, or null if they never do. */
  time_to_full_s: number | null;
  /** The flows the prediction is built from. */
  flows: StateFlow[];
}

/** Expected entries of a flow at time t (seconds since the scenario start): λ × min(time running, hold), draining after the end. */
export function flowEntriesAt(f: StateFlow, t: number): number {
  if (t <= f.start) return 0;
  // Entries entering in [max(start, t − hold), min(end, t)] are still held at t.
  const from = Math.max(f.start, t - f.hold);
  const to = Math.min(f.end, t);
  return to > from ? f.rate * (to - from) : 0;
}

/** The entries per state at time t. */
export function occupancyAt(flows: readonly StateFlow[], t: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const f of flows) out[f.state] = (out[f.state] ?? 0) + flowEntriesAt(f, t);
  return out;
}

/** The first whole second at which the expected total reaches `max`, or null. */
export function timeToFull(flows: readonly StateFlow[], max: number, horizon: number): number | null {
  for (let t = 0; t <= horizon; t += 0.25) {
    let n = 0;
    for (const f of flows) n += flowEntriesAt(f, t);
    if (n >= max) return t;
  }
  return null;
}

/** The mean rate of a source between its start and end, for the arrival shapes of scenario files. */
function meanRate(src: { rate: number; arrival?: unknown }): number {
  const a = src.arrival;
  if (typeof a === "object" && a !== null && "ramp" in a) {
    const r = (a as { ramp: { from: number; to: number } }).ramp;
    return (src.rate * (r.from + r.to)) / 2;
  }
  if (typeof a === "object" && a !== null && "diurnal" in a) {
    const d = (a as { diurnal: { trough: number } }).diurnal;
    return (src.rate * (1 + d.trough)) / 2;
  }
  return src.rate;
}

/**
 * The state flows a scenario's traffic sources cause. Only what is known
 * beforehand goes in: a full table's drops and early drops are the
 * simulation's business, not the model's.
 */
export function scenarioFlows(s: Scenario, to: ModelTimeouts): StateFlow[] {
  const flows: StateFlow[] = [];
  const open = (svc: string) => s.host.services === undefined || s.host.services.includes(svc);
  for (const t of s.traffic) {
    // A capture's flows are whatever it holds: no rate to predict from (the simulation measures them).
    if (t.type === "capture") continue;
    const start = t.start;
    const end = Math.min(t.end ?? s.duration, s.duration);
    const rate = meanRate(t);
    const add = (state: string, r: number, hold: number) => {
      if (r > 0 && hold > 0) flows.push({ state, rate: r, hold, start, end });
    };
    switch (t.type) {
      case "clients": {
        // A closed port's RST is the only reply: conntrack deletes the entry at once.
        if (!open(t.service)) break;
        const lossBefore = t.loss !== undefined && t.loss.where === "before" && t.loss.direction !== "to-client" ? t.loss : null;
        const rstLost = t.close === "rst" && lossBefore !== null ? 1 - (1 - lossBefore.all) * (1 - lossBefore.rst) : 0;
        const life = t.rtt * (1 + t.requests) + (t.requests - 1) * t.think + Math.ceil(t.response / 1448) * 12e-6;
        const vanish = t.vanish;
        const closing = rate * (1 - vanish);
        add("tcp ESTABLISHED", closing * (1 - rstLost), life);
        if (t.close === "rst") add("tcp CLOSE", closing * (1 - rstLost), to.tcp_timeout_close);
        else add("tcp TIME_WAIT", closing, to.tcp_timeout_time_wait);
        // Orphans: the RST never reached the table, or the client vanished after its handshake.
        add("tcp ESTABLISHED", closing * rstLost, to.tcp_timeout_established);
        add("tcp ESTABLISHED", rate * vanish, to.tcp_timeout_established);
        break;
      }
      case "connection-flood":
        if (t.hold === undefined) add("tcp ESTABLISHED", rate, to.tcp_timeout_established);
        else {
          add("tcp ESTABLISHED", rate, t.hold);
          add("tcp TIME_WAIT", rate, to.tcp_timeout_time_wait);
        }
        break;
      case "syn-flood":
        if (!open(t.service)) break;
        if (!t.answered) add("tcp SYN_SENT", rate, to.tcp_timeout_syn_sent);
        else {
          add("tcp SYN_RECV", rate * (1 - t.backscatter), to.tcp_timeout_syn_recv);
          add("tcp CLOSE", rate * t.backscatter, to.tcp_timeout_close);
        }
        break;
      case "udp-flood":
        add("udp UNREPLIED", rate, to.udp_timeout);
        break;
      case "dns":
        // One entry per lookup (both queries share the socket), answered within 2 s: the unreplied timeout applies.
        add(open(t.service) ? "udp REPLIED" : "udp UNREPLIED", rate, to.udp_timeout);
        break;
      case "port-scan": {
        // Open ports answer SYN/ACK and the scanner resets: CLOSE for its timeout. Closed ports
        // answer RST, the only reply, and conntrack deletes the entry at once.
        const [lo, hi] = t.ports;
        const services = s.host.services;
        const openPorts =
          services === undefined ? hi - lo + 1 : services.filter((x) => x.startsWith("tcp/") && Number(x.slice(4)) >= lo && Number(x.slice(4)) <= hi).length;
        add("tcp CLOSE", (rate * openPorts) / (hi - lo + 1), to.tcp_timeout_close);
        break;
      }
    }
  }
  return flows;
}

/**
 * Predicts occupancy (at the end of the scenario) and time to full.
 * @param timeouts resolved sysctls in seconds
 */
export function predict(s: Scenario, timeouts: ModelTimeouts, max: number): Prediction {
  const flows = scenarioFlows(s, timeouts);
  const wantedOccupancy = occupancyAt(flows, s.duration);
  let wanted = 0;
  for (const v of Object.values(wantedOccupancy)) wanted += v;
  const exceeds = max > 0 && wanted > max;
  const f = exceeds ? max / wanted : 1;
  const occupancy: Record<string, number> = {};
  for (const [k, v] of Object.entries(wantedOccupancy)) occupancy[k] = v * f;
  return {
    occupancy,
    total: exceeds ? max : wanted,
    wanted,
    wanted_occupancy: wantedOccupancy,
    exceeds_table: exceeds,
    time_to_full_s: max > 0 ? timeToFull(flows, max, s.duration) : null,
    flows,
  };
}

/** The model's timeouts from a tracker's sysctl values (timeouts in ms there). */
export function timeoutsFromSysctls(v: Readonly<Record<string, number>>): ModelTimeouts {
  const s = (k: string, d: number) => (v[`nf_conntrack_${k}`] ?? d * 1000) / 1000;
  return {
    tcp_timeout_syn_sent: s("tcp_timeout_syn_sent", 120),
    tcp_timeout_syn_recv: s("tcp_timeout_syn_recv", 60),
    tcp_timeout_established: s("tcp_timeout_established", 432000),
    tcp_timeout_time_wait: s("tcp_timeout_time_wait", 120),
    tcp_timeout_close: s("tcp_timeout_close", 10),
    udp_timeout: s("udp_timeout", 30),
    udp_timeout_stream: s("udp_timeout_stream", 120),
  };
}

// ---------------------------------------------------------------------------
// Kernel memory

/** sizeof(struct nf_conn) rounded to its slab on a typical x86-64 build, when /proc/slabinfo cannot be read. */
export const DEFAULT_CONNTRACK_OBJ_SIZE = 256;
/** Bytes per hash bucket (one hlist_nulls_head pointer). */
export const BUCKET_BYTES = 8;
/** The event cache extension (struct nf_conntrack_ecache in the entry's ext area, kmalloc-rounded). */
export const EVENT_EXT_BYTES = 32;

let slabCache: number | null = null;

/** The nf_conntrack slab's object size from /proc/slabinfo (root only), else 256. */
export function conntrackObjectSize(): number {
  if (slabCache !== null) return slabCache;
  slabCache = DEFAULT_CONNTRACK_OBJ_SIZE;
  try {
    for (const line of readFileSync("/proc/slabinfo", "utf8").split("\n")) {
      const f = line.split(/\s+/);
      // name active_objs num_objs objsize ...
      if (f[0] === "nf_conntrack") {
        const n = Number(f[3]);
        if (Number.isInteger(n) && n > 0) slabCache = n;
        break;
      }
    }
  } catch {
    // Not readable (not root, or no /proc): the typical size.
  }
  return slabCache;
}

/** The kernel's memory for a table: entries × object size + 8 B per bucket (+ the event extension per entry). */
export function kernelMemoryBytes(entries: number, buckets: number, opts: { objSize?: number; events?: boolean } = {}): number {
  const obj = (opts.objSize ?? conntrackObjectSize()) + (opts.events === true ? EVENT_EXT_BYTES : 0);
  return entries * obj + buckets * BUCKET_BYTES;
}
