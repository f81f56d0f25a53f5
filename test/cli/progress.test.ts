/**
 * The replay progress line: redrawn every 250 ms from a timer with percent,
 * ETA and occupancy (unit, fake timers), shown on a real pseudo-terminal for
 * a slow live stream and never without one (end to end, `script` from
 * util-linux gives the terminal).
 */
import assert from "node:assert/strict";
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it, mock } from "node:test";
import { fileURLToPath } from "node:url";
import { progressDisplay, progressLine } from "../../src/cli/progress.js";
import type { ReplayProgress } from "../../src/replay/replay.js";
import { buildUdp } from "../../src/packet/build.js";
import { PcapWriter } from "../../src/packet/writer.js";

const BIN = fileURLToPath(new URL("../../src/cli/bin.js", import.meta.url));

describe("progress line", () => {
  it("shows percent and ETA only when the size is known, and the occupancy against nf_conntrack_max", () => {
    const p: ReplayProgress = { packets: 12345, bytes: 0, entries: 50, max: 200 };
    assert.equal(
      progressLine(p, 250_000, 1_000_000, 2),
      "12,345 packets, 244.1 KiB (25%, ETA 6 s), 6,173 packets/s, table 50 of 200 (25.0% of nf_conntrack_max)",
    );
    assert.equal(progressLine(p, 250_000, null, 2), "12,345 packets, 244.1 KiB, 6,173 packets/s, table 50 of 200 (25.0% of nf_conntrack_max)");
    assert.equal(progressLine({ ...p, max: 0 }, 100, 10_000, 150), "12,345 packets, 100 B (1%, ETA 247 min 30 s), 82 packets/s, table 50 (no limit)");
  });

  it("is redrawn from a timer every 250 ms, with nothing read in between, and cleared at the end", () => {
    mock.timers.enable({ apis: ["setInterval", "Date"], now: 1_000_000 });
    try {
      const written: string[] = [];
      const read = { bytes: 0 };
      const d = progressDisplay({ enabled: true, size: 4000, read, out: { isTTY: true, write: (t: string) => written.push(t) } });
      let packets = 0;
      d.start(() => ({ packets, bytes: 0, entries: packets, max: 1000 }));
      mock.timers.tick(249);
      assert.equal(written.length, 0);
      read.bytes = 1000;
      packets = 10;
      mock.timers.tick(1);
      assert.equal(written.at(-1), "\r\x1b[K10 packets, 1000 B (25%, ETA 1 s), 40 packets/s, table 10 of 1,000 (1.0% of nf_conntrack_max)");
      // A stalled live stream: the line keeps coming, the rate falls.
      mock.timers.tick(750);
      assert.equal(written.length, 4);
      assert.equal(written.at(-1), "\r\x1b[K10 packets, 1000 B (25%, ETA 3 s), 10 packets/s, table 10 of 1,000 (1.0% of nf_conntrack_max)");
      d.stop();
      assert.equal(written.at(-1), "\r\x1b[K");
      mock.timers.tick(1000);
      assert.equal(written.length, 5, "nothing after stop");
    } finally {
      mock.timers.reset();
    }
  });

  it("writes nothing when the output is not a terminal or with --no-progress", () => {
    mock.timers.enable({ apis: ["setInterval", "Date"] });
    try {
      for (const [enabled, isTTY] of [
        [true, false],
        [false, true],
      ] as const) {
        const written: string[] = [];
        const d = progressDisplay({ enabled, size: null, read: { bytes: 0 }, out: { isTTY, write: (t: string) => written.push(t) } });
        d.start(() => ({ packets: 1, bytes: 1, entries: 1, max: 1 }));
        mock.timers.tick(2000);
        d.stop();
        assert.deepEqual(written, []);
      }
    } finally {
      mock.timers.reset();
    }
  });
});

describe(
  "progress on a terminal, end to end",
  { skip: spawnSync("script", ["--version"]).status === 0 ? false : "script (util-linux) is not installed" },
  () => {
    const dir = mkdtempSync(join(tmpdir(), "ctlab-progress-"));
    after(() => rmSync(dir, { recursive: true, force: true }));
    const chunks: Uint8Array[] = [];
    const w = new PcapWriter((c) => chunks.push(c));
    for (let i = 0; i < 400; i++)
      w.writePacket(1_700_000_000, i * 1000, buildUdp({ src: `10.0.${i >> 8}.${i & 255}`, dst: "192.0.2.53", sport: 5000, dport: 53, payload: 20 }));
    w.close();
    const pcap = Buffer.concat(chunks);
    // 24-byte file header, then 400 records of one size: the first 200 come before the stall.
    const half = 24 + 200 * ((pcap.length - 24) / 400);
    const first = join(dir, "first.bin");
    const rest = join(dir, "rest.bin");
    writeFileSync(first, pcap.subarray(0, half));
    writeFileSync(rest, pcap.subarray(half));

    /** Replays a FIFO fed half, then (after a pause) the rest; `tty` runs it under script's pseudo-terminal. */
    function slowReplay(tty: boolean, extra: string[] = []): Promise<string> {
      const fifo = join(dir, `cap-${tty ? "t" : "p"}-${extra.length}.fifo`);
      execFileSync("mkfifo", [fifo]);
      const cmd = `"${process.execPath}" "${BIN}" replay "${fifo}" --sysctl nf_conntrack_max=1000 ${extra.join(" ")} 2>&1`;
      const feeder = `{ cat "${first}"; sleep 1.2; cat "${rest}"; } > "${fifo}" &`;
      const line = tty ? `${feeder} script -qec '${cmd}' /dev/null; wait` : `${feeder} ${cmd}; wait`;
      return new Promise((resolve, reject) => {
        const p = spawn("bash", ["-c", line], { stdio: ["ignore", "pipe", "pipe"] });
        let out = "";
        p.stdout.on("data", (d: Buffer) => (out += d.toString("utf8")));
        p.stderr.on("data", (d: Buffer) => (out += d.toString("utf8")));
        const t = setTimeout(() => p.kill("SIGKILL"), 30000);
        p.on("close", (code) => {
          clearTimeout(t);
          if (code === 0) resolve(out);
          else reject(new Error(`replay ended with ${String(code)}: ${out}`));
        });
      });
    }

    it("a slow live stream shows the line (its size unknown: no percent), the occupancy, and clears it", async () => {
      const out = await slowReplay(true);
      const lines = out.split("\r\x1b[K").filter((l) => / packets\/s, /.test(l));
      assert.ok(lines.length >= 2, `progress lines on the terminal while the stream stalled:\n${JSON.stringify(out)}`);
      const stalled = lines.filter((l) => /^200 packets, [0-9.]+ KiB, [0-9,]+ packets\/s, table 200 of 1,000 \(20\.0% of nf_conntrack_max\)$/.test(l));
      assert.ok(stalled.length >= 2, `the line is redrawn while nothing arrives:\n${lines.join("\n")}`);
      assert.ok(!lines.some((l) => l.includes("ETA")), "no ETA without a size");
      assert.match(out, /Table at the end: 400 entries/);
    });

    it("nothing on a pipe, nor with --no-progress on a terminal", async () => {
      for (const out of [await slowReplay(false), await slowReplay(true, ["--no-progress"])]) {
        assert.doesNotMatch(out, /packets\/s, table/);
        assert.match(out, /Table at the end: 400 entries/);
      }
    });
  },
);
