/**
 * The conntrack engine: nf_conntrack_in and __nf_conntrack_confirm
 * (net/netfilter/nf_conntrack_core.c) over the struct-of-arrays table, with
 * early drop, per-packet event caching, lazy expiry on
 * lookup, the expiry lists standing in for gc_worker's timeout scan, and
 * gc_worker's high-occupancy eviction.
 *
 * Nothing here reads the wall clock: time comes from the injected clock (in
 * milliseconds), converted to the kernel's u32 jiffies (jiffies.ts).
 *
 * Two classes: `TrackerEngine` holds the table and does the work; it is the
 * context the protocol trackers receive (typed as `CtContext`, all they may
 * touch) and what ctlab's own NAT and packet path drive (`trackerEngine()`).
 * `Tracker` is the public face: packets in, results and read-only entry
 * views out. The engine is not exported from the package's entry point.
 */
import { l4ChecksumOffloaded, l4ChecksumOk } from "../packet/checksum.js";
import { DECODE_REASON } from "../packet/decode.js";
import type { PacketView } from "../packet/view.js";
import { IPPROTO, TCP_FLAG } from "../packet/view.js";
import { CT_STATE, CTINFO, HOOK, IPCT, IPS, L4_VERDICT } from "./constants.js";
import { EVENT_TYPE } from "./constants.js";
import type { EventType } from "./constants.js";
import type { EntryCounters, EntryReader, EntryTimestamps, TupleReader } from "./entry.js";
import type { EventSink } from "./events.js";
import * as fmt from "./format.js";
import { CT_DROPPED, CtResult } from "./result.js";
import type { CtStateValue } from "./result.js";
import { GenericTracker } from "./generic.js";
import { GreTracker } from "./gre.js";
import { ICMP_ERROR_ATTACHED, ICMP_ERROR_FAILED, ICMP_ERROR_UNTRACKED, IcmpErrorPath, IcmpTracker } from "./icmp.js";
import type { IcmpErrorContext } from "./icmp.js";
import { HZ, jdiff, MS_PER_JIFFY, msToJiffies } from "./jiffies.js";
import type { CtContext, L4Tracker } from "./l4.js";
import { RateLimit } from "./ratelimit.js";
import { SctpTracker } from "./sctp.js";
import { ConntrackStats, INVALID_REASON } from "./stats.js";
import { resolveSysctls } from "./sysctl.js";
import type { SysctlValues } from "./sysctl.js";
import { FLAG_NAT, FLAG_V6, grown, NO_CLASS, REPLY_NODE, Table } from "./table.js";
import { TcpTracker } from "./tcp.js";
import { TupleScratch } from "./tuple.js";
import { UdpTracker } from "./udp.js";
import { EXPECT_CLASS_DEFAULT, EXPECT_ERR, ExpectTable } from "./helpers/expect.js";
import type { ExpectEventSink } from "./helpers/expect.js";
import type { ConntrackHelper, HelperContext } from "./helpers/helper.js";
import { helperByName } from "./helpers/registry.js";
import { xorshift32Next } from "../sim/random.js";
import { EvictionAudit, tupleCheck } from "./policy/audit.js";
import { EVICT_REASON, EVICT_REASON_NAMES, REFUSE_REASON, REFUSE_REASON_NAMES } from "./policy/policy.js";
import type { EvictReason, PolicyEvent, PolicyHost, PolicyReport, RefuseReason, SourceCounts, TablePolicy } from "./policy/policy.js";
import { createPolicy } from "./policy/registry.js";
import type { PolicyConfig } from "./policy/registry.js";

export { CT_DROPPED, CtResult, ctStateName } from "./result.js";
export type { CtStateName, CtStateValue } from "./result.js";

/** A clock in milliseconds. */
export interface Clock {
  now(): number;
}

/** Options of `new Tracker()`. */
export interface TrackerOptions {
  /**
   * Sysctl settings over the kernel defaults, by any accepted name form
   * (`nf_conntrack_max`, `net.netfilter.nf_conntrack_max`, …), numbers or
   * /proc text. See sysctl.ts.
   */
  readonly sysctls?: Readonly<Record<string, number | string>>;
  /**
   * Where time comes from, in milliseconds. When given, every `in()` first
   * advances the tracker to `clock.now()`; a clock may read NaN until it
   * knows the time (then time starts at its first real reading). When
   * absent, time moves only through `advance()`.
   */
  readonly clock?: Clock;
  /** Seed of the hash and of the random chain limit (default: random per process). */
  readonly seed?: number;
  /** Receives NEW/UPDATE/DESTROY events; null or absent costs nothing. */
  readonly events?: EventSink | null;
  /** Receives kernel log lines ("nf_conntrack: table full, dropping packet", invalid-packet logs). */
  readonly log?: ((timeMs: number, line: string) => void) | null;
  /** Receives expectation NEW/DESTROY events as `conntrack -E expect` prints them. */
  readonly expectEvents?: ExpectEventSink | null;
  /**
   * What a failed transport checksum carrying the transmit-offload signature
   * (l4ChecksumOffloaded: TCP/UDP field = pseudo-header sum, SCTP 0) means.
   * "sender" (default): the capture was taken on the sending host, where the
   * packet was CHECKSUM_PARTIAL and never checked, and the wire carried the
   * sum the NIC filled in — the packet is tracked as valid and counted in
   * `stats.checksumOffloaded`. "wire": the bytes are what a receiver got, as
   * when they are injected into a router with tcpreplay (CHECKSUM_NONE there):
   * the checksum is wrong and the packet INVALID.
   */
  readonly offloadedChecksums?: "sender" | "wire";
  /**
   * What the table does under pressure: admission of new entries, eviction,
   * timeouts scaled down (see policy/). A name with default options, or the
   * name and its options. Default `"kernel"`: nf_conntrack's early drop and
   * gc_worker eviction, exactly.
   * @throws PolicyError (from the constructor) for an unknown name or option
   */
  readonly policy?: PolicyConfig;
  /** Receives the policy's pressure-level changes. */
  readonly onPolicyEvent?: ((event: PolicyEvent) => void) | null;
  /**
   * Detect live evictions: evicted entries whose connection sends another
   * packet before the entry would have expired (`policy.liveEvictions`).
   * Costs a record per eviction and a lookup per new entry after the first
   * eviction; memory bounded by the table size. Default false.
   */
  readonly countLiveEvictions?: boolean;
}

// gc_worker constants (nf_conntrack_core.c).
const GC_SCAN_INTERVAL_MAX = 60 * HZ;
const GC_SCAN_INTERVAL_MIN = 1 * HZ;
const GC_SCAN_INTERVAL_CLAMP = 300 * HZ;
const GC_SCAN_INITIAL_COUNT = 100;
const GC_SCAN_EXPIRED_MAX = Math.floor(64000 / HZ);
// __nf_conntrack_confirm chain limit: MIN_CHAINLEN + get_random_u32_below(MAX_CHAINLEN).
const MIN_CHAINLEN = 50;
const MAX_CHAINLEN = 80 - MIN_CHAINLEN;
/** NF_CT_EVICTION_RANGE. */
const EVICTION_RANGE = 8;

/** CT_STATE bit of a CTINFO value (NF_CT_STATE_BIT). */
function stateBit(ctinfo: number): CtStateValue {
  switch (ctinfo) {
    case CTINFO.ESTABLISHED:
    case CTINFO.ESTABLISHED_REPLY:
      return CT_STATE.ESTABLISHED;
    case CTINFO.RELATED:
    case CTINFO.RELATED_REPLY:
      return CT_STATE.RELATED;
    case CTINFO.NEW:
      return CT_STATE.NEW;
    default:
      return CT_STATE.UNTRACKED;
  }
}

function randomSeed(): number {
  const a = new Uint32Array(1);
  globalThis.crypto.getRandomValues(a);
  return a[0] as number;
}

/**
 * The engine behind a `Tracker`: the table, the per-packet path, expiry, GC
 * and events. Package-internal (ctlab's NAT, packet path, benches and
 * invariant tests drive it through `trackerEngine()`); not part of the public
 * API, so its members may change with the table's layout.
 */
export class TrackerEngine implements CtContext, IcmpErrorContext, PolicyHost {
  /** Resolved sysctls (timeouts in ms). */
  readonly sysctl: SysctlValues;
  /** Entry status bits by slot (`IPS.*`); replaced by a longer copy when the table grows. */
  status: Uint16Array;
  /** Current time in milliseconds. */
  now = 0;
  /** `conntrack -S` counters. */
  readonly stats = new ConntrackStats();
  /** Details of the last `in()`. */
  readonly result = new CtResult();
  /** The table storage (advanced use: reports, tests). */
  readonly table: Table;
  /** nf_conntrack_max: most entries at once, 0 for no limit. The slot arrays grow up to it. */
  readonly capacity: number;
  /** Highest `count` seen. */
  peak = 0;
  /** Expectations registered by helpers (`conntrack -L expect`). */
  readonly expectations: ExpectTable;

  private nowJ = 0;
  private nowJx = 0;
  private timeKnown = false;
  private readonly clock: Clock | null;
  private readonly sink: EventSink | null;
  private readonly logSink: ((timeMs: number, line: string) => void) | null;
  private readonly seed: number;
  private readonly offloadSender: boolean;
  private rng: number;

