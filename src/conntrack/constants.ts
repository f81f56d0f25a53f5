/**
 * Numbers shared by the table and the protocol trackers, with the kernel's
 * names and values (include/uapi/linux/netfilter/nf_conntrack_common.h).
 */

/** `enum ip_conntrack_status` bits kept per entry in the table's `status` array. */
export const IPS = {
  EXPECTED: 1 << 0,
  SEEN_REPLY: 1 << 1,
  ASSURED: 1 << 2,
  CONFIRMED: 1 << 3,
  SRC_NAT: 1 << 4,
  DST_NAT: 1 << 5,
  SEQ_ADJUST: 1 << 6,
  SRC_NAT_DONE: 1 << 7,
  DST_NAT_DONE: 1 << 8,
  DYING: 1 << 9,
  FIXED_TIMEOUT: 1 << 10,
  TEMPLATE: 1 << 11,
  /** In-kernel reuse of the UNTRACKED bit for clash-resolved NAT entries. */
  NAT_CLASH: 1 << 12,
  HELPER: 1 << 13,
  OFFLOAD: 1 << 14,
  HW_OFFLOAD: 1 << 15,
} as const;

/** `enum ip_conntrack_events` bits, cached per packet and delivered as one message. */
export const IPCT = {
  NEW: 1 << 0,
  RELATED: 1 << 1,
  DESTROY: 1 << 2,
  REPLY: 1 << 3,
  ASSURED: 1 << 4,
  PROTOINFO: 1 << 5,
  HELPER: 1 << 6,
  MARK: 1 << 7,
  SEQADJ: 1 << 8,
  SECMARK: 1 << 9,
  LABEL: 1 << 10,
  SYNPROXY: 1 << 11,
} as const;

/** `enum ip_conntrack_info` values attached to a packet. */
export const CTINFO = {
  ESTABLISHED: 0,
  RELATED: 1,
  NEW: 2,
  IS_REPLY: 3,
  ESTABLISHED_REPLY: 3,
  RELATED_REPLY: 4,
  UNTRACKED: 7,
} as const;

/**
 * What conntrack decided for one packet: the `ct state` a ruleset would see,
 * plus whether conntrack itself dropped it (table full, failed reopen).
 * Values are the nft `ct state` bits so that rule evaluation can test them directly.
 */
export const CT_STATE = {
  // Literals (not shifts) so that the values are literal types: CtStateValue is their union.
  INVALID: 1, // 1 << 0
  ESTABLISHED: 2, // 1 << 1
  RELATED: 4, // 1 << 2
  NEW: 8, // 1 << 3
  UNTRACKED: 64, // 1 << 6
} as const;

/** Verdicts returned by L4 trackers (mirrors NF_ACCEPT / NF_DROP / -NF_REPEAT; ≤ 0 means no conntrack). */
export const L4_VERDICT = {
  /** Packet belongs to the entry. */
  ACCEPT: 1,
  /** Packet is invalid for this entry: leave it without a conntrack, count `invalid`. */
  INVALID: -1,
  /** Kill the entry and look up again so that this packet creates a new one (TCP reopen). */
  REPEAT: -2,
  /** Conntrack drops the packet (counted `drop`). */
  DROP: 0,
} as const;

/** Netfilter hooks (NF_INET_*) a packet can enter conntrack from. */
export const HOOK = {
  PRE_ROUTING: 0,
  LOCAL_IN: 1,
  FORWARD: 2,
  LOCAL_OUT: 3,
  POST_ROUTING: 4,
} as const;

/** Packet direction within an entry. */
export const DIR = { ORIGINAL: 0, REPLY: 1 } as const;

/** Event message types, as libnetfilter_conntrack's NFCT_T_*. */
export const EVENT_TYPE = {
  NEW: 1,
  UPDATE: 2,
  DESTROY: 4,
} as const;

export type EventType = (typeof EVENT_TYPE)[keyof typeof EVENT_TYPE];
