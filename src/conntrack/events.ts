/**
 * Connection events (nf_conntrack_ecache.c, ctnetlink_conntrack_event): what
 * `conntrack -E` receives. The tracker caches IPCT_* bits per entry while a
 * packet is processed and delivers them as one message when the packet is
 * confirmed; DESTROY is delivered at once.
 */
import type { Tracker } from "./tracker.js";

/** Message types, as libnetfilter_conntrack's NFCT_T_*. */
export const EVENT_TYPE = {
  NEW: 1,
  UPDATE: 2,
  DESTROY: 4,
} as const;

export type EventType = (typeof EVENT_TYPE)[keyof typeof EVENT_TYPE];

/**
 * Receives events. Called synchronously from the tracker; the entry `slot`
 * is valid only during the call (a DESTROY frees it right after), so a sink
 * formats or copies what it needs before returning, e.g. with
 * `tracker.formatEvent(type, bits, slot)`.
 */
export interface EventSink {
  /**
   * @param type NEW, UPDATE or DESTROY
   * @param bits the IPCT_* bits of the message (decide which attributes it carries)
   * @param slot the entry
   * @param timeMs clock time of the event in milliseconds
   * @param tracker the tracker, for formatting and accessors
   */
  onEvent(type: EventType, bits: number, slot: number, timeMs: number, tracker: Tracker): void;
}

/** Options of `conntrack -E -o ...` that change the printed line. */
export interface EventFormatOptions {
  /** `-o extended`: the layer-3 name and number first. */
  readonly extended?: boolean;
  /** `-o timestamp`: a `[sec.usec]\t` prefix with the event time. */
  readonly timestamp?: boolean;
}

/** An EventSink that keeps each event as the line `conntrack -E` prints. */
export class EventLineSink implements EventSink {
  /** Lines in delivery order. */
  readonly lines: string[] = [];
  private readonly options: EventFormatOptions;

  constructor(options: EventFormatOptions = {}) {
    this.options = options;
  }

  onEvent(type: EventType, bits: number, slot: number, timeMs: number, tracker: Tracker): void {
    this.lines.push(tracker.formatEvent(type, bits, slot, timeMs, this.options));
  }
}
