/**
 * The peer benchmark: the same captures through `ctlab replay` and through
 * Open vSwitch's userspace conntrack (`ovstest test-conntrack pcap FILE`,
 * tests/test-conntrack.c: every packet through conntrack_execute(), one
 * state line per packet on stdout), as whole processes on both sides: what
 * a user waits for. Runs are interleaved (ctlab, OVS, ctlab, OVS, …) so a
 * slow spell of a shared machine hits both, and medians are reported.
 *
 * The binary is named by CTLAB_OVSTEST (scripts/build-ovstest.sh builds it
 * and writes the commit beside it as `ovstest.commit`); without it the bench
 * says the peer is absent.
 */
import { spawnSync } from "node:child_process";
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, readSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

/** One process run: wall time from spawn to exit, CPU time and peak RSS from /usr/bin/time (NaN without it). */
export interface ProcessRun {
  wallMs: number;
  cpuMs: number;
  maxRssKb: number;
}

/** Medians over interleaved runs of one side. */
export interface SideResult {
  wallMs: number;
  cpuMs: number;
  maxRssKb: number;
  runs: number;
}

const TIME = "/usr/bin/time";
const haveTime = existsSync(TIME);

function median(a: readonly number[]): number {
  const s = [...a].sort((x, y) => x - y);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

/** Runs `cmd args` with stdout discarded; throws with its stderr when it fails. */
export function timeProcess(cmd: string, args: readonly string[]): ProcessRun {
  let dir = "";
  let argv0 = cmd;
  let argv = [...args];
  let out = "";
  if (haveTime) {
    dir = mkdtempSync(join(tmpdir(), "ctlab-peer-"));
    out = join(dir, "time");
    argv0 = TIME;
    argv = ["-f", "%U %S %M", "-o", out, cmd, ...args];
  }
  try {
    const t0 = performance.now();
    const r = spawnSync(argv0, argv, { stdio: ["ignore", "ignore", "pipe"], encoding: "utf8", maxBuffer: 16 << 20 });
    const wallMs = performance.now() - t0;
    if (r.status !== 0)
      throw new Error(`"${cmd} ${args.join(" ")}" exited ${r.status ?? r.signal}: ${(r.stderr ?? "").trim().split("\n").slice(-3).join(" / ")}`);
    if (!haveTime) return { wallMs, cpuMs: NaN, maxRssKb: NaN };
    // The last line: /usr/bin/time may put a "Command exited…" line before it.
    const last = readFileSync(out, "utf8").trim().split("\n").pop() ?? "";
    const [u, s, m] = last.split(" ").map(Number) as [number, number, number];
    return { wallMs, cpuMs: (u + s) * 1000, maxRssKb: m };
  } finally {
    if (dir !== "") rmSync(dir, { recursive: true, force: true });
  }
}

/** `runs` interleaved rounds of every side in turn (round-robin), medians per side. */
export function interleaved(runs: number, sides: ReadonlyArray<() => ProcessRun>): SideResult[] {
  const all = sides.map(() => [] as ProcessRun[]);
  for (let i = 0; i < runs; i++) sides.forEach((run, k) => (all[k] as ProcessRun[]).push(run()));
  return all.map((rs) => ({
    wallMs: median(rs.map((r) => r.wallMs)),
    cpuMs: median(rs.map((r) => r.cpuMs)),
    maxRssKb: median(rs.map((r) => r.maxRssKb)),
    runs: rs.length,
  }));
}

/** The OVS binary from CTLAB_OVSTEST and the commit it was built from (`ovstest.commit` beside it, or CTLAB_OVSTEST_COMMIT). */
export interface Peer {
  bin: string;
  commit: string;
}

/** The peer named by the environment, null when CTLAB_OVSTEST is unset; throws when it names no runnable ovstest. */
export function peerFromEnv(env: NodeJS.ProcessEnv = process.env): Peer | null {
  const bin = env.CTLAB_OVSTEST;
  if (bin === undefined || bin === "") return null;
  if (!existsSync(bin)) throw new Error(`CTLAB_OVSTEST names no file: "${bin}"`);
  const r = spawnSync(bin, ["--help"], { encoding: "utf8" });
  if (r.status !== 0 || !/test-conntrack/.test(r.stdout)) throw new Error(`CTLAB_OVSTEST is not an ovstest with test-conntrack: "${bin}"`);
  let commit = env.CTLAB_OVSTEST_COMMIT ?? "";
  const file = join(dirname(bin), "ovstest.commit");
  if (commit === "" && existsSync(file)) commit = readFileSync(file, "utf8").trim();
  return { bin, commit: commit === "" ? "unknown" : commit };
}

/**
 * Whether lib/pcap-file.c reads the file: classic pcap (either byte order,
 * µs or ns), link type Ethernet (1) or Linux cooked (113). pcapng and other
 * link types are not read by OVS.
 */
export function ovsReadable(path: string): boolean {
  const b = Buffer.alloc(24);
  const fd = openSync(path, "r");
  try {
    if (readSync(fd, b, 0, 24, 0) < 24) return false;
  } finally {
    closeSync(fd);
  }
  const le = b.readUInt32LE(0);
  if (le !== 0xa1b2c3d4 && le !== 0xa1b23c4d && le !== 0xd4c3b2a1 && le !== 0x4d3cb2a1) return false;
  const link = le === 0xa1b2c3d4 || le === 0xa1b23c4d ? b.readUInt32LE(20) : b.readUInt32BE(20);
  return link === 1 || link === 113;
}

/** The OVS side of one capture: `ovstest test-conntrack pcap FILE` (batches of 1, its default). */
export function ovsRun(peer: Peer, path: string): () => ProcessRun {
  return () => timeProcess(peer.bin, ["test-conntrack", "pcap", path]);
}

/** The ctlab side: `ctlab replay -q --no-progress [--sysctl …] [extra] FILE`, as a user runs it. */
export function ctlabRun(bin: string, path: string, sysctls: Record<string, number>, extra: readonly string[] = []): () => ProcessRun {
  const args = [bin, "replay", "-q", "--no-progress", ...Object.entries(sysctls).flatMap(([k, v]) => ["--sysctl", `${k}=${v}`]), ...extra, path];
  return () => timeProcess(process.execPath, args);
}
