/**
 * Scenario contexts: the clock and the address block of one scenario. The
 * conversation DSL itself lives in src/sim (TcpConv), shared with the demo
 * and the simulator.
 */
import { FrameLog } from "../../src/sim/conv.js";
import type { ScenarioContext } from "./types.js";

export { TcpConv } from "../../src/sim/conv.js";
export type { Side, SegOptions, TcpConvOptions } from "../../src/sim/conv.js";

/** Capture time of the first frame of every scenario (2023-11-14T22:13:20Z). */
export const BASE_TIME = 1_700_000_000;

export function makeContext(block: number, startSec = BASE_TIME): ScenarioContext {
  if (!Number.isInteger(block) || block < 1 || block > 250) {
    throw new RangeError(`Invalid scenario block "${block}": must be 1–250`);
  }
  // Microseconds keep every timestamp exact in a classic (µs) pcap; 1 ms between frames.
  const log = new FrameLog(startSec * 1e6, 1000);
  return {
    block,
    frames: log.frames,
    v4: (host) => `10.${block}.${(host >> 8) & 0xff}.${host & 0xff}`,
    v6: (host) => `fd00:0:0:${block.toString(16)}::${host.toString(16)}`,
    emit: (frame) => log.emit(frame),
    wait: (seconds) => log.wait(seconds),
  };
}
