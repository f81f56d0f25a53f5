/**
 * The per-netns `struct ip_conntrack_stat` counters (conntrack -S,
 * /proc/net/stat/nf_conntrack), summed over CPUs since a replay runs on one,
 * plus ctlab's own breakdown of why packets were invalid.
 */

/** Why a packet left conntrack without an entry, or was dropped by it. */
export const INVALID_REASON = {
  NONE: 0,
  /** A non-first fragment or an unreadable transport header (get_l4proto / nf_ct_get_tuple failed). */
  NO_TUPLE: 1,
  /** nf_ct_invert_tuple failed: an ICMP type with no request/reply partner. */
  NOT_INVERTIBLE: 2,
  /** The protocol's error checks failed (length, flags, header fields). */
  MALFORMED: 3,
  /** Bad transport checksum (nf_conntrack_checksum=1 at PRE_ROUTING). */
  BAD_CHECKSUM: 4,
  /** The packet cannot create an entry (e.g. TCP SYN/ACK, ICMP echo reply, SCTP DATA first). */
  NO_NEW: 5,
  /** The protocol tracker rejected the packet for the entry's state. */
  STATE: 6,
  /** ICMP error: short, bad checksum or unknown type (counted as `error`). */
  ICMP_ERROR_MALFORMED: 7,
  /** ICMP error quoting a packet of no known connection (counted as `error`). */
  ICMP_ERROR_NO_MATCH: 8,
  /** ICMP error whose outer destination is not the connection's (counted as `error`). */
  ICMP_ERROR_MISMATCH: 9,
  /** Dropped: the table was full and early drop found nothing to evict. */
  TABLE_FULL: 10,
  /** Dropped: the protocol tracker asked for a drop (failed TCP reopen). */
  TRACKER_DROP: 11,
  /** Dropped at confirmation: chain too long or insertion clash. */
  INSERT_FAILED: 12,
} as const;

/** Human-readable names of INVALID_REASON values, by value. */
export const INVALID_REASON_NAMES: readonly string[] = Object.freeze([
  "none",
  "no tuple (fragment or truncated transport header)",
  "tuple not invertible",
  "malformed packet",
  "bad checksum",
  "cannot create a connection",
  "invalid for connection state",
  "malformed ICMP error",
  "ICMP error for no connection",
  "ICMP error outer/inner address mismatch",
  "table full",
  "dropped by protocol tracker",
  "insert failed",
]);

/** `conntrack -S` counters, in CTA_STATS order. Field names are the printed names. */
export class ConntrackStats {
  /** Connections that matched an expectation (expect_new; /proc/net/stat only, not conntrack -S). */
  expect_new = 0;
  /** Expectations registered, and removed (matched, timed out, evicted, master gone). */
  expect_create = 0;
  expect_delete = 0;
  /** nf_conntrack_tuple_taken found the tuple in use (NAT port selection). */
  found = 0;
  /** Packets left without a conntrack. */
  invalid = 0;
  /** Entries inserted through ctnetlink (never by packets). */
  insert = 0;
  /** Confirmations that failed. */
  insert_failed = 0;
  /** Packets dropped by conntrack itself. */
  drop = 0;
  /** Entries evicted by early_drop when the table was full. */
  early_drop = 0;
  /** ICMP/ICMPv6 error-path failures. */
  error = 0;
  /** Lockless lookups restarted; needs concurrent table changes, so always 0 in a replay. */
  search_restart = 0;
  /** Insertion clashes resolved without a drop; needs two CPUs racing, so always 0 in a replay. */
  clash_resolve = 0;
  /** Insertions refused for a too-long hash chain. */
  chaintoolong = 0;
  /**
   * ctlab, not a `conntrack -S` counter: packets whose failed transport
   * checksum carried the transmit-offload signature and were tracked as the
   * sending host's kernel tracked them (TrackerOptions.offloadedChecksums).
   */
  checksumOffloaded = 0;
  /** ctlab: invalid, error and drop events by INVALID_REASON value. */
  readonly byReason = new Float64Array(INVALID_REASON_NAMES.length);

  /** The counters in `conntrack -S` order, as name/value pairs. */
  entries(): [string, number][] {
    return [
      ["found", this.found],
      ["invalid", this.invalid],
      ["insert", this.insert],
      ["insert_failed", this.insert_failed],
      ["drop", this.drop],
      ["early_drop", this.early_drop],
      ["error", this.error],
      ["search_restart", this.search_restart],
      ["clash_resolve", this.clash_resolve],
      ["chaintoolong", this.chaintoolong],
    ];
  }

  /** Non-zero reasons by name (for reports). */
  reasons(): Record<string, number> {
    const out: Record<string, number> = {};
    for (let i = 1; i < this.byReason.length; i++) {
      const n = this.byReason[i] as number;
      if (n > 0) out[INVALID_REASON_NAMES[i] as string] = n;
    }
    return out;
  }
}
