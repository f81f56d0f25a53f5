/**
 * The netfilter packet path: a packet goes through the hooks of its route,
 * and at each hook through the base chains of the ruleset and the kernel's own
 * stages in priority order.
 *
 *   PREROUTING   raw(-300) · conntrack in(-200) · mangle(-150) · NAT dst(-100) · filter(0) …
 *   route        to a local address → INPUT, else FORWARD; a local source starts in OUTPUT
 *   INPUT        mangle · filter · security(50) · NAT src(100) · confirm(last)
 *   FORWARD      mangle · filter · security
 *   OUTPUT       raw · conntrack in · mangle · NAT dst · filter · security
 *   POSTROUTING  mangle · NAT src(100) · confirm(last)
 *
 * nft base chains join at their declared priorities, interleaved with the
 * iptables tables. Kernel behaviour copied here:
 * - Conntrack (and with it defragmentation and confirmation) runs only for a
 *   family some rule registers it for (nf_ct_netns_get: ct matches, NAT,
 *   CONNMARK, CT templates …; see tracking.ts); otherwise no packet is tracked.
 * - NOTRACK / CT --notrack before conntrack gives the packet the untracked
 *   conntrack (ct state untracked); nft `notrack` after conntrack only turns
 *   a packet without conntrack into an untracked one.
 * - NAT chains are not hooks of their own: the NAT core's hook (dst -100,
 *   src 100) runs them for the first packet of a connection only (ctinfo NEW
 *   or RELATED, binding not yet made), in priority order, until one makes a
 *   binding; a connection none translates gets a null binding. Packets
 *   without conntrack never see NAT chains; ICMP errors are only translated.
 * - Every packet of a translated connection is rewritten at the NAT hooks
 *   (the view's addresses and ports change), so later hooks and the routing
 *   decision see the translated packet (FORWARD sees the DNAT'ed destination).
 * - A packet dropped before confirmation leaves no entry (nf_conntrack_free);
 *   a NAT reply tuple that clashes at confirmation drops it (insert_failed).
 * - Rule counters count the IP datagram length (skb->len at the hook).
 *
 * Not modelled: packets the host itself would send in answer (REJECT's RST or
 * ICMP error, SYNPROXY), helpers and expectations, policy routing and
 * rerouting by mark, bridge/arp/netdev families.
 */
import { CT_STATE, CTINFO, HOOK, IPS } from "../conntrack/constants.js";
import { CT_DROPPED, trackerEngine } from "../conntrack/tracker.js";
import type { Tracker, TrackerEngine } from "../conntrack/tracker.js";
import { TupleScratch } from "../conntrack/tuple.js";
import type { PacketView } from "../packet/view.js";
import { ruleTrackingReasons } from "./tracking.js";
import { CompiledRuleset, EvalState, PacketContext, VERDICT, xorshift32 } from "./eval.js";
import type { EvalHost } from "./eval.js";
import { RT, RT_DROP_KEYS } from "./host.js";
import type { HostModel } from "./host.js";
import { tableFamilies } from "./model.js";
import { ADDRTYPE_RTN } from "./values.js";
import type { Chain, HookName, Match, NatSpec, Rule, Ruleset } from "./model.js";
import { MANIP, NatEngine, NatRange, NF_NAT_RANGE } from "./nat.js";
import type { ManipType } from "./nat.js";
import { CTSTATE_DNAT, CTSTATE_SNAT, prefixRange } from "./values.js";

/** Kinds of stage on a hook. */
const STAGE_CHAIN = 0;
const STAGE_CONNTRACK = 1;
const STAGE_NAT = 2;
const STAGE_CONFIRM = 3;

/** NF_IP_PRI_* of the kernel's own stages. */
const PRI_CONNTRACK = -200;
const PRI_NAT_DST = -100;
const PRI_NAT_SRC = 100;
const PRI_CONFIRM = 0x7fffffff;

interface Stage {
  readonly kind: number;
  readonly priority: number;
  /** STAGE_CHAIN: the base chain. */
  readonly chain: Chain | null;
  /** STAGE_NAT: nat chains of the hook in priority order, and the manip type. */
  readonly natChains: readonly Chain[];
  readonly manip: ManipType;
}

/** How a packet travelled: to the host, through it, or from it. */
export const ROUTE = { INPUT: 0, FORWARD: 1, OUTPUT: 2 } as const;
export const ROUTE_NAMES = ["input", "forward", "output"] as const;

