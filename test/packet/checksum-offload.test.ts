/**
 * Checksums as a capture on the sending host shows them: IPv4 header sums of
 * 0 (left to the NIC), transport checksums holding only the pseudo-header sum
 * (CHECKSUM_PARTIAL), and truly wrong ones, through decode, the tracker, the
 * packet source and the replay summary.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { CT_STATE } from "../../src/conntrack/constants.js";
import { Tracker } from "../../src/conntrack/tracker.js";
import { buildIcmp, buildSctp, buildTcp, buildUdp, sctpInitChunk } from "../../src/packet/build.js";
import { l4ChecksumOffloaded, l4ChecksumOk } from "../../src/packet/checksum.js";
import { DECODE_FLAG, DECODE_REASON, decodeFrame } from "../../src/packet/decode.js";
import { forEachPacketSync } from "../../src/packet/source.js";
import { PacketView } from "../../src/packet/view.js";
import { formatSummaryText } from "../../src/report/summary.js";
import { replay } from "../../src/replay/replay.js";
import { pcapBytes } from "./helpers.js";

const view = new PacketView();
const dec = (f: Uint8Array, flags = 0): PacketView => {
  decodeFrame(view.setFrame(f), flags);
  return view;
};

/** Writes `v` into the 16-bit field at `off` of the transport header of Ethernet frame `f` (IPv4, 20-byte header). */
function setL4Field(f: Uint8Array, off: number, v: number): Uint8Array {
  const d = dec(f);
  const o = d.l4Off + off;
  f[o] = v >> 8;
  f[o + 1] = v & 0xff;
  return f;
}

describe("transport checksum offload signature", () => {
  const tcp = (family: 4 | 6, checksum?: "offload" | "bad"): Uint8Array =>
    buildTcp({
      src: family === 4 ? "10.0.0.1" : "fd00::1",
      dst: family === 4 ? "10.0.0.2" : "fd00::2",
      sport: 40000,
      dport: 80,
      flags: "PA",
      seq: 1,
      ack: 1,
      payload: 33,
      ...(checksum ? { checksum } : {}),
    });

  it("recognises the folded pseudo-header sum of TCP and UDP over IPv4 and IPv6, and only on a failing checksum", () => {
    for (const family of [4, 6] as const) {
      assert.equal(l4ChecksumOk(dec(tcp(family))), true);
      const off = dec(tcp(family, "offload"));
      assert.equal(l4ChecksumOk(off), false);
      assert.equal(l4ChecksumOffloaded(off), true, `TCP over IPv${family}`);
      assert.equal(l4ChecksumOffloaded(dec(tcp(family, "bad"))), false);
      const u = dec(
        buildUdp({
          src: family === 4 ? "10.0.0.1" : "fd00::1",
          dst: family === 4 ? "10.0.0.2" : "fd00::2",
          sport: 5,
          dport: 53,
          payload: 20,
          checksum: "offload",
        }),
      );
      assert.equal(l4ChecksumOk(u), false);
      assert.equal(l4ChecksumOffloaded(u), true, `UDP over IPv${family}`);
    }
  });

  it("also takes the pseudo-header sum over length 0 (drivers before segmentation offload), and a zero SCTP CRC", () => {
    const f = tcp(4);
    const v = dec(f);
    // Pseudo-header of 10.0.0.1 → 10.0.0.2, protocol 6, length 0, folded.
    const sum0 = 0x0a00 + 0x0001 + 0x0a00 + 0x0002 + 6;
    setL4Field(f, 16, sum0);
    assert.equal(l4ChecksumOk(dec(f)), false);
    assert.equal(l4ChecksumOffloaded(dec(f)), true);
    assert.equal(v.proto, 6);
    const s = dec(buildSctp({ src: "10.0.0.1", dst: "10.0.0.2", sport: 1, dport: 2, vtag: 0, chunks: [sctpInitChunk(1)], checksum: "offload" }));
    assert.equal(l4ChecksumOk(s), false);
    assert.equal(l4ChecksumOffloaded(s), true);
  });

  it("never applies to ICMP, which is always summed in software", () => {
    const i = dec(buildIcmp({ src: "10.0.0.1", dst: "10.0.0.2", type: 8, id: 1, seq: 1, checksum: "bad" }));
    assert.equal(l4ChecksumOffloaded(i), false);
  });

  it("tracks offloaded packets at PRE_ROUTING with nf_conntrack_checksum=1, counts them, and keeps wrong checksums invalid", () => {
    const tr = new Tracker({ sysctls: { nf_conntrack_checksum: 1 }, seed: 1 });
    const c = { src: "10.0.0.1", dst: "10.0.0.2", sport: 40000, dport: 80 } as const;
    const s = { src: "10.0.0.2", dst: "10.0.0.1", sport: 80, dport: 40000 } as const;
    // The capturing host is the client: its own segments carry the offload signature, the server's are whole.
    assert.equal(tr.process(dec(buildTcp({ ...c, flags: "S", seq: 100, checksum: "offload" }))), CT_STATE.NEW);
    assert.equal(tr.process(dec(buildTcp({ ...s, flags: "SA", seq: 500, ack: 101 }))), CT_STATE.ESTABLISHED);
    assert.equal(tr.process(dec(buildTcp({ ...c, flags: "A", seq: 101, ack: 501, checksum: "offload" }))), CT_STATE.ESTABLISHED);
    assert.equal(tr.process(dec(buildTcp({ ...s, flags: "PA", seq: 501, ack: 101, payload: 10, checksum: "bad" }))), CT_STATE.INVALID);
    assert.equal(tr.stats.checksumOffloaded, 2);
    assert.deepEqual(tr.stats.reasons(), { "bad checksum": 1 });
    assert.equal(tr.formatTable()[0]?.includes("ESTABLISHED"), true);
  });

  it("treats the signature as a wrong checksum in the wire model (bytes injected into a router)", () => {
    const tr = new Tracker({ sysctls: { nf_conntrack_checksum: 1 }, seed: 1, offloadedChecksums: "wire" });
    assert.equal(tr.process(dec(buildTcp({ src: "10.0.0.1", dst: "10.0.0.2", sport: 1, dport: 2, flags: "S", checksum: "offload" }))), CT_STATE.INVALID);
    assert.equal(tr.stats.checksumOffloaded, 0);
  });

  it("is not consulted when nf_conntrack_checksum=0", () => {
    const tr = new Tracker({ sysctls: { nf_conntrack_checksum: 0 }, seed: 1 });
    assert.equal(tr.process(dec(buildTcp({ src: "10.0.0.1", dst: "10.0.0.2", sport: 1, dport: 2, flags: "S", checksum: "offload" }))), CT_STATE.NEW);
    assert.equal(tr.stats.checksumOffloaded, 0);
  });
});

