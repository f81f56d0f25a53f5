/**
 * Which rules make the kernel track connections, and why. Conntrack hooks
 * are registered in a network namespace only when something calls
 * nf_ct_netns_get(): the checkentry/init of xt_state, xt_conntrack,
 * xt_connlimit, xt_connmark (match and target), xt_helper, xt_CT (except
 * --notrack), xt_nat/MASQUERADE/REDIRECT, xt_SYNPROXY, and of nft_ct (get and
 * set), nft_connlimit, nft_nat/masq/redir, nft_synproxy, nft_flow_offload and
 * the ct helper/timeout/expectation objects. NOTRACK, CT --notrack, nft
 * notrack, limit, recent and statistic do not. A rule counts from the moment
 * it is loaded, reached or not. (Checked on Linux 6.18 in scratch
 * namespaces: an empty nat chain tracks nothing; `ct state`, `ct mark`,
 * `ct count`, connmark, `CT --zone`, MASQUERADE and a lone ct helper object
 * each start tracking; an inet table starts it for both families.)
 *
 * The packet path (which hooks to register) and the analysis share it.
 */
import type { Match, Rule, Ruleset } from "./model.js";

/** One reason a rule (or object) makes the kernel track connections. */
export interface TrackReason {
  /** What in the rule, as the ruleset spells it (`-m conntrack --ctstate`, `ct state`, `MASQUERADE`). */
  readonly feature: string;
  /** The kernel module whose checkentry/init calls nf_ct_netns_get(). */
  readonly module: string;
  /** Kind of dependency, for grouping and for the stateless verdict. */
  readonly kind: "state" | "nat" | "connmark" | "connlimit" | "helper" | "template" | "synproxy" | "offload" | "unknown";
}

function isIpt(r: Rule, rs: Ruleset): boolean {
  return rs.syntax === "iptables" && r.family !== "inet";
}

const CT_SELECTORS = new Set(["ctmark", "ctstate", "ctstatus", "ctdirection", "ctzone"]);

/** Reasons from one match; empty when it needs no conntrack. */
export function matchTrackingReasons(m: Match, r: Rule, ipt: boolean): TrackReason[] {
  const stateMod = ipt && /(^|\s)-m state(\s|$)/.test(r.text) ? "xt_state" : "xt_conntrack";
  switch (m.kind) {
    case "ctstate":
      return [
        {
          feature: ipt ? (stateMod === "xt_state" ? "-m state --state" : "-m conntrack --ctstate") : "ct state",
          module: ipt ? stateMod : "nft_ct",
          kind: "state",
        },
      ];
    case "ctstatus":
    case "ctdir":
    case "ctproto":
    case "ctaddr":
    case "ctport":
    case "ctexpire":
      return [{ feature: ipt ? `-m conntrack (${m.kind})` : `ct ${m.kind.slice(2)}`, module: ipt ? "xt_conntrack" : "nft_ct", kind: "state" }];
    case "cthelper":
      return [{ feature: ipt ? "-m helper" : "ct helper", module: ipt ? "xt_helper" : "nft_ct", kind: "helper" }];
    case "mark":
      return m.source === "ct" ? [{ feature: ipt ? "-m connmark" : "ct mark", module: ipt ? "xt_connmark" : "nft_ct", kind: "connmark" }] : [];
    case "connlimit":
      return [{ feature: ipt ? "-m connlimit" : "ct count", module: ipt ? "xt_connlimit" : "nft_connlimit", kind: "connlimit" }];
    case "lookup":
      return m.keys.some((k) => CT_SELECTORS.has(k))
        ? [{ feature: `ct ${(m.keys.find((k) => CT_SELECTORS.has(k)) as string).slice(2)} lookup`, module: "nft_ct", kind: "state" }]
        : [];
    case "cmp":
      return CT_SELECTORS.has(m.key) ? [{ feature: `ct ${m.key.slice(2)}`, module: "nft_ct", kind: "state" }] : [];
    default:
      return [];
  }
}

