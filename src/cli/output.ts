import { closeSync, openSync, writeSync } from "node:fs";
import type { ReplayRun } from "../replay/replay.js";
import { formatSummaryJson, formatSummaryText } from "../report/summary.js";
import { CliError } from "./errors.js";
import { EXIT_PIPE } from "./pipe.js";

/**
 * Buffered line output to a file or to standard output ("-"). Lines are
 * gathered into ~64 KiB chunks so that a million event lines cost a few
 * hundred writes, not a million.
 */
export class LineWriter {
  readonly #fd: number | null;
  readonly #path: string;
  #buf: string[] = [];
  #size = 0;
  lines = 0;

  constructor(path: string) {
    this.#path = path;
    if (path === "-") {
      this.#fd = null;
    } else {
      try {
        this.#fd = openSync(path, "w");
      } catch (e) {
        throw new CliError(`Cannot write "${path}": ${(e as NodeJS.ErrnoException).code ?? String(e)}`, 2);
      }
    }
  }

  get toStdout(): boolean {
    return this.#fd === null;
  }

  write(line: string): void {
    this.#buf.push(line);
    this.#size += line.length + 1;
    this.lines++;
    if (this.#size >= 65536) this.flush();
  }

  flush(): void {
    if (this.#buf.length === 0) return;
    const text = this.#buf.join("\n") + "\n";
    this.#buf = [];
    this.#size = 0;
    if (this.#fd === null) process.stdout.write(text);
    else {
      try {
        writeSync(this.#fd, text);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        // A FIFO or `>(process substitution)` whose reader went away.
        if (code === "EPIPE") process.exit(EXIT_PIPE);
        throw new CliError(`Cannot write "${this.#path}": ${code ?? String(e)}`, 2);
      }
    }
  }

  close(): void {
    this.flush();
    if (this.#fd !== null) closeSync(this.#fd);
  }
}

/** The firewall section of `replay --rules`: appended to the summary, and under "firewall" in JSON. */
export interface FirewallSection {
  text: string;
  json: Record<string, unknown>;
  stdoutTaken: boolean;
  /** Top-level JSON key of the section (default "firewall"; "host" for the host without a ruleset). */
  key?: string;
}

/**
 * Writes the requested outputs of a finished run; returns the exit code.
 * The human summary goes to stdout unless another output took it (then to
 * stderr). A capture that could not be read at all gets only its error.
 */
export function writeOutputs(
  run: Pick<ReplayRun, "summary"> & { tracker?: ReplayRun["tracker"]; table?: readonly string[] },
  opts: {
    json?: boolean;
    quiet?: boolean;
    table?: LineWriter | null;
    events?: LineWriter | null;
    firewall?: FirewallSection | null;
  },
): number {
  const s = run.summary;
  const stdoutTaken = opts.table?.toStdout === true || opts.events?.toStdout === true || opts.firewall?.stdoutTaken === true;
  if (opts.table) {
    for (const line of run.table ?? run.tracker?.formatTable({ extended: true }) ?? []) opts.table.write(line);
    opts.table.close();
  }
  opts.events?.close();
  if (s.error !== null && s.capture.records === 0 && !s.interrupted) {
    // Nothing was read: a summary of zeros would only hide the error.
    process.stderr.write(`ctlab: ${s.error.message}\n`);
    return 2;
  }
  const fw = opts.firewall ?? null;
  if (opts.json) {
    process.stdout.write(fw === null ? formatSummaryJson(s) : JSON.stringify({ ...s, [fw.key ?? "firewall"]: fw.json }, null, 2) + "\n");
  } else if (!opts.quiet) {
    const text = formatSummaryText(s) + (fw === null ? "" : fw.text);
    if (stdoutTaken) process.stderr.write(text);
    else process.stdout.write(text);
  } else {
    for (const w of s.warnings) process.stderr.write(`ctlab: warning: ${w}\n`);
  }
  if (s.error) {
    process.stderr.write(`ctlab: ${s.error.message}\n`);
    return 2;
  }
  const decoded = s.packets.total - s.capture.unsupported_link_types.reduce((a, l) => a + l.frames, 0);
  if (s.capture.records > 0 && decoded === 0) {
    process.stderr.write(
      `ctlab: Nothing in "${s.input}" could be decoded: every frame has a link type ctlab does not support (${s.capture.unsupported_link_types.map((l) => l.link_type).join(", ")})\n`,
    );
    return 2;
  }
  return 0;
}
