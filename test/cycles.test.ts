import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * Import cycles left in src/, each with why it is still there. The test fails
 * on a new cycle and on an entry here that no longer exists, so the list
 * stays exact.
 */
const KNOWN_CYCLES: readonly string[] = [
  // Options shared by several commands live in cli/replay.ts; issue 7 §4 moves them to a module of their own.
];

function cycles(dir: string): string[] {
  const r = spawnSync(process.execPath, ["scripts/check-cycles.mjs", dir, "--json"], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as string[];
}

test("src/ has no import cycles (type imports included) but the known ones", () => {
  const found = cycles("src");
  const added = found.filter((c) => !KNOWN_CYCLES.includes(c));
  const gone = KNOWN_CYCLES.filter((c) => !found.includes(c));
  assert.deepEqual(added, [], `New import cycle(s): ${added.join("; ")}`);
  assert.deepEqual(gone, [], `Cycle(s) no longer there, remove them from KNOWN_CYCLES: ${gone.join("; ")}`);
});

test("test/ has no import cycles", () => {
  assert.deepEqual(cycles("test"), []);
});

test("the cycle check sees type-only imports and re-exports", () => {
  const dir = mkdtempSync(join(tmpdir(), "api-cycles-"));
  try {
    writeFileSync(join(dir, "a.ts"), 'import type { B } from "./b.js";\nexport type A = B | 1;\n');
    writeFileSync(join(dir, "b.ts"), 'export { c } from "./c.js";\nexport type B = 2;\n');
    writeFileSync(join(dir, "c.ts"), 'import type { A } from "./a.js";\nexport const c = 3 as A;\n');
    writeFileSync(join(dir, "d.ts"), 'import { c } from "./c.js";\nexport const d = c;\n');
    const found = cycles(dir).map((c) => c.replace(/[^ ]*\//g, ""));
    assert.deepEqual(found, ["a.ts → b.ts → c.ts → a.ts"]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
