/**
 * Every capture of the shared corpus (../shared/corpus/pcaps from the repo
 * root, when it exists) against the real kernel.
 *
 * Each file is re-framed, injected into a fresh router namespace and
 * replayed through ctlab with a frozen clock; the per-file agreement and the
 * totals are printed. Differences are reported, not failed — real traffic
 * holds corner cases nobody chose — but a crash (ctlab throwing, the harness
 * losing packets) fails the file's test.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, statSync } from "node:fs";
import { basename, dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import { runCtlab } from "./ctlab-run.js";
import type { Comparison } from "./compare.js";
import { compareObserved, formatDifferences, observedFromKernel } from "./compare.js";
import { captureIpRecords, runKernel, scratchDir } from "./inject.js";
import { kernelSkipReason } from "./netns.js";

/** The repository root: dist/test/kernel/ → three levels up. */
const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const CORPUS = resolve(REPO, "..", "shared", "corpus", "pcaps");

function listCaptures(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...listCaptures(p));
    else if (/\.(pcap|pcapng|cap)$/i.test(name)) out.push(p);
  }
  return out;
}

const files = existsSync(CORPUS) ? listCaptures(CORPUS) : [];
const skip = kernelSkipReason() ?? (files.length === 0 ? `no shared corpus at "${CORPUS}"` : undefined);
if (skip !== undefined && files.length === 0) process.stderr.write(`kernel corpus test skipped: ${skip}\n`);

interface FileResult {
  name: string;
  frames: number;
  comparison: Comparison | undefined;
  note: string;
}

describe("kernel: shared corpus", { skip: skip ?? false }, () => {
  const results: FileResult[] = [];
  let scratch: { dir: string; remove: () => void } | undefined;

  before(() => {
    scratch = scratchDir();
  });

  after(() => {
    scratch?.remove();
    const same = results.filter((r) => r.comparison?.identical === true);
    const differ = results.filter((r) => r.comparison !== undefined && !r.comparison.identical);
    process.stderr.write(
      `kernel agreement: shared corpus ${same.length}/${results.length} identical` +
        (differ.length > 0 ? `; ${differ.length} differ: ${differ.map((r) => r.name).join(", ")}` : "") +
        "\n",
    );
  });

  for (const path of files) {
    const name = relative(CORPUS, path);
    it(name, async (t) => {
      assert.ok(scratch !== undefined);
      const src = captureIpRecords(path);
      const out = join(scratch.dir, `${basename(path)}.eth.pcap`);
      const kernel = await runKernel(src.records, out, {});
      const skipped = Object.entries(kernel.reframe.skipped)
        .map(([k, v]) => `${k} ${v}`)
        .join(", ");
      const notIp = Object.entries(src.notIp)
        .map(([k, v]) => `${k} ${v}`)
        .join(", ");
      const note =
        `${src.total} records → ${kernel.reframe.written} injected` +
        (notIp !== "" ? `; not IP: ${notIp}` : "") +
        (skipped !== "" ? `; left out: ${skipped}` : "") +
        (kernel.reframe.remapped > 0 ? `; ${kernel.reframe.remapped} remapped` : "") +
        (kernel.result.replayMs > 1500 ? `; replay took ${kernel.result.replayMs} ms` : "");
      const ctlab = runCtlab(out);
      const cmp = compareObserved(observedFromKernel(kernel.result), ctlab);
      results.push({ name, frames: kernel.reframe.written, comparison: cmp, note });
      const verdict = cmp.identical
        ? `identical (${cmp.flows} flows)`
        : `${cmp.differences.length} differences (${cmp.flows} flows)\n${formatDifferences(cmp.differences, 5)}`;
      t.diagnostic(`${name}: ${verdict}; ${note}`);
      process.stderr.write(`corpus ${name}: ${verdict}\n`);
    });
  }
});
