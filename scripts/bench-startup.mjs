#!/usr/bin/env node
// Start-up time: `ctlab replay tiny.pcap` wall time beside `node -e 0` and
// `ctlab --help`, interleaved in the same run (medians of N runs each), so
// what ctlab adds to Node's own start is visible. Run after `npm run build`:
//   node scripts/bench-startup.mjs [runs]
// Numbers on a shared or loaded machine are noisy: compare within one run.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const bin = join(root, "dist/src/cli/bin.js");
const { buildTcp } = await import(join(root, "dist/src/packet/build.js"));
const { PcapWriter } = await import(join(root, "dist/src/packet/writer.js"));
const runs = Number(process.argv[2] ?? 15);

const dir = mkdtempSync(join(tmpdir(), "ctlab-startup-"));
const tiny = join(dir, "tiny.pcap");
const chunks = [];
const w = new PcapWriter((c) => chunks.push(c));
w.writePacket(1_795_600_000, 0, buildTcp({ src: "10.0.0.1", dst: "10.0.0.2", sport: 40000, dport: 80, flags: "S", seq: 1, win: 64240 }));
w.close();
writeFileSync(tiny, Buffer.concat(chunks));

const cases = [
  ["node -e 0", ["-e", "0"]],
  ["ctlab --help", [bin, "--help"]],
  ["ctlab sysctl", [bin, "sysctl"]],
  ["ctlab replay tiny.pcap", [bin, "replay", tiny, "-q"]],
  ["ctlab replay tiny.pcap --json", [bin, "replay", tiny, "--json"]],
];
const times = new Map(cases.map(([name]) => [name, []]));
for (let i = 0; i < runs; i++) {
  for (const [name, args] of cases) {
    const t0 = process.hrtime.bigint();
    const r = spawnSync(process.execPath, args, { stdio: "ignore" });
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (r.status !== 0) throw new Error(`${name} exited ${r.status}`);
    times.get(name).push(ms);
  }
}
rmSync(dir, { recursive: true, force: true });
const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const base = median(times.get("node -e 0"));
console.log(`Start-up, median of ${runs} interleaved runs (Node ${process.version})`);
for (const [name] of cases) {
  const m = median(times.get(name));
  console.log(`  ${name.padEnd(32)} ${m.toFixed(1).padStart(7)} ms${name === "node -e 0" ? "" : `  (+${(m - base).toFixed(1)} ms over node -e 0)`}`);
}
