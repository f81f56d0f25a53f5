/**
 * The shared packet primitives: the one IPv6 extension-header walk, the
 * protocol table every printer takes its names from, the byte readers and
 * PacketView.setFrame.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { buildIp, buildUdp } from "../../src/packet/build.js";
import { be16, be32, le32 } from "../../src/packet/bytes.js";
import { decodeFrame } from "../../src/packet/decode.js";
import { Ipv6Walk, ipv6SkipExthdr } from "../../src/packet/ipv6.js";
import { conntrackProtoName, IP_PROTOCOL_NUMBERS, IPPROTO, LINKTYPE, NEXTHDR, rulesetProtoName, trackedProtoName } from "../../src/packet/proto.js";
import { PacketView } from "../../src/packet/view.js";

/** Bytes of an IPv6 header chain: `hdrs` as [type, bytes] after a 40-byte fixed header whose next header is `first`. */
function chain(first: number, hdrs: ReadonlyArray<readonly [number, Uint8Array]>, tail = 8): { d: Uint8Array; first: number } {
  const parts = hdrs.map(([, b]) => b);
  const len = 40 + parts.reduce((a, b) => a + b.length, 0) + tail;
  const d = new Uint8Array(len);
  let o = 40;
  for (const b of parts) {
    d.set(b, o);
    o += b.length;
  }
  return { d, first };
}

const opt = (next: number, len8 = 0): Uint8Array => {
  const b = new Uint8Array((len8 + 1) * 8);
  b[0] = next;
  b[1] = len8;
  return b;
};
const frag = (next: number, offset: number, more: boolean): Uint8Array => Uint8Array.of(next, 0, offset >> 8, (offset & 0xf8) | (more ? 1 : 0), 0, 0, 0, 7);
const ah = (next: number, len4: number): Uint8Array => {
  const b = new Uint8Array((len4 + 2) * 4);
  b[0] = next;
  b[1] = len4;
  return b;
};

describe("ipv6SkipExthdr", () => {
  const w = new Ipv6Walk();

  it("returns the start when the first header is already the transport", () => {
    const { d } = chain(6, []);
    assert.equal(ipv6SkipExthdr(d, 40, d.length, IPPROTO.TCP, w), 40);
    assert.equal(w.nexthdr, 6);
    assert.equal(w.firstFrag, -1);
  });

  it("walks hop-by-hop, routing, destination options (8-byte units) and AH (4-byte units)", () => {
    const { d } = chain(0, [
      [0, opt(NEXTHDR.ROUTING, 1)],
      [43, opt(NEXTHDR.AUTH)],
      [51, ah(NEXTHDR.DEST, 4)],
      [60, opt(IPPROTO.UDP)],
    ]);
    assert.equal(ipv6SkipExthdr(d, 40, d.length, NEXTHDR.HOP, w), 40 + 16 + 8 + 24 + 8);
    assert.equal(w.nexthdr, IPPROTO.UDP);
  });

  it("continues past a first fragment and stops at a non-first one, as the kernel's frag_offp check does", () => {
    const first = chain(44, [[44, frag(IPPROTO.TCP, 0, true)]]).d;
    assert.equal(ipv6SkipExthdr(first, 40, first.length, NEXTHDR.FRAGMENT, w), 48);
    assert.deepEqual([w.nexthdr, w.firstFrag, w.lastFrag], [IPPROTO.TCP, 40, 40]);
    const later = chain(60, [
      [60, opt(NEXTHDR.FRAGMENT)],
      [44, frag(IPPROTO.TCP, 1480, false)],
    ]).d;
    assert.equal(ipv6SkipExthdr(later, 40, later.length, NEXTHDR.DEST, w), 48);
    assert.deepEqual([w.nexthdr, w.firstFrag, w.lastFrag], [NEXTHDR.FRAGMENT, 48, 48]);
  });

  it("fails on no-next-header and on a chain running past the end, saying where", () => {
    const none = chain(60, [[60, opt(NEXTHDR.NONE)]]).d;
    assert.equal(ipv6SkipExthdr(none, 40, none.length, NEXTHDR.DEST, w), -1);
    assert.deepEqual([w.nexthdr, w.stop], [NEXTHDR.NONE, 48]);
    const cut = chain(0, [[0, opt(NEXTHDR.DEST)]], 0).d;
    assert.equal(ipv6SkipExthdr(cut, 40, cut.length, NEXTHDR.HOP, w), -1);
    assert.deepEqual([w.nexthdr, w.stop], [NEXTHDR.DEST, 48]);
    // A fragment header needs its offset field (4 bytes): 3 are not enough.
    const short = chain(44, [], 3).d;
    assert.equal(ipv6SkipExthdr(short, 40, short.length, NEXTHDR.FRAGMENT, w), -1);
    assert.deepEqual([w.firstFrag, w.lastFrag], [40, -1]);
  });
});

describe("protocol table", () => {
  it("gives each printer the names it printed before", () => {
    assert.deepEqual(
      [1, 6, 17, 33, 47, 50, 58, 132, 136, 99].map((n) => [conntrackProtoName(n), trackedProtoName(n), rulesetProtoName(n)]),
      [
        ["icmp", "icmp", "icmp"],
        ["tcp", "tcp", "tcp"],
        ["udp", "udp", "udp"],
        ["dccp", null, "dccp"],
        ["gre", "gre", "gre"],
        ["unknown", null, "esp"],
        ["icmpv6", "icmpv6", "ipv6-icmp"],
        ["sctp", "sctp", "sctp"],
        ["udplite", "udplite", "udplite"],
        ["unknown", null, "99"],
      ],
    );
  });

  it("maps every accepted spelling to its number", () => {
    assert.equal(IP_PROTOCOL_NUMBERS["ipv6-icmp"], 58);
    assert.equal(IP_PROTOCOL_NUMBERS["icmpv6"], 58);
    assert.equal(IP_PROTOCOL_NUMBERS["all"], 0);
    assert.equal(IP_PROTOCOL_NUMBERS["dccp"], IPPROTO.DCCP);
    assert.equal(IP_PROTOCOL_NUMBERS["nosuch"], undefined);
  });
});

describe("byte readers and setFrame", () => {
  it("read big- and little-endian fields unsigned", () => {
    const b = Uint8Array.of(0xff, 0xfe, 0x01, 0x02, 0x80);
    assert.equal(be16(b, 0), 0xfffe);
    assert.equal(be32(b, 0), 0xfffe0102);
    assert.equal(be32(b, 1), 0xfe010280);
    assert.equal(le32(b, 0), 0x0201feff);
  });

  it("setFrame points a view at a whole frame of a link type", () => {
    const v = new PacketView();
    v.tsSec = 7;
    const f = buildUdp({ src: "10.0.0.1", dst: "10.0.0.2", sport: 1, dport: 2, payload: 3 });
    decodeFrame(v.setFrame(f));
    assert.deepEqual([v.family, v.sport, v.dport, v.capLen, v.wireLen, v.frameOff, v.tsSec], [4, 1, 2, f.length, f.length, 0, 7]);
    const raw = buildIp({ src: "fd00::1", dst: "fd00::2", link: "raw" }, IPPROTO.UDP, 8);
    decodeFrame(v.setFrame(raw, LINKTYPE.RAW));
    assert.equal(v.family, 6);
    assert.equal(v.linkType, LINKTYPE.RAW);
  });
});