/** Why a packet was dropped. */
export const DROP_REASON = { NONE: 0, RULE: 1, POLICY: 2, CONNTRACK: 3, NAT: 4, CONFIRM: 5, ROUTE: 6 } as const;
export const DROP_REASON_NAMES = [
  "",
  "rule",
  "chain policy",
  "conntrack (table full or tracker drop)",
  "NAT (no address to masquerade or redirect to)",
  "confirmation (NAT tuple clash or chain too long)",
  "routing",
] as const;

/** Route-drop counters of {@link PathStats}, by RT_DROP_KEYS name. */
export type RouteDrops = Record<Exclude<(typeof RT_DROP_KEYS)[number], "">, number>;

const HOOK_NUM: Readonly<Record<HookName, number>> = {
  prerouting: HOOK.PRE_ROUTING,
  input: HOOK.LOCAL_IN,
  forward: HOOK.FORWARD,
  output: HOOK.LOCAL_OUT,
  postrouting: HOOK.POST_ROUTING,
  ingress: -1,
  egress: -1,
};

/** The outcome of one packet; one instance, reused. */
export class PathResult {
  /** VERDICT.ACCEPT or VERDICT.DROP. */
  verdict: number = VERDICT.ACCEPT;
  /** ROUTE value. */
  route: number = ROUTE.FORWARD;
  /** ct state bit the packet had after conntrack (CT_STATE), or 0 when conntrack did not see it. */
  state = 0;
  /** DROP_REASON value (NONE when accepted). */
  dropReason: number = DROP_REASON.NONE;
  /** Hook where the packet was dropped, or of the deciding filter chain. */
  hook: HookName = "prerouting";
  /** The rule that decided: the dropping rule, or for an accepted packet the rule that accepted it in its filter chain; null for a policy or no chain. */
  rule: Rule | null = null;
  /** The chain whose rule or policy decided (null when no chain decided). */
  chain: Chain | null = null;
  /** Base chain at whose hook the deciding evaluation started. */
  baseChain: Chain | null = null;
  /** The packet's conntrack entry, or -1. */
  slot = -1;
  /** The packet was translated by NAT somewhere on its way. */
  translated = false;
  /** With DROP_REASON.ROUTE: the RT reason (host.ts). */
  routeReason = 0;

  reset(): void {
    this.routeReason = 0;
    this.verdict = VERDICT.ACCEPT;
    this.route = ROUTE.FORWARD;
    this.state = 0;
    this.dropReason = DROP_REASON.NONE;
    this.hook = "prerouting";
    this.rule = null;
    this.chain = null;
    this.baseChain = null;
    this.slot = -1;
    this.translated = false;
  }
}

/** Totals of a run, by route and by why packets were dropped. */
export interface PathStats {
  packets: number;
  accepted: number;
  dropped: number;
  byRoute: { input: number; forward: number; output: number };
  dropsByReason: { rule: number; policy: number; conntrack: number; nat: number; confirm: number; route: number };
  /** Packets the input route decision dropped, by reason (never confirmed). */
  routeDrops: RouteDrops;
  /** Packets conntrack saw (its hooks registered for the family and no NOTRACK). */
  tracked: number;
  /** Packets that got the untracked conntrack (NOTRACK). */
  untracked: number;
  /** Packets of a family conntrack was not registered for. */
  notTracked: number;
  /** Packets rewritten by NAT at least once. */
  translated: number;
}

/** Options of {@link NetfilterPath}. */
export interface PathOptions {
  readonly ruleset: Ruleset;
  readonly tracker: Tracker;
  readonly host: HostModel;
  /** Random source for `statistic --mode random` and NAT port offsets; default xorshift32(seed). */
  readonly random32?: () => number;
  /** Seed of the default random source (default 1). */
  readonly seed?: number;
  /** Register conntrack for both families whatever the ruleset says (nf_conntrack.enable_hooks=1). */
  readonly enableHooks?: boolean;
  /** Kernel HZ for xt_limit/xt_recent jiffies (default 250). */
  readonly hz?: number;
}

/** Which families have conntrack hooks registered by the ruleset. */
export function trackingFamilies(rs: Ruleset): { ipv4: boolean; ipv6: boolean } {
  let ipv4 = false;
  let ipv6 = false;
  for (const t of rs.tables) {
    const fams = tableFamilies(t.family);
    for (const c of t.chains) {
      for (const r of c.rules) {
        if (ruleTrackingReasons(r, rs).length === 0) continue;
        if (fams.includes(4)) ipv4 = true;
        if (fams.includes(6)) ipv6 = true;
      }
    }
  }
  for (const o of rs.ctObjects) {
    const fams = tableFamilies(o.family);
    if (fams.includes(4)) ipv4 = true;
    if (fams.includes(6)) ipv6 = true;
  }
  return { ipv4, ipv6 };
}

