/**
 * `ctlab top`: a live, top-like view of one namespace's table — fill, rates,
 * states, top talkers — refreshed every 2 s; q (or Ctrl-C) quits. With
 * --batch (or when standard output is not a terminal) it prints plain frames,
 * like `top -b`, for --iterations frames.
 */
import { uncountedStats } from "../host/parse.js";
import type { Snapshot } from "../host/snapshot.js";
import { liveSource, takeSnapshot } from "../host/snapshot.js";
import { diagnose, formatBytesIEC } from "../host/diagnose.js";
import type { DoctorReport } from "../host/diagnose.js";
import { CliError } from "./errors.js";
import { targetsOf } from "./doctor.js";

function n(x: number): string {
  return x.toLocaleString("en-US").replace(/,/g, " ");
}

function bar(frac: number, width: number): string {
  const f = Math.max(0, Math.min(1, frac));
  const full = Math.round(f * width);
  return `[${"#".repeat(full)}${".".repeat(width - full)}]`;
}

interface Rates {
  readonly seconds: number;
  readonly perSecond: Readonly<Record<string, number>>;
}

/** Node types `columns`/`rows` as numbers, but they are undefined when stdout is not a terminal. */
function ttySize(n: number | undefined, fallback: number): number {
  return n ?? fallback;
}

function rates(prev: Snapshot | undefined, cur: Snapshot): Rates | undefined {
  if (prev?.stats === undefined || cur.stats === undefined) return undefined;
  const dt = (cur.meta.takenAtMs - prev.meta.takenAtMs) / 1000;
  if (dt <= 0) return undefined;
  const out: Record<string, number> = {};
  const notCounted = uncountedStats(cur.stats, cur.count ?? cur.sysctls["nf_conntrack_count"]);
  for (const k of ["insert", "found", "invalid", "drop", "early_drop", "insert_failed", "clash_resolve"]) {
    if (notCounted.includes(k)) continue;
    const a = prev.stats[k];
    const b = cur.stats[k];
    if (a !== undefined && b !== undefined) out[k] = (b - a) / dt;
  }
  const c0 = prev.count ?? prev.sysctls["nf_conntrack_count"];
  const c1 = cur.count ?? cur.sysctls["nf_conntrack_count"];
  if (c0 !== undefined && c1 !== undefined) out["fill"] = (c1 - c0) / dt;
  return { seconds: dt, perSecond: out };
}

/** One screen of `ctlab top` (exported for tests). */
export function renderTop(r: DoctorReport, rt: Rates | undefined, width = 100, rows = 40): string {
  const out: string[] = [];
  const limit = r.limit ?? 0;
  out.push(`ctlab top — netns ${r.netns} — ${r.taken_at.replace("T", " ").replace(/\.\d+Z$/, " UTC")}   (q quits)`);
  if (!r.conntrack_loaded) {
    out.push("", "Connection tracking is not in use here.");
    return out.join("\n") + "\n";
  }
  const usage = r.usage ?? 0;
  out.push(
    `Table  ${bar(usage, Math.max(10, Math.min(50, width - 50)))} ${n(r.entries)} / ${n(limit)} (${(usage * 100).toFixed(1)} %)  mem ${formatBytesIEC(r.kernel_memory_bytes.now)}`,
  );
  const p = rt?.perSecond;
  // A counter this kernel does not count shows "n/a", not a rate of 0.
  const f = (k: string): string => (r.stats_not_counted.includes(k) ? "n/a" : `${p?.[k] === undefined ? "-" : p[k].toFixed(1)}/s`);
  out.push(
    `Rates  fill ${f("fill")}  insert ${f("insert")}  drop ${f("drop")}  early_drop ${f("early_drop")}  insert_failed ${f("insert_failed")}  invalid ${f("invalid")}`,
  );
  const fill = p?.["fill"];
  if (fill !== undefined && fill > 0 && limit > 0) out.push(`       full in ${Math.round((limit - r.entries) / fill)} s at this rate`);
  out.push(
    `Flags  UNREPLIED ${n(r.unreplied)}  ASSURED ${n(r.assured)}  NATed ${n(r.natted)}  oldest idle ESTABLISHED ${r.oldest_idle_established_seconds ?? 0} s`,
  );
  out.push("");
  out.push(`${"STATE".padEnd(26)}${"ENTRIES".padStart(10)}    ${"SOURCE".padEnd(24)}${"ENTRIES".padStart(9)}    ${"DPORT".padEnd(12)}${"ENTRIES".padStart(9)}`);
  const lines = Math.max(5, Math.min(15, rows - out.length - 4));
  for (let i = 0; i < lines; i++) {
    const s = r.by_protocol_state[i];
    const src = r.top.sources[i];
    const dp = r.top.dports[i];
    if (!s && !src && !dp) break;
    out.push(
      `${(s ? `${s.protocol} ${s.state}` : "").padEnd(26)}${(s ? n(s.entries) : "").padStart(10)}    ${(src?.key ?? "").padEnd(24)}${(src ? n(src.entries) : "").padStart(9)}    ${(dp?.key ?? "").padEnd(12)}${(dp ? n(dp.entries) : "").padStart(9)}`,
    );
  }
  if (r.findings.length > 0) {
    out.push("");
    for (const x of r.findings.slice(0, 4)) out.push(`! [${x.severity}] ${x.title}`);
  }
  return out.map((l) => (l.length > width ? l.slice(0, width) : l)).join("\n") + "\n";
}

