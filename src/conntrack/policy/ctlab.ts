/**
 * `ctlab`: the policy the simulator's evidence points to. It changes nothing
 * until the table is full; then a new entry takes the place of the entry
 * idle longest relative to the grace of its kind — new (handshake not
 * completed, no reply yet) 1 s, established 10 s, closing 1 s — looked for
 * at the heads of the timeout classes, which are the longest-idle entries
 * the table already keeps in order, and among a few entries drawn at random
 * (Redis's sampled LRU): a class mixes kinds (UDP's 30 s class holds
 * unanswered and answered flows), so its head is the longest idle but not
 * always the best victim — the samples find the flood behind it. Every state is a candidate, ASSURED ones
 * included, so a flood of completed-but-idle connections or the orphans of a
 * lossy link can no longer lock the table; but an entry that saw a packet
 * within its grace is never taken, so a connection still exchanging packets
 * keeps its entry. Per-source fairness: a source (a /24 or /64 by default)
 * holding more than `ctlab.share` of the table may only recycle entries of
 * sources as large as itself, never push out a smaller one. When no entry
 * is idle beyond its grace, the kernel's early drop decides (non-ASSURED
 * entries near the new tuple's hash), else the new entry is refused.
 *
 * Origin: ctlab (issue 11), combining Suricata's StillAlive grace per state
 * (flow-hash.c: 1 s new, 5 s established, 3 s closed) with VPP's recycling
 * and pf's per-source limits, and using idle time rather than state alone.
 * Trade-off: a connection idle longer than its grace while the table is full
 * (an SSH session without keepalives) can lose its entry — where the kernel
 * would instead have refused every new connection; the per-source count
 * costs a lookup per new entry.
 */
import { IPS } from "../constants.js";
import { HZ } from "../jiffies.js";
import { EVICT_REASON, idleJiffies, REFUSE_REASON } from "./policy.js";
import type { PolicyHost, PolicyOptionSpec, TablePolicy } from "./policy.js";
import { kindOf } from "./common.js";
import { SourceCounter } from "./sources.js";
import type { Table } from "../table.js";
import type { TupleScratch } from "../tuple.js";

export const CTLAB_OPTIONS: readonly PolicyOptionSpec[] = [
  {
    name: "grace-new",
    key: "graceNew",
    doc: "seconds a new (unreplied, handshake incomplete) entry is safe after its last packet",
    default: 1,
    min: 0,
    max: 86400,
  },
  { name: "grace-established", key: "graceEstablished", doc: "seconds an established entry is safe after its last packet", default: 10, min: 0, max: 432000 },
  { name: "grace-closing", key: "graceClosing", doc: "seconds a closing entry is safe after its last packet", default: 1, min: 0, max: 86400 },
  { name: "scan", key: "scan", doc: "entries looked at from the head of each timeout class", default: 4, min: 1, max: 1024, integer: true },
  { name: "samples", key: "samples", doc: "entries drawn at random as further candidates", default: 8, min: 0, max: 1024, integer: true },
  { name: "share", key: "share", doc: "fraction of the table above which a source may not evict smaller sources' entries", default: 0.1, min: 0, max: 1 },
  { name: "prefix4", key: "prefix4", doc: "IPv4 prefix length of a source", default: 24, min: 0, max: 32, integer: true },
  { name: "prefix6", key: "prefix6", doc: "IPv6 prefix length of a source", default: 64, min: 0, max: 128, integer: true },
];

export class CtlabPolicy implements TablePolicy {
  readonly name = "ctlab" as const;
  readonly options: Readonly<Record<string, number | string>>;
  readonly watchFrom: number;
  readonly wantsTicks = false;
  readonly sources: SourceCounter;
  level = 0;
  /** Grace in jiffies by KIND (at least one jiffy: a ratio needs a divisor). */
  readonly #grace: readonly [number, number, number];
  readonly #scan: number;
  readonly #samples: number;
  #rng: number;
  #best = -1;
  #bestRatio = 0;
  readonly #share: number;
  readonly #capacity: number;

  constructor(options: Readonly<Record<string, number | string>>, capacity: number, table: Table) {
    this.options = options;
    const j = (k: string) => Math.max(1, Math.round((options[k] as number) * HZ));
    this.#grace = [j("graceNew"), j("graceEstablished"), j("graceClosing")];
    this.#scan = options.scan as number;
    this.#samples = options.samples as number;
    this.#rng = (capacity ^ 0x9e3779b9) >>> 0 || 1;
    this.#share = Math.max(1, (options.share as number) * capacity);
    this.#capacity = capacity;
    this.sources = new SourceCounter(table, "prefix", options.prefix4 as number, options.prefix6 as number);
    this.watchFrom = capacity === 0 ? Infinity : capacity;
  }

  get bytes(): number {
    return this.sources.bytes;
  }

  get levelName(): string {
    return this.level === 0 ? "normal" : "full";
  }

  /**
   * The entry whose idle time is the largest multiple of its kind's grace
   * (at least 1), among the first `scan` entries of each timeout class and
   * `samples` random slots; -1 when every one looked at is within its grace.
   */
  victim(host: PolicyHost): number {
    const tb = host.table;
    const nowJ = host.jiffies;
    this.#best = -1;
    this.#bestRatio = 0;
    for (let c = 0; c < tb.classes; c++) {
      let s = tb.headOf(c);
      for (let i = 0; s >= 0 && i < this.#scan; i++, s = tb.elNext[s] as number) this.#consider(host, s, nowJ);
    }
    const size = tb.size;
    for (let i = 0; i < this.#samples; i++) {
      let x = this.#rng;
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      this.#rng = x >>> 0;
      const s = this.#rng % size;
      if ((host.statusOf(s) & IPS.CONFIRMED) !== 0) this.#consider(host, s, nowJ);
    }
    return this.#best;
  }

  #consider(host: PolicyHost, s: number, nowJ: number): void {
    if (host.statusOf(s) & IPS.DYING) return;
    const idle = idleJiffies(host.table, s, nowJ);
    if (idle < 0) return;
    const r = idle / this.#grace[kindOf(host, s)];
    if (r >= 1 && r > this.#bestRatio) {
      this.#best = s;
      this.#bestRatio = r;
    }
  }

  admit(host: PolicyHost, t: TupleScratch): boolean {
    if (this.level === 0) {
      host.setLevel(1, "full");
      this.level = 1;
    }
    const v = this.victim(host);
    if (v >= 0) {
      const share = this.#share;
      if (this.sources.countOfTuple(t) >= share && this.sources.countOfSlot(v) < share) {
        host.refuse(REFUSE_REASON.SOURCE_SHARE);
        return false;
      }
      host.evict(v, EVICT_REASON.IDLE);
      return true;
    }
    if (host.kernelEarlyDrop(t.hash)) return true;
    host.refuse(REFUSE_REASON.ALL_ACTIVE);
    return false;
  }

  gc(host: PolicyHost): void {
    if (this.level !== 0 && host.count < this.#capacity * 0.95) {
      host.setLevel(0, "normal");
      this.level = 0;
    }
  }

  tick(): void {}
}