/** Does any rule use a match that reads conntrack tuples or the remaining timeout? */
function usesMatch(rs: Ruleset, kinds: ReadonlySet<Match["kind"]>): boolean {
  for (const t of rs.tables) for (const c of t.chains) for (const r of c.rules) for (const m of r.matches) if (kinds.has(m.kind)) return true;
  return false;
}

const HOOKS: readonly HookName[] = ["prerouting", "input", "forward", "output", "postrouting"];

/**
 * One network namespace's netfilter path over a ruleset and a tracker.
 * Per packet call `run(view, nowMs)`; the outcome is in `result`, totals in
 * `stats`, rule counters in the ruleset's rules and chains, drops per base
 * chain in `chainDrops`.
 */
export class NetfilterPath {
  readonly ruleset: Ruleset;
  readonly tracker: Tracker;
  /** The engine behind `tracker`: the path reads and sets entry state directly. */
  private readonly ct: TrackerEngine;
  readonly host: HostModel;
  readonly nat: NatEngine;
  readonly result = new PathResult();
  readonly stats: PathStats = {
    packets: 0,
    accepted: 0,
    dropped: 0,
    byRoute: { input: 0, forward: 0, output: 0 },
    dropsByReason: { rule: 0, policy: 0, conntrack: 0, nat: 0, confirm: 0, route: 0 },
    routeDrops: { martianSource: 0, martianDestination: 0, noRoute: 0, rpFilter: 0, multicastNotJoined: 0, ttlExceeded: 0, badSourceV6: 0, ipv6Receive: 0 },
    tracked: 0,
    untracked: 0,
    notTracked: 0,
    translated: 0,
  };
  /** Packets dropped per base chain (by its rules or its policy). */
  readonly chainDrops = new Map<Chain, number>();
  /** Conntrack hooks registered per family (index 4 and 6). */
  readonly conntrackOn: { readonly ipv4: boolean; readonly ipv6: boolean };
  /** NAT core registered per family (a nat chain exists and conntrack runs). */
  readonly natOn: { readonly ipv4: boolean; readonly ipv6: boolean };

  private readonly compiled: CompiledRuleset;
  private readonly ctx = new PacketContext();
  private readonly schedules: Record<4 | 6, Record<string, Stage[]>>;
  private readonly range = new NatRange();
  private readonly tuple = new TupleScratch();
  private readonly needTuples: boolean;
  private readonly needExpire: boolean;
  private readonly random32: () => number;
  private readonly conncount = new Map<number, Map<string, number[]>>();

  // Per-packet state.
  private slot = -1;
  private dir: 0 | 1 = 0;
  private ctinfo = -1;
  private ctState = 0;
  private conntrackDone = false;
  private notrack = false;
  private zone = 0;
  /** Helper of a CT template (iptables raw `-j CT --helper`), attached to the new entry by conntrack. */
  private tmplHelper = "";
  private filterRule: Rule | null = null;
  private filterChain: Chain | null = null;
  private filterBase: Chain | null = null;
  private filterHook: HookName = "prerouting";
  private lastRule: Rule | null = null;
  private lastChain: Chain | null = null;
  private lastBase: Chain | null = null;
  private lastHook: HookName = "prerouting";

  constructor(opts: PathOptions) {
    this.ruleset = opts.ruleset;
    this.tracker = opts.tracker;
    this.ct = trackerEngine(opts.tracker);
    this.host = opts.host;
    this.random32 = opts.random32 ?? xorshift32(opts.seed ?? 1);
    this.nat = new NatEngine(this.ct, () => this.random32() & 0xffff);
    this.compiled = new CompiledRuleset(opts.ruleset);
    const tf = opts.enableHooks === true ? { ipv4: true, ipv6: true } : trackingFamilies(opts.ruleset);
    this.conntrackOn = tf;
    const natChain = (f: 4 | 6) => opts.ruleset.tables.some((t) => tableFamilies(t.family).includes(f) && t.chains.some((c) => c.base?.type === "nat"));
    this.natOn = { ipv4: tf.ipv4 && natChain(4), ipv6: tf.ipv6 && natChain(6) };
    this.schedules = { 4: this.buildSchedules(4), 6: this.buildSchedules(6) };
    this.needTuples = usesMatch(opts.ruleset, new Set(["ctaddr", "ctport"]));
    this.needExpire = usesMatch(opts.ruleset, new Set(["ctexpire"]));
    const ctx = this.ctx;
    ctx.state = EvalState.for(opts.ruleset, opts.hz ?? 250);
    const host = this.host;
    const evalHost: EvalHost = {
      addrType: (family, a, iface) => {
        const t = host.addrType(family, a);
        // inet_dev_addr_type(): given a device, an address is LOCAL only on it.
        if (t === ADDRTYPE_RTN.LOCAL && iface !== null && !host.localOn(family, a, iface)) return ADDRTYPE_RTN.UNICAST;
        return t;
      },
      routeOif: (family, a) => (host.isLocal(family, a) ? null : host.route(family, a)),
      connCount: (m, c) => this.connCount(m, c),
      random32: () => this.random32(),
    };
    ctx.host = evalHost;
  }

