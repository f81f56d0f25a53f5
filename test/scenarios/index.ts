/**
 * The scenario registry.
 *
 * Every scenario owns an address block (its 1-based position here): IPv4
 * 10.<block>.0.0/16 and IPv6 fd00:0:0:<block hex>::/64. Scenarios use only
 * their own block, so any set of them can be concatenated into one capture
 * and the results split again by address.
 *
 * @example
 * import { SCENARIOS, buildScenario, writeCapture } from "./index.js";
 * const frames = buildScenario(SCENARIOS[0]);
 * writeCapture("/tmp/s.pcap", frames);
 */
import { PcapWriter } from "../../src/packet/writer.js";
import { BASE_TIME, makeContext } from "./dsl.js";
import { otherScenarios } from "./other.js";
import { tableFullChurnScenarios, tableFullScenarios } from "./tablefull.js";
import { timingScenarios } from "./timing.js";
import { edgeScenarios } from "./edge.js";
import { sysctlScenarios } from "./sysctl.js";
import { fuzzScenarios } from "./fuzz.js";
import { tcpTableScenarios } from "./tcp-table.js";
import { tcpScenarios } from "./tcp.js";
import type { Scenario, TimedFrame } from "./types.js";
import { udpIcmpScenarios } from "./udp-icmp.js";

export type { Scenario, ScenarioContext, TimedFrame, KernelRunSpec } from "./types.js";
export { TcpConv, makeContext, BASE_TIME } from "./dsl.js";
export { CHURN_HOSTS, CHURN_MAX, TABLEFULL_MAX, TABLEFULL_HASHSIZE } from "./tablefull.js";

/** All scenarios, in block order. Append new ones at the end to keep blocks stable. */
export const SCENARIOS: readonly Scenario[] = [
  ...tcpTableScenarios,
  ...tcpScenarios,
  ...udpIcmpScenarios,
  ...otherScenarios,
  ...tableFullScenarios,
  ...timingScenarios,
  ...edgeScenarios,
  ...sysctlScenarios,
  ...fuzzScenarios,
  ...tableFullChurnScenarios,
];

const byName = new Map<string, number>();
SCENARIOS.forEach((s, i) => {
  if (byName.has(s.name)) throw new Error(`Duplicate scenario name "${s.name}"`);
  byName.set(s.name, i + 1);
});

export function findScenario(name: string): Scenario {
  const b = byName.get(name);
  const s = b === undefined ? undefined : SCENARIOS[b - 1];
  if (s === undefined) throw new Error(`Unknown scenario "${name}": known are ${[...byName.keys()].join(", ")}`);
  return s;
}

/** The address block of a scenario. */
export function scenarioBlock(s: Scenario): number {
  const b = byName.get(s.name);
  if (b === undefined) throw new Error(`Scenario "${s.name}" is not registered`);
  return b;
}

/** IPv4 and IPv6 prefixes of a scenario's block (for splitting results). */
export function scenarioPrefixes(s: Scenario): { v4: string; v6: string } {
  const b = scenarioBlock(s);
  return { v4: `10.${b}.0.0/16`, v6: `fd00:0:0:${b.toString(16)}::/64` };
}

/** Builds one scenario's frames, starting at `startSec`. */
export function buildScenario(s: Scenario, startSec = BASE_TIME): TimedFrame[] {
  const ctx = makeContext(scenarioBlock(s), startSec);
  s.build(ctx);
  return ctx.frames;
}

export interface BatchPart {
  scenario: Scenario;
  block: number;
  /** Index of the scenario's first frame in the batch (-1 when merged by time). */
  first: number;
  count: number;
}

/**
 * Concatenates scenarios into one capture. Each starts one second after the
 * previous one ended, so timestamps only grow.
 */
export function buildBatch(list: readonly Scenario[]): { frames: TimedFrame[]; parts: BatchPart[] } {
  const frames: TimedFrame[] = [];
  const parts: BatchPart[] = [];
  let start = BASE_TIME;
  for (const s of list) {
    const f = buildScenario(s, start);
    parts.push({ scenario: s, block: scenarioBlock(s), first: frames.length, count: f.length });
    for (const x of f) frames.push(x);
    const last = f[f.length - 1];
    start = (last?.tsSec ?? start) + 1;
  }
  return { frames, parts };
}

/**
 * Builds scenarios that all start at `startSec` and merges their frames by
 * timestamp (stable: a scenario's own order is kept). For real-time batches,
 * where laying scenarios end to end would add up their durations.
 */
export function buildMerged(list: readonly Scenario[], startSec = BASE_TIME): { frames: TimedFrame[]; parts: BatchPart[] } {
  const all: Array<{ f: TimedFrame; s: number; i: number }> = [];
  const parts: BatchPart[] = [];
  list.forEach((s, si) => {
    const f = buildScenario(s, startSec);
    parts.push({ scenario: s, block: scenarioBlock(s), first: -1, count: f.length });
    f.forEach((x, i) => all.push({ f: x, s: si, i }));
  });
  all.sort((a, b) => a.f.tsSec - b.f.tsSec || a.f.tsNsec - b.f.tsNsec || a.s - b.s || a.i - b.i);
  return { frames: all.map((x) => x.f), parts };
}

/** Writes frames as a classic Ethernet pcap with nanosecond timestamps. */
export function writeCapture(path: string, frames: readonly TimedFrame[]): void {
  const w = new PcapWriter(path, { nanosecond: true });
  try {
    for (const f of frames) w.writePacket(f.tsSec, f.tsNsec, f.frame);
  } finally {
    w.close();
  }
}
