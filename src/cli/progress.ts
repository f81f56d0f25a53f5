/**
 * The replay progress line, for a person watching a terminal: redrawn every
 * 250 ms from a timer (so a slow live stream shows it too), with percent and
 * ETA when the input's size is known, and the table's occupancy against
 * nf_conntrack_max. Nothing at all when stderr is not a terminal.
 */
import type { ReplayProgress } from "../replay/replay.js";
import { formatBytes } from "../report/summary.js";

/** Where the line goes: stderr in the CLI, a recorder in tests. */
export interface ProgressOutput {
  readonly isTTY?: boolean;
  write(text: string): unknown;
}

/** Options of {@link progressDisplay}. */
export interface ProgressOptions {
  /** `--no-progress` turns it off. */
  readonly enabled: boolean;
  /** Input size in bytes when known (a regular file), else null: no percent, no ETA. */
  readonly size: number | null;
  /** Bytes read so far, updated by the reader. */
  readonly read: { readonly bytes: number };
  /** Default process.stderr. */
  readonly out?: ProgressOutput;
  /** Redraw interval; default 250 ms. */
  readonly intervalMs?: number;
}

/** A progress display: `start` when the run begins (with a probe of its state), `stop` clears the line. */
export interface ProgressDisplay {
  readonly start: (probe: () => ReplayProgress) => void;
  readonly stop: () => void;
}

const n = (x: number): string => x.toLocaleString("en-US");

function eta(sec: number): string {
  return sec < 60 ? `${sec.toFixed(0)} s` : `${Math.floor(sec / 60)} min ${Math.round(sec % 60)} s`;
}

/** One progress line after `elapsedSec` seconds. */
export function progressLine(p: ReplayProgress, readBytes: number, size: number | null, elapsedSec: number): string {
  let text = `${n(p.packets)} packets, ${formatBytes(readBytes)}`;
  if (size !== null && size > 0 && readBytes > 0) {
    const f = Math.min(1, readBytes / size);
    text += ` (${(f * 100).toFixed(0)}%, ETA ${eta((elapsedSec * (1 - f)) / f)})`;
  }
  text += `, ${n(Math.round(p.packets / Math.max(elapsedSec, 0.001)))} packets/s, table ${n(p.entries)}`;
  text += p.max > 0 ? ` of ${n(p.max)} (${((100 * p.entries) / p.max).toFixed(1)}% of nf_conntrack_max)` : " (no limit)";
  return text;
}

/** The display of `ctlab replay`. */
export function progressDisplay(opts: ProgressOptions): ProgressDisplay {
  const out = opts.out ?? process.stderr;
  const every = opts.intervalMs ?? 250;
  let timer: NodeJS.Timeout | null = null;
  let shown = false;
  return {
    start(probe) {
      if (!opts.enabled || out.isTTY !== true) return;
      const t0 = Date.now();
      timer = setInterval(() => {
        out.write(`\r\x1b[K${progressLine(probe(), opts.read.bytes, opts.size, (Date.now() - t0) / 1000)}`);
        shown = true;
      }, every);
      timer.unref();
    },
    stop() {
      if (timer !== null) clearInterval(timer);
      timer = null;
      if (shown) out.write("\r\x1b[K");
      shown = false;
    },
  };
}
