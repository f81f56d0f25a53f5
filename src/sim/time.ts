/**
 * Time in generated traffic: integer microseconds since the Unix epoch.
 *
 * One representation for every generator (scenario DSL, demo, benchmarks,
 * simulator): exact in a double until the year 2255, exactly what a classic
 * (microsecond) pcap stores, and split into the `(tsSec, tsNsec)` pair that
 * PacketView, the pcap writer and the kernel injector use only at the edge.
 */

/** Microseconds since the Unix epoch (an integer). */
export type Micros = number;

/** Whole seconds of a time. */
export function secOf(us: Micros): number {
  return Math.floor(us / 1e6);
}

/** Nanoseconds within the second of a time. */
export function nsecOf(us: Micros): number {
  return (us - Math.floor(us / 1e6) * 1e6) * 1000;
}

/** The replay clock's reading of a time: what `sec * 1000 + floor(nsec / 1e6)` gives for its record. */
export function msOf(us: Micros): number {
  return Math.floor(us / 1000);
}

/** A time in seconds (possibly fractional) rounded to the microsecond. */
export function fromSeconds(s: number): Micros {
  return Math.round(s * 1e6);
}

/** One generated frame with its capture timestamp. */
export interface TimedFrame {
  tsSec: number;
  tsNsec: number;
  /** Ethernet frame (possibly VLAN/PPPoE framed) unless a link type says otherwise. */
  frame: Uint8Array;
}

/** A TimedFrame at time `us`. */
export function timedFrame(us: Micros, frame: Uint8Array): TimedFrame {
  return { tsSec: secOf(us), tsNsec: nsecOf(us), frame };
}
