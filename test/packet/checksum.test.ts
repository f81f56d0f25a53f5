import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { buildGre, buildIcmp, buildIcmpError, buildIp, buildSctp, buildTcp, buildUdp, buildUdpLite, sctpInitChunk } from "../../src/packet/build.js";
import { finishChecksum, foldSum, ipv4HeaderChecksumOk, l4ChecksumOk, onesSum, sctpCrc32c } from "../../src/packet/checksum.js";
import { decode, hex } from "./helpers.js";

const V4 = { src: "10.1.2.3", dst: "172.16.5.6" };
const V6 = { src: "fd00::10", dst: "fd00:1::20" };

function ok(frame: Uint8Array, wireLen?: number): boolean {
  const v = decode(frame, 1, wireLen === undefined ? {} : { wireLen });
  return l4ChecksumOk(v);
}

describe("one's-complement sums", () => {
  it("match the RFC 1071 example, odd lengths pad with zero", () => {
    const b = hex("0001 f203 f4f5 f6f7");
    assert.equal(foldSum(onesSum(b, 0, 8, 0)), 0xddf2);
    assert.equal(finishChecksum(onesSum(b, 0, 8, 0)), 0x220d);
    assert.equal(onesSum(hex("ab"), 0, 1, 0), 0xab00);
    assert.equal(onesSum(hex("00 ab"), 1, 1, 0), 0xab00);
  });

  it("fold large inputs exactly", () => {
    const big = new Uint8Array(200_000).fill(0xff);
    assert.equal(foldSum(onesSum(big, 0, big.length, 0)), 0xffff);
    const one = new Uint8Array(131_072);
    one[131_071] = 1;
    assert.equal(foldSum(onesSum(one, 0, one.length, 0)), 1);
  });

  it("IPv4 header checksums", () => {
    const f = buildTcp({ ...V4, sport: 1, dport: 2, ipOptions: hex("01010101") });
    assert.equal(ipv4HeaderChecksumOk(f, 14, 24), true);
    f[22] = (f[22] as number) + 1;
    assert.equal(ipv4HeaderChecksumOk(f, 14, 24), false);
    const bad = buildTcp({ ...V4, sport: 1, dport: 2, ipChecksum: "bad" });
    assert.equal(ipv4HeaderChecksumOk(bad, 14, 20), false);
  });
});

describe("sctpCrc32c", () => {
  it("matches the RFC 3720 test vector for 32 zero bytes", () => {
    assert.equal(sctpCrc32c(new Uint8Array(32), 0, 32), 0x8a9136aa);
  });

  it("treats the checksum field as zero", () => {
    const a = new Uint8Array(40).fill(7);
    const b = a.slice();
    b.fill(0x99, 8, 12);
    assert.equal(sctpCrc32c(a, 0, 40), sctpCrc32c(b, 0, 40));
    assert.notEqual(sctpCrc32c(a, 0, 40), sctpCrc32c(a, 0, 39));
  });
});

