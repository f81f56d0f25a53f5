import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";

// api/ctlab.api.md and the README's API section are generated from src/index.ts
// and the doc comments: a change to the public surface must come with the
// regenerated report, so that it is reviewed as a diff.
test("the API report and the README's API section match the sources", () => {
  const r = spawnSync(process.execPath, ["scripts/api-report.mjs", "--check"], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
});
