/**
 * Table full: the kernel with a tiny GLOBAL nf_conntrack_max and the
 * smallest hash table, against ctlab with the same settings.
 *
 * - tablefull-assured: every entry is ASSURED, so early_drop can never evict
 *   and every new flow is dropped — deterministic, compared exactly.
 * - tablefull-early-drop: which entries early_drop evicts depends on the
 *   kernel's boot-random hash seed (and the GC worker may evict more in the
 *   background), so both sides are held to the same invariants instead and
 *   their figures printed side by side.
 * - tablefull-churn: TCP and UDP clients against a full table, a quarter of
 *   it evictable. The hash key is mixed with a per-namespace random value, so
 *   every kernel run (a fresh namespace) draws another seed: the kernel runs
 *   several times, ctlab with many seeds, and every figure (drop, early_drop,
 *   invalid, the clients' and servers' packets by ct state, the final count)
 *   must agree in mean within the seeds' spread.
 *
 * The global values are restored in a finally block, under the kernel lock.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { buildScenario, CHURN_HOSTS, findScenario, scenarioBlock } from "../scenarios/index.js";
import type { Scenario } from "../scenarios/index.js";
import { runCtlab } from "./ctlab-run.js";
import type { CtlabRun } from "./ctlab-run.js";
import type { Observed } from "./compare.js";
import { compareObserved, formatDifferences, observedFromKernel } from "./compare.js";
import { runKernel, scenarioIpRecords, scratchDir } from "./inject.js";
import type { KernelRun } from "./inject.js";
import { CT_STATES, kernelSkipReason, readGlobalLimits } from "./netns.js";
import type { CounterGroup, CtStateName } from "./netns.js";

const skip = kernelSkipReason();

function limitsOf(s: Scenario): { max: number; hashsize: number } {
  const l = s.kernel?.globalLimits;
  if (l === undefined) throw new Error(`Scenario "${s.name}" has no global limits`);
  return l;
}

async function runBoth(s: Scenario, dir: string): Promise<{ kernel: KernelRun; ctlab: CtlabRun }> {
  const pcap = join(dir, `${s.name}.pcap`);
  const limits = limitsOf(s);
  const before = readGlobalLimits();
  const kernel = await runKernel(scenarioIpRecords(buildScenario(s)), pcap, { globalLimits: limits });
  assert.deepEqual(readGlobalLimits(), before, "The global conntrack limits were not restored");
  const ctlab = runCtlab(pcap, { globalLimits: limits });
  return { kernel, ctlab };
}

/** Invariants every faithful table-full run satisfies; returns the violations. */
function invariants(o: Observed, frames: number, dropped: number, max: number): string[] {
  const bad: string[] = [];
  if (o.count > max) bad.push(`count ${o.count} exceeds nf_conntrack_max ${max}`);
  const created = o.events.filter((e) => e.kind === "NEW").length;
  const destroyed = o.events.filter((e) => e.kind === "DESTROY").length;
  if (created - destroyed !== o.count) bad.push(`NEW ${created} − DESTROY ${destroyed} ≠ count ${o.count}`);
  const counted = CT_STATES.reduce((a, st) => a + o.ctState[st], 0);
  if (counted + dropped !== frames) bad.push(`packets counted ${counted} + dropped ${dropped} ≠ frames ${frames}`);
  if ((o.stats["drop"] ?? 0) !== dropped) bad.push(`conntrack -S drop ${o.stats["drop"] ?? 0} ≠ dropped packets ${dropped}`);
  const assuredKilled = o.events.filter((e) => e.kind === "DESTROY" && e.line.assured);
  if (assuredKilled.length > 0) bad.push(`ASSURED entries evicted: ${assuredKilled.map((e) => e.line.key).join("; ")}`);
  if ((o.stats["early_drop"] ?? 0) + (o.stats["drop"] ?? 0) === 0) bad.push("the table never filled (no drop, no early_drop)");
  return bad;
}

