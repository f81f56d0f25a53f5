/**
 * `ctlab replay`: a capture through the engine, like a Unix tool — any
 * readable input (file, FIFO, process substitution, stdin), a closed pipe ends
 * it quietly, SIGINT/SIGTERM finish it as tcpdump does (the table, events and
 * summary of what was read, then exit 130/143), progress on a terminal.
 */
import { createReadStream } from "node:fs";
import type { HostModel } from "../firewall/host.js";
import { emptyRuleset } from "../firewall/model.js";
import { replay } from "../replay/replay.js";
import type { ReplayRun } from "../replay/replay.js";
import { defaultThreads } from "../replay/thread-count.js";
import { CliError } from "./errors.js";
import { progressDisplay } from "./progress.js";
import { checkInput, parseSeed, parseThreads, parseTop, refuseStdoutConflicts } from "./options.js";
import { engineSysctls } from "./sysctl-options.js";
import { LineWriter, writeOutputs } from "./output.js";
import { checkPolicyOptions, policyFromCli } from "../conntrack/policy/registry.js";
import type { PolicyConfig } from "../conntrack/policy/registry.js";
import { PolicyError } from "../conntrack/policy/policy.js";
// Types only: the module itself is imported on demand, when --rules or a host option asks for it.
import type * as RulesModule from "./rules.js";
import type { PreparedFirewall } from "./rules.js";

/** Exit status after a signal: 128 + its number, as a shell reports a process the signal killed. */
const SIGNAL_EXIT: Readonly<Record<string, number>> = { SIGINT: 130, SIGTERM: 143 };

/**
 * Reads a stream in chunks until it ends or `signal` fires (then at once, even
 * while a slow live stream sends nothing), counting the bytes read for progress.
 */
