/**
 * A real Prometheus server (its own data folder, loopback only, bounded in
 * time) scrapes `ctlab exporter` watching a namespace filled with known
 * traffic: its query API returns node_nf_conntrack_entries = conntrack -C and
 * ctlab's metrics; `promtool check metrics` accepts the exposition.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { startExporter } from "../../src/cli/exporter.js";
import { kernelSkipReason, run, sleep } from "../kernel/netns.js";
import { injectShaped, RULESET, SHAPE, withHostTopology } from "./hostns.js";

const skip = kernelSkipReason();

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      const port = typeof a === "object" && a !== null ? a.port : 0;
      s.close(() => resolve(port));
    });
    s.on("error", reject);
  });
}

async function query(base: string, q: string): Promise<Array<{ metric: Record<string, string>; value: [number, string] }>> {
  const r = await fetch(`${base}/api/v1/query?query=${encodeURIComponent(q)}`);
  const j = (await r.json()) as { status: string; data: { result: Array<{ metric: Record<string, string>; value: [number, string] }> } };
  assert.equal(j.status, "success");
  return j.data.result;
}

describe("host: a real Prometheus scrapes the exporter", { skip: skip ?? false }, () => {
  it("node_nf_conntrack_entries = conntrack -C, ctlab metrics present, promtool check metrics passes", async () => {
    await withHostTopology(RULESET, async (t) => {
      await injectShaped(t);
      const ex = await startExporter({ listen: "127.0.0.1:0", netns: t.rt, tableInterval: 1 });
      const dir = mkdtempSync(join(tmpdir(), "host-prom-"));
      const promPort = await freePort();
      const target = new URL(ex.url).host;
      writeFileSync(
        join(dir, "prometheus.yml"),
        `global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: ctlab\n    static_configs:\n      - targets: ["${target}"]\n`,
      );
      const prom = spawn(
        "prometheus",
        [
          `--config.file=${join(dir, "prometheus.yml")}`,
          `--storage.tsdb.path=${join(dir, "data")}`,
          `--web.listen-address=127.0.0.1:${promPort}`,
          "--log.level=warn",
        ],
        { stdio: ["ignore", "ignore", "pipe"] },
      );
      let promErr = "";
      prom.stderr.setEncoding("utf8").on("data", (d: string) => (promErr += d));
      const base = `http://127.0.0.1:${promPort}`;
      try {
        const expo = await (await fetch(ex.url)).text();
        const check = spawnSync("promtool", ["check", "metrics"], { input: expo, encoding: "utf8" });
        assert.equal(check.status, 0, check.stdout + check.stderr);
        const kernelCount = Number((await run("conntrack", ["-C"], { ns: t.rt })).stdout.trim());
        assert.equal(kernelCount, SHAPE.synFlood + SHAPE.idle + SHAPE.dns + SHAPE.natLan);
        const deadline = Date.now() + 30_000;
        let entries: string | undefined;
        let byState: Array<{ metric: Record<string, string>; value: [number, string] }> = [];
        while (Date.now() < deadline) {
          try {
            entries = (await query(base, "node_nf_conntrack_entries"))[0]?.value[1];
            byState = await query(base, 'ctlab_conntrack_entries_by_state{protocol="tcp"}');
            if (entries !== undefined && byState.length >= 2) break;
          } catch {
            // Prometheus is still starting.
          }
          if (prom.exitCode !== null) throw new Error(`prometheus exited: ${promErr}`);
          await sleep(500);
        }
        assert.equal(Number(entries), kernelCount, "Prometheus sees conntrack -C");
        const states = Object.fromEntries(byState.map((r) => [r.metric["state"] ?? "", Number(r.value[1])]));
        assert.equal(states["SYN_SENT"], SHAPE.synFlood + SHAPE.natLan);
        assert.equal(states["ESTABLISHED"], SHAPE.idle);
        const limit = await query(base, "node_nf_conntrack_entries_limit");
        assert.ok(Number(limit[0]?.value[1]) > 0);
        const top = await query(base, 'ctlab_conntrack_top_dport_entries{dport="udp/53"}');
        assert.equal(Number(top[0]?.value[1]), SHAPE.dns);
      } finally {
        prom.kill("SIGTERM");
        await new Promise((r) => prom.once("close", r));
        await ex.close();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});
