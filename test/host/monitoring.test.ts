/**
 * The shipped monitoring files: the alert rules pass `promtool check rules`
 * and their unit tests (each alert made to fire and not to fire), and the
 * Grafana dashboard is what Grafana's SDK builds and queries only metrics
 * that node_exporter or `ctlab exporter` export.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { ConntrackExporter } from "../../src/host/exporter.js";
import { dashboardJson } from "./dashboard.js";

function promtool(): string | undefined {
  const r = spawnSync("promtool", ["--version"], { encoding: "utf8" });
  if (r.status === 0) return undefined;
  if (process.env["CI"]) throw new Error("promtool is missing under CI: install the Debian package prometheus");
  return "promtool is not installed (Debian package prometheus)";
}

describe("monitoring files", () => {
  const skip = promtool();
  it("promtool check rules and test rules pass", { skip: skip ?? false }, () => {
    const check = spawnSync("promtool", ["check", "rules", "ctlab-alerts.yml"], { cwd: "monitoring", encoding: "utf8" });
    assert.equal(check.status, 0, check.stdout + check.stderr);
    const test = spawnSync("promtool", ["test", "rules", "ctlab-alerts.test.yml"], { cwd: "monitoring", encoding: "utf8" });
    assert.equal(test.status, 0, test.stdout + test.stderr);
    assert.match(test.stdout, /SUCCESS/);
  });

  it("every alert has a firing and a silent case in the unit tests", () => {
    const rules = readFileSync("monitoring/ctlab-alerts.yml", "utf8");
    const tests = readFileSync("monitoring/ctlab-alerts.test.yml", "utf8");
    const names = [...rules.matchAll(/- alert: (\w+)/g)].map((m) => m[1] as string);
    assert.ok(names.length >= 6);
    for (const n of names) {
      const blocks = tests.split(/- eval_time:/).filter((b) => b.includes(`alertname: ${n}\n`));
      assert.ok(
        blocks.some((b) => b.includes("exp_alerts: []")),
        `${n} never tested silent`,
      );
      assert.ok(
        blocks.some((b) => b.includes("exp_labels")),
        `${n} never tested firing`,
      );
    }
  });

  it("the dashboard file is what the SDK builder makes, and queries exported metrics only", async () => {
    const file = readFileSync("monitoring/ctlab-dashboard.json", "utf8");
    assert.equal(file, dashboardJson(), "regenerate with: node dist/test/host/dashboard.js --write");
    const d = JSON.parse(file) as { uid: string; panels: Array<{ type: string; targets?: Array<{ expr: string }> }> };
    assert.equal(d.uid, "ctlab-conntrack");
    const ex = new ConntrackExporter({ targets: [], netnsLabel: false });
    const exported = new Set((await ex.registry.getMetricsAsJSON()).map((m) => m.name));
    let queries = 0;
    for (const p of d.panels) {
      for (const t of p.targets ?? []) {
        queries++;
        for (const m of t.expr.matchAll(/\b((?:node_nf|ctlab)_[a-z_]+)/g)) {
          const name = (m[1] as string).replace(/_bucket$/, "");
          assert.ok(exported.has(name), `panel queries "${name}", which is not exported`);
        }
      }
    }
    assert.ok(queries >= 12);
  });
});
