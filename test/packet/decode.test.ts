import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { formatIp } from "../../src/packet/addr.js";
import { buildGre, buildIcmp, buildIcmpError, buildIp, buildSctp, buildTcp, buildUdp, buildUdpLite, sctpInitChunk } from "../../src/packet/build.js";
import { DECODE_FLAG, DECODE_REASON, decodeReasonName, decodeReasons, decodeReasonText, FIRST_L4_REASON } from "../../src/packet/decode.js";
import type { PacketView } from "../../src/packet/view.js";
import { decode, hex } from "./helpers.js";

const V4 = { src: "192.0.2.1", dst: "198.51.100.7" };
const V6 = { src: "2001:db8::1", dst: "2001:db8:0:1::2" };

function ip(v: PacketView, which: "src" | "dst" | "innerSrc" | "innerDst", fam: 4 | 6 = v.family === 6 ? 6 : 4): string {
  return formatIp(fam, v[which]);
}

/** The bare IPv4 packet of an Ethernet frame built here. */
function rawOf(frame: Uint8Array): Uint8Array {
  return frame.subarray(14);
}

describe("decodeFrame link layers", () => {
  const tcp4 = buildTcp({ ...V4, sport: 1234, dport: 80, flags: "S", seq: 1 });
  const tcp6 = buildTcp({ ...V6, sport: 1234, dport: 80, flags: "S", seq: 1 });

  function assertTcp(v: PacketView, fam: 4 | 6): void {
    assert.equal(v.reason, 0, decodeReasonName(v.reason));
    assert.equal(v.family, fam);
    assert.equal(v.proto, 6);
    assert.equal(v.sport, 1234);
    assert.equal(v.dport, 80);
    assert.equal(v.l4Ok, true);
    assert.equal(ip(v, "src"), fam === 4 ? V4.src : V6.src);
  }

  it("Ethernet II", () => {
    const v = decode(tcp4);
    assertTcp(v, 4);
    assert.equal(v.vlan, -1);
    assert.equal(v.l3Off, 64 + 14);
    assertTcp(decode(tcp6), 6);
  });

  it("802.1Q, 802.1ad QinQ and triple tags: outer VLAN id and tag count", () => {
    let v = decode(buildTcp({ ...V4, sport: 1234, dport: 80, vlan: [3136] }));
    assertTcp(v, 4);
    assert.equal(v.vlan, 3136);
    assert.equal(v.vlanTags, 1);
    v = decode(buildTcp({ ...V6, sport: 1234, dport: 80, vlan: [118, 10] }));
    assertTcp(v, 6);
    assert.equal(v.vlan, 118);
    assert.equal(v.vlanTags, 2);
    v = decode(buildTcp({ ...V4, sport: 1234, dport: 80, vlan: [1, 2, 3], vlanTpid: [0x9100, 0x88a8, 0x8100] }));
    assertTcp(v, 4);
    assert.equal(v.vlanTags, 3);
    // The priority and DEI bits are not part of the id.
    v = decode(buildTcp({ ...V4, sport: 1234, dport: 80, vlan: [0xe000 | 42] }));
    assert.equal(v.vlan, 42);
  });

  it("PPPoE session frames inside QinQ", () => {
    assertTcp(decode(buildTcp({ ...V4, sport: 1234, dport: 80, vlan: [100, 200], pppoeSession: 0x1234 })), 4);
    assertTcp(decode(buildTcp({ ...V6, sport: 1234, dport: 80, pppoeSession: 7 })), 6);
    // A PPP control protocol (LCP 0xc021) is not IP.
    const lcp = buildTcp({ ...V4, sport: 1234, dport: 80, pppoeSession: 7 });
    lcp[20] = 0xc0;
    lcp[21] = 0x21;
    assert.equal(decode(lcp).reason, DECODE_REASON.NOT_IP);
  });

  it("MPLS label stacks down to IPv4 / IPv6", () => {
    const ipPkt = rawOf(tcp4);
    const frame = new Uint8Array(14 + 8 + ipPkt.length);
    frame.set(tcp4.subarray(0, 12));
    frame.set([0x88, 0x47, 0x00, 0x01, 0x00, 0x40, 0x00, 0x02, 0x01, 0x40], 12);
    frame.set(ipPkt, 22);
    assertTcp(decode(frame), 4);
    frame[21 + 0] = 0x40; // still BOS on the second entry
    const noBos = frame.slice(0, 18);
    noBos[16] = 0x00;
    assert.equal(decode(noBos).reason, DECODE_REASON.TRUNCATED_LINK_HEADER);
  });

  it("Linux cooked capture v1 (113) and v2 (276)", () => {
    const sll = new Uint8Array(16 + rawOf(tcp6).length);
    sll.set(hex("0000 0001 0006 020000000001 0000 86dd"));
    sll.set(rawOf(tcp6), 16);
    assertTcp(decode(sll, 113), 6);
    const sll2 = new Uint8Array(20 + rawOf(tcp4).length);
    sll2.set(hex("0800 0000 00000002 0001 00 06 020000000001 0000"));
    sll2.set(rawOf(tcp4), 20);
    assertTcp(decode(sll2, 276), 4);
    // SLL carrying an 802.1Q tag.
    const tagged = new Uint8Array(20 + rawOf(tcp4).length);
    tagged.set(hex("0000 0001 0006 020000000001 0000 8100 0005 0800"));
    tagged.set(rawOf(tcp4), 20);
    const v = decode(tagged, 113);
    assertTcp(v, 4);
    assert.equal(v.vlan, 5);
    assert.equal(decode(sll.subarray(0, 15), 113).reason, DECODE_REASON.TRUNCATED_LINK_HEADER);
    assert.equal(decode(sll2.subarray(0, 19), 276).reason, DECODE_REASON.TRUNCATED_LINK_HEADER);
  });

  it("raw IP link types: 12, 14, 101 by version nibble; 228 / 229 fixed", () => {
    for (const lt of [12, 14, 101]) {
      assertTcp(decode(rawOf(tcp4), lt), 4);
      assertTcp(decode(rawOf(tcp6), lt), 6);
    }
    assertTcp(decode(rawOf(tcp4), 228), 4);
    assertTcp(decode(rawOf(tcp6), 229), 6);
    assert.equal(decode(rawOf(tcp6), 228).reason, DECODE_REASON.BAD_IP_VERSION);
    assert.equal(decode(rawOf(tcp4), 229).reason, DECODE_REASON.BAD_IP_VERSION);
    const v5 = rawOf(tcp4).slice();
    v5[0] = 0x55;
    assert.equal(decode(v5, 101).reason, DECODE_REASON.BAD_IP_VERSION);
    assert.equal(decode(new Uint8Array(0), 101).reason, DECODE_REASON.TRUNCATED_IPV4_HEADER);
  });

  it("BSD null / OpenBSD loop in either byte order, all AF_INET6 values", () => {
    const cases: Array<[number, string, 4 | 6]> = [
      [0, "02000000", 4],
      [0, "00000002", 4],
      [108, "00000002", 4],
      [108, "02000000", 4],
      [0, "18000000", 6],
      [0, "0000001c", 6],
      [0, "1e000000", 6],
      [108, "00000018", 6],
    ];
    for (const [lt, af, fam] of cases) {
      const pkt = rawOf(fam === 4 ? tcp4 : tcp6);
      const f = new Uint8Array(4 + pkt.length);
      f.set(hex(af));
      f.set(pkt, 4);
      assertTcp(decode(f, lt), fam);
    }
    const other = new Uint8Array(24);
    other.set(hex("07000000"));
    assert.equal(decode(other, 0).reason, DECODE_REASON.NOT_IP);
    assert.equal(decode(hex("020000"), 0).reason, DECODE_REASON.TRUNCATED_LINK_HEADER);
  });

  it("non-IP frames, short frames and unknown link types", () => {
    const arp = tcp4.slice(0, 42);
    arp[12] = 0x08;
    arp[13] = 0x06;
    assert.equal(decode(arp).reason, DECODE_REASON.NOT_IP);
    assert.equal(decode(arp).family, 0);
    assert.equal(decode(tcp4.subarray(0, 13)).reason, DECODE_REASON.TRUNCATED_LINK_HEADER);
    assert.equal(decode(tcp4.subarray(0, 16)).reason, DECODE_REASON.TRUNCATED_IPV4_HEADER);
    const tagShort = buildTcp({ ...V4, sport: 1, dport: 2, vlan: [7] }).subarray(0, 17);
    assert.equal(decode(tagShort).reason, DECODE_REASON.TRUNCATED_LINK_HEADER);
    assert.equal(decode(tcp4, 147).reason, DECODE_REASON.UNSUPPORTED_LINK_TYPE);
  });
});

