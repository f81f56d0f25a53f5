/**
 * `npm run bench:host` (and the `host` case of `npm run bench`): the doctor
 * and the exporter on a million-entry table, beside the cost of listing it.
 *
 *   node dist-bench/bench/host.js [--entries=N] [--only=file|kernel] [--json-out=FILE]
 *
 * - file: N lines in `conntrack -L -o extended` form (IPv4 TCP/UDP, a mix of
 *   states, written line by line like the real tool prints them) read by
 *   `ctlab doctor --from` and by one exporter census, beside `cat FILE >
 *   /dev/null` (the floor of reading it at all).
 * - kernel (root with ip, nft, conntrack and tcpreplay; skipped with the
 *   reason otherwise): a real table of N entries in a namespace of its own.
 *   The frames come from the simulator's frame writer (src/sim/frames.ts:
 *   SYNs of a spoofed flood, DNS queries, complete handshakes) and go in
 *   through tcpreplay at full speed; `conntrack -L > /dev/null`, `ctlab
 *   doctor --netns` and a running `ctlab exporter` (a scrape while its census
 *   runs, the census, a scrape after it) are timed on that table, with the
 *   peak RSS of each process. nf_conntrack_max and the hash size are global
 *   (init_net's): they are raised for the run under the kernel tests' lock
 *   and restored in `finally`, like the namespaces.
 *
 * Numbers are wall-clock on whatever machine runs it; on a shared machine
 * they are noisy.
 */
