/**
 * Running a packet through a chain.
 *
 * Two evaluators with one semantics: `evaluateChain` interprets the model
 * directly (the reference, easy to read and to check against the kernel
 * sources), and `compileRuleset` turns every rule into an array of
 * pre-specialised match closures (the fast path: no allocation per packet).
 * A shared case suite and a property test hold them to the same answers.
 *
 * Stateful matches (limit, recent, statistic nth) keep their state in an
 * `EvalState`, indexed by the slot numbers the parsers assigned.
 *
 * Kernel behaviour copied here:
 * - A ct-dependent match (ct status/mark/helper/tuple, connmark) on a packet
 *   without a conntrack (INVALID or UNTRACKED) does not match, whatever its
 *   negation (xt_conntrack returns early when ct is NULL; nft_ct breaks).
 * - Port, flag and ICMP matches need the protocol (and a non-first fragment
 *   never matches them, as xt_tcpudp drops fragments with offset ≠ 0).
 * - xt_limit: credits in jiffies × CREDITS_PER_JIFFY, bucket starts full.
 * - nft limit: nanosecond tokens, cost = unit/rate, bucket = cost × burst.
 * - xt_recent: per-name tables of up to 20 timestamps per address.
 * - xt_statistic random: (random32 & 0x7fffffff) < lround(p × 2^31).
 */
import { CT_STATE } from "../conntrack/constants.js";
import { PacketView } from "../packet/view.js";
import { hasPorts as protoHasPorts } from "../packet/proto.js";
import type { Action, Chain, Elem, HookName, IpSet, Match, NamedSet, NatSpec, NumGen, Rule, Ruleset, Selector, Table } from "./model.js";
import { ADDRTYPE_RTN, cmpWords, ifaceMatches, prefixRange } from "./values.js";
import { xorshift32 } from "../sim/random.js";

/** A deterministic xorshift32 generator, for `statistic --mode random` under test (the one in sim/random.ts). */
export { xorshift32 };

/** Netfilter verdicts (NF_DROP, NF_ACCEPT, NF_STOLEN, NF_QUEUE). */
export const VERDICT = { DROP: 0, ACCEPT: 1, STOLEN: 2, QUEUE: 3 } as const;

/** What an evaluator needs from the world outside the packet: routes, the conntrack table, randomness. */
export interface EvalHost {
  /** The route type (ADDRTYPE_RTN value) of an address, as the kernel would look it up (optionally for one interface). */
  addrType(family: 4 | 6, addr: Uint32Array, iface: string | null): number;
  /** Connections counted for a connlimit / ct count match (including the packet's own when it is new). */
  connCount(m: Extract<Match, { kind: "connlimit" }>, ctx: PacketContext): number;
  /** A uniformly distributed unsigned 32-bit number (xt_statistic, NAT port choice). */
  random32(): number;
  /**
   * The interface the route to `addr` leaves by, or null when there is no
   * usable route (nft `fib ... oif`); a local address has no such route
   * (RTN_LOCAL gives no result in nft_fib4_eval).
   */
  routeOif(family: 4 | 6, addr: Uint32Array): string | null;
}

/** Options for {@link createHost}. */
export interface HostOptions {
  /** Addresses of the host itself (LOCAL for addrtype). Loopback is always local. */
  readonly localAddrs?: ReadonlyArray<{ family: 4 | 6; words: Uint32Array }>;
  /** Random source; default xorshift32(1). */
  readonly random32?: () => number;
  /** Connection counter for connlimit; default 0 (no table). */
  readonly connCount?: EvalHost["connCount"];
}

/** A simple host: classifies addresses by their form (loopback/local, broadcast, multicast, unicast). */
export function createHost(opts: HostOptions = {}): EvalHost {
  const local = opts.localAddrs ?? [];
  const random = opts.random32 ?? xorshift32(1);
  const connCount = opts.connCount ?? (() => 0);
  return {
    addrType(family, a) {
      for (const l of local) if (l.family === family && cmpWords(l.words, a, family === 4 ? 1 : 4) === 0) return ADDRTYPE_RTN.LOCAL;
      if (family === 4) {
        const w = (a[0] as number) >>> 0;
        if (w >>> 24 === 127) return ADDRTYPE_RTN.LOCAL;
        if (w === 0xffffffff) return ADDRTYPE_RTN.BROADCAST;
        if (w >>> 28 === 0xe) return ADDRTYPE_RTN.MULTICAST;
        return ADDRTYPE_RTN.UNICAST;
      }
      if (a[0] === 0 && a[1] === 0 && a[2] === 0 && a[3] === 1) return ADDRTYPE_RTN.LOCAL;
      if ((a[0] as number) >>> 24 === 0xff) return ADDRTYPE_RTN.MULTICAST;
      return ADDRTYPE_RTN.UNICAST;
    },
    connCount,
    random32: random,
    routeOif(family, a) {
      return this.addrType(family, a, null) === ADDRTYPE_RTN.LOCAL ? null : "eth0";
    },
  };
}

/**
 * Everything a rule can look at or change for one packet. One instance is
 * reused for every packet: callers fill the inputs, call `resetResults()`,
 * and read the results after evaluation.
 */
