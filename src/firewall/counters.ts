/**
 * Per-rule counters out of the model: written back as `iptables-save -c`
 * text or as `nft -j list ruleset` JSON with the counter values filled in,
 * listed like `iptables -L -v -n -x`, and compared between two rulesets.
 *
 * Counters count what the kernel counts: every packet that matched the
 * rule (jumps and non-terminal targets included) with the IP datagram length
 * as bytes; a base chain's policy counters count the packets that reached
 * its end. nft rules count only when they carry a `counter` statement, and
 * nft base chains have no policy counters in the JSON listing.
 */
import { RulesetSyntaxError, formatPos, jsonPos } from "./errors.js";
import { serializeIptables } from "./iptables.js";
import { IPTABLES_BUILTINS, ruleVerdict } from "./model.js";
import type { Chain, Rule, Ruleset } from "./model.js";

/** Sets every rule and policy counter to zero (what loading without `-c` does). */
export function resetCounters(rs: Ruleset): void {
  for (const t of rs.tables) {
    for (const c of t.chains) {
      c.policyCounters.packets = 0;
      c.policyCounters.bytes = 0;
      for (const r of c.rules) {
        r.counters.packets = 0;
        r.counters.bytes = 0;
      }
    }
  }
}

/**
 * The ruleset as `iptables-save -c` prints it: `:CHAIN POLICY [p:b]` and
 * `[p:b] -A …` lines with the model's counters, comments kept in place.
 * @throws {TypeError} when the ruleset was not read from iptables syntax
 */
export function iptablesSaveWithCounters(rs: Ruleset): string {
  return serializeIptables(rs, { counters: true });
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Resolves `$.nftables[3].rule` / `$.nftables[3].add.rule` in a parsed document. */
function atPath(doc: Json, path: string): Json | undefined {
  const re = /\.([A-Za-z_ ][A-Za-z0-9_ ]*)|\[(\d+)\]|\["((?:[^"\\]|\\.)*)"\]/g;
  if (!path.startsWith("$")) return undefined;
  let cur: Json | undefined = doc;
  let m: RegExpExecArray | null;
  re.lastIndex = 1;
  while ((m = re.exec(path)) !== null) {
    if (cur === null || typeof cur !== "object") return undefined;
    if (m[2] !== undefined) {
      if (!Array.isArray(cur)) return undefined;
      cur = cur[Number(m[2])];
    } else {
      const key = m[1] ?? (JSON.parse(`"${m[3] ?? ""}"`) as string);
      if (Array.isArray(cur) || !Object.prototype.hasOwnProperty.call(cur, key)) return undefined;
      cur = cur[key];
    }
  }
  return cur;
}

/**
 * `nft -j list ruleset` JSON with the counter statements of every rule set
 * to the model's counters. `jsonText` must be the document the ruleset was
 * parsed from (positions are JSON paths into it). The output is compact,
 * one line, as `nft -j` prints it.
 * @throws {RulesetSyntaxError} when a rule's position is not in the document
 */
export function nftJsonWithCounters(jsonText: string, rs: Ruleset): string {
  const doc = JSON.parse(jsonText) as Json;
  for (const t of rs.tables) {
    for (const c of t.chains) {
      for (const r of c.rules) {
        if (r.pos.kind !== "json") continue;
        const body = atPath(doc, r.pos.path);
        const expr = body !== undefined && body !== null && typeof body === "object" && !Array.isArray(body) ? body["expr"] : undefined;
        if (!Array.isArray(expr)) throw new RulesetSyntaxError(jsonPos(rs.file, r.pos.path), "rule not found in the JSON document the ruleset was read from");
        for (const s of expr) {
          if (s === null || typeof s !== "object" || Array.isArray(s) || !("counter" in s)) continue;
          const body = s["counter"];
          // A named counter object is a reference, not this rule's counter.
          if (typeof body === "string") continue;
          s["counter"] = { packets: r.counters.packets, bytes: r.counters.bytes };
        }
      }
    }
  }
  return JSON.stringify(doc) + "\n";
}

// ---------------------------------------------------------------------------
// iptables -L -v -n -x

/** iptables' `%8llu `. */
function num8(n: number): string {
  return String(n).padStart(8) + " ";
}

interface ListedFields {
  target: string;
  protoNeg: boolean;
  proto: string;
  fragment: string;
  inIf: string;
  outIf: string;
  src: string;
  dst: string;
  rest: string;
}

