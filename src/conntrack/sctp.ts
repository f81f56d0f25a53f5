/**
 * SCTP tracking, line by line from net/netfilter/nf_conntrack_proto_sctp.c
 * (Linux 6.18): chunk sanity (do_basic_checks), the OOTB rules for a first
 * packet (sctp_new), verification-tag checks of RFC 9260 8.5/8.5.1, the
 * sctp_conntracks transition table, INIT collision handling and the
 * heartbeat vtag re-learning of multi-homed paths.
 *
 * Per-entry state (`ct->proto.sctp`): state u8, flags u8 (heartbeat vtag
 * failure, last_dir, init[2]) and vtag[2] u32, allocated with the first SCTP
 * entry. The CRC32c is verified by the core when nf_conntrack_checksum is on.
 */
import { be16, be32 } from "../packet/bytes.js";
import type { PacketView } from "../packet/view.js";
import { IPPROTO, SCTP_CHUNK } from "../packet/view.js";
import { IPCT, IPS, L4_VERDICT } from "./constants.js";
import type { CtContext, L4Tracker } from "./l4.js";
import type { SettableSysctlName } from "./sysctl.js";

/** `enum sctp_conntrack` (include/uapi/linux/netfilter/nf_conntrack_sctp.h). */
export const SCTP_STATE = {
  NONE: 0,
  CLOSED: 1,
  COOKIE_WAIT: 2,
  COOKIE_ECHOED: 3,
  ESTABLISHED: 4,
  SHUTDOWN_SENT: 5,
  SHUTDOWN_RECD: 6,
  SHUTDOWN_ACK_SENT: 7,
  HEARTBEAT_SENT: 8,
  /** No longer used by the kernel; kept for the numbering. */
  HEARTBEAT_ACKED: 9,
  /** sIV in the transition table. */
  MAX: 10,
} as const;

/** Names as libnetfilter_conntrack prints them (sctp_states[]). */
export const SCTP_STATE_NAMES: readonly string[] = Object.freeze([
  "NONE",
  "CLOSED",
  "COOKIE_WAIT",
  "COOKIE_ECHOED",
  "ESTABLISHED",
  "SHUTDOWN_SENT",
  "SHUTDOWN_RECD",
  "SHUTDOWN_ACK_SENT",
  "HEARTBEAT_SENT",
  "HEARTBEAT_ACKED",
]);

/** Chunk types (SCTP_CID_*). */
export const SCTP_CID = SCTP_CHUNK;

const sNO = SCTP_STATE.NONE;
const sCL = SCTP_STATE.CLOSED;
const sCW = SCTP_STATE.COOKIE_WAIT;
const sCE = SCTP_STATE.COOKIE_ECHOED;
const sES = SCTP_STATE.ESTABLISHED;
const sSS = SCTP_STATE.SHUTDOWN_SENT;
const sSR = SCTP_STATE.SHUTDOWN_RECD;
const sSA = SCTP_STATE.SHUTDOWN_ACK_SENT;
const sHS = SCTP_STATE.HEARTBEAT_SENT;
const sIV = SCTP_STATE.MAX;