  private buildSchedules(f: 4 | 6): Record<string, Stage[]> {
    const rs = this.ruleset;
    const ctOn = f === 4 ? this.conntrackOn.ipv4 : this.conntrackOn.ipv6;
    const natOn = f === 4 ? this.natOn.ipv4 : this.natOn.ipv6;
    const out: Record<string, Stage[]> = {};
    for (const hook of HOOKS) {
      const stages: Array<Stage & { order: number }> = [];
      let order = 0;
      const natChains: Array<{ c: Chain; prio: number; order: number }> = [];
      for (const t of rs.tables) {
        if (!tableFamilies(t.family).includes(f) || (t.family !== "ip" && t.family !== "ip6" && t.family !== "inet")) continue;
        for (const c of t.chains) {
          const b = c.base;
          if (!b || b.hook !== hook) continue;
          if (b.type === "nat") natChains.push({ c, prio: b.priority, order: order++ });
          else stages.push({ kind: STAGE_CHAIN, priority: b.priority, chain: c, natChains: [], manip: MANIP.SRC, order: order++ });
        }
      }
      // Built-in stages come after chains of equal priority (they register later).
      const builtin = 1e9;
      if (ctOn && (hook === "prerouting" || hook === "output")) {
        stages.push({ kind: STAGE_CONNTRACK, priority: PRI_CONNTRACK, chain: null, natChains: [], manip: MANIP.SRC, order: builtin });
      }
      if (natOn) {
        natChains.sort((a, b) => a.prio - b.prio || a.order - b.order);
        const dst = hook === "prerouting" || hook === "output";
        if (hook !== "forward") {
          stages.push({
            kind: STAGE_NAT,
            priority: dst ? PRI_NAT_DST : PRI_NAT_SRC,
            chain: null,
            natChains: natChains.map((x) => x.c),
            manip: dst ? MANIP.DST : MANIP.SRC,
            order: builtin + 1,
          });
        }
      }
      if (ctOn && (hook === "input" || hook === "postrouting")) {
        stages.push({ kind: STAGE_CONFIRM, priority: PRI_CONFIRM, chain: null, natChains: [], manip: MANIP.SRC, order: builtin + 2 });
      }
      stages.sort((a, b) => a.priority - b.priority || a.order - b.order);
      out[hook] = stages;
    }
    return out;
  }

  /** The stages of a hook for a family, in order (for reports and tests). */
  stagesOf(
    family: 4 | 6,
    hook: HookName,
  ): ReadonlyArray<{ kind: "chain" | "conntrack" | "nat" | "confirm"; priority: number; chain: Chain | null; natChains: readonly Chain[] }> {
    return (this.schedules[family][hook] ?? []).map((s) => ({
      kind: (["chain", "conntrack", "nat", "confirm"] as const)[s.kind] as "nat" | "chain" | "conntrack" | "confirm",
      priority: s.priority,
      chain: s.chain,
      natChains: s.natChains,
    }));
  }

