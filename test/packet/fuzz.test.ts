/**
 * Property and fuzz tests. The contract under test: arbitrary bytes may make
 * the capture parser throw only CaptureError (and it works again after
 * reset()); the decoder, the checksum verifier and the defragmenter never
 * throw and never read past the record; results never depend on how the
 * input was chunked.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import fc from "fast-check";
import { buildIp, buildTcp, buildUdp, fragment } from "../../src/packet/build.js";
import { CaptureParser } from "../../src/packet/capture.js";
import { l4ChecksumOk } from "../../src/packet/checksum.js";
import { decodeFrame } from "../../src/packet/decode.js";
import { Defragmenter } from "../../src/packet/defrag.js";
import { CaptureError } from "../../src/packet/errors.js";
import { LINKTYPE } from "../../src/packet/proto.js";
import { PacketView } from "../../src/packet/view.js";
import { CORPUS_DIR, parseAll, pcapBytes, pcapngBytes } from "./helpers.js";

const LINK_TYPES = [0, 1, 12, 14, 101, 108, 113, 228, 229, 276, 9999];

/** Every decoded field of a view, offsets made relative to the frame. */
function fields(v: PacketView): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, val] of Object.entries(v)) {
    if (k === "data" || k === "frameOff") continue;
    out[k] = val instanceof Uint32Array ? [...val] : val;
  }
  for (const k of ["l3Off", "l4Off", "sctpChunksOff", "fragHdrOff"] as const) {
    if ((out[k] as number) > 0) out[k] = (out[k] as number) - v.frameOff;
  }
  return out;
}

function decodeIn(frame: Uint8Array, linkType: number, junk: number, pad: number, wireExtra = 0): PacketView {
  const buf = new Uint8Array(frame.length + 2 * pad).fill(junk);
  buf.set(frame, pad);
  const v = new PacketView();
  v.data = buf;
  v.frameOff = pad;
  v.capLen = frame.length;
  v.wireLen = frame.length + wireExtra;
  v.linkType = linkType;
  decodeFrame(v, 1);
  l4ChecksumOk(v);
  return v;
}

/** A frame, its decode is the same whatever surrounds it: the decoder stays inside the record. */
function assertContained(frame: Uint8Array, linkType: number, wireExtra = 0): void {
  const a = decodeIn(frame, linkType, 0x00, 3, wireExtra);
  const b = decodeIn(frame, linkType, 0xff, 41, wireExtra);
  assert.deepEqual(fields(a), fields(b));
}

function cutsArb(len: number): fc.Arbitrary<number[]> {
  return fc.uniqueArray(fc.integer({ min: 1, max: Math.max(1, len - 1) }), { maxLength: 12 }).map((a) => a.filter((x) => x < len).sort((x, y) => x - y));
}

const sampleFrames = [
  buildTcp({ src: "10.0.0.1", dst: "10.0.0.2", sport: 1, dport: 2, flags: "S", mss: 1460, wscale: 7, sackPerm: true, ts: [1, 2] }),
  buildTcp({ src: "fd00::1", dst: "fd00::2", sport: 3, dport: 4, sack: [[1, 2]], extHeaders: [{ type: "hop" }], vlan: [5, 6] }),
  buildUdp({ src: "10.0.0.1", dst: "10.0.0.2", sport: 53, dport: 9, payload: 40, pppoeSession: 3 }),
  ...fragment(buildUdp({ src: "10.0.0.1", dst: "10.0.0.2", sport: 5, dport: 6, payload: 300, id: 8 }), 120),
  ...fragment(buildUdp({ src: "fd00::1", dst: "fd00::2", sport: 5, dport: 6, payload: 300 }), 150),
];