export class PacketContext {
  // ---- inputs -------------------------------------------------------------
  /** The decoded packet. */
  p: PacketView = new PacketView();
  /** The hook being traversed. */
  hook: HookName = "prerouting";
  /** Input/output interface names ("" when the hook has none). */
  iif = "";
  oif = "";
  /** Packet mark (skb->mark); actions may change it. */
  mark = 0;
  /**
   * ct state bits as rules see them: CT_STATE values, plus CTSTATE_SNAT /
   * CTSTATE_DNAT for `-m conntrack --ctstate SNAT,DNAT`. INVALID or UNTRACKED
   * means there is no conntrack.
   */
  ctState: number = CT_STATE.NEW;
  /** IPS status bits of the entry. */
  ctStatus = 0;
  /** Connmark; actions may change it. */
  ctMark = 0;
  /** 0 original, 1 reply. */
  ctDir: 0 | 1 = 0;
  /** Layer 4 protocol of the entry. */
  ctProto = 0;
  ctZone = 0;
  ctHelper = "";
  /** Seconds until the entry expires. */
  ctExpireSec = 0;
  readonly ctOrigSrc = new Uint32Array(4);
  readonly ctOrigDst = new Uint32Array(4);
  readonly ctReplSrc = new Uint32Array(4);
  readonly ctReplDst = new Uint32Array(4);
  ctOrigSport = 0;
  ctOrigDport = 0;
  ctReplSport = 0;
  ctReplDport = 0;
  /** Current time in milliseconds on the evaluation clock. */
  nowMs = 0;
  /** The value of the rule's numgen expression for this packet (the `numgen` selector). */
  numgen = 0;
  host: EvalHost = createHost();
  state: EvalState = new EvalState(0);
  /** When true, rule and policy counters are left alone (analysis runs what-if packets). */
  dryRun = false;

  // ---- results --------------------------------------------------------------
  /** Verdict of the last evaluation (VERDICT value). */
  verdict: number = VERDICT.ACCEPT;
  /** The rule that decided, or null when the chain policy did. */
  verdictRule: Rule | null = null;
  /** The chain whose rule or policy decided. */
  verdictChain: Chain | null = null;
  /** A NOTRACK / CT --notrack ran. */
  notrack = false;
  /** A CT target (not --notrack) ran: the packet must be tracked with this template. */
  ctTemplate = false;
  ctTemplateZone = 0;
  ctTemplateHelper = "";
  /** The NAT action that ran, and its rule. */
  nat: NatSpec | null = null;
  natRule: Rule | null = null;
  /** REJECT type when the verdict came from a reject. */
  rejectWith = "";
  /** LOG/NFLOG/log statements executed. */
  logs = 0;

  /** Clears the results before an evaluation. */
  resetResults(): void {
    this.verdict = VERDICT.ACCEPT;
    this.verdictRule = null;
    this.verdictChain = null;
    this.notrack = false;
    this.ctTemplate = false;
    this.ctTemplateZone = 0;
    this.ctTemplateHelper = "";
    this.nat = null;
    this.natRule = null;
    this.rejectWith = "";
    this.logs = 0;
  }

  /** Whether the packet has a conntrack entry (not INVALID, not UNTRACKED). */
  hasCt(): boolean {
    return (this.ctState & (CT_STATE.INVALID | CT_STATE.UNTRACKED)) === 0;
  }
}

// ---------------------------------------------------------------------------
// State of stateful matches

const XT_LIMIT_SCALE = 10000;
const IP_PKT_LIST_TOT = 20;
const IP_LIST_TOT = 100;

interface RecentEntry {
  stamps: number[];
  index: number;
  ttl: number;
}

/** Per-ruleset evaluation state (token buckets, nth counters, recent lists). */
export class EvalState {
  /** Kernel HZ used for jiffies (xt_limit, xt_recent). */
  readonly hz: number;
  readonly credit: Float64Array;
  readonly creditCap: Float64Array;
  readonly cost: Float64Array;
  readonly prev: Float64Array;
  readonly inited: Uint8Array;
  readonly nth: Float64Array;
  /** Elements nft set statements added at run time, by set slot: key → expiry in ms (Infinity: none). */
  readonly dyn = new Map<number, Map<string, number>>();
  /** xt_recent tables by name; entries by family and masked address, in insertion (LRU) order. */
  readonly recent = new Map<string, Map<string, RecentEntry>>();

  constructor(slots: number, hz = 250) {
    this.hz = hz;
    this.credit = new Float64Array(slots);
    this.creditCap = new Float64Array(slots);
    this.cost = new Float64Array(slots);
    this.prev = new Float64Array(slots);
    this.inited = new Uint8Array(slots);
    this.nth = new Float64Array(slots);
  }

  /** State sized for a ruleset. */
  static for(rs: Ruleset, hz = 250): EvalState {
    return new EvalState(rs.slots, hz);
  }
}

function creditsPerJiffy(hz: number): number {
  const maxCpj = Math.floor(0xffffffff / (hz * 60 * 60 * 24));
  let p = 1;
  while (p * 2 <= maxCpj) p *= 2;
  return p;
}

/** xt_limit's user2credits(). */
function user2credits(user: number, hz: number): number {
  const cpj = creditsPerJiffy(hz);
  if (user > Math.floor(0xffffffff / (hz * cpj))) return Math.floor(user / XT_LIMIT_SCALE) * hz * cpj;
  return Math.floor((user * hz * cpj) / XT_LIMIT_SCALE);
}

function limitMatch(m: Extract<Match, { kind: "limit" }>, ctx: PacketContext, flavor: "xt" | "nft"): boolean {
  const s = ctx.state;
  const i = m.slot;
  if (i >= s.credit.length) throw new RangeError("EvalState is smaller than the ruleset: create it with EvalState.for(ruleset)");
  if (flavor === "xt") {
    const now = Math.floor((ctx.nowMs * s.hz) / 1000);
    if (!s.inited[i]) {
      const avg = Math.floor((XT_LIMIT_SCALE * m.unitSec) / m.rate);
      s.credit[i] = s.creditCap[i] = user2credits(avg * m.burst, s.hz);
      s.cost[i] = user2credits(avg, s.hz);
      s.prev[i] = now;
      s.inited[i] = 1;
    }
    let credit = (s.credit[i] as number) + (now - (s.prev[i] as number)) * creditsPerJiffy(s.hz);
    s.prev[i] = now;
    if (credit > (s.creditCap[i] as number)) credit = s.creditCap[i] as number;
    if (credit >= (s.cost[i] as number)) {
      s.credit[i] = credit - (s.cost[i] as number);
      return !m.over;
    }
    s.credit[i] = credit;
    return m.over;
  }
  // nft_limit: tokens in nanoseconds since the first packet.
  const nowNs = ctx.nowMs * 1e6;
  if (!s.inited[i]) {
    const cost = Math.floor((m.unitSec * 1e9) / m.rate);
    s.cost[i] = cost;
    s.creditCap[i] = s.credit[i] = cost * (m.burst || 5);
    s.prev[i] = nowNs;
    s.inited[i] = 1;
  }
  let tokens = (s.credit[i] as number) + nowNs - (s.prev[i] as number);
  if (tokens > (s.creditCap[i] as number)) tokens = s.creditCap[i] as number;
  s.prev[i] = nowNs;
  const delta = tokens - (s.cost[i] as number);
  if (delta >= 0) {
    s.credit[i] = delta;
    return !m.over;
  }
  s.credit[i] = tokens;
  return m.over;
}