  private readonly tcp: TcpTracker;
  private readonly udp: UdpTracker;
  private readonly udplite: UdpTracker;
  private readonly icmp: IcmpTracker;
  private readonly icmpv6: IcmpTracker;
  private readonly gre: GreTracker;
  private readonly sctp: SctpTracker;
  private readonly generic: GenericTracker;

  /** Pending IPCT_* bits by slot; null when events are off. */
  private evCache: Uint16Array | null;
  /** packets/bytes ORIGINAL, packets/bytes REPLY by slot; null unless nf_conntrack_acct. */
  private acct: Float64Array | null;
  /** start/stop ms by slot; null unless nf_conntrack_timestamp. */
  private tstamp: Float64Array | null;
  /** ct mark by slot; allocated by the first non-zero mark. */
  private mark: Uint32Array | null = null;

  /** Helper and its private state by slot, for entries with a helper. */
  private readonly helped = new Map<number, { helper: ConntrackHelper; state: unknown }>();
  /** ct->master of expected entries. */
  private readonly masters = new Map<number, number>();
  /** The packet of the last in(): helpers read it at confirmation. */
  private lastView: PacketView | null = null;
  private helperCtx: HelperContext | null = null;

  private readonly tuple = new TupleScratch();
  private readonly icmpErrors = new IcmpErrorPath();
  private readonly scratch = new TupleScratch();
  private readonly rateLimit = new RateLimit();

  // The packet being processed.
  private curSlot = -1;
  private curDir: 0 | 1 = 0;
  private curView: PacketView | null = null;
  private curKilled = false;
  /** Unconfirmed entry of the last in(), or -1. */
  private pending = -1;
  /** Slot whose cached events confirm() delivers, or -1. */
  private deliverSlot = -1;
  private lookupDir: 0 | 1 = 0;

  // gc_worker state.
  private gcNextJx = 0;
  private gcNextBucket = 0;
  private gcCycleStartJx = 0;
  private gcEarlyDrop = false;
  /**
   * Time in ms before which `advance` has nothing to do: the unwrapped jiffy
   * of the next GC run or of the earliest listed deadline, whichever comes
   * first, times MS_PER_JIFFY (a lower bound: refreshes only move deadlines
   * later, and every enqueue lowers it when needed). Kept in ms so that the
   * per-packet check needs no division: with MS_PER_JIFFY = 4 (exact),
   * `ms < wakeMs` ⟺ ⌊ms / MS_PER_JIFFY⌋ < the jiffy.
   */
  private wakeMs = -Infinity;
  /** The reader event sinks receive, moved to each event's entry. */
  private readonly eventEntry: SlotReader;

  // Table policy (policy/): consulted only for new entries while `count >= watchFrom`.
  readonly policy: TablePolicy;
  private watchFrom: number;
  private readonly policySources: SourceCounts | null;
  private readonly onPolicyEvent: ((event: PolicyEvent) => void) | null;
  private readonly audit: EvictionAudit | null;
  /** Evictions by EVICT_REASON, refusals by REFUSE_REASON. */
  private readonly evictions = new Float64Array(EVICT_REASON_NAMES.length);
  private readonly refusals = new Float64Array(REFUSE_REASON_NAMES.length);
  private levelChanges = 0;
  /** Unwrapped jiffy of the next policy tick (Infinity: none). */
  private policyNextJx = Infinity;

  /**
   * @throws SysctlError when a sysctl name or value is refused
   */
  constructor(options: TrackerOptions = {}) {
    this.sysctl = resolveSysctls(options.sysctls ?? {});
    const capacity = this.sysctl.nf_conntrack_max;
    const buckets = this.sysctl.nf_conntrack_buckets;
    this.capacity = capacity;
    this.seed = (options.seed ?? randomSeed()) >>> 0;
    this.rng = this.seed ^ 0x9e3779b9 || 1;
    this.table = new Table(capacity, buckets, this.seed);
    this.status = this.table.status;
    this.policy = createPolicy(options.policy, capacity, this.table);
    this.watchFrom = this.policy.watchFrom;
    this.policySources = this.policy.sources;
    this.onPolicyEvent = options.onPolicyEvent ?? null;
    this.audit = options.countLiveEvictions === true ? new EvictionAudit(capacity) : null;
    const slots = this.table.size;
    this.clock = options.clock ?? null;
    const events = this.sysctl.nf_conntrack_events !== 0 ? (options.events ?? null) : null;
    this.sink = events;
    this.logSink = options.log ?? null;
    this.offloadSender = options.offloadedChecksums !== "wire";
    this.eventEntry = new SlotReader(this);
    this.evCache = events !== null ? new Uint16Array(slots) : null;
    this.acct = this.sysctl.nf_conntrack_acct === 1 ? new Float64Array(slots * 4) : null;
    this.tstamp = this.sysctl.nf_conntrack_timestamp === 1 ? new Float64Array(slots * 2) : null;

    this.tcp = new TcpTracker(slots);
    this.udp = new UdpTracker(slots, IPPROTO.UDP);
    this.udplite = new UdpTracker(slots, IPPROTO.UDPLITE);
    this.icmp = new IcmpTracker(IPPROTO.ICMP);
    this.icmpv6 = new IcmpTracker(IPPROTO.ICMPV6);
    this.gre = new GreTracker();
    this.sctp = new SctpTracker(slots);
    this.generic = new GenericTracker();
    this.expectations = new ExpectTable(
      this.sysctl.nf_conntrack_expect_max,
      {
        masterTuple: (slot, dir) => {
          const t = new TupleScratch();
          this.tupleOf(slot, dir, t);
          return { src: [t.s0, t.s1, t.s2, t.s3], dst: [t.d0, t.d1, t.d2, t.d3], sport: t.sport, dport: t.dport };
        },
      },
      options.expectEvents ?? null,
      this.stats,
    );
    if (this.clock !== null) {
      // A clock that reads NaN has no time yet (a replay before its first packet):
      // time, and with it the GC worker's schedule, starts at the first real reading.
      const t = this.clock.now();
      if (t === t) this.setTime(t);
    }
  }

  // ---- public state ---------------------------------------------------------------

  /** Entries in the table, including one created by the last packet and not yet confirmed (nf_conntrack_count). */
  get count(): number {
    return this.table.used;
  }

  /** Exact bytes of every typed array held: table, index, side stores, protocol state, extensions. */
  get memoryBytes(): number {
    let n = this.table.bytes;
    n += this.tcp.bytesAllocated + this.udp.bytesAllocated + this.udplite.bytesAllocated;
    n += this.icmp.bytesAllocated + this.icmpv6.bytesAllocated + this.gre.bytesAllocated;
    n += this.sctp.bytesAllocated + this.generic.bytesAllocated;
    if (this.evCache !== null) n += this.evCache.byteLength;
    if (this.acct !== null) n += this.acct.byteLength;
    if (this.tstamp !== null) n += this.tstamp.byteLength;
    if (this.mark !== null) n += this.mark.byteLength;
    return n + this.policy.bytes;
  }

  /** The protocol tracker of an IP protocol number (the generic one for protocols without their own). */
  l4(proto: number): L4Tracker {
    switch (proto) {
      case IPPROTO.TCP:
        return this.tcp;
      case IPPROTO.UDP:
        return this.udp;
      case IPPROTO.UDPLITE:
        return this.udplite;
      case IPPROTO.ICMP:
        return this.icmp;
      case IPPROTO.ICMPV6:
        return this.icmpv6;
      case IPPROTO.GRE:
        return this.gre;
      case IPPROTO.SCTP:
        return this.sctp;
      default:
        return this.generic;
    }
  }

  /** The TCP tracker (for TCP-specific reports). */
  get tcpTracker(): TcpTracker {
    return this.tcp;
  }

  // ---- CtContext --------------------------------------------------------------------

  isConfirmed(slot: number): boolean {
    return ((this.status[slot] as number) & IPS.CONFIRMED) !== 0;
  }

  /** nf_ct_refresh_acct: new timeout (kept relative until confirmation) and accounting. */
  refresh(slot: number, timeoutMs: number): void {
    if (((this.status[slot] as number) & IPS.FIXED_TIMEOUT) === 0) this.setTimeout(slot, timeoutMs);
    if (this.acct !== null && slot === this.curSlot && this.curView !== null) this.account(slot);
  }

  remaining(slot: number): number {
    const e = this.table.expiry[slot] as number;
    if (!this.isConfirmed(slot)) return e * MS_PER_JIFFY;
    return jdiff(e, this.nowJ) * MS_PER_JIFFY;
  }

  setTimeout(slot: number, timeoutMs: number): void {
    const t = this.table;
    const tj = msToJiffies(timeoutMs);
    if (((this.status[slot] as number) & IPS.CONFIRMED) === 0) {
      // Not in the hash table: the timer is relative to confirmation.
      t.expiry[slot] = tj;
      return;
    }
    const e = (this.nowJ + tj) >>> 0;
    if (t.elClass[slot] !== NO_CLASS) {
      if (t.expiry[slot] === e) return;
      t.requeue(slot, e, tj, this.nowJ, this.nowJx);
    } else {
      t.expiry[slot] = e;
      t.enqueue(slot, tj, this.nowJ, this.nowJx);
    }
    const wake = (this.nowJx + tj) * MS_PER_JIFFY;
    if (wake < this.wakeMs) this.wakeMs = wake;
  }

  event(slot: number, bits: number): void {
    const c = this.evCache;
    if (c !== null) c[slot] = (c[slot] as number) | bits;
  }

