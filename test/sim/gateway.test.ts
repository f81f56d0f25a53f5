/**
 * The simulator's NAT gateway (`host.gateway`): LAN clients reach a server
 * beyond the tracking host, which masquerades them; the server answers the
 * translated tuple and the gateway delivers the answer back to the LAN host.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseScenario, ScenarioError } from "../../src/sim/scenario.js";
import type { Scenario } from "../../src/sim/scenario.js";
import { runScenario } from "../../src/sim/engine.js";
import { BUILTIN_RULESETS, builtinScenario } from "../../src/sim/builtin.js";
import { planRuns, runSpec, scenarioHost } from "../../src/sim/sweep.js";
import { loadRuleset } from "../../src/firewall/load.js";
import { replay } from "../../src/replay/replay.js";

/** Two TCP populations walking the same ephemeral ports, so their tuples clash at the gateway; and DNS. */
const GATEWAY = `name: gateway
seed: 2
duration: 30
host: { address: 203.0.113.1, gateway: { lan: 192.168.10.0/24, server: 198.51.100.7 } }
table: { nf_conntrack_max: 4096 }
traffic:
  - type: clients
    rate: 40
    clients: 20
    service: tcp/443
    close: server-fin
  - type: clients
    rate: 40
    clients: 20
    service: tcp/443
    close: server-fin
  - type: dns
    rate: 10
    clients: 10
`;

function masquerade(s: Scenario) {
  return { ruleset: loadRuleset(BUILTIN_RULESETS["masquerade"] as string, { file: "builtin:masquerade" }), host: scenarioHost(s), name: "builtin:masquerade" };
}

interface Line {
  proto: string;
  o: { src: string; dst: string; sport: string; dport: string };
  r: { src: string; dst: string; sport: string; dport: string };
}

function parse(line: string): Line {
  const tuples = [...line.matchAll(/src=(\S+) dst=(\S+) sport=(\d+) dport=(\d+)/g)].map((m) => ({
    src: m[1] as string,
    dst: m[2] as string,
    sport: m[3] as string,
    dport: m[4] as string,
  }));
  assert.equal(tuples.length, 2, line);
  return { proto: line.split(/\s+/)[2] as string, o: tuples[0]!, r: tuples[1]! };
}

test("gateway: LAN clients are masqueraded to the WAN address; clashing ports are replaced and those connections complete", () => {
  const s = parseScenario(GATEWAY);
  const r = runScenario(s, {}, { rules: masquerade(s) });
  const lines = r.tracker.formatTable({ extended: true }).map(parse);
  assert.ok(lines.length > 1000, `${lines.length} entries`);
  for (const l of lines) {
    assert.match(l.o.src, /^192\.168\.10\./);
    assert.equal(l.o.dst, "198.51.100.7");
    assert.equal(l.r.src, "198.51.100.7");
    assert.equal(l.r.dst, "203.0.113.1", "every reply goes to the gateway's WAN address");
  }
  // The two populations reuse each other's ports while the first holder is in TIME_WAIT: NAT picks another port.
  const moved = lines.filter((l) => l.r.dport !== l.o.sport);
  assert.ok(moved.length > 50, `${moved.length} connections got a port NAT chose`);
  const replies = new Set(lines.map((l) => `${l.proto} ${l.r.sport} ${l.r.dport}`));
  assert.equal(replies.size, lines.length, "no two entries share a reply tuple");
  // The server answered the translated port and the gateway delivered it: every connection decided completed.
  const l = r.summary.legit;
  assert.equal(l.failed, 0);
  assert.ok(l.completed >= l.attempted - 10, `${l.completed} of ${l.attempted}`);
  assert.equal(r.summary.drops, 0);
  assert.equal(r.summary.invalid, 0);
  const stats = r.path?.stats;
  assert.ok(stats !== undefined && stats.translated > 0);
  assert.equal(stats.byRoute.input, 0, "no reply was left at the gateway un-NATed");
});

test("gateway without rules: a plain router, replies go to the LAN hosts themselves", () => {
  const s = parseScenario(GATEWAY);
  const r = runScenario(s);
  const lines = r.tracker.formatTable({ extended: true }).map(parse);
  assert.ok(lines.length > 1000);
  for (const l of lines) {
    assert.equal(l.r.dst, l.o.src);
    assert.equal(l.r.dport, l.o.sport);
  }
  assert.equal(r.summary.legit.failed, 0);
});

test("gateway: written with --write-pcap and replayed through the same ruleset and host, the same table and counters", async () => {
  const dir = mkdtempSync(join(tmpdir(), "ctlab-gw-"));
  try {
    const pcap = join(dir, "gw.pcap");
    const s = parseScenario(GATEWAY.replace("duration: 30", "duration: 12"));
    const r = runScenario(s, {}, { rules: masquerade(s), writePcap: pcap });
    const back = await replay(pcap, {
      sysctls: s.table,
      seed: s.seed,
      clock: "capture",
      firewall: { ruleset: masquerade(s).ruleset, host: scenarioHost(s), seed: s.seed },
    });
    assert.deepEqual(back.tracker.formatTable({ extended: true }), r.tracker.formatTable({ extended: true }));
    assert.deepEqual([...back.tracker.stats.entries()], [...r.tracker.stats.entries()]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("gateway: the built-in nat-gateway scenario runs its masquerade ruleset", () => {
  const s = builtinScenario("nat-gateway");
  assert.equal(s.rules, "builtin:masquerade");
  const specs = planRuns({ ...s, duration: 20 }, [], [], ".", null);
  const d = runSpec(specs[0]!);
  assert.equal(d.summary.legit.failed, 0);
  assert.ok(d.summary.legit.completed > 7000);
  assert.equal(d.summary.rule_drops, 0);
});

test("gateway: addresses that cannot be are refused with the key at fault", () => {
  const bad = (host: string, key: string, part: string) =>
    assert.throws(
      () => parseScenario(GATEWAY.replace(/^host: .*$/m, `host: ${host}`)),
      (e: unknown) => e instanceof ScenarioError && e.key === key && e.message.includes(part),
    );
  bad("{ address: 192.168.10.9, gateway: { lan: 192.168.10.0/24 } }", "host.address", "outside its LAN 192.168.10.0/24");
  bad("{ address: 203.0.113.1, gateway: { lan: 192.168.10.0/24, server: 192.168.10.20 } }", "host.gateway.server", "beyond the gateway");
  bad("{ address: 203.0.113.1, gateway: { lan: 192.168.10.0/31 } }", "host.gateway.lan", "/8 to /30");
});