  /**
   * Runs one packet through the path at time `nowMs` (the tracker's clock
   * must already be there). Returns VERDICT.ACCEPT or VERDICT.DROP; details in
   * `result`. The view is left as the last hook saw it (translated).
   */
  run(p: PacketView, nowMs: number): number {
    const res = this.result;
    res.reset();
    const st = this.stats;
    st.packets++;
    if (p.family !== 4 && p.family !== 6) {
      st.accepted++;
      return VERDICT.ACCEPT;
    }
    const ctx = this.ctx;
    ctx.p = p;
    ctx.nowMs = nowMs;
    ctx.mark = 0;
    this.resetPacketState();
    const sched = this.schedules[p.family];
    const host = this.host;
    // A capture taken on an interface (--iif) shows packets arriving there, whatever their
    // source; without one, a packet from the host's own address is traffic it sent.
    const fromLocal = host.iif === null ? host.isLocal(p.family, p.src) : host.iif === "lo";
    let verdict: number;
    if (fromLocal) {
      res.route = ROUTE.OUTPUT;
      st.byRoute.output++;
      const oif = host.outIface(p.family, p.dst);
      verdict = this.hook(sched, "output", "", oif);
      if (verdict === VERDICT.ACCEPT) verdict = this.hook(sched, "postrouting", "", host.outIface(p.family, p.dst));
      // Traffic to itself comes back in through lo; conntrack already has it.
      if (verdict === VERDICT.ACCEPT && host.loopsBack(p.family, p.dst, oif)) {
        this.conntrackDone = true;
        verdict = this.hook(sched, "prerouting", "lo", "");
        if (verdict === VERDICT.ACCEPT) verdict = this.hook(sched, "input", "lo", "");
      }
    } else {
      const iif = host.inIface(p.family, p.src);
      const early = host.receiveDrop(p.family, p.src, p.dst, iif);
      if (early !== 0) {
        // ip6_rcv_core: the packet never reaches PREROUTING, so nothing saw it.
        res.route = ROUTE.INPUT;
        st.byRoute.input++;
        verdict = this.routeDrop(early);
      } else {
        verdict = this.hook(sched, "prerouting", iif, "");
        // The routing decision sees the destination after DNAT.
        const rt = verdict === VERDICT.ACCEPT ? host.routeInput(p.family, p.src, p.dst, iif, p.proto, p.ttl) : -1;
        if (rt === RT.LOCAL || (rt !== RT.FORWARD && host.deliversLocally(p.family, p.dst))) {
          res.route = ROUTE.INPUT;
          st.byRoute.input++;
          if (rt === RT.LOCAL) verdict = this.hook(sched, "input", iif, "");
          else if (rt >= 0) verdict = this.routeDrop(rt);
        } else {
          res.route = ROUTE.FORWARD;
          st.byRoute.forward++;
          if (rt === RT.FORWARD) {
            const oif = host.outIface(p.family, p.dst);
            verdict = this.hook(sched, "forward", iif, oif);
            if (verdict === VERDICT.ACCEPT) verdict = this.hook(sched, "postrouting", iif, host.outIface(p.family, p.dst));
          } else if (rt >= 0) {
            verdict = this.routeDrop(rt);
          }
        }
      }
    }
    if (verdict !== VERDICT.ACCEPT) {
      // A new entry of a dropped packet is freed without a trace.
      this.ct.dropUnconfirmed();
      res.verdict = VERDICT.DROP;
      st.dropped++;
    } else {
      res.verdict = VERDICT.ACCEPT;
      st.accepted++;
      res.rule = this.filterChain !== null ? this.filterRule : this.lastRule;
      res.chain = this.filterChain ?? this.lastChain;
      res.baseChain = this.filterChain !== null ? this.filterBase : this.lastBase;
      res.hook = this.filterChain !== null ? this.filterHook : this.lastHook;
    }
    res.slot = this.slot;
    res.state = this.conntrackDone || this.notrack ? this.ctState : 0;
    if (this.notrack) st.untracked++;
    else if (!this.conntrackDone) st.notTracked++;
    if (res.translated) st.translated++;
    return res.verdict;
  }

  /**
   * Clears what one packet's walk records. A method of its own: the hooks set these fields
   * behind method calls, which TypeScript's narrowing of `this.x` after an assignment does not see.
   */
  private resetPacketState(): void {
    this.slot = -1;
    this.dir = 0;
    this.ctinfo = -1;
    this.ctState = 0;
    this.conntrackDone = false;
    this.notrack = false;
    this.zone = 0;
    this.tmplHelper = "";
    this.filterRule = this.lastRule = null;
    this.filterChain = this.lastChain = null;
    this.filterBase = this.lastBase = null;
  }

  /** One hook: every stage in order. Returns the verdict. */
  private hook(sched: Record<string, Stage[]>, hook: HookName, iif: string, oif: string): number {
    const stages = sched[hook] as Stage[];
    const ctx = this.ctx;
    ctx.hook = hook;
    ctx.iif = iif;
    ctx.oif = oif;
    for (let i = 0; i < stages.length; i++) {
      const s = stages[i] as Stage;
      switch (s.kind) {
        case STAGE_CHAIN: {
          const v = this.runChain(s.chain as Chain, hook);
          if (v !== VERDICT.ACCEPT) return v;
          break;
        }
        case STAGE_CONNTRACK:
          if (!this.conntrackIn(hook)) return this.fail(DROP_REASON.CONNTRACK, hook);
          break;
        case STAGE_NAT: {
          const v = this.natHook(s, hook);
          if (v !== VERDICT.ACCEPT) return v;
          break;
        }
        case STAGE_CONFIRM:
          if (this.conntrackDone && !this.notrack && !this.ct.confirm()) return this.fail(DROP_REASON.CONFIRM, hook);
          break;
      }
    }
    return VERDICT.ACCEPT;
  }