  /** nf_ct_kill (nf_ct_kill_acct when it is the current packet's entry). */
  kill(slot: number): void {
    if (slot === this.curSlot) {
      if (this.acct !== null && this.curView !== null) this.account(slot);
      this.curKilled = true;
    }
    this.destroy(slot, this.now);
  }

  /** nf_l4proto_log_invalid: when nf_conntrack_log_invalid names this protocol (or 255). */
  log(_slot: number, p: PacketView, message: string): void {
    if (this.logSink === null) return;
    const want = this.sysctl.nf_conntrack_log_invalid;
    if (want !== p.proto && want !== 255) return;
    this.logSink(this.now, fmt.invalidLogLine(p, message));
  }

  // ---- time ---------------------------------------------------------------------------

  private setTime(ms: number): void {
    if (ms === this.now && this.timeKnown) return;
    this.now = ms;
    this.nowJx = Math.floor(ms / MS_PER_JIFFY);
    this.nowJ = this.nowJx >>> 0;
    if (!this.timeKnown) {
      this.timeKnown = true;
      // The GC worker first runs one second after conntrack starts.
      this.gcNextJx = this.nowJx + HZ;
    }
  }

  /**
   * Moves time forward to `nowMs` (never backwards: jiffies are monotonic)
   * and expires every entry whose deadline has passed, earliest first, each
   * with a DESTROY event at its deadline; runs the GC worker at its
   * scheduled times on the way.
   */
  advance(nowMs: number): void {
    if (nowMs !== nowMs) return; // NaN: the clock has no time yet
    const ms = nowMs > this.now ? nowMs : this.now;
    if (ms < this.wakeMs) {
      // Nothing expires and the GC does not run yet (wakeMs is -Infinity until time is known).
      this.setTime(ms);
      return;
    }
    if (!this.timeKnown) this.setTime(nowMs);
    if (nowMs < this.now) nowMs = this.now;
    const targetJx = Math.floor(nowMs / MS_PER_JIFFY);
    const t = this.table;
    for (;;) {
      const slot = t.earliest(this.nowJ);
      let expJx = Infinity;
      if (slot >= 0) expJx = Math.max(this.nowJx + jdiff(t.expiry[slot] as number, this.nowJ), this.nowJx);
      const gcJx = this.gcNextJx;
      const pJx = this.policyNextJx;
      if (pJx <= targetJx && pJx < expJx && pJx < gcJx) {
        this.stepTo(pJx, targetJx, nowMs);
        this.policyTick();
        continue;
      }
      if (expJx <= targetJx && expJx <= gcJx) {
        this.stepTo(expJx, targetJx, nowMs);
        this.destroy(slot, this.now);
        continue;
      }
      if (gcJx <= targetJx) {
        this.stepTo(gcJx, targetJx, nowMs);
        this.gcRun();
        this.gcSkipIdle(targetJx);
        continue;
      }
      this.wakeMs = Math.min(expJx, gcJx, pJx) * MS_PER_JIFFY;
      break;
    }
    this.setTime(nowMs);
  }

  /**
   * With nothing listed and no eviction pending, a GC run changes nothing but
   * its own schedule, and every such run picks the same interval; runs that
   * would follow this one up to `targetJx` are skipped to the last of them
   * (time jumps, e.g. from the clock's start to a capture's first packet,
   * would otherwise cost one run per minute of the gap).
   */
  private gcSkipIdle(targetJx: number): void {
    if (this.gcEarlyDrop || this.gcNextBucket !== 0 || this.table.listed() !== 0) return;
    const interval = this.gcNextJx - this.nowJx;
    if (interval <= 0 || this.gcNextJx > targetJx) return;
    this.gcNextJx += Math.floor((targetJx - this.gcNextJx) / interval) * interval;
  }

  private stepTo(jx: number, targetJx: number, nowMs: number): void {
    if (jx < this.nowJx) jx = this.nowJx;
    this.setTime(jx === targetJx ? nowMs : Math.max(this.now, jx * MS_PER_JIFFY));
  }

  // ---- per packet ---------------------------------------------------------------------

  /**
   * nf_conntrack_in for one packet at a hook (PRE_ROUTING or LOCAL_OUT; the
   * checksum is verified only at PRE_ROUTING). `zone` is the conntrack zone
   * (CT target / `ct zone set`), `notrack` a raw-table NOTRACK.
   * @returns the packet's CT_STATE bit, or CT_DROPPED; details in `result`
   */
  in(p: PacketView, hook: number = HOOK.PRE_ROUTING, zone = 0, notrack = false): CtStateValue {
    const r = this.result;
    r.reset();
    if (this.pending >= 0) this.dropUnconfirmed();
    this.deliverSlot = -1;
    if (this.clock !== null) this.advance(this.clock.now());
    this.lastView = p;
    if (this.expectations.count !== 0) this.expectations.expire(this.now);
    if (notrack) {
      r.state = CT_STATE.UNTRACKED;
      r.ctinfo = CTINFO.UNTRACKED;
      return r.state;
    }
    // Conntrack hooks exist for IPv4 and IPv6 only.
    if (p.family === 0) return 0;
    // get_l4proto: a fragment that was not reassembled has no transport header to track.
    if (p.isFragment && p.fragOffset !== 0) return this.invalid(INVALID_REASON.NO_TUPLE);
    // ipv6_skip_exthdr() returns -1 on NEXTHDR_NONE: get_l4proto finds no transport, so no tuple.
    if (p.reason === DECODE_REASON.IPV6_NO_NEXT_HEADER) return this.invalid(INVALID_REASON.NO_TUPLE);
    const csum = hook === HOOK.PRE_ROUTING && this.sysctl.nf_conntrack_checksum === 1;
    if ((p.proto === IPPROTO.ICMP && p.family === 4) || (p.proto === IPPROTO.ICMPV6 && p.family === 6)) {
      const e = this.icmpErrors.error(this, p, csum, zone);
      if (e === ICMP_ERROR_FAILED) return r.state;
      if (e === ICMP_ERROR_ATTACHED) return r.state;
      if (e === ICMP_ERROR_UNTRACKED) {
        r.state = CT_STATE.UNTRACKED;
        r.ctinfo = CTINFO.UNTRACKED;
        return r.state;
      }
    }
    return this.resolveAndTrack(p, zone, csum);
  }

  /**
   * __nf_conntrack_confirm for the packet of the last `in()`: inserts a new
   * entry in the table (NEW event), or delivers the events the packet caused
   * on an existing one. Returns false when the packet is dropped (chain too
   * long, entry killed before confirmation).
   */
  confirm(): boolean {
    if (this.helped.size !== 0 && !this.runHelper()) return false;
    const slot = this.pending;
    if (slot >= 0) return this.confirmNew(slot);
    const d = this.deliverSlot;
    this.deliverSlot = -1;
    if (d >= 0 && this.isConfirmed(d)) this.deliver(d);
    return true;
  }

  /**
   * `confirm()` of a new entry, apart so that the per-packet part above stays
   * small enough for V8 to inline (functions over 460 bytes of bytecode never are).
   */
  private confirmNew(slot: number): boolean {
    this.pending = -1;
    this.deliverSlot = -1;
    const t = this.table;
    if ((this.status[slot] as number) & IPS.DYING) {
      this.stats.insert_failed++;
      this.freeUnconfirmed(slot);
      return this.confirmFailed();
    }
    // The chain walk of __nf_conntrack_confirm; a clash needs another CPU, so only the length matters.
    // Both chains, the original tuple's and the reply tuple's, each up to the limit.
    const maxChain = MIN_CHAINLEN + this.randomBelow(MAX_CHAINLEN);
    const s = this.scratch;
    t.loadTuple(slot, s);
    if (this.chainTooLong(t.bucketOf(s.hash), maxChain)) return this.chainFailed(slot);
    t.loadReply(slot, s);
    if (this.chainTooLong(t.bucketOf(s.hash), maxChain)) return this.chainFailed(slot);
    if ((t.flags[slot] as number) & FLAG_NAT) {
      // A NAT reply tuple can clash on one CPU: NAT found no free tuple and kept a taken one.
      // nf_ct_resolve_clash cannot merge a clash on the reply tuple: drop and insert_failed.
      if (this.lookup(s) >= 0) {
        this.stats.drop++;
        this.stats.insert_failed++;
        this.freeUnconfirmed(slot);
        return this.confirmFailed();
      }
    }
    this.status[slot] = (this.status[slot] as number) | IPS.CONFIRMED;
    // Timeout relative to confirmation time, not to the first packet.
    const rel = t.expiry[slot] as number;
    t.expiry[slot] = (this.nowJ + rel) >>> 0;
    t.link(slot);
    t.enqueue(slot, rel, this.nowJ, this.nowJx);
    const wake = (this.nowJx + rel) * MS_PER_JIFFY;
    if (wake < this.wakeMs) this.wakeMs = wake;
    if (this.tstamp !== null) {
      this.tstamp[slot * 2] = this.now;
      this.tstamp[slot * 2 + 1] = 0;
    }
    this.event(slot, this.status[slot] & IPS.EXPECTED ? IPCT.RELATED : IPCT.NEW);
    this.deliver(slot);
    return true;
  }

  /**
   * The packet of the last `in()` was dropped before confirmation: an entry it
   * created is freed without a trace (no event), as nf_conntrack_free does.
   * Events cached on an existing entry stay cached, as in the kernel.
   */
  dropUnconfirmed(): void {
    const slot = this.pending;
    this.deliverSlot = -1;
    if (slot < 0) return;
    this.pending = -1;
    this.freeUnconfirmed(slot);
  }

