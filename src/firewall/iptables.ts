/**
 * iptables-save / ip6tables-save text → Ruleset, and back (`iptables-save -c`).
 *
 * Reads what iptables-save prints (legacy and nft backends print the same
 * syntax) and what people feed to iptables-restore: `*table` sections,
 * `:CHAIN POLICY [p:b]`, rules with or without `[p:b]` counters, `COMMIT`,
 * comments, quoting as iptables-restore splits it (add_param_to_argv:
 * double quotes group, a backslash inside quotes escapes the next character).
 *
 * Every token carries its line and column so that each error names the exact
 * place. Features ctlab does not model raise an unsupported-feature error; with
 * `allowUnsupported` such rules are kept as never-matching and listed in
 * `ruleset.skipped`.
 */
import { RulesetSyntaxError, SKIP_HINT, q, textPos } from "./errors.js";
import type { TextPos } from "./errors.js";
import {
  IPTABLES_BUILTINS,
  IPTABLES_PRIORITY,
  addChain,
  checkChainGraph,
  emptyRuleset,
  newTable,
} from "./model.js";
import type { Action, BaseChain, Chain, Family, IpSet, Match, NatSpec, Rule, Ruleset, Table } from "./model.js";
import {
  ADDRTYPE_RTN,
  AddrSet,
  CTSTATE_BITS,
  CTSTATUS_BITS,
  ICMPV6_NAMES,
  ICMP_NAMES,
  NumSet,
  PORT_PROTOS,
  PROTO_NUM,
  TCP_FLAG_BITS,
  hex,
  parseAddr,
  parseCidr,
  parseIface,
  parseUint,
  protoName,
} from "./values.js";

/** Options for {@link parseIptables}. */
export interface IptablesParseOptions {
  /** File name used in positions. Default "<stdin>". */
  readonly file?: string;
  /** Keep rules with unsupported features as never-matching instead of failing. */
  readonly allowUnsupported?: boolean;
  /** `ip` (iptables-save) or `ip6` (ip6tables-save). Default: detected from the header and addresses. */
  readonly family?: "ip" | "ip6";
  /** ipset sets for `-m set` (from {@link parseIpsetSave}). */
  readonly ipsets?: Map<string, IpSet>;
}

/** A token of a rule line, with its 1-based column. */
interface Tok {
  readonly text: string;
  readonly col: number;
  readonly quoted: boolean;
}

const TABLES = new Set(["raw", "mangle", "nat", "filter", "security"]);

/** Small service-name table for ports written by name (iptables resolves them with getservbyname). */
const SERVICES: Readonly<Record<string, number>> = {
  ftp: 21,
  ssh: 22,
  telnet: 23,
  smtp: 25,
  domain: 53,
  bootps: 67,
  bootpc: 68,
  tftp: 69,
  http: 80,
  www: 80,
  pop3: 110,
  ntp: 123,
  imap: 143,
  snmp: 161,
  ldap: 389,
  https: 443,
  submission: 587,
  imaps: 993,
  pop3s: 995,
  openvpn: 1194,
  mysql: 3306,
  postgresql: 5432,
  "http-alt": 8080,
};

