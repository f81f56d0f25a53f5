import { IPPROTO, IP_PROTOCOL_NUMBERS, rulesetProtoName } from "../packet/proto.js";
import { formatIp } from "../packet/addr.js";
/**
 * Value types shared by both ruleset syntaxes: addresses and address sets,
 * integer interval sets, interface patterns, and the name tables iptables and
 * nft use for protocols, ICMP types, ct states and statuses.
 *
 * Addresses are four 32-bit words, word 0 first, IPv4 in word 0 only: the
 * layout of PacketView.src/dst, so a match compares without converting.
 */

/** Parses dotted-quad IPv4 into an unsigned number, or -1 when invalid. */
export function parseIPv4(s: string): number {
  const parts = s.split(".");
  if (parts.length !== 4) return -1;
  let v = 0;
  for (const part of parts) {
    if (part.length === 0 || part.length > 3 || !/^[0-9]+$/.test(part)) return -1;
    const n = Number(part);
    if (n > 255) return -1;
    v = v * 256 + n;
  }
  return v >>> 0;
}

/** Parses an IPv6 address (with `::` and an optional trailing dotted quad) into four words, or null. */
export function parseIPv6(s: string): Uint32Array | null {
  if (s.length < 2 || s.length > 45 || !/^[0-9a-fA-F:.]+$/.test(s)) return null;
  const lastColon = s.lastIndexOf(":");
  if (lastColon < 0) return null;
  let t = s;
  if (s.includes(".")) {
    // A trailing dotted quad stands for the last two groups (::ffff:1.2.3.4).
    const v4 = parseIPv4(s.slice(lastColon + 1));
    if (v4 < 0) return null;
    t = s.slice(0, lastColon + 1) + (v4 >>> 16).toString(16) + ":" + (v4 & 0xffff).toString(16);
  }
  const dbl = t.indexOf("::");
  if (dbl >= 0 && t.indexOf("::", dbl + 1) >= 0) return null;
  const parseGroups = (part: string): number[] | null => {
    if (part === "") return [];
    const out: number[] = [];
    for (const g of part.split(":")) {
      if (g.length === 0 || g.length > 4 || !/^[0-9a-fA-F]+$/.test(g)) return null;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  const groups: number[] = [];
  if (dbl >= 0) {
    const head = parseGroups(t.slice(0, dbl));
    const rest = parseGroups(t.slice(dbl + 2));
    if (!head || !rest || head.length + rest.length > 7) return null;
    groups.push(...head);
    for (let i = head.length + rest.length; i < 8; i++) groups.push(0);
    groups.push(...rest);
  } else {
    const all = parseGroups(t);
    if (!all || all.length !== 8) return null;
    groups.push(...all);
  }
  const w = new Uint32Array(4);
  for (let i = 0; i < 4; i++) w[i] = (((groups[2 * i] ?? 0) << 16) | (groups[2 * i + 1] ?? 0)) >>> 0;
  return w;
}

/** Formats four words as an address of the given family (IPv6 in RFC 5952 short form). */
export function formatAddr(family: 4 | 6, w: ArrayLike<number>): string {
  return formatIp(family, w);
}

/** Parses an address of either family; returns the family and words, or null. */
export function parseAddr(s: string): { family: 4 | 6; words: Uint32Array } | null {
  const v4 = parseIPv4(s);
  if (v4 >= 0) return { family: 4, words: Uint32Array.of(v4, 0, 0, 0) };
  const v6 = parseIPv6(s);
  return v6 ? { family: 6, words: v6 } : null;
}

/** The prefix length of a contiguous netmask (dotted or IPv6), or -1 when it is not contiguous. */
export function maskToPrefix(family: 4 | 6, w: ArrayLike<number>): number {
  const n = family === 4 ? 1 : 4;
  let len = 0;
  let ended = false;
  for (let i = 0; i < n; i++) {
    const x = (w[i] ?? 0) >>> 0;
    for (let b = 31; b >= 0; b--) {
      const bit = (x >>> b) & 1;
      if (bit === 1) {
        if (ended) return -1;
        len++;
      } else ended = true;
    }
  }
  return len;
}

/** Low and high words of a prefix. */
export function prefixRange(family: 4 | 6, base: ArrayLike<number>, len: number): { lo: Uint32Array; hi: Uint32Array } {
  const n = family === 4 ? 1 : 4;
  const lo = new Uint32Array(4);
  const hi = new Uint32Array(4);
  for (let i = 0; i < n; i++) {
    const bits = Math.max(0, Math.min(32, len - 32 * i));
    const mask = bits === 0 ? 0 : bits === 32 ? 0xffffffff : (0xffffffff << (32 - bits)) >>> 0;
    const x = (base[i] ?? 0) >>> 0;
    lo[i] = (x & mask) >>> 0;
    hi[i] = ((lo[i] as number) | (~mask >>> 0)) >>> 0;
  }
  return { lo, hi };
}

/** Compares two word arrays as unsigned 128-bit numbers over the first `n` words. */
export function cmpWords(a: ArrayLike<number>, b: ArrayLike<number>, n: number): number {
  for (let i = 0; i < n; i++) {
    const x = (a[i] ?? 0) >>> 0;
    const y = (b[i] ?? 0) >>> 0;
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

/**
 * A set of address intervals of one family. Ranges are stored flat, eight
 * words per range (lo then hi), so a lookup touches one typed array.
 */
export class AddrSet {
  readonly family: 4 | 6;
  /** lo[0..3], hi[0..3] per range. */
  readonly data: Uint32Array;
  /** The elements as written (for display and serialisation). */
  readonly text: readonly string[];

  constructor(family: 4 | 6, ranges: ReadonlyArray<{ lo: ArrayLike<number>; hi: ArrayLike<number> }>, text: readonly string[]) {
    this.family = family;
    this.text = text;
    this.data = new Uint32Array(ranges.length * 8);
    ranges.forEach((r, i) => {
      for (let k = 0; k < 4; k++) {
        this.data[i * 8 + k] = (r.lo[k] ?? 0) >>> 0;
        this.data[i * 8 + 4 + k] = (r.hi[k] ?? 0) >>> 0;
      }
    });
  }

  /** Number of ranges. */
  get size(): number {
    return this.data.length / 8;
  }

  /** Whether the address (four words) lies in any range. */
  has(w: ArrayLike<number>): boolean {
    const d = this.data;
    if (this.family === 4) {
      const x = (w[0] ?? 0) >>> 0;
      for (let i = 0; i < d.length; i += 8) if (x >= (d[i] as number) && x <= (d[i + 4] as number)) return true;
      return false;
    }
    for (let i = 0; i < d.length; i += 8) {
      if (cmpRange(w, d, i) >= 0 && cmpRange(w, d, i + 4) <= 0) return true;
    }
    return false;
  }

  /** Range i as words (allocates; for analysis, not per packet). */
  range(i: number): { lo: Uint32Array; hi: Uint32Array } {
    return { lo: this.data.slice(i * 8, i * 8 + 4), hi: this.data.slice(i * 8 + 4, i * 8 + 8) };
  }
}

function cmpRange(w: ArrayLike<number>, d: Uint32Array, off: number): number {
  for (let k = 0; k < 4; k++) {
    const x = (w[k] ?? 0) >>> 0;
    const y = d[off + k] as number;
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

/** Parses `addr`, `addr/len` or `addr/dotted-mask` (iptables `-s` syntax) into a range; null when invalid. */
export function parseCidr(s: string, family: 4 | 6 | 0): { family: 4 | 6; lo: Uint32Array; hi: Uint32Array; len: number } | null {
  const slash = s.indexOf("/");
  const a = parseAddr(slash < 0 ? s : s.slice(0, slash));
  if (!a || (family !== 0 && a.family !== family)) return null;
  const max = a.family === 4 ? 32 : 128;
  let len = max;
  if (slash >= 0) {
    const m = s.slice(slash + 1);
    if (/^[0-9]{1,3}$/.test(m)) {
      len = Number(m);
      if (len > max) return null;
    } else {
      const mask = parseAddr(m);
      if (!mask || mask.family !== a.family) return null;
      len = maskToPrefix(a.family, mask.words);
      if (len < 0) return null;
    }
  }
  const r = prefixRange(a.family, a.words, len);
  return { family: a.family, lo: r.lo, hi: r.hi, len };
}

/**
 * A set of closed integer intervals (ports, ICMP type/code pairs, marks,
 * protocol numbers). Stored flat as [lo0, hi0, lo1, hi1, …].
 */
export class NumSet {
  readonly data: Int32Array | Float64Array;
  constructor(pairs: readonly number[]) {
    // Marks are unsigned 32-bit: keep them exact in a Float64Array.
    this.data = pairs.some((v) => v > 0x7fffffff) ? Float64Array.from(pairs) : Int32Array.from(pairs);
  }
  /** A set of single values. */
  static of(...values: number[]): NumSet {
    const pairs: number[] = [];
    for (const v of values) pairs.push(v, v);
    return new NumSet(pairs);
  }
  /** Whether v lies in any interval. */
  has(v: number): boolean {
    const d = this.data;
    for (let i = 0; i < d.length; i += 2) if (v >= (d[i] as number) && v <= (d[i + 1] as number)) return true;
    return false;
  }
  /** Intervals as pairs. */
  pairs(): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    for (let i = 0; i < this.data.length; i += 2) out.push([this.data[i] as number, this.data[i + 1] as number]);
    return out;
  }
}

/** An interface name pattern: exact, or a prefix when iptables writes `eth+` / nft writes `eth*`. */
export interface IfacePattern {
  readonly name: string;
  readonly prefix: boolean;
}

/** Parses an iptables (`+`) or nft (`*`) interface pattern. */
export function parseIface(s: string, wildcard: "+" | "*"): IfacePattern {
  if (s.endsWith(wildcard) && !(wildcard === "*" && s.endsWith("\\*"))) return { name: s.slice(0, -1), prefix: true };
  return { name: wildcard === "*" ? s.replace(/\\\*$/, "*") : s, prefix: false };
}

/** Whether an interface name matches a pattern (an empty prefix pattern matches every name, as `+` does). */
export function ifaceMatches(p: IfacePattern, name: string): boolean {
  return p.prefix ? name.startsWith(p.name) : name === p.name;
}

// ---------------------------------------------------------------------------
// Name tables. iptables and nft name the same numbers differently; both
// spellings are accepted where either tool accepts them.

/** IP protocol names as /etc/protocols and nft spell them (the packet layer's one table). */
export const PROTO_NUM: Readonly<Record<string, number>> = IP_PROTOCOL_NUMBERS;

/** Protocol number → the name iptables-nft and nft print. */
export function protoName(n: number): string {
  return rulesetProtoName(n);
}

/** Protocols whose header starts with 16-bit source and destination ports (nft `th`). */
export const PORT_PROTOS: readonly number[] = [IPPROTO.TCP, IPPROTO.UDP, IPPROTO.DCCP, IPPROTO.SCTP, IPPROTO.UDPLITE];

/**
 * An ICMP type with its names (aliases: iptables spellings first, nft's after)
 * and its named codes: a type name matches every code, a code name one.
 */
type IcmpTypeNames = readonly [type: number, names: readonly string[], codes?: Readonly<Record<string, number>>];

function icmpNameTable(types: readonly IcmpTypeNames[]): Readonly<Record<string, readonly [number, number, number]>> {
  const out: Record<string, readonly [number, number, number]> = {};
  for (const [type, names, codes] of types) {
    for (const n of names) out[n] = [type, 0, 255];
    if (codes !== undefined) for (const [n, c] of Object.entries(codes)) out[n] = [type, c, c];
  }
  return out;
}

/** ICMP type (and code range) names: iptables names first, nft names after. Value: [type, codeMin, codeMax]. */
export const ICMP_NAMES: Readonly<Record<string, readonly [number, number, number]>> = icmpNameTable([
  [-1, ["any"]],
  [0, ["echo-reply", "pong"]],
  [
    3,
    ["destination-unreachable"],
    {
      "network-unreachable": 0,
      "host-unreachable": 1,
      "protocol-unreachable": 2,
      "port-unreachable": 3,
      "fragmentation-needed": 4,
      "source-route-failed": 5,
      "network-unknown": 6,
      "host-unknown": 7,
      "network-prohibited": 9,
      "host-prohibited": 10,
      "TOS-network-unreachable": 11,
      "TOS-host-unreachable": 12,
      "communication-prohibited": 13,
      "host-precedence-violation": 14,
      "precedence-cutoff": 15,
    },
  ],
  [4, ["source-quench"]],
  [5, ["redirect"], { "network-redirect": 0, "host-redirect": 1, "TOS-network-redirect": 2, "TOS-host-redirect": 3 }],
  [8, ["echo-request", "ping"]],
  [9, ["router-advertisement"]],
  [10, ["router-solicitation"]],
  [11, ["time-exceeded", "ttl-exceeded"], { "ttl-zero-during-transit": 0, "ttl-zero-during-reassembly": 1 }],
  [12, ["parameter-problem"], { "ip-header-bad": 0, "required-option-missing": 1 }],
  [13, ["timestamp-request"]],
  [14, ["timestamp-reply"]],
  [15, ["info-request"]],
  [16, ["info-reply"]],
  [17, ["address-mask-request"]],
  [18, ["address-mask-reply"]],
]);

/** ICMPv6 type names (ip6tables and nft spellings). */
export const ICMPV6_NAMES: Readonly<Record<string, readonly [number, number, number]>> = icmpNameTable([
  [
    1,
    ["destination-unreachable"],
    { "no-route": 0, "communication-prohibited": 1, "beyond-scope": 2, "address-unreachable": 3, "port-unreachable": 4, "failed-policy": 5, "reject-route": 6 },
  ],
  [2, ["packet-too-big"]],
  [3, ["time-exceeded", "ttl-exceeded"], { "ttl-zero-during-transit": 0, "ttl-zero-during-reassembly": 1 }],
  [4, ["parameter-problem"], { "bad-header": 0, "unknown-header-type": 1, "unknown-option": 2 }],
  [128, ["echo-request", "ping"]],
  [129, ["echo-reply", "pong"]],
  [130, ["mld-listener-query"]],
  [131, ["mld-listener-report"]],
  [132, ["mld-listener-done", "mld-listener-reduction"]],
  [133, ["router-solicitation", "nd-router-solicit"]],
  [134, ["router-advertisement", "nd-router-advert"]],
  [135, ["neighbour-solicitation", "neighbor-solicitation", "nd-neighbor-solicit"]],
  [136, ["neighbour-advertisement", "neighbor-advertisement", "nd-neighbor-advert"]],
  [137, ["redirect", "nd-redirect"]],
  [138, ["router-renumbering"]],
  [141, ["ind-neighbor-solicit"]],
  [142, ["ind-neighbor-advert"]],
  [143, ["mld2-listener-report"]],
]);

/** nft `icmp code` / `icmpv6 code` / reject code names. */
export const ICMP_CODE_NAMES: Readonly<Record<string, number>> = {
  "net-unreachable": 0,
  "host-unreachable": 1,
  "prot-unreachable": 2,
  "port-unreachable": 3,
  "frag-needed": 4,
  "net-prohibited": 9,
  "host-prohibited": 10,
  "admin-prohibited": 13,
};
export const ICMPV6_CODE_NAMES: Readonly<Record<string, number>> = {
  "no-route": 0,
  "admin-prohibited": 1,
  "addr-unreachable": 3,
  "port-unreachable": 4,
  "policy-fail": 5,
  "reject-route": 6,
};

/** Virtual ct state bits of `-m conntrack --ctstate SNAT,DNAT` (not nft bits; nft uses ct status for them). */
export const CTSTATE_SNAT = 1 << 4;
export const CTSTATE_DNAT = 1 << 5;

/** ct state names (iptables upper case, nft lower case) → bits (CT_STATE values plus the virtual SNAT/DNAT). */
export const CTSTATE_BITS: Readonly<Record<string, number>> = {
  invalid: 1 << 0,
  established: 1 << 1,
  related: 1 << 2,
  new: 1 << 3,
  untracked: 1 << 6,
  snat: CTSTATE_SNAT,
  dnat: CTSTATE_DNAT,
};

/** ct status names → IPS bits (iptables `--ctstatus`, nft `ct status`). */
export const CTSTATUS_BITS: Readonly<Record<string, number>> = {
  none: 0,
  expected: 1 << 0,
  seen_reply: 1 << 1,
  "seen-reply": 1 << 1,
  assured: 1 << 2,
  confirmed: 1 << 3,
  snat: 1 << 4,
  dnat: 1 << 5,
  dying: 1 << 9,
};

/** TCP flag names (iptables upper case, nft lower case) → bits. */
export const TCP_FLAG_BITS: Readonly<Record<string, number>> = {
  fin: 0x01,
  syn: 0x02,
  rst: 0x04,
  psh: 0x08,
  ack: 0x10,
  urg: 0x20,
  ece: 0x40,
  cwr: 0x80,
  all: 0xff,
  none: 0,
};

/** Route types of `-m addrtype` (RTN_* numbers). The match tests bit (1 << RTN). */
export const ADDRTYPE_RTN = {
  UNSPEC: 0,
  UNICAST: 1,
  LOCAL: 2,
  BROADCAST: 3,
  ANYCAST: 4,
  MULTICAST: 5,
  BLACKHOLE: 6,
  UNREACHABLE: 7,
  PROHIBIT: 8,
  THROW: 9,
  NAT: 10,
  XRESOLVE: 11,
} as const;

/** ADDRTYPE_RTN by the name `-m addrtype` takes (upper case). */
export const ADDRTYPE_RTN_BY_NAME: Readonly<Record<string, number>> = ADDRTYPE_RTN;

/** Parses an unsigned integer in decimal or 0x-hex (as strtoul with base 0 does, without octal); NaN when invalid. */
export function parseUint(s: string, max = 0xffffffff): number {
  let v: number;
  if (/^0[xX][0-9a-fA-F]{1,8}$/.test(s)) v = parseInt(s.slice(2), 16);
  else if (/^[0-9]{1,10}$/.test(s)) v = Number(s);
  else return NaN;
  return v <= max ? v : NaN;
}

/** Formats a mark the way iptables-save does (`0x` hex). */
export function hex(v: number): string {
  return "0x" + (v >>> 0).toString(16);
}