  /** `in()` then `confirm()`: the plain replay path. Returns the CT_STATE bit or CT_DROPPED. */
  process(p: PacketView, hook: number = HOOK.PRE_ROUTING, zone = 0): CtStateValue {
    const s = this.in(p, hook, zone);
    if (s === CT_DROPPED) return s;
    if (!this.confirm()) return CT_DROPPED;
    return s;
  }

  /**
   * A failed checksum with the transmit-offload signature, on a capture taken
   * on the sending host: that host's kernel never checked it (CHECKSUM_PARTIAL;
   * and LOCAL_OUT is not checked at all), the wire carried the right sum.
   * Counted once per packet (not again on a REPEAT pass).
   */
  private offloaded(p: PacketView, attempt: number): boolean {
    if (!this.offloadSender || !l4ChecksumOffloaded(p)) return false;
    if (attempt === 0) this.stats.checksumOffloaded++;
    return true;
  }

  private invalid(reason: number): CtStateValue {
    const r = this.result;
    this.stats.invalid++;
    this.stats.byReason[reason] = (this.stats.byReason[reason] as number) + 1;
    r.state = CT_STATE.INVALID;
    r.invalidReason = reason;
    return r.state;
  }

  private dropped(reason: number): CtStateValue {
    const r = this.result;
    this.stats.byReason[reason] = (this.stats.byReason[reason] as number) + 1;
    r.state = CT_DROPPED;
    r.dropped = true;
    r.invalidReason = reason;
    return CT_DROPPED;
  }

  /**
   * resolve_normal_ct, nf_conntrack_handle_packet and the SEEN_REPLY step.
   * As in the kernel, the protocol's packet checks (the old l4proto `error`
   * callbacks, now at the top of each nf_conntrack_*_packet) run after the
   * lookup: a malformed first packet still allocates an entry, so at a full
   * table it can trigger early drop or be dropped (`drop`) before it would be
   * found invalid.
   */
  private resolveAndTrack(p: PacketView, zone: number, csum: boolean): CtStateValue {
    const r = this.result;
    const t = this.tuple;
    for (let attempt = 0; ; attempt++) {
      if (!t.fromView(p, zone)) return this.invalid(INVALID_REASON.NO_TUPLE);
      t.computeHash(this.seed);
      let slot = this.lookup(t);
      let dir: 0 | 1 = this.lookupDir;
      let isNew = false;
      if (slot < 0) {
        // init_conntrack: the reply tuple must exist before anything is allocated.
        if (!t.invertible) return this.invalid(INVALID_REASON.NOT_INVERTIBLE);
        if (this.audit !== null && this.audit.pending !== 0) this.auditMiss(t, p);
        slot = this.allocate(t, p);
        if (slot < 0) {
          this.stats.drop++;
          return this.dropped(INVALID_REASON.TABLE_FULL);
        }
        isNew = true;
        dir = 0;
        if (this.expectations.count !== 0) this.initExpected(slot, t);
      }
      const status = this.status[slot] as number;
      let ctinfo: number;
      if (dir === 1) ctinfo = CTINFO.ESTABLISHED_REPLY;
      else if (status & IPS.SEEN_REPLY) ctinfo = CTINFO.ESTABLISHED;
      else if (status & IPS.EXPECTED) ctinfo = CTINFO.RELATED;
      else ctinfo = CTINFO.NEW;

      const l4 = this.l4(t.proto);
      this.curSlot = slot;
      this.curDir = dir;
      this.curView = p;
      this.curKilled = false;
      let verdict: number;
      let reason: number = INVALID_REASON.STATE;
      if (!l4.valid(p, csum)) {
        verdict = L4_VERDICT.INVALID;
        reason = INVALID_REASON.MALFORMED;
        this.logTrackerReason(slot, p, l4);
      } else if (csum && t.proto !== IPPROTO.ICMP && t.proto !== IPPROTO.ICMPV6 && !l4ChecksumOk(p) && !this.offloaded(p, attempt)) {
        verdict = L4_VERDICT.INVALID;
        reason = INVALID_REASON.BAD_CHECKSUM;
        this.log(slot, p, "bad checksum");
      } else if (isNew && !l4.init(this, slot, p)) {
        verdict = L4_VERDICT.INVALID;
        reason = INVALID_REASON.NO_NEW;
      } else {
        verdict = l4.packet(this, slot, p, dir, ctinfo);
      }
      this.curSlot = -1;
      this.curView = null;

      if (verdict <= 0) {
        if (isNew) this.freeUnconfirmed(slot);
        if (verdict === L4_VERDICT.REPEAT) {
          // The tracker saw an attempt to reopen a closed connection: kill the old entry and start over.
          if (!isNew && this.isConfirmed(slot) && ((this.status[slot] as number) & IPS.DYING) === 0) {
            this.destroy(slot, this.now);
          }
          if (attempt === 0) continue;
          return this.invalid(INVALID_REASON.STATE);
        }
        if (verdict === L4_VERDICT.DROP) {
          this.stats.invalid++;
          this.stats.drop++;
          return this.dropped(INVALID_REASON.TRACKER_DROP);
        }
        return this.invalid(reason);
      }

      r.ctinfo = ctinfo;
      r.state = stateBit(ctinfo);
      r.dir = dir;
      // curKilled is set by kill() from inside the protocol tracker's packet(): not "always false".
      // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition
      if (this.curKilled) {
        // nf_ct_kill_acct by the tracker: the packet keeps its (dead) conntrack;
        // a killed unconfirmed entry fails its confirmation like the kernel's dying one.
        this.curKilled = false;
        if (isNew) this.pending = slot;
        return r.state;
      }
      if (dir === 1 && ((this.status[slot] as number) & IPS.SEEN_REPLY) === 0) {
        this.status[slot] = (this.status[slot] as number) | IPS.SEEN_REPLY;
        this.event(slot, IPCT.REPLY);
      }
      r.slot = slot;
      r.isNew = isNew;
      if (isNew) this.pending = slot;
      else this.deliverSlot = slot;
      return r.state;
    }
  }

  private logTrackerReason(slot: number, p: PacketView, l4: L4Tracker): void {
    const reason = (l4 as { invalidReason?: unknown }).invalidReason;
    if (typeof reason === "string" && reason !== "") this.log(slot, p, reason);
  }

  /**
   * ____nf_conntrack_find: the entry matching `t` in either direction, or -1;
   * sets `lookupDir`. Expired entries met on the way are destroyed.
   */
  private lookup(t: TupleScratch): number {
    const tb = this.table;
    const chain = tb.chain;
    const rchain = tb.rchain;
    const expiry = tb.expiry;
    const fam = t.family === 6 ? FLAG_V6 : 0;
    const bucket = tb.bucketOf(t.hash);
    restart: for (;;) {
      let node = tb.heads[bucket] as number;
      while (node >= 0) {
        let s = node;
        let dir: 0 | 1 = 0;
        if (node >= REPLY_NODE) {
          s = node - REPLY_NODE;
          node = rchain[s] as number;
          if (!this.matchReply(s, t, fam)) continue;
          dir = 1;
        } else {
          node = chain[s] as number;
          if (!this.matchOrig(s, t, fam)) continue;
        }
        if (jdiff(expiry[s] as number, this.nowJ) <= 0) {
          this.destroy(s, this.now);
          continue restart;
        }
        this.lookupDir = dir;
        return s;
      }
      return -1;
    }
  }

  /**
   * Whether entry `s`'s original tuple is `t` (apart from `lookup` so that
   * both stay small enough for V8 to inline). A tuple equal to its own
   * inverse is met as REPLY first: its reply node was linked after, so in
   * front of, the original one, as in the kernel.
   */
  private matchOrig(s: number, t: TupleScratch, fam: number): boolean {
    const tb = this.table;
    return (
      tb.saddr[s] === t.s0 &&
      tb.daddr[s] === t.d0 &&
      tb.sport[s] === t.sport &&
      tb.dport[s] === t.dport &&
      tb.proto[s] === t.proto &&
      tb.zone[s] === t.zone &&
      ((tb.flags[s] as number) & FLAG_V6) === fam &&
      (fam === 0 || this.v6Match(s, t, false))
    );
  }

  /** Whether entry `s`'s reply tuple (NAT, else the inverted original) is `t`. */
  private matchReply(s: number, t: TupleScratch, fam: number): boolean {
    const tb = this.table;
    const f = tb.flags[s] as number;
    if (f & FLAG_NAT) return this.matchNatReply(s, t);
    return (
      t.invertible &&
      tb.saddr[s] === t.d0 &&
      tb.daddr[s] === t.s0 &&
      tb.sport[s] === t.rsport &&
      tb.dport[s] === t.rdport &&
      tb.proto[s] === t.proto &&
      tb.zone[s] === t.zone &&
      (f & FLAG_V6) === fam &&
      (fam === 0 || this.v6Match(s, t, true))
    );
  }

  private v6Match(s: number, t: TupleScratch, reversed: boolean): boolean {
    const v = this.table.v6 as Uint32Array;
    const o = s * 6;
    if (!reversed) {
      return v[o] === t.s1 && v[o + 1] === t.s2 && v[o + 2] === t.s3 && v[o + 3] === t.d1 && v[o + 4] === t.d2 && v[o + 5] === t.d3;
    }
    return v[o] === t.d1 && v[o + 1] === t.d2 && v[o + 2] === t.d3 && v[o + 3] === t.s1 && v[o + 4] === t.s2 && v[o + 5] === t.s3;
  }

