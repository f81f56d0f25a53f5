/**
 * Parsers for what a Linux host tells about connection tracking: the table as
 * `conntrack -L [-o extended]` or /proc/net/nf_conntrack prints it, `conntrack
 * -S` (per CPU), `-C`, /proc/net/stat/nf_conntrack, sysctl files, slabinfo,
 * /proc/modules, /proc/meminfo and kernel log lines about a full table.
 *
 * Every parser is total: a line it cannot read is returned as a `BadLine`
 * (line number, reason, the text cut short) and the rest is still parsed.
 * The table parser fills one reused `CtEntry` per line (no allocation per entry
 * beyond the strings the line already is), so a million entries stream through
 * in constant memory.
 */

/** A line a parser could not read. */
export interface BadLine {
  /** The source (file name or command). */
  readonly source: string;
  /** 1-based line number. */
  readonly line: number;
  readonly reason: string;
  /** The line, cut at 200 characters. */
  readonly text: string;
}

export function badLine(source: string, line: number, reason: string, text: string): BadLine {
  return { source, line, reason, text: text.length > 200 ? `${text.slice(0, 200)}…` : text };
}

/** One table entry, as `conntrack -L -o extended` or /proc/net/nf_conntrack shows it. Reused per line. */
export class CtEntry {
  family: 4 | 6 = 4;
  proto = "";
  protonum = 0;
  /** Seconds until the entry expires. */
  timeout = 0;
  /** Protocol state (tcp, sctp, dccp); "" for protocols without one. */
  state = "";
  src = "";
  dst = "";
  /** -1 when the protocol has no ports. */
  sport = -1;
  dport = -1;
  rsrc = "";
  rdst = "";
  rsport = -1;
  rdport = -1;
  unreplied = false;
  assured = false;
  offload = false;
  mark = 0;
  zone = 0;
  /** Seconds since the entry was created (nf_conntrack_timestamp=1), else -1. */
  deltaTime = -1;
  /** Per-direction counters (nf_conntrack_acct=1), else -1. */
  packetsOrig = -1;
  bytesOrig = -1;
  packetsReply = -1;
  bytesReply = -1;

  reset(): void {
    this.family = 4;
    this.proto = "";
    this.protonum = 0;
    this.timeout = 0;
    this.state = "";
    this.src = this.dst = this.rsrc = this.rdst = "";
    this.sport = this.dport = this.rsport = this.rdport = -1;
    this.unreplied = this.assured = this.offload = false;
    this.mark = 0;
    this.zone = 0;
    this.deltaTime = -1;
    this.packetsOrig = this.bytesOrig = this.packetsReply = this.bytesReply = -1;
  }

  /** Whether the reply tuple is not the mirror of the original one (NAT). */
  get natted(): boolean {
    return this.rsrc !== this.dst || this.rdst !== this.src || (this.sport >= 0 && (this.rsport !== this.dport || this.rdport !== this.sport));
  }
}

function toInt(s: string): number {
  // Only plain decimal digits: "12abc", "" and "-1" are not counts.
  if (s.length === 0 || s.length > 20) return NaN;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return NaN;
  }
  return Number(s);
}

function isStateWord(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const ok = (c >= 65 && c <= 90) || c === 95 || (c >= 48 && c <= 57);
    if (!ok) return false;
  }
  return true;
}

/** Decimal digits of line[s, e) as a number; NaN unless all are digits (and at most 15). */
function digits(line: string, s: number, e: number): number {
  if (e <= s || e - s > 15) return NaN;
  let n = 0;
  for (let i = s; i < e; i++) {
    const c = line.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return NaN;
    n = n * 10 + c;
  }
  return n;
}

function isSpace(c: number): boolean {
  return c === 32 || c === 9;
}

/** Whether line[s, e) is exactly `word`. */
function tokIs(line: string, s: number, e: number, word: string): boolean {
  return e - s === word.length && line.startsWith(word, s);
}

/**
 * Parses one table line into `e`. Returns undefined on success, else why the
 * line cannot be read. Accepts `conntrack -L` (with or without `-o extended`,
 * `ktimestamp`, `id`, accounting and timestamp fields) and /proc/net/nf_conntrack.
 *
 * A scanner over character positions: no token array, no substring except
 * the four addresses, so a million lines make little garbage.
 */
