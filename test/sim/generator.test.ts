import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Rng, mulberry32, xorshift32, xorshift32Next } from "../../src/sim/random.js";
import { FrameWriter, NO_OPTIONS, SYN_OPTIONS, TCP_ACK, TCP_SYN } from "../../src/sim/frames.js";
import { PcapSink, TeeSink, TrackerSink } from "../../src/sim/sink.js";
import { FrameLog, TcpConv } from "../../src/sim/conv.js";
import { msOf, nsecOf, secOf } from "../../src/sim/time.js";
import { writeDemoCapture } from "../../src/sim/demo.js";
import { Tracker } from "../../src/conntrack/tracker.js";
import { replay } from "../../src/replay/replay.js";

/** The generators as they were written before they moved to sim/random.ts, to hold the sequences. */
function oldTrackerXorshift(seed: number): () => number {
  let rng = (seed >>> 0) ^ 0x9e3779b9 || 1;
  return () => {
    let x = rng;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    rng = x;
    return (x >>> 0) % 9;
  };
}
function oldEvalXorshift(seed: number): () => number {
  let x = seed >>> 0 || 0x9e3779b9;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}
function oldMulberry(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test("random: the moved generators give the sequences they gave before", () => {
  for (const seed of [0, 1, 42, 0x9e3779b9, 0xffffffff, 123456789]) {
    const tracker = oldTrackerXorshift(seed);
    let x = (seed >>> 0) ^ 0x9e3779b9 || 1;
    const evalOld = oldEvalXorshift(seed);
    const evalNew = xorshift32(seed);
    const mOld = oldMulberry(seed);
    const mNew = mulberry32(seed);
    const rOld = oldMulberry(seed);
    const r = new Rng(seed);
    for (let i = 0; i < 5000; i++) {
      x = xorshift32Next(x);
      assert.equal(x % 9, tracker());
      assert.equal(evalNew(), evalOld());
      assert.equal(mNew(), mOld());
      assert.equal(r.next(), rOld());
    }
  }
});

test("random: Rng draws stay in range and are deterministic per seed", () => {
  const a = new Rng(7);
  const b = new Rng(7);
  let sum = 0;
  for (let i = 0; i < 20000; i++) {
    const v = a.below(10);
    assert.equal(v, b.below(10));
    assert.ok(v >= 0 && v < 10 && Number.isInteger(v));
    const k = a.int(3, 5);
    b.int(3, 5);
    assert.ok(k >= 3 && k <= 5);
    const u = a.u32();
    b.u32();
    assert.ok(u >= 0 && u <= 0xffffffff);
    sum += a.exp(2);
    b.exp(2);
  }
  // Mean of 20 000 exponentials of mean 2: within 5 %.
  assert.ok(Math.abs(sum / 20000 - 2) < 0.1, `mean ${sum / 20000}`);
});

test("frames: FrameWriter writes what buildTcp/buildUdp build, byte for byte", () => {
  FrameWriter.selfCheck();
});

test("time: microseconds split into the pcap pair and the replay clock", () => {
  const us = 1_700_000_000_123_456;
  assert.equal(secOf(us), 1_700_000_000);
  assert.equal(nsecOf(us), 123_456_000);
  assert.equal(msOf(us), 1_700_000_000_123);
});

test("demo: rebuilt on the conversation DSL, the capture is byte for byte what it was", () => {
  const dir = mkdtempSync(join(tmpdir(), "sim-demo-"));
  try {
    const p = join(dir, "demo.pcap");
    assert.equal(writeDemoCapture(p), 59854);
    // The md5 of the capture written by the demo generator before it moved onto TcpConv and Rng.
    assert.equal(createHash("md5").update(readFileSync(p)).digest("hex"), "6e073d4d601d38362e26c3d5f2cf3180");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("sink: frames fed to the tracker directly give the table and counters a replay of their pcap gives", async () => {
  const dir = mkdtempSync(join(tmpdir(), "sim-sink-"));
  try {
    const p = join(dir, "t.pcap");
    const sysctls = { nf_conntrack_max: 64, nf_conntrack_buckets: 16 };
    const direct = new TrackerSink((clock) => new Tracker({ sysctls, clock, seed: 5 }));
    const sink = new TeeSink(direct, new PcapSink(p));
    const f = new FrameWriter();
    let us = 1_700_000_000_000_000;
    let dropped = 0;
    const syn = (i: number) => sink.frame(us, f.buf, f.tcp((0x0a000001 + i) >>> 0, 0xc0000201, 20000 + i, 443, i * 1000, 0, TCP_SYN, 64240, SYN_OPTIONS, 0));
    // 40 unanswered SYNs that expire (SYN_SENT, 120 s), 64 handshakes that fill the
    // table with assured entries early drop cannot evict, 20 SYNs the full table drops.
    for (let i = 0; i < 40; i++, us += 1000 + i * 997) syn(i);
    us += 125_000_000;
    for (let i = 40; i < 104; i++, us += 1500) {
      syn(i);
      sink.frame(us + 500, f.buf, f.tcp(0xc0000201, (0x0a000001 + i) >>> 0, 443, 20000 + i, 7, i * 1000 + 1, TCP_SYN | TCP_ACK, 65160, SYN_OPTIONS, 0));
      sink.frame(us + 1000, f.buf, f.tcp((0x0a000001 + i) >>> 0, 0xc0000201, 20000 + i, 443, i * 1000 + 1, 8, TCP_ACK, 502, NO_OPTIONS, 0));
    }
    for (let i = 104; i < 124; i++, us += 1000) if (!syn(i)) dropped++;
    sink.close();
    assert.equal(dropped, 20, "the full table dropped the last SYNs");
    assert.equal(direct.counts.dropped, dropped);
    const run = await replay(p, { sysctls, seed: 5 });
    assert.deepEqual(direct.tracker.formatTable({ extended: true }), run.tracker.formatTable({ extended: true }));
    assert.deepEqual([...direct.tracker.stats.entries()], [...run.tracker.stats.entries()]);
    assert.equal(run.summary.packets.dropped, dropped);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("conv: a FrameLog timestamps what a conversation emits", () => {
  const log = new FrameLog(1_700_000_000_000_000, 1000);
  new TcpConv(log, { client: "10.0.0.1", server: "10.0.0.2", cport: 1000, sport: 80 }).handshake().closeFrom("c");
  assert.equal(log.frames.length, 7);
  assert.deepEqual(
    log.frames.map((x) => x.tsNsec),
    [0, 1, 2, 3, 4, 5, 6].map((i) => i * 1_000_000),
  );
});
