import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { buildTcp, buildUdp } from "../../src/packet/build.js";
import { PcapWriter } from "../../src/packet/writer.js";
import { validate } from "../helpers/json-schema.js";

const SCHEMA = JSON.parse(readFileSync(fileURLToPath(new URL("../../../schema/replay-summary.schema.json", import.meta.url)), "utf8")) as Record<
  string,
  unknown
>;

const BIN = fileURLToPath(new URL("../../src/cli/bin.js", import.meta.url));

function run(args: string[], input?: Uint8Array) {
  const r = spawnSync(process.execPath, [BIN, ...args], { input, encoding: "buffer", timeout: 60000 });
  return { code: r.status, stdout: r.stdout.toString("utf8"), stderr: r.stderr.toString("utf8") };
}

/** One full TCP connection that ends in TIME_WAIT, one unanswered SYN, one DNS exchange. */
function smallCapture(path: string): Uint8Array {
  const chunks: Uint8Array[] = [];
  const w = new PcapWriter((c) => chunks.push(c));
  const c = { src: "10.0.0.1", dst: "10.0.0.2", sport: 40000, dport: 8080 };
  const s = { src: "10.0.0.2", dst: "10.0.0.1", sport: 8080, dport: 40000 };
  const pk: Uint8Array[] = [
    buildTcp({ ...c, flags: "S", seq: 1000, win: 64240 }),
    buildTcp({ ...s, flags: "SA", seq: 5000, ack: 1001, win: 65160 }),
    buildTcp({ ...c, flags: "A", seq: 1001, ack: 5001, win: 64240 }),
    buildTcp({ ...c, flags: "FA", seq: 1001, ack: 5001, win: 64240 }),
    buildTcp({ ...s, flags: "FA", seq: 5001, ack: 1002, win: 65160 }),
    buildTcp({ ...c, flags: "A", seq: 1002, ack: 5002, win: 64240 }),
    buildTcp({ src: "10.0.0.1", dst: "10.0.0.3", sport: 40001, dport: 22, flags: "S", seq: 7, win: 1024 }),
    buildUdp({ src: "10.0.0.1", dst: "10.0.0.53", sport: 41000, dport: 53, payload: 30 }),
    buildUdp({ src: "10.0.0.53", dst: "10.0.0.1", sport: 53, dport: 41000, payload: 60 }),
  ];
  pk.forEach((f, i) => w.writePacket(1795600000, i * 1000, f));
  w.close();
  const bytes = Buffer.concat(chunks);
  writeFileSync(path, bytes);
  return bytes;
}

const dir = mkdtempSync(join(tmpdir(), "ctlab-cli-"));
const cap = join(dir, "small.pcap");
const bytes = smallCapture(cap);
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));

test("replay --table - prints conntrack -L -o extended lines", () => {
  const r = run(["replay", cap, "--table", "-", "--clock", "frozen", "--sysctl", "nf_conntrack_checksum=0"]);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split("\n").sort();
  assert.equal(lines.length, 3);
  assert.ok(
    lines.includes(
      "ipv4     2 tcp      6 120 TIME_WAIT src=10.0.0.1 dst=10.0.0.2 sport=40000 dport=8080 src=10.0.0.2 dst=10.0.0.1 sport=8080 dport=40000 [ASSURED] mark=0 use=1",
    ),
    lines.join("\n"),
  );
  assert.ok(lines.some((l) => /^ipv4 {5}2 tcp {6}6 120 SYN_SENT src=10\.0\.0\.1 dst=10\.0\.0\.3 .*\[UNREPLIED\]/.test(l)));
  assert.ok(lines.some((l) => /^ipv4 {5}2 udp {6}17 30 src=10\.0\.0\.1 dst=10\.0\.0\.53 sport=41000 dport=53 src=/.test(l)));
  // The human summary moves to stderr when stdout carries the table.
  assert.match(r.stderr, /Packets by conntrack state/);
});

test("replay --json has the documented keys", () => {
  const r = run(["replay", cap, "--json", "--sysctl", "nf_conntrack_checksum=0"]);
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout) as Record<string, unknown>;
  for (const k of ["packets", "entries", "stats", "peak_entries", "memory", "census"]) assert.ok(k in j, k);
  const p = j.packets as Record<string, number>;
  assert.deepEqual([p.new, p.established, p.related, p.invalid, p.untracked], [3, 6, 0, 0, 0]);
  const e = j.entries as { by_protocol: Record<string, { entries: number; states: Record<string, number> }> };
  assert.deepEqual(e.by_protocol.tcp, { entries: 2, states: { TIME_WAIT: 1, SYN_SENT: 1 } });
  // No empty keys: UDP has no states.
  assert.deepEqual(e.by_protocol.udp, { entries: 1, states: {} });
  const errors = validate(SCHEMA, j);
  assert.deepEqual(errors, []);
  assert.equal(Object.keys(j.stats as object).join(" "), "found invalid insert insert_failed drop early_drop error search_restart clash_resolve chaintoolong");
  assert.equal(j.peak_entries, 3);
});