export function parseCtEntry(line: string, e: CtEntry): string | undefined {
  e.reset();
  const len = line.length;
  let i = 0;
  // Next token: [ts, te).
  let ts = 0;
  let te = 0;
  const next = (): boolean => {
    while (i < len && isSpace(line.charCodeAt(i))) i++;
    if (i >= len) return false;
    ts = i;
    while (i < len && !isSpace(line.charCodeAt(i))) i++;
    te = i;
    return true;
  };
  if (!next()) return "no protocol name";
  if (tokIs(line, ts, te, "ipv4") || tokIs(line, ts, te, "ipv6")) {
    e.family = line.charCodeAt(ts + 3) === 52 ? 4 : 6;
    next(); // the layer-3 protocol number
    if (!next()) return "no protocol name";
  }
  if (line.indexOf("=", ts) >= 0 && line.indexOf("=", ts) < te) return "no protocol name";
  e.proto = line.slice(ts, te);
  if (!next()) return "no protocol number";
  e.protonum = digits(line, ts, te);
  if (!Number.isFinite(e.protonum) || e.protonum > 255) return `bad protocol number "${line.slice(ts, te)}"`;
  if (!next()) return "no timeout";
  e.timeout = digits(line, ts, te);
  if (!Number.isFinite(e.timeout)) return `bad timeout "${line.slice(ts, te)}"`;
  let srcSeen = 0;
  let first = true;
  while (next()) {
    const c0 = line.charCodeAt(ts);
    if (c0 === 91 /* [ */) {
      if (tokIs(line, ts, te, "[UNREPLIED]")) e.unreplied = true;
      else if (tokIs(line, ts, te, "[ASSURED]")) e.assured = true;
      else if (tokIs(line, ts, te, "[OFFLOAD]") || tokIs(line, ts, te, "[HW_OFFLOAD]")) e.offload = true;
      else if (line.charCodeAt(te - 1) !== 93 /* ] */) {
        // "[start=Wed Dec  2 12:43:07 2026]" spans several tokens.
        while (next() && line.charCodeAt(te - 1) !== 93);
      }
      first = false;
      continue;
    }
    let eq = -1;
    for (let k = ts; k < te; k++) {
      if (line.charCodeAt(k) === 61 /* = */) {
        eq = k;
        break;
      }
    }
    if (eq < 0) {
      // The protocol state comes right after the timeout: upper-case letters, digits and _.
      if (first && isStateWord(line.slice(ts, te))) {
        e.state = line.slice(ts, te);
        first = false;
        continue;
      }
      return `unexpected field "${line.slice(ts, te)}"`;
    }
    first = false;
    if (eq === ts) return `unexpected field "${line.slice(ts, te)}"`;
    const vs = eq + 1;
    const klen = eq - ts;
    const key0 = line.charCodeAt(ts);
    if (klen === 3 && line.startsWith("src", ts)) {
      srcSeen++;
      const v = line.slice(vs, te);
      if (srcSeen === 1) e.src = v;
      else if (srcSeen === 2) e.rsrc = v;
      else return "more than two tuples";
      if (v.includes(":")) e.family = 6;
    } else if (klen === 3 && line.startsWith("dst", ts)) {
      if (srcSeen === 1) e.dst = line.slice(vs, te);
      else if (srcSeen === 2) e.rdst = line.slice(vs, te);
    } else if (klen === 5 && (line.startsWith("sport", ts) || line.startsWith("dport", ts))) {
      const n = digits(line, vs, te);
      if (!Number.isFinite(n) || n > 65535) return `bad port "${line.slice(ts, te)}"`;
      const sport = key0 === 115; /* s */
      if (srcSeen === 1) {
        if (sport) e.sport = n;
        else e.dport = n;
      } else if (sport) e.rsport = n;
      else e.rdport = n;
    } else if ((klen === 7 && line.startsWith("packets", ts)) || (klen === 5 && line.startsWith("bytes", ts))) {
      const n = digits(line, vs, te);
      if (!Number.isFinite(n)) return `bad counter "${line.slice(ts, te)}"`;
      const packets = key0 === 112; /* p */
      if (srcSeen === 1) {
        if (packets) e.packetsOrig = n;
        else e.bytesOrig = n;
      } else if (packets) e.packetsReply = n;
      else e.bytesReply = n;
    } else if (klen === 4 && line.startsWith("mark", ts)) {
      e.mark = digits(line, vs, te);
    } else if (klen === 4 && line.startsWith("zone", ts)) {
      e.zone = digits(line, vs, te);
    } else if (klen === 10 && line.startsWith("delta-time", ts)) {
      const n = digits(line, vs, te);
      if (Number.isFinite(n)) e.deltaTime = n;
    }
    // type=, code=, id=, use=, secctx=, labels=, srckey= … carry nothing the doctor needs.
  }
  if (srcSeen < 2 || e.src === "" || e.dst === "" || e.rsrc === "" || e.rdst === "") return "an entry needs two tuples (src=… dst=… twice)";
  return undefined;
}

/** Lines conntrack prints about itself that are not entries. */
export function isNoiseLine(line: string): boolean {
  return line.length === 0 || line.startsWith("conntrack v") || line.trim().length === 0;
}

