/**
 * Runs of a simulation: one scenario × every combination of `--vary` values
 * × every ruleset, spread over worker threads (one run per worker at a time).
 */
import { readFileSync } from "node:fs";
import { cpus } from "node:os";
import { dirname, resolve } from "node:path";
import { Worker } from "node:worker_threads";
import { sysctlSpec, resolveSysctls, SysctlError } from "../conntrack/sysctl.js";
import { loadRuleset } from "../firewall/load.js";
import { HostModel, parseLocalSpecs } from "../firewall/host.js";
import { runScenario } from "./engine.js";
import type { RunResult } from "./engine.js";
import { runConclusions } from "./conclusions.js";
import { ScenarioError, validateScenario } from "./scenario.js";
import type { Scenario } from "./scenario.js";
import { BUILTIN_RULESETS } from "./builtin.js";
import type { PolicyConfig } from "../conntrack/policy/registry.js";
import { loadCapture } from "./capture.js";
import { lanPrefix } from "./sources.js";
import { CaptureError } from "../packet/errors.js";

/** One `--vary NAME=V1,V2`. */
export interface Vary {
  name: string;
  values: string[];
}

/** What a run needs, in a form that crosses to a worker thread. */
export interface RunSpec {
  scenario: unknown;
  sysctls: Record<string, number>;
  label: string;
  params: Record<string, string | number>;
  rules: { name: string; text: string } | null;
  writePcap: string | null;
  /** The table policy (null: kernel, not named in params). */
  policy?: PolicyConfig | null;
}

/** A run's result without the live tracker (what a worker sends back). */
export type RunData = Omit<RunResult, "tracker" | "path"> & { conclusions: string[] };

/**
 * Parses `NAME=V1,V2,…`.
 * @throws ScenarioError for a malformed value
 */
export function parseVary(text: string): Vary {
  const eq = text.indexOf("=");
  if (eq <= 0) throw new ScenarioError("--vary", `Invalid --vary "${text}": expected NAME=V1,V2,... (a sysctl or a scenario key such as traffic.1.rate)`);
  const values = text
    .slice(eq + 1)
    .split(",")
    .map((v) => v.trim())
    .filter((v) => v !== "");
  if (values.length === 0) throw new ScenarioError("--vary", `Invalid --vary "${text}": no values after "="`);
  return { name: text.slice(0, eq).trim(), values };
}

function isSysctl(name: string): boolean {
  return sysctlSpec(name) !== undefined || sysctlSpec(`nf_conntrack_${name}`) !== undefined;
}

/** Sets a dotted key ("traffic.1.rate") in a copy of the scenario object; refuses keys that do not exist. */
function setPath(obj: unknown, path: string, value: string): unknown {
  const copy = structuredClone(obj) as Record<string, unknown>;
  const keys = path.split(".");
  let o: Record<string, unknown> = copy;
  for (let i = 0; i < keys.length - 1; i++) {
    const next = o[keys[i] as string];
    if (next === null || typeof next !== "object") throw new ScenarioError(path, `Invalid --vary "${path}": not a sysctl and not a key of the scenario`);
    o = next as Record<string, unknown>;
  }
  const last = keys[keys.length - 1] as string;
  if (!(last in o)) throw new ScenarioError(path, `Invalid --vary "${path}": not a sysctl and not a key of the scenario`);
  const num = Number(value);
  o[last] = value === "true" ? true : value === "false" ? false : Number.isFinite(num) && value !== "" ? num : value;
  return copy;
}