const NCOL = 10;
const NROW = 11;
// sctp_conntracks[2][11][SCTP_CONNTRACK_MAX]; the unused HEARTBEAT_ACKED column is sNO (zero).
// prettier-ignore
const TABLE = new Uint8Array([
  // ORIGINAL        sNO, sCL, sCW, sCE, sES, sSS, sSR, sSA, sHS, (sHA)
  /* init         */ sCL, sCL, sCW, sCE, sES, sCL, sCL, sSA, sCW, sNO,
  /* init_ack     */ sCL, sCL, sCW, sCE, sES, sSS, sSR, sSA, sCL, sNO,
  /* abort        */ sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sNO,
  /* shutdown     */ sCL, sCL, sCW, sCE, sSS, sSS, sSR, sSA, sCL, sNO,
  /* shutdown_ack */ sSA, sCL, sCW, sCE, sES, sSA, sSA, sSA, sSA, sNO,
  /* error        */ sCL, sCL, sCW, sCE, sES, sSS, sSR, sSA, sCL, sNO,
  /* cookie_echo  */ sCL, sCL, sCE, sCE, sES, sSS, sSR, sSA, sCL, sNO,
  /* cookie_ack   */ sCL, sCL, sCW, sES, sES, sSS, sSR, sSA, sCL, sNO,
  /* shutdown_comp*/ sCL, sCL, sCW, sCE, sES, sSS, sSR, sCL, sCL, sNO,
  /* heartbeat    */ sHS, sCL, sCW, sCE, sES, sSS, sSR, sSA, sHS, sNO,
  /* heartbeat_ack*/ sCL, sCL, sCW, sCE, sES, sSS, sSR, sSA, sHS, sNO,
  // REPLY
  /* init         */ sIV, sCL, sCW, sCE, sES, sSS, sSR, sSA, sIV, sNO,
  /* init_ack     */ sIV, sCW, sCW, sCE, sES, sSS, sSR, sSA, sIV, sNO,
  /* abort        */ sIV, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sIV, sNO,
  /* shutdown     */ sIV, sCL, sCW, sCE, sSR, sSS, sSR, sSA, sIV, sNO,
  /* shutdown_ack */ sIV, sCL, sCW, sCE, sES, sSA, sSA, sSA, sIV, sNO,
  /* error        */ sIV, sCL, sCW, sCL, sES, sSS, sSR, sSA, sIV, sNO,
  /* cookie_echo  */ sIV, sCL, sCE, sCE, sES, sSS, sSR, sSA, sIV, sNO,
  /* cookie_ack   */ sIV, sCL, sCW, sES, sES, sSS, sSR, sSA, sIV, sNO,
  /* shutdown_comp*/ sIV, sCL, sCW, sCE, sES, sSS, sSR, sCL, sIV, sNO,
  /* heartbeat    */ sIV, sCL, sCW, sCE, sES, sSS, sSR, sSA, sHS, sNO,
  /* heartbeat_ack*/ sIV, sCL, sCW, sCE, sES, sSS, sSR, sSA, sES, sNO,
]);

/** Row of a chunk type in TABLE, -1 for chunks that do not change the state (DATA, SACK, …). */
const ROW = new Int8Array(256).fill(-1);
ROW[SCTP_CID.INIT] = 0;
ROW[SCTP_CID.INIT_ACK] = 1;
ROW[SCTP_CID.ABORT] = 2;
ROW[SCTP_CID.SHUTDOWN] = 3;
ROW[SCTP_CID.SHUTDOWN_ACK] = 4;
ROW[SCTP_CID.ERROR] = 5;
ROW[SCTP_CID.COOKIE_ECHO] = 6;
ROW[SCTP_CID.COOKIE_ACK] = 7;
ROW[SCTP_CID.SHUTDOWN_COMPLETE] = 8;
ROW[SCTP_CID.HEARTBEAT] = 9;
ROW[SCTP_CID.HEARTBEAT_ACK] = 10;

/** sctp_new_state. */
export function sctpNewState(dir: 0 | 1, cur: number, chunkType: number): number {
  const row = ROW[chunkType & 0xff] as number;
  if (row < 0) return cur;
  return TABLE[(dir * NROW + row) * NCOL + cur] as number;
}

/** SCTP_CHUNK_FLAG_T: the vtag is the peer's (ABORT, SHUTDOWN_COMPLETE). */
const FLAG_T = 0x01;

// flags byte of ct->proto.sctp
const F_HB_VTAG_FAILED = 1;
const F_LAST_DIR = 2;
const F_INIT0 = 4;
const F_INIT1 = 8;

/** Sysctl of the timeout of each state (timeouts[0], the "new" timeout, is CLOSED's). */
const TIMEOUT_SYSCTL: readonly SettableSysctlName[] = [
  "nf_conntrack_sctp_timeout_closed",
  "nf_conntrack_sctp_timeout_closed",
  "nf_conntrack_sctp_timeout_cookie_wait",
  "nf_conntrack_sctp_timeout_cookie_echoed",
  "nf_conntrack_sctp_timeout_established",
  "nf_conntrack_sctp_timeout_shutdown_sent",
  "nf_conntrack_sctp_timeout_shutdown_recd",
  "nf_conntrack_sctp_timeout_shutdown_ack_sent",
  "nf_conntrack_sctp_timeout_heartbeat_sent",
  "nf_conntrack_sctp_timeout_closed",
];

const STATE_TEXT = SCTP_STATE_NAMES.map((n) => `${n} `);

export class SctpTracker implements L4Tracker {
  readonly proto = IPPROTO.SCTP;
  private capacity: number;
  private state: Uint8Array | null = null;
  private flags: Uint8Array | null = null;
  private vtag: Uint32Array | null = null;
  /** Bit map of the chunk types of the packet being processed (256 bits). */
  private readonly map = new Uint32Array(8);
  /** Why the last `valid()`/`init()`/`packet()` refused the packet, as the kernel logs it. */
  invalidReason = "";

  constructor(capacity: number) {
    this.capacity = capacity;
  }

