/**
 * A small stand-in for the conntrack table core, for driving L4 trackers in
 * tests. It follows nf_conntrack_in's order for one connection (one 4-tuple):
 * `valid()` (tcp_error) → lookup, or `init()` for a new unconfirmed entry →
 * `packet()` → on REPEAT kill and look up again → SEEN_REPLY (event REPLY)
 * after the first accepted reply → confirm (NEW carries the cached events)
 * or deliver cached events as one UPDATE.
 */
import type { CtContext, L4Tracker } from "../../src/conntrack/l4.js";
import { CTINFO, CT_STATE, IPCT, IPS, L4_VERDICT } from "../../src/conntrack/constants.js";
import { PacketView, TCP_FLAG } from "../../src/packet/view.js";
import { resolveSysctls } from "../../src/conntrack/sysctl.js";
import type { SysctlValues } from "../../src/conntrack/sysctl.js";

/** The CtContext half: per-slot status, expiry, events and a log, with counters for assertions. */
export class FakeCtx implements CtContext {
  readonly status: Uint16Array;
  now = 0;
  /** The kernel defaults (timeouts in ms) with the test's overrides. */
  sysctl: SysctlValues;
  readonly confirmed: Uint8Array;
  /** Absolute expiry (ms) for confirmed entries, relative timeout for unconfirmed ones. */
  readonly expires: Float64Array;
  /** Event bits cached for the packet being processed, per slot. */
  readonly cached: Uint16Array;
  readonly logs: string[] = [];
  killed: number[] = [];
  refreshes = 0;
  lastRefresh = -1;
  setTimeouts = 0;

  constructor(capacity: number, sysctl: Partial<SysctlValues> = {}) {
    this.status = new Uint16Array(capacity);
    this.confirmed = new Uint8Array(capacity);
    this.expires = new Float64Array(capacity);
    this.cached = new Uint16Array(capacity);
    this.sysctl = { ...resolveSysctls(), ...sysctl };
  }

  isConfirmed(slot: number): boolean {
    return this.confirmed[slot] === 1;
  }

  refresh(slot: number, timeoutMs: number): void {
    this.refreshes++;
    this.lastRefresh = timeoutMs;
    if (this.status[slot]! & IPS.FIXED_TIMEOUT) return;
    this.expires[slot] = this.confirmed[slot] === 1 ? this.now + timeoutMs : timeoutMs;
  }

  remaining(slot: number): number {
    return this.confirmed[slot] === 1 ? this.expires[slot]! - this.now : this.expires[slot]!;
  }

  setTimeout(slot: number, timeoutMs: number): void {
    this.setTimeouts++;
    this.expires[slot] = this.now + timeoutMs;
  }

  event(slot: number, bits: number): void {
    this.cached[slot] = this.cached[slot]! | bits;
  }

  kill(slot: number): void {
    this.killed.push(slot);
  }

  log(_slot: number, _p: PacketView, message: string): void {
    this.logs.push(message);
  }
}

/** One of the two hosts of a connection; the ORIGINAL direction is whichever sent the entry's first packet. */
export type Host = 0 | 1;

/** What the fake core reports for one packet. */
export interface SendResult {
  /** Tracker verdict after any REPEAT. */
  verdict: number;
  /** The `ct state` a ruleset would see (CT_STATE bits). */
  ctState: number;
  /** Direction within the entry (meaningless when INVALID without entry). */
  dir: 0 | 1;
}

/**
 * The table-core half: one connection, one slot (reused after a kill, as the
 * real table reuses freed slots, so stale state would show).
 */
export class FakeConntrack {
  readonly ctx: FakeCtx;
  readonly tracker: L4Tracker;
  readonly slot: number;
  exists = false;
  origHost: Host = 0;
  invalid = 0;
  /** `conntrack -E` style lines without the tuple: "[NEW] 120 SYN_SENT [UNREPLIED]". */
  readonly events: string[] = [];
  private readonly stateName: (slot: number) => string;

