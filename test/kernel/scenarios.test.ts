/**
 * Every scenario of test/scenarios against the real kernel.
 *
 * All scenarios that can share a namespace are concatenated into one capture
 * (their address blocks are disjoint), injected once, and the results split
 * per scenario by address block: nft counts packets per ct state per block,
 * flows are attributed by their original source address. ctlab replays the
 * same re-framed capture with a frozen clock. A scenario fails when anything
 * differs, unless KNOWN_DIFFERENCES lists it with a reason (mirrored in
 * FIDELITY.md).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { buildBatch, SCENARIOS, scenarioPrefixes } from "../scenarios/index.js";
import type { Scenario } from "../scenarios/index.js";
import { runCtlab } from "./ctlab-run.js";
import type { Comparison, Difference } from "./compare.js";
import { blockOfLine, compareObserved, formatDifferences, observedFromKernel } from "./compare.js";
import { runKernel, scenarioIpRecords, scratchDir } from "./inject.js";
import type { KernelRun } from "./inject.js";
import { kernelSkipReason } from "./netns.js";
import type { CounterGroup } from "./netns.js";

/**
 * Scenarios where ctlab knowingly differs from the kernel, with the reason.
 * Keep in step with FIDELITY.md. An entry that no longer differs fails the
 * test too, so the table never goes stale.
 */
export const KNOWN_DIFFERENCES: Readonly<Record<string, string>> = {};

const skip = kernelSkipReason();
const batchable = SCENARIOS.filter((s) => s.kernel?.alone !== true);

/** nft chain names allow letters, digits and underscores. */
function groupName(s: Scenario): string {
  return s.name.replace(/[^A-Za-z0-9]/g, "_");
}

describe("kernel: scenarios", { skip: skip ?? false }, () => {
  let scratch: { dir: string; remove: () => void } | undefined;
  let kernel: KernelRun | undefined;
  let comparison: Comparison | undefined;
  let failure: unknown;
  const byBlock = new Map<number, Scenario>();

  before(async () => {
    scratch = scratchDir();
    try {
      const { frames, parts } = buildBatch(batchable);
      for (const p of parts) byBlock.set(p.block, p.scenario);
      const groups: CounterGroup[] = parts.map((p) => {
        const pr = scenarioPrefixes(p.scenario);
        return { name: groupName(p.scenario), v4: [pr.v4], v6: [pr.v6] };
      });
      const pcap = join(scratch.dir, "scenarios.pcap");
      kernel = await runKernel(scenarioIpRecords(frames), pcap, { groups });
      assert.equal(kernel.reframe.written, frames.length, `Re-framing dropped frames: ${JSON.stringify(kernel.reframe.skipped)}`);
      const ctlab = runCtlab(pcap, { groups });
      comparison = compareObserved(observedFromKernel(kernel.result), ctlab, (line) => {
        const b = blockOfLine(line);
        const s = b === undefined ? undefined : byBlock.get(b);
        return s === undefined ? undefined : groupName(s);
      });
    } catch (e) {
      failure = e;
    }
  });

  after(() => {
    scratch?.remove();
    if (comparison === undefined) return;
    const bad = new Set(comparison.differences.map((d) => d.group).filter((g) => g !== undefined));
    const same = batchable.filter((s) => !bad.has(groupName(s))).length;
    const known = batchable.filter((s) => bad.has(groupName(s)) && KNOWN_DIFFERENCES[s.name] !== undefined);
    process.stderr.write(
      `kernel agreement: scenarios ${same}/${batchable.length} identical` +
        (known.length > 0 ? `; ${known.length} known differences: ${known.map((s) => s.name).join(", ")}` : "") +
        ` (${kernel?.result.ingress ?? 0} frames, ${comparison.flows} flows, replay ${kernel?.result.replayMs ?? 0} ms)\n`,
    );
  });

  function diffsOf(s: Scenario): Difference[] {
    if (failure !== undefined) throw failure;
    assert.ok(comparison !== undefined, "The comparison did not run");
    return comparison.differences.filter((d) => d.group === groupName(s));
  }

  for (const s of batchable) {
    it(s.name, () => {
      const d = diffsOf(s);
      const known = KNOWN_DIFFERENCES[s.name];
      if (known !== undefined) {
        assert.ok(d.length > 0, `Scenario "${s.name}" is listed in KNOWN_DIFFERENCES but now agrees with the kernel: remove it`);
        return;
      }
      assert.equal(d.length, 0, `ctlab differs from the kernel in "${s.name}" (${s.description}):\n${formatDifferences(d)}`);
    });
  }

  it("batch totals (conntrack -S, -C, packets per ct state)", () => {
    if (failure !== undefined) throw failure;
    assert.ok(comparison !== undefined);
    const d = comparison.differences.filter((x) => x.group === undefined);
    // Totals can only differ when some scenario differs; listed scenarios explain them.
    const explained = comparison.differences.some((x) => x.group !== undefined && KNOWN_DIFFERENCES[x.group] !== undefined);
    if (!explained) assert.equal(d.length, 0, `Batch totals differ:\n${formatDifferences(d)}`);
  });
});
