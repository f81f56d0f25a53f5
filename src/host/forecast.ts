/**
 * The doctor's steady-state forecast: the live table turned into the state
 * flows of the simulator's model (src/sim/model.ts) — one model in the
 * product, Little's law per state — so "how full does this get" is answered
 * by the same arithmetic `ctlab simulate` prints beside its measurement.
 *
 * The rates come from one listing, by the same reading as the idle ages: an
 * entry that only its timeout frees (an unanswered SYN, a TIME_WAIT, a UDP
 * exchange that is over, an orphaned ESTABLISHED) has been idle since it
 * entered its state, so the entries of such a state arrived over its oldest
 * idle age: rate = entries ÷ that age, and the model holds each for the
 * state's timeout. A state whose youngest entry is older than the first idle
 * bucket has stopped receiving entries: its flow has ended and drains.
 * Entries that traffic keeps refreshing (live ESTABLISHED connections, UDP
 * streams, the closing states packets move on) are taken as stationary: they
 * stay as many as they are now.
 */
import type { StateFlow } from "../sim/model.js";
import { occupancyAt, timeToFull } from "../sim/model.js";
import type { StateCount, TableCensus } from "./table.js";
import { IDLE_BUCKETS } from "./table.js";

/** One state's part of the forecast. */
export interface SteadyStateRow {
  readonly protocol: string;
  readonly state: string;
  /** "timeout" (freed by its timeout: the rate is read from the idle ages), "orphans", "stationary" or "ended". */
  readonly kind: "timeout" | "orphans" | "stationary" | "ended";
  readonly entries_now: number;
  /** Entries the model expects once each flow has run its hold time. */
  readonly entries: number;
  /** Entries entering the state per second (null for stationary rows). */
  readonly rate_per_second: number | null;
  /** How long the model holds each entry (the state's timeout), seconds; null for stationary rows. */
  readonly hold_seconds: number | null;
}

export interface SteadyState {
  /** "table": per-state flows read from the listing; "counters": one flow from two samples of conntrack -S / -C (no table). */
  readonly basis: "table" | "counters";
  /** Expected entries if the current rates go on (Little's law per state: rate × hold). */
  readonly entries: number;
  /** Seconds from now until the model's entries reach nf_conntrack_max, or null if they never do. */
  readonly seconds_until_full: number | null;
  readonly by_state: readonly SteadyStateRow[];
}

/** TCP states only a timeout (or a new connection reusing the tuple) ends: nothing the peers send moves them on soon. */
const TCP_TIMEOUT_BOUND = new Set(["SYN_SENT", "SYN_SENT2", "SYN_RECV", "TIME_WAIT", "CLOSE"]);

function timeoutBound(protocol: string, state: string): boolean {
  if (protocol === "tcp") return TCP_TIMEOUT_BOUND.has(state);
  // Stateless protocols: an exchange that is not ASSURED (a query and its answer, a ping) sits until the short timeout.
  return state === "UNREPLIED" || state === "REPLIED";
}

/** Seconds since the youngest entry of the state entered it, as far as the idle buckets tell (0 when the first bucket has entries). */
function youngestIdle(sc: StateCount): number {
  for (let b = 0; b < sc.idle.length; b++) if ((sc.idle[b] ?? 0) > 0) return b === 0 ? 0 : (IDLE_BUCKETS[b - 1] as number);
  return 0;
}

const STATIONARY_HOLD = 1;

function stationary(state: string, n: number): StateFlow {
  // A flow whose entries are always `n`: n per second, each held one second, running since before now.
  return { state, rate: n / STATIONARY_HOLD, hold: STATIONARY_HOLD, start: -STATIONARY_HOLD, end: Infinity };
}