describe("IPv4 header checksum", () => {
  const ip = (ipChecksum?: number | "bad"): Uint8Array =>
    buildUdp({ src: "10.0.0.1", dst: "10.0.0.2", sport: 1, dport: 2, payload: 4, ...(ipChecksum !== undefined ? { ipChecksum } : {}) });

  it("drops a wrong one as ip_rcv does, and accepts a zero one as the offload artefact", () => {
    assert.equal(dec(ip("bad"), DECODE_FLAG.VERIFY_IPV4_CHECKSUM).reason, DECODE_REASON.BAD_IPV4_CHECKSUM);
    assert.equal(view.family, 0);
    const z = dec(ip(0), DECODE_FLAG.VERIFY_IPV4_CHECKSUM);
    assert.deepEqual([z.reason, z.family, z.ipv4ChecksumZero], [0, 4, true]);
    const ok = dec(ip(), DECODE_FLAG.VERIFY_IPV4_CHECKSUM);
    assert.deepEqual([ok.reason, ok.ipv4ChecksumZero], [0, false]);
    // Without the flag nothing is verified.
    assert.equal(dec(ip("bad")).reason, 0);
  });

  it("is verified by the packet sources by default and counted both ways; verifyIpv4Checksum: false turns it off", () => {
    const cap = pcapBytes([ip("bad"), ip(0), ip(0), ip()].map((frame, i) => ({ sec: 1 + i, nsec: 0, frame })));
    const s = forEachPacketSync(cap, () => {});
    assert.deepEqual([s.ipv4ChecksumBad, s.ipv4ChecksumZero, s.decodeFailures["bad-ipv4-checksum"], s.ipv4], [1, 2, 1, 3]);
    const off = forEachPacketSync(cap, () => {}, { verifyIpv4Checksum: false });
    assert.deepEqual([off.ipv4ChecksumBad, off.ipv4ChecksumZero, off.ipv4], [0, 0, 4]);
  });
});

describe("replay summary", () => {
  it("reports bad and zero IPv4 header checksums and offloaded transport checksums, in text and JSON", async () => {
    const c = { src: "10.0.0.1", dst: "10.0.0.2", sport: 40000, dport: 80 } as const;
    const frames = [
      buildTcp({ ...c, flags: "S", seq: 100, checksum: "offload" }),
      buildTcp({ src: "10.0.0.2", dst: "10.0.0.1", sport: 80, dport: 40000, flags: "SA", seq: 500, ack: 101 }),
      buildTcp({ ...c, flags: "A", seq: 101, ack: 501, checksum: "offload", ipChecksum: 0 }),
      buildTcp({ ...c, flags: "A", seq: 101, ack: 501, ipChecksum: "bad" }),
    ];
    const cap = pcapBytes(frames.map((frame, i) => ({ sec: 1, nsec: i * 1000, frame })));
    const { summary } = await replay(cap, { seed: 1 });
    assert.deepEqual(summary.packets.checksums, { ipv4_bad: 1, ipv4_zero: 1, offloaded: 2 });
    assert.equal(summary.packets.invalid, 0);
    assert.equal(summary.packets.established, 2);
    const text = formatSummaryText(summary);
    assert.match(text, /1 IPv4 packets dropped for a wrong header checksum/);
    assert.match(text, /1 IPv4 packets with a zero \(offloaded\) header checksum, accepted/);
    assert.match(text, /2 packets with offloaded checksums/);
    assert.deepEqual((JSON.parse(JSON.stringify(summary)) as { packets: { checksums: unknown } }).packets.checksums, {
      ipv4_bad: 1,
      ipv4_zero: 1,
      offloaded: 2,
    });
  });
});