import { spawn, spawnSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { get } from "node:http";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { diagnose } from "../src/host/diagnose.js";
import type { DoctorReport } from "../src/host/diagnose.js";
import { ConntrackExporter } from "../src/host/exporter.js";
import { dirSource, takeSnapshot } from "../src/host/snapshot.js";
import { FrameWriter, NO_OPTIONS, SYN_OPTIONS, TCP_ACK, TCP_SYN } from "../src/sim/frames.js";
import { PcapSink } from "../src/sim/sink.js";
import { RULESET, u32, withHostTopology } from "../test/host/hostns.js";
import type { HostTopology } from "../test/host/hostns.js";
import { readGlobalLimits, run, setSysctls, withGlobalLimits } from "../test/kernel/netns.js";

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

/** What was measured, by case and line (written to --json-out=FILE for `npm run bench`'s results). */
const results: Record<string, Record<string, unknown>> = {};

function record(section: string, label: string, value: unknown): void {
  (results[section] ??= {})[label] = value;
}

function time(label: string, f: () => void): number {
  const t0 = process.hrtime.bigint();
  f();
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  process.stdout.write(`  ${label.padEnd(52)} ${ms.toFixed(0).padStart(8)} ms\n`);
  record("file", label, { wall_ms: ms });
  return ms;
}

async function timeAsync(label: string, f: () => Promise<void>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await f();
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  process.stdout.write(`  ${label.padEnd(52)} ${ms.toFixed(0).padStart(8)} ms\n`);
  record("file", label, { wall_ms: ms });
  return ms;
}

function only(): string | undefined {
  return process.argv.find((x) => x.startsWith("--only="))?.slice("--only=".length);
}

async function fileCase(n: number): Promise<void> {
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

// ---- kernel: a real table in a namespace ------------------------------------------------

/** Why the kernel case cannot run here, or null. */
function kernelSkip(): string | null {
  if (process.platform !== "linux") return `not Linux ("${process.platform}")`;
  if (typeof process.getuid === "function" && process.getuid() !== 0) return "not root (namespaces and nf_conntrack_max need it)";
  for (const [tool, pkg] of [
    ["ip", "iproute2"],
    ["nft", "nftables"],
    ["conntrack", "conntrack"],
    ["tcpreplay", "tcpreplay"],
  ] as const) {
    const r = spawnSync(tool, [tool === "ip" ? "-V" : "--version"], { stdio: "ignore", timeout: 10_000 });
    if (r.error !== undefined || r.status !== 0) return `"${tool}" is missing (package ${pkg})`;
  }
  return null;
}

/** The table's make-up: what the doctor must find in it. */
interface Load {
  flood: number;
  dns: number;
  established: number;
  frames: number;
}

/**
 * The frames of an n-entry table, by the simulator's frame writer: 70 % SYNs
 * of a spoofed flood (one source each), 20 % DNS queries (4 096 clients) and
 * 10 % complete handshakes (SYN, SYN/ACK, ACK) left ESTABLISHED.
 */
function writeLoad(paths: readonly string[], n: number, dstMac: string): Load {
  const flood = Math.round(n * 0.7);
  const dns = Math.round(n * 0.2);
  const established = n - flood - dns;
  const w = new FrameWriter();
  w.buf.set(
    dstMac.split(":").map((x) => parseInt(x, 16)),
    0,
  );
  // One capture per sender: entry i goes into capture i mod k, a handshake's three frames together.
  const sinks = paths.map((p) => new PcapSink(p));
  let us = 1_700_000_000_000_000;
  let sink = sinks[0] as PcapSink;
  const put = (len: number): void => {
    sink.frame(us++, w.buf, len);
  };
  const pick = (i: number): void => {
    sink = sinks[i % sinks.length] as PcapSink;
  };
  const target = u32("198.51.100.10");
  const resolver = u32("198.51.100.53");
  const server = u32("198.51.100.20");
  for (let i = 0; i < flood; i++) {
    pick(i);
    put(w.tcp((u32("10.64.0.0") + i) >>> 0, target, 1024 + (i % 64000), 80, i, 0, TCP_SYN, 64240, SYN_OPTIONS, 0));
  }
  for (let i = 0; i < dns; i++) {
    pick(i);
    put(w.udp((u32("10.30.0.0") + (i % 4096)) >>> 0, resolver, 1024 + Math.floor(i / 4096), 53, 32));
  }
  for (let i = 0; i < established; i++) {
    pick(i);
    const c = (u32("10.20.0.0") + i) >>> 0;
    const sport = 1024 + (i % 60000);
    put(w.tcp(c, server, sport, 443, 100, 0, TCP_SYN, 64240, SYN_OPTIONS, 0));
    put(w.tcp(server, c, 443, sport, 500, 101, TCP_SYN | TCP_ACK, 65160, SYN_OPTIONS, 0));
    put(w.tcp(c, server, sport, 443, 101, 501, TCP_ACK, 502, NO_OPTIONS, 0));
  }
  let frames = 0;
  for (const s of sinks) {
    s.close();
    frames += s.frames;
  }
  return { flood, dns, established, frames };
}

async function count(ns: string): Promise<number> {
  return Number((await run("conntrack", ["-C"], { ns })).stdout.trim());
}

/**
 * Sends the captures into the router at full speed, one tcpreplay per
 * capture side by side, until the table holds `want` entries (a further pass
 * refreshes what is there and adds what a full backlog dropped).
 */
async function load(t: HostTopology, pcaps: readonly string[], want: number): Promise<{ ms: number; passes: number; entries: number }> {
  const t0 = performance.now();
  let entries = 0;
  let passes = 0;
  while (passes < 4) {
    passes++;
    await Promise.all(pcaps.map((p) => run("tcpreplay", ["-q", "-K", "--topspeed", "--no-flow-stats", "-i", "inj0", p], { ns: t.inj, timeoutMs: 600_000 })));
    entries = await count(t.rt);
    if (entries >= want) break;
  }
  return { ms: performance.now() - t0, passes, entries };
}

interface Measured {
  ms: number;
  /** User + system CPU of the process and the children it waited for, ms; null without GNU time. */
  cpuMs: number | null;
  /** Peak resident set of the process (or of its largest child), KiB; null without GNU time. */
  maxRssKiB: number | null;
  stderr: string;
}

const HAVE_TIME = spawnSync("/usr/bin/time", ["-f", "%M", "true"], { stdio: "ignore" }).status === 0;

/** Runs a command with stdout to /dev/null (or a file): wall time, CPU time and peak RSS (GNU time's %U %S %M). */
function measure(argv: readonly string[], stdoutTo = "/dev/null"): Measured {
  const dir = mkdtempSync(join(tmpdir(), "ctlab-bench-time-"));
  try {
    const out = join(dir, "time");
    const cmd = HAVE_TIME ? ["/usr/bin/time", "-f", "%U %S %M", "-o", out, ...argv] : [...argv];
    const fd = openSync(stdoutTo, "w");
    const t0 = performance.now();
    const r = spawnSync(cmd[0] as string, cmd.slice(1), { stdio: ["ignore", fd, "pipe"], encoding: "utf8", maxBuffer: 16 << 20 });
    const ms = performance.now() - t0;
    closeSync(fd);
    if (r.status !== 0) throw new Error(`"${argv.join(" ")}" failed (exit ${String(r.status)}): ${r.stderr.trim()}`);
    if (!HAVE_TIME) return { ms, cpuMs: null, maxRssKiB: null, stderr: r.stderr };
    const [user, sys, rss] = (readFileSync(out, "utf8").trim().split("\n").pop() ?? "").split(" ").map(Number) as [number, number, number];
    return { ms, cpuMs: (user + sys) * 1000, maxRssKiB: rss, stderr: r.stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const HEADER = `  ${"".padEnd(62)} ${"wall".padStart(9)} ${"CPU".padStart(9)} ${"peak RSS".padStart(9)}`;

function line(label: string, ms: number, cpuMs: number | null = null, rssKiB: number | null = null): void {
  const cpu = cpuMs === null ? "" : `${(cpuMs / 1000).toFixed(1)} s`;
  const rss = rssKiB === null ? "" : `${(rssKiB / 1024).toFixed(0)} MiB`;
  process.stdout.write(`  ${label.padEnd(62)} ${`${(ms / 1000).toFixed(ms < 1000 ? 3 : 1)} s`.padStart(9)} ${cpu.padStart(9)} ${rss.padStart(9)}\n`);
  record("kernel", label, { wall_ms: ms, cpu_ms: cpuMs, max_rss_kib: rssKiB });
}

/** User + system CPU of a process and its waited-for children so far, ms (/proc/PID/stat). */
function cpuOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // Fields 14–17 (utime, stime, cutime, cstime), counted from the state field (3).
  const ticks = [11, 12, 13, 14].reduce((sum, i) => sum + Number(f[i]), 0);
  return (ticks * 1000) / CLK_TCK;
}

const CLK_TCK = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim()) || 100;

/** One GET: its wall time and body. */
function scrapeOnce(url: string): Promise<{ ms: number; body: string }> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    get(url, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => {
        if (res.statusCode !== 200) reject(new Error(`Scrape of "${url}" answered ${String(res.statusCode)}: ${body.trim()}`));
        else resolve({ ms: performance.now() - t0, body });
      });
    }).on("error", reject);
  });
}

