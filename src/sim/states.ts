/**
 * The sampler's count of entries by "protocol STATE", every simulated
 * second. `Tracker.forEachEntry` walks the hash chains (a random access per
 * node) and builds a reader and a state name per entry: on a 262 144-entry
 * table that walk cost as much as the traffic it sampled. This scans the
 * slot arrays in order instead, reads the TCP state as its number and counts
 * into a typed array, so a full table costs about a millisecond and every
 * second is exact (no breakdown scaled between walks).
 *
 * It visits the entries `forEachEntry` does: confirmed, not dying, not
 * expired (a test holds the two to the same counts).
 */
import { IPS } from "../conntrack/constants.js";
import { IPPROTO } from "../packet/proto.js";
import { TCP_STATE_NAMES, TcpTracker } from "../conntrack/tcp.js";
import type { TrackerEngine } from "../conntrack/tracker.js";

const PROTO_NAMES: Readonly<Record<number, string>> = { 1: "icmp", 47: "gre", 58: "icmpv6", 132: "sctp", 136: "udplite" };

/** Counts a tracker's entries by state; one instance per run (its counters are reused). */
export class StateCounter {
  /** TCP by state number (0–15), then UDP unreplied (16) and replied (17). */
  readonly #counts = new Int32Array(18);
  /** Other protocols by protocol number and the tracker's state text (interned constants: no string is built per entry). */
  readonly #other = new Map<number, Map<string, number>>();

  /** Entries by "protocol STATE" ("tcp SYN_RECV", "udp UNREPLIED", "icmp", "sctp ESTABLISHED"), and their total. */
  count(e: TrackerEngine): { byState: Record<string, number>; total: number } {
    e.syncClock();
    const c = this.#counts;
    c.fill(0);
    for (const m of this.#other.values()) m.clear();
    const tb = e.table;
    const status = e.status;
    const proto = tb.proto;
    const l4tcp = e.l4(IPPROTO.TCP);
    const tcp = l4tcp instanceof TcpTracker ? l4tcp : null;
    const n = tb.size;
    let total = 0;
    for (let slot = 0; slot < n; slot++) {
      const st = status[slot] as number;
      if ((st & IPS.CONFIRMED) === 0 || st & IPS.DYING) continue;
      if (e.remaining(slot) <= 0) continue;
      total++;
      const p = proto[slot] as number;
      if (p === IPPROTO.TCP && tcp !== null) {
        const s = tcp.state(slot) & 15;
        c[s] = (c[s] as number) + 1;
      } else if (p === IPPROTO.UDP) {
        const s = st & IPS.SEEN_REPLY ? 17 : 16;
        c[s] = (c[s] as number) + 1;
      } else {
        let m = this.#other.get(p);
        if (m === undefined) {
          m = new Map<string, number>();
          this.#other.set(p, m);
        }
        const k = e.l4(p).stateText(slot);
        m.set(k, (m.get(k) ?? 0) + 1);
      }
    }
    const byState: Record<string, number> = {};
    for (let s = 0; s < 16; s++) if ((c[s] as number) > 0) byState[`tcp ${TCP_STATE_NAMES[s] ?? s}`] = c[s] as number;
    if ((c[16] as number) > 0) byState["udp UNREPLIED"] = c[16] as number;
    if ((c[17] as number) > 0) byState["udp REPLIED"] = c[17] as number;
    for (const [p, m] of this.#other) {
      const name = PROTO_NAMES[p] ?? `proto ${p}`;
      for (const [k, v] of m) {
        const state = k.trim();
        const label = state === "" ? name : `${name} ${state}`;
        byState[label] = (byState[label] ?? 0) + v;
      }
    }
    return { byState, total };
  }
}
