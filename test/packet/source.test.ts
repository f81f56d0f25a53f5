import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { gzipSync } from "node:zlib";
import { after, describe, it } from "node:test";
import { pathToFileURL } from "node:url";
import { buildIcmp, buildTcp, buildUdp, fragment } from "../../src/packet/build.js";
import { CaptureError } from "../../src/packet/errors.js";
import { forEachPacket, forEachPacketSync, PacketSource } from "../../src/packet/source.js";
import type { SourceSummary } from "../../src/packet/source.js";
import type { PacketView } from "../../src/packet/view.js";
import { pcapBytes, pcapngBytes, REPO_ROOT } from "./helpers.js";

const dir = mkdtempSync(join(tmpdir(), "ctlab-source-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const bigUdp = buildUdp({ src: "10.0.0.1", dst: "10.0.0.2", sport: 7, dport: 8, payload: 2500, id: 5 });
const arp = (() => {
  const f = new Uint8Array(42);
  f[12] = 0x08;
  f[13] = 0x06;
  return f;
})();
const frames = [
  buildTcp({ src: "10.0.0.1", dst: "10.0.0.2", sport: 1, dport: 2, flags: "S" }),
  arp,
  ...fragment(bigUdp, 1000),
  buildIcmp({ src: "fd00::1", dst: "fd00::2", id: 3 }),
  buildTcp({ src: "10.0.0.1", dst: "10.0.0.2", sport: 1, dport: 2 }).subarray(0, 40),
];
const records = frames.map((frame, i) => ({ sec: 1000 + i, nsec: i * 10, frame }));
const bytes = pcapBytes(records, { nanosecond: true });
const file = join(dir, "mixed.pcap");
writeFileSync(file, bytes);

function collect(): { seen: string[]; handler: (v: PacketView) => void } {
  const seen: string[] = [];
  return { seen, handler: (v) => seen.push(`${v.index}:${v.family}:${v.proto}:${v.reassembled ? "R" : ""}`) };
}

describe("forEachPacketSync", () => {
  it("delivers decoded, reassembled packets and a complete summary", () => {
    const { seen, handler } = collect();
    const s = forEachPacketSync(file, handler);
    assert.deepEqual(seen, ["1:4:6:", "2:0:0:", "5:4:17:R", "6:6:58:", "7:0:0:"]);
    assert.equal(s.format, "pcap");
    assert.deepEqual([s.records, s.delivered, s.ipv4, s.ipv6, s.snapped, s.bytes], [7, 5, 2, 1, 0, bytes.length]);
    assert.deepEqual(s.decodeFailures, { "not-ip": 1, "truncated-ipv4-packet": 1 });
    assert.deepEqual(s.linkTypes, [1]);
    assert.deepEqual(s.firstTs, { sec: 1000, nsec: 0 });
    assert.deepEqual(s.lastTs, { sec: 1006, nsec: 60 });
    assert.equal(s.fragments?.reassembled, 1);
    assert.equal(s.fragments.fragments, 3);
    assert.equal(s.error, null);
  });

  it("without defragmentation every fragment is delivered", () => {
    const { seen, handler } = collect();
    const s = forEachPacketSync(file, handler, { defrag: false });
    assert.equal(seen.length, 7);
    assert.equal(s.fragments, null);
  });

  it("runs the defragmenter on the capture clock unless given another", () => {
    const parts = fragment(bigUdp, 1000).map((frame, i) => ({ sec: i * 40, nsec: 0, frame }));
    const late = pcapBytes(parts);
    assert.equal(forEachPacketSync(late, () => {}).fragments?.timedOutQueues, 2);
    const frozen = forEachPacketSync(late, () => {}, { defragClock: () => 0 });
    assert.deepEqual([frozen.fragments?.timedOutQueues, frozen.fragments?.reassembled], [0, 1]);
  });

  it("reuses one view", () => {
    const views = new Set<PacketView>();
    forEachPacketSync(bytes, (v) => views.add(v));
    assert.equal(views.size, 1);
  });

  it("stops at maxRecords", () => {
    const { seen, handler } = collect();
    const s = forEachPacketSync(file, handler, { maxRecords: 2 });
    assert.equal(seen.length, 2);
    assert.equal(s.records, 2);
    assert.equal(s.error, null);
  });

  it("reports a truncated capture after delivering what came before", () => {
    const cut = join(dir, "cut.pcap");
    writeFileSync(cut, bytes.subarray(0, bytes.length - 3));
    const { seen, handler } = collect();
    const s = forEachPacketSync(cut, handler);
    assert.equal(seen.length, 4);
    assert.ok(s.error instanceof CaptureError);
    assert.equal(s.error.reason, "truncated-record");
    assert.equal(s.error.file, cut);
    assert.equal(s.error.byteOffset, bytes.length - 16 - 40);
  });

  it("reports an unreadable input as an io-error", () => {
    const s = forEachPacketSync(join(dir, "missing.pcap"), () => {});
    assert.equal(s.error?.reason, "io-error");
    assert.match(s.error.message, /^Cannot open ".*missing\.pcap": ENOENT/);
    const d = forEachPacketSync(dir, () => {});
    assert.equal(d.error?.reason, "io-error");
  });

  it("streams files bigger than its read buffer", () => {
    const many = Array.from({ length: 40_000 }, (_, i) => ({
      sec: i,
      nsec: 0,
      frame: buildUdp({ src: "10.0.0.1", dst: "10.0.0.2", sport: i & 0xffff, dport: 9, payload: i % 97 }),
    }));
    const big = pcapngBytes((w) => many.forEach((r) => w.writePacket(r.sec, r.nsec, r.frame)));
    assert.ok(big.length > 3 * (1 << 20));
    const path = join(dir, "big.pcapng");
    writeFileSync(path, big);
    let sum = 0;
    const s = forEachPacketSync(path, (v) => (sum += v.sport + v.l4Len));
    let want = 0;
    for (const r of many) want += (r.sec & 0xffff) + 8 + (r.sec % 97);
    assert.equal(s.records, 40_000);
    assert.equal(sum, want);
  });

  it("lets handler errors through", () => {
    assert.throws(
      () =>
        forEachPacketSync(bytes, () => {
          throw new SyntaxError("handler");
        }),
      SyntaxError,
    );
  });
});

describe("forEachPacket (async)", () => {
  function strip(s: SourceSummary): unknown {
    return { ...s, error: s.error?.message ?? null };
  }

  it("gives the same result for streams of any chunking, async iterables and bytes", async () => {
    const want = forEachPacketSync(bytes, () => {});
    const chunks: Uint8Array[] = [];
    for (let at = 0, n = 1; at < bytes.length; at += n, n = ((n * 7) % 61) + 1) chunks.push(bytes.slice(at, at + n));
    const a = await forEachPacket(Readable.from(chunks.map((c) => Buffer.from(c))), () => {});
    assert.deepEqual(strip(a), strip(want));
    // An async source that never waits: the chunks are at hand.
    // eslint-disable-next-line @typescript-eslint/require-await
    async function* gen(): AsyncGenerator<Uint8Array> {
      for (const c of chunks) yield c;
    }
    assert.deepEqual(strip(await forEachPacket(gen(), () => {})), strip(want));
    assert.deepEqual(strip(await forEachPacket(bytes, () => {})), strip(want));
    assert.deepEqual(strip(await forEachPacket(file, () => {})), strip({ ...want }));
  });

  it("turns stream failures into an io-error after the packets read so far", async () => {
    // eslint-disable-next-line @typescript-eslint/require-await
    async function* failing(): AsyncGenerator<Uint8Array> {
      yield bytes.subarray(0, 100);
      throw new Error("EIO: device gone");
    }
    let n = 0;
    const s = await forEachPacket(failing(), () => n++, { name: "dev" });
    assert.equal(n, 1);
    assert.equal(s.error?.reason, "io-error");
    assert.equal(s.error.message, `Cannot read "dev": EIO: device gone`);
  });

  it("decompresses gzip input on the fly: bytes, files, streams", async () => {
    const want = strip(forEachPacketSync(bytes, () => {}));
    const gz = new Uint8Array(gzipSync(bytes));
    assert.deepEqual(strip(await forEachPacket(gz, () => {})), want);
    const path = join(dir, "mixed.pcap.gz");
    writeFileSync(path, gz);
    assert.deepEqual(strip(await forEachPacket(path, () => {}, { name: "-" })), want);
    const pieces = [gz.subarray(0, 1), gz.subarray(1, 7), gz.subarray(7)];
    assert.deepEqual(strip(await forEachPacket(Readable.from(pieces.map((p) => Buffer.from(p))), () => {})), want);
    // The synchronous reader does not decompress: it says what the file is.
    assert.match(forEachPacketSync(path, () => {}).error?.message ?? "", /gzip-compressed/);
    // A broken gzip stream is an input failure, after the packets it gave.
    const broken = gz.slice(0, gz.length - 12);
    const s = await forEachPacket(broken, () => {}, { name: "b.gz" });
    assert.equal(s.error?.reason, "io-error");
    assert.match(s.error.message, /^Cannot read "b\.gz": /);
  });

  it("handles empty streams", async () => {
    const s = await forEachPacket(Readable.from([]), () => {});
    assert.equal(s.error?.reason, "truncated-file-header");
  });

  it('reads stdin for "-"', () => {
    const url = pathToFileURL(join(REPO_ROOT, "dist/src/packet/source.js")).href;
    const script = `import(${JSON.stringify(url)}).then(async (m) => { const s = await m.forEachPacket("-", () => {}); console.log(JSON.stringify([s.records, s.delivered, s.error && s.error.file])); });`;
    const r = spawnSync(process.execPath, ["-e", script], { input: Buffer.from(bytes) });
    assert.equal(r.status, 0, r.stderr.toString());
    assert.deepEqual(JSON.parse(r.stdout.toString()), [7, 5, null]);
    const t = spawnSync(process.execPath, ["-e", script], { input: Buffer.from(bytes.subarray(0, 30)) });
    assert.deepEqual(JSON.parse(t.stdout.toString()), [0, 0, "-"]);
    const z = spawnSync(process.execPath, ["-e", script], { input: gzipSync(bytes) });
    assert.deepEqual(JSON.parse(z.stdout.toString()), [7, 5, null]);
  });
});

describe("PacketSource", () => {
  it("ignores input after a fault and reports it once", () => {
    let n = 0;
    const src = new PacketSource(() => n++, { name: "x" });
    src.push(bytes.subarray(0, 24));
    src.push(Uint8Array.of(0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0));
    assert.equal(src.active, false);
    src.push(bytes);
    const s = src.end();
    assert.equal(n, 0);
    assert.equal(s.error?.reason, "bad-record-length");
    assert.equal(s.error.byteOffset, 24);
  });

  it("verifies IPv4 header checksums unless told not to", () => {
    const bad = buildTcp({ src: "10.0.0.1", dst: "10.0.0.2", sport: 1, dport: 2, ipChecksum: "bad" });
    const b = pcapBytes([{ sec: 1, nsec: 0, frame: bad }]);
    assert.equal(forEachPacketSync(b, () => {}, { verifyIpv4Checksum: false }).ipv4, 1);
    const s = forEachPacketSync(b, () => {});
    assert.deepEqual([s.ipv4, s.decodeFailures], [0, { "bad-ipv4-checksum": 1 }]);
  });
});
