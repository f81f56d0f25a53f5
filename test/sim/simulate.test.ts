import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseScenario, scenarioJsonSchema, ScenarioError, validateScenario } from "../../src/sim/scenario.js";
import { runScenario } from "../../src/sim/engine.js";
import { simulateJsonSchema, simulateOutputSchema, toCsv, toOutput } from "../../src/sim/output.js";
import { planRuns, parseVary, runSpec } from "../../src/sim/sweep.js";
import { BUILTIN_SCENARIOS, builtinScenario } from "../../src/sim/builtin.js";
import { kernelMemoryBytes } from "../../src/sim/model.js";
import { replay } from "../../src/replay/replay.js";
import { forEachPacketSync } from "../../src/packet/source.js";

const FLOOD = `name: flood-at-the-web-server
seed: 1
duration: 600            # simulated seconds
table: { nf_conntrack_max: 262144 }
traffic:
  - type: clients
    rate: 200            # new connections per second
    service: tcp/443
  - type: syn-flood
    rate: 50000
    start: 60
    spoofed: true
`;

function scenario(yaml: string) {
  return parseScenario(yaml);
}

function throwsScenario(yaml: string, key: string, ...parts: string[]): void {
  assert.throws(
    () => parseScenario(yaml),
    (e: unknown) => {
      assert.ok(e instanceof ScenarioError, String(e));
      assert.equal(e.key, key, e.message);
      for (const p of parts) assert.ok(e.message.includes(p), `"${e.message}" lacks "${p}"`);
      return true;
    },
  );
}

test("scenario: the issue's flood file parses as written, defaults filled in", () => {
  const s = scenario(FLOOD);
  assert.equal(s.duration, 600);
  assert.equal(s.traffic.length, 2);
  const c = s.traffic[0];
  assert.ok(c !== undefined && c.type === "clients");
  assert.equal(c.rate, 200);
  assert.equal(c.close, "client-fin");
  const f = s.traffic[1];
  assert.ok(f !== undefined && f.type === "syn-flood");
  assert.equal(f.start, 60);
  assert.equal(f.answered, true);
});

test("scenario: errors name the key, the value and what was expected", () => {
  throwsScenario("duration: 10\ntraffic:\n  - type: clients\n    rate: -5\n", "traffic.0.rate", '"traffic.0.rate" is -5', ">0");
  throwsScenario("duration: 10\ntraffic:\n  - type: syn-flood\n", "traffic.0.rate", "is nothing", "number");
  throwsScenario("duration: 10\ntraffic:\n  - type: clients\n    rate: 5\n    service: http\n", "traffic.0.service", '"http"', "tcp/PORT");
  throwsScenario("duration: 10\nbogus: 1\ntraffic:\n  - type: clients\n    rate: 5\n", "bogus", 'unknown key "bogus"');
  throwsScenario("duration: 10\ntraffic:\n  - type: teleport\n    rate: 5\n", "traffic.0.type", "clients", "syn-flood");
  throwsScenario("duration: 10\ntraffic:\n  - type: clients\n    rate: 5\n    start: 20\n", "traffic.0.start", "before the end");
  throwsScenario("duration: 10\ntable: { nf_conntrack_maxx: 5 }\ntraffic:\n  - type: clients\n    rate: 5\n", "table.nf_conntrack_maxx", "nf_conntrack_maxx");
  throwsScenario("duration: 10\ntraffic: [\n", "", "line");
  throwsScenario("- 1\n- 2\n", "", "mapping");
});

test("scenario: the shipped JSON Schemas are the ones the zod definitions generate", () => {
  assert.deepEqual(JSON.parse(readFileSync("schema/scenario.schema.json", "utf8")), scenarioJsonSchema());
  assert.deepEqual(JSON.parse(readFileSync("schema/simulate.schema.json", "utf8")), simulateJsonSchema());
});

test("simulate: deterministic for a seed, different for another", () => {
  const y = (seed: number) => `seed: ${seed}\nduration: 20\ntraffic:\n  - type: clients\n    rate: 50\n  - type: dns\n    rate: 20\n`;
  const a = runScenario(scenario(y(3)));
  const b = runScenario(scenario(y(3)));
  const c = runScenario(scenario(y(4)));
  assert.deepEqual(
    a.timeline,
    b.timeline.map((x, i) => ({ ...x, ctlab_memory_bytes: a.timeline[i]?.ctlab_memory_bytes ?? -1 })),
  );
  assert.deepEqual(a.tracker.formatTable(), b.tracker.formatTable());
  assert.notDeepEqual(a.tracker.formatTable(), c.tracker.formatTable());
});

