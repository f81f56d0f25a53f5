import { readFileSync, statSync } from "node:fs";
import { parseSysctlAssignment, parseSysctlFile, resolveSysctls, SysctlError } from "../conntrack/sysctl.js";
import { emptyRuleset } from "../firewall/model.js";
import { isRoutingSysctl } from "../firewall/host.js";
import { replay } from "../replay/replay.js";
import type { ReplayRun } from "../replay/replay.js";
import { formatSummaryJson, formatSummaryText } from "../report/summary.js";
import { CliError } from "./errors.js";
import { LineWriter } from "./output.js";
import type { PreparedFirewall } from "./rules.js";

/** Options shared by the commands that run the engine. */
export interface EngineOptions {
  sysctl?: string[];
  sysctlFile?: string[];
}

/**
 * Collects `--sysctl-file` then `--sysctl` settings (the command line wins),
 * validated up front so that a typo fails before any packet is read.
 */
export function sysctlsFromOptions(opts: EngineOptions): Record<string, number> {
  const out: Record<string, number> = {};
  // Routing sysctls (net.ipv4.conf.*.rp_filter, …) describe the host: hostFromOptions reads them.
  opts = { ...opts, sysctl: (opts.sysctl ?? []).filter((a) => !isRoutingSysctl(a.slice(0, Math.max(0, a.indexOf("="))).trim())) };
  try {
    for (const file of opts.sysctlFile ?? []) {
      let text: string;
      try {
        text = readFileSync(file, "utf8");
      } catch (e) {
        throw new CliError(`Cannot read sysctl file "${file}": ${(e as NodeJS.ErrnoException).code ?? String(e)}`, 2);
      }
      Object.assign(out, parseSysctlFile(text, file).values);
    }
    for (const a of opts.sysctl ?? []) {
      const { name, value } = parseSysctlAssignment(a);
      out[name] = value;
    }
    resolveSysctls(out);
  } catch (e) {
    if (e instanceof SysctlError) throw new CliError(e.message, 1);
    throw e;
  }
  return out;
}

function parseSeed(v: unknown): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) {
    throw new CliError(`Invalid --seed "${String(v)}": must be an integer from 0 to 4294967295`);
  }
  return n;
}

/** Progress on stderr: only for a person watching a terminal. */
function progressPrinter(enabled: boolean): ((records: number, bytes: number) => void) | null {
  if (!enabled || !process.stderr.isTTY) return null;
  const t0 = Date.now();
  let last = 0;
  return (records, bytes) => {
    const now = Date.now();
    if (now - last < 250) return;
    last = now;
    const s = (now - t0) / 1000;
    process.stderr.write(
      `\r${records.toLocaleString("en-US")} packets, ${(bytes / 1048576).toFixed(1)} MiB, ${Math.round(records / Math.max(s, 0.001)).toLocaleString("en-US")} packets/s `,
    );
  };
}

/** Writes the requested outputs of a finished run; returns the exit code. */
export function writeOutputs(
  run: ReplayRun,
  opts: {
    json?: boolean;
    quiet?: boolean;
    table?: LineWriter | null;
    events?: LineWriter | null;
    /** The firewall section (`replay --rules`): appended to the summary, and under "firewall" in JSON. */
    firewall?: { text: string; json: Record<string, unknown>; stdoutTaken: boolean; key?: string } | null;
  },
): number {
  const stdoutTaken = opts.table?.toStdout === true || opts.events?.toStdout === true || opts.firewall?.stdoutTaken === true;
  if (opts.table) {
    for (const line of run.tracker.formatTable({ extended: true })) opts.table.write(line);
    opts.table.close();
  }
  opts.events?.close();
  const fw = opts.firewall ?? null;
  if (opts.json) {
    process.stdout.write(fw === null ? formatSummaryJson(run.summary) : JSON.stringify({ ...run.summary, [fw.key ?? "firewall"]: fw.json }, null, 2) + "\n");
  } else if (!opts.quiet) {
    const text = formatSummaryText(run.summary) + (fw === null ? "" : fw.text);
    if (stdoutTaken) process.stderr.write(text);
    else process.stdout.write(text);
  }
  if (run.summary.error) {
    process.stderr.write(`ctlab: ${run.summary.error.message}\n`);
    return 2;
  }
  return 0;
}

