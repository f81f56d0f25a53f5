/**
 * Every iptables match and target module ctlab models, by name. Adding a
 * module is adding its file and one import here.
 */
import * as addrtype from "./match/addrtype.js";
import * as comment from "./match/comment.js";
import * as connlimit from "./match/connlimit.js";
import * as conntrack from "./match/conntrack.js";
import * as CT from "./target/CT.js";
import * as helper from "./match/helper.js";
import * as icmp from "./match/icmp.js";
import * as iprange from "./match/iprange.js";
import * as limit from "./match/limit.js";
import * as LOG from "./target/LOG.js";
import * as mangle from "./target/mangle.js";
import * as MARK_ from "./target/MARK.js";
import * as mark_ from "./match/mark.js";
import * as multiport from "./match/multiport.js";
import * as NAT from "./target/NAT.js";
import * as recent from "./match/recent.js";
import * as REJECT from "./target/REJECT.js";
import * as set from "./match/set.js";
import * as standard from "./target/standard.js";
import * as statistic from "./match/statistic.js";
import * as SYNPROXY from "./target/SYNPROXY.js";
import * as tcp from "./match/tcp.js";
import type { XtMatch, XtTarget } from "./types.js";

const MODULES: ReadonlyArray<Readonly<Record<string, XtMatch | XtTarget>>> = [
  addrtype,
  comment,
  connlimit,
  conntrack,
  CT,
  helper,
  icmp,
  iprange,
  limit,
  LOG,
  mangle,
  MARK_,
  mark_,
  multiport,
  NAT,
  recent,
  REJECT,
  set,
  standard,
  statistic,
  SYNPROXY,
  tcp,
];

const MATCHES = new Map<string, XtMatch>();
const TARGETS = new Map<string, XtTarget>();
const IMPLICIT = new Map<number, XtMatch>();
for (const file of MODULES) {
  for (const m of Object.values(file)) {
    if (m.type === "match") {
      for (const n of [m.name, ...(m.aliases ?? [])]) MATCHES.set(n, m);
      if (m.implicitFor !== undefined) IMPLICIT.set(m.implicitFor, m);
    } else TARGETS.set(m.name, m);
  }
}

/** The match module `-m NAME` loads (aliases resolved), or undefined. */
export function xtMatch(name: string): XtMatch | undefined {
  return MATCHES.get(name);
}

/** The target module `-j NAME` names, or undefined (then NAME is a chain or unknown). */
export function xtTarget(name: string): XtTarget | undefined {
  return TARGETS.get(name);
}

/** The match that `-p PROTO` loads implicitly for its own options (tcp, udp, sctp, icmp, icmp6). */
export function implicitMatch(proto: number): XtMatch | undefined {
  return IMPLICIT.get(proto);
}

/** Extensions that iptables knows but ctlab does not model (a better message than "unknown"). */
export const KNOWN_UNSUPPORTED_MATCHES: ReadonlySet<string> = new Set([
  "string",
  "hashlimit",
  "length",
  "ttl",
  "hl",
  "owner",
  "physdev",
  "pkttype",
  "time",
  "u32",
  "bpf",
  "cgroup",
  "socket",
  "policy",
  "geoip",
  "mac",
  "dscp",
  "tos",
  "ecn",
  "quota",
  "connbytes",
  "connlabel",
  "cluster",
  "devgroup",
  "ipvs",
  "nfacct",
  "osf",
  "realm",
  "rpfilter",
  "esp",
  "ah",
  "dccp",
  "frag",
  "ipv6header",
  "mh",
  "rt",
  "hbh",
  "dst",
  "eui64",
]);
export const KNOWN_UNSUPPORTED_TARGETS: ReadonlySet<string> = new Set([
  "NFQUEUE",
  "QUEUE",
  "TPROXY",
  "SET",
  "TEE",
  "AUDIT",
  "IDLETIMER",
  "LED",
  "RATEEST",
  "SECMARK",
  "CONNSECMARK",
  "NETMAP",
  "CLUSTERIP",
  "HMARK",
  "ULOG",
  "TRACE",
]);