  constructor(makeTracker: (capacity: number) => L4Tracker, opts: { sysctl?: Partial<SysctlValues>; slot?: number; capacity?: number } = {}) {
    const capacity = opts.capacity ?? 4;
    this.slot = opts.slot ?? 1;
    this.ctx = new FakeCtx(capacity, opts.sysctl ?? {});
    this.tracker = makeTracker(capacity);
    this.stateName = (s) => this.tracker.stateText(s).trimEnd();
  }

  /** Advance the clock; an entry that expires is destroyed (as a lookup or the GC would). */
  advance(ms: number): void {
    this.ctx.now += ms;
    this.expireIfDue();
  }

  /** Seconds left, truncated as `conntrack -L` prints them. */
  timeoutSeconds(): number {
    return Math.max(0, Math.floor(this.ctx.remaining(this.slot) / 1000));
  }

  state(): string {
    return this.exists ? this.stateName(this.slot) : "";
  }

  get status(): number {
    return this.ctx.status[this.slot]!;
  }

  private expireIfDue(): void {
    if (this.exists && this.ctx.remaining(this.slot) <= 0) {
      this.events.push(`[DESTROY] ${this.flagsText(this.stateName(this.slot))}`);
      this.exists = false;
    }
  }

  private flagsText(prefix: string): string {
    const st = this.ctx.status[this.slot]!;
    let s = prefix;
    if (!(st & IPS.SEEN_REPLY)) s += " [UNREPLIED]";
    if (st & IPS.ASSURED) s += " [ASSURED]";
    return s;
  }

  private destroyLine(): string {
    const t = this.timeoutSeconds();
    return `[DESTROY] ${this.flagsText(`${t > 0 ? `${t} ` : ""}${this.stateName(this.slot)}`)}`;
  }

  /** nf_conntrack_in + confirm for a packet sent by `from`. */
  send(from: Host, p: PacketView): SendResult {
    const ctx = this.ctx;
    const slot = this.slot;
    if (!this.tracker.valid(p, true)) {
      this.invalid++;
      return { verdict: L4_VERDICT.INVALID, ctState: CT_STATE.INVALID, dir: 0 };
    }
    this.expireIfDue();
    for (;;) {
      let created = false;
      let dir: 0 | 1;
      let ctinfo: number;
      if (!this.exists) {
        ctx.status[slot] = 0;
        ctx.confirmed[slot] = 0;
        ctx.expires[slot] = 0;
        ctx.cached[slot] = 0;
        if (!this.tracker.init(ctx, slot, p)) {
          this.invalid++;
          return { verdict: L4_VERDICT.INVALID, ctState: CT_STATE.INVALID, dir: 0 };
        }
        created = true;
        this.exists = true;
        this.origHost = from;
        dir = 0;
        ctinfo = CTINFO.NEW;
      } else {
        dir = from === this.origHost ? 0 : 1;
        const st = ctx.status[slot]!;
        ctinfo = dir === 1 ? CTINFO.ESTABLISHED_REPLY : st & IPS.SEEN_REPLY ? CTINFO.ESTABLISHED : CTINFO.NEW;
      }
      const killsBefore = ctx.killed.length;
      const verdict = this.tracker.packet(ctx, slot, p, dir, ctinfo);
      if (verdict === L4_VERDICT.REPEAT) {
        // nf_ct_kill then look up again: this packet creates a fresh entry.
        this.events.push(this.destroyLine());
        this.exists = false;
        continue;
      }
      if (verdict <= 0) {
        this.invalid++;
        if (created) this.exists = false; // unconfirmed entry freed, never seen
        ctx.cached[slot] = 0;
        return { verdict, ctState: CT_STATE.INVALID, dir };
      }
      const ctState = ctinfo === CTINFO.NEW ? CT_STATE.NEW : CT_STATE.ESTABLISHED;
      if (ctx.killed.length !== killsBefore) {
        // nf_ct_kill_acct inside the tracker: DESTROY now; the cached events of a dying entry are never delivered.
        if (created) {
          this.exists = false;
        } else {
          this.events.push(this.destroyLine());
          this.exists = false;
        }
        ctx.cached[slot] = 0;
        return { verdict, ctState, dir };
      }
      if (ctinfo === CTINFO.ESTABLISHED_REPLY && !(ctx.status[slot]! & IPS.SEEN_REPLY)) {
        ctx.status[slot] = ctx.status[slot]! | IPS.SEEN_REPLY;
        ctx.event(slot, IPCT.REPLY);
      }
      if (created) {
        // __nf_conntrack_confirm: the relative timeout becomes absolute.
        ctx.confirmed[slot] = 1;
        ctx.status[slot] = ctx.status[slot]! | IPS.CONFIRMED;
        ctx.expires[slot] = ctx.now + ctx.expires[slot]!;
        this.events.push(`[NEW] ${this.flagsText(`${this.timeoutSeconds()} ${this.stateName(slot)}`)}`);
      } else if (ctx.cached[slot] !== 0) {
        this.events.push(`[UPDATE] ${this.flagsText(`${this.timeoutSeconds()} ${this.stateName(slot)}`)}`);
      }
      ctx.cached[slot] = 0;
      return { verdict, ctState, dir };
    }
  }
}