describe("fuzz: capture parser", () => {
  it("random bytes: only CaptureError escapes, chunking does not matter, reset() recovers", () => {
    const good = pcapBytes([{ sec: 1, nsec: 2, frame: sampleFrames[0] as Uint8Array }]);
    const parser = new CaptureParser(() => {});
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 300 }),
          fc.uint8Array({ maxLength: 300 }).map((b) => Uint8Array.from([...good.subarray(0, 24), ...b])),
          fc.uint8Array({ maxLength: 300 }).map((b) => Uint8Array.from([...pcapngBytes(() => {}), ...b])),
        ),
        fc.integer({ min: 0, max: 400 }),
        (bytes, cut) => {
          const whole = parseAll(bytes);
          const split = parseAll(bytes, cut < bytes.length && cut > 0 ? [cut] : []);
          assert.deepEqual(split, whole);
          parser.reset();
          try {
            parser.push(bytes);
            parser.end();
          } catch (e) {
            if (!(e instanceof CaptureError)) throw e;
          }
          parser.reset();
          parser.push(good);
          parser.end();
          assert.equal(parser.records, 1);
        },
      ),
      { numRuns: 600 },
    );
  });

  it("valid random captures read back exactly, whatever the chunking", () => {
    const rec = fc.record({
      sec: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
      nsec: fc.integer({ min: 0, max: 999_999_999 }),
      frame: fc.uint8Array({ maxLength: 90 }),
      iface: fc.nat(2),
    });
    fc.assert(
      fc.property(fc.array(rec, { maxLength: 8 }), fc.boolean(), fc.constantFrom("le", "be"), fc.integer({ min: 0, max: 9 }), (recs, ng, order, resol) => {
        const bytes = ng
          ? pcapngBytes(
              (w) => {
                for (const r of recs) w.writePacket(r.sec, r.nsec, r.frame, undefined, r.iface);
              },
              { byteOrder: order, interfaces: [{ tsresol: 9 }, { linkType: 101, tsresol: 0x80 | 30 }, { linkType: 113, tsresol: resol }] },
            )
          : pcapBytes(recs, { byteOrder: order, nanosecond: true });
        const whole = parseAll(bytes);
        assert.equal(whole.error, null);
        assert.deepEqual(
          whole.recs.map((r) => r.frame),
          recs.map((r) => r.frame),
        );
        if (!ng)
          assert.deepEqual(
            whole.recs.map((r) => [r.tsSec, r.tsNsec]),
            recs.map((r) => [r.sec, r.nsec]),
          );
        else {
          for (let i = 0; i < recs.length; i++) {
            const r = recs[i] as (typeof recs)[number];
            const got = whole.recs[i] as (typeof whole.recs)[number];
            if (r.iface === 0) assert.deepEqual([got.tsSec, got.tsNsec], [r.sec, r.nsec]);
            else {
              // Writer and reader each truncate: never later, earlier by less than a unit plus a nanosecond.
              const unit = r.iface === 1 ? 1e9 / 2 ** 30 : 10 ** (9 - Math.min(resol, 9));
              const diff = (r.sec - got.tsSec) * 1e9 + (r.nsec - got.tsNsec);
              assert.ok(diff >= 0 && diff < unit + 1, `diff ${diff} unit ${unit}`);
            }
          }
        }
        fc.assert(
          fc.property(cutsArb(bytes.length), (cuts) => {
            assert.deepEqual(parseAll(bytes, cuts), whole);
          }),
          { numRuns: 5 },
        );
      }),
      { numRuns: 200 },
    );
  });
});

