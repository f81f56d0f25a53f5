/**
 * TCP connection tracking: a line-by-line re-implementation of Linux 6.18
 * `net/netfilter/nf_conntrack_proto_tcp.c` (tcp_error, tcp_new,
 * nf_conntrack_tcp_packet, tcp_in_window, nf_tcp_handle_invalid).
 *
 * Per-entry state is the kernel's `struct ip_ct_tcp`, kept as
 * struct-of-arrays typed arrays indexed by slot (56 bytes per entry):
 *
 * - `u32[slot*11 + dir*4 + k]`: td_end, td_maxend, td_maxwin, td_maxack of `seen[dir]`
 * - `u32[slot*11 + 8..10]`: last_seq, last_ack, last_end
 * - `u8[slot*10 + …]`: td_scale[2], flags[2], state, last_dir, retrans,
 *   last_index, last_wscale, last_flags (u8 like the kernel, so `retrans` wraps at 256)
 * - `u16[slot]`: last_win
 *
 * Sequence arithmetic is modulo 2^32: values are stored through Uint32Array
 * (which wraps) and compared with `before`/`after` on the signed 32-bit
 * difference, as the kernel's `before()`/`after()` do.
 */
import type { PacketView } from "../packet/view.js";
import type { CtContext, L4Tracker } from "./l4.js";
import type { SysctlValues } from "./sysctl.js";
import { IPCT, IPS, L4_VERDICT } from "./constants.js";

/** `enum tcp_conntrack` (include/uapi/linux/netfilter/nf_conntrack_tcp.h). */
export const TCP_STATE = {
  NONE: 0,
  SYN_SENT: 1,
  SYN_RECV: 2,
  ESTABLISHED: 3,
  FIN_WAIT: 4,
  CLOSE_WAIT: 5,
  LAST_ACK: 6,
  TIME_WAIT: 7,
  CLOSE: 8,
  /** Formerly LISTEN; SYN seen from the reply direction (simultaneous open). */
  SYN_SENT2: 9,
  /** sIV in the transition table: the packet is invalid. Never stored. */
  MAX: 10,
  /** sIG in the transition table: the packet is ignored. Never stored. */
  IGNORE: 11,
  /** Timeout slot only (nf_conntrack_tcp_timeout_max_retrans). */
  RETRANS: 12,
  /** Timeout slot only (nf_conntrack_tcp_timeout_unacknowledged). */
  UNACK: 13,
} as const;

/** Names printed by `conntrack -L` and /proc/net/nf_conntrack (tcp_conntrack_names[]). */
export const TCP_STATE_NAMES: readonly string[] = [
  "NONE",
  "SYN_SENT",
  "SYN_RECV",
  "ESTABLISHED",
  "FIN_WAIT",
  "CLOSE_WAIT",
  "LAST_ACK",
  "TIME_WAIT",
  "CLOSE",
  "SYN_SENT2",
];

/** The name `conntrack` prints for a stored state; "" for values that are never stored. */
export function tcpStateName(n: number): string {
  return TCP_STATE_NAMES[n] ?? "";
}

/** Packet classes of `get_conntrack_index` (enum tcp_bit_set); rows of the transition table. */
export const TCP_INDEX = {
  SYN: 0,
  SYNACK: 1,
  FIN: 2,
  ACK: 3,
  RST: 4,
  NONE: 5,
} as const;

/**
 * Per-direction flags `ip_ct_tcp_state.flags` (IP_CT_TCP_FLAG_*), and the two
 * bits kept only in `last_flags` (IP_CT_EXP_CHALLENGE_ACK, IP_CT_TCP_SIMULTANEOUS_OPEN).
 */
export const TCP_CT_FLAG = {
  WINDOW_SCALE: 0x01,
  SACK_PERM: 0x02,
  CLOSE_INIT: 0x04,
  BE_LIBERAL: 0x08,
  DATA_UNACKNOWLEDGED: 0x10,
  MAXACK_SET: 0x20,
  EXP_CHALLENGE_ACK: 0x40,
  SIMULTANEOUS_OPEN: 0x80,
} as const;

// ---- constants private to the hot path ---------------------------------------

const FIN = 0x01;
const SYN = 0x02;
const RST = 0x04;
const PSH = 0x08;
const ACK = 0x10;
const URG = 0x20;
const ECE = 0x40;
const CWR = 0x80;

const sNO = 0;
const sSS = 1;
const sSR = 2;
const sES = 3;
const sFW = 4;
const sCW = 5;
const sLA = 6;
const sTW = 7;
const sCL = 8;
const sS2 = 9;
const sIV = 10;
const sIG = 11;

const SYN_SET = 0;
const SYNACK_SET = 1;
const FIN_SET = 2;
const ACK_SET = 3;
const RST_SET = 4;
const NONE_SET = 5;

const F_WINDOW_SCALE = 0x01;
const F_SACK_PERM = 0x02;
const F_CLOSE_INIT = 0x04;
const F_BE_LIBERAL = 0x08;
const F_DATA_UNACK = 0x10;
const F_MAXACK_SET = 0x20;
const F_EXP_CHALLENGE_ACK = 0x40;
const F_SIMULTANEOUS_OPEN = 0x80;

/** TCP_MAX_WSCALE (include/net/tcp.h). */
const TCP_MAX_WSCALE = 14;
/** MAXACKWINCONST. */
const MAXACKWINCONST = 66000;

// tcp_in_window results (enum nf_ct_tcp_action).
const ACT_IGNORE = 0;
const ACT_INVALID = 1;
const ACT_ACCEPT = 2;