  private matchNatReply(s: number, t: TupleScratch): boolean {
    const tb = this.table;
    const nat = tb.nat;
    if (nat === null) return false;
    const fam = t.family === 6 ? FLAG_V6 : 0;
    if (tb.proto[s] !== t.proto || tb.zone[s] !== t.zone || ((tb.flags[s] as number) & FLAG_V6) !== fam) return false;
    if (nat.saddr[s] !== t.s0 || nat.daddr[s] !== t.d0 || nat.sport[s] !== t.sport || nat.dport[s] !== t.dport) return false;
    if (fam === 0) return true;
    const v = nat.v6;
    const o = s * 6;
    return v[o] === t.s1 && v[o + 1] === t.s2 && v[o + 2] === t.s3 && v[o + 3] === t.d1 && v[o + 4] === t.d2 && v[o + 5] === t.d3;
  }

  /**
   * __nf_conntrack_alloc: count the new entry; beyond nf_conntrack_max try
   * early_drop, else flag the GC worker, log "table full" and fail.
   */
  private allocate(t: TupleScratch, p: PacketView): number {
    const tb = this.table;
    // The policy's watch mark: nf_conntrack_max for `kernel` (used + 1 > max), lower for policies that act before full.
    if (tb.used >= this.watchFrom && !this.policy.admit(this, t, p)) return -1;
    let slot = tb.alloc();
    // Every allocated slot is taken: grow (kmem_cache_alloc failing is a drop in the kernel too).
    if (slot < 0 && this.growSlots()) slot = tb.alloc();
    if (slot < 0) return -1;
    tb.setTuple(slot, t);
    if (this.evCache !== null) this.evCache[slot] = 0;
    if (this.acct !== null) this.acct.fill(0, slot * 4, slot * 4 + 4);
    if (this.tstamp !== null) {
      this.tstamp[slot * 2] = 0;
      this.tstamp[slot * 2 + 1] = 0;
    }
    if (this.mark !== null) this.mark[slot] = 0;
    if (this.policySources !== null) this.policySources.added(slot);
    if (tb.used > this.peak) this.peak = tb.used;
    return slot;
  }

  /**
   * early_drop: from the bucket of the new tuple's hash — the tuple as the
   * packet carries it, so a reply that finds no entry starts elsewhere than
   * its request did — scan NF_CT_EVICTION_RANGE consecutive buckets and
   * delete the non-ASSURED entries of the first one that has any. Buckets
   * hold original and reply nodes alike, as the kernel's do.
   */
  private earlyDrop(hash: number): boolean {
    const tb = this.table;
    const n = tb.buckets;
    let b = tb.bucketOf(hash);
    for (let i = 0; i < EVICTION_RANGE; i++) {
      const drops = this.earlyDropList(b);
      if (drops > 0) {
        this.stats.early_drop += drops;
        this.evictions[EVICT_REASON.EARLY_DROP] = (this.evictions[EVICT_REASON.EARLY_DROP] as number) + drops;
        return true;
      }
      b = b + 1 === n ? 0 : b + 1;
    }
    return false;
  }

  /** early_drop_list for one bucket: expired entries are reaped (not counted), ASSURED ones spared. */
  private earlyDropList(bucket: number): number {
    const tb = this.table;
    let drops = 0;
    restart: for (;;) {
      for (let node = tb.heads[bucket] as number; node >= 0; node = tb.nextNode(node)) {
        const s = node < REPLY_NODE ? node : node - REPLY_NODE;
        if (jdiff(tb.expiry[s] as number, this.nowJ) <= 0) {
          this.destroy(s, this.now);
          continue restart;
        }
        const st = this.status[s] as number;
        if (st & (IPS.ASSURED | IPS.DYING) || (st & IPS.CONFIRMED) === 0) continue;
        if (this.audit !== null) this.auditRecord(s);
        this.destroy(s, this.now);
        drops++;
        continue restart;
      }
      return drops;
    }
  }

  /**
   * Doubles every per-slot array (up to nf_conntrack_max): the protocol and
   * extension stores first, the table last, so that a RangeError (memory
   * exhausted) leaves no slot the table could hand out without its state.
   * Returns false when the table is at its limit or memory ran out.
   */
  private growSlots(): boolean {
    const tb = this.table;
    const n = tb.nextSize();
    if (n === 0) return false;
    try {
      this.tcp.grow(n);
      this.udp.grow(n);
      this.udplite.grow(n);
      this.sctp.grow(n);
      this.icmp.grow(n);
      this.icmpv6.grow(n);
      this.gre.grow(n);
      this.generic.grow(n);
      if (this.evCache !== null) this.evCache = grown(this.evCache, n, 0);
      if (this.acct !== null) this.acct = grown(this.acct, n * 4, 0);
      if (this.tstamp !== null) this.tstamp = grown(this.tstamp, n * 2, 0);
      if (this.mark !== null) this.mark = grown(this.mark, n, 0);
      tb.grow(n);
    } catch (e) {
      if (e instanceof RangeError) return false;
      throw e;
    }
    this.status = tb.status;
    return true;
  }

  /** Slots the per-slot arrays hold now (they grow with the entries, up to nf_conntrack_max). */
  get slotCount(): number {
    return this.table.size;
  }

  /** "nf_conntrack: table full, dropping packet" through net_ratelimit (pr_fmt adds the module prefix). */
  private logTableFull(): void {
    const rl = this.rateLimit;
    const ok = rl.allow(this.nowJ);
    const sink = this.logSink;
    if (sink === null) return;
    if (rl.suppressed > 0) sink(this.now, `net_ratelimit: ${rl.suppressed} callbacks suppressed`);
    if (ok) sink(this.now, "nf_conntrack: nf_conntrack: table full, dropping packet");
  }

  private chainTooLong(bucket: number, maxChain: number): boolean {
    const tb = this.table;
    let len = 0;
    for (let node = tb.heads[bucket] as number; node >= 0; node = tb.nextNode(node)) {
      if (len++ > maxChain) return true;
    }
    return false;
  }

  private chainFailed(slot: number): boolean {
    this.stats.chaintoolong++;
    this.stats.insert_failed++;
    this.freeUnconfirmed(slot);
    return this.confirmFailed();
  }

  private confirmFailed(): boolean {
    const r = this.result;
    r.dropped = true;
    r.slot = -1;
    r.invalidReason = INVALID_REASON.INSERT_FAILED;
    this.stats.byReason[INVALID_REASON.INSERT_FAILED] = (this.stats.byReason[INVALID_REASON.INSERT_FAILED] as number) + 1;
    return false;
  }

  private randomBelow(n: number): number {
    // xorshift32: deterministic for a given seed.
    const x = xorshift32Next(this.rng);
    this.rng = x;
    return x % n;
  }

  private freeUnconfirmed(slot: number): void {
    if (this.policySources !== null) this.policySources.removed(slot);
    if (this.helped.size !== 0 || this.masters.size !== 0) this.forgetHelper(slot);
    if (this.evCache !== null) this.evCache[slot] = 0;
    this.table.release(slot);
  }

  /** nf_ct_delete for a confirmed entry (DESTROY event, unlink, free); an unconfirmed one is only marked dying. */
  private destroy(slot: number, timeMs: number): void {
    const st = this.status[slot] as number;
    if (st & IPS.DYING) return;
    this.status[slot] = st | IPS.DYING;
    if ((st & IPS.CONFIRMED) === 0) return;
    if (this.tstamp !== null) {
      // For an expired entry the stop time is its deadline.
      const over = jdiff(this.table.expiry[slot] as number, this.nowJ);
      this.tstamp[slot * 2 + 1] = over < 0 ? timeMs + over * MS_PER_JIFFY : timeMs;
    }
    if (this.sink !== null) this.sink.onEvent(EVENT_TYPE.DESTROY, IPCT.DESTROY, this.eventEntry.at(slot), timeMs);
    if (this.helped.size !== 0 || this.masters.size !== 0) this.forgetHelper(slot);
    const tb = this.table;
    tb.unlink(slot);
    tb.dequeue(slot, this.nowJ, this.nowJx);
    if (this.evCache !== null) this.evCache[slot] = 0;
    if (slot === this.deliverSlot) this.deliverSlot = -1;
    if (this.policySources !== null) this.policySources.removed(slot);
    tb.release(slot);
  }

  /** nf_ct_deliver_cached_events. */
  private deliver(slot: number): void {
    const c = this.evCache;
    if (c === null || this.sink === null) return;
    const bits = c[slot] as number;
    if (bits === 0) return;
    c[slot] = 0;
    const type: EventType = bits & (IPCT.NEW | IPCT.RELATED) ? EVENT_TYPE.NEW : EVENT_TYPE.UPDATE;
    this.sink.onEvent(type, bits, this.eventEntry.at(slot), this.now);
  }

  private account(slot: number): void {
    const a = this.acct as Float64Array;
    const p = this.curView as PacketView;
    const o = slot * 4 + this.curDir * 2;
    a[o] = (a[o] as number) + 1;
    a[o + 1] = (a[o + 1] as number) + skbLen(p);
  }

  // ---- helpers and expectations ------------------------------------------------------