/** Splits an `-A` rule line into the columns `iptables -L` prints and the rest. */
function listedFields(r: Rule): ListedFields {
  const tok = tokenize(r.text);
  const f: ListedFields = { target: "", protoNeg: false, proto: "0", fragment: "--", inIf: "*", outIf: "*", src: "", dst: "", rest: "" };
  const v6 = r.family === "ip6";
  f.src = v6 ? "::/0" : "0.0.0.0/0";
  f.dst = f.src;
  const rest: string[] = [];
  let neg = false;
  for (let i = 0; i < tok.length; i++) {
    const t = tok[i] as string;
    const next = (): string => tok[++i] ?? "";
    if (t === "!") {
      neg = true;
      continue;
    }
    switch (t) {
      case "-A":
        next();
        break;
      case "-s":
        f.src = (neg ? "!" : "") + hostText(next(), v6);
        break;
      case "-d":
        f.dst = (neg ? "!" : "") + hostText(next(), v6);
        break;
      case "-i":
        f.inIf = (neg ? "!" : "") + next();
        break;
      case "-o":
        f.outIf = (neg ? "!" : "") + next();
        break;
      case "-p":
        f.protoNeg = neg;
        f.proto = PROTO_NUMS[next()] ?? (tok[i] as string);
        break;
      case "-f":
        f.fragment = neg ? "!f" : "-f";
        break;
      case "-j":
      case "-g":
        f.target = next();
        break;
      default:
        if (neg) rest.push("!");
        rest.push(t);
    }
    neg = false;
  }
  f.rest = rest.join(" ");
  return f;
}

const PROTO_NUMS: Readonly<Record<string, string>> = {
  tcp: "6",
  udp: "17",
  icmp: "1",
  "ipv6-icmp": "58",
  icmpv6: "58",
  sctp: "132",
  udplite: "136",
  gre: "47",
  esp: "50",
  ah: "51",
  all: "0",
};

function hostText(a: string, v6: boolean): string {
  const host = v6 ? "/128" : "/32";
  return a.endsWith(host) ? a.slice(0, -host.length) : a;
}

function tokenize(s: string): string[] {
  const out: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|(\S+)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(s)) !== null) out.push(m[1] !== undefined ? `"${m[1]}"` : (m[2] as string));
  return out;
}

/**
 * The match column in iptables' own words for the common extensions
 * (conntrack, state, tcp/udp ports, multiport, comment, NAT targets); other
 * options are shown as written.
 */
function listedRest(rest: string): string {
  const tok = tokenize(rest);
  const out: string[] = [];
  for (let i = 0; i < tok.length; i++) {
    const t = tok[i] as string;
    const next = tok[i + 1];
    const neg = t === "!";
    const o = neg ? (next ?? "") : t;
    const arg = tok[i + (neg ? 2 : 1)] ?? "";
    const bang = neg ? "!" : "";
    const take = (s: string): void => {
      out.push(s);
      i += neg ? 2 : 1;
    };
    if (t === "-m") {
      const mod = next ?? "";
      i++;
      if (mod === "tcp" || mod === "udp") out.push(mod);
      else if (mod === "multiport") out.push("multiport");
      else if (mod === "addrtype") out.push("ADDRTYPE match");
      else if (mod !== "conntrack" && mod !== "state" && mod !== "comment") out.push(mod);
      continue;
    }
    switch (o) {
      case "--ctstate":
        take(`ctstate ${bang}${arg}`);
        break;
      case "--state":
        take(`state ${bang}${arg}`);
        break;
      case "--dport":
      case "--destination-port":
        take(`${bang}dpt${arg.includes(":") ? "s" : ""}:${arg}`);
        break;
      case "--sport":
      case "--source-port":
        take(`${bang}spt${arg.includes(":") ? "s" : ""}:${arg}`);
        break;
      case "--dports":
        take(`${bang}dports ${arg}`);
        break;
      case "--sports":
        take(`${bang}sports ${arg}`);
        break;
      case "--dst-type":
        take(`dst-type ${bang}${arg}`);
        break;
      case "--src-type":
        take(`src-type ${bang}${arg}`);
        break;
      case "--comment":
        take(`/* ${arg.replace(/^"|"$/g, "")} */`);
        break;
      case "--to-destination":
      case "--to-source":
        take(`to:${arg}`);
        break;
      default:
        out.push(t);
    }
  }
  // iptables prints the multiport and tcp/udp module names before their options.
  return out.join(" ").replace(/\b(tcp|udp) ((?:!)?(?:dpts?|spts?):)/g, "$1 $2");
}