  private fail(reason: number, hook: HookName): number {
    const res = this.result;
    res.dropReason = reason;
    res.hook = hook;
    const d = this.stats.dropsByReason;
    if (reason === DROP_REASON.CONNTRACK) d.conntrack++;
    else if (reason === DROP_REASON.NAT) d.nat++;
    else if (reason === DROP_REASON.CONFIRM) d.confirm++;
    return VERDICT.DROP;
  }

  /** A packet the input route decision dropped: it never reaches a confirm hook (ip_rcv_finish's drop). */
  private routeDrop(rt: number): number {
    const res = this.result;
    res.dropReason = DROP_REASON.ROUTE;
    res.routeReason = rt;
    res.hook = "prerouting";
    this.stats.dropsByReason.route++;
    const key = RT_DROP_KEYS[rt];
    if (key !== undefined && key !== "") this.stats.routeDrops[key]++;
    return VERDICT.DROP;
  }

  /** Loads the packet's conntrack data into the evaluation context. */
  private loadCt(): void {
    const ctx = this.ctx;
    const s = this.slot;
    let state = this.ctState;
    if (state === 0) state = CT_STATE.INVALID;
    if (s >= 0) {
      const tr = this.ct;
      const status = tr.statusOf(s);
      if (status & IPS.SRC_NAT) state |= CTSTATE_SNAT;
      if (status & IPS.DST_NAT) state |= CTSTATE_DNAT;
      ctx.ctStatus = status;
      ctx.ctMark = tr.markOf(s);
      ctx.ctDir = this.dir;
      ctx.ctProto = tr.protoOf(s);
      ctx.ctZone = tr.zoneOf(s);
      if (this.needTuples) {
        const t = this.tuple;
        tr.tupleOf(s, 0, t);
        copyAddr(ctx.ctOrigSrc, ctx.ctOrigDst, t);
        ctx.ctOrigSport = t.sport;
        ctx.ctOrigDport = t.dport;
        tr.tupleOf(s, 1, t);
        copyAddr(ctx.ctReplSrc, ctx.ctReplDst, t);
        ctx.ctReplSport = t.sport;
        ctx.ctReplDport = t.dport;
      }
      if (this.needExpire) ctx.ctExpireSec = tr.timeoutSecondsOf(s);
    } else {
      ctx.ctStatus = 0;
      ctx.ctMark = 0;
      ctx.ctDir = 0;
      ctx.ctProto = 0;
      ctx.ctZone = 0;
    }
    ctx.ctState = state;
  }

  private runChain(chain: Chain, hook: HookName): number {
    const ctx = this.ctx;
    this.loadCt();
    const markBefore = ctx.ctMark;
    ctx.resetResults();
    const v = this.compiled.evaluate(chain, ctx);
    if (this.slot >= 0 && ctx.ctMark !== markBefore) this.ct.setMark(this.slot, ctx.ctMark);
    if (ctx.notrack) {
      if (!this.conntrackDone) {
        this.notrack = true;
      } else if (this.slot < 0 && this.ctState !== CT_STATE.UNTRACKED) {
        // nft notrack after conntrack: only a packet without a conntrack becomes untracked.
        this.ctState = CT_STATE.UNTRACKED;
        this.notrack = true;
      }
    }
    if (ctx.ctTemplate && !this.conntrackDone) {
      this.zone = ctx.ctTemplateZone;
      if (ctx.ctTemplateHelper !== "") this.tmplHelper = ctx.ctTemplateHelper;
    } else if (ctx.ctTemplateHelper !== "" && this.conntrackDone && this.slot >= 0) {
      // nft `ct helper set`: only onto a new, unconfirmed entry (nft_ct_helper_obj_eval).
      const type = this.helperObjectType(chain, ctx.ctTemplateHelper);
      if (type !== "") this.ct.assignHelper(this.slot, type);
    }
    this.lastRule = ctx.verdictRule;
    this.lastChain = ctx.verdictChain;
    this.lastBase = chain;
    this.lastHook = hook;
    if (chain.base?.type === "filter" && (hook === "input" || hook === "forward" || hook === "output") && chain.base.priority >= -100) {
      this.filterRule = ctx.verdictRule;
      this.filterChain = ctx.verdictChain;
      this.filterBase = chain;
      this.filterHook = hook;
    }
    if (v !== VERDICT.ACCEPT) return this.ruleDrop(chain, hook);
    return v;
  }

  /** The helper type of the ct helper object `name` in the chain's table ("" when there is none). */
  private helperObjectType(chain: Chain, name: string): string {
    for (const o of this.ruleset.ctObjects) {
      if (o.kind === "ct helper" && o.name === name && o.table === chain.table && o.family === chain.family) return o.helperType ?? "";
    }
    return "";
  }

