/**
 * A snapshot of one network namespace's connection tracking: everything the
 * doctor reads, gathered from the live host (commands with argument arrays and
 * timeouts, /proc and /sys files) or from a folder `ctlab collect` wrote. The
 * table is streamed into a TableCensus and never held.
 *
 * The folder holds the raw outputs under the names of SOURCE_FILES, so the
 * README's plain shell commands make the same folder on a host without Node.
 */
import {
  createReadStream,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  statSync,
  writeFileSync,
  chmodSync,
  openSync,
  writeSync,
  closeSync,
} from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import type { ExecContext } from "./exec.js";
import { runCommand, streamCommand } from "./exec.js";
import type { BadLine, SlabInfo, TableFullLine } from "./parse.js";
import {
  countExpectations,
  parseConntrackStats,
  parseCount,
  parseMemTotal,
  parseModes,
  parseModules,
  parseProcNetStat,
  parseSlabinfo,
  parseSysctls,
  parseTableFull,
} from "./parse.js";
import { TableCensus } from "./table.js";

/** Something that could not be read, and what it would take. */
export interface Problem {
  /** The file or command. */
  readonly source: string;
  readonly message: string;
  /** "missing" (a tool or file), "denied" (privilege), "failed", "timeout", "bad-lines". */
  readonly kind: string;
}

/** The files of a collected snapshot and the commands that make them (README). */
export const SOURCE_FILES = {
  sysctl: "sysctl.txt",
  modes: "modes.txt",
  hashsize: "hashsize.txt",
  table: "conntrack-L.txt",
  stats: "conntrack-S.txt",
  count: "conntrack-C.txt",
  expect: "conntrack-L-expect.txt",
  procStat: "proc-net-stat-nf_conntrack.txt",
  slabinfo: "slabinfo.txt",
  modules: "modules.txt",
  meminfo: "meminfo.txt",
  kernelLog: "kernel-log.txt",
  nftJson: "nft-ruleset.json",
  iptables: "iptables-save.txt",
  ip6tables: "ip6tables-save.txt",
  firstStats: "first-conntrack-S.txt",
  firstCount: "first-conntrack-C.txt",
} as const;

export interface SnapshotMeta {
  /** "" for the namespace the tool ran in, else the namespace's name or "pid:N". */
  netns: string;
  netnsInode?: number;
  takenAtMs: number;
  /** When the first sample of an --interval run was taken. */
  firstTakenAtMs?: number;
  kernel?: string;
  ctlabVersion?: string;
}

/** The parsed snapshot: plain data, input of the pure diagnosis. */
export interface Snapshot {
  readonly meta: SnapshotMeta;
  /** Whether the namespace has connection tracking at all (the sysctls exist). */
  readonly conntrackLoaded: boolean;
  readonly sysctls: Readonly<Record<string, number>>;
  readonly hashsize?: number;
  /** File modes of nf_conntrack_max / nf_conntrack_buckets (0o444 in a child namespace). */
  readonly modes: Readonly<Record<string, number>>;
  /** conntrack -S summed over CPUs (plus /proc/net/stat's `ignore` where present). */
  readonly stats?: Readonly<Record<string, number>>;
  readonly cpus?: number;
  readonly firstStats?: Readonly<Record<string, number>>;
  readonly count?: number;
  readonly firstCount?: number;
  readonly expectations?: number;
  readonly slab?: SlabInfo;
  readonly modules?: readonly string[];
  readonly tableFull: readonly TableFullLine[];
  readonly memTotalBytes?: number;
  readonly ruleset?: { readonly format: "nft-json" | "iptables"; readonly text: string; readonly text6?: string };
  readonly table?: TableCensus;
  readonly problems: readonly Problem[];
  readonly bad: readonly BadLine[];
}

export interface SnapshotOptions {
  readonly orphanIdleSeconds?: number;
  /** Take a first sample of -S / -C, wait this many seconds, then the snapshot. */
  readonly intervalSeconds?: number;
  /** Called with each sample when collecting into a folder (collect mode). */
  readonly sink?: RawSink;
  /** Skip the table. */
  readonly withoutTable?: boolean;
  /** Only what a scrape needs: sysctls, hashsize, slabinfo, `conntrack -S` and `-C`. */
  readonly countersOnly?: boolean;
  readonly timeoutMs?: number;
}