/** References to a user chain (jumps and gotos), as `iptables -L` counts them. */
function references(rs: Ruleset, c: Chain): number {
  let n = 0;
  const t = rs.tables.find((x) => x.family === c.family && x.name === c.table);
  if (!t) return 0;
  for (const ch of t.chains) {
    for (const r of ch.rules) {
      const v = ruleVerdict(r);
      if ((v?.kind === "jump" || v?.kind === "goto") && v.target === c.name) n++;
    }
  }
  return n;
}

/**
 * The chains of an iptables ruleset listed as `iptables -L -v -n -x` does:
 * the policy line, the header, the counter and address columns, and each
 * match and target in the words of its module's printer (src/firewall/xt/),
 * byte for byte as iptables-nft 1.8 prints them (checked against the real
 * binary in test/kernel/listing.test.ts).
 */
export function formatIptablesListing(rs: Ruleset, tableName?: string): string {
  const out: string[] = [];
  for (const t of rs.tables) {
    if (tableName !== undefined && t.name !== tableName) continue;
    out.push(`# table ${t.name}${t.family === "ip6" ? " (ip6tables)" : ""}`);
    // Every built-in chain of the table exists in the kernel (policy ACCEPT)
    // whether or not the file declared it; they list first, in hook order.
    const builtins = Object.keys(IPTABLES_BUILTINS[t.name] ?? {});
    const chains: Array<Chain | { name: string; missing: true }> = [
      ...builtins.map((n) => t.chainByName.get(n) ?? { name: n, missing: true as const }),
      ...t.chains.filter((c) => !builtins.includes(c.name)),
    ];
    chains.forEach((c, i) => {
      // With -n, ip6tables keeps the 19-column address fields of iptables.
      const w = 19;
      const header = `    pkts      bytes target     prot opt in     out     ${"source".padEnd(w + 1)} ${"destination".padEnd(w)} `;
      if ("missing" in c) {
        if (i > 0) out.push("");
        out.push(`Chain ${c.name} (policy ACCEPT 0 packets, 0 bytes)`, header);
        return;
      }
      if (i > 0) out.push("");
      if (c.base) out.push(`Chain ${c.name} (policy ${c.base.policy.toUpperCase()} ${c.policyCounters.packets} packets, ${c.policyCounters.bytes} bytes)`);
      else out.push(`Chain ${c.name} (${references(rs, c)} references)`);
      out.push(header);
      for (const r of c.rules) {
        const f = listedFields(r);
        let line = num8(r.counters.packets) + num8(r.counters.bytes);
        line += (r.listing ? r.listing.target : f.target).padEnd(9) + " ";
        line += (f.protoNeg ? "!" : " ") + f.proto.padEnd(4) + " ";
        line += f.fragment + " ";
        line += " " + f.inIf.padEnd(6) + " ";
        line += f.outIf.padEnd(6) + " ";
        // The address columns start with their negation flag ("!" or a space).
        const addr = (a: string) => (a.startsWith("!") ? "!" + a.slice(1).padEnd(w) : " " + a.padEnd(w)) + " ";
        line += addr(f.src) + addr(f.dst);
        if (r.listing) line += r.listing.extra;
        else {
          // A rule kept as never-matching (--allow-unsupported): its options as written.
          const rest = listedRest(f.rest);
          if (rest) line += " " + rest;
        }
        out.push(line);
      }
    });
    out.push("");
  }
  return out.join("\n");
}

/**
 * The nft counterpart: per base chain its policy, then each rule with its
 * packets and bytes; a star marks rules without a counter statement (the
 * kernel keeps no count for them).
 */