/** Reads a ruleset file (or `builtin:NAME`) relative to `base`. */
export function readRules(spec: string, base: string): { name: string; text: string } {
  if (spec.startsWith("builtin:")) {
    const t = BUILTIN_RULESETS[spec.slice(8)];
    if (t === undefined)
      throw new ScenarioError(
        "rules",
        `Unknown built-in ruleset "${spec}": known are ${Object.keys(BUILTIN_RULESETS)
          .map((k) => `builtin:${k}`)
          .join(", ")}`,
      );
    return { name: spec, text: t };
  }
  const p = resolve(base, spec);
  try {
    return { name: spec, text: readFileSync(p, "utf8") };
  } catch (e) {
    throw new ScenarioError("rules", `Cannot read ruleset "${spec}": ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
}

/**
 * The runs of a scenario: the grid of `vary` values × rulesets. Everything is
 * checked here, before anything runs (unknown names, values the scenario
 * schema refuses, unreadable or invalid rulesets).
 * @param scenario the validated scenario (its input form is re-validated per run)
 * @param rules ruleset files (empty: the scenario's own `rules`, if any)
 * @param policies table policies, each a run of every combination (empty: the kernel's, unnamed)
 */
export function planRuns(
  given: Scenario,
  vary: readonly Vary[],
  rules: readonly string[],
  baseDir: string,
  writePcap: string | null,
  policies: readonly PolicyConfig[] = [],
): RunSpec[] {
  const scenario = withCapturesResolved(given, baseDir);
  let grid: Array<{ obj: unknown; sysctls: Record<string, number>; params: Record<string, string | number>; label: string[] }> = [
    { obj: scenario, sysctls: {}, params: {}, label: [] },
  ];
  for (const v of vary) {
    const sys = isSysctl(v.name);
    const next: typeof grid = [];
    for (const g of grid) {
      for (const val of v.values) {
        let obj = g.obj;
        const sysctls = { ...g.sysctls };
        if (sys) {
          const n = Number(val);
          try {
            resolveSysctls({ [v.name]: Number.isFinite(n) ? n : val });
          } catch (e) {
            if (e instanceof SysctlError) throw new ScenarioError(v.name, `Invalid --vary ${v.name}: ${e.message}`);
            throw e;
          }
          sysctls[v.name] = n;
        } else {
          obj = setPath(obj, v.name, val);
          validateScenario(obj, `scenario with --vary ${v.name}=${val}`);
        }
        next.push({
          obj,
          sysctls,
          params: { ...g.params, [v.name]: Number.isFinite(Number(val)) ? Number(val) : val },
          label: [...g.label, `${v.name}=${val}`],
        });
      }
    }
    grid = next;
  }
  const ruleSpecs = rules.length > 0 ? rules : scenario.rules !== undefined ? [scenario.rules] : [];
  const rulesets = ruleSpecs.map((r) => readRules(r, baseDir));
  for (const r of rulesets) {
    try {
      loadRuleset(r.text, { file: r.name });
    } catch (e) {
      throw new ScenarioError("rules", `Invalid ruleset "${r.name}": ${(e as Error).message}`);
    }
  }
  const out: RunSpec[] = [];
  const rs: Array<{ name: string; text: string } | null> = rulesets.length > 0 ? rulesets : [null];
  for (const r of rs) {
    for (const g of grid) {
      const label = [...g.label, ...(r !== null && rs.length > 1 ? [r.name] : [])];
      out.push({
        scenario: g.obj,
        sysctls: g.sysctls,
        label: label.length > 0 ? label.join(" ") : scenario.name,
        params: r !== null && rs.length > 1 ? { ...g.params, rules: r.name } : g.params,
        rules: r,
        writePcap: out.length === 0 ? writePcap : null,
      });
    }
  }
  if (policies.length === 0) return out;
  // Every policy runs every combination, policy by policy (side by side in the reports).
  const withPolicy: RunSpec[] = [];
  for (const pc of policies) {
    const name = typeof pc === "string" ? pc : pc.name;
    for (const r of out) {
      withPolicy.push({
        ...r,
        label: r.label === scenario.name ? name : `${r.label} ${name}`,
        params: { ...r.params, policy: name },
        policy: pc,
        writePcap: withPolicy.length === 0 ? r.writePcap : null,
      });
    }
  }
  return withPolicy;
}

/**
 * The scenario with its capture files resolved against `base` (runs happen in
 * workers, whatever their directory), each checked to load.
 * @throws ScenarioError naming the source's `file` key
 */
function withCapturesResolved(s: Scenario, base: string): Scenario {
  if (!s.traffic.some((t) => t.type === "capture")) return s;
  const traffic = s.traffic.map((t, i) => {
    if (t.type !== "capture") return t;
    const file = resolve(base, t.file);
    let count: number;
    try {
      count = loadCapture(file).count;
    } catch (e) {
      if (e instanceof CaptureError) throw new ScenarioError(`traffic.${i}.file`, `Invalid scenario: "traffic.${i}.file": ${e.message}`);
      throw e;
    }
    if (count === 0)
      throw new ScenarioError(`traffic.${i}.file`, `Invalid scenario: "traffic.${i}.file" is "${t.file}": the capture holds no IPv4 or IPv6 packet`);
    return { ...t, file };
  });
  return { ...s, traffic };
}

/**
 * The host a scenario's ruleset runs on: the server with its one address, or
 * a gateway with its WAN address on eth0 (the default route, what MASQUERADE
 * takes) and the LAN's first address on eth1.
 */
export function scenarioHost(s: Scenario): HostModel {
  const gw = s.host.gateway;
  if (gw === undefined) return new HostModel({ addrs: parseLocalSpecs([s.host.address]) });
  const lan = lanPrefix(gw.lan);
  const first = (lan.net + 1) >>> 0;
  const text = [first >>> 24, (first >>> 16) & 0xff, (first >>> 8) & 0xff, first & 0xff].join(".");
  const bits = 32 - Math.log2(lan.size);
  return new HostModel({ addrs: parseLocalSpecs([`eth0=${s.host.address}/32`, `eth1=${text}/${bits}`]), defaultIface: "eth0" });
}

/** Runs one spec in this thread. */
export function runSpec(spec: RunSpec, hooks: { onProgress?: (f: number) => void; shouldStop?: () => boolean } = {}): RunData {
  const s = validateScenario(spec.scenario);
  let rules = null;
  if (spec.rules !== null) {
    const ruleset = loadRuleset(spec.rules.text, { file: spec.rules.name });
    rules = { ruleset, host: scenarioHost(s), name: spec.rules.name };
  }
  const r = runScenario(s, spec.sysctls, {
    label: spec.label,
    params: spec.params,
    rules,
    writePcap: spec.writePcap,
    policy: spec.policy ?? null,
    ...(hooks.onProgress ? { onProgress: hooks.onProgress } : {}),
    ...(hooks.shouldStop ? { shouldStop: hooks.shouldStop } : {}),
  });
  const { tracker: _t, path: _p, ...data } = r;
  return { ...data, conclusions: runConclusions(r) };
}

/**
 * Runs the specs in worker threads, several at once when there is more than
 * one (one run per worker, as many workers as cores). Even a single run goes
 * to a worker unless `inThread`: the main thread stays free for Ctrl-C (a
 * signal handler cannot run while a run holds the event loop) and progress.
 * @param stop a one-element Int32Array over shared memory: non-zero stops every run
 */
export async function runAll(
  specs: readonly RunSpec[],
  stop: Int32Array,
  onProgress: (done: number) => void,
  opts: { inThread?: boolean } = {},
): Promise<RunData[]> {
  const shouldStop = () => Atomics.load(stop, 0) !== 0;
  if (specs.length === 1 && opts.inThread === true) return [runSpec(specs[0] as RunSpec, { onProgress, shouldStop })];
  const results: RunData[] = new Array<RunData>(specs.length);
  const progress = new Array<number>(specs.length).fill(0);
  const report = () => onProgress(progress.reduce((a, b) => a + b, 0) / specs.length);
  let next = 0;
  const workers = Math.max(1, Math.min(specs.length, cpus().length));
  const url = new URL("./worker.js", import.meta.url);
  const one = (): Promise<void> =>
    new Promise((resolveOne, reject) => {
      if (next >= specs.length) {
        resolveOne();
        return;
      }
      const i = next++;
      const w = new Worker(url, { workerData: { spec: specs[i], stop: stop.buffer } });
      w.on("message", (m: { progress?: number; result?: RunData; error?: string }) => {
        if (m.progress !== undefined) {
          progress[i] = m.progress;
          report();
        } else if (m.result !== undefined) {
          results[i] = m.result;
          progress[i] = 1;
          report();
        } else if (m.error !== undefined) reject(new Error(m.error));
      });
      w.on("error", reject);
      w.on("exit", () => {
        if (results[i] === undefined) {
          reject(new Error(`Run "${specs[i]?.label ?? i}" ended without a result`));
          return;
        }
        one().then(resolveOne, reject);
      });
    });
  await Promise.all(Array.from({ length: workers }, one));
  return results;
}

/** The directory scenario-relative paths resolve against. */
export function baseDirOf(file: string | null): string {
  return file === null ? process.cwd() : dirname(resolve(file));
}