async function* interruptible(stream: NodeJS.ReadableStream, signal: AbortSignal, counter: { bytes: number }): AsyncGenerator<Uint8Array> {
  const it = (stream as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
  let onAbort: () => void = () => {};
  const aborted = new Promise<"aborted">((resolve) => {
    onAbort = () => resolve("aborted");
    signal.addEventListener("abort", onAbort, { once: true });
  });
  try {
    for (;;) {
      if (signal.aborted) return;
      const r = await Promise.race([it.next(), aborted]);
      if (r === "aborted" || r.done === true) return;
      counter.bytes += r.value.length;
      yield r.value;
    }
  } finally {
    signal.removeEventListener("abort", onAbort);
    // An unfinished read would keep the process alive (stdin of a live stream above all).
    (stream as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.();
  }
}

/** `--policy NAME` with its `--policy-opt`s, or undefined (kernel, not reported). */
function policyOption(opts: Record<string, unknown>): PolicyConfig | undefined {
  const popts = Array.isArray(opts.policyOpt) ? opts.policyOpt.filter((x): x is string => typeof x === "string") : [];
  try {
    checkPolicyOptions(popts);
    if (typeof opts.policy !== "string") {
      if (popts.length > 0) throw new CliError('Option "--policy-opt" needs "--policy": it sets options of a table policy');
      return undefined;
    }
    return policyFromCli(opts.policy, popts);
  } catch (e) {
    if (e instanceof PolicyError) throw new CliError(e.message);
    throw e;
  }
}

/** `ctlab replay`. */
export async function replayCommand(capture: string, opts: Record<string, unknown>): Promise<number> {
  const table = typeof opts.table === "string" ? opts.table : null;
  const events = typeof opts.events === "string" ? opts.events : null;
  const json = opts.json === true;
  const counters = typeof opts.counters === "string" ? opts.counters : null;
  const verdicts = typeof opts.verdicts === "string" ? opts.verdicts : null;
  if (counters !== null && typeof opts.rules !== "string")
    throw new CliError('Option "--counters" needs "--rules": there are no rule counters without a ruleset');
  if (capture === "-" && opts.rules === "-") throw new CliError('Options "replay -" and "--rules -" both read standard input: give one of them a file');
  if (verdicts !== null && typeof opts.rules !== "string") throw new CliError('Option "--verdicts" needs "--rules": there are no verdicts without a ruleset');
  refuseStdoutConflicts([
    ["--table -", table === "-"],
    ["--events -", events === "-"],
    ["--counters -", counters === "-"],
    ["--verdicts -", verdicts === "-"],
    ["--json", json],
  ]);
  const input = checkInput(capture, "capture");
  const engine = engineSysctls(opts);
  const sysctls = engine.conntrack;
  const seed = parseSeed(opts.seed);
  const policy = policyOption(opts);
  const top = parseTop(opts.top);
  const threadsGiven = parseThreads(opts.threads);
  let fw: PreparedFirewall | null = null;
  let rulesMod: typeof RulesModule | null = null;
  let hostOnly: HostModel | null = null;
  if (typeof opts.rules === "string") {
    rulesMod = await import("./rules.js");
    fw = rulesMod.prepareFirewall(opts, engine.routing);
  } else {
    for (const o of ["ipset", "allowUnsupported", "enableHooks"] as const) {
      const v = opts[o];
      if (v !== undefined && v !== false && !(Array.isArray(v) && v.length === 0)) {
        throw new CliError(`Option "--${o.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase())}" needs "--rules": it describes the ruleset`);
      }
    }
    const hostGiven = (["local", "localFromHost", "iif", "oif"] as const).some(
      (o) => opts[o] !== undefined && opts[o] !== false && !(Array.isArray(opts[o]) && (opts[o] as unknown[]).length === 0),
    );
    if (hostGiven) {
      // The host without a ruleset: conntrack on every packet as the plain replay does,
      // with the route decision deciding what is confirmed.
      rulesMod = await import("./rules.js");
      hostOnly = rulesMod.hostFromOptions(opts, engine.routing);
    }
  }
  const oneThreadOnly = fw !== null || hostOnly !== null || events !== null || policy !== undefined;
  if (threadsGiven !== undefined && threadsGiven > 1 && oneThreadOnly) {
    const why =
      fw !== null || hostOnly !== null ? "a ruleset or host options" : events !== null ? '"--events"' : '"--policy" (a table policy sees the whole table)';
    throw new CliError(`Option "--threads ${threadsGiven}" cannot be used with ${why}: they need one thread`);
  }
  const threads = threadsGiven ?? (oneThreadOnly ? 1 : defaultThreads(input.size));
  const tableOut = table !== null ? new LineWriter(table) : null;
  const eventsOut = events !== null ? new LineWriter(events) : null;

  // SIGINT/SIGTERM stop reading; what was read is reported as usual. A second signal ends at once.
  const stop = new AbortController();
  // Set by the signal handler: typed wide so the reads after the await are not narrowed to null.
  let signalled = null as NodeJS.Signals | null;
  const onSignal = (sig: NodeJS.Signals) => {
    if (signalled !== null) process.exit(SIGNAL_EXIT[sig] ?? 1);
    signalled = sig;
    stop.abort();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  const read = { bytes: 0 };
  const stream = capture === "-" ? process.stdin : createReadStream(capture, { highWaterMark: 1 << 20 });
  const progress = progressDisplay({ enabled: opts.progress !== false, size: input.size, read });
  let run: ReplayRun | null = null;
  let threaded: Parameters<typeof writeOutputs>[0] | null = null;
  try {
    if (threads > 1) {
      const { replayThreaded } = await import("../replay/threads.js");
      threaded = await replayThreaded(
        interruptible(stream, stop.signal, read),
        {
          name: capture,
          sysctls,
          clock: opts.clock === "frozen" ? "frozen" : "capture",
          defrag: opts.defrag !== false,
          ...(seed !== undefined ? { seed } : {}),
          onStart: progress.start,
          signal: stop.signal,
          census: { top },
          table: tableOut !== null,
        },
        threads,
      );
    } else
      run = await replay(interruptible(stream, stop.signal, read), {
        name: capture,
        sysctls,
        clock: opts.clock === "frozen" ? "frozen" : "capture",
        defrag: opts.defrag !== false,
        ...(seed !== undefined ? { seed } : {}),
        ...(policy !== undefined ? { policy } : {}),
        onEvent: eventsOut ? (line) => eventsOut.write(line) : null,
        // Expectation events go to the same stream, in the order the kernel sends them (as `conntrack -E expect` prints them).
        onExpectEvent: eventsOut ? (line) => eventsOut.write(line) : null,
        eventTimestamps: opts.eventsTimestamps === true,
        onStart: progress.start,
        signal: stop.signal,
        census: { top },
        firewall: fw?.options ?? (hostOnly !== null ? { ruleset: emptyRuleset("nft", "(no ruleset)"), host: hostOnly, enableHooks: true } : null),
      });
  } finally {
    progress.stop();
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
  const firewall =
    run === null
      ? null
      : fw !== null && rulesMod !== null
        ? rulesMod.finishFirewall(fw, run)
        : hostOnly !== null && rulesMod !== null && run.path !== null
          ? rulesMod.hostSection(run.path)
          : null;
  const done = (threaded ?? run) as Parameters<typeof writeOutputs>[0];
  const code = writeOutputs(done, { json, quiet: opts.quiet === true, table: tableOut, events: eventsOut, firewall });
  if (signalled !== null) {
    process.stderr.write(`ctlab: interrupted by ${signalled} after ${done.summary.packets.total.toLocaleString("en-US")} packets\n`);
    return SIGNAL_EXIT[signalled] ?? 1;
  }
  return code;
}