  get bytesAllocated(): number {
    if (this.state === null) return 0;
    return this.state.byteLength + (this.flags as Uint8Array).byteLength + (this.vtag as Uint32Array).byteLength;
  }

  /** Grows the per-slot stores (when allocated) to `slots` slots. */
  grow(slots: number): void {
    if (slots <= this.capacity) return;
    if (this.state !== null) {
      const state = new Uint8Array(slots);
      const flags = new Uint8Array(slots);
      const vtag = new Uint32Array(slots * 2);
      state.set(this.state);
      flags.set(this.flags as Uint8Array);
      vtag.set(this.vtag as Uint32Array);
      this.state = state;
      this.flags = flags;
      this.vtag = vtag;
    }
    this.capacity = slots;
  }

  /** The stored state of an entry (SCTP_STATE). */
  stateOf(slot: number): number {
    return this.state === null ? 0 : (this.state[slot] as number);
  }

  /** The verification tag expected in direction `dir`. */
  vtagOf(slot: number, dir: 0 | 1): number {
    return this.vtag === null ? 0 : (this.vtag[slot * 2 + dir] as number);
  }

  /** sctp_error, without the CRC (verified by the core). */
  valid(p: PacketView, _checksumChecked: boolean): boolean {
    if (p.l4Len < 12) {
      this.invalidReason = "nf_ct_sctp: short packet ";
      return false;
    }
    return true;
  }

  /** do_basic_checks, the OOTB discard rules and sctp_new for a would-be entry. */
  init(ctx: CtContext, slot: number, p: PacketView): boolean {
    if (!this.basicChecks(ctx, slot, p)) return false;
    const map = this.map;
    // Sec 8.4: an out-of-the-blue packet with these chunks is discarded.
    if (has(map, SCTP_CID.ABORT) || has(map, SCTP_CID.SHUTDOWN_COMPLETE) || has(map, SCTP_CID.COOKIE_ACK)) {
      this.invalidReason = "";
      return false;
    }
    if (this.state === null) {
      this.state = new Uint8Array(this.capacity);
      this.flags = new Uint8Array(this.capacity);
      this.vtag = new Uint32Array(this.capacity * 2);
    }
    const state = this.state;
    const vt = this.vtag as Uint32Array;
    state[slot] = 0;
    (this.flags as Uint8Array)[slot] = 0;
    vt[slot * 2] = 0;
    vt[slot * 2 + 1] = 0;
    const shVtag = readVtag(p);
    const data = p.data;
    const end = chunkEnd(p);
    for (let off = chunkStart(p); off + 4 <= end;) {
      const type = data[off] as number;
      const len = be16(data, off + 2);
      const ns = sctpNewState(0, sNO, type);
      if (ns === sNO || ns === sIV) {
        this.invalidReason = "";
        return false;
      }
      if (type === SCTP_CID.INIT) {
        // Sec 8.5.1 (A): an INIT carries vtag 0.
        if (shVtag !== 0) return false;
        if (off + 4 + 16 > end) return false;
        vt[slot * 2 + 1] = be32(data, off + 4);
      } else if (type === SCTP_CID.HEARTBEAT) {
        vt[slot * 2] = shVtag;
      } else if (type === SCTP_CID.SHUTDOWN_ACK) {
        // A SHUTDOWN_ACK out of the blue expects SHUTDOWN_COMPLETE with its vtag (8.4 (5)).
        // Other chunks (e.g. a HEARTBEAT_ACK) record no vtag here since the stable fix
        // "} else if (sch->type == SCTP_CID_SHUTDOWN_ACK)" in sctp_new; the kernel comparison
        // (scenario sctp-heartbeat-ack-first) confirmed 6.18 behaves so.
        vt[slot * 2 + 1] = shVtag;
      }
      state[slot] = sNO;
      off += (len + 3) & ~3;
    }
    return true;
  }

