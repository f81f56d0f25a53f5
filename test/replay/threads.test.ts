import assert from "node:assert/strict";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { replay } from "../../src/replay/replay.js";
import { flowHash, peakOf, replayThreaded } from "../../src/replay/threads.js";
import type { WorkerResult } from "../../src/replay/threads.js";
import { defaultThreads, THREADS_AUTO_BYTES } from "../../src/replay/thread-count.js";
import { readView, VIEW_CELLS, writeView } from "../../src/replay/wire.js";
import { buildTcp, buildUdp } from "../../src/packet/build.js";
import { PcapWriter } from "../../src/packet/writer.js";
import { decodeFrame } from "../../src/packet/decode.js";
import { PacketView } from "../../src/packet/view.js";
import type { ReplaySummary } from "../../src/report/summary.js";
import { parseThreads } from "../../src/cli/options.js";
import { CORPUS_DIR } from "../packet/helpers.js";

function captures(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...captures(p));
    else if (/\.(pcap|pcapng|cap)$/i.test(e.name)) out.push(p);
  }
  return out.sort();
}

/** The summary without what a threaded replay reports differently by design (README: `replay --threads`). */
function comparable(s: ReplaySummary): unknown {
  const c = structuredClone(s) as unknown as Record<string, unknown>;
  delete c.elapsed_ms;
  delete (c.memory as Record<string, unknown>).ctlab_bytes;
  const census = c.census as Record<string, unknown> | null;
  if (census !== null) delete census.peak;
  return c;
}

function pcapOf(frames: Array<[number, Uint8Array]>): Uint8Array {
  const chunks: Uint8Array[] = [];
  const w = new PcapWriter((c) => chunks.push(c));
  for (const [sec, f] of frames) w.writePacket(sec, 0, f);
  w.close();
  return Buffer.concat(chunks);
}

