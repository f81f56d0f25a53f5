/**
 * The live-host commands (doctor, collect, top, exporter), registered from
 * one place so main.ts needs a single line. Each loads its module lazily.
 */
import type { Command } from "commander";

export function registerHostCommands(program: Command, run: (code: number) => void): void {
  program
    .command("doctor")
    .description("Explain this host's connection tracking: fill, who fills it, idle ages, findings, what to change (read-only)")
    .option("--netns <name>", "a named network namespace (ip netns)")
    .option("--all-netns", "every namespace on the host: named ones and those of running processes", false)
    .option("--from <dir>", "read a folder made by `ctlab collect` instead of the live host")
    .option("--interval <seconds>", "take two samples this far apart: fill rate, rates of drops, time until full")
    .option("--top <n>", "entries in each top list", "10")
    .option("--orphan-idle <seconds>", "ESTABLISHED entries idle this long count as orphans", "3600")
    .option("--json", "as JSON (schema/doctor.schema.json)", false)
    .action(async (opts: Record<string, unknown>) => {
      const { doctorCommand } = await import("./doctor.js");
      run(await doctorCommand(opts));
    });

  program
    .command("collect")
    .description("Gather what the doctor reads into a folder (files readable by root only), for `ctlab doctor --from`")
    .argument("<dir>", "the folder to write (created)")
    .option("--netns <name>", "a named network namespace (ip netns)")
    .option("--all-netns", "every namespace, one subfolder each", false)
    .option("--interval <seconds>", "also take a first sample of the counters this long before")
    .action(async (dir: string, opts: Record<string, unknown>) => {
      const { collectCommand } = await import("./doctor.js");
      run(await collectCommand(dir, opts));
    });

  program
    .command("exporter")
    .description("Serve Prometheus metrics: node_exporter's conntrack metrics (via conntrack -S) and ctlab's own")
    .option("--listen <addr>", "HOST:PORT to listen on", "127.0.0.1:9642")
    .option("--web.config.file <file>", "exporter-toolkit web config: TLS certificate and key, basic-auth users (bcrypt)")
    .option("--netns <name>", "a named network namespace (ip netns)")
    .option("--all-netns", "every namespace, with a netns label", false)
    .option("--top <n>", 'sources and ports kept as labels (the rest: "other")', "10")
    .option("--table-interval <seconds>", "how often the table census runs", "60")
    .option("--scrape-budget <seconds>", "longest a scrape waits for fresh counters", "3")
    .action(async (opts: Record<string, unknown>) => {
      const { exporterCommand } = await import("./exporter.js");
      run(await exporterCommand({ ...opts, webConfigFile: opts["web.config.file"] ?? opts["webConfigFile"] }));
    });

  program
    .command("top")
    .description("A live, top-like view of the table: fill, rates, states, top talkers (q quits)")
    .option("--netns <name>", "a named network namespace (ip netns)")
    .option("-d, --delay <seconds>", "seconds between refreshes", "2")
    .option("-b, --batch", "plain frames without a terminal (like top -b)", false)
    .option("-n, --iterations <n>", "frames to show, then exit (default: until q; 1 without a terminal)")
    .action(async (opts: Record<string, unknown>) => {
      const { topCommand } = await import("./top.js");
      run(await topCommand(opts));
    });
}