function figures(o: Observed, dropped: number): string {
  return (
    `count=${o.count} drop=${o.stats["drop"] ?? 0} early_drop=${o.stats["early_drop"] ?? 0} ` +
    `invalid=${o.stats["invalid"] ?? 0} dropped=${dropped} ` +
    `NEW=${o.events.filter((e) => e.kind === "NEW").length} DESTROY=${o.events.filter((e) => e.kind === "DESTROY").length} ` +
    `ct state ${CT_STATES.map((s) => `${s}=${o.ctState[s]}`).join(" ")}`
  );
}

describe("kernel: table full", { skip: skip ?? false }, () => {
  let scratch: { dir: string; remove: () => void } | undefined;
  before(() => {
    scratch = scratchDir();
  });
  after(() => scratch?.remove());

  it("tablefull-assured: nothing evictable, every new flow dropped (exact comparison)", async () => {
    assert.ok(scratch !== undefined);
    const s = findScenario("tablefull-assured");
    const { kernel, ctlab } = await runBoth(s, scratch.dir);
    const k = observedFromKernel(kernel.result);
    const kDropped = kernel.result.ingress - CT_STATES.reduce((a, st) => a + k.ctState[st], 0);
    const max = limitsOf(s).max;
    assert.deepEqual(invariants(k, kernel.result.ingress, kDropped, max), [], "The kernel run broke a table-full invariant");
    assert.deepEqual(invariants(ctlab, kernel.result.ingress, ctlab.dropped, max), [], "The ctlab run broke a table-full invariant");
    const cmp = compareObserved(k, ctlab);
    process.stderr.write(`tablefull-assured: kernel ${figures(k, kDropped)}\n`);
    process.stderr.write(`tablefull-assured: ctlab  ${figures(ctlab, ctlab.dropped)}\n`);
    assert.equal(cmp.differences.length, 0, `ctlab differs from the kernel:\n${formatDifferences(cmp.differences)}`);
  });

  it("tablefull-early-drop: early drop and drops obey the same invariants on both sides", async () => {
    assert.ok(scratch !== undefined);
    const s = findScenario("tablefull-early-drop");
    const { kernel, ctlab } = await runBoth(s, scratch.dir);
    const k = observedFromKernel(kernel.result);
    const kDropped = kernel.result.ingress - CT_STATES.reduce((a, st) => a + k.ctState[st], 0);
    const max = limitsOf(s).max;
    process.stderr.write(`tablefull-early-drop: kernel ${figures(k, kDropped)}\n`);
    process.stderr.write(`tablefull-early-drop: ctlab  ${figures(ctlab, ctlab.dropped)}\n`);
    assert.deepEqual(invariants(k, kernel.result.ingress, kDropped, max), [], "The kernel run broke a table-full invariant");
    assert.deepEqual(invariants(ctlab, kernel.result.ingress, ctlab.dropped, max), [], "The ctlab run broke a table-full invariant");
    // The handshakes that got an entry end ASSURED on both sides, and the table is (nearly) full
    // on both: early drop may evict several unassured entries of one bucket for one insertion,
    // so with an unlucky hash seed (random on both sides) the end count can fall short by a few.
    assert.ok(ctlab.count >= max - 2, `ctlab's table is not (nearly) full at the end: ${ctlab.count}`);
    assert.ok(k.count >= max - 2, `The kernel's table is not (nearly) full at the end: ${k.count}`);
  });
});

/** Figures of one churn run. */
type Figures = Record<string, number>;

const FIGURE_STATES: readonly CtStateName[] = ["new", "established", "invalid"];

function churnFigures(o: Observed, dropped: number): Figures {
  const f: Figures = {
    drop: o.stats["drop"] ?? 0,
    early_drop: o.stats["early_drop"] ?? 0,
    invalid: o.stats["invalid"] ?? 0,
    dropped,
    count: o.count,
  };
  for (const g of ["client", "server"]) {
    const st = o.groups.get(g);
    for (const name of FIGURE_STATES) f[`${g}.${name}`] = st?.[name] ?? 0;
  }
  return f;
}