  /**
   * nf_nat_follow_master, the expectation function nf_nat_ftp and
   * nf_nat_tftp give a NATed master's expectations: the expected connection
   * comes from where the master sends to and goes to where it expects.
   */
  private followMaster(slot: number, master: number, natDir: 0 | 1, port: number): void {
    const t = this.tuple;
    this.ct.tupleOf(master, natDir === 0 ? 1 : 0, t);
    const r = this.range;
    r.clear();
    r.flags |= NF_NAT_RANGE.MAP_IPS;
    r.minAddr[0] = r.maxAddr[0] = t.d0;
    r.minAddr[1] = r.maxAddr[1] = t.d1;
    r.minAddr[2] = r.maxAddr[2] = t.d2;
    r.minAddr[3] = r.maxAddr[3] = t.d3;
    this.nat.setupInfo(slot, r, MANIP.SRC);
    r.clear();
    r.flags |= NF_NAT_RANGE.MAP_IPS;
    r.minAddr[0] = r.maxAddr[0] = t.s0;
    r.minAddr[1] = r.maxAddr[1] = t.s1;
    r.minAddr[2] = r.maxAddr[2] = t.s2;
    r.minAddr[3] = r.maxAddr[3] = t.s3;
    r.setPorts(port, port);
    this.nat.setupInfo(slot, r, MANIP.DST);
  }

  /** Records a drop decided by a rule or a chain policy of `chain` (the context holds the rule). */
  private ruleDrop(chain: Chain, hook: HookName): number {
    const ctx = this.ctx;
    const res = this.result;
    res.rule = ctx.verdictRule;
    res.chain = ctx.verdictChain;
    res.baseChain = chain;
    res.hook = hook;
    res.dropReason = ctx.verdictRule === null ? DROP_REASON.POLICY : DROP_REASON.RULE;
    if (ctx.verdictRule === null) this.stats.dropsByReason.policy++;
    else this.stats.dropsByReason.rule++;
    this.chainDrops.set(chain, (this.chainDrops.get(chain) ?? 0) + 1);
    return VERDICT.DROP;
  }

  /** nf_conntrack_in at PREROUTING / LOCAL_OUT. Returns false when conntrack drops the packet. */
  private conntrackIn(hook: HookName): boolean {
    if (this.conntrackDone) return true;
    const tr = this.ct;
    const p = this.ctx.p;
    if (this.notrack) {
      tr.in(p, HOOK_NUM[hook], this.zone, true);
      this.ctState = CT_STATE.UNTRACKED;
      this.conntrackDone = true;
      return true;
    }
    const s = tr.in(p, HOOK_NUM[hook], this.zone);
    this.conntrackDone = true;
    this.stats.tracked++;
    if (s === CT_DROPPED) return false;
    const r = tr.result;
    this.ctState = s;
    this.slot = r.slot;
    this.dir = r.dir;
    this.ctinfo = r.ctinfo;
    if (r.isNew && r.slot >= 0) {
      const e = r.expected;
      if (e !== null) {
        const natOn = p.family === 6 ? this.natOn.ipv6 : this.natOn.ipv4;
        if (e.natFollow && natOn) this.followMaster(r.slot, e.master, e.natDir, e.savedPort);
      } else if (this.tmplHelper !== "") {
        tr.assignHelper(r.slot, this.tmplHelper);
      }
    }
    return true;
  }

  /** The NAT core hook (nf_nat_ipv4_fn / nf_nat_inet_fn). */
  private natHook(s: Stage, hook: HookName): number {
    const slot = this.slot;
    if (slot < 0) return VERDICT.ACCEPT;
    const nat = this.nat;
    const p = this.ctx.p;
    const ctinfo = this.ctinfo;
    const manip = s.manip;
    const related = ctinfo === CTINFO.RELATED || ctinfo === CTINFO.RELATED_REPLY;
    if (related && (p.proto === 1 || p.proto === 58) && isIcmpError(p.proto, p.icmpType)) {
      // nf_nat_icmp_reply_translation: errors are translated, never looked up in NAT chains.
      if (nat.packet(p, slot, this.dir, manip)) this.result.translated = true;
      return VERDICT.ACCEPT;
    }
    if ((ctinfo === CTINFO.NEW || related) && !nat.initialized(slot, manip)) {
      const ctx = this.ctx;
      for (const chain of s.natChains) {
        this.loadCt();
        ctx.resetResults();
        const v = this.compiled.evaluate(chain, ctx);
        if (ctx.ctMark !== this.ct.markOf(slot)) this.ct.setMark(slot, ctx.ctMark);
        if (v !== VERDICT.ACCEPT) return this.ruleDrop(chain, hook);
        const spec = ctx.nat;
        if (spec !== null && this.natTarget(spec, manip, hook) === VERDICT.DROP) return this.fail(DROP_REASON.NAT, hook);
        if (nat.initialized(slot, manip)) break;
      }
      if (!nat.initialized(slot, manip)) nat.nullBinding(slot, manip);
    }
    if (nat.packet(p, slot, this.dir, manip)) this.result.translated = true;
    return VERDICT.ACCEPT;
  }

