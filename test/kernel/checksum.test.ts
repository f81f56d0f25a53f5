/**
 * Checksums against the kernel, with nf_conntrack_checksum=1 on the router.
 *
 * The capture is one a host took of its own traffic: its own TCP, UDP and
 * SCTP packets carry the transmit-offload signature (TCP/UDP: the folded
 * pseudo-header sum; SCTP: CRC 0), its peers' packets are whole; some packets
 * carry truly wrong transport checksums, and some a wrong or a zero IPv4
 * header checksum.
 *
 * 1. "wire": the bytes exactly as captured, injected with tcpreplay. An
 *    AF_PACKET frame arrives on the router's veth as CHECKSUM_NONE — the
 *    router is not the sending host, nothing tells it the sum was left to a
 *    NIC — so conntrack verifies it at PREROUTING and finds the signature
 *    simply wrong: every offloaded packet is INVALID ("bad checksum"), just
 *    as a truly wrong one. ctlab in the wire model (offloadedChecksums
 *    "wire") must agree exactly.
 * 2. "sender": what the capture means. On the sending host those packets
 *    were CHECKSUM_PARTIAL (never checked: nf_ip_checksum() returns 0 for
 *    them, and LOCAL_OUT is not checked at all) and the NIC put the right sum
 *    on the wire, so any box behind it — this router included — saw valid
 *    packets. The kernel is fed what the wire carried (offloaded sums
 *    completed, truly wrong ones kept wrong); ctlab replays the capture as it
 *    was taken, with its default sender model, and must agree exactly while
 *    counting the offloaded packets.
 *
 * In both, a wrong IPv4 header checksum is dropped by ip_rcv before
 * conntrack on both sides, and a zero one is injected completed (the harness
 * recomputes it) — the unit tests show ctlab accepting the zero as it is.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { buildSctp, buildTcp, buildUdp, locateIp, sctpInitChunk } from "../../src/packet/build.js";
import type { IpRecord } from "./inject.js";
import { reframe, runKernel, scratchDir } from "./inject.js";
import { runCtlab } from "./ctlab-run.js";
import { compareObserved, formatDifferences, observedFromKernel } from "./compare.js";
import { kernelSkipReason } from "./netns.js";

const skip = kernelSkipReason();

/** The capture: `wire` builds what the wire carried instead of what the sending host's tap saw. */
function capture(wire: boolean): IpRecord[] {
  const own = wire ? {} : ({ checksum: "offload" } as const);
  const frames: Uint8Array[] = [];
  // TCP, the capturing host 10.203.0.1 is the client.
  const c = { src: "10.203.0.1", dst: "10.203.1.1", sport: 40001, dport: 80 } as const;
  const s = { src: "10.203.1.1", dst: "10.203.0.1", sport: 80, dport: 40001 } as const;
  frames.push(
    buildTcp({ ...c, flags: "S", seq: 1000, mss: 1460, ...own }),
    buildTcp({ ...s, flags: "SA", seq: 5000, ack: 1001, mss: 1460 }),
    buildTcp({ ...c, flags: "A", seq: 1001, ack: 5001, ...own }),
    buildTcp({ ...c, flags: "PA", seq: 1001, ack: 5001, payload: 200, ...own }),
    // A truly wrong checksum from the peer: INVALID in every model, then the retransmission.
    buildTcp({ ...s, flags: "PA", seq: 5001, ack: 1201, payload: 300, checksum: "bad" }),
    buildTcp({ ...s, flags: "PA", seq: 5001, ack: 1201, payload: 300 }),
    buildTcp({ ...c, flags: "A", seq: 1201, ack: 5301, ...own }),
  );
  // The same over IPv6.
  const c6 = { src: "fd00:203::1", dst: "fd00:203:1::1", sport: 40002, dport: 443 } as const;
  const s6 = { src: "fd00:203:1::1", dst: "fd00:203::1", sport: 443, dport: 40002 } as const;
  frames.push(
    buildTcp({ ...c6, flags: "S", seq: 7, ...own }),
    buildTcp({ ...s6, flags: "SA", seq: 70, ack: 8 }),
    buildTcp({ ...c6, flags: "A", seq: 8, ack: 71, ...own }),
  );
  // UDP: an offloaded query, its answer, a truly wrong datagram of another flow.
  frames.push(
    buildUdp({ src: "10.203.0.1", dst: "10.203.1.2", sport: 5353, dport: 53, payload: 40, ...own }),
    buildUdp({ src: "10.203.1.2", dst: "10.203.0.1", sport: 53, dport: 5353, payload: 120 }),
    buildUdp({ src: "10.203.1.3", dst: "10.203.0.1", sport: 123, dport: 123, payload: 48, checksum: "bad" }),
  );
  // SCTP: the capturing host's INIT with its CRC left to the NIC.
  frames.push(buildSctp({ src: "10.203.0.1", dst: "10.203.1.4", sport: 9, dport: 9, vtag: 0, chunks: [sctpInitChunk(0x1234)], ...own }));
  // IPv4 header checksums: zero (offload artefact; the harness completes it) and wrong (ip_rcv drops it).
  frames.push(
    buildUdp({ src: "10.203.0.1", dst: "10.203.1.5", sport: 1000, dport: 2000, payload: 10, ipChecksum: 0 }),
    buildUdp({ src: "10.203.0.1", dst: "10.203.1.6", sport: 1000, dport: 2000, payload: 10, ipChecksum: "bad" }),
  );
  return frames.map((f, i) => ({ tsSec: 1_800_000_000, tsNsec: i * 1000, ip: f.subarray(locateIp(f)) }));
}