describe("decodeFrame IPv4", () => {
  it("reads header fields and ignores Ethernet padding via the total length", () => {
    const f = buildUdp({ ...V4, sport: 5, dport: 6, ttl: 3, id: 0xbeef, df: true, ethPad: true });
    assert.equal(f.length, 60);
    const v = decode(f);
    assert.equal(v.reason, 0);
    assert.equal(v.ttl, 3);
    assert.equal(v.ipId, 0xbeef);
    assert.equal(v.l3Len, 28);
    assert.equal(v.l4Len, 8);
    assert.equal(v.l4CapLen, 8);
    assert.equal(v.isFragment, false);
    assert.equal(ip(v, "dst"), V4.dst);
  });

  it("skips IPv4 options", () => {
    const opts = hex("94040000 01 07 07 04 0a000001");
    const v = decode(buildTcp({ ...V4, sport: 1, dport: 2, ipOptions: opts }));
    assert.equal(v.reason, 0);
    assert.equal(v.l3HdrLen, 32);
    assert.equal(v.sport, 1);
  });

  it("rejects bad headers as ip_rcv does, in its order", () => {
    const base = buildTcp({ ...V4, sport: 1, dport: 2, payload: 10 });
    const mod = (fn: (b: Uint8Array) => void, opts: { wireLen?: number; flags?: number } = {}): number => {
      const b = base.slice();
      fn(b);
      const v = decode(b, 1, opts);
      if (v.reason !== 0 && v.reason < FIRST_L4_REASON) assert.equal(v.family, 0);
      return v.reason;
    };
    assert.equal(
      mod((b) => (b[14] = 0x44)),
      DECODE_REASON.BAD_IPV4_HEADER_LENGTH,
    );
    assert.equal(
      mod((b) => (b[14] = 0x65)),
      DECODE_REASON.BAD_IP_VERSION,
    );
    assert.equal(
      mod((b) => (b[14] = 0x4f)),
      DECODE_REASON.TRUNCATED_IPV4_HEADER,
    );
    assert.equal(
      mod((b) => (b[17] = 19)),
      DECODE_REASON.BAD_IPV4_TOTAL_LENGTH,
    );
    assert.equal(
      mod((b) => (b[17] = 200)),
      DECODE_REASON.TRUNCATED_IPV4_PACKET,
    );
    // The checksum is only checked on request (host captures carry offloaded zeros).
    assert.equal(
      mod((b) => (b[24] = (b[24] as number) ^ 1)),
      0,
    );
    assert.equal(
      mod((b) => (b[24] = (b[24] as number) ^ 1), { flags: DECODE_FLAG.VERIFY_IPV4_CHECKSUM }),
      DECODE_REASON.BAD_IPV4_CHECKSUM,
    );
    assert.equal(
      mod(() => {}, { flags: DECODE_FLAG.VERIFY_IPV4_CHECKSUM }),
      0,
    );
  });

  it("accepts a snapped datagram whose wire length covers the total length", () => {
    const f = buildTcp({ ...V4, sport: 1, dport: 2, payload: 500 });
    const v = decode(f.subarray(0, 80), 1, { wireLen: f.length });
    assert.equal(v.reason, 0);
    assert.equal(v.l3Len, 80 - 14);
    assert.equal(v.l4Len, 520);
    assert.equal(v.l4CapLen, 80 - 34);
    assert.equal(v.payloadLen, 500);
    assert.equal(v.l4Ok, true);
  });

  it("marks fragments; a non-first fragment has no transport header", () => {
    const first = decode(buildUdp({ ...V4, sport: 7, dport: 8, id: 9, mf: true, payload: 100 }));
    assert.deepEqual([first.isFragment, first.moreFragments, first.fragOffset, first.sport, first.l4Ok], [true, true, 0, 7, true]);
    const later = decode(buildIp({ ...V4, id: 9, fragOffset: 1480 }, 17, 40));
    assert.deepEqual([later.isFragment, later.moreFragments, later.fragOffset, later.sport, later.l4Ok], [true, false, 1480, 0, false]);
    assert.equal(later.reason, 0);
    assert.equal(later.proto, 17);
  });
});