  /**
   * Attaches a helper to a new, unconfirmed entry (the CT target's template
   * in init_conntrack, or nft `ct helper set`): not to a confirmed one, one
   * that already has a helper, or one of another protocol. Returns whether
   * it was attached; an unknown name is never attached.
   */
  assignHelper(slot: number, name: string): boolean {
    const h = helperByName(name);
    if (h === undefined || this.helped.has(slot) || this.isConfirmed(slot) || this.table.proto[slot] !== h.proto) return false;
    this.helped.set(slot, { helper: h, state: h.newState() });
    this.status[slot] = (this.status[slot] as number) | IPS.HELPER;
    return true;
  }

  /** The name of the entry's helper, or "". */
  helperOf(slot: number): string {
    return this.helped.get(slot)?.helper.name ?? "";
  }

  /** The master of an expected entry, or -1. */
  masterOf(slot: number): number {
    return this.masters.get(slot) ?? -1;
  }

  /** `conntrack -L expect`. */
  formatExpectations(): string[] {
    return this.expectations.formatTable(this.now);
  }

  /** init_conntrack's expectation lookup for the new entry `slot` with original tuple `t`. */
  private initExpected(slot: number, t: TupleScratch): void {
    const src = [t.s0, t.s1, t.s2, t.s3];
    const dst = [t.d0, t.d1, t.d2, t.d3];
    const e = this.expectations.take(
      t.family,
      t.proto,
      t.zone,
      src,
      dst,
      t.sport,
      t.dport,
      (m) => this.isConfirmed(m) && ((this.status[m] as number) & IPS.DYING) === 0,
      this.now,
    );
    if (e === null) return;
    this.status[slot] = (this.status[slot] as number) | IPS.EXPECTED;
    this.masters.set(slot, e.master);
    const mark = this.markOf(e.master);
    if (mark !== 0) this.setMark(slot, mark);
    this.stats.expect_new++;
    this.result.expected = e;
  }

  /** nf_confirm's helper call for the packet of the last in(). False: the helper dropped it. */
  private runHelper(): boolean {
    const r = this.result;
    const slot = this.pending >= 0 ? this.pending : this.deliverSlot;
    if (slot < 0 || r.ctinfo === CTINFO.RELATED_REPLY) return true;
    const h = this.helped.get(slot);
    const p = this.lastView;
    if (h === undefined || p === null || p.proto !== h.helper.proto) return true;
    const ok = h.helper.help(this.helpers(), p, slot, r.ctinfo, r.dir, h.state);
    if (ok) return true;
    if (this.pending === slot) {
      this.pending = -1;
      this.freeUnconfirmed(slot);
    }
    this.deliverSlot = -1;
    r.dropped = true;
    return false;
  }

  private helpers(): HelperContext {
    if (this.helperCtx !== null) return this.helperCtx;
    const t = new TupleScratch();
    const load = (slot: number, dir: 0 | 1) => {
      this.tupleOf(slot, dir, t);
      return t;
    };
    this.helperCtx = {
      addr: (slot, dir, end) => {
        const x = load(slot, dir);
        return end === "src" ? Uint32Array.of(x.s0, x.s1, x.s2, x.s3) : Uint32Array.of(x.d0, x.d1, x.d2, x.d3);
      },
      port: (slot, dir, end) => {
        const x = load(slot, dir);
        return end === "src" ? x.sport : x.dport;
      },
      familyOf: (slot) => this.familyOf(slot),
      zoneOf: (slot) => this.zoneOf(slot),
      statusOf: (slot) => this.statusOf(slot),
      expectRelated: (e, slot) => {
        const h = this.helped.get(slot);
        if (h === undefined) return false;
        const err = this.expectations.add(
          { ...e, cls: EXPECT_CLASS_DEFAULT, helper: h.helper.name, deadlineMs: this.now + h.helper.timeoutSec * 1000 },
          h.helper.maxExpected,
          this.now,
        );
        return err === EXPECT_ERR.OK;
      },
      log: (slot, p, message) => this.log(slot, p, message),
    };
    return this.helperCtx;
  }

  /** The entry goes away: its helper state, its master link and the expectations it registered. */
  private forgetHelper(slot: number): void {
    this.helped.delete(slot);
    this.masters.delete(slot);
    if (this.expectations.count !== 0) this.expectations.removeMaster(slot, this.now);
  }

  // ---- GC worker ------------------------------------------------------------------------

  /**
   * One gc_worker run. Expired entries are already gone (the expiry lists
   * reap each at its deadline), so what remains of the worker is its
   * schedule (the running average of remaining timeouts clamped to
   * 1–300 s, taken from the expiry lists instead of a table scan; the 10 ms
   * time slicing is not modelled) and, after a "table full", the eviction of
   * non-ASSURED and closing entries while the table is at least 95 % full,
   * at most GC_SCAN_EXPIRED_MAX + 1 per run, in bucket order.
   */
  private gcRun(): void {
    const tb = this.table;
    const max95 = this.gcEarlyDrop ? Math.floor(this.capacity / 100) * 95 : 0;
    if (this.gcNextBucket === 0) this.gcCycleStartJx = this.nowJx;
    let next = -1;
    if (max95 > 0) {
      let killed = 0;
      scan: for (let i = this.gcNextBucket; i < tb.buckets; i++) {
        restart: for (;;) {
          // Every node, original and reply, as the kernel's walk meets them.
          for (let node = tb.heads[i] as number; node >= 0; node = tb.nextNode(node)) {
            const s = node < REPLY_NODE ? node : node - REPLY_NODE;
            if (killed > GC_SCAN_EXPIRED_MAX) {
              this.gcNextBucket = i;
              // Re-run at once only when the whole cycle already took a full interval.
              next = this.nowJx - this.gcCycleStartJx < GC_SCAN_INTERVAL_MAX ? 1 : 0;
              break scan;
            }
            const st = this.status[s] as number;
            if ((st & IPS.CONFIRMED) === 0 || st & IPS.DYING) continue;
            if (tb.used < max95) continue;
            if ((st & IPS.ASSURED) === 0 || this.l4(tb.proto[s] as number).canEarlyDrop(s)) {
              if (this.audit !== null) this.auditRecord(s);
              this.destroy(s, this.now);
              this.evictions[EVICT_REASON.GC] = (this.evictions[EVICT_REASON.GC] as number) + 1;
              killed++;
              continue restart;
            }
          }
          break;
        }
      }
    }
    if (next < 0) {
      this.gcNextBucket = 0;
      // The kernel's running average counts nodes: two per entry.
      const avg = tb.averageRemaining(this.nowJx, GC_SCAN_INTERVAL_MAX, GC_SCAN_INITIAL_COUNT, GC_SCAN_INTERVAL_CLAMP, 2);
      next = Math.min(Math.max(Math.floor(avg), GC_SCAN_INTERVAL_MIN), GC_SCAN_INTERVAL_MAX);
      const delta = Math.max(this.nowJx - this.gcCycleStartJx, 1);
      next = next > delta ? next - delta : 1;
    }
    if (next !== 0) this.gcEarlyDrop = false;
    this.gcNextJx = this.nowJx + next;
    this.policy.gc(this);
  }

  // ---- table policy (PolicyHost) --------------------------------------------------------

  /** Current u32 jiffies. */
  get jiffies(): number {
    return this.nowJ;
  }

  canEarlyDrop(slot: number): boolean {
    return this.l4(this.table.proto[slot] as number).canEarlyDrop(slot);
  }

  evict(slot: number, reason: EvictReason): void {
    if (this.audit !== null) this.auditRecord(slot);
    this.evictions[reason] = (this.evictions[reason] as number) + 1;
    this.destroy(slot, this.now);
  }

  kernelEarlyDrop(hash: number): boolean {
    return this.earlyDrop(hash);
  }

  kernelTableFull(): void {
    this.gcEarlyDrop = true;
    this.refusals[REFUSE_REASON.TABLE_FULL] = (this.refusals[REFUSE_REASON.TABLE_FULL] as number) + 1;
    this.logTableFull();
  }

  refuse(reason: RefuseReason): void {
    this.refusals[reason] = (this.refusals[reason] as number) + 1;
  }

  setLevel(level: number, name: string): void {
    this.levelChanges++;
    if (this.policy.wantsTicks) {
      if (level === 0) this.policyNextJx = Infinity;
      else if (this.policyNextJx === Infinity) {
        this.policyNextJx = this.nowJx + HZ;
        const wake = this.policyNextJx * MS_PER_JIFFY;
        if (wake < this.wakeMs) this.wakeMs = wake;
      }
    }
    const sink = this.onPolicyEvent;
    if (sink !== null) sink({ timeMs: this.now, policy: this.policy.name, level, levelName: name, previous: this.policy.levelName, entries: this.table.used });
  }

  setWatch(entries: number): void {
    this.watchFrom = entries;
  }

  private policyTick(): void {
    this.policyNextJx = this.nowJx + HZ;
    this.policy.tick(this);
    if (this.policy.level === 0) this.policyNextJx = Infinity;
  }

  /** The policy's counters. */
  policyReport(): PolicyReport {
    const ev: Record<string, number> = {};
    EVICT_REASON_NAMES.forEach((n, i) => (ev[n] = this.evictions[i] as number));
    const rf: Record<string, number> = {};
    REFUSE_REASON_NAMES.forEach((n, i) => (rf[n] = this.refusals[i] as number));
    return {
      name: this.policy.name,
      options: { ...this.policy.options },
      levelName: this.policy.levelName,
      evictions: ev,
      refusals: rf,
      levelChanges: this.levelChanges,
      liveEvictions: this.audit === null ? null : this.audit.live,
    };
  }