/** Packets of the capture that carry the offload signature. */
const OFFLOADED = 8;

describe("kernel: checksums with nf_conntrack_checksum=1 (offload signature, wrong sums, IPv4 header)", { skip: skip ?? false }, () => {
  let scratch: { dir: string; remove: () => void } | undefined;
  before(() => {
    scratch = scratchDir();
  });
  after(() => scratch?.remove());

  it("wire: the router finds the offload signature wrong, and ctlab's wire model agrees", async () => {
    assert.ok(scratch !== undefined);
    const out = join(scratch.dir, "checksum-wire.pcap");
    const k = await runKernel(capture(false), out, { sysctls: { nf_conntrack_checksum: 1 } });
    assert.equal(k.reframe.badHeaderChecksum, 1);
    const kernel = observedFromKernel(k.result);
    const ctlab = runCtlab(out, { sysctls: { nf_conntrack_checksum: 1 }, offloadedChecksums: "wire" });
    const cmp = compareObserved(kernel, ctlab);
    assert.ok(cmp.identical, `ctlab (wire model) differs from the kernel:\n${formatDifferences(cmp.differences)}`);
    // The kernel does not recognise the signature: the 8 offloaded packets are invalid, beside the 2 truly
    // wrong ones and the 2 SYN-ACKs that found no entry (their SYNs were invalid).
    assert.equal(kernel.ctState.invalid, OFFLOADED + 4);
    assert.equal(ctlab.tracker.stats.checksumOffloaded, 0);
  });

  it("sender: the capture as taken, replayed by ctlab, agrees with the kernel fed what the wire carried", async () => {
    assert.ok(scratch !== undefined);
    const out = join(scratch.dir, "checksum-onwire.pcap");
    const k = await runKernel(capture(true), out, { sysctls: { nf_conntrack_checksum: 1 } });
    const taken = join(scratch.dir, "checksum-taken.pcap");
    reframe(capture(false), "02:00:00:00:00:01", taken);
    const kernel = observedFromKernel(k.result);
    const ctlab = runCtlab(taken, { sysctls: { nf_conntrack_checksum: 1 }, offloadedChecksums: "sender" });
    const cmp = compareObserved(kernel, ctlab);
    assert.ok(cmp.identical, `ctlab (sender model) differs from the kernel:\n${formatDifferences(cmp.differences)}`);
    assert.equal(ctlab.tracker.stats.checksumOffloaded, OFFLOADED);
    // Truly wrong checksums stay invalid: the peer's bad segment and the bad NTP datagram.
    assert.equal(kernel.ctState.invalid, 2);
    assert.ok(
      kernel.table.some((l) => l.includes("sport=40001") && l.includes("ESTABLISHED")),
      kernel.table.join("\n"),
    );
  });
});