test("simulate: --json output follows its schema; CSV has a row per run and second", () => {
  const s = scenario("duration: 12\ntraffic:\n  - type: clients\n    rate: 30\n  - type: syn-flood\n    rate: 200\n    start: 5\n");
  const specs = planRuns(s, [parseVary("nf_conntrack_max=256,100000")], [], ".", null);
  const runs = specs.map((sp) => runSpec(sp));
  const out = toOutput(s, runs, []);
  const r = simulateOutputSchema.safeParse(JSON.parse(JSON.stringify(out)));
  assert.ok(r.success, r.success ? "" : JSON.stringify(r.error.issues.slice(0, 3)));
  assert.equal(out.runs.length, 2);
  assert.deepEqual(
    out.runs.map((x) => x.params),
    [{ nf_conntrack_max: 256 }, { nf_conntrack_max: 100000 }],
  );
  assert.equal(out.runs[0]?.timeline.length, 12);
  assert.ok(out.runs[0].summary.first_drop_s === null || out.runs[0].summary.early_drops > 0);
  assert.ok(out.runs[0].summary.peak_entries <= 256);
  assert.equal(out.runs[1]?.summary.first_drop_s, null);
  const csv = toCsv(runs).trim().split("\n");
  assert.equal(csv.length, 1 + 24);
});

test("simulate: --vary of an unknown name or a bad value is refused before running", () => {
  const s = scenario("duration: 5\ntraffic:\n  - type: clients\n    rate: 5\n");
  assert.throws(() => planRuns(s, [parseVary("nf_conntrack_nope=1,2")], [], ".", null), /not a sysctl and not a key/);
  assert.throws(() => planRuns(s, [parseVary("traffic.0.rate=-1")], [], ".", null), /traffic.0.rate/);
  assert.throws(() => parseVary("nf_conntrack_max"), /NAME=V1,V2/);
  const ok = planRuns(s, [parseVary("traffic.0.rate=5,10"), parseVary("nf_conntrack_max=1000,2000")], [], ".", null);
  assert.equal(ok.length, 4);
  assert.deepEqual(ok[3]?.params, { "traffic.0.rate": 10, nf_conntrack_max: 2000 });
});

