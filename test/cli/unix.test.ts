/**
 * The CLI as a Unix tool, with real child processes: closed pipes, signals
 * during a live stream, FIFOs, empty and undecodable captures, stdout
 * conflicts, `sysctl -a` files.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { buildUdp } from "../../src/packet/build.js";
import { PcapWriter } from "../../src/packet/writer.js";
import { validate } from "../helpers/json-schema.js";

const BIN = fileURLToPath(new URL("../../src/cli/bin.js", import.meta.url));
const SCHEMA = JSON.parse(readFileSync(fileURLToPath(new URL("../../../schema/replay-summary.schema.json", import.meta.url)), "utf8")) as Record<
  string,
  unknown
>;

function run(args: string[], input?: Uint8Array) {
  const r = spawnSync(process.execPath, [BIN, ...args], { input, encoding: "buffer", timeout: 60000 });
  return { code: r.status, stdout: r.stdout.toString("utf8"), stderr: r.stderr.toString("utf8") };
}

const dir = mkdtempSync(join(tmpdir(), "ctlab-unix-"));
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));

/** A pcap of `n` UDP flows (one packet each), or frames of another link type. */
function capture(n: number, opts: { linkType?: number; backwards?: number } = {}): Uint8Array {
  const chunks: Uint8Array[] = [];
  const w = new PcapWriter((c) => chunks.push(c), opts.linkType !== undefined ? { linkType: opts.linkType } : {});
  for (let i = 0; i < n; i++) {
    const f = buildUdp({ src: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, dst: "192.0.2.53", sport: 1024 + (i % 60000), dport: 53, payload: 20 });
    const t = opts.backwards !== undefined && i > 0 && i % opts.backwards === 0 ? -1 : 0;
    w.writePacket(1795600000 + Math.floor(i / 1000) + t, (i % 1000) * 1000, f);
  }
  w.close();
  return Buffer.concat(chunks);
}

const big = join(dir, "big.pcap");
writeFileSync(big, capture(60000));
const small = join(dir, "small.pcap");
writeFileSync(small, capture(50));

test("a closed pipe ends replay --table - quietly with status 141, like conntrack -L | head", () => {
  for (const args of [
    ["replay", big, "--table", "-"],
    ["replay", big, "--events", "-", "-q"],
  ]) {
    const p = spawnSync(
      "bash",
      ["-c", `set -o pipefail; "${process.execPath}" "${BIN}" ${args.map((a) => `'${a}'`).join(" ")} 2>"${dir}/err" | head -n 2 >/dev/null; echo $?`],
      { encoding: "utf8", timeout: 60000 },
    );
    assert.equal(p.stdout.trim(), "141", args.join(" "));
    const err = readFileSync(join(dir, "err"), "utf8");
    assert.doesNotMatch(err, /EPIPE|\n\s+at /, err);
  }
});

test("a closed pipe ends demo --table - and rules output quietly too", () => {
  const p = spawnSync("bash", ["-c", `set -o pipefail; "${process.execPath}" "${BIN}" demo --table - 2>"${dir}/err2" | head -n 1 >/dev/null; echo $?`], {
    encoding: "utf8",
    timeout: 120000,
  });
  assert.equal(p.stdout.trim(), "141");
  assert.doesNotMatch(readFileSync(join(dir, "err2"), "utf8"), /EPIPE|\n\s+at /);
});

/**
 * Waits until the child has installed its SIGINT handler (its SigCgt mask in
 * /proc shows it), then a little longer for it to read what was sent: a
 * signal before that would kill a loading Node, whatever the CLI does.
 */
