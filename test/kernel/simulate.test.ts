/**
 * The simulator against the kernel: a short simulated scenario with a
 * table-full moment, written with --write-pcap and replayed into the kernel
 * in real time (20 s). Sixty-four bots hold ASSURED connections that fill a
 * 64-entry table, so early drop can evict nothing whatever either side's
 * random hash seed: every SYN of the legitimate clients that follow is
 * dropped, retransmitted with the kernel's backoff and dropped again, and
 * the clients fail. The kernel must count the same drops (no early drop)
 * and end with the same table size as the simulation.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { parseScenario } from "../../src/sim/scenario.js";
import { runScenario } from "../../src/sim/engine.js";
import { captureIpRecords, runKernel, scratchDir } from "./inject.js";
import { observedFromKernel } from "./compare.js";
import { kernelSkipReason } from "./netns.js";

const skip = kernelSkipReason();

describe("kernel: a simulated table-full scenario", { skip: skip ?? false }, () => {
  let scratch: { dir: string; remove: () => void } | undefined;
  before(() => {
    scratch = scratchDir();
  });
  after(() => scratch?.remove());

  it("gives the kernel's drops, early drops, table size and the clients' fate", async () => {
    assert.ok(scratch !== undefined);
    const s = parseScenario(`name: kernel-tablefull
duration: 20
seed: 3
table: { nf_conntrack_max: 64, nf_conntrack_buckets: 64, nf_conntrack_checksum: 0 }
traffic:
  - type: connection-flood
    rate: 200
    end: 0.32
    bots: 64
  - type: clients
    rate: 1
    arrival: constant
    start: 2
    end: 4
`);
    const pcap = join(scratch.dir, "sim.pcap");
    const sim = runScenario(s, {}, { writePcap: pcap });
    assert.equal(sim.summary.peak_entries, 64);
    // Two clients, each SYN at +0, 1, 3, 7, 15 s within the 20 s: ten drops, no early drop.
    assert.equal(sim.summary.drops, 10);
    assert.equal(sim.summary.early_drops, 0);
    assert.equal(sim.summary.legit.attempted, 2);
    const kernel = await runKernel(captureIpRecords(pcap).records, join(scratch.dir, "kernel.pcap"), {
      globalLimits: { max: 64, hashsize: 64 },
      realtime: true,
    });
    const k = observedFromKernel(kernel.result);
    process.stderr.write(
      `simulate vs kernel: kernel count=${k.count} drop=${k.stats["drop"] ?? 0} early_drop=${k.stats["early_drop"] ?? 0}; simulation count=${sim.tracker.count} drop=${sim.summary.drops} early_drop=${sim.summary.early_drops}\n`,
    );
    assert.equal(k.count, sim.tracker.count);
    assert.equal(k.stats["drop"] ?? 0, sim.summary.drops);
    assert.equal(k.stats["early_drop"] ?? 0, sim.summary.early_drops);
    // Every client SYN the kernel saw was dropped: no client got a SYN/ACK, as in the simulation where both failed or are failing.
    assert.equal(k.ctState.new, 64);
  });
});