function recentKey(family: number, w: Uint32Array, maskLen: number): string {
  const r = prefixRange(family === 6 ? 6 : 4, w, maskLen).lo;
  return family === 6 ? `6:${r[0]}:${r[1]}:${r[2]}:${r[3]}` : `4:${r[0]}`;
}

/** xt_recent recent_mt(). */
function recentMatch(m: Extract<Match, { kind: "recent" }>, ctx: PacketContext): boolean {
  const s = ctx.state;
  const p = ctx.p;
  let table = s.recent.get(m.name);
  if (!table) {
    table = new Map();
    s.recent.set(m.name, table);
  }
  const key = recentKey(p.family, m.side === "src" ? p.src : p.dst, m.maskLen);
  const now = Math.floor((ctx.nowMs * s.hz) / 1000);
  let ret = m.neg;
  let e = table.get(key);
  if (e && m.rttl && e.ttl !== p.ttl) e = undefined;
  if (!e) {
    if (m.op !== "set") return ret;
    if (table.size >= IP_LIST_TOT) {
      const oldest = table.keys().next().value;
      if (oldest !== undefined) table.delete(oldest);
    }
    table.set(key, { stamps: [now], index: 1, ttl: p.ttl });
    return !ret;
  }
  if (m.op === "set") ret = !ret;
  else if (m.op === "remove") {
    table.delete(key);
    return !ret;
  } else {
    const time = now - m.seconds * s.hz;
    let hits = 0;
    for (const st of e.stamps) {
      if (m.seconds && time > st) continue;
      if (!m.hitcount || ++hits >= m.hitcount) {
        ret = !ret;
        break;
      }
    }
    if (m.reap) {
      // recent_entry_reap: drop the least recently updated entry when its newest stamp left the window.
      const update = m.op === "update" && ret;
      const oldestKey = table.keys().next().value;
      const oldest = oldestKey === undefined ? undefined : table.get(oldestKey);
      if (oldestKey !== undefined && oldest && !(oldest === e && update) && time > newestStamp(oldest)) {
        table.delete(oldestKey);
        if (oldest === e) return ret;
      }
    }
  }
  // The kernel tests `ret` itself here, so an inverted --update refreshes on a miss.
  if (m.op === "set" || (m.op === "update" && ret)) {
    // recent_entry_update: ring of IP_PKT_LIST_TOT stamps, entry moves to the LRU tail.
    if (e.stamps.length < IP_PKT_LIST_TOT) e.stamps.push(now);
    else {
      e.index %= IP_PKT_LIST_TOT;
      e.stamps[e.index] = now;
    }
    e.index++;
    e.ttl = p.ttl;
    table.delete(key);
    table.set(key, e);
  }
  return ret;
}

function newestStamp(e: RecentEntry): number {
  return e.stamps[(e.index - 1) % IP_PKT_LIST_TOT] ?? 0;
}

function statisticMatch(m: Extract<Match, { kind: "statistic" }>, ctx: PacketContext): boolean {
  if (m.mode === "random") return (ctx.host.random32() & 0x7fffffff) < m.threshold !== m.neg;
  // xt_statistic nth: libxt_statistic stores every - 1 and starts the count at
  // (every - 1) - packet; a packet matches when the count wraps past every - 1,
  // so --packet p selects packets p, p + every, … (0-based), the first one included.
  const s = ctx.state;
  if (m.slot >= s.nth.length) throw new RangeError("EvalState is smaller than the ruleset: create it with EvalState.for(ruleset)");
  if (!s.inited[m.slot]) {
    s.nth[m.slot] = m.every - 1 - m.packet;
    s.inited[m.slot] = 1;
  }
  const o = s.nth[m.slot] as number;
  const n = o === m.every - 1 ? 0 : o + 1;
  s.nth[m.slot] = n;
  return (n === 0) !== m.neg;
}

function ipsetMatch(set: IpSet, dims: readonly ("src" | "dst")[], p: PacketView): boolean {
  let hit = false;
  for (const e of set.entries) {
    let ok = true;
    for (let d = 0; d < e.values.length && ok; d++) {
      const v = e.values[d] as
        | { readonly t: "addr"; readonly lo: Uint32Array; readonly hi: Uint32Array }
        | { readonly t: "port"; readonly proto: number; readonly lo: number; readonly hi: number };
      const side = dims[d] ?? dims[dims.length - 1] ?? "src";
      if (v.t === "addr") {
        if (p.family !== set.family) ok = false;
        else {
          const a = side === "src" ? p.src : p.dst;
          const n = set.family === 4 ? 1 : 4;
          ok = cmpWords(a, v.lo, n) >= 0 && cmpWords(a, v.hi, n) <= 0;
        }
      } else {
        if (!hasPorts(p) || (v.proto !== 0 && v.proto !== p.proto)) ok = false;
        else {
          const port = side === "src" ? p.sport : p.dport;
          ok = port >= v.lo && port <= v.hi;
        }
      }
    }
    if (ok) {
      if (e.nomatch) return false;
      hit = true;
    }
  }
  return hit;
}

function hasPorts(p: PacketView): boolean {
  return p.l4Ok && !(p.isFragment && p.fragOffset > 0) && protoHasPorts(p.proto);
}

function firstFragmentOnly(p: PacketView): boolean {
  return !(p.isFragment && p.fragOffset > 0);
}