// Struct-of-arrays layout.
const W = 11; // u32 words per slot
const W_END = 0;
const W_MAXEND = 1;
const W_MAXWIN = 2;
const W_MAXACK = 3;
const W_LAST_SEQ = 8;
const W_LAST_ACK = 9;
const W_LAST_END = 10;
const B = 10; // u8 bytes per slot
const B_SCALE = 0; // + dir
const B_FLAGS = 2; // + dir
const B_STATE = 4;
const B_LAST_DIR = 5;
const B_RETRANS = 6;
const B_LAST_INDEX = 7;
const B_LAST_WSCALE = 8;
const B_LAST_FLAGS = 9;

/** SYN_SENT2 has no sysctl (nf_conntrack_standalone.c lists none): tcp_timeouts[]'s value, in ms. */
const DEF_SYN_SENT2 = 120_000;
/** nf_tcp_handle_invalid compares against a literal `120 * HZ`. */
const HANDLE_INVALID_MIN_EXPIRES = 120_000;

/**
 * tcp_conntracks[2][6][TCP_CONNTRACK_MAX], flattened: dir*60 + index*10 + old state.
 * Columns: sNO, sSS, sSR, sES, sFW, sCW, sLA, sTW, sCL, sS2.
 */
// prettier-ignore
const TCP_CONNTRACKS = new Uint8Array([
  // ORIGINAL
  /* syn    */ sSS, sSS, sIG, sIG, sIG, sIG, sIG, sSS, sSS, sS2,
  /* synack */ sIV, sIV, sSR, sIV, sIV, sIV, sIV, sIV, sIV, sSR,
  /* fin    */ sIV, sIV, sFW, sFW, sLA, sLA, sLA, sTW, sCL, sIV,
  /* ack    */ sES, sIV, sES, sES, sCW, sCW, sTW, sTW, sCL, sIV,
  /* rst    */ sIV, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL,
  /* none   */ sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV,
  // REPLY
  /* syn    */ sIV, sS2, sIV, sIV, sIV, sIV, sIV, sSS, sIV, sS2,
  /* synack */ sIV, sSR, sIG, sIG, sIG, sIG, sIG, sIG, sIG, sSR,
  /* fin    */ sIV, sIV, sFW, sFW, sLA, sLA, sLA, sTW, sCL, sIV,
  /* ack    */ sIV, sIG, sSR, sES, sCW, sCW, sTW, sTW, sCL, sIG,
  /* rst    */ sIV, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL,
  /* none   */ sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV,
]);

/**
 * The kernel's transition table cell, for reports and tests:
 * `tcp_conntracks[dir][index][old]` (values of TCP_STATE, including MAX and IGNORE).
 */
export function tcpTransition(dir: 0 | 1, index: number, old: number): number {
  return TCP_CONNTRACKS[dir * 60 + index * 10 + old] ?? sIV;
}

/** tcp_valid_flags[]: PSH, ECE and CWR are masked off before the lookup. */
const TCP_VALID_FLAGS = new Uint8Array(64);
TCP_VALID_FLAGS[SYN] = 1;
TCP_VALID_FLAGS[SYN | URG] = 1;
TCP_VALID_FLAGS[SYN | ACK] = 1;
TCP_VALID_FLAGS[RST] = 1;
TCP_VALID_FLAGS[RST | ACK] = 1;
TCP_VALID_FLAGS[FIN | ACK] = 1;
TCP_VALID_FLAGS[FIN | ACK | URG] = 1;
TCP_VALID_FLAGS[ACK] = 1;
TCP_VALID_FLAGS[ACK | URG] = 1;

const STATE_TEXT: readonly string[] = TCP_STATE_NAMES.map((n) => n + " ");

/** get_conntrack_index: RST beats SYN beats FIN beats ACK. */
export function tcpIndex(tcpFlags: number): number {
  if (tcpFlags & RST) return RST_SET;
  if (tcpFlags & SYN) return tcpFlags & ACK ? SYNACK_SET : SYN_SET;
  if (tcpFlags & FIN) return FIN_SET;
  if (tcpFlags & ACK) return ACK_SET;
  return NONE_SET;
}

/** Kernel `before(a, b)` on u32 sequence numbers. */
function before(a: number, b: number): boolean {
  return ((a - b) | 0) < 0;
}

/** Kernel `after(a, b)`. */
function after(a: number, b: number): boolean {
  return ((b - a) | 0) < 0;
}

/** segment_seq_plus_len: seq + payload + SYN + FIN, modulo 2^32. */
function segmentEnd(p: PacketView): number {
  const f = p.tcpFlags;
  return (p.seq + p.payloadLen + (f & SYN ? 1 : 0) + (f & FIN ? 1 : 0)) >>> 0;
}

/** Logging is on for TCP when nf_conntrack_log_invalid is IPPROTO_TCP or IPPROTO_RAW (nf_l4proto_log_invalid). */
function logOn(ctx: CtContext): boolean {
  const v = ctx.sysctl.nf_conntrack_log_invalid;
  return v === 6 || v === 255;
}

/** Window data of one direction, as returned by {@link TcpTracker.seen} (for reports and tests). */
export interface TcpSeen {
  tdEnd: number;
  tdMaxEnd: number;
  tdMaxWin: number;
  tdMaxAck: number;
  tdScale: number;
  flags: number;
}

/** What ctnetlink may set on an entry (nlattr_to_tcp); every field optional. */
export interface TcpNetlinkAttrs {
  state?: number;
  flagsOriginal?: { flags: number; mask: number };
  flagsReply?: { flags: number; mask: number };
  wscaleOriginal?: number;
  wscaleReply?: number;
}

/**
 * The TCP tracker (nf_conntrack_l4proto_tcp). One instance serves a whole
 * table; it owns the `struct ip_ct_tcp` of every slot.
 */
