/**
 * What several policies share: the kind of an entry (new, established,
 * closing) as Suricata's flow timeouts name them, and the walk over timeout
 * classes from their heads (the longest-idle entries).
 */
import { IPS } from "../constants.js";
import { IPPROTO } from "../../packet/view.js";
import { idleJiffies } from "./policy.js";
import type { EvictReason, PolicyHost } from "./policy.js";

/** Kinds of entries. */
export const KIND = { NEW: 0, ESTABLISHED: 1, CLOSING: 2 } as const;
export type Kind = (typeof KIND)[keyof typeof KIND];

/**
 * TCP: closing in the states early drop may take though ASSURED (FIN_WAIT,
 * CLOSE_WAIT, LAST_ACK, TIME_WAIT, CLOSE), new before the handshake completed
 * (not ASSURED), else established. Other protocols: new until a reply was
 * seen, then established.
 */
export function kindOf(host: PolicyHost, slot: number): Kind {
  const st = host.statusOf(slot);
  if (host.table.proto[slot] === IPPROTO.TCP) {
    if (host.canEarlyDrop(slot)) return KIND.CLOSING;
    return st & IPS.ASSURED ? KIND.ESTABLISHED : KIND.NEW;
  }
  return st & IPS.SEEN_REPLY ? KIND.ESTABLISHED : KIND.NEW;
}

/** Most entries looked at past a head that stays, per class and call (bounds the work of one admission). */
export const SCAN_BUDGET = 16;

/**
 * Evicts, in every timeout class, the entries from the head on whose idle
 * time (jiffies) reaches `limit(slot, classTimeoutJ)` (a negative limit
 * spares the entry); stops in a class after SCAN_BUDGET spared entries or
 * at the first entry idle less than `floorJ` (nothing after it is older).
 * Returns the number evicted.
 */
export function reapIdle(host: PolicyHost, reason: EvictReason, floorJ: number, limit: (slot: number, timeoutJ: number) => number): number {
  const tb = host.table;
  const nowJ = host.jiffies;
  let n = 0;
  for (let c = 0; c < tb.classes; c++) {
    let s = tb.headOf(c);
    let spared = 0;
    while (s >= 0 && spared < SCAN_BUDGET) {
      const next = tb.elNext[s] as number;
      const idle = idleJiffies(tb, s, nowJ);
      if (idle < floorJ) break;
      const lim = limit(s, tb.timeoutOfSlot(s));
      if (lim >= 0 && idle >= lim && (host.statusOf(s) & IPS.DYING) === 0) {
        host.evict(s, reason);
        n++;
      } else spared++;
      s = next;
    }
  }
  return n;
}