/** Numeric value of a selector for a packet, or -1 when the packet has no such field. */
export function selectorNum(sel: Selector, ctx: PacketContext): number {
  const p = ctx.p;
  switch (sel) {
    case "l4proto":
      return p.family ? p.proto : -1;
    case "nfproto":
      return p.family === 4 ? 2 : p.family === 6 ? 10 : -1;
    case "sport":
      return hasPorts(p) ? p.sport : -1;
    case "dport":
      return hasPorts(p) ? p.dport : -1;
    case "mark":
      return ctx.mark >>> 0;
    case "ctmark":
      return ctx.hasCt() ? ctx.ctMark >>> 0 : -1;
    case "ctstate":
      return ctx.ctState & 0x4f;
    case "ctstatus":
      return ctx.hasCt() ? ctx.ctStatus : -1;
    case "ctdirection":
      return ctx.hasCt() ? ctx.ctDir : -1;
    case "ctzone":
      return ctx.hasCt() ? ctx.ctZone : -1;
    case "icmptype":
      return (p.proto === 1 || p.proto === 58) && p.l4Ok ? p.icmpType : -1;
    case "icmpcode":
      return (p.proto === 1 || p.proto === 58) && p.l4Ok ? p.icmpCode : -1;
    case "tcpflags":
      return p.proto === 6 && p.l4Ok ? p.tcpFlags : -1;
    case "ttl":
      return p.family ? p.ttl : -1;
    case "length":
      return p.l3Len;
    case "numgen":
      return ctx.numgen;
    default:
      return -1;
  }
}

function elemHas(keys: readonly Selector[], elem: Elem, ctx: PacketContext): boolean {
  for (let k = 0; k < keys.length; k++) {
    const sel = keys[k] as Selector;
    const v = elem[k];
    if (!v) return false;
    if (v.t === "addr") {
      const p = ctx.p;
      if (p.family !== v.family || (sel !== "saddr" && sel !== "daddr")) return false;
      const a = sel === "saddr" ? p.src : p.dst;
      const n = v.family === 4 ? 1 : 4;
      if (cmpWords(a, v.lo, n) < 0 || cmpWords(a, v.hi, n) > 0) return false;
    } else if (v.t === "str") {
      const name = sel === "iifname" ? ctx.iif : sel === "oifname" ? ctx.oif : null;
      if (name === null || !ifaceMatches(v.pattern, name)) return false;
    } else {
      const x = selectorNum(sel, ctx);
      if (x < 0 || x < v.lo || x > v.hi) return false;
    }
  }
  return true;
}

function ctTupleAddr(ctx: PacketContext, f: string): Uint32Array {
  return f === "origsrc" ? ctx.ctOrigSrc : f === "origdst" ? ctx.ctOrigDst : f === "replsrc" ? ctx.ctReplSrc : ctx.ctReplDst;
}

function ctTuplePort(ctx: PacketContext, f: string): number {
  return f === "origsrc" ? ctx.ctOrigSport : f === "origdst" ? ctx.ctOrigDport : f === "replsrc" ? ctx.ctReplSport : ctx.ctReplDport;
}

/**
 * The reference semantics of one match. `flavor` tells iptables from nft where
 * they differ (the limit algorithm).
 */
export function matchReference(m: Match, ctx: PacketContext, flavor: "xt" | "nft"): boolean {
  const p = ctx.p;
  switch (m.kind) {
    case "proto":
      return p.family !== 0 && m.protos.has(p.proto) !== m.neg;
    case "nfproto":
      return (p.family === m.family) !== m.neg;
    case "addr":
      return p.family === m.set.family && m.set.has(m.dir === "src" ? p.src : p.dst) !== m.neg;
    case "iface": {
      const name = m.dir === "in" ? ctx.iif : ctx.oif;
      let hit = false;
      for (const n of m.names) if (ifaceMatches(n, name)) hit = true;
      return hit !== m.neg;
    }
    case "port": {
      if (!m.protos.has(p.proto) || !hasPorts(p)) return false;
      const hit = m.dir === "src" ? m.set.has(p.sport) : m.dir === "dst" ? m.set.has(p.dport) : m.set.has(p.sport) || m.set.has(p.dport);
      return hit !== m.neg;
    }
    case "tcpflags": {
      if (p.proto !== 6 || !p.l4Ok || !firstFragmentOnly(p)) return false;
      const hit = m.op === "eq" ? (p.tcpFlags & m.mask) === m.comp : (p.tcpFlags & m.mask) !== 0;
      return hit !== m.neg;
    }
    case "icmp": {
      if (p.proto !== (m.v6 ? 58 : 1) || !p.l4Ok || !firstFragmentOnly(p)) return false;
      return m.types.has(p.icmpType * 256 + p.icmpCode) !== m.neg;
    }
    case "ctstate":
      return ((ctx.ctState & m.mask) !== 0) !== m.neg;
    case "ctstatus":
      return ctx.hasCt() && ((ctx.ctStatus & m.mask) !== 0) !== m.neg;
    case "ctdir":
      return ctx.hasCt() && (ctx.ctDir === m.dir) !== m.neg;
    case "ctproto":
      return ctx.hasCt() && (ctx.ctProto === m.proto) !== m.neg;
    case "ctaddr":
      return ctx.hasCt() && p.family === m.set.family && m.set.has(ctTupleAddr(ctx, m.field)) !== m.neg;
    case "ctport":
      return ctx.hasCt() && m.set.has(ctTuplePort(ctx, m.field)) !== m.neg;
    case "ctexpire":
      return ctx.hasCt() && m.set.has(ctx.ctExpireSec) !== m.neg;
    case "cthelper":
      return ctx.hasCt() && (ctx.ctHelper === m.name) !== m.neg;
    case "mark": {
      if (m.source === "ct" && !ctx.hasCt()) return false;
      const v = m.source === "meta" ? ctx.mark : ctx.ctMark;
      return m.values.has((v & m.mask) >>> 0) !== m.neg;
    }
    case "connlimit": {
      const n = ctx.host.connCount(m, ctx);
      return m.above ? n > m.limit : n <= m.limit;
    }
    case "limit":
      return limitMatch(m, ctx, flavor);
    case "recent":
      return recentMatch(m, ctx);
    case "statistic":
      return statisticMatch(m, ctx);
    case "ipset":
      return ipsetMatch(m.set, m.dims, p) !== m.neg;
    case "addrtype": {
      if (p.family === 0) return false;
      if (m.src) {
        const t = ctx.host.addrType(p.family, p.src, m.limitIfaceIn ? ctx.iif : m.limitIfaceOut ? ctx.oif : null);
        if (((m.src & (1 << t)) !== 0) === m.srcNeg) return false;
      }
      if (m.dst) {
        const t = ctx.host.addrType(p.family, p.dst, m.limitIfaceIn ? ctx.iif : m.limitIfaceOut ? ctx.oif : null);
        if (((m.dst & (1 << t)) !== 0) === m.dstNeg) return false;
      }
      return true;
    }
    case "fragment":
      return (p.isFragment && p.fragOffset > 0) !== m.neg;
    case "comment":
      return true;
    case "lookup": {
      let hit = false;
      for (const e of m.elems) {
        if (elemHas(m.keys, e, ctx)) {
          hit = true;
          break;
        }
      }
      if (!hit && m.set) hit = dynHas(m.set, m.keys, ctx);
      return hit !== m.neg;
    }
    case "fib":
      return fibMatch(m, ctx);
    case "cmp": {
      const raw = selectorNum(m.key, ctx);
      if (raw < 0) return false;
      const x = (raw & m.mask) >>> 0;
      switch (m.op) {
        case "==":
          return x === m.value;
        case "!=":
          return x !== m.value;
        case "<":
          return x < m.value;
        case ">":
          return x > m.value;
        case "<=":
          return x <= m.value;
        default:
          return x >= m.value;
      }
    }
    case "never":
      return false;
  }
}