describe("decodeFrame IPv6 extension headers", () => {
  it("walks hop-by-hop, routing, destination options and AH", () => {
    const v = decode(
      buildTcp({
        ...V6,
        sport: 3,
        dport: 4,
        extHeaders: [{ type: "hop" }, { type: "routing", data: new Uint8Array(14) }, { type: "dest" }, { type: "ah" }],
      }),
    );
    assert.equal(v.reason, 0);
    assert.equal(v.proto, 6);
    assert.equal(v.l3HdrLen, 40 + 8 + 16 + 8 + 24);
    assert.equal(v.sport, 3);
    assert.equal(v.ttl, 64);
  });

  it("first fragments keep walking, later fragments stop, atomic fragments are whole", () => {
    const first = decode(buildUdp({ ...V6, sport: 1, dport: 2, extHeaders: [{ type: "fragment", offset: 0, more: true, id: 0xabcdef01 }] }));
    assert.deepEqual([first.isFragment, first.proto, first.sport, first.ipId, first.fragHdrOff], [true, 17, 1, 0xabcdef01, 64 + 14 + 40]);
    const later = decode(buildIp({ ...V6, extHeaders: [{ type: "hop" }, { type: "fragment", offset: 8, more: false, id: 5 }] }, 17, 16));
    assert.deepEqual([later.isFragment, later.proto, later.fragOffset, later.l4Ok, later.reason], [true, 44, 8, false, 0]);
    assert.equal(later.fragHdrOff, 64 + 14 + 48);
    const atomic = decode(buildUdp({ ...V6, sport: 1, dport: 2, extHeaders: [{ type: "fragment", offset: 0, more: false, id: 5 }] }));
    assert.deepEqual([atomic.isFragment, atomic.proto, atomic.l4Ok], [false, 17, true]);
    assert.ok(atomic.fragHdrOff > 0);
  });

  it("ESP ends the walk as a generic protocol; no-next-header and truncated chains are conntrack-level failures", () => {
    const esp = decode(buildIp({ ...V6, extHeaders: [{ type: "dest" }] }, 50, 20));
    assert.deepEqual([esp.proto, esp.l4Ok, esp.reason], [50, true, 0]);
    const none = decode(buildIp({ ...V6, extHeaders: [{ type: "hop" }] }, 59, 0));
    assert.equal(none.reason, DECODE_REASON.IPV6_NO_NEXT_HEADER);
    assert.equal(none.family, 6);
    const long = buildIp({ ...V6, extHeaders: [{ type: "dest" }] }, 6, 0);
    long[14 + 41] = 10; // dest options claims 88 bytes
    const t = decode(long);
    assert.equal(t.reason, DECODE_REASON.TRUNCATED_IPV6_EXTENSION_HEADER);
    assert.equal(t.family, 6);
  });

  it("drops what ip6_rcv_core() drops: multicast sources, multicast destinations of scope 0 and 1", () => {
    for (const [src, dst, bad] of [
      ["ff02::1", "fd00::1", true],
      ["fd00::1", "ff00::1", true],
      ["fd00::1", "ff11::1", true],
      ["fd00::1", "ff02::1", false],
      ["::1", "::1", false],
    ] as const) {
      const v = decode(buildUdp({ src, dst, sport: 1, dport: 2 }));
      assert.equal(v.reason, bad ? DECODE_REASON.BAD_IPV6_ADDRESS : 0, `${src} > ${dst}`);
      assert.equal(v.family, bad ? 0 : 6);
    }
  });

  it("checks hop-by-hop options as ipv6_parse_hopopts() does", () => {
    const hbh = (opts: string, extra: Partial<{ plen: number }> = {}): number => {
      const data = hex(opts);
      const f = buildUdp({ ...V6, sport: 1, dport: 2, extHeaders: [{ type: "hop", data }] });
      if (extra.plen !== undefined) {
        f[18] = extra.plen >> 8;
        f[19] = extra.plen & 0xff;
      }
      return decode(f).reason;
    };
    const BAD = DECODE_REASON.BAD_IPV6_HOP_BY_HOP;
    assert.equal(hbh("05020000 0100"), 0); // router alert, PadN(0)
    assert.equal(hbh("05030000 00 00"), BAD); // router alert of length 3
    assert.equal(hbh("3e00 0102 0000"), 0); // unknown, action 00: skipped
    assert.equal(hbh("7e00 0102 0000"), BAD); // action 01: discard
    assert.equal(hbh("be00 0102 0000"), BAD); // action 10
    assert.equal(hbh("fe00 0102 0000"), BAD); // action 11
    assert.equal(hbh("0104 00000000"), 0);
    assert.equal(hbh("0104 00000100"), BAD); // PadN must be zeros
    assert.equal(hbh("0106 000000000000 00000000 00000000"), BAD); // 8 + 6 bytes of padding in a row
    assert.equal(hbh("3e0a 00000000000000000000 0000"), 0);
    assert.equal(hbh("3e40 0000"), BAD); // option runs past the header
    assert.equal(hbh("3e00 3e00 3e00 3e00 3e00 3e00 3e00 3e00 3e00"), BAD); // 9 options
    assert.equal(hbh("3e00 3e00 3e00 3e00 3e00 3e00 3e00 3e00"), 0);
    assert.equal(hbh("3e00 3e00 3e00 3e00 3e00 3e00 3e00 3e00 0000 0000 0000 0000 0000 0000"), BAD); // 14 bytes of Pad1
    assert.equal(hbh("c204 00020000"), BAD); // jumbo with a non-zero payload length
  });

  it("reads jumbograms announced in the hop-by-hop header", () => {
    const payload = 70_000;
    const f = buildUdp({ ...V6, sport: 1, dport: 2, payload: payload - 8 - 8, extHeaders: [{ type: "hop", data: hex("c204 00011170") }] });
    f[18] = 0;
    f[19] = 0;
    const v = decode(f);
    // The 16-bit UDP length (69992 mod 65536) is below the transport length: acceptable to udp_error().
    assert.equal(v.reason, 0);
    assert.equal(v.family, 6);
    assert.equal(v.l4Len, payload - 8);
    assert.equal(v.sport, 1);
  });

  it("rejects short headers and payload lengths beyond the wire", () => {
    const f = buildUdp({ ...V6, sport: 1, dport: 2 });
    assert.equal(decode(f.subarray(0, 50)).reason, DECODE_REASON.TRUNCATED_IPV6_HEADER);
    const b = f.slice();
    b[19] = 200;
    assert.equal(decode(b).reason, DECODE_REASON.TRUNCATED_IPV6_PACKET);
    const w = f.slice();
    w[14] = 0x45;
    assert.equal(decode(w).reason, DECODE_REASON.BAD_IP_VERSION);
  });
});