export async function topCommand(opts: Record<string, unknown>): Promise<number> {
  const targets = targetsOf(opts);
  if (targets.length !== 1) throw new CliError("ctlab top watches one namespace: use --netns NAME (not --all-netns)");
  const target = targets[0] as (typeof targets)[number];
  const delay = Number(opts["delay"] ?? 2);
  if (!Number.isFinite(delay) || delay < 0.2) throw new CliError(`Bad --delay "${String(opts["delay"])}": at least 0.2 seconds`);
  const tty = process.stdout.isTTY && opts["batch"] !== true;
  const iterations = opts["iterations"] === undefined ? (tty ? Infinity : 1) : Number(opts["iterations"]);
  if (!(iterations >= 1)) throw new CliError(`Bad --iterations "${String(opts["iterations"])}": at least 1`);
  // Set by the key handler while the loop awaits: typed wide so the loop test is not narrowed to `true`.
  let quit = false as boolean;
  let wake: (() => void) | undefined;
  const stdin = process.stdin;
  const onKey = (d: Buffer): void => {
    const k = d.toString("utf8");
    if (k === "q" || k === "Q" || k === "\u0003") {
      quit = true;
      wake?.();
    }
  };
  if (tty && stdin.isTTY) {
    stdin.setRawMode(true);
    stdin.resume();
    stdin.on("data", onKey);
    process.stdout.write("\x1b[?1049h\x1b[?25l");
  }
  let prev: Snapshot | undefined;
  try {
    for (let i = 0; i < iterations && !quit; i++) {
      const snap = await takeSnapshot(liveSource(target));
      const report = diagnose(snap, { top: 15 });
      const screen = renderTop(report, rates(prev, snap), ttySize(process.stdout.columns, 100), ttySize(process.stdout.rows, 40));
      if (tty) process.stdout.write(`\x1b[H\x1b[2J${screen}`);
      else process.stdout.write(`${i > 0 ? "\n" : ""}${screen}`);
      prev = snap;
      // The key handler sets quit while takeSnapshot is awaited; TypeScript still sees the loop test's `false`.
      // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition
      if (i + 1 >= iterations || quit) break;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, delay * 1000);
        wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  } finally {
    if (tty && stdin.isTTY) {
      stdin.off("data", onKey);
      stdin.setRawMode(false);
      stdin.pause();
      process.stdout.write("\x1b[?25h\x1b[?1049l");
    }
  }
  return 0;
}
