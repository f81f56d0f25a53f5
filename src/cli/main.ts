/**
 * The `ctlab` command: a registry of commands. Each entry declares its
 * options (cheap: commander objects only) and loads its code with a dynamic
 * import when it runs, so `ctlab --help` and `ctlab sysctl` never compile the
 * engine, and `ctlab replay` never compiles the firewall unless `--rules` is
 * given. Nothing here does work at import time.
 *
 * To add a command: write `src/cli/<name>.ts` exporting its function, add a
 * `define<Name>` below that declares it, and list it in COMMANDS. Options
 * several commands share are declared in options.ts.
 *
 * process.exit lives here (and in pipe.ts/output.ts for a closed pipe) only:
 * commands return an exit code or throw.
 */
import { Command, CommanderError } from "commander";
import { readFileSync } from "node:fs";
import { CliError } from "./errors.js";
import { addClockOption, addHostOptions, addRulesetReadOptions, addSysctlOptions, addTopOption, collect } from "./options.js";
import { endQuietlyOnClosedPipe } from "./pipe.js";

/** Hands a command's exit code back to main(). */
export type Runner = (code: number) => void;

/** Declares one top-level command on the program. */
export type CommandDefinition = (program: Command, run: Runner) => void;
import { registerHostCommands } from "./host-commands.js";

function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as { version?: string };
    return pkg.version ?? "0.0.0";
  } catch {
    return "0.0.0";
  }
}

const defineReplay: CommandDefinition = (program, run) => {
  const cmd = program
    .command("replay")
    .description("Run a pcap/pcapng capture (a file, FIFO, <(process substitution), or - for stdin) through the conntrack engine and report the table")
    .argument("<capture>", 'capture file (pcap or pcapng, gzip allowed), any readable stream, or "-" to read standard input')
    .option("--table <file>", 'write the final table as `conntrack -L -o extended` lines ("-" = stdout)')
    .option("--events <file>", 'write events as `conntrack -E -o extended` lines ("-" = stdout)')
    .option("--events-timestamps", "prefix each event with [sec.usec] like `conntrack -E -o timestamp`", false)
    .option("--json", "print the summary as JSON on stdout (schema/replay-summary.schema.json)", false);
  addSysctlOptions(cmd);
  addClockOption(cmd);
  addTopOption(cmd)
    .option("--no-defrag", "do not reassemble IP fragments before tracking")
    .option("--seed <n>", "hash seed (makes bucket placement and early drop reproducible)")
    .option(
      "--threads <n>",
      "worker threads, each tracking its share of the flows (default: the cores available for a capture file of 64 MB or more, else 1; one with --rules or --events)",
    )
    .option("-q, --quiet", "no human summary (tables/events/JSON still written)", false)
    .option("--no-progress", "never show progress on stderr")
    .option("--rules <file>", "run packets through this ruleset (iptables-save, nft -j list ruleset JSON, or nft text): verdicts, per-rule counters, NAT");
  addRulesetReadOptions(cmd);
  addHostOptions(cmd)
    .option("--counters <file>", 'write the ruleset back with its counters, as iptables-save -c or nft -j list ruleset ("-" = stdout)')
    .option("--verdicts <file>", 'write one line per IP packet: number, verdict, route, ct state, packet, the rule or policy that decided ("-" = stdout)')
    .option("--enable-hooks", "track every packet as with nf_conntrack.enable_hooks=1, whatever the ruleset needs")
    .option("--policy <name>", "table policy: kernel (default), adaptive, emergency, recycle-half-open, quota, ctlab")
    .option(
      "--policy-opt <policy.option=value,...>",
      "options of the table policy, e.g. adaptive.start=0.6,adaptive.end=1.2 (repeatable)",
      collect,
      [] as string[],
    )
    .action(async (capture: string, opts: Record<string, unknown>) => {
      const { replayCommand } = await import("./replay.js");
      run(await replayCommand(capture, opts));
    });
};

const defineRules: CommandDefinition = (program, run) => {
  const rules = program
    .command("rules")
    .description("Read a firewall ruleset: what it makes the kernel track, what could be NOTRACKed, how two rulesets differ");
  addRulesetReadOptions(
    rules
      .command("analyze")
      .description("Which rules make traffic tracked, whether the ruleset could be stateless, NOTRACK candidates and warnings")
      .argument("<file>", 'ruleset: iptables-save output, nft -j list ruleset JSON, or nft text (a file, FIFO, <(iptables-save), or "-" = stdin)')
      .option("--json", "as JSON", false),
  ).action(async (file: string, opts: Record<string, unknown>) => {
    const { rulesAnalyzeCommand } = await import("./rules.js");
    run(rulesAnalyzeCommand(file, opts));
  });
  addRulesetReadOptions(
    rules
      .command("notrack")
      .description("The raw-table rules that untrack some traffic in both directions, in the ruleset's own syntax")
      .argument("<file>", "ruleset file")
      .requiredOption("--for <selector>", 'the traffic, e.g. "udp dport 53" or "tcp dport 80 ip daddr 192.0.2.1"')
      .option("--json", "as JSON", false),
  ).action(async (file: string, opts: Record<string, unknown>) => {
    const { rulesNotrackCommand } = await import("./rules.js");
    run(rulesNotrackCommand(file, opts));
  });
  const compare = rules
    .command("compare")
    .description("Replay a capture through two rulesets: packets whose verdict differs, and the conntrack table under each")
    .argument("<a>", "first ruleset")
    .argument("<b>", "second ruleset")
    .requiredOption("--capture <file>", "the capture to replay (pcap or pcapng; a regular file: it is read twice)")
    .option("--json", "as JSON", false)
    .option("--limit <n>", "differing packets to show", "20");
  addHostOptions(compare);
  addRulesetReadOptions(compare);
  addSysctlOptions(compare);
  addClockOption(compare)
    .option("--seed <n>", "hash and random seed (same for both runs)")
    .action(async (a: string, b: string, opts: Record<string, unknown>) => {
      const { rulesCompareCommand } = await import("./rules.js");
      run(await rulesCompareCommand(a, b, opts));
    });
};

