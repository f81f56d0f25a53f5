/**
 * The table policies in the simulator, on shortened versions of the built-in
 * attacks (same traffic shapes, smaller tables and rates, shorter runs, so
 * the whole file takes seconds): `ctlab` keeps ≥ 99 % of legitimate
 * connections, evicts no live connection and is never worse than `kernel`.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { parseScenario } from "../../src/sim/scenario.js";
import { runScenario } from "../../src/sim/engine.js";
import type { RunSummary } from "../../src/sim/engine.js";
import { POLICY_NAMES } from "../../src/conntrack/policy/policy.js";

const SHORT: Record<string, string> = {
  "syn-flood": `name: syn-flood-short
seed: 1
duration: 20
table: { nf_conntrack_max: 4096 }
traffic:
  - { type: clients, rate: 40, service: tcp/443 }
  - { type: syn-flood, rate: 2000, start: 5, spoofed: true }
`,
  "connection-flood": `name: connection-flood-short
seed: 1
duration: 60
table: { nf_conntrack_max: 2048 }
traffic:
  - { type: clients, rate: 20, service: tcp/443 }
  - { type: connection-flood, rate: 150, start: 2, bots: 300 }
`,
  "udp-flood": `name: udp-flood-short
seed: 1
duration: 20
table: { nf_conntrack_max: 4096 }
traffic:
  - { type: dns, rate: 60 }
  - { type: udp-flood, rate: 1000, start: 5, service: udp/53 }
`,
  "lossy-rst": `name: lossy-rst-short
seed: 1
duration: 60
table: { nf_conntrack_max: 1024 }
traffic:
  - { type: clients, rate: 60, service: tcp/443, close: rst, loss: { rst: 0.3, where: before, direction: to-server } }
`,
  "busy-server": `name: busy-server-short
seed: 1
duration: 50
table: { nf_conntrack_max: 2048, nf_conntrack_buckets: 512 }
traffic:
  - { type: clients, rate: 80, service: tcp/443, requests: 3, think: 0.5 }
`,
  story: `name: story-short
seed: 1
duration: 40
table: { nf_conntrack_max: 2048, nf_conntrack_buckets: 512 }
traffic:
  - { type: clients, name: https, rate: 30, service: tcp/443, requests: 2, think: 0.5 }
  - { type: clients, name: flaky-link, rate: 8, service: tcp/443, close: rst, loss: { rst: 0.5, where: before, direction: to-server } }
  - { type: dns, rate: 15 }
  - { type: syn-flood, rate: 1500, start: 15, end: 30, spoofed: true }
`,
  "port-scan": `name: port-scan-short
seed: 1
duration: 20
host: { address: 203.0.113.10, services: [tcp/22, tcp/443] }
table: { nf_conntrack_max: 1024 }
traffic:
  - { type: clients, rate: 30, service: tcp/443 }
  - { type: port-scan, rate: 2000, start: 2, source: 198.18.7.7 }
`,
};

const results = new Map<string, RunSummary>();
function run(name: string, policy: string): RunSummary {
  const key = `${name}/${policy}`;
  let r = results.get(key);
  if (r === undefined) {
    r = runScenario(parseScenario(SHORT[name] as string, name), {}, { policy: policy as never }).summary;
    results.set(key, r);
  }
  return r;
}

describe("table policies in the simulator (shortened built-in attacks)", () => {
  for (const name of Object.keys(SHORT)) {
    it(`${name}: ctlab keeps ≥ 99 % of legitimate connections, evicts no live connection, and does no worse than kernel`, () => {
      const c = run(name, "ctlab");
      const k = run(name, "kernel");
      assert.equal(c.policy, "ctlab");
      assert.equal(c.live_evictions, 0, `live evictions: ${JSON.stringify(c.evictions)}`);
      assert.ok((c.legit.success_ratio ?? 1) >= 0.99, `legit success ${c.legit.success_ratio}`);
      assert.ok((c.legit.success_ratio ?? 1) >= (k.legit.success_ratio ?? 1), `ctlab ${c.legit.success_ratio} < kernel ${k.legit.success_ratio}`);
      assert.ok(c.live_evictions <= k.live_evictions);
      assert.ok(c.peak_entries <= c.nf_conntrack_max);
    });
  }

  it("the shortened attacks do lock the kernel's table (connection flood, lost RSTs, TIME_WAIT) and make it early-drop (SYN and UDP floods)", () => {
    for (const n of ["connection-flood", "lossy-rst", "busy-server"]) assert.ok((run(n, "kernel").refusals["table-full"] ?? 0) > 0, n);
    for (const n of ["syn-flood", "udp-flood"]) assert.ok((run(n, "kernel").evictions["early-drop"] ?? 0) > 0, n);
  });

  it("where the kernel's table locks, ctlab evicts idle entries instead and never refuses for want of room", () => {
    for (const n of ["connection-flood", "lossy-rst", "busy-server"]) {
      const c = run(n, "ctlab");
      assert.ok((c.evictions.idle ?? 0) > 0, n);
      assert.equal(c.refusals["table-full"], 0, n);
      assert.equal(c.refusals["all-active"], 0, n);
    }
  });

  it("every policy runs a scenario, and its summary carries its evictions and refusals by reason", () => {
    for (const p of POLICY_NAMES) {
      const s = run("connection-flood", p);
      assert.equal(s.policy, p);
      assert.ok(Object.keys(s.evictions).includes("early-drop") && Object.keys(s.refusals).includes("table-full"));
      assert.ok(s.live_evictions >= 0);
    }
    assert.ok((run("connection-flood", "recycle-half-open").evictions["half-open"] ?? 0) > 0);
  });
});