/** The packet's key for a dynamic set element (addresses, numbers, interface names), or null when a field is absent. */
function packetKey(keys: readonly Selector[], ctx: PacketContext): string | null {
  let k = "";
  const p = ctx.p;
  for (let i = 0; i < keys.length; i++) {
    const sel = keys[i] as Selector;
    if (sel === "saddr" || sel === "daddr") {
      if (p.family === 0) return null;
      const w = sel === "saddr" ? p.src : p.dst;
      k += p.family === 4 ? `${w[0]}|` : `${w[0]},${w[1]},${w[2]},${w[3]}|`;
    } else if (sel === "iifname" || sel === "oifname") {
      const name = sel === "iifname" ? ctx.iif : ctx.oif;
      if (name === "") return null;
      k += `${name}|`;
    } else {
      const v = selectorNum(sel, ctx);
      if (v < 0) return null;
      k += `${v}|`;
    }
  }
  return k;
}

/** Whether a live element the packet path added matches the packet. */
function dynHas(set: NamedSet, keys: readonly Selector[], ctx: PacketContext): boolean {
  const live = ctx.state.dyn.get(set.slot);
  if (!live || live.size === 0) return false;
  const k = packetKey(keys, ctx);
  if (k === null) return false;
  const exp = live.get(k);
  if (exp === undefined) return false;
  if (exp <= ctx.nowMs) {
    live.delete(k);
    return false;
  }
  return true;
}

/** Live elements of a set: the static ones and those added at run time that have not expired. */
function setCount(set: NamedSet, live: Map<string, number>, now: number): number {
  let n = set.elems.length;
  for (const [k, exp] of live) {
    if (exp <= now) live.delete(k);
    else n++;
  }
  return n;
}

/** nft_dynset_eval: returns false when the statement breaks the rule (key missing, set full). */
function dynsetRun(a: Extract<Action, { kind: "dynset" }>, ctx: PacketContext): boolean {
  const k = packetKey(a.keys, ctx);
  if (k === null) return false;
  if (ctx.dryRun) return true;
  let live = ctx.state.dyn.get(a.set.slot);
  if (!live) {
    live = new Map();
    ctx.state.dyn.set(a.set.slot, live);
  }
  if (a.op === "delete") {
    live.delete(k);
    return true;
  }
  const now = ctx.nowMs;
  const t = a.timeoutMs >= 0 ? a.timeoutMs : a.set.timeoutMs;
  const exp = live.get(k);
  if (exp !== undefined && exp > now) {
    // Present: update refreshes the timeout, add leaves it.
    if (a.op === "update" && t > 0) live.set(k, now + t);
    return true;
  }
  // A statically listed element is present too.
  for (const e of a.set.elems) if (elemHas(a.keys, e, ctx)) return true;
  if (a.set.size > 0 && setCount(a.set, live, now) >= a.set.size) return false;
  live.set(k, t > 0 ? now + t : Infinity);
  return true;
}

/** nft_numgen: the next value of a generator. */
function numgenNext(g: NumGen, ctx: PacketContext): number {
  if (g.mode === "random") return Math.floor(((ctx.host.random32() >>> 0) * g.mod) / 0x100000000) + g.offset;
  const s = ctx.state;
  if (g.slot >= s.nth.length) throw new RangeError("EvalState is smaller than the ruleset: create it with EvalState.for(ruleset)");
  // nft_ng_inc_init sets the counter to mod - 1, so the first value is 0.
  if (!s.inited[g.slot]) {
    s.nth[g.slot] = g.mod - 1;
    s.inited[g.slot] = 1;
  }
  const o = s.nth[g.slot] as number;
  const n = o + 1 < g.mod ? o + 1 : 0;
  if (!ctx.dryRun) s.nth[g.slot] = n;
  return n + g.offset;
}