/** Fields for {@link tcp}. Lengths in bytes; `opts` adds 4 bytes of other options (MSS) to the header. */
export interface TcpSpec {
  flags: string;
  seq?: number;
  ack?: number;
  win?: number;
  len?: number;
  wscale?: number;
  sackPerm?: boolean;
  sack?: readonly number[];
  mss?: boolean;
  ts?: boolean;
  /** Override the header length (bytes). */
  hdrLen?: number;
}

const FLAG_LETTERS: Readonly<Record<string, number>> = {
  F: TCP_FLAG.FIN,
  S: TCP_FLAG.SYN,
  R: TCP_FLAG.RST,
  P: TCP_FLAG.PSH,
  ".": TCP_FLAG.ACK,
  A: TCP_FLAG.ACK,
  U: TCP_FLAG.URG,
  E: TCP_FLAG.ECE,
  W: TCP_FLAG.CWR,
};

/** Parse tcpdump/packetdrill flag letters ("S", "S.", "P.", "F.", "R.", "R", ".") into the flag byte. */
export function flagByte(letters: string): number {
  let f = 0;
  for (const c of letters) {
    const v = FLAG_LETTERS[c];
    if (v === undefined) throw new Error(`unknown flag letter ${c}`);
    f |= v;
  }
  return f;
}

/** Fill a PacketView as the decoders would for an IPv4 TCP segment. */
export function tcp(spec: TcpSpec, view: PacketView = new PacketView()): PacketView {
  const p = view;
  p.resetDecoded();
  p.family = 4;
  p.proto = 6;
  p.l4Ok = true;
  p.sport = 40000;
  p.dport = 8080;
  p.tcpFlags = flagByte(spec.flags);
  p.seq = (spec.seq ?? 0) >>> 0;
  p.ack = (spec.ack ?? 0) >>> 0;
  p.window = spec.win ?? 65535;
  p.payloadLen = spec.len ?? 0;
  let opt = 0;
  if (spec.mss) {
    p.optMss = 1460;
    opt += 4;
  }
  if (spec.wscale !== undefined) {
    p.optWscale = spec.wscale;
    opt += 4;
  }
  if (spec.sackPerm) {
    p.optSackPerm = true;
    opt += 4;
  }
  if (spec.ts) opt += 12;
  if (spec.sack !== undefined && spec.sack.length > 0) {
    p.sackCount = spec.sack.length;
    spec.sack.forEach((r, i) => {
      p.sackRight[i] = r >>> 0;
    });
    opt += 4 + 8 * spec.sack.length;
  }
  p.tcpHdrLen = spec.hdrLen ?? 20 + opt;
  p.l4Len = p.tcpHdrLen + p.payloadLen;
  p.l4CapLen = p.l4Len;
  p.l3HdrLen = 20;
  p.l3Len = 20 + p.l4Len;
  return p;
}