/** Unsupported features known to call nf_ct_netns_get (the rule was skipped, but it still tracks). */
const UNSUPPORTED_TRACKING: Readonly<Record<string, string>> = {
  "-m connbytes": "xt_connbytes",
  "-m connlabel": "xt_connlabel",
  "-m cluster": "xt_cluster",
  "-j CONNSECMARK": "xt_CONNSECMARK",
  "-j NETMAP": "xt_NETMAP",
  "-j CLUSTERIP": "ipt_CLUSTERIP",
  "xt match conntrack": "xt_conntrack",
  "xt match state": "xt_state",
  "xt match connlimit": "xt_connlimit",
  "xt match connmark": "xt_connmark",
  "xt match helper": "xt_helper",
  "xt target CONNMARK": "xt_CONNMARK",
  "xt target CT": "xt_CT",
  "xt target SNAT": "xt_nat",
  "xt target DNAT": "xt_nat",
  "xt target MASQUERADE": "xt_MASQUERADE",
};

/** Why this rule makes the kernel track connections (empty: it does not). */
export function ruleTrackingReasons(r: Rule, rs: Ruleset): TrackReason[] {
  const ipt = isIpt(r, rs);
  const out: TrackReason[] = [];
  if (r.unsupported) {
    const mod = UNSUPPORTED_TRACKING[r.unsupported];
    if (mod) out.push({ feature: r.unsupported, module: mod, kind: "unknown" });
  }
  for (const m of r.matches) out.push(...matchTrackingReasons(m, r, ipt));
  for (const a of r.actions) {
    switch (a.kind) {
      case "nat": {
        const name = ipt ? a.type.toUpperCase() : a.type;
        const module = ipt
          ? a.type === "snat" || a.type === "dnat"
            ? "xt_nat"
            : a.type === "masquerade"
              ? "xt_MASQUERADE"
              : "xt_REDIRECT"
          : a.type === "masquerade"
            ? "nft_masq"
            : a.type === "redirect"
              ? "nft_redir"
              : "nft_nat";
        out.push({ feature: name, module, kind: "nat" });
        break;
      }
      case "ct":
        out.push({ feature: ipt ? "-j CT" : a.timeout ? "ct timeout set" : "ct zone set", module: ipt ? "xt_CT" : "nft_ct", kind: "template" });
        break;
      case "cthelperset":
        out.push({ feature: "ct helper set", module: "nft_ct", kind: "helper" });
        break;
      case "setmark":
        if (a.target === "ct") out.push({ feature: ipt ? "-j CONNMARK" : "ct mark set", module: ipt ? "xt_CONNMARK" : "nft_ct", kind: "connmark" });
        break;
      case "copymark":
        out.push({
          feature: ipt
            ? a.to === "ct"
              ? "-j CONNMARK --save-mark"
              : "-j CONNMARK --restore-mark"
            : a.to === "ct"
              ? "ct mark set meta mark"
              : "meta mark set ct mark",
          module: ipt ? "xt_CONNMARK" : "nft_ct",
          kind: "connmark",
        });
        break;
      case "synproxy":
        out.push({ feature: ipt ? "-j SYNPROXY" : "synproxy", module: ipt ? "xt_SYNPROXY" : "nft_synproxy", kind: "synproxy" });
        break;
      case "flowoffload":
        out.push({ feature: "flow add", module: "nft_flow_offload", kind: "offload" });
        break;
      case "vmap":
        if (a.keys.some((k) => CT_SELECTORS.has(k)))
          out.push({ feature: `ct ${(a.keys.find((k) => CT_SELECTORS.has(k)) as string).slice(2)} vmap`, module: "nft_ct", kind: "state" });
        break;
      default:
        break;
    }
  }
  return out;
}

/** Whether anything in the ruleset (a rule or a ct object) registers the conntrack hooks. */
export function rulesetRegistersConntrack(rs: Ruleset): boolean {
  for (const t of rs.tables) for (const c of t.chains) for (const r of c.rules) if (ruleTrackingReasons(r, rs).length) return true;
  return rs.ctObjects.length > 0;
}
