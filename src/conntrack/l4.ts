import type { PacketView } from "../packet/view.js";
import type { SysctlValues } from "./sysctl.js";

/**
 * What a protocol tracker may see and do of the entry it works on. The table
 * implements it once; trackers never reach into the table otherwise, so the
 * table's layout can change without touching them.
 */
export interface CtContext {
  /** Entry status bits (`IPS.*`), indexed by slot. Trackers set ASSURED themselves. */
  readonly status: Uint16Array;
  /** The current time in milliseconds on the tracker's clock. */
  readonly now: number;
  /** Resolved sysctl values, timeouts already in milliseconds (see sysctl.ts). */
  readonly sysctl: SysctlValues;
  /** Whether the entry is already in the table (false while its first packet is processed). */
  isConfirmed(slot: number): boolean;
  /**
   * Set the entry to expire `timeoutMs` from now (nf_ct_refresh_acct). Does nothing
   * for IPS_FIXED_TIMEOUT entries. For an unconfirmed entry the value is kept
   * relative and made absolute at confirmation, as the kernel does.
   */
  refresh(slot: number, timeoutMs: number): void;
  /** Remaining time to expiry in milliseconds (may be ≤ 0). */
  remaining(slot: number): number;
  /** Set the expiry to `timeoutMs` from now without the FIXED_TIMEOUT check (nf_tcp_handle_invalid lowers it). */
  setTimeout(slot: number, timeoutMs: number): void;
  /** Queue event bits (`IPCT.*`) for the packet being processed; delivered as one message. */
  event(slot: number, bits: number): void;
  /** Destroy the entry now (nf_ct_kill): DESTROY event, slot freed. */
  kill(slot: number): void;
  /** Log a conntrack message the way the kernel would (nf_conntrack_log_invalid etc.); may be a no-op. */
  log(slot: number, p: PacketView, message: string): void;
}

/**
 * A per-protocol tracker (nf_conntrack_l4proto). It owns its per-entry state as
 * typed arrays indexed by slot, as many slots as the table has allocated.
 */
export interface L4Tracker {
  /** IP protocol number it handles. */
  readonly proto: number;
  /** Bytes of per-entry state this tracker allocated, for memory accounting. */
  readonly bytesAllocated: number;
  /**
   * The table grows to `slots` slots: per-slot state must cover them, every
   * existing slot's state kept in place. Throws RangeError when memory runs out.
   */
  grow(slots: number): void;
  /**
   * Packet-level checks (the l4proto `error` callbacks, e.g. tcp_error flag
   * validation and length checks). Returns false when the packet is INVALID.
   * The core calls it after the lookup, where the kernel's
   * nf_conntrack_*_packet runs them, and before `init`/`packet`.
   * `checksumChecked` is true when nf_conntrack_checksum=1 and the hook is
   * PRE_ROUTING: the core then verifies the transport checksum itself
   * (l4ChecksumOk) right after this returns true, so trackers need not.
   */
  valid(p: PacketView, checksumChecked: boolean): boolean;
  /**
   * Initialise state for a would-be entry from its first packet (the l4proto
   * `new` step, e.g. tcp_new). Returns false when this packet cannot create an
   * entry (then it is INVALID and no entry exists).
   */
  init(ctx: CtContext, slot: number, p: PacketView): boolean;
  /**
   * Process a packet of the entry (its first one too, right after init).
   * `dir` is 0 for ORIGINAL, 1 for REPLY; `ctinfo` is the CTINFO value chosen
   * by the core. Returns an `L4_VERDICT`.
   */
  packet(ctx: CtContext, slot: number, p: PacketView, dir: 0 | 1, ctinfo: number): number;
  /** The protocol part printed by `conntrack -L` before the tuple ("ESTABLISHED " for TCP, "" otherwise). */
  stateText(slot: number): string;
  /** Whether the GC may evict the entry under pressure even if ASSURED (l4proto can_early_drop). */
  canEarlyDrop(slot: number): boolean;
}