describe("decodeFrame TCP", () => {
  it("reads the header and all options", () => {
    const v = decode(
      buildTcp({
        ...V4,
        sport: 40000,
        dport: 443,
        flags: "SA",
        seq: 0xfffffff0,
        ack: 0x80000001,
        win: 29200,
        mss: 1460,
        sackPerm: true,
        ts: [1, 2],
        wscale: 14,
        payload: 5,
      }),
    );
    assert.equal(v.l4Ok, true);
    assert.deepEqual(
      [v.tcpFlags, v.seq, v.ack, v.window, v.optMss, v.optWscale, v.optSackPerm, v.tcpHdrLen, v.payloadLen],
      [0x12, 0xfffffff0, 0x80000001, 29200, 1460, 14, true, 20 + 24, 5],
    );
  });

  it("keeps the window-scale shift as sent, and the right edges of the first SACK option", () => {
    const v = decode(
      buildTcp({
        ...V4,
        sport: 1,
        dport: 2,
        wscale: 255,
        sack: [
          [1, 2],
          [3, 0xffffffff],
          [5, 6],
        ],
      }),
    );
    assert.equal(v.optWscale, 255);
    assert.equal(v.sackCount, 3);
    assert.deepEqual([...v.sackRight.subarray(0, 3)], [2, 0xffffffff, 6]);
  });

  it("parses malformed option lists the way tcp_options()/tcp_sack() do", () => {
    const opt = (s: string): PacketView => decode(buildTcp({ ...V4, sport: 1, dport: 2, tcpOptions: hex(s) }));
    // EOL ends the list: the window scale after it is not seen.
    assert.equal(opt("00 030307 00").optWscale, -1);
    // A "silly" length (< 2) stops parsing; earlier options stand.
    let v = opt("030305 04 01 030307 00 00 00 00");
    assert.deepEqual([v.optWscale, v.optSackPerm], [5, false]);
    // A length running past the header stops parsing ("don't parse partial options").
    v = opt("0402 0320 0000");
    assert.deepEqual([v.optSackPerm, v.optWscale], [true, -1]);
    // Wrong sizes are skipped, not fatal; the last good window scale wins.
    v = opt("0304 0700 030302 030309 0403 00 0000");
    assert.deepEqual([v.optWscale, v.optSackPerm], [9, false]);
    // A SACK option of a bad size is skipped; the first good one is used, later ones ignored.
    v = opt("01 01 050b 0000000100000002 00 050a 0000000300000004 050a 0000000500000006");
    assert.equal(v.sackCount, 1);
    assert.equal(v.sackRight[0], 4);
    // A lone non-NOP kind in the last byte stops the loop.
    assert.equal(opt("01 01 01 03").optWscale, -1);
    // MSS needs exactly length 4.
    assert.equal(opt("0205 05b4 00 000000").optMss, -1);
  });

  it("validates the data offset and captured header", () => {
    const f = buildTcp({ ...V4, sport: 1, dport: 2, mss: 1460, payload: 4 });
    const short = decode(f.subarray(0, 14 + 20 + 10), 1, { wireLen: f.length });
    assert.equal(short.reason, DECODE_REASON.TRUNCATED_TCP_HEADER);
    assert.equal(short.sport, 1);
    assert.equal(short.family, 4);
    const doff4 = f.slice();
    doff4[14 + 20 + 12] = 0x40;
    assert.equal(decode(doff4).reason, DECODE_REASON.BAD_TCP_HEADER_LENGTH);
    const doffBig = f.slice();
    doffBig[14 + 20 + 12] = 0xf0;
    assert.equal(decode(doffBig).reason, DECODE_REASON.BAD_TCP_HEADER_LENGTH);
    // Options not captured (snapped inside the header).
    const snapped = decode(f.subarray(0, 14 + 20 + 22), 1, { wireLen: f.length });
    assert.equal(snapped.reason, DECODE_REASON.TRUNCATED_TCP_HEADER);
    // Never reads the junk after the record: a 3-byte TCP "header".
    const tiny = buildIp({ ...V4 }, 6, 3);
    const v = decode(tiny);
    assert.deepEqual([v.reason, v.sport, v.dport], [DECODE_REASON.TRUNCATED_TCP_HEADER, 0, 0]);
  });
});