  /** Records an entry about to be evicted in the live-eviction audit. */
  private auditRecord(slot: number): void {
    const tb = this.table;
    const s = this.scratch;
    tb.loadTuple(slot, s);
    const h1 = s.hash;
    const c1 = tupleCheck(s);
    tb.loadReply(slot, s);
    const closing = tb.proto[slot] === IPPROTO.TCP && this.tcp.canEarlyDrop(slot);
    (this.audit as EvictionAudit).record(h1, c1, s.hash, tupleCheck(s), tb.expiry[slot] as number, this.nowJ, closing);
  }

  /** A packet found no entry: was its connection's entry evicted while alive? */
  private auditMiss(t: TupleScratch, p: PacketView): void {
    const s = this.scratch;
    s.setWords(t.family, t.proto, t.zone, t.s0, t.s1, t.s2, t.s3, t.d0, t.d1, t.d2, t.d3, t.sport, t.dport);
    s.invert();
    const oh = s.computeHash(this.seed);
    const syn = p.proto === IPPROTO.TCP && (p.tcpFlags & (TCP_FLAG.SYN | TCP_FLAG.ACK)) === TCP_FLAG.SYN;
    (this.audit as EvictionAudit).check(t.hash, tupleCheck(t), oh, tupleCheck(s), this.nowJ, syn);
  }

  // ---- NAT hook -----------------------------------------------------------------------------

  /**
   * nf_conntrack_alter_reply: give the unconfirmed entry of the last `in()` a
   * reply tuple other than its inverted original (NAT). Addresses are four
   * words each (IPv4 in word 0); for ICMP `sport` is the id and `dport`
   * type << 8 | code.
   * @throws Error when the entry is not an unconfirmed one of the last packet
   */
  alterReply(slot: number, src: ArrayLike<number>, dst: ArrayLike<number>, sport: number, dport: number): void {
    if (slot !== this.pending) throw new Error(`Cannot alter the reply tuple of entry ${slot}: only the unconfirmed entry of the last packet can change`);
    const tb = this.table;
    const s = this.scratch;
    s.set((tb.flags[slot] as number) & FLAG_V6 ? 6 : 4, tb.proto[slot] as number, tb.zone[slot] as number, src, dst, sport, dport);
    tb.setNatReply(slot, s);
  }

  /**
   * nf_conntrack_tuple_taken, for NAT's search of a free tuple: whether a
   * confirmed entry has `t` as its original or reply tuple. An entry with the
   * same original tuple as the unconfirmed one of the last packet does not
   * count (the kernel leaves that case to clash resolution). A hit counts
   * `found`. Expired entries met on the way are destroyed, as the kernel's
   * walk does. The hash of `t` is computed here.
   */
  tupleTaken(t: TupleScratch): boolean {
    const s = this.findTuple(t);
    if (s < 0) return false;
    const p = this.pending;
    if (p >= 0) {
      const o = this.scratch;
      this.table.loadTuple(p, o);
      const tb = this.table;
      if (
        tb.proto[s] === o.proto &&
        tb.zone[s] === o.zone &&
        tb.saddr[s] === o.s0 &&
        tb.daddr[s] === o.d0 &&
        tb.sport[s] === o.sport &&
        tb.dport[s] === o.dport &&
        ((tb.flags[s] as number) & FLAG_V6) === ((tb.flags[p] as number) & FLAG_V6) &&
        (((tb.flags[s] as number) & FLAG_V6) === 0 || this.v6Match(s, o, false))
      ) {
        return false;
      }
    }
    this.stats.found++;
    return true;
  }

  /**
   * nf_conntrack_find_get: the confirmed entry having `t` as its original or
   * reply tuple, or -1; `foundDir` tells which. The hash of `t` is computed here.
   */
  findTuple(t: TupleScratch): number {
    t.computeHash(this.seed);
    return this.lookup(t);
  }

  /** Whether log lines go anywhere. */
  get logging(): boolean {
    return this.logSink !== null;
  }

  /** The packet of the last `in()` belongs to `slot`: confirm() delivers its cached events. */
  attachPacket(slot: number): void {
    this.deliverSlot = slot;
  }

  /** Direction in which the last `findTuple`/`tupleTaken` hit matched. */
  get foundDir(): 0 | 1 {
    return this.lookupDir;
  }

  /** The unconfirmed entry of the last packet, or -1. */
  get unconfirmed(): number {
    return this.pending;
  }

  // ---- events, marks ---------------------------------------------------------------------

  /** Sets the ct mark of an entry (IPCT_MARK event when it changes, as nft `ct mark set`). */
  setMark(slot: number, value: number): void {
    const v = value >>> 0;
    let m = this.mark;
    if (m === null) {
      if (v === 0) return;
      m = this.mark = new Uint32Array(this.table.size);
    }
    if (m[slot] === v) return;
    m[slot] = v;
    this.event(slot, IPCT.MARK);
  }

  // ---- iteration and accessors -----------------------------------------------------------

  /**
   * Calls `cb` for every confirmed, unexpired entry, in hash-bucket order
   * (the order of /proc/net/nf_conntrack). The callback must not change the table.
   */
  forEach(cb: (slot: number) => void): void {
    this.syncClock();
    const tb = this.table;
    for (let b = 0; b < tb.buckets; b++) {
      for (let node = tb.heads[b] as number; node >= 0; node = tb.nextNode(node)) {
        if (node >= REPLY_NODE) continue;
        if (jdiff(tb.expiry[node] as number, this.nowJ) <= 0) continue;
        cb(node);
      }
    }
  }

  /** `forEach`'s walk as a generator (without the clock sync), for `Tracker.entries()`. */
  *liveIds(): Generator<number, void> {
    const tb = this.table;
    for (let b = 0; b < tb.buckets; b++) {
      for (let node = tb.heads[b] as number; node >= 0; node = tb.nextNode(node)) {
        if (node >= REPLY_NODE) continue;
        if (jdiff(tb.expiry[node] as number, this.nowJ) <= 0) continue;
        yield node;
      }
    }
  }

  /** With an injected clock, brings the table to its time first (as a dump at that moment would). */
  syncClock(): void {
    if (this.clock !== null) this.advance(this.clock.now());
  }

  /** Slots of the live entries, in `forEach` order (allocates: for reports and tests). */
  slots(): number[] {
    const out: number[] = [];
    this.forEach((s) => out.push(s));
    return out;
  }

  /** IP version of an entry. */
  familyOf(slot: number): 4 | 6 {
    return (this.table.flags[slot] as number) & FLAG_V6 ? 6 : 4;
  }

  /** IP protocol number of an entry. */
  protoOf(slot: number): number {
    return this.table.proto[slot] as number;
  }

  /** Zone of an entry. */
  zoneOf(slot: number): number {
    return this.table.zone[slot] as number;
  }

  /** Status bits (`IPS.*`). */
  statusOf(slot: number): number {
    return this.status[slot] as number;
  }

  /** ct mark. */
  markOf(slot: number): number {
    return this.mark === null ? 0 : (this.mark[slot] as number);
  }

  /** Protocol state name ("ESTABLISHED" for TCP and SCTP), "" for protocols without states. */
  stateNameOf(slot: number): string {
    return this.l4(this.protoOf(slot)).stateText(slot).trimEnd();
  }

  /** Remaining timeout as `conntrack -L` shows it: nf_ct_expires / HZ, truncated. */
  timeoutSecondsOf(slot: number): number {
    if (!this.isConfirmed(slot)) return Math.floor((this.table.expiry[slot] as number) / HZ);
    const d = jdiff(this.table.expiry[slot] as number, this.nowJ);
    return d > 0 ? Math.floor(d / HZ) : 0;
  }

  /** Packet and byte counters of a direction, or null when nf_conntrack_acct is off. */
  countersOf(slot: number, dir: 0 | 1): { packets: number; bytes: number } | null {
    if (this.acct === null) return null;
    const o = slot * 4 + dir * 2;
    return { packets: this.acct[o] as number, bytes: this.acct[o + 1] as number };
  }

  /** Start and stop times in ms (stop 0 while alive), or null when nf_conntrack_timestamp is off. */
  timestampsOf(slot: number): { start: number; stop: number } | null {
    if (this.tstamp === null) return null;
    return { start: this.tstamp[slot * 2] as number, stop: this.tstamp[slot * 2 + 1] as number };
  }

  /** Loads the tuple of direction `dir` of an entry into `out`. */
  tupleOf(slot: number, dir: 0 | 1, out: TupleScratch): void {
    const tb = this.table;
    if (dir === 1 && (tb.flags[slot] as number) & FLAG_NAT) {
      tb.loadNatReply(slot, out);
      return;
    }
    tb.loadTuple(slot, out);
    if (dir === 1) out.invert();
  }

  /**
   * The raw lookup for invariant tests: the entry matching `t` (hash already
   * computed) in either direction, or -1; `foundDir` tells which.
   */
  rawLookup(t: TupleScratch): number {
    return this.lookup(t);
  }

  /** Whether `id` is a live entry: confirmed, not dying, not expired. */
  isLive(id: number): boolean {
    if (!Number.isInteger(id) || id < 0 || id >= this.table.size) return false;
    const st = this.status[id] as number;
    if ((st & IPS.CONFIRMED) === 0 || st & IPS.DYING) return false;
    return jdiff(this.table.expiry[id] as number, this.nowJ) > 0;
  }
}