export class TcpTracker implements L4Tracker {
  readonly proto = 6;
  /** Slots the state arrays hold (they grow with the table). */
  capacity: number;
  /**
   * Why the last `valid()` call returned false, as the kernel's tcp_error
   * would log it ("truncated packet", "invalid tcp flag combination"), or ""
   * when the kernel logs nothing. `valid()` has no context to log through,
   * so the core logs this text when logging is on.
   */
  invalidReason = "";

  private u32: Uint32Array;
  private u8: Uint8Array;
  private lastWin: Uint16Array;

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 0) throw new RangeError(`bad capacity ${capacity}`);
    this.capacity = capacity;
    this.u32 = new Uint32Array(capacity * W);
    this.u8 = new Uint8Array(capacity * B);
    this.lastWin = new Uint16Array(capacity);
  }

  get bytesAllocated(): number {
    return this.u32.byteLength + this.u8.byteLength + this.lastWin.byteLength;
  }

  /** Grows the state arrays to `slots` slots, keeping every slot's state. */
  grow(slots: number): void {
    if (slots <= this.capacity) return;
    const u32 = new Uint32Array(slots * W);
    const u8 = new Uint8Array(slots * B);
    const lastWin = new Uint16Array(slots);
    u32.set(this.u32);
    u8.set(this.u8);
    lastWin.set(this.lastWin);
    this.u32 = u32;
    this.u8 = u8;
    this.lastWin = lastWin;
    this.capacity = slots;
  }

  // ---- accessors ---------------------------------------------------------------

  /** The stored TCP state (a TCP_STATE value from NONE to SYN_SENT2). */
  state(slot: number): number {
    return this.u8[slot * B + B_STATE] as number;
  }

  /** `seen[dir].td_end`: the highest sequence number that direction sent, plus its length. */
  tdEnd(slot: number, dir: 0 | 1): number {
    return this.u32[slot * W + dir * 4 + W_END] as number;
  }

  /** Per-direction flags (TCP_CT_FLAG bits) of `seen[dir]`. */
  flags(slot: number, dir: 0 | 1): number {
    return this.u8[slot * B + B_FLAGS + dir] as number;
  }

  /** Window-scale shift of `seen[dir]` (CTA_PROTOINFO_TCP_WSCALE_*). */
  scale(slot: number, dir: 0 | 1): number {
    return this.u8[slot * B + B_SCALE + dir] as number;
  }

  /** Consecutive identical ACK retransmissions counted (u8, wraps like the kernel's). */
  retrans(slot: number): number {
    return this.u8[slot * B + B_RETRANS] as number;
  }

  /** `last_flags` (IP_CT_EXP_CHALLENGE_ACK, IP_CT_TCP_SIMULTANEOUS_OPEN, annotated SYN options). */
  lastFlags(slot: number): number {
    return this.u8[slot * B + B_LAST_FLAGS] as number;
  }

  /** `last_index` and `last_dir` of the entry, packed as index | dir << 8. */
  lastPacket(slot: number): number {
    const b = slot * B;
    return (this.u8[b + B_LAST_INDEX] as number) | ((this.u8[b + B_LAST_DIR] as number) << 8);
  }

  /** A copy of `seen[dir]` (allocates: for reports and tests, not the packet path). */
  seen(slot: number, dir: 0 | 1): TcpSeen {
    const w = slot * W + dir * 4;
    return {
      tdEnd: this.u32[w + W_END] as number,
      tdMaxEnd: this.u32[w + W_MAXEND] as number,
      tdMaxWin: this.u32[w + W_MAXWIN] as number,
      tdMaxAck: this.u32[w + W_MAXACK] as number,
      tdScale: this.u8[slot * B + B_SCALE + dir] as number,
      flags: this.u8[slot * B + B_FLAGS + dir] as number,
    };
  }

  stateText(slot: number): string {
    return STATE_TEXT[this.u8[slot * B + B_STATE] as number] ?? "";
  }

  /** tcp_can_early_drop: closing states may be evicted even when ASSURED. */
  canEarlyDrop(slot: number): boolean {
    const s = this.u8[slot * B + B_STATE] as number;
    return s === sFW || s === sLA || s === sTW || s === sCL || s === sCW;
  }

  // ---- entry points other than packets -----------------------------------------

  /** nlattr_to_tcp: what `conntrack -I/-U` may set (state, flags under mask, wscale when both sides scale). */
  fromNetlink(slot: number, a: TcpNetlinkAttrs): void {
    const b = slot * B;
    const u8 = this.u8;
    if (a.state !== undefined) u8[b + B_STATE] = a.state;
    if (a.flagsOriginal !== undefined) {
      u8[b + B_FLAGS] = ((u8[b + B_FLAGS] as number) & ~a.flagsOriginal.mask) | (a.flagsOriginal.flags & a.flagsOriginal.mask);
    }
    if (a.flagsReply !== undefined) {
      u8[b + B_FLAGS + 1] = ((u8[b + B_FLAGS + 1] as number) & ~a.flagsReply.mask) | (a.flagsReply.flags & a.flagsReply.mask);
    }
    if (
      a.wscaleOriginal !== undefined &&
      a.wscaleReply !== undefined &&
      (u8[b + B_FLAGS] as number) & F_WINDOW_SCALE &&
      (u8[b + B_FLAGS + 1] as number) & F_WINDOW_SCALE
    ) {
      u8[b + B_SCALE] = a.wscaleOriginal;
      u8[b + B_SCALE + 1] = a.wscaleReply;
    }
  }

  /** nf_ct_set_tcp_be_liberal: turn window checking off for this entry (flowtable, ctnetlink). */
  setBeLiberal(slot: number): void {
    this.u8[slot * B + B_FLAGS] = (this.u8[slot * B + B_FLAGS] as number) | F_BE_LIBERAL;
    this.u8[slot * B + B_FLAGS + 1] = (this.u8[slot * B + B_FLAGS + 1] as number) | F_BE_LIBERAL;
  }

  /**
   * nf_ct_tcp_fixup (nf_conntrack_proto.c): when conntrack hooks get
   * (re)registered, ESTABLISHED entries forget td_maxwin in both directions
   * so that window tracking resynchronises from the next packets.
   */
  fixup(slot: number): void {
    if (this.u8[slot * B + B_STATE] !== sES) return;
    const w = slot * W;
    this.u32[w + W_MAXWIN] = 0;
    this.u32[w + 4 + W_MAXWIN] = 0;
  }

  // ---- L4Tracker ------------------------------------------------------------------

  /**
   * tcp_error without the checksum (the core verifies it when
   * nf_conntrack_checksum is on and the hook is PRE_ROUTING): a TCP header
   * must be readable and complete, and the flags one of tcp_valid_flags[].
   */
  valid(p: PacketView, _checksumChecked: boolean): boolean {
    // skb_header_pointer() failing for the 20-byte header: INVALID, nothing logged.
    if (p.l4Len < 20) {
      this.invalidReason = "";
      return false;
    }
    const hl = p.tcpHdrLen;
    if (hl < 20 || p.l4Len < hl) {
      this.invalidReason = "truncated packet";
      return false;
    }
    // The kernel has the whole packet; a capture snapped inside the header leaves us nothing to track.
    if (!p.l4Ok) {
      this.invalidReason = "";
      return false;
    }
    if (TCP_VALID_FLAGS[p.tcpFlags & ~(ECE | CWR | PSH) & 0xff] !== 1) {
      this.invalidReason = "invalid tcp flag combination";
      return false;
    }
    return true;
  }

  /** tcp_new: only a SYN, or (nf_conntrack_tcp_loose) a bare ACK, may create an entry. */
  init(ctx: CtContext, slot: number, p: PacketView): boolean {
    const index = tcpIndex(p.tcpFlags);
    const newState = TCP_CONNTRACKS[index * 10 + sNO] as number;
    if (newState >= sIV) {
      if (logOn(ctx)) ctx.log(slot, p, "invalid new");
      return false;
    }
    const w = slot * W;
    const b = slot * B;
    const u32 = this.u32;
    const u8 = this.u8;
    if (newState === sSS) {
      this.clear(slot);
      const end = segmentEnd(p);
      const win = p.window;
      u32[w + W_END] = end;
      u32[w + W_MAXWIN] = win === 0 ? 1 : win;
      u32[w + W_MAXEND] = end;
      this.tcpOptions(b, 0, p);
    } else if (ctx.sysctl.nf_conntrack_tcp_loose === 0) {
      // Don't try to pick up connections.
      return false;
    } else {
      this.clear(slot);
      // Picked up mid-stream: its history is lost, use what the packet says.
      const end = segmentEnd(p);
      const win = p.window;
      const maxwin = win === 0 ? 1 : win;
      u32[w + W_END] = end;
      u32[w + W_MAXWIN] = maxwin;
      u32[w + W_MAXEND] = end + maxwin;
      // SACK and liberal window checking on both sides, to cope with unknown window scaling.
      u8[b + B_FLAGS] = F_SACK_PERM | F_BE_LIBERAL;
      u8[b + B_FLAGS + 1] = F_SACK_PERM | F_BE_LIBERAL;
    }
    u8[b + B_LAST_INDEX] = NONE_SET;
    return true;
  }

  /** nf_conntrack_tcp_packet, from the table lookup on (tcp_error and tcp_new ran before). */
  packet(ctx: CtContext, slot: number, p: PacketView, dir: 0 | 1, _ctinfo: number): number {
    const u8 = this.u8;
    const u32 = this.u32;
    const b = slot * B;
    const w = slot * W;
    const tcpFlags = p.tcpFlags;
    let oldState = u8[b + B_STATE] as number;
    const index = tcpIndex(tcpFlags);
    let newState = TCP_CONNTRACKS[dir * 60 + index * 10 + oldState] as number;
    let checkWindow = true;

    if (newState === sSS && oldState >= sTW) {
      // RFC 1122 reopen from TIME_WAIT/CLOSE: if the old connection was closed
      // (FIN seen) or aborted by a RST from this side, delete it and let the
      // core look up again so this SYN creates a fresh entry.
      if (((u8[b + B_FLAGS] as number) | (u8[b + B_FLAGS + 1] as number)) & F_CLOSE_INIT || (u8[b + B_LAST_DIR] === dir && u8[b + B_LAST_INDEX] === RST_SET)) {
        return L4_VERDICT.REPEAT;
      }
      newState = sIG; // the kernel falls through to the IGNORE case
    }

    switch (newState) {
      case sIG: {
        const lastDir = u8[b + B_LAST_DIR] as number;
        if (index === SYNACK_SET && u8[b + B_LAST_INDEX] === SYN_SET && lastDir !== dir && p.ack === u32[w + W_LAST_END]) {
          // This SYN/ACK answers a SYN we ignored: client and server are in
          // sync and we are not. Re-initialise from the annotated SYN.
          oldState = sSS;
          newState = sSR;
          const lw = w + lastDir * 4;
          const lastEnd = u32[w + W_LAST_END] as number;
          const lastWin = this.lastWin[slot] as number;
          u32[lw + W_END] = lastEnd;
          u32[lw + W_MAXEND] = lastEnd;
          u32[lw + W_MAXWIN] = lastWin === 0 ? 1 : lastWin;
          u8[b + B_SCALE + lastDir] = u8[b + B_LAST_WSCALE] as number;
          u8[b + B_LAST_FLAGS] = (u8[b + B_LAST_FLAGS] as number) & ~F_EXP_CHALLENGE_ACK;
          u8[b + B_FLAGS + lastDir] = u8[b + B_LAST_FLAGS] as number;
          // nf_ct_tcp_state_reset(&seen[dir])
          const dw = w + dir * 4;
          u32[dw + W_END] = 0;
          u32[dw + W_MAXEND] = 0;
          u32[dw + W_MAXWIN] = 0;
          u32[dw + W_MAXACK] = 0;
          u8[b + B_SCALE + dir] = 0;
          u8[b + B_FLAGS + dir] = (u8[b + B_FLAGS + dir] as number) & F_BE_LIBERAL;
          break;
        }
        u8[b + B_LAST_INDEX] = index;
        u8[b + B_LAST_DIR] = dir;
        u32[w + W_LAST_SEQ] = p.seq;
        u32[w + W_LAST_END] = segmentEnd(p);
        this.lastWin[slot] = p.window;
        if (index === SYN_SET && dir === 0) {
          // A SYN in ORIGINAL while we think the connection exists: annotate
          // its options; if it is genuine, the SYN/ACK above resyncs us.
          let lastFlags = 0;
          let lastWscale = 0;
          if (p.tcpHdrLen > 20) {
            if (p.optWscale >= 0) {
              lastFlags |= F_WINDOW_SCALE;
              lastWscale = p.optWscale > TCP_MAX_WSCALE ? TCP_MAX_WSCALE : p.optWscale;
            }
            if (p.optSackPerm) lastFlags |= F_SACK_PERM;
          }
          // RFC 5961 challenge ACK expected: in LAST_ACK it would look like the last ACK.
          if (oldState === sLA) lastFlags |= F_EXP_CHALLENGE_ACK;
          u8[b + B_LAST_FLAGS] = lastFlags;
          u8[b + B_LAST_WSCALE] = lastWscale;
        }
        // Possible challenge ACK answering our SYN: remember it for the RST that follows.
        if (oldState === sSS && index === ACK_SET && dir === 1) u32[w + W_LAST_ACK] = p.ack;
        if (logOn(ctx)) {
          ctx.log(slot, p, `packet (index ${index}) in dir ${dir} ignored, state ${TCP_STATE_NAMES[oldState]}`);
        }
        return L4_VERDICT.ACCEPT;
      }
      case sIV:
        // (SYN proxy keep-alive exception not modelled: no synproxy extension.)
        if (logOn(ctx)) {
          ctx.log(slot, p, `packet (index ${index}) in dir ${dir} invalid, state ${TCP_STATE_NAMES[oldState]}`);
        }
        return L4_VERDICT.INVALID;
      case sTW:
        // RFC 5961: an ACK answering a SYN we let through in LAST_ACK is a
        // challenge ACK, not the last ACK of the close.
        if (
          oldState === sLA &&
          index === ACK_SET &&
          u8[b + B_LAST_DIR] !== dir &&
          u8[b + B_LAST_INDEX] === SYN_SET &&
          (u8[b + B_LAST_FLAGS] as number) & F_EXP_CHALLENGE_ACK
        ) {
          u8[b + B_LAST_FLAGS] = (u8[b + B_LAST_FLAGS] as number) & ~F_EXP_CHALLENGE_ACK;
          if (logOn(ctx)) ctx.log(slot, p, "challenge-ack ignored");
          return L4_VERDICT.ACCEPT;
        }
        break;
      case sS2:
        // The table alone cannot follow simultaneous open.
        u8[b + B_LAST_FLAGS] = (u8[b + B_LAST_FLAGS] as number) | F_SIMULTANEOUS_OPEN;
        break;
      case sSR:
        if (dir === 1 && index === ACK_SET && (u8[b + B_LAST_FLAGS] as number) & F_SIMULTANEOUS_OPEN) newState = sES;
        break;
      case sCL: {
        if (index !== RST_SET) break;
        // Closing: the tuple may already be reused and our window data is
        // stale; accept the RST without checks.
        if (oldState === sFW || oldState === sLA || oldState === sTW || oldState === sCL || oldState === sCW) {
          checkWindow = false;
          break;
        }
        const lastIndex = u8[b + B_LAST_INDEX] as number;
        const ow = w + (dir ^ 1) * 4;
        // td_maxack might be outdated if we let a SYN through earlier.
        if ((u8[b + B_FLAGS + (dir ^ 1)] as number) & F_MAXACK_SET && lastIndex !== SYN_SET) {
          const seq = p.seq;
          // nf_conntrack_tcp_established()
          const established = oldState === sES && ((ctx.status[slot] as number) & IPS.ASSURED) !== 0;
          // seq 0 outside ESTABLISHED: most likely answers a SYN we let through.
          if (seq === 0 && !established) break;
          const maxack = u32[ow + W_MAXACK] as number;
          if (before(seq, maxack) && ctx.sysctl.nf_conntrack_tcp_ignore_invalid_rst === 0) {
            if (logOn(ctx)) ctx.log(slot, p, "invalid rst");
            return L4_VERDICT.INVALID;
          }
          if (!established || seq === maxack) break;
          // Part of a train such as "P. 235946583:235946602(19)" then "R 235946602".
          if (lastIndex === ACK_SET && u8[b + B_LAST_DIR] === dir && seq === u32[w + W_LAST_END]) break;
          // In window but not exact: keep the state so a challenge ACK can follow.
          newState = oldState;
        }
        const status = ctx.status[slot] as number;
        if (
          ((status & IPS.SEEN_REPLY && lastIndex === SYN_SET && u8[b + B_LAST_DIR] !== dir) || ((status & IPS.ASSURED) === 0 && lastIndex === ACK_SET)) &&
          p.ack === u32[w + W_LAST_END]
        ) {
          // RST answering a SYN or ACK we let through as IGNORE: the packet
          // may ACK segments we never saw, so skip the window check.
          checkWindow = false;
          break;
        }
        // RST answering a challenge ACK we let through earlier.
        if (oldState === sSS && lastIndex === ACK_SET && u8[b + B_LAST_DIR] === 1 && p.seq === u32[w + W_LAST_ACK]) {
          checkWindow = false;
        }
        break;
      }
      default:
        break;
    }

    if (checkWindow) {
      const res = this.inWindow(ctx, slot, p, dir, index);
      if (res === ACT_IGNORE) return L4_VERDICT.ACCEPT;
      if (res === ACT_INVALID) {
        if (this.handleInvalid(ctx, slot, dir, index) && logOn(ctx)) ctx.log(slot, p, "lowered timeout to UNACK");
        return L4_VERDICT.INVALID;
      }
    }

    // From here on the packet is in window.
    u8[b + B_LAST_INDEX] = index;
    u8[b + B_LAST_DIR] = dir;
    u8[b + B_STATE] = newState;
    if (oldState !== newState && newState === sFW) u8[b + B_FLAGS + dir] = (u8[b + B_FLAGS + dir] as number) | F_CLOSE_INIT;

    const sys = ctx.sysctl;
    const stateTimeout = timeoutOf(sys, newState);
    let timeout: number;
    if ((u8[b + B_RETRANS] as number) >= sys.nf_conntrack_tcp_max_retrans && stateTimeout > sys.nf_conntrack_tcp_timeout_max_retrans) {
      timeout = sys.nf_conntrack_tcp_timeout_max_retrans;
    } else if (index === RST_SET) {
      timeout = sys.nf_conntrack_tcp_timeout_close;
    } else if (((u8[b + B_FLAGS] as number) | (u8[b + B_FLAGS + 1] as number)) & F_DATA_UNACK && stateTimeout > sys.nf_conntrack_tcp_timeout_unacknowledged) {
      timeout = sys.nf_conntrack_tcp_timeout_unacknowledged;
    } else if (this.lastWin[slot] === 0 && stateTimeout > sys.nf_conntrack_tcp_timeout_max_retrans) {
      timeout = sys.nf_conntrack_tcp_timeout_max_retrans;
    } else {
      timeout = stateTimeout;
    }

    if (newState !== oldState) ctx.event(slot, IPCT.PROTOINFO);

    const status = ctx.status[slot] as number;
    if ((status & IPS.SEEN_REPLY) === 0) {
      // If the only reply is a RST there is no connection: delete it now
      // (nf_ct_kill_acct; the core accounts this packet to the dying entry).
      if (tcpFlags & RST) {
        ctx.kill(slot);
        return L4_VERDICT.ACCEPT;
      }
      // SYN retransmits must not renew the timeout, else port reuse by a client
      // or NAT middlebox keeps the entry alive forever.
      if (index === SYN_SET && oldState === sSS) return L4_VERDICT.ACCEPT;
      // Picked up with loose=1 and not answered yet: no 5-day timeout.
      if (newState === sES) {
        const unack = sys.nf_conntrack_tcp_timeout_unacknowledged;
        if (timeout > unack) timeout = unack;
      }
    } else if ((status & IPS.ASSURED) === 0 && (oldState === sSR || oldState === sES) && newState === sES) {
      // A valid ACK in ESTABLISHED after SYN_RECV, or a valid answer for a picked-up connection.
      ctx.status[slot] = status | IPS.ASSURED;
      ctx.event(slot, IPCT.ASSURED);
    }
    ctx.refresh(slot, timeout);
    return L4_VERDICT.ACCEPT;
  }

  // ---- internals ---------------------------------------------------------------

  /** memset(&ct->proto.tcp, 0, …). */
  private clear(slot: number): void {
    // Plain stores: TypedArray#fill on 11 and 10 elements cost ~5 % of replaying handshakes.
    const u32 = this.u32;
    const u8 = this.u8;
    const w = slot * W;
    const b = slot * B;
    for (let i = 0; i < W; i++) u32[w + i] = 0;
    for (let i = 0; i < B; i++) u8[b + i] = 0;
    this.lastWin[slot] = 0;
  }

  /**
   * tcp_options for `seen[dir]`: with no options nothing changes; otherwise
   * scale and flags (except BE_LIBERAL) are recomputed from the packet.
   */
  private tcpOptions(b: number, dir: number, p: PacketView): void {
    if (p.tcpHdrLen <= 20) return;
    const u8 = this.u8;
    let flags = (u8[b + B_FLAGS + dir] as number) & F_BE_LIBERAL;
    let scale = 0;
    if (p.optSackPerm) flags |= F_SACK_PERM;
    if (p.optWscale >= 0) {
      scale = p.optWscale > TCP_MAX_WSCALE ? TCP_MAX_WSCALE : p.optWscale;
      flags |= F_WINDOW_SCALE;
    }
    u8[b + B_SCALE + dir] = scale;
    u8[b + B_FLAGS + dir] = flags;
  }

  /** tcp_init_sender: SYN/ACK answering a SYN, or a reply-direction SYN (simultaneous open). */
  private initSender(b: number, sw: number, dir: number, p: PacketView, end: number, win: number): void {
    const u32 = this.u32;
    u32[sw + W_END] = end;
    u32[sw + W_MAXEND] = end;
    u32[sw + W_MAXWIN] = win === 0 ? 1 : win;
    this.tcpOptions(b, dir, p);
    // RFC 1323: window scaling is on only if both sides sent the option.
    if (dir === 1 && !((this.u8[b + B_FLAGS + 1] as number) & F_WINDOW_SCALE && (this.u8[b + B_FLAGS] as number) & F_WINDOW_SCALE)) {
      this.u8[b + B_SCALE] = 0;
      this.u8[b + B_SCALE + 1] = 0;
    }
  }

  /**
   * nf_tcp_log_invalid: a window failure becomes ACCEPT when the sender is
   * BE_LIBERAL or nf_conntrack_tcp_be_liberal is set; otherwise it is logged.
   * The message is built only when logging is on.
   */
  private windowFailure(ctx: CtContext, slot: number, p: PacketView, senderFlags: number, ret: number, kind: number, value: number): number {
    if (senderFlags & F_BE_LIBERAL || ctx.sysctl.nf_conntrack_tcp_be_liberal !== 0) return ACT_ACCEPT;
    if (logOn(ctx)) {
      const v = value >>> 0;
      let msg: string;
      switch (kind) {
        case 0:
          msg = `${v} bytes more than expected`;
          break;
        case 1:
          msg = `SEQ is over upper bound ${v} (over the window of the receiver)`;
          break;
        case 2:
          msg = `ACK is over upper bound ${v} (ACKed data not seen yet)`;
          break;
        case 3:
          msg = `SEQ is under lower bound ${v} (already ACKed data retransmitted)`;
          break;
        default:
          msg = `ignored ACK under lower bound ${v} (possible overly delayed)`;
          break;
      }
      ctx.log(slot, p, msg);
    }
    return ret;
  }

  /** tcp_in_window. Returns ACT_IGNORE, ACT_INVALID or ACT_ACCEPT. */
  private inWindow(ctx: CtContext, slot: number, p: PacketView, dir: 0 | 1, index: number): number {
    const u32 = this.u32;
    const u8 = this.u8;
    const b = slot * B;
    const w = slot * W;
    const sw = w + dir * 4; // sender = seen[dir]
    const rw = w + (dir ^ 1) * 4; // receiver = seen[!dir]
    const sf = b + B_FLAGS + dir;
    const rf = b + B_FLAGS + (dir ^ 1);
    const tf = p.tcpFlags;
    const state = u8[b + B_STATE] as number;

    let seq = p.seq;
    let ack = p.ack;
    let sack = ack;
    const winRaw = p.window;
    let win = winRaw;
    let end = segmentEnd(p);

    if ((u8[rf] as number) & F_SACK_PERM) {
      // tcp_sack: the highest right edge of the blocks, if after ack.
      const n = p.sackCount;
      for (let i = 0; i < n; i++) {
        const right = p.sackRight[i] as number;
        if (after(right, sack)) sack = right;
      }
    }
    // NAT sequence adjustment (nf_ct_seq_offset) is zero: no seqadj extension.

    if (u32[sw + W_MAXWIN] === 0) {
      if (tf & SYN) {
        this.initSender(b, sw, dir, p, end, win);
        // Simultaneous open.
        if (!(tf & ACK)) return ACT_ACCEPT;
      } else {
        // Mid-connection: its history is lost, use the data from the packet.
        u32[sw + W_END] = end;
        const swin = (win << (u8[b + B_SCALE + dir] as number)) >>> 0;
        const maxwin = swin === 0 ? 1 : swin;
        u32[sw + W_MAXWIN] = maxwin;
        u32[sw + W_MAXEND] = end + maxwin;
        if (u32[rw + W_MAXWIN] === 0) {
          // Nothing seen from the other side yet: let checks III and IV pass until then.
          u32[rw + W_END] = sack;
          u32[rw + W_MAXEND] = sack;
        } else if (sack === ((u32[rw + W_END] as number) + 1) >>> 0) {
          // Likely a reply to a keep-alive; needed for check III.
          u32[rw + W_END] = sack;
        }
      }
    } else if (tf & SYN && after(end, u32[sw + W_END] as number) && (state === sSS || state === sSR)) {
      // RFC 793: a reinitialised TCP uses larger sequence numbers; re-init
      // this direction as for the first SYN(/ACK), options may differ.
      this.initSender(b, sw, dir, p, end, win);
      if (dir === 1 && !(tf & ACK)) return ACT_ACCEPT;
    }

    if (!(tf & ACK)) {
      // No ACK: pretend it was set and OK.
      ack = sack = u32[rw + W_END] as number;
    } else if ((tf & (ACK | RST)) === (ACK | RST) && ack === 0) {
      // Broken stacks send RST|ACK with a zero ack.
      ack = sack = u32[rw + W_END] as number;
    }

    // RST answering a SYN.
    if (tf & RST && seq === 0 && state === sSS) seq = end = u32[sw + W_END] as number;

    const sEnd = u32[sw + W_END] as number;
    const sMaxEnd = u32[sw + W_MAXEND] as number;
    const sMaxWin = u32[sw + W_MAXWIN] as number;
    const rEnd = u32[rw + W_END] as number;
    const rMaxWin = u32[rw + W_MAXWIN] as number;
    const maxAckWindow = sMaxWin > MAXACKWINCONST ? sMaxWin : MAXACKWINCONST;

    // I. seq <= sender.td_maxend
    if (!before(seq, sMaxEnd + 1)) {
      const overshot = (end - sMaxEnd + 1) >>> 0;
      const ackOk = after(sack, rEnd - maxAckWindow - 1);
      const inRecvWin = rMaxWin !== 0 && after(end, sEnd - rMaxWin - 1);
      if (inRecvWin && ackOk && overshot <= rMaxWin && before(sack, rEnd + 1)) {
        // A TCP sending more than the receive window allows: if the peer ACKs
        // it, later packets must not all fail check III, so take td_end on.
        u32[sw + W_END] = end;
        u8[sf] = (u8[sf] as number) | F_DATA_UNACK;
        return this.windowFailure(ctx, slot, p, u8[sf], ACT_IGNORE, 0, overshot);
      }
      return this.windowFailure(ctx, slot, p, u8[sf] as number, ACT_INVALID, 1, sMaxEnd + 1);
    }
    // III. sack <= receiver.td_end
    if (!before(sack, rEnd + 1)) {
      return this.windowFailure(ctx, slot, p, u8[sf] as number, ACT_INVALID, 2, rEnd + 1);
    }
    // II. seq + len >= sender.td_end - receiver.td_maxwin
    if (!(rMaxWin === 0 || after(end, sEnd - rMaxWin - 1))) {
      return this.windowFailure(ctx, slot, p, u8[sf] as number, ACT_IGNORE, 3, sEnd - rMaxWin - 1);
    }
    // IV. sack >= receiver.td_end - MAXACKWINDOW(sender)
    if (!after(sack, rEnd - maxAckWindow - 1)) {
      return this.windowFailure(ctx, slot, p, u8[sf] as number, ACT_IGNORE, 4, rEnd - maxAckWindow - 1);
    }

    // RFC 1323 window scaling (a SYN's window is never scaled).
    if (!(tf & SYN)) win = (win << (u8[b + B_SCALE + dir] as number)) >>> 0;

    // Update sender data.
    const swin = (win + sack - ack) >>> 0;
    if (sMaxWin < swin) u32[sw + W_MAXWIN] = swin;
    if (after(end, sEnd)) {
      u32[sw + W_END] = end;
      u8[sf] = (u8[sf] as number) | F_DATA_UNACK;
    }
    if (tf & ACK) {
      if (!((u8[sf] as number) & F_MAXACK_SET)) {
        u32[sw + W_MAXACK] = ack;
        u8[sf] = (u8[sf] as number) | F_MAXACK_SET;
      } else if (after(ack, u32[sw + W_MAXACK] as number)) {
        u32[sw + W_MAXACK] = ack;
      }
    }

    // Update receiver data.
    if (rMaxWin !== 0 && after(end, sMaxEnd)) u32[rw + W_MAXWIN] = rMaxWin + end - sMaxEnd;
    if (after(sack + win, (u32[rw + W_MAXEND] as number) - 1)) {
      u32[rw + W_MAXEND] = win === 0 ? sack + 1 : sack + win;
    }
    if (ack === rEnd) u8[rf] = (u8[rf] as number) & ~F_DATA_UNACK;

    // Count retransmissions of identical ACK segments.
    if (index === ACK_SET) {
      if (
        u8[b + B_LAST_DIR] === dir &&
        u32[w + W_LAST_SEQ] === seq &&
        u32[w + W_LAST_ACK] === ack &&
        u32[w + W_LAST_END] === end &&
        this.lastWin[slot] === winRaw
      ) {
        u8[b + B_RETRANS] = (u8[b + B_RETRANS] as number) + 1; // u8: wraps at 256 like the kernel's
      } else {
        u8[b + B_LAST_DIR] = dir;
        u32[w + W_LAST_SEQ] = seq;
        u32[w + W_LAST_ACK] = ack;
        u32[w + W_LAST_END] = end;
        this.lastWin[slot] = winRaw;
        u8[b + B_RETRANS] = 0;
      }
    }
    return ACT_ACCEPT;
  }

  /**
   * nf_tcp_handle_invalid: an ASSURED entry whose FIN/RST was found out of
   * window right after a FIN/RST from the other side gets its timeout lowered
   * to UNACK, so dead out-of-sync connections do not linger for days.
   */
  private handleInvalid(ctx: CtContext, slot: number, dir: 0 | 1, index: number): boolean {
    const status = ctx.status[slot] as number;
    if ((status & IPS.ASSURED) === 0 || (status & IPS.FIXED_TIMEOUT) !== 0) return false;
    if (index !== RST_SET && index !== FIN_SET) return false;
    const b = slot * B;
    const lastIndex = this.u8[b + B_LAST_INDEX];
    if (this.u8[b + B_LAST_DIR] !== dir && (lastIndex === FIN_SET || lastIndex === RST_SET)) {
      let expires = ctx.remaining(slot);
      if (expires < 0) expires = 0;
      if (expires < HANDLE_INVALID_MIN_EXPIRES) return false;
      const timeout = ctx.sysctl.nf_conntrack_tcp_timeout_unacknowledged;
      if (expires > timeout) {
        ctx.setTimeout(slot, timeout);
        return true;
      }
    } else {
      this.u8[b + B_LAST_INDEX] = index;
      this.u8[b + B_LAST_DIR] = dir;
    }
    return false;
  }
}

/** timeouts[state] from the sysctls (tn->timeouts), in ms. */
function timeoutOf(sys: SysctlValues, state: number): number {
  switch (state) {
    case sSS:
      return sys.nf_conntrack_tcp_timeout_syn_sent;
    case sSR:
      return sys.nf_conntrack_tcp_timeout_syn_recv;
    case sES:
      return sys.nf_conntrack_tcp_timeout_established;
    case sFW:
      return sys.nf_conntrack_tcp_timeout_fin_wait;
    case sCW:
      return sys.nf_conntrack_tcp_timeout_close_wait;
    case sLA:
      return sys.nf_conntrack_tcp_timeout_last_ack;
    case sTW:
      return sys.nf_conntrack_tcp_timeout_time_wait;
    case sCL:
      return sys.nf_conntrack_tcp_timeout_close;
    case sS2:
      return DEF_SYN_SENT2;
    default:
      // timeouts[0] (NONE) mirrors SYN_SENT in nf_conntrack_tcp_init_net.
      return sys.nf_conntrack_tcp_timeout_syn_sent;
  }
}