/** The model's flows for a listed table (t = 0 is the moment of the listing). */
export function tableFlows(t: TableCensus): { flows: StateFlow[]; rows: Array<Omit<SteadyStateRow, "entries"> & { flow: StateFlow }> } {
  const flows: StateFlow[] = [];
  const rows: Array<Omit<SteadyStateRow, "entries"> & { flow: StateFlow }> = [];
  const theta = t.opts.orphanIdleSeconds ?? 3600;
  const push = (protocol: string, state: string, kind: SteadyStateRow["kind"], n: number, f: StateFlow): void => {
    flows.push(f);
    const moving = kind === "timeout" || kind === "orphans" || kind === "ended";
    rows.push({ protocol, state, kind, entries_now: n, rate_per_second: moving ? f.rate : null, hold_seconds: moving ? f.hold : null, flow: f });
  };
  const keys = [...t.byProtoState.keys()].sort();
  for (const key of keys) {
    const sc = t.byProtoState.get(key) as StateCount;
    const [protocol, state] = key.split(" ") as [string, string];
    const hold = sc.timeoutSeconds;
    if (protocol === "tcp" && state === "ESTABLISHED" && t.orphans > 0 && hold !== null && hold > theta) {
      // Orphans: ESTABLISHED entries idle over θ that nothing will refresh; they became orphans θ after their last packet.
      const span = Math.max(1, t.oldestIdleEstablished - theta);
      push(protocol, state, "orphans", t.orphans, { state: key, rate: t.orphans / span, hold: hold - theta, start: -span, end: Infinity });
      if (sc.entries > t.orphans) push(protocol, state, "stationary", sc.entries - t.orphans, stationary(key, sc.entries - t.orphans));
      continue;
    }
    if (timeoutBound(protocol, state) && hold !== null && hold > 0) {
      const running = Math.max(1, Math.min(sc.maxIdle, hold));
      const young = youngestIdle(sc);
      // The entries arrived between `running` and `young` seconds ago.
      const span = Math.max(1, running - young);
      push(protocol, state, young > 0 ? "ended" : "timeout", sc.entries, {
        state: key,
        rate: sc.entries / span,
        hold,
        start: -running,
        end: young > 0 ? -young : Infinity,
      });
      continue;
    }
    push(protocol, state, "stationary", sc.entries, stationary(key, sc.entries));
  }
  return { flows, rows };
}

/** The time from which every flow has run its hold time (or drained): the steady state. */
function settled(flows: readonly StateFlow[]): number {
  let h = 0;
  for (const f of flows) h = Math.max(h, f.hold + 1);
  return h;
}

/** The forecast from a listed table. */
export function steadyStateFromTable(t: TableCensus, limit: number | null): SteadyState {
  const { flows, rows } = tableFlows(t);
  const at = settled(flows);
  let total = 0;
  const byState = rows.map(({ flow, ...r }) => {
    const entries = occupancyAt([flow], at)[flow.state] ?? 0;
    total += entries;
    return { ...r, entries: Math.round(entries) };
  });
  return {
    basis: "table",
    entries: Math.round(total),
    seconds_until_full: limit !== null && limit > 0 ? timeToFull(flows, limit, at) : null,
    by_state: byState,
  };
}

/**
 * The forecast from two samples of the counters alone (no table): one flow of
 * `insertsPerSecond`, each entry held the table's mean lifetime now
 * (entries ÷ departures per second); null when nothing departs. One flow of
 * fixed lifetimes would fill at the full insert rate, faster than the table
 * is seen to: the time until full is the measured fill's, when the steady
 * state is over the limit.
 */
export function steadyStateFromCounters(entries: number, insertsPerSecond: number, fillPerSecond: number, limit: number | null): SteadyState | null {
  const departures = insertsPerSecond - fillPerSecond;
  if (!(departures > 0) || !(insertsPerSecond > 0)) return null;
  const hold = entries / departures;
  const flow: StateFlow = { state: "all", rate: insertsPerSecond, hold, start: -hold, end: Infinity };
  const steady = occupancyAt([flow], settled([flow]))["all"] ?? 0;
  return {
    basis: "counters",
    entries: Math.round(steady),
    seconds_until_full: limit !== null && limit > 0 && steady >= limit && fillPerSecond > 0 ? Math.max(0, (limit - entries) / fillPerSecond) : null,
    by_state: [],
  };
}