  /** Runs a SNAT/DNAT/MASQUERADE/REDIRECT target: builds the range and sets up the binding. */
  private natTarget(spec: NatSpec, manip: ManipType, hook: HookName): number {
    const want: ManipType = spec.type === "snat" || spec.type === "masquerade" ? MANIP.SRC : MANIP.DST;
    // The kernel refuses such rules when loading them; a mismatch here can only come from a hand-made model.
    if (want !== manip) return VERDICT.ACCEPT;
    const p = this.ctx.p;
    const fam: 4 | 6 = p.family === 6 ? 6 : 4;
    // An address of the other family cannot apply; masquerade/redirect in an inet table serve both.
    if (spec.addrLo !== null && spec.family !== p.family) return VERDICT.ACCEPT;
    const r = this.range;
    r.clear();
    if (spec.type === "masquerade") {
      const a = this.host.sourceFor(fam, this.ctx.oif, p.dst);
      if (a === null) return VERDICT.DROP;
      r.setAddr(a);
    } else if (spec.type === "redirect") {
      const a = this.host.redirectTarget(fam, this.ctx.iif, hook === "output");
      if (a === null) return VERDICT.DROP;
      r.setAddr(a);
    } else if (spec.addrLo !== null && spec.addrHi !== null) {
      r.flags |= NF_NAT_RANGE.MAP_IPS;
      r.minAddr.set(spec.addrLo);
      r.maxAddr.set(spec.addrHi);
    }
    if (spec.portLo >= 0) r.setPorts(spec.portLo, spec.portHi >= 0 ? spec.portHi : spec.portLo);
    if (spec.random) r.flags |= NF_NAT_RANGE.PROTO_RANDOM;
    if (spec.fullyRandom) r.flags |= NF_NAT_RANGE.PROTO_RANDOM_FULLY;
    if (spec.persistent) r.flags |= NF_NAT_RANGE.PERSISTENT;
    this.nat.setupInfo(this.slot, r, manip);
    return VERDICT.ACCEPT;
  }

  /**
   * Connections counted by a connlimit / ct count match (nf_conncount): the
   * entries that went through this match with the same masked key and are
   * still alive and not closing, plus the packet's own when new to the list.
   */
  private connCount(m: Extract<Match, { kind: "connlimit" }>, ctx: PacketContext): number {
    let perRule = this.conncount.get(m.slot);
    if (perRule === undefined) {
      perRule = new Map();
      this.conncount.set(m.slot, perRule);
    }
    const p = ctx.p;
    let key = "";
    if (m.maskLen >= 0) {
      const a = prefixRange(p.family === 6 ? 6 : 4, m.key === "saddr" ? p.src : p.dst, m.maskLen).lo;
      key = `${p.family}:${a[0]}:${a[1]}:${a[2]}:${a[3]}`;
    }
    let list = perRule.get(key);
    if (list === undefined) {
      list = [];
      perRule.set(key, list);
    }
    const tr = this.ct;
    const own = this.slot;
    let count = 0;
    let seen = false;
    for (let i = 0; i < list.length; i++) {
      const s = list[i] as number;
      const st = tr.statusOf(s);
      const alive = s === own || ((st & IPS.CONFIRMED) !== 0 && (st & IPS.DYING) === 0);
      const closing = alive && tr.protoOf(s) === 6 && (tr.stateNameOf(s) === "TIME_WAIT" || tr.stateNameOf(s) === "CLOSE");
      if (!alive || closing) {
        list.splice(i--, 1);
        continue;
      }
      if (s === own) seen = true;
      count++;
    }
    if (!seen) {
      if (own >= 0) list.push(own);
      count++;
    }
    return count;
  }
}

function isIcmpError(proto: number, type: number): boolean {
  if (proto === 1) return type === 3 || type === 4 || type === 5 || type === 11 || type === 12;
  return type >= 0 && type < 128;
}

function copyAddr(src: Uint32Array, dst: Uint32Array, t: TupleScratch): void {
  src[0] = t.s0;
  src[1] = t.s1;
  src[2] = t.s2;
  src[3] = t.s3;
  dst[0] = t.d0;
  dst[1] = t.d1;
  dst[2] = t.d2;
  dst[3] = t.d3;
}
