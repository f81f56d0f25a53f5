/**
 * `ctlab simulate`: what-if experiments on the conntrack engine. Without a
 * scenario it lists the built-in ones; with one it runs it (and every
 * `--vary`/`--rules` combination), prints the summary and writes the report.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { stringify as toYaml } from "yaml";
import { CliError } from "./errors.js";
import { BUILTIN_SCENARIOS, findBuiltin } from "../sim/builtin.js";
import { parseScenario, ScenarioError } from "../sim/scenario.js";
import type { Scenario } from "../sim/scenario.js";
import { baseDirOf, parseVary, planRuns, runAll } from "../sim/sweep.js";
import type { RunData } from "../sim/sweep.js";
import { sweepConclusions } from "../sim/conclusions.js";
import { toCsv, toOutput } from "../sim/output.js";
import { terminalSummary } from "../report/terminal.js";
import { htmlReport } from "../report/html.js";
import { PolicyError } from "../conntrack/policy/policy.js";
import { checkPolicyOptions, policyFromCli } from "../conntrack/policy/registry.js";
import type { PolicyConfig } from "../conntrack/policy/registry.js";
import { POLICY_NAMES } from "../conntrack/policy/policy.js";
import { matrixCells, matrixScenarios, planPolicyMatrix } from "../sim/policies.js";
import { policyMatrixMarkdown } from "../report/policies.js";

function strings(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];
}

/** The list printed by `ctlab simulate` without arguments. */
export function builtinList(): string {
  const w = Math.max(...BUILTIN_SCENARIOS.map((b) => b.name.length));
  return [
    "Built-in scenarios (ctlab simulate NAME, or a YAML file of your own):",
    ...BUILTIN_SCENARIOS.map((b) => `  ${b.name.padEnd(w)}  ${b.summary}`),
    "",
  ].join("\n");
}

