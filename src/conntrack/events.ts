/**
 * Connection events (nf_conntrack_ecache.c, ctnetlink_conntrack_event): what
 * `conntrack -E` receives. The tracker caches IPCT_* bits per entry while a
 * packet is processed and delivers them as one message when the packet is
 * confirmed; DESTROY is delivered at once.
 */
import type { EventType } from "./constants.js";
import type { EntryReader } from "./entry.js";
import { eventLine } from "./format.js";
import type { EventFormatOptions } from "./format.js";

export { EVENT_TYPE } from "./constants.js";
export type { EventType } from "./constants.js";
export type { EventFormatOptions } from "./format.js";

/**
 * Receives events. Called synchronously from the tracker; the entry reader
 * is valid only during the call (a DESTROY frees the entry right after, and
 * the reader is reused for the next event), so a sink formats or copies what
 * it needs before returning, e.g. with `formatEvent(type, bits, entry, timeMs)`.
 */
export interface EventSink {
  /**
   * @param type NEW, UPDATE or DESTROY
   * @param bits the IPCT_* bits of the message (decide which attributes it carries)
   * @param entry the entry, as it is when the event is delivered
   * @param timeMs clock time of the event in milliseconds
   */
  onEvent(type: EventType, bits: number, entry: EntryReader, timeMs: number): void;
}

/**
 * One `conntrack -E` line of an event (`-o extended`, `-o timestamp` by
 * options): what an EventSink receives, printed as conntrack-tools does.
 */
export function formatEvent(type: EventType, bits: number, entry: EntryReader, timeMs: number, options: EventFormatOptions = {}): string {
  return eventLine(entry, type, bits, timeMs, options);
}

/** An EventSink that keeps each event as the line `conntrack -E` prints. */
export class EventLineSink implements EventSink {
  /** Lines in delivery order. */
  readonly lines: string[] = [];
  private readonly options: EventFormatOptions;

  constructor(options: EventFormatOptions = {}) {
    this.options = options;
  }

  onEvent(type: EventType, bits: number, entry: EntryReader, timeMs: number): void {
    this.lines.push(eventLine(entry, type, bits, timeMs, this.options));
  }
}