// ---------------------------------------------------------------------------
// Counters

/** Counter names `conntrack -S` prints, in its order. */
export const STAT_NAMES = [
  "found",
  "invalid",
  "ignore",
  "insert",
  "insert_failed",
  "drop",
  "early_drop",
  "error",
  "search_restart",
  "clash_resolve",
  "chaintoolong",
] as const;

/**
 * Counters `conntrack -S` prints that this kernel does not count. Recent
 * kernels count `insert` only for entries made over ctnetlink (`conntrack
 * -I`, nf_conntrack_hash_check_insert), no longer in __nf_conntrack_confirm
 * where packets make them: on the 6.18 kernel of the tests a table that
 * packets filled reads insert=0 (test/host/collect.test.ts shows it). A
 * kernel that counts it has insert ≥ the entries there now (every one was
 * inserted since the namespace's counters started at 0), so fewer inserts
 * than entries means "not counted here", not "no inserts". (Per-CPU u32
 * counters that wrapped after 4 G inserts could look the same; such a
 * host's entries would then be underreported as uncounted, never invented.)
 */
export function uncountedStats(stats: Readonly<Record<string, number>> | undefined | null, entries: number | undefined): string[] {
  const insert = stats?.["insert"];
  return insert !== undefined && entries !== undefined && entries > 0 && insert < entries ? ["insert"] : [];
}

export interface StatsParse {
  /** Sum over CPUs of each counter that appeared. */
  readonly total: Record<string, number>;
  readonly cpus: number;
  readonly bad: BadLine[];
}

/** `conntrack -S`: one `cpu=N found=… …` line per CPU, summed. */
export function parseConntrackStats(text: string, source = "conntrack -S"): StatsParse {
  const total: Record<string, number> = {};
  const bad: BadLine[] = [];
  let cpus = 0;
  text.split("\n").forEach((raw, idx) => {
    const line = raw.trim();
    if (isNoiseLine(line)) return;
    const toks = line.split(/\s+/);
    if (!toks[0]?.startsWith("cpu=")) {
      bad.push(badLine(source, idx + 1, "expected cpu=N first", raw));
      return;
    }
    let ok = true;
    for (const tok of toks.slice(1)) {
      const eq = tok.indexOf("=");
      const n = eq > 0 ? toInt(tok.slice(eq + 1)) : NaN;
      if (!Number.isFinite(n)) {
        ok = false;
        continue;
      }
      const k = tok.slice(0, eq);
      total[k] = (total[k] ?? 0) + n;
    }
    if (!ok) bad.push(badLine(source, idx + 1, "a counter is not a number", raw));
    cpus++;
  });
  return { total, cpus, bad };
}

/** /proc/net/stat/nf_conntrack: a header line, then one line of hex counters per CPU. */
export function parseProcNetStat(text: string, source = "/proc/net/stat/nf_conntrack"): StatsParse {
  const total: Record<string, number> = {};
  const bad: BadLine[] = [];
  const lines = text.split("\n");
  const header = (lines[0] ?? "").trim().split(/\s+/);
  let cpus = 0;
  if (header[0] !== "entries") return { total, cpus, bad: [badLine(source, 1, 'expected a header starting with "entries"', lines[0] ?? "")] };
  for (let i = 1; i < lines.length; i++) {
    const raw = lines[i] as string;
    if (raw.trim() === "") continue;
    const vals = raw.trim().split(/\s+/);
    if (vals.length !== header.length || vals.some((v) => !/^[0-9a-fA-F]{1,16}$/.test(v))) {
      bad.push(badLine(source, i + 1, `expected ${header.length} hex counters`, raw));
      continue;
    }
    cpus++;
    header.forEach((h, j) => {
      // "entries" is the global count repeated on every line, not a per-CPU counter.
      if (h === "entries") total[h] = parseInt(vals[j] as string, 16);
      else total[h] = (total[h] ?? 0) + parseInt(vals[j] as string, 16);
    });
  }
  return { total, cpus, bad };
}

/** `conntrack -C` or nf_conntrack_count: one number. */
export function parseCount(text: string, source: string): { value?: number; bad: BadLine[] } {
  const lines = text.split("\n").filter((l) => !isNoiseLine(l.trim()));
  const n = toInt((lines[0] ?? "").trim());
  if (lines.length !== 1 || !Number.isFinite(n)) return { bad: [badLine(source, 1, "expected one number", lines[0] ?? text)] };
  return { value: n, bad: [] };
}

/** Counts the expectation lines of `conntrack -L expect`. */
export function countExpectations(text: string): number {
  return text.split("\n").filter((l) => !isNoiseLine(l.trim())).length;
}