async function handlerInstalled(pid: number): Promise<void> {
  for (let i = 0; i < 600; i++) {
    const m = /^SigCgt:\s*([0-9a-f]+)$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    if (m && (BigInt(`0x${m[1]}`) & 2n) !== 0n) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  await new Promise((r) => setTimeout(r, 1000));
}

async function interrupted(signal: "SIGINT" | "SIGTERM"): Promise<{ code: number | null; stdout: string; stderr: string }> {
  // A live stream: the first 50 records, then nothing until the signal (as `tcpdump -w - |` on a quiet link).
  const bytes = capture(50);
  const child = spawn(process.execPath, [BIN, "replay", "-", "--json"], { stdio: ["pipe", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  child.stdin.write(bytes);
  await handlerInstalled(child.pid as number);
  child.kill(signal);
  const code = await new Promise<number | null>((r) => child.on("close", (c) => r(c)));
  child.stdin.destroy();
  return { code, stdout, stderr };
}

test("SIGINT on a live stream finishes the run: summary of what was read, says interrupted, exit 130", async () => {
  const r = await interrupted("SIGINT");
  assert.equal(r.code, 130, r.stderr);
  const j = JSON.parse(r.stdout) as { interrupted: boolean; packets: { total: number }; entries: { total: number } };
  assert.equal(j.interrupted, true);
  assert.equal(j.packets.total, 50);
  assert.equal(j.entries.total, 50);
  assert.deepEqual(validate(SCHEMA, j), []);
  assert.match(r.stderr, /interrupted by SIGINT after 50 packets/);
});

test("SIGTERM likewise, exit 143, with the table flushed", async () => {
  const bytes = capture(20);
  const child = spawn(process.execPath, [BIN, "replay", "-", "--table", "-", "-q"], { stdio: ["pipe", "pipe", "pipe"] });
  let stdout = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stdin.write(bytes);
  await handlerInstalled(child.pid as number);
  child.kill("SIGTERM");
  const code = await new Promise<number | null>((r) => child.on("close", (c) => r(c)));
  child.stdin.destroy();
  assert.equal(code, 143);
  assert.equal(stdout.trim().split("\n").length, 20);
});

test("captures and rulesets from FIFOs and process substitution are read", () => {
  const fifo = join(dir, "cap.fifo");
  execFileSync("mkfifo", [fifo]);
  const p = spawnSync("bash", ["-c", `cat "${small}" > "${fifo}" & "${process.execPath}" "${BIN}" replay "${fifo}" --json; wait`], {
    encoding: "utf8",
    timeout: 60000,
  });
  assert.equal(p.status, 0, p.stderr);
  assert.equal((JSON.parse(p.stdout) as { entries: { total: number } }).entries.total, 50);
  const rules = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A FORWARD -m conntrack --ctstate INVALID -j DROP\nCOMMIT\n";
  writeFileSync(join(dir, "r.v4"), rules);
  const q = spawnSync("bash", ["-c", `"${process.execPath}" "${BIN}" replay <(gzip -c "${small}") --rules <(cat "${dir}/r.v4") --json`], {
    encoding: "utf8",
    timeout: 60000,
  });
  assert.equal(q.status, 0, q.stderr);
  assert.equal((JSON.parse(q.stdout) as { entries: { total: number } }).entries.total, 50);
  const a = spawnSync("bash", ["-c", `"${process.execPath}" "${BIN}" rules analyze <(cat "${dir}/r.v4")`], { encoding: "utf8", timeout: 60000 });
  assert.equal(a.status, 0, a.stderr);
  const d = run(["replay", dir]);
  assert.equal(d.code, 2);
  assert.match(d.stderr, /is a directory/);
});

test("an empty capture prints only the error", () => {
  const empty = join(dir, "empty.pcap");
  writeFileSync(empty, new Uint8Array(0));
  const r = run(["replay", empty]);
  assert.equal(r.code, 2);
  assert.equal(r.stdout, "");
  assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
  const j = run(["replay", empty, "--json"]);
  assert.equal(j.stdout, "");
  assert.equal(j.code, 2);
});

test("an unsupported link type is warned about with the frames skipped; nothing decoded exits non-zero", () => {
  const f = join(dir, "lt105.pcap");
  writeFileSync(f, capture(7, { linkType: 105 }));
  const r = run(["replay", f]);
  assert.equal(r.code, 2);
  assert.match(r.stdout, /warning: 7 frames of link type 105 skipped/);
  assert.match(r.stderr, /Nothing in ".*lt105\.pcap" could be decoded.*105/);
  const j = run(["replay", f, "--json"]);
  const s = JSON.parse(j.stdout) as { capture: { unsupported_link_types: unknown } };
  assert.deepEqual(s.capture.unsupported_link_types, [{ link_type: 105, frames: 7 }]);
  assert.deepEqual(validate(SCHEMA, s), []);
});

test("timestamps that go backwards are counted and warned about", () => {
  const f = join(dir, "back.pcap");
  writeFileSync(f, capture(100, { backwards: 10 }));
  const r = run(["replay", f, "--json"]);
  assert.equal(r.code, 0, r.stderr);
  const s = JSON.parse(r.stdout) as { capture: { backwards_timestamps: number }; warnings: string[] };
  assert.equal(s.capture.backwards_timestamps, 9);
  assert.ok(s.warnings.some((w) => w.startsWith("9 records have a timestamp earlier")));
  assert.match(run(["replay", f]).stdout, /warning: 9 records have a timestamp earlier/);
});

test("every command refuses two things on standard output", () => {
  for (const args of [
    ["replay", small, "--table", "-", "--events", "-"],
    ["replay", small, "--events", "-", "--json"],
    ["demo", "--table", "-", "--json"],
  ]) {
    const r = run(args);
    assert.equal(r.code, 1, args.join(" "));
    assert.match(r.stderr, /all write to standard output/);
    assert.equal(r.stdout, "");
  }
});

test("--sysctl-file takes `sysctl -a | grep conntrack` output: one note for read-only keys, a warning for unknown ones", () => {
  const f = join(dir, "sysctl-a.txt");
  writeFileSync(
    f,
    [
      "net.netfilter.nf_conntrack_acct = 0",
      "net.netfilter.nf_conntrack_count = 160",
      "net.netfilter.nf_conntrack_dccp_loose = 1",
      "net.netfilter.nf_conntrack_max = 65536",
      "net.netfilter.nf_conntrack_udp_timeout = 45",
      "net.nf_conntrack_max = 65536",
    ].join("\n") + "\n",
  );
  const r = run(["replay", small, "--sysctl-file", f, "--json"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /note: .*ignored read-only "net\.netfilter\.nf_conntrack_count"/);
  assert.match(r.stderr, /warning: .*:3: ignored "net\.netfilter\.nf_conntrack_dccp_loose"/);
  assert.equal(r.stderr.trim().split("\n").length, 2, r.stderr);
  const s = JSON.parse(r.stdout) as { max_entries: number; sysctls: Record<string, number> };
  assert.equal(s.max_entries, 65536);
  assert.equal(s.sysctls.nf_conntrack_udp_timeout, 45);
  const typo = run(["replay", small, "--sysctl", "nf_conntrack_udp_timeot=5"]);
  assert.equal(typo.code, 1);
  assert.match(typo.stderr, /did you mean "nf_conntrack_udp_timeout"\?/);
});