test("replay --events - prints conntrack -E -o extended lines", () => {
  const r = run(["replay", cap, "--events", "-", "--clock", "frozen", "--sysctl", "nf_conntrack_checksum=0", "-q"]);
  assert.equal(r.code, 0, r.stderr);
  const first = r.stdout.split("\n")[0];
  assert.equal(
    first,
    "    [NEW] ipv4     2 tcp      6 120 SYN_SENT src=10.0.0.1 dst=10.0.0.2 sport=40000 dport=8080 [UNREPLIED] src=10.0.0.2 dst=10.0.0.1 sport=8080 dport=40000",
  );
  assert.match(r.stdout, / \[UPDATE\] ipv4 {5}2 tcp {6}6 432000 ESTABLISHED .* \[ASSURED\]/);
});

test("replay reads standard input", () => {
  const r = run(["replay", "-", "--json", "--sysctl", "nf_conntrack_checksum=0"], bytes);
  assert.equal(r.code, 0, r.stderr);
  assert.equal((JSON.parse(r.stdout) as { entries: { total: number } }).entries.total, 3);
});

test("a truncated capture reports what was read, names the offset, exits 2", () => {
  const cut = join(dir, "cut.pcap");
  writeFileSync(cut, bytes.subarray(0, bytes.length - 10));
  const r = run(["replay", cut, "--json", "--sysctl", "nf_conntrack_checksum=0"]);
  assert.equal(r.code, 2);
  const j = JSON.parse(r.stdout) as { packets: { total: number }; error: { byte_offset: number } };
  assert.equal(j.packets.total, 8);
  assert.ok(j.error.byte_offset > 0);
  assert.match(r.stderr, new RegExp(`cut\\.pcap.*${j.error.byte_offset}`));
  assert.deepEqual(validate(SCHEMA, j), []);
  assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
});

test("bad options give one clear line and exit 1", () => {
  const r1 = run(["replay", cap, "--sysctl", "nf_conntrack_tcp_timeout_establised=10"]);
  assert.equal(r1.code, 1);
  assert.match(r1.stderr, /Unknown sysctl "nf_conntrack_tcp_timeout_establised".*nf_conntrack_tcp_timeout_established/s);
  const r2 = run(["replay", cap, "--sysctl", "nf_conntrack_max=-5"]);
  assert.equal(r2.code, 1);
  assert.match(r2.stderr, /nf_conntrack_max/);
  const r3 = run(["replay", cap, "--clock", "sometimes"]);
  assert.equal(r3.code, 1);
  assert.match(r3.stderr, /sometimes/);
  const r4 = run(["replay", join(dir, "missing.pcap")]);
  assert.equal(r4.code, 2);
  assert.match(r4.stderr, /Cannot read capture ".*missing\.pcap": ENOENT/);
  const r5 = run(["replay", cap, "--table", "-", "--json"]);
  assert.equal(r5.code, 1);
  assert.match(r5.stderr, /standard output/);
  for (const r of [r1, r2, r3, r4, r5]) assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
});

test("--sysctl-file reads sysctl.conf syntax", () => {
  const f = join(dir, "ct.conf");
  writeFileSync(f, "# tuning\nnet.netfilter.nf_conntrack_tcp_timeout_time_wait = 30\nnet.ipv4.ip_forward=1\nnet.netfilter.nf_conntrack_checksum=0\n");
  const r = run(["replay", cap, "--sysctl-file", f, "--table", "-", "--clock", "frozen"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /tcp {6}6 30 TIME_WAIT/);
});

test("demo runs and tells the table-full story", () => {
  const r = run(["demo", "--json"]);
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout) as { stats: Record<string, number>; log: { line: string }[]; peak_entries: number; max_entries: number };
  assert.deepEqual(validate(SCHEMA, j), []);
  assert.ok((j.stats.drop ?? 0) > 0);
  assert.equal(j.peak_entries, j.max_entries);
  assert.ok(j.log.some((l) => l.line.includes("table full, dropping packet")));
});
