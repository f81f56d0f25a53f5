import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { buildTcp, buildUdp } from "../../src/packet/build.js";
import { CaptureParser } from "../../src/packet/capture.js";
import { CaptureError } from "../../src/packet/errors.js";
import { PacketView } from "../../src/packet/view.js";
import { concatChunks, parseAll, pcapBytes, pcapngBytes } from "./helpers.js";
import type { Rec } from "./helpers.js";

const f1 = buildTcp({ src: "10.0.0.1", dst: "10.0.0.2", sport: 1000, dport: 80, flags: "S", seq: 7, mss: 1460 });
const f2 = buildUdp({ src: "fd00::1", dst: "fd00::2", sport: 53, dport: 5353, payload: 33 });
const f3 = buildTcp({ src: "10.0.0.2", dst: "10.0.0.1", sport: 80, dport: 1000, flags: "SA", seq: 9, ack: 8, payload: 3 });
const FRAMES = [
  { sec: 1700000000, nsec: 1_000, frame: f1 },
  { sec: 1700000001, nsec: 999_999_000, frame: f2 },
  { sec: 1700000002, nsec: 0, frame: f3 },
];

function frames(recs: Rec[]): Uint8Array[] {
  return recs.map((r) => r.frame);
}

describe("CaptureParser pcap", () => {
  for (const byteOrder of ["le", "be"] as const) {
    for (const nanosecond of [false, true]) {
      it(`reads ${nanosecond ? "ns" : "µs"} ${byteOrder} files with exact timestamps`, () => {
        const bytes = pcapBytes(FRAMES, { byteOrder, nanosecond, linkType: 1 });
        const { recs, error } = parseAll(bytes);
        assert.equal(error, null);
        assert.equal(recs.length, 3);
        assert.deepEqual(frames(recs), [f1, f2, f3]);
        assert.deepEqual(
          recs.map((r) => [r.index, r.tsSec, r.tsNsec, r.linkType, r.interfaceId]),
          [
            [1, 1700000000, 1000, 1, 0],
            [2, 1700000001, 999_999_000, 1, 0],
            [3, 1700000002, 0, 1, 0],
          ],
        );
        assert.equal(recs[0]?.fileOffset, 24);
        assert.equal(recs[1]?.fileOffset, 24 + 16 + f1.length);
      });
    }
  }

  it("truncates microsecond timestamps and keeps nanoseconds", () => {
    const f = [{ sec: 5, nsec: 123_456_789, frame: f1 }];
    assert.equal(parseAll(pcapBytes(f)).recs[0]?.tsNsec, 123_456_000);
    assert.equal(parseAll(pcapBytes(f, { nanosecond: true })).recs[0]?.tsNsec, 123_456_789);
  });

  it("reports snapped records with their wire length", () => {
    const { recs } = parseAll(pcapBytes([{ sec: 1, nsec: 0, frame: f3 }], { snaplen: 40 }));
    assert.equal(recs[0]?.capLen, 40);
    assert.equal(recs[0].wireLen, f3.length);
    assert.deepEqual(recs[0].frame, f3.subarray(0, 40));
  });

  it("masks FCS bits out of the link-type field and normalises a microsecond field over a second", () => {
    const bytes = pcapBytes([{ sec: 10, nsec: 0, frame: f1 }]);
    const dv = new DataView(bytes.buffer, bytes.byteOffset);
    dv.setUint32(20, 0x14000001, true);
    dv.setUint32(24 + 4, 2_500_000, true);
    const { recs } = parseAll(bytes);
    assert.equal(recs[0]?.linkType, 1);
    assert.equal(recs[0].tsSec, 12);
    assert.equal(recs[0].tsNsec, 500_000_000);
  });

  it("reads the Kuznetzov (modified pcap) format with 24-byte record headers", () => {
    const hdr = new Uint8Array(24);
    const dv = new DataView(hdr.buffer);
    dv.setUint32(0, 0xa1b2cd34, true);
    dv.setUint16(4, 2, true);
    dv.setUint16(6, 4, true);
    dv.setUint32(16, 65535, true);
    dv.setUint32(20, 1, true);
    const rec = new Uint8Array(24 + f1.length);
    const rv = new DataView(rec.buffer);
    rv.setUint32(0, 77, true);
    rv.setUint32(4, 5, true);
    rv.setUint32(8, f1.length, true);
    rv.setUint32(12, f1.length, true);
    rec.set(f1, 24);
    const { recs, error } = parseAll(concatChunks([hdr, rec]));
    assert.equal(error, null);
    assert.equal(recs[0]?.tsSec, 77);
    assert.equal(recs[0].tsNsec, 5000);
    assert.deepEqual(recs[0].frame, f1);
  });

  it("sniffs the format from the magic, not the name", () => {
    const ng = pcapngBytes((w) => w.writePacket(1, 2, f1));
    const p = new CaptureParser(() => {}, { name: "looks-like.pcap" });
    p.push(ng);
    p.end();
    assert.equal(p.format, "pcapng");
    assert.equal(p.records, 1);
  });
});