/** nft_fib4_eval / nft_fib6_eval over the host model. */
function fibMatch(m: Extract<Match, { kind: "fib" }>, ctx: PacketContext): boolean {
  const p = ctx.p;
  if (p.family === 0) return false;
  const addr = m.addr === "saddr" ? p.src : p.dst;
  if (m.result === "type") {
    // inet_dev_addr_type(): with iif/oif the address is LOCAL only on that device.
    const t = ctx.host.addrType(p.family, addr, m.iif ? ctx.iif : m.oif ? ctx.oif : null);
    return (((m.types >>> t) & 1) === 1) !== m.neg;
  }
  let dev: string | null;
  const arriving = ctx.hook === "prerouting" || ctx.hook === "input" || ctx.hook === "ingress";
  if (arriving && ctx.iif === "lo") dev = "lo";
  else if (p.family === 4 && p.src[0] === 0 && ((p.dst[0] as number) >>> 0 === 0xffffffff || ((p.dst[0] as number) & 0xffffff00) >>> 0 === 0xe0000000)) {
    // A zero source to a limited broadcast or link-local multicast (DHCP): the input device.
    dev = ctx.iif || null;
  } else {
    dev = ctx.host.routeOif(p.family, addr);
    const want = m.iif ? ctx.iif : m.oif ? ctx.oif : "";
    if (dev !== null && want !== "" && dev !== want) dev = null;
  }
  let hit: boolean;
  if (dev === null) hit = m.missing;
  else {
    hit = false;
    for (const n of m.names) if (ifaceMatches(n, dev)) hit = true;
  }
  return hit !== m.neg;
}

// ---------------------------------------------------------------------------
// Chain traversal (shared by both evaluators)

const MAX_DEPTH = 64;

/** Outcome of running one rule's statements. */
const enum Flow {
  /** Go on with the next rule. */
  Next,
  /** A final verdict is in ctx.verdict. */
  Final,
  /** Return from this chain. */
  Return,
  /** Jump to `ctx`'s pending chain (push). */
  Jump,
  /** Goto (replace). */
  Goto,
}

interface Pending {
  target: string;
}

/** Runs non-terminal statements and the verdict of a rule whose matches all held. */
function runActions(r: Rule, acts: readonly Action[], ctx: PacketContext, pending: Pending): Flow {
  for (let k = 0; k < acts.length; k++) {
    const f = runOne(r, acts[k] as Action, ctx, pending);
    if (f !== -1) return f;
  }
  return Flow.Next;
}

/** One statement: returns a Flow when it ends the rule, or -1 to go on with the next statement. */
function runOne(r: Rule, a: Action, ctx: PacketContext, pending: Pending): Flow | -1 {
  switch (a.kind) {
    case "log":
      ctx.logs++;
      return -1;
    case "mangle":
      // TCPMSS adds a missing MSS option to a SYN without payload (tcpmss_mangle_packet):
      // the datagram grows by 4 bytes, which later rules count.
      if (a.name === "TCPMSS") {
        const p = ctx.p;
        if (
          p.proto === 6 &&
          p.l4Ok &&
          (p.tcpFlags & 0x02) !== 0 &&
          p.optMss < 0 &&
          p.payloadLen === 0 &&
          p.tcpHdrLen > 0 &&
          p.tcpHdrLen < 60 &&
          !(p.isFragment && p.fragOffset > 0)
        ) {
          p.l3Len += 4;
          p.tcpHdrLen += 4;
          p.optMss = p.family === 6 ? 1220 : 536;
        }
      }
      return -1;
    case "counter":
    case "flowoffload":
      return -1;
    case "setmark":
      if (a.target === "meta") ctx.mark = ((ctx.mark & ~a.mask) ^ a.value) >>> 0;
      else if (ctx.hasCt()) ctx.ctMark = ((ctx.ctMark & ~a.mask) ^ a.value) >>> 0;
      return -1;
    case "copymark":
      if (!ctx.hasCt()) return -1;
      if (a.to === "ct") ctx.ctMark = ((ctx.ctMark & ~a.ctmask) ^ (ctx.mark & a.nfmask)) >>> 0;
      else ctx.mark = ((ctx.mark & ~a.nfmask) ^ (ctx.ctMark & a.ctmask)) >>> 0;
      return -1;
    case "notrack":
      ctx.notrack = true;
      return -1;
    case "ct":
      ctx.ctTemplate = true;
      ctx.ctTemplateZone = a.zone;
      ctx.ctTemplateHelper = a.helper;
      return -1;
    case "cthelperset":
      ctx.ctTemplateHelper = a.name;
      return -1;
    case "accept":
      ctx.verdict = VERDICT.ACCEPT;
      ctx.verdictRule = r;
      return Flow.Final;
    case "drop":
      ctx.verdict = VERDICT.DROP;
      ctx.verdictRule = r;
      return Flow.Final;
    case "reject":
      ctx.verdict = VERDICT.DROP;
      ctx.rejectWith = a.with;
      ctx.verdictRule = r;
      return Flow.Final;
    case "queue":
      ctx.verdict = a.bypass ? VERDICT.ACCEPT : VERDICT.DROP;
      ctx.verdictRule = r;
      return Flow.Final;
    case "synproxy":
      ctx.verdict = VERDICT.STOLEN;
      ctx.verdictRule = r;
      return Flow.Final;
    case "nat":
      ctx.nat = a;
      ctx.natRule = r;
      ctx.verdict = VERDICT.ACCEPT;
      ctx.verdictRule = r;
      return Flow.Final;
    case "return":
      return Flow.Return;
    case "continue":
      return Flow.Next;
    case "jump":
      pending.target = a.target;
      return Flow.Jump;
    case "goto":
      pending.target = a.target;
      return Flow.Goto;
    case "dynset":
      return dynsetRun(a, ctx) ? -1 : Flow.Next;
    case "vmap": {
      // A miss ends the rule (NFT_BREAK); a hit runs the element's verdict.
      if (a.gen) ctx.numgen = numgenNext(a.gen, ctx);
      for (const e of a.entries) {
        if (elemHas(a.keys, e.elem, ctx)) {
          const f = runOne(r, e.verdict, ctx, pending);
          return f === -1 ? Flow.Next : f;
        }
      }
      return Flow.Next;
    }
  }
}