export function formatNftListing(rs: Ruleset): string {
  const out: string[] = ["     pkts      bytes  rule (* = no counter statement: not counted by the kernel)"];
  for (const t of rs.tables) {
    out.push(`table ${t.family} ${t.name}`);
    for (const c of t.chains) {
      const b = c.base;
      out.push(
        b
          ? `  chain ${c.name} (type ${b.type} hook ${b.hook} priority ${b.priority}; policy ${b.policy}: ${c.policyCounters.packets} packets, ${c.policyCounters.bytes} bytes)`
          : `  chain ${c.name}`,
      );
      for (const r of c.rules) {
        // Rules without a counter statement have no kernel counter: ctlab's count is shown, starred.
        const cnt = `${String(r.counters.packets).padStart(8)} ${String(r.counters.bytes).padStart(10)}${r.counted ? " " : "*"}`;
        out.push(`  ${cnt} ${r.text}`);
      }
    }
  }
  return out.join("\n") + "\n";
}

/** One rule's counters as JSON-ready data. */
export interface RuleCounterRow {
  readonly id: number;
  readonly family: string;
  readonly table: string;
  readonly chain: string;
  readonly position: string;
  readonly text: string;
  readonly packets: number;
  readonly bytes: number;
  readonly counted: boolean;
}

/** Every rule's and base chain's counters, in file order. */
export function countersToJson(rs: Ruleset): {
  rules: RuleCounterRow[];
  policies: Array<{ family: string; table: string; chain: string; policy: string; packets: number; bytes: number }>;
} {
  const rules: RuleCounterRow[] = [];
  const policies: Array<{ family: string; table: string; chain: string; policy: string; packets: number; bytes: number }> = [];
  for (const t of rs.tables) {
    for (const c of t.chains) {
      if (c.base)
        policies.push({
          family: t.family,
          table: t.name,
          chain: c.name,
          policy: c.base.policy,
          packets: c.policyCounters.packets,
          bytes: c.policyCounters.bytes,
        });
      for (const r of c.rules) {
        rules.push({
          id: r.id,
          family: r.family,
          table: r.table,
          chain: r.chain,
          position: formatPos(r.pos),
          text: r.text,
          packets: r.counters.packets,
          bytes: r.counters.bytes,
          counted: r.counted || rs.syntax === "iptables",
        });
      }
    }
  }
  return { rules, policies };
}

/** A difference between the counters of two readings of the same ruleset. */
export interface CounterDifference {
  readonly where: string;
  readonly text: string;
  readonly expected: { packets: number; bytes: number };
  readonly actual: { packets: number; bytes: number };
}

/**
 * Compares the counters of two models of the same ruleset (e.g. the kernel's
 * `iptables-save -c` after a replay, and ctlab's), rule by rule in chain
 * order and policy by policy (nft listings carry no policy counters: pass
 * `policies: false`; `countedOnly` skips nft rules without a counter).
 * Chains of `expected` missing in `actual` are reported; extra chains in
 * `actual` are not.
 */
export function compareCounters(expected: Ruleset, actual: Ruleset, opts: { policies?: boolean; countedOnly?: boolean } = {}): CounterDifference[] {
  const policies = opts.policies !== false;
  const countedOnly = opts.countedOnly === true;
  const diffs: CounterDifference[] = [];
  const key = (c: Chain) => `${c.family} ${c.table} ${c.name}`;
  const act = new Map<string, Chain>();
  for (const t of actual.tables) for (const c of t.chains) act.set(key(c), c);
  for (const t of expected.tables) {
    for (const c of t.chains) {
      const o = act.get(key(c));
      if (!o) {
        diffs.push({ where: key(c), text: "chain missing", expected: c.policyCounters, actual: { packets: -1, bytes: -1 } });
        continue;
      }
      if (policies && c.base && (c.policyCounters.packets !== o.policyCounters.packets || c.policyCounters.bytes !== o.policyCounters.bytes)) {
        diffs.push({ where: `${key(c)} policy`, text: c.base.policy, expected: { ...c.policyCounters }, actual: { ...o.policyCounters } });
      }
      c.rules.forEach((r, i) => {
        const x = o.rules[i];
        if (!x) {
          diffs.push({ where: `${key(c)} rule ${i + 1}`, text: r.text, expected: { ...r.counters }, actual: { packets: -1, bytes: -1 } });
          return;
        }
        if (countedOnly && !r.counted) return;
        if (r.counters.packets !== x.counters.packets || r.counters.bytes !== x.counters.bytes) {
          diffs.push({ where: `${key(c)} rule ${i + 1}`, text: r.text, expected: { ...r.counters }, actual: { ...x.counters } });
        }
      });
    }
  }
  return diffs;
}
