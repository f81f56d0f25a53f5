/**
 * Every scenario of test/scenarios against the real kernel.
 *
 * Scenarios that can share a namespace are put into one capture (their
 * address blocks are disjoint), injected once, and the results split per
 * scenario by address block: nft counts packets per ct state per block,
 * flows are attributed by their original source address. Two batches:
 * - frozen: laid end to end, injected at speed, ctlab on a frozen clock;
 * - real time (timing scenarios): merged by timestamp, replayed at the
 *   capture's pace, ctlab on the capture clock.
 * A scenario fails when anything differs, unless KNOWN_DIFFERENCES lists it
 * with a reason (mirrored in FIDELITY.md). Table-full scenarios run alone in
 * tablefull.test.ts.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { buildBatch, buildMerged, SCENARIOS, scenarioPrefixes } from "../scenarios/index.js";
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

/** nft chain names allow letters, digits and underscores. */
function groupName(s: Scenario): string {
  return s.name.replace(/[^A-Za-z0-9]/g, "_");
}

/** Per-scenario outcome across all batches, for one closing summary line. */
const outcomes = new Map<string, "identical" | "known" | "differs">();

function defineBatch(title: string, list: readonly Scenario[], realtime: boolean, sysctls: Readonly<Record<string, number>>): void {
  describe(title, { skip: skip ?? false }, () => {
    let scratch: { dir: string; remove: () => void } | undefined;
    let kernel: KernelRun | undefined;
    let comparison: Comparison | undefined;
    let failure: Error | undefined;
    const byBlock = new Map<number, Scenario>();
    const byGroup = new Map<string, Scenario>();

    before(async () => {
      scratch = scratchDir();
      try {
        const { frames, parts } = realtime ? buildMerged(list) : buildBatch(list);
        for (const p of parts) {
          byBlock.set(p.block, p.scenario);
          byGroup.set(groupName(p.scenario), p.scenario);
        }
        const groups: CounterGroup[] = parts.map((p) => {
          const pr = scenarioPrefixes(p.scenario);
          return { name: groupName(p.scenario), v4: [pr.v4], v6: [pr.v6] };
        });
        const pcap = join(scratch.dir, "scenarios.pcap");
        kernel = await runKernel(scenarioIpRecords(frames), pcap, { groups, realtime, sysctls });
        assert.equal(kernel.reframe.written, frames.length, `Re-framing left frames out: ${JSON.stringify(kernel.reframe.skipped)}`);
        const ctlab = runCtlab(pcap, { groups, clock: realtime ? "capture" : "frozen", sysctls });
        comparison = compareObserved(observedFromKernel(kernel.result), ctlab, (line) => {
          const b = blockOfLine(line);
          const s = b === undefined ? undefined : byBlock.get(b);
          return s === undefined ? undefined : groupName(s);
        });
      } catch (e) {
        failure = e instanceof Error ? e : new Error(String(e));
      }
    });

    after(() => {
      scratch?.remove();
      if (comparison === undefined) return;
      const bad = new Set(comparison.differences.map((d) => d.group).filter((g) => g !== undefined));
      for (const s of list) {
        outcomes.set(s.name, !bad.has(groupName(s)) ? "identical" : KNOWN_DIFFERENCES[s.name] !== undefined ? "known" : "differs");
      }
      const same = list.filter((s) => !bad.has(groupName(s))).length;
      const known = list.filter((s) => bad.has(groupName(s)) && KNOWN_DIFFERENCES[s.name] !== undefined);
      process.stderr.write(
        `kernel agreement (${title}): scenarios ${same}/${list.length} identical` +
          (known.length > 0 ? `; ${known.length} known differences: ${known.map((s) => s.name).join(", ")}` : "") +
          ` (${kernel?.result.ingress ?? 0} frames, ${comparison.flows} flows, replay ${kernel?.result.replayMs ?? 0} ms` +
          `${kernel !== undefined && kernel.attempts > 1 ? `, ${kernel.attempts} attempts` : ""})\n`,
      );
    });

    function diffsOf(s: Scenario): Difference[] {
      if (failure !== undefined) throw failure;
      assert.ok(comparison !== undefined, "The comparison did not run");
      return comparison.differences.filter((d) => d.group === groupName(s));
    }

    for (const s of list) {
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
      // Totals can only differ along with some scenario; a listed scenario explains them.
      const explained = comparison.differences.some((x) => {
        const s = x.group === undefined ? undefined : byGroup.get(x.group);
        return s !== undefined && KNOWN_DIFFERENCES[s.name] !== undefined;
      });
      if (!explained) assert.equal(d.length, 0, `Batch totals differ:\n${formatDifferences(d)}`);
    });
  });
}

// One kernel run per (clock mode, sysctl set).
const batches = new Map<string, { realtime: boolean; sysctls: Readonly<Record<string, number>>; list: Scenario[] }>();
for (const s of SCENARIOS) {
  if (s.kernel?.alone === true) continue;
  const realtime = s.kernel?.realtime === true;
  const sysctls = s.kernel?.sysctls ?? {};
  const key = `${realtime ? "real time" : "frozen clock"}${
    Object.keys(sysctls).length > 0
      ? `, ${Object.entries(sysctls)
          .map(([k, v]) => `${k}=${v}`)
          .join(" ")}`
      : ""
  }`;
  const b = batches.get(key) ?? { realtime, sysctls, list: [] };
  b.list.push(s);
  batches.set(key, b);
}
for (const [key, b] of batches) defineBatch(`kernel: scenarios (${key})`, b.list, b.realtime, b.sysctls);

// One line over every batch, in the form the README quotes.
after(() => {
  if (outcomes.size === 0) return;
  const all = [...outcomes.entries()];
  const same = all.filter(([, o]) => o === "identical").length;
  const known = all.filter(([, o]) => o === "known").map(([n]) => n);
  const differ = all.filter(([, o]) => o === "differs").map(([n]) => n);
  process.stderr.write(
    `kernel agreement: scenarios ${same}/${all.length} identical` +
      (known.length > 0 ? `; known differences: ${known.join(", ")}` : "") +
      (differ.length > 0 ? `; differ: ${differ.join(", ")}` : "") +
      "\n",
  );
});