/** Finds a rule's table. */
function tableOf(rs: Ruleset, chain: Chain): Table {
  const t = rs.tables.find((x) => x.family === chain.family && x.name === chain.table);
  if (!t) throw new Error(`Chain ${chain.name} does not belong to this ruleset`);
  return t;
}

/**
 * The reference evaluator: runs the packet through `chain` (a base chain,
 * or any chain treated as one) and returns the VERDICT. Counters of matching
 * rules and of the policy are updated. Results are also in `ctx`.
 */
export function evaluateChain(rs: Ruleset, chain: Chain, ctx: PacketContext): number {
  const flavor = rs.syntax === "nft" ? "nft" : "xt";
  const table = tableOf(rs, chain);
  const stackChains: Chain[] = [];
  const stackPos: number[] = [];
  const pending: Pending = { target: "" };
  let cur = chain;
  let i = 0;
  for (;;) {
    if (i >= cur.rules.length) {
      // End of chain: implicit return, or the policy at the base chain.
      const c = stackChains.pop();
      if (c === undefined) return finishPolicy(chain, ctx);
      cur = c;
      i = stackPos.pop() as number;
      continue;
    }
    const r = cur.rules[i++] as Rule;
    let all = true;
    for (const m of r.matches) {
      if (!matchReference(m, ctx, flavor)) {
        all = false;
        break;
      }
    }
    if (!all) continue;
    if (!ctx.dryRun) {
      r.counters.packets++;
      r.counters.bytes += ctx.p.l3Len;
    }
    const flow = runActions(r, r.actions, ctx, pending);
    switch (flow) {
      case Flow.Next:
        break;
      case Flow.Final:
        ctx.verdictChain = cur;
        return ctx.verdict;
      case Flow.Return: {
        const c = stackChains.pop();
        if (c === undefined) return finishPolicy(chain, ctx);
        cur = c;
        i = stackPos.pop() as number;
        break;
      }
      case Flow.Jump:
      case Flow.Goto: {
        const target = table.chainByName.get(pending.target);
        if (!target) throw new Error(`Chain ${pending.target} vanished`);
        if (flow === Flow.Jump) {
          if (stackChains.length >= MAX_DEPTH) throw new Error(`Jump depth above ${MAX_DEPTH} at chain ${target.name}`);
          stackChains.push(cur);
          stackPos.push(i);
        }
        cur = target;
        i = 0;
        break;
      }
    }
  }
}

function finishPolicy(chain: Chain, ctx: PacketContext): number {
  if (!ctx.dryRun) {
    chain.policyCounters.packets++;
    chain.policyCounters.bytes += ctx.p.l3Len;
  }
  ctx.verdict = chain.base?.policy === "drop" ? VERDICT.DROP : VERDICT.ACCEPT;
  ctx.verdictRule = null;
  ctx.verdictChain = chain;
  return ctx.verdict;
}

// ---------------------------------------------------------------------------
// Compiled evaluator

type MatchFn = (ctx: PacketContext) => boolean;

interface CompiledRule {
  readonly rule: Rule;
  readonly matches: readonly MatchFn[];
  readonly actions: readonly Action[];
}

interface CompiledChain {
  readonly chain: Chain;
  readonly rules: readonly CompiledRule[];
  /** Jump/goto targets resolved to compiled chains, by name. */
  readonly table: Map<string, CompiledChain>;
}

/** Specialises one match into a closure. Simple kinds get tight code; the rest share the reference. */
function compileMatch(m: Match, flavor: "xt" | "nft"): MatchFn | null {
  switch (m.kind) {
    case "comment":
      return null;
    case "proto": {
      const pairs = m.protos.pairs();
      const neg = m.neg;
      if (pairs.length === 1 && (pairs[0] as [number, number])[0] === (pairs[0] as [number, number])[1]) {
        const want = (pairs[0] as [number, number])[0];
        return (c) => c.p.family !== 0 && (c.p.proto === want) !== neg;
      }
      return (c) => c.p.family !== 0 && m.protos.has(c.p.proto) !== neg;
    }
    case "addr": {
      const { set, neg } = m;
      const src = m.dir === "src";
      if (set.family === 4 && set.size === 1) {
        const lo = set.data[0] as number;
        const hi = set.data[4] as number;
        return src
          ? (c) => c.p.family === 4 && ((c.p.src[0] as number) >= lo && (c.p.src[0] as number) <= hi) !== neg
          : (c) => c.p.family === 4 && ((c.p.dst[0] as number) >= lo && (c.p.dst[0] as number) <= hi) !== neg;
      }
      return (c) => c.p.family === set.family && set.has(src ? c.p.src : c.p.dst) !== neg;
    }
    case "port": {
      const { set, neg, protos } = m;
      const pairs = set.pairs();
      const single = pairs.length === 1 ? (pairs[0] as [number, number]) : null;
      const protoPairs = protos.pairs();
      const oneProto =
        protoPairs.length === 1 && (protoPairs[0] as [number, number])[0] === (protoPairs[0] as [number, number])[1]
          ? (protoPairs[0] as [number, number])[0]
          : -1;
      if (single && oneProto >= 0 && m.dir !== "any") {
        const [lo, hi] = single;
        const dst = m.dir === "dst";
        return (c) => {
          const p = c.p;
          if (p.proto !== oneProto || !hasPorts(p)) return false;
          const v = dst ? p.dport : p.sport;
          return (v >= lo && v <= hi) !== neg;
        };
      }
      return (c) => matchReference(m, c, flavor);
    }
    case "ctstate": {
      const { mask, neg } = m;
      return (c) => ((c.ctState & mask) !== 0) !== neg;
    }
    case "iface": {
      const only = m.names[0];
      if (m.names.length === 1 && only !== undefined && !only.prefix) {
        const name = only.name;
        const neg = m.neg;
        return m.dir === "in" ? (c) => (c.iif === name) !== neg : (c) => (c.oif === name) !== neg;
      }
      return (c) => matchReference(m, c, flavor);
    }
    default:
      return (c) => matchReference(m, c, flavor);
  }
}

