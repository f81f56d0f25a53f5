/**
 * Every README example reproduces: each code block line starting with
 * "$ ctlab" is run in examples/ (ctlab = this checkout's CLI) and what a
 * terminal would show (stdout and stderr, unless the command redirects
 * stderr) compared with the lines under it. A line starting with "…"
 * stands for lines left out; a block without one must match exactly. The
 * things normalised are the replay time ("Replayed in … s") and trailing blanks.
 *
 * CTLAB_README_UPDATE=1 rewrites the exact blocks from the real output.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const BIN = join(ROOT, "dist/src/cli/bin.js");
const EXAMPLES = join(ROOT, "examples");
const README = join(ROOT, "README.md");

interface Example {
  command: string;
  expected: string[];
  /** Index in the README's lines of the first expected line, and how many there are. */
  at: number;
}

function examples(text: string): Example[] {
  const lines = text.split("\n");
  const out: Example[] = [];
  let inBlock = false;
  let cur: Example | null = null;
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i] as string;
    if (l.startsWith("```")) {
      if (cur !== null) out.push(cur);
      cur = null;
      inBlock = !inBlock;
      continue;
    }
    if (!inBlock) continue;
    if (l.startsWith("$ ")) {
      if (cur !== null) out.push(cur);
      // "# as a normal user" shows what a non-root run prints: not reproducible by a root test run.
      cur = l.startsWith("$ ctlab ") && !l.includes("# as a normal user") ? { command: l.slice(2), expected: [], at: i + 1 } : null;
      continue;
    }
    if (cur !== null) cur.expected.push(l);
  }
  return out;
}

function normalise(line: string): string {
  // Trailing blanks (iptables -L pads its header) do not survive a Markdown editor.
  return line.trimEnd().replace(/^Replayed in [\d.]+ s \([\d,]+ packets\/s\)$/, "Replayed in <time>");
}

/** Output as a terminal shows it: stdout and stderr together, unless the command redirects stderr itself. */
function runExample(command: string): string {
  const cli = `"${process.execPath}" "${BIN}" `;
  const local = command.replace(/^ctlab /, cli).replace(/\| ctlab /g, `| ${cli}`);
  const merged = command.includes("2>") ? local : `(${local}) 2>&1`;
  const r = spawnSync("bash", ["-c", merged], { cwd: EXAMPLES, encoding: "utf8", timeout: 120000 });
  return r.stdout;
}

/** Expected lines (with "…" gaps) appear in order in the actual output; without gaps they are all of it. */
function matches(expected: string[], actual: string[]): string | null {
  const exp = expected.map(normalise);
  const act = actual.map(normalise);
  const gaps = exp.some((l) => l.startsWith("…"));
  if (!gaps) {
    return JSON.stringify(exp) === JSON.stringify(act) ? null : `expected exactly:\n${exp.join("\n")}\n--- got:\n${act.join("\n")}`;
  }
  let k = 0;
  for (const e of exp) {
    if (e.startsWith("…")) continue;
    while (k < act.length && act[k] !== e) k++;
    if (k === act.length) return `line not found in order: ${JSON.stringify(e)}\n--- got:\n${act.join("\n")}`;
    k++;
  }
  return null;
}

const text = readFileSync(README, "utf8");
const all = examples(text);

test("the README has examples to check", () => {
  assert.ok(all.length >= 10, String(all.length));
});

const update = process.env.CTLAB_README_UPDATE === "1";
const lines = text.split("\n");
const edits: Array<{ at: number; count: number; lines: string[] }> = [];

for (const ex of all) {
  test(`README: $ ${ex.command}`, () => {
    const expected = [...ex.expected];
    while (expected.length > 0 && expected[expected.length - 1] === "") expected.pop();
    const actual = runExample(ex.command).replace(/\n$/, "").split("\n");
    if (update && !expected.some((l) => l.startsWith("…"))) {
      edits.push({ at: ex.at, count: expected.length, lines: actual.map((l) => l.trimEnd()) });
      return;
    }
    const problem = matches(expected, actual);
    assert.equal(problem, null, problem ?? "");
  });
}

test("README update (CTLAB_README_UPDATE=1 only)", { skip: !update }, () => {
  for (const e of edits.sort((a, b) => b.at - a.at)) lines.splice(e.at, e.count, ...e.lines);
  writeFileSync(README, lines.join("\n"));
});

test("scripts/make-examples.mjs still writes the committed examples", () => {
  const dir = mkdtempSync(join(tmpdir(), "ctlab-examples-"));
  try {
    const r = spawnSync(process.execPath, [join(ROOT, "scripts/make-examples.mjs"), dir], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    for (const f of ["capture.pcap", "rules.v4", "new.rules", "stateless.rules", "ruleset.json", "nftables.conf", "bad.rules", "bad.json"]) {
      assert.deepEqual(readFileSync(join(dir, f)), readFileSync(join(EXAMPLES, f)), f);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