describe("decodeFrame UDP and UDP-Lite", () => {
  it("UDP length rules of udp_error()", () => {
    assert.equal(decode(buildUdp({ ...V4, sport: 1, dport: 2, payload: 4 })).l4Ok, true);
    assert.equal(decode(buildUdp({ ...V4, sport: 1, dport: 2, payload: 4, udpLength: 13 })).reason, DECODE_REASON.BAD_UDP_LENGTH);
    assert.equal(decode(buildUdp({ ...V4, sport: 1, dport: 2, payload: 4, udpLength: 7 })).reason, DECODE_REASON.BAD_UDP_LENGTH);
    // A UDP length shorter than the IP payload is fine.
    assert.equal(decode(buildUdp({ ...V4, sport: 1, dport: 2, payload: 4, udpLength: 9 })).l4Ok, true);
    const short = decode(buildIp({ ...V4 }, 17, 6));
    assert.deepEqual([short.reason, short.sport, short.dport], [DECODE_REASON.TRUNCATED_UDP_HEADER, 0x4148, 0x4f56]);
  });

  it("UDP-Lite coverage and mandatory checksum (udplite_error())", () => {
    assert.equal(decode(buildUdpLite({ ...V6, sport: 1, dport: 2, payload: 20 })).l4Ok, true);
    assert.equal(decode(buildUdpLite({ ...V6, sport: 1, dport: 2, payload: 20, coverage: 12 })).l4Ok, true);
    assert.equal(decode(buildUdpLite({ ...V6, sport: 1, dport: 2, payload: 20, coverage: 4 })).reason, DECODE_REASON.BAD_UDPLITE_COVERAGE);
    assert.equal(decode(buildUdpLite({ ...V6, sport: 1, dport: 2, payload: 20, coverage: 29 })).reason, DECODE_REASON.BAD_UDPLITE_COVERAGE);
    assert.equal(decode(buildUdpLite({ ...V6, sport: 1, dport: 2, checksum: "none" })).reason, DECODE_REASON.UDPLITE_CHECKSUM_MISSING);
    assert.equal(decode(buildIp({ ...V6 }, 136, 7)).reason, DECODE_REASON.TRUNCATED_UDPLITE_HEADER);
  });
});