/** An EntryReader over the engine's arrays, moved from entry to entry (nothing is copied). */
class SlotReader implements EntryReader {
  id = -1;
  private readonly e: TrackerEngine;
  private readonly orig = new TupleScratch();
  private readonly reply = new TupleScratch();

  constructor(engine: TrackerEngine) {
    this.e = engine;
  }

  /** Positions the reader on entry `id`. */
  at(id: number): this {
    this.id = id;
    return this;
  }

  get family(): 4 | 6 {
    return this.e.familyOf(this.id);
  }

  get l3proto(): 2 | 10 {
    return this.e.familyOf(this.id) === 6 ? 10 : 2;
  }

  get proto(): number {
    return this.e.protoOf(this.id);
  }

  get stateName(): string {
    return this.e.stateNameOf(this.id);
  }

  get status(): number {
    return this.e.statusOf(this.id);
  }

  get timeoutSeconds(): number {
    return this.e.timeoutSecondsOf(this.id);
  }

  get remainingMs(): number {
    return this.e.remaining(this.id);
  }

  get zone(): number {
    return this.e.zoneOf(this.id);
  }

  get mark(): number {
    return this.e.markOf(this.id);
  }

  get helper(): string {
    return this.e.helperOf(this.id);
  }

  tuple(dir: 0 | 1): TupleReader {
    const t = dir === 0 ? this.orig : this.reply;
    this.e.tupleOf(this.id, dir, t);
    return t;
  }

  counters(dir: 0 | 1): EntryCounters | null {
    return this.e.countersOf(this.id, dir);
  }

  timestamps(): EntryTimestamps | null {
    return this.e.timestampsOf(this.id);
  }
}

let engineOf: (tr: Tracker) => TrackerEngine;

/**
 * A userspace nf_conntrack. One instance is one network namespace's table.
 *
 * Per packet call `in(view, hook)` (PRE_ROUTING or LOCAL_OUT), then exactly
 * one of `confirm()` (the packet reached LOCAL_IN/POST_ROUTING) or
 * `dropUnconfirmed()` (a rule dropped it), or `process(view)` for both; the
 * details of the decision are in `result`. Entries are read through
 * `EntryReader` views: `entries()`, `forEachEntry()`, `entry(id)`, and the
 * reader an EventSink receives.
 */
export class Tracker {
  readonly #e: TrackerEngine;

  static {
    engineOf = (tr) => tr.#e;
  }

  /**
   * @throws SysctlError when a sysctl name or value is refused
   */
  constructor(options: TrackerOptions = {}) {
    this.#e = new TrackerEngine(options);
  }

  /** Resolved sysctls (timeouts in ms, nf_conntrack_buckets rounded as the kernel rounds it). */
  get sysctl(): SysctlValues {
    return this.#e.sysctl;
  }

  /** `conntrack -S` counters. */
  get stats(): Readonly<ConntrackStats> {
    return this.#e.stats;
  }

  /** Details of the last `in()`: one record, reused for every packet. */
  get result(): Readonly<CtResult> {
    return this.#e.result;
  }

  /** Table size (nf_conntrack_max). */
  get capacity(): number {
    return this.#e.capacity;
  }

  /** Entries in the table, including one created by the last packet and not yet confirmed (nf_conntrack_count). */
  get count(): number {
    return this.#e.count;
  }

  /** Highest `count` seen. */
  get peak(): number {
    return this.#e.peak;
  }

  /** The tracker's time in milliseconds (it only moves forward). */
  get now(): number {
    return this.#e.now;
  }

  /** Exact bytes of every typed array held: table, index, side stores, protocol state, extensions. */
  get memoryBytes(): number {
    return this.#e.memoryBytes;
  }

  /** Slots the per-entry arrays hold now: they grow with the entries, up to nf_conntrack_max. */
  get slotCount(): number {
    return this.#e.slotCount;
  }

  /** The table policy and its counters: evictions and refusals by reason, level, live evictions (a fresh copy). */
  get policy(): PolicyReport {
    return this.#e.policyReport();
  }

  /**
   * Moves time forward to `nowMs` (never backwards: jiffies are monotonic)
   * and expires every entry whose deadline has passed, earliest first, each
   * with a DESTROY event at its deadline; runs the GC worker at its
   * scheduled times on the way. NaN does nothing.
   */
  advance(nowMs: number): void {
    this.#e.advance(nowMs);
  }

  /**
   * nf_conntrack_in for one packet at a hook (PRE_ROUTING or LOCAL_OUT; the
   * checksum is verified only at PRE_ROUTING). `zone` is the conntrack zone
   * (CT target / `ct zone set`), `notrack` a raw-table NOTRACK.
   * @returns the packet's CT_STATE bit, 0 for a packet that is not IP, or
   *   CT_DROPPED; `ctStateName()` names it, details are in `result`
   */
  in(p: PacketView, hook: number = HOOK.PRE_ROUTING, zone = 0, notrack = false): CtStateValue {
    return this.#e.in(p, hook, zone, notrack);
  }

  /**
   * __nf_conntrack_confirm for the packet of the last `in()`: inserts a new
   * entry in the table (NEW event), or delivers the events the packet caused
   * on an existing one. Returns false when the packet is dropped (chain too
   * long, entry killed before confirmation).
   */
  confirm(): boolean {
    return this.#e.confirm();
  }

  /**
   * The packet of the last `in()` was dropped before confirmation: an entry it
   * created is freed without a trace (no event), as nf_conntrack_free does.
   */
  dropUnconfirmed(): void {
    this.#e.dropUnconfirmed();
  }

  /** `in()` then `confirm()`: the plain replay path. Returns the CT_STATE bit, 0 (not IP) or CT_DROPPED. */
  process(p: PacketView, hook: number = HOOK.PRE_ROUTING, zone = 0): CtStateValue {
    return this.#e.process(p, hook, zone);
  }

  /**
   * Sets the ct mark of entry `id` (an IPCT_MARK event when it changes, as
   * nft `ct mark set`).
   * @throws RangeError when `id` is not a live entry or the unconfirmed one of the last packet
   */
  setMark(id: number, value: number): void {
    const e = this.#e;
    if (!e.isLive(id) && !(id >= 0 && id === e.unconfirmed)) throw new RangeError(`Cannot set the mark of entry ${id}: no such entry`);
    e.setMark(id, value);
  }

  /**
   * The live entries (confirmed, not expired) in hash-bucket order, the
   * order of /proc/net/nf_conntrack. One reader is reused for the whole
   * walk: read each entry before stepping on, do not keep the reader, and do
   * not feed packets or advance time during the walk. With an injected
   * clock the table is brought to the clock's time first.
   */
  *entries(): IterableIterator<EntryReader> {
    const e = this.#e;
    e.syncClock();
    const r = new SlotReader(e);
    for (const id of e.liveIds()) yield r.at(id);
  }

  /** `entries()` as a callback walk (same order, same reused reader, same rules). */
  forEachEntry(cb: (entry: EntryReader) => void): void {
    const e = this.#e;
    const r = new SlotReader(e);
    e.forEach((id) => cb(r.at(id)));
  }

  /**
   * A reader of its own for entry `id` (e.g. `result.slot` of the last
   * packet, also while it awaits `confirm()`), or null when no live entry has
   * that id. Allocates one reader.
   */
  entry(id: number): EntryReader | null {
    const e = this.#e;
    if (!e.isLive(id) && !(id >= 0 && id === e.unconfirmed)) return null;
    return new SlotReader(e).at(id);
  }

  /**
   * One `conntrack -L` line of entry `id` (`-o extended` with `extended`).
   * @throws RangeError when `id` is not a live entry
   */
  formatEntry(id: number, options: { extended?: boolean } = {}): string {
    const r = this.entry(id);
    if (r === null) throw new RangeError(`Cannot format entry ${id}: no such entry`);
    return fmt.listLine(r, options.extended === true, this.#e.now);
  }

  /** The whole table as `conntrack -L` prints it, one line per entry, in `entries()` order. */
  formatTable(options: { extended?: boolean } = {}): string[] {
    const out: string[] = [];
    const ext = options.extended === true;
    this.forEachEntry((r) => out.push(fmt.listLine(r, ext, this.#e.now)));
    return out;
  }

  /** The expectation table as `conntrack -L expect` prints it (FTP/TFTP helpers). */
  formatExpectations(): string[] {
    return this.#e.formatExpectations();
  }

  /** The table as /proc/net/nf_conntrack prints it. */
  formatProc(): string[] {
    const out: string[] = [];
    const e = this.#e;
    this.forEachEntry((r) => out.push(fmt.procLine(r, e.sysctl, e.now)));
    return out;
  }

  /** `conntrack -S` output (one CPU). */
  formatStats(): string[] {
    return fmt.statsLines(this.#e.stats);
  }

  /** /proc/net/stat/nf_conntrack (one CPU). */
  formatProcStat(): string[] {
    return fmt.procStatLines(this.#e.stats, this.#e.count);
  }
}

/**
 * The engine behind a Tracker, for ctlab's own modules (NAT, the firewall
 * packet path), benches and invariant tests. Not exported from the package
 * entry point: users hold a Tracker.
 */
export function trackerEngine(tr: Tracker): TrackerEngine {
  return engineOf(tr);
}

/** skb->len at the conntrack hook: the whole IP datagram per its header. */
function skbLen(p: PacketView): number {
  if (p.l4Len > 0 || p.l4Off > p.l3Off) return p.l4Off - p.l3Off + p.l4Len;
  return p.l3Len;
}