/** Receives the raw texts (collect writes them to files). */
export interface RawSink {
  text(name: string, text: string): void;
  openLines(name: string): { line(l: string): void; close(): void };
}

/** Where raw texts come from: the live host or a folder. */
interface Source {
  readonly meta: SnapshotMeta;
  text(name: keyof typeof SOURCE_FILES): Promise<{ text?: string; problem?: Problem }>;
  lines(name: keyof typeof SOURCE_FILES, onLine: (l: string) => void): Promise<Problem | undefined>;
}

// ---------------------------------------------------------------------------
// Live sources

const NETFILTER_DIR = "/proc/sys/net/netfilter";

function readLocal(path: string, source: string): { text?: string; problem?: Problem } {
  try {
    return { text: readFileSync(path, "utf8") };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return { problem: { source, kind: "missing", message: `"${path}" does not exist` } };
    if (code === "EACCES" || code === "EPERM") return { problem: { source, kind: "denied", message: `"${path}" is not readable: run as root` } };
    return { problem: { source, kind: "failed", message: `"${path}" could not be read: ${code ?? String(e)}` } };
  }
}

function sysctlText(): { text?: string; problem?: Problem } {
  let names: string[];
  try {
    names = readdirSync(NETFILTER_DIR);
  } catch {
    return { problem: { source: NETFILTER_DIR, kind: "missing", message: `"${NETFILTER_DIR}" does not exist: nf_conntrack is not loaded` } };
  }
  const lines: string[] = [];
  for (const n of names.sort()) {
    try {
      const v = readFileSync(join(NETFILTER_DIR, n), "utf8").trim();
      lines.push(`${NETFILTER_DIR}/${n}:${v}`);
    } catch {
      // Directories (nf_log) and write-only entries are not sysctl values.
    }
  }
  return { text: lines.join("\n") + "\n" };
}

function fromOutcome(o: Awaited<ReturnType<typeof runCommand>>, source: string): { text?: string; problem?: Problem } {
  if (o.ok) return { text: o.stdout };
  return { problem: { source, kind: o.reason, message: o.message } };
}

const TABLE_FULL_RE = /table full/;

class LiveSource implements Source {
  readonly meta: SnapshotMeta;
  readonly #ctx: ExecContext;
  readonly #local: boolean;
  constructor(meta: SnapshotMeta, ctx: ExecContext) {
    this.meta = meta;
    this.#ctx = ctx;
    this.#local = ctx.netnsPath === undefined;
  }