function loadScenario(arg: string): { scenario: Scenario; yaml: string; file: string | null } {
  const b = findBuiltin(arg);
  if (b !== undefined) return { scenario: parseScenario(b.yaml, `built-in scenario "${arg}"`), yaml: b.yaml, file: null };
  let text: string;
  try {
    text = readFileSync(arg, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT" && !/[./]/.test(arg))
      throw new CliError(`Unknown scenario "${arg}": not a built-in (${BUILTIN_SCENARIOS.map((x) => x.name).join(", ")}) and no such file`);
    throw new CliError(`Cannot read scenario "${arg}": ${code ?? String(e)}`, 2);
  }
  return { scenario: parseScenario(text, `scenario "${arg}"`), yaml: text, file: arg };
}

function writeFile(path: string, text: string): void {
  try {
    writeFileSync(path, text);
  } catch (e) {
    throw new CliError(`Cannot write "${path}": ${(e as NodeJS.ErrnoException).code ?? String(e)}`, 2);
  }
}

function eta(start: number, f: number): string {
  if (f <= 0) return "";
  const left = ((performance.now() - start) / f) * (1 - f);
  return ` ETA ${Math.ceil(left / 1000)} s`;
}

/**
 * The policies of `--policy`/`--policy-opt` (empty: none named).
 * @throws CliError for an unknown policy or option, or options without a policy
 */
export function policiesFromOptions(opts: Record<string, unknown>, all = false): PolicyConfig[] {
  const names = strings(opts.policy);
  const popts = strings(opts.policyOpt);
  try {
    checkPolicyOptions(popts);
    if (names.length === 0 && popts.length > 0 && !all) throw new CliError('Option "--policy-opt" needs "--policy": it sets options of a table policy');
    const list = names.length === 0 && all ? [...POLICY_NAMES] : names;
    const seen = new Set<string>();
    for (const n of list) {
      if (seen.has(n)) throw new CliError(`Policy "${n}" given twice with "--policy"`);
      seen.add(n);
    }
    return list.map((n) => policyFromCli(n, popts));
  } catch (e) {
    if (e instanceof PolicyError) throw new CliError(e.message);
    throw e;
  }
}

function numberOption(v: unknown, name: string): number | undefined {
  if (typeof v !== "string") return undefined;
  const n = Number(v);
  if (v.trim() === "" || !Number.isFinite(n) || n <= 0) throw new CliError(`Invalid "${name}" value "${v}": expected a positive number`);
  return n;
}

/** `ctlab simulate --policies-matrix`: every built-in scenario × every policy, one table. */
async function policiesMatrix(opts: Record<string, unknown>): Promise<number> {
  const policies = policiesFromOptions(opts, true);
  const seed = numberOption(opts.seed, "--seed");
  const duration = numberOption(opts.duration, "--duration");
  const scenarios = matrixScenarios();
  let specs;
  try {
    specs = planPolicyMatrix(scenarios, policies, { ...(seed !== undefined ? { seed } : {}), ...(duration !== undefined ? { duration } : {}) });
  } catch (e) {
    if (e instanceof ScenarioError) throw new CliError(e.message);
    throw e;
  }
  const stop = new Int32Array(new SharedArrayBuffer(4));
  const onSigint = () => {
    if (Atomics.load(stop, 0) !== 0) process.exit(130);
    Atomics.store(stop, 0, 1);
    process.stderr.write("\nctlab: interrupted: printing the matrix of what was simulated (Ctrl-C again to quit at once)\n");
  };
  process.on("SIGINT", onSigint);
  const tty = process.stderr.isTTY && opts.progress !== false;
  const started = performance.now();
  let runs: RunData[];
  try {
    runs = await runAll(specs, stop, (f) => {
      if (tty) process.stderr.write(`\r  simulating ${specs.length} runs: ${Math.floor(f * 100)} %${eta(started, f)}   `);
    });
  } finally {
    process.off("SIGINT", onSigint);
    if (tty) process.stderr.write("\r\x1b[K");
  }
  const cells = matrixCells(runs);
  const names = policies.map((p) => (typeof p === "string" ? p : p.name));
  if (typeof opts.json === "string")
    writeFile(opts.json, JSON.stringify({ policies: names, scenarios, cells, interrupted: runs.some((r) => r.summary.interrupted) }, null, 2) + "\n");
  if (opts.quiet !== true) {
    process.stdout.write("Legitimate connections completed · live connections wrongly evicted, per built-in scenario and table policy\n\n");
    process.stdout.write(policyMatrixMarkdown(cells, names, scenarios));
  }
  return runs.some((r) => r.summary.interrupted) ? 130 : 0;
}

/** Runs `ctlab simulate [scenario]`; returns the exit code. */
export async function simulateCommand(arg: string | undefined, opts: Record<string, unknown>): Promise<number> {
  if (opts.policiesMatrix === true) {
    if (arg !== undefined) throw new CliError(`Option "--policies-matrix" runs every built-in scenario: give no scenario (got "${arg}")`);
    return policiesMatrix(opts);
  }
  if (arg === undefined) {
    process.stdout.write(builtinList());
    return 0;
  }
  let plan;
  let loaded;
  try {
    loaded = loadScenario(arg);
    let s = loaded.scenario;
    if (typeof opts.seed === "string" || typeof opts.duration === "string") {
      const o = structuredClone(s) as Record<string, unknown>;
      if (typeof opts.seed === "string") o.seed = Number(opts.seed);
      if (typeof opts.duration === "string") o.duration = Number(opts.duration);
      s = parseScenario(JSON.stringify(o), "scenario with --seed/--duration");
      loaded = { ...loaded, scenario: s };
    }
    if (typeof opts.scale === "string" && typeof opts.trafficFrom !== "string")
      throw new CliError(`Invalid --scale "${opts.scale}": it scales the capture of --traffic-from, and none was given`);
    if (typeof opts.trafficFrom === "string") {
      // The capture joins the scenario's sources (resolved against the working directory, as any command-line path).
      const scale = typeof opts.scale === "string" ? Number(opts.scale) : 1;
      const o = structuredClone(s) as Record<string, unknown> & { traffic: unknown[] };
      o.traffic = [...o.traffic, { type: "capture", file: resolve(opts.trafficFrom), scale }];
      s = parseScenario(JSON.stringify(o), "scenario with --traffic-from/--scale");
      loaded = { ...loaded, scenario: s };
    }
    const vary = strings(opts.vary).map(parseVary);
    for (const kv of strings(opts.sysctl)) vary.push(parseVary(kv));
    plan = planRuns(
      s,
      vary,
      strings(opts.rules),
      baseDirOf(loaded.file),
      typeof opts.writePcap === "string" ? opts.writePcap : null,
      policiesFromOptions(opts),
    );
  } catch (e) {
    if (e instanceof ScenarioError) throw new CliError(e.message);
    throw e;
  }
  const scenario = loaded.scenario;
  const stop = new Int32Array(new SharedArrayBuffer(4));
  const onSigint = () => {
    if (Atomics.load(stop, 0) !== 0) process.exit(130);
    Atomics.store(stop, 0, 1);
    process.stderr.write("\nctlab: interrupted: writing the report of what was simulated (Ctrl-C again to quit at once)\n");
  };
  process.on("SIGINT", onSigint);
  const tty = process.stderr.isTTY && opts.progress !== false;
  const started = performance.now();
  let runs: RunData[];
  try {
    runs = await runAll(plan, stop, (f) => {
      if (tty) process.stderr.write(`\r  simulating ${scenario.name}: ${Math.floor(f * 100)} %${eta(started, f)}   `);
    });
  } finally {
    process.off("SIGINT", onSigint);
    if (tty) process.stderr.write("\r\x1b[K");
  }
  const conclusions = sweepConclusions(runs);
  const out = toOutput(scenario, runs, conclusions);
  if (typeof opts.json === "string") writeFile(opts.json, JSON.stringify(out, null, 2) + "\n");
  if (typeof opts.csv === "string") writeFile(opts.csv, toCsv(runs));
  let html: string | null = null;
  if (opts.html !== false) {
    html = typeof opts.html === "string" ? opts.html : "report.html";
    writeFile(html, htmlReport({ title: scenario.name, scenarioYaml: toYaml(scenario), runs, conclusions }));
  }
  if (opts.quiet !== true) {
    process.stdout.write(terminalSummary(scenario.name, scenario.duration, runs, conclusions));
    if (html !== null) process.stdout.write(`\nReport: ${resolve(html)}\n`);
    if (typeof opts.writePcap === "string")
      process.stdout.write(
        `Traffic: ${resolve(opts.writePcap)} (replay it: ctlab replay ${opts.writePcap} --seed ${scenario.seed}${sysctlArgs(plan[0]?.sysctls ?? {}, scenario)})\n`,
      );
  }
  return runs.some((r) => r.summary.interrupted) ? 130 : 0;
}

function sysctlArgs(over: Record<string, number>, s: Scenario): string {
  const all = { ...s.table, ...over };
  return Object.entries(all)
    .map(([k, v]) => ` --sysctl ${k}=${v}`)
    .join("");
}
