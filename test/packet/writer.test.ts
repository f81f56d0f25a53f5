import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { buildIcmp, buildTcp, buildUdp } from "../../src/packet/build.js";
import { PcapngWriter, PcapWriter } from "../../src/packet/writer.js";
import { hex, parseAll, pcapBytes, pcapngBytes } from "./helpers.js";
import type { Rec } from "./helpers.js";

const dir = mkdtempSync(join(tmpdir(), "ctlab-writer-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const frames = [
  buildTcp({ src: "10.0.0.1", dst: "10.0.0.2", sport: 1, dport: 2, flags: "S" }),
  buildUdp({ src: "fd00::1", dst: "fd00::2", sport: 3, dport: 4, payload: 101 }),
  buildIcmp({ src: "10.0.0.1", dst: "10.0.0.2", id: 5 }),
];

describe("PcapWriter", () => {
  it("writes the classic header in either byte order and resolution", () => {
    assert.deepEqual(pcapBytes([], { linkType: 113, snaplen: 65535 }), hex("d4c3b2a1 0200 0400 00000000 00000000 ffff0000 71000000"));
    assert.deepEqual(pcapBytes([], { byteOrder: "be", nanosecond: true }), hex("a1b23c4d 0002 0004 00000000 00000000 00040000 00000001"));
  });

  it("writes record headers with truncated microseconds and the original length", () => {
    const b = pcapBytes([{ sec: 0x01020304, nsec: 999_999_999, frame: hex("aabbcc"), orig: 60 }]);
    assert.deepEqual(b.subarray(24), hex("04030201 3f420f00 03000000 3c000000 aabbcc"));
  });

  it("writes to a file through a small buffer, larger frames included", () => {
    const path = join(dir, "a.pcap");
    const w = new PcapWriter(path, { bufferSize: 64, nanosecond: true });
    const big = new Uint8Array(5000).fill(3);
    w.writePacket(1, 2, frames[0] as Uint8Array);
    w.writePacket(3, 4, big);
    w.writePacket(5, 6, frames[1] as Uint8Array);
    assert.equal(w.count, 3);
    w.close();
    w.close();
    assert.throws(() => w.writePacket(7, 8, big), /Capture writer is closed/);
    const { recs, error } = parseAll(new Uint8Array(readFileSync(path)));
    assert.equal(error, null);
    assert.deepEqual(
      recs.map((r) => [r.tsSec, r.tsNsec, r.capLen]),
      [
        [1, 2, (frames[0] as Uint8Array).length],
        [3, 4, 5000],
        [5, 6, (frames[1] as Uint8Array).length],
      ],
    );
    assert.deepEqual(recs[1]?.frame, big);
  });

  it("hands callbacks chunks they may keep", () => {
    const chunks: Uint8Array[] = [];
    const w = new PcapWriter((c) => chunks.push(c), { bufferSize: 40 });
    for (let i = 0; i < 5; i++) w.writePacket(i, 0, hex("0102030405060708"));
    w.close();
    assert.ok(chunks.length > 2);
    const total = chunks.reduce((n, c) => n + c.length, 0);
    assert.equal(total, 24 + 5 * 24);
    assert.deepEqual(chunks[0]?.subarray(0, 4), hex("d4c3b2a1"));
  });

  it("rejects a bad snaplen", () => {
    assert.throws(() => new PcapWriter(() => {}, { snaplen: 0 }), /Invalid snaplen "0": must be a positive integer/);
  });
});

describe("PcapngWriter", () => {
  it("writes SHB, IDB with options, and padded EPBs", () => {
    const b = pcapngBytes((w) => w.writePacket(0, 1000, hex("aabbcc")), {
      interfaces: [{ linkType: 1, snaplen: 96, tsresol: 9, name: "eth0" }],
    });
    assert.deepEqual(b.subarray(0, 28), hex("0a0d0d0a 1c000000 4d3c2b1a 0100 0000 ffffffff ffffffff 1c000000"));
    // IDB: link 1, snaplen 96, if_name "eth0", if_tsresol 9, end of options.
    assert.deepEqual(b.subarray(28, 28 + 40), hex("01000000 28000000 0100 0000 60000000 0200 0400 65746830 0900 0100 09000000 00000000 28000000"));
    // EPB: if 0, ts 1000 ns in ns units, caplen 3, len 3, data + 1 pad byte.
    assert.deepEqual(b.subarray(68), hex("06000000 24000000 00000000 00000000 e8030000 03000000 03000000 aabbcc00 24000000"));
  });

  it("rejects unknown interfaces and timestamps its units cannot hold", () => {
    const w = new PcapngWriter(() => {}, { interfaces: [{ tsresol: 10 }] });
    assert.throws(() => w.writePacket(1, 0, hex("00"), undefined, 1), /Unknown pcapng interface "1"/);
    assert.throws(() => w.writePacket(1844674408, 0, hex("00")), /^RangeError: Timestamp 1844674408\.000000000 does not fit 64 bits/);
    w.writePacket(1844674407, 0, hex("00"));
  });
});

describe("capture roundtrips", () => {
  function strip(recs: Rec[]): Array<[number, number, number, number, Uint8Array]> {
    return recs.map((r) => [r.tsSec, r.tsNsec, r.linkType, r.wireLen, r.frame]);
  }

  const input = frames.map((frame, i) => ({ sec: 1700000000 + i, nsec: 123_456_789 * i, frame }));

  it("pcap (ns) → pcapng (ns) → pcap (ns) keeps every record exactly", () => {
    const a = parseAll(pcapBytes(input, { nanosecond: true }));
    const ng = pcapngBytes(
      (w) => {
        for (const r of a.recs) w.writePacket(r.tsSec, r.tsNsec, r.frame, r.wireLen);
      },
      { interfaces: [{ linkType: 1, tsresol: 9 }], byteOrder: "be" },
    );
    const b = parseAll(ng);
    assert.deepEqual(strip(b.recs), strip(a.recs));
    const back = parseAll(
      pcapBytes(
        b.recs.map((r) => ({ sec: r.tsSec, nsec: r.tsNsec, frame: r.frame, orig: r.wireLen })),
        { nanosecond: true, byteOrder: "be" },
      ),
    );
    assert.deepEqual(strip(back.recs), strip(a.recs));
  });

  it("pcapng with a microsecond interface equals a microsecond pcap", () => {
    const us = parseAll(pcapBytes(input));
    const ng = parseAll(pcapngBytes((w) => input.forEach((f) => w.writePacket(f.sec, f.nsec, f.frame))));
    assert.deepEqual(strip(ng.recs), strip(us.recs));
  });

  it("snapped records keep their wire length through both formats", () => {
    const snapped = parseAll(pcapBytes(input, { snaplen: 40 }));
    const ng = parseAll(pcapngBytes((w) => snapped.recs.forEach((r) => w.writePacket(r.tsSec, r.tsNsec, r.frame, r.wireLen))));
    assert.deepEqual(strip(ng.recs), strip(snapped.recs));
    assert.equal(ng.recs[1]?.wireLen, (frames[1] as Uint8Array).length);
    assert.equal(ng.recs[1].capLen, 40);
  });
});