describe("fuzz: decoder", () => {
  it("random frames of every link type: no throw, no read past the record", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 120 }), fc.constantFrom(...LINK_TYPES), fc.nat(100), (frame, lt, extra) => {
        assertContained(frame, lt, extra);
      }),
      { numRuns: 3000 },
    );
  });

  it("mutated and cut real packets: no throw, no read past the record", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...sampleFrames),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
        fc.nat(),
        fc.constantFrom(1, 1, 1, 113, 276),
        (frame, edits, cutAt, lt) => {
          let f: Uint8Array = frame.slice();
          if (lt === 113) f = Uint8Array.from([0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0, ...f.subarray(12)]);
          if (lt === 276) f = Uint8Array.from([f[12] as number, f[13] as number, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0, ...f.subarray(14)]);
          for (const [at, val] of edits) f[at % f.length] = val;
          const cut = f.subarray(0, cutAt % (f.length + 1));
          assertContained(cut, lt);
          assertContained(cut, lt, f.length - cut.length);
        },
      ),
      { numRuns: 3000 },
    );
  });

  it("built packets decode to what was built", () => {
    fc.assert(
      fc.property(
        fc.boolean(),
        fc.integer({ min: 0, max: 65535 }),
        fc.integer({ min: 0, max: 65535 }),
        fc.integer({ min: 0, max: 2 ** 32 - 1 }),
        fc.integer({ min: 0, max: 2 ** 32 - 1 }),
        fc.integer({ min: 0, max: 255 }),
        fc.option(fc.integer({ min: 0, max: 255 }), { nil: undefined }),
        fc.nat(200),
        fc.array(fc.integer({ min: 1, max: 4094 }), { maxLength: 3 }),
        (v6, sport, dport, seq, ack, flags, wscale, payload, vlan) => {
          const f = buildTcp({
            src: v6 ? "2001:db8::7" : "198.51.100.7",
            dst: v6 ? "2001:db8::8" : "203.0.113.8",
            sport,
            dport,
            seq,
            ack,
            flags,
            payload,
            vlan,
            ...(wscale === undefined ? {} : { wscale }),
          });
          const v = decodeIn(f, 1, 0xee, 7);
          assert.equal(v.reason, 0);
          assert.deepEqual(
            [v.family, v.sport, v.dport, v.seq, v.ack, v.tcpFlags, v.optWscale, v.payloadLen, v.vlanTags],
            [v6 ? 6 : 4, sport, dport, seq, ack, flags, wscale ?? -1, payload, vlan.length],
          );
          assert.equal(l4ChecksumOk(v), true);
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe("fuzz: defragmenter", () => {
  it("random fragment soups: no throw, counters stay consistent, expiry empties it", () => {
    const frag = fc.record({
      v6: fc.boolean(),
      id: fc.nat(3),
      off: fc.nat(40).map((x) => x * 8),
      len: fc.nat(48),
      mf: fc.boolean(),
      t: fc.nat(90_000),
      proto: fc.constantFrom(6, 17),
    });
    fc.assert(
      fc.property(fc.array(frag, { maxLength: 30 }), fc.integer({ min: 2000, max: 50_000 }), (list, high) => {
        const d = new Defragmenter({ ipv4HighThresh: high, ipv6HighThresh: high, ipv4MaxDist: 5 });
        const v = new PacketView();
        let now = 0;
        let delivered = 0;
        for (const f of list.sort((a, b) => a.t - b.t)) {
          const ipPkt = f.v6
            ? buildIp({ src: "fd00::1", dst: "fd00::2", link: "raw", extHeaders: [{ type: "fragment", offset: f.off, more: f.mf, id: f.id }] }, f.proto, f.len)
            : buildIp({ src: "10.0.0.1", dst: "10.0.0.2", link: "raw", id: f.id, fragOffset: f.off, mf: f.mf }, f.proto, f.len);
          decodeFrame(v.setFrame(ipPkt, LINKTYPE.RAW), 0);
          now = f.t;
          const r = d.offer(v, now);
          if (r === 2) {
            delivered++;
            assert.equal(v.reassembled, true);
            assert.equal(v.isFragment, false);
            assert.ok(v.family === 4 || v.family === 6);
          }
          const s = d.summary();
          assert.ok(s.held >= 0 && s.memory >= 0 && s.queues >= 0);
          assert.ok(s.held <= s.fragments);
        }
        d.expire(now + 120_000);
        const s = d.summary();
        assert.deepEqual([s.held, s.queues, s.memory], [0, 0, 0]);
        assert.equal(s.reassembled, delivered);
      }),
      { numRuns: 400 },
    );
  });
});

describe("fuzz: mutated real captures", () => {
  const files = ["zeek/smtp.pcap", "nDPI/zoom.pcap", "PcapPlusPlus/ip6_fragments.pcap", "zeek/pcapng-multi-interface.pcapng", "PcapPlusPlus/sll.pcap"];
  const present = files.filter((f) => existsSync(join(CORPUS_DIR, f)));

  it("parse, decode, verify checksums and defragment without escaping errors", (t) => {
    if (present.length === 0) {
      t.skip("corpus absent");
      return;
    }
    const data = present.map((f) => new Uint8Array(readFileSync(join(CORPUS_DIR, f))).subarray(0, 60_000));
    fc.assert(
      fc.property(
        fc.nat(data.length - 1),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }),
        fc.nat(),
        (which, edits, cutAt) => {
          const src = data[which] as Uint8Array;
          const b = src.slice(0, 1 + (cutAt % src.length));
          for (const [at, val] of edits) b[at % b.length] = val;
          const d = new Defragmenter();
          const seen: number[] = [];
          const p = new CaptureParser((v) => {
            decodeFrame(v, 1);
            l4ChecksumOk(v);
            d.offer(v, v.tsSec * 1000);
            seen.push(v.index);
          });
          try {
            p.push(b);
            p.end();
          } catch (e) {
            if (!(e instanceof CaptureError)) throw e;
            assert.ok(e.byteOffset >= 0 && e.byteOffset <= b.length);
          }
          assert.deepEqual(
            seen,
            seen.map((_, i) => i + 1),
          );
        },
      ),
      { numRuns: 150 },
    );
  });
});
