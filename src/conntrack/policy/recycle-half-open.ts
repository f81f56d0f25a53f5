/**
 * `recycle-half-open`: VPP's ACL-plugin answer to a full session table. A new
 * entry at a full table takes the place of the oldest half-open one — the
 * longest-idle entry that is not ASSURED (a TCP handshake that never
 * completed, a flow that never got an answer), wherever it is in the table,
 * not only in the eight buckets near the new tuple's hash; when there is
 * none, the new entry is refused. ASSURED entries are never touched.
 *
 * Origin: vpp src/plugins/acl/sess_mgmt_node.c / dataplane_node.c
 * (acl_fa_try_recycle_session: recycle the head of the transient TCP list).
 * Here the candidates are the first non-ASSURED entries of each timeout
 * class, looked for from its head (the longest idle) within a bounded scan.
 * Trade-off: a SYN flood cannot lock the table (the flood recycles its own
 * entries) and established connections are safe, but like the kernel it
 * cannot help when the table is full of ASSURED entries (a connection flood,
 * orphans of a lossy link), and a slow legitimate handshake may be the
 * oldest half-open entry.
 */
import { IPS } from "../constants.js";
import { EVICT_REASON, idleJiffies, REFUSE_REASON } from "./policy.js";
import type { PolicyHost, PolicyOptionSpec, TablePolicy } from "./policy.js";

export const RECYCLE_OPTIONS: readonly PolicyOptionSpec[] = [
  { name: "scan", key: "scan", doc: "entries looked at from each timeout class's head for a half-open one", default: 64, min: 1, max: 65536, integer: true },
];

export class RecycleHalfOpenPolicy implements TablePolicy {
  readonly name = "recycle-half-open" as const;
  readonly options: Readonly<Record<string, number | string>>;
  readonly watchFrom: number;
  readonly wantsTicks = false;
  readonly sources = null;
  readonly bytes = 0;
  readonly level = 0;
  readonly levelName = "normal";
  readonly #scan: number;

  constructor(options: Readonly<Record<string, number | string>>, capacity: number) {
    this.options = options;
    this.#scan = options.scan as number;
    this.watchFrom = capacity === 0 ? Infinity : capacity;
  }

  /** The longest-idle non-ASSURED entry among the first `scan` of each class, or -1. */
  oldestHalfOpen(host: PolicyHost): number {
    const tb = host.table;
    const nowJ = host.jiffies;
    let best = -1;
    let bestIdle = -1;
    for (let c = 0; c < tb.classes; c++) {
      let s = tb.headOf(c);
      for (let i = 0; s >= 0 && i < this.#scan; i++, s = tb.elNext[s] as number) {
        if (host.statusOf(s) & (IPS.ASSURED | IPS.DYING)) continue;
        const idle = idleJiffies(tb, s, nowJ);
        if (idle > bestIdle) {
          best = s;
          bestIdle = idle;
        }
        break;
      }
    }
    return best;
  }

  admit(host: PolicyHost): boolean {
    const s = this.oldestHalfOpen(host);
    if (s < 0) {
      host.refuse(REFUSE_REASON.TABLE_FULL);
      return false;
    }
    host.evict(s, EVICT_REASON.HALF_OPEN);
    return true;
  }

  gc(): void {}

  tick(): void {}
}
