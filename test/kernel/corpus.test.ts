/**
 * Every capture of the shared corpus (../shared/corpus/pcaps from the repo
 * root, or the directory in CTLAB_CORPUS) against the real kernel.
 *
 * Each file is re-framed, injected into a fresh router namespace and
 * replayed through ctlab with a frozen clock; the per-file agreement and the
 * totals are printed. A file fails when it differs in a way KNOWN_DIFFERENCES
 * does not explain, or when its ledger entry no longer happens. Without a
 * corpus the test is skipped — except under CI, where it fails.
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
import type { KnownDifference } from "./ledger.js";
import { checkAgainstLedger } from "./ledger.js";
import { kernelSkipReason } from "./netns.js";

/** The repository root: dist/test/kernel/ → three levels up. */
const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const SHARED_CORPUS = resolve(REPO, "..", "shared", "corpus", "pcaps");
/** CTLAB_CORPUS=/path compares another corpus (any tree of .pcap/.pcapng/.cap files). */
const CORPUS = process.env["CTLAB_CORPUS"] !== undefined && process.env["CTLAB_CORPUS"] !== "" ? resolve(process.env["CTLAB_CORPUS"]) : SHARED_CORPUS;
const CI = process.env["CI"] !== undefined && process.env["CI"] !== "" && process.env["CI"] !== "false";

/**
 * Captures of the shared corpus where ctlab knowingly differs from the
 * kernel, by path below the corpus root: why, and which differences (patterns
 * over "aspect: message") that explains. Keep in step with FIDELITY.md.
 * Empty: all 76 captures agree. Entries apply to the shared corpus only.
 */
export const KNOWN_DIFFERENCES: Readonly<Record<string, KnownDifference>> = {};

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
const noCorpus = files.length === 0 ? `no capture corpus at "${CORPUS}"` : undefined;
const skip = kernelSkipReason() ?? (CI ? undefined : noCorpus);
if (skip !== undefined) process.stderr.write(`kernel corpus test skipped: ${skip}\n`);
const ledger = CORPUS === SHARED_CORPUS ? KNOWN_DIFFERENCES : {};

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
    const known = differ.filter((r) => ledger[r.name] !== undefined);
    process.stderr.write(
      `kernel agreement: ${CORPUS === SHARED_CORPUS ? "shared corpus" : `corpus ${CORPUS}`} ${same.length}/${results.length} identical` +
        (known.length > 0 ? `; ${known.length} known differences: ${known.map((r) => r.name).join(", ")}` : "") +
        (differ.length > known.length
          ? `; ${differ.length - known.length} differ: ${differ
              .filter((r) => ledger[r.name] === undefined)
              .map((r) => r.name)
              .join(", ")}`
          : "") +
        "\n",
    );
  });

  if (noCorpus !== undefined) {
    it("has a corpus to compare (required under CI)", () => {
      assert.fail(`${noCorpus}: CI needs the shared corpus (or CTLAB_CORPUS pointing at one)`);
    });
  }

  it("lists only captures of the corpus in the ledger", () => {
    const names = new Set(files.map((f) => relative(CORPUS, f)));
    const stale = Object.keys(ledger).filter((n) => !names.has(n));
    assert.deepEqual(stale, [], "KNOWN_DIFFERENCES names captures the corpus does not have");
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
        (kernel.reframe.badHeaderChecksum > 0 ? `; ${kernel.reframe.badHeaderChecksum} with a wrong IPv4 header checksum (dropped by ip_rcv)` : "") +
        (kernel.result.replayMs > 1500 ? `; replay took ${kernel.result.replayMs} ms` : "");
      const ctlab = runCtlab(out);
      const cmp = compareObserved(observedFromKernel(kernel.result), ctlab);
      results.push({ name, frames: kernel.reframe.written, comparison: cmp, note });
      const verdict = cmp.identical
        ? `identical (${cmp.flows} flows)`
        : `${cmp.differences.length} differences (${cmp.flows} flows)\n${formatDifferences(cmp.differences, 5)}`;
      t.diagnostic(`${name}: ${verdict}; ${note}`);
      process.stderr.write(`corpus ${name}: ${verdict}\n`);
      const problems = checkAgainstLedger(name, cmp, ledger[name]);
      assert.deepEqual(problems, [], problems.join("\n"));
    });
  }
});