function metric(body: string, name: string): number | null {
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, "m").exec(body);
  return m === null ? null : Number(m[1]);
}

function vmHwmKiB(pid: number): number | null {
  const m = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m === null ? null : Number(m[1]);
}

/** A running `ctlab exporter --netns`: scrapes while its first census runs, the census, a scrape after it, the process's peak RSS. */
async function exporterCase(ns: string, want: number): Promise<void> {
  const child = spawn("node", ["dist/src/cli/bin.js", "exporter", "--netns", ns, "--listen", "127.0.0.1:0", "--table-interval", "3600"], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  const kill = (): void => void child.kill("SIGTERM");
  process.once("exit", kill);
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let err = "";
      child.stderr.setEncoding("utf8");
      child.stderr.on("data", (c: string) => {
        err += c;
        const m = /serving (\S+)/.exec(err);
        if (m !== null) resolve(m[1] as string);
      });
      child.once("exit", (code) => reject(new Error(`The exporter exited (${String(code)}): ${err.trim()}`)));
    });
    const pid = child.pid as number;
    const cpu0 = cpuOf(pid);
    const t0 = performance.now();
    // The first census starts with the exporter: scrapes meanwhile read the counters only.
    let during = 0;
    let worst = 0;
    let census: number | null = null;
    for (;;) {
      const s = await scrapeOnce(url);
      census = metric(s.body, "ctlab_conntrack_census_duration_seconds");
      if (census !== null && census > 0) break;
      during++;
      worst = Math.max(worst, s.ms);
      if (performance.now() - t0 > 600_000) throw new Error("The exporter's census did not finish in 10 min");
      await new Promise((r) => setTimeout(r, 500));
    }
    // The scrapes' CPU is in it too: a few ms each.
    const cpu = cpuOf(pid) - cpu0;
    if (during > 0) line(`exporter scrape during its census (worst of ${during})`, worst);
    line("exporter census (its own schedule, not per scrape)", (census ?? 0) * 1000, cpu);
    const after = await scrapeOnce(url);
    line("exporter scrape after the census", after.ms, null, vmHwmKiB(pid));
    const entries = metric(after.body, "node_nf_conntrack_entries");
    if (entries === null || Math.abs(entries - want) > want * 0.01)
      throw new Error(`The exporter reports "${String(entries)}" entries, the table holds ${want}`);
    const late = metric(after.body, "ctlab_scrape_budget_exceeded_total") ?? 0;
    process.stdout.write(`  (scrape budget 3 s: exceeded ${late} time(s))\n`);
  } finally {
    process.removeListener("exit", kill);
    kill();
  }
}

