/**
 * The simulated NAT gateway against the kernel. A short gateway scenario
 * (LAN clients and resolvers masqueraded to the WAN address, then a second
 * population whose source ports clash with the first one's TIME_WAIT
 * entries) is simulated through builtin:masquerade, written with
 * --write-pcap, and pushed in real time through a kernel router namespace
 * holding the same ruleset (eth1 → r0, eth0 → sink0, sink0 carrying the
 * WAN address). Replies in the capture are addressed to the ports the
 * simulation's MASQUERADE chose.
 *
 * What is deterministic and compared exactly: every connection whose source
 * port MASQUERADE kept (no clash) — its entry with the reply tuple, state,
 * flags and timeout — and which connections clash. Where a port clashes the
 * kernel picks the new port at random (get_random_u16), so the replies the
 * simulation sent to its own choice cannot reach the kernel's: those
 * connections are injected up to their SYN only, and compared by which ones
 * got a new port (the same set on both sides), that it lies in 1024–65535 and
 * that no reply tuple is shared. The capture as injected is also replayed
 * through ctlab with the harness's router host: table (ports chosen at random
 * shown as "*"), events, `conntrack -S` and every rule counter must be the
 * kernel's.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { compareCounters, resetCounters } from "../../src/firewall/counters.js";
import { HostModel } from "../../src/firewall/host.js";
import { parseIptables } from "../../src/firewall/iptables.js";
import { replay } from "../../src/replay/replay.js";
import { BUILTIN_RULESETS } from "../../src/sim/builtin.js";
import { runScenario } from "../../src/sim/engine.js";
import { parseScenario } from "../../src/sim/scenario.js";
import { scenarioHost } from "../../src/sim/sweep.js";
import { compareObserved, formatDifferences, observedFromKernel, parseCtLine, parseEventLine } from "./compare.js";
import type { IpRecord } from "./inject.js";
import { captureIpRecords, reframe, scratchDir } from "./inject.js";
import { injectCapture } from "./kernel-run.js";
import { kernelSkipReason, loadRuleset, run, withKernelLock, withTopology, zeroStates } from "./netns.js";

const WAN = "203.0.113.1";
const SERVER = "198.51.100.7";

const SCENARIO = `name: kernel-nat-gateway
seed: 4
duration: 12
host: { address: ${WAN}, gateway: { lan: 192.168.10.0/24, server: ${SERVER} } }
table: { nf_conntrack_checksum: 0 }
traffic:
  - type: clients
    rate: 20
    clients: 20
    service: tcp/443
    close: server-fin
    end: 6
  - type: dns
    rate: 5
    clients: 10
    end: 6
  - type: clients
    rate: 10
    clients: 20
    service: tcp/443
    close: server-fin
    start: 7
    end: 9
`;

/** Only the frame counter the harness needs (no conntrack user). */
const INGRESS_COUNTER = 'table netdev ctlab_ingress {\n  chain ingress { type filter hook ingress device "r0" priority 0; policy accept; counter; }\n}\n';

const MASQ = BUILTIN_RULESETS["masquerade"] as string;
/** The same ruleset on the harness's router: the LAN side is r0, the WAN side sink0. */
const KERNEL_RULES = MASQ.replace(/\beth1\b/g, "r0").replace(/\beth0\b/g, "sink0");

/** The harness's router as ctlab's host model: everything arrives on r0 and leaves by sink0, which holds the WAN address. */
function routerHost(): HostModel {
  const a = (iface: string, w: number) => ({ iface, family: 4 as const, words: Uint32Array.of(w, 0, 0, 0), prefixLen: 32 });
  return new HostModel({ addrs: [a("r0", 0xc00002fe), a("sink0", 0xcb007101)], iif: "r0", oif: "sink0", defaultIface: "sink0" });
}

