import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { buildTcp, buildUdp } from "../../src/packet/build.js";
import { PcapWriter } from "../../src/packet/writer.js";
import { simulateOutputSchema } from "../../src/sim/output.js";
import { validate } from "../helpers/json-schema.js";

const BIN = fileURLToPath(new URL("../../src/cli/bin.js", import.meta.url));
const REPLAY_SCHEMA = JSON.parse(readFileSync(fileURLToPath(new URL("../../../schema/replay-summary.schema.json", import.meta.url)), "utf8")) as Record<
  string,
  unknown
>;
const dir = mkdtempSync(join(tmpdir(), "ctlab-policy-cli-"));
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));

function run(args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8", cwd: dir, timeout: 240_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test("simulate --policy A --policy B: side by side in the terminal, the HTML report and --json runs[] (params.policy, live_evictions, evictions by reason)", () => {
  const r = run(["simulate", "connection-flood", "--duration", "70", "--policy", "kernel", "--policy", "ctlab", "--json", "out.json", "--html", "r.html"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^Table policies$/m);
  assert.match(r.stdout, /^ {2}policy +legit ok +live evicted +drops +first drop/m);
  assert.match(r.stdout, /^ {2}ctlab +\d+\.\d\d % +0 /m);
  const out = simulateOutputSchema.parse(JSON.parse(readFileSync(join(dir, "out.json"), "utf8")));
  assert.deepEqual(
    out.runs.map((x) => x.params.policy),
    ["kernel", "ctlab"],
  );
  for (const x of out.runs) {
    assert.equal(x.summary.policy, x.params.policy);
    assert.equal(typeof x.summary.live_evictions, "number");
    assert.ok("early-drop" in x.summary.evictions && "idle" in x.summary.evictions);
  }
  assert.ok((out.runs[1]?.summary.evictions.idle ?? 0) > 0);
  const html = readFileSync(join(dir, "r.html"), "utf8");
  assert.match(html, /<section id="policies"><h2>Table policies<\/h2>/);
});

test("simulate refuses unknown policies and bad --policy-opt values before running, naming the option", () => {
  const cases: Array<[string[], RegExp]> = [
    [["--policy", "lru"], /Unknown table policy "lru": known are kernel, adaptive/],
    [["--policy", "adaptive", "--policy-opt", "adaptive.start=x"], /Invalid policy option adaptive\.start="x": expected a number/],
    [["--policy", "adaptive", "--policy-opt", "adaptive.stat=0.5"], /Unknown policy option "adaptive\.stat"/],
    [["--policy-opt", "adaptive.start=0.5"], /"--policy-opt" needs "--policy"/],
    [["--policy", "ctlab", "--policy", "ctlab"], /Policy "ctlab" given twice/],
  ];
  for (const [args, re] of cases) {
    const r = run(["simulate", "syn-flood", "--no-html", ...args]);
    assert.equal(r.code, 1, args.join(" "));
    assert.match(r.stderr, re);
    assert.doesNotMatch(r.stderr, /at .*\.js:\d+/);
  }
  const m = run(["simulate", "syn-flood", "--policies-matrix"]);
  assert.equal(m.code, 1);
  assert.match(m.stderr, /"--policies-matrix" runs every built-in scenario: give no scenario/);
});

test("simulate --policies-matrix prints one Markdown table: every built-in scenario × every policy given", () => {
  const r = run(["simulate", "--policies-matrix", "--policy", "kernel", "--policy", "ctlab", "--duration", "1", "--json", "m.json"]);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split("\n");
  assert.equal(lines[2], "| scenario | kernel | ctlab |");
  assert.equal(lines[3], "|---|---:|---:|");
  assert.ok(lines.some((l) => /^\| connection-flood \| \S+ % · \d+ \| \S+ % · \d+ \|$/.test(l)));
  assert.ok(!lines.some((l) => l.startsWith("| stateless ")));
  const m = JSON.parse(readFileSync(join(dir, "m.json"), "utf8")) as { cells: unknown[]; policies: string[]; scenarios: string[] };
  assert.deepEqual(m.policies, ["kernel", "ctlab"]);
  assert.equal(m.cells.length, m.scenarios.length * 2);
});

test("replay --policy with --policy-opt reports the policy in the summary (text and JSON, per the schema)", () => {
  const chunks: Uint8Array[] = [];
  const w = new PcapWriter((c) => chunks.push(c));
  // Six unanswered flows into a four-entry table.
  for (let i = 0; i < 6; i++) w.writePacket(1795600000 + i, 0, buildUdp({ src: "10.0.0.1", dst: "10.0.0.53", sport: 41000 + i, dport: 53, payload: 30 }));
  w.writePacket(1795600010, 0, buildTcp({ src: "10.0.0.1", dst: "10.0.0.2", sport: 40000, dport: 80, flags: "S", seq: 1 }));
  w.close();
  const cap = join(dir, "p.pcap");
  writeFileSync(cap, Buffer.concat(chunks));
  const args = ["replay", cap, "--sysctl", "nf_conntrack_max=4", "--policy", "adaptive", "--policy-opt", "adaptive.start=0.5,adaptive.end=1.1"];
  const j = run([...args, "--json"]);
  assert.equal(j.code, 0, j.stderr);
  const s = JSON.parse(j.stdout) as { policy?: { name: string; options: Record<string, number>; evictions: Partial<Record<string, number>> } };
  assert.deepEqual(validate(REPLAY_SCHEMA, s), []);
  const pol = s.policy;
  assert.ok(pol !== undefined);
  assert.equal(pol.name, "adaptive");
  assert.deepEqual(pol.options, { start: 0.5, end: 1.1 });
  assert.ok((pol.evictions["scaled-timeout"] ?? 0) > 0);
  const t = run(args);
  assert.match(t.stdout, /^Table policy adaptive \(start=0\.5 end=1\.1\): evicted scaled-timeout \d+/m);
  const bad = run(["replay", cap, "--policy", "quota", "--policy-opt", "quota.per=subnet"]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /Invalid policy option quota\.per="subnet": expected one of address, prefix, zone/);
  const plain = JSON.parse(run(["replay", cap, "--json"]).stdout) as Record<string, unknown>;
  assert.equal("policy" in plain, false);
});