/**
 * A ruleset compiled for repeated evaluation: each rule is an array of
 * specialised match closures; chains are resolved once. Evaluating a packet
 * allocates nothing (jump stacks are preallocated).
 */
export class CompiledRuleset {
  readonly ruleset: Ruleset;
  readonly #chains = new Map<Chain, CompiledChain>();
  readonly #stackChains: CompiledChain[] = new Array<CompiledChain>(MAX_DEPTH);
  readonly #stackPos = new Int32Array(MAX_DEPTH);
  readonly #pending: Pending = { target: "" };

  constructor(rs: Ruleset) {
    this.ruleset = rs;
    const flavor = rs.syntax === "nft" ? "nft" : "xt";
    for (const t of rs.tables) {
      const byName = new Map<string, CompiledChain>();
      for (const c of t.chains) {
        const rules: CompiledRule[] = c.rules.map((r) => ({
          rule: r,
          matches: r.matches.map((m) => compileMatch(m, flavor)).filter((f): f is MatchFn => f !== null),
          actions: r.actions,
        }));
        const cc: CompiledChain = { chain: c, rules, table: byName };
        byName.set(c.name, cc);
        this.#chains.set(c, cc);
      }
    }
  }

  /** Same contract as {@link evaluateChain}. */
  evaluate(chain: Chain, ctx: PacketContext): number {
    const root = this.#chains.get(chain);
    if (!root) throw new Error(`Chain ${chain.name} does not belong to this ruleset`);
    const stackChains = this.#stackChains;
    const stackPos = this.#stackPos;
    const pending = this.#pending;
    let depth = 0;
    let cur = root;
    let i = 0;
    for (;;) {
      const rules = cur.rules;
      if (i >= rules.length) {
        if (depth === 0) return finishPolicy(chain, ctx);
        depth--;
        cur = stackChains[depth] as CompiledChain;
        i = stackPos[depth] as number;
        continue;
      }
      const cr = rules[i++] as CompiledRule;
      const ms = cr.matches;
      let all = true;
      for (let k = 0; k < ms.length; k++) {
        if (!(ms[k] as MatchFn)(ctx)) {
          all = false;
          break;
        }
      }
      if (!all) continue;
      const r = cr.rule;
      if (!ctx.dryRun) {
        r.counters.packets++;
        r.counters.bytes += ctx.p.l3Len;
      }
      const flow = runActions(r, cr.actions, ctx, pending);
      if (flow === Flow.Next) continue;
      if (flow === Flow.Final) {
        ctx.verdictChain = cur.chain;
        return ctx.verdict;
      }
      if (flow === Flow.Return) {
        if (depth === 0) return finishPolicy(chain, ctx);
        depth--;
        cur = stackChains[depth] as CompiledChain;
        i = stackPos[depth] as number;
        continue;
      }
      const target = cur.table.get(pending.target);
      if (!target) throw new Error(`Chain ${pending.target} vanished`);
      if (flow === Flow.Jump) {
        if (depth >= MAX_DEPTH) throw new Error(`Jump depth above ${MAX_DEPTH} at chain ${target.chain.name}`);
        stackChains[depth] = cur;
        stackPos[depth] = i;
        depth++;
      }
      cur = target;
      i = 0;
    }
  }
}

/** Compiles a ruleset for fast evaluation. */
export function compileRuleset(rs: Ruleset): CompiledRuleset {
  return new CompiledRuleset(rs);
}

/** Options for {@link baseChainsAt}. */
export interface HookChainFilter {
  /** Chain types to include. Default: filter and route (nat chains only see new connections). */
  readonly types?: readonly ("filter" | "nat" | "route")[];
  /** Only chains with priority above this (e.g. -200 to skip raw). Default: no bound. */
  readonly minPriority?: number;
  /** Only chains with priority at most this. Default: no bound. */
  readonly maxPriority?: number;
}

/** Base chains attached to a hook for a family, in the order the kernel runs them (priority, then table order). */
export function baseChainsAt(rs: Ruleset, hook: HookName, family: 4 | 6, f: HookChainFilter = {}): Chain[] {
  const types = f.types ?? ["filter", "route"];
  const out: Array<{ c: Chain; prio: number; order: number }> = [];
  let order = 0;
  for (const t of rs.tables) {
    const fams = t.family === "ip" ? [4] : t.family === "ip6" ? [6] : t.family === "inet" ? [4, 6] : [];
    if (!fams.includes(family)) continue;
    for (const c of t.chains) {
      const b = c.base;
      if (!b || b.hook !== hook || !types.includes(b.type)) continue;
      if (f.minPriority !== undefined && b.priority <= f.minPriority) continue;
      if (f.maxPriority !== undefined && b.priority > f.maxPriority) continue;
      out.push({ c, prio: b.priority, order: order++ });
    }
  }
  out.sort((a, b) => a.prio - b.prio || a.order - b.order);
  return out.map((x) => x.c);
}

/**
 * Runs the packet through every selected base chain of a hook in priority
 * order (reference evaluator): an accept moves on to the next chain, any
 * other verdict ends the hook. Returns the VERDICT.
 */
export function evaluateHook(rs: Ruleset, hook: HookName, ctx: PacketContext, f: HookChainFilter = {}): number {
  const fam = ctx.p.family;
  if (fam !== 4 && fam !== 6) return VERDICT.ACCEPT;
  let last: number = VERDICT.ACCEPT;
  let lastRule: Rule | null = null;
  let lastChain: Chain | null = null;
  for (const c of baseChainsAt(rs, hook, fam, f)) {
    last = evaluateChain(rs, c, ctx);
    lastRule = ctx.verdictRule;
    lastChain = ctx.verdictChain;
    if (last !== VERDICT.ACCEPT) break;
  }
  ctx.verdict = last;
  ctx.verdictRule = lastRule;
  ctx.verdictChain = lastChain;
  return last;
}