function meanSd(xs: readonly number[]): { mean: number; sd: number } {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const v = xs.length > 1 ? xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1) : 0;
  return { mean, sd: Math.sqrt(v) };
}

/** Kernel runs (fresh namespaces, fresh hash seeds) and ctlab seeds of the churn comparison. */
const CHURN_KERNEL_RUNS = 4;
const CHURN_CTLAB_SEEDS = 24;

describe("kernel: table full under churn (statistical)", { skip: skip ?? false }, () => {
  let scratch: { dir: string; remove: () => void } | undefined;
  before(() => {
    scratch = scratchDir();
  });
  after(() => scratch?.remove());

  it("tablefull-churn: the same drop, early_drop, invalid counts and clients' fate as the kernel, within the hash seed's spread", async () => {
    assert.ok(scratch !== undefined);
    const s = findScenario("tablefull-churn");
    const limits = limitsOf(s);
    const block = scenarioBlock(s);
    const groups: CounterGroup[] = (["flood", "client", "server", "filler"] as const).map((g) => ({
      name: g,
      v4: [`10.${block}.${CHURN_HOSTS[g]}.0/24`],
      v6: [],
    }));
    const records = [...scenarioIpRecords(buildScenario(s))];
    const kernel: Figures[] = [];
    let pcap = "";
    let frames = 0;
    for (let i = 0; i < CHURN_KERNEL_RUNS; i++) {
      pcap = join(scratch.dir, `${s.name}-${i}.pcap`);
      const run = await runKernel(records, pcap, { globalLimits: limits, groups });
      const k = observedFromKernel(run.result);
      const kDropped = run.result.ingress - CT_STATES.reduce((a, st) => a + k.ctState[st], 0);
      assert.deepEqual(invariants(k, run.result.ingress, kDropped, limits.max), [], "The kernel run broke a table-full invariant");
      kernel.push(churnFigures(k, kDropped));
      frames = run.result.ingress;
    }
    const ctlab: Figures[] = [];
    for (let seed = 1; seed <= CHURN_CTLAB_SEEDS; seed++) {
      const run = runCtlab(pcap, { globalLimits: limits, groups, seed: seed * 7919 });
      assert.deepEqual(invariants(run, frames, run.dropped, limits.max), [], `The ctlab run (seed ${seed}) broke a table-full invariant`);
      ctlab.push(churnFigures(run, run.dropped));
    }
    const bad: string[] = [];
    const lines: string[] = [];
    for (const key of Object.keys(kernel[0] as Figures)) {
      const k = meanSd(kernel.map((f) => f[key] as number));
      const c = meanSd(ctlab.map((f) => f[key] as number));
      // Under the same distribution the two means differ by N(0, σ²(1/K + 1/N)); σ from the
      // larger spread (the kernel's GC worker adds some of its own), 3.5 σ plus one packet.
      const sigma = Math.max(k.sd, c.sd);
      const tol = 3.5 * sigma * Math.sqrt(1 / kernel.length + 1 / ctlab.length) + 1;
      const ok = Math.abs(k.mean - c.mean) <= tol;
      lines.push(
        `  ${key.padEnd(18)} kernel ${k.mean.toFixed(1).padStart(6)} ± ${k.sd.toFixed(1).padEnd(5)} [${kernel.map((f) => f[key]).join(" ")}]` +
          `  ctlab ${c.mean.toFixed(1).padStart(6)} ± ${c.sd.toFixed(1).padEnd(5)}  ${ok ? "ok" : `DIFFERS (tolerance ${tol.toFixed(1)})`}`,
      );
      if (!ok) bad.push(key);
    }
    process.stderr.write(`tablefull-churn: ${kernel.length} kernel runs, ${ctlab.length} ctlab seeds (mean ± sd)\n${lines.join("\n")}\n`);
    assert.deepEqual(bad, [], "ctlab's figures differ from the kernel's beyond the hash seed's spread");
  });
});
