/**
 * The table-policy seam: what the tracker does when its table is under
 * pressure. One interface decides admission of a new entry, the victims of
 * eviction, expiry tightened under pressure (timeout scaling), the GC run's
 * share, and announces pressure-level changes. The default policy, `kernel`,
 * is exactly nf_conntrack's early_drop and gc_worker eviction.
 *
 * Cost: the engine consults its policy only when a new entry arrives while
 * the table holds at least `watchFrom` entries (nf_conntrack_max for
 * `kernel`): one compare on the path that already allocates, none per packet
 * of an existing connection. Policies that count entries per source
 * (`quota`, `ctlab`) are told of every insertion and removal through one
 * monomorphic counter object, not through the policy.
 *
 * Idle time: every timeout class of the table keeps its entries sorted by
 * deadline, and the deadline of an entry is its last refresh plus the class's
 * timeout, so `deadline - timeout` is the time of its last packet and the head
 * of a class is the longest-idle entry of that class. Policies that scale
 * timeouts or evict the longest-idle entry read list heads only.
 */
import type { PacketView } from "../../packet/view.js";
import type { TupleScratch } from "../tuple.js";
import type { Table } from "../table.js";

/** The policies a Tracker can run. */
export const POLICY_NAMES = ["kernel", "adaptive", "emergency", "recycle-half-open", "quota", "ctlab"] as const;

/** A policy's name (`new Tracker({ policy })`, `--policy`). */
export type PolicyName = (typeof POLICY_NAMES)[number];

/** Why an entry was evicted before its timeout. */
export const EVICT_REASON = {
  /** early_drop: a non-ASSURED entry near the new tuple's hash (kernel). */
  EARLY_DROP: 0,
  /** gc_worker at ≥ 95 % after a table-full drop: non-ASSURED and closing entries (kernel). */
  GC: 1,
  /** Idle beyond its timeout scaled down by occupancy (adaptive). */
  SCALED_TIMEOUT: 2,
  /** Idle beyond the emergency timeout of its kind (emergency). */
  EMERGENCY_TIMEOUT: 3,
  /** The oldest half-open (non-ASSURED) entry, recycled for a new one (recycle-half-open). */
  HALF_OPEN: 4,
  /** The longest-idle entry relative to the grace of its kind (ctlab). */
  IDLE: 5,
} as const;

export type EvictReason = (typeof EVICT_REASON)[keyof typeof EVICT_REASON];

/** Names of EVICT_REASON values, by value (the keys of `evictions` in reports). */
export const EVICT_REASON_NAMES: readonly string[] = Object.freeze(["early-drop", "gc", "scaled-timeout", "emergency-timeout", "half-open", "idle"]);

/** Why a new entry was refused (its packet dropped). */
export const REFUSE_REASON = {
  /** The table is full and nothing could be evicted. */
  TABLE_FULL: 0,
  /** The source (address, prefix or zone) holds its quota of entries. */
  QUOTA: 1,
  /** Emergency mode: only a TCP SYN without ACK creates TCP state. */
  NOT_SYN: 2,
  /** The table is full of entries active within their grace: every one is live. */
  ALL_ACTIVE: 3,
  /** A source holding more than its share may not push out another source's entry. */
  SOURCE_SHARE: 4,
} as const;

export type RefuseReason = (typeof REFUSE_REASON)[keyof typeof REFUSE_REASON];

/** Names of REFUSE_REASON values, by value. */
export const REFUSE_REASON_NAMES: readonly string[] = Object.freeze(["table-full", "quota", "not-syn", "all-active", "source-share"]);

/** A pressure-level change (the policy's own levels; 0 is always "normal"). */
export interface PolicyEvent {
  /** Tracker time in milliseconds. */
  readonly timeMs: number;
  readonly policy: PolicyName;
  readonly level: number;
  /** Name of the new level ("normal", "scaling", "emergency", "full"). */
  readonly levelName: string;
  readonly previous: string;
  /** Entries in the table at the change. */
  readonly entries: number;
}

/** A policy's counters, as `Tracker.policy` reports them. */
export interface PolicyReport {
  readonly name: PolicyName;
  /** The options in effect, every default filled in. */
  readonly options: Readonly<Record<string, number | string>>;
  readonly levelName: string;
  /** Entries evicted before their timeout, by EVICT_REASON_NAMES. */
  readonly evictions: Readonly<Record<string, number>>;
  /** New entries refused (packets dropped), by REFUSE_REASON_NAMES. */
  readonly refusals: Readonly<Record<string, number>>;
  /** Pressure-level changes so far. */
  readonly levelChanges: number;
  /**
   * Evicted entries whose connection sent another packet before the entry
   * would have expired (that packet found no entry: NEW, INVALID or dropped);
   * null unless the tracker was created with `countLiveEvictions`.
   */
  readonly liveEvictions: number | null;
}

/** The engine as a policy sees it (implemented by the tracker's engine). */
export interface PolicyHost {
  /** nf_conntrack_max (0: no limit). */
  readonly capacity: number;
  readonly table: Table;
  /** Entries in the table (nf_conntrack_count). */
  readonly count: number;
  /** Current u32 jiffies. */
  readonly jiffies: number;
  /** Status bits (IPS.*) of a slot. */
  statusOf(slot: number): number;
  /** Whether the entry's protocol lets it go early though ASSURED (TCP closing states). */
  canEarlyDrop(slot: number): boolean;
  /** Evicts a confirmed, live entry (DESTROY event), counted under `reason`. */
  evict(slot: number, reason: EvictReason): void;
  /** early_drop's bucket scan from `hash`; true when it evicted something (counted as EARLY_DROP). */
  kernelEarlyDrop(hash: number): boolean;
  /** After a failed early drop: let the next gc_worker run evict (kernel) and log "table full". */
  kernelTableFull(): void;
  /** Counts a refusal (the caller then returns false from `admit`). */
  refuse(reason: RefuseReason): void;
  /** Announces a pressure-level change (before the policy's own level moves: the event names the previous one). */
  setLevel(level: number, name: string): void;
  /** Moves the watch mark: `admit` is consulted for new entries while the table holds at least `entries`. */
  setWatch(entries: number): void;
}

