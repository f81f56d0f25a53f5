/**
 * One replay case for a profiler: generates its capture once (kept in
 * $TMPDIR/ctlab-bench-cache, shared with `run.js --keep`) and replays it N
 * times, printing packets/s of CPU time per run.
 *
 *   node dist-bench/bench/profile.js [established|flows|handshakes] [runs]
 *   node --cpu-prof --cpu-prof-dir=/tmp/prof dist-bench/bench/profile.js established 5
 *   node --prof dist-bench/bench/profile.js flows 2 && node --prof-process isolate-*.log
 *   node --trace-deopt dist-bench/bench/profile.js established 2 | grep bailout
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { replay } from "../src/replay/replay.js";
import { writeEstablishedCapture, writeFlowCapture, writeHandshakeCapture } from "./gen.js";
import type { FlowCapture } from "./gen.js";

const which = process.argv[2] ?? "established";
const runs = Number(process.argv[3] ?? "3");
const dir = join(tmpdir(), "ctlab-bench-cache");
mkdirSync(dir, { recursive: true });

const specs: Record<string, { name: string; make: (path: string) => FlowCapture; sysctls: Record<string, number> }> = {
  established: { name: "established-10000-4000000", make: (p) => writeEstablishedCapture(p, 10_000, 4_000_000, 64), sysctls: {} },
  flows: {
    name: "flows-1000000",
    make: (p) => writeFlowCapture(p, 1_000_000, 1000, 250),
    sysctls: { nf_conntrack_max: 1 << 20, nf_conntrack_buckets: 1 << 20 },
  },
  handshakes: {
    name: "handshakes-1000000",
    make: (p) => writeHandshakeCapture(p, 1_000_000, 100),
    sysctls: { nf_conntrack_max: 1 << 20, nf_conntrack_buckets: 1 << 20 },
  },
};
const spec = specs[which];
if (spec === undefined) throw new Error(`Unknown case "${which}": one of ${Object.keys(specs).join(", ")}`);
const path = join(dir, `${spec.name}.pcap`);
let cap: FlowCapture;
if (existsSync(`${path}.json`) && existsSync(path)) cap = JSON.parse(readFileSync(`${path}.json`, "utf8")) as FlowCapture;
else {
  cap = spec.make(path);
  writeFileSync(`${path}.json`, JSON.stringify(cap));
}
for (let i = 0; i < runs; i++) {
  const u0 = process.cpuUsage();
  const run = await replay(path, { seed: 1, sysctls: spec.sysctls });
  const u = process.cpuUsage(u0);
  const ms = (u.user + u.system) / 1000;
  const p = run.summary.packets;
  const ok = p.new === cap.expect.new && p.established === cap.expect.established && run.summary.entries.total === cap.expect.entries && p.invalid === 0;
  console.log(
    `${which}: ${((cap.packets * 1000) / ms / 1e6).toFixed(2)} M pkt/s (${((ms * 1e6) / cap.packets).toFixed(0)} ns/pkt CPU) ${ok ? "✓" : "✗ results differ from the capture's expectations"}`,
  );
}
