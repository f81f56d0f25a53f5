/**
 * Shape of a scenario capture: a named function that returns timestamped
 * frames. Scenarios are used by the kernel comparison (many concatenated into
 * one capture), by unit tests and by the CLI demo.
 */

import type { TimedFrame } from "../../src/sim/time.js";

/** One frame of a scenario with its capture timestamp (the generator's one timestamp shape). */
export type { TimedFrame };

/** Where a scenario's addresses come from: every scenario owns one block. */
export interface ScenarioContext {
  /** The block number (1–250): IPv4 10.<block>.0.0/16, IPv6 fd00:0:0:<block hex>::/64. */
  readonly block: number;
  /** An IPv4 address of the block, e.g. v4(1) = 10.<block>.0.1. */
  v4(host: number): string;
  /** An IPv6 address of the block, e.g. v6(1) = fd00:0:0:<block>::1. */
  v6(host: number): string;
  /** Appends a frame at the current time, then advances the clock by 1 ms. */
  emit(frame: Uint8Array): void;
  /** Advances the scenario clock. */
  wait(seconds: number): void;
  /** The frames emitted so far. */
  readonly frames: TimedFrame[];
}

/** How a scenario has to be run against the kernel. */
export interface KernelRunSpec {
  /** Extra sysctls for the router namespace (and the same for ctlab). */
  sysctls?: Readonly<Record<string, number>>;
  /** Global `nf_conntrack_max` / hash size for the run (table-full tests): run alone. */
  globalLimits?: { max: number; hashsize: number };
  /** Run in its own namespace rather than batched with others. */
  alone?: boolean;
  /**
   * Timing matters: replay at the capture's own pace and compare with ctlab
   * following the capture clock (instead of frozen time). Such scenarios are
   * merged by timestamp into one real-time batch.
   */
  realtime?: boolean;
}

export interface Scenario {
  /** Unique kebab-case name. */
  name: string;
  /** One line: what traffic the scenario holds. */
  description: string;
  /** What the kernel does with it (documentation; the comparison uses the real kernel). */
  expected: string;
  /** Fills the context with frames (addresses only from `ctx`). */
  build(ctx: ScenarioContext): void;
  /** Special requirements for the kernel run. */
  kernel?: KernelRunSpec;
  /** Tags for selection (e.g. "tcp", "table", "icmp"). */
  tags: readonly string[];
}