describe("replay --threads", () => {
  it("carries every field of a decoded view through the wire format", () => {
    const v = new PacketView();
    v.setFrame(buildTcp({ src: "10.0.0.1", dst: "10.0.0.2", sport: 40000, dport: 80, flags: "S", seq: 7, win: 64240 }));
    decodeFrame(v);
    // Every own field set to a value of its own, so that a field the wire format drops shows.
    let k = 1;
    const fields = Object.keys(v).filter((f) => f !== "data");
    for (const f of fields) {
      const x = (v as unknown as Record<string, unknown>)[f];
      if (x instanceof Uint32Array) for (let i = 0; i < 4; i++) x[i] = k++;
      else if (typeof x === "boolean") (v as unknown as Record<string, unknown>)[f] = true;
      else if (f === "family" || f === "innerFamily") (v as unknown as Record<string, unknown>)[f] = 6;
      else (v as unknown as Record<string, unknown>)[f] = 100 + k++;
    }
    const cells = new Float64Array(VIEW_CELLS);
    writeView(v, cells, 0);
    const back = new PacketView();
    const bytes = new Uint8Array(16);
    readView(back, cells, 0, bytes, v.frameOff);
    for (const f of fields) assert.deepEqual((back as unknown as Record<string, unknown>)[f], (v as unknown as Record<string, unknown>)[f], f);
    assert.equal(back.data, bytes);
    // Offsets move with the frame: from the writer's frame start to the reader's.
    readView(back, cells, 0, bytes, v.frameOff + 5);
    assert.equal(back.l3Off, v.l3Off + 5);
    assert.equal(back.l4Off, v.l4Off + 5);
    assert.equal(back.frameOff, v.frameOff + 5);
    assert.equal(back.seq, v.seq);
  });

  it("hashes both directions of a flow, and an ICMP error, alike", () => {
    const a = new PacketView().setFrame(buildTcp({ src: "10.0.0.1", dst: "192.0.2.9", sport: 40000, dport: 443, flags: "S", seq: 1, win: 1 }));
    const b = new PacketView().setFrame(buildTcp({ src: "192.0.2.9", dst: "10.0.0.1", sport: 443, dport: 40000, flags: "SA", seq: 1, ack: 2, win: 1 }));
    const c = new PacketView().setFrame(buildTcp({ src: "10.0.0.1", dst: "192.0.2.9", sport: 40001, dport: 443, flags: "S", seq: 1, win: 1 }));
    for (const v of [a, b, c]) decodeFrame(v);
    assert.equal(flowHash(a), flowHash(b));
    assert.notEqual(flowHash(a), flowHash(c));
    const u = new PacketView().setFrame(buildUdp({ src: "10.0.0.1", dst: "192.0.2.9", sport: 5353, dport: 53 }));
    const r = new PacketView().setFrame(buildUdp({ src: "192.0.2.9", dst: "10.0.0.1", sport: 53, dport: 5353 }));
    decodeFrame(u);
    decodeFrame(r);
    assert.equal(flowHash(u), flowHash(r));
  });

  it("rebuilds the peak from the parts' timelines", () => {
    const part = (created: number[], ms: number[], killed: number[], expiredJ: number[], transient: number[] = []): WorkerResult =>
      ({
        created: Float64Array.from(created),
        createdMs: Float64Array.from(ms),
        killed: Float64Array.from(killed),
        expiredJ: Float64Array.from(expiredJ),
        transient: Float64Array.from(transient),
        transientMs: Float64Array.from(transient.map(() => 100)),
      }) as WorkerResult;
    // Part 0 creates at packets 0 and 2 (t = 0, 8 ms), part 1 at 1 and 3 (t = 4, 12 ms); part 1's first expires at jiffy 2 (8 ms).
    const p = peakOf([part([0, 2], [0, 8], [], []), part([1, 3], [4, 12], [], [2])]);
    assert.deepEqual(p, { afterPacket: 3, timeMs: 12, allocated: 3 });
    assert.equal(peakOf([part([0, 1], [0, 0], [1], [])]).afterPacket, 1);
    // An entry allocated and freed unconfirmed by packet 5 counts in the allocation peak only.
    assert.deepEqual(peakOf([part([0], [0], [], [], [5])]), { afterPacket: 1, timeMs: 0, allocated: 2 });
  });

  it("parses --threads and picks the cores only for a large file", () => {
    assert.equal(parseThreads(undefined), undefined);
    assert.equal(parseThreads("2"), 2);
    assert.throws(() => parseThreads("0"), /Invalid --threads "0": must be an integer from 1 to 64/);
    assert.throws(() => parseThreads("x"), /Invalid --threads/);
    assert.equal(defaultThreads(null, 8), 1);
    assert.equal(defaultThreads(THREADS_AUTO_BYTES - 1, 8), 1);
    assert.equal(defaultThreads(THREADS_AUTO_BYTES, 8), 8);
    assert.equal(defaultThreads(THREADS_AUTO_BYTES, 1), 1);
  });

  it("refuses what needs one thread", async () => {
    await assert.rejects(replayThreaded(new Uint8Array(0), { onEvent: () => {} }, 2), /cannot write events/);
  });

  it("gives a generated capture's table and summary exactly, over 3 threads, both clocks", async () => {
    const frames: Array<[number, Uint8Array]> = [];
    for (let i = 0; i < 60; i++) {
      const sport = 30000 + i;
      frames.push([1000 + i, buildTcp({ src: "10.0.0.1", dst: "192.0.2.9", sport, dport: 443, flags: "S", seq: 1, win: 64240 })]);
      frames.push([1000 + i, buildTcp({ src: "192.0.2.9", dst: "10.0.0.1", sport: 443, dport: sport, flags: "SA", seq: 9, ack: 2, win: 64240 })]);
      if (i % 3 === 0) frames.push([1000 + i, buildUdp({ src: "10.0.0.2", dst: "192.0.2.53", sport: 2000 + i, dport: 53 })]);
    }
    // Long after: the UDP entries (30 s) have expired, the SYN_RECV ones (60 s) partly.
    frames.push([1090, buildUdp({ src: "10.0.0.3", dst: "192.0.2.53", sport: 1, dport: 53 })]);
    const pcap = pcapOf(frames);
    for (const clock of ["capture", "frozen"] as const) {
      const one = await replay(pcap, { seed: 5, clock, census: { top: 10 } });
      const three = await replayThreaded(pcap, { seed: 5, clock, census: { top: 10 }, table: true }, 3);
      assert.deepEqual(three.table, one.tracker.formatTable({ extended: true }), clock);
      assert.deepEqual(comparable(three.summary), comparable(one.summary), clock);
    }
  });

  // Every third capture (all of them with CTLAB_THREADS_CORPUS=all: 76 of 76 agreed when this was written);
  // two worker start-ups per capture make the whole corpus too slow for every run.
  it("gives the corpus captures' `conntrack -L` tables and counters exactly, over 2 threads", { skip: !existsSync(CORPUS_DIR) && "no corpus" }, async () => {
    const all = captures(CORPUS_DIR);
    const files = process.env.CTLAB_THREADS_CORPUS === "all" ? all : all.filter((_, i) => i % 3 === 0);
    assert.ok(files.length > 0);
    for (const f of files) {
      const one = await replay(f, { seed: 11, census: { top: 5 } });
      const two = await replayThreaded(f, { seed: 11, census: { top: 5 }, table: true }, 2);
      assert.deepEqual(two.table, one.tracker.formatTable({ extended: true }), f);
      assert.deepEqual(comparable(two.summary), comparable(one.summary), f);
    }
  });
});
