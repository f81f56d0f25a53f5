/**
 * The read-only view of one conntrack entry that everything outside the
 * engine reads: formatters, event sinks, the replay summary, reports. It
 * names what `conntrack -L` shows (tuples, protocol, state, status,
 * timeout, counters, zone, mark) and nothing of the table's layout.
 */

/**
 * A tuple of one direction. Addresses are four network-order 32-bit words
 * each, IPv4 in word 0 (s1–s3 and d1–d3 are 0). For TCP, UDP, UDP-Lite and
 * SCTP `sport`/`dport` are the ports; for ICMP and ICMPv6 `sport` is the id
 * and `dport` is `type << 8 | code`; for GRE they are the keys.
 */
export interface TupleReader {
  readonly family: 4 | 6;
  /** IP protocol number. */
  readonly proto: number;
  readonly zone: number;
  readonly s0: number;
  readonly s1: number;
  readonly s2: number;
  readonly s3: number;
  readonly d0: number;
  readonly d1: number;
  readonly d2: number;
  readonly d3: number;
  readonly sport: number;
  readonly dport: number;
}

/** Packets and bytes of one direction (nf_conntrack_acct). */
export interface EntryCounters {
  readonly packets: number;
  readonly bytes: number;
}

/** Start and stop times in ms on the tracker's clock; stop is 0 while the entry lives (nf_conntrack_timestamp). */
export interface EntryTimestamps {
  readonly start: number;
  readonly stop: number;
}

/**
 * A read-only view of one entry. A reader handed out by iteration or by an
 * event sink call is positioned on one entry at a time and reused: read
 * what you need before the next step, never keep it.
 */
export interface EntryReader {
  /**
   * The entry's id: its slot in the table, stable while the entry lives and
   * reused after it is gone (`result.slot` of a packet names the same entry).
   */
  readonly id: number;
  /** IP version. */
  readonly family: 4 | 6;
  /** Layer-3 protocol number as `conntrack -o extended` prints it: 2 (AF_INET) or 10 (AF_INET6). */
  readonly l3proto: 2 | 10;
  /** IP protocol number (6 TCP, 17 UDP, …). */
  readonly proto: number;
  /** Protocol state name ("ESTABLISHED", "TIME_WAIT", … for TCP and SCTP), "" for protocols without states. */
  readonly stateName: string;
  /** Status bits (`IPS.*`: SEEN_REPLY, ASSURED, CONFIRMED, …). */
  readonly status: number;
  /** Remaining timeout as `conntrack -L` shows it: whole seconds, truncated, never negative. */
  readonly timeoutSeconds: number;
  /** Remaining timeout in milliseconds, at jiffy resolution (may be ≤ 0 for an entry about to expire). */
  readonly remainingMs: number;
  /** Conntrack zone. */
  readonly zone: number;
  /** ct mark. */
  readonly mark: number;
  /** Name of the entry's conntrack helper (`ftp`, `tftp`), or "" (`helper=` in `conntrack -L`). */
  readonly helper: string;
  /**
   * The tuple of a direction (0 ORIGINAL, 1 REPLY; REPLY is the NAT-altered
   * one when NAT changed it). The object belongs to the reader: it changes
   * with the next `tuple()` call for the same direction.
   */
  tuple(dir: 0 | 1): TupleReader;
  /** Packet and byte counters of a direction, or null when nf_conntrack_acct is off. */
  counters(dir: 0 | 1): EntryCounters | null;
  /** Start and stop times, or null when nf_conntrack_timestamp is off. */
  timestamps(): EntryTimestamps | null;
}
