/**
 * The `ctlab` command. Subcommands load lazily so that `ctlab --help` stays fast.
 * process.exit lives here only: commands return an exit code or throw.
 */
import { Command, CommanderError, Option } from "commander";
import { readFileSync } from "node:fs";
import { CliError } from "./errors.js";

function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as { version?: string };
    return pkg.version ?? "0.0.0";
  } catch {
    return "0.0.0";
  }
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** Builds the command tree; exported for tests. */
export function buildProgram(run: (code: number) => void): Command {
  const program = new Command("ctlab")
    .description("A laboratory for Linux connection tracking (nf_conntrack)")
    .version(version())
    .showHelpAfterError("(run with --help for usage)")
    .exitOverride();

  program
    .command("replay")
    .description("Run a pcap/pcapng capture (or - for stdin) through the conntrack engine and report the table")
    .argument("<capture>", 'capture file (pcap or pcapng), or "-" to read standard input')
    .option("--table <file>", 'write the final table as `conntrack -L -o extended` lines ("-" = stdout)')
    .option("--events <file>", 'write events as `conntrack -E -o extended` lines ("-" = stdout)')
    .option("--events-timestamps", "prefix each event with [sec.usec] like `conntrack -E -o timestamp`", false)
    .option("--json", "print the summary as JSON on stdout", false)
    .option("--sysctl <name=value>", "set a conntrack sysctl, e.g. nf_conntrack_max=65536 (repeatable)", collect, [] as string[])
    .option("--sysctl-file <file>", "read sysctls from a sysctl.conf-style file (repeatable)", collect, [] as string[])
    .addOption(
      new Option("--clock <mode>", "capture: capture timestamps drive timeouts; frozen: every packet at one instant")
        .choices(["capture", "frozen"])
        .default("capture"),
    )
    .option("--no-defrag", "do not reassemble IP fragments before tracking")
    .option("--seed <n>", "hash seed (makes bucket placement and early drop reproducible)")
    .option("-q, --quiet", "no human summary (tables/events/JSON still written)", false)
    .option("--no-progress", "never show progress on stderr")
    .action(async (capture: string, opts: Record<string, unknown>) => {
      const { replayCommand } = await import("./replay.js");
      run(await replayCommand(capture, opts));
    });

  program
    .command("demo")
    .description("Generate the built-in capture (busy server, lost RSTs, SYN flood) and replay it")
    .option("--write <file>", "also keep the generated capture in this file")
    .option("--table <file>", 'write the final table as `conntrack -L -o extended` lines ("-" = stdout)')
    .option("--json", "print the summary as JSON on stdout", false)
    .action(async (opts: Record<string, unknown>) => {
      const { demoCommand } = await import("./demo.js");
      run(await demoCommand(opts));
    });

  program
    .command("sysctl")
    .description("List the conntrack sysctls ctlab models, with their kernel defaults")
    .option("--json", "as JSON", false)
    .action(async (opts: Record<string, unknown>) => {
      const { sysctlCommand } = await import("./sysctl.js");
      run(sysctlCommand(opts));
    });

  return program;
}

/** Runs the CLI with `argv` (without node and script) and resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
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