describe("decodeFrame ICMP and ICMPv6", () => {
  it("echo and other queries carry an identifier; other types do not", () => {
    let v = decode(buildIcmp({ ...V4, id: 0x1234, seq: 9 }));
    assert.deepEqual([v.icmpType, v.icmpCode, v.icmpId, v.l4Ok, v.innerOk], [8, 0, 0x1234, true, false]);
    v = decode(buildIcmp({ ...V4, type: 13, id: 77 }));
    assert.equal(v.icmpId, 77);
    v = decode(buildIcmp({ ...V4, type: 9, id: 77 }));
    assert.equal(v.icmpId, 0);
    v = decode(buildIcmp({ ...V6, id: 0x4321 }));
    assert.deepEqual([v.proto, v.icmpType, v.icmpId], [58, 128, 0x4321]);
    v = decode(buildIcmp({ ...V6, type: 139, id: 3 }));
    assert.equal(v.icmpId, 3);
    v = decode(buildIcmp({ ...V6, type: 135, id: 3 }));
    assert.equal(v.icmpId, 0);
    assert.equal(decode(buildIp({ ...V4 }, 1, 7)).reason, DECODE_REASON.TRUNCATED_ICMP_HEADER);
    assert.equal(decode(buildIp({ ...V6 }, 58, 4)).reason, DECODE_REASON.TRUNCATED_ICMPV6_HEADER);
  });

  it("decodes the quoted packet of ICMPv4 errors", () => {
    const udp = buildUdp({ ...V4, sport: 5353, dport: 53, payload: 30 });
    const v = decode(buildIcmpError(udp, { type: 3, code: 3 }));
    assert.equal(v.reason, 0);
    assert.deepEqual([v.icmpType, v.icmpCode, v.innerOk, v.innerFamily, v.innerProto, v.innerSport, v.innerDport], [3, 3, true, 4, 17, 5353, 53]);
    assert.equal(ip(v, "src"), V4.dst);
    assert.equal(ip(v, "innerSrc", 4), V4.src);
    assert.equal(ip(v, "innerDst", 4), V4.dst);

    const echo = buildIcmp({ ...V4, id: 99, seq: 1 });
    const t = decode(buildIcmpError(echo, { type: 11, code: 0, src: "203.0.113.1" }));
    assert.deepEqual([t.innerProto, t.innerIcmpType, t.innerIcmpCode, t.innerIcmpId], [1, 8, 0, 99]);

    // Only the first 8 transport bytes are needed; TCP quotes need just the ports.
    const tcp = buildTcp({ ...V4, sport: 1, dport: 2, payload: 100 });
    const q = decode(buildIcmpError(tcp, { type: 3, code: 4, rest: 1400, quoteLen: 24 }));
    assert.deepEqual([q.innerOk, q.innerSport, q.innerDport], [true, 1, 2]);
    const q3 = decode(buildIcmpError(tcp, { type: 3, code: 4, quoteLen: 23 }));
    assert.equal(q3.innerOk, false);
    assert.equal(q3.l4Ok, true);
    // Fewer than 20 bytes of quoted IP header: no tuple.
    assert.equal(decode(buildIcmpError(tcp, { type: 3, quoteLen: 19 })).innerOk, false);
    // A quoted non-first fragment has no tuple.
    const frag = buildIp({ ...V4, fragOffset: 8 }, 17, 8);
    assert.equal(decode(buildIcmpError(frag, { type: 3 })).innerOk, false);
    // Queries (echo reply) are not errors: nothing quoted is read.
    assert.equal(decode(buildIcmp({ ...V4, type: 0, payload: udp.subarray(14) })).innerOk, false);
  });

  it("quoted headers are read the kernel's way: outer family, unchecked version, IHL bound by the packet", () => {
    const udp = buildUdp({ ...V4, sport: 10, dport: 20 });
    const err = buildIcmpError(udp, { type: 3, code: 1 });
    // The version nibble of the quoted header is not checked.
    const b = err.slice();
    b[14 + 20 + 8] = 0x65;
    const v = decode(b);
    assert.deepEqual([v.innerOk, v.innerFamily, v.innerSport], [true, 4, 10]);
    // An IHL running past the packet: no tuple.
    const c = err.slice();
    c[14 + 20 + 8] = 0x4f;
    assert.equal(decode(c).innerOk, false);
  });

  it("decodes quoted GRE the way gre_pkt_to_tuple() does", () => {
    const pptp = buildGre({ ...V4, version: 1, callId: 0x2a, payload: 4 });
    let v = decode(buildIcmpError(pptp, { type: 3 }));
    assert.deepEqual([v.innerOk, v.innerProto, v.innerGreKey], [true, 47, 0x2a]);
    const v0 = buildGre({ ...V4, key: 0x11223344 });
    v = decode(buildIcmpError(v0, { type: 3 }));
    assert.deepEqual([v.innerOk, v.innerGreKey], [true, 0]);
    const notPpp = buildGre({ ...V4, version: 1, callId: 5, protocol: 0x0800 });
    assert.equal(decode(buildIcmpError(notPpp, { type: 3 })).innerOk, false);
  });

  it("decodes the quoted packet of ICMPv6 errors, through extension headers", () => {
    const udp = buildUdp({ ...V6, sport: 4000, dport: 53, extHeaders: [{ type: "dest" }] });
    const v = decode(buildIcmpError(udp, { type: 1, code: 4 }));
    assert.deepEqual([v.proto, v.icmpType, v.innerOk, v.innerFamily, v.innerProto, v.innerSport, v.innerDport], [58, 1, true, 6, 17, 4000, 53]);
    assert.equal(ip(v, "innerSrc", 6), V6.src);
    const tooBig = decode(buildIcmpError(buildTcp({ ...V6, sport: 1, dport: 2, payload: 1400 }), { type: 2, rest: 1280 }));
    assert.deepEqual([tooBig.icmpType, tooBig.innerOk, tooBig.innerSport], [2, true, 1]);
    // Fewer than 40 bytes of quoted IPv6 header.
    assert.equal(decode(buildIcmpError(udp, { type: 3, quoteLen: 39 })).innerOk, false);
    // ICMPv6 informational types quote nothing.
    assert.equal(decode(buildIcmp({ ...V6, type: 129, payload: udp.subarray(14) })).innerOk, false);
  });

  it("decodes the redirected header of an ND redirect (type 137)", () => {
    const quoted = buildUdp({ ...V6, sport: 7, dport: 8 }).subarray(14);
    const body = new Uint8Array(32 + 8 + quoted.length);
    body[32] = 4;
    body[33] = (8 + quoted.length) / 8;
    body.set(quoted, 40);
    const v = decode(buildIcmp({ src: "fe80::1", dst: V6.src, type: 137, ttl: 255, payload: body }));
    assert.deepEqual([v.icmpType, v.innerOk, v.innerSport, v.innerDport], [137, true, 7, 8]);
    body[32] = 1;
    assert.equal(decode(buildIcmp({ src: "fe80::1", dst: V6.src, type: 137, payload: body })).innerOk, false);
  });
});

