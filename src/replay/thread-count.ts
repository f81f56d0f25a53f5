/** How many worker threads a replay gets by default (apart from threads.ts, which a one-thread replay never loads). */
import { availableParallelism } from "node:os";

/** Inputs at least this large get the available cores by default. */
export const THREADS_AUTO_BYTES = 64 << 20;

/**
 * The default `--threads`: the cores available for a capture file of at
 * least THREADS_AUTO_BYTES, else 1 (starting workers costs more than they
 * save on a small capture; a pipe's size is unknown).
 */
export function defaultThreads(inputBytes: number | null, cores: number = availableParallelism()): number {
  if (inputBytes === null || inputBytes < THREADS_AUTO_BYTES) return 1;
  return Math.max(1, Math.min(cores, 16));
}