/** `ctlab replay`. */
export async function replayCommand(capture: string, opts: Record<string, unknown>): Promise<number> {
  const table = typeof opts.table === "string" ? opts.table : null;
  const events = typeof opts.events === "string" ? opts.events : null;
  const json = opts.json === true;
  const counters = typeof opts.counters === "string" ? opts.counters : null;
  if (counters !== null && typeof opts.rules !== "string") throw new CliError('Option "--counters" needs "--rules": there are no rule counters without a ruleset');
  if (capture === "-" && opts.rules === "-") throw new CliError('Options "replay -" and "--rules -" both read standard input: give one of them a file');
  if (typeof opts.verdicts === "string" && typeof opts.rules !== "string") throw new CliError('Option "--verdicts" needs "--rules": there are no verdicts without a ruleset');
  const toStdout = [
    table === "-" ? "--table -" : null,
    events === "-" ? "--events -" : null,
    counters === "-" ? "--counters -" : null,
    opts.verdicts === "-" ? "--verdicts -" : null,
    json ? "--json" : null,
  ].filter(
    (x): x is string => x !== null,
  );
  if (toStdout.length > 1) {
    throw new CliError(`Options ${toStdout.map((o) => `"${o}"`).join(" and ")} all write to standard output: send all but one to a file`);
  }
  if (capture !== "-") {
    try {
      if (!statSync(capture).isFile()) throw new CliError(`Cannot read capture "${capture}": not a regular file`, 2);
    } catch (e) {
      if (e instanceof CliError) throw e;
      throw new CliError(`Cannot read capture "${capture}": ${(e as NodeJS.ErrnoException).code ?? String(e)}`, 2);
    }
  } else if (process.stdin.isTTY) {
    throw new CliError('Standard input is a terminal: pipe a capture into "ctlab replay -" (e.g. tcpdump -w - | ctlab replay -)');
  }
  const sysctls = sysctlsFromOptions(opts as EngineOptions);
  const seed = parseSeed(opts.seed);
  let fw: PreparedFirewall | null = null;
  let rulesMod: typeof import("./rules.js") | null = null;
  let hostOnly: import("../firewall/host.js").HostModel | null = null;
  if (typeof opts.rules === "string") {
    rulesMod = await import("./rules.js");
    fw = rulesMod.prepareFirewall(opts);
  } else {
    for (const o of ["ipset", "allowUnsupported", "enableHooks"] as const) {
      const v = opts[o];
      if (v !== undefined && v !== false && !(Array.isArray(v) && v.length === 0)) {
        throw new CliError(`Option "--${o.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase())}" needs "--rules": it describes the ruleset`);
      }
    }
    const hostGiven = (["local", "localFromHost", "iif", "oif"] as const).some((o) => opts[o] !== undefined && opts[o] !== false && !(Array.isArray(opts[o]) && (opts[o] as unknown[]).length === 0));
    if (hostGiven) {
      // The host without a ruleset: conntrack on every packet as the plain replay does,
      // with the route decision deciding what is confirmed.
      rulesMod = await import("./rules.js");
      hostOnly = rulesMod.hostFromOptions(opts as import("./rules.js").HostCliOptions);
    }
  }
  const tableOut = table !== null ? new LineWriter(table) : null;
  const eventsOut = events !== null ? new LineWriter(events) : null;
  const progress = progressPrinter(opts.progress !== false);
  const run = await replay(capture, {
    sysctls,
    clock: opts.clock === "frozen" ? "frozen" : "capture",
    defrag: opts.defrag !== false,
    ...(seed !== undefined ? { seed } : {}),
    onEvent: eventsOut ? (line) => eventsOut.write(line) : null,
    eventTimestamps: opts.eventsTimestamps === true,
    onProgress: progress,
    firewall: fw?.options ?? (hostOnly !== null ? { ruleset: emptyRuleset("nft", "(no ruleset)"), host: hostOnly, enableHooks: true } : null),
  });
  if (progress) process.stderr.write("\r\x1b[K");
  const firewall = fw !== null && rulesMod !== null ? rulesMod.finishFirewall(fw, run) : hostOnly !== null && rulesMod !== null && run.path !== null ? rulesMod.hostSection(run.path) : null;
  return writeOutputs(run, { json, quiet: opts.quiet === true, table: tableOut, events: eventsOut, firewall });
}
