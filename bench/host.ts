/**
 * `npm run bench:host`: the doctor and an exporter census on a million-entry
 * table, beside the cost of listing it.
 *
 *   node dist-bench/bench/host.js [--entries=N]
 *
 * - file: N lines in `conntrack -L -o extended` form (IPv4 TCP/UDP, a mix of
 *   states, written line by line like the real tool prints them) read by
 *   `ctlab doctor --from` and by one exporter census, beside `cat FILE >
 *   /dev/null` (the floor of reading it at all).
 *
 * Numbers are wall-clock on whatever machine runs it; on a shared machine
 * they are noisy.
 */
import { spawnSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { diagnose } from "../src/host/diagnose.js";
import { ConntrackExporter } from "../src/host/exporter.js";
import { dirSource, takeSnapshot } from "../src/host/snapshot.js";

function arg(name: string, def: number): number {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  return a === undefined ? def : Number(a.split("=")[1]);
}

const STATES = ["ESTABLISHED", "ESTABLISHED", "ESTABLISHED", "TIME_WAIT", "SYN_SENT", "CLOSE_WAIT"];

function writeTable(path: string, n: number): void {
  const fd = openSync(path, "w");
  let buf: string[] = [];
  for (let i = 0; i < n; i++) {
    const a = `10.${(i >>> 16) & 255}.${(i >>> 8) & 255}.${i & 255}`;
    const sport = 1024 + (i % 60000);
    if (i % 5 === 4) {
      buf.push(
        `ipv4     2 udp      17 ${20 + (i % 10)} src=${a} dst=192.0.2.53 sport=${sport} dport=53 [UNREPLIED] src=192.0.2.53 dst=${a} sport=53 dport=${sport} mark=0 use=1`,
      );
    } else {
      const st = STATES[i % STATES.length] as string;
      const dport = i % 3 === 0 ? 443 : 80;
      const flags = st === "SYN_SENT" ? "[UNREPLIED] " : "";
      buf.push(
        `ipv4     2 tcp      6 ${st === "ESTABLISHED" ? 431000 - (i % 100000) : 100} ${st} src=${a} dst=198.51.100.${i % 200} sport=${sport} dport=${dport} ${flags}src=198.51.100.${i % 200} dst=${a} sport=${dport} dport=${sport} ${st === "SYN_SENT" ? "" : "[ASSURED] "}mark=0 use=1`,
      );
    }
    if (buf.length === 4096) {
      writeSync(fd, buf.join("\n") + "\n");
      buf = [];
    }
  }
  if (buf.length > 0) writeSync(fd, buf.join("\n") + "\n");
  closeSync(fd);
}

function time(label: string, f: () => void): number {
  const t0 = process.hrtime.bigint();
  f();
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  process.stdout.write(`  ${label.padEnd(52)} ${ms.toFixed(0).padStart(8)} ms\n`);
  return ms;
}

async function timeAsync(label: string, f: () => Promise<void>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await f();
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  process.stdout.write(`  ${label.padEnd(52)} ${ms.toFixed(0).padStart(8)} ms\n`);
  return ms;
}

async function main(): Promise<void> {
  const n = arg("entries", 1_000_000);
  const dir = mkdtempSync(join(tmpdir(), "ctlab-bench-host-"));
  try {
    writeFileSync(join(dir, "meta.json"), JSON.stringify({ netns: "bench", takenAtMs: Date.now() }));
    writeFileSync(join(dir, "sysctl.txt"), `/proc/sys/net/netfilter/nf_conntrack_max:${2 * n}\n/proc/sys/net/netfilter/nf_conntrack_buckets:${2 * n}\n`);
    writeFileSync(join(dir, "conntrack-C.txt"), `${n}\n`);
    writeTable(join(dir, "conntrack-L.txt"), n);
    process.stdout.write(`host: a ${n.toLocaleString("en-US")}-entry conntrack -L table (file)\n`);
    time("cat conntrack-L.txt > /dev/null", () => {
      spawnSync("sh", ["-c", 'cat "$1" > /dev/null', "sh", join(dir, "conntrack-L.txt")]);
    });
    time("ctlab doctor --from DIR --json > /dev/null (process)", () => {
      const r = spawnSync("node", ["dist/src/cli/bin.js", "doctor", "--from", dir, "--json"], { stdio: ["ignore", "ignore", "inherit"] });
      if (r.status !== 0) throw new Error("doctor failed");
    });
    let entries = 0;
    await timeAsync("snapshot + diagnose in process", async () => {
      const r = diagnose(await takeSnapshot(dirSource(dir)));
      entries = r.entries_listed ?? 0;
    });
    if (entries !== n) throw new Error(`the doctor listed ${entries} entries, not ${n}`);
    const ex = new ConntrackExporter({
      targets: [{ label: "bench", inode: 0 }],
      netnsLabel: false,
      take: (_t, withTable) => takeSnapshot(dirSource(dir), withTable ? {} : { countersOnly: true }),
    });
    await timeAsync("exporter census (scheduled, not per scrape)", () => ex.refreshCensus());
    await timeAsync("exporter scrape (after the census)", async () => {
      await ex.scrape();
    });
    process.stdout.write(`  heap after: ${(process.memoryUsage().heapUsed / 2 ** 20).toFixed(0)} MiB\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
