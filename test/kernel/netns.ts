/**
 * Network-namespace plumbing for the kernel-comparison tests.
 *
 * Topology (one per run, names unique to the process so parallel test files and
 * crashed runs never collide):
 *
 *   [inj ns] inj0 ══veth══ r0 [router ns: forwarding, conntrack] sink0 ══veth══ sinkpeer [inj ns]
 *
 * Every forwarded packet leaves through sink0 towards a permanent neighbour, so
 * it always reaches POSTROUTING and its conntrack entry gets confirmed; no
 * ARP/ND is ever needed. Conntrack is switched on in the router namespace by an
 * nft table whose prerouting chain counts packets per `ct state`.
 *
 * Everything here shells out with argument arrays (never a shell string), and
 * every namespace is deleted in a finally block by the caller-facing helpers.
 */
import { execFile, spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { promisify } from "node:util";

const execFileP = promisify(execFile);

/** Namespace names start with this, then the creating pid, so leftovers can be attributed. */
export const NS_PREFIX = "ctlabk-";

/** Receive buffer of the router's conntrack event listener, bytes. */
export const EVENT_RCVBUF = 32 * 1024 * 1024;

/** Address given to r0: never used by scenarios or (as far as the corpus goes) by captures. */
export const ROUTER_V4 = "192.0.2.254";
/** Next hop behind sink0; it only exists as a permanent neighbour entry. */
const SINK_GW_V4 = "192.0.2.1";
const SINK_GW_V6 = "fe80::1";
const SINK_GW_MAC = "02:00:00:00:00:01";

export interface RunOptions {
  /** Run inside this network namespace (via `ip netns exec`). */
  ns?: string;
  timeoutMs?: number;
  /** Do not throw on a non-zero exit status. */
  allowFail?: boolean;
}

export interface RunResult {
  stdout: string;
  stderr: string;
  code: number;
}

/** Runs a command (optionally inside a namespace) and returns its output. */
export async function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const argv = opts.ns === undefined ? [cmd, ...args] : ["ip", "netns", "exec", opts.ns, cmd, ...args];
  const [file, ...rest] = argv as [string, ...string[]];
  try {
    const { stdout, stderr } = await execFileP(file, rest, {
      timeout: opts.timeoutMs ?? 60_000,
      maxBuffer: 512 * 1024 * 1024,
      encoding: "utf8",
    });
    return { stdout, stderr, code: 0 };
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stdout?: string; stderr?: string; code?: number | string };
    const code = typeof e.code === "number" ? e.code : -1;
    if (opts.allowFail === true) return { stdout: e.stdout ?? "", stderr: e.stderr ?? "", code };
    throw new Error(`Command failed: "${argv.join(" ")}": exit ${String(e.code)}: ${(e.stderr ?? e.message).trim()}`);
  }
}

/** Sets sysctls inside a namespace (`sysctl -qw k=v ...`). */
export async function setSysctls(ns: string, values: Readonly<Record<string, string | number>>): Promise<void> {
  const args = Object.entries(values).map(([k, v]) => `${k}=${String(v)}`);
  if (args.length === 0) return;
  await run("sysctl", ["-qw", ...args], { ns });
}

/** Reads one sysctl inside a namespace. */
export async function getSysctl(ns: string, key: string): Promise<string> {
  return (await run("sysctl", ["-n", key], { ns })).stdout.trim();
}

// ---------------------------------------------------------------------------
// Environment checks

export interface Availability {
  ok: boolean;
  reason: string;
}

let availability: Availability | undefined;

/** Whether this machine can run the kernel tests (root, `ip netns`, the tools). Cached. */
export function kernelAvailability(): Availability {
  if (availability !== undefined) return availability;
  availability = probe();
  return availability;
}

