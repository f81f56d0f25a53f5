import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { formatIp, ipFamily, ipToWords, parseIp } from "../../src/packet/addr.js";
import {
  buildFromView,
  buildGre,
  buildIcmp,
  buildIcmpError,
  buildIp,
  buildSctp,
  buildTcp,
  buildUdp,
  fragment,
  frameIp,
  locateIp,
  tcpFlagsByte,
} from "../../src/packet/build.js";
import { ipv4HeaderChecksumOk, l4ChecksumOk } from "../../src/packet/checksum.js";
import { PacketView } from "../../src/packet/view.js";
import { decode, hex } from "./helpers.js";

describe("addresses", () => {
  it("parses IPv4 and IPv6 text", () => {
    assert.deepEqual([...parseIp("10.0.0.255")], [10, 0, 0, 255]);
    assert.deepEqual([...parseIp("::")], new Array(16).fill(0));
    assert.deepEqual([...parseIp("::1")].slice(14), [0, 1]);
    assert.deepEqual([...parseIp("fd00::")].slice(0, 2), [0xfd, 0]);
    assert.deepEqual([...parseIp("2001:db8:0:0:1:0:0:1")], [...parseIp("2001:db8::1:0:0:1")]);
    assert.deepEqual([...parseIp("::ffff:192.0.2.1")].slice(10), [0xff, 0xff, 192, 0, 2, 1]);
    assert.deepEqual([...parseIp("fe80::1%eth0")], [...parseIp("fe80::1")]);
    for (const bad of ["1.2.3", "1.2.3.256", "1.2.3.4.5", "a.b.c.d", "1::2::3", "12345::", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7", "", "::g"]) {
      assert.throws(() => parseIp(bad), TypeError, bad);
    }
    assert.equal(ipFamily("::1"), 6);
    assert.equal(ipFamily("1.1.1.1"), 4);
  });

  it("formats words as text, compressing IPv6 as RFC 5952 says", () => {
    const w = new Uint32Array(4);
    for (const [text, want] of [
      ["192.0.2.33", "192.0.2.33"],
      ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
      ["2001:0:0:1:0:0:0:1", "2001:0:0:1::1"],
      ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"],
      ["::", "::"],
      ["fe80::", "fe80::"],
    ] as const) {
      const fam = ipToWords(text, w);
      assert.equal(formatIp(fam, w), want);
    }
  });
});

describe("frame builder", () => {
  it("parses TCP flag letters", () => {
    assert.equal(tcpFlagsByte("S"), 0x02);
    assert.equal(tcpFlagsByte("SA"), 0x12);
    assert.equal(tcpFlagsByte("fa"), 0x11);
    assert.equal(tcpFlagsByte("RA"), 0x14);
    assert.equal(tcpFlagsByte("FSRPAUEC"), 0xff);
    assert.equal(tcpFlagsByte(0x129), 0x29);
    assert.throws(() => tcpFlagsByte("SX"), /Invalid TCP flag "X" in "SX"/);
  });

  it("rejects mixed families and bad MACs", () => {
    assert.throws(() => buildUdp({ src: "10.0.0.1", dst: "::1", sport: 1, dport: 2 }), /Address families differ/);
    assert.throws(() => buildUdp({ src: "10.0.0.1", dst: "10.0.0.2", sport: 1, dport: 2, srcMac: "00:11" }), /Invalid MAC address "00:11"/);
  });

  it("frames: Ethernet with MACs, raw, padding", () => {
    const f = buildUdp({ src: "10.0.0.1", dst: "10.0.0.2", sport: 1, dport: 2, srcMac: "aa:bb:cc:dd:ee:ff", dstMac: "01-02-03-04-05-06" });
    assert.deepEqual([...f.subarray(0, 14)], [1, 2, 3, 4, 5, 6, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x08, 0x00]);
    const raw = buildUdp({ src: "10.0.0.1", dst: "10.0.0.2", sport: 1, dport: 2, link: "raw" });
    assert.deepEqual(raw, f.subarray(14));
    assert.equal(frameIp(raw, { ethPad: true }).length, 60);
    assert.equal(locateIp(raw), 0);
    assert.equal(locateIp(f), 14);
    assert.equal(locateIp(buildUdp({ src: "::1", dst: "::2", sport: 1, dport: 2, vlan: [1, 2], pppoeSession: 3 })), 14 + 8 + 8);
    assert.throws(() => locateIp(hex("000000000000 000000000000 0806 0000")), /EtherType 0x0806/);
  });

  it("writes correct checksums unless told otherwise", () => {
    const f = buildTcp({ src: "10.0.0.1", dst: "10.0.0.2", sport: 1, dport: 2, payload: 7, ipOptions: hex("0101") });
    assert.equal(ipv4HeaderChecksumOk(f, 14, 24), true);
    assert.equal(l4ChecksumOk(decode(f)), true);
    assert.equal(l4ChecksumOk(decode(buildTcp({ src: "10.0.0.1", dst: "10.0.0.2", sport: 1, dport: 2, checksum: 0x1234 }))), false);
    const fixed = buildTcp({ src: "10.0.0.1", dst: "10.0.0.2", sport: 1, dport: 2, checksum: 0xabcd });
    assert.deepEqual([fixed[14 + 36], fixed[14 + 37]], [0xab, 0xcd]);
    assert.equal(ipv4HeaderChecksumOk(buildTcp({ src: "10.0.0.1", dst: "10.0.0.2", sport: 1, dport: 2, ipChecksum: "bad" }), 14, 20), false);
  });

  it("builds ICMP errors quoting at most what Linux quotes, addressed back to the sender", () => {
    const big = buildUdp({ src: "10.0.0.1", dst: "10.0.0.2", sport: 1, dport: 2, payload: 1400 });
    const e = buildIcmpError(big, { type: 3, code: 3 });
    assert.equal(e.length, 14 + 576);
    const v = decode(e);
    assert.equal(formatIp(4, v.src), "10.0.0.2");
    assert.equal(formatIp(4, v.dst), "10.0.0.1");
    const e6 = buildIcmpError(buildUdp({ src: "::1", dst: "::2", sport: 1, dport: 2, payload: 2000 }), { type: 1 });
    assert.equal(e6.length, 14 + 1280);
    // A bare IP packet is recognised as such.
    const bare = buildIcmpError(big.subarray(14), { type: 11, src: "10.9.9.9" });
    assert.equal(formatIp(4, decode(bare).src), "10.9.9.9");
    assert.equal(decode(bare).innerOk, true);
  });

  it("GRE v1 carries the payload length in the key field", () => {
    const g = buildGre({ src: "10.0.0.1", dst: "10.0.0.2", version: 1, callId: 9, payload: 300, seq: 1 });
    assert.deepEqual([...g.subarray(14 + 20, 14 + 20 + 8)], [0x30, 0x01, 0x88, 0x0b, 0x01, 0x2c, 0x00, 0x09]);
  });
});

describe("fragment()", () => {
  const payload = Uint8Array.from({ length: 3000 }, (_, i) => (i * 13) & 0xff);

  it("splits IPv4 on 8-byte boundaries with valid headers and the original payload", () => {
    const whole = buildUdp({ src: "10.0.0.1", dst: "10.0.0.2", sport: 1, dport: 2, id: 77, payload, vlan: [5] });
    const frags = fragment(whole, 1500);
    assert.equal(frags.length, 3);
    const views = frags.map((f) => decode(f));
    assert.deepEqual(
      views.map((v) => [v.fragOffset, v.moreFragments, v.l4Len, v.ipId, v.vlan]),
      [
        [0, true, 1480, 77, 5],
        [1480, true, 1480, 77, 5],
        [2960, false, 48, 77, 5],
      ],
    );
    for (const f of frags) assert.equal(ipv4HeaderChecksumOk(f, 18, 20), true);
    const joined = new Uint8Array(3008);
    for (const v of views) joined.set(v.data.subarray(v.l4Off, v.l4Off + v.l4Len), v.fragOffset);
    assert.deepEqual(joined, whole.subarray(18 + 20));
  });

  it("replaces non-copied IPv4 options by NOPs after the first fragment", () => {
    // Record route (7, not copied) and a copied option (0x94 router alert).
    const opts = hex("07 07 04 00000000 94 04 0000 00");
    const whole = buildUdp({ src: "10.0.0.1", dst: "10.0.0.2", sport: 1, dport: 2, payload: 100, ipOptions: opts });
    const [first, second] = fragment(whole, 80);
    assert.deepEqual([...(first as Uint8Array).subarray(34, 46)], [...opts, 0, 0, 0, 0].slice(0, 12));
    assert.deepEqual([...(second as Uint8Array).subarray(34, 46)], [1, 1, 1, 1, 1, 1, 1, 0x94, 4, 0, 0, 0]);
  });

  it("fragmenting a fragment keeps its offset and MF", () => {
    const frag = buildUdp({ src: "10.0.0.1", dst: "10.0.0.2", sport: 1, dport: 2, payload: 200, fragOffset: 800, mf: true });
    const parts = fragment(frag, 100).map((f) => decode(f));
    assert.deepEqual(
      parts.map((v) => [v.fragOffset, v.moreFragments]),
      [
        [800, true],
        [880, true],
        [960, true],
      ],
    );
  });

  it("IPv6: inserts a fragment header after hop-by-hop and routing headers", () => {
    const whole = buildUdp({ src: "fd00::1", dst: "fd00::2", sport: 1, dport: 2, payload, extHeaders: [{ type: "hop" }, { type: "dest" }] });
    const frags = fragment(whole, 1280, { id: 0xfeedbeef });
    const views = frags.map((f) => decode(f));
    assert.deepEqual(
      views.map((v) => [v.fragHdrOff - 64 - 14, v.ipId, v.fragOffset, v.moreFragments]),
      [
        [48, 0xfeedbeef, 0, true],
        [48, 0xfeedbeef, 1224, true],
        [48, 0xfeedbeef, 2448, false],
      ],
    );
    // The destination options header (not before a routing header) travels in the fragmentable part.
    assert.equal(frags[0]?.[14 + 40 + 8], 60);
    assert.equal(views[0]?.proto, 17);
    for (const f of frags) assert.ok(f.length - 14 <= 1280);
  });

  it("keeps PPPoE lengths right", () => {
    const whole = buildUdp({ src: "10.0.0.1", dst: "10.0.0.2", sport: 1, dport: 2, payload: 100, pppoeSession: 1 });
    for (const f of fragment(whole, 60)) {
      assert.equal((f[18] as number) * 256 + (f[19] as number), f.length - 20);
      assert.equal(decode(f).family, 4);
    }
  });

  it("refuses an MTU that leaves no room for data", () => {
    assert.throws(() => fragment(buildUdp({ src: "10.0.0.1", dst: "10.0.0.2", sport: 1, dport: 2 }), 24), RangeError);
    assert.throws(() => fragment(buildIcmp({ src: "::1", dst: "::2" }), 48), RangeError);
  });
});

describe("buildFromView()", () => {
  /** A view as the simulator fills it: decoded fields only, no bytes. */
  function synthetic(from: PacketView): PacketView {
    const v = new PacketView();
    for (const [k, val] of Object.entries(from)) {
      if (k === "data" || k === "capLen" || k === "wireLen" || k === "frameOff") continue;
      if (val instanceof Uint32Array) (v as unknown as Record<string, Uint32Array>)[k]?.set(val);
      else (v as unknown as Record<string, unknown>)[k] = val;
    }
    return v;
  }

  const keys = [
    "family",
    "proto",
    "sport",
    "dport",
    "tcpFlags",
    "seq",
    "ack",
    "window",
    "optMss",
    "optWscale",
    "optSackPerm",
    "sackCount",
    "payloadLen",
    "icmpType",
    "icmpCode",
    "icmpId",
    "innerOk",
    "innerProto",
    "innerSport",
    "innerDport",
    "innerIcmpId",
    "greVersion",
    "greKey",
    "sctpVtag",
    "vlan",
    "l4Len",
    "ttl",
  ] as const;

  it("rebuilds frames from decoded fields alone", () => {
    const frames = [
      buildTcp({
        src: "10.0.0.1",
        dst: "10.0.0.2",
        sport: 1,
        dport: 2,
        flags: "SA",
        seq: 5,
        ack: 6,
        win: 999,
        mss: 1400,
        wscale: 3,
        sackPerm: true,
        payload: 10,
        vlan: [7],
        ttl: 3,
      }),
      buildTcp({
        src: "fd00::1",
        dst: "fd00::2",
        sport: 1,
        dport: 2,
        sack: [
          [1, 2],
          [5, 9],
        ],
      }),
      buildUdp({ src: "fd00::1", dst: "fd00::2", sport: 53, dport: 9, payload: 20 }),
      buildIcmp({ src: "10.0.0.1", dst: "10.0.0.2", id: 4, payload: 8 }),
      buildIcmpError(buildUdp({ src: "10.0.0.1", dst: "10.0.0.2", sport: 3, dport: 4 }), { type: 3, code: 3 }),
      buildIcmpError(buildIcmp({ src: "fd00::1", dst: "fd00::2", id: 6 }), { type: 1, code: 4 }),
      buildSctp({ src: "10.0.0.1", dst: "10.0.0.2", sport: 1, dport: 2, vtag: 77, chunks: [] }),
      buildGre({ src: "10.0.0.1", dst: "10.0.0.2", version: 1, callId: 12 }),
      buildIp({ src: "10.0.0.1", dst: "10.0.0.2" }, 89, 12),
    ];
    for (const f of frames) {
      const orig = decode(f);
      const again = decode(buildFromView(synthetic(orig)));
      for (const k of keys) assert.deepEqual(again[k], orig[k], k);
      assert.equal(l4ChecksumOk(again), true);
    }
  });

  it("copies captured and reassembled bytes", () => {
    const f = buildUdp({ src: "10.0.0.1", dst: "10.0.0.2", sport: 1, dport: 2 });
    assert.deepEqual(buildFromView(decode(f)), f);
    assert.throws(() => buildFromView(new PacketView()), /without an IP family/);
  });
});