describe("CaptureParser pcapng", () => {
  it("reads several interfaces with their own link types, snaplens and resolutions", () => {
    const bytes = pcapngBytes(
      (w) => {
        w.writePacket(1700000000, 123_456_789, f1, undefined, 0);
        w.writePacket(1700000000, 123_456_789, f1, undefined, 1);
        w.writePacket(1700000000, 123_456_789, f1, undefined, 2);
        w.writePacket(1700000000, 123_456_789, f1, undefined, 3);
        w.writePacket(1700000000, 123_456_789, f2, undefined, 4);
      },
      {
        interfaces: [
          { linkType: 1 },
          { linkType: 113, tsresol: 9 },
          { linkType: 1, tsresol: 0x80 | 20 },
          { linkType: 1, tsresol: 10 },
          { linkType: 101, tsresol: 3, snaplen: 50 },
        ],
      },
    );
    const { recs, error } = parseAll(bytes);
    assert.equal(error, null);
    assert.deepEqual(
      recs.map((r) => [r.interfaceId, r.linkType, r.tsSec, r.tsNsec, r.capLen]),
      [
        [0, 1, 1700000000, 123_456_000, f1.length],
        [1, 113, 1700000000, 123_456_789, f1.length],
        // 2^-20 s units: floor(0.123456789 · 2^20) = 129453 units = 123456001 ns truncated.
        [2, 1, 1700000000, Math.floor((129453 * 1e9) / 2 ** 20), f1.length],
        [3, 1, 1700000000, 123_456_789, f1.length],
        [4, 101, 1700000000, 123_000_000, 50],
      ],
    );
    assert.equal(recs[4]?.wireLen, f2.length);
  });

  it("applies if_tsoffset", () => {
    const bytes = pcapngBytes((w) => w.writePacket(1700000100, 5000, f1), { interfaces: [{ tsoffset: 1700000000 }] });
    const { recs } = parseAll(bytes);
    assert.equal(recs[0]?.tsSec, 1700000100);
    assert.equal(recs[0].tsNsec, 5000);
  });

  it("reads both byte orders and several sections, resetting interfaces per section", () => {
    const bytes = pcapngBytes(
      (w) => {
        w.writePacket(1, 0, f1, undefined, 0);
        w.newSection("le");
        w.addInterface({ linkType: 101 });
        w.addInterface({ linkType: 1 });
        w.writePacket(2, 0, f2.subarray(14), undefined, 0);
        w.writePacket(3, 0, f3, undefined, 1);
        w.newSection("be");
        w.addInterface({ linkType: 1, tsresol: 9 });
        w.writePacket(4, 7, f3, undefined, 0);
      },
      { byteOrder: "be" },
    );
    const { recs, error } = parseAll(bytes);
    assert.equal(error, null);
    assert.deepEqual(
      recs.map((r) => [r.index, r.tsSec, r.tsNsec, r.linkType, r.interfaceId]),
      [
        [1, 1, 0, 1, 0],
        [2, 2, 0, 101, 0],
        [3, 3, 0, 1, 1],
        [4, 4, 7, 1, 0],
      ],
    );
    assert.deepEqual(recs[1]?.frame, f2.subarray(14));
  });

  it("reads simple packet blocks, cut to interface 0's snaplen, and obsolete packet blocks", () => {
    const bytes = pcapngBytes(
      (w) => {
        w.writeSimplePacket(f3);
        // Obsolete Packet Block (type 2): if id u16, drops u16, ts hi, ts lo, caplen, len, data.
        const body = new Uint8Array(20 + f1.length);
        const dv = new DataView(body.buffer);
        dv.setUint16(0, 0, true);
        dv.setUint32(4, 0, true);
        dv.setUint32(8, 3_000_000, true);
        dv.setUint32(12, f1.length, true);
        dv.setUint32(16, f1.length, true);
        body.set(f1, 20);
        w.writeBlock(2, body);
      },
      { interfaces: [{ linkType: 1, snaplen: 30 }] },
    );
    const { recs, error } = parseAll(bytes);
    assert.equal(error, null);
    assert.equal(recs.length, 2);
    assert.equal(recs[0]?.capLen, 30);
    assert.equal(recs[0].wireLen, f3.length);
    assert.deepEqual(recs[0].frame, f3.subarray(0, 30));
    assert.equal(recs[1]?.tsSec, 3);
    assert.deepEqual(recs[1].frame, f1);
  });

  it("skips unknown, name-resolution and statistics blocks", () => {
    const bytes = pcapngBytes((w) => {
      w.writeBlock(4, new Uint8Array(8));
      w.writePacket(1, 0, f1);
      w.writeBlock(5, new Uint8Array(12));
      w.writeBlock(0x40000bad, new Uint8Array(3));
      w.writePacket(2, 0, f2);
    });
    const { recs, error } = parseAll(bytes);
    assert.equal(error, null);
    assert.deepEqual(frames(recs), [f1, f2]);
    assert.deepEqual(
      recs.map((r) => r.index),
      [1, 2],
    );
  });

  it("tolerates a malformed IDB option list", () => {
    const bytes = pcapngBytes((w) => w.writePacket(1, 500, f1), { interfaces: [{ linkType: 1, tsresol: 9, name: "eth0" }] });
    // Corrupt the first option's length so it runs past the block: options end there, default resolution.
    const dv = new DataView(bytes.buffer, bytes.byteOffset);
    const idb = 28;
    dv.setUint16(idb + 16 + 2, 0xfff0, true);
    const { recs, error } = parseAll(bytes);
    assert.equal(error, null);
    assert.equal(recs[0]?.tsNsec, 500_000);
  });
});