/** A TCP/UDP packet's 4-tuple, as text. */
function tupleOf(ip: Uint8Array): string {
  const ihl = ((ip[0] as number) & 0xf) * 4;
  const a = (o: number) => `${ip[o]}.${ip[o + 1]}.${ip[o + 2]}.${ip[o + 3]}`;
  const port = (o: number) => ((ip[o] as number) << 8) | (ip[o + 1] as number);
  return `${ip[9]} ${a(12)}:${port(ihl)} ${a(16)}:${port(ihl + 2)}`;
}

/** Masks a reply dport that differs from the original sport (a port NAT chose). */
function maskMoved(line: string): string {
  const first = line.indexOf(" src=");
  const second = line.indexOf(" src=", first + 1);
  if (first < 0 || second < 0) return line;
  const sport = /sport=(\d+)/.exec(line.slice(first, second))?.[1];
  return line.slice(0, second) + line.slice(second).replace(/dport=(\d+)/, (m, p: string) => (p === sport ? m : "dport=*"));
}

const moved = (raw: string): boolean => {
  const l = parseCtLine(raw);
  return /sport=(\d+)/.exec(l.orig)?.[1] !== /dport=(\d+)/.exec(l.reply)?.[1];
};

const skip = kernelSkipReason();

describe("kernel: the simulated NAT gateway (MASQUERADE)", { skip: skip ?? false }, () => {
  let scratch: { dir: string; remove: () => void } | undefined;
  before(() => {
    scratch = scratchDir();
  });
  after(() => scratch?.remove());

  it("gives the kernel's entries, reply tuples, clashes and counters", async () => {
    assert.ok(scratch !== undefined);
    const s = parseScenario(SCENARIO);
    const simPcap = join(scratch.dir, "sim.pcap");
    const ruleset = parseIptables(MASQ, { file: "builtin:masquerade" });
    const sim = runScenario(s, {}, { rules: { ruleset, host: scenarioHost(s), name: "builtin:masquerade" }, writePcap: simPcap });
    const simTable = sim.tracker.formatTable({ extended: true });
    assert.equal(sim.summary.legit.failed, 0);
    assert.equal(sim.summary.drops, 0);

    // The connections whose port MASQUERADE moved, by their tuples on each side of the gateway.
    const movedLines = simTable.filter(moved);
    assert.ok(movedLines.length >= 2, `the scenario must make clashes: ${movedLines.length}`);
    const lanSide = new Set<string>();
    const wanSide = new Set<string>();
    for (const raw of movedLines) {
      const l = parseCtLine(raw);
      const o = /src=(\S+) dst=(\S+) sport=(\d+) dport=(\d+)/.exec(l.orig);
      const r = /src=(\S+) dst=(\S+) sport=(\d+) dport=(\d+)/.exec(l.reply);
      assert.ok(o !== null && r !== null, raw);
      lanSide.add(`6 ${o[1]}:${o[3]} ${o[2]}:${o[4]}`);
      wanSide.add(`6 ${r[1]}:${r[3]} ${r[2]}:${r[4]}`);
    }
    // Those connections go in up to their SYN only: their replies went to a port the kernel did not choose.
    const records: IpRecord[] = [];
    const synSeen = new Set<string>();
    let cut = 0;
    for (const rec of captureIpRecords(simPcap).records) {
      const k = tupleOf(rec.ip);
      if (wanSide.has(k) || (lanSide.has(k) && synSeen.has(k))) {
        cut++;
        continue;
      }
      if (lanSide.has(k)) synSeen.add(k);
      records.push(rec);
    }
    assert.equal(synSeen.size, lanSide.size);

    const kernelPcap = join(scratch.dir, "kernel.pcap");
    const { k, saved } = await withKernelLock(() =>
      withTopology(
        async (t) => {
          const st = reframe(records, t.r0Mac, kernelPcap);
          assert.equal(st.written, records.length, JSON.stringify(st.skipped));
          await run("ip", ["-n", t.rtNs, "addr", "add", `${WAN}/32`, "dev", "sink0"]);
          const r = spawnSync("ip", ["netns", "exec", t.rtNs, "iptables-restore"], { input: KERNEL_RULES, encoding: "utf8" });
          if (r.status !== 0) throw new Error(`Loading the ruleset with iptables-restore failed: ${(r.stderr || String(r.error)).trim()}`);
          await loadRuleset(t, INGRESS_COUNTER);
          const res = await injectCapture(t, kernelPcap, { frames: st.written, realtime: true });
          return { k: res, saved: (await run("iptables-save", ["-c"], { ns: t.rtNs })).stdout };
        },
        { prefix: "nat-" },
      ),
    );
    process.stderr.write(
      `nat gateway vs kernel: ${simTable.length} simulated entries, ${movedLines.length} with a port NAT chose (${cut} of their packets not injected); kernel ${k.table.length} entries, found=${k.stats["found"] ?? 0}\n`,
    );

    // 1. The simulation against the kernel: every connection MASQUERADE kept exactly; the clashes by which ones.
    const kernelMoved = k.table.filter(moved);
    const key = (raw: string) => parseCtLine(raw).key;
    assert.deepEqual(kernelMoved.map(key).sort(), movedLines.map(key).sort(), "the kernel moved the ports of the same connections");
    for (const raw of kernelMoved) {
      const p = Number(/dport=(\d+)/.exec(parseCtLine(raw).reply)?.[1]);
      assert.ok(p >= 1024 && p <= 65535, raw);
    }
    const replies = new Set(k.table.map((l) => parseCtLine(l).reply));
    assert.equal(replies.size, k.table.length, "no two kernel entries share a reply tuple");
    const kept = (lines: readonly string[]) => lines.filter((l) => !moved(l));
    const none = { events: [], stats: {}, count: 0, ctState: zeroStates(), groups: new Map() };
    const simCmp = compareObserved({ ...none, table: kept(k.table), agedSec: k.agedSec }, { ...none, table: kept(simTable) });
    assert.ok(simCmp.identical, `simulation and kernel differ:\n${formatDifferences(simCmp.differences)}`);
    const simStats = new Map(sim.tracker.stats.entries());
    for (const name of ["invalid", "drop", "early_drop", "insert_failed"]) assert.equal(k.stats[name] ?? 0, simStats.get(name) ?? 0, name);

    // 2. The capture as injected, replayed through ctlab: table, events, counters, rule counters.
    const mine = parseIptables(KERNEL_RULES, { file: "kernel.rules" });
    resetCounters(mine);
    const events: string[] = [];
    const back = await replay(kernelPcap, {
      clock: "capture",
      sysctls: { nf_conntrack_checksum: 0 },
      onEvent: (l) => events.push(l),
      firewall: { ruleset: mine, host: routerHost() },
    });
    const stats: Record<string, number> = {};
    for (const [n, v] of back.tracker.stats.entries()) stats[n] = v;
    const kObs = observedFromKernel({
      ...k,
      table: k.table.map(maskMoved),
      events: k.events.map((e) => ({ kind: e.kind, line: maskMoved(e.line) })),
      ctState: zeroStates(),
      groups: new Map(),
    });
    const cmp = compareObserved(kObs, {
      table: back.tracker.formatTable({ extended: true }).map(maskMoved),
      events: events.map((l) => parseEventLine(maskMoved(l))),
      stats,
      count: back.tracker.count,
      ctState: zeroStates(),
      groups: new Map(),
    });
    assert.ok(cmp.identical, `replay and kernel differ:\n${formatDifferences(cmp.differences)}`);
    const counterDiffs = compareCounters(mine, parseIptables(saved, { file: "kernel" }), { policies: true, countedOnly: false });
    assert.deepEqual(
      counterDiffs.map((d) => `${d.where} ${d.text}: ctlab ${d.expected.packets}/${d.expected.bytes}, kernel ${d.actual.packets}/${d.actual.bytes}`),
      [],
    );
  });
});
