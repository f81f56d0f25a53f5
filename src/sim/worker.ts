/** A worker thread of a sweep: runs one RunSpec and posts its RunData back. */
import { parentPort, workerData } from "node:worker_threads";
import { runSpec } from "./sweep.js";
import type { RunSpec } from "./sweep.js";

const { spec, stop } = workerData as { spec: RunSpec; stop: SharedArrayBuffer };
const flag = new Int32Array(stop);
try {
  const result = runSpec(spec, { onProgress: (f) => parentPort?.postMessage({ progress: f }), shouldStop: () => Atomics.load(flag, 0) !== 0 });
  parentPort?.postMessage({ result });
} catch (e) {
  parentPort?.postMessage({ error: e instanceof Error ? e.message : String(e) });
}