  packet(ctx: CtContext, slot: number, p: PacketView, dir: 0 | 1, _ctinfo: number): number {
    if (this.state === null) return L4_VERDICT.INVALID;
    if (!this.basicChecks(ctx, slot, p)) return L4_VERDICT.INVALID;
    const map = this.map;
    const state = this.state;
    const fl = this.flags as Uint8Array;
    const vt = this.vtag as Uint32Array;
    const shVtag = readVtag(p);
    const odir = (dir ^ 1) as 0 | 1;

    // Verification tag check (Sec 8.5) unless a chunk with its own rule is present.
    if (
      !has(map, SCTP_CID.INIT) &&
      !has(map, SCTP_CID.SHUTDOWN_COMPLETE) &&
      !has(map, SCTP_CID.COOKIE_ECHO) &&
      !has(map, SCTP_CID.ABORT) &&
      !has(map, SCTP_CID.SHUTDOWN_ACK) &&
      !has(map, SCTP_CID.HEARTBEAT) &&
      !has(map, SCTP_CID.HEARTBEAT_ACK) &&
      shVtag !== vt[slot * 2 + dir]
    ) {
      this.invalidReason = `verification tag check failed ${hex(shVtag)} vs ${hex(vt[slot * 2 + dir] as number)} for dir ${dir}`;
      this.logInvalid(ctx, slot, p);
      return L4_VERDICT.INVALID;
    }

    let oldState: number = sNO;
    let newState: number = sNO;
    let ignore = false;
    const data = p.data;
    const end = chunkEnd(p);
    for (let off = chunkStart(p); off + 4 <= end;) {
      const type = data[off] as number;
      const cflags = data[off + 1] as number;
      const len = be16(data, off + 2);
      const next = off + ((len + 3) & ~3);
      const own = vt[slot * 2 + dir] as number;
      const peer = vt[slot * 2 + odir] as number;
      if (type === SCTP_CID.INIT) {
        // (A) vtag MUST be zero.
        if (shVtag !== 0) return L4_VERDICT.INVALID;
      } else if (type === SCTP_CID.ABORT || type === SCTP_CID.SHUTDOWN_COMPLETE) {
        // (B), (C): own vtag without the T flag, the peer's with it.
        if (((cflags & FLAG_T) === 0 && shVtag !== own) || ((cflags & FLAG_T) !== 0 && shVtag !== peer)) {
          return L4_VERDICT.INVALID;
        }
      } else if (type === SCTP_CID.COOKIE_ECHO) {
        // (D) the vtag of the INIT_ACK.
        if (shVtag !== own) return L4_VERDICT.INVALID;
      } else if (type === SCTP_CID.COOKIE_ACK) {
        fl[slot] = (fl[slot] as number) & ~(F_INIT0 | F_INIT1);
      } else if (type === SCTP_CID.HEARTBEAT) {
        if (own === 0) {
          vt[slot * 2 + dir] = shVtag;
        } else if (shVtag !== own) {
          if (has(map, SCTP_CID.DATA) || ignore) return L4_VERDICT.INVALID;
          // A new path's heartbeat: remember it and let the peer's HEARTBEAT_ACK confirm the vtag.
          fl[slot] = ((fl[slot] as number) & ~F_LAST_DIR) | F_HB_VTAG_FAILED | (dir ? F_LAST_DIR : 0);
          ignore = true;
          off = next;
          continue;
        } else if ((fl[slot] as number) & F_HB_VTAG_FAILED) {
          fl[slot] = (fl[slot] as number) & ~F_HB_VTAG_FAILED;
        }
      } else if (type === SCTP_CID.HEARTBEAT_ACK) {
        if (own === 0) {
          vt[slot * 2 + dir] = shVtag;
        } else if (shVtag !== own) {
          if (has(map, SCTP_CID.DATA) || ignore) return L4_VERDICT.INVALID;
          const f = fl[slot] as number;
          const lastDir = f & F_LAST_DIR ? 1 : 0;
          if ((f & F_HB_VTAG_FAILED) === 0 || lastDir === dir) return L4_VERDICT.INVALID;
          fl[slot] = f & ~F_HB_VTAG_FAILED;
          vt[slot * 2 + dir] = shVtag;
          vt[slot * 2 + odir] = 0;
        } else if ((fl[slot] as number) & F_HB_VTAG_FAILED) {
          fl[slot] = (fl[slot] as number) & ~F_HB_VTAG_FAILED;
        }
      }

      oldState = state[slot] as number;
      newState = sctpNewState(dir, oldState, type);
      if (newState === sIV) {
        this.invalidReason = `Invalid, old_state ${oldState}, dir ${dir}, type ${type}`;
        this.logInvalid(ctx, slot, p);
        return L4_VERDICT.INVALID;
      }

      if (type === SCTP_CID.INIT) {
        if (off + 4 + 16 > end) return L4_VERDICT.INVALID;
        const f = fl[slot] as number;
        const initDir = dir ? F_INIT1 : F_INIT0;
        const initOther = dir ? F_INIT0 : F_INIT1;
        let nf = f;
        if (nf & initDir && nf & initOther) nf &= ~initOther;
        fl[slot] = nf | initDir;
        vt[slot * 2 + odir] = be32(data, off + 4);
        // Don't renew the timeout on INIT retransmits, so port reuse cannot keep the entry alive forever.
        if (newState === sCL && oldState === sCL && ctx.isConfirmed(slot)) ignore = true;
      } else if (type === SCTP_CID.INIT_ACK) {
        if (off + 4 + 16 > end) return L4_VERDICT.INVALID;
        const initTag = be32(data, off + 4);
        const v = vt[slot * 2 + odir] as number;
        const f = fl[slot] as number;
        const initDir = dir ? F_INIT1 : F_INIT0;
        const initOther = dir ? F_INIT0 : F_INIT1;
        if ((f & initOther) === 0 && v !== 0 && v !== initTag) return L4_VERDICT.INVALID;
        // INIT collision: only the INIT_ACK matching the surviving INIT passes.
        if (f & initDir && f & initOther && v !== initTag) return L4_VERDICT.INVALID;
        vt[slot * 2 + odir] = initTag;
      }

      state[slot] = newState;
      if (oldState !== newState) {
        ctx.event(slot, IPCT.PROTOINFO);
        if (newState === sES && ((ctx.status[slot] as number) & IPS.ASSURED) === 0) {
          ctx.status[slot] = (ctx.status[slot] as number) | IPS.ASSURED;
          ctx.event(slot, IPCT.ASSURED);
        }
      }
      off = next;
    }

    // Allowed, but the timeout is not refreshed.
    if (ignore) return L4_VERDICT.ACCEPT;
    ctx.refresh(slot, ctx.sysctl[TIMEOUT_SYSCTL[newState] as SettableSysctlName]);
    return L4_VERDICT.ACCEPT;
  }