function probe(): Availability {
  if (process.platform !== "linux") return { ok: false, reason: `not Linux: "${process.platform}"` };
  if (typeof process.getuid === "function" && process.getuid() !== 0) {
    return { ok: false, reason: `not root: uid "${String(process.getuid())}"` };
  }
  for (const [tool, args] of [
    ["ip", ["netns", "list"]],
    ["nft", ["--version"]],
    ["conntrack", ["--version"]],
    ["tcpreplay", ["--version"]],
    ["taskset", ["--version"]],
    ["stdbuf", ["--version"]],
    ["chrt", ["--version"]],
  ] as const) {
    const r = spawnSync(tool, args, { encoding: "utf8", timeout: 10_000 });
    if (r.error !== undefined || r.status !== 0) {
      const why = r.error?.message ?? (r.stderr || `exit ${String(r.status)}`);
      return { ok: false, reason: `"${tool} ${args.join(" ")}" does not work: ${why.trim()}` };
    }
  }
  return { ok: true, reason: "" };
}

/**
 * Decides whether a kernel test runs. Returns the reason to skip, or undefined
 * to run. Outside CI a missing environment skips with a loud banner; under CI
 * (`CI` set) it throws, because CI machines are supposed to be able to do this.
 */
export function kernelSkipReason(): string | undefined {
  const a = kernelAvailability();
  if (a.ok) return undefined;
  if (process.env["CI"] !== undefined && process.env["CI"] !== "") {
    throw new Error(`Kernel tests cannot run under CI: ${a.reason}`);
  }
  process.stderr.write(`\n${"!".repeat(72)}\n!!! KERNEL TESTS SKIPPED: ${a.reason}\n${"!".repeat(72)}\n\n`);
  return a.reason;
}

// ---------------------------------------------------------------------------
// Global lock: nf_conntrack_max and the hash size are global, and concurrent
// injections compete for the same CPU backlog, so every kernel run in every
// test process takes this lock.

const LOCK_DIR = "/tmp/ctlab-kernel.lock";