test("clients: a SYN the full table drops is retransmitted with the kernel's backoff, then the client gives up", () => {
  const dir = mkdtempSync(join(tmpdir(), "sim-syn-"));
  try {
    const pcap = join(dir, "t.pcap");
    // 20 bots fill a 20-entry table with assured connections held open; then one client tries.
    const s = scenario(`duration: 200
table: { nf_conntrack_max: 20 }
traffic:
  - type: connection-flood
    rate: 100
    end: 0.2
    bots: 20
  - type: clients
    rate: 1
    arrival: constant
    start: 1
    end: 1.5
`);
    const r = runScenario(s, {}, { writePcap: pcap });
    assert.equal(r.summary.legit.attempted, 1);
    assert.equal(r.summary.legit.failed, 1);
    assert.equal(r.summary.legit.completed, 0);
    const synTimes: number[] = [];
    forEachPacketSync(pcap, (v) => {
      const d = v.data;
      const o = v.l3Off + v.l3HdrLen;
      if (v.proto === 6 && ((d[o + 13] as number) & 0x12) === 0x02 && v.src[0]! >>> 16 === 0x6441) synTimes.push(v.tsSec + v.tsNsec / 1e9);
    });
    const t0 = synTimes[0] as number;
    assert.deepEqual(
      synTimes.map((t) => Math.round(t - t0)),
      [0, 1, 3, 7, 15, 31, 63],
    );
    // Given up when the last SYN's 64 s timer ran out: 127 s after the first SYN.
    const failedAt = r.timeline.find((x) => x.legit_failed > 0)?.t;
    // The event at exactly 128 s falls in the second sampled at 129 s.
    assert.equal(failedAt, 1 + 127 + 1);
    assert.equal(r.summary.drops, 7);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("clients: a closed port answers RST and the connection fails at once; an open one completes", () => {
  const s = scenario(
    "duration: 5\nhost: { services: [tcp/22] }\ntraffic:\n  - type: clients\n    rate: 10\n    service: tcp/443\n  - type: clients\n    rate: 10\n    service: tcp/22\n",
  );
  const r = runScenario(s);
  // A RST as the only reply deletes the entry at once (tcp_packet: "we can delete the conntrack immediately").
  assert.ok(r.timeline.every((x) => (x.by_state["tcp CLOSE"] ?? 0) === 0));
  assert.ok(r.summary.legit.failed >= 40 && r.summary.legit.failed <= 60, String(r.summary.legit.failed));
  assert.ok(r.summary.legit.completed >= 40, String(r.summary.legit.completed));
});

test("dns: the resolver retries after its timeout when the full table drops its query, and fails after its attempts", () => {
  const s = scenario(`duration: 40
table: { nf_conntrack_max: 10 }
traffic:
  - type: connection-flood
    rate: 100
    end: 0.1
    bots: 10
  - type: dns
    rate: 1
    arrival: constant
    start: 1
    end: 1.5
    timeout: 5
    attempts: 3
`);
  const r = runScenario(s);
  assert.equal(r.summary.legit.failed, 1);
  // Three attempts of two queries each, all dropped; failure 15 s after the first.
  assert.equal(r.summary.drops, 6);
  assert.equal(r.timeline.find((x) => x.legit_failed > 0)?.t, 17);
});

test("lossy path: RSTs lost before the tracking host leave ESTABLISHED orphans at the loss rate", () => {
  const s = scenario(
    "duration: 60\nseed: 2\ntraffic:\n  - type: clients\n    rate: 100\n    close: rst\n    loss: { rst: 0.5, where: before, direction: to-server }\n",
  );
  const r = runScenario(s);
  const est = r.timeline[r.timeline.length - 1]?.by_state["tcp ESTABLISHED"] ?? 0;
  // 100/s × 60 s × 0.5 = 3000 orphans, ± Poisson noise.
  assert.ok(Math.abs(est - 3000) < 250, `ESTABLISHED ${est}`);
  const after = runScenario(
    scenario("duration: 60\nseed: 2\ntraffic:\n  - type: clients\n    rate: 100\n    close: rst\n    loss: { rst: 0.5, where: after, direction: to-server }\n"),
  );
  assert.ok((after.timeline[after.timeline.length - 1]?.by_state["tcp ESTABLISHED"] ?? 0) < 50);
});

/** Simulated occupancy at the end against the model, per state. */
function modelHolds(yaml: string, tol: number): void {
  const r = runScenario(scenario(yaml));
  const last = r.timeline[r.timeline.length - 1];
  assert.ok(last !== undefined);
  for (const [state, want] of Object.entries(r.model.occupancy)) {
    if (want < 500) continue;
    const got = last.by_state[state] ?? 0;
    assert.ok(Math.abs(got - want) / want < tol, `${state}: simulated ${got}, model ${want.toFixed(0)}`);
  }
}

test("model: Little's law per state holds the simulation within a few percent on stationary scenarios", () => {
  modelHolds("duration: 200\ntraffic:\n  - type: clients\n    rate: 100\n", 0.04);
  modelHolds("duration: 150\ntraffic:\n  - type: syn-flood\n    rate: 1000\n    answered: false\n", 0.02);
  modelHolds("duration: 100\ntraffic:\n  - type: syn-flood\n    rate: 1000\n    backscatter: 0.3\n", 0.03);
  modelHolds("duration: 60\ntraffic:\n  - type: udp-flood\n    rate: 2000\n", 0.02);
  modelHolds("duration: 60\ntraffic:\n  - type: dns\n    rate: 200\n", 0.05);
  modelHolds("duration: 60\ntraffic:\n  - type: port-scan\n    rate: 500\n", 0.02);
  modelHolds("duration: 60\nhost: { services: [tcp/22] }\ntraffic:\n  - type: port-scan\n    rate: 500\n    ports: [1, 100]\n", 0.05);
});

test("model: time to full is predicted within a few seconds of the simulated one", () => {
  const r = runScenario(
    scenario(
      "duration: 90\ntable: { nf_conntrack_max: 50000 }\ntraffic:\n  - type: clients\n    rate: 50\n  - type: syn-flood\n    rate: 2000\n    start: 30\n",
    ),
  );
  const full = r.timeline.find((x) => x.entries >= 50000)?.t;
  assert.ok(full !== undefined && r.model.time_to_full_s !== null);
  assert.ok(Math.abs(full - r.model.time_to_full_s) <= 2, `simulated ${full}, model ${r.model.time_to_full_s}`);
});

test("memory: kernel bytes are object size × entries + 8 B × buckets, plus the event extension", () => {
  assert.equal(kernelMemoryBytes(1000, 1024, { objSize: 256 }), 256_000 + 8192);
  assert.equal(kernelMemoryBytes(1000, 1024, { objSize: 256, events: true }), 288_000 + 8192);
  const r = runScenario(
    scenario("duration: 3\ntable: { nf_conntrack_max: 1000, nf_conntrack_buckets: 512 }\ntraffic:\n  - type: clients\n    rate: 20\n"),
    {},
    { objSize: 320 },
  );
  assert.equal(r.summary.kernel_memory_bytes.at_max, 320 * 1000 + 8 * 512);
  for (const x of r.timeline) assert.equal(x.kernel_memory_bytes, 320 * x.entries + 8 * 512);
});

test("one engine: the simulated traffic written with --write-pcap and replayed with the capture clock gives the same table and counters", async () => {
  const dir = mkdtempSync(join(tmpdir(), "sim-pcap-"));
  try {
    const pcap = join(dir, "s.pcap");
    const s = scenario(`duration: 40
seed: 9
table: { nf_conntrack_max: 3000, nf_conntrack_buckets: 1024 }
traffic:
  - type: clients
    rate: 40
    requests: 2
    think: 0.3
  - type: dns
    rate: 10
  - type: syn-flood
    rate: 300
    start: 10
    backscatter: 0.2
  - type: clients
    rate: 20
    close: rst
    loss: { rst: 0.4, where: before }
`);
    const r = runScenario(s, {}, { writePcap: pcap });
    assert.ok(r.summary.early_drops > 0 || r.summary.drops > 0, "the table filled");
    const back = await replay(pcap, { sysctls: s.table, seed: s.seed, clock: "capture" });
    assert.deepEqual(back.tracker.formatTable({ extended: true }), r.tracker.formatTable({ extended: true }));
    assert.deepEqual([...back.tracker.stats.entries()], [...r.tracker.stats.entries()]);
    assert.equal(back.summary.packets.total, r.summary.packets);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("built-in scenarios: every one validates and runs (shortened)", () => {
  for (const b of BUILTIN_SCENARIOS) {
    const s = builtinScenario(b.name);
    const short = validateScenario({
      ...s,
      duration: 8,
      traffic: s.traffic.map((t) => ({ ...t, start: Math.min(t.start, 4), ...("rate" in t ? { rate: Math.min(t.rate, 2000) } : {}) })),
    });
    const specs = planRuns(short, [], [], ".", null);
    const r = runSpec(specs[0]!);
    assert.equal(r.timeline.length, 8, b.name);
    assert.ok(r.summary.packets > 0, b.name);
  }
});

test("stateless: with port 443 NOTRACKed the table stays empty", () => {
  const s = builtinScenario("stateless");
  const short = validateScenario({ ...s, duration: 5, traffic: s.traffic.map((t) => ({ ...t, start: 1, rate: 500 })) });
  const [spec] = planRuns(short, [], [], ".", null);
  const r = runSpec(spec!);
  assert.equal(r.summary.peak_entries, 0);
  assert.ok(r.summary.legit.completed > 0);
});

test("cli: simulate lists the built-ins, refuses bad input before running, writes JSON and HTML", async () => {
  const { spawnSync } = await import("node:child_process");
  const { writeFileSync, existsSync: exists } = await import("node:fs");
  const bin = join(process.cwd(), "dist", "src", "cli", "bin.js");
  const dir = mkdtempSync(join(tmpdir(), "sim-cli-"));
  try {
    const list = spawnSync(process.execPath, [bin, "simulate"], { encoding: "utf8" });
    assert.equal(list.status, 0);
    for (const b of BUILTIN_SCENARIOS) assert.match(list.stdout, new RegExp(`^  ${b.name} `, "m"));
    const bad = join(dir, "bad.yaml");
    writeFileSync(bad, "duration: 10\ntraffic:\n  - type: syn-flood\n    rate: 100\n    start: 20\n");
    const r = spawnSync(process.execPath, [bin, "simulate", bad], { encoding: "utf8", cwd: dir });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /"traffic\.0\.start" is 20: expected a start before the end/);
    assert.ok(!exists(join(dir, "report.html")));
    const v = spawnSync(process.execPath, [bin, "simulate", "syn-flood", "--vary", "nf_conntrack_bogus=1"], { encoding: "utf8", cwd: dir });
    assert.equal(v.status, 1);
    assert.match(v.stderr, /nf_conntrack_bogus/);
    const ok = join(dir, "ok.yaml");
    writeFileSync(ok, "name: tiny\nduration: 5\ntraffic:\n  - type: clients\n    rate: 20\n");
    const good = spawnSync(process.execPath, [bin, "simulate", ok, "--json", "out.json", "--csv", "out.csv"], { encoding: "utf8", cwd: dir });
    assert.equal(good.status, 0, good.stderr);
    assert.match(good.stdout, /ctlab simulate: tiny, 5 s simulated/);
    assert.match(good.stdout, /Report: .*report\.html/);
    const out = simulateOutputSchema.parse(JSON.parse(readFileSync(join(dir, "out.json"), "utf8")));
    assert.equal(out.runs[0]?.timeline.length, 5);
    assert.match(readFileSync(join(dir, "report.html"), "utf8"), /<title>tiny/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("sampler: the slot scan counts the states a dump of the table shows (forEachEntry), expired entries left out", async () => {
  const { StateCounter } = await import("../../src/sim/states.js");
  const { trackerEngine } = await import("../../src/conntrack/tracker.js");
  const { IPS } = await import("../../src/conntrack/constants.js");
  const s = scenario(`duration: 30
seed: 5
table: { nf_conntrack_max: 2000, nf_conntrack_udp_timeout: 5 }
traffic:
  - type: clients
    rate: 40
    requests: 2
  - type: clients
    rate: 20
    close: rst
    loss: { rst: 0.5 }
  - type: dns
    rate: 30
  - type: udp-flood
    rate: 50
  - type: syn-flood
    rate: 100
    start: 20
    backscatter: 0.3
`);
  const r = runScenario(s);
  const walk: Record<string, number> = {};
  r.tracker.forEachEntry((e) => {
    const k = e.proto === 6 ? `tcp ${e.stateName}` : e.proto === 17 ? (e.status & IPS.SEEN_REPLY ? "udp REPLIED" : "udp UNREPLIED") : `proto ${e.proto}`;
    walk[k] = (walk[k] ?? 0) + 1;
  });
  const scan = new StateCounter().count(trackerEngine(r.tracker));
  assert.deepEqual(scan.byState, walk);
  assert.ok(Object.keys(walk).length >= 5, JSON.stringify(walk));
  assert.deepEqual(r.timeline[r.timeline.length - 1]?.by_state, walk);
});

test("cli: Ctrl-C during a run writes the report of what was simulated (JSON, HTML, summary marked interrupted) and exits 130", async () => {
  const { spawn } = await import("node:child_process");
  const { writeFileSync, existsSync: exists } = await import("node:fs");
  const bin = join(process.cwd(), "dist", "src", "cli", "bin.js");
  const dir = mkdtempSync(join(tmpdir(), "sim-int-"));
  try {
    const file = join(dir, "long.yaml");
    // Far more than the test waits: it can only end by the interrupt.
    writeFileSync(file, "name: long\nduration: 100000\ntraffic:\n  - type: clients\n    rate: 500\n  - type: syn-flood\n    rate: 5000\n");
    const child = spawn(process.execPath, [bin, "simulate", file, "--json", "out.json", "--html", "out.html", "--write-pcap", "t.pcap"], { cwd: dir });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((res) => child.on("exit", (code) => res(code)));
    // The pcap is opened when the run starts (in its worker): from then on the interrupt handler is in place.
    const t0 = Date.now();
    while (!exists(join(dir, "t.pcap")) && Date.now() - t0 < 60_000) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 700));
    child.kill("SIGINT");
    const code = await exited;
    assert.equal(code, 130, stderr);
    assert.match(stderr, /interrupted: writing the report of what was simulated/);
    assert.match(stdout, /ctlab simulate: long, interrupted: \d+ of 100000 s simulated/);
    const out = simulateOutputSchema.parse(JSON.parse(readFileSync(join(dir, "out.json"), "utf8")));
    const run = out.runs[0];
    assert.ok(run !== undefined);
    assert.equal(run.summary.interrupted, true);
    assert.ok(run.timeline.length >= 1 && run.timeline.length < 100000, String(run.timeline.length));
    assert.equal(run.summary.simulated_s, run.timeline.length);
    assert.ok(run.summary.packets > 0);
    assert.match(readFileSync(join(dir, "out.html"), "utf8"), /id="interrupted"[^]*stopped with Ctrl-C[^]*\(\d+ s\)/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("cli: a --vary sweep runs in worker threads, one result per value, side by side", async () => {
  const { spawnSync } = await import("node:child_process");
  const { writeFileSync } = await import("node:fs");
  const bin = join(process.cwd(), "dist", "src", "cli", "bin.js");
  const dir = mkdtempSync(join(tmpdir(), "sim-sweep-"));
  try {
    writeFileSync(
      join(dir, "s.yaml"),
      "name: sweep\nduration: 6\ntraffic:\n  - type: clients\n    rate: 20\n  - type: syn-flood\n    rate: 300\n    start: 2\n",
    );
    const r = spawnSync(process.execPath, [bin, "simulate", "s.yaml", "--vary", "nf_conntrack_max=200,100000", "--json", "o.json", "--no-html"], {
      encoding: "utf8",
      cwd: dir,
    });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /2 runs/);
    assert.match(r.stdout, /Comparison/);
    const out = simulateOutputSchema.parse(JSON.parse(readFileSync(join(dir, "o.json"), "utf8")));
    assert.deepEqual(
      out.runs.map((x) => x.params.nf_conntrack_max),
      [200, 100000],
    );
    assert.ok(out.runs.every((x) => x.timeline.length === 6 && !x.summary.interrupted));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("model: a demand above nf_conntrack_max is capped at the table (occupancy scaled down), the uncapped demand kept apart and said", async () => {
  const { predict, timeoutsFromSysctls } = await import("../../src/sim/model.js");
  const { runConclusions } = await import("../../src/sim/conclusions.js");
  // 1 000 SYN/s held 60 s in SYN_RECV: 60 000 wanted of a 10 000-entry table.
  const s = scenario("duration: 120\ntable: { nf_conntrack_max: 10000 }\ntraffic:\n  - type: syn-flood\n    rate: 1000\n");
  const p = predict(s, timeoutsFromSysctls({}), 10000);
  assert.equal(p.exceeds_table, true);
  assert.ok(Math.abs(p.wanted - 60000) < 1, String(p.wanted));
  assert.equal(p.total, 10000);
  const sum = Object.values(p.occupancy).reduce((a, b) => a + b, 0);
  assert.ok(Math.abs(sum - 10000) < 1e-6, String(sum));
  assert.ok(Math.abs((p.wanted_occupancy["tcp SYN_RECV"] ?? 0) - 60000) < 1);
  const roomy = predict(s, timeoutsFromSysctls({}), 100000);
  assert.equal(roomy.exceeds_table, false);
  assert.equal(roomy.total, roomy.wanted);
  const r = runScenario(validateScenario({ ...s, duration: 20 }));
  assert.ok(r.model.total <= 10000);
  assert.ok(
    runConclusions(r).some((c) => c.includes("wants 20,000 entries") && c.includes("2.0× nf_conntrack_max")),
    runConclusions(r).join("\n"),
  );
});

test("capture source: a simulated capture played back as traffic gives the same table; looped and scaled, each pass makes new entries with valid checksums", () => {
  const dir = mkdtempSync(join(tmpdir(), "sim-cap-"));
  try {
    const pcap = join(dir, "a.pcap");
    const a = runScenario(
      scenario(`duration: 10
seed: 4
table: { nf_conntrack_max: 5000 }
traffic:
  - type: clients
    rate: 20
    arrival: constant
    requests: 2
    think: 0.2
  - type: dns
    rate: 5
    arrival: constant
`),
      {},
      { writePcap: pcap },
    );
    const b = runScenario(
      validateScenario({ duration: 10, seed: 4, table: { nf_conntrack_max: 5000 }, traffic: [{ type: "capture", file: pcap, loop: false }] }),
    );
    assert.equal(b.summary.packets, a.summary.packets);
    assert.deepEqual(b.tracker.formatTable({ extended: true }), a.tracker.formatTable({ extended: true }));
    assert.deepEqual([...b.tracker.stats.entries()], [...a.tracker.stats.entries()]);
    // Bots that hold their connections: every entry stays ESTABLISHED, so each pass must add its own.
    const held = join(dir, "held.pcap");
    const h = runScenario(
      scenario("duration: 2\ntraffic:\n  - type: connection-flood\n    rate: 25\n    bots: 50\n  - type: dns\n    rate: 10\n    arrival: constant\n"),
      {},
      { writePcap: held },
    );
    const perPass = h.tracker.count;
    assert.ok(perPass >= 60, String(perPass));
    // The capture spans ~2 s; at scale 2 a pass takes ~1 s: 4 passes in 4 s.
    const looped = join(dir, "looped.pcap");
    const l = runScenario(validateScenario({ duration: 4, traffic: [{ type: "capture", file: held, scale: 2 }] }), {}, { writePcap: looped });
    assert.equal(l.summary.invalid, 0);
    // The span is a little under 2 s (the first packets are at 0, the last just before 2 s): a few packets of a fifth pass fit.
    assert.ok(l.summary.packets >= 4 * h.summary.packets && l.summary.packets < 5 * h.summary.packets, String(l.summary.packets));
    const est = l.timeline[l.timeline.length - 1]?.by_state["tcp ESTABLISHED"] ?? 0;
    const estPerPass = h.timeline[h.timeline.length - 1]?.by_state["tcp ESTABLISHED"] ?? -1;
    assert.ok(est >= 4 * estPerPass && est < 5 * estPerPass, `${est} ESTABLISHED, ${estPerPass} per pass`);
    // Pass 1 moved the clients by 2^16 and kept the host's address.
    const firstOfPass: string[] = [];
    forEachPacketSync(looped, (v) => {
      if (v.index === 1 || v.index === h.summary.packets + 1) firstOfPass.push(`${v.src[0]! >>> 0} ${v.dst[0]! >>> 0}`);
    });
    const [p0, p1] = firstOfPass.map((x) => x.split(" ").map(Number));
    assert.ok(p0 !== undefined && p1 !== undefined);
    assert.equal(p1[0], (p0[0]! + 0x10000) >>> 0);
    assert.equal(p1[1], p0[1]);
    // The kernel's replay of the looped traffic agrees: same table (one engine), no checksum refused.
    const back = runScenario(validateScenario({ duration: 4, traffic: [{ type: "capture", file: looped, loop: false }] }));
    assert.equal(back.tracker.count, l.tracker.count);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("cli: --traffic-from adds a capture to the scenario, --scale speeds it up; a missing capture or a --scale alone is refused", async () => {
  const { spawnSync } = await import("node:child_process");
  const { writeFileSync } = await import("node:fs");
  const bin = join(process.cwd(), "dist", "src", "cli", "bin.js");
  const dir = mkdtempSync(join(tmpdir(), "sim-tf-"));
  try {
    runScenario(scenario("duration: 4\ntraffic:\n  - type: clients\n    rate: 30\n"), {}, { writePcap: join(dir, "day.pcap") });
    writeFileSync(join(dir, "s.yaml"), "name: mine\nduration: 6\ntraffic:\n  - type: syn-flood\n    rate: 100\n");
    const r = spawnSync(process.execPath, [bin, "simulate", "s.yaml", "--traffic-from", "day.pcap", "--scale", "4", "--json", "o.json", "--no-html"], {
      encoding: "utf8",
      cwd: dir,
    });
    assert.equal(r.status, 0, r.stderr);
    const out = simulateOutputSchema.parse(JSON.parse(readFileSync(join(dir, "o.json"), "utf8")));
    const t = (out.scenario.traffic as Array<Record<string, unknown>>)[1];
    assert.equal(t?.type, "capture");
    assert.equal(t.scale, 4);
    assert.equal(t.file, join(dir, "day.pcap"));
    assert.ok((out.runs[0]?.summary.legit.attempted ?? -1) === 0);
    const missing = spawnSync(process.execPath, [bin, "simulate", "s.yaml", "--traffic-from", "nope.pcap"], { encoding: "utf8", cwd: dir });
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /traffic\.1\.file.*nope\.pcap.*ENOENT/);
    const alone = spawnSync(process.execPath, [bin, "simulate", "s.yaml", "--scale", "3"], { encoding: "utf8", cwd: dir });
    assert.equal(alone.status, 1);
    assert.match(alone.stderr, /--scale "3".*--traffic-from/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
