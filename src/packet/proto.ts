/**
 * Numbers the packet layer and its readers share: IP protocol numbers with
 * the names each tool prints for them, IPv6 next-header values, EtherTypes
 * and capture link types. One table, so that conntrack's, the replay
 * summary's and the firewall's names cannot drift apart.
 */

/** IP protocol numbers the project names (IANA; the kernel's IPPROTO_*). */
export const IPPROTO = {
  ICMP: 1,
  TCP: 6,
  UDP: 17,
  /** Tracked by the generic tracker since Linux 6.17 (nf_conntrack_proto_dccp removed). */
  DCCP: 33,
  GRE: 47,
  ESP: 50,
  AH: 51,
  ICMPV6: 58,
  SCTP: 132,
  UDPLITE: 136,
} as const;

/** IPv6 next-header values of extension headers (include/net/ipv6.h NEXTHDR_*). */
export const NEXTHDR = {
  HOP: 0,
  ROUTING: 43,
  FRAGMENT: 44,
  AUTH: 51,
  NONE: 59,
  DEST: 60,
} as const;

/** EtherTypes the decoder follows (include/uapi/linux/if_ether.h ETH_P_*). */
export const ETH_P = {
  IP: 0x0800,
  IPV6: 0x86dd,
  /** 802.1Q VLAN tag. */
  VLAN: 0x8100,
  /** 802.1ad service tag (QinQ outer). */
  QINQ: 0x88a8,
  /** Pre-standard QinQ outer tag. */
  QINQ_OLD: 0x9100,
  /** PPPoE session stage. */
  PPP_SES: 0x8864,
  MPLS_UC: 0x8847,
  MPLS_MC: 0x8848,
} as const;

/** PPP protocol field values inside a PPPoE session (RFC 1661). */
export const PPP_PROTO = {
  IP: 0x0021,
  IPV6: 0x0057,
} as const;

/** pcap / pcapng link types (tcpdump.org LINKTYPE_*) the decoder understands. */
export const LINKTYPE = {
  /** BSD loopback: a 4-byte address family in the capturing host's byte order. */
  NULL: 0,
  ETHERNET: 1,
  /** DLT_RAW as most systems number it, found in files whose writer did not map it to 101. */
  RAW_DLT12: 12,
  /** DLT_RAW as OpenBSD numbers it. */
  RAW_DLT14: 14,
  RAW: 101,
  /** OpenBSD loopback: the address family in network byte order. */
  LOOP: 108,
  LINUX_SLL: 113,
  IPV4: 228,
  IPV6: 229,
  LINUX_SLL2: 276,
} as const;

/** Address family values of NULL/LOOP link headers that mean IPv6 (BSDs disagree). */
export const BSD_AF = {
  INET: 2,
  INET6_NETBSD: 24,
  INET6_FREEBSD: 28,
  INET6_DARWIN: 30,
} as const;

/**
 * Protocol numbers with their names. Columns: number; names accepted on input
 * (the /etc/protocols keyword first, then the aliases iptables and nft accept);
 * the name libnetfilter_conntrack prints (proto2str[], `conntrack -L`); whether
 * the kernel has an l4proto tracker of that name (`/proc/net/nf_conntrack`
 * prints the rest as "unknown"); the name iptables-nft and nft print.
 */
const PROTOCOLS: ReadonlyArray<readonly [number, readonly string[], string | null, boolean, string | null]> = [
  [0, ["ip", "all"], null, false, null],
  [1, ["icmp"], "icmp", true, "icmp"],
  [2, ["igmp"], null, false, null],
  [4, ["ipencap", "ipip"], null, false, null],
  [6, ["tcp"], "tcp", true, "tcp"],
  [8, ["egp"], null, false, null],
  [17, ["udp"], "udp", true, "udp"],
  [33, ["dccp"], "dccp", false, "dccp"],
  [41, ["ipv6"], null, false, null],
  [43, ["ipv6-route"], null, false, null],
  [44, ["ipv6-frag"], null, false, null],
  [46, ["rsvp"], null, false, null],
  [47, ["gre"], "gre", true, "gre"],
  [50, ["esp"], null, false, "esp"],
  [51, ["ah"], null, false, "ah"],
  [58, ["icmpv6", "ipv6-icmp"], "icmpv6", true, "ipv6-icmp"],
  [59, ["ipv6-nonxt"], null, false, null],
  [60, ["ipv6-opts"], null, false, null],
  [89, ["ospf"], null, false, null],
  [103, ["pim"], null, false, null],
  [108, ["comp"], null, false, null],
  [112, ["vrrp"], null, false, null],
  [115, ["l2tp"], null, false, null],
  [132, ["sctp"], "sctp", true, "sctp"],
  [135, ["mh"], null, false, null],
  [136, ["udplite"], "udplite", true, "udplite"],
];

const numbers: Record<string, number> = {};
const ctNames: string[] = new Array<string>(256).fill("unknown");
const trackedNames: (string | null)[] = new Array<string | null>(256).fill(null);
const ruleNames: string[] = [];
for (let n = 0; n < 256; n++) ruleNames.push(String(n));
for (const [n, names, ct, tracked, rule] of PROTOCOLS) {
  for (const name of names) numbers[name] = n;
  if (ct !== null) ctNames[n] = ct;
  if (tracked && ct !== null) trackedNames[n] = ct;
  if (rule !== null) ruleNames[n] = rule;
}

/** Protocol names as /etc/protocols, iptables and nft accept them, to their numbers. */
export const IP_PROTOCOL_NUMBERS: Readonly<Record<string, number>> = numbers;

/** The name `conntrack -L` / `-E` prints for a protocol number (libnetfilter_conntrack proto2str[]; "unknown" otherwise). */
export function conntrackProtoName(proto: number): string {
  return ctNames[proto & 0xff] as string;
}

/** The name of the kernel's l4proto tracker for a protocol number, or null when the generic tracker handles it. */
export function trackedProtoName(proto: number): string | null {
  return trackedNames[proto & 0xff] ?? null;
}

/** The name iptables-nft and nft print for a protocol number (the number itself when they print none). */
export function rulesetProtoName(proto: number): string {
  return ruleNames[proto & 0xff] as string;
}

/** Protocols whose transport header starts with 16-bit source and destination ports. */
export function hasPorts(proto: number): boolean {
  return proto === IPPROTO.TCP || proto === IPPROTO.UDP || proto === IPPROTO.SCTP || proto === IPPROTO.UDPLITE || proto === IPPROTO.DCCP;
}