function lockOwnerAlive(): boolean {
  try {
    const pid = Number(readFileSync(`${LOCK_DIR}/pid`, "utf8").trim());
    if (!Number.isInteger(pid) || pid <= 0) return false;
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM means the process exists but belongs to someone else.
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

let lockDepth = 0;

/** Runs `fn` holding the cross-process kernel lock (re-entrant within a process). */
export async function withKernelLock<T>(fn: () => Promise<T>, waitMs = 15 * 60_000): Promise<T> {
  if (lockDepth > 0) {
    lockDepth++;
    try {
      return await fn();
    } finally {
      lockDepth--;
    }
  }
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      mkdirSync(LOCK_DIR);
      writeFileSync(`${LOCK_DIR}/pid`, String(process.pid));
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      // A lock whose owner died (or that was created but never got its pid file
      // within a moment) is stale.
      if (!lockOwnerAlive()) {
        await sleep(200);
        if (!lockOwnerAlive()) rmSync(LOCK_DIR, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`Timed out waiting for the kernel lock: "${LOCK_DIR}"`);
      await sleep(100);
    }
  }
  lockDepth = 1;
  try {
    return await fn();
  } finally {
    lockDepth = 0;
    rmSync(LOCK_DIR, { recursive: true, force: true });
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---------------------------------------------------------------------------
// Global conntrack limits

const MAX_PATH = "/proc/sys/net/netfilter/nf_conntrack_max";
const HASHSIZE_PATH = "/sys/module/nf_conntrack/parameters/hashsize";

export interface GlobalLimits {
  max: number;
  hashsize: number;
}

export function readGlobalLimits(): GlobalLimits {
  return {
    max: Number(readFileSync(MAX_PATH, "utf8").trim()),
    hashsize: Number(readFileSync(HASHSIZE_PATH, "utf8").trim()),
  };
}

function writeGlobalLimits(l: GlobalLimits): void {
  // Shrink the hash first and grow max last so the table never holds more than
  // a sane ratio; order does not matter for correctness, only for tidiness.
  writeFileSync(HASHSIZE_PATH, String(l.hashsize));
  writeFileSync(MAX_PATH, String(l.max));
}

/**
 * Temporarily changes the GLOBAL `nf_conntrack_max` and hash size (they can
 * only be written from the initial namespace) and restores them afterwards,
 * whatever happens. Holds the kernel lock throughout.
 */
export async function withGlobalLimits<T>(limits: GlobalLimits, fn: () => Promise<T>): Promise<T> {
  return withKernelLock(async () => {
    const saved = readGlobalLimits();
    // A process that dies without unwinding (an uncaught error, EPIPE on a closed stdout, process.exit) still puts them back.
    const restore = (): void => writeGlobalLimits(saved);
    process.once("exit", restore);
    try {
      writeGlobalLimits(limits);
      const now = readGlobalLimits();
      if (now.max !== limits.max) {
        throw new Error(`Global limits did not take: wanted max "${limits.max}", got "${now.max}"`);
      }
      return await fn();
    } finally {
      process.removeListener("exit", restore);
      writeGlobalLimits(saved);
    }
  });
}

// ---------------------------------------------------------------------------
// Topology

export interface Topology {
  /** Unique run id (part of every name). */
  id: string;
  /** Namespace holding inj0 (and sinkpeer). */
  injNs: string;
  /** Namespace holding r0 and sink0; conntrack runs here. */
  rtNs: string;
  /** r0's MAC address: the destination MAC of every injected frame. */
  r0Mac: string;
}

export interface TopologyOptions {
  /** Extra sysctls for the router namespace; a bare name means net.netfilter.<name>. */
  sysctls?: Readonly<Record<string, string | number>>;
  /** Extra nft ruleset text loaded after the counting table. */
  extraRuleset?: string;
  /** Prefix of the namespace names (default NS_PREFIX), for tests that want their own. */
  prefix?: string;
}

/** The nft table that enables conntrack and counts every packet by ct state. */
export const CT_STATES = ["new", "established", "related", "invalid", "untracked"] as const;
export type CtStateName = (typeof CT_STATES)[number];

/** Per-group counting chains; see `countingRuleset`. */
export interface CounterGroup {
  /** Chain name suffix (letters, digits, underscore). */
  name: string;
  /** IPv4 prefixes whose packets (by source address) are counted in this group. */
  v4: readonly string[];
  /** IPv6 prefixes, likewise. */
  v6: readonly string[];
}

/**
 * The ruleset: a netdev ingress counter on r0 (every frame that arrived,
 * before defragmentation), a prerouting chain counting each `ct state`
 * (optionally also per group of source prefixes, so a batch of scenarios can
 * be split), and a postrouting counter (packets that went on to be confirmed).
 */
export function countingRuleset(groups: readonly CounterGroup[] = []): string {
  const lines: string[] = [];
  lines.push("table netdev ctlab_ingress {");
  lines.push('  chain ingress { type filter hook ingress device "r0" priority 0; policy accept; counter; }');
  lines.push("}");
  lines.push("table inet ctlab {");
  for (const g of groups) {
    lines.push(`  chain g_${g.name} {`);
    for (const s of CT_STATES) lines.push(`    ct state ${s} counter comment "${g.name}:${s}"`);
    lines.push("  }");
  }
  lines.push("  chain pre {");
  lines.push("    type filter hook prerouting priority 0; policy accept;");
  for (const s of CT_STATES) lines.push(`    ct state ${s} counter comment "all:${s}"`);
  for (const g of groups) {
    for (const p of g.v4) lines.push(`    ip saddr ${p} jump g_${g.name}`);
    for (const p of g.v6) lines.push(`    ip6 saddr ${p} jump g_${g.name}`);
  }
  lines.push("  }");
  lines.push("  chain post {");
  lines.push("    type filter hook postrouting priority 0; policy accept;");
  lines.push('    iifname "r0" counter comment "post"');
  lines.push("  }");
  lines.push("}");
  return lines.join("\n") + "\n";
}

export interface NftCounters {
  ingress: number;
  post: number;
  /** Totals per ct state. */
  all: Record<CtStateName, number>;
  /** Per group name, per ct state. */
  groups: Map<string, Record<CtStateName, number>>;
}

export function zeroStates(): Record<CtStateName, number> {
  return { new: 0, established: 0, related: 0, invalid: 0, untracked: 0 };
}

/** Reads the counters of `countingRuleset` from `nft -j list ruleset`. */
export async function readNftCounters(ns: string): Promise<NftCounters> {
  const out = (await run("nft", ["-j", "list", "ruleset"], { ns })).stdout;
  const json = JSON.parse(out) as { nftables: Array<Record<string, unknown>> };
  const res: NftCounters = { ingress: 0, post: 0, all: zeroStates(), groups: new Map() };
  for (const item of json.nftables) {
    const rule = item["rule"] as { table: string; chain: string; comment?: string; expr: Array<Record<string, unknown>> } | undefined;
    if (rule === undefined) continue;
    const counter = rule.expr.find((e) => "counter" in e)?.["counter"] as { packets: number } | undefined;
    if (counter === undefined) continue;
    if (rule.table === "ctlab_ingress") {
      res.ingress += counter.packets;
      continue;
    }
    if (rule.table !== "ctlab" || rule.comment === undefined) continue;
    const [group, state] = rule.comment.split(":") as [string, string | undefined];
    if (group === "post") {
      res.post += counter.packets;
    } else if (state !== undefined && (CT_STATES as readonly string[]).includes(state)) {
      const target = group === "all" ? res.all : getOrInit(res.groups, group);
      target[state as CtStateName] += counter.packets;
    }
  }
  return res;
}

function getOrInit(m: Map<string, Record<CtStateName, number>>, k: string): Record<CtStateName, number> {
  let v = m.get(k);
  if (v === undefined) {
    v = zeroStates();
    m.set(k, v);
  }
  return v;
}

let seq = 0;

/** Creates the topology. Prefer `withTopology`, which always tears it down. */
export async function createTopology(opts: TopologyOptions = {}): Promise<Topology> {
  const id = `${process.pid}-${Date.now().toString(36)}-${seq++}`;
  const prefix = opts.prefix ?? NS_PREFIX;
  const t: Topology = { id, injNs: `${prefix}${id}-i`, rtNs: `${prefix}${id}-r`, r0Mac: "" };
  try {
    await run("ip", ["netns", "add", t.injNs]);
    await run("ip", ["netns", "add", t.rtNs]);
    const I = t.injNs;
    const R = t.rtNs;
    await run("ip", ["link", "add", "inj0", "netns", I, "type", "veth", "peer", "name", "r0", "netns", R]);
    await run("ip", ["link", "add", "sinkpeer", "netns", I, "type", "veth", "peer", "name", "sink0", "netns", R]);
    // Before any interface comes up: the injector must not emit its own router
    // solicitations / DAD / MLD, which would show up as extra flows.
    await setSysctls(I, {
      "net.ipv6.conf.all.disable_ipv6": 1,
      "net.ipv6.conf.default.disable_ipv6": 1,
      "net.ipv6.conf.inj0.disable_ipv6": 1,
      "net.ipv6.conf.sinkpeer.disable_ipv6": 1,
    });
    await setSysctls(R, {
      "net.ipv4.ip_forward": 1,
      "net.ipv6.conf.all.forwarding": 1,
      "net.ipv4.conf.all.rp_filter": 0,
      "net.ipv4.conf.default.rp_filter": 0,
      "net.ipv4.conf.r0.rp_filter": 0,
      "net.ipv4.conf.sink0.rp_filter": 0,
      "net.ipv4.conf.all.send_redirects": 0,
      "net.ipv4.conf.default.send_redirects": 0,
      "net.ipv4.conf.r0.send_redirects": 0,
      "net.ipv4.conf.r0.accept_local": 1,
      "net.ipv4.conf.r0.route_localnet": 1,
      // The router must never answer on its own (ICMP errors would be extra
      // tracked packets): no IPv6 autoconf/DAD noise on the injection side.
      "net.ipv6.conf.r0.accept_dad": 0,
      "net.ipv6.conf.sink0.accept_dad": 0,
      "net.ipv6.conf.r0.accept_ra": 0,
      "net.ipv6.conf.sink0.accept_ra": 0,
    });
    for (const [ns, dev] of [
      [I, "inj0"],
      [I, "sinkpeer"],
      [R, "r0"],
      [R, "sink0"],
    ] as const) {
      await run("ip", ["-n", ns, "link", "set", dev, "mtu", "65535", "up"]);
    }
    await run("ip", ["-n", I, "link", "set", "lo", "up"]);
    await run("ip", ["-n", R, "link", "set", "lo", "up"]);
    await run("ip", ["-n", R, "addr", "add", `${ROUTER_V4}/32`, "dev", "r0"]);
    await run("ip", ["-n", R, "route", "add", "default", "via", SINK_GW_V4, "dev", "sink0", "onlink"]);
    await run("ip", ["-n", R, "neigh", "add", SINK_GW_V4, "lladdr", SINK_GW_MAC, "dev", "sink0", "nud", "permanent"]);
    await run("ip", ["-n", R, "-6", "route", "add", "default", "via", SINK_GW_V6, "dev", "sink0"]);
    await run("ip", ["-n", R, "-6", "neigh", "add", SINK_GW_V6, "lladdr", SINK_GW_MAC, "dev", "sink0", "nud", "permanent"]);
    const extra: Record<string, string | number> = {};
    for (const [k, v] of Object.entries(opts.sysctls ?? {})) extra[k.includes(".") ? k : `net.netfilter.${k}`] = v;
    await setSysctls(R, {
      // Captures carry offloaded (wrong) checksums; ctlab runs with the same setting.
      "net.netfilter.nf_conntrack_checksum": 0,
      // Per-netns socket buffer defaults: the event listener's netlink socket gets 32 MiB
      // (conntrack-tools 1.4.7's --buffer-size does not reach its event socket), so a burst
      // of events does not overrun it.
      "net.core.rmem_max": EVENT_RCVBUF,
      "net.core.rmem_default": EVENT_RCVBUF,
      ...extra,
    });
    t.r0Mac = (await run("cat", ["/sys/class/net/r0/address"], { ns: R })).stdout.trim();
    return t;
  } catch (e) {
    await destroyTopology(t);
    throw e;
  }
}

/** Loads ruleset text into the router namespace (`nft -f -` with the text on stdin). */
// async without an await: like the other topology steps, a failure is a rejected promise.
// eslint-disable-next-line @typescript-eslint/require-await
export async function loadRuleset(t: Topology, text: string): Promise<void> {
  const r = spawnSync("ip", ["netns", "exec", t.rtNs, "nft", "-f", "-"], { input: text, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`Loading the nft ruleset failed: ${(r.stderr || r.error?.message || "").trim()}`);
}

/** Flushes every ruleset in the router namespace (conntrack hooks go with it). */
export async function flushRuleset(t: Topology): Promise<void> {
  await run("nft", ["flush", "ruleset"], { ns: t.rtNs });
}

/** Kills every process still running in a namespace, then deletes it. Never throws. */
async function deleteNs(name: string): Promise<void> {
  const pids = await run("ip", ["netns", "pids", name], { allowFail: true });
  for (const p of pids.stdout.split(/\s+/).filter(Boolean)) {
    try {
      process.kill(Number(p), "SIGKILL");
    } catch {
      // Already gone.
    }
  }
  await run("ip", ["netns", "del", name], { allowFail: true });
}

export async function destroyTopology(t: Topology): Promise<void> {
  // Deleting a namespace destroys its veth ends, and their peers with them.
  await deleteNs(t.injNs);
  await deleteNs(t.rtNs);
}

/**
 * Deletes namespaces left behind by crashed runs: those with our prefix whose
 * creating process (the pid in the name) is gone. Namespaces of live test
 * processes running in parallel are left alone.
 */
export async function cleanLeftovers(): Promise<string[]> {
  const out = await run("ip", ["netns", "list"], { allowFail: true });
  const removed: string[] = [];
  for (const line of out.stdout.split("\n")) {
    const name = line.split(/\s+/)[0] ?? "";
    if (!name.startsWith(NS_PREFIX)) continue;
    const pid = Number(name.slice(NS_PREFIX.length).split("-")[0]);
    let alive = false;
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid) {
      try {
        process.kill(pid, 0);
        alive = true;
      } catch (e) {
        alive = (e as NodeJS.ErrnoException).code === "EPERM";
      }
    }
    if (alive) continue;
    if (pid === process.pid) continue;
    await deleteNs(name);
    removed.push(name);
  }
  return removed;
}

/** Creates a topology, runs `fn`, and always destroys it. */
export async function withTopology<T>(fn: (t: Topology) => Promise<T>, opts: TopologyOptions = {}): Promise<T> {
  await cleanLeftovers();
  const t = await createTopology(opts);
  try {
    return await fn(t);
  } finally {
    await destroyTopology(t);
  }
}