describe("CaptureParser streaming", () => {
  const pcap = pcapBytes(FRAMES, { byteOrder: "be", nanosecond: true });
  const ng = pcapngBytes(
    (w) => {
      w.writePacket(1, 1, f1, undefined, 1);
      w.writeBlock(0x123, new Uint8Array(5));
      w.newSection("be");
      w.addInterface({ linkType: 1, tsresol: 9 });
      w.writePacket(2, 2, f2);
      w.writeSimplePacket(f3);
    },
    { interfaces: [{ linkType: 1 }, { linkType: 113 }] },
  );

  for (const [name, bytes] of [
    ["pcap", pcap],
    ["pcapng", ng],
  ] as const) {
    it(`${name}: the same records whatever the split point`, () => {
      const whole = parseAll(bytes);
      assert.equal(whole.error, null);
      for (let i = 0; i <= bytes.length; i++) {
        assert.deepEqual(parseAll(bytes, [i]), whole, `split at ${i}`);
      }
    });

    it(`${name}: the same records fed one byte at a time and in random pieces`, () => {
      const whole = parseAll(bytes);
      const every = Array.from({ length: bytes.length - 1 }, (_, i) => i + 1);
      assert.deepEqual(parseAll(bytes, every), whole);
      let seed = 7;
      for (let round = 0; round < 50; round++) {
        const cuts: number[] = [];
        let at = 0;
        for (;;) {
          seed = (seed * 1103515245 + 12345) & 0x7fffffff;
          at += 1 + (seed % 97);
          if (at >= bytes.length) break;
          cuts.push(at);
        }
        assert.deepEqual(parseAll(bytes, cuts), whole);
      }
    });
  }

  it("does not keep a reference to the last chunk", () => {
    const view = new PacketView();
    const p = new CaptureParser(() => {}, { view });
    p.push(pcap);
    assert.equal(view.data.length, 0);
  });
});