  stateText(slot: number): string {
    return STATE_TEXT[this.stateOf(slot)] ?? "NONE ";
  }

  /** sctp_can_early_drop: the shutdown states may be evicted even when ASSURED. */
  canEarlyDrop(slot: number): boolean {
    const s = this.stateOf(slot);
    return s === sSS || s === sSR || s === sSA;
  }

  /** do_basic_checks: fills `map`; false when the chunks are malformed or there are none. */
  private basicChecks(ctx: CtContext, slot: number, p: PacketView): boolean {
    const map = this.map;
    map.fill(0);
    const data = p.data;
    const end = chunkEnd(p);
    let flag = false;
    let count = 0;
    for (let off = chunkStart(p); off + 4 <= end; count++) {
      const type = data[off] as number;
      const len = be16(data, off + 2);
      if (type === SCTP_CID.INIT || type === SCTP_CID.INIT_ACK || type === SCTP_CID.SHUTDOWN_COMPLETE) flag = true;
      // COOKIE_ACK/ECHO must come first, INIT/INIT_ACK/SHUTDOWN_COMPLETE alone; no zero-length chunk.
      if (((type === SCTP_CID.COOKIE_ACK || type === SCTP_CID.COOKIE_ECHO || flag) && count !== 0) || len === 0) {
        this.invalidReason = `do_basic_checks failed. chunk num ${count}, type ${type}, len ${len} flag ${flag ? 1 : 0}\n`;
        this.logInvalid(ctx, slot, p);
        return false;
      }
      map[type >>> 5] = (map[type >>> 5] as number) | (1 << (type & 31));
      off += (len + 3) & ~3;
    }
    if (count === 0) this.invalidReason = "";
    return count !== 0;
  }

  private logInvalid(ctx: CtContext, slot: number, p: PacketView): void {
    const v = ctx.sysctl.nf_conntrack_log_invalid;
    if (v === IPPROTO.SCTP || v === 255) ctx.log(slot, p, this.invalidReason);
  }
}

function has(map: Uint32Array, type: number): boolean {
  return ((map[type >>> 5] as number) & (1 << (type & 31))) !== 0;
}

/** sh->vtag, from the bytes when captured, else from the decoder. */
function readVtag(p: PacketView): number {
  const off = p.l4Off + 4;
  if (p.l4CapLen >= 8 && off + 4 <= p.data.length) return be32(p.data, off);
  return p.sctpVtag >>> 0;
}

function chunkStart(p: PacketView): number {
  return p.sctpChunksOff > 0 ? p.sctpChunksOff : p.l4Off + 12;
}

/** End of the chunk walk: the datagram's end (skb->len), cut to what was captured. */
function chunkEnd(p: PacketView): number {
  const cap = Math.min(p.l4Len, p.l4CapLen);
  return Math.min(p.l4Off + cap, p.data.length);
}

function hex(n: number): string {
  return (n >>> 0).toString(16);
}