// ---------------------------------------------------------------------------
// Files

/**
 * Sysctls, as `grep -r . /proc/sys/net/netfilter/` prints them
 * (`/proc/sys/net/netfilter/NAME:VALUE`) or as `sysctl -a` does
 * (`net.netfilter.NAME = VALUE`). Keys are the short names (`nf_conntrack_max`).
 */
export function parseSysctls(text: string, source = "sysctl.txt"): { values: Record<string, number>; bad: BadLine[] } {
  const values: Record<string, number> = {};
  const bad: BadLine[] = [];
  text.split("\n").forEach((raw, idx) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    const m = /^\/proc\/sys\/net\/netfilter\/([A-Za-z0-9_/]+):(.*)$/.exec(line) ?? /^net\.netfilter\.([A-Za-z0-9_.]+)\s*=\s*(.*)$/.exec(line);
    if (m === null) {
      bad.push(badLine(source, idx + 1, "expected /proc/sys/net/netfilter/NAME:VALUE or net.netfilter.NAME = VALUE", raw));
      return;
    }
    const name = m[1] as string;
    const value = (m[2] as string).trim();
    // nf_log/N (logger names per family) is a folder below, not a conntrack setting.
    if (name.includes("/") || name.includes(".")) return;
    const n = toInt(value);
    // nf_log/* and friends are not numbers and not the doctor's business.
    if (Number.isFinite(n)) values[name] = n;
  });
  return { values, bad };
}

/** The nf_conntrack line of /proc/slabinfo. */
export interface SlabInfo {
  readonly activeObjs: number;
  readonly numObjs: number;
  readonly objSize: number;
  readonly objPerSlab: number;
  readonly pagesPerSlab: number;
}

export function parseSlabinfo(text: string, source = "/proc/slabinfo"): { slab?: SlabInfo; bad: BadLine[] } {
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i] as string;
    const toks = raw.trim().split(/\s+/);
    if (toks[0] !== "nf_conntrack") continue;
    const nums = toks.slice(1, 6).map(toInt);
    if (nums.length < 5 || nums.some((n) => !Number.isFinite(n))) return { bad: [badLine(source, i + 1, "expected five numbers after the name", raw)] };
    const [activeObjs, numObjs, objSize, objPerSlab, pagesPerSlab] = nums as [number, number, number, number, number];
    return { slab: { activeObjs, numObjs, objSize, objPerSlab, pagesPerSlab }, bad: [] };
  }
  return { bad: [] };
}

/** Module names of /proc/modules. */
export function parseModules(text: string): string[] {
  return text
    .split("\n")
    .map((l) => l.split(" ")[0] ?? "")
    .filter((n) => n.length > 0);
}

/** MemTotal of /proc/meminfo, in bytes. */
export function parseMemTotal(text: string): number | undefined {
  const m = /^MemTotal:\s+(\d+)\s+kB/m.exec(text);
  return m === null ? undefined : Number(m[1]) * 1024;
}

/** One "table full, dropping packet" kernel message. */
export interface TableFullLine {
  /** The time as the log printed it (ISO from `dmesg --time-format=iso` / `journalctl -o short-iso`, else seconds since boot). */
  readonly time: string;
  /** The namespace inode newer kernels name ("table full in netns N"), else undefined. */
  readonly netnsInode?: number;
}

const TABLE_FULL = /nf_conntrack: (?:nf_conntrack: )?table full(?: in netns (\d+))?, dropping packet/;

/** Kernel log lines about a full table, with their times. Other lines are ignored. */
export function parseTableFull(text: string): TableFullLine[] {
  const out: TableFullLine[] = [];
  for (const raw of text.split("\n")) {
    const m = TABLE_FULL.exec(raw);
    if (m === null) continue;
    const before = raw.slice(0, m.index).trim();
    const bracket = /^\[\s*([\d.]+)\]/.exec(before);
    const iso = /^(\d{4}-\d\d-\d\dT[\d:.,]+[+-]\d\d:?\d\d)/.exec(before);
    const time = iso?.[1] ?? (bracket ? `${bracket[1]} s after boot` : before.split(/\s+/).slice(0, 3).join(" "));
    out.push(m[1] !== undefined ? { time, netnsInode: Number(m[1]) } : { time });
  }
  return out;
}

/** `stat -c '%a %n'` lines: whether nf_conntrack_max can be written here (mode 644 vs 444). */
export function parseModes(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const raw of text.split("\n")) {
    const m = /^([0-7]{3,4})\s+(\S+)$/.exec(raw.trim());
    if (m !== null) out[(m[2] as string).split("/").pop() as string] = parseInt(m[1] as string, 8);
  }
  return out;
}