describe("CaptureParser errors", () => {
  const pcap = pcapBytes(FRAMES);
  const starts = [24, 24 + 16 + f1.length, 24 + 32 + f1.length + f2.length];

  it("truncated pcap: earlier records delivered, error at the incomplete record", () => {
    for (let len = 0; len < pcap.length; len++) {
      const { recs, error } = parseAll(pcap.subarray(0, len), [], "cut.pcap");
      const complete = starts.filter((s, i) => (starts[i + 1] ?? pcap.length) <= len && s < len).length;
      if (len >= 24 && starts.includes(len)) {
        assert.equal(error, null, `length ${len}`);
      } else {
        assert.ok(error instanceof CaptureError, `length ${len}`);
        assert.equal(error.file, "cut.pcap");
        if (len < 24) {
          assert.equal(error.reason, "truncated-file-header");
          assert.equal(error.byteOffset, 0);
        } else {
          assert.equal(error.reason, "truncated-record");
          assert.equal(error.byteOffset, starts[complete]);
          assert.match(error.message, new RegExp(`^Truncated pcap record in "cut.pcap" at byte ${starts[complete]}: need \\d+ bytes, have \\d+$`));
        }
      }
      assert.equal(recs.length, complete, `length ${len}`);
    }
  });

  it("truncated pcapng: earlier records delivered, error at the incomplete block", () => {
    const ng = pcapngBytes((w) => {
      w.writePacket(1, 0, f1);
      w.writePacket(2, 0, f2);
    });
    const shb = 28;
    const idb = 20;
    const epb1 = shb + idb;
    const epb2 = epb1 + 32 + ((f1.length + 3) & ~3);
    for (let len = 0; len < ng.length; len++) {
      const { recs, error } = parseAll(ng.subarray(0, len));
      if (len === shb || len === epb1 || len === epb2) {
        assert.equal(error, null);
        continue;
      }
      assert.ok(error instanceof CaptureError);
      if (len < shb) {
        assert.equal(error.reason, "truncated-file-header");
        assert.equal(error.byteOffset, 0);
      } else {
        assert.equal(error.reason, "truncated-record");
        const at = len < epb1 ? shb : len < epb2 ? epb1 : epb2;
        assert.equal(error.byteOffset, at, `length ${len}`);
        assert.equal(recs.length, at === epb2 ? 1 : 0);
      }
    }
  });

  it("an empty input is a truncated file header", () => {
    const { error } = parseAll(new Uint8Array(0), [], "-");
    assert.equal(error?.reason, "truncated-file-header");
    assert.equal(error.message, `Truncated capture file header in "-" at byte 0: need 24 bytes, have 0`);
  });

  it("unknown magic, with a hint for gzip", () => {
    const { error } = parseAll(new TextEncoder().encode("hello world, not a capture"), [], "x.txt");
    assert.equal(error?.reason, "unknown-format");
    assert.equal(error.byteOffset, 0);
    assert.equal(error.message, `Unknown capture format in "x.txt" at byte 0: magic 0x68656c6c`);
    const gz = parseAll(Uint8Array.of(0x1f, 0x8b, 8, 0, 0, 0, 0, 0), [], "a.pcap.gz");
    assert.match(gz.error?.message ?? "", /\(gzip-compressed: decompress it first\)$/);
  });

  it("an absurd pcap record length is corruption at that record", () => {
    const bad = pcap.slice();
    new DataView(bad.buffer).setUint32((starts[1] as number) + 8, 0x7fffffff, true);
    const { recs, error } = parseAll(bad);
    assert.equal(recs.length, 1);
    assert.equal(error?.reason, "bad-record-length");
    assert.equal(error.byteOffset, starts[1]);
  });

  const ng = pcapngBytes((w) => {
    w.writePacket(1, 0, f1);
    w.writePacket(2, 0, f2);
  });
  const epb1 = 48;
  const epb2 = epb1 + 32 + ((f1.length + 3) & ~3);

  function mutate(fn: (dv: DataView) => void): { recs: Rec[]; error: CaptureError | null } {
    const b = ng.slice();
    fn(new DataView(b.buffer));
    return parseAll(b);
  }

  it("pcapng block length errors", () => {
    for (const len of [8, 6 + epb2 - epb2, 0x7ffffff0, 0xfffffffc]) {
      const { recs, error } = mutate((dv) => dv.setUint32(epb2 + 4, len, true));
      assert.equal(recs.length, 1);
      assert.equal(error?.reason, "bad-block-length", `length ${len}`);
      assert.equal(error.byteOffset, epb2);
    }
    const odd = mutate((dv) => dv.setUint32(epb2 + 4, 34, true));
    assert.equal(odd.error?.reason, "bad-block-length");
    const trailer = mutate((dv) => dv.setUint32(epb2 - 4, 12, true));
    assert.equal(trailer.error?.reason, "bad-block-length");
    assert.equal(trailer.error.byteOffset, epb1);
    assert.equal(trailer.recs.length, 0);
  });

  it("pcapng packet block errors", () => {
    const unknownIf = mutate((dv) => dv.setUint32(epb2 + 8, 3, true));
    assert.equal(unknownIf.error?.reason, "unknown-interface");
    assert.equal(unknownIf.error.message, `Unknown pcapng interface in "test.pcap" at byte ${epb2}: id 3, 1 described`);
    assert.equal(unknownIf.recs.length, 1);
    const capBeyond = mutate((dv) => dv.setUint32(epb1 + 20, 5000, true));
    assert.equal(capBeyond.error?.reason, "bad-block");
    assert.equal(capBeyond.recs.length, 0);
  });

  it("pcapng section header errors", () => {
    const bom = mutate((dv) => dv.setUint32(8, 0x11223344, true));
    assert.equal(bom.error?.reason, "bad-section-header");
    const ver = mutate((dv) => dv.setUint16(12, 2, true));
    assert.equal(ver.error?.reason, "bad-section-header");
    assert.match(ver.error.message, /version 2\.0$/);
  });

  it("keeps failing after an error, and works again after reset()", () => {
    const recs: number[] = [];
    const p = new CaptureParser((v) => recs.push(v.index), { name: "r" });
    assert.throws(() => p.push(Uint8Array.of(1, 2, 3, 4, 5)), CaptureError);
    assert.throws(() => p.push(pcap), CaptureError);
    assert.throws(() => p.end(), CaptureError);
    p.reset();
    p.push(pcap);
    p.end();
    assert.deepEqual(recs, [1, 2, 3]);
  });

  it("errors thrown by the sink propagate unchanged", () => {
    const p = new CaptureParser(() => {
      throw new TypeError("sink failed");
    });
    assert.throws(() => p.push(pcap), TypeError);
  });
});