/** tcpreplay processes side by side: the kernel does each one's forwarding in its sender's softirq, so one per CPU. */
/** A fast doctor must still be right: its counts are the table's make-up. */
function checkReport(r: DoctorReport, listed: number, shape: Load): void {
  const row = (p: string, st: string): number => r.by_protocol_state.find((x) => x.protocol === p && x.state === st)?.entries ?? 0;
  const want: Array<[string, number, number]> = [
    ["entries listed", r.entries_listed ?? 0, listed],
    ["tcp SYN_SENT", row("tcp", "SYN_SENT"), shape.flood],
    ["udp UNREPLIED", row("udp", "UNREPLIED"), shape.dns],
    ["tcp ESTABLISHED", row("tcp", "ESTABLISHED"), shape.established],
  ];
  for (const [what, got, expected] of want) {
    if (Math.abs(got - expected) > expected * 0.01) throw new Error(`The doctor counts ${got} for ${what}, the table holds ${expected}`);
  }
  if (!r.findings.some((f) => f.id === "syn-flood")) throw new Error(`The doctor does not see the SYN flood: ${r.findings.map((f) => f.id).join(", ")}`);
}

const SENDERS = Math.max(1, Math.min(availableParallelism(), 4));

async function kernelCase(n: number): Promise<void> {
  const why = kernelSkip();
  if (why !== null) {
    process.stdout.write(`host: the ${n.toLocaleString("en-US")}-entry kernel table: skipped: ${why}\n`);
    record("kernel", "skipped", why);
    return;
  }
  const saved = readGlobalLimits();
  const limits = { max: Math.max(saved.max, Math.ceil(n * 1.25)), hashsize: Math.max(saved.hashsize, 2 ** Math.ceil(Math.log2(n))) };
  await withGlobalLimits(limits, () =>
    withHostTopology(RULESET, async (t) => {
      // A bench killed by a signal still deletes its namespaces and restores the limits (withGlobalLimits' exit hook).
      const gone = (): void => {
        for (const ns of [t.rt, t.inj]) spawnSync("ip", ["netns", "del", ns], { stdio: "ignore" });
      };
      const quit = (): never => process.exit(130);
      process.once("exit", gone);
      process.once("SIGINT", quit);
      process.once("SIGTERM", quit);
      // Nothing may expire while it is measured: the flood's SYNs and the DNS entries are held an hour.
      await setSysctls(t.rt, { "net.netfilter.nf_conntrack_tcp_timeout_syn_sent": 3600, "net.netfilter.nf_conntrack_udp_timeout": 3600 });
      const dir = mkdtempSync(join(tmpdir(), "ctlab-bench-host-"));
      try {
        const pcaps = Array.from({ length: SENDERS }, (_, i) => join(dir, `load-${i}.pcap`));
        const g0 = performance.now();
        const shape = writeLoad(pcaps, n, t.r0Mac);
        const genMs = performance.now() - g0;
        const l = await load(t, pcaps, n);
        process.stdout.write(
          `host: a ${l.entries.toLocaleString("en-US")}-entry kernel table (namespace ${t.rt}; nf_conntrack_max ${limits.max}, ${limits.hashsize} buckets, restored afterwards)\n`,
        );
        process.stdout.write(HEADER + "\n");
        line(`frames written by src/sim/frames.ts (${shape.frames.toLocaleString("en-US")})`, genMs);
        line(`loaded by tcpreplay --topspeed (${l.passes} pass${l.passes > 1 ? "es" : ""})`, l.ms);
        const ns = ["ip", "netns", "exec", t.rt];
        const plain = measure([...ns, "conntrack", "-L"]);
        line("conntrack -L > /dev/null", plain.ms, plain.cpuMs, plain.maxRssKiB);
        const listed = Number(/(\d+) flow entries have been shown/.exec(plain.stderr)?.[1] ?? NaN);
        const ext = measure([...ns, "conntrack", "-L", "-o", "extended"]);
        line("conntrack -L -o extended > /dev/null (what the doctor reads)", ext.ms, ext.cpuMs, ext.maxRssKiB);
        const doc = measure(["node", "dist/src/cli/bin.js", "doctor", "--netns", t.rt]);
        line("ctlab doctor --netns NS > /dev/null", doc.ms, doc.cpuMs, doc.maxRssKiB);
        const report = join(dir, "doctor.json");
        const json = measure(["node", "dist/src/cli/bin.js", "doctor", "--netns", t.rt, "--json"], report);
        line("ctlab doctor --netns NS --json > FILE", json.ms, json.cpuMs, json.maxRssKiB);
        checkReport(JSON.parse(readFileSync(report, "utf8")) as DoctorReport, listed, shape);
        await exporterCase(t.rt, listed);
        const after = await count(t.rt);
        if (Math.abs(after - l.entries) > l.entries * 0.01) throw new Error(`The table went from ${l.entries} to ${after} entries while it was measured`);
        process.stdout.write(`  (${shape.flood} SYN_SENT, ${shape.dns} UDP, ${shape.established} ESTABLISHED sent; ${listed} listed)\n`);
        record("kernel", "entries", listed);
      } finally {
        rmSync(dir, { recursive: true, force: true });
        process.removeListener("exit", gone);
        process.removeListener("SIGINT", quit);
        process.removeListener("SIGTERM", quit);
      }
    }),
  );
}

async function main(): Promise<void> {
  const n = arg("entries", 1_000_000);
  const which = only();
  if (which === undefined || which === "file") await fileCase(n);
  if (which === undefined || which === "kernel") await kernelCase(n);
  const jsonOut = process.argv.find((x) => x.startsWith("--json-out="))?.slice("--json-out=".length);
  if (jsonOut !== undefined) writeFileSync(jsonOut, JSON.stringify({ entries: n, ...results }, null, 2) + "\n");
}

await main();
