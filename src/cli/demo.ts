import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DEMO_SYSCTLS, writeDemoCapture } from "../sim/demo.js";
import { replay } from "../replay/replay.js";
import { parseTop, refuseStdoutConflicts } from "./options.js";
import { LineWriter, writeOutputs } from "./output.js";

/**
 * `ctlab demo` (and `npm start`): writes the built-in capture, replays it with
 * a table small enough for the SYN flood to fill, and explains what happened.
 */
export async function demoCommand(opts: Record<string, unknown>): Promise<number> {
  const keep = typeof opts.write === "string" ? opts.write : null;
  const json = opts.json === true;
  const tableToStdout = opts.table === "-";
  refuseStdoutConflicts([
    ["--table -", tableToStdout],
    ["--json", json],
  ]);
  const top = parseTop(opts.top);
  // The story around the summary follows it: to stderr when stdout carries the table.
  const say = (text: string) => (tableToStdout ? process.stderr.write(text) : process.stdout.write(text));
  const dir = keep === null ? mkdtempSync(join(tmpdir(), "ctlab-demo-")) : null;
  const path = keep ?? join(dir as string, "demo.pcap");
  try {
    const n = writeDemoCapture(path);
    if (!json) {
      say(
        [
          `ctlab demo: ${n.toLocaleString("en-US")} generated packets, 2 minutes of a busy HTTPS + DNS server at 203.0.113.10:`,
          "  2000 short connections closed with FIN, 300 long-lived ones, 2500 whose closing RST/FIN a flaky link lost,",
          "  1000 DNS queries, pings, and at 70 s a flood of 20 000 spoofed SYNs.",
          `Replayed with ${Object.entries(DEMO_SYSCTLS)
            .map(([k, v]) => `${k}=${v}`)
            .join(" ")} (see "ctlab replay --help" to replay your own capture).`,
          "",
          "",
        ].join("\n"),
      );
    }
    const table = typeof opts.table === "string" ? new LineWriter(opts.table) : null;
    const run = await replay(path, { sysctls: DEMO_SYSCTLS, name: keep ?? "demo.pcap", seed: 1, census: { top } });
    const code = writeOutputs(run, { json, table });
    if (!json) {
      const s = run.summary;
      const lostEstablished = s.entries.tcp_established_long;
      say(
        [
          "",
          "What this shows",
          `  - The flood filled the table: ${s.stats.drop ?? 0} packets were dropped with "nf_conntrack: table full, dropping packet"`,
          `    and early drop evicted ${s.stats.early_drop ?? 0} unassured entries to make room; assured connections were never evicted.`,
          `  - ${lostEstablished} entries stay ESTABLISHED for up to 5 days (nf_conntrack_tcp_timeout_established): their FIN/RST never came.`,
          "  - Try: ctlab demo --table - | head   (the table as conntrack -L -o extended prints it)",
          "",
        ].join("\n"),
      );
    }
    return code;
  } finally {
    if (dir !== null) rmSync(dir, { recursive: true, force: true });
  }
}