const defineDemo: CommandDefinition = (program, run) => {
  addTopOption(
    program
      .command("demo")
      .description("Generate the built-in capture (busy server, lost RSTs, SYN flood) and replay it")
      .option("--write <file>", "also keep the generated capture in this file")
      .option("--table <file>", 'write the final table as `conntrack -L -o extended` lines ("-" = stdout)')
      .option("--json", "print the summary as JSON on stdout", false),
  ).action(async (opts: Record<string, unknown>) => {
    const { demoCommand } = await import("./demo.js");
    run(await demoCommand(opts));
  });
};

const defineSimulate: CommandDefinition = (program, run) => {
  program
    .command("simulate")
    .description(
      "Simulate traffic (floods, lossy links, busy servers) through the conntrack engine: summary, HTML report, JSON; without a scenario, list the built-in ones",
    )
    .argument("[scenario]", "a built-in scenario name or a scenario YAML file")
    .option("--html <file>", "write the report here (default: report.html)")
    .option("--no-html", "do not write the HTML report")
    .option("--json <file>", "write runs, summaries and timelines as JSON (schema/simulate.schema.json)")
    .option("--csv <file>", "write the per-second timeline as CSV")
    .option(
      "--vary <name=v1,v2>",
      "run once per value of a sysctl or scenario key, e.g. nf_conntrack_max=65536,262144 (repeatable: a grid)",
      collect,
      [] as string[],
    )
    .option("--rules <file>", "run the traffic through this ruleset (repeatable: side by side)", collect, [] as string[])
    .option("--sysctl <name=value>", "set a conntrack sysctl over the scenario's table (repeatable)", collect, [] as string[])
    .option("--write-pcap <file>", "write the packets the tracking host saw (first run) as a pcap")
    .option("--policy <name>", "table policy: kernel, adaptive, emergency, recycle-half-open, quota, ctlab (repeatable: side by side)", collect, [] as string[])
    .option(
      "--policy-opt <policy.option=value,...>",
      "options of the table policies, e.g. adaptive.start=0.6,adaptive.end=1.2 (repeatable)",
      collect,
      [] as string[],
    )
    .option("--policies-matrix", "run every built-in scenario under every policy (or those given with --policy) and print one table", false)
    .option("--traffic-from <capture>", "add a real capture (pcap/pcapng) to the traffic, looped with its addresses moved each pass")
    .option("--scale <n>", "play the --traffic-from capture n times faster (default 1)")
    .option("--seed <n>", "override the scenario's seed")
    .option("--duration <s>", "override the scenario's duration")
    .option("-q, --quiet", "no terminal summary", false)
    .option("--no-progress", "never show progress on stderr")
    .action(async (scenario: string | undefined, opts: Record<string, unknown>) => {
      const { simulateCommand } = await import("./simulate.js");
      run(await simulateCommand(scenario, opts));
    });
};

const defineSysctl: CommandDefinition = (program, run) => {
  program
    .command("sysctl")
    .description("List the conntrack sysctls ctlab models, with their kernel defaults")
    .option("--json", "as JSON", false)
    .action(async (opts: Record<string, unknown>) => {
      const { sysctlCommand } = await import("./sysctl.js");
      run(sysctlCommand(opts));
    });
};

/** Every top-level command, in `ctlab --help` order. */
export const COMMANDS: readonly CommandDefinition[] = [defineReplay, defineRules, defineDemo, defineSimulate, defineSysctl];

/** Builds the command tree; exported for tests. */
export function buildProgram(run: Runner): Command {
  const program = new Command("ctlab")
    .description("A laboratory for Linux connection tracking (nf_conntrack)")
    .version(version())
    .showHelpAfterError("(run with --help for usage)")
    .exitOverride();
  for (const define of COMMANDS) define(program, run);
  // doctor, top, collect, exporter (host-commands.ts keeps their declarations together).
  registerHostCommands(program, run);
  return program;
}

/** Runs the CLI with `argv` (without node and script) and resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  endQuietlyOnClosedPipe();
  let code = 0;
  const program = buildProgram((c) => (code = c));
  try {
    await program.parseAsync(argv, { from: "user" });
    return code;
  } catch (e) {
    if (e instanceof CommanderError) {
      // Help and version are "errors" to commander but successes to the user.
      if (e.code === "commander.helpDisplayed" || e.code === "commander.version" || e.code === "commander.help") return 0;
      return e.exitCode === 0 ? 0 : 1;
    }
    if (e instanceof CliError) {
      process.stderr.write(`ctlab: ${e.message}\n`);
      return e.exitCode;
    }
    throw e;
  }
}