  async #file(path: string): Promise<{ text?: string; problem?: Problem }> {
    if (this.#local) return readLocal(path, path);
    const o = await runCommand(this.#ctx, "cat", [path]);
    if (!o.ok && /No such file/.test(o.stderr)) return { problem: { source: path, kind: "missing", message: `"${path}" does not exist` } };
    return fromOutcome(o, path);
  }

  async text(name: keyof typeof SOURCE_FILES): Promise<{ text?: string; problem?: Problem }> {
    const c = this.#ctx;
    switch (name) {
      case "sysctl":
        if (this.#local) return sysctlText();
        return fromOutcome(
          await runCommand(c, "grep", ["-r", "-s", ".", `${NETFILTER_DIR}/`]).then((o) =>
            o.ok || o.stdout !== "" ? { ok: true as const, stdout: o.stdout, stderr: "" } : o,
          ),
          NETFILTER_DIR,
        );
      case "modes":
        return fromOutcome(await runCommand(c, "stat", ["-c", "%a %n", `${NETFILTER_DIR}/nf_conntrack_max`, `${NETFILTER_DIR}/nf_conntrack_buckets`]), "stat");
      case "hashsize":
        return readLocal("/sys/module/nf_conntrack/parameters/hashsize", "/sys/module/nf_conntrack/parameters/hashsize");
      case "stats":
      case "firstStats":
        return fromOutcome(await runCommand(c, "conntrack", ["-S"]), "conntrack -S");
      case "count":
      case "firstCount":
        return fromOutcome(await runCommand(c, "conntrack", ["-C"]), "conntrack -C");
      case "expect":
        return fromOutcome(await runCommand(c, "conntrack", ["-L", "expect"]), "conntrack -L expect");
      case "procStat":
        return this.#file("/proc/net/stat/nf_conntrack");
      case "slabinfo": {
        const r = readLocal("/proc/slabinfo", "/proc/slabinfo");
        // Only the conntrack caches: the rest of the kernel's slabs are none of our business.
        return r.text === undefined
          ? r
          : {
              text:
                r.text
                  .split("\n")
                  .filter((l) => l.startsWith("slabinfo") || l.startsWith("# name") || l.startsWith("nf_conntrack"))
                  .join("\n") + "\n",
            };
      }
      case "modules":
        return readLocal("/proc/modules", "/proc/modules");
      case "meminfo": {
        const r = readLocal("/proc/meminfo", "/proc/meminfo");
        return r.text === undefined
          ? r
          : {
              text:
                r.text
                  .split("\n")
                  .filter((l) => l.startsWith("MemTotal:"))
                  .join("\n") + "\n",
            };
      }
      case "kernelLog": {
        // The kernel log is global; only the table-full lines are kept.
        const d = await runCommand({ timeoutMs: 20_000 }, "dmesg", ["--time-format=iso"]);
        if (d.ok)
          return {
            text: d.stdout
              .split("\n")
              .filter((l) => TABLE_FULL_RE.test(l))
              .join("\n"),
          };
        const j = await runCommand({ timeoutMs: 20_000 }, "journalctl", ["-k", "-b", "-o", "short-iso", "--no-pager", "-q"]);
        if (j.ok)
          return {
            text: j.stdout
              .split("\n")
              .filter((l) => TABLE_FULL_RE.test(l))
              .join("\n"),
          };
        return { problem: { source: "dmesg", kind: d.reason, message: `${d.message}; journalctl: ${j.message}` } };
      }
      case "nftJson":
        return fromOutcome(await runCommand(c, "nft", ["-j", "list", "ruleset"]), "nft -j list ruleset");
      case "iptables":
        return fromOutcome(await runCommand(c, "iptables-save", []), "iptables-save");
      case "ip6tables":
        return fromOutcome(await runCommand(c, "ip6tables-save", []), "ip6tables-save");
      case "table":
        throw new Error("The table is streamed: use lines()");
    }
  }

  async lines(_name: keyof typeof SOURCE_FILES, onLine: (l: string) => void): Promise<Problem | undefined> {
    const o = await streamCommand({ ...this.#ctx, timeoutMs: this.#ctx.timeoutMs ?? 300_000 }, "conntrack", ["-L", "-o", "extended"], onLine);
    if (o.ok) return undefined;
    return { source: "conntrack -L -o extended", kind: o.reason, message: o.message };
  }
}

// ---------------------------------------------------------------------------
// Folder sources

class DirSource implements Source {
  readonly meta: SnapshotMeta;
  readonly #dir: string;
  constructor(dir: string, meta: SnapshotMeta) {
    this.#dir = dir;
    this.meta = meta;
  }
  // async without an await: the source interface is asynchronous (the live source awaits), a folder reads at once.
  // eslint-disable-next-line @typescript-eslint/require-await
  async text(name: keyof typeof SOURCE_FILES): Promise<{ text?: string; problem?: Problem }> {
    const f = join(this.#dir, SOURCE_FILES[name]);
    const r = readLocal(f, SOURCE_FILES[name]);
    if (r.problem?.kind === "missing") return { problem: { ...r.problem, message: `"${SOURCE_FILES[name]}" is not in the snapshot` } };
    return r;
  }
  lines(name: keyof typeof SOURCE_FILES, onLine: (l: string) => void): Promise<Problem | undefined> {
    const f = join(this.#dir, SOURCE_FILES[name]);
    if (!existsSync(f)) return Promise.resolve({ source: SOURCE_FILES[name], kind: "missing", message: `"${SOURCE_FILES[name]}" is not in the snapshot` });
    return new Promise((resolve) => {
      const input = createReadStream(f, { encoding: "utf8" });
      let problem: Problem | undefined;
      input.on(
        "error",
        (e) =>
          (problem = { source: SOURCE_FILES[name], kind: "failed", message: `"${f}" could not be read: ${(e as NodeJS.ErrnoException).code ?? String(e)}` }),
      );
      const rl = createInterface({ input, crlfDelay: Infinity });
      rl.on("line", onLine);
      rl.on("close", () => resolve(problem));
    });
  }
}

/** Typed errors for namespaces and folders (the CLI turns them into one line). */
export class HostError extends Error {
  override readonly name = "HostError";
}

export function readMeta(dir: string): SnapshotMeta {
  const f = join(dir, "meta.json");
  let raw: string;
  try {
    raw = readFileSync(f, "utf8");
  } catch (e) {
    throw new HostError(`Not a snapshot folder: "${f}" cannot be read: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  try {
    const m = JSON.parse(raw) as Partial<SnapshotMeta>;
    if (typeof m.takenAtMs !== "number") throw new Error("takenAtMs is not a number");
    return {
      netns: typeof m.netns === "string" ? m.netns : "",
      takenAtMs: m.takenAtMs,
      ...(typeof m.netnsInode === "number" ? { netnsInode: m.netnsInode } : {}),
      ...(typeof m.firstTakenAtMs === "number" ? { firstTakenAtMs: m.firstTakenAtMs } : {}),
      ...(typeof m.kernel === "string" ? { kernel: m.kernel } : {}),
    };
  } catch (e) {
    throw new HostError(`Bad snapshot metadata in "${f}": ${(e as Error).message}`);
  }
}

/** Folders of a collected snapshot: DIR itself, or one per namespace below it (collect --all-netns). */
export function snapshotFolders(dir: string): string[] {
  if (existsSync(join(dir, "meta.json"))) return [dir];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (e) {
    throw new HostError(`Cannot read the snapshot folder "${dir}": ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  const subs = names
    .sort()
    .map((n) => join(dir, n))
    .filter((d) => existsSync(join(d, "meta.json")));
  if (subs.length === 0) throw new HostError(`Not a snapshot folder: "${dir}" has no meta.json (made by "ctlab collect")`);
  return subs;
}

// ---------------------------------------------------------------------------
// Namespaces

export interface NetnsTarget {
  /** "" = the current namespace; a name of /run/netns; or "pid:N (comm)". */
  readonly label: string;
  readonly path?: string;
  readonly inode: number;
}

function inodeOf(path: string): number {
  return statSync(path).ino;
}

export function currentNetns(): NetnsTarget {
  let inode = 0;
  try {
    inode = inodeOf("/proc/self/ns/net");
  } catch {
    // Not Linux, or /proc not mounted: the label still works.
  }
  return { label: "", inode };
}

/** A named namespace (`ip netns add NAME`), or a clear error. */
export function namedNetns(name: string): NetnsTarget {
  if (!/^[A-Za-z0-9_.-]+$/.test(name) || name === "." || name === "..")
    throw new HostError(`Bad namespace name "${name}": letters, digits, ".", "_" and "-" only`);
  const path = `/run/netns/${name}`;
  try {
    return { label: name, path, inode: inodeOf(path) };
  } catch {
    throw new HostError(`Network namespace "${name}" does not exist: "${path}" is missing (see "ip netns list")`);
  }
}

/**
 * Every namespace on the host: the current one, the named ones, and those of
 * running processes (/proc/PID/ns/net), deduplicated by inode.
 */
export function allNetns(): NetnsTarget[] {
  const out: NetnsTarget[] = [];
  const seen = new Set<number>();
  const cur = currentNetns();
  out.push(cur);
  seen.add(cur.inode);
  let named: string[] = [];
  try {
    named = readdirSync("/run/netns").sort();
  } catch {
    // No named namespaces.
  }
  for (const n of named) {
    try {
      const t = namedNetns(n);
      if (seen.has(t.inode)) continue;
      seen.add(t.inode);
      out.push(t);
    } catch {
      // A stale mount point: not a namespace any more.
    }
  }
  let pids: string[] = [];
  try {
    pids = readdirSync("/proc")
      .filter((p) => /^\d+$/.test(p))
      .sort((a, b) => Number(a) - Number(b));
  } catch {
    // No /proc.
  }
  for (const pid of pids) {
    const path = `/proc/${pid}/ns/net`;
    try {
      const ino = inodeOf(path);
      if (seen.has(ino)) continue;
      seen.add(ino);
      let comm = "";
      try {
        comm = readFileSync(`/proc/${pid}/comm`, "utf8").trim();
      } catch {
        // The process may have exited.
      }
      out.push({ label: `pid:${pid}${comm ? ` (${comm})` : ""}`, path, inode: ino });
    } catch {
      // Exited, or a kernel thread we may not inspect.
    }
  }
  return out;
}

function kernelRelease(): string | undefined {
  try {
    return readFileSync("/proc/sys/kernel/osrelease", "utf8").trim();
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------
// Taking a snapshot

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export function liveSource(target: NetnsTarget, timeoutMs?: number): Source {
  const ctx: ExecContext = { ...(target.path !== undefined ? { netnsPath: target.path } : {}), ...(timeoutMs !== undefined ? { timeoutMs } : {}) };
  const meta: SnapshotMeta = {
    netns: target.label,
    netnsInode: target.inode,
    takenAtMs: Date.now(),
    ...(kernelRelease() !== undefined ? { kernel: kernelRelease() as string } : {}),
  };
  return new LiveSource(meta, ctx);
}

export function dirSource(dir: string): Source {
  return new DirSource(dir, readMeta(dir));
}

/** Reads everything from a source into a Snapshot (streaming the table). */
export async function takeSnapshot(src: Source, opts: SnapshotOptions = {}): Promise<Snapshot> {
  const problems: Problem[] = [];
  const bad: BadLine[] = [];
  const sink = opts.sink;
  const live = src instanceof LiveSource;
  const get = async (name: keyof typeof SOURCE_FILES, optional = false): Promise<string | undefined> => {
    const r = await src.text(name);
    if (r.problem !== undefined) {
      if (!optional) problems.push(r.problem);
      return undefined;
    }
    sink?.text(SOURCE_FILES[name], r.text ?? "");
    return r.text;
  };
  const meta: SnapshotMeta = { ...src.meta };
  let firstStats: Record<string, number> | undefined;
  let firstCount: number | undefined;
  if (live && opts.intervalSeconds !== undefined && opts.intervalSeconds > 0) {
    meta.firstTakenAtMs = Date.now();
    const s = await get("firstStats");
    const c = await get("firstCount");
    if (s !== undefined) firstStats = parseConntrackStats(s).total;
    if (c !== undefined) firstCount = parseCount(c, "conntrack -C").value;
    await sleep(opts.intervalSeconds * 1000);
    meta.takenAtMs = Date.now();
  } else if (!live) {
    const s = await get("firstStats", true);
    const c = await get("firstCount", true);
    if (s !== undefined) firstStats = parseConntrackStats(s, SOURCE_FILES.firstStats).total;
    if (c !== undefined) firstCount = parseCount(c, SOURCE_FILES.firstCount).value;
  }
  sink?.text("meta.json", JSON.stringify(meta, null, 2) + "\n");

  const sysText = await get("sysctl");
  const sys = sysText === undefined ? { values: {}, bad: [] } : parseSysctls(sysText, SOURCE_FILES.sysctl);
  bad.push(...sys.bad);
  const conntrackLoaded = sysText !== undefined && sys.values["nf_conntrack_max"] !== undefined;
  const modesText = conntrackLoaded && opts.countersOnly !== true ? await get("modes", true) : undefined;
  const hashText = await get("hashsize", !conntrackLoaded);
  const hashsize = hashText === undefined ? undefined : parseCount(hashText, SOURCE_FILES.hashsize);
  if (hashsize !== undefined) bad.push(...hashsize.bad);
  const slabText = await get("slabinfo");
  const slab = slabText === undefined ? { bad: [] } : parseSlabinfo(slabText, SOURCE_FILES.slabinfo);
  bad.push(...slab.bad);
  const light = opts.countersOnly === true;
  const modText = light ? undefined : await get("modules", true);
  const memText = light ? undefined : await get("meminfo");
  const logText = light ? undefined : await get("kernelLog");

  let stats: Record<string, number> | undefined;
  let cpus: number | undefined;
  let count: number | undefined;
  let expectations: number | undefined;
  let table: TableCensus | undefined;
  let ruleset: Snapshot["ruleset"];
  if (conntrackLoaded) {
    const sText = await get("stats");
    if (sText !== undefined) {
      const p = parseConntrackStats(sText, SOURCE_FILES.stats);
      bad.push(...p.bad);
      stats = p.total;
      cpus = p.cpus;
    }
    const pText = await get("procStat", true);
    if (pText !== undefined) {
      const p = parseProcNetStat(pText, SOURCE_FILES.procStat);
      bad.push(...p.bad);
      // `ignore` is only in /proc/net/stat; conntrack -S stopped printing it.
      if (p.total["ignore"] !== undefined) stats = { ...(stats ?? {}), ignore: stats?.["ignore"] ?? p.total["ignore"] };
    }
    const cText = await get("count");
    if (cText !== undefined) {
      const p = parseCount(cText, SOURCE_FILES.count);
      bad.push(...p.bad);
      count = p.value;
    }
    const eText = light ? undefined : await get("expect", true);
    if (eText !== undefined) expectations = countExpectations(eText);
    if (opts.withoutTable !== true && !light) {
      table = new TableCensus({
        sysctls: sys.values,
        source: SOURCE_FILES.table,
        ...(opts.orphanIdleSeconds !== undefined ? { orphanIdleSeconds: opts.orphanIdleSeconds } : {}),
      });
      const out = sink?.openLines(SOURCE_FILES.table);
      const t = table;
      const problem = await src.lines("table", (l) => {
        out?.line(l);
        t.line(l);
      });
      out?.close();
      if (problem !== undefined) {
        problems.push(problem);
        if (t.total === 0) table = undefined;
      }
      if (t.badCount > 0) {
        bad.push(...t.bad);
        problems.push({
          source: SOURCE_FILES.table,
          kind: "bad-lines",
          message: `${t.badCount} line(s) of the table could not be read (first: line ${t.bad[0]?.line ?? 0}): the rest is reported`,
        });
      }
    }
    const nft = light ? undefined : await get("nftJson", true);
    if (light) {
      // No ruleset for a scrape.
    } else if (nft !== undefined && nft.trim() !== "") ruleset = { format: "nft-json", text: nft };
    else {
      const v4 = await get("iptables", true);
      const v6 = await get("ip6tables", true);
      if (v4 !== undefined && v4.trim() !== "") ruleset = { format: "iptables", text: v4, ...(v6 !== undefined && v6.trim() !== "" ? { text6: v6 } : {}) };
      else if (live && nft === undefined && v4 === undefined)
        problems.push({
          source: "ruleset",
          kind: "missing",
          message: '"nft -j list ruleset" and "iptables-save" both failed: install nftables or iptables (and run as root) to see why traffic is tracked',
        });
    }
  }
  const memTotalBytes = memText === undefined ? undefined : parseMemTotal(memText);
  return {
    meta,
    conntrackLoaded,
    sysctls: sys.values,
    ...(hashsize?.value !== undefined ? { hashsize: hashsize.value } : {}),
    modes: modesText === undefined ? {} : parseModes(modesText),
    ...(stats !== undefined ? { stats } : {}),
    ...(cpus !== undefined ? { cpus } : {}),
    ...(firstStats !== undefined ? { firstStats } : {}),
    ...(count !== undefined ? { count } : {}),
    ...(firstCount !== undefined ? { firstCount } : {}),
    ...(expectations !== undefined ? { expectations } : {}),
    ...(slab.slab !== undefined ? { slab: slab.slab } : {}),
    ...(modText !== undefined ? { modules: parseModules(modText) } : {}),
    tableFull: logText === undefined ? [] : parseTableFull(logText),
    ...(memTotalBytes !== undefined ? { memTotalBytes } : {}),
    ...(ruleset !== undefined ? { ruleset } : {}),
    ...(table !== undefined ? { table } : {}),
    problems,
    bad,
  };
}

// ---------------------------------------------------------------------------
// Collect into a folder (files readable by root only: they hold addresses)

export class DirSink implements RawSink {
  readonly dir: string;
  readonly written: string[] = [];
  constructor(dir: string) {
    this.dir = dir;
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      chmodSync(dir, 0o700);
    } catch (e) {
      throw new HostError(`Cannot create the folder "${dir}": ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
    }
  }
  text(name: string, text: string): void {
    const f = join(this.dir, name);
    writeFileSync(f, text, { mode: 0o600 });
    chmodSync(f, 0o600);
    this.written.push(name);
  }
  openLines(name: string): { line(l: string): void; close(): void } {
    const f = join(this.dir, name);
    const fd = openSync(f, "w", 0o600);
    chmodSync(f, 0o600);
    this.written.push(name);
    let buf: string[] = [];
    let size = 0;
    const flush = (): void => {
      if (buf.length === 0) return;
      writeSync(fd, buf.join("\n") + "\n");
      buf = [];
      size = 0;
    };
    return {
      line(l: string): void {
        buf.push(l);
        size += l.length + 1;
        if (size > 65536) flush();
      },
      close(): void {
        flush();
        closeSync(fd);
      },
    };
  }
}

/** Is this path a link into /proc (a process's namespace)? Exposed for the tests. */
export function isProcNs(path: string): boolean {
  try {
    return path.startsWith("/proc/") && readlinkSync(path).startsWith("net:[");
  } catch {
    return false;
  }
}