describe("decodeFrame SCTP, GRE, others", () => {
  it("SCTP common header", () => {
    const v = decode(buildSctp({ ...V4, sport: 2905, dport: 2906, vtag: 0xdeadbeef, chunks: [sctpInitChunk(1)] }));
    assert.deepEqual([v.l4Ok, v.sport, v.dport, v.sctpVtag, v.sctpChunksOff], [true, 2905, 2906, 0xdeadbeef, 64 + 14 + 20 + 12]);
    assert.equal(decode(buildIp({ ...V4 }, 132, 11)).reason, DECODE_REASON.TRUNCATED_SCTP_HEADER);
  });

  it("GRE v0 with and without key and checksum, v1 PPTP call id", () => {
    let v = decode(buildGre({ ...V4, key: 0xcafe0001, seq: 5, csum: true }));
    assert.deepEqual([v.greVersion, v.greKey, v.greProtocol, v.l4Ok], [0, 0xcafe0001, 0x0800, true]);
    v = decode(buildGre({ ...V4 }));
    assert.deepEqual([v.greVersion, v.greKey], [0, 0]);
    v = decode(buildGre({ ...V6, version: 1, callId: 0x77, seq: 1, ack: 2, payload: 12 }));
    assert.deepEqual([v.greVersion, v.greKey, v.greProtocol], [1, 0x77, 0x880b]);
    assert.equal(decode(buildIp({ ...V4 }, 47, 3)).reason, DECODE_REASON.TRUNCATED_GRE_HEADER);
    const cut = buildGre({ ...V4, key: 1 }).subarray(0, 14 + 20 + 6);
    assert.equal(decode(cut, 1, { wireLen: 14 + 20 + 8 }).reason, DECODE_REASON.TRUNCATED_GRE_HEADER);
  });

  it("other protocols are generic and always usable", () => {
    const v = decode(buildIp({ ...V4 }, 89, 0));
    assert.deepEqual([v.proto, v.l4Ok, v.reason, v.l4Len], [89, true, 0, 0]);
  });
});

describe("DecodeReason table", () => {
  it("has a unique name and a sentence for every code", () => {
    const all = decodeReasons();
    const names = new Set(all.map((r) => r.name));
    assert.equal(names.size, all.length);
    for (const [key, code] of Object.entries(DECODE_REASON)) {
      assert.equal(decodeReasonName(code), key.toLowerCase().replace(/_/g, "-"));
      assert.match(decodeReasonText(code), /^[A-Z][^.]*[^.]$/);
    }
    assert.equal(decodeReasonName(99), "unknown-99");
  });
});