describe("l4ChecksumOk", () => {
  it("TCP over IPv4 and IPv6", () => {
    for (const a of [V4, V6]) {
      assert.equal(ok(buildTcp({ ...a, sport: 1, dport: 2, mss: 1460, payload: 33 })), true);
      assert.equal(ok(buildTcp({ ...a, sport: 1, dport: 2, payload: 33, checksum: "bad" })), false);
      const f = buildTcp({ ...a, sport: 1, dport: 2, payload: 33 });
      f[f.length - 1] = (f[f.length - 1] as number) ^ 0x10;
      assert.equal(ok(f), false);
    }
  });

  it("UDP: zero means none for both families", () => {
    for (const a of [V4, V6]) {
      assert.equal(ok(buildUdp({ ...a, sport: 1, dport: 2, payload: 9 })), true);
      assert.equal(ok(buildUdp({ ...a, sport: 1, dport: 2, payload: 9, checksum: "bad" })), false);
      assert.equal(ok(buildUdp({ ...a, sport: 1, dport: 2, payload: 9, checksum: "none" })), true);
    }
  });

  it("UDP sums the transport length of the IP header, not the UDP length field", () => {
    // UDP length 9 of 17 bytes: the builder sums all 17, as nf_checksum() does.
    const f = buildUdp({ ...V4, sport: 1, dport: 2, payload: 9, udpLength: 9 });
    assert.equal(l4ChecksumOk(decode(f)), true);
    // The trailing bytes are covered: changing one breaks it.
    f[f.length - 1] = (f[f.length - 1] as number) ^ 1;
    assert.equal(ok(f), false);
  });

  it("a checksum of 0xffff stands for a computed zero", () => {
    // Find a payload whose UDP checksum computes to zero, so it is sent as 0xffff.
    for (let i = 0; i < 65536; i++) {
      const f = buildUdp({ ...V4, sport: 1, dport: 2, payload: Uint8Array.of(i >> 8, i & 0xff) });
      if (f[14 + 26] === 0xff && f[14 + 27] === 0xff) {
        assert.equal(ok(f), true);
        return;
      }
    }
    assert.fail("no payload produced a zero checksum");
  });

  it("UDP-Lite: the kernel's pseudo-header protocol 17, coverage, mandatory checksum", () => {
    for (const a of [V4, V6]) {
      assert.equal(ok(buildUdpLite({ ...a, sport: 1, dport: 2, payload: 20, checksumProto: 17 })), true);
      assert.equal(ok(buildUdpLite({ ...a, sport: 1, dport: 2, payload: 20, checksumProto: 17, coverage: 12 })), true);
      // RFC 3828's protocol 136 is what the kernel rejects (verified on 6.18).
      assert.equal(ok(buildUdpLite({ ...a, sport: 1, dport: 2, payload: 20 })), false);
      // Bytes beyond the coverage are not covered.
      const f = buildUdpLite({ ...a, sport: 1, dport: 2, payload: 20, checksumProto: 17, coverage: 12 });
      f[f.length - 1] = (f[f.length - 1] as number) ^ 0xff;
      assert.equal(ok(f), true);
      assert.equal(ok(buildUdpLite({ ...a, sport: 1, dport: 2, checksumProto: 17, checksum: "none" })), false);
      assert.equal(ok(buildUdpLite({ ...a, sport: 1, dport: 2, payload: 4, checksumProto: 17, coverage: 5 })), false);
    }
  });

  it("ICMP has no pseudo-header; ICMPv6 has one", () => {
    assert.equal(ok(buildIcmp({ ...V4, id: 1, payload: 56 })), true);
    assert.equal(ok(buildIcmp({ ...V4, id: 1, payload: 56, checksum: "bad" })), false);
    assert.equal(ok(buildIcmpError(buildUdp({ ...V4, sport: 1, dport: 2 }), { type: 3, code: 3 })), true);
    assert.equal(ok(buildIcmp({ ...V6, id: 1, payload: 56 })), true);
    assert.equal(ok(buildIcmp({ ...V6, id: 1, payload: 56, checksum: "bad" })), false);
    // Same ICMPv6 bytes with another destination: the pseudo-header makes it wrong.
    const f = buildIcmp({ ...V6, id: 1 });
    f[14 + 39] = (f[14 + 39] as number) ^ 1;
    assert.equal(ok(f), false);
  });

  it("SCTP uses CRC32c", () => {
    const good = buildSctp({ ...V4, sport: 1, dport: 2, vtag: 0, chunks: [sctpInitChunk(0x1234)] });
    assert.equal(ok(good), true);
    assert.equal(ok(buildSctp({ ...V6, sport: 1, dport: 2, vtag: 5, chunks: [{ type: 0, data: 17 }] })), true);
    assert.equal(ok(buildSctp({ ...V4, sport: 1, dport: 2, vtag: 0, chunks: [sctpInitChunk(1)], checksum: "bad" })), false);
  });

  it("protocols without a checked checksum, non-IP frames and snapped packets pass", () => {
    assert.equal(ok(buildGre({ ...V4, key: 3, csum: true, checksum: "bad" })), true);
    assert.equal(ok(buildIp({ ...V4 }, 89, 10)), true);
    const arp = new Uint8Array(42);
    arp[12] = 0x08;
    arp[13] = 0x06;
    assert.equal(ok(arp), true);
    const f = buildTcp({ ...V4, sport: 1, dport: 2, payload: 100, checksum: "bad" });
    assert.equal(ok(f.subarray(0, 60), f.length), true);
  });
});