/** Extensions that iptables knows but ctlab does not model (a better message than "unknown"). */
const KNOWN_UNSUPPORTED_MATCHES = new Set([
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
const KNOWN_UNSUPPORTED_TARGETS = new Set([
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

/** Targets that rewrite fields irrelevant to verdicts and tracking; their options are read and ignored. */
const MANGLE_TARGETS: Readonly<Record<string, Readonly<Record<string, number>>>> = {
  TCPMSS: { "--set-mss": 1, "--clamp-mss-to-pmtu": 0 },
  DSCP: { "--set-dscp": 1, "--set-dscp-class": 1 },
  TOS: { "--set-tos": 1, "--and-tos": 1, "--or-tos": 1, "--xor-tos": 1 },
  TTL: { "--ttl-set": 1, "--ttl-dec": 1, "--ttl-inc": 1 },
  HL: { "--hl-set": 1, "--hl-dec": 1, "--hl-inc": 1 },
  CLASSIFY: { "--set-class": 1 },
  CHECKSUM: { "--checksum-fill": 0 },
  ECN: { "--ecn-tcp-remove": 0 },
  TCPOPTSTRIP: { "--strip-options": 1 },
};

/** One option occurrence of a match or target. */
interface Opt {
  readonly name: string;
  readonly tok: Tok;
  readonly neg: boolean;
  readonly args: Tok[];
}

/** Option name → number of arguments, per match module. */
const MATCH_OPTS: Readonly<Record<string, Readonly<Record<string, number>>>> = {
  tcp: {
    "--sport": 1,
    "--source-port": 1,
    "--dport": 1,
    "--destination-port": 1,
    "--syn": 0,
    "--tcp-flags": 2,
    "--tcp-option": 1,
  },
  udp: { "--sport": 1, "--source-port": 1, "--dport": 1, "--destination-port": 1 },
  sctp: { "--sport": 1, "--source-port": 1, "--dport": 1, "--destination-port": 1, "--chunk-types": 2 },
  icmp: { "--icmp-type": 1 },
  icmp6: { "--icmpv6-type": 1 },
  multiport: {
    "--sports": 1,
    "--source-ports": 1,
    "--dports": 1,
    "--destination-ports": 1,
    "--ports": 1,
  },
  state: { "--state": 1 },
  conntrack: {
    "--ctstate": 1,
    "--ctproto": 1,
    "--ctorigsrc": 1,
    "--ctorigdst": 1,
    "--ctreplsrc": 1,
    "--ctrepldst": 1,
    "--ctorigsrcport": 1,
    "--ctorigdstport": 1,
    "--ctreplsrcport": 1,
    "--ctrepldstport": 1,
    "--ctstatus": 1,
    "--ctexpire": 1,
    "--ctdir": 1,
  },
  connlimit: {
    "--connlimit-upto": 1,
    "--connlimit-above": 1,
    "--connlimit-mask": 1,
    "--connlimit-saddr": 0,
    "--connlimit-daddr": 0,
  },
  limit: { "--limit": 1, "--limit-burst": 1 },
  recent: {
    "--set": 0,
    "--rcheck": 0,
    "--update": 0,
    "--remove": 0,
    "--seconds": 1,
    "--reap": 0,
    "--hitcount": 1,
    "--rttl": 0,
    "--name": 1,
    "--rsource": 0,
    "--rdest": 0,
    "--mask": 1,
  },
  comment: { "--comment": 1 },
  mark: { "--mark": 1 },
  connmark: { "--mark": 1 },
  set: {
    "--match-set": 2,
    "--set": 2,
    "--return-nomatch": 0,
    "--update-counters": 0,
    "--update-subcounters": 0,
    "--packets-eq": 1,
    "--packets-lt": 1,
    "--packets-gt": 1,
    "--bytes-eq": 1,
    "--bytes-lt": 1,
    "--bytes-gt": 1,
  },
  addrtype: { "--src-type": 1, "--dst-type": 1, "--limit-iface-in": 0, "--limit-iface-out": 0 },
  statistic: { "--mode": 1, "--probability": 1, "--every": 1, "--packet": 1 },
  helper: { "--helper": 1 },
  iprange: { "--src-range": 1, "--dst-range": 1 },
};

/** Option name → number of arguments, per target. */
const TARGET_OPTS: Readonly<Record<string, Readonly<Record<string, number>>>> = {
  ACCEPT: {},
  DROP: {},
  RETURN: {},
  REJECT: { "--reject-with": 1 },
  LOG: {
    "--log-level": 1,
    "--log-prefix": 1,
    "--log-tcp-sequence": 0,
    "--log-tcp-options": 0,
    "--log-ip-options": 0,
    "--log-uid": 0,
    "--log-macdecode": 0,
  },
  NFLOG: { "--nflog-group": 1, "--nflog-prefix": 1, "--nflog-range": 1, "--nflog-size": 1, "--nflog-threshold": 1 },
  MARK: { "--set-xmark": 1, "--set-mark": 1, "--and-mark": 1, "--or-mark": 1, "--xor-mark": 1 },
  CONNMARK: {
    "--set-xmark": 1,
    "--set-mark": 1,
    "--and-mark": 1,
    "--or-mark": 1,
    "--xor-mark": 1,
    "--save-mark": 0,
    "--restore-mark": 0,
    "--nfmask": 1,
    "--ctmask": 1,
    "--mask": 1,
  },
  NOTRACK: {},
  CT: {
    "--notrack": 0,
    "--helper": 1,
    "--zone": 1,
    "--zone-orig": 1,
    "--zone-reply": 1,
    "--timeout": 1,
    "--ctevents": 1,
    "--expevents": 1,
  },
  SNAT: { "--to-source": 1, "--random": 0, "--random-fully": 0, "--persistent": 0 },
  DNAT: { "--to-destination": 1, "--random": 0, "--persistent": 0 },
  MASQUERADE: { "--to-ports": 1, "--random": 0, "--random-fully": 0 },
  REDIRECT: { "--to-ports": 1, "--random": 0 },
  SYNPROXY: { "--sack-perm": 0, "--timestamp": 0, "--wscale": 1, "--mss": 1, "--ecn": 0 },
  ...MANGLE_TARGETS,
};

const NAT_TARGETS = new Set(["SNAT", "DNAT", "MASQUERADE", "REDIRECT"]);

/** Splits one line into tokens the way iptables-restore does (add_param_to_argv). */
function tokenize(line: string, lineNo: number, file: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  const n = line.length;
  while (i < n) {
    const c = line[i]!;
    if (c === " " || c === "\t") {
      i++;
      continue;
    }
    const start = i;
    let text = "";
    let quoted = false;
    // A token ends at whitespace or at a closing quote; an opening quote may follow unquoted characters.
    for (;;) {
      if (i >= n) break;
      const ch = line[i]!;
      if (ch === '"') {
        quoted = true;
        i++;
        let closed = false;
        while (i < n) {
          const d = line[i]!;
          if (d === "\\" && i + 1 < n) {
            text += line[i + 1];
            i += 2;
            continue;
          }
          if (d === '"') {
            closed = true;
            i++;
            break;
          }
          text += d;
          i++;
        }
        if (!closed) throw new RulesetSyntaxError(textPos(file, lineNo, start + 1), "unterminated quoted string");
        break;
      }
      if (ch === " " || ch === "\t") break;
      text += ch;
      i++;
    }
    if (text.length > 1023) throw new RulesetSyntaxError(textPos(file, lineNo, start + 1), "parameter too long: iptables allows 1023 characters");
    out.push({ text, col: start + 1, quoted });
  }
  return out;
}

/** Detects ip6tables-save input: its header, or IPv6 addresses / ICMPv6 in rules. */
function detectFamily(text: string): "ip" | "ip6" {
  if (/^# Generated by ip6tables-save/m.test(text)) return "ip6";
  if (/^# Generated by iptables-save/m.test(text)) return "ip";
  if (/\s(?:-s|-d|--source|--destination)\s+!?\s*[0-9a-fA-F]*:[0-9a-fA-F:]*[/\s]/.test(text)) return "ip6";
  if (/icmpv6|ipv6-icmp|icmp6/.test(text)) return "ip6";
  return "ip";
}

/** Everything the rule parser needs about its surroundings. */
interface Ctx {
  readonly rs: Ruleset;
  readonly file: string;
  readonly lineNo: number;
  readonly table: Table;
  readonly v6: boolean;
  readonly declared: Set<string>;
  readonly ipsets: Map<string, IpSet>;
}

/**
 * Parses iptables-save / iptables-restore text into a Ruleset.
 * @throws {RulesetSyntaxError} with file:line:column for malformed input, unknown
 *   chains and (without `allowUnsupported`) unsupported features.
 */
export function parseIptables(text: string, opts: IptablesParseOptions = {}): Ruleset {
  const file = opts.file ?? "<stdin>";
  const family: Family = opts.family ?? detectFamily(text);
  const rs = emptyRuleset("iptables", file);
  const ipsets = opts.ipsets ?? new Map<string, IpSet>();
  for (const [k, v] of ipsets) rs.ipsets.set(k, v);
  const lines = text.split("\n");
  if (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();

  // First pass: the chains each table declares, so that `-j NAME` can tell a
  // jump from a target extension wherever the declaration sits.
  const declaredByTable = new Map<number, Set<string>>();
  {
    let cur: Set<string> | null = null;
    lines.forEach((raw, idx) => {
      const line = raw.trimStart();
      if (line.startsWith("*")) {
        cur = new Set();
        declaredByTable.set(idx, cur);
      } else if (cur && line.startsWith(":")) {
        const name = line.slice(1).split(/[ \t]/)[0];
        if (name) cur.add(name);
      } else if (cur && /^(?:-N|--new-chain)[ \t]/.test(line)) {
        const name = line.split(/[ \t]+/)[1];
        if (name) cur.add(name);
      }
    });
  }

  let table: Table | null = null;
  let declared = new Set<string>();
  let preamble: string[] = [];
  let ruleId = 0;
  const allowUnsupported = opts.allowUnsupported === true;

  for (let idx = 0; idx < lines.length; idx++) {
    const lineNo = idx + 1;
    const raw = lines[idx]!.replace(/\r$/, "");
    const lead = raw.length - raw.trimStart().length;
    const line = raw.trimStart();
    const at = (col: number): TextPos => textPos(file, lineNo, col);
    if (line === "" || line.startsWith("#")) {
      if (!table) preamble.push(raw);
      continue;
    }
    if (line.startsWith("*")) {
      if (table) throw new RulesetSyntaxError(at(lead + 1), `table ${q(line.slice(1))} starts before ${q("COMMIT")} of table ${q(table.name)}`);
      const name = line.slice(1).trim();
      if (!TABLES.has(name)) throw new RulesetSyntaxError(at(lead + 2), `unknown table ${q(name)}`, `table ${name}`);
      if (rs.tables.some((t) => t.name === name)) throw new RulesetSyntaxError(at(lead + 2), `table ${q(name)} appears twice`);
      table = newTable(family, name, at(lead + 1), preamble);
      preamble = [];
      declared = declaredByTable.get(idx) ?? new Set();
      continue;
    }
    if (!table) throw new RulesetSyntaxError(at(lead + 1), `line outside a table: expected ${q("*filter")} or another table first`);
    if (line.startsWith(":")) {
      parseChainLine(table, line, lead, at);
      continue;
    }
    if (/^COMMIT[ \t]*$/.test(line)) {
      rs.tables.push(table);
      table = null;
      continue;
    }
    const toks = tokenize(raw, lineNo, file);
    const ctx: Ctx = { rs, file, lineNo, table, v6: family === "ip6", declared, ipsets };
    const r = parseCommand(ctx, toks, raw, ruleId, allowUnsupported);
    if (r) ruleId++;
  }
  if (table) throw new RulesetSyntaxError(textPos(file, lines.length + 1, 1), `table ${q(table.name)} has no ${q("COMMIT")}`);
  rs.trailer.push(...preamble);
  checkChainGraph(rs);
  return rs;
}

/** `:NAME POLICY [p:b]` */
function parseChainLine(table: Table, line: string, lead: number, at: (col: number) => TextPos): void {
  const m = /^:(\S+)(?:[ \t]+(\S+))?(?:[ \t]+\[([0-9]+):([0-9]+)\])?[ \t]*$/.exec(line);
  if (!m) throw new RulesetSyntaxError(at(lead + 1), `malformed chain line: expected ${q(":NAME POLICY [packets:bytes]")}`);
  const name = m[1]!;
  const policy = m[2] ?? "-";
  const packets = m[3] === undefined ? 0 : Number(m[3]);
  const bytes = m[4] === undefined ? 0 : Number(m[4]);
  const policyCol = lead + 2 + name.length + 1;
  if (name.length > 28) throw new RulesetSyntaxError(at(lead + 2), `chain name ${q(name)} is longer than 28 characters`);
  if (table.chainByName.has(name)) throw new RulesetSyntaxError(at(lead + 2), `chain ${q(name)} is declared twice`);
  const hook = IPTABLES_BUILTINS[table.name]?.[name];
  let base: BaseChain | null = null;
  if (hook) {
    if (policy !== "ACCEPT" && policy !== "DROP") {
      throw new RulesetSyntaxError(at(policyCol), `invalid policy ${q(policy)} for built-in chain ${q(name)}: expected ACCEPT or DROP`);
    }
    base = builtinBase(table.name, hook, policy === "ACCEPT" ? "accept" : "drop");
  } else if (policy !== "-") {
    throw new RulesetSyntaxError(at(policyCol), `user chain ${q(name)} cannot have policy ${q(policy)}: only built-in chains of table ${q(table.name)} have one`);
  }
  addChain(table, name, base, at(lead + 1), { packets, bytes });
}

function builtinBase(tableName: string, hook: BaseChain["hook"], policy: "accept" | "drop"): BaseChain {
  const priority = IPTABLES_PRIORITY[`${tableName}:${hook}`] ?? IPTABLES_PRIORITY[tableName] ?? 0;
  const type = tableName === "nat" ? "nat" : tableName === "mangle" && hook === "output" ? "route" : "filter";
  return { type, hook, priority, policy };
}

/** Gets a chain for -A/-I, creating a built-in one that was not declared (iptables-restore does). */
function chainFor(ctx: Ctx, tok: Tok): Chain {
  const c = ctx.table.chainByName.get(tok.text);
  if (c) return c;
  const hook = IPTABLES_BUILTINS[ctx.table.name]?.[tok.text];
  const pos = textPos(ctx.file, ctx.lineNo, tok.col);
  if (hook) return addChain(ctx.table, tok.text, builtinBase(ctx.table.name, hook, "accept"), pos);
  throw new RulesetSyntaxError(pos, `chain ${q(tok.text)} does not exist in table ${q(ctx.table.name)}`);
}

/** Handles one command line (-A, -I, -N, -P, -F). Returns whether a rule was added. */
function parseCommand(ctx: Ctx, toks: Tok[], raw: string, id: number, allowUnsupported: boolean): boolean {
  const pos = (t: Tok): TextPos => textPos(ctx.file, ctx.lineNo, t.col);
  let i = 0;
  let packets = 0;
  let bytes = 0;
  const first = toks[0]!;
  const cm = /^\[([0-9]+):([0-9]+)\]$/.exec(first.text);
  if (cm) {
    packets = Number(cm[1]);
    bytes = Number(cm[2]);
    i = 1;
  } else if (first.text.startsWith("[")) {
    throw new RulesetSyntaxError(pos(first), `malformed counters ${q(first.text)}: expected [packets:bytes]`);
  }
  const cmd = toks[i];
  if (!cmd) throw new RulesetSyntaxError(pos(first), "counters without a rule");
  const chainTok = toks[i + 1];
  switch (cmd.text) {
    case "-A":
    case "--append":
    case "-I":
    case "--insert":
      break;
    case "-N":
    case "--new-chain": {
      if (!chainTok) throw new RulesetSyntaxError(pos(cmd), `missing chain name after ${q(cmd.text)}`);
      if (ctx.table.chainByName.has(chainTok.text)) throw new RulesetSyntaxError(pos(chainTok), `chain ${q(chainTok.text)} already exists`);
      addChain(ctx.table, chainTok.text, null, pos(cmd));
      return false;
    }
    case "-P":
    case "--policy": {
      const pol = toks[i + 2];
      if (!chainTok || !pol) throw new RulesetSyntaxError(pos(cmd), `expected ${q("-P CHAIN POLICY")}`);
      const c = chainFor(ctx, chainTok);
      if (!c.base) throw new RulesetSyntaxError(pos(chainTok), `chain ${q(chainTok.text)} is not a built-in chain: it has no policy`);
      if (pol.text !== "ACCEPT" && pol.text !== "DROP") throw new RulesetSyntaxError(pos(pol), `invalid policy ${q(pol.text)}: expected ACCEPT or DROP`);
      c.base.policy = pol.text === "ACCEPT" ? "accept" : "drop";
      return false;
    }
    case "-F":
    case "--flush": {
      const targets = chainTok ? [chainFor(ctx, chainTok)] : ctx.table.chains;
      for (const c of targets) c.rules.length = 0;
      return false;
    }
    default:
      throw new RulesetSyntaxError(pos(cmd), `unsupported command ${q(cmd.text)}: only -A, -I, -N, -P and -F are read`, `command ${cmd.text}`, true);
  }
  if (!chainTok) throw new RulesetSyntaxError(pos(cmd), `missing chain name after ${q(cmd.text)}`);
  const chain = chainFor(ctx, chainTok);
  let insertAt = -1;
  let specStart = i + 2;
  if (cmd.text === "-I" || cmd.text === "--insert") {
    insertAt = 0;
    const n = toks[specStart];
    if (n && /^[0-9]+$/.test(n.text)) {
      insertAt = Math.max(0, Number(n.text) - 1);
      specStart++;
    }
  }
  const specTok = toks[specStart];
  const spec = specTok ? raw.slice(specTok.col - 1).trimEnd() : "";
  const text = spec === "" ? `-A ${chain.name}` : `-A ${chain.name} ${spec}`;
  let built: Built;
  let unsupported: string | null = null;
  try {
    built = parseSpec(ctx, toks.slice(specStart), chain);
    if (built.counters) {
      packets = built.counters[0];
      bytes = built.counters[1];
    }
  } catch (e) {
    if (!(e instanceof RulesetSyntaxError) || !e.unsupported || !allowUnsupported) throw e;
    unsupported = e.feature;
    ctx.rs.skipped.push({ pos: textPos(ctx.file, ctx.lineNo, e.column), feature: e.feature, message: e.message, text });
    built = { matches: [{ kind: "never", feature: e.feature }], actions: [], comment: null, counters: null, skipFamily: false };
  }
  if (built.skipFamily) return false;
  const rule: Rule = {
    id,
    family: ctx.table.family,
    table: ctx.table.name,
    chain: chain.name,
    matches: built.matches,
    actions: built.actions,
    counters: { packets, bytes },
    counted: true,
    pos: pos(toks[0]!),
    text,
    comment: built.comment,
    unsupported,
    handle: -1,
  };
  if (insertAt >= 0) chain.rules.splice(Math.min(insertAt, chain.rules.length), 0, rule);
  else chain.rules.push(rule);
  return true;
}

interface Built {
  matches: Match[];
  actions: Action[];
  comment: string | null;
  counters: [number, number] | null;
  /** `-4` in an ip6 table or `-6` in an ip table: iptables-restore ignores the rule. */
  skipFamily: boolean;
}

/** Parses the rule specification after the chain name. */
function parseSpec(ctx: Ctx, toks: Tok[], chain: Chain): Built {
  const pos = (t: Tok): TextPos => textPos(ctx.file, ctx.lineNo, t.col);
  const b: Built = { matches: [], actions: [], comment: null, counters: null, skipFamily: false };
  let proto = -1; // -p value, for implicit matches and checks
  let protoNeg = false;
  let protoTok: Tok | null = null;
  let targetSeen: Tok | null = null;
  const loaded = new Set<string>();
  let i = 0;
  const next = (after: Tok, what: string): Tok => {
    const t = toks[i++];
    if (!t) throw new RulesetSyntaxError(pos(after), `missing ${what} after ${q(after.text)}`);
    return t;
  };
  while (i < toks.length) {
    let neg = false;
    let t = toks[i++]!;
    if (t.text === "!" && !t.quoted) {
      neg = true;
      t = next(t, "option");
    }
    const takeArg = (what: string): Tok => {
      let a = next(t, what);
      if (a.text === "!" && !a.quoted) {
        // Old syntax: "-p ! tcp".
        if (neg) throw new RulesetSyntaxError(pos(a), "double negation");
        neg = true;
        a = next(a, what);
      }
      return a;
    };
    switch (t.text) {
      case "-p":
      case "--protocol": {
        const a = takeArg("protocol");
        const n = /^[0-9]{1,3}$/.test(a.text) ? Number(a.text) : PROTO_NUM[a.text.toLowerCase()];
        if (n === undefined || n > 255) throw new RulesetSyntaxError(pos(a), `unknown protocol ${q(a.text)}`);
        if (protoTok) throw new RulesetSyntaxError(pos(t), "protocol given twice");
        proto = n;
        protoNeg = neg;
        protoTok = a;
        if (n !== 0) b.matches.push({ kind: "proto", neg, protos: NumSet.of(n), text: a.text });
        else if (neg) b.matches.push({ kind: "proto", neg: false, protos: new NumSet([]), text: "!all" });
        break;
      }
      case "-s":
      case "--source":
      case "--src":
      case "-d":
      case "--destination":
      case "--dst": {
        const a = takeArg("address");
        const set = parseAddrList(ctx, a, ctx.v6 ? 6 : 4);
        if (neg && set.size > 1) throw new RulesetSyntaxError(pos(t), "! is not allowed with multiple source or destination addresses");
        b.matches.push({ kind: "addr", dir: t.text.startsWith("-s") || t.text.startsWith("--s") ? "src" : "dst", neg, set });
        break;
      }
      case "-i":
      case "--in-interface":
      case "-o":
      case "--out-interface": {
        const a = takeArg("interface");
        if (a.text.length === 0 || a.text.length > 15) throw new RulesetSyntaxError(pos(a), `invalid interface name ${q(a.text)}`);
        const dir = t.text === "-i" || t.text === "--in-interface" ? "in" : "out";
        const hook = chain.base?.hook;
        if (dir === "in" && (hook === "output" || hook === "postrouting")) {
          throw new RulesetSyntaxError(pos(t), `${q("-i")} cannot be used in chain ${q(chain.name)}: there is no input interface at that hook`);
        }
        if (dir === "out" && (hook === "prerouting" || hook === "input")) {
          throw new RulesetSyntaxError(pos(t), `${q("-o")} cannot be used in chain ${q(chain.name)}: there is no output interface at that hook`);
        }
        b.matches.push({ kind: "iface", dir, neg, names: [parseIface(a.text, "+")] });
        break;
      }
      case "-f":
      case "--fragment":
        if (ctx.v6) throw new RulesetSyntaxError(pos(t), `${q("-f")} does not exist in ip6tables: use ${q("-m frag")}`);
        b.matches.push({ kind: "fragment", neg });
        break;
      case "-4":
      case "--ipv4":
      case "-6":
      case "--ipv6":
        if ((t.text === "-4" || t.text === "--ipv4") === ctx.v6) b.skipFamily = true;
        break;
      case "-c":
      case "--set-counters": {
        const p = next(t, "packet count");
        const by = next(p, "byte count");
        if (!/^[0-9]+$/.test(p.text) || !/^[0-9]+$/.test(by.text)) throw new RulesetSyntaxError(pos(p), "counters must be numbers");
        b.counters = [Number(p.text), Number(by.text)];
        break;
      }
      case "-m":
      case "--match": {
        if (neg) throw new RulesetSyntaxError(pos(t), `${q("!")} cannot negate ${q("-m")}`);
        const name = next(t, "match name");
        const mod = name.text === "icmpv6" ? "icmp6" : name.text;
        const spec = MATCH_OPTS[mod];
        if (!spec) {
          const known = KNOWN_UNSUPPORTED_MATCHES.has(mod);
          throw new RulesetSyntaxError(
            pos(t),
            known ? `unsupported match ${q(`-m ${name.text}`)}: ${SKIP_HINT}` : `unknown match ${q(`-m ${name.text}`)}: ${SKIP_HINT}`,
            `-m ${name.text}`,
            true,
          );
        }
        loaded.add(mod);
        const opts = readOpts(ctx, toks, i, spec, `match ${q(mod)}`);
        i = opts.next;
        b.matches.push(...buildMatch(ctx, mod, name, opts.opts, { proto, protoNeg, protoTok }, b));
        break;
      }
      case "-j":
      case "--jump":
      case "-g":
      case "--goto": {
        if (neg) throw new RulesetSyntaxError(pos(t), `${q("!")} cannot negate ${q(t.text)}`);
        if (targetSeen) throw new RulesetSyntaxError(pos(t), `more than one target: ${q(targetSeen.text)} was given before`);
        targetSeen = t;
        const name = next(t, "target");
        const isGoto = t.text === "-g" || t.text === "--goto";
        if (isGoto || (!TARGET_OPTS[name.text] && !KNOWN_UNSUPPORTED_TARGETS.has(name.text) && ctx.declared.has(name.text))) {
          if (!ctx.declared.has(name.text)) {
            throw new RulesetSyntaxError(pos(name), `chain ${q(name.text)} does not exist in table ${q(ctx.table.name)}`, "syntax");
          }
          if (IPTABLES_BUILTINS[ctx.table.name]?.[name.text]) {
            throw new RulesetSyntaxError(pos(name), `cannot jump to built-in chain ${q(name.text)}`);
          }
          b.actions.push(isGoto ? { kind: "goto", target: name.text } : { kind: "jump", target: name.text });
          break;
        }
        const spec = TARGET_OPTS[name.text];
        if (!spec) {
          if (KNOWN_UNSUPPORTED_TARGETS.has(name.text)) {
            throw new RulesetSyntaxError(pos(t), `unsupported target ${q(`-j ${name.text}`)}: ${SKIP_HINT}`, `-j ${name.text}`, true);
          }
          throw new RulesetSyntaxError(pos(name), `chain ${q(name.text)} does not exist in table ${q(ctx.table.name)}`, `-j ${name.text}`);
        }
        const opts = readOpts(ctx, toks, i, spec, `target ${q(name.text)}`);
        i = opts.next;
        b.actions.push(...buildTarget(ctx, name, opts.opts, chain, proto));
        break;
      }
      default: {
        // An option of the protocol's own match without "-m" (iptables loads it implicitly).
        const implicit = proto === 6 ? "tcp" : proto === 17 ? "udp" : proto === 132 ? "sctp" : proto === 1 ? "icmp" : proto === 58 ? "icmp6" : "";
        const spec = implicit ? MATCH_OPTS[implicit] : undefined;
        if (spec && spec[t.text] !== undefined && !loaded.has(implicit)) {
          i--;
          if (neg) i--;
          loaded.add(implicit);
          const opts = readOpts(ctx, toks, i, spec, `match ${q(implicit)}`);
          i = opts.next;
          b.matches.push(...buildMatch(ctx, implicit, protoTok!, opts.opts, { proto, protoNeg, protoTok }, b));
          break;
        }
        if (t.text.startsWith("-")) {
          throw new RulesetSyntaxError(pos(t), `unknown option ${q(t.text)}`, t.text);
        }
        throw new RulesetSyntaxError(pos(t), `unexpected argument ${q(t.text)}`);
      }
    }
  }
  return b;
}

/** Reads the options of one match or target starting at toks[i]. Stops at the first option it does not know. */
function readOpts(ctx: Ctx, toks: Tok[], start: number, spec: Readonly<Record<string, number>>, owner: string): { opts: Opt[]; next: number } {
  const pos = (t: Tok): TextPos => textPos(ctx.file, ctx.lineNo, t.col);
  const opts: Opt[] = [];
  let i = start;
  while (i < toks.length) {
    let j = i;
    let neg = false;
    let t = toks[j]!;
    if (t.text === "!" && !t.quoted) {
      const n = toks[j + 1];
      if (!n || spec[n.text] === undefined) break;
      neg = true;
      t = n;
      j++;
    }
    const arity = spec[t.text];
    if (arity === undefined) break;
    j++;
    const args: Tok[] = [];
    for (let k = 0; k < arity; k++) {
      let a = toks[j++];
      if (a && a.text === "!" && !a.quoted && k === 0 && !neg) {
        neg = true; // old syntax: --dport ! 22
        a = toks[j++];
      }
      if (!a) throw new RulesetSyntaxError(pos(t), `missing value for ${q(t.text)} of ${owner}`);
      args.push(a);
    }
    opts.push({ name: t.text, tok: t, neg, args });
    i = j;
  }
  return { opts, next: i };
}

interface ProtoInfo {
  proto: number;
  protoNeg: boolean;
  protoTok: Tok | null;
}

function unsupportedOpt(ctx: Ctx, o: Opt, owner: string): RulesetSyntaxError {
  return new RulesetSyntaxError(
    textPos(ctx.file, ctx.lineNo, o.tok.col),
    `unsupported option ${q(o.name)} of ${owner}: ${SKIP_HINT}`,
    `${owner.replace(/"/g, "")} ${o.name}`,
    true,
  );
}

/** Turns one `-m NAME` and its options into matches. */
function buildMatch(ctx: Ctx, mod: string, modTok: Tok, opts: Opt[], pi: ProtoInfo, b: Built): Match[] {
  const pos = (t: Tok): TextPos => textPos(ctx.file, ctx.lineNo, t.col);
  const out: Match[] = [];
  const needProto = (protos: readonly number[], what: string): void => {
    if (pi.proto < 0 || pi.protoNeg || !protos.includes(pi.proto)) {
      throw new RulesetSyntaxError(pos(modTok), `${what} needs ${q("-p")} with ${protos.map((p) => protoName(p)).join(", ")}`);
    }
  };
  switch (mod) {
    case "tcp":
    case "udp":
    case "sctp": {
      const pnum = mod === "tcp" ? 6 : mod === "udp" ? 17 : 132;
      needProto([pnum], `match ${q(mod)}`);
      const protos = NumSet.of(pnum);
      for (const o of opts) {
        switch (o.name) {
          case "--sport":
          case "--source-port":
          case "--dport":
          case "--destination-port":
            out.push({ kind: "port", dir: o.name.includes("s") && !o.name.includes("dest") && o.name !== "--dport" ? "src" : "dst", neg: o.neg, protos, set: parsePortRange(ctx, o.args[0]!) });
            break;
          case "--syn":
            out.push({ kind: "tcpflags", op: "eq", neg: o.neg, mask: 0x17, comp: 0x02 });
            break;
          case "--tcp-flags":
            out.push({ kind: "tcpflags", op: "eq", neg: o.neg, mask: parseFlags(ctx, o.args[0]!), comp: parseFlags(ctx, o.args[1]!) });
            break;
          default:
            throw unsupportedOpt(ctx, o, `match ${q(mod)}`);
        }
      }
      if (out.length === 0) out.push({ kind: "port", dir: "dst", neg: false, protos, set: new NumSet([0, 65535]) });
      return out;
    }
    case "icmp":
    case "icmp6": {
      const v6 = mod === "icmp6";
      if (v6 !== ctx.v6) throw new RulesetSyntaxError(pos(modTok), `match ${q(mod)} is not available in ${ctx.v6 ? "ip6tables" : "iptables"}`);
      needProto([v6 ? 58 : 1], `match ${q(mod)}`);
      for (const o of opts) out.push(parseIcmpType(ctx, o, v6));
      return out;
    }
    case "multiport": {
      needProto(PORT_PROTOS, `match ${q("multiport")}`);
      if (opts.length !== 1) throw new RulesetSyntaxError(pos(modTok), `match ${q("multiport")} takes exactly one of --sports, --dports, --ports`);
      const o = opts[0]!;
      const parts = o.args[0]!.text.split(",");
      if (parts.length > 15) throw new RulesetSyntaxError(pos(o.args[0]!), "too many ports: multiport allows 15");
      const pairs: number[] = [];
      for (const p of parts) {
        const r = parsePortRange(ctx, o.args[0]!, p);
        pairs.push(...r.data);
      }
      const dir = o.name === "--ports" ? "any" : o.name.startsWith("--s") ? "src" : "dst";
      out.push({ kind: "port", dir, neg: o.neg, protos: NumSet.of(pi.proto), set: new NumSet(pairs) });
      return out;
    }
    case "state":
    case "conntrack": {
      for (const o of opts) out.push(buildCtOpt(ctx, mod, o));
      return out;
    }
    case "connlimit": {
      let above = -1;
      let upto = -1;
      let mask = ctx.v6 ? 128 : 32;
      let key: "saddr" | "daddr" = "saddr";
      for (const o of opts) {
        const a = o.args[0];
        switch (o.name) {
          case "--connlimit-above":
            above = num(ctx, a!, 0xffffffff);
            if (o.neg) {
              upto = above;
              above = -1;
            }
            break;
          case "--connlimit-upto":
            upto = num(ctx, a!, 0xffffffff);
            if (o.neg) {
              above = upto;
              upto = -1;
            }
            break;
          case "--connlimit-mask":
            mask = num(ctx, a!, ctx.v6 ? 128 : 32);
            break;
          case "--connlimit-saddr":
            key = "saddr";
            break;
          case "--connlimit-daddr":
            key = "daddr";
            break;
        }
      }
      if ((above < 0) === (upto < 0)) throw new RulesetSyntaxError(pos(modTok), `match ${q("connlimit")} needs exactly one of --connlimit-above and --connlimit-upto`);
      out.push({ kind: "connlimit", above: above >= 0, limit: above >= 0 ? above : upto, maskLen: mask, key, slot: ctx.rs.slots++ });
      return out;
    }
    case "limit": {
      let rate = 3;
      let unitSec = 3600;
      let burst = 5;
      for (const o of opts) {
        if (o.neg) throw new RulesetSyntaxError(pos(o.tok), `${q("!")} cannot negate ${q(o.name)}`);
        if (o.name === "--limit") {
          const r = parseRate(ctx, o.args[0]!);
          rate = r.rate;
          unitSec = r.unitSec;
        } else burst = num(ctx, o.args[0]!, 10000);
      }
      out.push({ kind: "limit", over: false, rate, unitSec, burst, slot: ctx.rs.slots++ });
      return out;
    }
    case "recent": {
      let op: "set" | "rcheck" | "update" | "remove" | null = null;
      let neg = false;
      let name = "DEFAULT";
      let seconds = 0;
      let hitcount = 0;
      let reap = false;
      let rttl = false;
      let side: "src" | "dst" = "src";
      let maskLen = ctx.v6 ? 128 : 32;
      for (const o of opts) {
        const a = o.args[0];
        switch (o.name) {
          case "--set":
          case "--rcheck":
          case "--update":
          case "--remove":
            if (op) throw new RulesetSyntaxError(pos(o.tok), `match ${q("recent")} takes only one of --set, --rcheck, --update, --remove`);
            op = o.name.slice(2) as "set" | "rcheck" | "update" | "remove";
            neg = o.neg;
            break;
          case "--name":
            name = a!.text;
            break;
          case "--seconds":
            seconds = num(ctx, a!, 0xffffffff);
            break;
          case "--hitcount":
            hitcount = num(ctx, a!, 65535);
            break;
          case "--reap":
            reap = true;
            break;
          case "--rttl":
            rttl = true;
            break;
          case "--rsource":
            side = "src";
            break;
          case "--rdest":
            side = "dst";
            break;
          case "--mask": {
            const m = parseAddr(a!.text);
            const len = m && m.family === (ctx.v6 ? 6 : 4) ? maskLenOf(m.family, m.words) : -1;
            if (len < 0) throw new RulesetSyntaxError(pos(a!), `invalid mask ${q(a!.text)}: expected a contiguous netmask`);
            maskLen = len;
            break;
          }
        }
      }
      if (!op) throw new RulesetSyntaxError(pos(modTok), `match ${q("recent")} needs one of --set, --rcheck, --update, --remove`);
      if ((seconds || hitcount) && (op === "set" || op === "remove")) {
        throw new RulesetSyntaxError(pos(modTok), `--seconds and --hitcount need --rcheck or --update`);
      }
      if (reap && !seconds) throw new RulesetSyntaxError(pos(modTok), `--reap needs --seconds`);
      out.push({ kind: "recent", neg, op, name, seconds, hitcount, reap, rttl, side, maskLen, slot: ctx.rs.slots++ });
      return out;
    }
    case "comment": {
      for (const o of opts) {
        if (o.args[0]!.text.length > 255) throw new RulesetSyntaxError(pos(o.args[0]!), "comment longer than 255 characters");
        b.comment = o.args[0]!.text;
        out.push({ kind: "comment", text: o.args[0]!.text });
      }
      return out;
    }
    case "mark":
    case "connmark": {
      for (const o of opts) {
        const { value, mask } = parseValueMask(ctx, o.args[0]!, 0xffffffff);
        out.push({ kind: "mark", source: mod === "mark" ? "meta" : "ct", neg: o.neg, mask, values: NumSet.of(value & mask) });
      }
      return out;
    }
    case "set": {
      for (const o of opts) {
        if (o.name === "--match-set" || o.name === "--set") {
          const nameTok = o.args[0]!;
          const set = ctx.ipsets.get(nameTok.text);
          if (!set) {
            throw new RulesetSyntaxError(pos(nameTok), `unknown ipset ${q(nameTok.text)}: pass the ${q("ipset save")} output that creates it`, "-m set");
          }
          const dims = o.args[1]!.text.split(",");
          if (dims.some((d) => d !== "src" && d !== "dst") || dims.length === 0 || dims.length > 6) {
            throw new RulesetSyntaxError(pos(o.args[1]!), `invalid set flags ${q(o.args[1]!.text)}: expected src/dst separated by commas`);
          }
          if (set.family !== (ctx.v6 ? 6 : 4)) {
            throw new RulesetSyntaxError(pos(nameTok), `ipset ${q(set.name)} holds ${set.family === 6 ? "IPv6" : "IPv4"} entries, not usable in ${ctx.v6 ? "ip6tables" : "iptables"}`);
          }
          out.push({ kind: "ipset", neg: o.neg, set, dims: dims as ("src" | "dst")[] });
        } else if (o.name === "--return-nomatch" || o.name === "--update-counters" || o.name === "--update-subcounters") {
          // Counter bookkeeping inside ipset: no effect on matching here.
        } else throw unsupportedOpt(ctx, o, `match ${q("set")}`);
      }
      if (out.length === 0) throw new RulesetSyntaxError(pos(modTok), `match ${q("set")} needs --match-set`);
      return out;
    }
    case "addrtype": {
      let src = 0;
      let dst = 0;
      let srcNeg = false;
      let dstNeg = false;
      let limitIfaceIn = false;
      let limitIfaceOut = false;
      for (const o of opts) {
        if (o.name === "--src-type" || o.name === "--dst-type") {
          let bits = 0;
          for (const name of o.args[0]!.text.split(",")) {
            const rtn = ADDRTYPE_RTN[name.toUpperCase()];
            if (rtn === undefined) throw new RulesetSyntaxError(pos(o.args[0]!), `unknown address type ${q(name)}`);
            bits |= 1 << rtn;
          }
          if (o.name === "--src-type") {
            src = bits;
            srcNeg = o.neg;
          } else {
            dst = bits;
            dstNeg = o.neg;
          }
        } else if (o.name === "--limit-iface-in") limitIfaceIn = true;
        else limitIfaceOut = true;
      }
      if (limitIfaceIn && limitIfaceOut) throw new RulesetSyntaxError(pos(modTok), "--limit-iface-in and --limit-iface-out exclude each other");
      out.push({ kind: "addrtype", src, srcNeg, dst, dstNeg, limitIfaceIn, limitIfaceOut });
      return out;
    }
    case "statistic": {
      let mode = "";
      let probability = -1;
      let every = 0;
      let packet = 0;
      let neg = false;
      for (const o of opts) {
        const a = o.args[0]!;
        switch (o.name) {
          case "--mode":
            mode = a.text;
            if (mode !== "random" && mode !== "nth") throw new RulesetSyntaxError(pos(a), `unknown statistic mode ${q(a.text)}: expected random or nth`);
            break;
          case "--probability": {
            neg = neg || o.neg;
            const p = /^[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?$/.test(a.text) ? Number(a.text) : NaN;
            if (!(p >= 0 && p <= 1)) throw new RulesetSyntaxError(pos(a), `invalid probability ${q(a.text)}: expected a number from 0 to 1`);
            probability = p;
            break;
          }
          case "--every":
            neg = neg || o.neg;
            every = num(ctx, a, 0xffffffff);
            if (every === 0) throw new RulesetSyntaxError(pos(a), "--every must be at least 1");
            break;
          case "--packet":
            packet = num(ctx, a, 0xffffffff);
            break;
        }
      }
      if (mode === "random" && probability < 0) throw new RulesetSyntaxError(pos(modTok), `--mode random needs --probability`);
      if (mode === "nth" && every === 0) throw new RulesetSyntaxError(pos(modTok), `--mode nth needs --every`);
      if (mode === "") throw new RulesetSyntaxError(pos(modTok), `match ${q("statistic")} needs --mode`);
      if (mode === "nth" && packet >= every) throw new RulesetSyntaxError(pos(modTok), `--packet must be less than --every`);
      // libxt_statistic stores lround(0x80000000 * p); the kernel compares a 31-bit random value against it.
      out.push({
        kind: "statistic",
        neg,
        mode: mode as "random" | "nth",
        threshold: Math.round(0x80000000 * Math.max(0, probability)),
        probability: Math.max(0, probability),
        every,
        packet,
        slot: ctx.rs.slots++,
      });
      return out;
    }
    case "helper": {
      for (const o of opts) out.push({ kind: "cthelper", neg: o.neg, name: o.args[0]!.text });
      return out;
    }
    case "iprange": {
      for (const o of opts) {
        const a = o.args[0]!;
        const [lo, hi] = a.text.split("-");
        const x = lo ? parseAddr(lo) : null;
        const y = hi ? parseAddr(hi) : null;
        const fam = ctx.v6 ? 6 : 4;
        if (!x || !y || x.family !== fam || y.family !== fam) throw new RulesetSyntaxError(pos(a), `invalid address range ${q(a.text)}`);
        out.push({ kind: "addr", dir: o.name === "--src-range" ? "src" : "dst", neg: o.neg, set: new AddrSet(fam, [{ lo: x.words, hi: y.words }], [a.text]) });
      }
      return out;
    }
    default:
      throw new RulesetSyntaxError(pos(modTok), `unsupported match ${q(`-m ${mod}`)}: ${SKIP_HINT}`, `-m ${mod}`, true);
  }
}

/** `--state` / `--ctstate` / `--ctstatus` / … of -m state and -m conntrack. */
function buildCtOpt(ctx: Ctx, mod: string, o: Opt): Match {
  const pos = (t: Tok): TextPos => textPos(ctx.file, ctx.lineNo, t.col);
  const a = o.args[0]!;
  switch (o.name) {
    case "--state":
    case "--ctstate": {
      let mask = 0;
      for (const s of a.text.split(",")) {
        const bit = CTSTATE_BITS[s.toLowerCase()];
        if (bit === undefined || (mod === "state" && (s === "SNAT" || s === "DNAT"))) {
          throw new RulesetSyntaxError(pos(a), `unknown state ${q(s)}: expected ${mod === "state" ? "INVALID, NEW, ESTABLISHED, RELATED, UNTRACKED" : "INVALID, NEW, ESTABLISHED, RELATED, UNTRACKED, SNAT, DNAT"}`);
        }
        mask |= bit;
      }
      return { kind: "ctstate", neg: o.neg, mask, text: a.text };
    }
    case "--ctstatus": {
      let mask = 0;
      for (const s of a.text.split(",")) {
        const bit = CTSTATUS_BITS[s.toLowerCase()];
        if (bit === undefined || s.toLowerCase() === "snat" || s.toLowerCase() === "dnat" || s.toLowerCase() === "dying") {
          throw new RulesetSyntaxError(pos(a), `unknown status ${q(s)}: expected NONE, EXPECTED, SEEN_REPLY, ASSURED, CONFIRMED`);
        }
        mask |= bit;
      }
      return { kind: "ctstatus", neg: o.neg, mask };
    }
    case "--ctproto": {
      const n = /^[0-9]{1,3}$/.test(a.text) ? Number(a.text) : PROTO_NUM[a.text.toLowerCase()];
      if (n === undefined || n > 255) throw new RulesetSyntaxError(pos(a), `unknown protocol ${q(a.text)}`);
      return { kind: "ctproto", neg: o.neg, proto: n };
    }
    case "--ctorigsrc":
    case "--ctorigdst":
    case "--ctreplsrc":
    case "--ctrepldst": {
      const set = parseAddrList(ctx, a, ctx.v6 ? 6 : 4);
      if (set.size !== 1) throw new RulesetSyntaxError(pos(a), `${q(o.name)} takes one address`);
      return { kind: "ctaddr", field: o.name.slice(4) as "origsrc", neg: o.neg, set };
    }
    case "--ctorigsrcport":
    case "--ctorigdstport":
    case "--ctreplsrcport":
    case "--ctrepldstport":
      return { kind: "ctport", field: o.name.slice(4, -4) as "origsrc", neg: o.neg, set: parsePortRange(ctx, a) };
    case "--ctexpire": {
      const m = /^([0-9]{1,10})(?::([0-9]{1,10}))?$/.exec(a.text);
      if (!m) throw new RulesetSyntaxError(pos(a), `invalid expire range ${q(a.text)}: expected SECONDS or MIN:MAX`);
      const lo = Number(m[1]);
      const hi = m[2] === undefined ? lo : Number(m[2]);
      if (hi < lo || hi > 0xffffffff) throw new RulesetSyntaxError(pos(a), `invalid expire range ${q(a.text)}`);
      return { kind: "ctexpire", neg: o.neg, set: new NumSet([lo, hi]) };
    }
    case "--ctdir": {
      const d = a.text.toUpperCase();
      if (d !== "ORIGINAL" && d !== "REPLY") throw new RulesetSyntaxError(pos(a), `invalid direction ${q(a.text)}: expected ORIGINAL or REPLY`);
      if (o.neg) throw new RulesetSyntaxError(pos(o.tok), `${q("!")} cannot negate --ctdir`);
      return { kind: "ctdir", neg: false, dir: d === "ORIGINAL" ? 0 : 1 };
    }
    default:
      throw unsupportedOpt(ctx, o, `match ${q(mod)}`);
  }
}

/** Builds the actions of `-j TARGET` and its options. */
function buildTarget(ctx: Ctx, nameTok: Tok, opts: Opt[], chain: Chain, proto: number): Action[] {
  const pos = (t: Tok): TextPos => textPos(ctx.file, ctx.lineNo, t.col);
  const name = nameTok.text;
  const has = (o: string) => opts.some((x) => x.name === o);
  const arg = (o: string): Tok | undefined => opts.find((x) => x.name === o)?.args[0];
  for (const o of opts) if (o.neg) throw new RulesetSyntaxError(pos(o.tok), `${q("!")} cannot negate target option ${q(o.name)}`);
  if (NAT_TARGETS.has(name) && ctx.table.name !== "nat") {
    throw new RulesetSyntaxError(pos(nameTok), `target ${q(name)} is only valid in the nat table`);
  }
  if ((name === "NOTRACK" || name === "CT") && ctx.table.name !== "raw") {
    throw new RulesetSyntaxError(pos(nameTok), `target ${q(name)} is only valid in the raw table`);
  }
  const hook = chain.base?.hook;
  switch (name) {
    case "ACCEPT":
      return [{ kind: "accept" }];
    case "DROP":
      return [{ kind: "drop" }];
    case "RETURN":
      return [{ kind: "return" }];
    case "REJECT": {
      const w = arg("--reject-with")?.text ?? (ctx.v6 ? "icmp6-port-unreachable" : "icmp-port-unreachable");
      const ok4 = ["icmp-net-unreachable", "icmp-host-unreachable", "icmp-port-unreachable", "icmp-proto-unreachable", "icmp-net-prohibited", "icmp-host-prohibited", "icmp-admin-prohibited", "tcp-reset", "net-unreach", "host-unreach", "port-unreach", "proto-unreach", "net-prohib", "host-prohib", "admin-prohib", "tcp-rst"];
      const ok6 = ["icmp6-no-route", "no-route", "icmp6-adm-prohibited", "adm-prohibited", "icmp6-addr-unreachable", "addr-unreach", "icmp6-port-unreachable", "port-unreach", "icmp6-policy-fail", "policy-fail", "icmp6-reject-route", "reject-route", "tcp-reset", "tcp-rst"];
      if (!(ctx.v6 ? ok6 : ok4).includes(w)) throw new RulesetSyntaxError(pos(arg("--reject-with") ?? nameTok), `unknown reject type ${q(w)}`);
      if ((w === "tcp-reset" || w === "tcp-rst") && proto !== 6) throw new RulesetSyntaxError(pos(nameTok), `--reject-with tcp-reset needs ${q("-p tcp")}`);
      return [{ kind: "reject", with: w }];
    }
    case "LOG": {
      const lvl = arg("--log-level");
      let level = 4;
      if (lvl) {
        const names = ["emerg", "alert", "crit", "error", "warning", "notice", "info", "debug"];
        const n = /^[0-7]$/.test(lvl.text) ? Number(lvl.text) : names.indexOf(lvl.text === "panic" ? "emerg" : lvl.text === "err" ? "error" : lvl.text === "warn" ? "warning" : lvl.text);
        if (n < 0) throw new RulesetSyntaxError(pos(lvl), `unknown log level ${q(lvl.text)}`);
        level = n;
      }
      const prefix = arg("--log-prefix")?.text ?? "";
      if (prefix.length > 29) throw new RulesetSyntaxError(pos(arg("--log-prefix")!), "log prefix longer than 29 characters");
      return [{ kind: "log", nflog: false, prefix, level, group: -1 }];
    }
    case "NFLOG": {
      const g = arg("--nflog-group");
      return [{ kind: "log", nflog: true, prefix: arg("--nflog-prefix")?.text ?? "", level: -1, group: g ? num(ctx, g, 65535) : 0 }];
    }
    case "MARK":
    case "CONNMARK": {
      const target = name === "MARK" ? "meta" : "ct";
      const out: Action[] = [];
      if (name === "CONNMARK" && (has("--save-mark") || has("--restore-mark"))) {
        const m = arg("--mask");
        let nfmask = 0xffffffff;
        let ctmask = 0xffffffff;
        if (m) nfmask = ctmask = num(ctx, m, 0xffffffff);
        const nf = arg("--nfmask");
        const ct = arg("--ctmask");
        if (nf) nfmask = num(ctx, nf, 0xffffffff);
        if (ct) ctmask = num(ctx, ct, 0xffffffff);
        out.push({ kind: "copymark", to: has("--save-mark") ? "ct" : "meta", nfmask, ctmask });
      } else {
        const o = opts.find((x) => x.name !== "--nfmask" && x.name !== "--ctmask" && x.name !== "--mask");
        if (!o) throw new RulesetSyntaxError(pos(nameTok), `target ${q(name)} needs an operation such as --set-xmark`);
        const a = o.args[0]!;
        let value: number;
        let mask: number;
        switch (o.name) {
          case "--set-xmark": {
            const vm = parseValueMask(ctx, a, 0xffffffff);
            value = vm.value;
            mask = vm.mask;
            break;
          }
          case "--set-mark": {
            // libxt_MARK: --set-mark v/m is xset v/(m|v); without /m the mask is all ones.
            const vm = parseValueMask(ctx, a, 0xffffffff);
            value = vm.value;
            mask = (vm.mask | vm.value) >>> 0;
            break;
          }
          case "--and-mark":
            value = 0;
            mask = ~num(ctx, a, 0xffffffff) >>> 0;
            break;
          case "--or-mark":
            value = num(ctx, a, 0xffffffff);
            mask = value;
            break;
          default:
            value = num(ctx, a, 0xffffffff);
            mask = 0;
            break;
        }
        out.push({ kind: "setmark", target, value, mask });
      }
      return out;
    }
    case "NOTRACK":
      return [{ kind: "notrack" }];
    case "CT": {
      if (has("--notrack")) {
        if (opts.length > 1) throw new RulesetSyntaxError(pos(nameTok), "--notrack cannot be combined with other CT options");
        return [{ kind: "notrack" }];
      }
      const z = arg("--zone") ?? arg("--zone-orig") ?? arg("--zone-reply");
      return [{ kind: "ct", zone: z ? num(ctx, z, 65535) : 0, helper: arg("--helper")?.text ?? "", timeout: arg("--timeout")?.text ?? "" }];
    }
    case "SNAT":
    case "DNAT": {
      const o = name === "SNAT" ? "--to-source" : "--to-destination";
      const spec = arg(o);
      const okHooks = name === "SNAT" ? ["postrouting", "input"] : ["prerouting", "output"];
      if (hook && !okHooks.includes(hook)) throw new RulesetSyntaxError(pos(nameTok), `target ${q(name)} is not valid in chain ${q(chain.name)}`);
      if (!spec) throw new RulesetSyntaxError(pos(nameTok), `target ${q(name)} needs ${q(o)}`);
      return [natSpec(ctx, name === "SNAT" ? "snat" : "dnat", spec, proto, has("--random"), has("--random-fully"), has("--persistent"))];
    }
    case "MASQUERADE":
    case "REDIRECT": {
      const okHook = name === "MASQUERADE" ? ["postrouting"] : ["prerouting", "output"];
      if (hook && !okHook.includes(hook)) throw new RulesetSyntaxError(pos(nameTok), `target ${q(name)} is not valid in chain ${q(chain.name)}`);
      const p = arg("--to-ports");
      let portLo = -1;
      let portHi = -1;
      if (p) {
        if (!PORT_PROTOS.includes(proto)) throw new RulesetSyntaxError(pos(p), `--to-ports needs ${q("-p")} with tcp, udp, sctp or dccp`);
        const m = /^([0-9]{1,5})(?:[-:]([0-9]{1,5}))?$/.exec(p.text);
        if (!m) throw new RulesetSyntaxError(pos(p), `invalid port range ${q(p.text)}`);
        portLo = Number(m[1]);
        portHi = m[2] === undefined ? portLo : Number(m[2]);
        if (portLo > 65535 || portHi > 65535 || portHi < portLo) throw new RulesetSyntaxError(pos(p), `invalid port range ${q(p.text)}`);
      }
      const nat: NatSpec = {
        kind: "nat",
        type: name === "MASQUERADE" ? "masquerade" : "redirect",
        family: ctx.v6 ? 6 : 4,
        addrLo: null,
        addrHi: null,
        portLo,
        portHi,
        random: has("--random"),
        fullyRandom: has("--random-fully"),
        persistent: false,
      };
      return [nat];
    }
    case "SYNPROXY":
      return [{ kind: "synproxy" }];
    default:
      if (MANGLE_TARGETS[name]) return [{ kind: "mangle", name }];
      throw new RulesetSyntaxError(pos(nameTok), `unsupported target ${q(`-j ${name}`)}: ${SKIP_HINT}`, `-j ${name}`, true);
  }
}

/** `addr[-addr][:port[-port]]`, IPv6 addresses in brackets when a port follows. */
function natSpec(ctx: Ctx, type: "snat" | "dnat", tok: Tok, proto: number, random: boolean, fullyRandom: boolean, persistent: boolean): NatSpec {
  const bad = () => new RulesetSyntaxError(textPos(ctx.file, ctx.lineNo, tok.col), `invalid NAT range ${q(tok.text)}: expected ADDR[-ADDR][:PORT[-PORT]]`);
  const s = tok.text;
  let addrPart = s;
  let portPart = "";
  if (ctx.v6) {
    const m = /^\[([^\]]+)\](?:-\[([^\]]+)\])?(?::(.+))?$/.exec(s);
    if (m) {
      addrPart = m[2] ? `${m[1]}-${m[2]}` : m[1]!;
      portPart = m[3] ?? "";
    } else if (s.startsWith(":")) {
      addrPart = "";
      portPart = s.slice(1);
    }
  } else {
    const c = s.indexOf(":");
    if (c >= 0) {
      addrPart = s.slice(0, c);
      portPart = s.slice(c + 1);
    }
  }
  let addrLo: Uint32Array | null = null;
  let addrHi: Uint32Array | null = null;
  if (addrPart !== "") {
    const fam = ctx.v6 ? 6 : 4;
    const dash = addrPart.indexOf("-");
    const a = parseAddr(dash >= 0 ? addrPart.slice(0, dash) : addrPart);
    const b2 = dash >= 0 ? parseAddr(addrPart.slice(dash + 1)) : a;
    if (!a || !b2 || a.family !== fam || b2.family !== fam) throw bad();
    addrLo = a.words;
    addrHi = b2.words;
  }
  let portLo = -1;
  let portHi = -1;
  if (portPart !== "") {
    if (!PORT_PROTOS.includes(proto)) {
      throw new RulesetSyntaxError(textPos(ctx.file, ctx.lineNo, tok.col), `a port in ${q(tok.text)} needs ${q("-p")} with tcp, udp, sctp or dccp`);
    }
    const m = /^([0-9]{1,5})(?:-([0-9]{1,5}))?$/.exec(portPart);
    if (!m) throw bad();
    portLo = Number(m[1]);
    portHi = m[2] === undefined ? portLo : Number(m[2]);
    if (portLo > 65535 || portHi > 65535 || portHi < portLo) throw bad();
  }
  if (!addrLo && portLo < 0) throw bad();
  return { kind: "nat", type, family: ctx.v6 ? 6 : 4, addrLo, addrHi, portLo, portHi, random, fullyRandom, persistent };
}

function parseIcmpType(ctx: Ctx, o: Opt, v6: boolean): Match {
  const a = o.args[0]!;
  const names = v6 ? ICMPV6_NAMES : ICMP_NAMES;
  let pairs: number[];
  const named = names[a.text];
  if (named) {
    pairs = named[0] < 0 ? [0, 0xffff] : [named[0] * 256 + named[1], named[0] * 256 + named[2]];
  } else {
    const m = /^([0-9]{1,3})(?:\/([0-9]{1,3}))?$/.exec(a.text);
    if (!m || Number(m[1]) > 255 || (m[2] !== undefined && Number(m[2]) > 255)) {
      throw new RulesetSyntaxError(textPos(ctx.file, ctx.lineNo, a.col), `unknown ${v6 ? "ICMPv6" : "ICMP"} type ${q(a.text)}`);
    }
    const t = Number(m[1]);
    pairs = m[2] === undefined ? [t * 256, t * 256 + 255] : [t * 256 + Number(m[2]), t * 256 + Number(m[2])];
  }
  return { kind: "icmp", v6, neg: o.neg, types: new NumSet(pairs), text: a.text };
}

/** `port`, `lo:hi`, `:hi`, `lo:` (or a service name). */
function parsePortRange(ctx: Ctx, tok: Tok, text = tok.text): NumSet {
  const bad = () => new RulesetSyntaxError(textPos(ctx.file, ctx.lineNo, tok.col), `invalid port ${q(text)}`);
  const one = (s: string, dflt: number): number => {
    if (s === "") return dflt;
    if (/^[0-9]{1,5}$/.test(s)) {
      const n = Number(s);
      if (n > 65535) throw bad();
      return n;
    }
    const sv = SERVICES[s];
    if (sv === undefined) throw bad();
    return sv;
  };
  const c = text.indexOf(":");
  if (c < 0) {
    const p = one(text, -1);
    if (p < 0) throw bad();
    return new NumSet([p, p]);
  }
  const lo = one(text.slice(0, c), 0);
  const hi = one(text.slice(c + 1), 65535);
  // iptables swaps an inverted range silently (parse_multi_ports / xtables_parse_port range).
  return new NumSet(lo <= hi ? [lo, hi] : [hi, lo]);
}

function parseFlags(ctx: Ctx, tok: Tok): number {
  let v = 0;
  for (const f of tok.text.split(",")) {
    const bit = TCP_FLAG_BITS[f.toLowerCase()];
    if (bit === undefined) throw new RulesetSyntaxError(textPos(ctx.file, ctx.lineNo, tok.col), `unknown TCP flag ${q(f)}`);
    v |= bit;
  }
  return v;
}

function parseAddrList(ctx: Ctx, tok: Tok, family: 4 | 6): AddrSet {
  const ranges: Array<{ lo: Uint32Array; hi: Uint32Array }> = [];
  const parts = tok.text.split(",");
  for (const p of parts) {
    const c = parseCidr(p, family);
    if (!c) {
      const other = parseCidr(p, family === 4 ? 6 : 4);
      if (other) throw new RulesetSyntaxError(textPos(ctx.file, ctx.lineNo, tok.col), `${family === 4 ? "IPv6" : "IPv4"} address ${q(p)} in an ${family === 4 ? "iptables" : "ip6tables"} rule`);
      if (/^[a-zA-Z][a-zA-Z0-9.-]*$/.test(p)) {
        throw new RulesetSyntaxError(textPos(ctx.file, ctx.lineNo, tok.col), `host name ${q(p)} cannot be resolved here: use addresses`, "hostname");
      }
      throw new RulesetSyntaxError(textPos(ctx.file, ctx.lineNo, tok.col), `invalid address ${q(p)}`);
    }
    ranges.push({ lo: c.lo, hi: c.hi });
  }
  return new AddrSet(family, ranges, parts);
}

function parseValueMask(ctx: Ctx, tok: Tok, max: number): { value: number; mask: number } {
  const [v, m] = tok.text.split("/");
  const value = parseUint(v ?? "", max);
  const mask = m === undefined ? 0xffffffff : parseUint(m, max);
  if (Number.isNaN(value) || Number.isNaN(mask) || tok.text.split("/").length > 2) {
    throw new RulesetSyntaxError(textPos(ctx.file, ctx.lineNo, tok.col), `invalid value ${q(tok.text)}: expected VALUE[/MASK]`);
  }
  return { value, mask };
}

function num(ctx: Ctx, tok: Tok, max: number): number {
  const v = parseUint(tok.text, max);
  if (Number.isNaN(v)) throw new RulesetSyntaxError(textPos(ctx.file, ctx.lineNo, tok.col), `invalid number ${q(tok.text)}`);
  return v;
}

function parseRate(ctx: Ctx, tok: Tok): { rate: number; unitSec: number } {
  const m = /^([0-9]{1,10})(?:\/([a-zA-Z]+))?$/.exec(tok.text);
  const bad = () => new RulesetSyntaxError(textPos(ctx.file, ctx.lineNo, tok.col), `invalid rate ${q(tok.text)}: expected N/second, N/minute, N/hour or N/day`);
  if (!m) throw bad();
  const rate = Number(m[1]);
  const u = (m[2] ?? "second").toLowerCase();
  // libxt_limit compares a prefix of the unit name, so "s", "sec" and "second" all work.
  const units: Array<[string, number]> = [
    ["second", 1],
    ["minute", 60],
    ["hour", 3600],
    ["day", 86400],
  ];
  const hit = units.find(([name]) => name.startsWith(u));
  if (!hit || rate === 0) throw bad();
  // xt_limit stores avg = XT_LIMIT_SCALE * unit / rate and rejects 0.
  if (Math.floor((10000 * hit[1]) / rate) === 0) throw new RulesetSyntaxError(textPos(ctx.file, ctx.lineNo, tok.col), `rate ${q(tok.text)} is too fast`);
  return { rate, unitSec: hit[1] };
}

function maskLenOf(family: 4 | 6, w: Uint32Array): number {
  let len = 0;
  let ended = false;
  for (let i = 0; i < (family === 4 ? 1 : 4); i++) {
    for (let b = 31; b >= 0; b--) {
      if (((w[i]! >>> b) & 1) === 1) {
        if (ended) return -1;
        len++;
      } else ended = true;
    }
  }
  return len;
}

// ---------------------------------------------------------------------------
// Serialisation

/** Options for {@link serializeIptables}. */
export interface IptablesSerializeOptions {
  /** Prefix rules with `[packets:bytes]` as `iptables-save -c` does. */
  readonly counters: boolean;
}

/**
 * Writes the ruleset back in iptables-save syntax. With `counters` the output
 * is what `iptables-save -c` prints: policy counters on chain lines and
 * `[packets:bytes]` before each rule. Comment lines of the input are kept in
 * place, so parsing iptables-save output and serialising it reproduces it
 * byte for byte (with the counters the model now holds).
 * @throws {TypeError} when the ruleset was not read from iptables syntax.
 */
export function serializeIptables(rs: Ruleset, opts: IptablesSerializeOptions): string {
  if (rs.syntax !== "iptables") throw new TypeError("Cannot serialize an nft ruleset as iptables-save: convert it first");
  const out: string[] = [];
  for (const t of rs.tables) {
    out.push(...t.preamble);
    out.push(`*${t.name}`);
    for (const c of t.chains) {
      const pol = c.base ? c.base.policy.toUpperCase() : "-";
      out.push(`:${c.name} ${pol} [${c.policyCounters.packets}:${c.policyCounters.bytes}]`);
    }
    for (const c of t.chains) {
      for (const r of c.rules) out.push(opts.counters ? `[${r.counters.packets}:${r.counters.bytes}] ${r.text}` : r.text);
    }
    out.push("COMMIT");
  }
  out.push(...rs.trailer);
  return out.join("\n") + "\n";
}

/** Quotes a value the way iptables-save does (xtables_save_string). */
export function saveString(value: string): string {
  if (/^[A-Za-z0-9_-]+$/.test(value)) return value;
  return `"${value.replace(/["\\']/g, (c) => "\\" + c)}"`;
}

/** Formats a mark/mask pair as iptables-save prints it. */
export function formatMark(value: number, mask: number): string {
  return mask === 0xffffffff ? hex(value) : `${hex(value)}/${hex(mask)}`;
}
