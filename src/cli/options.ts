/**
 * Options several commands share: how they are declared (so that `replay`,
 * `rules compare`, `demo` and the commands to come spell and document them
 * alike) and how their values are checked. Nothing here runs a command, so
 * every command module may import it without importing another command.
 * It imports no engine module: main.ts loads it at start-up for the
 * declarations (the sysctl values are read by sysctl-options.ts).
 */
import { readFileSync, statSync } from "node:fs";
import type { Command } from "commander";
import { Option } from "commander";
import { CliError } from "./errors.js";

/** Commander's collector for repeatable options. */
export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

// ---------------------------------------------------------------------------
// Declarations

/** `--sysctl`, `--sysctl-file`. */
export function addSysctlOptions(cmd: Command): Command {
  return cmd
    .option("--sysctl <name=value>", "set a conntrack sysctl, e.g. nf_conntrack_max=65536 (repeatable)", collect, [] as string[])
    .option("--sysctl-file <file>", "read sysctls from a sysctl.conf-style file or `sysctl -a` output (repeatable)", collect, [] as string[]);
}

/** `--clock`. */
export function addClockOption(cmd: Command): Command {
  return cmd.addOption(
    new Option("--clock <mode>", "capture: capture timestamps drive timeouts; frozen: every packet at one instant")
      .choices(["capture", "frozen"])
      .default("capture"),
  );
}

/** `--local`, `--local-from-host`, `--iif`, `--oif`: the host a ruleset runs on. */
export function addHostOptions(cmd: Command): Command {
  return cmd
    .option(
      "--local <addr...>",
      "the host's own addresses, [IFACE=]ADDR[/LEN]: packets to them go to INPUT, from them start in OUTPUT (default: none, every packet is forwarded)",
    )
    .option("--local-from-host", "take the host's addresses and routes from this machine (ip -j addr, ip -j route)")
    .option("--iif <name>", "interface every packet arrives on (default: the route back to its source)")
    .option("--oif <name>", "interface every forwarded or local packet leaves by (default: the route to its destination)");
}

/** `--ipset`, `--allow-unsupported`: how to read a ruleset. */
export function addRulesetReadOptions(cmd: Command): Command {
  return cmd
    .option("--ipset <file>", "ipset save output for -m set matches")
    .option("--allow-unsupported", "keep rules with unsupported matches or targets as never-matching instead of failing");
}

/** `--top N` of the census. */
export function addTopOption(cmd: Command): Command {
  return cmd.option("--top <n>", "items per list in the census of who fills the table", "10");
}

// ---------------------------------------------------------------------------
// Values

/**
 * An option's value as an error message quotes it. Commander hands over a string, a boolean
 * or an array of strings (a repeated option), which String() spells as the user typed them.
 */
export function optionText(v: unknown): string {
  return String(v);
}

/** `--seed`: a 32-bit unsigned integer. */
export function parseSeed(v: unknown): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (typeof v === "boolean" || !Number.isInteger(n) || n < 0 || n > 0xffffffff) {
    throw new CliError(`Invalid --seed "${optionText(v)}": must be an integer from 0 to 4294967295`);
  }
  return n;
}

/** `--threads`: 1 to 64 worker threads; undefined when not given. */
export function parseThreads(v: unknown): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (typeof v === "boolean" || !Number.isInteger(n) || n < 1 || n > 64)
    throw new CliError(`Invalid --threads "${typeof v === "string" ? v : JSON.stringify(v)}": must be an integer from 1 to 64`);
  return n;
}

/** `--top`: 0 to 1000. */
export function parseTop(v: unknown): number {
  if (v === undefined) return 10;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 1000) throw new CliError(`Invalid --top "${optionText(v)}": must be an integer from 0 to 1000`);
  return n;
}

/**
 * Refuses options that would all write to standard output (a table and a
 * JSON summary interleaved are neither).
 * @param outputs option text ("--table -") and whether it writes to stdout
 */
export function refuseStdoutConflicts(outputs: ReadonlyArray<readonly [string, boolean]>): void {
  const taken = outputs.filter(([, on]) => on).map(([o]) => o);
  if (taken.length > 1) {
    throw new CliError(`Options ${taken.map((o) => `"${o}"`).join(" and ")} all write to standard output: send all but one to a file`);
  }
}

/** What `checkInput` found. */
export interface InputInfo {
  /** Size in bytes for a regular file (progress shows percent and ETA), else null (a pipe, FIFO, device). */
  size: number | null;
}

/**
 * Checks that a named input can be read: a regular file, or any readable
 * stream (a FIFO, `<(process substitution)`, /dev/stdin). "-" is standard
 * input, refused when it is a terminal.
 * @throws {CliError} exit code 2 for missing, unreadable or directory inputs
 */
export function checkInput(path: string, what: string): InputInfo {
  if (path === "-") {
    if (process.stdin.isTTY) throw new CliError(`Standard input is a terminal: pipe the ${what} in, or name a file`);
    return { size: null };
  }
  try {
    const st = statSync(path);
    if (st.isDirectory()) throw new CliError(`Cannot read ${what} "${path}": is a directory`, 2);
    return { size: st.isFile() ? st.size : null };
  } catch (e) {
    if (e instanceof CliError) throw e;
    throw new CliError(`Cannot read ${what} "${path}": ${(e as NodeJS.ErrnoException).code ?? String(e)}`, 2);
  }
}

/**
 * Reads a whole text input: a file, a FIFO or process substitution, or "-"
 * for standard input.
 * @throws {CliError} exit code 2 when it cannot be read
 */
export function readInputText(path: string, what: string): string {
  checkInput(path, what);
  try {
    return readFileSync(path === "-" ? 0 : path, "utf8");
  } catch (e) {
    throw new CliError(`Cannot read ${what} "${path}": ${(e as NodeJS.ErrnoException).code ?? String(e)}`, 2);
  }
}