/**
 * Per-source entry counts, kept by the engine for policies that ask
 * (`sourceKey`): one call per insertion and removal, never per packet.
 */
export interface SourceCounts {
  /** The entry entered the table (allocated). */
  added(slot: number): void;
  /** The entry left the table (freed). */
  removed(slot: number): void;
}

/** One table policy. The engine holds exactly one. */
export interface TablePolicy {
  readonly name: PolicyName;
  /** The options in effect, every default filled in (for reports). */
  readonly options: Readonly<Record<string, number | string>>;
  /** Entries at and above which `admit` is consulted for each new entry (the initial mark; see `PolicyHost.setWatch`). */
  readonly watchFrom: number;
  /** Whether `tick` should run once a second (while the level is not 0). */
  readonly wantsTicks: boolean;
  /** Current level name. */
  readonly levelName: string;
  /** Per-source counts the engine must maintain, or null. */
  readonly sources: SourceCounts | null;
  /**
   * A new entry with tuple `t` (hash computed), first packet `p`, while the
   * table holds `watchFrom` entries or more: make room if needed and say
   * whether it may be allocated. Refusals are counted through `host.refuse`.
   */
  admit(host: PolicyHost, t: TupleScratch, p: PacketView): boolean;
  /** Called at every gc_worker run. */
  gc(host: PolicyHost): void;
  /** Called once a simulated second while `wantsTicks` and the level is not 0. */
  tick(host: PolicyHost): void;
  /** The current level (0: normal). */
  readonly level: number;
  /** Bytes of the policy's own typed arrays (counted in the tracker's memoryBytes). */
  readonly bytes: number;
}

/** A policy option's description (drives validation, `--policy-opt` and the docs). */
export interface PolicyOptionSpec {
  /** Name after the policy's prefix on the command line (`adaptive.start`). */
  readonly name: string;
  /** Property of the typed options object (`start`). */
  readonly key: string;
  readonly doc: string;
  readonly default: number | string;
  /** Numbers: inclusive bounds; strings: the accepted values. */
  readonly min?: number;
  readonly max?: number;
  readonly integer?: boolean;
  readonly values?: readonly string[];
}

/** A policy name or option was refused. */
export class PolicyError extends Error {
  override readonly name = "PolicyError";
  /** The option at fault (`adaptive.start`), or "policy" for the name. */
  readonly option: string;
  constructor(option: string, message: string) {
    super(message);
    this.option = option;
  }
}

/** Checks one option value against its spec; returns it as a number or string. */
export function checkOption(policy: string, spec: PolicyOptionSpec, value: unknown): number | string {
  const full = `${policy}.${spec.name}`;
  if (spec.values !== undefined) {
    if (typeof value !== "string" || !spec.values.includes(value))
      throw new PolicyError(full, `Invalid policy option ${full}="${String(value)}": expected one of ${spec.values.join(", ")}`);
    return value;
  }
  const n = typeof value === "number" ? value : typeof value === "string" && value.trim() !== "" ? Number(value) : NaN;
  if (!Number.isFinite(n)) throw new PolicyError(full, `Invalid policy option ${full}="${String(value)}": expected a number`);
  if (spec.integer === true && !Number.isInteger(n)) throw new PolicyError(full, `Invalid policy option ${full}="${String(value)}": expected a whole number`);
  if ((spec.min !== undefined && n < spec.min) || (spec.max !== undefined && n > spec.max))
    throw new PolicyError(full, `Invalid policy option ${full}="${String(value)}": expected a value from ${spec.min ?? "-∞"} to ${spec.max ?? "∞"}`);
  return n;
}

/**
 * Resolves typed options (`{ start: 0.6 }`) against a policy's specs: unknown
 * keys and bad values throw a PolicyError naming the option.
 */
export function resolveOptions(policy: string, specs: readonly PolicyOptionSpec[], given: Readonly<Record<string, unknown>>): Record<string, number | string> {
  const out: Record<string, number | string> = {};
  for (const s of specs) out[s.key] = s.default;
  for (const [k, v] of Object.entries(given)) {
    if (k === "name" || v === undefined) continue;
    const s = specs.find((x) => x.key === k || x.name === k);
    if (s === undefined) {
      const known = specs.map((x) => `${policy}.${x.name}`).join(", ");
      throw new PolicyError(
        `${policy}.${k}`,
        `Unknown policy option "${policy}.${k}": ${known === "" ? `policy "${policy}" has no options` : `known are ${known}`}`,
      );
    }
    out[s.key] = checkOption(policy, s, v);
  }
  return out;
}

/** Idle time in jiffies of a listed slot: now minus its last refresh; -1 when the table cannot tell (mixed-timeout class). */
export function idleJiffies(tb: Table, slot: number, nowJ: number): number {
  const timeout = tb.timeoutOfSlot(slot);
  if (timeout < 0) return -1;
  return (nowJ - (((tb.expiry[slot] as number) - timeout) >>> 0)) | 0;
}
